//! File safety under concurrency: six `astran-creds login` processes writing six accounts'
//! profiles, the tray agent and the CLI daemon running side by side and renewing two more
//! profiles as fast as they are asked, while two readers parse the file continuously (ours,
//! and botocore as the AWS CLI reads it). No read may ever see a torn or partial file, no
//! profile may be lost, the user's profile stays byte for byte, the mode stays 0600, no temp
//! file is left, and the config file keeps every account.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
use common::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ORIGINAL: &str = "# my profiles, by hand\r\n[keep]\r\naws_access_key_id = AKIAKEEPME\r\nregion = eu-west-3\r\n\r\n";
const WRITERS: usize = 6;
const LOGINS_EACH: usize = 4;
const OURS: &[&str] = astran_creds::awsfile::MANAGED_KEYS;

fn ask(socket: &std::path::Path, req: &str) -> String {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    writeln!(s, "{req}").unwrap();
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line
}

#[test]
fn concurrent_writers_never_tear_or_lose_the_file() {
    let env = Env::standard();
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(&env.creds, ORIGINAL).unwrap();
    std::fs::set_permissions(
        &env.creds,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::create_dir_all(env.config.parent().unwrap()).unwrap();
    std::fs::write(
        &env.config,
        "[accounts.tray]\nprofile = \"tray-profile\"\nduration_seconds = 900\n\n[accounts.daemon]\nprofile = \"daemon-profile\"\nduration_seconds = 900\n",
    )
    .unwrap();
    for a in ["tray", "daemon"] {
        assert_ok(&env.login(&["--account", a]), a);
    }
    let key_of = |p: &str| env.profile_value(p, "aws_access_key_id").unwrap();
    let (tray_key, daemon_key) = (key_of("tray-profile"), key_of("daemon-profile"));

    // the tray agent and the daemon, each with its own control socket
    sni_watcher();
    let run = env.dir.path().join("run");
    let tray_sock = run.join("tray.sock");
    let daemon_sock = run.join("daemon.sock");
    let mut tray = env.command(workspace_bin("astran-tray"));
    tray.env("ASTRAN_IDP_URL", &env.idp.token_url)
        .env("ASTRAN_STS_ENDPOINT", &env.sts)
        .env("ASTRAN_CONTROL_SOCKET", &tray_sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _tray = Guard(tray.spawn().unwrap());
    let mut daemon = env.cmd(&["daemon", "--notify", "log"]);
    daemon
        .env("ASTRAN_CONTROL_SOCKET", &daemon_sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _daemon = Guard(daemon.spawn().unwrap());
    wait_for("both agents to listen", Duration::from_secs(20), || {
        ask(&tray_sock, r#"{"cmd":"ping"}"#).contains("true")
            && ask(&daemon_sock, r#"{"cmd":"ping"}"#).contains("true")
    });

    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<Mutex<HashSet<String>>> = Arc::default();

    // reader 1: ours, in-process, as fast as it can
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, done, reads, path) =
            (stop.clone(), done.clone(), reads.clone(), env.creds.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let must_have: HashSet<String> = done.lock().unwrap().clone();
                let text = std::fs::read_to_string(&path).expect("the file is always there");
                assert!(
                    text.starts_with(ORIGINAL),
                    "the user's bytes changed: {text:?}"
                );
                let names = astran_creds::credfile::profile_names(&text);
                let unique: HashSet<&String> = names.iter().collect();
                assert_eq!(unique.len(), names.len(), "duplicate sections: {names:?}");
                for n in names.iter().filter(|n| *n != "keep") {
                    let kv = astran_creds::credfile::read_profile(&text, n).unwrap();
                    for k in OURS {
                        assert!(
                            kv.iter().any(|(kk, _)| kk == k),
                            "torn [{n}] lacks {k}: {text:?}"
                        );
                    }
                }
                for p in &must_have {
                    assert!(names.contains(p), "profile {p} was lost: {text:?}");
                }
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // reader 2: botocore
    let stop_file = env.dir.path().join("stop-botocore");
    let boto = Command::new(venv_bin("python"))
        .arg(root().join("tests/support/botocore_reader.py"))
        .arg(&env.creds)
        .arg(&stop_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    // ask the agents to renew, again and again
    let asker = {
        let stop = stop.clone();
        let (t, d) = (tray_sock.clone(), daemon_sock.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            // until the writers are done, and at least one renewal each way
            while !stop.load(Ordering::SeqCst) || n < 4 {
                for (sock, acct) in [(&t, "tray"), (&d, "daemon"), (&t, "daemon"), (&d, "tray")] {
                    let r = ask(sock, &format!(r#"{{"cmd":"refresh","account":"{acct}"}}"#));
                    if r.contains("\"ok\":true") {
                        n += 1;
                    } else {
                        eprintln!("refresh {acct}: {r}");
                    }
                }
            }
            n
        })
    };

    // the CLI writers: six accounts, four logins each
    let start = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let mut cmds = Vec::new();
            for _ in 0..LOGINS_EACH {
                let acct = format!("w{i}");
                let profile = format!("p{i}");
                let mut c = env.cmd(&[
                    "login",
                    "--account",
                    &acct,
                    "--profile",
                    &profile,
                    "--email",
                    EMAIL,
                    "--password-stdin",
                ]);
                c.env("ASTRAN_KEYRING", "none")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                cmds.push(c);
            }
            let done = done.clone();
            std::thread::spawn(move || {
                for mut c in cmds {
                    let mut ch = c.spawn().unwrap();
                    ch.stdin
                        .take()
                        .unwrap()
                        .write_all(format!("{PASSWORD}\n").as_bytes())
                        .unwrap();
                    let o = ch.wait_with_output().unwrap();
                    assert!(
                        o.status.success(),
                        "writer {i}: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                    done.lock().unwrap().insert(format!("p{i}"));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("a writer failed");
    }
    let writing = start.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let renewals = asker.join().unwrap();
    reader.join().expect("our reader saw a torn or lost file");
    std::fs::write(&stop_file, "").unwrap();
    let out = boto.wait_with_output().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "{} CLI logins in {writing:?}; {renewals} renewals by the agents; {} reads by us, {} by botocore",
        WRITERS * LOGINS_EACH,
        reads.load(Ordering::SeqCst),
        summary["reads"]
    );
    assert_eq!(
        summary["errors"],
        serde_json::json!([]),
        "botocore: {summary}"
    );
    assert!(summary["reads"].as_u64().unwrap() > 10, "{summary}");
    assert!(reads.load(Ordering::SeqCst) > 100);
    assert!(renewals >= 4, "the agents renewed {renewals} times");

    // nothing lost, nothing left over
    let text = env.creds_text();
    assert!(text.starts_with(ORIGINAL));
    let names = astran_creds::credfile::profile_names(&text);
    let mut expected: Vec<String> = (0..WRITERS).map(|i| format!("p{i}")).collect();
    expected.extend([
        "tray-profile".into(),
        "daemon-profile".into(),
        "keep".into(),
    ]);
    for p in &expected {
        assert_eq!(
            names.iter().filter(|n| *n == p).count(),
            1,
            "{p}: {names:?}"
        );
    }
    assert_eq!(names.len(), expected.len(), "{names:?}");
    assert_ne!(key_of("tray-profile"), tray_key, "the tray renewed");
    assert_ne!(key_of("daemon-profile"), daemon_key, "the daemon renewed");
    assert_eq!(file_mode(&env.creds), 0o600);
    let left: Vec<String> = std::fs::read_dir(env.creds.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "credentials" && n != "config" && !n.ends_with("astran-lock"))
        .collect();
    assert!(left.is_empty(), "left in ~/.aws: {left:?}");
    // the writers of ~/.aws/config (every login and renewal) lost nothing either
    let aws = std::fs::read_to_string(&env.aws_config).unwrap();
    let sections = astran_creds::credfile::profile_names(&aws);
    for p in expected.iter().filter(|p| *p != "keep") {
        for s in [format!("profile {p}"), format!("services {p}")] {
            assert_eq!(
                sections.iter().filter(|n| **n == s).count(),
                1,
                "{s}: {sections:?}"
            );
        }
    }
    let cfg = std::fs::read_to_string(&env.config).unwrap();
    for i in 0..WRITERS {
        assert!(
            cfg.contains(&format!("[accounts.w{i}]")),
            "account w{i} lost: {cfg}"
        );
    }
    assert!(cfg.contains("[accounts.tray]") && cfg.contains("[accounts.daemon]"));
}

/// Spawn `astran-creds refresh` and return once its STS request is in (the slow fault set
/// by the caller holds it two seconds): from then on it holds the account's turn.
fn refresh_in_flight(env: &Env) -> std::process::Child {
    let sent = |env: &Env| env.idp.sts_stats()["requests"].as_u64().unwrap_or(0);
    let before = sent(env);
    let child = env
        .cmd(&["refresh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the renewal's STS request", Duration::from_secs(10), || {
        sent(env) > before
    });
    // what follows gets STS's answers at once
    env.idp.sts_fault("none");
    child
}

/// A renewal in flight (another process's, STS slow to answer) never outlives a logout or a
/// login made meanwhile: they wait for it to end, then go ahead. Otherwise the renewal's late
/// write puts a profile back that `logout --remove-profile` removed, or the old role's keys
/// over those of the login that switched roles.
#[test]
fn a_renewal_in_flight_never_outlives_a_logout_or_a_login() {
    let env = Env::new(Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{},{}", role(1), role(2))],
        &[],
    ));
    assert_ok(&env.login(&["--role-arn", &role(1)]), "login");

    // logout --remove-profile while the renewal waits for STS
    env.idp.sts_fault("slow");
    let renewal = refresh_in_flight(&env);
    let o = env.run(&["logout", "--remove-profile"], None);
    assert_ok(&o, "logout");
    let r = renewal.wait_with_output().unwrap();
    assert_ok(&r, "the renewal");
    assert_eq!(
        env.profile_value("astran", "aws_access_key_id"),
        None,
        "{}",
        env.creds_text()
    );
    let st = env.status_json();
    assert_eq!(st["accounts"][0]["state"], "logged_out", "{st}");

    // a login switching roles while the renewal of the first role waits for STS
    assert_ok(&env.login(&["--role-arn", &role(1)]), "login again");
    env.idp.sts_fault("slow");
    let renewal = refresh_in_flight(&env);
    assert_ok(
        &env.login(&["--role-arn", &role(2)]),
        "login with the other role",
    );
    let r = renewal.wait_with_output().unwrap();
    assert_ok(&r, "the renewal");
    assert!(text(&r).0.contains(&role(1)), "{:?}", text(&r));
    // the login's STS request went out only once the renewal had its answer
    let at: Vec<u64> = serde_json::from_value(env.idp.sts_stats()["request_ms"].clone()).unwrap();
    let (renewal_at, login_at) = (at[at.len() - 2], at[at.len() - 1]);
    assert!(
        login_at >= renewal_at + 1900,
        "the login's STS request {login_at} ms, the renewal's {renewal_at} ms"
    );
    // and what is left is the login's: its role, its keys (the last STS gave: its secret,
    // then its session token)
    let st = env.status_json();
    assert_eq!(st["accounts"][0]["role_arn"], role(2), "{st}");
    let issued = env.idp.issued();
    let file = |k: &str| env.profile_value("astran", k).unwrap();
    assert_eq!(
        issued[issued.len() - 2..],
        [file("aws_secret_access_key"), file("aws_session_token")]
    );
}
