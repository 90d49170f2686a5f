//! The control protocol between the owner of the session (the tray agent or `astran-creds
//! daemon`) and its clients (the windows, the CLI): one JSON object per line each way.
//! Each request has one typed reply, shared by the server, the CLI and the window; errors
//! cross as `{kind, message, roles}` and come back as the same [`Error`].
//!
//! Requests: `{"cmd":"ping"}`, `status`, `login_check`, `login`, `refresh`, `logout`, `reload`,
//! `get_settings`, `save_settings`, `show_login`, `keys_list`, `keys_create`, `keys_rotate`,
//! `keys_delete`, `login_begin`, `login_wait`, `login_cancel`, `overview`, `events`, `show`,
//! `copy_export`, `keyring_change`, `keyring_undo`. Replies: `{"ok":true,"result":…}` or
//! `{"ok":false,"error":{"kind":"wrong_credentials","message":"…"}}`.

use crate::config::{self, AccountConfig, AuthKind, Config};
use crate::error::{Error, ErrorKind, Result, WireError};
use crate::events::Event;
use crate::keys::{KeyDeleted, KeyWritten, KeysReport};
use crate::login::LoginPrompt;
use crate::secret::Secret;
use crate::session::{LoginOutcome, RefreshOutcome};
use crate::state::AccountStatus;
use crate::store::Slot;
use crate::values::{AccountName, ProfileName};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

/// The version of the `status` document (`status --json` and the socket's `status`).
pub const STATUS_VERSION: u32 = 1;

#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Ping,
    Status,
    Login {
        #[serde(default)]
        account: Option<String>,
        email: String,
        password: Secret,
        #[serde(default)]
        role_arn: Option<String>,
        #[serde(default)]
        remember_password: Option<bool>,
        /// `astran-creds login --profile`: the account's profile for this login and after.
        #[serde(default)]
        profile: Option<ProfileName>,
        /// `--duration`: checked here as on the command line.
        #[serde(default)]
        duration_seconds: Option<u32>,
        /// `--force`: take over our profile's lines in `~/.aws/config`.
        #[serde(default)]
        force: bool,
        /// A command's login, made here for it: its setup
        /// (`Session::setup_fingerprint`), which must be this owner's, else the login is
        /// refused (`unavailable`) and the command makes it itself. The command says the
        /// outcome; the tray's "logged in" hook is not called.
        #[serde(default)]
        setup: Option<String>,
        /// `login_check`'s ticket: the login is made for the account as that check found it
        /// (as a command checks it before it asks for the password, then logs in), not
        /// checked again. Unknown or older than ten minutes: checked again.
        #[serde(default)]
        ticket: Option<String>,
    },
    /// A command's check of a password login before it asks for the password
    /// (`Session::prepare_login`, here): refused (`unavailable`) unless its setup is this
    /// owner's. The reply is `login_checked`'s.
    ///
    /// A command that has the email and password already (`--email` and a password read
    /// from standard input) sends them along: a password account's login is then made at
    /// once, its outcome in the reply (`login` or `login_error`), so the command waits for
    /// one answer, not two. An owner that predates this ignores them and answers with a
    /// ticket, for the `login` that follows as before.
    LoginCheck {
        setup: String,
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        profile: Option<ProfileName>,
        #[serde(default)]
        duration_seconds: Option<u32>,
        #[serde(default)]
        force: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_arn: Option<String>,
    },
    Refresh {
        #[serde(default)]
        account: Option<String>,
    },
    Logout {
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        remove_profile: bool,
    },
    /// Re-read config and keyring (after a login made elsewhere).
    Reload,
    GetSettings,
    SaveSettings {
        account: String,
        settings: Box<AccountConfig>,
        #[serde(default)]
        make_default: bool,
    },
    /// Ask the owner to show its login window (a second start of the tray).
    ShowLogin {
        #[serde(default)]
        account: Option<String>,
    },
    /// The caller's permanent keys (`keys list`).
    KeysList {
        #[serde(default)]
        account: Option<String>,
    },
    /// `keys create`; the window asked for the confirmation.
    KeysCreate {
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        profile: Option<String>,
    },
    /// `keys rotate`.
    KeysRotate {
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        profile: Option<String>,
    },
    /// `keys delete`.
    KeysDelete {
        #[serde(default)]
        account: Option<String>,
        key_id: String,
    },
    /// Begin a browser or device login (the login window): the owner binds the redirect
    /// listener and opens the browser, or asks for the device code; the prompt comes back at
    /// once. A login already waiting for the account is cancelled.
    LoginBegin {
        #[serde(default)]
        account: Option<String>,
        /// Default: the account's `auth`.
        #[serde(default)]
        auth: Option<AuthKind>,
        #[serde(default)]
        role_arn: Option<String>,
        /// Browser login: open the user's browser (default true).
        #[serde(default = "yes")]
        open_browser: bool,
    },
    /// Wait for the login begun for the account to end: its outcome, or its error.
    LoginWait {
        #[serde(default)]
        account: Option<String>,
    },
    /// Cancel the login begun for the account: its listener closes, nothing is written.
    LoginCancel {
        #[serde(default)]
        account: Option<String>,
    },
    /// What the status window draws: every account as the tray shows it (the scheduler's
    /// last look, no file or keyring read), and the recent events. Cheap: polled each second.
    Overview,
    /// The recent events (`astran-creds events`), newest first.
    Events {
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Ask the owner to open one of its windows (the status window's buttons).
    Show {
        window: WindowKind,
        #[serde(default)]
        account: Option<String>,
    },
    /// Put the account's export lines on the owner's clipboard (the secrets stay with it).
    CopyExport {
        #[serde(default)]
        account: Option<String>,
    },
    /// Set (`value`) or delete (none) one of an account's keyring entries with the owner's
    /// open keyring (a CLI login's: no keyring session of its own). Refused (`unavailable`)
    /// unless the owner holds the keyring named `keyring` (its `ping`'s); nothing is read.
    KeyringChange {
        keyring: String,
        slot: Slot,
        account: AccountName,
        #[serde(default)]
        value: Option<Secret>,
        /// The owner keeps what the entry held (for two minutes, never sent) for a
        /// `keyring_undo`: a login saving its session while STS may still refuse it.
        #[serde(default)]
        undoable: bool,
    },
    /// Put back what the entry held before the client's last undoable `keyring_change`.
    KeyringUndo {
        keyring: String,
        slot: Slot,
        account: AccountName,
    },
}

/// The owner's windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    Login,
    Settings,
    Status,
}

impl WindowKind {
    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Login => "login",
            WindowKind::Settings => "settings",
            WindowKind::Status => "status",
        }
    }

    /// The window program's argument.
    pub fn arg(self) -> &'static str {
        match self {
            WindowKind::Login => "--login",
            WindowKind::Settings => "--settings",
            WindowKind::Status => "--status",
        }
    }
}

/// `overview`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Overview {
    pub version: u32,
    /// The owner's clock when it answered.
    #[serde(with = "time::serde::rfc3339")]
    pub now: time::OffsetDateTime,
    pub accounts: Vec<AccountStatus>,
    /// The account acted on when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account: Option<String>,
    /// Why there are no accounts (the config cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Newest first.
    pub events: Vec<Event>,
}

/// `events`' reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventsReport {
    /// Newest first.
    pub events: Vec<Event>,
}

fn yes() -> bool {
    true
}

/// `login_begin`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoginBegun {
    pub account: AccountName,
    pub prompt: LoginPrompt,
    /// The device login's address as an SVG QR code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
}

/// `login_check`'s reply: the account as this login will use it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoginChecked {
    pub account: AccountName,
    /// How the account logs in: only a password login is made through `login`.
    pub auth: AuthKind,
    /// The account's email, if it has one (else the command asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// For the `login` that follows (a password login only): the account as checked here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The login made at once, when the check carried the password (then no ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginOutcome>,
    /// Or why that login failed: the login's error, not the check's (a refused check is
    /// the reply's own error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_error: Option<crate::error::WireError>,
}

/// `ping`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pong {
    pub pid: u32,
    /// The keyring the owner holds open (`store::SecretStore::identity`), which takes a
    /// client's `keyring_change`; absent when its secrets are in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<String>,
}

/// `status`'s reply, and the document `status --json` prints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    pub version: u32,
    pub accounts: Vec<AccountStatus>,
}

impl StatusReport {
    pub fn new(accounts: Vec<AccountStatus>) -> Self {
        StatusReport {
            version: STATUS_VERSION,
            accounts,
        }
    }
}

/// `logout`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggedOut {
    pub account: AccountName,
}

/// The reply of requests that only say they were done (`reload`, `save_settings`,
/// `show_login`): `{}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Done {}

/// The defaults the settings window shows as placeholders.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Defaults {
    pub token_url: String,
    pub client_id: String,
    pub profile: String,
    pub duration_seconds: u32,
    pub notice_lead_seconds: u32,
    pub max_key_age_days: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            token_url: config::DEFAULT_TOKEN_URL.into(),
            client_id: config::DEFAULT_CLIENT_ID.into(),
            profile: config::DEFAULT_PROFILE.into(),
            duration_seconds: config::DEFAULT_DURATION,
            notice_lead_seconds: config::DEFAULT_NOTICE_LEAD,
            max_key_age_days: config::DEFAULT_MAX_KEY_AGE_DAYS,
        }
    }
}

/// `get_settings`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub config: Config,
    pub default_account: AccountName,
    pub defaults: Defaults,
    /// The default account's email (with `ASTRAN_USERNAME` applied).
    pub email: Option<String>,
    /// How each account logs in (its effective `auth`, the system config's applied), the
    /// default account's among them.
    #[serde(default)]
    pub auth: std::collections::BTreeMap<String, AuthKind>,
    pub config_path: PathBuf,
}

/// What a request answers, typed; serialized as the `result` of the reply.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Response {
    Pong(Pong),
    Status(StatusReport),
    Login(LoginOutcome),
    Refresh(RefreshOutcome),
    Logout(LoggedOut),
    Settings(Box<Settings>),
    Done(Done),
    Keys(KeysReport),
    KeyWritten(KeyWritten),
    KeyDeleted(KeyDeleted),
    LoginBegun(LoginBegun),
    LoginChecked(LoginChecked),
    Overview(Box<Overview>),
    Events(EventsReport),
}

/// One reply line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

impl Reply {
    pub fn of(r: Result<Response>) -> Reply {
        match r {
            Ok(v) => Reply {
                ok: true,
                result: Some(serde_json::to_value(v).unwrap_or_default()),
                error: None,
            },
            Err(e) => Reply::err(&e),
        }
    }

    pub fn err(e: &Error) -> Reply {
        Reply {
            ok: false,
            result: None,
            error: Some(e.to_wire()),
        }
    }

    /// The typed result, or the error as it was raised on the other side.
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<T> {
        if !self.ok {
            return Err(Error::from_wire(self.error.unwrap_or(WireError {
                kind: ErrorKind::Unavailable,
                message: "the agent sent an error without details".into(),
                roles: None,
            })));
        }
        serde_json::from_value(self.result.unwrap_or_default()).map_err(|e| {
            Error::unavailable(format!(
                "the agent sent a reply this program does not understand ({e}); are both the same version?"
            ))
        })
    }

    /// The line to send (with its newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"ok":false,"error":{"kind":"unavailable","message":"cannot encode the reply"}}"#
                .into()
        });
        s.push('\n');
        s
    }
}

/// serde_json messages can quote input; keep only the category and position.
pub fn redact_serde(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
    .to_lowercase()
}

/// Parse one request line; a bad one is a `config` error that quotes nothing of it.
pub fn parse_request(line: &[u8]) -> Result<Request> {
    serde_json::from_slice(line)
        .map_err(|e| Error::config(format!("malformed request: {}", redact_serde(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_replies_round_trip_and_errors_keep_their_kind() {
        let r = Reply::of(Ok(Response::Logout(LoggedOut {
            account: AccountName::parse("work").unwrap(),
        })));
        let line = r.to_line();
        assert_eq!(line, "{\"ok\":true,\"result\":{\"account\":\"work\"}}\n");
        let back: Reply = serde_json::from_str(&line).unwrap();
        assert_eq!(back.into_typed::<LoggedOut>().unwrap().account, "work");

        let done: Reply =
            serde_json::from_str(&Reply::of(Ok(Response::Done(Done {}))).to_line()).unwrap();
        assert_eq!(done.result, Some(serde_json::json!({})));

        let e = Error::wrong_credentials("a@b.c", "Invalid user credentials");
        let back: Reply = serde_json::from_str(&Reply::err(&e).to_line()).unwrap();
        let got = back.into_typed::<LoginOutcome>().unwrap_err();
        assert_eq!(got.kind(), ErrorKind::WrongCredentials);
        assert_eq!(got.to_string(), e.to_string());

        let e = Error::role_choice(vec!["arn:a".into(), "arn:b".into()]);
        let back: Reply = serde_json::from_str(&Reply::err(&e).to_line()).unwrap();
        assert_eq!(
            back.into_typed::<Done>().unwrap_err().roles(),
            ["arn:a", "arn:b"]
        );
    }

    #[test]
    fn a_bad_request_quotes_none_of_it() {
        let e = parse_request(br#"{"cmd":"nope","password":"hunter2"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!e.to_string().contains("nope"), "{e}");
    }
}
