//! macOS and Windows: tao's event loop (Tauri's own, no WebView) on the main thread. The
//! `UiMsg` channel that the runtime, the menu and the notifications send to is forwarded
//! into the loop as user events; the tray is made once the loop runs (macOS wants the
//! NSApplication started first), and dropped before the loop returns.

use crate::app::TrayApp;
use crate::UiMsg;
use std::sync::mpsc::Receiver;
use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder};
use tao::platform::run_return::EventLoopExtRunReturn;

/// Make the tray inside the platform's loop, then handle each message until one says quit.
pub fn run(
    ui: Receiver<UiMsg>,
    make: impl FnOnce() -> Result<TrayApp, String>,
) -> Result<(), String> {
    let mut event_loop = EventLoopBuilder::<UiMsg>::with_user_event().build();
    #[cfg(target_os = "macos")]
    super::macos::prepare(&mut event_loop);
    let proxy = event_loop.create_proxy();
    std::thread::Builder::new()
        .name("ui-forward".into())
        .spawn(move || {
            for msg in ui.iter() {
                if proxy.send_event(msg).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let mut make = Some(make);
    let mut app: Option<TrayApp> = None;
    let mut failed = None;
    event_loop.run_return(|event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        match event {
            Event::NewEvents(StartCause::Init) => {
                if let Some(make) = make.take() {
                    match make() {
                        Ok(a) => {
                            log::info!("tray icon ready");
                            app = Some(a);
                        }
                        Err(e) => {
                            failed = Some(e);
                            *control_flow = ControlFlow::Exit;
                        }
                    }
                }
            }
            Event::UserEvent(msg) => {
                if let Some(a) = app.as_mut() {
                    if !a.handle(msg) {
                        // the icon goes with the app, on this thread
                        app = None;
                        *control_flow = ControlFlow::Exit;
                    }
                }
            }
            _ => {}
        }
    });
    drop(app);
    failed.map_or(Ok(()), Err)
}
