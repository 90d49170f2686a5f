//! The login, settings, status and permanent-key windows. Started by the tray agent (`--login
//! [--account NAME]`, `--settings`, `--status`, or `--keys create|rotate|delete [--account
//! NAME] [--profile P]`), talking to it over its control socket; exits when the window closes. The
//! password goes from the form to the agent over that socket and nowhere else; a permanent
//! key's secret never reaches the window (the agent writes it into the credentials file).

use astran_creds::config::AccountConfig;
use astran_creds::control::Client;
use astran_creds::error::WireError;
use astran_creds::keys::{KeyDeleted, KeyWritten, KeysReport};
use astran_creds::protocol::{
    Done, LoginBegun, Overview, Request, Settings, StatusReport, WindowKind,
};
use astran_creds::secret::Secret;
use astran_creds::session::LoginOutcome;
use astran_creds::session::RefreshOutcome;
use serde::Serialize;
use std::time::Duration;
use tauri::{Manager, WebviewUrl, WebviewWindowBuilder};

/// How long a login may take before the window gives up waiting for the agent (the agent's
/// own HTTP timeouts are shorter).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Serialize)]
struct Args {
    mode: String,
    account: Option<String>,
    /// `--keys`: `create`, `rotate` or `delete`.
    key_action: Option<String>,
    profile: Option<String>,
    /// The vendor's warning, as the CLI says it.
    warning: &'static str,
}

fn parse_args() -> Args {
    let mut args = Args {
        mode: "login".into(),
        account: None,
        key_action: None,
        profile: None,
        warning: astran_creds::keys::WARNING,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--login" => args.mode = "login".into(),
            "--settings" => args.mode = "settings".into(),
            "--status" => args.mode = "status".into(),
            "--keys" => {
                args.mode = "keys".into();
                args.key_action = it.next();
            }
            "--account" => args.account = it.next(),
            "--profile" => args.profile = it.next(),
            _ => {}
        }
    }
    args
}

/// The agent that started this window (its socket is in `ASTRAN_CONTROL_SOCKET`). Errors
/// reach the page as `{kind, message, roles}`, the kind as the agent raised it.
fn agent() -> Client {
    Client::from_env()
}

fn wire<T>(r: astran_creds::Result<T>) -> Result<T, WireError> {
    r.map_err(|e| e.to_wire())
}

#[tauri::command]
fn window_args(args: tauri::State<'_, Args>) -> Args {
    args.inner().clone()
}

#[tauri::command]
async fn login(
    email: String,
    password: String,
    account: Option<String>,
    role_arn: Option<String>,
    remember_password: bool,
) -> Result<LoginOutcome, WireError> {
    let password = Secret::new(password);
    let req = Request::Login {
        account: account.filter(|a| !a.is_empty()),
        email,
        password,
        role_arn: role_arn.filter(|r| !r.is_empty()),
        remember_password: Some(remember_password),
        profile: None,
        duration_seconds: None,
        force: false,
        setup: None,
        ticket: None,
    };
    wire(agent().login(req, LOGIN_TIMEOUT).await)
}

/// The account whose browser or device login this window began (cancelled when it closes).
static BEGUN: std::sync::Mutex<Option<Option<String>>> = std::sync::Mutex::new(None);

/// Begin a browser or device login in the agent (it opens the browser, or asks for the
/// device code); the prompt comes back at once.
#[tauri::command]
async fn login_begin(
    account: Option<String>,
    role_arn: Option<String>,
) -> Result<LoginBegun, WireError> {
    let account = account.filter(|a| !a.is_empty());
    let req = Request::LoginBegin {
        account: account.clone(),
        auth: None,
        role_arn: role_arn.filter(|r| !r.is_empty()),
        open_browser: true,
    };
    let r = wire(agent().login_begin(req).await)?;
    *BEGUN.lock().unwrap_or_else(|e| e.into_inner()) = Some(account);
    Ok(r)
}

/// Wait until the login begun ends (the browser came back, the code was approved).
#[tauri::command]
async fn login_wait(account: Option<String>) -> Result<LoginOutcome, WireError> {
    let account = account.filter(|a| !a.is_empty());
    // the agent's own wait ends first (ASTRAN_LOGIN_TIMEOUT_SECS, or the device code's end)
    let r = wire(
        agent()
            .login_wait(account, Duration::from_secs(24 * 3600))
            .await,
    );
    *BEGUN.lock().unwrap_or_else(|e| e.into_inner()) = None;
    r
}

#[tauri::command]
async fn login_cancel(account: Option<String>) -> Result<Done, WireError> {
    *BEGUN.lock().unwrap_or_else(|e| e.into_inner()) = None;
    wire(
        agent()
            .login_cancel(account.filter(|a| !a.is_empty()))
            .await,
    )
}

/// The window closes while a login it began still waits: cancel it, so its listener closes.
fn cancel_begun() {
    let begun = BEGUN.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(account) = begun {
        // the client's own timeout (5 s) bounds it
        let _ = tauri::async_runtime::block_on(agent().login_cancel(account));
    }
}

#[tauri::command]
async fn get_settings() -> Result<Settings, WireError> {
    wire(agent().get_settings().await)
}

#[tauri::command]
async fn save_settings(
    account: String,
    settings: AccountConfig,
    make_default: bool,
) -> Result<Done, WireError> {
    let req = Request::SaveSettings {
        account,
        settings: Box::new(settings),
        make_default,
    };
    wire(agent().save_settings(req).await)
}

#[tauri::command]
async fn status() -> Result<StatusReport, WireError> {
    wire(agent().status().await)
}

/// What the status window draws (polled each second while it is open).
#[tauri::command]
async fn overview() -> Result<Overview, WireError> {
    wire(agent().overview().await)
}

#[tauri::command]
async fn refresh(account: Option<String>) -> Result<RefreshOutcome, WireError> {
    wire(agent().refresh(account, LOGIN_TIMEOUT).await)
}

#[tauri::command]
async fn logout(account: Option<String>) -> Result<Done, WireError> {
    wire(agent().logout(account, false).await.map(|_| Done {}))
}

/// Ask the agent to open another of its windows (login, settings).
#[tauri::command]
async fn show(window: WindowKind, account: Option<String>) -> Result<Done, WireError> {
    wire(agent().show(window, account).await)
}

/// The agent puts the export lines on the clipboard: the secrets never reach this window.
#[tauri::command]
async fn copy_export(account: Option<String>) -> Result<Done, WireError> {
    wire(agent().copy_export(account, LOGIN_TIMEOUT).await)
}

#[tauri::command]
async fn keys_list(account: Option<String>) -> Result<KeysReport, WireError> {
    wire(agent().keys_list(account).await)
}

#[tauri::command]
async fn keys_create(
    account: Option<String>,
    profile: Option<String>,
) -> Result<KeyWritten, WireError> {
    wire(agent().keys_create(account, profile).await)
}

#[tauri::command]
async fn keys_rotate(
    account: Option<String>,
    profile: Option<String>,
) -> Result<KeyWritten, WireError> {
    wire(agent().keys_rotate(account, profile).await)
}

#[tauri::command]
async fn keys_delete(account: Option<String>, key_id: String) -> Result<KeyDeleted, WireError> {
    wire(agent().keys_delete(account, key_id).await)
}

/// `ASTRAN_WINDOW_THEME=dark|light` overrides the desktop's theme (the screenshots of both).
fn theme_from_env() -> Option<tauri::Theme> {
    match std::env::var("ASTRAN_WINDOW_THEME").ok()?.as_str() {
        "dark" => Some(tauri::Theme::Dark),
        "light" => Some(tauri::Theme::Light),
        _ => None,
    }
}

#[tauri::command]
fn finish(app: tauri::AppHandle) {
    app.exit(0);
}

pub fn run() {
    let args = parse_args();
    // WebKitGTK answers `prefers-color-scheme` from the GTK theme, which the window's own
    // theme setting does not change: a forced dark theme picks GTK's dark variant (before
    // GTK starts, while this is the only thread)
    #[cfg(target_os = "linux")]
    if theme_from_env() == Some(tauri::Theme::Dark) && std::env::var_os("GTK_THEME").is_none() {
        std::env::set_var("GTK_THEME", "Adwaita:dark");
    }
    let (label, page, title, size) = match args.mode.as_str() {
        "settings" => (
            "settings",
            "settings.html",
            "Astran settings",
            (460.0, 880.0),
        ),
        "keys" => ("keys", "keys.html", "Astran permanent key", (440.0, 470.0)),
        "status" => ("status", "status.html", "Astran status", (640.0, 720.0)),
        _ => ("login", "login.html", "Log in to Astran", (380.0, 500.0)),
    };
    let result = tauri::Builder::default()
        .manage(args)
        .invoke_handler(tauri::generate_handler![
            window_args,
            login,
            login_begin,
            login_wait,
            login_cancel,
            get_settings,
            save_settings,
            status,
            overview,
            refresh,
            logout,
            show,
            copy_export,
            keys_list,
            keys_create,
            keys_rotate,
            keys_delete,
            finish
        ])
        .setup(move |app| {
            WebviewWindowBuilder::new(app, label, WebviewUrl::App(page.into()))
                .title(title)
                .inner_size(size.0, size.1)
                // the status window is read at any width down to 400 px
                .resizable(label == "status")
                .min_inner_size(if label == "status" { 400.0 } else { size.0 }, 300.0)
                .theme(theme_from_env())
                .center()
                .focused(true)
                .build()?;
            Ok(())
        })
        .on_window_event(|w, e| {
            if let tauri::WindowEvent::Destroyed = e {
                cancel_begun();
                w.app_handle().exit(0);
            }
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("astran-tray-window: {e}");
        std::process::exit(1);
    }
}
