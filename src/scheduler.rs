//! Keeps every logged-in account fresh: sleeps until the next deadline (no polling),
//! re-assumes the role before the credentials expire, keeps the Keycloak session alive,
//! backs off with jitter on transient failures, and notifies once per state change.
//! The CLI's `daemon` and the tray agent run the same loop.

use crate::config::Account;
use crate::error::ErrorKind;
use crate::notify::{Notice, NoticeKind, Notifier};
use crate::plan::{backoff, check_clock_skew, plan};
use crate::session::Session;
use crate::state::{self, AccountStatus, Overlay};
use crate::store::SessionRecord;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::sync::{watch, Notify};

/// After this many failed attempts in a row, the user hears about it.
pub const FAILURES_BEFORE_NOTICE: u32 = 3;

/// What the scheduler tracks of one account between ticks.
#[derive(Debug, Default)]
struct Tracking {
    failures: u32,
    retry_at: Option<OffsetDateTime>,
    /// The session is over (or will end before the credentials): a login is needed.
    login_required: bool,
    /// When it became so: a session started at or after this is a new login.
    login_required_since: Option<i64>,
    sent: HashSet<NoticeKind>,
}

/// What the scheduler shows after each look: every account's status, or why there is none
/// (the config cannot be read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub accounts: Vec<AccountStatus>,
    pub problem: Option<String>,
    /// The account acted on when none is named (the status window shows it first).
    pub default_account: Option<String>,
}

pub struct Scheduler {
    session: Arc<Session>,
    notifier: Arc<dyn Notifier>,
    states: HashMap<String, Tracking>,
    /// Wake the loop early (a login happened, the config changed, the user clicked Refresh).
    pub wake: Arc<Notify>,
    views: watch::Sender<Snapshot>,
    last_errors: HashMap<String, String>,
}

impl Scheduler {
    pub fn new(session: Arc<Session>, notifier: Arc<dyn Notifier>) -> Self {
        Scheduler {
            session,
            notifier,
            states: HashMap::new(),
            wake: Arc::new(Notify::new()),
            views: watch::channel(Snapshot::default()).0,
            last_errors: HashMap::new(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
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
                profile: None,
                summary,
                body,
            });
        }
    }

    /// Do what is due now; return the next deadline.
    pub async fn tick(&mut self) -> OffsetDateTime {
        let now = self.session.clock().now();
        let far = now + Duration::hours(24);
        // one read of the config for the accounts and which of them is the default
        let read = self.session.config().await.and_then(|c| {
            let default = c.pick_name(None).ok().map(|n| n.to_string());
            Ok((c.all_accounts()?, default))
        });
        let (accounts, default_account) = match read {
            Ok(a) => a,
            Err(e) => {
                log::error!("{e}");
                self.views.send_replace(Snapshot {
                    accounts: Vec::new(),
                    problem: Some(e.to_string()),
                    default_account: None,
                });
                return now + Duration::minutes(5);
            }
        };
        let mut next = far;
        let mut views = Vec::new();
        let keys = self.session.held_keys_or_none().await;
        for acct in accounts {
            let rec = match self.session.load_record(&acct.name).await {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("account {}: {e}", acct.name);
                    None
                }
            };
            let exp = self.session.credentials_expiry(&acct).await.ok().flatten();
            let when = self.tick_account(&acct, rec.as_ref(), exp, now).await;
            next = next.min(when.unwrap_or(far));
            let st = self.states.entry(acct.name.to_string()).or_default();
            let overlay = Overlay {
                login_required: st.login_required,
                failures: st.failures,
                last_error: self.last_errors.get(acct.name.as_str()).cloned(),
            };
            let k = keys
                .get(acct.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            views.push(state::derive(&acct, rec.as_ref(), exp, &overlay, k, now));
        }
        self.views.send_replace(Snapshot {
            accounts: views,
            problem: None,
            default_account,
        });
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
        let st = self.states.entry(acct.name.to_string()).or_default();
        if let (Some(r), Some(since)) = (rec, st.login_required_since) {
            if r.started_at >= since {
                // A new login (here or from another process): start afresh.
                self.reset(&acct.name);
            }
        }
        let st = self.states.entry(acct.name.to_string()).or_default();
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
            let st = self.states.entry(acct.name.to_string()).or_default();
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
        let st = self.states.entry(acct.name.to_string()).or_default();
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
            // (nothing is done if a login, renewal or logout changed them meanwhile)
            match self.session.refresh_as_seen(&acct.name, exp).await {
                Ok(Some(o)) => {
                    log::info!(
                        "account {}: profile {} renewed, valid until {}",
                        acct.name,
                        o.profile,
                        o.expires_at.map(crate::clock::rfc3339).unwrap_or_default()
                    );
                    check_clock_skew(acct, o.expires_at, now).map(|()| true)
                }
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            }
        } else {
            log::info!("account {}: keeping the login session alive", acct.name);
            self.session.keep_alive(&acct.name).await
        };
        match result {
            // another's change made it unneeded: planned again from what is there now
            Ok(false) => {
                let st = self.states.entry(acct.name.to_string()).or_default();
                st.failures = 0;
                st.retry_at = None;
                Some(now)
            }
            Ok(true) => {
                let st = self.states.entry(acct.name.to_string()).or_default();
                let was_failing = st.sent.contains(&NoticeKind::RefreshFailing);
                st.failures = 0;
                st.retry_at = None;
                st.sent.remove(&NoticeKind::RefreshFailing);
                self.last_errors.remove(acct.name.as_str());
                if was_failing {
                    self.send(
                        &acct.name,
                        NoticeKind::Recovered,
                        format!("{}: credentials renewed", acct.profile),
                        "Astran is reachable again; the profile is up to date.".into(),
                    );
                }
                let st = self.states.entry(acct.name.to_string()).or_default();
                st.sent.remove(&NoticeKind::Recovered);
                // Re-plan with the new state right away.
                Some(now)
            }
            Err(e) if e.kind() == ErrorKind::LoginRequired => {
                self.fail_login_required(acct, e.to_string(), exp, notice_at, now)
            }
            Err(e) => {
                let st = self.states.entry(acct.name.to_string()).or_default();
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
                self.last_errors
                    .insert(acct.name.to_string(), e.to_string());
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
        let st = self.states.entry(acct.name.to_string()).or_default();
        st.login_required = true;
        st.login_required_since.get_or_insert(now.unix_timestamp());
        st.failures = 0;
        st.retry_at = None;
        self.last_errors.insert(acct.name.to_string(), why.clone());
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

fn min_opt(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}
