//! Where the login session lives: the OS keyring (Secret Service on Linux, Keychain,
//! Credential Manager), one entry per account. When no keyring is reachable the session is
//! kept in this process only, and the caller is told so.

use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// The Secret Service on Linux: one connection and one session a process.
#[cfg(target_os = "linux")]
pub mod secret_service;

/// The keyring service name; `ASTRAN_KEYRING_SERVICE` overrides it (isolated instances, tests).
pub fn service_name() -> String {
    std::env::var("ASTRAN_KEYRING_SERVICE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "astran-tray".into())
}

/// A held login session (secret: stored as one keyring entry, JSON).
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub refresh_token: Secret,
    /// Unix seconds; `None` for an offline token that does not expire by itself.
    pub refresh_expires_at: Option<i64>,
    /// The refresh lifetime Keycloak granted at login (its SSO Session Idle); a later, shorter
    /// one means the session is capped by SSO Session Max and will end.
    pub idle_seconds: Option<u64>,
    pub started_at: i64,
    /// Unix seconds of the last token reply (login or refresh); the session lifetime it
    /// granted is measured from here.
    #[serde(default)]
    pub refreshed_at: Option<i64>,
    pub email: String,
    pub role_arn: String,
    pub sts_endpoint: String,
    /// An offline session (`offline_access` granted): it outlives SSO Session Max.
    #[serde(default)]
    pub offline: bool,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("refresh_token", &self.refresh_token)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("email", &self.email)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no keyring service is reachable ({0})")]
    Unavailable(String),
    #[error("the keyring failed: {0}")]
    Failed(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let words = e.to_string();
        Error::local_io(words).with_source(e)
    }
}

#[cfg(test)]
impl SessionRecord {
    /// A record for tests: logged in at `t0`, the session ending `end_in` seconds later
    /// (`None`: an offline token), Keycloak's idle timeout `idle`.
    pub fn sample(t0: time::OffsetDateTime, end_in: Option<i64>, idle: Option<u64>) -> Self {
        SessionRecord {
            refresh_token: Secret::new("r"),
            refresh_expires_at: end_in.map(|s| t0.unix_timestamp() + s),
            idle_seconds: idle,
            started_at: t0.unix_timestamp(),
            refreshed_at: Some(t0.unix_timestamp()),
            email: "a@b.c".into(),
            role_arn: "arn:demo:iam::1:root".into(),
            sts_endpoint: "https://x".into(),
            offline: end_in.is_none(),
        }
    }
}

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Session,
    /// Only when the user opted in to "remember password".
    Password,
    /// The temporary credentials, in `credential_mode = "process"` (the credentials file
    /// then holds none).
    Credentials,
}

impl Slot {
    /// The entry's user name in the keyring (`session:<account>`...).
    fn user(self, account: &str) -> String {
        match self {
            Slot::Session => format!("session:{account}"),
            Slot::Password => format!("password:{account}"),
            Slot::Credentials => format!("credentials:{account}"),
        }
    }
}

/// A place for secrets. Blocking: call from a blocking context.
pub trait SecretStore: Send + Sync {
    fn get(&self, slot: Slot, account: &str) -> Result<Option<Secret>, StoreError>;
    fn set(&self, slot: Slot, account: &str, value: &Secret) -> Result<(), StoreError>;
    fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError>;
    /// Open what the next calls about `account`'s `slots` need (a connection, a session, the
    /// lookup of those entries) ahead of them, so it happens while the caller waits for
    /// something else; failures are left for those calls.
    fn warm_up(&self, _account: &str, _slots: &[Slot]) {}
}

/// The OS keyring through the keyring crate (Keychain, Credential Manager).
#[cfg(not(target_os = "linux"))]
pub struct KeyringStore {
    service: String,
}

#[cfg(not(target_os = "linux"))]
impl KeyringStore {
    pub fn new() -> Self {
        KeyringStore {
            service: service_name(),
        }
    }

    fn entry(&self, slot: Slot, account: &str) -> Result<keyring::Entry, StoreError> {
        keyring::Entry::new(&self.service, &slot.user(account)).map_err(map_keyring_err)
    }
}

#[cfg(not(target_os = "linux"))]
impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(target_os = "linux"))]
fn map_keyring_err(e: keyring::Error) -> StoreError {
    match e {
        keyring::Error::PlatformFailure(inner) => StoreError::Unavailable(inner.to_string()),
        keyring::Error::NoStorageAccess(inner) => StoreError::Unavailable(inner.to_string()),
        other => StoreError::Failed(other.to_string()),
    }
}

#[cfg(not(target_os = "linux"))]
impl SecretStore for KeyringStore {
    fn get(&self, slot: Slot, account: &str) -> Result<Option<Secret>, StoreError> {
        match self.entry(slot, account)?.get_password() {
            Ok(p) => Ok(Some(Secret::new(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring_err(e)),
        }
    }

    fn set(&self, slot: Slot, account: &str, value: &Secret) -> Result<(), StoreError> {
        self.entry(slot, account)?
            .set_password(value.expose())
            .map_err(map_keyring_err)
    }

    fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        match self.entry(slot, account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_err(e)),
        }
    }
}

/// Secrets held in this process only.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Secret>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, slot: Slot, account: &str) -> Result<Option<Secret>, StoreError> {
        Ok(self.map.lock().unwrap().get(&slot.user(account)).cloned())
    }

    fn set(&self, slot: Slot, account: &str, value: &Secret) -> Result<(), StoreError> {
        self.map
            .lock()
            .unwrap()
            .insert(slot.user(account), value.clone());
        Ok(())
    }

    fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        self.map.lock().unwrap().remove(&slot.user(account));
        Ok(())
    }
}

/// The keyring, falling back to memory (once, with a warning) when it is unreachable.
pub struct FallbackStore {
    primary: Box<dyn SecretStore>,
    memory: MemoryStore,
    degraded: std::sync::atomic::AtomicBool,
    reason: Mutex<Option<String>>,
}

impl FallbackStore {
    pub fn new(primary: Box<dyn SecretStore>) -> Self {
        FallbackStore {
            primary,
            memory: MemoryStore::default(),
            degraded: Default::default(),
            reason: Mutex::new(None),
        }
    }

    /// The system keyring, or memory only when `ASTRAN_KEYRING=none`.
    pub fn system() -> Self {
        if std::env::var("ASTRAN_KEYRING").as_deref() == Ok("none") {
            // chosen, not a failure: no warning
            let s = FallbackStore::new(Box::new(MemoryStore::default()));
            s.degraded.store(true, std::sync::atomic::Ordering::SeqCst);
            *s.reason.lock().unwrap() = Some("ASTRAN_KEYRING=none".into());
            return s;
        }
        #[cfg(target_os = "linux")]
        let keyring = secret_service::SecretServiceStore::new(service_name());
        #[cfg(not(target_os = "linux"))]
        let keyring = KeyringStore::new();
        FallbackStore::new(Box::new(keyring))
    }

    /// `Some(reason)` once the keyring was found unreachable.
    pub fn degraded(&self) -> Option<String> {
        self.reason.lock().unwrap().clone()
    }

    fn degrade(&self, why: String) {
        if !self
            .degraded
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            log::warn!("no keyring service is reachable ({why}); the login session is kept in this process only");
            *self.reason.lock().unwrap() = Some(why);
        }
    }

    fn run<T>(
        &self,
        f: impl Fn(&dyn SecretStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.degraded.load(std::sync::atomic::Ordering::SeqCst) {
            match f(self.primary.as_ref()) {
                Err(StoreError::Unavailable(why)) => self.degrade(why),
                other => return other,
            }
        }
        f(&self.memory)
    }
}

impl SecretStore for FallbackStore {
    fn get(&self, slot: Slot, account: &str) -> Result<Option<Secret>, StoreError> {
        self.run(|s| s.get(slot, account))
    }

    fn set(&self, slot: Slot, account: &str, value: &Secret) -> Result<(), StoreError> {
        self.run(|s| s.set(slot, account, value))
    }

    fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        self.run(|s| s.delete(slot, account))
    }

    fn warm_up(&self, account: &str, slots: &[Slot]) {
        if !self.degraded.load(std::sync::atomic::Ordering::SeqCst) {
            self.primary.warm_up(account, slots);
        }
    }
}

/// Read a session record.
pub fn load_session(store: &dyn SecretStore, account: &str) -> Result<Option<SessionRecord>> {
    let Some(s) = store.get(Slot::Session, account)? else {
        return Ok(None);
    };
    match serde_json::from_str(s.expose()) {
        Ok(r) => Ok(Some(r)),
        Err(_) => {
            log::warn!("the saved session of account {account} is unreadable; ignoring it");
            Ok(None)
        }
    }
}

pub fn save_session(store: &dyn SecretStore, account: &str, r: &SessionRecord) -> Result<()> {
    let json = Secret::new(
        serde_json::to_string(r)
            .map_err(|e| Error::local_io(format!("cannot encode the session: {e}")))?,
    );
    store.set(Slot::Session, account, &json)?;
    Ok(())
}

/// Temporary credentials as kept in the keyring (`credential_mode = "process"`).
#[derive(Serialize, Deserialize)]
struct KeptCredentials {
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    /// Unix seconds.
    expiration: Option<i64>,
}

pub fn load_credentials(
    store: &dyn SecretStore,
    account: &str,
) -> Result<Option<crate::sts::Credentials>> {
    let Some(s) = store.get(Slot::Credentials, account)? else {
        return Ok(None);
    };
    Ok(serde_json::from_str::<KeptCredentials>(s.expose())
        .ok()
        .map(|k| crate::sts::Credentials {
            access_key_id: k.access_key_id,
            secret_access_key: k.secret_access_key,
            session_token: k.session_token,
            expiration: k
                .expiration
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok()),
        }))
}

pub fn save_credentials(
    store: &dyn SecretStore,
    account: &str,
    c: &crate::sts::Credentials,
) -> Result<()> {
    let kept = KeptCredentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: c.session_token.clone(),
        expiration: c.expiration.map(|t| t.unix_timestamp()),
    };
    let json = Secret::new(
        serde_json::to_string(&kept)
            .map_err(|e| Error::local_io(format!("cannot encode the credentials: {e}")))?,
    );
    store.set(Slot::Credentials, account, &json)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl SecretStore for Broken {
        fn get(&self, _: Slot, _: &str) -> Result<Option<Secret>, StoreError> {
            Err(StoreError::Unavailable("no bus".into()))
        }
        fn set(&self, _: Slot, _: &str, _: &Secret) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("no bus".into()))
        }
        fn delete(&self, _: Slot, _: &str) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("no bus".into()))
        }
    }

    #[test]
    fn falls_back_to_memory() {
        let s = FallbackStore::new(Box::new(Broken));
        assert!(s.degraded().is_none());
        s.set(Slot::Session, "a", &Secret::new("x")).unwrap();
        assert_eq!(s.degraded().as_deref(), Some("no bus"));
        assert_eq!(s.get(Slot::Session, "a").unwrap().unwrap().expose(), "x");
        assert!(s.get(Slot::Password, "a").unwrap().is_none());
    }

    #[test]
    fn record_debug_hides_the_token() {
        let r = SessionRecord {
            refresh_token: Secret::new("eyJhbGciOi-refresh"),
            refresh_expires_at: None,
            idle_seconds: None,
            started_at: 0,
            refreshed_at: None,
            email: "a@b.c".into(),
            role_arn: "arn".into(),
            sts_endpoint: "https://x".into(),
            offline: false,
        };
        assert!(!format!("{r:?}").contains("eyJ"));
    }
}
