//! The tray icon and its menu, on the main thread.

use crate::icon::{self, Look};
use crate::{autostart, notifier, UiMsg};
use astran_creds::scheduler::AccountView;
use astran_creds::session::Session;
use std::process::Child;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tray_icon::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu,
};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

pub struct TrayApp {
    tray: TrayIcon,
    menu: TrayMenu,
    session: Arc<Session>,
    rt: tokio::runtime::Handle,
    wake: Arc<Notify>,
    ui: Sender<UiMsg>,
    views: Vec<AccountView>,
    look: Look,
    /// The open window's process id while it runs (a thread reaps it when it exits).
    window: Arc<std::sync::Mutex<Option<u32>>>,
    clipboard: Option<arboard::Clipboard>,
}

/// Local wall-clock time as HH:MM.
pub fn hhmm(t: OffsetDateTime) -> String {
    #[cfg(unix)]
    {
        let secs = t.unix_timestamp() as libc::time_t;
        // SAFETY: localtime_r writes into the struct we own.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
            return format!("{:02}:{:02}", tm.tm_hour, tm.tm_min);
        }
    }
    format!("{:02}:{:02} UTC", t.hour(), t.minute())
}

/// The words for one account: "astran: valid until 14:32 (next refresh 14:12)".
pub fn describe(v: &AccountView, now: OffsetDateTime) -> String {
    let until = |e: OffsetDateTime| {
        if e > now {
            format!("valid until {}", hhmm(e))
        } else {
            format!("expired at {}", hhmm(e))
        }
    };
    let p = &v.profile;
    match (v.logged_in, v.login_required, v.credentials_expire_at) {
        (_, true, Some(e)) => format!("{p}: login required ({})", until(e)),
        (_, true, None) => format!("{p}: login required"),
        (true, false, Some(e)) if v.failures > 0 => {
            format!("{p}: {}, renewing keeps failing", until(e))
        }
        (true, false, Some(e)) => match v.next_refresh_at {
            Some(n) if e > now => format!("{p}: {} (next refresh {})", until(e), hhmm(n.max(now))),
            _ => format!("{p}: {}", until(e)),
        },
        (true, false, None) => format!("{p}: logged in, credentials pending"),
        (false, false, Some(e)) if e > now => format!("{p}: not logged in ({})", until(e)),
        (false, false, _) => format!("{p}: logged out"),
    }
}

pub fn look_of(views: &[AccountView], now: OffsetDateTime) -> Look {
    if views.iter().any(|v| v.failures > 0) {
        return Look::Error;
    }
    if views.iter().any(|v| {
        v.login_required || (!v.logged_in && v.credentials_expire_at.is_some_and(|e| e > now))
    }) {
        return Look::Attention;
    }
    if views.iter().any(|v| v.logged_in) {
        return Look::Fresh;
    }
    Look::LoggedOut
}

fn icon(look: Look) -> Icon {
    Icon::from_rgba(icon::rgba(look, 32), 32, 32).expect("32x32 RGBA icon")
}

/// The menu items whose words change, kept so updates happen in place: the menu keeps its
/// item ids, so a panel never clicks a stale one.
struct AccountItems {
    status: MenuItem,
    login: MenuItem,
    refresh: MenuItem,
    copy: MenuItem,
    logout: MenuItem,
}

impl AccountItems {
    fn new(a: &str) -> Self {
        AccountItems {
            status: MenuItem::with_id(format!("status:{a}"), "", false, None),
            login: MenuItem::with_id(format!("login:{a}"), "Log in…", true, None),
            refresh: MenuItem::with_id(format!("refresh:{a}"), "Refresh now", false, None),
            copy: MenuItem::with_id(format!("copy:{a}"), "Copy export lines", false, None),
            logout: MenuItem::with_id(format!("logout:{a}"), "Log out", false, None),
        }
    }

    fn append_to(&self, a: &str, push: &mut dyn FnMut(&dyn IsMenuItem)) {
        push(&self.status);
        push(&PredefinedMenuItem::separator());
        push(&self.login);
        push(&self.refresh);
        push(&self.copy);
        push(&MenuItem::with_id(
            format!("folder:{a}"),
            "Open credentials folder",
            true,
            None,
        ));
        push(&self.logout);
    }

    fn update(&self, v: &AccountView, now: OffsetDateTime) {
        self.status.set_text(describe(v, now));
        self.login.set_text(if v.login_required {
            "Log in again…"
        } else {
            "Log in…"
        });
        self.refresh.set_enabled(v.logged_in);
        self.copy.set_enabled(v.credentials_expire_at.is_some());
        self.logout.set_enabled(v.logged_in);
    }
}

pub struct TrayMenu {
    names: Vec<String>,
    items: Vec<AccountItems>,
    autostart: CheckMenuItem,
}

fn placeholder() -> AccountView {
    AccountView {
        account: "default".into(),
        profile: "astran".into(),
        credentials_expire_at: None,
        next_refresh_at: None,
        login_required: false,
        logged_in: false,
        failures: 0,
        last_error: None,
    }
}

/// Build the menu for `views` (one account: flat; several: a submenu each).
pub fn build_menu(views: &[AccountView], now: OffsetDateTime) -> (Menu, TrayMenu) {
    let fallback = [placeholder()];
    let views = if views.is_empty() {
        &fallback[..]
    } else {
        views
    };
    let menu = Menu::new();
    let mut items = Vec::new();
    if views.len() == 1 {
        let v = &views[0];
        let it = AccountItems::new(&v.account);
        it.append_to(&v.account, &mut |i| {
            let _ = menu.append(i);
        });
        it.update(v, now);
        items.push(it);
    } else {
        for v in views {
            let sub = Submenu::with_id(
                format!("account:{}", v.account),
                format!("{} ({})", v.account, v.profile),
                true,
            );
            let it = AccountItems::new(&v.account);
            it.append_to(&v.account, &mut |i| {
                let _ = sub.append(i);
            });
            it.update(v, now);
            items.push(it);
            let _ = menu.append(&sub);
        }
    }
    let autostart = CheckMenuItem::with_id(
        "autostart",
        "Start at login",
        true,
        autostart::is_enabled(),
        None,
    );
    let _ = menu.append(&PredefinedMenuItem::separator());
    let _ = menu.append(&MenuItem::with_id("settings", "Settings…", true, None));
    let _ = menu.append(&autostart);
    let _ = menu.append(&PredefinedMenuItem::separator());
    let _ = menu.append(&MenuItem::with_id("quit", "Quit", true, None));
    let names = views.iter().map(|v| v.account.clone()).collect();
    (
        menu,
        TrayMenu {
            names,
            items,
            autostart,
        },
    )
}

impl TrayMenu {
    /// Update in place; `false` when the accounts changed and the menu must be rebuilt.
    fn update(&self, views: &[AccountView], now: OffsetDateTime) -> bool {
        let fallback = [placeholder()];
        let views = if views.is_empty() {
            &fallback[..]
        } else {
            views
        };
        if views.iter().map(|v| &v.account).ne(self.names.iter()) {
            return false;
        }
        for (it, v) in self.items.iter().zip(views) {
            it.update(v, now);
        }
        self.autostart.set_checked(autostart::is_enabled());
        true
    }
}

fn tooltip(views: &[AccountView], now: OffsetDateTime) -> String {
    if views.is_empty() {
        return "Astran: logged out".into();
    }
    views
        .iter()
        .map(|v| describe(v, now))
        .collect::<Vec<_>>()
        .join("\n")
}

impl TrayApp {
    pub fn new(
        session: Arc<Session>,
        rt: tokio::runtime::Handle,
        wake: Arc<Notify>,
        ui: Sender<UiMsg>,
    ) -> Result<Self, String> {
        let now = OffsetDateTime::now_utc();
        let (menu, handles) = build_menu(&[], now);
        let tray = TrayIconBuilder::new()
            .with_id("astran-tray")
            .with_title("Astran credentials")
            .with_tooltip(tooltip(&[], now))
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
            ui,
            views: Vec::new(),
            look: Look::LoggedOut,
            window: Arc::new(std::sync::Mutex::new(None)),
            clipboard: None,
        })
    }

    fn render(&mut self) {
        let now = OffsetDateTime::now_utc();
        let look = look_of(&self.views, now);
        if look != self.look {
            let _ = self.tray.set_icon(Some(icon(look)));
            log::info!("tray: {}", look.name());
            self.look = look;
        }
        let _ = self.tray.set_tooltip(Some(tooltip(&self.views, now)));
        if !self.menu.update(&self.views, now) {
            let (menu, handles) = build_menu(&self.views, now);
            self.tray.set_menu(Some(Box::new(menu)));
            self.menu = handles;
        }
    }

    /// Handle one message; `false` means quit.
    pub fn handle(&mut self, msg: UiMsg) -> bool {
        match msg {
            UiMsg::Views(v) => {
                self.views = v;
                self.render();
            }
            UiMsg::OpenLogin(acct) => self.open_window("--login", acct),
            UiMsg::LoggedIn(o) => {
                notifier::show(
                    &format!("Logged in as {}", o.email),
                    &format!("Profile {} valid until {}.", o.profile, hhmm(o.expires_at)),
                    false,
                    None,
                    None,
                );
            }
            UiMsg::Info(summary, body) => notifier::show(&summary, &body, false, None, None),
            UiMsg::Menu(id) => return self.menu(&id),
            UiMsg::WindowClosed => self.wake.notify_one(),
            UiMsg::Quit => return false,
        }
        true
    }

    fn menu(&mut self, id: &str) -> bool {
        let (what, acct) = id
            .split_once(':')
            .map(|(w, a)| (w, Some(a.to_owned())))
            .unwrap_or((id, None));
        log::info!("menu: {what}");
        match what {
            "quit" => return false,
            "login" => self.open_window("--login", acct),
            "settings" => self.open_window("--settings", None),
            "refresh" => {
                let (s, w, ui) = (self.session.clone(), self.wake.clone(), self.ui.clone());
                self.rt.spawn(async move {
                    if let Err(e) = s.refresh(acct.as_deref()).await {
                        let _ = ui.send(UiMsg::Info("Refresh failed".into(), e.to_string()));
                    }
                    w.notify_one();
                });
            }
            "logout" => {
                let (s, w, ui) = (self.session.clone(), self.wake.clone(), self.ui.clone());
                self.rt.spawn(async move {
                    if let Err(e) = s.logout(acct.as_deref(), false).await {
                        let _ = ui.send(UiMsg::Info("Log out failed".into(), e.to_string()));
                    }
                    w.notify_one();
                });
            }
            "copy" => self.copy_export(acct),
            "folder" => self.open_folder(),
            "autostart" => {
                let on = !autostart::is_enabled();
                if let Err(e) = autostart::set_enabled(on) {
                    notifier::show(
                        "Cannot change start at login",
                        &e.to_string(),
                        false,
                        None,
                        None,
                    );
                }
                self.render();
            }
            _ => {}
        }
        true
    }

    fn copy_export(&mut self, acct: Option<String>) {
        let s = self.session.clone();
        let creds = self
            .rt
            .block_on(async move { s.credentials(acct.as_deref(), time::Duration::ZERO).await });
        let text = match creds {
            Ok(c) => {
                let mut t = format!(
                    "export AWS_ACCESS_KEY_ID='{}'\nexport AWS_SECRET_ACCESS_KEY='{}'\n",
                    c.access_key_id,
                    c.secret_access_key.expose()
                );
                if let Some(tok) = &c.session_token {
                    t.push_str(&format!("export AWS_SESSION_TOKEN='{}'\n", tok.expose()));
                }
                astran_creds::secret::Secret::new(t)
            }
            Err(e) => {
                notifier::show("Nothing to copy", &e.to_string(), false, None, None);
                return;
            }
        };
        if self.clipboard.is_none() {
            self.clipboard = arboard::Clipboard::new().ok();
        }
        match self
            .clipboard
            .as_mut()
            .map(|c| c.set_text(text.expose().to_owned()))
        {
            Some(Ok(())) => notifier::show(
                "Copied",
                "The export lines are on the clipboard.",
                false,
                None,
                None,
            ),
            _ => notifier::show(
                "Cannot copy",
                "No clipboard is available in this session.",
                false,
                None,
                None,
            ),
        }
    }

    fn open_folder(&self) {
        let dir = match astran_creds::credfile::default_path() {
            Ok(p) => p.parent().map(|d| d.to_path_buf()).unwrap_or_default(),
            Err(e) => {
                notifier::show("Cannot open the folder", &e.to_string(), false, None, None);
                return;
            }
        };
        let _ = std::fs::create_dir_all(&dir);
        #[cfg(target_os = "macos")]
        let opener = "open";
        #[cfg(windows)]
        let opener = "explorer";
        #[cfg(all(unix, not(target_os = "macos")))]
        let opener = "xdg-open";
        if let Err(e) = std::process::Command::new(opener).arg(&dir).spawn() {
            notifier::show(
                "Cannot open the folder",
                &format!("{opener}: {e}"),
                false,
                None,
                None,
            );
        }
    }

    fn window_bin() -> std::path::PathBuf {
        if let Some(p) = std::env::var_os("ASTRAN_WINDOW_BIN").filter(|p| !p.is_empty()) {
            return p.into();
        }
        let name = if cfg!(windows) {
            "astran-tray-window.exe"
        } else {
            "astran-tray-window"
        };
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join(name)))
            .filter(|p| p.exists())
            .unwrap_or_else(|| name.into())
    }

    fn open_window(&mut self, mode: &str, acct: Option<String>) {
        if self.window.lock().unwrap().is_some() {
            log::info!("a window is already open");
            return;
        }
        let mut cmd = std::process::Command::new(Self::window_bin());
        cmd.arg(mode).env(
            "ASTRAN_CONTROL_SOCKET",
            astran_creds::control::socket_path(),
        );
        if let Some(a) = acct {
            cmd.args(["--account", &a]);
        }
        // its stderr comes through us (copied to ours as it comes), so that a window that
        // cannot start says why in a notification instead of nothing happening on the click
        cmd.stderr(std::process::Stdio::piped());
        match cmd.spawn() {
            Ok(mut c) => {
                *self.window.lock().unwrap() = Some(c.id());
                let slot = self.window.clone();
                let ui = self.ui.clone();
                let tail = c.stderr.take().map(StderrTail::start);
                std::thread::spawn(move || reap(c, tail, slot, ui));
            }
            Err(e) => notifier::show(
                "Cannot open the window",
                &format!("{} could not be started: {e}", Self::window_bin().display()),
                false,
                None,
                None,
            ),
        }
    }
}

/// What a window wrote on stderr that says why it failed: a panic's message (the line after
/// "panicked at", even when a backtrace follows), else the last lines. Every line is also
/// copied to our stderr as it comes.
struct StderrTail {
    seen: Arc<std::sync::Mutex<Seen>>,
    done: std::sync::mpsc::Receiver<()>,
}

#[derive(Default)]
struct Seen {
    last: std::collections::VecDeque<String>,
    panic: Option<String>,
    after_panic: bool,
}

impl Seen {
    const KEEP: usize = 4;

    fn line(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if self.after_panic && self.panic.is_none() {
            self.panic = Some(text.to_owned());
        }
        self.after_panic = text.contains("panicked at");
        if self.last.len() == Self::KEEP {
            self.last.pop_front();
        }
        self.last.push_back(text.to_owned());
    }

    /// The one line that says most.
    fn cause(&self) -> Option<String> {
        self.panic.clone().or_else(|| {
            self.last
                .iter()
                .rev()
                .find(|l| !l.starts_with("note: "))
                .cloned()
        })
    }
}

impl StderrTail {
    fn start(pipe: std::process::ChildStderr) -> StderrTail {
        use std::io::{BufRead, Write};
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let (tx, done) = std::sync::mpsc::channel();
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { break };
                let _ = std::io::stderr().write_all(&[&line[..], b"\n"].concat());
                keep.lock().unwrap().line(&String::from_utf8_lossy(&line));
            }
            let _ = tx.send(());
        });
        StderrTail { seen, done }
    }

    /// The cause once the pipe ends; a grandchild (WebKit's helpers) may hold it a little
    /// longer, so this waits at most `within`.
    fn finish(self, within: std::time::Duration) -> Option<String> {
        let _ = self.done.recv_timeout(within);
        let seen = self.seen.lock().unwrap();
        seen.cause()
    }
}

/// What to tell the user when the window ended badly: `None` when it was closed (exit 0) or
/// told to stop (SIGTERM, SIGINT, SIGHUP, SIGKILL: a logout, a shutdown, the agent quitting).
fn window_failure(status: &std::process::ExitStatus, cause: Option<&str>) -> Option<String> {
    if status.success() {
        return None;
    }
    #[cfg(unix)]
    let how = {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (_, Some(libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGKILL)) => return None,
            (_, Some(sig)) => format!("it crashed (signal {sig})"),
            (Some(code), _) => format!("it exited with status {code}"),
            (None, None) => "it stopped".to_owned(),
        }
    };
    #[cfg(not(unix))]
    let how = format!("it exited with status {}", status.code().unwrap_or(-1));
    let cause = cause
        .map(|l| format!(": {}", l.chars().take(300).collect::<String>()))
        .unwrap_or_default();
    Some(format!(
        "The window could not be shown; {how}{cause}. Check that the desktop session \
         (DISPLAY or WAYLAND_DISPLAY) is reachable, then try again; the details are in the \
         agent's log."
    ))
}

/// Wait for the window process so it never lingers as a zombie; then wake the tray (the
/// window may have changed the session or the settings), and say so if the window failed.
fn reap(
    mut child: Child,
    tail: Option<StderrTail>,
    slot: Arc<std::sync::Mutex<Option<u32>>>,
    ui: Sender<UiMsg>,
) {
    let status = child.wait();
    *slot.lock().unwrap() = None;
    let cause = tail.and_then(|t| t.finish(std::time::Duration::from_millis(300)));
    match &status {
        Ok(s) => match window_failure(s, cause.as_deref()) {
            Some(msg) => {
                log::warn!("window failed ({s}): {}", cause.as_deref().unwrap_or("-"));
                let _ = ui.send(UiMsg::Info("Cannot open the window".into(), msg));
            }
            None => log::info!("window closed ({s})"),
        },
        Err(e) => log::warn!("window: cannot wait for it: {e}"),
    }
    let _ = ui.send(UiMsg::WindowClosed);
}

impl Drop for TrayApp {
    fn drop(&mut self) {
        if let Some(pid) = *self.window.lock().unwrap() {
            #[cfg(unix)]
            // SAFETY: signalling the child we started.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
            #[cfg(not(unix))]
            let _ = pid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> AccountView {
        placeholder()
    }

    #[test]
    fn a_window_that_fails_is_reported_and_one_closed_or_stopped_is_not() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::ExitStatus;
        let said = |raw: i32, err: &[&str]| {
            let mut seen = Seen::default();
            for l in err {
                seen.line(l);
            }
            window_failure(&ExitStatus::from_raw(raw), seen.cause().as_deref())
        };
        assert_eq!(said(0, &["some warning"]), None);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGKILL] {
            assert_eq!(said(sig, &["bye"]), None, "signal {sig}");
        }
        // tao's panic when GTK cannot start, with and without a backtrace after it
        let panic = [
            "",
            "thread 'main' (1123) panicked at tao-0.37.2/src/platform_impl/linux/event_loop.rs:219:53:",
            "Failed to initialize gtk backend!: BoolError",
        ];
        let backtrace = [
            "stack backtrace:",
            "   0: __rustc::rust_begin_unwind",
            "   1: core::panicking::panic_fmt",
            "             at /rustc/library/core/src/panicking.rs:75:14",
            "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
        ];
        let hint =
            ["note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"];
        for tail in [&hint[..], &backtrace[..]] {
            let lines: Vec<&str> = panic.iter().chain(tail).copied().collect();
            let m = said(101 << 8, &lines).unwrap();
            assert!(m.contains("exited with status 101"), "{m}");
            assert!(
                m.contains(": Failed to initialize gtk backend!: BoolError."),
                "{m}"
            );
            assert!(m.contains("DISPLAY"), "{m}");
        }
        // no panic: the last line that is not a note
        let m = said(1 << 8, &["Gtk-WARNING: cannot open display: :9", "note: x"]).unwrap();
        assert!(
            m.contains("status 1: Gtk-WARNING: cannot open display: :9."),
            "{m}"
        );
        let m = said(libc::SIGSEGV, &[]).unwrap();
        assert!(m.contains("crashed (signal 11)."), "{m}");
        // a long line is cut
        let long = "x".repeat(5000);
        assert!(said(1 << 8, &[&long]).unwrap().len() < 600);
    }

    #[test]
    fn words_and_looks() {
        let now = OffsetDateTime::now_utc();
        let v = view();
        assert_eq!(describe(&v, now), "astran: logged out");
        assert_eq!(look_of(std::slice::from_ref(&v), now), Look::LoggedOut);
        let fresh = AccountView {
            logged_in: true,
            credentials_expire_at: Some(now + time::Duration::hours(1)),
            next_refresh_at: Some(now + time::Duration::minutes(50)),
            ..v.clone()
        };
        let d = describe(&fresh, now);
        assert!(
            d.starts_with("astran: valid until ") && d.contains("(next refresh "),
            "{d}"
        );
        assert_eq!(look_of(std::slice::from_ref(&fresh), now), Look::Fresh);
        let req = AccountView {
            login_required: true,
            ..fresh.clone()
        };
        assert!(describe(&req, now).starts_with("astran: login required (valid until"));
        assert_eq!(look_of(&[req], now), Look::Attention);
        let failing = AccountView {
            failures: 2,
            ..fresh
        };
        assert_eq!(look_of(&[failing], now), Look::Error);
    }
}
