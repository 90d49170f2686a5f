//! The one error type of the core: a kind that says what to do, a message in words, the roles
//! to pick from (for `role_choice`) and the underlying cause. It crosses the control socket
//! as `{kind, message, roles}` and comes back the same.

use serde::{Deserialize, Serialize};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about an error; stable, serializable, and mapped to the CLI's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// A local file (credentials file, config, lock, socket) or the keyring could not be read
    /// or written. Exit code 7.
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

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error of the core. Messages are lowercase, say what happened and what to do, and
/// never contain a secret (Debug shows the same fields, so it holds none either).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// For `role_choice`: the roles to pick from.
    roles: Vec<String>,
    #[source]
    source: Option<Source>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            roles: Vec::new(),
            source: None,
        }
    }

    /// Keep `e` as the cause (its words are already in the message, or need not be).
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(e));
        self
    }

    pub fn config(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, m)
    }
    pub fn login_required(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::LoginRequired, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, m)
    }
    pub fn refused(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, m)
    }
    pub fn local_io(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::LocalIo, m)
    }

    pub fn wrong_credentials(email: &str, detail: &str) -> Self {
        Self::new(
            ErrorKind::WrongCredentials,
            format!("wrong email or password for {email} (the identity provider said: {detail}); check them and log in again"),
        )
    }

    pub fn role_choice(roles: Vec<String>) -> Self {
        let mut e = Self::new(
            ErrorKind::RoleChoice,
            format!(
                "your token carries several roles; pick one with --role-arn: {}",
                roles.join(", ")
            ),
        );
        e.roles = roles;
        e
    }

    /// A local I/O failure: `what` in words, then the OS's reason; the cause is kept.
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        Self::local_io(format!("{what}: {e}")).with_source(e)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// The serializable form for frontends (Tauri commands, the control socket).
    pub fn to_wire(&self) -> WireError {
        WireError {
            kind: self.kind,
            message: self.message.clone(),
            roles: (!self.roles.is_empty()).then(|| self.roles.clone()),
        }
    }

    /// Back from the wire: the same kind, message and roles.
    pub fn from_wire(w: WireError) -> Self {
        Error {
            kind: w.kind,
            message: w.message,
            roles: w.roles.unwrap_or_default(),
            source: None,
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Self {
        Error::from_wire(w)
    }
}

/// The serializable error the frontends receive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
    /// For `role_choice`: the roles to pick from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_over_the_wire() {
        let all = [
            Error::config("c"),
            Error::wrong_credentials("a@b.c", "Invalid user credentials"),
            Error::login_required("l"),
            Error::unavailable("u"),
            Error::refused("r"),
            Error::local_io("i"),
            Error::role_choice(vec!["arn:a".into(), "arn:b".into()]),
        ];
        for e in all {
            let json = serde_json::to_string(&e.to_wire()).unwrap();
            let back = Error::from_wire(serde_json::from_str(&json).unwrap());
            assert_eq!(back.kind(), e.kind(), "{json}");
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(back.roles(), e.roles());
            assert_eq!(back.exit_code(), e.exit_code());
        }
    }

    #[test]
    fn io_errors_keep_their_cause() {
        let e = Error::io(
            "cannot read x",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(e.kind(), ErrorKind::LocalIo);
        assert_eq!(e.exit_code(), 7);
        assert_eq!(e.to_string(), "cannot read x: denied");
        assert!(std::error::Error::source(&e).is_some());
    }
}
