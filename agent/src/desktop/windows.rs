//! Windows: the notification area draws the icon as it is (its colours tell the state).

use crate::icon::Look;
use tray_icon::{Icon, TrayIcon};

pub fn show_icon(tray: &TrayIcon, icon: Icon, _look: Look) {
    let _ = tray.set_icon(Some(icon));
}
