//! Notices to the user: the trait the scheduler talks to, and the desktop implementation.

use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    LoggedIn,
    LoginRequired,
    ExpiringSoon,
    RefreshFailing,
    Recovered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub account: String,
    pub summary: String,
    pub body: String,
}

pub trait Notifier: Send + Sync {
    /// Show a notice. Must not block for long and must not fail loudly.
    fn notify(&self, n: &Notice);
}

/// Desktop notifications (D-Bus `org.freedesktop.Notifications` on Linux).
pub struct DesktopNotifier {
    app_name: String,
}

impl DesktopNotifier {
    pub fn new(app_name: impl Into<String>) -> Self {
        DesktopNotifier {
            app_name: app_name.into(),
        }
    }
}

impl Notifier for DesktopNotifier {
    fn notify(&self, n: &Notice) {
        let mut note = notify_rust::Notification::new();
        note.appname(&self.app_name)
            .summary(&n.summary)
            .body(&n.body)
            .icon("dialog-password");
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            let urgency = match n.kind {
                NoticeKind::LoginRequired | NoticeKind::ExpiringSoon => {
                    notify_rust::Urgency::Critical
                }
                _ => notify_rust::Urgency::Normal,
            };
            note.urgency(urgency);
        }
        // A D-Bus round trip: off the caller's thread, so a slow or missing notification
        // daemon never stalls the scheduler.
        let what = n.summary.clone();
        std::thread::spawn(move || {
            if let Err(e) = note.show() {
                log::warn!("cannot show a desktop notification ({e}): {what}");
            }
        });
    }
}

/// Logs notices (headless servers).
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

/// Keeps notices (tests, the tray's "last notice").
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

impl<T: Notifier + ?Sized> Notifier for std::sync::Arc<T> {
    fn notify(&self, n: &Notice) {
        (**self).notify(n)
    }
}
