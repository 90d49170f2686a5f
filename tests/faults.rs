//! The fault matrix: every way the IdP, STS or the network can fail, through the real
//! `astran-creds` binary. Each fault gives its documented exit code and one line a person can
//! act on, and leaves the credentials file byte-identical. The daemon backs off with jitter
//! while STS fails and recovers when it returns, with one notification per state change.
//! See docs/reliability.md for the table.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
use common::*;
use std::time::{Duration, Instant};

fn scene() -> Env {
    // STS goes through the test IdP's fault-injecting front (see tests/common)
    Env::standard()
}

/// Run `login`, check exit code, message and the file; `what` names the case.
fn expect_login_failure(env: &Env, what: &str, code: i32, words: &[&str], before: &str) {
    let start = Instant::now();
    let o = env.login(&[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    for w in words {
        assert!(err.contains(w), "{what}: {err:?} lacks {w:?}");
    }
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
    assert!(err.starts_with("astran-creds: "), "{what}: {err}");
    assert!(!err.contains(PASSWORD), "{what}: {err}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{what} took {:?}",
        start.elapsed()
    );
    assert_eq!(env.creds_text(), before, "{what}: the file is untouched");
}

#[test]
fn sts_faults_give_their_exit_codes_and_leave_the_file() {
    let env = scene();
    assert_ok(&env.login(&[]), "login through the STS front");
    assert!(env.idp.sts_stats()["forwarded"].as_u64().unwrap() >= 1);
    let before = env.creds_text();
    for (mode, code, words) in [
        ("expired_token", 4, &["expired", "clock"][..]),
        (
            "invalid_identity_token",
            6,
            &["refused the identity token", "InvalidIdentityToken"],
        ),
        ("access_denied", 6, &["refused to let you assume", &role(1)]),
        ("throttling", 5, &["busy", "try again later"]),
        ("http503", 5, &["unavailable (HTTP 503)", "try again later"]),
        ("malformed", 5, &["malformed"]),
        ("empty", 5, &["malformed"]),
        ("missing_fields", 5, &["malformed", "missing"]),
        ("hang", 5, &["did not answer in time"]),
    ] {
        env.idp.sts_fault(mode);
        expect_login_failure(&env, &format!("STS {mode}"), code, words, &before);
        // the same through the held session (refresh grant, then STS)
        let o = env.run(&["refresh"], None);
        assert_eq!(
            o.status.code(),
            Some(code),
            "refresh, STS {mode}: {:?}",
            text(&o)
        );
        assert_eq!(env.creds_text(), before, "refresh, STS {mode}: untouched");
    }
    env.idp.sts_fault("none");
    assert_ok(&env.run(&["refresh"], None), "refresh once STS is back");
    assert_ne!(env.creds_text(), before);
}

#[test]
fn idp_faults_give_their_exit_codes_and_leave_the_file() {
    let env = scene();
    assert_ok(&env.login(&[]), "login");
    let before = env.creds_text();
    for (mode, code, words) in [
        ("http500", 5, &["unavailable (HTTP 500)"][..]),
        ("http502", 5, &["unavailable (HTTP 502)"]),
        ("http503", 5, &["unavailable (HTTP 503)"]),
        ("malformed", 5, &["malformed"]),
        ("empty", 5, &["malformed"]),
        ("hang", 5, &["did not answer in time"]),
        ("close", 5, &["unreachable"]),
        ("no_role_claim", 6, &["carries no role"]),
    ] {
        env.idp.fault(mode);
        expect_login_failure(&env, &format!("IdP {mode}"), code, words, &before);
        env.idp.fault("none");
    }
}

#[test]
fn tokens_with_zero_or_several_roles() {
    let idp = Idp::start(
        &[
            &format!("{EMAIL}:{PASSWORD}:"),
            &format!("two@astran.io:{PASSWORD}:{},{}", role(1), role(2)),
        ],
        &[],
    );
    let env = Env::new(idp);
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(&env.creds, "[keep]\naws_access_key_id = AKIAKEEP\n").unwrap();
    let before = env.creds_text();
    expect_login_failure(&env, "zero roles", 6, &["empty role list"], &before);
    // several roles, none chosen: a usage error that lists them
    let o = env.run(
        &["login", "--email", "two@astran.io", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&role(1)) && err.contains(&role(2)), "{err}");
    assert_eq!(env.creds_text(), before);
}

#[test]
fn network_failures_name_the_host_and_leave_the_file() {
    let env = scene();
    assert_ok(&env.login(&[]), "login");
    let before = env.creds_text();
    let port = free_port();
    for (what, var, url, words) in [
        (
            "IdP refused",
            "ASTRAN_IDP_URL",
            format!("http://127.0.0.1:{port}/token"),
            &["connection refused"][..],
        ),
        (
            "STS refused",
            "ASTRAN_STS_ENDPOINT",
            format!("http://127.0.0.1:{port}/"),
            &["STS", "connection refused"],
        ),
        (
            "IdP DNS",
            "ASTRAN_IDP_URL",
            "https://idp.astran-test.invalid/token".to_string(),
            &["cannot resolve idp.astran-test.invalid"],
        ),
        (
            "STS DNS",
            "ASTRAN_STS_ENDPOINT",
            "https://sts.astran-test.invalid/".to_string(),
            &["cannot resolve sts.astran-test.invalid"],
        ),
    ] {
        // the broken endpoint overrides the scene's own
        let mut c = env.cmd(&["login", "--email", EMAIL, "--password-stdin"]);
        c.env(var, &url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        std::io::Write::write_all(
            &mut ch.stdin.take().unwrap(),
            format!("{PASSWORD}\n").as_bytes(),
        )
        .unwrap();
        let o = ch.wait_with_output().unwrap();
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(5), "{what}: {err}");
        for w in words {
            assert!(err.contains(w), "{what}: {err:?} lacks {w:?}");
        }
        assert_eq!(env.creds_text(), before, "{what}: the file is untouched");
    }
}

#[test]
fn daemon_backs_off_with_jitter_and_recovers_when_sts_returns() {
    let env = scene().with_env("ASTRAN_PROFILE", &format!("backoff-{}", std::process::id()));
    let profile = env.extra_env[0].1.clone();
    // renewal due 5 s after each login
    env.write_config(
        "[accounts.default]
duration_seconds = 900
refresh_lead_seconds = 895
",
    );
    assert_ok(&env.login(&[]), "login");
    let first = env.profile_value(&profile, "aws_access_key_id").unwrap();
    env.idp.sts_fault("http503");
    let before = env.creds_text();
    let mut cmd = env.cmd(&["daemon"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _daemon = Guard(cmd.spawn().unwrap());

    let failing = format!("{profile}: cannot renew");
    wait_for(
        "a 'cannot renew' notice after three failed attempts",
        Duration::from_secs(45),
        || !notifications_about(&failing).is_empty(),
    );
    let ms: Vec<u64> = env.idp.sts_stats()["request_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // the login's request, then the daemon's three failed attempts
    assert!(ms.len() >= 4, "{ms:?}");
    let gaps: Vec<f64> = ms[1..]
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1000.0)
        .collect();
    // backoff 5 s, then 10 s, each with jitter in [1/2, 1]; plus up to 3 s for the attempt's
    // own refresh grant on a loaded machine
    assert!((2.4..=8.0).contains(&gaps[0]), "first backoff {gaps:?}");
    assert!((4.9..=13.0).contains(&gaps[1]), "second backoff {gaps:?}");
    assert_eq!(
        env.creds_text(),
        before,
        "failed attempts leave the file alone"
    );

    env.idp.sts_fault("none");
    env.wait_for_new_key(
        &profile,
        &first,
        "the daemon to renew once STS is back",
        Duration::from_secs(30),
    );
    let recovered = format!("{profile}: credentials renewed");
    wait_for("a recovery notice", Duration::from_secs(5), || {
        !notifications_about(&recovered).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(notifications_about(&failing).len(), 1, "one failure notice");
    assert_eq!(
        notifications_about(&recovered).len(),
        1,
        "one recovery notice"
    );
}
