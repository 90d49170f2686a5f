//! `login --browser` / `login --device` (or an account with `auth = "browser"`/`"device"`):
//! the prompt on stderr between the core's two steps.

use astran_creds::browser;
use astran_creds::config::AuthKind;
use astran_creds::device;
use astran_creds::error::Result;
use astran_creds::login::LoginPrompt;
use astran_creds::session::{LoginOutcome, LoginRequest, Session};
use std::io::IsTerminal;

pub async fn interactive(
    session: &Session,
    req: LoginRequest,
    auth: AuthKind,
    open_browser: bool,
) -> Result<LoginOutcome> {
    let timeout = browser::timeout_from_env()?;
    let pending = session.begin_login(req, auth).await?;
    match pending.prompt() {
        LoginPrompt::Browser { url } => {
            eprintln!("To log in, open this address in your browser:\n\n  {url}\n");
            if open_browser {
                if let Err(e) = browser::open(url) {
                    eprintln!("astran-creds: {e}");
                }
            }
            eprintln!(
                "Waiting for the browser to come back (up to {} s; Ctrl-C to stop)…",
                timeout.as_secs()
            );
        }
        LoginPrompt::Device {
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_at,
        } => {
            let address = verification_uri_complete
                .as_deref()
                .unwrap_or(verification_uri);
            eprintln!(
                "To log in, open this address on any device (a phone will do):\n\n  {address}\n\nand check that it shows the code  {user_code}\n(or open {verification_uri} and enter the code).\n"
            );
            if std::io::stderr().is_terminal() {
                if let Some(qr) = device::qr_text(address) {
                    eprintln!("{qr}");
                }
            }
            eprintln!(
                "Waiting for the login to be approved (the code expires at {}; Ctrl-C to stop)…",
                astran_creds::clock::rfc3339(*expires_at)
            );
        }
    }
    session.finish_login(pending, timeout).await
}
