//! The tray agent end to end: its StatusNotifierItem and dbusmenu on a private session bus
//! (read and clicked like a panel does), its control socket, its notifications, its scheduler,
//! against the test IdP, moto and the real AWS CLI.
// Linux only: a private D-Bus session, Xvfb, WebKitWebDriver.
#![cfg(target_os = "linux")]

#[path = "../../tests/common/mod.rs"]
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Agent {
    guard: Guard,
    service: String,
    log: std::path::PathBuf,
}

impl Agent {
    fn pid(&self) -> u32 {
        self.guard.0.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn agent_command(env: &Env) -> Command {
    let mut c = env.command(workspace_bin("astran-tray"));
    c.env("ASTRAN_IDP_URL", &env.idp.token_url)
        .env("ASTRAN_STS_ENDPOINT", &env.sts)
        .env("ASTRAN_HTTP_TIMEOUT_SECS", "3")
        .env("ASTRAN_WINDOW_BIN", workspace_bin("astran-tray-window"));
    c
}

fn start_agent(env: &Env) -> Agent {
    sni_watcher();
    // the agent logs (trace) to the scene's ASTRAN_LOG_FILE; stderr has the rest
    let log = env.log_file.clone();
    let mut c = agent_command(env);
    c.stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.path().join("agent.err")).unwrap());
    let start = Instant::now();
    let guard = Guard(c.spawn().unwrap());
    let pid = guard.0.id();
    let mut service = None;
    wait_for("the tray item to register", Duration::from_secs(20), || {
        service = tray_service(pid);
        service.is_some()
    });
    eprintln!("agent registered its tray item after {:?}", start.elapsed());
    Agent {
        guard,
        service: service.unwrap(),
        log,
    }
}

/// One request on the control socket.
fn control(env: &Env, req: &str) -> serde_json::Value {
    let mut s = UnixStream::connect(env.control_socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(format!("{req}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("reply {line:?}"))
}

/// Is a login window, started by this agent, running?
fn login_window_running(agent: &Agent) -> bool {
    Command::new("pgrep")
        .args([
            "-P",
            &agent.pid().to_string(),
            "-f",
            "astran-tray-window --login",
        ])
        .output()
        .unwrap()
        .status
        .success()
}

fn status_line(env_agent: &Agent) -> String {
    let m = tray_menu(&env_agent.service);
    menu_labels(&m).into_iter().next().unwrap_or_default()
}

fn wait_exit(agent: &mut Agent, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = agent.guard.0.try_wait().unwrap() {
            return s;
        }
        assert!(
            start.elapsed() < within,
            "agent did not exit; log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tray_menu_follows_the_session_and_quits() {
    let env = Env::standard();
    let mut agent = start_agent(&env);
    let m = tray_menu(&agent.service);
    assert_eq!(m["item"]["Id"], "astran-tray");
    let labels = menu_labels(&m);
    assert_eq!(
        labels,
        vec![
            "astran: logged out (disabled)",
            "Log in…",
            "Refresh now (disabled)",
            "Copy export lines (disabled)",
            "Open credentials folder",
            "Log out (disabled)",
            "Permanent key…",
            "Create…",
            "Rotate now",
            "Delete…",
            "Status…",
            "Settings…",
            "Local credentials endpoint",
            "Start at login",
            "Quit"
        ]
    );
    assert!(m["item"]["ToolTip"][3]
        .as_str()
        .unwrap()
        .contains("astran: logged out"));

    // a login made with the CLI reaches the agent through the control socket
    assert_ok(&env.login(&[]), "cli login");
    wait_for(
        "the menu to show the credentials",
        Duration::from_secs(10),
        || status_line(&agent).starts_with("astran: valid until "),
    );
    let line = status_line(&agent);
    assert!(line.contains("(next refresh "), "{line}");
    let labels = menu_labels(&tray_menu(&agent.service));
    assert!(
        labels.contains(&"Refresh now".to_string()) && labels.contains(&"Log out".to_string()),
        "{labels:?}"
    );

    // the menu as a GTK panel renders it (libdbusmenu-gtk3 on the live menu), under Xvfb
    let shot = env.dir.path().join("tray-menu.png");
    let o = Command::new("/usr/bin/python3")
        .arg(root().join("tests/support/menu_shot.py"))
        .arg(&agent.service)
        .arg(&shot)
        .env("DISPLAY", display())
        .env("DBUS_SESSION_BUS_ADDRESS", &bus().address)
        .env("NO_AT_BRIDGE", "1")
        .output()
        .unwrap();
    assert_ok(&o, "menu screenshot");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    if std::env::var_os("ASTRAN_UPDATE_SCREENSHOTS").is_some() {
        let dest = root().join("docs/screenshots");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::copy(&shot, dest.join("tray-menu.png")).unwrap();
    }

    // Refresh now
    let key = env.profile_value("astran", "aws_access_key_id").unwrap();
    tray_click(&agent.service, "Refresh now");
    env.wait_for_new_key(
        "astran",
        &key,
        "Refresh now to renew the profile",
        Duration::from_secs(15),
    );
    assert_eq!(env.idp.stats()["refresh_grants"], 1);
    let b = format!("tray-{}", std::process::id());
    assert_ok(&env.s3_mb("astran", &b), "mb");

    // Start at login writes the XDG autostart entry
    tray_click(&agent.service, "Start at login");
    let entry = env.home.join(".config/autostart/astran-tray.desktop");
    wait_for("the autostart entry", Duration::from_secs(5), || {
        entry.exists()
    });
    assert!(std::fs::read_to_string(&entry).unwrap().contains("Exec="));
    wait_for("the check mark", Duration::from_secs(5), || {
        menu_labels(&tray_menu(&agent.service)).contains(&"Start at login [x]".to_string())
    });
    tray_click(&agent.service, "Start at login");
    wait_for("the autostart entry to go", Duration::from_secs(5), || {
        !entry.exists()
    });

    // Log out from the menu
    tray_click(&agent.service, "Log out");
    wait_for("logged out", Duration::from_secs(10), || {
        status_line(&agent).starts_with("astran: not logged in")
    });

    tray_click(&agent.service, "Quit");
    assert_eq!(
        wait_exit(&mut agent, Duration::from_secs(10)).code(),
        Some(0)
    );
    assert!(!env.control_socket().exists(), "socket removed on quit");
    let log = agent.log();
    assert!(!log.contains(PASSWORD), "password in the log");
}

#[test]
fn log_in_opens_the_window_and_a_second_agent_stays_out() {
    let env = Env::standard().on_display();
    let agent = start_agent(&env);
    let o = agent_command(&env).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already running"));
    tray_click(&agent.service, "Log in");
    let start = Instant::now();
    wait_for("the login window process", Duration::from_secs(20), || {
        login_window_running(&agent)
    });
    eprintln!("login window process after {:?}", start.elapsed());
    // clicking again does not open a second one
    tray_click(&agent.service, "Log in");
    std::thread::sleep(Duration::from_millis(500));
    let n = Command::new("pgrep")
        .args([
            "-c",
            "-P",
            &agent.pid().to_string(),
            "-f",
            "astran-tray-window",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&n.stdout).trim(), "1");
    // closing the window leaves no zombie behind, and Log in… works again
    let pid = String::from_utf8(
        Command::new("pgrep")
            .args(["-P", &agent.pid().to_string(), "-f", "astran-tray-window"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    assert!(Command::new("kill").arg(&pid).status().unwrap().success());
    wait_for(
        "the window process to be reaped",
        Duration::from_secs(10),
        || {
            !Command::new("ps")
                .args(["-p", &pid])
                .output()
                .unwrap()
                .status
                .success()
        },
    );
    tray_click(&agent.service, "Log in");
    wait_for("a new login window", Duration::from_secs(20), || {
        login_window_running(&agent)
    });
}

#[test]
fn a_window_that_cannot_start_says_why_and_log_in_works_again() {
    // a display no server answers on: the real window binary's GTK cannot start
    let env = Env::standard()
        .with_env("DISPLAY", ":8765")
        .with_env("WAYLAND_DISPLAY", "");
    let agent = start_agent(&env);
    let failed = || notifications_about("The window could not be shown");
    let before = failed().len();
    tray_click(&agent.service, "Log in");
    wait_for("the failure notification", Duration::from_secs(20), || {
        failed().len() > before
    });
    let n = failed();
    let last = n.last().unwrap();
    assert_eq!(last["summary"], "Cannot open the window");
    let body = last["body"].as_str().unwrap();
    assert!(body.contains("exited with status 101"), "{body}");
    assert!(body.to_lowercase().contains("gtk"), "{body}");
    assert!(body.contains("DISPLAY"), "{body}");
    assert!(
        agent.log().contains("window failed"),
        "agent log:\n{}",
        agent.log()
    );
    // the agent lives on, and the next click tries again (one more notice, not none)
    tray_click(&agent.service, "Log in");
    wait_for(
        "the second failure notification",
        Duration::from_secs(20),
        || failed().len() > before + 1,
    );
    assert!(!status_line(&agent).is_empty());
}

#[test]
fn login_over_the_socket_notifies_and_wrong_password_does_not_write() {
    let profile = format!("notify{}", std::process::id());
    let env = Env::standard().with_env("ASTRAN_PROFILE", &profile);
    let _agent = start_agent(&env);
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(&env.creds, "[keep]\naws_access_key_id = AKIAKEEP\n").unwrap();

    let r = control(
        &env,
        &format!(r#"{{"cmd":"login","email":"{EMAIL}","password":"wrong"}}"#),
    );
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["kind"], "wrong_credentials");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("wrong email or password"));
    assert_eq!(env.creds_text(), "[keep]\naws_access_key_id = AKIAKEEP\n");

    let r = control(
        &env,
        &format!(r#"{{"cmd":"login","email":"{EMAIL}","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["profile"], profile.as_str());
    assert!(env
        .profile_value(&profile, "aws_access_key_id")
        .unwrap()
        .starts_with("ASIA"));
    wait_for("the login notification", Duration::from_secs(10), || {
        !notifications_about(&profile).is_empty()
    });
    let n = notifications_about(&profile);
    assert_eq!(n.len(), 1, "{n:#?}");
    assert_eq!(n[0]["summary"], format!("Logged in as {EMAIL}"));
    assert!(n[0]["body"]
        .as_str()
        .unwrap()
        .starts_with(&format!("Profile {profile} valid until ")));

    let st = control(&env, r#"{"cmd":"status"}"#);
    assert_eq!(st["result"]["accounts"][0]["logged_in"], true);
}

#[test]
fn session_end_notifies_login_required_once_and_menu_says_so() {
    let profile = format!("ended{}", std::process::id());
    let env = Env::standard()
        .with_env("ASTRAN_PROFILE", &profile)
        .on_display();
    std::fs::create_dir_all(env.config.parent().unwrap()).unwrap();
    std::fs::write(
        &env.config,
        format!("[accounts.default]\nemail = \"{EMAIL}\"\nduration_seconds = 900\nrefresh_lead_seconds = 897\nnotice_lead_seconds = 900\n"),
    )
    .unwrap();
    let agent = start_agent(&env);
    let r = control(
        &env,
        &format!(r#"{{"cmd":"login","email":"{EMAIL}","password":"{PASSWORD}"}}"#),
    );
    assert_eq!(r["ok"], true, "{r}");
    env.idp.control("end-sessions", "{}");
    wait_for("the login-required notice", Duration::from_secs(30), || {
        notifications_about(&profile).iter().any(|v| {
            v["summary"]
                .as_str()
                .unwrap()
                .starts_with("Astran login required")
        })
    });
    wait_for("the menu", Duration::from_secs(10), || {
        status_line(&agent).starts_with(&format!("{profile}: login required"))
    });
    assert!(menu_labels(&tray_menu(&agent.service)).contains(&"Log in again…".to_string()));
    std::thread::sleep(Duration::from_secs(3));
    let n = notifications_about(&profile);
    let kinds: Vec<&str> = n.iter().map(|v| v["summary"].as_str().unwrap()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|s| s.starts_with("Astran login required"))
            .count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|s| s.contains("expire")).count(),
        1,
        "{kinds:?}"
    );
    let req = n
        .iter()
        .find(|v| {
            v["summary"]
                .as_str()
                .unwrap()
                .starts_with("Astran login required")
        })
        .unwrap();
    assert!(req["body"].as_str().unwrap().contains("Session not active"));
    let actions = req["actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a == "act") && actions.iter().any(|a| a == "Log in"),
        "a Log in button: {actions:?}"
    );
    // its button opens the login window
    let id = req["id"].as_u64().unwrap();
    click_notification(id, "act");
    wait_for(
        "the login window after the notification's button",
        Duration::from_secs(10),
        || login_window_running(&agent),
    );
    // a click on a notification itself (here the other one) opens the status window, beside
    // the login window (a notification answers one click: the server closes it then)
    let expiring = n
        .iter()
        .find(|v| v["summary"].as_str().unwrap().contains("expire"))
        .unwrap();
    click_notification(expiring["id"].as_u64().unwrap(), "default");
    wait_for(
        "the status window after the click on the notification",
        Duration::from_secs(10),
        || window_running(&agent, "--status --account default"),
    );
    assert!(login_window_running(&agent));
    close_windows(&agent);
}

#[test]
fn control_socket_refuses_other_users_and_garbage() {
    let env = Env::standard();
    let agent = start_agent(&env);
    let sock = env.control_socket();
    // garbage, unknown commands, oversized lines: an error reply each, and the agent lives on
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\x00\xff not json\n{\"cmd\":\"format_disk\"}\n{\"cmd\":\"login\"}\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..3 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ok"], false, "{line}");
    }
    let mut big = UnixStream::connect(&sock).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = big.write_all(&vec![b'{'; 200_000]);
    let mut line = String::new();
    BufReader::new(big).read_line(&mut line).unwrap();
    assert!(line.contains("longer than"), "{line}");
    assert_eq!(control(&env, r#"{"cmd":"ping"}"#)["ok"], true);

    // another user: the folder is 0700, and even with it opened up the peer check refuses
    use std::os::unix::fs::PermissionsExt;
    let dir = sock.parent().unwrap();
    assert_eq!(
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = format!(
        // read only: the agent answers a refused peer at once and closes
        "use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => '{}') or die \"connect: $!\"; print scalar <$s>;",
        sock.to_str().unwrap()
    );
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "perl",
            "-e",
            &script,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("other users are refused"),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.contains("accounts"));
    assert_eq!(control(&env, r#"{"cmd":"ping"}"#)["ok"], true);
    assert!(agent.log().contains("refused a connection from uid 65534"));
}

#[test]
fn settings_are_saved_to_the_shared_config_file() {
    let env = Env::standard();
    let _agent = start_agent(&env);
    std::fs::create_dir_all(env.config.parent().unwrap()).unwrap();
    std::fs::write(
        &env.config,
        "# my settings\n[accounts.default]\nemail = \"a@b.c\"\n",
    )
    .unwrap();
    let g = control(&env, r#"{"cmd":"get_settings"}"#);
    assert_eq!(g["ok"], true, "{g}");
    assert_eq!(
        g["result"]["config"]["accounts"]["default"]["email"],
        "a@b.c"
    );
    assert_eq!(g["result"]["defaults"]["client_id"], "root-client");

    let r = control(
        &env,
        r#"{"cmd":"save_settings","account":"work","make_default":true,"settings":{"email":"w@b.c","profile":"astran-work","duration_seconds":7200,"notice_lead_seconds":300,"sts_endpoint":""}}"#,
    );
    assert_eq!(r["ok"], true, "{r}");
    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(text.contains("# my settings"), "comments kept: {text}");
    assert!(text.starts_with("default_account = \"work\""), "{text}");
    assert!(
        text.contains("[accounts.work]")
            && text.contains("profile = \"astran-work\"")
            && text.contains("duration_seconds = 7200")
    );
    assert!(
        !text.contains("sts_endpoint"),
        "empty fields are not written: {text}"
    );
    // the CLI reads the same file
    let st = env.status_json();
    let work = st["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == "work")
        .unwrap()
        .clone();
    assert_eq!(work["profile"], "astran-work");

    for bad in [
        r#"{"cmd":"save_settings","account":"x","settings":{"token_url":"http://idp.example.com/token"}}"#,
        r#"{"cmd":"save_settings","account":"x","settings":{"duration_seconds":60}}"#,
        r#"{"cmd":"save_settings","account":"a.b","settings":{}}"#,
    ] {
        let r = control(&env, bad);
        assert_eq!(r["ok"], false, "{bad}");
        assert_eq!(r["error"]["kind"], "config");
    }
    assert!(!std::fs::read_to_string(&env.config)
        .unwrap()
        .contains("[accounts.x]"));
    // the credentials mode, as the settings window offers it
    let r = control(
        &env,
        r#"{"cmd":"save_settings","account":"work","settings":{"profile":"astran-work","credential_mode":"process"}}"#,
    );
    assert_eq!(r["ok"], true, "{r}");
    assert!(std::fs::read_to_string(&env.config)
        .unwrap()
        .contains("credential_mode = \"process\""));
    let r = control(
        &env,
        r#"{"cmd":"save_settings","account":"work","settings":{"credential_mode":"sometimes"}}"#,
    );
    assert_eq!(r["error"]["kind"], "config", "{r}");
}

/// A profile name that would break the credentials file reaches the tray from the settings
/// window (refused, nothing written) or from a hand-edited config file (the tray says so,
/// renews nothing, writes nothing, and keeps running).
#[test]
fn a_bad_profile_name_is_refused_by_the_tray_and_written_nowhere() {
    let env = Env::standard();
    let agent = start_agent(&env);
    assert_ok(&env.login(&[]), "login");
    let creds = env.creds_text();
    std::fs::write(
        &env.config,
        "# mine\n[accounts.default]\nemail = \"a@b.c\"\n",
    )
    .unwrap();
    for bad in [r#"a]b"#, r#"a\nb"#, r#"a\tb"#] {
        let r = control(
            &env,
            &format!(
                r#"{{"cmd":"save_settings","account":"default","settings":{{"profile":"{bad}"}}}}"#
            ),
        );
        assert_eq!(r["ok"], false, "{bad}: {r}");
        assert_eq!(r["error"]["kind"], "config", "{r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a usable profile name"),
            "{r}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&env.config).unwrap(),
        "# mine\n[accounts.default]\nemail = \"a@b.c\"\n"
    );
    // by hand, then the tray is told to look again (as the CLI does after a change)
    std::fs::write(&env.config, "[accounts.default]\nprofile = \"a]b\"\n").unwrap();
    let r = control(&env, r#"{"cmd":"reload"}"#);
    assert_eq!(r["ok"], true, "{r}");
    wait_for(
        "the tray to show the problem",
        Duration::from_secs(10),
        || status_line(&agent).starts_with("Astran: invalid config file"),
    );
    let line = status_line(&agent);
    assert!(
        line.contains("line 2") && line.contains("profile"),
        "{line}"
    );
    let r = control(&env, r#"{"cmd":"refresh"}"#);
    assert_eq!(r["error"]["kind"], "config", "{r}");
    tray_click(&agent.service, "Refresh now");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.creds_text(), creds, "nothing written");
    // still serving
    assert_eq!(control(&env, r#"{"cmd":"ping"}"#)["ok"], true);
}

/// The menu is handled on the tray thread, which never waits on the network: while the IdP
/// hangs under a "Copy export lines" that has to renew first, another item still answers.
#[test]
fn the_menu_answers_while_the_identity_provider_hangs() {
    let env = Env::standard();
    let agent = start_agent(&env);
    assert_ok(&env.login(&[]), "login");
    wait_for(
        "the menu to show the login",
        Duration::from_secs(10),
        || status_line(&agent).starts_with("astran: valid until "),
    );
    // make the credentials look expired, so copying them has to renew them first
    let text = env.creds_text();
    let exp = env
        .profile_value("astran", "x_security_token_expires")
        .unwrap();
    std::fs::write(&env.creds, text.replace(&exp, "2000-01-01T00:00:00Z")).unwrap();
    env.idp.fault("hang");
    let entry = env.home.join(".config/autostart/astran-tray.desktop");
    assert!(!entry.exists());
    tray_click(&agent.service, "Copy export lines");
    tray_click(&agent.service, "Start at login");
    // the panel's click has been delivered; from here it is the tray thread's time
    let clicked = Instant::now();
    while !entry.exists() && clicked.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = clicked.elapsed();
    eprintln!("the menu answered {took:?} after the click, the IdP hanging");
    assert!(entry.exists(), "the click was never handled");
    // a tray thread blocked on the hanging IdP would take the 3 s HTTP timeout
    assert!(took < Duration::from_millis(100), "{took:?}");
    env.idp.fault("none");
    tray_click(&agent.service, "Start at login");
    wait_for("the entry to go", Duration::from_secs(10), || {
        !entry.exists()
    });
}

/// "Local credentials endpoint" runs `serve`'s endpoint inside the agent while it is ticked.
#[test]
fn the_local_credentials_endpoint_toggles_from_the_menu() {
    let env = Env::standard();
    let agent = start_agent(&env);
    assert_ok(&env.login(&[]), "login");
    tray_click(&agent.service, "Local credentials endpoint");
    let mut port = None;
    wait_for("the endpoint to start", Duration::from_secs(10), || {
        port = agent
            .log()
            .lines()
            .filter_map(|l| l.split("credentials endpoint on 127.0.0.1:").nth(1))
            .next_back()
            .and_then(|p| p.trim().parse::<u16>().ok());
        port.is_some()
    });
    let port = port.unwrap();
    wait_for("the check mark", Duration::from_secs(5), || {
        menu_labels(&tray_menu(&agent.service))
            .contains(&"Local credentials endpoint [x]".to_string())
    });
    // it answers, and only with the token (which went to the clipboard)
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /astran/credentials HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    tray_click(&agent.service, "Local credentials endpoint");
    wait_for("the endpoint to stop", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(
        menu_labels(&tray_menu(&agent.service)).contains(&"Local credentials endpoint".to_string())
    );
}

/// Act as if the user clicked notification `id`: `default` is a click on the notification
/// itself, another key its button; through the test notification server's `Invoke`.
fn click_notification(id: u64, key: &str) {
    let o = Command::new("dbus-send")
        .args([
            "--session",
            "--type=method_call",
            "--dest=org.freedesktop.Notifications",
            "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications.Invoke",
            &format!("uint32:{id}"),
            &format!("string:{key}"),
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus().address)
        .output()
        .unwrap();
    assert_ok(&o, "invoke the notification's action");
}

/// Is a window started by this agent running with these arguments?
fn window_running(agent: &Agent, args: &str) -> bool {
    Command::new("pgrep")
        .args([
            "-P",
            &agent.pid().to_string(),
            "-f",
            &format!("astran-tray-window {args}"),
        ])
        .output()
        .unwrap()
        .status
        .success()
}

fn close_windows(agent: &Agent) {
    let _ = Command::new("pkill")
        .args(["-P", &agent.pid().to_string(), "-f", "astran-tray-window"])
        .status();
    wait_for("the window to close", Duration::from_secs(10), || {
        !window_running(agent, "")
    });
}

#[test]
fn permanent_key_items_and_the_age_reminder_open_their_confirmation_window() {
    let env = Env::standard().on_display();
    // a permanent key of ours, 100 days old: its record (ours, beside the config) and the
    // profile that holds it
    let created = time::OffsetDateTime::now_utc() - time::Duration::days(100);
    let created = created
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let key_id = format!("AKIATRAYTEST{:08}", std::process::id());
    std::fs::create_dir_all(env.config.parent().unwrap()).unwrap();
    std::fs::write(
        env.config.parent().unwrap().join("permanent-keys.json"),
        serde_json::json!({ "keys": [{
            "account": "default", "profile": "astran-permanent", "access_key_id": key_id,
            "user_name": "root", "created": created }] })
        .to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(
        &env.creds,
        format!("[astran-permanent]\naws_access_key_id = {key_id}\naws_secret_access_key = tray-test-secret\n"),
    )
    .unwrap();
    let agent = start_agent(&env);

    // the reminder, once, with a Rotate action that opens the rotate window for that profile
    wait_for("the key's age reminder", Duration::from_secs(10), || {
        !notifications_about(&key_id).is_empty()
    });
    let n = notifications_about(&key_id);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0]["summary"].as_str().unwrap().contains("100 days"),
        "{n:?}"
    );
    let actions = n[0]["actions"].as_array().unwrap();
    assert!(actions.iter().any(|a| a == "Rotate"), "{actions:?}");
    click_notification(n[0]["id"].as_u64().unwrap(), "act");
    wait_for("the rotate window", Duration::from_secs(20), || {
        window_running(
            &agent,
            "--keys rotate --account default --profile astran-permanent",
        )
    });
    close_windows(&agent);

    // each menu item opens its confirmation window
    for (label, args) in [
        ("Create…", "--keys create --account default"),
        ("Delete…", "--keys delete --account default"),
    ] {
        tray_click(&agent.service, label);
        wait_for(label, Duration::from_secs(20), || {
            window_running(&agent, args)
        });
        close_windows(&agent);
    }
    // the agent did not remind twice
    assert_eq!(notifications_about(&key_id).len(), 1);
}
