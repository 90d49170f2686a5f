//! Test support: runs the real `astran-creds` binary in scratch homes against real servers
//! on 127.0.0.1: the project's Keycloak-faithful test IdP (`astran-test-idp`), moto in server
//! mode for STS/S3, a private D-Bus session bus with gnome-keyring (Secret Service) and a
//! notification server, and the real AWS CLI from the project's venv.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root (these helpers are shared by the packages' test suites).
pub fn root() -> PathBuf {
    let mut p = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !p.join("Cargo.lock").exists() && p.pop() {}
    p
}

pub fn venv_bin(name: &str) -> PathBuf {
    let p = root().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh first",
        p.display()
    );
    p
}

/// Where cargo put this build's binaries (target/<profile>/).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

pub fn astran_creds_bin() -> PathBuf {
    workspace_bin("astran-creds")
}

/// A binary of this workspace, built by `cargo build --workspace`.
pub fn workspace_bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}

pub fn test_idp_bin() -> PathBuf {
    workspace_bin("astran-test-idp")
}

/// An Xvfb display, one per test binary.
pub fn display() -> &'static str {
    static DISPLAY: OnceLock<String> = OnceLock::new();
    DISPLAY.get_or_init(|| {
        for n in 90..130 {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let d = format!(":{n}");
            let child = Command::new("Xvfb")
                .args([
                    d.as_str(),
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                    // no server reset when the last client leaves: xdotool's polling
                    // connects and leaves hundreds of times, and a window connecting
                    // during a reset fails ("Failed to initialize gtk backend!")
                    "-noreset",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is missing: run scripts/setup.sh");
            keep_for_process(child);
            let sock = format!("/tmp/.X11-unix/X{n}");
            wait_for("Xvfb", Duration::from_secs(20), || {
                Path::new(&sock).exists()
            });
            return d;
        }
        panic!("no free X display number");
    })
}

static CHILD_PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_children() {
    if let Ok(pids) = CHILD_PIDS.lock() {
        for pid in pids.iter() {
            unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
        }
    }
}

/// Start a helper that prints `ready` once it serves, wait for that line, and keep it for
/// the rest of the test binary.
fn spawn_ready(mut cmd: Command, what: &str) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    assert_eq!(first_line(&mut child), "ready", "{what}");
    keep_for_process(child);
}

/// The first line a child prints on its piped stdout (servers announce themselves this way),
/// trimmed; the rest of its stdout is not read.
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

/// Keep a process alive for the rest of the test binary; it is killed at exit.
fn keep_for_process(child: Child) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| unsafe {
        libc::atexit(kill_children);
    });
    CHILD_PIDS.lock().unwrap().push(child.id());
    std::mem::forget(child);
}

/// A child killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawn a server that prints `<prefix><address>` on its first stdout line once it serves, and
/// return it (killed on drop) with that address.
pub fn spawn_announcing(cmd: &mut Command, prefix: &str) -> (Guard, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| {
        panic!("cannot start {:?}: {e}", cmd.get_program());
    });
    let line = first_line(&mut child);
    let guard = Guard(child);
    match line.strip_prefix(prefix) {
        Some(addr) => (guard, addr.to_string()),
        None => panic!("{:?} said {line:?}", cmd.get_program()),
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tiny HTTP/1.1 client for the test servers' control endpoints.
pub fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    raw_http(
        host,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// One request, written as given (any headers), to `addr`; the reply's status and body.
pub fn raw_http(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

// ---------------------------------------------------------------------------------------

/// moto in server mode (STS, S3), one per test binary.
pub fn moto_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let port = free_port();
        let child = Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        keep_for_process(child);
        let url = format!("http://127.0.0.1:{port}");
        wait_for("moto", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        url
    })
}

/// moto that checks every signature and knows Astran's root account
/// (`tests/support/moto_astran.py`): IAM, S3 and STS for the permanent keys, where a deleted
/// or wrong key must be refused. One per scene (IAM's two keys per user are per moto), killed
/// when dropped; faults through [`MotoIam::faults`].
pub struct MotoIam {
    pub url: String,
    faults: PathBuf,
    _guard: Guard,
    _dir: tempfile::TempDir,
}

impl MotoIam {
    pub fn start() -> MotoIam {
        let dir = tempfile::tempdir().unwrap();
        let faults = dir.path().join("faults.json");
        let port = free_port();
        let child = Command::new(venv_bin("python"))
            .arg(root().join("tests/support/moto_astran.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ASTRAN_FAULTS", &faults)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_astran.py");
        let guard = Guard(child);
        wait_for("moto (signatures checked)", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        MotoIam {
            url: format!("http://127.0.0.1:{port}"),
            faults,
            _guard: guard,
            _dir: dir,
        }
    }

    /// Set the faults (see moto_astran.py); `{}` clears them.
    pub fn faults(&self, json: serde_json::Value) {
        std::fs::write(&self.faults, json.to_string()).unwrap();
    }
}

/// The private session bus (with gnome-keyring and a notification server), one per test
/// binary.
pub struct Bus {
    pub address: String,
    pub runtime_dir: PathBuf,
    pub home: PathBuf,
    pub notifications: PathBuf,
}

pub fn bus() -> &'static Bus {
    static BUS: OnceLock<Bus> = OnceLock::new();
    BUS.get_or_init(|| {
        let base = tempfile::Builder::new()
            .prefix("astran-bus")
            .tempdir()
            .unwrap()
            .keep();
        let runtime_dir = base.join("run");
        let home = base.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&runtime_dir).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&runtime_dir).unwrap().permissions(),
            0o700,
        );
        std::fs::set_permissions(
            &runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1", "--nopidfile"])
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon (apt install dbus)");
        let address = first_line(&mut dbus);
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        keep_for_process(dbus);

        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon (apt install gnome-keyring)");
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"test-keyring-password")
            .unwrap();
        keep_for_process(keyring);

        let notifications = base.join("notifications.jsonl");
        let mut notifyd = Command::new(venv_bin("python"));
        notifyd
            .arg(root().join("tests/support/notifyd.py"))
            .arg(&notifications)
            .env("DBUS_SESSION_BUS_ADDRESS", &address);
        spawn_ready(notifyd, "the notification server");

        // gnome-keyring takes its bus name asynchronously.
        wait_for("gnome-keyring on the bus", Duration::from_secs(20), || {
            Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
                .unwrap_or(false)
        });
        Bus {
            address,
            runtime_dir,
            home,
            notifications,
        }
    })
}

/// Notifications seen so far whose summary or body mentions `needle`.
pub fn notifications_about(needle: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(&bus().notifications).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["summary"].as_str().unwrap_or("").contains(needle)
                || v["body"].as_str().unwrap_or("").contains(needle)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

/// One test IdP process.
pub struct Idp {
    pub base: String,
    pub token_url: String,
    _guard: Guard,
}

impl Idp {
    /// `users`: `email:password:role1,role2`; extra flags as the binary takes them.
    pub fn start(users: &[&str], extra: &[&str]) -> Idp {
        let mut cmd = Command::new(test_idp_bin());
        cmd.args(["--bind", "127.0.0.1:0"]);
        for u in users {
            cmd.args(["--user", u]);
        }
        if !extra.contains(&"--sts-upstream") {
            // STS goes through the IdP's front: faults on demand, and the secrets scan
            // learns every STS secret
            cmd.args(sts_front_args());
        }
        cmd.args(extra).stderr(Stdio::null());
        let (guard, base) = spawn_announcing(&mut cmd, "listening on ");
        let token_url = format!("{base}/auth/realms/root-accounts/protocol/openid-connect/token");
        Idp {
            base,
            token_url,
            _guard: guard,
        }
    }

    pub fn control(&self, path: &str, body: &str) -> String {
        let (status, body) = http("POST", &format!("{}/__test/{path}", self.base), body);
        assert!((200..300).contains(&status), "{path}: HTTP {status} {body}");
        body
    }

    pub fn fault(&self, mode: &str) {
        self.control("fault", &format!(r#"{{"mode":"{mode}"}}"#));
    }

    pub fn stats(&self) -> serde_json::Value {
        let (_, body) = http("GET", &format!("{}/__test/stats", self.base), "");
        serde_json::from_str(&body).unwrap()
    }

    /// The IdP's STS front (`POST /sts`, forwarding to moto unless a fault is set).
    pub fn sts_url(&self) -> String {
        format!("{}/sts", self.base)
    }

    pub fn sts_fault(&self, mode: &str) {
        self.control("sts-fault", &format!(r#"{{"mode":"{mode}"}}"#));
    }

    /// Every token the IdP issued and every STS secret that went through its front.
    pub fn issued(&self) -> Vec<String> {
        let (_, body) = http("GET", &format!("{}/__test/issued", self.base), "");
        serde_json::from_str(&body).unwrap_or_default()
    }

    pub fn sts_stats(&self) -> serde_json::Value {
        let (_, body) = http("GET", &format!("{}/__test/sts-stats", self.base), "");
        serde_json::from_str(&body).unwrap()
    }
}

/// The `--sts-upstream` flag that makes the IdP's STS front forward to moto.
pub fn sts_front_args() -> [String; 2] {
    ["--sts-upstream".into(), format!("{}/", moto_url())]
}

pub const EMAIL: &str = "demo@astran.io";
pub const PASSWORD: &str = "PASSWORD123-s3cret";

pub fn role(n: u32) -> String {
    format!("arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced8001{n}:root")
}

/// A scratch user: its own HOME, credentials file, config and keyring namespace.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub creds: PathBuf,
    pub aws_config: PathBuf,
    pub config: PathBuf,
    pub keyring_service: String,
    pub idp: Idp,
    pub sts: String,
    pub extra_env: Vec<(String, String)>,
    /// `ASTRAN_LOG_FILE` of every program started in the scene (trace level).
    pub log_file: PathBuf,
    /// stdout and stderr of the runs, for the secrets scan.
    outputs: Mutex<Vec<(String, String)>>,
    /// Secrets the scene learnt besides the IdP's and STS's (a permanent key's).
    extra_secrets: Mutex<Vec<String>>,
}

impl Env {
    pub fn new(idp: Idp) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("astran-test")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Env {
            creds: home.join(".aws/credentials"),
            aws_config: home.join(".aws/config"),
            config: home.join(".config/astran-tray/config.toml"),
            keyring_service: format!("astran-test-{}-{n}", std::process::id()),
            home,
            log_file: dir.path().join("logs/astran.log"),
            sts: idp.sts_url(),
            idp,
            dir,
            extra_env: Vec::new(),
            outputs: Mutex::new(Vec::new()),
            extra_secrets: Mutex::new(Vec::new()),
        }
    }

    /// One more secret for the scan at the end of the scene.
    pub fn add_secret(&self, s: &str) {
        self.extra_secrets.lock().unwrap().push(s.to_owned());
    }

    /// Write the scene's config file (`config.toml`).
    pub fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.config.parent().unwrap()).unwrap();
        std::fs::write(&self.config, text).unwrap();
    }

    /// What the scene's programs logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// The default scene: one user with one role.
    pub fn standard() -> Env {
        Env::new(Idp::start(
            &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
            &[],
        ))
    }

    pub fn with_env(mut self, k: &str, v: &str) -> Env {
        self.extra_env.push((k.into(), v.into()));
        self
    }

    /// On the test display, as the windows need it (WebKit without DMA-BUF, no
    /// accessibility bus).
    pub fn on_display(self) -> Env {
        self.with_env("DISPLAY", display())
            .with_env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            .with_env("NO_AT_BRIDGE", "1")
    }

    /// Any program with the scene's environment (home, bus, files, keyring namespace).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        self.base_env(&mut c);
        c
    }

    /// The scene's control socket (one per scene, so agents of parallel tests never meet).
    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("run/agent.sock")
    }

    fn base_env(&self, c: &mut Command) {
        let bus = bus();
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_RUNTIME_DIR", &bus.runtime_dir)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.creds)
            .env("AWS_CONFIG_FILE", &self.aws_config)
            .env("ASTRAN_KEYRING_SERVICE", &self.keyring_service)
            .env("ASTRAN_CONTROL_SOCKET", self.control_socket())
            .env("RUST_LOG", "trace")
            .env("ASTRAN_LOG_FILE", &self.log_file);
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
    }

    /// `astran-creds` with the scene's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command(astran_creds_bin());
        c.env("ASTRAN_IDP_URL", &self.idp.token_url)
            .env("ASTRAN_STS_ENDPOINT", &self.sts)
            .env("ASTRAN_HTTP_TIMEOUT_SECS", "3")
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_command(self.cmd(args), args, stdin)
    }

    /// Run `c` (made by [`Env::cmd`] with `args`, then adjusted by the test) as [`Env::run`]
    /// does: `stdin` written, the output kept for the secrets scan.
    pub fn run_command(&self, mut c: Command, args: &[&str], stdin: Option<&str>) -> Output {
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            // a program that refuses its arguments exits before it reads: no broken pipe here
            match child.stdin.take().unwrap().write_all(s.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r.unwrap(),
            }
        }
        let o = child.wait_with_output().unwrap();
        // credential-process and export print secrets on stdout: that is their job
        let stdout = if matches!(args.first(), Some(&"credential-process") | Some(&"export")) {
            String::new()
        } else {
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        self.outputs.lock().unwrap().push((
            format!("{args:?}"),
            stdout + &String::from_utf8_lossy(&o.stderr),
        ));
        o
    }

    pub fn login(&self, extra: &[&str]) -> Output {
        let mut args = vec!["login", "--email", EMAIL, "--password-stdin"];
        args.extend_from_slice(extra);
        self.run(&args, Some(&format!("{PASSWORD}\n")))
    }

    /// The real AWS CLI with the scene's credentials and config files.
    pub fn aws(&self, args: &[&str]) -> Output {
        let mut c = Command::new(venv_bin("aws"));
        self.base_env(&mut c);
        c.env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin_dir().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .args(args)
            .output()
            .unwrap()
    }

    /// `aws --profile P --endpoint-url <moto> s3 mb s3://BUCKET`, the tutorial's proof.
    pub fn s3_mb(&self, profile: &str, bucket: &str) -> Output {
        self.aws(&[
            "--profile",
            profile,
            "--endpoint-url",
            moto_url(),
            "s3",
            "mb",
            &format!("s3://{bucket}"),
        ])
    }

    /// Wait until `profile`'s access key is no longer `old` (a renewal was written).
    pub fn wait_for_new_key(&self, profile: &str, old: &str, what: &str, within: Duration) {
        wait_for(what, within, || {
            self.profile_value(profile, "aws_access_key_id")
                .is_some_and(|k| k != old)
        });
    }

    pub fn creds_text(&self) -> String {
        std::fs::read_to_string(&self.creds).unwrap_or_default()
    }

    pub fn profile_value(&self, profile: &str, key: &str) -> Option<String> {
        let text = self.creds_text();
        let mut in_p = false;
        for l in text.lines() {
            let t = l.trim();
            if t.starts_with('[') {
                in_p = t == format!("[{profile}]");
            } else if in_p {
                if let Some((k, v)) = t.split_once('=') {
                    if k.trim() == key {
                        return Some(v.trim().to_string());
                    }
                }
            }
        }
        None
    }

    pub fn status_json(&self) -> serde_json::Value {
        let o = self.run(&["status", "--json"], None);
        assert!(
            o.status.success(),
            "status: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// The secrets scan: when a scene ends, no password, token or STS secret it saw may appear
/// in its logs (trace level), its runs' output (but credential-process/export stdout), or any
/// file it left, the credentials file aside.
impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let mut secrets: Vec<String> = self.idp.issued();
        secrets.push(PASSWORD.to_string());
        secrets.extend(self.extra_secrets.lock().unwrap().iter().cloned());
        secrets.retain(|s| s.len() >= 12);
        let creds = std::fs::canonicalize(&self.creds).ok();
        let mut found = Vec::new();
        let mut check = |what: &str, bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            for s in &secrets {
                if text.contains(s.as_str()) {
                    found.push(format!("{what} holds a secret starting {:?}", &s[..8]));
                }
            }
        };
        for (args, out) in self.outputs.lock().unwrap().iter() {
            check(
                &format!("the output of astran-creds {args}"),
                out.as_bytes(),
            );
        }
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(ft) = e.file_type() else { continue };
                let p = e.path();
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() && Some(&p) != creds.as_ref() {
                    if let Ok(bytes) = std::fs::read(&p) {
                        check(&format!("{}", p.display()), &bytes);
                    }
                }
            }
        }
        assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    }
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn assert_ok(o: &Output, what: &str) {
    let (out, err) = text(o);
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {out}\nstderr: {err}",
        o.status.code()
    );
}

pub fn file_mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------
// The tray: a StatusNotifierWatcher on the shared bus, and helpers to read and click menus.

/// Starts (once) the test StatusNotifier host; returns the file where it records items.
pub fn sni_watcher() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let b = bus();
        let file = b.runtime_dir.join("sni-items.jsonl");
        let mut host = Command::new(venv_bin("python"));
        host.arg(root().join("tests/support/sni_host.py"))
            .arg("watch")
            .arg(&file)
            .env("DBUS_SESSION_BUS_ADDRESS", &b.address);
        spawn_ready(host, "the StatusNotifier host");
        file
    })
}

/// The bus name of the tray item registered by process `pid`, if any.
pub fn tray_service(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(sni_watcher()).unwrap_or_default();
    let prefix = format!("org.kde.StatusNotifierItem-{pid}-");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["service"].as_str().map(str::to_owned))
        .find(|s| s.starts_with(&prefix))
}

fn sni(args: &[&str]) -> Output {
    Command::new(venv_bin("python"))
        .arg(root().join("tests/support/sni_host.py"))
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus().address)
        .output()
        .unwrap()
}

/// The item's properties and menu layout.
pub fn tray_menu(service: &str) -> serde_json::Value {
    let o = sni(&["menu", service]);
    assert_ok(&o, "read the tray menu");
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Labels of the menu (depth first), with "(disabled)" marks.
pub fn menu_labels(menu: &serde_json::Value) -> Vec<String> {
    fn walk(n: &serde_json::Value, out: &mut Vec<String>) {
        for c in n["children"].as_array().into_iter().flatten() {
            let label = c["label"].as_str().unwrap_or("").replace('_', "");
            if c["type"] != "separator" {
                let mut l = label;
                if c["enabled"] == false {
                    l.push_str(" (disabled)");
                }
                if c["toggle_state"] == 1 {
                    l.push_str(" [x]");
                }
                out.push(l);
            }
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    walk(&menu["layout"], &mut out);
    out
}

pub fn tray_click(service: &str, label: &str) {
    let o = sni(&["click", service, label]);
    assert_ok(&o, &format!("click {label}"));
}

/// A Python checker in the venv (`tests/support/<script>`) that takes one JSON request per
/// line and answers `{"ok": bool, "why": str or null}` per line; ended with its input.
pub struct PyChecker {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl PyChecker {
    pub fn start(script: &str) -> PyChecker {
        let mut child = Command::new(venv_bin("python"))
            .arg(root().join("tests/support").join(script))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the checker (run scripts/setup.sh for the venv)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        PyChecker {
            child,
            stdin: Some(stdin),
            stdout,
        }
    }

    /// Why the checker refused `req`, or `None`.
    pub fn ask(&mut self, req: &serde_json::Value) -> Option<String> {
        writeln!(self.stdin.as_mut().unwrap(), "{req}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let reply: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("checker said {line:?}: {e}"));
        reply["why"].as_str().map(String::from)
    }
}

impl Drop for PyChecker {
    fn drop(&mut self) {
        // end of input: the checker exits and removes its scratch folder
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
