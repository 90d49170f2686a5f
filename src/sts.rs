//! STS `AssumeRoleWithWebIdentity` (Query API, unsigned: the web identity token is the
//! proof). A plain form POST and an XML reply, so no AWS SDK is needed for it.

use crate::error::{Error, Result};
use crate::http::{check_endpoint, describe_send_error};
use crate::secret::Secret;
use serde::Deserialize;
use time::OffsetDateTime;

/// Temporary credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// `None` for permanent keys.
    pub expiration: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct AssumeRequest<'a> {
    pub endpoint: &'a str,
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub web_identity_token: &'a Secret,
    pub duration_seconds: u32,
}

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "AssumeRoleWithWebIdentityResult")]
    result: ResultXml,
}

#[derive(Deserialize)]
struct ResultXml {
    #[serde(rename = "Credentials")]
    credentials: Option<CredsXml>,
}

#[derive(Deserialize)]
struct CredsXml {
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: Option<String>,
    #[serde(rename = "SessionToken")]
    session_token: Option<String>,
    #[serde(rename = "Expiration")]
    expiration: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(rename = "Error")]
    error: ErrorXml,
}

#[derive(Deserialize)]
struct ErrorXml {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// STS's RoleSessionName: `[\w+=,.@-]{2,64}`. Derived from the email.
pub fn session_name(email: &str) -> String {
    let mut s: String = email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if s.len() < 2 {
        s = format!("astran-{s}");
    }
    s
}

#[derive(Debug, Clone)]
pub struct StsClient {
    http: reqwest::Client,
}

impl StsClient {
    pub fn new(http: reqwest::Client) -> Self {
        StsClient { http }
    }

    pub async fn assume_role_with_web_identity(
        &self,
        r: &AssumeRequest<'_>,
    ) -> Result<Credentials> {
        let url = check_endpoint("STS endpoint", r.endpoint)?;
        let duration = r.duration_seconds.to_string();
        let body = Secret::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("Action", "AssumeRoleWithWebIdentity")
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", r.role_arn)
                .append_pair("RoleSessionName", r.session_name)
                .append_pair("DurationSeconds", &duration)
                .append_pair("WebIdentityToken", r.web_identity_token.expose())
                .finish(),
        );
        let resp = self
            .http
            .post(url.clone())
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body.expose().to_owned())
            .send()
            .await
            .map_err(|e| describe_send_error("STS", &url, &e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| describe_send_error("STS", &url, &e))?;
        parse_reply(status, &bytes, url.host_str().unwrap_or("?"), r.role_arn)
    }
}

/// Turn STS's reply (HTTP status and XML body) into credentials or a classified error.
/// Pure, so it can be fuzzed (`fuzz/fuzz_targets/sts_reply.rs`).
pub fn parse_reply(status: u16, bytes: &[u8], host: &str, role: &str) -> Result<Credentials> {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    if (200..300).contains(&status) {
        let malformed = |what: &str| {
            Error::unavailable(format!(
                "STS at {host} sent a malformed reply ({what}); try again later"
            ))
        };
        let r: Response =
            quick_xml::de::from_str(text).map_err(|_| malformed("not the expected XML"))?;
        let c = r
            .result
            .credentials
            .ok_or_else(|| malformed("no Credentials"))?;
        let (Some(id), Some(secret), Some(token), Some(exp)) = (
            c.access_key_id,
            c.secret_access_key,
            c.session_token,
            c.expiration,
        ) else {
            return Err(malformed("a credentials field is missing"));
        };
        let expiration =
            crate::clock::parse_rfc3339(&exp).ok_or_else(|| malformed("bad Expiration"))?;
        if id.trim().is_empty() || secret.trim().is_empty() || token.trim().is_empty() {
            return Err(malformed("an empty credentials field"));
        }
        return Ok(Credentials {
            access_key_id: id.trim().to_owned(),
            secret_access_key: Secret::new(secret.trim()),
            session_token: Some(Secret::new(token.trim())),
            expiration: Some(expiration),
        });
    }
    let err: Option<ErrorXml> = quick_xml::de::from_str::<ErrorResponse>(text)
        .ok()
        .map(|e| e.error);
    let Some(e) = err else {
        return Err(Error::unavailable(if status >= 500 {
            format!("STS at {host} is unavailable (HTTP {status}); try again later")
        } else {
            format!("STS at {host} sent an unexpected reply (HTTP {status}); try again later")
        }));
    };
    let msg = e.message.trim();
    match e.code.as_str() {
        "ExpiredToken" | "ExpiredTokenException" => Err(Error::login_required(format!(
            "STS says the access token has expired ({msg}); check this machine's clock, then log in again"
        ))),
        "InvalidIdentityToken" | "IDPRejectedClaim" => Err(Error::refused(format!(
            "STS refused the identity token ({}: {msg}); the identity provider and STS disagree, contact your Astran administrator",
            e.code
        ))),
        "AccessDenied" | "AccessDeniedException" => Err(Error::refused(format!(
            "STS refused to let you assume {role} ({msg}); check the role or ask your Astran administrator"
        ))),
        "ValidationError" | "InvalidParameterValue" | "MalformedPolicyDocument" => Err(Error::config(format!(
            "STS rejected the request ({}: {msg}); check role_arn and duration_seconds",
            e.code
        ))),
        "Throttling" | "ThrottlingException" | "IDPCommunicationError" | "ServiceUnavailable" | "InternalFailure" => {
            Err(Error::unavailable(format!("STS is busy or failing ({}: {msg}); try again later", e.code)))
        }
        code if status >= 500 => Err(Error::unavailable(format!("STS failed ({code}: {msg}); try again later"))),
        code => Err(Error::refused(format!("STS refused the request ({code}: {msg})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>ce04</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>FQoG+/a=&amp;b</SessionToken>
      <SecretAccessKey>asdf</SecretAccessKey>
      <Expiration>2024-08-22T08:32:56.123456Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn parses_credentials() {
        let c = parse_reply(200, OK.as_bytes(), "sts", "r").unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.session_token.unwrap().expose(), "FQoG+/a=&b");
        assert_eq!(
            crate::clock::rfc3339(c.expiration.unwrap()),
            "2024-08-22T08:32:56Z"
        );
    }

    #[test]
    fn errors_by_code() {
        let err = |code: &str, status: u16| {
            let x = format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>m</Message></Error><RequestId>1</RequestId></ErrorResponse>");
            parse_reply(status, x.as_bytes(), "sts", "arn")
                .unwrap_err()
                .kind()
        };
        assert_eq!(err("ExpiredTokenException", 400), ErrorKind::LoginRequired);
        assert_eq!(err("InvalidIdentityToken", 400), ErrorKind::Refused);
        assert_eq!(err("AccessDenied", 403), ErrorKind::Refused);
        assert_eq!(err("InternalFailure", 500), ErrorKind::Unavailable);
        assert_eq!(
            parse_reply(502, b"bad gateway", "sts", "a")
                .unwrap_err()
                .kind(),
            ErrorKind::Unavailable
        );
        let missing = OK.replace("<AccessKeyId>ASIAEXAMPLE</AccessKeyId>", "");
        assert_eq!(
            parse_reply(200, missing.as_bytes(), "sts", "a")
                .unwrap_err()
                .kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            parse_reply(200, b"", "sts", "a").unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert_eq!(session_name("demo@astran.io"), "demo@astran.io");
        assert_eq!(session_name("jo hn/x@a.b"), "jo-hn-x@a.b");
        assert_eq!(session_name("x"), "astran-x");
        assert_eq!(session_name(&"a".repeat(100)).len(), 64);
        assert_eq!(session_name("é@x"), "-@x");
    }
}
