//! astran-creds: the core of astran-tray.
//!
//! Logs in to Astran's Keycloak (password grant; or a browser login with PKCE, or a device
//! login, for company realms), reads the role ARNs from the access
//! token, assumes the role with STS `AssumeRoleWithWebIdentity`, writes the temporary
//! credentials into the AWS shared credentials file, and keeps them fresh with the
//! refresh-token grant. No Tauri or GTK here: the CLI (`src/main.rs`) and the tray agent are
//! thin shells over [`session::Session`] and [`owner`].
//!
//! Who calls whom (no module imports one that imports it back):
//! `owner` → `scheduler`, `control`, `protocol` → `login`, `keys` → `session` → `browser`,
//! `device`, `idp`, `sts`, `store`,
//! `awsfile` (→ `credfile`, `fsio`), `config` → `values`, `paths`; `state` (→ `timeline`)
//! and `plan` are pure and used by `session` and `scheduler`; `events` is the owner's ring.

pub mod awsconfig;
pub mod awsfile;
pub mod browser;
pub mod claims;
pub mod clock;
pub mod config;
pub mod control;
pub mod credfile;
pub mod device;
pub mod error;
pub mod events;
pub mod export;
pub mod fsio;
pub mod http;
pub mod iam;
pub mod idp;
pub mod keys;
pub mod listen;
pub mod logging;
pub mod login;
pub mod notify;
pub mod owner;
pub mod paths;
pub mod plan;
pub mod protocol;
pub mod scheduler;
pub mod secret;
pub mod serve;
pub mod session;
pub mod state;
pub mod store;
pub mod sts;
pub mod timeline;
pub mod values;

pub use error::{Error, ErrorKind, Result};
