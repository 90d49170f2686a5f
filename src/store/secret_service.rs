//! The Secret Service (GNOME Keyring, KWallet's bridge, KeePassXC) on Linux, spoken directly
//! over D-Bus (zbus): one connection and one encrypted session per process, opened at the
//! first call (or by [`SecretStore::warm_up`] while the login waits for the network) and kept
//! for the next ones, opened again after a failure.
//!
//! The session is `dh-ietf1024-sha256-aes128-cbc-pkcs7`, the transport libsecret negotiates, so
//! a secret never crosses the bus in the clear: a Diffie-Hellman exchange in the 1024-bit MODP
//! group of RFC 2409 (our private exponent 256 random bits, as is usual for a safe prime),
//! HKDF-SHA256 of the shared secret to a 128-bit key, AES-128-CBC with PKCS#7 and a fresh IV
//! per secret. Why not the `secret-service` crate (which the previous version used): its
//! exchange raises to a 1024-bit exponent with a plain square-and-multiply loop, about 2 ms of
//! CPU a power on this machine and two a session, on the login's critical path; `num-bigint`'s
//! Montgomery `modpow` with a 256-bit exponent takes a small fraction of that
//! (docs/benchmarks.md, bench/changes.md).
//!
//! Items are laid out as keyring 3 lays them out (earlier versions of ours used it):
//! attributes `service`, `username`, `target = "default"`, `application = "rust-keyring"`,
//! label `<user>@<service>:default (keyring v3.6.3)`, content type `text/plain`, in the default
//! collection; looked up by `target`, `service` and `username`. So a version built on keyring
//! reads what this one writes, and the other way round (`tests/cli.rs` checks both ways with
//! libsecret's `secret-tool`).

use super::{SecretStore, Slot, StoreError};
use crate::secret::Secret;
use num_bigint::BigUint;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// The label keyring 3.6.3 gives a new item.
const KEYRING_VERSION: &str = "3.6.3";

const DEST: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE: &str = "org.freedesktop.Secret.Service";
const COLLECTION: &str = "org.freedesktop.Secret.Collection";
const ITEM: &str = "org.freedesktop.Secret.Item";
const PROMPT: &str = "org.freedesktop.Secret.Prompt";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const ALGORITHM: &str = "dh-ietf1024-sha256-aes128-cbc-pkcs7";
const CONTENT_TYPE: &str = "text/plain";

/// The Secret struct of the spec: (session, parameters (the IV), value, content type).
type WireSecret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

/// RFC 2409's second Oakley group (1024-bit MODP), the spec's group for this algorithm.
const PRIME_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
                         020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
                         4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
                         EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";

fn prime() -> &'static BigUint {
    static P: OnceLock<BigUint> = OnceLock::new();
    P.get_or_init(|| BigUint::parse_bytes(PRIME_HEX.as_bytes(), 16).expect("the group's prime"))
}

/// The connection and the open session.
struct Open {
    bus: Connection,
    session: OwnedObjectPath,
    key: [u8; 16],
    /// What `warm_up` or a read looked up ahead of the next calls, or the item a `set` just
    /// changed in place, by entry user name: when, and the matching items (none: known
    /// absent). Used only for [`KNOWN_FOR`] (in a long-lived owner, a look-up a client never
    /// followed with its change expires); a read of an item gone since looks again.
    known: HashMap<String, (std::time::Instant, Found)>,
}

/// How long a warm-up's look-up stands in for a search: a login's network time, with room.
const KNOWN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone, Default)]
struct Found {
    unlocked: Vec<OwnedObjectPath>,
    locked: Vec<OwnedObjectPath>,
}

pub struct SecretServiceStore {
    service: String,
    conn: Mutex<Option<Open>>,
}

#[derive(Debug)]
enum Failure {
    Bus(zbus::Error),
    /// An unlock prompt was dismissed.
    Dismissed,
    /// Something the spec does not allow, in words.
    Protocol(String),
}

impl From<zbus::Error> for Failure {
    fn from(e: zbus::Error) -> Self {
        Failure::Bus(e)
    }
}

impl From<zbus::zvariant::Error> for Failure {
    fn from(e: zbus::zvariant::Error) -> Self {
        Failure::Bus(e.into())
    }
}

fn unavailable(e: Failure) -> StoreError {
    match e {
        Failure::Bus(zbus::Error::MethodError(name, _, _))
            if name.as_str() == "org.freedesktop.Secret.Error.IsLocked" =>
        {
            StoreError::Unavailable("the keyring is locked; unlock it and try again".into())
        }
        Failure::Bus(e) => StoreError::Unavailable(e.to_string()),
        Failure::Dismissed => StoreError::Unavailable(
            "the keyring stayed locked (its unlock prompt was dismissed); unlock it and try again"
                .into(),
        ),
        Failure::Protocol(why) => StoreError::Unavailable(why),
    }
}

type R<T> = std::result::Result<T, Failure>;

/// The item asked about is not there (any more): deleted by another program since it was
/// looked up. gnome-keyring says `UnknownMethod` ("Object does not exist at path …") for a
/// spec method on an item path it no longer has.
fn is_gone(e: &Failure) -> bool {
    matches!(e, Failure::Bus(zbus::Error::MethodError(name, _, _))
        if name.as_str() == "org.freedesktop.DBus.Error.UnknownObject"
            || name.as_str() == "org.freedesktop.DBus.Error.UnknownMethod"
            || name.as_str() == "org.freedesktop.Secret.Error.NoSuchObject")
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
    fn with<T>(&self, f: impl FnOnce(&mut Open) -> R<T>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut open = match conn.take() {
            Some(o) => o,
            None => Open::connect().map_err(unavailable)?,
        };
        let r = f(&mut open);
        if r.is_ok() {
            *conn = Some(open);
        } else {
            close(open);
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

    /// The items of `user`: what `warm_up`, a read or a `set` in place found, else a search.
    /// A change (`set`, `delete`) uses up what was found (a `set` in place puts its item back);
    /// a read leaves it for the change that follows. `fresh`: a search whatever is known.
    fn lookup(&self, o: &mut Open, user: &str, for_change: bool) -> R<Found> {
        self.lookup_as(o, user, for_change, false)
    }

    fn lookup_as(&self, o: &mut Open, user: &str, for_change: bool, fresh: bool) -> R<Found> {
        let known = if for_change {
            o.known.remove(user)
        } else {
            o.known.get(user).cloned()
        };
        match known {
            Some((at, f)) if at.elapsed() < KNOWN_FOR && !fresh => Ok(f),
            _ => {
                let found = o.search(self.attributes(user))?;
                if !for_change {
                    // a read is often followed by a change (a renewal's, an undoable one's)
                    o.known
                        .insert(user.to_string(), (std::time::Instant::now(), found.clone()));
                }
                Ok(found)
            }
        }
    }
}

/// zbus's blocking connection blocks on its runtime when it closes, which panics on a thread
/// that drives async tasks: it closes on a thread of its own (not waited for: the daemon
/// ends the session when the connection goes, however it goes).
fn close(o: Open) {
    let _ = std::thread::Builder::new()
        .name("keyring-close".into())
        .spawn(move || drop(o));
}

impl Drop for SecretServiceStore {
    fn drop(&mut self) {
        if let Some(o) = self
            .conn
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            close(o);
        }
    }
}

impl Open {
    fn connect() -> R<Open> {
        let bus = Connection::session()?;
        let (private, public) = keypair();
        let reply = bus.call_method(
            Some(DEST),
            SERVICE_PATH,
            Some(SERVICE),
            "OpenSession",
            &(ALGORITHM, Value::from(public)),
        )?;
        let (output, session): (OwnedValue, OwnedObjectPath) = reply.body().deserialize()?;
        let server_public: Vec<u8> = output.try_into()?;
        let key = shared_key(&private, &server_public)?;
        Ok(Open {
            bus,
            session,
            key,
            known: HashMap::new(),
        })
    }

    fn call<B>(&self, path: &str, iface: &str, method: &str, body: &B) -> R<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        Ok(self
            .bus
            .call_method(Some(DEST), path, Some(iface), method, body)?)
    }

    fn search(&self, attributes: HashMap<&str, &str>) -> R<Found> {
        let reply = self.call(SERVICE_PATH, SERVICE, "SearchItems", &(attributes,))?;
        let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
            reply.body().deserialize()?;
        Ok(Found { unlocked, locked })
    }

    /// The first matching item, unlocked (the desktop's prompt if it must); `None`: none.
    fn first_unlocked(&self, found: Found) -> R<Option<OwnedObjectPath>> {
        let n = found.unlocked.len() + found.locked.len();
        if n > 1 {
            // keyring calls this Ambiguous; both versions of ours create one item only
            log::warn!("the keyring holds {n} matching items; using the first");
        }
        if let Some(p) = found.unlocked.into_iter().next() {
            return Ok(Some(p));
        }
        match found.locked.into_iter().next() {
            None => Ok(None),
            Some(p) => {
                self.unlock(&p)?;
                Ok(Some(p))
            }
        }
    }

    fn unlock(&self, path: &OwnedObjectPath) -> R<()> {
        let reply = self.call(SERVICE_PATH, SERVICE, "Unlock", &(vec![path.clone()],))?;
        let (_, prompt): (Vec<OwnedObjectPath>, OwnedObjectPath) = reply.body().deserialize()?;
        self.prompt(&prompt).map(drop)
    }

    /// Run a prompt (`/` is none) and wait for its `Completed`; its result.
    fn prompt(&self, prompt: &OwnedObjectPath) -> R<Option<OwnedValue>> {
        if prompt.as_str() == "/" {
            return Ok(None);
        }
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(PROMPT)?
            .member("Completed")?
            .path(prompt.as_str())?
            .build();
        let mut completed = zbus::blocking::MessageIterator::for_match_rule(rule, &self.bus, None)?;
        self.call(prompt.as_str(), PROMPT, "Prompt", &("",))?;
        let msg = completed
            .next()
            .ok_or_else(|| Failure::Protocol("the keyring's prompt went away".into()))??;
        let (dismissed, result): (bool, OwnedValue) = msg.body().deserialize()?;
        if dismissed {
            return Err(Failure::Dismissed);
        }
        Ok(Some(result))
    }

    fn get_secret(&self, item: &OwnedObjectPath) -> R<Vec<u8>> {
        let reply = self.call(item.as_str(), ITEM, "GetSecret", &(self.session.clone(),))?;
        let (_, iv, value, _): WireSecret = reply.body().deserialize()?;
        decrypt(&self.key, &iv, &value)
    }

    fn secret(&self, plain: &[u8]) -> WireSecret {
        let (iv, value) = encrypt(&self.key, plain);
        (self.session.clone(), iv, value, CONTENT_TYPE.to_owned())
    }

    fn set_secret(&self, item: &OwnedObjectPath, plain: &[u8]) -> R<()> {
        self.call(item.as_str(), ITEM, "SetSecret", &(self.secret(plain),))?;
        Ok(())
    }

    fn create(&self, label: &str, attributes: HashMap<&str, &str>, plain: &[u8]) -> R<()> {
        let reply = self.call(SERVICE_PATH, SERVICE, "ReadAlias", &("default",))?;
        let collection: OwnedObjectPath = reply.body().deserialize()?;
        if collection.as_str() == "/" {
            return Err(Failure::Protocol(
                "the keyring has no default collection; create one (e.g. in Seahorse)".into(),
            ));
        }
        let reply = self.call(
            collection.as_str(),
            PROPERTIES,
            "Get",
            &(COLLECTION, "Locked"),
        )?;
        let locked: OwnedValue = reply.body().deserialize()?;
        // as keyring does: a locked collection asks to be unlocked (the desktop's prompt)
        if bool::try_from(locked)? {
            self.unlock(&collection)?;
        }
        let properties: HashMap<&str, Value> = HashMap::from([
            ("org.freedesktop.Secret.Item.Label", Value::from(label)),
            (
                "org.freedesktop.Secret.Item.Attributes",
                Value::from(attributes),
            ),
        ]);
        let reply = self.call(
            collection.as_str(),
            COLLECTION,
            "CreateItem",
            &(properties, self.secret(plain), true),
        )?;
        let (_, prompt): (OwnedObjectPath, OwnedObjectPath) = reply.body().deserialize()?;
        self.prompt(&prompt)?;
        Ok(())
    }

    fn delete(&self, item: &OwnedObjectPath) -> R<()> {
        let reply = self.call(item.as_str(), ITEM, "Delete", &())?;
        let prompt: OwnedObjectPath = reply.body().deserialize()?;
        self.prompt(&prompt).map(drop)
    }
}

impl SecretStore for SecretServiceStore {
    fn get(&self, slot: Slot, account: &str) -> Result<Option<Secret>, StoreError> {
        let user = slot.user(account);
        let bytes = self.with(|o| {
            let read = |o: &mut Open, fresh: bool| {
                let found = self.lookup_as(o, &user, false, fresh)?;
                match o.first_unlocked(found)? {
                    Some(item) => o.get_secret(&item).map(Some),
                    None => Ok(None),
                }
            };
            match read(o, false) {
                // the item known is gone since (another program deleted it): look again
                Err(e) if is_gone(&e) => read(o, true),
                r => r,
            }
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
        self.with(|o| {
            let found = self.lookup(o, &user, true)?;
            if let Some(item) = o.first_unlocked(found)? {
                match o.set_secret(&item, secret) {
                    Ok(()) => {
                        // still the entry's item: the read that follows a change (an owner
                        // reloading what a login handed it) goes straight to it
                        let found = Found {
                            unlocked: vec![item],
                            locked: Vec::new(),
                        };
                        o.known
                            .insert(user.clone(), (std::time::Instant::now(), found));
                        return Ok(());
                    }
                    // gone since it was looked up (another program): make it anew
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            let label = format!(
                "{user}@{}:default (keyring v{KEYRING_VERSION})",
                self.service
            );
            let mut attributes = self.attributes(&user);
            attributes.insert("application", "rust-keyring");
            o.create(&label, attributes, secret)
        })
    }

    /// Open the connection and the session, and look up the account's entries of `slots`,
    /// while the caller waits for the network: a login's save of the session then goes
    /// straight to the item, and forgetting a password that is not there asks nothing more.
    fn warm_up(&self, account: &str, slots: &[Slot]) {
        let r = self.with(|o| {
            for slot in slots {
                let user = slot.user(account);
                // known already (an owner's earlier warm-up, or the item its last change
                // set in place): nothing asked of the keyring again
                if o.known
                    .get(&user)
                    .is_some_and(|(at, _)| at.elapsed() < KNOWN_FOR)
                {
                    continue;
                }
                let found = o.search(self.attributes(&user))?;
                o.known.insert(user, (std::time::Instant::now(), found));
            }
            Ok(())
        });
        if let Err(e) = r {
            log::debug!("the keyring is not reachable yet: {e}");
        }
    }

    /// The service name and the session bus (the address zbus connects to).
    fn identity(&self) -> Option<String> {
        let bus = match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            Ok(a) if !a.is_empty() => a,
            _ => format!(
                "unix:path={}/bus",
                std::env::var("XDG_RUNTIME_DIR").unwrap_or_default()
            ),
        };
        Some(format!("secret-service {} {bus}", self.service))
    }

    fn delete(&self, slot: Slot, account: &str) -> Result<(), StoreError> {
        let user = slot.user(account);
        // nothing stored: nothing more asked of the keyring
        self.with(|o| {
            let found = self.lookup(o, &user, true)?;
            for item in found.unlocked.iter().chain(found.locked.iter()) {
                match o.delete(item) {
                    // gone since it was looked up (another program): deleted all the same
                    Err(e) if is_gone(&e) => {}
                    r => r?,
                }
            }
            // known absent now: the next login's forgetting of it asks nothing
            o.known
                .insert(user.clone(), (std::time::Instant::now(), Found::default()));
            Ok(())
        })
    }
}

/// Our key pair: a 256-bit private exponent and 2 raised to it.
fn keypair() -> (BigUint, Vec<u8>) {
    use rand::RngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    // never 0 or 1
    bytes[0] |= 0x80;
    let private = BigUint::from_bytes_be(bytes.as_ref());
    let public = BigUint::from(2u32).modpow(&private, prime());
    (private, public.to_bytes_be())
}

/// The session key: HKDF-SHA256 (no salt, no info) of the shared secret, padded to the
/// prime's 128 bytes, to 16 bytes.
fn shared_key(private: &BigUint, server_public: &[u8]) -> R<[u8; 16]> {
    let p = prime();
    let y = BigUint::from_bytes_be(server_public);
    let one = BigUint::from(1u32);
    if y <= one || y >= p - &one {
        return Err(Failure::Protocol(
            "the keyring sent an invalid public key".into(),
        ));
    }
    let shared = y.modpow(private, p).to_bytes_be();
    let mut ikm = zeroize::Zeroizing::new(vec![0u8; 128 - shared.len()]);
    ikm.extend_from_slice(&shared);
    let mut key = [0u8; 16];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &ikm)
        .expand(&[], &mut key)
        .map_err(|_| Failure::Protocol("cannot derive the session key".into()))?;
    Ok(key)
}

fn encrypt(key: &[u8; 16], plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    use rand::RngCore;
    let mut iv = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let value = cbc::Encryptor::<aes::Aes128>::new(key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain);
    (iv.to_vec(), value)
}

fn decrypt(key: &[u8; 16], iv: &[u8], value: &[u8]) -> R<Vec<u8>> {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    let bad = || Failure::Protocol("the keyring sent a secret that does not decrypt".into());
    let iv: [u8; 16] = iv.try_into().map_err(|_| bad())?;
    cbc::Decryptor::<aes::Aes128>::new(key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(value)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_of_the_exchange_agree_and_secrets_round_trip() {
        // the keyring's side, played with a full-size exponent as gnome-keyring uses
        let (ours, our_public) = keypair();
        let theirs = BigUint::from_bytes_be(&[0x5a; 128]) % prime();
        let their_public = BigUint::from(2u32).modpow(&theirs, prime()).to_bytes_be();
        let k1 = shared_key(&ours, &their_public).unwrap();
        let shared = BigUint::from_bytes_be(&our_public)
            .modpow(&theirs, prime())
            .to_bytes_be();
        let mut ikm = vec![0u8; 128 - shared.len()];
        ikm.extend_from_slice(&shared);
        let mut k2 = [0u8; 16];
        hkdf::Hkdf::<sha2::Sha256>::new(None, &ikm)
            .expand(&[], &mut k2)
            .unwrap();
        assert_eq!(k1, k2);
        assert!(our_public.len() <= 128 && our_public.len() > 100);
        let (iv, ct) = encrypt(&k1, b"refresh-token-value");
        assert_eq!(ct.len() % 16, 0);
        assert_ne!(&ct[..], b"refresh-token-value");
        assert_eq!(decrypt(&k1, &iv, &ct).unwrap(), b"refresh-token-value");
        // a wrong key never gives the secret back; it mostly fails on the padding, but
        // one time in about 256 random bytes end in a valid pad, so both outcomes count
        match decrypt(&[0u8; 16], &iv, &ct) {
            Err(_) => {}
            Ok(other) => assert_ne!(&other[..], b"refresh-token-value"),
        }
        // a public key outside (1, p - 1) is refused
        assert!(shared_key(&ours, &[1]).is_err());
        assert!(shared_key(&ours, &(prime() - 1u32).to_bytes_be()).is_err());
        // the group's prime is RFC 2409's: 1024 bits, 2^1024 - 2^960 - 1 + 2^64 * (…)
        assert_eq!(prime().bits(), 1024);
        assert_eq!(
            prime() % 24u32,
            BigUint::from(23u32),
            "as a safe prime of its form is"
        );
    }
}
