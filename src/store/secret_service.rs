//! The Secret Service (GNOME Keyring, KWallet's bridge, KeePassXC) on Linux, with one D-Bus
//! connection and one encrypted session per process: opened at the first call, kept for the
//! next ones, opened again after a failure. The session is `dh-ietf1024-sha256-aes128-cbc-pkcs7`,
//! the transport libsecret negotiates, so a secret never crosses the bus in the clear.
//!
//! Items are laid out as keyring 3 (which earlier versions of ours used) lays them out:
//! attributes `service`, `username`, `target = "default"`, `application = "rust-keyring"`,
//! label `<user>@<service>:default (keyring v3.6.3)`, in the default collection; looked up by
//! `target`, `service` and `username`. So a version built on keyring reads what this one
//! writes, and the other way round. What keyring spent on top (a new connection and a new
//! Diffie-Hellman exchange for every call, two of them for a `set`, and a second search for
//! keyring v1's items, which we never wrote) is gone: `docs/benchmarks.md`.

use super::{SecretStore, Slot, StoreError};
use crate::secret::Secret;
use secret_service::blocking::{Item, SecretService};
use secret_service::EncryptionType;
use std::collections::HashMap;
use std::sync::Mutex;

/// The label keyring 3.6.3 gives a new item.
const KEYRING_VERSION: &str = "3.6.3";

pub struct SecretServiceStore {
    service: String,
    conn: Mutex<Option<SecretService<'static>>>,
}

fn unavailable(e: secret_service::Error) -> StoreError {
    match e {
        secret_service::Error::Locked => {
            StoreError::Unavailable("the keyring is locked; unlock it and try again".into())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl SecretServiceStore {
    pub fn new(service: String) -> Self {
        SecretServiceStore {
            service,
            conn: Mutex::new(None),
        }
    }

    /// Run `f` on the process's connection, opening it first if there is none. A failure
    /// drops the connection, so the next call opens a new one (the daemon may have restarted).
    fn with<T>(
        &self,
        f: impl FnOnce(&SecretService<'static>) -> Result<T, secret_service::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let ss = match conn.take() {
            Some(ss) => ss,
            None => SecretService::connect(EncryptionType::Dh).map_err(unavailable)?,
        };
        let r = f(&ss);
        if r.is_ok() || matches!(r, Err(secret_service::Error::NoResult)) {
            *conn = Some(ss);
        }
        r.map_err(unavailable)
    }

    fn attributes<'a>(&'a self, user: &'a str) -> HashMap<&'a str, &'a str> {
        HashMap::from([
            ("target", "default"),
            ("service", self.service.as_str()),
            ("username", user),
        ])
    }
}

impl Drop for SecretServiceStore {
    fn drop(&mut self) {
        // zbus's blocking connection blocks on its runtime when it closes, which panics on
        // a thread that drives async tasks (the store often goes with the session at the end
        // of an async main): close it on a thread of its own
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(ss) = conn {
            let _ = std::thread::spawn(move || drop(ss)).join();
        }
    }
}

/// The one item that matches, unlocked; `None` when there is none.
fn find<'a>(
    ss: &'a SecretService<'static>,
    attributes: HashMap<&str, &str>,
) -> Result<Option<Item<'a>>, secret_service::Error> {
    let found = ss.search_items(attributes)?;
    let items: Vec<(Item<'a>, bool)> = found
        .unlocked
        .into_iter()
        .map(|i| (i, false))
        .chain(found.locked.into_iter().map(|i| (i, true)))
        .collect();
    if items.len() > 1 {
        // keyring calls this Ambiguous; both versions of ours create one item only
        log::warn!(
            "the keyring holds {} matching items; using the first",
            items.len()
        );
    }
    match items.into_iter().next() {
        None => Ok(None),
        Some((item, locked)) => {
            if locked {
                item.unlock()?;
            }
            Ok(Some(item))
        }
    }
}

impl SecretStore for SecretServiceStore {
    fn get(&self, slot: Slot, account: &str) -> Result<Option<Secret>, StoreError> {
        let user = slot.user(account);
        let bytes = self.with(|ss| match find(ss, self.attributes(&user))? {
            Some(item) => item.get_secret().map(Some),
            None => Ok(None),
        })?;
        match bytes {
            None => Ok(None),
            Some(b) => String::from_utf8(b)
                .map(|s| Some(Secret::new(s)))
                .map_err(|_| StoreError::Failed(format!("the keyring entry {user} is not text"))),
        }
    }

    fn set(&self, slot: Slot, account: &str, value: &Secret) -> Result<(), StoreError> {
        let user = slot.user(account);
        let secret = value.expose().as_bytes();
        self.with(|ss| {
            if let Some(item) = find(ss, self.attributes(&user))? {
                return item.set_secret(secret, "text/plain");
            }
            let label = format!(
                "{user}@{}:default (keyring v{KEYRING_VERSION})",
                self.service
            );
            let mut attributes = self.attributes(&user);
            attributes.insert("application", "rust-keyring");
            let collection = ss.get_default_collection()?;
            // as keyring does: a locked collection asks to be unlocked (the desktop's prompt)
            if collection.is_locked()? {
                collection.unlock()?;
            }
            collection.create_item(&label, attributes, secret, true, "text/plain")?;
            Ok(())
        })
    }

    fn warm_up(&self) {
        if let Err(e) = self.with(|_| Ok(())) {
            log::debug!("the keyring is not reachable yet: {e}");
        }
    }

    fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        let user = slot.user(account);
        // a search only: nothing stored, nothing more asked of the keyring
        self.with(|ss| {
            let found = ss.search_items(self.attributes(&user))?;
            for item in found.unlocked.iter().chain(found.locked.iter()) {
                item.delete()?;
            }
            Ok(())
        })
    }
}
