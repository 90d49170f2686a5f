//! End-to-end tests of the `astran-creds` binary against real servers on 127.0.0.1.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
use common::*;
use std::process::{Output, Stdio};
use std::time::Duration;

fn bucket(tag: &str) -> String {
    format!("tutorial-{tag}-{}", std::process::id())
}

#[test]
fn login_writes_a_profile_the_aws_cli_can_use() {
    let env = Env::standard();
    let o = env.login(&[]);
    assert_ok(&o, "login");
    let (out, err) = text(&o);
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(
        out.contains("profile astran") && out.contains(&role(1)) && out.contains("valid until"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));

    let key = env
        .profile_value("astran", "aws_access_key_id")
        .expect("key written");
    assert!(key.starts_with("ASIA"), "{key}");
    assert!(env.profile_value("astran", "aws_session_token").is_some());
    let exp = env
        .profile_value("astran", "x_security_token_expires")
        .unwrap();
    let exp =
        time::OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339).unwrap();
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(55) && left <= time::Duration::minutes(61),
        "{left}"
    );
    assert_eq!(file_mode(&env.creds), 0o600);
    assert_eq!(file_mode(env.creds.parent().unwrap()), 0o700);

    // the config file was created with the email
    let cfg = std::fs::read_to_string(&env.config).unwrap();
    assert!(cfg.contains(EMAIL), "{cfg}");

    let b = bucket("happy");
    let mb = env.s3_mb("astran", &b);
    assert_ok(&mb, "aws s3 mb");
    assert!(text(&mb).0.contains(&format!("make_bucket: {b}")));
    let ls = env.aws(&[
        "--profile",
        "astran",
        "--endpoint-url",
        moto_url(),
        "s3",
        "ls",
    ]);
    assert_ok(&ls, "aws s3 ls");
    assert!(text(&ls).0.contains(&b));

    let st = env.status_json();
    assert_eq!(st["version"], 1);
    let a = &st["accounts"][0];
    assert_eq!(a["account"], "default");
    assert_eq!(a["logged_in"], true);
    assert_eq!(a["state"], "fresh");
    assert_eq!(a["role_arn"], role(1));
    assert!(
        a["credentials_expire_at"].is_string()
            && a["session_expires_at"].is_string()
            && a["next_refresh_at"].is_string()
    );
}

#[test]
fn wrong_password_is_exit_3_and_leaves_the_file_alone() {
    for status in ["401", "400"] {
        let env = Env::new(Idp::start(
            &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
            &["--invalid-grant-status", status],
        ));
        std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
        let before = "# my keys\r\n[default]\r\naws_access_key_id = AKIAKEEP\r\n";
        std::fs::write(&env.creds, before).unwrap();
        let o = env.run(
            &["login", "--email", EMAIL, "--password-stdin"],
            Some("not-the-password\n"),
        );
        assert_eq!(o.status.code(), Some(3), "{status}: {:?}", text(&o));
        let (out, err) = text(&o);
        assert!(err.contains("wrong email or password"), "{err}");
        assert!(!err.contains("not-the-password") && !out.contains("not-the-password"));
        assert_eq!(env.creds_text(), before);
    }
}

#[test]
fn several_roles_need_a_choice_which_is_remembered() {
    let env = Env::new(Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{},{}", role(1), role(2))],
        &[],
    ));
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let err = text(&o).1;
    assert!(
        err.contains(&role(1)) && err.contains(&role(2)) && err.contains("--role-arn"),
        "{err}"
    );
    assert!(!env.creds.exists());

    assert_ok(&env.login(&["--role-arn", &role(2)]), "login with role");
    assert!(std::fs::read_to_string(&env.config)
        .unwrap()
        .contains(&role(2)));
    let o = env.login(&[]);
    assert_ok(&o, "second login uses the configured role");
    assert!(text(&o).0.contains(&role(2)));

    let o = env.login(&["--role-arn", "arn:demo:iam::other:root"]);
    assert_eq!(o.status.code(), Some(6), "{:?}", text(&o));
}

#[test]
fn refresh_keeps_the_session_past_the_access_token_lifetime() {
    let env = Env::new(Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
        &["--access-lifespan", "1"],
    ));
    assert_ok(&env.login(&[]), "login");
    let first = env.profile_value("astran", "aws_access_key_id").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..2 {
        let o = env.run(&["refresh"], None);
        assert_ok(&o, "refresh");
        assert!(text(&o).0.contains("profile astran"));
    }
    let now = env.profile_value("astran", "aws_access_key_id").unwrap();
    assert_ne!(first, now, "new credentials written");
    let stats = env.idp.stats();
    assert_eq!(stats["password_grants"], 1, "{stats}");
    assert_eq!(stats["refresh_grants"], 2, "{stats}");
    let b = bucket("refresh");
    assert_ok(&env.s3_mb("astran", &b), "mb");
}

#[test]
fn session_end_means_login_required() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    let before = env.creds_text();
    env.idp.control("end-sessions", "{}");
    let o = env.run(&["refresh"], None);
    assert_eq!(o.status.code(), Some(4), "{:?}", text(&o));
    let err = text(&o).1;
    assert!(
        err.contains("Session not active") && err.contains("log in again"),
        "{err}"
    );
    assert_eq!(env.creds_text(), before, "file untouched");
    let st = env.status_json();
    assert_eq!(st["accounts"][0]["logged_in"], false);
    assert_eq!(st["accounts"][0]["state"], "login_required");
    // and again: no session left at all
    let o = env.run(&["refresh"], None);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn expired_refresh_token_means_login_required() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    env.idp.control("expire-refresh-tokens", "{}");
    let o = env.run(&["refresh"], None);
    assert_eq!(o.status.code(), Some(4), "{:?}", text(&o));
    assert!(text(&o).1.contains("Token is not active"));
}

fn write_config(env: &Env, body: &str) {
    env.write_config(&format!("[accounts.default]\nemail = \"{EMAIL}\"\n{body}"));
}

#[test]
fn daemon_rewrites_the_profile_before_expiry() {
    let env = Env::new(Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
        &["--access-lifespan", "2"],
    ));
    write_config(&env, "duration_seconds = 900\nrefresh_lead_seconds = 897\n");
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(
        &env.creds,
        "[other]\naws_access_key_id = AKIAOTHER\n; comment\n",
    )
    .unwrap();
    let mode_before = file_mode(&env.creds);
    assert_ok(&env.login(&[]), "login");
    let first = env.profile_value("astran", "aws_access_key_id").unwrap();
    let first_exp = env
        .profile_value("astran", "x_security_token_expires")
        .unwrap();

    let mut cmd = env.cmd(&["daemon", "--notify", "log"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut daemon = Guard(cmd.spawn().unwrap());
    env.wait_for_new_key(
        "astran",
        &first,
        "the daemon to renew the profile",
        Duration::from_secs(30),
    );
    assert!(
        env.profile_value("astran", "x_security_token_expires")
            .unwrap()
            >= first_exp
    );
    assert!(env
        .creds_text()
        .starts_with("[other]\naws_access_key_id = AKIAOTHER\n; comment\n"));
    assert!(env.idp.stats()["refresh_grants"].as_u64().unwrap() >= 1);
    assert_eq!(
        file_mode(&env.creds),
        mode_before,
        "the file's mode is kept"
    );
    // stops cleanly on SIGTERM
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGTERM) };
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "daemon did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let log = env.log_text();
    assert!(log.contains("renewed"), "{log}");
}

#[test]
fn daemon_notifies_when_the_session_ends() {
    let env = Env::standard();
    // notice lead as long as the credentials: the warning is due at once
    write_config(
        &env,
        "duration_seconds = 900\nnotice_lead_seconds = 900\nrefresh_lead_seconds = 890\n",
    );
    let account_tag = "(default)";
    assert_ok(&env.login(&[]), "login");
    env.idp.control("end-sessions", "{}");
    let before = env.creds_text();
    let mut cmd = env.cmd(&["daemon"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _daemon = Guard(cmd.spawn().unwrap());
    // notices mention the profile's expiry time, unique to this test's credentials
    let exp = env
        .profile_value("astran", "x_security_token_expires")
        .unwrap();
    wait_for(
        "a login-required and an expiry notification",
        Duration::from_secs(30),
        || {
            let n = notifications_about(&exp);
            n.iter()
                .any(|v| v["summary"].as_str().unwrap().contains("login required"))
                && n.iter()
                    .any(|v| v["summary"].as_str().unwrap().contains("expire"))
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let n = notifications_about(&exp);
    assert_eq!(n.len(), 2, "one notice per state change: {n:#?}");
    let required = n
        .iter()
        .find(|v| v["summary"].as_str().unwrap().contains("login required"))
        .unwrap();
    assert!(required["summary"].as_str().unwrap().contains(account_tag));
    assert!(required["body"]
        .as_str()
        .unwrap()
        .contains("Session not active"));
    assert_eq!(required["app_name"], "astran-tray");
    assert_eq!(env.creds_text(), before);
}

#[test]
fn credential_process_feeds_the_aws_cli() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    let o = env.run(&["credential-process"], None);
    assert_ok(&o, "credential-process");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Version"], 1);
    assert_eq!(
        v["AccessKeyId"].as_str(),
        env.profile_value("astran", "aws_access_key_id").as_deref()
    );
    assert!(
        v["SecretAccessKey"].is_string()
            && v["SessionToken"].is_string()
            && v["Expiration"].is_string()
    );

    std::fs::write(
        &env.aws_config,
        format!(
            "[profile viaprocess]\ncredential_process = {} credential-process\n",
            astran_creds_bin().display()
        ),
    )
    .unwrap();
    let b = bucket("cp");
    let o = env.s3_mb("viaprocess", &b);
    assert_ok(&o, "aws with credential_process");

    // nearly expired: credential-process renews first
    let text_before = env.creds_text();
    let soon = common_soon();
    let old_exp = env
        .profile_value("astran", "x_security_token_expires")
        .unwrap();
    std::fs::write(&env.creds, text_before.replace(&old_exp, &soon)).unwrap();
    let o = env.run(&["credential-process"], None);
    assert_ok(&o, "credential-process with refresh");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(v["Expiration"].as_str().unwrap(), soon);
    assert_eq!(env.idp.stats()["refresh_grants"], 1);
}

fn common_soon() -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(60);
    t.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn credential_process_fails_cleanly_when_logged_out() {
    let env = Env::standard();
    let o = env.run(&["credential-process"], None);
    assert_eq!(o.status.code(), Some(4), "{:?}", text(&o));
    assert!(o.stdout.is_empty());
    assert!(text(&o).1.contains("astran-creds login"));
}

#[test]
fn export_prints_shell_lines() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    let o = env.run(&["export"], None);
    assert_ok(&o, "export");
    let out = text(&o).0;
    let key = env.profile_value("astran", "aws_access_key_id").unwrap();
    assert!(
        out.contains(&format!("export AWS_ACCESS_KEY_ID='{key}'")),
        "{out}"
    );
    assert!(
        out.contains("export AWS_SECRET_ACCESS_KEY=") && out.contains("export AWS_SESSION_TOKEN=")
    );
    // the lines work in a real shell
    let sh = std::process::Command::new("bash")
        .args(["-c", &format!("{out}\nprintf %s \"$AWS_ACCESS_KEY_ID\"")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sh.stdout), key);
    let j = env.run(&["export", "--format", "json"], None);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["AWS_ACCESS_KEY_ID"], key);
}

#[test]
fn other_profiles_and_comments_stay_byte_for_byte() {
    let env = Env::standard();
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    let head = "; written by hand\r\n[default]\r\naws_access_key_id=AKIADEFAULT\r\naws_secret_access_key = x\r\n\r\n";
    let ours = "[astran]\r\n# my note about astran\r\naws_access_key_id = OLD\r\nregion = eu-west-3\r\n\r\n";
    let tail =
        "# the next one\r\n[work]\r\naws_access_key_id = AKIAWORK\r\n\taws_secret_access_key = y";
    std::fs::write(&env.creds, format!("{head}{ours}{tail}")).unwrap();
    std::fs::set_permissions(
        &env.creds,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    assert_ok(&env.login(&[]), "login");
    let after = env.creds_text();
    assert!(after.starts_with(head), "{after:?}");
    assert!(after.ends_with(tail), "{after:?}");
    let mid = &after[head.len()..after.len() - tail.len()];
    assert!(
        mid.starts_with("[astran]\r\n# my note about astran\r\naws_access_key_id = ASIA"),
        "{mid:?}"
    );
    assert!(
        mid.contains("region = eu-west-3\r\n")
            && mid.contains("aws_session_token = ")
            && mid.ends_with("\r\n\r\n")
    );
    assert!(!mid.contains("\n\n") || mid.ends_with("\r\n\r\n"));
    assert_eq!(file_mode(&env.creds), 0o640, "existing mode kept");

    let o = env.run(&["logout", "--remove-profile"], None);
    assert_ok(&o, "logout");
    assert_eq!(env.creds_text(), format!("{head}{tail}"));
    assert_eq!(env.status_json()["accounts"][0]["state"], "logged_out");
}

#[test]
fn symlinked_credentials_file_is_followed() {
    let env = Env::standard();
    let real = env.dir.path().join("dotfiles/aws-credentials");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "[default]\naws_access_key_id = AKIA\n").unwrap();
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &env.creds).unwrap();
    assert_ok(&env.login(&[]), "login");
    assert!(std::fs::symlink_metadata(&env.creds)
        .unwrap()
        .file_type()
        .is_symlink());
    let t = std::fs::read_to_string(&real).unwrap();
    assert!(t.starts_with("[default]\naws_access_key_id = AKIA\n") && t.contains("[astran]"));
}

/// `secret-tool lookup` of this scene's session entry: what gnome-keyring holds.
fn keyring_session(env: &Env) -> std::process::Output {
    secret_tool(
        &[
            "lookup",
            "service",
            &env.keyring_service,
            "username",
            "session:default",
        ],
        None,
    )
}

#[test]
fn session_lives_in_gnome_keyring() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    let o = keyring_session(&env);
    assert_ok(&o, "secret-tool lookup");
    let rec: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rt = rec["refresh_token"].as_str().unwrap();
    assert!(rt.len() > 20);
    assert_eq!(rec["email"], EMAIL);
    // nowhere on disk
    assert!(!env.creds_text().contains(rt));
    assert!(!std::fs::read_to_string(&env.config).unwrap().contains(rt));
    // logout removes it
    assert_ok(&env.run(&["logout"], None), "logout");
    let o = keyring_session(&env);
    assert!(o.stdout.is_empty());
}

fn secret_tool(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut c = std::process::Command::new("secret-tool");
    c.args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus().address)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        stdin.unwrap_or("").as_bytes(),
    )
    .unwrap();
    child.wait_with_output().unwrap()
}

/// The keyring items are laid out as keyring 3 (the crate earlier versions used) lays them
/// out, so either version reads the other's: checked with libsecret's own `secret-tool`.
#[test]
fn keyring_items_are_where_keyring_3_puts_them_both_ways() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    let svc = env.keyring_service.clone();
    // what `secret-tool search` shows of the session's items, but the secret itself
    let search = || -> String {
        let o = secret_tool(
            &[
                "search",
                "--all",
                "service",
                &svc,
                "username",
                "session:default",
            ],
            None,
        );
        assert_ok(&o, "secret-tool search");
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
        .lines()
        .filter(|l| !l.starts_with("secret = "))
        .collect::<Vec<_>>()
        .join("\n")
    };
    let items = |text: &str| text.lines().filter(|l| l.starts_with("label = ")).count();
    let label = format!("session:default@{svc}:default (keyring v3.6.3)");
    let first = search();
    for want in [
        "attribute.target = default",
        "attribute.application = rust-keyring",
        &format!("label = {label}"),
    ] {
        assert!(first.contains(want), "{want:?} not in {first}");
    }
    assert_eq!(items(&first), 1, "{first}");

    // an item written as keyring 3 writes it (here by libsecret) is read and updated in place
    let record = String::from_utf8(keyring_session(&env).stdout).unwrap();
    assert_ok(
        &secret_tool(
            &["clear", "service", &svc, "username", "session:default"],
            None,
        ),
        "clear",
    );
    let store = [
        "store",
        "--label",
        &label,
        "service",
        &svc,
        "username",
        "session:default",
        "target",
        "default",
        "application",
        "rust-keyring",
    ];
    assert_ok(&secret_tool(&store, Some(&record)), "secret-tool store");
    assert_ok(
        &env.run(&["refresh"], None),
        "refresh with the keyring 3 item",
    );
    let after = search();
    assert_eq!(items(&after), 1, "{after}");
    let renewed = String::from_utf8(keyring_session(&env).stdout).unwrap();
    assert!(
        renewed != record,
        "the refresh saved the renewed session into that item"
    );
}

/// `astran-creds daemon --notify log` in the scene (with `var` set), once its control socket
/// is there; it ends with the guard.
fn start_daemon(env: &Env, var: Option<(&str, &str)>) -> Guard {
    let mut cmd = env.cmd(&["daemon", "--notify", "log"]);
    if let Some((k, v)) = var {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let daemon = Guard(cmd.spawn().unwrap());
    wait_for(
        "the daemon's control socket",
        Duration::from_secs(10),
        || env.control_socket().exists(),
    );
    daemon
}

/// A login that STS refuses (HTTP 503) exits 5 and leaves `before` in the keyring.
fn a_refused_login_leaves_the_session(env: &Env, before: &[u8]) {
    let folder = env.creds.parent().unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let (files_before, creds_before) = (listing(), env.creds_text());
    env.idp.sts_fault("http503");
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o).1);
    assert_eq!(
        keyring_session(env).stdout,
        before,
        "the session of the earlier login is back"
    );
    // the credentials file's write made ready while STS answered is gone with it
    assert_eq!(
        listing(),
        files_before,
        "no file left in the credentials' folder"
    );
    assert_eq!(env.creds_text(), creds_before);
    env.idp.sts_fault("none");
}

/// Nothing is kept before STS has answered: a login that STS fails leaves the keyring as it
/// was, the previous session or none.
#[test]
fn a_login_that_sts_fails_leaves_the_keyring_as_it_was() {
    let env = Env::standard();
    env.idp.sts_fault("http503");
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o).1);
    assert!(
        keyring_session(&env).stdout.is_empty(),
        "no session saved by a failed first login"
    );
    env.idp.sts_fault("none");
    assert_ok(&env.login(&[]), "login");
    let before = keyring_session(&env).stdout;
    assert!(!before.is_empty());
    a_refused_login_leaves_the_session(&env, &before);
    // and it still works
    assert_ok(
        &env.run(&["refresh"], None),
        "refresh with the session put back",
    );
}

/// A password read from standard input goes with the owner's check, and the owner makes
/// the login at once (one answer). An owner that predates this answers the check with a
/// ticket (it ignores the password): the command then sends the login as before, with the
/// password it read, and does not read it again. Here that older owner is played by the test.
#[test]
fn an_older_owner_answering_the_check_with_a_ticket_still_makes_the_login() {
    use std::io::{BufRead, BufReader, Write};
    let env = Env::standard();
    let sock = env.control_socket();
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let owner = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(conn.try_clone().unwrap()).lines();
        let mut out = conn;
        let check: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        writeln!(
            out,
            r#"{{"ok":true,"result":{{"account":"default","auth":"password","ticket":"T1"}}}}"#
        )
        .unwrap();
        let login: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        writeln!(
            out,
            r#"{{"ok":true,"result":{{"account":"default","email":"{EMAIL}","profile":"astran","role_arn":"arn:aws:iam::1:role/old-owner","expires_at":"2030-01-01T00:00:00Z","session_expires_at":null,"keyring_unavailable":null}}}}"#
        )
        .unwrap();
        (check, login)
    });
    let o = env.login(&[]);
    assert_ok(&o, "login through an older owner");
    assert!(text(&o).0.contains("old-owner"), "{:?}", text(&o));
    let (check, login) = owner.join().unwrap();
    assert_eq!(check["cmd"], "login_check");
    assert_eq!(
        check["password"], PASSWORD,
        "the check carried the password"
    );
    assert_eq!(login["cmd"], "login");
    assert_eq!(login["ticket"], "T1");
    assert_eq!(
        login["password"], PASSWORD,
        "the password read once, sent again"
    );
    assert_eq!(login["email"], EMAIL);
    assert!(
        !env.creds.exists(),
        "the (played) owner wrote the files, not the command"
    );
}

/// On a desktop the agent holds the keyring open: a login is made by it (the command opens no
/// keyring session and starts no runtime of its own), a logout's keyring changes go through it,
/// and both land in gnome-keyring all the same. An agent whose secrets are elsewhere (here in
/// memory) is another setup: the command logs in and keeps the session itself.
#[test]
fn a_login_beside_a_running_owner_is_made_by_it() {
    let made = "the login is made by the running agent";
    let through = "the keyring's changes go through the running agent";
    for (owner_keyring, by_owner) in [(None, true), (Some("none"), false)] {
        let env = Env::standard();
        let _daemon = start_daemon(&env, owner_keyring.map(|k| ("ASTRAN_KEYRING", k)));
        // the command's own log lines
        let said = |env: &Env, what: &str| env.log_text().matches(what).count();
        assert_ok(&env.login(&[]), "login");
        assert_eq!(
            said(&env, made),
            usize::from(by_owner),
            "{}",
            env.log_text()
        );
        let first = keyring_session(&env);
        assert_ok(&first, "secret-tool lookup");
        let rec: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
        assert_eq!(rec["email"], EMAIL, "the session is in gnome-keyring");
        assert!(
            env.profile_value("astran", "aws_session_token").is_some(),
            "the command's credentials file"
        );
        // a second login replaces it in place, a logout removes it
        assert_ok(&env.login(&[]), "second login");
        let second = keyring_session(&env).stdout;
        assert!(!second.is_empty() && second != first.stdout);
        let all = secret_tool(
            &[
                "search",
                "--all",
                "service",
                &env.keyring_service,
                "username",
                "session:default",
            ],
            None,
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&all.stdout),
            String::from_utf8_lossy(&all.stderr)
        );
        assert_eq!(all.matches("label = ").count(), 1, "{all}");
        // the session is saved while STS answers; when STS refuses, what was there is put
        // back, and the refusal keeps its exit code
        a_refused_login_leaves_the_session(&env, &second);
        assert_ok(&env.login(&[]), "login after the refusal");
        assert_eq!(said(&env, made), 4 * usize::from(by_owner));
        assert_eq!(said(&env, through), 0, "{}", env.log_text());
        assert_ok(&env.run(&["logout"], None), "logout");
        assert_eq!(said(&env, through), usize::from(by_owner));
        assert!(keyring_session(&env).stdout.is_empty(), "logged out");
    }
}

/// The running owner makes a command's login only when the command's setup is its own: a
/// command with other files (here its own credentials file) logs in itself and writes its own
/// file, never the owner's. Through the owner, the command's checks and exit codes stay: a bad
/// profile name is refused (2) before anything is asked, a wrong password says so (3), and
/// neither changes a file.
#[test]
fn the_owner_makes_a_login_only_for_the_same_setup() {
    let made = "the login is made by the running agent";
    let env = Env::standard();
    let _daemon = start_daemon(&env, None);
    let said = |what: &str| env.log_text().matches(what).count();

    let o = env.run(
        &["login", "--email", EMAIL, "--password-stdin"],
        Some("not-the-password\n"),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o).1);
    assert!(text(&o).1.contains(EMAIL), "{}", text(&o).1);
    assert_eq!(said(made), 1, "{}", env.log_text());
    assert!(!env.creds.exists(), "a refused login writes nothing");

    let o = env.login(&["--profile", "a]b"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert_eq!(said(made), 1);
    assert!(!env.creds.exists());

    let other = env.home.join("other-credentials");
    let mut c = env.cmd(&["login", "--email", EMAIL, "--password-stdin"]);
    c.env("AWS_SHARED_CREDENTIALS_FILE", &other);
    let o = env.run_command(c, &["login"], Some(&format!("{PASSWORD}\n")));
    assert_ok(&o, "login with another credentials file");
    assert_eq!(said(made), 1, "not made by the owner: {}", env.log_text());
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("aws_session_token"),
        "the command's own file"
    );
    // The command's login was not written to the owner's file. The account's session is
    // shared (one keyring), though, and the command tells the owner it logged in: the owner
    // then renews its own profile, which has no keys yet, with keys of its own. This is
    // awaited, so that it cannot land in the middle of what follows.
    let owners_key = |env: &Env| env.profile_value("astran", "aws_access_key_id");
    wait_for(
        "the owner's renewal of its profile",
        Duration::from_secs(10),
        || owners_key(&env).is_some() && env.log_text().contains("profile astran renewed"),
    );
    let commands = std::fs::read_to_string(&other).unwrap();
    assert!(
        !commands.contains(&owners_key(&env).unwrap()),
        "keys of its own"
    );
    // (a credentials file the secrets scan does not know)
    std::fs::remove_file(&other).unwrap();

    assert_ok(&env.login(&[]), "login with the owner's setup");
    assert_eq!(said(made), 2);
    assert!(env.creds_text().contains("aws_session_token"));
    // no --email: the owner checks the account (and gives its email) before the password is
    // read, then makes the login
    let before = env.creds_text();
    let o = env.run(
        &["login", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_ok(&o, "login with the account's email");
    assert_eq!(said(made), 3, "{}", env.log_text());
    assert_ne!(env.creds_text(), before, "new credentials");

    // a profile the user took over in ~/.aws/config: refused by the owner's check, then said
    // by the command's own (exit 2, the line named, nothing written, no password read: with
    // nothing on stdin the refusal is still what is said)
    let mine = "[profile astran]\nregion = us-east-1\ncredential_process = /opt/corp/creds\n";
    std::fs::write(&env.aws_config, mine).unwrap();
    let before = env.creds_text();
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("line 3"), "{:?}", text(&o));
    refused_before_the_password(&env);
    assert_eq!(said(made), 3);
    assert_eq!(std::fs::read_to_string(&env.aws_config).unwrap(), mine);
    assert_eq!(env.creds_text(), before);
    assert_ok(&env.login(&["--force"]), "login --force through the owner");
    assert_eq!(said(made), 4);
    assert!(!std::fs::read_to_string(&env.aws_config)
        .unwrap()
        .contains("/opt/corp/creds"));
}

/// The owner keeps the item it changed in place for the reads that follow (the reload after
/// a login); another program deleting it meanwhile is noticed, not taken for a broken keyring.
#[test]
fn an_entry_deleted_behind_the_owner_is_looked_up_again() {
    let env = Env::standard();
    let _daemon = start_daemon(&env, None);
    assert_ok(&env.login(&[]), "login");
    assert_ok(&env.login(&[]), "second login (the item changed in place)");
    assert_ok(
        &secret_tool(
            &[
                "clear",
                "service",
                &env.keyring_service,
                "username",
                "session:default",
            ],
            None,
        ),
        "secret-tool clear",
    );
    assert!(keyring_session(&env).stdout.is_empty(), "deleted");
    let o = env.login(&[]);
    assert_ok(&o, "login after the deletion");
    assert!(
        !text(&o).1.contains("keyring"),
        "no keyring trouble said: {}",
        text(&o).1
    );
    // the agent made the change (the command did not fall back to a keyring of its own)
    assert!(
        !env.log_text().contains("did not change the keyring"),
        "{}",
        env.log_text()
    );
    let rec: serde_json::Value = serde_json::from_slice(&keyring_session(&env).stdout).unwrap();
    assert_eq!(rec["email"], EMAIL, "the session is saved anew");
}

#[test]
fn without_a_keyring_login_still_works_and_says_so() {
    let env = Env::standard().with_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let o = env.login(&[]);
    assert_ok(&o, "login without keyring");
    assert!(
        text(&o).1.contains("no keyring service is reachable"),
        "{:?}",
        text(&o)
    );
    assert!(env.profile_value("astran", "aws_access_key_id").is_some());
    let o = env.run(&["refresh"], None);
    assert_eq!(o.status.code(), Some(4), "{:?}", text(&o));
}

#[test]
fn idp_faults_give_clear_errors_and_leave_the_file() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "first login");
    let before = env.creds_text();
    for (mode, code, words) in [
        ("http503", 5, "unavailable"),
        ("malformed", 5, "malformed"),
        ("empty", 5, "malformed"),
        ("hang", 5, "did not answer in time"),
        ("no_role_claim", 6, "carries no role"),
    ] {
        env.idp.fault(mode);
        let start = std::time::Instant::now();
        let o = env.login(&[]);
        assert_eq!(o.status.code(), Some(code), "{mode}: {:?}", text(&o));
        let err = text(&o).1;
        assert!(err.contains(words), "{mode}: {err}");
        assert!(err.lines().count() == 1, "{mode}: one line: {err}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{mode} took {:?}",
            start.elapsed()
        );
        assert_eq!(env.creds_text(), before, "{mode}: file untouched");
        env.idp.fault("none");
    }
    // nothing listening
    let env2 = Env::standard().with_env(
        "ASTRAN_IDP_URL",
        &format!("http://127.0.0.1:{}/token", free_port()),
    );
    let mut c = env2.cmd(&["login", "--email", EMAIL, "--password-stdin"]);
    c.env(
        "ASTRAN_IDP_URL",
        format!("http://127.0.0.1:{}/token", free_port()),
    );
    let o = run_with_stdin(c, PASSWORD);
    assert_eq!(o.status.code(), Some(5), "{:?}", text(&o));
    assert!(text(&o).1.contains("connection refused"), "{:?}", text(&o));
}

fn run_with_stdin(mut c: std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut ch = c.spawn().unwrap();
    // a refusal comes before the password is read: the pipe may be closed by then
    match ch.stdin.take().unwrap().write_all(input.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    ch.wait_with_output().unwrap()
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let env = Env::standard();
    let mut c = env.cmd(&["login", "--email", EMAIL, "--password-stdin"]);
    c.env(
        "ASTRAN_IDP_URL",
        "http://astran.cloud-iam.com/auth/realms/root-accounts/protocol/openid-connect/token",
    );
    let o = run_with_stdin(c, PASSWORD);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("https://"));
    let mut c = env.cmd(&["login", "--email", EMAIL, "--password-stdin"]);
    c.env("ASTRAN_STS_ENDPOINT", "http://demo.sts.astran.io");
    let o = run_with_stdin(c, PASSWORD);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(!env.creds.exists());
}

#[test]
fn invalid_config_names_file_line_and_key() {
    let env = Env::standard();
    env.write_config("[accounts.default]\nemail = \"a@b.c\"\nduration_seconds = \"an hour\"\n");
    let o = env.run(&["status"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains(env.config.to_str().unwrap())
            && err.contains("line 3")
            && err.contains("duration_seconds"),
        "{err}"
    );
}

#[test]
fn bad_usage_is_exit_2() {
    let env = Env::standard();
    assert_eq!(
        env.run(
            &[
                "login",
                "--duration",
                "60",
                "--email",
                EMAIL,
                "--password-stdin"
            ],
            Some("x\n")
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(env.run(&["no-such-command"], None).status.code(), Some(2));
    let o = env.run(&["login", "--email", EMAIL], None);
    assert_eq!(
        o.status.code(),
        Some(2),
        "no terminal, no --password-stdin: {:?}",
        text(&o)
    );
}

#[test]
fn a_running_daemon_picks_up_a_new_login_and_stays_single() {
    let env = Env::standard();
    write_config(&env, "duration_seconds = 900\nrefresh_lead_seconds = 897\n");
    let _daemon = start_daemon(&env, None);
    // a second daemon refuses to start
    let o = env.run(&["daemon", "--notify", "log"], None);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("already running"));
    // the daemon slept with nothing to do; the login wakes it through the socket
    assert_ok(&env.login(&[]), "login");
    let first = env.profile_value("astran", "aws_access_key_id").unwrap();
    env.wait_for_new_key(
        "astran",
        &first,
        "the daemon to renew the new login",
        Duration::from_secs(20),
    );
}

#[test]
fn the_password_is_on_no_command_line_or_environment() {
    let env = Env::standard();
    env.idp.fault("hang");
    let mut c = env.cmd(&["login", "--email", EMAIL, "--password-stdin"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Guard(c.spawn().unwrap());
    {
        use std::io::Write;
        let mut stdin = child.0.stdin.take().unwrap();
        stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    }
    // the login is in flight: the IdP holds the password grant
    wait_for("the password grant", Duration::from_secs(10), || {
        env.idp.stats()["password_grants"].as_u64() == Some(1)
    });
    let mut seen = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("astran-test-idp") {
            continue; // the test server is given its users on its command line
        }
        for what in ["cmdline", "environ"] {
            if let Ok(bytes) = std::fs::read(entry.path().join(what)) {
                seen += 1;
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(PASSWORD),
                    "{}/{what} holds the password",
                    entry.path().display()
                );
            }
        }
    }
    let own = std::fs::read(format!("/proc/{}/cmdline", child.0.id())).unwrap();
    assert!(String::from_utf8_lossy(&own).contains("--password-stdin"));
    assert!(seen > 2);
}

#[test]
fn the_secrets_scan_catches_a_leak() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    assert!(
        env.log_text().contains("TRACE"),
        "the scene logs at trace level"
    );
    let secret = env
        .profile_value("astran", "aws_secret_access_key")
        .unwrap();
    std::fs::write(env.dir.path().join("leak.txt"), &secret).unwrap();
    let scan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(env)));
    assert!(scan.is_err(), "the scan must catch an STS secret in a file");
}

/// A profile name that would break `~/.aws/credentials` (`]`, a line break) is refused on
/// every path: the flag, the environment, the config file; on login, refresh, status and
/// daemon start; with exit 2 and the credentials file byte for byte as it was.
#[test]
fn a_profile_name_that_would_break_the_file_is_refused_on_every_path() {
    let env = Env::standard();
    let before = "# mine\r\n[keep]\r\naws_access_key_id = AKIAKEEP\r\n";
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(&env.creds, before).unwrap();
    let refused = |o: &Output, what: &str| {
        let (_, err) = text(o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("not a usable profile name"), "{what}: {err}");
        assert_eq!(env.creds_text(), before, "{what}: the file changed");
    };
    for bad in ["a]b", "[x", "a\nb"] {
        refused(
            &env.login(&["--profile", bad]),
            &format!("--profile {bad:?}"),
        );
    }
    let o = env
        .cmd(&["login", "--email", EMAIL, "--password-stdin"])
        .env("ASTRAN_PROFILE", "x]y")
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    refused(&o, "ASTRAN_PROFILE");
    // a good login, then the config file is edited by hand
    assert_ok(&env.login(&[]), "login");
    let good = env.creds_text();
    for body in ["profile = \"a]b\"\n", "profile = \"a\\nb\"\n"] {
        write_config(&env, body);
        for args in [
            &["refresh"][..],
            &["status"],
            &["daemon", "--notify", "log"],
            &["logout", "--remove-profile"],
            &["credential-process"],
        ] {
            let o = env.run(args, None);
            let (_, err) = text(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?} with {body:?}: {err}");
            assert!(
                err.contains(env.config.to_str().unwrap())
                    && err.contains("line 3")
                    && err.contains("profile"),
                "{args:?}: {err}"
            );
            assert_eq!(env.creds_text(), good, "{args:?} changed the file");
        }
        let o = env.login(&[]);
        assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
        assert_eq!(env.creds_text(), good);
    }
}

/// A config file that cannot be read is reported and never written over, by a login (which
/// remembers the email) or anything else.
#[test]
fn a_config_file_that_cannot_be_read_is_never_overwritten() {
    let env = Env::standard();
    // not UTF-8: the user's to fix (exit 2)
    let bytes = b"# \xff\xfe notes\n[accounts.default]\n";
    std::fs::create_dir_all(env.config.parent().unwrap()).unwrap();
    std::fs::write(&env.config, bytes).unwrap();
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("not UTF-8"), "{:?}", text(&o));
    assert_eq!(std::fs::read(&env.config).unwrap(), bytes);
    assert!(!env.creds.exists(), "nothing written");
    // a directory where the file should be: a local error (exit 7)
    std::fs::remove_file(&env.config).unwrap();
    std::fs::create_dir(&env.config).unwrap();
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(7), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("cannot read the config file"),
        "{:?}",
        text(&o)
    );
    assert!(env.config.is_dir());
    assert!(!env.creds.exists(), "nothing written");
    // unreadable by permission (meaningless as root, who reads anything)
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::remove_dir(&env.config).unwrap();
        std::fs::write(&env.config, "[accounts.default]\n").unwrap();
        std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o200)).unwrap();
        let o = env.login(&[]);
        assert_eq!(o.status.code(), Some(7), "{:?}", text(&o));
        std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&env.config).unwrap(),
            "[accounts.default]\n"
        );
    }
}

/// The profile alone finds Astran: login writes `[profile astran]` with `services = astran`
/// and `[services astran]` with the endpoints, so the AWS CLI needs no `--endpoint-url`.
#[test]
fn the_aws_config_carries_the_endpoints_so_the_profile_alone_works() {
    let env = Env::standard().with_env("ASTRAN_S3_ENDPOINT", moto_url());
    std::fs::create_dir_all(env.aws_config.parent().unwrap()).unwrap();
    let mine = "# my settings\r\n[default]\r\nregion = us-east-1\r\n\r\n[profile astran]\r\noutput = json\r\n\r\n[sso-session corp]\r\nsso_region = eu-west-1\r\n\r\n[services other]\r\ns3 =\r\n  endpoint_url = https://s3.example.com\r\n";
    std::fs::write(&env.aws_config, mine).unwrap();
    write_config(&env, "region = \"eu-west-3\"\n");
    assert_ok(&env.login(&[]), "login");
    let cfg = std::fs::read_to_string(&env.aws_config).unwrap();
    // the user's bytes, then ours
    let (head, tail) = cfg.split_at(cfg.find("services = astran").unwrap());
    assert_eq!(head, "# my settings\r\n[default]\r\nregion = us-east-1\r\n\r\n[profile astran]\r\noutput = json\r\n");
    assert!(tail.starts_with("services = astran\r\nregion = eu-west-3\r\n\r\n[sso-session corp]\r\nsso_region = eu-west-1\r\n\r\n[services other]\r\ns3 =\r\n  endpoint_url = https://s3.example.com\r\n"), "{tail:?}");
    assert!(
        tail.ends_with(&format!(
            "[services astran]\r\ns3 =\r\n  endpoint_url = {}\r\nsts =\r\n  endpoint_url = {}\r\niam =\r\n  endpoint_url = https://demo.iam.astran.io\r\n",
            moto_url(),
            env.sts
        )),
        "{tail:?}"
    );
    assert_eq!(
        file_mode(&env.aws_config),
        0o644,
        "the mode the user gave it, kept"
    );
    // no --endpoint-url: the profile says where S3 is
    let b = bucket("profile-only");
    let mb = env.aws(&["--profile", "astran", "s3", "mb", &format!("s3://{b}")]);
    assert_ok(&mb, "aws s3 mb with the profile alone");
    assert!(text(&mb).0.contains(&format!("make_bucket: {b}")));
    // boto3 reads the same
    let py = "import boto3; s = boto3.Session(profile_name='astran'); \
              print(s.client('s3').meta.endpoint_url, s.region_name)";
    let o = env
        .command(venv_bin("python"))
        .args(["-c", py])
        .output()
        .unwrap();
    assert_ok(&o, "boto3");
    assert_eq!(text(&o).0.trim(), format!("{} eu-west-3", moto_url()));
    // a renewal writes the same again, nothing else changes
    assert_ok(&env.run(&["refresh"], None), "refresh");
    assert_eq!(std::fs::read_to_string(&env.aws_config).unwrap(), cfg);
    // logout --remove-profile takes out our keys and section only
    assert_ok(&env.run(&["logout", "--remove-profile"], None), "logout");
    let left = std::fs::read_to_string(&env.aws_config).unwrap();
    assert_eq!(left.trim_end(), mine.trim_end(), "{left:?}");
}

/// Two accounts: two profiles, two `[services …]` sections.
#[test]
fn two_accounts_give_two_profiles_and_two_services_sections() {
    let env = Env::new(Idp::start(
        &[
            &format!("{EMAIL}:{PASSWORD}:{}", role(1)),
            &format!("b@astran.io:{PASSWORD}:{}", role(2)),
        ],
        &[],
    ));
    env.write_config(&format!(
        "[accounts.a]\nemail = \"{EMAIL}\"\nprofile = \"astran-a\"\n\
         [accounts.b]\nemail = \"b@astran.io\"\nprofile = \"astran-b\"\nendpoints = {{ s3 = \"{}\" }}\n",
        moto_url()
    ));
    for (acct, email) in [("a", EMAIL), ("b", "b@astran.io")] {
        let o = env.run(
            &[
                "login",
                "--account",
                acct,
                "--email",
                email,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
        assert_ok(&o, acct);
    }
    let cfg = std::fs::read_to_string(&env.aws_config).unwrap();
    for p in ["astran-a", "astran-b"] {
        assert_eq!(
            cfg.matches(&format!("[profile {p}]\nservices = {p}\n"))
                .count(),
            1,
            "{cfg}"
        );
        assert_eq!(
            cfg.matches(&format!("[services {p}]\n")).count(),
            1,
            "{cfg}"
        );
    }
    assert!(
        cfg.contains("[services astran-a]\ns3 =\n  endpoint_url = https://demo.s3.astran.io\n"),
        "{cfg}"
    );
    assert!(
        cfg.contains(&format!(
            "[services astran-b]\ns3 =\n  endpoint_url = {}\n",
            moto_url()
        )),
        "{cfg}"
    );
    let b = bucket("account-b");
    assert_ok(
        &env.aws(&["--profile", "astran-b", "s3", "mb", &format!("s3://{b}")]),
        "s3 mb as b",
    );
}

/// A login whose profile the user took over in `~/.aws/config` (line 3), with nothing on
/// stdin: refused before the password is asked for, so the refusal is what is said, not that
/// no password came.
fn refused_before_the_password(env: &Env) {
    let o = env
        .cmd(&["login", "--email", EMAIL, "--password-stdin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("line 3") && !text(&o).1.contains("password"),
        "{:?}",
        text(&o)
    );
}

/// A profile the user set up for something else is not taken over: refused (exit 2, the line
/// named, no file changed) unless --force; write_aws_config = false leaves the file alone;
/// a bad `endpoints` entry is refused naming the key.
#[test]
fn a_users_own_profile_is_not_taken_over_and_bad_endpoints_are_refused() {
    let env = Env::standard();
    std::fs::create_dir_all(env.aws_config.parent().unwrap()).unwrap();
    let mine = "[profile astran]\nregion = us-east-1\ncredential_process = /opt/corp/creds\n";
    std::fs::write(&env.aws_config, mine).unwrap();
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let err = text(&o).1;
    assert!(
        err.contains(&format!("{} line 3", env.aws_config.display()))
            && err.contains("credential_process")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&env.aws_config).unwrap(), mine);
    assert!(!env.creds.exists(), "no file changed");
    // refused before the password is asked for: with nothing on stdin, the refusal is what
    // is said, not that no password came
    refused_before_the_password(&env);
    // opting out: the credentials are written, the config file is not touched
    write_config(&env, "write_aws_config = false\n");
    assert_ok(&env.login(&[]), "login without the config file");
    assert_eq!(std::fs::read_to_string(&env.aws_config).unwrap(), mine);
    // --force replaces the conflicting line
    write_config(&env, "");
    assert_ok(&env.login(&["--force"]), "login --force");
    let cfg = std::fs::read_to_string(&env.aws_config).unwrap();
    assert!(
        cfg.starts_with("[profile astran]\nregion = us-east-1\nservices = astran\n")
            && !cfg.contains("credential_process"),
        "{cfg}"
    );
    // endpoints: unknown service, remote http
    for (body, key) in [
        ("endpoints = { s4 = \"https://x\" }\n", "s4"),
        (
            "endpoints = { s3 = \"http://s3.example.com\" }\n",
            "endpoints.s3",
        ),
    ] {
        write_config(&env, body);
        let before = std::fs::read_to_string(&env.aws_config).unwrap();
        let o = env.login(&[]);
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains("line 3") && err.contains(key), "{body}: {err}");
        assert_eq!(std::fs::read_to_string(&env.aws_config).unwrap(), before);
    }
    write_config(&env, "");
    let o = env
        .cmd(&["login", "--email", EMAIL, "--password-stdin"])
        .env("ASTRAN_IAM_ENDPOINT", "http://iam.example.com")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(
        text(&o)
            .1
            .starts_with("astran-creds: ASTRAN_IAM_ENDPOINT: "),
        "{:?}",
        text(&o)
    );
}

/// `credential_mode = "process"`: `~/.aws/config` gets our `credential_process` line, the
/// credentials file none of our keys (they would win over it), the keyring holds them, and
/// the AWS CLI runs us for them; switching back writes the keys and takes the line out.
#[test]
fn process_mode_feeds_the_aws_cli_through_credential_process() {
    let env = Env::standard().with_env("ASTRAN_S3_ENDPOINT", moto_url());
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(&env.creds, "[keep]\naws_access_key_id = AKIAKEEP\n").unwrap();
    // a static login first: its keys must go when the mode changes
    assert_ok(&env.login(&[]), "static login");
    assert!(env.profile_value("astran", "aws_access_key_id").is_some());
    write_config(&env, "credential_mode = \"process\"\n");
    assert_ok(&env.login(&[]), "process login");
    assert_eq!(
        env.creds_text(),
        "[keep]\naws_access_key_id = AKIAKEEP\n\n",
        "our keys out of the credentials file, the rest kept"
    );
    let cfg = std::fs::read_to_string(&env.aws_config).unwrap();
    let line = format!(
        "credential_process = \"{}\" credential-process --account default\n",
        astran_creds_bin().display()
    );
    assert!(
        cfg.contains(&format!("[profile astran]\nservices = astran\n{line}")),
        "{cfg}"
    );
    // the AWS CLI runs `astran-creds credential-process`, which reads the keyring
    let b = bucket("process");
    let mb = env.aws(&["--profile", "astran", "s3", "mb", &format!("s3://{b}")]);
    assert_ok(&mb, "aws s3 mb through credential_process");
    let st = env.status_json();
    assert_eq!(st["accounts"][0]["state"], "fresh", "{st}");
    assert!(
        st["accounts"][0]["credentials_expire_at"].is_string(),
        "{st}"
    );
    // a renewal in process mode keeps it so
    assert_ok(&env.run(&["refresh"], None), "refresh");
    assert!(env.profile_value("astran", "aws_access_key_id").is_none());
    assert!(std::fs::read_to_string(&env.aws_config)
        .unwrap()
        .contains(&line));
    // back to static: keys written, the line gone
    write_config(&env, "credential_mode = \"static\"\n");
    assert_ok(&env.run(&["refresh"], None), "refresh in static mode");
    assert!(env
        .profile_value("astran", "aws_access_key_id")
        .is_some_and(|k| k.starts_with("ASIA")));
    let cfg = std::fs::read_to_string(&env.aws_config).unwrap();
    assert!(!cfg.contains("credential_process"), "{cfg}");
    assert_ok(
        &env.aws(&["--profile", "astran", "s3", "ls"]),
        "aws s3 ls with the static keys",
    );
}

/// A profile the user takes over after a login: a renewal still renews the keys and leaves
/// their `~/.aws/config` as they made it (saying so in the log); a new login refuses.
#[test]
fn a_renewal_leaves_a_profile_the_user_took_over_since() {
    let env = Env::standard();
    assert_ok(&env.login(&[]), "login");
    let key = env.profile_value("astran", "aws_access_key_id").unwrap();
    let cfg = std::fs::read_to_string(&env.aws_config).unwrap();
    let theirs = cfg.replace("services = astran", "services = corp");
    std::fs::write(&env.aws_config, &theirs).unwrap();
    assert_ok(&env.run(&["refresh"], None), "refresh");
    assert_ne!(
        env.profile_value("astran", "aws_access_key_id").unwrap(),
        key
    );
    assert_eq!(std::fs::read_to_string(&env.aws_config).unwrap(), theirs);
    assert!(
        env.log_text().contains("~/.aws/config not updated"),
        "{}",
        env.log_text()
    );
    let o = env.login(&[]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("services = corp"), "{:?}", text(&o));
}

#[test]
fn status_timeline_lists_what_comes_next_and_events_come_from_the_running_daemon() {
    let env = Env::standard();
    // renewed 12 min before the hour's credentials expire; Keycloak's session idles out
    // after 30 min (the test IdP's SSO Session Idle)
    write_config(&env, "refresh_lead_seconds = 720\n");
    // no owner yet: nothing remembers events
    let o = env.run(&["events"], None);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o).1);
    assert!(text(&o).1.contains("not running"), "{}", text(&o).1);

    let t0 = time::OffsetDateTime::now_utc();
    assert_ok(&env.login(&[]), "login");
    let o = env.run(&["status", "--json"], None);
    assert_ok(&o, "status --json");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tl = &doc["accounts"][0]["timeline"];
    let at = |kind: &str| -> Vec<f64> {
        tl["marks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["kind"] == kind)
            .map(|m| {
                let t = time::OffsetDateTime::parse(
                    m["at"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                ((t - t0).as_seconds_f64() / 60.0).round()
            })
            .collect()
    };
    assert_eq!(at("credentials_expire"), [60.0], "{tl}");
    assert_eq!(at("session_idle_end"), [30.0], "{tl}");
    assert_eq!(at("renewal")[..2], [48.0, 96.0], "{tl}");
    assert_eq!(at("keep_alive")[..2], [28.0, 76.0], "{tl}");
    assert!(at("login_needed").is_empty(), "{tl}");
    // at least the next 12 hours
    let span = |k: &str| {
        time::OffsetDateTime::parse(
            tl[k].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!((span("to") - span("from")).whole_hours(), 12, "{tl}");
    let o = env.run(&["status", "--timeline"], None);
    assert_ok(&o, "status --timeline");
    let out = text(&o).0;
    assert!(out.contains(" renewal\n"), "{out}");
    assert!(out.contains(" renewal (projected)\n"), "{out}");
    assert!(out.contains(" session idle end\n"), "{out}");

    // the daemon renews at once (lead = lifetime - 3 s) and remembers it; then the IdP fails
    write_config(&env, "duration_seconds = 900\nrefresh_lead_seconds = 897\n");
    assert_ok(&env.login(&[]), "login again");
    let first = env.profile_value("astran", "aws_access_key_id").unwrap();
    let mut cmd = env.cmd(&["daemon", "--notify", "log"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _daemon = Guard(cmd.spawn().unwrap());
    env.wait_for_new_key(
        "astran",
        &first,
        "the daemon's renewal",
        Duration::from_secs(30),
    );
    env.idp.fault("http503");
    let mut events = serde_json::Value::Null;
    wait_for("a failure event", Duration::from_secs(30), || {
        let o = env.run(&["events", "--json"], None);
        events = serde_json::from_slice(&o.stdout).unwrap_or_default();
        events["events"][0]["kind"] == "failure"
    });
    env.idp.fault("none");
    let list = events["events"].as_array().unwrap();
    assert!(
        list[0]["words"]
            .as_str()
            .unwrap()
            .starts_with("renewal failed: ")
            && list[0]["words"].as_str().unwrap().contains("503"),
        "{events}"
    );
    assert_eq!(list[0]["account"], "default");
    assert!(
        list.iter()
            .any(|e| e["kind"] == "renewal" && e["words"] == "profile astran renewed"),
        "{events}"
    );
    // newest first, in words with their UTC time
    let o = env.run(&["events", "--limit", "1"], None);
    assert_ok(&o, "events");
    let out = text(&o).0;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("Z default: renewal failed: "), "{out}");
}
