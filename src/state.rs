//! An account's state, derived once: from its config, its session record, the expiry of the
//! credentials in its profile, the clock, and what the owner (tray or daemon) has learned
//! (failed renewals). `status`, the scheduler's views, the tray's icon and tooltip and the
//! windows all read the [`AccountStatus`] made here. Pure.

use crate::config::Account;
use crate::plan::plan;
use crate::store::SessionRecord;
use crate::timeline::{self, HeldKey, Timeline};
use crate::values::{AccountName, ProfileName};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Logged in; the credentials are valid (or being fetched) and will be renewed.
    Fresh,
    /// Logged in; the credentials expire within the notice lead and have not been renewed yet.
    Expiring,
    /// Logged in; the credentials have expired and will be renewed.
    Expired,
    /// The session is over, or will end before the credentials: log in again.
    LoginRequired,
    /// No session and no credentials.
    LoggedOut,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Fresh => "fresh",
            AccountState::Expiring => "expiring",
            AccountState::Expired => "expired",
            AccountState::LoginRequired => "login_required",
            AccountState::LoggedOut => "logged_out",
        }
    }

    /// In words, for the CLI's `status`.
    pub fn words(self) -> &'static str {
        match self {
            AccountState::LoginRequired => "login required",
            AccountState::LoggedOut => "logged out",
            s => s.as_str(),
        }
    }
}

/// What the owner has learned about an account beyond the files and the keyring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// A renewal answered "log in again", or the session was found capped.
    pub login_required: bool,
    /// Failed renewals in a row.
    pub failures: u32,
    pub last_error: Option<String>,
}

/// One account as everybody shows it (`status --json`'s `accounts[]`, the control socket's
/// `status`, the tray, the windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountStatus {
    pub account: AccountName,
    pub email: Option<String>,
    pub profile: ProfileName,
    pub state: AccountState,
    /// A login session is held and has not ended.
    pub logged_in: bool,
    pub role_arn: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub credentials_expire_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub session_expires_at: Option<OffsetDateTime>,
    /// An offline session ("stay signed in"): it outlives SSO Session Max; without a
    /// `session_expires_at` it has no fixed end.
    #[serde(default)]
    pub offline_session: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_refresh_at: Option<OffsetDateTime>,
    /// Failed renewals in a row (known to a running owner only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The permanent keys held in the account's profiles (`keys create`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permanent_keys: Vec<HeldKey>,
    /// From now to the furthest known deadline: what comes next.
    #[serde(default)]
    pub timeline: Timeline,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl AccountStatus {
    /// An account with nothing known (before the first look, or no config yet).
    pub fn unknown(acct: &Account) -> Self {
        AccountStatus {
            account: acct.name.clone(),
            email: acct.email.clone(),
            profile: acct.profile.clone(),
            state: AccountState::LoggedOut,
            logged_in: false,
            role_arn: acct.role_arn.clone(),
            credentials_expire_at: None,
            session_expires_at: None,
            offline_session: false,
            next_refresh_at: None,
            failures: 0,
            last_error: None,
            permanent_keys: Vec::new(),
            timeline: Timeline::empty(),
        }
    }

    /// Renewing is failing (the tray's red).
    pub fn failing(&self) -> bool {
        self.failures > 0 && self.logged_in && self.state != AccountState::LoginRequired
    }
}

/// Derive an account's status.
pub fn derive(
    acct: &Account,
    rec: Option<&SessionRecord>,
    credentials_expire_at: Option<OffsetDateTime>,
    overlay: &Overlay,
    keys: &[HeldKey],
    now: OffsetDateTime,
) -> AccountStatus {
    let exp = credentials_expire_at;
    let session_end = rec
        .and_then(|r| r.refresh_expires_at)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let logged_in = rec.is_some() && session_end.is_none_or(|e| e > now);
    let p = plan(acct, exp, rec, now);
    // Keycloak will end the session before these credentials expire: a login is needed.
    let capped = p.session_capped && session_end.zip(exp).is_some_and(|(s, e)| s < e);
    let must_log_in = overlay.login_required || capped;
    let lead = Duration::seconds(acct.notice_lead_seconds as i64);
    let state = match exp {
        Some(e) if e <= now => {
            if logged_in && !must_log_in {
                AccountState::Expired
            } else {
                AccountState::LoginRequired
            }
        }
        _ if logged_in && must_log_in => AccountState::LoginRequired,
        Some(e) if logged_in && e - now <= lead => AccountState::Expiring,
        _ if logged_in => AccountState::Fresh,
        Some(_) => AccountState::LoginRequired,
        None if overlay.login_required => AccountState::LoginRequired,
        None => AccountState::LoggedOut,
    };
    let next_refresh_at = if logged_in && !overlay.login_required {
        p.next_refresh()
    } else {
        None
    };
    let timeline = timeline::make(&timeline::Facts {
        acct,
        rec: rec.filter(|_| logged_in),
        credentials_expire_at: exp,
        plan: &p,
        renewing: next_refresh_at.is_some(),
        login_needed_now: matches!(state, AccountState::LoginRequired | AccountState::LoggedOut),
        keys,
        now,
    });
    AccountStatus {
        account: acct.name.clone(),
        email: rec.map(|r| r.email.clone()).or(acct.email.clone()),
        profile: acct.profile.clone(),
        state,
        logged_in,
        role_arn: rec.map(|r| r.role_arn.clone()).or(acct.role_arn.clone()),
        credentials_expire_at: exp,
        session_expires_at: session_end,
        offline_session: logged_in && rec.is_some_and(|r| r.offline),
        next_refresh_at,
        failures: overlay.failures,
        last_error: overlay.last_error.clone(),
        permanent_keys: keys.to_vec(),
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn t0() -> OffsetDateTime {
        crate::clock::parse_rfc3339("2026-01-01T12:00:00Z").unwrap()
    }

    /// Logged in at t0 with a session of `end_in` seconds (idle timeout the same).
    fn rec(end_in: Option<i64>) -> SessionRecord {
        SessionRecord::sample(t0(), end_in, end_in.map(|s| s.max(0) as u64))
    }

    #[test]
    fn every_state_from_its_facts() {
        let acct = Config::default()
            .account_with_env("default", &|_| None)
            .unwrap();
        let none = Overlay::default();
        let h = |n| Some(t0() + Duration::hours(n));
        let st =
            |r: Option<&SessionRecord>, exp, o: &Overlay| derive(&acct, r, exp, o, &[], t0()).state;
        let live = rec(Some(7200));
        assert_eq!(st(None, None, &none), AccountState::LoggedOut);
        assert_eq!(st(Some(&live), h(1), &none), AccountState::Fresh);
        assert_eq!(st(Some(&live), None, &none), AccountState::Fresh);
        assert_eq!(
            st(Some(&live), Some(t0() + Duration::minutes(5)), &none),
            AccountState::Expiring
        );
        assert_eq!(st(Some(&live), h(-1), &none), AccountState::Expired);
        // no session, credentials still valid or gone by: log in
        assert_eq!(st(None, h(1), &none), AccountState::LoginRequired);
        assert_eq!(st(None, h(-1), &none), AccountState::LoginRequired);
        // the session ended
        let ended = rec(Some(-10));
        assert_eq!(st(Some(&ended), h(1), &none), AccountState::LoginRequired);
        assert!(!derive(&acct, Some(&ended), h(1), &none, &[], t0()).logged_in);
        // the owner learned that a login is needed
        let told = Overlay {
            login_required: true,
            ..Overlay::default()
        };
        assert_eq!(st(Some(&live), h(1), &told), AccountState::LoginRequired);
        assert_eq!(st(None, None, &told), AccountState::LoginRequired);
        // Keycloak caps the session before the credentials expire
        let mut capped = rec(Some(600));
        capped.idle_seconds = Some(1800);
        assert_eq!(st(Some(&capped), h(1), &none), AccountState::LoginRequired);
        // failures make it failing, not another state
        let failing = Overlay {
            failures: 2,
            ..Overlay::default()
        };
        let s = derive(&acct, Some(&live), h(1), &failing, &[], t0());
        assert_eq!(s.state, AccountState::Fresh);
        assert!(s.failing());
        assert!(s.next_refresh_at.is_some());
    }
}
