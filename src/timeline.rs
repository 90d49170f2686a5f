//! An account's timeline, pure: from now to the furthest known deadline (at least
//! [`MIN_SPAN`]), the marks the status window draws and `status` lists: the current
//! credentials' end, each renewal and keep-alive the scheduler will make (the next one
//! exactly as it plans it, the later ones projected with the same rules), the login
//! session's idle and maximum ends, the moment a login is needed, and when a permanent key
//! turns too old. Made in [`crate::state::derive`], so the tray, `status` and the window
//! read one account state.

use crate::config::Account;
use crate::plan::{idle_margin, refresh_time, Plan};
use crate::store::SessionRecord;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The shortest span a timeline covers.
pub const MIN_SPAN: Duration = Duration::hours(12);

/// At most this many renewals and keep-alives are projected.
const MAX_PROJECTED: usize = 96;

/// What a mark is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// The current credentials stop working.
    CredentialsExpire,
    /// The role is assumed again (new credentials).
    Renewal,
    /// The login session is kept alive (refresh grant only).
    KeepAlive,
    /// The login session ends unless it is used before (Keycloak's SSO Session Idle).
    SessionIdleEnd,
    /// The login session ends whatever is done (SSO Session Max, known once it caps).
    SessionMaxEnd,
    /// From here on the credentials cannot be renewed without a new login.
    LoginNeeded,
    /// A permanent key held in one of our profiles turns older than `max_key_age_days`.
    KeyTooOld,
}

impl MarkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MarkKind::CredentialsExpire => "credentials_expire",
            MarkKind::Renewal => "renewal",
            MarkKind::KeepAlive => "keep_alive",
            MarkKind::SessionIdleEnd => "session_idle_end",
            MarkKind::SessionMaxEnd => "session_max_end",
            MarkKind::LoginNeeded => "login_needed",
            MarkKind::KeyTooOld => "key_too_old",
        }
    }

    /// In words, for `status` and the window's labels.
    pub fn words(self) -> &'static str {
        match self {
            MarkKind::CredentialsExpire => "credentials expire",
            MarkKind::Renewal => "renewal",
            MarkKind::KeepAlive => "session kept alive",
            MarkKind::SessionIdleEnd => "session idle end",
            MarkKind::SessionMaxEnd => "session maximum end",
            MarkKind::LoginNeeded => "login needed",
            MarkKind::KeyTooOld => "permanent key too old",
        }
    }
}

/// One mark on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub kind: MarkKind,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Projected from the scheduler's rules (a renewal after the next one), not planned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub projected: bool,
    /// What it is about beyond its kind (the permanent key's profile and id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A permanent key held in one of the account's profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldKey {
    pub profile: String,
    pub access_key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub age_days: i64,
    /// When it turns (or turned) older than the account's `max_key_age_days`.
    #[serde(with = "time::serde::rfc3339")]
    pub too_old_at: OffsetDateTime,
}

impl HeldKey {
    pub fn new(
        profile: String,
        access_key_id: String,
        created: OffsetDateTime,
        max_age_days: u32,
        now: OffsetDateTime,
    ) -> HeldKey {
        HeldKey {
            profile,
            access_key_id,
            created,
            age_days: (now - created).whole_days(),
            too_old_at: created + Duration::days(max_age_days.into()),
        }
    }
}

/// An account's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Its start: the moment it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// Its end: the furthest known deadline, at least [`MIN_SPAN`] after `from`. A key's age
    /// limit further away is listed in `marks` past `to`, not stretched to.
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// The marks, by time.
    pub marks: Vec<Mark>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::empty()
    }
}

impl Timeline {
    /// Nothing known yet.
    pub fn empty() -> Timeline {
        Timeline {
            from: OffsetDateTime::UNIX_EPOCH,
            to: OffsetDateTime::UNIX_EPOCH,
            marks: Vec::new(),
        }
    }
}

/// What the timeline is made of (the same facts `derive` reads).
pub struct Facts<'a> {
    pub acct: &'a Account,
    pub rec: Option<&'a SessionRecord>,
    pub credentials_expire_at: Option<OffsetDateTime>,
    pub plan: &'a Plan,
    /// A session is held and renewals go on (not told to log in again).
    pub renewing: bool,
    /// A login is needed now (the state says so).
    pub login_needed_now: bool,
    pub keys: &'a [HeldKey],
    pub now: OffsetDateTime,
}

/// Make the timeline.
pub fn make(f: &Facts) -> Timeline {
    let now = f.now;
    let mut marks = Vec::new();
    let mut mark = |kind, at, projected| {
        marks.push(Mark {
            kind,
            at,
            projected,
            detail: None,
        })
    };
    let session_end = f.plan.session_end;
    // the session's end that no keep-alive moves
    let hard_end = session_end.filter(|_| f.plan.session_capped);
    if let Some(e) = f.credentials_expire_at {
        mark(MarkKind::CredentialsExpire, e, false);
    }
    if let Some(e) = session_end.filter(|e| *e > now) {
        let kind = if f.plan.session_capped {
            MarkKind::SessionMaxEnd
        } else {
            MarkKind::SessionIdleEnd
        };
        mark(kind, e, false);
    }
    // the furthest deadline known now, and the span drawn
    let furthest = [f.credentials_expire_at, session_end]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(now);
    let to = furthest.max(now + MIN_SPAN);
    let mut last_valid = f.credentials_expire_at;
    if f.renewing {
        // the scheduler's rules, run forward: a renewal at `refresh_time` of the credentials
        // it will have; a keep-alive before the idle timeout when no renewal comes first
        let idle = f
            .rec
            .and_then(|r| r.idle_seconds)
            .filter(|_| !f.plan.session_capped && session_end.is_some());
        let mut refresh_at = f.plan.refresh_at;
        let mut keepalive_at = f.plan.keepalive_at;
        // the first renewal and keep-alive are the plan's own; the later ones projected
        let (mut first_renewal, mut first_keepalive) = (true, true);
        let mut made = 0;
        while made < MAX_PROJECTED {
            let (t, renewal) = match (refresh_at, keepalive_at) {
                (Some(r), Some(k)) if k < r => (k, false),
                (Some(r), _) => (r, true),
                (None, Some(k)) => (k, false),
                (None, None) => break,
            };
            let t = t.max(now);
            if t > to || hard_end.is_some_and(|h| t >= h) {
                break;
            }
            let (kind, first) = if renewal {
                (MarkKind::Renewal, &mut first_renewal)
            } else {
                (MarkKind::KeepAlive, &mut first_keepalive)
            };
            mark(kind, t, !*first);
            *first = false;
            made += 1;
            let idle_end = idle.map(|i| t + Duration::seconds(i as i64));
            if renewal {
                let exp = t + Duration::seconds(f.acct.duration_seconds.seconds() as i64);
                last_valid = Some(exp);
                refresh_at = Some(refresh_time(f.acct, exp).max(t + Duration::seconds(1)));
            }
            keepalive_at = idle_end.zip(idle).map(|(e, i)| e - idle_margin(i));
        }
    }
    if f.login_needed_now {
        mark(MarkKind::LoginNeeded, now, false);
    } else if let (true, Some(h)) = (f.renewing, hard_end) {
        // the session ends for good: the last credentials it gets are the last
        mark(MarkKind::LoginNeeded, last_valid.unwrap_or(h).max(h), false);
    }
    for k in f.keys {
        marks.push(Mark {
            kind: MarkKind::KeyTooOld,
            at: k.too_old_at,
            projected: false,
            detail: Some(format!("{} ({})", k.access_key_id, k.profile)),
        });
    }
    marks.sort_by_key(|m| m.at);
    Timeline {
        from: now,
        to,
        marks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::plan::plan;

    fn t0() -> OffsetDateTime {
        crate::clock::parse_rfc3339("2026-01-01T12:00:00Z").unwrap()
    }

    fn acct() -> Account {
        Config::default()
            .account_with_env("default", &|_| None)
            .unwrap()
    }

    fn at(kind: MarkKind, tl: &Timeline) -> Vec<i64> {
        tl.marks
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| (m.at - t0()).whole_minutes())
            .collect()
    }

    fn timeline(a: &Account, rec: Option<&SessionRecord>, exp: Option<OffsetDateTime>) -> Timeline {
        let p = plan(a, exp, rec, t0());
        make(&Facts {
            acct: a,
            rec,
            credentials_expire_at: exp,
            plan: &p,
            renewing: rec.is_some(),
            login_needed_now: false,
            keys: &[],
            now: t0(),
        })
    }

    #[test]
    fn an_hour_of_credentials_and_a_half_hour_idle_session() {
        // credentials valid 60 min, refreshed 12 min before they expire, session idle 30 min
        let mut a = acct();
        a.refresh_lead_seconds = Some(720);
        let rec = SessionRecord::sample(t0(), Some(1800), Some(1800));
        let tl = timeline(&a, Some(&rec), Some(t0() + Duration::minutes(60)));
        assert_eq!(at(MarkKind::CredentialsExpire, &tl), [60]);
        assert_eq!(at(MarkKind::SessionIdleEnd, &tl), [30]);
        let renewals = at(MarkKind::Renewal, &tl);
        assert_eq!(renewals[..3], [48, 96, 144]);
        // keep-alive two minutes before the idle end, then after each renewal or keep-alive
        // whose idle end comes before the next renewal
        assert_eq!(at(MarkKind::KeepAlive, &tl)[..3], [28, 76, 124]);
        assert!(at(MarkKind::LoginNeeded, &tl).is_empty());
        assert_eq!(tl.to - tl.from, MIN_SPAN);
        // only the first of each is planned; the rest is projected, all within the span
        let first = tl
            .marks
            .iter()
            .find(|m| m.kind == MarkKind::Renewal)
            .unwrap();
        assert!(!first.projected);
        assert!(tl.marks.iter().filter(|m| m.projected).count() > 10);
        assert!(tl.marks.iter().all(|m| m.at <= tl.to));
    }

    #[test]
    fn a_capped_session_ends_the_renewals_and_says_when_to_log_in() {
        // granted an hour idle at login; the last refresh granted only 20 min: SSO Session Max
        let rec = SessionRecord::sample(t0(), Some(1200), Some(3600));
        let exp = t0() + Duration::minutes(15);
        let tl = timeline(&acct(), Some(&rec), Some(exp));
        assert_eq!(at(MarkKind::SessionMaxEnd, &tl), [20]);
        assert!(at(MarkKind::SessionIdleEnd, &tl).is_empty());
        assert!(at(MarkKind::KeepAlive, &tl).is_empty());
        // one renewal before the end, at 10 min before expiry: its credentials last an hour
        assert_eq!(at(MarkKind::Renewal, &tl), [5]);
        assert_eq!(at(MarkKind::LoginNeeded, &tl), [65]);
    }

    #[test]
    fn logged_out_needs_a_login_now_and_keys_are_marked() {
        let a = acct();
        let p = Plan::default();
        let keys = [HeldKey::new(
            "astran-permanent".into(),
            "AKIAEXAMPLE".into(),
            t0() - Duration::days(100),
            90,
            t0(),
        )];
        assert_eq!(keys[0].age_days, 100);
        let tl = make(&Facts {
            acct: &a,
            rec: None,
            credentials_expire_at: None,
            plan: &p,
            renewing: false,
            login_needed_now: true,
            keys: &keys,
            now: t0(),
        });
        assert_eq!(at(MarkKind::LoginNeeded, &tl), [0]);
        assert_eq!(at(MarkKind::KeyTooOld, &tl), [-10 * 24 * 60]);
        assert_eq!(
            tl.marks[0].detail.as_deref(),
            Some("AKIAEXAMPLE (astran-permanent)")
        );
        assert!(at(MarkKind::Renewal, &tl).is_empty());
    }
}
