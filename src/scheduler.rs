//! Keeps every logged-in account fresh: sleeps until the next deadline (no polling),
//! re-assumes the role before the credentials expire, keeps the Keycloak session alive,
//! backs off with jitter on transient failures, and notifies once per state change.
//! The CLI's `daemon` and the tray agent run the same loop.

use crate::config::Account;
use crate::error::ErrorKind;
use crate::notify::{Notice, NoticeKind, Notifier};
use crate::session::Session;
use crate::store::SessionRecord;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::sync::{watch, Notify};

/// After this many failed attempts in a row, the user hears about it.
pub const FAILURES_BEFORE_NOTICE: u32 = 3;

/// The deadlines of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    /// Re-assume the role (refresh grant + STS + write).
    pub refresh_at: Option<OffsetDateTime>,
    /// Refresh grant only, before the Keycloak session idles out.
    pub keepalive_at: Option<OffsetDateTime>,
    /// When the Keycloak session ends.
    pub session_end: Option<OffsetDateTime>,
    /// The session cannot outlive the credentials (capped by SSO Session Max).
    pub session_capped: bool,
}

impl Plan {
    pub fn next_refresh(&self) -> Option<OffsetDateTime> {
        match (self.refresh_at, self.keepalive_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Default lead: the later of 10 minutes before expiry and 80 % of the lifetime.
pub fn refresh_time(acct: &Account, expiry: OffsetDateTime) -> OffsetDateTime {
    if let Some(lead) = acct.refresh_lead_seconds {
        return expiry - Duration::seconds(lead as i64);
    }
    let lifetime = acct.duration_seconds as i64;
    let ten_min = expiry - Duration::seconds(600);
    let eighty = expiry - Duration::seconds(lifetime) + Duration::seconds(lifetime * 8 / 10);
    ten_min.max(eighty)
}

/// Compute an account's deadlines.
pub fn plan(
    acct: &Account,
    cred_expiry: Option<OffsetDateTime>,
    rec: Option<&SessionRecord>,
    now: OffsetDateTime,
) -> Plan {
    let Some(rec) = rec else {
        return Plan::default();
    };
    let session_end = rec
        .refresh_expires_at
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let refresh_at = Some(cred_expiry.map(|e| refresh_time(acct, e)).unwrap_or(now));
    // Keycloak caps refresh_expires_in at what is left of SSO Session Max: a lifetime shorter
    // than the idle timeout granted at login means the session ends then, whatever we do.
    let left = session_end.map(|e| (e - now).whole_seconds());
    let session_capped = match (left, rec.idle_seconds) {
        (Some(l), Some(idle)) => l + 2 < idle as i64 - idle_margin(idle).whole_seconds(),
        _ => false,
    };
    let keepalive_at = match (session_end, rec.idle_seconds) {
        (Some(end), Some(idle)) if !session_capped => Some(end - idle_margin(idle)),
        (Some(end), None) => Some(end - Duration::seconds(60)),
        _ => None,
    };
    Plan {
        refresh_at,
        keepalive_at,
        session_end,
        session_capped,
    }
}

/// How long before the idle timeout the session is kept alive: a fifth of it, 5 s to 2 min.
fn idle_margin(idle: u64) -> Duration {
    Duration::seconds((idle as i64 / 5).clamp(5, 120))
}

/// Backoff after `failures` failed attempts: 5 s doubling to 5 min, with jitter in [½, 1].
pub fn backoff(failures: u32) -> Duration {
    let base = (5f64 * 2f64.powi(failures.saturating_sub(1).min(10) as i32)).min(300.0);
    let jitter: f64 = rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0);
    Duration::milliseconds((base * jitter * 1000.0) as i64)
}

#[derive(Debug, Default)]
struct AccountState {
    failures: u32,
    retry_at: Option<OffsetDateTime>,
    /// The session is over (or will end before the credentials): a login is needed.
    login_required: bool,
    /// When it became so: a session started at or after this is a new login.
    login_required_since: Option<i64>,
    sent: HashSet<NoticeKind>,
}

/// What the scheduler shows (tray tooltip, status).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    pub account: String,
    pub profile: String,
    pub credentials_expire_at: Option<OffsetDateTime>,
    pub next_refresh_at: Option<OffsetDateTime>,
    pub login_required: bool,
    pub logged_in: bool,
    pub failures: u32,
    pub last_error: Option<String>,
}

pub struct Scheduler {
    session: Arc<Session>,
    notifier: Arc<dyn Notifier>,
    states: HashMap<String, AccountState>,
    /// Wake the loop early (a login happened, the config changed, the user clicked Refresh).
    pub wake: Arc<Notify>,
    views: watch::Sender<Vec<AccountView>>,
    last_errors: HashMap<String, String>,
}

impl Scheduler {
    pub fn new(session: Arc<Session>, notifier: Arc<dyn Notifier>) -> Self {
        Scheduler {
            session,
            notifier,
            states: HashMap::new(),
            wake: Arc::new(Notify::new()),
            views: watch::channel(Vec::new()).0,
            last_errors: HashMap::new(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Vec<AccountView>> {
        self.views.subscribe()
    }

    /// Forget per-account state (after a new login for that account).
    pub fn reset(&mut self, account: &str) {
        self.states.remove(account);
        self.last_errors.remove(account);
    }

    fn send(&mut self, account: &str, kind: NoticeKind, summary: String, body: String) {
        let st = self.states.entry(account.to_owned()).or_default();
        if st.sent.insert(kind) {
            self.notifier.notify(&Notice {
                kind,
                account: account.to_owned(),
                summary,
                body,
            });
        }
    }

    /// Do what is due now; return the next deadline.
    pub async fn tick(&mut self) -> OffsetDateTime {
        let now = self.session.clock().now();
        let far = now + Duration::hours(24);
        let accounts = match self.session.accounts() {
            Ok(a) => a,
            Err(e) => {
                log::error!("{e}");
                return now + Duration::minutes(5);
            }
        };
        let mut next = far;
        let mut views = Vec::new();
        for acct in accounts {
            let rec = match self.session.load_record(&acct.name).await {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("account {}: {e}", acct.name);
                    None
                }
            };
            let exp = self
                .session
                .credentials_expiry(&acct.profile)
                .ok()
                .flatten();
            let when = self.tick_account(&acct, rec.as_ref(), exp, now).await;
            next = next.min(when.unwrap_or(far));
            let st = self.states.entry(acct.name.clone()).or_default();
            let (failures, login_required) = (st.failures, st.login_required);
            views.push(AccountView {
                account: acct.name.clone(),
                profile: acct.profile.clone(),
                credentials_expire_at: exp,
                next_refresh_at: if login_required {
                    None
                } else {
                    plan(&acct, exp, rec.as_ref(), now).next_refresh()
                },
                login_required,
                logged_in: rec.is_some(),
                failures,
                last_error: self.last_errors.get(&acct.name).cloned(),
            });
        }
        self.views.send_replace(views);
        next.max(now + Duration::milliseconds(200))
    }

    async fn tick_account(
        &mut self,
        acct: &Account,
        rec: Option<&SessionRecord>,
        exp: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let notice_at = exp.map(|e| e - Duration::seconds(acct.notice_lead_seconds as i64));
        let st = self.states.entry(acct.name.clone()).or_default();
        if let (Some(r), Some(since)) = (rec, st.login_required_since) {
            if r.started_at >= since {
                // A new login (here or from another process): start afresh.
                self.reset(&acct.name);
            }
        }
        let st = self.states.entry(acct.name.clone()).or_default();
        if rec.is_none() {
            if !st.login_required {
                // Never logged in (or logged out): nothing to look after.
                return None;
            }
            return self.login_required_deadlines(acct, exp, notice_at, now);
        }
        let p = plan(acct, exp, rec, now);
        if p.session_capped
            && p.session_end.zip(exp).is_some_and(|(s, e)| s < e)
            && p.refresh_at.is_some_and(|r| r > now)
        {
            // Keycloak will end the session before these credentials expire: renew them while we
            // can, then ask for a login before they run out.
            let st = self.states.entry(acct.name.clone()).or_default();
            st.login_required = true;
            st.login_required_since
                .get_or_insert(now.unix_timestamp() + 1);
        }
        if let Some(end) = p.session_end {
            if end <= now {
                return self.fail_login_required(
                    acct,
                    "the login session has ended".into(),
                    exp,
                    notice_at,
                    now,
                );
            }
        }
        let st = self.states.entry(acct.name.clone()).or_default();
        if let Some(r) = st.retry_at {
            if r > now {
                return Some(r);
            }
        }
        let due_refresh = p.refresh_at.is_some_and(|t| t <= now);
        let due_keepalive = p.keepalive_at.is_some_and(|t| t <= now);
        let capped_and_known = st.login_required;
        if !(due_refresh || due_keepalive) {
            let mut next = p.next_refresh();
            if capped_and_known {
                next = min_opt(
                    next,
                    self.login_required_deadlines(acct, exp, notice_at, now),
                );
                // do not keep alive a session that ends anyway
                next = min_opt(
                    p.refresh_at
                        .filter(|r| p.session_end.is_some_and(|e| *r < e)),
                    next,
                );
            }
            return next;
        }
        let result = if due_refresh {
            log::info!(
                "account {}: renewing the credentials of profile {}",
                acct.name,
                acct.profile
            );
            self.session.refresh(Some(&acct.name)).await.and_then(|o| {
                log::info!(
                    "account {}: profile {} renewed, valid until {}",
                    acct.name,
                    o.profile,
                    o.expires_at.map(crate::clock::rfc3339).unwrap_or_default()
                );
                check_clock_skew(acct, o.expires_at, now)
            })
        } else {
            log::info!("account {}: keeping the login session alive", acct.name);
            self.session.keep_alive(&acct.name).await.map(|_| ())
        };
        match result {
            Ok(()) => {
                let st = self.states.entry(acct.name.clone()).or_default();
                let was_failing = st.sent.contains(&NoticeKind::RefreshFailing);
                st.failures = 0;
                st.retry_at = None;
                st.sent.remove(&NoticeKind::RefreshFailing);
                self.last_errors.remove(&acct.name);
                if was_failing {
                    self.send(
                        &acct.name,
                        NoticeKind::Recovered,
                        format!("{}: credentials renewed", acct.profile),
                        "Astran is reachable again; the profile is up to date.".into(),
                    );
                }
                let st = self.states.entry(acct.name.clone()).or_default();
                st.sent.remove(&NoticeKind::Recovered);
                // Re-plan with the new state right away.
                Some(now)
            }
            Err(e) if e.kind() == ErrorKind::LoginRequired => {
                self.fail_login_required(acct, e.to_string(), exp, notice_at, now)
            }
            Err(e) => {
                let st = self.states.entry(acct.name.clone()).or_default();
                st.failures += 1;
                let transient = e.kind().is_transient();
                let wait = if transient {
                    backoff(st.failures)
                } else {
                    backoff(st.failures).max(Duration::minutes(5))
                };
                st.retry_at = Some(now + wait);
                let failures = st.failures;
                log::warn!(
                    "account {}: refresh failed ({e}); attempt {failures}, next try in {}s",
                    acct.name,
                    wait.whole_seconds()
                );
                self.last_errors.insert(acct.name.clone(), e.to_string());
                if failures >= FAILURES_BEFORE_NOTICE {
                    self.send(
                        &acct.name,
                        NoticeKind::RefreshFailing,
                        format!("{}: cannot renew the credentials", acct.profile),
                        format!("{e}. Retrying in the background."),
                    );
                }
                let retry = now + wait;
                Some(match notice_at {
                    Some(n) if n > now => retry.min(n),
                    _ => retry,
                })
            }
        }
    }

    fn fail_login_required(
        &mut self,
        acct: &Account,
        why: String,
        exp: Option<OffsetDateTime>,
        notice_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        log::warn!("account {}: login required: {why}", acct.name);
        let st = self.states.entry(acct.name.clone()).or_default();
        st.login_required = true;
        st.login_required_since.get_or_insert(now.unix_timestamp());
        st.failures = 0;
        st.retry_at = None;
        self.last_errors.insert(acct.name.clone(), why.clone());
        let until = exp
            .filter(|e| *e > now)
            .map(|e| {
                format!(
                    " The credentials of profile {} stay valid until {}.",
                    acct.profile,
                    crate::clock::rfc3339(e)
                )
            })
            .unwrap_or_default();
        self.send(
            &acct.name,
            NoticeKind::LoginRequired,
            format!("Astran login required ({})", acct.name),
            format!("{why}.{until}"),
        );
        self.login_required_deadlines(acct, exp, notice_at, now)
    }

    fn login_required_deadlines(
        &mut self,
        acct: &Account,
        exp: Option<OffsetDateTime>,
        notice_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let (Some(exp), Some(notice_at)) = (exp, notice_at) else {
            return None;
        };
        if exp <= now {
            return None;
        }
        if notice_at <= now {
            let mins = ((exp - now).whole_seconds() + 59) / 60;
            self.send(
                &acct.name,
                NoticeKind::ExpiringSoon,
                format!("Astran credentials expire in {mins} min"),
                format!(
                    "Profile {} expires at {} and cannot be renewed: log in again.",
                    acct.profile,
                    crate::clock::rfc3339(exp)
                ),
            );
            // wake once more when they run out, so the views say "expired"
            return Some(exp);
        }
        Some(notice_at)
    }

    /// Run until `shutdown` turns true.
    pub async fn run(&mut self, mut shutdown: watch::Receiver<bool>) {
        let clock = self.session.clock().clone();
        let wake = self.wake.clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let next = self.tick().await;
            log::debug!("next wake-up at {}", crate::clock::rfc3339(next));
            tokio::select! {
                _ = clock.wait_until(next) => {}
                _ = wake.notified() => {}
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
            }
        }
    }
}

/// Fresh credentials that are already due for renewal by our clock mean this machine's clock
/// is far off STS's: renewing again at once would only repeat that, so treat it as a failure
/// (backoff, then a notice) instead of a refresh storm.
fn check_clock_skew(
    acct: &Account,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> crate::Result<()> {
    match expires_at {
        Some(e) if refresh_time(acct, e) <= now => Err(crate::Error::Unavailable(format!(
            "STS issued credentials valid until {}, which this machine's clock ({}) already counts as due for renewal; check the system clock",
            crate::clock::rfc3339(e),
            crate::clock::rfc3339(now)
        ))),
        _ => Ok(()),
    }
}

fn min_opt(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::secret::Secret;

    fn acct(duration: u32) -> Account {
        let mut a = Config::default().account_with_env("default", &|_| None);
        a.duration_seconds = duration;
        a
    }

    fn t0() -> OffsetDateTime {
        crate::clock::parse_rfc3339("2026-01-01T12:00:00Z").unwrap()
    }

    #[test]
    fn default_lead_is_later_of_ten_minutes_and_eighty_percent() {
        let exp = t0() + Duration::hours(1);
        assert_eq!(refresh_time(&acct(3600), exp), exp - Duration::minutes(10));
        let exp = t0() + Duration::minutes(15);
        assert_eq!(refresh_time(&acct(900), exp), exp - Duration::minutes(3));
        let mut a = acct(3600);
        a.refresh_lead_seconds = Some(120);
        assert_eq!(refresh_time(&a, exp), exp - Duration::minutes(2));
    }

    fn rec(end_in: i64, idle: u64) -> SessionRecord {
        SessionRecord {
            refresh_token: Secret::new("r"),
            refresh_expires_at: Some((t0() + Duration::seconds(end_in)).unix_timestamp()),
            idle_seconds: Some(idle),
            started_at: t0().unix_timestamp(),
            email: "a@b.c".into(),
            role_arn: "arn:demo:iam::1:root".into(),
            sts_endpoint: "https://x".into(),
        }
    }

    #[test]
    fn keepalive_before_the_idle_timeout_unless_capped() {
        let exp = t0() + Duration::hours(1);
        let p = plan(&acct(3600), Some(exp), Some(&rec(1800, 1800)), t0());
        assert_eq!(p.keepalive_at, Some(t0() + Duration::seconds(1800 - 120)));
        assert!(!p.session_capped);
        assert_eq!(p.next_refresh(), p.keepalive_at);
        let capped = plan(&acct(3600), Some(exp), Some(&rec(600, 1800)), t0());
        assert!(capped.session_capped);
        assert_eq!(capped.keepalive_at, None);
        assert_eq!(plan(&acct(3600), Some(exp), None, t0()), Plan::default());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        for n in 1..20 {
            let b = backoff(n);
            let base = (5.0 * 2f64.powi((n - 1).min(10) as i32)).min(300.0);
            assert!(
                b.as_seconds_f64() >= base * 0.5 - 0.01 && b.as_seconds_f64() <= base + 0.01,
                "{n}: {b}"
            );
        }
        let many: HashSet<i64> = (0..20)
            .map(|_| backoff(3).whole_milliseconds() as i64)
            .collect();
        assert!(many.len() > 1, "jitter");
    }
}
