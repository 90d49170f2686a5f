//! macOS: an accessory app (a menu-bar item, no Dock icon, no app menu), and a template icon
//! (the system draws it in the menu bar's colour, light or dark) while all is well; the
//! coloured icon when it needs the user.

use crate::icon::Look;
use tao::event_loop::EventLoop;
use tao::platform::macos::{ActivationPolicy, EventLoopExtMacOS};
use tray_icon::{Icon, TrayIcon};

pub fn prepare<T>(event_loop: &mut EventLoop<T>) {
    event_loop.set_activation_policy(ActivationPolicy::Accessory);
    event_loop.set_dock_visibility(false);
}

pub fn show_icon(tray: &TrayIcon, icon: Icon, look: Look) {
    let _ = match look {
        Look::Fresh | Look::LoggedOut => tray.set_icon_templated(Some(icon)),
        Look::Attention | Look::Error => tray.set_icon(Some(icon)),
    };
}
