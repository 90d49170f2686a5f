//! astran-tray: the tray agent. Tray icon and menu (`tray-icon` + `muda`; on Linux the
//! StatusNotifierItem backend over D-Bus, no GTK, no WebKit), the core's scheduler,
//! notifications, and the control socket the login/settings window talks to.

mod app;
mod autostart;
mod icon;
mod notifier;

use astran_creds::control::{self, SessionHandler};
use astran_creds::scheduler::{AccountView, Scheduler};
use astran_creds::session::{LoginOutcome, Session};
use std::sync::mpsc;
use std::sync::Arc;

/// What the tray thread is told.
pub enum UiMsg {
    Views(Vec<AccountView>),
    Menu(String),
    OpenLogin(Option<String>),
    LoggedIn(LoginOutcome),
    Info(String, String),
    WindowClosed,
    Quit,
}

fn main() {
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("astran-tray {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    // `--icon-rgba SIZE`: the fresh-state icon as raw RGBA on stdout (scripts/icons.sh makes
    // the app icons from it, so every icon is the same drawing).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--icon-rgba") {
        let size = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
        use std::io::Write;
        let _ = std::io::stdout().write_all(&icon::rgba(icon::Look::Fresh, size));
        return;
    }
    if std::env::args().any(|a| a == "--help" || a == "-h") {
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
    let socket = control::socket_path();
    let server = match rt.block_on(control::bind(&socket)) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!(
                "astran-tray: already running (it answers on {})",
                socket.display()
            );
            return 0;
        }
        Err(e) => {
            eprintln!("astran-tray: {e}");
            return e.exit_code();
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
    let notifier = Arc::new(notifier::AgentNotifier::new(ui_tx.clone()));
    let mut sched = Scheduler::new(session.clone(), notifier.clone());
    let wake = sched.wake.clone();
    let mut views = sched.subscribe();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let handler = {
        let (w, tx1, tx2) = (wake.clone(), ui_tx.clone(), ui_tx.clone());
        Arc::new(SessionHandler {
            session: session.clone(),
            on_change: Box::new(move || w.notify_one()),
            on_show_login: Some(Box::new(move |acct| {
                let _ = tx1.send(UiMsg::OpenLogin(acct));
            })),
            on_login: Some(Box::new(move |o: &LoginOutcome| {
                let _ = tx2.send(UiMsg::LoggedIn(o.clone()));
            })),
        })
    };
    log::info!("control socket {}", server.path().display());
    rt.spawn(server.serve(handler));
    let sched_task = rt.spawn(async move { sched.run(stop_rx).await });
    {
        let tx = ui_tx.clone();
        rt.spawn(async move {
            while views.changed().await.is_ok() {
                let v = views.borrow_and_update().clone();
                if tx.send(UiMsg::Views(v)).is_err() {
                    break;
                }
            }
        });
    }
    {
        let tx = ui_tx.clone();
        rt.spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                if let (Ok(mut t), Ok(mut i)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(UiMsg::Quit);
        });
    }

    let mut app = match app::TrayApp::new(session, rt.handle().clone(), wake, ui_tx.clone()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("astran-tray: cannot create the tray icon: {e}");
            return 1;
        }
    };
    log::info!("tray icon ready");
    if std::env::var_os("ASTRAN_TRAY_OPEN_LOGIN").is_some() {
        let _ = ui_tx.send(UiMsg::OpenLogin(None));
    }
    drop(ui_tx);
    for msg in ui_rx.iter() {
        if !app.handle(msg) {
            break;
        }
    }
    log::info!("quitting");
    let _ = stop_tx.send(true);
    drop(app);
    let _ = rt.block_on(sched_task);
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    0
}
