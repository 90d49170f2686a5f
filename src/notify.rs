//! Notices to the user: the trait the scheduler talks to, the desktop implementation the
//! daemon and the tray share (with a "Log in" action where the notification server has
//! actions), and one-off messages.

use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    LoginRequired,
    ExpiringSoon,
    RefreshFailing,
    Recovered,
    /// A permanent key held in one of our profiles is older than `max_key_age_days`.
    KeyOld,
}

impl NoticeKind {
    /// The notices that ask the user to log in (urgent, with a "Log in" action).
    pub fn wants_login(self) -> bool {
        matches!(self, NoticeKind::LoginRequired | NoticeKind::ExpiringSoon)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub account: String,
    /// The profile it is about, where that is not the account's own (a permanent key's).
    pub profile: Option<String>,
    pub summary: String,
    pub body: String,
}

/// What a click on a notice's button asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// "Log in" (a notice that wants a login).
    Login { account: String },
    /// "Rotate" (a permanent key too old).
    Rotate { account: String, profile: String },
    /// A click on the notification itself, not on a button: the status window.
    Status { account: Option<String> },
}

impl Action {
    /// The action a notice offers, if any, with its button's words.
    pub fn of(n: &Notice) -> Option<(Action, &'static str)> {
        match n.kind {
            k if k.wants_login() => Some((
                Action::Login {
                    account: n.account.clone(),
                },
                "Log in",
            )),
            NoticeKind::KeyOld => n.profile.as_ref().map(|p| {
                (
                    Action::Rotate {
                        account: n.account.clone(),
                        profile: p.clone(),
                    },
                    "Rotate",
                )
            }),
            _ => None,
        }
    }
}

pub trait Notifier: Send + Sync {
    /// Show a notice. Must not block for long and must not fail loudly.
    fn notify(&self, n: &Notice);
}

/// Called with the action when the user clicks a notice's button.
pub type OnAction = Arc<dyn Fn(Action) + Send + Sync>;

/// Desktop notifications (D-Bus `org.freedesktop.Notifications` on Linux).
pub struct DesktopNotifier {
    app_name: String,
    on_action: Option<OnAction>,
}

impl DesktopNotifier {
    pub fn new(app_name: impl Into<String>) -> Self {
        DesktopNotifier {
            app_name: app_name.into(),
            on_action: None,
        }
    }

    /// Offer the notices' actions ("Log in", "Rotate"); `f` runs when one is clicked.
    pub fn with_actions(mut self, f: OnAction) -> Self {
        self.on_action = Some(f);
        self
    }
}

impl Notifier for DesktopNotifier {
    fn notify(&self, n: &Notice) {
        let clicks = self.on_action.as_ref().map(|f| Clicks {
            button: Action::of(n),
            body: Action::Status {
                account: Some(n.account.clone()),
            },
            then: f.clone(),
        });
        show(
            &self.app_name,
            &n.summary,
            &n.body,
            n.kind.wants_login(),
            clicks,
        );
    }
}

/// What a click on a one-off message (not on a button) does: set once by the tray.
static ON_CLICK: std::sync::OnceLock<OnAction> = std::sync::OnceLock::new();

/// A click on a one-off message (not on a button) runs `f` with [`Action::Status`].
pub fn on_click(f: OnAction) {
    let _ = ON_CLICK.set(f);
}

/// The identifier the installers register (Tauri's `identifier`): macOS shows notifications
/// under the app with this bundle id, Windows toasts need it as their AppUserModelID.
pub const APP_ID: &str = "io.astran.tray";

/// Once at start: tie the notifications to the installed app where the platform wants that
/// (macOS: the bundle id; Linux and Windows need nothing here).
pub fn init() {
    #[cfg(target_os = "macos")]
    if let Err(e) = notify_rust::set_application(APP_ID) {
        log::debug!("notifications: cannot use the bundle id {APP_ID}: {e}");
    }
}

/// A one-off desktop message (a failed menu action, "Copied").
pub fn message(app_name: &str, summary: &str, body: &str) {
    let clicks = ON_CLICK.get().map(|f| Clicks {
        button: None,
        body: Action::Status { account: None },
        then: f.clone(),
    });
    show(app_name, summary, body, false, clicks);
}

/// What the clicks on a notification do: its button's action (with its words), if any, and
/// a click on the notification itself.
struct Clicks {
    button: Option<(Action, &'static str)>,
    body: Action,
    then: OnAction,
}

/// Show a notification off the caller's thread (a D-Bus round trip: a slow or missing
/// notification daemon never stalls the caller), waiting there for the action if any.
fn show(app_name: &str, summary: &str, body: &str, urgent: bool, clicks: Option<Clicks>) {
    let mut note = notify_rust::Notification::new();
    note.appname(app_name)
        .summary(summary)
        .body(body)
        .icon("dialog-password");
    #[cfg(windows)]
    note.app_id(APP_ID);
    if let Some(c) = &clicks {
        // "default" is the click on the notification itself (the spec's name for it)
        note.action("default", "Show status");
        if let Some((_, label)) = &c.button {
            note.action("act", label);
        }
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    note.urgency(if urgent {
        notify_rust::Urgency::Critical
    } else {
        notify_rust::Urgency::Normal
    });
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = urgent;
    let what = summary.to_owned();
    std::thread::spawn(move || match note.show() {
        #[cfg(all(unix, not(target_os = "macos")))]
        Ok(handle) => {
            if let Some(c) = clicks {
                handle.wait_for_action(|a| match (a, c.button) {
                    ("default", _) => (c.then)(c.body),
                    ("act", Some((what, _))) => (c.then)(what),
                    _ => {}
                });
            }
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        Ok(_) => drop(clicks),
        Err(e) => log::warn!("cannot show a desktop notification ({e}): {what}"),
    });
}

/// Logs notices (headless servers, and beside the desktop ones).
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, n: &Notice) {
        log::warn!("{}: {}", n.summary, n.body);
    }
}

/// Sends to several notifiers.
pub struct Fanout(pub Vec<Box<dyn Notifier>>);

impl Notifier for Fanout {
    fn notify(&self, n: &Notice) {
        for x in &self.0 {
            x.notify(n);
        }
    }
}

/// Keeps notices (tests).
#[derive(Default)]
pub struct RecordingNotifier {
    pub notices: Mutex<Vec<Notice>>,
}

impl RecordingNotifier {
    pub fn taken(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.notices.lock().unwrap())
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, n: &Notice) {
        self.notices.lock().unwrap().push(n.clone());
    }
}

impl<T: Notifier + ?Sized> Notifier for Arc<T> {
    fn notify(&self, n: &Notice) {
        (**self).notify(n)
    }
}
