//! astran-tray: the tray agent. Tray icon and menu (`tray-icon` + `muda`; on Linux the
//! StatusNotifierItem backend over D-Bus, no GTK, no WebKit) over the core's owner runtime
//! (scheduler, control socket, signals), with desktop notifications.

mod app;
mod autostart;
mod desktop;
mod icon;
mod menu;
mod platform;
mod window;

use astran_creds::notify::{Action, DesktopNotifier, Fanout, LogNotifier, Notifier};
use astran_creds::owner::{Hooks, Owner, Start};
use astran_creds::protocol::WindowKind;
use astran_creds::scheduler::Snapshot;
use astran_creds::secret::Secret;
use astran_creds::session::{LoginOutcome, Session};
use std::sync::mpsc;
use std::sync::Arc;

/// The "Permanent key…" items, each behind a confirmation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Create,
    Rotate,
    Delete,
}

impl KeyAction {
    /// The window's `--keys` argument, and the menu id's prefix after `key-`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAction::Create => "create",
            KeyAction::Rotate => "rotate",
            KeyAction::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<KeyAction> {
        [KeyAction::Create, KeyAction::Rotate, KeyAction::Delete]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// What the tray thread is told.
pub enum UiMsg {
    Views(Snapshot),
    Menu(String),
    /// A window asked for: from the socket (a second start, the status window's buttons),
    /// or by a click on a notification.
    OpenWindow(WindowKind, Option<String>),
    /// The permanent-key window: what to do, for which account and profile.
    OpenKeys {
        account: String,
        action: KeyAction,
        profile: Option<String>,
    },
    LoggedIn(LoginOutcome),
    Info(String, String),
    /// Export lines to put on the clipboard.
    Copy(Secret),
    /// The local credentials endpoint could not start.
    EndpointFailed(String),
    WindowClosed,
    Quit,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("astran-tray {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    // `--icon-rgba SIZE`: the fresh-state icon as raw RGBA on stdout (scripts/icons.sh makes
    // the app icons from it, so every icon is the same drawing).
    if args.get(1).map(String::as_str) == Some("--icon-rgba") {
        let size = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
        use std::io::Write;
        let _ = std::io::stdout().write_all(&icon::rgba(icon::Look::Fresh, size));
        return;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("astran-tray: keeps your Astran AWS profile fresh from the system tray.\n\nUsage: astran-tray\n\nLog in, refresh, settings and quit are in the tray menu. See README for the\nenvironment variables it honours.");
        return;
    }
    astran_creds::logging::init("astran_creds=info,astran_tray=info,warn");
    std::process::exit(run());
}

fn run() -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("astran-tray: cannot start: {e}");
            return 1;
        }
    };
    let session = match Session::from_env() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("astran-tray: {e}");
            return e.exit_code();
        }
    };
    let (ui_tx, ui_rx) = mpsc::channel::<UiMsg>();
    let notifier: Arc<dyn Notifier> = {
        let tx = ui_tx.clone();
        let on_action = Arc::new(move |a: Action| {
            let _ = tx.send(match a {
                Action::Login { account } => UiMsg::OpenWindow(WindowKind::Login, Some(account)),
                Action::Status { account } => UiMsg::OpenWindow(WindowKind::Status, account),
                Action::Rotate { account, profile } => UiMsg::OpenKeys {
                    account,
                    action: KeyAction::Rotate,
                    profile: Some(profile),
                },
            });
        });
        Arc::new(Fanout(vec![
            Box::new(LogNotifier),
            Box::new(DesktopNotifier::new(app::APP).with_actions(on_action)),
        ]))
    };
    astran_creds::notify::init();
    {
        // a click on a one-off message (not on a button) opens the status window too
        let tx = ui_tx.clone();
        astran_creds::notify::on_click(Arc::new(move |_| {
            let _ = tx.send(UiMsg::OpenWindow(WindowKind::Status, None));
        }));
    }
    let hooks = {
        let (logged_in, show, copy) = (ui_tx.clone(), ui_tx.clone(), ui_tx.clone());
        Hooks {
            on_login: Some(Box::new(move |o: &LoginOutcome| {
                let _ = logged_in.send(UiMsg::LoggedIn(o.clone()));
            })),
            on_show: Some(Box::new(move |w, acct| {
                let _ = show.send(UiMsg::OpenWindow(w, acct));
            })),
            on_copy: Some(Box::new(move |lines| {
                let _ = copy.send(UiMsg::Copy(lines));
            })),
        }
    };
    let owner = match rt.block_on(Owner::start(session.clone(), notifier, hooks)) {
        Ok(Start::Running(o)) => o,
        // the tray is already there (autostart and a click on the menu entry): not an error
        Ok(Start::AlreadyRunning(path)) => {
            eprintln!(
                "astran-tray: already running (it answers on {})",
                path.display()
            );
            return 0;
        }
        Err(e) => {
            eprintln!("astran-tray: {e}");
            return e.exit_code();
        }
    };
    {
        let (tx, mut views) = (ui_tx.clone(), owner.views());
        rt.spawn(async move {
            while views.changed().await.is_ok() {
                let v = views.borrow_and_update().clone();
                if tx.send(UiMsg::Views(v)).is_err() {
                    break;
                }
            }
        });
        let (tx, mut stopping) = (ui_tx.clone(), owner.stopping());
        rt.spawn(async move {
            while !*stopping.borrow_and_update() {
                if stopping.changed().await.is_err() {
                    return;
                }
            }
            let _ = tx.send(UiMsg::Quit);
        });
    }

    if std::env::var_os("ASTRAN_TRAY_OPEN_LOGIN").is_some() {
        let _ = ui_tx.send(UiMsg::OpenWindow(WindowKind::Login, None));
    }
    // the tray thread: the platform's loop where it needs one (desktop/)
    let (handle, wake, tx) = (rt.handle().clone(), owner.wake.clone(), ui_tx.clone());
    drop(ui_tx);
    let ran = desktop::run(ui_rx, move || {
        app::TrayApp::new(session, handle, wake, tx)
            .map_err(|e| format!("cannot create the tray icon: {e}"))
    });
    if let Err(e) = ran {
        eprintln!("astran-tray: {e}");
        rt.block_on(owner.shutdown());
        return 1;
    }
    log::info!("quitting");
    rt.block_on(owner.shutdown());
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    0
}
