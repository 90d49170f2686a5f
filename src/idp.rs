//! Keycloak's token endpoint: the password, authorization-code (PKCE), device-code and
//! refresh-token grants, and the device authorization request (RFC 8628).

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::http::{check_endpoint, describe_send_error};
use crate::secret::Secret;
use serde::Deserialize;
use std::sync::Arc;
use time::OffsetDateTime;

/// A successful token reply.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// The ID token (when the scope had `openid`): a browser login checks its nonce.
    pub id_token: Option<Secret>,
    /// Access-token lifetime, seconds.
    pub expires_in: u64,
    /// Refresh-token lifetime, seconds; 0 means "does not expire" (offline tokens).
    pub refresh_expires_in: u64,
    pub obtained_at: OffsetDateTime,
    /// The granted scope has `offline_access`: an offline session, which outlives SSO
    /// Session Max.
    pub offline: bool,
}

impl TokenSet {
    pub fn refresh_expires_at(&self) -> Option<OffsetDateTime> {
        // A lifetime past what a date can hold (year 9999) is as good as none.
        let secs = i64::try_from(self.refresh_expires_in).ok()?;
        (secs > 0)
            .then(|| self.obtained_at.checked_add(time::Duration::seconds(secs)))
            .flatten()
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    expires_in: Option<u64>,
    refresh_expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Where and as whom to ask.
#[derive(Debug, Clone)]
pub struct IdpSettings {
    pub token_url: String,
    pub client_id: String,
    pub offline: bool,
}

#[derive(Clone)]
pub struct IdpClient {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

/// Which grant a token request used; it decides how a refusal is reported.
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    Password {
        username: &'a str,
        password: &'a Secret,
    },
    Refresh {
        refresh_token: &'a Secret,
    },
    /// The browser login's code, with its PKCE verifier and the redirect URI it was sent to.
    Code {
        code: &'a Secret,
        verifier: &'a Secret,
        redirect_uri: &'a str,
    },
    /// A device login's poll.
    Device {
        device_code: &'a Secret,
    },
}

/// The scope asked for at login (the password grant adds `offline_access` the same way).
pub fn login_scope(offline: bool) -> &'static str {
    if offline {
        "openid offline_access"
    } else {
        "openid"
    }
}

impl IdpClient {
    /// `clock` stamps each reply, so session lifetimes follow the injected time.
    pub fn new(http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        IdpClient { http, clock }
    }

    pub async fn password_grant(
        &self,
        s: &IdpSettings,
        username: &str,
        password: &Secret,
    ) -> Result<TokenSet> {
        self.request(s, Grant::Password { username, password })
            .await
    }

    pub async fn refresh_grant(&self, s: &IdpSettings, refresh_token: &Secret) -> Result<TokenSet> {
        self.request(s, Grant::Refresh { refresh_token }).await
    }

    /// Exchange a browser login's code (with its PKCE verifier) for tokens.
    pub async fn code_grant(
        &self,
        s: &IdpSettings,
        code: &Secret,
        verifier: &Secret,
        redirect_uri: &str,
    ) -> Result<TokenSet> {
        self.request(
            s,
            Grant::Code {
                code,
                verifier,
                redirect_uri,
            },
        )
        .await
    }

    /// One poll of a device login: the tokens, or why there are none yet (not answered, or
    /// asked to poll more slowly).
    pub async fn device_poll(
        &self,
        s: &IdpSettings,
        device_code: &Secret,
    ) -> Result<std::result::Result<TokenSet, DevicePending>> {
        let (status, bytes, host, obtained_at) =
            self.post_token(s, Grant::Device { device_code }).await?;
        if status == 400 {
            if let Ok(e) = serde_json::from_slice::<ErrorReply>(&bytes) {
                match e.error.as_str() {
                    "authorization_pending" => return Ok(Err(DevicePending::Pending)),
                    "slow_down" => return Ok(Err(DevicePending::SlowDown)),
                    _ => {}
                }
            }
        }
        parse_token_reply(
            status,
            &bytes,
            &host,
            &Grant::Device { device_code },
            obtained_at,
        )
        .map(Ok)
    }

    /// Start a device login (RFC 8628 §3.1) at `device_url`.
    pub async fn device_authorization(
        &self,
        s: &IdpSettings,
        device_url: &str,
    ) -> Result<DeviceAuthorization> {
        let url = check_endpoint("device authorization endpoint", device_url)?;
        let form = [
            ("client_id", s.client_id.as_str()),
            ("scope", login_scope(s.offline)),
        ];
        let (status, bytes) = self.post_form(&url, &form).await?;
        parse_device_reply(status, &bytes, url.host_str().unwrap_or("?"), &s.client_id)
    }

    async fn request(&self, s: &IdpSettings, grant: Grant<'_>) -> Result<TokenSet> {
        let (status, bytes, host, obtained_at) = self.post_token(s, grant).await?;
        parse_token_reply(status, &bytes, &host, &grant, obtained_at)
    }

    /// POST a grant to the token endpoint: the reply's status, body and host, and when it
    /// was asked.
    async fn post_token(
        &self,
        s: &IdpSettings,
        grant: Grant<'_>,
    ) -> Result<(u16, bytes::Bytes, String, OffsetDateTime)> {
        let url = check_endpoint("token endpoint", &s.token_url)?;
        let mut form: Vec<(&str, &str)> = vec![("client_id", &s.client_id)];
        match &grant {
            Grant::Password { username, password } => {
                form.push(("grant_type", "password"));
                form.push(("username", username));
                form.push(("password", password.expose()));
                if s.offline {
                    form.push(("scope", "openid offline_access"));
                }
            }
            Grant::Refresh { refresh_token } => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh_token.expose()));
            }
            Grant::Code {
                code,
                verifier,
                redirect_uri,
            } => {
                form.push(("grant_type", "authorization_code"));
                form.push(("code", code.expose()));
                form.push(("redirect_uri", redirect_uri));
                form.push(("code_verifier", verifier.expose()));
            }
            Grant::Device { device_code } => {
                form.push(("grant_type", DEVICE_GRANT));
                form.push(("device_code", device_code.expose()));
            }
        }
        let obtained_at = self.clock.now();
        let (status, bytes) = self.post_form(&url, &form).await?;
        let host = url.host_str().unwrap_or("?").to_owned();
        Ok((status, bytes, host, obtained_at))
    }

    /// POST `form` to one of the IdP's endpoints: the reply's status and body. The body may
    /// hold a secret (a password, a token), so it is built as one.
    async fn post_form(
        &self,
        url: &reqwest::Url,
        form: &[(&str, &str)],
    ) -> Result<(u16, bytes::Bytes)> {
        let body = Secret::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish(),
        );
        let resp = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body.expose().to_owned())
            .send()
            .await
            .map_err(|e| describe_send_error("the identity provider", url, &e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| describe_send_error("the identity provider", url, &e))?;
        Ok((status, bytes))
    }
}

/// RFC 8628's grant type.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Why a device poll has no tokens yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePending {
    /// `authorization_pending`: the user has not answered yet.
    Pending,
    /// `slow_down`: poll 5 seconds less often from now on (RFC 8628 §3.5).
    SlowDown,
}

/// The device authorization reply (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    /// Seconds between polls (default 5).
    pub interval: u64,
}

#[derive(Deserialize)]
struct DeviceReply {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

/// The device authorization endpoint's reply. Pure, so it can be fuzzed. The URLs are shown
/// to the user to open, so they must be https (or loopback http) like every endpoint.
pub fn parse_device_reply(
    status: u16,
    bytes: &[u8],
    host: &str,
    client_id: &str,
) -> Result<DeviceAuthorization> {
    if (200..300).contains(&status) {
        let r: DeviceReply = serde_json::from_slice(bytes).map_err(|_| {
            Error::unavailable(format!(
                "the identity provider at {host} sent a malformed device authorization reply (HTTP {status}); try again later"
            ))
        })?;
        let shown = |what: &str, u: &str| -> Result<String> {
            check_endpoint(what, u)
                .map(|u| u.to_string())
                .map_err(|e| {
                    Error::refused(format!(
                        "the identity provider at {host} gave a verification address that is not safe to open: {e}"
                    ))
                })
        };
        let printable =
            |s: &str| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_graphic());
        if r.device_code.is_empty() || !printable(&r.user_code) {
            return Err(Error::unavailable(format!(
                "the identity provider at {host} sent a device authorization reply without a usable code; try again later"
            )));
        }
        return Ok(DeviceAuthorization {
            device_code: Secret::new(r.device_code),
            user_code: r.user_code,
            verification_uri: shown("verification address", &r.verification_uri)?,
            verification_uri_complete: r
                .verification_uri_complete
                .as_deref()
                .map(|u| shown("verification address", u))
                .transpose()?,
            expires_in: r.expires_in.clamp(1, 24 * 3600),
            interval: r.interval.unwrap_or(5).clamp(1, 60),
        });
    }
    match serde_json::from_slice::<ErrorReply>(bytes) {
        Ok(e)
            if matches!(status, 400 | 401 | 403)
                && (e.error == "unauthorized_client" || e.error == "invalid_client") =>
        {
            Err(Error::config(format!(
                "the identity provider does not allow device logins for client {client_id} ({}: {}); use auth = \"browser\" for the account, or ask your administrator to enable the device grant",
                e.error,
                e.error_description.unwrap_or_default()
            )))
        }
        // the token endpoint's mapping for the rest (a status outside 2xx is always an error
        // there)
        _ => parse_token_reply(
            status,
            bytes,
            host,
            &Grant::Device {
                device_code: &Secret::new(""),
            },
            OffsetDateTime::UNIX_EPOCH,
        )
        .and(Err(Error::unavailable(format!(
            "the identity provider at {host} sent an unexpected device authorization reply (HTTP {status}); try again later"
        )))),
    }
}

/// Turn the token endpoint's reply (HTTP status and body) into tokens or a classified
/// error. Pure, so it can be fuzzed (`fuzz/fuzz_targets/token_reply.rs`).
pub fn parse_token_reply(
    status: u16,
    bytes: &[u8],
    host: &str,
    grant: &Grant<'_>,
    obtained_at: OffsetDateTime,
) -> Result<TokenSet> {
    if (200..300).contains(&status) {
        let r: TokenReply = serde_json::from_slice(bytes).map_err(|_| {
            Error::unavailable(format!(
                "the identity provider at {host} sent a malformed reply (HTTP {status}, not the expected JSON); try again later"
            ))
        })?;
        let access = r.access_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::unavailable(format!("the identity provider at {host} sent a reply without an access token; try again later"))
        })?;
        return Ok(TokenSet {
            access_token: Secret::new(access),
            refresh_token: r.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
            id_token: r.id_token.filter(|t| !t.is_empty()).map(Secret::new),
            expires_in: r.expires_in.unwrap_or(300),
            refresh_expires_in: r.refresh_expires_in.unwrap_or(0),
            obtained_at,
            offline: r
                .scope
                .as_deref()
                .is_some_and(|s| s.split(' ').any(|x| x == "offline_access")),
        });
    }
    let err: Option<ErrorReply> = serde_json::from_slice(bytes).ok();
    let is_refresh = matches!(grant, Grant::Refresh { .. });
    match (status, err) {
        (400 | 401, Some(e)) if e.error == "invalid_grant" => {
            let desc = e.error_description.unwrap_or_else(|| "invalid_grant".into());
            match grant {
                Grant::Refresh { .. } => Err(Error::login_required(format!(
                    "the login session has ended (the identity provider said: {desc}); log in again"
                ))),
                Grant::Code { .. } => Err(Error::login_required(format!(
                    "the identity provider did not accept the browser login's code (it said: {desc}); nothing was written; log in again"
                ))),
                Grant::Device { .. } => Err(Error::login_required(format!(
                    "the identity provider did not accept the device login (it said: {desc}); nothing was written; log in again"
                ))),
                Grant::Password { username, .. } if desc.eq_ignore_ascii_case("Invalid user credentials") || desc == "invalid_grant" => {
                    Err(Error::wrong_credentials(username, &desc))
                }
                Grant::Password { .. } => Err(Error::refused(format!(
                    "the identity provider refused the login: {desc}; sign in once on the web to fix the account, then try again"
                ))),
            }
        }
        (400, Some(e)) if e.error == "expired_token" => Err(Error::login_required(format!(
            "the device code expired before the login was approved ({}); nothing was written; log in again",
            e.error_description.unwrap_or(e.error)
        ))),
        (400 | 403, Some(e)) if e.error == "access_denied" => Err(Error::new(
            crate::ErrorKind::WrongCredentials,
            format!(
                "the login was denied ({}); nothing was written; log in again and approve it",
                e.error_description.unwrap_or(e.error)
            ),
        )),
        (400 | 401, Some(e))
            if e.error == "unauthorized_client"
                && matches!(grant, Grant::Password { .. })
                && e.error_description.as_deref().is_some_and(|d| d.contains("direct access")) =>
        {
            Err(Error::config(format!(
                "the identity provider does not allow password logins for this client (unauthorized_client: {}); log in with your browser: set auth = \"browser\" for the account, or run login --browser (login --device without a browser)",
                e.error_description.unwrap_or_default()
            )))
        }
        (400, Some(e)) if e.error == "not_allowed" => Err(Error::config(format!(
            "the identity provider does not allow offline sessions (\"stay signed in\") for this user or client (not_allowed: {}); set `offline = false` for the account in the config, or ask your administrator",
            e.error_description.unwrap_or_default()
        ))),
        (400, Some(e)) if e.error == "invalid_scope" => Err(Error::config(format!(
            "the identity provider does not allow offline sessions (\"stay signed in\") for this client ({}: {}); set `offline = false` for the account in the config, or ask your administrator to add the offline_access scope to the client",
            e.error,
            e.error_description.unwrap_or_default()
        ))),
        (400 | 401, Some(e)) if e.error == "invalid_client" || e.error == "unauthorized_client" => Err(Error::config(format!(
            "the identity provider does not accept the client id ({}: {}); check client_id in the config",
            e.error,
            e.error_description.unwrap_or_default()
        ))),
        (400, Some(e)) if is_refresh && e.error == "invalid_request" => Err(Error::login_required(format!(
            "the identity provider rejected the saved session ({}); log in again",
            e.error_description.unwrap_or(e.error)
        ))),
        (400..=499, Some(e)) => Err(Error::refused(format!(
            "the identity provider refused the request (HTTP {status}, {}: {})",
            e.error,
            e.error_description.unwrap_or_default()
        ))),
        (404, None) => Err(Error::config(format!(
            "the token endpoint at {host} does not exist (HTTP 404); check token_url / ASTRAN_IDP_URL"
        ))),
        (s, _) if s >= 500 => Err(Error::unavailable(format!(
            "the identity provider at {host} is unavailable (HTTP {s}); try again later"
        ))),
        (s, _) => Err(Error::unavailable(format!(
            "the identity provider at {host} sent an unexpected reply (HTTP {s}); try again later"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw() -> Secret {
        Secret::new("p")
    }

    fn parse(status: u16, body: &str, refresh: bool) -> Result<TokenSet> {
        let p = pw();
        let g = if refresh {
            Grant::Refresh { refresh_token: &p }
        } else {
            Grant::Password {
                username: "a@b.c",
                password: &p,
            }
        };
        parse_token_reply(
            status,
            body.as_bytes(),
            "idp",
            &g,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn keycloak_reply_fields() {
        let t = parse(200, r#"{"access_token":"A","expires_in":300,"refresh_expires_in":1800,"refresh_token":"R","token_type":"Bearer","not-before-policy":0,"session_state":"x","scope":"email"}"#, false).unwrap();
        assert_eq!(t.expires_in, 300);
        assert_eq!(
            t.refresh_expires_at(),
            Some(OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1800))
        );
        let offline = parse(
            200,
            r#"{"access_token":"A","expires_in":300,"refresh_expires_in":0,"refresh_token":"R"}"#,
            false,
        )
        .unwrap();
        assert_eq!(offline.refresh_expires_at(), None);
        assert!(
            !t.offline && !offline.offline,
            "no offline_access in the scope"
        );
        let granted = parse(200, r#"{"access_token":"A","refresh_expires_in":0,"refresh_token":"R","scope":"openid offline_access email profile"}"#, false).unwrap();
        assert!(granted.offline);
        let e = parse(400, r#"{"error":"invalid_scope","error_description":"Invalid scopes: openid offline_access"}"#, false).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.to_string().contains("offline = false"), "{e}");
    }

    #[test]
    fn a_refresh_lifetime_past_year_9999_does_not_panic() {
        // found by fuzz/fuzz_targets/token_reply.rs: the addition overflowed and panicked
        for secs in [
            "18446744073709551615",
            "9223372036854775807",
            "300000000000",
        ] {
            let body = format!(r#"{{"access_token":"A","refresh_expires_in":{secs}}}"#);
            assert_eq!(parse(200, &body, true).unwrap().refresh_expires_at(), None);
        }
    }

    #[test]
    fn invalid_grant_400_and_401_alike() {
        for s in [400, 401] {
            let e = parse(
                s,
                r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
                false,
            )
            .unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::WrongCredentials, "{s}");
            for d in ["Token is not active", "Session not active"] {
                let body = format!(r#"{{"error":"invalid_grant","error_description":"{d}"}}"#);
                let e = parse(s, &body, true).unwrap_err();
                assert_eq!(e.kind(), crate::ErrorKind::LoginRequired);
                assert!(e.to_string().contains(d));
            }
        }
    }

    #[test]
    fn faults_are_unavailable() {
        for (s, b) in [
            (500, "<html>oops</html>"),
            (503, ""),
            (200, "{\"access_tok"),
            (200, ""),
            (200, "{}"),
        ] {
            assert_eq!(
                parse(s, b, false).unwrap_err().kind(),
                crate::ErrorKind::Unavailable,
                "{s} {b}"
            );
        }
        assert_eq!(
            parse(401, r#"{"error":"invalid_client"}"#, false)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Config
        );
    }
}
