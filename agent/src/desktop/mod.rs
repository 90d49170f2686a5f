//! The platform's event loop on the tray thread, and how the icon is drawn. Linux: the
//! StatusNotifierItem over D-Bus needs no loop of ours, the tray thread reads the `UiMsg`
//! channel (`linux.rs`). macOS and Windows: `tray-icon` needs the platform's loop on the
//! thread that owns the icon (an NSApplication run loop, a Win32 message loop), so the
//! channel is carried into tao's loop as user events (`tao_loop.rs`, with `macos.rs` and
//! `windows.rs` for what differs between the two).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{run, show_icon};

#[cfg(any(target_os = "macos", windows))]
mod tao_loop;
#[cfg(any(target_os = "macos", windows))]
pub use tao_loop::run;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::show_icon;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::show_icon;
