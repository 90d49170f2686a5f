//! The owner runtime: what `astran-creds daemon` and the tray agent both run. The scheduler,
//! the control socket and its handler, the signals (SIGTERM/SIGINT stop, SIGHUP re-reads the
//! config: `owner/unix.rs`; Ctrl-C, close, logoff and shutdown stop: `owner/windows.rs`) and
//! the single-instance rule, each shell adding only its notifier and hooks.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix::signals;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows::signals;

use crate::config;
use crate::config::AuthKind;
use crate::control::{self, Handler};
use crate::error::WireError;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::login::LoginPrompt;
use crate::notify::{Notice, NoticeKind, Notifier};
use crate::protocol::{
    Done, EventsReport, LoggedOut, LoginBegun, LoginChecked, Overview, Pong, Request, Response,
    Settings, StatusReport, WindowKind, STATUS_VERSION,
};
use crate::scheduler::{Scheduler, Snapshot};
use crate::secret::Secret;
use crate::session::{LoginOutcome, LoginRequest, Session};
use crate::state::Overlay;
use crate::values::{AccountName, ProfileName, StsDuration};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// A command's login is made here only when its setup is this owner's: the same files, the
/// same keyring, the same environment (`Session::setup_fingerprint`).
fn same_setup(s: &Session, setup: &str) -> Result<()> {
    if s.setup_fingerprint()? != setup {
        return Err(Error::unavailable(
            "this agent's files, keyring or environment are not the command's; the command logs in itself",
        ));
    }
    Ok(())
}

/// Called after each successful login through the socket.
pub type OnLogin = Box<dyn Fn(&LoginOutcome) + Send + Sync>;
/// Called for `show` with the window and the account asked for.
pub type OnShow = Box<dyn Fn(WindowKind, Option<String>) + Send + Sync>;
/// Called for `copy_export` with the lines to put on the clipboard.
pub type OnCopy = Box<dyn Fn(Secret) + Send + Sync>;

/// What a shell adds to the runtime.
#[derive(Default)]
pub struct Hooks {
    /// After each successful login through the socket (the tray's notification).
    pub on_login: Option<OnLogin>,
    /// `show` and `show_login` (the tray opens the window); `None`: refused as unsupported.
    pub on_show: Option<OnShow>,
    /// `copy_export` (the tray's clipboard); `None`: refused as unsupported.
    pub on_copy: Option<OnCopy>,
}

/// The running owner.
pub struct Owner {
    /// Wake the scheduler early (a menu action, a window closed).
    pub wake: Arc<Notify>,
    views: watch::Receiver<Snapshot>,
    stop: watch::Sender<bool>,
    socket: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    scheduler: JoinHandle<()>,
}

/// Why `start` did not start.
pub enum Start {
    Running(Owner),
    /// Another owner answers on this socket.
    AlreadyRunning(PathBuf),
}

impl Owner {
    /// Bind the control socket (unless another owner holds it), then run the scheduler and
    /// serve requests. Call within a tokio runtime.
    pub async fn start(
        session: Arc<Session>,
        notifier: Arc<dyn Notifier>,
        hooks: Hooks,
    ) -> Result<Start> {
        let socket = crate::paths::control_socket();
        let Some(server) = control::bind(&socket).await? else {
            return Ok(Start::AlreadyRunning(socket));
        };
        log::info!("control socket {}", server.path().display());
        // every notice sent is an event too
        let notifier: Arc<dyn Notifier> = Arc::new(Noted {
            inner: notifier,
            session: session.clone(),
        });
        let (handler_session, reminder_notifier) = (session.clone(), notifier.clone());
        let mut sched = Scheduler::new(session.clone(), notifier);
        let wake = sched.wake.clone();
        let views = sched.subscribe();
        let (stop, stop_rx) = watch::channel(false);
        let handler = Arc::new(SessionHandler {
            session,
            wake: wake.clone(),
            views: views.clone(),
            hooks,
            pending: Mutex::new(HashMap::new()),
            checked: Mutex::new(HashMap::new()),
        });
        let serve = tokio::spawn(server.serve(handler));
        let reminders = tokio::spawn(remind_old_keys(
            handler_session,
            reminder_notifier,
            views.clone(),
            stop_rx.clone(),
        ));
        let signals = tokio::spawn(signals(stop.clone(), wake.clone()));
        let scheduler = tokio::spawn(async move { sched.run(stop_rx).await });
        Ok(Start::Running(Owner {
            wake,
            views,
            stop,
            socket,
            tasks: vec![serve, signals, reminders],
            scheduler,
        }))
    }

    /// Every look the scheduler takes.
    pub fn views(&self) -> watch::Receiver<Snapshot> {
        self.views.clone()
    }

    /// Turns true when the owner is asked to stop (a signal, or [`Owner::stop`]).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Wait until asked to stop, then end the scheduler and the socket (removed).
    pub async fn run_until_stopped(self) {
        let mut stopping = self.stopping();
        while !*stopping.borrow_and_update() {
            if stopping.changed().await.is_err() {
                break;
            }
        }
        self.shutdown().await;
    }

    /// Stop now and wait for the scheduler to finish what it is doing.
    pub async fn shutdown(self) {
        self.stop();
        let _ = self.scheduler.await;
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// The age reminders of permanent keys: once a day per key held in one of our profiles and
/// older than its account's `max_key_age_days` (the day kept in the key records, so the tray
/// and the daemon, or a restart, do not repeat it). Sleeps until the next one is due, and
/// looks again whenever the scheduler does (a login, a reload, a `keys` command).
async fn remind_old_keys(
    session: Arc<Session>,
    notifier: Arc<dyn Notifier>,
    mut views: watch::Receiver<Snapshot>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = match session.key_reminders().await {
            Ok((due, next)) => {
                let now = session.clock().now();
                for k in due {
                    let (summary, body) = k.words();
                    log::info!("account {}: {summary}", k.account);
                    notifier.notify(&Notice {
                        kind: NoticeKind::KeyOld,
                        account: k.account.to_string(),
                        profile: Some(k.profile.to_string()),
                        summary,
                        body,
                    });
                    if let Err(e) = session.mark_reminded(&k.profile, now).await {
                        log::warn!("cannot note the key reminder: {e}");
                    }
                }
                next
            }
            Err(e) => {
                log::warn!("cannot check the age of the permanent keys: {e}");
                Some(session.clock().now() + time::Duration::hours(1))
            }
        };
        let clock = session.clock().clone();
        let sleep = async {
            match next {
                Some(t) => clock.wait_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            r = views.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Notes each notice in the session's events, then sends it on.
struct Noted {
    inner: Arc<dyn Notifier>,
    session: Arc<Session>,
}

impl Notifier for Noted {
    fn notify(&self, n: &Notice) {
        self.session.note(
            &n.account,
            EventKind::Notice,
            format!("notice sent: {}", n.summary),
        );
        self.inner.notify(n);
    }
}

/// How many events `events` gives without a limit.
const EVENTS_DEFAULT: usize = 50;

/// Answers the control socket with the session facade.
struct SessionHandler {
    session: Arc<Session>,
    wake: Arc<Notify>,
    /// The scheduler's last look: what it learned (failed renewals) is laid over `status`.
    views: watch::Receiver<Snapshot>,
    hooks: Hooks,
    /// Browser and device logins begun through the socket and not yet waited for, by
    /// account: the task that finishes each, and where its outcome lands.
    pending: Mutex<HashMap<String, Waiter>>,
    /// Accounts `login_check` found for a command, by ticket, for the `login` that follows.
    checked: Mutex<HashMap<String, (std::time::Instant, config::Account)>>,
}

/// How long a `login_check` stands for the login that follows (the password typed meanwhile).
const CHECKED_FOR: std::time::Duration = std::time::Duration::from_secs(600);

type Outcome = Option<std::result::Result<LoginOutcome, WireError>>;

struct Waiter {
    task: JoinHandle<()>,
    outcome: watch::Receiver<Outcome>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // the pending login (and its listener) goes with the task
        self.task.abort();
    }
}

impl SessionHandler {
    /// Note a key created or rotated, or why not.
    async fn note_key(
        &self,
        account: Option<&str>,
        r: &Result<crate::keys::KeyWritten>,
        what: &str,
    ) {
        match r {
            Ok(k) => self.session.note(
                &k.account,
                EventKind::Key,
                format!(
                    "permanent key {} {what} in profile {}",
                    k.access_key_id, k.profile
                ),
            ),
            Err(e) => {
                self.session
                    .note_failure(account, format!("the permanent key was not {what}: {e}"))
                    .await
            }
        }
    }

    /// Ask the shell to open `window` (`show`, `show_login`); the account is checked as every
    /// value from the socket is (it lands on the window's command line).
    fn show(&self, window: WindowKind, account: Option<String>) -> Result<Response> {
        if let Some(a) = &account {
            AccountName::parse(a)?;
        }
        match &self.hooks.on_show {
            Some(f) => {
                f(window, account);
                Ok(Response::Done(Done {}))
            }
            None => Err(Error::config(format!(
                "this agent has no {} window",
                window.name()
            ))),
        }
    }

    /// Keep an account `login_check` found, for the login that follows: its ticket.
    fn keep_checked(&self, acct: &config::Account) -> String {
        let ticket = Secret::random().expose().to_string();
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked.retain(|_, (at, _)| at.elapsed() < CHECKED_FOR);
        if checked.len() < 64 {
            checked.insert(ticket.clone(), (std::time::Instant::now(), acct.clone()));
        }
        ticket
    }

    /// The account a ticket stands for, once, while it is fresh.
    fn take_checked(&self, ticket: &str) -> Option<config::Account> {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked
            .remove(ticket)
            .filter(|(at, _)| at.elapsed() < CHECKED_FOR)
            .map(|(_, acct)| acct)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiter>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn login_begin(
        &self,
        account: Option<String>,
        auth: Option<AuthKind>,
        role_arn: Option<String>,
        open_browser: bool,
    ) -> Result<Response> {
        let s = &self.session;
        let acct = s.account(account.as_deref()).await?;
        let name = acct.name.clone();
        let auth = auth.unwrap_or(acct.auth);
        // a new login replaces one still waiting for the same account
        self.pending().remove(name.as_str());
        let timeout = crate::browser::timeout_from_env()?;
        let pending = s
            .begin_login(
                LoginRequest {
                    account: Some(name.to_string()),
                    role_arn,
                    ..Default::default()
                },
                auth,
            )
            .await?;
        let prompt = pending.prompt().clone();
        if let (LoginPrompt::Browser { url }, true) = (&prompt, open_browser) {
            if let Err(e) = crate::browser::open(url) {
                log::warn!("account {name}: {e}");
            }
        }
        let qr_svg = match &prompt {
            LoginPrompt::Device { .. } => crate::device::qr_svg(prompt.address()),
            LoginPrompt::Browser { .. } => None,
        };
        let (tx, rx) = watch::channel(None);
        let (session, wake) = (s.clone(), self.wake.clone());
        let task = tokio::spawn(async move {
            let r = session.finish_login(pending, timeout).await;
            if let Err(e) = &r {
                log::warn!("login failed: {e}");
            }
            wake.notify_one();
            let _ = tx.send(Some(r.map_err(|e| e.to_wire())));
        });
        self.pending()
            .insert(name.to_string(), Waiter { task, outcome: rx });
        Ok(Response::LoginBegun(LoginBegun {
            account: name,
            prompt,
            qr_svg,
        }))
    }

    async fn login_wait(&self, account: Option<String>) -> Result<Response> {
        let name = self.session.account(account.as_deref()).await?.name;
        let mut rx = self
            .pending()
            .get(name.as_str())
            .map(|w| w.outcome.clone())
            .ok_or_else(|| {
                Error::config(format!(
                    "no browser or device login is waiting for account {name}; begin one first"
                ))
            })?;
        let outcome = loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                break o;
            }
            if rx.changed().await.is_err() {
                // the task was cancelled (login_cancel, or a new login_begin)
                break Err(Error::login_required(format!(
                    "the login of account {name} was cancelled; nothing was written"
                ))
                .to_wire());
            }
        };
        {
            let mut p = self.pending();
            if p.get(name.as_str())
                .is_some_and(|w| w.outcome.same_channel(&rx))
            {
                p.remove(name.as_str());
            }
        }
        let o = outcome.map_err(Error::from_wire)?;
        if let Some(f) = &self.hooks.on_login {
            f(&o);
        }
        Ok(Response::Login(o))
    }

    async fn answer(&self, req: Request) -> Result<Response> {
        let s = &self.session;
        match req {
            Request::Ping => Ok(Response::Pong(Pong {
                pid: std::process::id(),
                keyring: s.store().identity(),
            })),
            Request::Status => {
                // the files and the keyring as they are now, with what the scheduler knows
                let known = self.views.borrow().accounts.clone();
                let out = s
                    .statuses(|acct| {
                        known
                            .iter()
                            .find(|v| v.account == acct.name)
                            .map(|v| Overlay {
                                login_required: false,
                                failures: v.failures,
                                last_error: v.last_error.clone(),
                            })
                            .unwrap_or_default()
                    })
                    .await?;
                Ok(Response::Status(StatusReport::new(out)))
            }
            Request::LoginCheck {
                setup,
                account,
                profile,
                duration_seconds,
                force,
                email,
                password,
                role_arn,
            } => {
                same_setup(s, &setup)?;
                let req = LoginRequest {
                    account,
                    profile,
                    duration_seconds: duration_seconds.map(StsDuration::new).transpose()?,
                    force,
                    ..Default::default()
                };
                let acct = s.prepare_login(&req, true).await?;
                let checked = LoginChecked {
                    account: acct.name.clone(),
                    auth: acct.auth,
                    email: acct.email.clone(),
                    ticket: None,
                    login: None,
                    login_error: None,
                };
                match (acct.auth, email, password) {
                    // the command has the email and password: the login at once
                    (AuthKind::Password, Some(email), Some(password)) => {
                        let req = LoginRequest {
                            email: Some(email),
                            password: Some(password),
                            role_arn,
                            ..req
                        };
                        let r = s.login_prepared(acct, req).await;
                        self.wake.notify_one();
                        let (login, login_error) = match r {
                            Ok(o) => (Some(o), None),
                            Err(e) => (None, Some(e.to_wire())),
                        };
                        Ok(Response::LoginChecked(LoginChecked {
                            login,
                            login_error,
                            ..checked
                        }))
                    }
                    (AuthKind::Password, _, _) => Ok(Response::LoginChecked(LoginChecked {
                        ticket: Some(self.keep_checked(&acct)),
                        ..checked
                    })),
                    _ => Ok(Response::LoginChecked(checked)),
                }
            }
            Request::Login {
                account,
                email,
                password,
                role_arn,
                remember_password,
                profile,
                duration_seconds,
                force,
                setup,
                ticket,
            } => {
                if let Some(setup) = &setup {
                    same_setup(s, setup)?;
                }
                let checked = ticket.and_then(|t| self.take_checked(&t));
                let req = LoginRequest {
                    account,
                    email: Some(email),
                    password: Some(password),
                    role_arn,
                    remember_password,
                    profile,
                    duration_seconds: duration_seconds.map(StsDuration::new).transpose()?,
                    force,
                };
                let r = match checked {
                    Some(acct) => s.login_prepared(acct, req).await,
                    None => s.login(req).await,
                };
                self.wake.notify_one();
                let o = r?;
                // a command's login is said by the command
                if let (Some(f), None) = (&self.hooks.on_login, &setup) {
                    f(&o);
                }
                Ok(Response::Login(o))
            }
            Request::Refresh { account } => {
                let r = s.refresh(account.as_deref()).await;
                self.wake.notify_one();
                Ok(Response::Refresh(r?))
            }
            Request::Logout {
                account,
                remove_profile,
            } => {
                let r = s.logout(account.as_deref(), remove_profile).await;
                self.wake.notify_one();
                Ok(Response::Logout(LoggedOut { account: r? }))
            }
            Request::Reload => {
                self.wake.notify_one();
                Ok(Response::Done(Done {}))
            }
            Request::GetSettings => {
                let cfg = s.config().await?;
                let name = cfg.pick_name(None)?;
                let email = cfg.account(&name)?.email;
                let mut auth = BTreeMap::new();
                for n in cfg.account_names().into_iter().chain([name.clone()]) {
                    auth.insert(n.to_string(), cfg.account(&n)?.auth);
                }
                Ok(Response::Settings(Box::new(Settings {
                    config: cfg,
                    default_account: name,
                    defaults: Default::default(),
                    email,
                    auth,
                    config_path: s.config_path.clone(),
                })))
            }
            Request::SaveSettings {
                account,
                settings,
                make_default,
            } => {
                let path = s.config_path.clone();
                let r = tokio::task::spawn_blocking(move || {
                    config::save_settings(&path, &account, *settings, make_default)
                })
                .await
                .map_err(|e| Error::local_io(format!("saving the settings failed: {e}")))?;
                self.wake.notify_one();
                r.map(|()| Response::Done(Done {}))
            }
            Request::ShowLogin { account } => self.show(WindowKind::Login, account),
            Request::KeysList { account } => {
                Ok(Response::Keys(s.keys_list(account.as_deref()).await?))
            }
            Request::KeysCreate { account, profile } => {
                let profile = profile.as_deref().map(ProfileName::parse).transpose()?;
                let r = s.keys_create(account.as_deref(), profile).await;
                self.note_key(account.as_deref(), &r, "created").await;
                self.wake.notify_one();
                Ok(Response::KeyWritten(r?))
            }
            Request::KeysRotate { account, profile } => {
                let profile = profile.as_deref().map(ProfileName::parse).transpose()?;
                let r = s.keys_rotate(account.as_deref(), profile).await;
                self.note_key(account.as_deref(), &r, "rotated").await;
                self.wake.notify_one();
                Ok(Response::KeyWritten(r?))
            }
            Request::KeysDelete { account, key_id } => {
                let r = s.keys_delete(account.as_deref(), &key_id).await;
                match &r {
                    Ok(d) => s.note(
                        &d.account,
                        EventKind::Key,
                        format!("permanent key {} deleted", d.access_key_id),
                    ),
                    Err(e) => {
                        s.note_failure(account.as_deref(), format!("deleting a key failed: {e}"))
                            .await
                    }
                }
                self.wake.notify_one();
                Ok(Response::KeyDeleted(r?))
            }
            Request::Overview => {
                let snap = self.views.borrow().clone();
                Ok(Response::Overview(Box::new(Overview {
                    version: STATUS_VERSION,
                    now: s.clock().now(),
                    accounts: snap.accounts,
                    default_account: snap.default_account,
                    problem: snap.problem,
                    events: s.events().recent(None, crate::events::CAPACITY),
                })))
            }
            Request::Events { account, limit } => {
                let name = match &account {
                    Some(_) => Some(s.account(account.as_deref()).await?.name),
                    None => None,
                };
                Ok(Response::Events(EventsReport {
                    events: s.events().recent(
                        name.as_ref().map(|n| n.as_str()),
                        limit.unwrap_or(EVENTS_DEFAULT),
                    ),
                }))
            }
            Request::Show { window, account } => self.show(window, account),
            Request::KeyringChange {
                keyring,
                slot,
                account,
                value,
                undoable,
            } => {
                s.change_secret(&keyring, slot, &account, value, undoable)
                    .await?;
                Ok(Response::Done(Done {}))
            }
            Request::KeyringUndo {
                keyring,
                slot,
                account,
            } => {
                s.undo_secret(&keyring, slot, &account).await?;
                Ok(Response::Done(Done {}))
            }
            Request::CopyExport { account } => {
                let Some(f) = &self.hooks.on_copy else {
                    return Err(Error::config(
                        "this agent has no clipboard; use `astran-creds export`",
                    ));
                };
                // may renew first: the caller's timeout allows for it
                let c = s
                    .credentials(account.as_deref(), time::Duration::ZERO)
                    .await?;
                f(crate::export::render(&c, crate::export::Format::Sh));
                Ok(Response::Done(Done {}))
            }
            Request::LoginBegin {
                account,
                auth,
                role_arn,
                open_browser,
            } => {
                self.login_begin(account, auth, role_arn, open_browser)
                    .await
            }
            Request::LoginWait { account } => self.login_wait(account).await,
            Request::LoginCancel { account } => {
                let name = s.account(account.as_deref()).await?.name;
                let was = self.pending().remove(name.as_str()).is_some();
                if was {
                    log::info!("account {name}: the login was cancelled");
                }
                Ok(Response::Done(Done {}))
            }
        }
    }
}

impl Handler for SessionHandler {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Result<Response>> + Send + '_>> {
        Box::pin(self.answer(req))
    }
}
