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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

    /// Which keyring this is, the same words in every process that reaches the same one
    /// (service name and bus); `None`: this process's memory.
    fn identity(&self) -> Option<String> {
        None
    }
}

/// Another process holding the same keyring open (the running owner: the tray agent or
/// `astran-creds daemon`) that makes this process's changes for it, so that a short command
/// opens no keyring session of its own (on the Secret Service, a Diffie-Hellman exchange on
/// both sides, most of a login's keyring time).
pub trait Delegate: Send + Sync {
    /// Whether it holds the keyring named `identity` open (asked once).
    fn holds(&self, identity: &str) -> bool;
    /// Set (`Some`) or delete (`None`) an entry of the keyring `identity`; `undoable`: the
    /// delegate keeps what the entry held, for an `undo` (it never sends it back).
    fn change(
        &self,
        identity: &str,
        slot: Slot,
        account: &str,
        value: Option<&Secret>,
        undoable: bool,
    ) -> Result<(), StoreError>;
    /// Put back what the entry held before its last undoable change.
    fn undo(&self, identity: &str, slot: Slot, account: &str) -> Result<(), StoreError>;
}

/// How long a delegate keeps what an undoable change replaced: a login's wait for STS.
const UNDO_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// Where this process's keyring changes go.
enum Route {
    /// Nobody offered to make them: here.
    Here,
    /// Offered, not asked yet.
    Offered(Box<dyn Delegate>),
    /// The delegate holds our keyring (its identity): there.
    There(Box<dyn Delegate>, String),
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
    route: Mutex<Route>,
    /// As a delegate: what clients' undoable changes replaced, by entry, and when.
    undo: Mutex<HashMap<String, (std::time::Instant, Option<Secret>)>>,
}

impl FallbackStore {
    pub fn new(primary: Box<dyn SecretStore>) -> Self {
        FallbackStore {
            primary,
            memory: MemoryStore::default(),
            degraded: Default::default(),
            reason: Mutex::new(None),
            route: Mutex::new(Route::Here),
            undo: Mutex::new(HashMap::new()),
        }
    }

    /// Let `d` make this process's changes (sets and deletes; reads stay here) when it holds
    /// the same keyring; asked at the warm-up or the first change. Any failure there makes
    /// that change, and the later ones, here.
    pub fn offer_delegate(&self, d: Box<dyn Delegate>) {
        *self.route.lock().unwrap_or_else(|e| e.into_inner()) = Route::Offered(d);
    }

    /// The keyring's identity, `None` when this process holds its secrets in memory.
    pub fn identity(&self) -> Option<String> {
        if self.degraded.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        self.primary.identity()
    }

    /// A change made in the keyring itself, never in memory: what a delegate does for a
    /// client, which must hear when the keyring is not reachable.
    pub fn change_in_keyring(
        &self,
        slot: Slot,
        account: &str,
        value: Option<&Secret>,
        undoable: bool,
    ) -> Result<(), StoreError> {
        if let Some(why) = self.degraded() {
            return Err(StoreError::Unavailable(why));
        }
        let user = slot.user(account);
        let mut undo = self.undo.lock().unwrap_or_else(|e| e.into_inner());
        undo.retain(|u, (at, _)| *u != user && at.elapsed() < UNDO_FOR);
        if undoable {
            let before = self.primary.get(slot, account)?;
            undo.insert(user, (std::time::Instant::now(), before));
        }
        drop(undo);
        put(self.primary.as_ref(), slot, account, value)
    }

    /// Put back what a client's undoable change replaced (nothing kept: nothing to do).
    pub fn undo_in_keyring(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        let kept = self
            .undo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&slot.user(account));
        match kept {
            Some((at, before)) if at.elapsed() < UNDO_FOR => {
                put(self.primary.as_ref(), slot, account, before.as_ref())
            }
            _ => Ok(()),
        }
    }

    /// Whether this process's changes go to a delegate (asking an offered one now).
    pub fn delegating(&self) -> bool {
        matches!(*self.routed(), Route::There(..))
    }

    /// An undoable set (`Some`) or delete (`None`), made before the caller knows it stands (a
    /// login's, while STS answers): through the delegate when there is one, else in this
    /// process's keyring, what it replaced kept here for [`FallbackStore::undo`]. `None`: not
    /// made (no keyring reachable, or it failed), so the change is the caller's to make
    /// later, the usual way.
    pub fn set_undoable(&self, slot: Slot, account: &str, value: Option<&Secret>) -> Option<()> {
        if let Some(done) = self.delegated(slot, account, value, true) {
            return Some(done);
        }
        match self.change_in_keyring(slot, account, value, true) {
            Ok(()) => Some(()),
            Err(e) => {
                log::debug!("the keyring's change waits for the end of the login ({e})");
                None
            }
        }
    }

    /// Put back what a `set_undoable` that was made replaced.
    pub fn undo(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        match &*self.routed() {
            Route::There(d, id) => d.undo(id, slot, account),
            _ => self.undo_in_keyring(slot, account),
        }
    }

    /// Where changes go, asking an offered delegate first.
    fn routed(&self) -> std::sync::MutexGuard<'_, Route> {
        let mut route = self.route.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*route, Route::Offered(_)) {
            let Route::Offered(d) = std::mem::replace(&mut *route, Route::Here) else {
                unreachable!()
            };
            if let Some(id) = self.identity() {
                if d.holds(&id) {
                    log::debug!("the keyring's changes go through the running agent");
                    *route = Route::There(d, id);
                }
            }
        }
        route
    }

    /// The change made by the delegate, if there is one and it can; `None`: make it here.
    fn delegated(
        &self,
        slot: Slot,
        account: &str,
        value: Option<&Secret>,
        undoable: bool,
    ) -> Option<()> {
        let mut route = self.routed();
        let Route::There(d, id) = &*route else {
            return None;
        };
        match d.change(id, slot, account, value, undoable) {
            Ok(()) => Some(()),
            Err(e) => {
                log::debug!("the running agent did not change the keyring ({e}); doing it here");
                *route = Route::Here;
                None
            }
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
        if let Some(done) = self.delegated(slot, account, Some(value), false) {
            return Ok(done);
        }
        self.run(|s| s.set(slot, account, value))
    }

    fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        if let Some(done) = self.delegated(slot, account, None, false) {
            return Ok(done);
        }
        self.run(|s| s.delete(slot, account))
    }

    /// With a delegate holding the keyring, nothing is opened or looked up here, nor asked of
    /// it ahead: it looks the entries up when it changes them.
    fn warm_up(&self, account: &str, slots: &[Slot]) {
        if matches!(*self.routed(), Route::There(..)) {
            return;
        }
        if !self.degraded.load(std::sync::atomic::Ordering::SeqCst) {
            self.primary.warm_up(account, slots);
        }
    }

    fn identity(&self) -> Option<String> {
        FallbackStore::identity(self)
    }
}

/// Set the entry to `value`, or delete it (`None`).
pub fn put(
    store: &dyn SecretStore,
    slot: Slot,
    account: &str,
    value: Option<&Secret>,
) -> Result<(), StoreError> {
    match value {
        Some(v) => store.set(slot, account, v),
        None => store.delete(slot, account),
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
    store.set(Slot::Session, account, &session_json(r)?)?;
    Ok(())
}

/// A session record as its keyring entry holds it.
pub fn session_json(r: &SessionRecord) -> Result<Secret> {
    Ok(Secret::new(serde_json::to_string(r).map_err(|e| {
        Error::local_io(format!("cannot encode the session: {e}"))
    })?))
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
    use std::sync::Arc;

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

    /// A keyring of this process with a name, as the Secret Service's is.
    struct Named(MemoryStore);

    impl SecretStore for Named {
        fn get(&self, slot: Slot, account: &str) -> Result<Option<Secret>, StoreError> {
            self.0.get(slot, account)
        }
        fn set(&self, slot: Slot, account: &str, value: &Secret) -> Result<(), StoreError> {
            self.0.set(slot, account, value)
        }
        fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
            self.0.delete(slot, account)
        }
        fn identity(&self) -> Option<String> {
            Some("k".into())
        }
    }

    /// Another process's keyring, as a running owner holds it: what it was asked, in order.
    #[derive(Clone, Default)]
    struct Owner {
        holds: Option<&'static str>,
        fail: bool,
        held: Arc<MemoryStore>,
        asked: Arc<Mutex<Vec<String>>>,
    }

    impl Delegate for Owner {
        fn holds(&self, identity: &str) -> bool {
            self.asked.lock().unwrap().push(format!("holds {identity}"));
            self.holds == Some(identity)
        }
        fn change(
            &self,
            _: &str,
            slot: Slot,
            account: &str,
            value: Option<&Secret>,
            _: bool,
        ) -> Result<(), StoreError> {
            self.asked.lock().unwrap().push(slot.user(account));
            if self.fail {
                return Err(StoreError::Unavailable("gone".into()));
            }
            put(self.held.as_ref(), slot, account, value)
        }
        fn undo(&self, _: &str, slot: Slot, account: &str) -> Result<(), StoreError> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("undo {}", slot.user(account)));
            Ok(())
        }
    }

    #[test]
    fn an_undoable_change_is_put_back_by_the_process_that_made_it() {
        let s = FallbackStore::new(Box::new(Named(MemoryStore::default())));
        let (a, b) = (Secret::new("a"), Secret::new("b"));
        // the entry held nothing: undone, it holds nothing again
        s.change_in_keyring(Slot::Session, "x", Some(&a), true)
            .unwrap();
        assert_eq!(s.get(Slot::Session, "x").unwrap().unwrap().expose(), "a");
        s.undo_in_keyring(Slot::Session, "x").unwrap();
        assert!(s.get(Slot::Session, "x").unwrap().is_none());
        // it held `a`: `a` again; a second undo does nothing
        s.change_in_keyring(Slot::Session, "x", Some(&a), false)
            .unwrap();
        s.change_in_keyring(Slot::Session, "x", Some(&b), true)
            .unwrap();
        s.undo_in_keyring(Slot::Session, "x").unwrap();
        assert_eq!(s.get(Slot::Session, "x").unwrap().unwrap().expose(), "a");
        s.change_in_keyring(Slot::Session, "x", Some(&b), false)
            .unwrap();
        s.undo_in_keyring(Slot::Session, "x").unwrap();
        assert_eq!(s.get(Slot::Session, "x").unwrap().unwrap().expose(), "b");
        // a change since the undoable one is not undone
        s.change_in_keyring(Slot::Session, "x", Some(&a), true)
            .unwrap();
        s.change_in_keyring(Slot::Session, "x", Some(&b), false)
            .unwrap();
        s.undo_in_keyring(Slot::Session, "x").unwrap();
        assert_eq!(s.get(Slot::Session, "x").unwrap().unwrap().expose(), "b");
    }

    /// Without a delegate, a login's early change is made in this process's keyring and put
    /// back here; with the keyring out of reach it is not made at all (the login's end
    /// keeps the session in memory instead).
    #[test]
    fn an_early_change_without_a_delegate_is_made_and_undone_here() {
        let s = FallbackStore::new(Box::new(Named(MemoryStore::default())));
        s.set(Slot::Session, "a", &Secret::new("old")).unwrap();
        assert_eq!(
            s.set_undoable(Slot::Session, "a", Some(&Secret::new("new"))),
            Some(())
        );
        assert_eq!(s.get(Slot::Session, "a").unwrap().unwrap().expose(), "new");
        s.undo(Slot::Session, "a").unwrap();
        assert_eq!(s.get(Slot::Session, "a").unwrap().unwrap().expose(), "old");
        let broken = FallbackStore::new(Box::new(Broken));
        assert_eq!(
            broken.set_undoable(Slot::Session, "a", Some(&Secret::new("new"))),
            None
        );
        assert!(broken.undo(Slot::Session, "a").is_ok());
    }

    #[test]
    fn changes_go_through_an_owner_holding_the_same_keyring() {
        let owner = Owner {
            holds: Some("k"),
            ..Default::default()
        };
        let s = FallbackStore::new(Box::new(Named(MemoryStore::default())));
        s.offer_delegate(Box::new(owner.clone()));
        // nothing is looked up ahead (the owner does it when it changes the entries)
        s.warm_up("a", &[Slot::Session, Slot::Password]);
        s.set(Slot::Session, "a", &Secret::new("x")).unwrap();
        s.delete(Slot::Password, "a").unwrap();
        assert_eq!(
            owner
                .held
                .get(Slot::Session, "a")
                .unwrap()
                .unwrap()
                .expose(),
            "x"
        );
        assert!(s.get(Slot::Session, "a").unwrap().is_none(), "not here");
        // an undoable change, undone there
        assert_eq!(s.set_undoable(Slot::Session, "a", None), Some(()));
        s.undo(Slot::Session, "a").unwrap();
        assert_eq!(
            *owner.asked.lock().unwrap(),
            [
                "holds k",
                "session:a",
                "password:a",
                "session:a",
                "undo session:a"
            ]
        );
        // once it fails, the change and the later ones are made here
        let failing = Owner {
            holds: Some("k"),
            fail: true,
            ..Default::default()
        };
        let s = FallbackStore::new(Box::new(Named(MemoryStore::default())));
        s.offer_delegate(Box::new(failing.clone()));
        s.set(Slot::Session, "a", &Secret::new("w")).unwrap();
        assert_eq!(
            s.set_undoable(Slot::Session, "a", Some(&Secret::new("v"))),
            Some(())
        );
        assert_eq!(s.get(Slot::Session, "a").unwrap().unwrap().expose(), "v");
        s.undo(Slot::Session, "a").unwrap();
        assert_eq!(s.get(Slot::Session, "a").unwrap().unwrap().expose(), "w");
        s.set(Slot::Session, "a", &Secret::new("y")).unwrap();
        s.set(Slot::Session, "a", &Secret::new("z")).unwrap();
        assert_eq!(s.get(Slot::Session, "a").unwrap().unwrap().expose(), "z");
        assert_eq!(*failing.asked.lock().unwrap(), ["holds k", "session:a"]);
    }

    #[test]
    fn an_owner_holding_another_keyring_is_not_asked_to_change_it() {
        for holds in [None, Some("other")] {
            let owner = Owner {
                holds,
                ..Default::default()
            };
            let s = FallbackStore::new(Box::new(Named(MemoryStore::default())));
            s.offer_delegate(Box::new(owner.clone()));
            s.set(Slot::Session, "a", &Secret::new("x")).unwrap();
            s.delete(Slot::Password, "a").unwrap();
            assert_eq!(s.get(Slot::Session, "a").unwrap().unwrap().expose(), "x");
            assert_eq!(*owner.asked.lock().unwrap(), ["holds k"]);
        }
        // a process keeping its secrets in memory asks nobody
        let owner = Owner {
            holds: Some("k"),
            ..Default::default()
        };
        let s = FallbackStore::new(Box::new(Broken));
        s.set(Slot::Session, "a", &Secret::new("x")).unwrap();
        s.offer_delegate(Box::new(owner.clone()));
        s.set(Slot::Session, "a", &Secret::new("y")).unwrap();
        assert!(owner.asked.lock().unwrap().is_empty());
    }
}
