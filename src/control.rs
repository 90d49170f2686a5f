//! The control channel: one line of JSON each way per request, at most [`MAX_REQUEST`]
//! bytes a request, over the platform's local transport: a Unix socket under
//! `$XDG_RUNTIME_DIR/astran-tray/` in a 0700 folder, mode 0600, peers of another user refused
//! (SO_PEERCRED), in `control/unix.rs`; a named pipe whose access list admits the current
//! user alone, in `control/windows.rs`. The messages are [`crate::protocol`]'s; who answers
//! them is [`crate::owner`]'s. It also makes the owner single-instance: a second one finds the
//! channel answering and stops.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as transport;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as transport;

use crate::error::{Error, Result};
use crate::keys::{KeyDeleted, KeyWritten, KeysReport};
use crate::protocol::{
    parse_request, Done, EventsReport, LoggedOut, LoginBegun, Overview, Pong, Reply, Request,
    Response, Settings, StatusReport, WindowKind, MAX_REQUEST,
};
use crate::session::{LoginOutcome, RefreshOutcome};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// What serves requests.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Result<Response>> + Send + '_>>;
}

/// A client of the control socket: one connection per call, typed replies.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
}

/// How long quick requests may take (ping, status, settings).
pub const QUICK: Duration = Duration::from_secs(5);

/// How long a permanent-key request may take: a renewal, IAM's retries, and a new key proved
/// for up to a minute while IAM spreads it.
pub const KEYS: Duration = Duration::from_secs(150);

impl Client {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Client { path: path.into() }
    }

    /// The socket of this session (`ASTRAN_CONTROL_SOCKET`, `$XDG_RUNTIME_DIR/...`).
    pub fn from_env() -> Self {
        Client::new(crate::paths::control_socket())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Send one request and wait for its typed reply.
    pub async fn call<T: DeserializeOwned>(&self, req: &Request, timeout: Duration) -> Result<T> {
        let path = &self.path;
        let fut = async {
            let stream = transport::connect(path).await.map_err(|e| {
                Error::unavailable(format!(
                    "the astran-tray agent is not running ({}: {e})",
                    path.display()
                ))
                .with_source(e)
            })?;
            let (r, mut w) = tokio::io::split(stream);
            w.write_all(request_line(req)?.as_bytes())
                .await
                .map_err(|e| Error::io("cannot talk to the agent", e))?;
            let mut reply = String::new();
            BufReader::new(r)
                .read_line(&mut reply)
                .await
                .map_err(|e| Error::io("cannot read the agent's reply", e))?;
            typed_reply(&reply)
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::unavailable("the astran-tray agent did not answer in time"))?
    }

    pub async fn ping(&self, timeout: Duration) -> Result<Pong> {
        self.call(&Request::Ping, timeout).await
    }

    pub async fn status(&self) -> Result<StatusReport> {
        self.call(&Request::Status, QUICK).await
    }

    pub async fn login(&self, req: Request, timeout: Duration) -> Result<LoginOutcome> {
        self.call(&req, timeout).await
    }

    pub async fn refresh(
        &self,
        account: Option<String>,
        timeout: Duration,
    ) -> Result<RefreshOutcome> {
        self.call(&Request::Refresh { account }, timeout).await
    }

    pub async fn logout(&self, account: Option<String>, remove_profile: bool) -> Result<LoggedOut> {
        self.call(
            &Request::Logout {
                account,
                remove_profile,
            },
            QUICK,
        )
        .await
    }

    pub async fn reload(&self, timeout: Duration) -> Result<Done> {
        self.call(&Request::Reload, timeout).await
    }

    pub async fn get_settings(&self) -> Result<Settings> {
        self.call(&Request::GetSettings, QUICK).await
    }

    pub async fn save_settings(&self, req: Request) -> Result<Done> {
        self.call(&req, QUICK).await
    }

    pub async fn show_login(&self, account: Option<String>) -> Result<Done> {
        self.call(&Request::ShowLogin { account }, QUICK).await
    }

    pub async fn keys_list(&self, account: Option<String>) -> Result<KeysReport> {
        self.call(&Request::KeysList { account }, KEYS).await
    }

    pub async fn keys_create(
        &self,
        account: Option<String>,
        profile: Option<String>,
    ) -> Result<KeyWritten> {
        self.call(&Request::KeysCreate { account, profile }, KEYS)
            .await
    }

    pub async fn keys_rotate(
        &self,
        account: Option<String>,
        profile: Option<String>,
    ) -> Result<KeyWritten> {
        self.call(&Request::KeysRotate { account, profile }, KEYS)
            .await
    }

    /// Begin a browser or device login in the owner.
    pub async fn login_begin(&self, req: Request) -> Result<LoginBegun> {
        // the owner reaches the IdP first (and asks for a device code)
        self.call(&req, Duration::from_secs(60)).await
    }

    /// Wait for the login begun for `account`; `timeout` is the login's own wait plus a margin.
    pub async fn login_wait(
        &self,
        account: Option<String>,
        timeout: Duration,
    ) -> Result<LoginOutcome> {
        self.call(&Request::LoginWait { account }, timeout).await
    }

    pub async fn login_cancel(&self, account: Option<String>) -> Result<Done> {
        self.call(&Request::LoginCancel { account }, QUICK).await
    }

    pub async fn overview(&self) -> Result<Overview> {
        self.call(&Request::Overview, QUICK).await
    }

    pub async fn events(
        &self,
        account: Option<String>,
        limit: Option<usize>,
    ) -> Result<EventsReport> {
        self.call(&Request::Events { account, limit }, QUICK).await
    }

    pub async fn show(&self, window: WindowKind, account: Option<String>) -> Result<Done> {
        self.call(&Request::Show { window, account }, QUICK).await
    }

    /// The owner may renew first (a network call): as long as a refresh may take.
    pub async fn copy_export(&self, account: Option<String>, timeout: Duration) -> Result<Done> {
        self.call(&Request::CopyExport { account }, timeout).await
    }

    pub async fn keys_delete(&self, account: Option<String>, key_id: String) -> Result<KeyDeleted> {
        self.call(&Request::KeysDelete { account, key_id }, KEYS)
            .await
    }
}

/// A request as its line on the socket (it may hold a secret: zeroed when dropped).
fn request_line(req: &Request) -> Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(serde_json::to_string(req).map_err(|e| {
        Error::unavailable(format!("cannot encode the request: {e}")).with_source(e)
    })?);
    line.push('\n');
    Ok(line)
}

/// A reply line's typed result, or the error as the owner raised it.
fn typed_reply<T: DeserializeOwned>(line: &str) -> Result<T> {
    let reply: Reply = serde_json::from_str(line)
        .map_err(|_| Error::unavailable("the agent sent a malformed reply"))?;
    reply.into_typed()
}

/// A blocking connection to this user's owner (another user's socket is refused).
#[cfg(target_os = "linux")]
fn connect_blocking(path: &Path) -> Result<std::os::unix::net::UnixStream> {
    let unavailable = |e: std::io::Error| Error::io("cannot talk to the agent", e);
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(unavailable)?;
    let peer = rustix::net::sockopt::socket_peercred(&stream).map_err(|e| unavailable(e.into()))?;
    if peer.uid.as_raw() != crate::paths::uid() {
        return Err(Error::unavailable(format!(
            "the control socket {} is another user's",
            path.display()
        )));
    }
    Ok(stream)
}

/// One request and its reply line on a blocking connection. `Err`: the request could not be
/// sent or no reply came (the connection failed or was closed): the transport's failure, not
/// the owner's answer.
#[cfg(target_os = "linux")]
fn send_blocking(
    stream: &std::os::unix::net::UnixStream,
    req: &Request,
    timeout: Duration,
) -> Result<zeroize::Zeroizing<String>> {
    use std::io::{BufRead, Write};
    let unavailable = |e: std::io::Error| Error::io("cannot talk to the agent", e);
    stream
        .set_read_timeout(Some(timeout))
        .map_err(unavailable)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(unavailable)?;
    let mut out = stream;
    out.write_all(request_line(req)?.as_bytes())
        .map_err(unavailable)?;
    let mut reply = zeroize::Zeroizing::new(String::new());
    std::io::BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(unavailable)?;
    if reply.is_empty() {
        return Err(Error::unavailable("the agent closed the connection"));
    }
    Ok(reply)
}

/// One request and its typed reply on a blocking connection.
#[cfg(target_os = "linux")]
fn exchange_blocking<T: DeserializeOwned>(
    stream: &std::os::unix::net::UnixStream,
    req: &Request,
    timeout: Duration,
) -> Result<T> {
    typed_reply(&send_blocking(stream, req, timeout)?)
}

/// A command's password login made by the running owner, when its setup is the command's
/// (`Session::setup_fingerprint`): a warm process with its keyring open makes it, the command
/// only asks for the password and says the outcome. One connection: `login_check`, then
/// `login` with its ticket. Blocking: the command starts no runtime for it.
#[cfg(target_os = "linux")]
pub struct OwnerLogin {
    path: PathBuf,
    setup: String,
    /// The connection `check` opened, for the login.
    stream: Option<std::os::unix::net::UnixStream>,
}

#[cfg(target_os = "linux")]
impl OwnerLogin {
    pub fn new(setup: String) -> Self {
        OwnerLogin {
            path: crate::paths::control_socket(),
            setup,
            stream: None,
        }
    }

    /// The account checked by the owner (`login_check`) before the password is asked for.
    /// Any failure, a refusal among them, means: log in here, which says it again if it is
    /// the account's. With the email and password in `req` (read before the check), a
    /// password account's login is made at once and its outcome is in the reply (`login`,
    /// `login_error`); without them, or from an owner that predates that, the reply has a
    /// ticket for [`OwnerLogin::login`].
    pub fn check(
        &mut self,
        req: &crate::session::LoginRequest,
    ) -> Result<crate::protocol::LoginChecked> {
        let at_once = req.email.is_some() && req.password.is_some();
        let req = Request::LoginCheck {
            setup: self.setup.clone(),
            account: req.account.clone(),
            profile: req.profile.clone(),
            duration_seconds: req.duration_seconds.map(|d| d.seconds()),
            force: req.force,
            email: req.email.clone().filter(|_| at_once),
            password: req.password.clone().filter(|_| at_once),
            role_arn: req.role_arn.clone().filter(|_| at_once),
        };
        let stream = connect_blocking(&self.path)?;
        // a login made at once takes as long as the IdP and STS; a check alone is quick
        let timeout = Duration::from_secs(if at_once { 600 } else { 5 });
        let checked: crate::protocol::LoginChecked = exchange_blocking(&stream, &req, timeout)?;
        if checked.login.is_some() || checked.login_error.is_some() {
            log::debug!("the login is made by the running agent");
        }
        self.stream = Some(stream);
        Ok(checked)
    }

    /// The login (`login` with the setup and the check's ticket), on the check's connection
    /// or, when that one is gone (the owner closes an idle one after five minutes), a new
    /// one. `Err(None)`: the owner could not be reached, so the command makes the login
    /// itself; `Err(Some(e))`: the login's error, as the owner said it.
    pub fn login(
        &mut self,
        req: crate::session::LoginRequest,
        ticket: Option<String>,
    ) -> std::result::Result<LoginOutcome, Option<Error>> {
        let email = req
            .email
            .ok_or_else(|| Some(Error::config("no email for the login")))?;
        let password = req
            .password
            .ok_or_else(|| Some(Error::config("no password given")))?;
        let req = Request::Login {
            account: req.account,
            email,
            password,
            role_arn: req.role_arn,
            remember_password: req.remember_password,
            profile: req.profile,
            duration_seconds: req.duration_seconds.map(|d| d.seconds()),
            force: req.force,
            setup: Some(self.setup.clone()),
            ticket,
        };
        log::debug!("the login is made by the running agent");
        // the owner's HTTP timeouts end a hung IdP or STS; this only ends a hung owner
        let timeout = Duration::from_secs(600);
        let kept = self
            .stream
            .take()
            .map(|stream| send_blocking(&stream, &req, timeout));
        let reply = match kept {
            Some(Ok(reply)) => reply,
            _ => {
                let gone = |e: Error| {
                    log::debug!("the running agent is gone ({e}); logging in here");
                    None
                };
                let stream = connect_blocking(&self.path).map_err(gone)?;
                send_blocking(&stream, &req, timeout).map_err(gone)?
            }
        };
        typed_reply(&reply).map_err(Some)
    }
}

/// The running owner's keyring, for a short command's changes (`store::Delegate`): the owner
/// holds its keyring session open, so the command opens none of its own. Blocking (the store
/// is called from blocking threads); only an owner of this user, and only the keyring the
/// command would use itself, are trusted with a change.
#[cfg(target_os = "linux")]
pub struct OwnerKeyring {
    path: PathBuf,
}

#[cfg(target_os = "linux")]
impl OwnerKeyring {
    pub fn from_env() -> Self {
        OwnerKeyring {
            path: crate::paths::control_socket(),
        }
    }

    fn ask<T: DeserializeOwned>(&self, req: &Request, timeout: Duration) -> Result<T> {
        exchange_blocking(&connect_blocking(&self.path)?, req, timeout)
    }

    /// A keyring request about `account`, answered `{}`; any failure is the keyring's being
    /// unavailable here, so the caller makes the change itself. As long as the desktop's
    /// unlock prompt may take.
    fn keyring_request(
        &self,
        account: &str,
        req: impl FnOnce(crate::values::AccountName) -> Request,
    ) -> std::result::Result<(), crate::store::StoreError> {
        let fail = |e: Error| crate::store::StoreError::Unavailable(e.to_string());
        let account = crate::values::AccountName::parse(account).map_err(fail)?;
        self.ask::<Done>(&req(account), Duration::from_secs(120))
            .map(drop)
            .map_err(fail)
    }
}

#[cfg(target_os = "linux")]
impl crate::store::Delegate for OwnerKeyring {
    fn holds(&self, identity: &str) -> bool {
        match self.ask::<Pong>(&Request::Ping, Duration::from_secs(1)) {
            Ok(p) => p.keyring.as_deref() == Some(identity),
            Err(e) => {
                log::debug!("no running agent to change the keyring ({e})");
                false
            }
        }
    }

    fn change(
        &self,
        identity: &str,
        slot: crate::store::Slot,
        account: &str,
        value: Option<&crate::secret::Secret>,
        undoable: bool,
    ) -> std::result::Result<(), crate::store::StoreError> {
        self.keyring_request(account, |account| Request::KeyringChange {
            keyring: identity.to_string(),
            slot,
            account,
            value: value.cloned(),
            undoable,
        })
    }

    fn undo(
        &self,
        identity: &str,
        slot: crate::store::Slot,
        account: &str,
    ) -> std::result::Result<(), crate::store::StoreError> {
        self.keyring_request(account, |account| Request::KeyringUndo {
            keyring: identity.to_string(),
            slot,
            account,
        })
    }
}

/// Tell a running owner to re-read config and keyring; silent when none runs. On Unix its
/// answer is not waited for: it only wakes the owner's scheduler, which re-reads everything
/// itself, and the request is in the socket once written.
pub async fn notify_reload() {
    #[cfg(windows)]
    let _ = Client::from_env().reload(Duration::from_millis(500)).await;
    #[cfg(unix)]
    notify_reload_unanswered().await;
}

#[cfg(unix)]
async fn notify_reload_unanswered() {
    let path = crate::paths::control_socket();
    let send = async {
        let mut stream = transport::connect(&path).await?;
        stream.write_all(b"{\"cmd\":\"reload\"}\n").await?;
        stream.shutdown().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_millis(500), send).await {
        log::debug!("no running agent told to reload ({e})");
    }
}

/// A bound control socket (pipe on Windows).
pub struct Server {
    listener: transport::Listener,
    path: PathBuf,
}

/// Bind the socket; `Ok(None)` when another owner already answers on it.
pub async fn bind(path: &Path) -> Result<Option<Server>> {
    if Client::new(path).ping(Duration::from_secs(2)).await.is_ok() {
        return Ok(None);
    }
    Ok(transport::Listener::bind(path)?.map(|listener| Server {
        listener,
        path: path.to_path_buf(),
    }))
}

impl Server {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serve until the task is dropped. Each connection is handled on its own task; a bad
    /// client gets an error reply and is closed, never a crash.
    pub async fn serve(mut self, handler: Arc<dyn Handler>) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let h = handler.clone();
            tokio::spawn(async move {
                if let Err(e) = serve_conn(stream, peer, h).await {
                    log::debug!("control socket: connection ended: {e}");
                }
            });
        }
    }
}

async fn serve_conn<S>(
    stream: S,
    peer: std::result::Result<(), String>,
    h: Arc<dyn Handler>,
) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin,
{
    let (r, mut w) = tokio::io::split(stream);
    if let Err(who) = peer {
        log::warn!("control socket: refused {who}");
        let reply = Reply::err(&Error::refused("connections from other users are refused"));
        w.write_all(reply.to_line().as_bytes()).await?;
        return Ok(());
    }
    let mut reader = BufReader::new(r).take(MAX_REQUEST as u64 + 1);
    loop {
        let mut line = zeroize::Zeroizing::new(Vec::new());
        let n = tokio::time::timeout(
            Duration::from_secs(300),
            reader.read_until(b'\n', &mut line),
        )
        .await
        .unwrap_or(Ok(0))?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_REQUEST || (!line.ends_with(b"\n") && reader.limit() == 0) {
            let reply = Reply::err(&Error::config(format!(
                "request longer than {MAX_REQUEST} bytes"
            )));
            w.write_all(reply.to_line().as_bytes()).await?;
            return Ok(());
        }
        reader.set_limit(MAX_REQUEST as u64 + 1);
        let reply = match parse_request(&line) {
            Ok(req) => Reply::of(h.handle(req).await),
            Err(e) => Reply::err(&e),
        };
        w.write_all(reply.to_line().as_bytes()).await?;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    struct Echo;
    impl Handler for Echo {
        fn handle(
            &self,
            req: Request,
        ) -> Pin<Box<dyn Future<Output = Result<Response>> + Send + '_>> {
            Box::pin(async move {
                match req {
                    Request::Ping => Ok(Response::Pong(Pong {
                        pid: 7,
                        keyring: None,
                    })),
                    _ => Err(Error::wrong_credentials(
                        "a@b.c",
                        "Invalid user credentials",
                    )),
                }
            })
        }
    }

    #[tokio::test]
    async fn serves_refuses_garbage_and_stays_single() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/agent.sock");
        let server = bind(&path).await.unwrap().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(path.parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700
            );
        }
        let task = tokio::spawn(server.serve(Arc::new(Echo)));
        let client = Client::new(&path);
        assert_eq!(client.ping(Duration::from_secs(2)).await.unwrap().pid, 7);
        // the kind survives the trip
        let e = client.refresh(None, QUICK).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::WrongCredentials);
        assert!(
            bind(&path).await.unwrap().is_none(),
            "second instance sees the first"
        );

        let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{not json\n{\"cmd\":\"nope\",\"password\":\"hunter2\"}\n")
            .await
            .unwrap();
        let mut r = BufReader::new(s);
        for _ in 0..2 {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            let reply: Reply = serde_json::from_str(&line).unwrap();
            assert!(!reply.ok);
            assert!(!line.contains("hunter2"), "{line}");
        }
        let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
        s.write_all(&vec![b'x'; MAX_REQUEST + 10]).await.unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).await.unwrap();
        assert!(line.contains("longer than"), "{line}");
        // still serving
        assert_eq!(client.ping(Duration::from_secs(2)).await.unwrap().pid, 7);
        task.abort();
    }
}
