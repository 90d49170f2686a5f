//! Linux: the tray thread reads the channel; the icon is a StatusNotifierItem (ksni, no GTK).

use crate::app::TrayApp;
use crate::icon::Look;
use crate::UiMsg;
use std::sync::mpsc::Receiver;
use tray_icon::{Icon, TrayIcon};

/// Make the tray, then handle each message until one says quit.
pub fn run(
    ui: Receiver<UiMsg>,
    make: impl FnOnce() -> Result<TrayApp, String>,
) -> Result<(), String> {
    let mut app = make()?;
    log::info!("tray icon ready");
    for msg in ui.iter() {
        if !app.handle(msg) {
            break;
        }
    }
    Ok(())
}

/// The icon as drawn (the panel shows its colours).
pub fn show_icon(tray: &TrayIcon, icon: Icon, _look: Look) {
    let _ = tray.set_icon(Some(icon));
}
