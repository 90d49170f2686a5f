//! The tray's menu and words: built from the scheduler's [`Snapshot`] (the core's one
//! account status), updated in place so a panel never clicks a stale item id.

use crate::autostart;
use crate::icon::Look;
use crate::platform::hhmm;
use astran_creds::scheduler::Snapshot;
use astran_creds::state::{AccountState, AccountStatus};
use time::OffsetDateTime;
use tray_icon::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};

/// Logged out here (no session, nothing went wrong) while the keys may still work: a login
/// is needed, but nothing is "again".
fn logged_out_here(v: &AccountStatus) -> bool {
    v.state == AccountState::LoginRequired && !v.logged_in && v.last_error.is_none()
}

/// The words for one account: "astran: valid until 14:32 (next refresh 14:12)".
pub fn describe(v: &AccountStatus, now: OffsetDateTime) -> String {
    let until = |e: OffsetDateTime| {
        if e > now {
            format!("valid until {}", hhmm(e))
        } else {
            format!("expired at {}", hhmm(e))
        }
    };
    let p = &v.profile;
    let exp = v.credentials_expire_at;
    match v.state {
        AccountState::LoginRequired if logged_out_here(v) => match exp {
            Some(e) if e > now => format!("{p}: not logged in ({})", until(e)),
            _ => format!("{p}: logged out"),
        },
        AccountState::LoginRequired => match exp {
            Some(e) => format!("{p}: login required ({})", until(e)),
            None => format!("{p}: login required"),
        },
        AccountState::LoggedOut => format!("{p}: logged out"),
        AccountState::Fresh | AccountState::Expiring | AccountState::Expired => match exp {
            Some(e) if v.failing() => format!("{p}: {}, renewing keeps failing", until(e)),
            Some(e) => match v.next_refresh_at {
                Some(n) if e > now => {
                    format!("{p}: {} (next refresh {})", until(e), hhmm(n.max(now)))
                }
                _ => format!("{p}: {}", until(e)),
            },
            None => format!("{p}: logged in, credentials pending"),
        },
    }
}

/// The icon for every account together.
pub fn look_of(snap: &Snapshot) -> Look {
    let views = &snap.accounts;
    if snap.problem.is_some() || views.iter().any(AccountStatus::failing) {
        return Look::Error;
    }
    if views.iter().any(|v| v.state == AccountState::LoginRequired) {
        return Look::Attention;
    }
    if views.iter().any(|v| v.logged_in) {
        return Look::Fresh;
    }
    Look::LoggedOut
}

/// The tooltip: one line per account, or what keeps the agent from looking.
pub fn tooltip(snap: &Snapshot, now: OffsetDateTime) -> String {
    if let Some(p) = &snap.problem {
        return problem_line(p);
    }
    if snap.accounts.is_empty() {
        return "Astran: logged out".into();
    }
    snap.accounts
        .iter()
        .map(|v| describe(v, now))
        .collect::<Vec<_>>()
        .join("\n")
}

fn problem_line(p: &str) -> String {
    let mut s: String = p.chars().take(200).collect();
    if s.len() < p.len() {
        s.push('…');
    }
    format!("Astran: {s}")
}

/// The menu items whose words change, kept so updates happen in place.
struct AccountItems {
    status: MenuItem,
    login: MenuItem,
    refresh: MenuItem,
    copy: MenuItem,
    logout: MenuItem,
}

impl AccountItems {
    fn new(a: &str) -> Self {
        AccountItems {
            status: MenuItem::with_id(format!("status:{a}"), "", false, None),
            login: MenuItem::with_id(format!("login:{a}"), "Log in…", true, None),
            refresh: MenuItem::with_id(format!("refresh:{a}"), "Refresh now", false, None),
            copy: MenuItem::with_id(format!("copy:{a}"), "Copy export lines", false, None),
            logout: MenuItem::with_id(format!("logout:{a}"), "Log out", false, None),
        }
    }

    fn append_to(&self, a: &str, push: &mut dyn FnMut(&dyn IsMenuItem)) {
        push(&self.status);
        push(&PredefinedMenuItem::separator());
        push(&self.login);
        push(&self.refresh);
        push(&self.copy);
        push(&MenuItem::with_id(
            format!("folder:{a}"),
            "Open credentials folder",
            true,
            None,
        ));
        push(&self.logout);
        // permanent keys (discouraged, so out of the way): each item opens a confirmation
        let keys = Submenu::with_id(format!("keys:{a}"), "Permanent key…", true);
        for (action, label) in [
            ("create", "Create…"),
            ("rotate", "Rotate now"),
            ("delete", "Delete…"),
        ] {
            let _ = keys.append(&MenuItem::with_id(
                format!("key-{action}:{a}"),
                label,
                true,
                None,
            ));
        }
        push(&keys);
    }

    fn update(&self, v: &AccountStatus, problem: Option<&str>, now: OffsetDateTime) {
        self.status.set_text(match problem {
            Some(p) => problem_line(p),
            None => describe(v, now),
        });
        self.login.set_text(
            if v.state == AccountState::LoginRequired && !logged_out_here(v) {
                "Log in again…"
            } else {
                "Log in…"
            },
        );
        self.refresh.set_enabled(v.logged_in);
        self.copy.set_enabled(v.credentials_expire_at.is_some());
        self.logout.set_enabled(v.logged_in);
    }
}

/// The live menu's handles.
pub struct TrayMenu {
    names: Vec<String>,
    items: Vec<AccountItems>,
    autostart: CheckMenuItem,
    endpoint: CheckMenuItem,
}

/// Before the first look, or when the config cannot be read: the default account, logged out.
fn placeholder() -> AccountStatus {
    AccountStatus {
        account: astran_creds::values::AccountName::parse(astran_creds::config::DEFAULT_ACCOUNT)
            .expect("the default account name is valid"),
        email: None,
        profile: astran_creds::values::ProfileName::parse(astran_creds::config::DEFAULT_PROFILE)
            .expect("the default profile name is valid"),
        state: AccountState::LoggedOut,
        logged_in: false,
        role_arn: None,
        credentials_expire_at: None,
        session_expires_at: None,
        offline_session: false,
        next_refresh_at: None,
        failures: 0,
        last_error: None,
        permanent_keys: Vec::new(),
        timeline: Default::default(),
    }
}

fn shown(snap: &Snapshot) -> Vec<AccountStatus> {
    if snap.accounts.is_empty() {
        vec![placeholder()]
    } else {
        snap.accounts.clone()
    }
}

/// Build the menu (one account: flat; several: a submenu each).
/// `endpoint_on`: the local credentials endpoint is running.
pub fn build_menu(snap: &Snapshot, now: OffsetDateTime, endpoint_on: bool) -> (Menu, TrayMenu) {
    let views = shown(snap);
    let problem = snap.problem.as_deref();
    let menu = Menu::new();
    let mut items = Vec::new();
    if views.len() == 1 {
        let v = &views[0];
        let it = AccountItems::new(&v.account);
        it.append_to(&v.account, &mut |i| {
            let _ = menu.append(i);
        });
        it.update(v, problem, now);
        items.push(it);
    } else {
        for v in &views {
            let sub = Submenu::with_id(
                format!("account:{}", v.account),
                format!("{} ({})", v.account, v.profile),
                true,
            );
            let it = AccountItems::new(&v.account);
            it.append_to(&v.account, &mut |i| {
                let _ = sub.append(i);
            });
            it.update(v, problem, now);
            items.push(it);
            let _ = menu.append(&sub);
        }
    }
    let autostart = CheckMenuItem::with_id(
        "autostart",
        "Start at login",
        true,
        autostart::is_enabled(),
        None,
    );
    let endpoint = CheckMenuItem::with_id(
        "endpoint",
        "Local credentials endpoint",
        true,
        endpoint_on,
        None,
    );
    let _ = menu.append(&PredefinedMenuItem::separator());
    let _ = menu.append(&MenuItem::with_id("status", "Status…", true, None));
    let _ = menu.append(&MenuItem::with_id("settings", "Settings…", true, None));
    let _ = menu.append(&endpoint);
    let _ = menu.append(&autostart);
    let _ = menu.append(&PredefinedMenuItem::separator());
    let _ = menu.append(&MenuItem::with_id("quit", "Quit", true, None));
    let names = views.iter().map(|v| v.account.to_string()).collect();
    (
        menu,
        TrayMenu {
            names,
            items,
            autostart,
            endpoint,
        },
    )
}

impl TrayMenu {
    /// Update in place; `false` when the accounts changed and the menu must be rebuilt.
    pub fn update(&self, snap: &Snapshot, now: OffsetDateTime, endpoint_on: bool) -> bool {
        let views = shown(snap);
        if views
            .iter()
            .map(|v| v.account.as_str())
            .ne(self.names.iter().map(String::as_str))
        {
            return false;
        }
        for (it, v) in self.items.iter().zip(&views) {
            it.update(v, snap.problem.as_deref(), now);
        }
        self.autostart.set_checked(autostart::is_enabled());
        self.endpoint.set_checked(endpoint_on);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(v: AccountStatus) -> Snapshot {
        Snapshot {
            accounts: vec![v],
            problem: None,
            default_account: None,
        }
    }

    #[test]
    fn words_and_looks() {
        let now = OffsetDateTime::now_utc();
        let v = placeholder();
        assert_eq!(describe(&v, now), "astran: logged out");
        assert_eq!(look_of(&snap(v.clone())), Look::LoggedOut);
        let fresh = AccountStatus {
            logged_in: true,
            state: AccountState::Fresh,
            credentials_expire_at: Some(now + time::Duration::hours(1)),
            next_refresh_at: Some(now + time::Duration::minutes(50)),
            ..v.clone()
        };
        let d = describe(&fresh, now);
        assert!(
            d.starts_with("astran: valid until ") && d.contains("(next refresh "),
            "{d}"
        );
        assert_eq!(look_of(&snap(fresh.clone())), Look::Fresh);
        let req = AccountStatus {
            state: AccountState::LoginRequired,
            last_error: Some("the login session has ended".into()),
            ..fresh.clone()
        };
        assert!(describe(&req, now).starts_with("astran: login required (valid until"));
        assert_eq!(look_of(&snap(req)), Look::Attention);
        let out = AccountStatus {
            state: AccountState::LoginRequired,
            logged_in: false,
            ..fresh.clone()
        };
        assert!(describe(&out, now).starts_with("astran: not logged in (valid until"));
        let failing = AccountStatus {
            failures: 2,
            ..fresh
        };
        assert!(describe(&failing, now).ends_with("renewing keeps failing"));
        assert_eq!(look_of(&snap(failing)), Look::Error);
        let broken = Snapshot {
            accounts: vec![],
            problem: Some("invalid config file /c: line 2, key `profile`".into()),
            default_account: None,
        };
        assert_eq!(look_of(&broken), Look::Error);
        assert!(tooltip(&broken, now).starts_with("Astran: invalid config file"));
    }
}
