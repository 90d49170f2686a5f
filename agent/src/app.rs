//! The tray icon and what its menu does, on the main thread. Nothing here waits on the
//! network or a file lock: the work runs on the runtime and its result comes back as a
//! [`UiMsg`].

use crate::icon::{self, Look};
use crate::menu::{build_menu, look_of, tooltip, TrayMenu};
use crate::platform::{self, hhmm, Clipboard};
use crate::window::Windows;
use crate::{autostart, KeyAction, UiMsg};
use astran_creds::export;
use astran_creds::notify;
use astran_creds::scheduler::Snapshot;
use astran_creds::serve;
use astran_creds::session::Session;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tray_icon::menu::MenuEvent;
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

pub const APP: &str = "astran-tray";

pub struct TrayApp {
    tray: TrayIcon,
    menu: TrayMenu,
    session: Arc<Session>,
    rt: tokio::runtime::Handle,
    wake: Arc<Notify>,
    ui: Sender<UiMsg>,
    snap: Snapshot,
    look: Look,
    windows: Windows,
    clipboard: Clipboard,
    /// The local credentials endpoint, while it runs.
    endpoint: Option<tokio::task::JoinHandle<()>>,
}

fn icon(look: Look) -> Icon {
    Icon::from_rgba(icon::rgba(look, 32), 32, 32).expect("32x32 RGBA icon")
}

impl TrayApp {
    pub fn new(
        session: Arc<Session>,
        rt: tokio::runtime::Handle,
        wake: Arc<Notify>,
        ui: Sender<UiMsg>,
    ) -> Result<Self, String> {
        let now = OffsetDateTime::now_utc();
        let snap = Snapshot::default();
        let (menu, handles) = build_menu(&snap, now, false);
        let tray = TrayIconBuilder::new()
            .with_id(APP)
            .with_title("Astran credentials")
            .with_tooltip(tooltip(&snap, now))
            .with_icon(icon(Look::LoggedOut))
            .with_menu(Box::new(menu))
            .build()
            .map_err(|e| e.to_string())?;
        let tx = ui.clone();
        MenuEvent::set_event_handler(Some(move |e: MenuEvent| {
            let _ = tx.send(UiMsg::Menu(e.id.0.clone()));
        }));
        Ok(TrayApp {
            tray,
            menu: handles,
            session,
            rt,
            wake,
            windows: Windows::new(ui.clone()),
            ui,
            snap,
            look: Look::LoggedOut,
            clipboard: Clipboard::default(),
            endpoint: None,
        })
    }

    fn render(&mut self) {
        let now = OffsetDateTime::now_utc();
        let look = look_of(&self.snap);
        if look != self.look {
            crate::desktop::show_icon(&self.tray, icon(look), look);
            log::info!("tray: {}", look.name());
            self.look = look;
        }
        let _ = self.tray.set_tooltip(Some(tooltip(&self.snap, now)));
        let on = self.endpoint.is_some();
        if !self.menu.update(&self.snap, now, on) {
            let (menu, handles) = build_menu(&self.snap, now, on);
            self.tray.set_menu(Some(Box::new(menu)));
            self.menu = handles;
        }
    }

    /// Handle one message; `false` means quit.
    pub fn handle(&mut self, msg: UiMsg) -> bool {
        match msg {
            UiMsg::Views(v) => {
                self.snap = v;
                self.render();
            }
            UiMsg::OpenWindow(w, acct) => self.windows.open(w.arg(), acct),
            UiMsg::OpenKeys {
                account,
                action,
                profile,
            } => self.open_keys(account, action, profile),
            UiMsg::LoggedIn(o) => notify::message(
                APP,
                &format!("Logged in as {}", o.email),
                &format!("Profile {} valid until {}.", o.profile, hhmm(o.expires_at)),
            ),
            UiMsg::Info(summary, body) => notify::message(APP, &summary, &body),
            UiMsg::Copy(text) => {
                if self.clipboard.set(text.expose()) {
                    notify::message(APP, "Copied", "The export lines are on the clipboard.");
                } else {
                    notify::message(
                        APP,
                        "Cannot copy",
                        "No clipboard is available in this session.",
                    );
                }
            }
            UiMsg::Menu(id) => return self.menu(&id),
            UiMsg::EndpointFailed(why) => {
                self.endpoint = None;
                notify::message(APP, "Cannot start the local credentials endpoint", &why);
                self.render();
            }
            UiMsg::WindowClosed => self.wake.notify_one(),
            UiMsg::Quit => return false,
        }
        true
    }

    /// Run `f` on the runtime; tell the user `what` failed if it does, then wake the
    /// scheduler.
    fn spawn<F, T>(&self, what: &'static str, f: F)
    where
        F: std::future::Future<Output = astran_creds::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (w, ui) = (self.wake.clone(), self.ui.clone());
        self.rt.spawn(async move {
            if let Err(e) = f.await {
                let _ = ui.send(UiMsg::Info(what.into(), e.to_string()));
            }
            w.notify_one();
        });
    }

    /// Start or stop the local credentials endpoint (the same as `astran-creds serve`); on
    /// start its two export lines go to the clipboard.
    fn toggle_endpoint(&mut self) {
        if let Some(task) = self.endpoint.take() {
            task.abort();
            log::info!("credentials endpoint stopped");
            self.render();
            return;
        }
        let (s, ui) = (self.session.clone(), self.ui.clone());
        self.endpoint = Some(self.rt.spawn(async move {
            let started = async {
                let bound = serve::bind(None).await?;
                let vars = bound.env(&s, None).await?;
                Ok::<_, astran_creds::Error>((bound, vars))
            };
            match started.await {
                Ok((bound, vars)) => {
                    log::info!("credentials endpoint on 127.0.0.1:{}", bound.port());
                    let _ = ui.send(UiMsg::Copy(serve::export_lines(&vars[..2])));
                    bound.serve(s, None).await
                }
                Err(e) => {
                    let _ = ui.send(UiMsg::EndpointFailed(e.to_string()));
                }
            }
        }));
        self.render();
    }

    /// The permanent-key confirmation window (`--keys <action>`).
    fn open_keys(&self, account: String, action: KeyAction, profile: Option<String>) {
        let mut args = vec![
            "--keys".to_owned(),
            action.name().to_owned(),
            "--account".to_owned(),
            account,
        ];
        if let Some(p) = profile {
            args.extend(["--profile".to_owned(), p]);
        }
        self.windows.open_with(args);
    }

    fn menu(&mut self, id: &str) -> bool {
        let (what, acct) = id
            .split_once(':')
            .map(|(w, a)| (w, Some(a.to_owned())))
            .unwrap_or((id, None));
        log::info!("menu: {what}");
        let s = self.session.clone();
        match what {
            "quit" => return false,
            "login" => self.windows.open("--login", acct),
            "settings" => self.windows.open("--settings", None),
            "status" => self.windows.open("--status", None),
            "refresh" => self.spawn(
                "Refresh failed",
                async move { s.refresh(acct.as_deref()).await },
            ),
            "logout" => self.spawn("Log out failed", async move {
                s.logout(acct.as_deref(), false).await
            }),
            "copy" => {
                // credentials() may renew first (a network call): never on this thread
                let ui = self.ui.clone();
                self.spawn("Nothing to copy", async move {
                    let c = s.credentials(acct.as_deref(), time::Duration::ZERO).await?;
                    let _ = ui.send(UiMsg::Copy(export::render(&c, export::Format::Sh)));
                    Ok(())
                });
            }
            "folder" => {
                let r = astran_creds::paths::credentials_file()
                    .map_err(|e| e.to_string())
                    .and_then(|p| platform::open_folder(astran_creds::fsio::parent_dir(&p)));
                if let Err(e) = r {
                    notify::message(APP, "Cannot open the folder", &e);
                }
            }
            "endpoint" => self.toggle_endpoint(),
            k if k.starts_with("key-") => {
                if let (Some(action), Some(a)) = (KeyAction::parse(&k[4..]), acct) {
                    self.open_keys(a, action, None);
                }
            }
            "autostart" => {
                let on = !autostart::is_enabled();
                if let Err(e) = autostart::set_enabled(on) {
                    notify::message(APP, "Cannot change start at login", &e.to_string());
                }
                self.render();
            }
            _ => {}
        }
        true
    }
}
