//! Errors of the core. Each variant says what the user (or the scheduler) should do.

use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about an error; stable, serializable, and mapped to the CLI's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad command line or configuration: fix the input. Exit code 2.
    Config,
    /// The identity provider refused the email or password. Exit code 3.
    WrongCredentials,
    /// The login session is over (or there is none): log in again. Exit code 4.
    LoginRequired,
    /// A service is down, slow or answered garbage: retry later. Exit code 5.
    Unavailable,
    /// A service understood the request and refused it (no role, STS AccessDenied...). Exit code 6.
    Refused,
    /// A local file (credentials file, config, lock) could not be read or written. Exit code 7.
    LocalIo,
    /// The token carries several roles and none was chosen: pick one. Exit code 2.
    RoleChoice,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Config | ErrorKind::RoleChoice => 2,
            ErrorKind::WrongCredentials => 3,
            ErrorKind::LoginRequired => 4,
            ErrorKind::Unavailable => 5,
            ErrorKind::Refused => 6,
            ErrorKind::LocalIo => 7,
        }
    }

    /// Worth retrying by itself later (with backoff)?
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::LocalIo)
    }
}

/// An error of the core. Messages are lowercase, say what happened and what to do, and
/// never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("wrong email or password for {email} (the identity provider said: {detail}); check them and log in again")]
    WrongCredentials { email: String, detail: String },
    #[error("{0}")]
    LoginRequired(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    LocalIo(String),
    #[error("your token carries several roles; pick one with --role-arn: {}", roles.join(", "))]
    RoleChoice { roles: Vec<String> },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::WrongCredentials { .. } => ErrorKind::WrongCredentials,
            Error::LoginRequired(_) => ErrorKind::LoginRequired,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Refused(_) => ErrorKind::Refused,
            Error::LocalIo(_) => ErrorKind::LocalIo,
            Error::RoleChoice { .. } => ErrorKind::RoleChoice,
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }

    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        Error::LocalIo(format!("{what}: {e}"))
    }

    /// A serializable form for frontends (Tauri commands, the control socket).
    pub fn to_wire(&self) -> WireError {
        WireError {
            kind: self.kind(),
            message: self.to_string(),
            roles: match self {
                Error::RoleChoice { roles } => Some(roles.clone()),
                _ => None,
            },
        }
    }

    /// Back from the wire (the agent's reply to a client).
    pub fn from_wire(w: WireError) -> Self {
        match w.kind {
            ErrorKind::Config => Error::Config(w.message),
            ErrorKind::WrongCredentials => Error::Refused(w.message),
            ErrorKind::LoginRequired => Error::LoginRequired(w.message),
            ErrorKind::Unavailable => Error::Unavailable(w.message),
            ErrorKind::Refused => Error::Refused(w.message),
            ErrorKind::LocalIo => Error::LocalIo(w.message),
            ErrorKind::RoleChoice => Error::RoleChoice {
                roles: w.roles.unwrap_or_default(),
            },
        }
    }
}

/// The serializable error the frontends receive.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
    /// For `role_choice`: the roles to pick from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}
