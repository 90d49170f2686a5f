//! The owner's signals on Unix: SIGTERM and SIGINT stop it, SIGHUP re-reads the config.

use std::sync::Arc;
use tokio::sync::{watch, Notify};

pub(super) async fn signals(stop: watch::Sender<bool>, wake: Arc<Notify>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        log::warn!("cannot listen for signals; stop with the menu or kill -9");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                log::info!("SIGHUP: re-reading the configuration");
                wake.notify_one();
            }
        }
    }
    let _ = stop.send(true);
}
