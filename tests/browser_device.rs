//! Logins beyond the root password, end to end: `login --browser` (authorization code +
//! PKCE, state, nonce, a one-shot loopback listener) with a scripted browser as `$BROWSER`
//! that fills the test IdP's login form as a person would, and `login --device` (RFC 8628)
//! with the same script approving the code on the IdP's device page. The IdP's client
//! forbids the password grant, as a company realm's does.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn script() -> String {
    root()
        .join("tests/support/scripted_browser.py")
        .display()
        .to_string()
}

/// A company realm: no password grant, a fast device interval.
fn scene(extra: &[&str], config: &str) -> Env {
    let mut flags = vec!["--no-direct-access-grants", "--device-interval", "1"];
    flags.extend_from_slice(extra);
    let env = Env::new(Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
        &flags,
    ));
    env.write_config(&format!(
        "[accounts.default]\nduration_seconds = 900\n{config}"
    ));
    let log = env.dir.path().join("logs/browser.log");
    env.with_env("BROWSER", &script())
        .with_env("SCRIPTED_EMAIL", EMAIL)
        .with_env("SCRIPTED_PASSWORD", PASSWORD)
        .with_env("SCRIPTED_LOG", &log.display().to_string())
}

fn browser_log(env: &Env) -> String {
    std::fs::read_to_string(env.dir.path().join("logs/browser.log")).unwrap_or_default()
}

fn with_action(env: Env, action: &str) -> Env {
    env.with_env("SCRIPTED_ACTION", action)
}

/// Nothing of the login was written.
fn nothing_written(env: &Env) {
    assert!(!env.creds.exists(), "a credentials file was written");
    assert!(!env.aws_config.exists(), "~/.aws/config was written");
}

#[test]
fn a_browser_login_writes_the_profile_and_refreshes_like_a_password_login() {
    let env = scene(&[], "");
    // the control: this client refuses the password grant, in words that say what to do
    let o = env.login(&[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Client not allowed for direct access grants") && err.contains("--browser"),
        "{err}"
    );
    nothing_written(&env);

    let o = env.run(&["login", "--browser"], None);
    assert_ok(&o, "login --browser");
    let (out, err) = text(&o);
    assert!(out.contains("profile astran: role"), "{out}");
    assert!(
        err.contains("/protocol/openid-connect/auth?client_id=root-client"),
        "{err}"
    );
    let log = browser_log(&env);
    assert!(log.contains("Logged in; you can close this tab"), "{log}");
    let st = env.status_json();
    assert_eq!(st["accounts"][0]["email"], EMAIL, "{st}");
    assert_eq!(st["accounts"][0]["state"], "fresh", "{st}");
    assert_eq!(env.idp.stats()["code_grants"], 1);
    assert_ok(&env.s3_mb("astran", "browser-login"), "aws s3 mb");
    // the session renews exactly as a password login's
    let before = env.profile_value("astran", "aws_access_key_id").unwrap();
    assert_ok(&env.run(&["refresh"], None), "refresh");
    assert_ne!(
        env.profile_value("astran", "aws_access_key_id").unwrap(),
        before
    );
}

#[test]
fn auth_browser_in_the_config_makes_plain_login_a_browser_login() {
    let env = with_action(scene(&[], "auth = \"browser\"\n"), "stray-then-login");
    // strays (a favicon, a bare /callback) are refused and the real reply still lands
    let o = env.run(&["login"], None);
    assert_ok(&o, "login with auth = browser");
    let log = browser_log(&env);
    assert!(log.contains("404") && log.contains("400"), "{log}");
    assert!(env.profile_value("astran", "aws_session_token").is_some());
}

/// Beside a running owner with the command's setup, a plain `login` of an account whose
/// `auth` is the browser is still the command's browser login (the owner makes password
/// logins only), even with `--email` and `--password-stdin`.
#[test]
fn beside_a_running_owner_an_auth_browser_account_still_logs_in_with_the_browser() {
    let env = scene(&[], "auth = \"browser\"\n");
    let mut daemon = env.cmd(&["daemon", "--notify", "log"]);
    daemon.stdout(Stdio::null()).stderr(Stdio::null());
    let _daemon = Guard(daemon.spawn().unwrap());
    wait_for(
        "the daemon's control socket",
        Duration::from_secs(10),
        || env.control_socket().exists(),
    );
    let o = env.login(&[]);
    assert_ok(&o, "login with auth = browser beside the owner");
    assert!(
        !env.log_text()
            .contains("the login is made by the running agent"),
        "{}",
        env.log_text()
    );
    assert!(!browser_log(&env).is_empty(), "the browser was not used");
    assert!(env.profile_value("astran", "aws_session_token").is_some());
}

/// A `login` started with its stderr read line by line.
struct Reading {
    child: Child,
    stderr: std::thread::JoinHandle<String>,
}

impl Reading {
    /// Its exit status, stdout and whole stderr.
    fn finish(self) -> (Option<i32>, String, String) {
        let o = self.child.wait_with_output().unwrap();
        let err = self.stderr.join().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            err,
        )
    }
}

/// Start `astran-creds args`; the first stderr line that holds `needle`.
fn start_reading(env: &Env, args: &[&str], needle: &'static str) -> (Reading, String) {
    let mut child = env
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(line.trim().to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no line with {needle:?}"));
    (Reading { child, stderr }, line)
}

fn run_script(env: &Env, action: &str, url: &str) -> std::process::Output {
    let o = env
        .command(script())
        .env("SCRIPTED_ACTION", action)
        .arg(url)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?} {}", o.status, browser_log(env));
    o
}

#[test]
fn no_browser_only_prints_the_address() {
    let marker = tempfile::tempdir().unwrap();
    let opened = marker.path().join("opened");
    let env = scene(&[], "").with_env("BROWSER", &format!("touch {}", opened.display()));
    let (child, url) = start_reading(
        &env,
        &["login", "--no-browser"],
        "/protocol/openid-connect/auth?",
    );
    run_script(&env, "login", &url);
    let (code, _, err) = child.finish();
    assert_eq!(code, Some(0), "login --no-browser: {err}");
    assert!(!opened.exists(), "--no-browser started $BROWSER");
    assert!(env.profile_value("astran", "aws_access_key_id").is_some());
}

#[test]
fn a_reply_with_a_wrong_state_is_refused_and_nothing_is_written() {
    let env = with_action(scene(&[], ""), "wrong-state");
    let o = env.run(&["login", "--browser"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("wrong or missing state"), "{err}");
    assert!(
        browser_log(&env).contains("wrong state"),
        "{}",
        browser_log(&env)
    );
    nothing_written(&env);
    assert_eq!(env.idp.stats()["code_grants"], 0, "the code was not used");
}

#[test]
fn a_cancelled_login_says_so_with_the_idps_words() {
    let env = with_action(scene(&[], ""), "cancel");
    let o = env.run(&["login", "--browser"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("access_denied"), "{err}");
    nothing_written(&env);
}

#[test]
fn a_browser_that_never_comes_back_times_out_and_leaves_nothing_listening() {
    let env = with_action(scene(&[], ""), "never").with_env("ASTRAN_LOGIN_TIMEOUT_SECS", "2");
    let (child, url) = start_reading(
        &env,
        &["login", "--browser"],
        "/protocol/openid-connect/auth?",
    );
    let started = Instant::now();
    let redirect = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let listener = redirect
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(listener.starts_with("127.0.0.1:"), "{redirect}");
    assert!(
        std::net::TcpStream::connect(&listener).is_ok(),
        "the listener is up while the login waits"
    );
    let (code, _, err) = child.finish();
    assert_eq!(code, Some(4), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(&listener).is_err(),
        "something still listens on {listener}"
    );
    nothing_written(&env);
}

#[test]
fn a_code_used_by_someone_else_first_is_refused_by_the_idp() {
    // a program that caught the code and redeemed it without the verifier: Keycloak marks
    // the code used before it checks PKCE, so ours is refused too ("Code not valid")
    let env = with_action(scene(&[], ""), "steal-code");
    let o = env.run(&["login", "--browser"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("Code not valid"), "{err}");
    let log = browser_log(&env);
    assert!(
        log.contains("PKCE code verifier not specified"),
        "the thief's try: {log}"
    );
    nothing_written(&env);
}

#[test]
fn an_unreachable_authorization_endpoint_is_said_before_anything_listens() {
    let port = free_port();
    let env = scene(
        &[],
        &format!(
            "authorize_url = \"http://127.0.0.1:{port}/realms/x/protocol/openid-connect/auth\"\n"
        ),
    )
    .with_env("BROWSER", "false");
    let o = env.run(&["login", "--browser"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("authorization endpoint"), "{err}");
    assert!(!err.contains("open this address"), "{err}");
    nothing_written(&env);
}

#[test]
fn an_offline_browser_session_outlives_sso_max() {
    let env = scene(&["--sso-idle", "2", "--sso-max", "3"], "offline = true\n");
    assert_ok(&env.run(&["login", "--browser"], None), "login --browser");
    assert_eq!(env.status_json()["accounts"][0]["offline_session"], true);
    std::thread::sleep(Duration::from_secs(4));
    assert_ok(&env.run(&["refresh"], None), "refresh past SSO max");
}

#[test]
fn a_device_login_prints_the_code_and_polls_until_approved() {
    let env = scene(&[], "");
    let (child, line) = start_reading(&env, &["login", "--device"], "/device?user_code=");
    let url = line.trim().to_owned();
    run_script(&env, "device-approve", &url);
    let (code, out, err) = child.finish();
    assert_eq!(code, Some(0), "login --device: {err}");
    assert!(out.contains("profile astran: role"), "{out}");
    assert!(err.contains("check that it shows the code"), "{err}");
    // not a terminal: no QR code
    assert!(!err.contains('█') && !err.contains('▀'), "{err}");
    assert_eq!(env.idp.stats()["device_grants"], 1);
    assert_ok(&env.s3_mb("astran", "device-login"), "aws s3 mb");
    let before = env.profile_value("astran", "aws_access_key_id").unwrap();
    assert_ok(&env.run(&["refresh"], None), "refresh");
    assert_ne!(
        env.profile_value("astran", "aws_access_key_id").unwrap(),
        before
    );
}

#[test]
fn a_denied_device_login_exits_3_and_an_expired_one_4() {
    let env = scene(&[], "auth = \"device\"\n");
    let (child, url) = start_reading(&env, &["login"], "/device?user_code=");
    run_script(&env, "device-deny", url.trim());
    let (code, _, err) = child.finish();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("denied"), "{err}");
    nothing_written(&env);

    let env = scene(&["--device-lifespan", "2"], "auth = \"device\"\n");
    let o = env.run(&["login"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("expired"), "{err}");
    nothing_written(&env);
}

#[test]
fn a_realm_without_the_device_grant_says_so() {
    let env = scene(&["--no-device-grant"], "");
    let o = env.run(&["login", "--device"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("device logins") && err.contains("auth = \"browser\""),
        "{err}"
    );
    nothing_written(&env);
}

#[test]
fn a_system_config_can_make_every_account_log_in_with_the_browser() {
    // IT pushes auth = "browser" and locks it: the user's "password" is ignored, with a word
    let env = scene(&[], "auth = \"password\"\n");
    let sys = env.dir.path().join("system.toml");
    std::fs::write(
        &sys,
        "locked = [\"auth\"]\n[defaults]\nauth = \"browser\"\n",
    )
    .unwrap();
    let env = env.with_env("ASTRAN_SYSTEM_CONFIG", &sys.display().to_string());
    let o = env.run(&["login"], None);
    assert_ok(&o, "login under a locked auth = browser");
    let said = env.log_text();
    assert!(
        said.contains("`auth` in your config file is ignored"),
        "{said}"
    );
    assert_eq!(env.idp.stats()["code_grants"], 1);
    let o = env.run(&["config", "show", "--json"], None);
    assert_ok(&o, "config show");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let auth = doc["accounts"][0]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "auth")
        .unwrap()
        .clone();
    assert_eq!(auth["value"], "browser", "{auth}");
    assert_eq!(auth["source"], "system", "{auth}");
    assert_eq!(auth["locked"], true, "{auth}");
    assert_eq!(auth["ignored"], "password", "{auth}");
}

#[test]
fn a_device_login_polls_five_seconds_slower_after_slow_down() {
    let env = scene(&[], "");
    let (child, url) = start_reading(&env, &["login", "--device"], "/device?user_code=");
    // the next poll is told to slow down: the one after comes 1 + 5 s later, not 1 s
    env.idp
        .control("fault", r#"{"mode":"slow_down","count":1}"#);
    wait_for(
        "the poll told to slow down",
        Duration::from_secs(10),
        || env.idp.stats()["faults_injected"] == 1,
    );
    let asked = Instant::now();
    run_script(&env, "device-approve", url.trim());
    let (code, _, err) = child.finish();
    assert_eq!(code, Some(0), "{err}");
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(5),
        "polled again after {took:?}"
    );
    assert!(
        env.log_text().contains("poll more slowly: every 6 s"),
        "{}",
        env.log_text()
    );
}

#[test]
fn a_realm_that_refuses_offline_access_in_the_browser_says_how_to_turn_it_off() {
    let env = scene(&["--no-offline-scope"], "offline = true\n");
    let o = env.run(&["login", "--browser"], None);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid_scope") && err.contains("offline = false"),
        "{err}"
    );
    nothing_written(&env);
}
