//! The owner's console events on Windows: Ctrl-C, Ctrl-Break, the console closed, the user
//! logging off and the system shutting down stop it. (No SIGHUP: a CLI `reload` request, which
//! `login`, `refresh` and `logout` send, re-reads the config.)

use std::sync::Arc;
use tokio::sync::{watch, Notify};

pub(super) async fn signals(stop: watch::Sender<bool>, _wake: Arc<Notify>) {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_logoff, ctrl_shutdown};
    let (Ok(mut c), Ok(mut b), Ok(mut close), Ok(mut logoff), Ok(mut shutdown)) = (
        ctrl_c(),
        ctrl_break(),
        ctrl_close(),
        ctrl_logoff(),
        ctrl_shutdown(),
    ) else {
        log::warn!("cannot listen for console events; stop with the menu");
        return;
    };
    tokio::select! {
        _ = c.recv() => {}
        _ = b.recv() => {}
        _ = close.recv() => {}
        _ = logoff.recv() => {}
        _ = shutdown.recv() => {}
    }
    let _ = stop.send(true);
}
