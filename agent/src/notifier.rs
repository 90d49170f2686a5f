//! Desktop notifications from the agent: like the core's, plus a "Log in" action where the
//! notification server supports actions; clicking it opens the login window.

use crate::UiMsg;
use astran_creds::notify::{Notice, NoticeKind, Notifier};
use std::sync::mpsc::Sender;
use std::sync::Mutex;

pub struct AgentNotifier {
    ui: Mutex<Sender<UiMsg>>,
}

impl AgentNotifier {
    pub fn new(ui: Sender<UiMsg>) -> Self {
        AgentNotifier { ui: Mutex::new(ui) }
    }
}

pub fn show(
    summary: &str,
    body: &str,
    login_action: bool,
    ui: Option<Sender<UiMsg>>,
    account: Option<String>,
) {
    let mut n = notify_rust::Notification::new();
    n.appname("astran-tray")
        .summary(summary)
        .body(body)
        .icon("dialog-password");
    if login_action {
        n.action("default", "Log in").action("login", "Log in");
        #[cfg(all(unix, not(target_os = "macos")))]
        n.urgency(notify_rust::Urgency::Critical);
    }
    let what = summary.to_owned();
    std::thread::spawn(move || match n.show() {
        #[cfg(all(unix, not(target_os = "macos")))]
        Ok(handle) => {
            if let Some(ui) = ui {
                handle.wait_for_action(|action| {
                    if action == "default" || action == "login" {
                        let _ = ui.send(UiMsg::OpenLogin(account));
                    }
                });
            }
        }
        #[cfg(any(not(unix), target_os = "macos"))]
        Ok(_) => {
            let _ = (ui, account);
        }
        Err(e) => log::warn!("cannot show a desktop notification ({e}): {what}"),
    });
}

impl Notifier for AgentNotifier {
    fn notify(&self, n: &Notice) {
        log::info!("notice: {}: {}", n.summary, n.body);
        let wants_login = matches!(n.kind, NoticeKind::LoginRequired | NoticeKind::ExpiringSoon);
        let ui = self.ui.lock().ok().map(|s| s.clone());
        show(
            &n.summary,
            &n.body,
            wants_login,
            ui,
            Some(n.account.clone()),
        );
    }
}
