//! Browser login: OpenID Connect authorization code with PKCE (RFC 7636, `S256`), a `state`
//! and a `nonce` checked on return, and a one-shot redirect listener on `127.0.0.1` with a
//! port the system picks (RFC 8252 §7.3). The URL is opened with `$BROWSER` when set, else
//! the platform's opener. The listener answers the browser with a short page, takes exactly
//! one login reply that carries our `state`, refuses any other request, and closes when the
//! login ends, whichever way: it lives in [`BrowserLogin`] and goes with it.

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The path the browser comes back to.
pub const CALLBACK_PATH: &str = "/callback";

/// How long a browser login waits by default (`ASTRAN_LOGIN_TIMEOUT_SECS`).
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// `ASTRAN_LOGIN_TIMEOUT_SECS`, else 300 s.
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var("ASTRAN_LOGIN_TIMEOUT_SECS") {
        Err(_) => Ok(Duration::from_secs(DEFAULT_TIMEOUT_SECS)),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
            _ => Err(Error::config(format!(
                "ASTRAN_LOGIN_TIMEOUT_SECS={v:?} is not a number of seconds above 0"
            ))),
        },
    }
}

/// PKCE's `S256` challenge of `verifier`.
pub fn challenge(verifier: &Secret) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.expose().as_bytes()))
}

/// The `redirect_uri` of a listener on `port` (RFC 8252 §7.3: the loopback IP literal).
fn redirect_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}{CALLBACK_PATH}")
}

/// What the browser brought back: the code, to exchange with the verifier.
#[derive(Debug)]
pub struct Code {
    pub code: Secret,
    pub redirect_uri: String,
}

/// A browser login in progress: the listener is bound, the URL built.
pub struct BrowserLogin {
    listener: tokio::net::TcpListener,
    port: u16,
    url: reqwest::Url,
    state: Secret,
    nonce: Secret,
    verifier: Secret,
}

impl std::fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLogin")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl BrowserLogin {
    /// Bind the listener and build the authorization URL for `client_id` and `scope`.
    pub async fn start(authorize_url: &str, client_id: &str, scope: &str) -> Result<Self> {
        let mut url = crate::http::check_endpoint("authorization endpoint", authorize_url)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("cannot open the login's redirect listener on 127.0.0.1", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the redirect listener's address", e))?
            .port();
        let (state, nonce, verifier) = (Secret::random(), Secret::random(), Secret::random());
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri(port))
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", state.expose())
            .append_pair("nonce", nonce.expose())
            .append_pair("code_challenge", &challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(BrowserLogin {
            listener,
            port,
            url,
            state,
            nonce,
            verifier,
        })
    }

    /// The URL the user opens.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    pub fn redirect_uri(&self) -> String {
        redirect_uri(self.port)
    }

    pub fn verifier(&self) -> &Secret {
        &self.verifier
    }

    pub fn nonce(&self) -> &Secret {
        &self.nonce
    }

    /// Serve the redirect listener until one login reply arrives, or `timeout`. A reply with
    /// our `state` ends it (a code, or the IdP's error); one with another `state` or none
    /// ends it too (it is not ours: a forged or stale reply), and so does the timeout. Other
    /// requests (a favicon, a reload of a blank page) get a 404 and change nothing.
    pub async fn wait(&self, timeout: Duration) -> Result<Code> {
        let (tx, mut rx) = mpsc::channel::<Result<Secret>>(1);
        let ctx = Arc::new(Ctx {
            state: self.state.clone(),
            hosts: [
                format!("127.0.0.1:{}", self.port),
                format!("localhost:{}", self.port),
            ],
            done: Mutex::new(Some(tx)),
        });
        let accept =
            crate::listen::accept_loop(&self.listener, "login redirect listener", false, {
                let ctx = ctx.clone();
                move |req| {
                    let reply = answer(&ctx, req);
                    async move { reply }
                }
            });
        let outcome = tokio::select! {
            r = rx.recv() => r.unwrap_or_else(|| Err(Error::unavailable("the login's redirect listener stopped"))),
            _ = accept => Err(Error::unavailable("the login's redirect listener stopped")),
            _ = tokio::time::sleep(timeout) => Err(Error::login_required(format!(
                "the browser did not come back within {} seconds; nothing was written; log in again (ASTRAN_LOGIN_TIMEOUT_SECS sets the wait)",
                timeout.as_secs()
            ))),
        };
        // let the browser's connection get its page before the listener goes
        tokio::time::sleep(Duration::from_millis(50)).await;
        outcome.map(|code| Code {
            code,
            redirect_uri: self.redirect_uri(),
        })
    }
}

struct Ctx {
    state: Secret,
    hosts: [String; 2],
    /// Taken by the first login reply: exactly one is accepted.
    done: Mutex<Option<mpsc::Sender<Result<Secret>>>>,
}

impl Ctx {
    fn finish(&self, r: Result<Secret>) -> bool {
        let tx = self.done.lock().unwrap_or_else(|e| e.into_inner()).take();
        match tx {
            Some(tx) => {
                let _ = tx.try_send(r);
                true
            }
            None => false,
        }
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em;line-height:1.5}}\
         @media (prefers-color-scheme: dark){{body{{background:#1e1f22;color:#e6e6e6}}}}</style></head>\
         <body><h1>{t}</h1><p>{x}</p></body></html>",
        t = html_escape(title),
        x = html_escape(text)
    );
    let mut r = Response::new(Full::new(Bytes::from(html)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        "referrer-policy",
        hyper::header::HeaderValue::from_static("no-referrer"),
    );
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What the IdP's `error` means for the user: the kind decides the exit code.
fn idp_error(error: &str, description: Option<&str>) -> Error {
    let said = match description.filter(|d| !d.is_empty()) {
        Some(d) => format!("{error}: {d}"),
        None => error.to_string(),
    };
    let kind = match error {
        "access_denied" => ErrorKind::WrongCredentials,
        "login_required" | "interaction_required" => ErrorKind::LoginRequired,
        "temporarily_unavailable" | "server_error" => ErrorKind::Unavailable,
        "unauthorized_client"
        | "invalid_client"
        | "invalid_scope"
        | "unsupported_response_type" => ErrorKind::Config,
        _ => ErrorKind::Refused,
    };
    let what_to_do = match (kind, error) {
        (_, "invalid_scope") => {
            "if the account asks for an offline session, set `offline = false` for it in the config (or ask your administrator to add the offline_access scope to the client)"
        }
        (ErrorKind::WrongCredentials, _) => "the login was cancelled or denied; log in again",
        (ErrorKind::Config, _) => {
            "check client_id and auth for the account, or ask your administrator"
        }
        (ErrorKind::Unavailable, _) => "try again later",
        _ => "log in again",
    };
    Error::new(
        kind,
        format!("the identity provider ended the browser login ({said}); nothing was written; {what_to_do}"),
    )
}

fn answer(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| ctx.hosts.iter().any(|ours| ours == h)) {
        // no DNS rebinding: a page of another site cannot post to us under its own name
        return page(
            StatusCode::FORBIDDEN,
            "Wrong address",
            "This is not a page.",
        );
    }
    if req.method() != Method::GET || req.uri().path() != CALLBACK_PATH {
        return page(StatusCode::NOT_FOUND, "Not found", "This is not a page.");
    }
    let params: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (code, error) = (get("code"), get("error"));
    if code.is_none() && error.is_none() {
        return page(
            StatusCode::BAD_REQUEST,
            "Not a login reply",
            "This address only takes the identity provider's reply to a login.",
        );
    }
    let state_ok = get("state").is_some_and(|s| {
        let (a, b) = (s.as_bytes(), ctx.state.expose().as_bytes());
        a.len() == b.len() && bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
    });
    let (result, status, title, text) = if !state_ok {
        log::warn!("login redirect listener: a login reply with a wrong or missing state");
        (
            Err(Error::login_required(
                "the browser brought back a login reply that does not belong to this login (wrong or missing state); nothing was written; log in again",
            )),
            StatusCode::BAD_REQUEST,
            "Login failed",
            "This reply does not belong to the login in progress (wrong state). Nothing was changed; start the login again.".to_string(),
        )
    } else if let Some(e) = error {
        let err = idp_error(e, get("error_description"));
        let text = format!("{err}. You can close this tab.");
        (Err(err), StatusCode::OK, "Login failed", text)
    } else {
        (
            Ok(Secret::new(code.unwrap_or_default())),
            StatusCode::OK,
            "Logged in",
            "Logged in; you can close this tab.".to_string(),
        )
    };
    if !ctx.finish(result) {
        return page(
            StatusCode::GONE,
            "Login over",
            "This login is already over. You can close this tab.",
        );
    }
    page(status, title, &text)
}

/// Check the ID token's `nonce` against ours (the token's signature is not checked here:
/// the code came over our loopback listener and the token over TLS from the IdP; STS checks
/// the access token's).
pub fn check_nonce(id_token: Option<&Secret>, nonce: &Secret) -> Result<()> {
    let Some(t) = id_token else {
        // no `openid` scope granted: nothing to compare
        return Ok(());
    };
    let payload = t
        .expose()
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let got = payload
        .as_ref()
        .and_then(|v| v.get("nonce"))
        .and_then(|n| n.as_str());
    match got {
        Some(n) if n == nonce.expose() => Ok(()),
        _ => Err(Error::refused(
            "the identity provider's ID token does not carry this login's nonce (a replayed or forged login); nothing was written; log in again",
        )),
    }
}

/// Open `url` in the user's browser: `$BROWSER` when set (a `:`-separated list of commands,
/// `%s` replaced by the URL or the URL appended, as xdg-open and Python's webbrowser read
/// it), else the platform's opener. The program is started, not waited for.
pub fn open(url: &str) -> Result<()> {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let commands: Vec<Vec<String>> = match &browser {
        Some(b) => b
            .split(':')
            .filter(|c| !c.trim().is_empty())
            .map(|c| {
                let mut words: Vec<String> = c.split_whitespace().map(str::to_owned).collect();
                if words.iter().any(|w| w.contains("%s")) {
                    for w in &mut words {
                        *w = w.replace("%s", url);
                    }
                } else {
                    words.push(url.to_owned());
                }
                words
            })
            .collect(),
        None => vec![platform_opener(url)],
    };
    let mut last = None;
    for c in commands {
        let Some((prog, args)) = c.split_first() else {
            continue;
        };
        match std::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
        {
            Ok(mut child) => {
                // reaped in the background; its exit says nothing about the login
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                return Ok(());
            }
            Err(e) => last = Some(format!("{prog}: {e}")),
        }
    }
    Err(Error::config(format!(
        "cannot open a browser ({}); open the address printed above yourself, or use --no-browser",
        last.unwrap_or_else(|| "BROWSER names no program".into())
    )))
}

fn platform_opener(url: &str) -> Vec<String> {
    if cfg!(target_os = "macos") {
        vec!["open".into(), url.into()]
    } else if cfg!(windows) {
        vec![
            "cmd".into(),
            "/C".into(),
            "start".into(),
            "".into(),
            url.into(),
        ]
    } else {
        vec!["xdg-open".into(), url.into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let v = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge(&v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let r = Secret::random();
        assert_eq!(r.expose().len(), 43);
        assert_ne!(r, Secret::random());
    }

    async fn get(port: u16, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        (status, out)
    }

    fn state_of(l: &BrowserLogin) -> String {
        l.url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned()
    }

    #[tokio::test]
    async fn one_reply_with_our_state_ends_it_and_strays_change_nothing() {
        let l = BrowserLogin::start("http://127.0.0.1:9/auth", "c", "openid")
            .await
            .unwrap();
        let q: Vec<(String, String)> = l.url.query_pairs().into_owned().collect();
        let names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "client_id",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method"
            ]
        );
        let (port, state) = (l.port, state_of(&l));
        let browser = tokio::spawn(async move {
            assert_eq!(get(port, "/favicon.ico").await.0, 404);
            assert_eq!(get(port, "/callback").await.0, 400);
            let (s, body) = get(port, &format!("/callback?state={state}&code=abc")).await;
            assert_eq!(s, 200);
            assert!(body.contains("you can close this tab"), "{body}");
        });
        let code = l.wait(Duration::from_secs(10)).await.unwrap();
        assert_eq!(code.code.expose(), "abc");
        assert_eq!(
            code.redirect_uri,
            format!("http://127.0.0.1:{port}/callback")
        );
        browser.await.unwrap();
        drop(l);
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "nothing is left listening"
        );
    }

    #[tokio::test]
    async fn a_wrong_state_an_error_and_the_timeout_end_it_with_their_kind() {
        let l = BrowserLogin::start("http://127.0.0.1:9/auth", "c", "openid")
            .await
            .unwrap();
        let port = l.port;
        tokio::spawn(async move { get(port, "/callback?state=forged&code=abc").await });
        let e = l.wait(Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LoginRequired);
        assert!(e.to_string().contains("wrong or missing state"), "{e}");

        let l = BrowserLogin::start("http://127.0.0.1:9/auth", "c", "openid")
            .await
            .unwrap();
        let (port, state) = (l.port, state_of(&l));
        tokio::spawn(async move {
            get(
                port,
                &format!(
                    "/callback?error=access_denied&error_description=User+cancelled&state={state}"
                ),
            )
            .await
        });
        let e = l.wait(Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WrongCredentials);
        assert!(e.to_string().contains("User cancelled"), "{e}");

        let l = BrowserLogin::start("http://127.0.0.1:9/auth", "c", "openid")
            .await
            .unwrap();
        let e = l.wait(Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LoginRequired);
        assert!(e.to_string().contains("did not come back"), "{e}");
    }

    #[test]
    fn exactly_one_reply_is_taken() {
        let (tx, mut rx) = mpsc::channel(1);
        let ctx = Ctx {
            state: Secret::new("s"),
            hosts: [String::new(), String::new()],
            done: Mutex::new(Some(tx)),
        };
        assert!(ctx.finish(Ok(Secret::new("first"))));
        assert!(!ctx.finish(Ok(Secret::new("second"))));
        assert_eq!(rx.try_recv().unwrap().unwrap().expose(), "first");
    }

    #[test]
    fn the_nonce_must_match() {
        let enc = |v: serde_json::Value| {
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            Secret::new(format!("e30.{}.sig", b.encode(v.to_string())))
        };
        let n = Secret::new("n1");
        assert!(check_nonce(Some(&enc(serde_json::json!({"nonce": "n1"}))), &n).is_ok());
        assert!(check_nonce(Some(&enc(serde_json::json!({"nonce": "n2"}))), &n).is_err());
        assert!(check_nonce(Some(&enc(serde_json::json!({}))), &n).is_err());
        assert!(check_nonce(None, &n).is_ok());
    }

    #[test]
    fn errors_from_the_idp_have_their_kind() {
        assert_eq!(
            idp_error("access_denied", None).kind(),
            ErrorKind::WrongCredentials
        );
        assert_eq!(
            idp_error("unauthorized_client", Some("x")).kind(),
            ErrorKind::Config
        );
        assert_eq!(idp_error("weird", None).kind(), ErrorKind::Refused);
        assert!(idp_error("invalid_scope", Some("Invalid scopes: openid"))
            .to_string()
            .contains("Invalid scopes"));
    }
}
