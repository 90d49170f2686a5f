//! Planning, pure: when to renew an account's credentials, when to keep its Keycloak session
//! alive, how long to back off after a failure. No I/O and no clock of its own: the scheduler
//! and `status` pass `now` in.

use crate::config::Account;
use crate::store::SessionRecord;
use time::{Duration, OffsetDateTime};

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
    let lifetime = acct.duration_seconds.seconds() as i64;
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
    // Keycloak caps refresh_expires_in at what is left of SSO Session Max: a lifetime granted
    // at the last refresh shorter than the idle timeout granted at login means the session
    // ends then, whatever we do. (Measured from the last refresh, not from now: what is left
    // shrinks between keep-alives by itself, and that is no cap.)
    let granted_at = rec.refreshed_at.unwrap_or(rec.started_at);
    let left = session_end.map(|e| e.unix_timestamp() - granted_at);
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
pub(crate) fn idle_margin(idle: u64) -> Duration {
    Duration::seconds((idle as i64 / 5).clamp(5, 120))
}

/// Backoff after `failures` failed attempts: 5 s doubling to 5 min, with jitter in [½, 1].
pub fn backoff(failures: u32) -> Duration {
    let base = (5f64 * 2f64.powi(failures.saturating_sub(1).min(10) as i32)).min(300.0);
    let jitter: f64 = rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0);
    Duration::milliseconds((base * jitter * 1000.0) as i64)
}

/// Fresh credentials that are already due for renewal by our clock mean this machine's clock
/// is far off STS's: renewing again at once would only repeat that, so treat it as a failure
/// (backoff, then a notice) instead of a refresh storm.
pub fn check_clock_skew(
    acct: &Account,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> crate::Result<()> {
    match expires_at {
        Some(e) if refresh_time(acct, e) <= now => Err(crate::Error::unavailable(format!(
            "STS issued credentials valid until {}, which this machine's clock ({}) already counts as due for renewal; check the system clock",
            crate::clock::rfc3339(e),
            crate::clock::rfc3339(now)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashSet;

    fn acct(duration: u32) -> Account {
        let mut a = Config::default()
            .account_with_env("default", &|_| None)
            .unwrap();
        a.duration_seconds = crate::values::StsDuration::new(duration).unwrap();
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
        SessionRecord::sample(t0(), Some(end_in), Some(idle))
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
    fn a_session_aging_between_keepalives_is_not_capped() {
        // idle 1800 s granted at t0; at the keep-alive deadline only 120 s are left, which is
        // the idle timeout running, not SSO Session Max
        let exp = t0() + Duration::hours(1);
        let r = rec(1800, 1800);
        let at_keepalive = t0() + Duration::seconds(1800 - 120);
        let p = plan(&acct(3600), Some(exp), Some(&r), at_keepalive);
        assert!(!p.session_capped);
        assert_eq!(p.keepalive_at, Some(at_keepalive));
        assert_eq!(p.next_refresh(), Some(at_keepalive));
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
