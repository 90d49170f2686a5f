//! Sleep and clock jumps.
//!
//! With an injected clock (`ManualClock`), the library's scheduler runs against the real test
//! IdP and a real moto, whose clocks jump with ours (the IdP's `/__test/clock`, moto through
//! `tests/support/moto_shifted.py`), as they would for a laptop that slept:
//! - 2 h forward with a normal session: login required at once, notified once, no retries;
//! - 2 h forward with an offline session: one renewal at once, then quiet;
//! - backwards, and small skews: no refresh storm;
//! - our clock alone 2 h fast (STS's credentials look due at once): backoff, not a storm;
//! - a renewal that fell due while a login held the account's turn, and waited for it, is
//!   not made after that login, nor after a logout queued before it (no "login required").
//!
//! A real-process test stops the daemon (SIGSTOP) past the credentials' refresh point and
//! resumes it (SIGCONT): it catches up within seconds.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
use common::*;

use astran_creds::clock::{Clock, ManualClock};
use astran_creds::notify::{NoticeKind, RecordingNotifier};
use astran_creds::scheduler::Scheduler;
use astran_creds::secret::Secret;
use astran_creds::session::{LoginRequest, Session};
use astran_creds::store::{FallbackStore, MemoryStore};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// moto with a movable clock, and the test IdP's STS front forwarding to it.
struct Servers {
    idp: Idp,
    offset_file: PathBuf,
    _moto: Guard,
    _dir: tempfile::TempDir,
}

impl Servers {
    fn start(extra_idp: &[&str]) -> Servers {
        let dir = tempfile::tempdir().unwrap();
        let offset_file = dir.path().join("moto-offset");
        std::fs::write(&offset_file, "0").unwrap();
        let port = free_port();
        let moto = Command::new(venv_bin("python"))
            .arg(root().join("tests/support/moto_shifted.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_CLOCK_OFFSET_FILE", &offset_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let moto = Guard(moto);
        wait_for("moto", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let upstream = format!("http://127.0.0.1:{port}/");
        let mut args = vec!["--sts-upstream", &upstream];
        args.extend_from_slice(extra_idp);
        let idp = Idp::start(&[&format!("{EMAIL}:{PASSWORD}:{}", role(1))], &args);
        Servers {
            idp,
            offset_file,
            _moto: moto,
            _dir: dir,
        }
    }

    /// Move the servers' clocks (a machine that slept: the world went on).
    fn advance(&self, secs: i64) {
        self.idp
            .control("clock", &format!(r#"{{"advance":{secs}}}"#));
        let cur: i64 = std::fs::read_to_string(&self.offset_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::write(&self.offset_file, (cur + secs).to_string()).unwrap();
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.idp.stats()["refresh_grants"].as_u64().unwrap(),
            self.idp.sts_stats()["requests"].as_u64().unwrap(),
        )
    }
}

struct Scene {
    servers: Servers,
    clock: Arc<ManualClock>,
    session: Arc<Session>,
    notices: Arc<RecordingNotifier>,
    creds: PathBuf,
    _dir: tempfile::TempDir,
}

async fn scene(config_extra: &str, idp_extra: &[&str]) -> Scene {
    scene_of("default", config_extra, idp_extra).await
}

/// The scene with its account named `account` (profile `astran`).
async fn scene_of(account: &str, config_extra: &str, idp_extra: &[&str]) -> Scene {
    let servers = Servers::start(idp_extra);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[accounts.{account}]\nprofile = \"astran\"\nemail = \"{EMAIL}\"\ntoken_url = \"{}\"\nsts_endpoint = \"{}\"\n{config_extra}",
            servers.idp.token_url,
            servers.idp.sts_url()
        ),
    )
    .unwrap();
    let creds = dir.path().join("credentials");
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let session = Arc::new(
        Session::new(
            config,
            Arc::new(FallbackStore::new(Box::new(MemoryStore::default()))),
            clock.clone(),
        )
        .with_credentials_file(creds.clone()),
    );
    session
        .login(LoginRequest {
            password: Some(Secret::new(PASSWORD)),
            ..Default::default()
        })
        .await
        .expect("login");
    let notices = Arc::new(RecordingNotifier::default());
    Scene {
        servers,
        clock,
        session,
        notices,
        creds,
        _dir: dir,
    }
}

impl Scene {
    fn run_scheduler(&self) -> tokio::sync::watch::Sender<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut s = Scheduler::new(self.session.clone(), self.notices.clone());
        tokio::spawn(async move { s.run(rx).await });
        tx
    }

    /// Laptop slept: our clock and the servers' move together.
    fn sleep_for(&self, secs: i64) {
        self.servers.advance(secs);
        self.clock.advance(time::Duration::seconds(secs));
    }

    fn expiry(&self) -> time::OffsetDateTime {
        self.session
            .credentials_file()
            .unwrap()
            .credentials_expiry(&"astran".parse().unwrap())
            .unwrap()
            .expect("credentials written")
    }

    fn notices(&self, kind: NoticeKind) -> usize {
        self.notices
            .notices
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.kind == kind)
            .count()
    }
}

async fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hours_asleep_with_a_normal_session_means_login_required_at_once() {
    let s = scene("duration_seconds = 3600\n", &[]).await;
    let _stop = s.run_scheduler();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = s.servers.counts();
    let file_before = std::fs::read_to_string(&s.creds).unwrap();

    s.sleep_for(2 * 3600);
    let woke = Instant::now();
    wait_until("a login-required notice", Duration::from_secs(5), || {
        s.notices(NoticeKind::LoginRequired) == 1
    })
    .await;
    assert!(
        woke.elapsed() < Duration::from_secs(2),
        "{:?}",
        woke.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.notices(NoticeKind::LoginRequired), 1, "notified once");
    // the session is known to be over: no futile calls, no storm
    let after = s.servers.counts();
    assert!(after.0 <= before.0 + 1, "{before:?} -> {after:?}");
    assert_eq!(after.1, before.1, "no STS call without a session");
    assert_eq!(std::fs::read_to_string(&s.creds).unwrap(), file_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hours_asleep_with_an_offline_session_renews_once_at_once() {
    let s = scene("duration_seconds = 3600\noffline = true\n", &[]).await;
    let _stop = s.run_scheduler();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (r0, sts0) = s.servers.counts();
    let old_expiry = s.expiry();

    s.sleep_for(2 * 3600);
    let woke = Instant::now();
    wait_until("the renewal", Duration::from_secs(8), || {
        s.servers.counts().1 > sts0
    })
    .await;
    wait_until("the new profile", Duration::from_secs(8), || {
        s.expiry() > s.clock.now()
    })
    .await;
    assert!(
        woke.elapsed() < Duration::from_secs(3),
        "{:?}",
        woke.elapsed()
    );
    assert!(s.expiry() > old_expiry + time::Duration::hours(1));
    // then quiet: the new credentials are good for an hour
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (r1, sts1) = s.servers.counts();
    assert_eq!(sts1, sts0 + 1, "one STS call");
    assert_eq!(r1, r0 + 1, "one refresh grant");
    assert_eq!(s.notices(NoticeKind::LoginRequired), 0);

    // the clock goes back an hour (NTP fix, time zone mistake): nothing to do
    s.clock.advance(time::Duration::hours(-1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // small skews either way: still nothing
    for skew in [90, -45, 30, -120] {
        s.clock.advance(time::Duration::seconds(skew));
        // and time passes
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            s.clock.advance(time::Duration::milliseconds(100));
        }
    }
    assert_eq!(s.servers.counts(), (r1, sts1), "no refresh storm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_two_hours_fast_backs_off_instead_of_storming() {
    let s = scene("duration_seconds = 3600\noffline = true\n", &[]).await;
    let _stop = s.run_scheduler();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, sts0) = s.servers.counts();
    // only our clock moves: every credential STS issues looks due at once
    s.clock.advance(time::Duration::hours(2));
    // then time passes: 6 s of our clock over 3 s
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.clock.advance(time::Duration::milliseconds(100));
    }
    let (_, sts1) = s.servers.counts();
    // the first renewal, then backoffs of 2.5 to 5 s and 5 to 10 s (a storm: one every 0.2 s)
    assert!(
        (sts0 + 1..=sts0 + 3).contains(&sts1),
        "STS calls {sts0} -> {sts1}"
    );
}

/// A login whose STS answer comes 2 s late (it holds the account's turn meanwhile), then,
/// once its STS request is in, `then` (queued behind it) and the clocks moved 800 s on: the
/// old credentials (900 s) are due, and the woken scheduler's renewal waits for the turn.
async fn login_holding_the_turn(
    s: &Scene,
    account: &str,
    then: impl FnOnce() -> Option<tokio::task::JoinHandle<()>>,
) {
    s.servers.idp.sts_fault("slow");
    let sent = s.servers.counts().1;
    let session = s.session.clone();
    let name = account.to_owned();
    let login = tokio::spawn(async move {
        session
            .login(LoginRequest {
                account: Some(name),
                password: Some(Secret::new(PASSWORD)),
                ..Default::default()
            })
            .await
            .expect("login")
    });
    wait_until("the login's STS request", Duration::from_secs(10), || {
        s.servers.counts().1 > sent
    })
    .await;
    s.servers.idp.sts_fault("none");
    let then = then();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.sleep_for(800);
    login.await.unwrap();
    if let Some(t) = then {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_waited_for_a_login_or_a_logout_is_not_made() {
    // an account of its own: its turn is no other test's
    let account = "queued";
    let s = scene_of(account, "duration_seconds = 900\n", &[]).await;
    let _stop = s.run_scheduler();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // a login: the renewal due meanwhile is not made after it (its keys are new)
    let (grants, _) = s.servers.counts();
    let old = s.expiry();
    login_holding_the_turn(&s, account, || None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        s.expiry() > old + time::Duration::seconds(700),
        "the login's keys"
    );
    assert_eq!(
        s.servers.counts().0,
        grants,
        "no refresh grant after the login"
    );

    // a logout queued behind a login: the renewal behind both finds no session and says
    // nothing (it is no session that ended)
    let session = s.session.clone();
    let logout = move || {
        Some(tokio::spawn(async move {
            session.logout(Some("queued"), false).await.expect("logout");
        }))
    };
    login_holding_the_turn(&s, account, logout).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        s.session.load_record(account).await.unwrap().is_none(),
        "logged out"
    );
    assert_eq!(
        s.servers.counts().0,
        grants,
        "no refresh grant after the logout"
    );
    assert_eq!(s.notices(NoticeKind::LoginRequired), 0);
    assert_eq!(s.notices(NoticeKind::RefreshFailing), 0);
}

#[test]
fn a_stopped_daemon_catches_up_when_it_resumes() {
    let env = Env::standard();
    // renewal due 5 s after the login
    env.write_config(
        "[accounts.default]
duration_seconds = 900
refresh_lead_seconds = 895
",
    );
    assert_ok(&env.login(&[]), "login");
    let first = env.profile_value("astran", "aws_access_key_id").unwrap();
    let mut cmd = env.cmd(&["daemon", "--notify", "log"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let daemon = Guard(cmd.spawn().unwrap());
    let pid = daemon.0.id() as i32;
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // well past the refresh point while stopped
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        env.profile_value("astran", "aws_access_key_id").unwrap(),
        first,
        "nothing happens while stopped"
    );
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let resumed = Instant::now();
    env.wait_for_new_key(
        "astran",
        &first,
        "the resumed daemon to renew",
        Duration::from_secs(10),
    );
    assert!(
        resumed.elapsed() < Duration::from_secs(5),
        "caught up in {:?}",
        resumed.elapsed()
    );
}
