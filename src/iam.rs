//! IAM's access-key calls (Query API, `Version=2010-05-08`): `CreateAccessKey`,
//! `ListAccessKeys`, `DeleteAccessKey`, each without `UserName` (they act on the caller).
//! Signed with SigV4 by AWS's own signer (`aws-sigv4`) and sent over our reqwest client, so
//! the proxy and CA settings apply; replies parsed with quick-xml as STS's are. No SDK: four
//! form POSTs do not need its 220k lines and its second HTTP and TLS stack.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::http::{check_endpoint, describe_send_error};
use crate::secret::Secret;
use crate::sts::Credentials;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// IAM's API version.
pub const VERSION: &str = "2010-05-08";

/// Throttling and 5xx are retried this many times, after 0.5, 1 and 2 seconds.
const RETRIES: u32 = 3;

/// A key just made: the only time IAM shows its secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub user_name: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub created: OffsetDateTime,
}

impl NewKey {
    /// As credentials to sign with and to write (no session token, no expiry).
    pub fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: None,
            expiration: None,
        }
    }
}

/// One key of `ListAccessKeys` (no secret: IAM never shows it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub access_key_id: String,
    /// `Active` or `Inactive`.
    pub status: String,
    pub created: OffsetDateTime,
}

/// The caller's user and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyList {
    pub user_name: String,
    pub keys: Vec<KeyInfo>,
}

/// A reply IAM gave as an error: its HTTP status, `Code` and `Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Refusal {
    /// The key (or its signature or token) was not accepted: what a new key answers until IAM
    /// has spread it, and an old one after it was deleted.
    pub fn key_not_accepted(&self) -> bool {
        matches!(
            self.code.as_str(),
            "InvalidClientTokenId" | "SignatureDoesNotMatch" | "AccessDenied" | "AuthFailure"
        )
    }

    pub fn expired_token(&self) -> bool {
        matches!(self.code.as_str(), "ExpiredToken" | "ExpiredTokenException")
    }

    fn retryable(&self) -> bool {
        self.status >= 500
            || matches!(
                self.code.as_str(),
                "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "ServiceUnavailable"
            )
    }

    /// The error in words, with the kind that decides the exit code.
    pub fn to_error(&self, host: &str) -> Error {
        let msg = self.message.trim();
        let code = self.code.as_str();
        match code {
            "LimitExceeded" => Error::config(format!(
                "IAM at {host} refused: your user already has two access keys, the most IAM allows ({msg}); \
                 delete one with `astran-creds keys delete KEY_ID` (see `astran-creds keys list`)"
            )),
            "NoSuchEntity" => Error::config(format!(
                "IAM at {host} has no such access key for your user ({msg}); see `astran-creds keys list`"
            )),
            "InvalidClientTokenId" | "SignatureDoesNotMatch" | "AccessDenied" | "AuthFailure" => {
                Error::refused(format!(
                    "IAM at {host} refused the request ({code}: {msg}); log in again, or ask your Astran administrator for the right to manage access keys"
                ))
            }
            "ExpiredToken" | "ExpiredTokenException" => Error::login_required(format!(
                "IAM at {host} says the temporary credentials have expired ({msg}); log in again"
            )),
            _ if self.retryable() => Error::unavailable(format!(
                "IAM at {host} is busy or failing ({code}, HTTP {}); try again later",
                self.status
            )),
            "ValidationError" | "InvalidInput" | "MalformedQueryString" => Error::config(format!(
                "IAM at {host} rejected the request ({code}: {msg})"
            )),
            _ => Error::refused(format!("IAM at {host} refused the request ({code}: {msg})")),
        }
    }
}

/// What a call gave: a reply body, or an IAM error (kept apart so that the flows can act on
/// the code), or a transport failure already in words.
#[derive(Debug)]
pub enum Failure {
    Iam(Refusal),
    Other(Error),
}

impl Failure {
    pub fn into_error(self, host: &str) -> Error {
        match self {
            Failure::Iam(r) => r.to_error(host),
            Failure::Other(e) => e,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// IAM at one endpoint, in one signing region.
#[derive(Clone)]
pub struct IamClient {
    http: reqwest::Client,
    url: reqwest::Url,
    region: String,
    clock: Arc<dyn Clock>,
}

impl IamClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: &str,
        region: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<IamClient> {
        Ok(IamClient {
            http,
            url: check_endpoint("IAM endpoint", endpoint)?,
            region: region.to_owned(),
            clock,
        })
    }

    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("?")
    }

    pub async fn create_access_key(
        &self,
        creds: &Credentials,
    ) -> std::result::Result<NewKey, Failure> {
        let body = self.call(creds, "CreateAccessKey", &[]).await?;
        parse_create(&body).map_err(|what| self.malformed(what))
    }

    pub async fn list_access_keys(
        &self,
        creds: &Credentials,
    ) -> std::result::Result<KeyList, Failure> {
        let mut out: Option<KeyList> = None;
        let mut marker: Option<String> = None;
        // two keys per user: one page in practice, but follow the marker all the same
        for _ in 0..10 {
            let params: Vec<(&str, &str)> = marker.iter().map(|m| ("Marker", m.as_str())).collect();
            let body = self.call(creds, "ListAccessKeys", &params).await?;
            let (page, next) = parse_list(&body).map_err(|what| self.malformed(what))?;
            match &mut out {
                Some(o) => o.keys.extend(page.keys),
                None => out = Some(page),
            }
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        Ok(out.unwrap_or(KeyList {
            user_name: String::new(),
            keys: Vec::new(),
        }))
    }

    pub async fn delete_access_key(
        &self,
        creds: &Credentials,
        key_id: &str,
    ) -> std::result::Result<(), Failure> {
        self.call(creds, "DeleteAccessKey", &[("AccessKeyId", key_id)])
            .await
            .map(drop)
    }

    fn malformed(&self, what: &str) -> Failure {
        Failure::Other(Error::unavailable(format!(
            "IAM at {} sent a malformed reply ({what}); try again later",
            self.host()
        )))
    }

    /// One signed call, retried on throttling and 5xx.
    async fn call(
        &self,
        creds: &Credentials,
        action: &str,
        params: &[(&str, &str)],
    ) -> std::result::Result<String, Failure> {
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action)
                .append_pair("Version", VERSION);
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let mut attempt = 0;
        loop {
            // signed anew each time: a signature is only good for a few minutes
            let r = self.send_once(creds, &body, self.clock.now()).await;
            match r {
                Err(Failure::Iam(ref e)) if e.retryable() && attempt < RETRIES => {
                    let wait = Duration::from_millis(500 << attempt);
                    log::info!(
                        "IAM {action}: {} (HTTP {}); retrying in {wait:?}",
                        e.code,
                        e.status
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    async fn send_once(
        &self,
        creds: &Credentials,
        body: &str,
        at: OffsetDateTime,
    ) -> std::result::Result<String, Failure> {
        const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = sign(creds, &self.region, &self.url, CONTENT_TYPE, body, at)?;
        let mut req = self
            .http
            .post(self.url.clone())
            .header("content-type", CONTENT_TYPE)
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(k, v.expose());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| describe_send_error("IAM", &self.url, &e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| describe_send_error("IAM", &self.url, &e))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            return Ok(text);
        }
        Err(Failure::Iam(parse_error(status, &text)))
    }
}

/// The headers SigV4 adds for `body` POSTed to `url` (`authorization`, `x-amz-date`,
/// `x-amz-security-token`), as secrets: the token is one.
fn sign(
    creds: &Credentials,
    region: &str,
    url: &reqwest::Url,
    content_type: &str,
    body: &str,
    at: OffsetDateTime,
) -> Result<Vec<(String, Secret)>> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.expose().to_owned(),
        creds.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "astran-creds",
    )
    .into();
    let failed =
        |e: &dyn std::fmt::Display| Error::config(format!("cannot sign the IAM request ({e})"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("iam")
        .time(at.into())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        [("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), Secret::new(v)))
        .collect())
}

#[derive(Deserialize)]
struct CreateResponse {
    #[serde(rename = "CreateAccessKeyResult")]
    result: CreateResult,
}

#[derive(Deserialize)]
struct CreateResult {
    #[serde(rename = "AccessKey")]
    key: Option<KeyXml>,
}

#[derive(Deserialize, Default)]
struct KeyXml {
    #[serde(rename = "UserName")]
    user_name: Option<String>,
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<String>,
    #[serde(rename = "Status")]
    status: Option<String>,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: Option<String>,
    #[serde(rename = "CreateDate")]
    create_date: Option<String>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(rename = "ListAccessKeysResult")]
    result: ListResult,
}

#[derive(Deserialize)]
struct ListResult {
    #[serde(rename = "UserName")]
    user_name: Option<String>,
    #[serde(rename = "AccessKeyMetadata", default)]
    metadata: Members,
    #[serde(rename = "IsTruncated")]
    is_truncated: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
}

#[derive(Deserialize, Default)]
struct Members {
    #[serde(rename = "member", default)]
    member: Vec<KeyXml>,
}

/// `<ErrorResponse><Error>…` as AWS's Query services send it, or `<Errors><Error>…` as
/// some others (and moto's access control) do; botocore reads both.
#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(rename = "Error")]
    error: Option<ErrorXml>,
    #[serde(rename = "Errors")]
    errors: Option<Errors>,
}

#[derive(Deserialize)]
struct Errors {
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

/// IAM dates: ISO 8601 with or without fractions (`2024-08-22T08:13:50.652118+00:00`,
/// `2026-12-01T22:21:20Z`).
fn parse_date(s: &str) -> Option<OffsetDateTime> {
    crate::clock::parse_rfc3339(s.trim())
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `CreateAccessKeyResponse`. Pure, so it can be fuzzed.
pub fn parse_create(text: &str) -> std::result::Result<NewKey, &'static str> {
    let r: CreateResponse = quick_xml::de::from_str(text).map_err(|_| "not the expected XML")?;
    let k = r.result.key.ok_or("no AccessKey")?;
    let (Some(user), Some(id), Some(secret), Some(date)) = (
        nonempty(k.user_name),
        nonempty(k.access_key_id),
        nonempty(k.secret_access_key),
        nonempty(k.create_date),
    ) else {
        return Err("an AccessKey field is missing");
    };
    Ok(NewKey {
        user_name: user,
        access_key_id: id,
        secret_access_key: Secret::new(secret),
        created: parse_date(&date).ok_or("a bad CreateDate")?,
    })
}

/// `ListAccessKeysResponse`: the page and the marker of the next one. Pure.
pub fn parse_list(text: &str) -> std::result::Result<(KeyList, Option<String>), &'static str> {
    let r: ListResponse = quick_xml::de::from_str(text).map_err(|_| "not the expected XML")?;
    let mut keys = Vec::new();
    let mut user = nonempty(r.result.user_name);
    for m in r.result.metadata.member {
        if user.is_none() {
            user = nonempty(m.user_name.clone());
        }
        let id = nonempty(m.access_key_id).ok_or("a key without AccessKeyId")?;
        let created = nonempty(m.create_date)
            .as_deref()
            .and_then(parse_date)
            .ok_or("a bad CreateDate")?;
        keys.push(KeyInfo {
            access_key_id: id,
            status: nonempty(m.status).unwrap_or_else(|| "Active".into()),
            created,
        });
    }
    let next = match r.result.is_truncated.as_deref().map(str::trim) {
        Some("true") => Some(nonempty(r.result.marker).ok_or("IsTruncated without Marker")?),
        _ => None,
    };
    Ok((
        KeyList {
            user_name: user.unwrap_or_default(),
            keys,
        },
        next,
    ))
}

/// An error reply (`ErrorResponse`, or anything else with its HTTP status). Pure.
pub fn parse_error(status: u16, text: &str) -> Refusal {
    let doc = quick_xml::de::from_str::<ErrorResponse>(text)
        .ok()
        .and_then(|e| e.error.or(e.errors.map(|x| x.error)))
        .filter(|e| !e.code.trim().is_empty());
    match doc {
        Some(e) => Refusal {
            status,
            code: e.code.trim().to_owned(),
            message: e.message.trim().to_owned(),
        },
        None => Refusal {
            status,
            code: if status >= 500 {
                "ServiceUnavailable".into()
            } else {
                format!("HTTP{status}")
            },
            message: format!("HTTP {status} without an IAM error document"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const CREATED: &str = r#"<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <CreateAccessKeyResult>
    <AccessKey>
      <UserName>root</UserName>
      <AccessKeyId>AKIAEXAMPLE1234567890</AccessKeyId>
      <Status>Active</Status>
      <SecretAccessKey>wJalr/K7MDENG+bPxRfi</SecretAccessKey>
      <CreateDate>2024-08-22T08:13:50.652118+00:00</CreateDate>
    </AccessKey>
  </CreateAccessKeyResult>
  <ResponseMetadata><RequestId>7a62c49f</RequestId></ResponseMetadata>
</CreateAccessKeyResponse>"#;

    #[test]
    fn create_reply() {
        let k = parse_create(CREATED).unwrap();
        assert_eq!(k.user_name, "root");
        assert_eq!(k.access_key_id, "AKIAEXAMPLE1234567890");
        assert_eq!(k.secret_access_key.expose(), "wJalr/K7MDENG+bPxRfi");
        assert_eq!(k.created.unix_timestamp(), 1724314430);
        assert!(!format!("{k:?}").contains("wJalr"));
        assert!(parse_create(&CREATED.replace(
            "<SecretAccessKey>wJalr/K7MDENG+bPxRfi</SecretAccessKey>",
            ""
        ))
        .is_err());
        assert!(parse_create("<CreateAccessKeyResponse>").is_err());
        assert!(parse_create("").is_err());
    }

    #[test]
    fn list_reply_with_pages() {
        let page = |marker: &str| {
            format!(
                r#"<ListAccessKeysResponse><ListAccessKeysResult>
  <UserName>root</UserName>
  <AccessKeyMetadata>
    <member><UserName>root</UserName><AccessKeyId>AKIA1</AccessKeyId><Status>Active</Status><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>
    <member><UserName>root</UserName><AccessKeyId>AKIA2</AccessKeyId><Status>Inactive</Status><CreateDate>2026-02-01T00:00:00Z</CreateDate></member>
  </AccessKeyMetadata>
  {marker}
</ListAccessKeysResult></ListAccessKeysResponse>"#
            )
        };
        let (l, next) = parse_list(&page("<IsTruncated>false</IsTruncated>")).unwrap();
        assert_eq!(next, None);
        assert_eq!(l.user_name, "root");
        assert_eq!(l.keys.len(), 2);
        assert_eq!(l.keys[1].status, "Inactive");
        let (_, next) =
            parse_list(&page("<IsTruncated>true</IsTruncated><Marker>m1</Marker>")).unwrap();
        assert_eq!(next.as_deref(), Some("m1"));
        assert!(parse_list(&page("<IsTruncated>true</IsTruncated>")).is_err());
        let empty = "<ListAccessKeysResponse><ListAccessKeysResult><UserName>root</UserName><AccessKeyMetadata/><IsTruncated>false</IsTruncated></ListAccessKeysResult></ListAccessKeysResponse>";
        assert_eq!(parse_list(empty).unwrap().0.keys, vec![]);
    }

    #[test]
    fn errors_in_words_with_their_kinds() {
        let doc = |code: &str| {
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>m</Message></Error><RequestId>1</RequestId></ErrorResponse>")
        };
        let kind = |status, code: &str| parse_error(status, &doc(code)).to_error("h").kind();
        assert_eq!(kind(409, "LimitExceeded"), ErrorKind::Config);
        assert_eq!(kind(404, "NoSuchEntity"), ErrorKind::Config);
        assert_eq!(kind(403, "AccessDenied"), ErrorKind::Refused);
        assert_eq!(kind(403, "InvalidClientTokenId"), ErrorKind::Refused);
        assert_eq!(kind(403, "SignatureDoesNotMatch"), ErrorKind::Refused);
        assert_eq!(kind(403, "ExpiredToken"), ErrorKind::LoginRequired);
        assert_eq!(kind(400, "Throttling"), ErrorKind::Unavailable);
        assert_eq!(kind(500, "ServiceFailure"), ErrorKind::Unavailable);
        let html = parse_error(502, "<html>bad gateway</html>");
        assert!(html.retryable());
        assert_eq!(html.to_error("h").kind(), ErrorKind::Unavailable);
        assert!(parse_error(403, &doc("InvalidClientTokenId")).key_not_accepted());
        let nested = "<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>bad</Message><Type>Sender</Type></Error></Errors></ErrorResponse>";
        assert_eq!(parse_error(403, nested).code, "InvalidClientTokenId");
        assert!(!parse_error(409, &doc("LimitExceeded")).key_not_accepted());
        let words = parse_error(409, &doc("LimitExceeded"))
            .to_error("iam.example")
            .to_string();
        assert!(
            words.contains("two access keys") && words.contains("keys delete"),
            "{words}"
        );
    }

    #[test]
    fn signing_adds_the_token_and_a_v4_authorization() {
        let c = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("secret"),
            session_token: Some(Secret::new("the-token")),
            expiration: None,
        };
        let url = reqwest::Url::parse("http://127.0.0.1:9/").unwrap();
        let at = time::macros::datetime!(2026-12-01 10:00:00 UTC);
        let h = sign(
            &c,
            "us-east-1",
            &url,
            "application/x-www-form-urlencoded",
            "Action=ListAccessKeys&Version=2010-05-08",
            at,
        )
        .unwrap();
        let get = |k: &str| {
            h.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.expose().to_owned())
        };
        let auth = get("authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261201/us-east-1/iam/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains("content-type") && auth.contains("host"),
            "{auth}"
        );
        assert_eq!(get("x-amz-date").as_deref(), Some("20261201T100000Z"));
        assert_eq!(get("x-amz-security-token").as_deref(), Some("the-token"));
        // the same request signed with another secret differs
        let other = Credentials {
            secret_access_key: Secret::new("other"),
            ..c
        };
        let h2 = sign(
            &other,
            "us-east-1",
            &url,
            "application/x-www-form-urlencoded",
            "Action=ListAccessKeys&Version=2010-05-08",
            at,
        )
        .unwrap();
        assert_ne!(
            h2.iter()
                .find(|(n, _)| n == "authorization")
                .unwrap()
                .1
                .expose(),
            auth
        );
    }
}
