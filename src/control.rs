//! The local control socket: how the login/settings window (and the CLI) talk to the process
//! that owns the session (the tray agent, or `astran-creds daemon`). A Unix socket under
//! `$XDG_RUNTIME_DIR/astran-tray/` in a 0700 folder, mode 0600, peers of another user refused
//! (SO_PEERCRED). One JSON request per line, one JSON reply per line. It also makes the owner
//! single-instance: a second one finds the socket answering and stops.

use crate::config::{self, AccountConfig};
use crate::error::{Error, ErrorKind, Result, WireError};
use crate::secret::Secret;
use crate::session::{LoginRequest, Session};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Ping,
    Status,
    Login {
        #[serde(default)]
        account: Option<String>,
        email: String,
        password: Secret,
        #[serde(default)]
        role_arn: Option<String>,
        #[serde(default)]
        remember_password: Option<bool>,
    },
    Refresh {
        #[serde(default)]
        account: Option<String>,
    },
    Logout {
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        remove_profile: bool,
    },
    /// Re-read config and keyring (after a login made elsewhere).
    Reload,
    GetSettings,
    SaveSettings {
        account: String,
        settings: AccountConfig,
        #[serde(default)]
        make_default: bool,
    },
    /// Ask the owner to show its login window (a second start of the tray).
    ShowLogin {
        #[serde(default)]
        account: Option<String>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

impl Reply {
    pub fn ok(v: impl Serialize) -> Reply {
        Reply {
            ok: true,
            result: Some(serde_json::to_value(v).unwrap_or_default()),
            error: None,
        }
    }

    pub fn err(e: &Error) -> Reply {
        Reply {
            ok: false,
            result: None,
            error: Some(e.to_wire()),
        }
    }

    pub fn into_result(self) -> Result<serde_json::Value> {
        if self.ok {
            return Ok(self.result.unwrap_or_default());
        }
        let e = self.error.unwrap_or(WireError {
            kind: ErrorKind::Unavailable,
            message: "the agent sent an error without details".into(),
            roles: None,
        });
        Err(Error::from_wire(e))
    }
}

/// The socket path: `ASTRAN_CONTROL_SOCKET`, else `$XDG_RUNTIME_DIR/astran-tray/agent.sock`,
/// else `/tmp/astran-tray-<uid>/agent.sock`.
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ASTRAN_CONTROL_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(d) => PathBuf::from(d).join("astran-tray"),
        None => std::env::temp_dir().join(format!("astran-tray-{}", uid())),
    };
    dir.join("agent.sock")
}

fn uid() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    }
    #[cfg(not(unix))]
    0
}

/// What serves requests.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>>;
}

/// Send one request and wait for the reply.
pub async fn call(path: &Path, req: &Request, timeout: Duration) -> Result<serde_json::Value> {
    let fut = async {
        let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
            Error::Unavailable(format!(
                "the astran-tray agent is not running ({}: {e})",
                path.display()
            ))
        })?;
        let (r, mut w) = stream.into_split();
        let mut line = zeroize::Zeroizing::new(
            serde_json::to_string(req)
                .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))?,
        );
        line.push('\n');
        w.write_all(line.as_bytes())
            .await
            .map_err(|e| Error::io("cannot talk to the agent", e))?;
        let mut reply = String::new();
        BufReader::new(r)
            .read_line(&mut reply)
            .await
            .map_err(|e| Error::io("cannot read the agent's reply", e))?;
        let reply: Reply = serde_json::from_str(&reply)
            .map_err(|_| Error::Unavailable("the agent sent a malformed reply".into()))?;
        reply.into_result()
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Error::Unavailable("the astran-tray agent did not answer in time".into()))?
}

/// Tell a running owner to re-read config and keyring; silent when none runs.
pub async fn notify_reload() {
    let _ = call(&socket_path(), &Request::Reload, Duration::from_millis(500)).await;
}

/// A bound control socket.
pub struct Server {
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

/// Bind the socket; `Ok(None)` when another owner already answers on it.
pub async fn bind(path: &Path) -> Result<Option<Server>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    prepare_dir(dir)?;
    if path.exists() {
        if call(path, &Request::Ping, Duration::from_secs(2))
            .await
            .is_ok()
        {
            return Ok(None);
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| {
        Error::io(
            format!("cannot create the control socket {}", path.display()),
            e,
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(Some(Server {
        listener,
        path: path.to_path_buf(),
    }))
}

fn prepare_dir(dir: &Path) -> Result<()> {
    crate::credfile::create_private_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let m = std::fs::metadata(dir)
            .map_err(|e| Error::io(format!("cannot inspect {}", dir.display()), e))?;
        if m.uid() != uid() {
            return Err(Error::LocalIo(format!(
                "{} belongs to another user; refusing to put the control socket there",
                dir.display()
            )));
        }
        if m.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("cannot restrict {}", dir.display()), e))?;
        }
    }
    Ok(())
}

impl Server {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serve until the task is dropped. Each connection is handled on its own task; a bad
    /// client gets an error reply and is closed, never a crash.
    pub async fn serve(self, handler: Arc<dyn Handler>) {
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let h = handler.clone();
            tokio::spawn(async move {
                if let Err(e) = serve_conn(stream, h).await {
                    log::debug!("control socket: connection ended: {e}");
                }
            });
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_conn(stream: tokio::net::UnixStream, h: Arc<dyn Handler>) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let (r, mut w) = stream.into_split();
    if cred.uid() != uid() {
        log::warn!(
            "control socket: refused a connection from uid {}",
            cred.uid()
        );
        let reply = Reply::err(&Error::Refused(
            "connections from other users are refused".into(),
        ));
        w.write_all(format!("{}\n", serde_json::to_string(&reply).unwrap_or_default()).as_bytes())
            .await?;
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
            let reply = Reply::err(&Error::Config(format!(
                "request longer than {MAX_REQUEST} bytes"
            )));
            w.write_all(
                format!("{}\n", serde_json::to_string(&reply).unwrap_or_default()).as_bytes(),
            )
            .await?;
            return Ok(());
        }
        reader.set_limit(MAX_REQUEST as u64 + 1);
        let reply = match serde_json::from_slice::<Request>(&line) {
            Ok(req) => h.handle(req).await,
            Err(e) => Reply::err(&Error::Config(format!(
                "malformed request: {}",
                redact_serde(&e)
            ))),
        };
        let mut out = serde_json::to_string(&reply).unwrap_or_default();
        out.push('\n');
        w.write_all(out.as_bytes()).await?;
    }
}

/// serde_json messages can quote input; keep only the category and position.
fn redact_serde(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
    .to_lowercase()
}

/// A hook called with each successful login.
pub type OnLogin = Box<dyn Fn(&crate::session::LoginOutcome) + Send + Sync>;

/// The standard handler: the session facade plus a hook to wake the scheduler.
pub struct SessionHandler {
    pub session: Arc<Session>,
    /// Called after anything that changes what the scheduler should do.
    pub on_change: Box<dyn Fn() + Send + Sync>,
    /// Called for `ShowLogin` (the tray opens its login window); `None`: not supported.
    pub on_show_login: Option<Box<dyn Fn(Option<String>) + Send + Sync>>,
    /// Called after a successful login through the socket (the tray's notification).
    pub on_login: Option<OnLogin>,
}

impl Handler for SessionHandler {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
        Box::pin(async move {
            match req {
                Request::Ping => Reply::ok(serde_json::json!({"pid": std::process::id()})),
                Request::Status => match self.session.status().await {
                    Ok(s) => Reply::ok(serde_json::json!({"version": 1, "accounts": s})),
                    Err(e) => Reply::err(&e),
                },
                Request::Login {
                    account,
                    email,
                    password,
                    role_arn,
                    remember_password,
                } => {
                    let r = self
                        .session
                        .login(LoginRequest {
                            account,
                            email: Some(email),
                            password: Some(password),
                            role_arn,
                            remember_password,
                            ..Default::default()
                        })
                        .await;
                    (self.on_change)();
                    match r {
                        Ok(o) => {
                            if let Some(f) = &self.on_login {
                                f(&o);
                            }
                            Reply::ok(o)
                        }
                        Err(e) => Reply::err(&e),
                    }
                }
                Request::Refresh { account } => {
                    let r = self.session.refresh(account.as_deref()).await;
                    (self.on_change)();
                    match r {
                        Ok(o) => Reply::ok(o),
                        Err(e) => Reply::err(&e),
                    }
                }
                Request::Logout {
                    account,
                    remove_profile,
                } => {
                    let r = self
                        .session
                        .logout(account.as_deref(), remove_profile)
                        .await;
                    (self.on_change)();
                    match r {
                        Ok(name) => Reply::ok(serde_json::json!({"account": name})),
                        Err(e) => Reply::err(&e),
                    }
                }
                Request::Reload => {
                    (self.on_change)();
                    Reply::ok(serde_json::json!({}))
                }
                Request::GetSettings => match self.session.config() {
                    Ok(cfg) => {
                        let name = cfg.pick_name(None);
                        let resolved = cfg.account(&name);
                        Reply::ok(serde_json::json!({
                            "config": cfg,
                            "default_account": name,
                            "defaults": {
                                "token_url": config::DEFAULT_TOKEN_URL,
                                "client_id": config::DEFAULT_CLIENT_ID,
                                "profile": config::DEFAULT_PROFILE,
                                "duration_seconds": config::DEFAULT_DURATION,
                                "notice_lead_seconds": config::DEFAULT_NOTICE_LEAD,
                            },
                            "email": resolved.email,
                            "config_path": self.session.config_path,
                        }))
                    }
                    Err(e) => Reply::err(&e),
                },
                Request::SaveSettings {
                    account,
                    settings,
                    make_default,
                } => {
                    let r =
                        save_settings(&self.session.config_path, &account, settings, make_default);
                    (self.on_change)();
                    match r {
                        Ok(()) => Reply::ok(serde_json::json!({})),
                        Err(e) => Reply::err(&e),
                    }
                }
                Request::ShowLogin { account } => match &self.on_show_login {
                    Some(f) => {
                        f(account);
                        Reply::ok(serde_json::json!({}))
                    }
                    None => Reply::err(&Error::Config("this agent has no login window".into())),
                },
            }
        })
    }
}

fn save_settings(path: &Path, account: &str, s: AccountConfig, make_default: bool) -> Result<()> {
    if account.trim().is_empty() || account.contains(['.', '[', ']', '"', '\n']) {
        return Err(Error::Config(format!(
            "{account:?} is not a usable account name"
        )));
    }
    for (what, url) in [
        ("token endpoint", &s.token_url),
        ("STS endpoint", &s.sts_endpoint),
    ] {
        if let Some(u) = url.as_deref().filter(|u| !u.is_empty()) {
            crate::http::check_endpoint(what, u)?;
        }
    }
    if let Some(d) = s.duration_seconds {
        config::check_duration(d)?;
    }
    let clean = |o: Option<String>| o.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let s = AccountConfig {
        email: clean(s.email),
        token_url: clean(s.token_url),
        client_id: clean(s.client_id),
        sts_endpoint: clean(s.sts_endpoint),
        role_arn: clean(s.role_arn),
        region: clean(s.region),
        profile: clean(s.profile),
        ..s
    };
    config::update_account(path, account, |a| *a = s)?;
    if make_default {
        config::set_default_account(path, account)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Handler for Echo {
        fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
            Box::pin(async move {
                match req {
                    Request::Ping => Reply::ok("pong"),
                    _ => Reply::err(&Error::Config("no".into())),
                }
            })
        }
    }

    #[tokio::test]
    async fn serves_refuses_garbage_and_stays_single() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/agent.sock");
        let server = bind(&path).await.unwrap().unwrap();
        #[cfg(unix)]
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
        assert_eq!(
            call(&path, &Request::Ping, Duration::from_secs(2))
                .await
                .unwrap(),
            "pong"
        );
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
        assert_eq!(
            call(&path, &Request::Ping, Duration::from_secs(2))
                .await
                .unwrap(),
            "pong"
        );
        task.abort();
    }
}
