//! astran-creds: the core of astran-tray.
//!
//! Logs in to Astran's Keycloak (password grant), reads the role ARNs from the access
//! token, assumes the role with STS `AssumeRoleWithWebIdentity`, writes the temporary
//! credentials into the AWS shared credentials file, and keeps them fresh with the
//! refresh-token grant. No Tauri or GTK here: the CLI and the tray agent are thin shells
//! over [`session::Session`] and [`scheduler::Scheduler`].

pub mod claims;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(unix)]
pub mod control;
pub mod credfile;
pub mod error;
pub mod http;
pub mod idp;
pub mod logging;
pub mod notify;
pub mod scheduler;
pub mod secret;
pub mod session;
pub mod store;
pub mod sts;

pub use error::{Error, ErrorKind, Result};
