//! Logins beyond the root password, as `impl Session`: in the browser (authorization code +
//! PKCE, [`crate::browser`]) and with a device code ([`crate::device`]). Two steps, so a
//! shell can show the prompt in between: [`Session::begin_login`] checks everything it can
//! and binds the redirect listener (or asks for the device code); [`Session::finish_login`]
//! waits for the user, exchanges what came back, and ends like a password login (role, STS,
//! profile, session kept). Dropping a [`PendingLogin`] cancels it: its listener goes with it.

use crate::browser::{self, BrowserLogin};
use crate::config::{Account, AuthKind};
use crate::error::{Error, Result};
use crate::idp::{self, DeviceAuthorization};
use crate::session::{idp_settings, LoginOutcome, LoginRequest, Session};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;

/// What the user is to do while a login waits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoginPrompt {
    /// Open this address (the authorization request) and sign in.
    Browser { url: String },
    /// Open the verification address on any device and enter the code (or open the complete
    /// address, which carries it).
    Device {
        verification_uri: String,
        verification_uri_complete: Option<String>,
        user_code: String,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
}

impl LoginPrompt {
    /// The address to open (for the device: the one that carries the code, if given).
    pub fn address(&self) -> &str {
        match self {
            LoginPrompt::Browser { url } => url,
            LoginPrompt::Device {
                verification_uri,
                verification_uri_complete,
                ..
            } => verification_uri_complete
                .as_deref()
                .unwrap_or(verification_uri),
        }
    }
}

enum Waiting {
    Browser(BrowserLogin),
    Device(DeviceAuthorization),
}

/// A login begun and waiting for the user.
pub struct PendingLogin {
    acct: Account,
    req: LoginRequest,
    prompt: LoginPrompt,
    waiting: Waiting,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("account", &self.acct.name)
            .field("prompt", &self.prompt)
            .finish_non_exhaustive()
    }
}

impl PendingLogin {
    pub fn prompt(&self) -> &LoginPrompt {
        &self.prompt
    }

    pub fn account(&self) -> &str {
        &self.acct.name
    }
}

/// How long a probe of the authorization endpoint may take.
const PROBE: Duration = Duration::from_secs(15);

impl Session {
    /// The login kind of `account` (its `auth`), unless the caller chose one.
    pub async fn auth_kind(&self, account: Option<&str>) -> Result<AuthKind> {
        Ok(self.account(account).await?.auth)
    }

    /// Begin a browser or device login: every check of a password login first (profile
    /// names, the user's sections of `~/.aws/config`), then the IdP reached, then the
    /// listener bound or the device code obtained. Nothing is written.
    pub async fn begin_login(&self, req: LoginRequest, auth: AuthKind) -> Result<PendingLogin> {
        let acct = self.prepare_login(&req, false).await?;
        let http = self.http(&acct)?;
        let settings = idp_settings(&acct);
        let scope = idp::login_scope(acct.offline);
        let (prompt, waiting) = match auth {
            AuthKind::Password => {
                return Err(Error::config(
                    "a password login is not begun and finished; use `login` with the password",
                ))
            }
            AuthKind::Browser => {
                let url = acct.authorize_url.clone().ok_or_else(|| {
                    Error::config(format!(
                        "account {}: the token URL {} does not end in /token, so the authorization endpoint cannot be derived; set authorize_url",
                        acct.name, acct.token_url
                    ))
                })?;
                // an unreachable IdP is said now, not after the browser shows an error page
                let probe = tokio::time::timeout(PROBE, http.get(url.url().clone()).send()).await;
                match probe {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        return Err(crate::http::describe_send_error(
                            "the authorization endpoint",
                            url.url(),
                            &e,
                        ))
                    }
                    Err(_) => {
                        return Err(Error::unavailable(format!(
                            "the authorization endpoint {url} did not answer within {} seconds; try again later",
                            PROBE.as_secs()
                        )))
                    }
                }
                let b = BrowserLogin::start(url.as_str(), &acct.client_id, scope).await?;
                (
                    LoginPrompt::Browser {
                        url: b.url().to_owned(),
                    },
                    Waiting::Browser(b),
                )
            }
            AuthKind::Device => {
                let url = acct.device_url.clone().ok_or_else(|| {
                    Error::config(format!(
                        "account {}: the token URL {} does not end in /token, so the device authorization endpoint cannot be derived; set device_url",
                        acct.name, acct.token_url
                    ))
                })?;
                let d = self
                    .idp(http)
                    .device_authorization(&settings, url.as_str())
                    .await?;
                let expires_at = self.clock().now()
                    + time::Duration::seconds(i64::try_from(d.expires_in).unwrap_or(600));
                (
                    LoginPrompt::Device {
                        verification_uri: d.verification_uri.clone(),
                        verification_uri_complete: d.verification_uri_complete.clone(),
                        user_code: d.user_code.clone(),
                        expires_at,
                    },
                    Waiting::Device(d),
                )
            }
        };
        Ok(PendingLogin {
            acct,
            req,
            prompt,
            waiting,
        })
    }

    /// Wait for the user (a browser login at most `timeout`; a device login until its code
    /// expires), exchange what came back for tokens, then role → STS → profile → session.
    pub async fn finish_login(&self, p: PendingLogin, timeout: Duration) -> Result<LoginOutcome> {
        let (name, how) = (
            p.acct.name.to_string(),
            match &p.waiting {
                Waiting::Browser(_) => "browser",
                Waiting::Device(_) => "device",
            },
        );
        let r = self.wait_login(p, timeout).await;
        self.note_login(Some(&name), how, &r).await;
        r
    }

    async fn wait_login(&self, p: PendingLogin, timeout: Duration) -> Result<LoginOutcome> {
        let http = self.http(&p.acct)?;
        let settings = idp_settings(&p.acct);
        let idp = self.idp(http);
        let tokens = match &p.waiting {
            Waiting::Browser(b) => {
                let code = b.wait(timeout).await?;
                let tokens = idp
                    .code_grant(&settings, &code.code, b.verifier(), &code.redirect_uri)
                    .await?;
                browser::check_nonce(tokens.id_token.as_ref(), b.nonce())?;
                tokens
            }
            Waiting::Device(d) => crate::device::wait(&idp, &settings, d).await?,
        };
        // the listener closes before the slower half of the login
        drop(p.waiting);
        self.complete_login(p.acct, &p.req, None, tokens, None)
            .await
    }
}
