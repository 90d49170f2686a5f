//! The login and permanent-key windows end to end: WebDriver (tauri-driver + WebKitWebDriver,
//! under Xvfb) on the real Tauri window, talking to a running agent, which talks to the test
//! IdP and moto.
// Linux only: a private D-Bus session, Xvfb, WebKitWebDriver.
#![cfg(target_os = "linux")]

#[path = "../../tests/common/mod.rs"]
mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn tauri_driver() -> std::path::PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo")
        });
    let p = home.join("bin/tauri-driver");
    assert!(p.exists(), "tauri-driver is missing: run scripts/setup.sh");
    p
}

#[test]
fn login_window_shows_errors_then_logs_in_and_closes() {
    let env = Env::standard().on_display();
    // the agent owns the session
    let _agent = start_agent(&env);

    let (_driver, port) = start_driver(&env);

    let shots = env.dir.path().join("shots");
    let o = webdriver_script(&env, "webdriver_login.py", port, "astran-tray-window")
        .args(["--email", EMAIL, "--password", PASSWORD])
        .args(["--creds", env.creds.to_str().unwrap()])
        .args(["--shots", shots.to_str().unwrap()])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "webdriver run failed:\n{out}\n{err}");
    let seen: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    eprintln!("{seen}");
    assert_eq!(seen["title"], "Log in to Astran");
    assert!(
        seen["wrong_password_error"]
            .as_str()
            .unwrap()
            .starts_with("Wrong email or password"),
        "{seen}"
    );
    // the kind crosses agent -> socket -> window unchanged (it used to arrive as "refused")
    assert_eq!(seen["wrong_password_kind"], "wrong_credentials", "{seen}");
    assert_eq!(seen["file_unchanged"], true);
    assert_eq!(seen["closed"], true);

    let key = env
        .profile_value("astran", "aws_access_key_id")
        .expect("profile written");
    assert!(key.starts_with("ASIA"));
    let b = format!("window-{}", std::process::id());
    let mb = env.s3_mb("astran", &b);
    assert_ok(&mb, "aws s3 mb with the profile written through the window");

    // the README's screenshots are refreshed by this run
    if std::env::var_os("ASTRAN_UPDATE_SCREENSHOTS").is_some() {
        let dest = root().join("docs/screenshots");
        std::fs::create_dir_all(&dest).unwrap();
        for f in ["login.png", "login-wrong-password.png"] {
            std::fs::copy(shots.join(f), dest.join(f)).unwrap();
        }
    }
}

/// The agent that owns the scene's session (the windows talk to it).
fn start_agent(env: &Env) -> Guard {
    let mut agent = env.command(workspace_bin("astran-tray"));
    agent
        .env("ASTRAN_IDP_URL", &env.idp.token_url)
        .env("ASTRAN_STS_ENDPOINT", &env.sts)
        .env("ASTRAN_HTTP_TIMEOUT_SECS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let guard = Guard(agent.spawn().unwrap());
    wait_for("the agent's socket", Duration::from_secs(20), || {
        env.control_socket().exists()
    });
    guard
}

/// A WebDriver script of `tests/support` for the driver on `port`, whose application is the
/// workspace program `app`.
fn webdriver_script(env: &Env, script: &str, port: u16, app: &str) -> Command {
    let mut c = env.command(venv_bin("python"));
    c.arg(root().join("tests/support").join(script))
        .args(["--driver", &format!("http://127.0.0.1:{port}")])
        .args(["--app", workspace_bin(app).to_str().unwrap()]);
    c
}

/// tauri-driver on free ports, with its output in the scene's folder.
fn start_driver(env: &Env) -> (Guard, u16) {
    driver_with(env.command(tauri_driver()), env)
}

/// tauri-driver whose application is the tray agent: the agent's settings in its
/// environment (the windows the agent starts inherit the driver's automation session).
fn start_driver_for_agent(env: &Env) -> (Guard, u16) {
    let mut c = env.command(tauri_driver());
    c.env("ASTRAN_IDP_URL", &env.idp.token_url)
        .env("ASTRAN_STS_ENDPOINT", &env.sts)
        .env("ASTRAN_HTTP_TIMEOUT_SECS", "3")
        .env("ASTRAN_WINDOW_BIN", workspace_bin("astran-tray-window"));
    driver_with(c, env)
}

fn driver_with(mut driver: Command, env: &Env) -> (Guard, u16) {
    let (port, native) = (free_port(), free_port());
    driver
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env(
            "PATH",
            format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .stdout(std::fs::File::create(env.dir.path().join("tauri-driver.log")).unwrap())
        .stderr(std::fs::File::create(env.dir.path().join("tauri-driver.err")).unwrap());
    let guard = Guard(driver.spawn().unwrap());
    wait_for("tauri-driver", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (guard, port)
}

#[test]
fn keys_window_creates_rotates_and_deletes_a_permanent_key() {
    let iam = MotoIam::start();
    let upstream = format!("{}/", iam.url);
    let idp = Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
        &["--sts-upstream", &upstream],
    );
    let env = Env::new(idp)
        .on_display()
        .with_env("ASTRAN_IAM_ENDPOINT", &iam.url)
        .with_env("ASTRAN_S3_ENDPOINT", &iam.url);
    assert_ok(&env.login(&[]), "login");
    let _agent = start_agent(&env);
    let (_driver, port) = start_driver(&env);
    let shots = std::env::var_os("ASTRAN_KEEP_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env.dir.path().join("shots"));
    std::fs::create_dir_all(&shots).unwrap();
    let drive = |action: &str, key: Option<&str>| -> serde_json::Value {
        let mut c = webdriver_script(&env, "webdriver_keys.py", port, "astran-tray-window");
        c.args(["--action", action]).args([
            "--shot",
            shots.join(format!("keys-{action}.png")).to_str().unwrap(),
        ]);
        if let Some(k) = key {
            c.args(["--key", k]);
        }
        let o = c.output().unwrap();
        let (out, err) = text(&o);
        assert!(o.status.success(), "keys window ({action}):\n{out}\n{err}");
        let seen: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert_eq!(
            seen["closed"], true,
            "the window closes with its Close button: {seen}"
        );
        seen
    };
    let permanent = || {
        let id = env.profile_value("astran-permanent", "aws_access_key_id");
        let secret = env.profile_value("astran-permanent", "aws_secret_access_key");
        if let Some(s) = &secret {
            env.add_secret(s);
        }
        (id, secret)
    };

    let seen = drive("create", None);
    eprintln!("{seen}");
    assert_eq!(seen["title"], "Astran permanent key");
    assert!(
        seen["warning"].as_str().unwrap().contains("recommend"),
        "{seen}"
    );
    let (id, secret) = permanent();
    let (id, secret) = (id.expect("a key in astran-permanent"), secret.unwrap());
    let result = seen["result"].as_str().unwrap();
    assert!(result.contains(&id) && result.contains("root"), "{seen}");
    assert!(!result.contains(&secret), "the secret reached the window");
    assert_ok(
        &env.aws(&[
            "--profile",
            "astran-permanent",
            "s3",
            "mb",
            "s3://keys-window-1",
        ]),
        "aws s3 mb with the key made in the window",
    );

    let seen = drive("rotate", None);
    eprintln!("{seen}");
    assert!(seen["warning"].is_null(), "{seen}");
    let (new, _) = permanent();
    let new = new.unwrap();
    assert_ne!(new, id);
    assert!(seen["result"].as_str().unwrap().contains(&id), "{seen}");

    let seen = drive("delete", Some(&new));
    eprintln!("{seen}");
    assert_eq!(
        seen["confirm_enabled_at_first"], false,
        "delete needs a choice"
    );
    assert!(
        seen["keys_listed"]
            .as_str()
            .unwrap()
            .contains("astran-permanent"),
        "{seen}"
    );
    assert!(
        seen["result"]
            .as_str()
            .unwrap()
            .contains("astran-permanent"),
        "{seen}"
    );
    assert_eq!(permanent().0, None, "the profile is still there");
    if std::env::var_os("ASTRAN_UPDATE_SCREENSHOTS").is_some() {
        let dest = root().join("docs/screenshots");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::copy(shots.join("keys-create.png"), dest.join("keys-create.png")).unwrap();
    }
}

#[test]
fn login_window_signs_in_with_the_browser_and_cancels() {
    // a company realm: no password grant; the account logs in with the browser
    let env = Env::new(Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
        &["--no-direct-access-grants"],
    ));
    env.write_config("[accounts.default]\nauth = \"browser\"\n");
    let shots = env.dir.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    // $BROWSER of the agent: does nothing until the test says go (the first login is
    // cancelled in the window), then the scripted browser signs in as a person would
    let wrapper = env.dir.path().join("browser.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e '{}' ] || exit 0\nexec '{}' \"$1\"\n",
            shots.join("go").display(),
            root().join("tests/support/scripted_browser.py").display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let env = env
        .on_display()
        .with_env("BROWSER", wrapper.to_str().unwrap())
        .with_env("SCRIPTED_EMAIL", EMAIL)
        .with_env("SCRIPTED_PASSWORD", PASSWORD);
    let _agent = start_agent(&env);
    let (_driver, port) = start_driver(&env);
    let o = webdriver_script(
        &env,
        "webdriver_browser_login.py",
        port,
        "astran-tray-window",
    )
    .args(["--shots", shots.to_str().unwrap()])
    .output()
    .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "webdriver run failed:\n{out}\n{err}");
    let seen: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    eprintln!("{seen}");
    assert_eq!(seen["begin_label"], "Sign in with your browser", "{seen}");
    assert_eq!(seen["password_form_shown"], false, "{seen}");
    assert!(
        seen["url_shown"]
            .as_str()
            .unwrap()
            .contains("code_challenge_method=S256"),
        "{seen}"
    );
    assert_eq!(seen["cancel_shown"], true, "{seen}");
    assert_eq!(seen["listening_while_waiting"], true, "{seen}");
    assert_eq!(seen["listening_after_cancel"], false, "{seen}");
    assert_eq!(seen["closed"], true, "{seen}");
    assert_eq!(env.idp.stats()["code_grants"], 1);
    assert_ok(
        &env.s3_mb("astran", &format!("window-browser-{}", std::process::id())),
        "aws s3 mb with the profile of the window's browser login",
    );
    if std::env::var_os("ASTRAN_UPDATE_SCREENSHOTS").is_some() {
        let dest = root().join("docs/screenshots");
        std::fs::create_dir_all(&dest).unwrap();
        for f in ["login-browser.png", "login-browser-waiting.png"] {
            std::fs::copy(shots.join(f), dest.join(f)).unwrap();
        }
    }
}

/// The accounts of the status window's scene: the default one logged in (credentials valid 60
/// min, renewed 12 min before they expire, Keycloak's session idle 30 min), four more logged
/// out (five accounts must fit).
const STATUS_CONFIG: &str = "default_account = \"default\"\n\
[accounts.default]\nrefresh_lead_seconds = 720\n\
[accounts.ops]\nprofile = \"astran-ops\"\n\
[accounts.backup]\nprofile = \"astran-backup\"\n\
[accounts.lab]\nprofile = \"astran-lab\"\n\
[accounts.archive]\nprofile = \"astran-archive\"\n";

fn minutes_between(a: &str, b: time::OffsetDateTime) -> f64 {
    let a = time::OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{a}: {e}"));
    (a - b).as_seconds_f64() / 60.0
}

#[test]
fn status_window_draws_each_account_follows_a_renewal_and_a_failure() {
    let env = Env::standard().on_display();
    env.write_config(STATUS_CONFIG);
    // the WebDriver application is the tray agent itself: the window it starts from its menu
    // ("Status…", clicked through the test StatusNotifier host) is the one driven
    let items = sni_watcher();
    let (_driver, port) = start_driver_for_agent(&env);
    let shots = std::env::var_os("ASTRAN_KEEP_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env.dir.path().join("shots"));
    // logged in through the agent (by the script, once the agent is up), so that its events
    // begin with the login
    let o = webdriver_script(&env, "webdriver_status.py", port, "astran-tray")
        .args(["--via-menu", items.to_str().unwrap()])
        .args(["--python", venv_bin("python").to_str().unwrap()])
        .args(["--socket", env.control_socket().to_str().unwrap()])
        .args(["--email", EMAIL, "--password", PASSWORD])
        .args(["--idp", &env.idp.base])
        .args(["--shots", shots.to_str().unwrap()])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "webdriver run failed:\n{out}\n{err}");
    let seen: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    eprintln!("{}", brief(&seen));
    assert_eq!(seen["menu_clicked"], true, "{}", brief(&seen));
    assert_eq!(seen["login_reply_ok"], true, "{}", brief(&seen));
    assert_eq!(seen["title"], "Astran status");
    let logged_in = time::OffsetDateTime::from_unix_timestamp_nanos(
        (seen["logged_in_at"].as_f64().unwrap() * 1e9) as i128,
    )
    .unwrap();

    // every account, the default one with its marks where the known state puts them
    let before = seen["before"].as_array().unwrap();
    let names: Vec<&str> = before
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect();
    // the default account first
    assert_eq!(
        names,
        ["default", "archive", "backup", "lab", "ops"],
        "{}",
        brief(&seen)
    );
    let acct = before.iter().find(|a| a["account"] == "default").unwrap();
    let marks = acct["marks"].as_array().unwrap();
    let first = |kind: &str| -> f64 {
        let m = marks
            .iter()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} mark: {acct}"));
        assert_eq!(m["focusable"], true);
        assert!(
            m["title"] == m["label"] && m["label"].as_str().unwrap().contains("UTC"),
            "a mark's exact time is its title and label: {m}"
        );
        minutes_between(m["at"].as_str().unwrap(), logged_in)
    };
    let near = |got: f64, want: f64| (got - want).abs() < 1.0;
    assert!(near(first("credentials_expire"), 60.0), "{acct}");
    assert!(near(first("renewal"), 48.0), "{acct}");
    assert!(near(first("session_idle_end"), 30.0), "{acct}");
    // kept alive before the idle end (a fifth of it, at most 2 min, before)
    assert!(near(first("keep_alive"), 28.0), "{acct}");
    assert!(
        !marks.iter().any(|m| m["kind"] == "login_needed"),
        "renewed as far as known: {acct}"
    );
    assert!(
        marks
            .iter()
            .filter(|m| m["kind"] == "renewal")
            .skip(1)
            .all(|m| m["projected"] == true),
        "{acct}"
    );
    let exp_before = marks
        .iter()
        .find(|m| m["kind"] == "credentials_expire")
        .unwrap()["at"]
        .clone();
    assert!(
        acct["summary"]
            .as_str()
            .unwrap()
            .starts_with("Credentials valid until "),
        "{acct}"
    );
    assert_eq!(acct["events"][0]["kind"], "login", "{acct}");
    assert!(
        acct["events"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Logged in as {EMAIL} (password)")),
        "{acct}"
    );
    // the others: logged out, a login needed now, the buttons that apply
    let ops = before.iter().find(|a| a["account"] == "ops").unwrap();
    assert_eq!(ops["state"], "logged out", "{ops}");
    assert!(ops["marks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["kind"] == "login_needed"));
    assert_eq!(
        ops["buttons"],
        serde_json::json!(["Log in…", "Settings…"]),
        "{ops}"
    );
    assert_eq!(
        acct["buttons"],
        serde_json::json!([
            "Log in…",
            "Refresh now",
            "Log out",
            "Settings…",
            "Copy export lines"
        ]),
        "{acct}"
    );

    // it followed the renewal: the credentials' end moved to the new expiry, the event first
    let after = &seen["after_renewal"];
    let renewed = env
        .profile_value("astran", "x_security_token_expires")
        .unwrap();
    let exp_mark = after["marks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "credentials_expire")
        .unwrap();
    let renewed_at =
        time::OffsetDateTime::parse(&renewed, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(
        minutes_between(exp_mark["at"].as_str().unwrap(), renewed_at).abs() < 0.02,
        "the mark is the file's expiry {renewed}: {after}"
    );
    assert_ne!(exp_mark["at"], exp_before, "{after}");
    assert_eq!(
        after["events"][0]["text"], "Profile astran renewed",
        "{after}"
    );
    assert!(after["events"][0]["utc"].as_str().unwrap().ends_with("UTC"));
    assert_eq!(after["events"][1]["kind"], "login", "{after}");

    // the IdP's 503: a failure event that says so, and the message in the window
    let failed = &seen["after_failure"];
    let why = failed["events"][0]["text"].as_str().unwrap();
    assert!(why.starts_with("Renewal failed: "), "{failed}");
    assert!(why.contains("503"), "{failed}");
    assert!(
        seen["message_after_failure"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{}",
        brief(&seen)
    );

    // the buttons: the login and settings windows of that account, the export lines copied
    assert_eq!(seen["login-ops_opened"], true, "{}", brief(&seen));
    assert_eq!(seen["settings-ops_opened"], true, "{}", brief(&seen));
    assert_eq!(
        seen["message_after_copy"],
        "The export lines are on the clipboard.",
        "{}",
        brief(&seen)
    );

    // the keyboard reaches every mark; focus shows its exact time
    assert!(
        seen["marks_total"].as_u64().unwrap() > 10,
        "{}",
        brief(&seen)
    );
    assert_eq!(
        seen["marks_reached"],
        seen["marks_total"],
        "{}",
        brief(&seen)
    );
    assert_eq!(seen["tip_follows_focus"], true, "{}", brief(&seen));
    // 400 px: no sideways scrolling, the timelines inside the window
    assert!(
        seen["overflow_at_400"].as_i64().unwrap() <= 0,
        "{}",
        brief(&seen)
    );
    assert!(
        seen["svg_width_at_400"].as_f64().unwrap() <= seen["viewport_at_400"].as_f64().unwrap(),
        "{}",
        brief(&seen)
    );

    // the dark theme (prefers-color-scheme): the same window, dark, with an agent again (the
    // WebDriver session's ended with it)
    let _agent = start_agent(&env);
    let dark = shots.join("status-dark.png");
    shoot_window(&env, &["--status"], "Astran status", "dark", &dark);
    let light_luma = mean_luma(&shots.join("status.png"));
    let dark_luma = mean_luma(&dark);
    assert!(
        dark_luma < 0.35 && light_luma > 0.65,
        "light {light_luma}, dark {dark_luma}"
    );
    assert!(
        image_stat(&dark, "standard_deviation") > 0.05,
        "the dark window is drawn"
    );
    if std::env::var_os("ASTRAN_UPDATE_SCREENSHOTS").is_some() {
        let dest = root().join("docs/screenshots");
        std::fs::create_dir_all(&dest).unwrap();
        for f in ["status.png", "status-dark.png"] {
            std::fs::copy(shots.join(f), dest.join(f)).unwrap();
        }
    }
}

/// What the status window's script saw, without the per-account dumps (for messages).
fn brief(seen: &serde_json::Value) -> serde_json::Value {
    let mut s = seen.clone();
    if let Some(o) = s.as_object_mut() {
        o.retain(|k, _| !k.starts_with("before") && !k.starts_with("after"));
    }
    s
}

/// Start the window with these arguments and `ASTRAN_WINDOW_THEME`, screenshot it once drawn,
/// close it.
fn shoot_window(env: &Env, args: &[&str], title: &str, theme: &str, out: &std::path::Path) {
    let mut c = env.command(workspace_bin("astran-tray-window"));
    c.args(args)
        .env("ASTRAN_WINDOW_THEME", theme)
        .env("ASTRAN_CONTROL_SOCKET", env.control_socket())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let windows = || -> Vec<String> {
        let o = std::process::Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", &format!("^{title}$")])
            .env("DISPLAY", display())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    // the one this starts, not one still closing
    let before = windows();
    let _w = Guard(c.spawn().unwrap());
    let mut id = String::new();
    wait_for("the window", Duration::from_secs(20), || {
        id = windows()
            .into_iter()
            .find(|w| !before.contains(w))
            .unwrap_or_default();
        !id.is_empty()
    });
    // the page asks the agent and draws: until the capture shows more than one flat colour
    // (a window not painted yet is black), and a little longer for the data
    let shoot = || {
        let o = std::process::Command::new("import")
            .args(["-window", &id, out.to_str().unwrap()])
            .env("DISPLAY", display())
            .output()
            .unwrap();
        assert_ok(&o, "screenshot");
    };
    wait_for("the window to paint", Duration::from_secs(30), || {
        shoot();
        image_stat(out, "standard_deviation") > 0.05
    });
    std::thread::sleep(Duration::from_millis(1500));
    shoot();
}

/// The mean luminance of an image, 0 (black) to 1 (white), by ImageMagick.
fn mean_luma(png: &std::path::Path) -> f64 {
    image_stat(png, "mean")
}

/// A statistic of an image's grey levels (`mean`, `standard_deviation`), 0 to 1.
fn image_stat(png: &std::path::Path, what: &str) -> f64 {
    let o = std::process::Command::new("convert")
        .args([
            png.to_str().unwrap(),
            "-colorspace",
            "Gray",
            "-format",
            &format!("%[fx:{what}]"),
            "info:",
        ])
        .output()
        .unwrap();
    assert_ok(&o, "convert");
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}
