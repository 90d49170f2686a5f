//! The session facade: the one API the CLI, the daemon, the tray and (through the control
//! socket) the windows call. Network work is async; file and keyring work runs on tokio's
//! blocking threads, never on an async worker.

use crate::awsconfig::OurProfile;
use crate::awsfile::{AwsConfigFile, CredentialsFile, PreparedUpdate};
use crate::claims::{self, AccessClaims};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Account, Config, CredentialMode, Service};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, EventKind, EventLog};
use crate::idp::{IdpClient, IdpSettings, TokenSet};
use crate::secret::Secret;
use crate::state::{self, AccountStatus, Overlay};
use crate::store::{self, FallbackStore, SecretStore, SessionRecord, Slot};
use crate::sts::{self, AssumeRequest, Credentials, StsClient};
use crate::timeline::HeldKey;
use crate::values::{AccountName, ProfileName, StsDuration};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A login as asked for by a user.
#[derive(Debug, Default, Clone)]
pub struct LoginRequest {
    pub account: Option<String>,
    pub email: Option<String>,
    pub password: Option<Secret>,
    pub profile: Option<ProfileName>,
    pub duration_seconds: Option<StsDuration>,
    pub role_arn: Option<String>,
    /// Keep the password in the keyring (opt-in); `None` leaves the setting as it is.
    pub remember_password: Option<bool>,
    /// Replace a `services` or `credential_process` line of the user's in our profile of
    /// `~/.aws/config` instead of refusing.
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoginOutcome {
    pub account: AccountName,
    pub email: String,
    pub profile: ProfileName,
    pub role_arn: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub session_expires_at: Option<OffsetDateTime>,
    /// Set when no keyring was reachable: the session lives in this process only.
    pub keyring_unavailable: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefreshOutcome {
    pub account: AccountName,
    pub profile: ProfileName,
    pub role_arn: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub session_expires_at: Option<OffsetDateTime>,
}

pub struct Session {
    pub config_path: PathBuf,
    store: Arc<FallbackStore>,
    clock: Arc<dyn Clock>,
    /// HTTP clients by CA bundle and whether they trust the system's roots (one, normally):
    /// built once, connections reused.
    http: Mutex<HashMap<(Option<PathBuf>, bool), reqwest::Client>>,
    credentials_path: Option<PathBuf>,
    aws_config_path: Option<PathBuf>,
    /// What happened (logins, renewals, failures), for the owner's status window.
    events: EventLog,
    /// One change of an account's session at a time (`Session::hold`).
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// An account's turn to change its session (`Session::hold`), until dropped.
pub(crate) struct Turn {
    /// Released first (fields drop in order).
    _across: Option<crate::fsio::FileLock>,
    _here: tokio::sync::OwnedMutexGuard<()>,
}

/// How long a turn waits for another process's: longer than a renewal can take (the IdP's
/// and STS's whole-request timeouts); after it the change is made all the same (a process
/// stopped while holding the lock must not stop every login).
const TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The account's turn among this user's processes: free at once normally (one open and one
/// `flock`, on this thread); waited for off the async workers only when another has it.
/// `None` (said in the debug log) when the lock cannot be had: the change goes ahead.
async fn across_processes(account: &str) -> Option<crate::fsio::FileLock> {
    #[cfg(unix)]
    {
        // beside the control socket (this user's private runtime folder), named by a hash
        // of the account name (any name makes a file name); FNV-1a, the same in every build
        // (every process must find the same file)
        let hash = account.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let path = crate::fsio::parent_dir(&crate::paths::control_socket())
            .join(format!("turn-{hash:016x}.lock"));
        let opened = crate::fsio::create_own_private_dir(crate::fsio::parent_dir(&path))
            .and_then(|()| crate::fsio::LockFile::at(&path));
        let waited = match opened.and_then(crate::fsio::LockFile::try_lock) {
            Ok(Ok(held)) => return Some(held),
            Ok(Err(busy)) => tokio::task::spawn_blocking(move || busy.lock(TURN_WAIT))
                .await
                .unwrap_or_else(|e| Err(Error::local_io(format!("the wait failed: {e}")))),
            Err(e) => Err(e),
        };
        waited
            .map_err(|e| log::debug!("account {account}: changed without its turn: {e}"))
            .ok()
    }
    #[cfg(not(unix))]
    {
        let _ = account;
        None
    }
}

/// Whether credentials are written by a renewal or by a login (which may `force` our
/// sections of `~/.aws/config` over the user's).
#[derive(Debug, Clone, Copy)]
enum Renewal {
    Yes,
    /// `aws_current`: our sections of `~/.aws/config` were found as they would be written
    /// (while STS answered), so the file is not opened again.
    No {
        force: bool,
        aws_current: bool,
    },
}

/// Our sections of `~/.aws/config` for `acct` and `role`; `warn`: log the services whose
/// endpoint cannot be made (once per write, not again for a look ahead).
fn our_profile(
    acct: &Account,
    role: &str,
    credential_process: Option<String>,
    warn: bool,
) -> OurProfile {
    let mut endpoints = Vec::new();
    for service in Service::ALL {
        match acct.endpoint_for(service, role) {
            Ok(e) => endpoints.push((service, e.to_string())),
            Err(e) if warn => log::warn!("account {}: {e}", acct.name),
            Err(_) => {}
        }
    }
    OurProfile {
        profile: acct.profile.clone(),
        account: acct.name.clone(),
        region: acct.region.clone(),
        endpoints,
        credential_process,
    }
}

/// Run blocking work (files, keyring) on tokio's blocking threads; a panic there is ours.
pub(crate) async fn off_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Polls `f` until its request is out (twice at most, the I/O driver turned between: the
/// connect, then the write), so that what the caller starts next does not delay it; its
/// output if it is already done.
async fn sent<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    use std::task::Poll;
    for turn in 0..2 {
        if turn > 0 {
            tokio::task::yield_now().await;
        }
        let polled = std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx)));
        if let Poll::Ready(out) = polled.await {
            return Some(out);
        }
    }
    None
}

impl Session {
    pub fn new(config_path: PathBuf, store: Arc<FallbackStore>, clock: Arc<dyn Clock>) -> Self {
        Session {
            config_path,
            store,
            clock,
            http: Mutex::new(HashMap::new()),
            credentials_path: None,
            aws_config_path: None,
            events: EventLog::default(),
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// The account's turn to change its session (the keyring's record, the profile's keys):
    /// a login's end, a renewal, a keep-alive and a logout take turns, in this process (in
    /// the order they asked) and across this user's processes (a lock file beside the control
    /// socket). So a renewal that began before a login or a logout cannot end after it and
    /// put back the older session's record and keys; it waits, then renews what it finds.
    /// Never held while a user or a browser is waited for.
    pub(crate) async fn hold(&self, account: &str) -> Turn {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(account.to_owned()).or_default().clone()
        };
        let here = turn.lock_owned().await;
        Turn {
            _across: across_processes(account).await,
            _here: here,
        }
    }

    /// Use this credentials file instead of `AWS_SHARED_CREDENTIALS_FILE` /
    /// `~/.aws/credentials`, and the `config` beside it instead of `AWS_CONFIG_FILE` /
    /// `~/.aws/config`.
    pub fn with_credentials_file(mut self, path: PathBuf) -> Self {
        self.aws_config_path = Some(crate::fsio::parent_dir(&path).join("config"));
        self.credentials_path = Some(path);
        self
    }

    /// The config at its default path, the system keyring, the system clock.
    pub fn from_env() -> Result<Self> {
        Ok(Session::new(
            crate::paths::config_file()?,
            Arc::new(FallbackStore::system()),
            Arc::new(SystemClock),
        ))
    }

    /// What decides where and how this process logs in, as a digest: its config, credentials
    /// and `~/.aws/config` paths, its keyring, and the environment the core and its HTTP
    /// client read (every `ASTRAN_` variable but the socket's and the log's, the CA bundle,
    /// the proxies). Two processes with the same setup make the same login, so a command
    /// may have the running owner make its login (`login_check`, `login`); the values
    /// themselves (a proxy's URL may hold a password) never leave the process.
    pub fn setup_fingerprint(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        const HTTP_VARS: &[&str] = &[
            "AWS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ];
        const NOT_THE_LOGINS: &[&str] = &["ASTRAN_CONTROL_SOCKET", "ASTRAN_LOG_FILE"];
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
            .filter(|(k, _)| {
                let k = k.to_string_lossy();
                (k.starts_with("ASTRAN_") && !NOT_THE_LOGINS.contains(&k.as_ref()))
                    || HTTP_VARS.contains(&k.as_ref())
            })
            .collect();
        env.sort();
        let mut h = Sha256::new();
        let mut part = |name: &str, value: &[u8]| {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value);
        };
        part("config", self.config_path.as_os_str().as_encoded_bytes());
        part(
            "credentials",
            self.credentials_file()?.path.as_os_str().as_encoded_bytes(),
        );
        part(
            "aws_config",
            self.aws_config_file()?.path.as_os_str().as_encoded_bytes(),
        );
        part(
            "keyring",
            self.store.identity().unwrap_or_default().as_bytes(),
        );
        for (k, v) in &env {
            part(&k.to_string_lossy(), v.as_encoded_bytes());
        }
        Ok(h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>())
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn store(&self) -> &Arc<FallbackStore> {
        &self.store
    }

    /// What happened in this process, newest last.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Note an event of `account` now.
    pub fn note(&self, account: &str, kind: EventKind, words: String) {
        self.events.push(Event {
            at: self.clock.now(),
            account: account.to_owned(),
            kind,
            words,
        });
    }

    /// Note how a login ended.
    pub(crate) async fn note_login(
        &self,
        account: Option<&str>,
        how: &str,
        r: &Result<LoginOutcome>,
    ) {
        match r {
            Ok(o) => self.note(
                &o.account,
                EventKind::Login,
                format!(
                    "logged in as {} ({how}); profile {} written",
                    o.email, o.profile
                ),
            ),
            Err(e) => {
                self.note_failure(account, format!("login failed: {e}"))
                    .await
            }
        }
    }

    /// The HTTP client for talking to the account's IdP and STS (and `services`' endpoints,
    /// and `extra`): built once per CA bundle, connections reused. The system's root
    /// certificates (some 140 files) are loaded only when one of those is https.
    pub(crate) fn http_for(
        &self,
        acct: &Account,
        services: &[Service],
        extra: Option<&str>,
    ) -> Result<reqwest::Client> {
        let tls = acct.needs_tls(services) || extra.is_some_and(|u| !u.starts_with("http://"));
        let key = (acct.ca_bundle.clone(), tls);
        let mut clients = self.http.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let c = crate::http::client(acct.ca_bundle.as_deref(), tls)?;
        clients.insert(key, c.clone());
        Ok(c)
    }

    /// The client for the IdP and STS.
    pub(crate) fn http(&self, acct: &Account) -> Result<reqwest::Client> {
        self.http_for(acct, &[Service::Sts], None)
    }

    /// The config file as it is now (read off the async workers).
    pub async fn config(&self) -> Result<Config> {
        let path = self.config_path.clone();
        off_worker(move || Config::load_effective(&path)).await
    }

    pub async fn account(&self, name: Option<&str>) -> Result<Account> {
        let cfg = self.config().await?;
        cfg.account(&cfg.pick_name(name)?)
    }

    /// The accounts to look after: the configured ones, or `default`.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        self.config().await?.all_accounts()
    }

    pub fn credentials_file(&self) -> Result<CredentialsFile> {
        match &self.credentials_path {
            Some(p) => Ok(CredentialsFile::new(p.clone())),
            None => CredentialsFile::from_env(),
        }
    }

    /// Keyring work, off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> T + Send + 'static,
    ) -> T {
        let store = self.store.clone();
        off_worker(move || f(store.as_ref())).await
    }

    /// A client's change to one of an account's keyring entries, made with this process's
    /// open keyring (`store::Delegate`, the `keyring_change` request). Refused unless this
    /// process holds the keyring the client named, and made in the keyring or not at all.
    pub async fn change_secret(
        &self,
        keyring: &str,
        slot: Slot,
        account: &AccountName,
        value: Option<Secret>,
        undoable: bool,
    ) -> Result<()> {
        self.holds_keyring(keyring)?;
        // no turn taken here: the command asking holds the account's turn across processes
        // for the change it is making (waiting for it here would wait for the caller)
        let (store, a) = (self.store.clone(), account.to_string());
        off_worker(move || store.change_in_keyring(slot, &a, value.as_ref(), undoable)).await?;
        Ok(())
    }

    /// A client's undo of its last undoable `change_secret` (the `keyring_undo` request).
    pub async fn undo_secret(
        &self,
        keyring: &str,
        slot: Slot,
        account: &AccountName,
    ) -> Result<()> {
        self.holds_keyring(keyring)?;
        let (store, a) = (self.store.clone(), account.to_string());
        off_worker(move || store.undo_in_keyring(slot, &a)).await?;
        Ok(())
    }

    fn holds_keyring(&self, keyring: &str) -> Result<()> {
        if self.store.identity().as_deref() != Some(keyring) {
            return Err(Error::unavailable(
                "this agent does not hold that keyring open; change it directly",
            ));
        }
        Ok(())
    }

    /// Credentials-file work (reads, and writes under the lock), off the async workers.
    pub(crate) async fn files<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CredentialsFile) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let file = self.credentials_file()?;
        off_worker(move || f(&file)).await
    }

    pub(crate) fn idp(&self, http: reqwest::Client) -> IdpClient {
        IdpClient::new(http, self.clock.clone())
    }

    pub async fn load_record(&self, account: &str) -> Result<Option<SessionRecord>> {
        let a = account.to_owned();
        self.blocking(move |s| store::load_session(s, &a)).await
    }

    async fn save_record(&self, account: &str, r: SessionRecord) -> Result<()> {
        let a = account.to_owned();
        self.blocking(move |s| store::save_session(s, &a, &r)).await
    }

    /// The password remembered for `account`, if the user opted in.
    pub async fn remembered_password(&self, account: &str) -> Result<Option<Secret>> {
        let a = account.to_owned();
        Ok(self.blocking(move |s| s.get(Slot::Password, &a)).await?)
    }

    /// The account a login acts on, with the request's overrides, checked before anything
    /// is asked of the user or the IdP: a profile of the user's in `~/.aws/config` is not
    /// taken over, and `process` mode needs a keyring. `password`: a password login, which
    /// remembers or forgets the password at its end. One trip to a blocking thread (the
    /// config, then `~/.aws/config`), which answers, then warms the keyring up.
    pub async fn prepare_login(&self, req: &LoginRequest, password: bool) -> Result<Account> {
        let (path, account, force) = (self.config_path.clone(), req.account.clone(), req.force);
        let (profile, duration) = (req.profile.clone(), req.duration_seconds);
        let (aws_config, store) = (self.aws_config_file()?, self.store.clone());
        // the account goes back as soon as it is checked; the same thread then warms the
        // keyring up (no second thread started on the way to the password and the IdP)
        let (tx, rx) = tokio::sync::oneshot::channel();
        let trip = tokio::task::spawn_blocking(move || {
            let checked = (move || -> Result<(Account, Vec<Slot>)> {
                let cfg = Config::load_effective(&path)?;
                let name = cfg.pick_name(account.as_deref())?;
                let mut acct = cfg.account(&name)?;
                // the keyring's connection and session (a Diffie-Hellman exchange on both
                // sides), and the lookup of the entries the login's end changes, are made while
                // the user types and the IdP and STS answer, not after
                let mut slots = vec![Slot::Session];
                if password {
                    slots.push(Slot::Password);
                }
                if acct.credential_mode == CredentialMode::Process {
                    slots.push(Slot::Credentials);
                }
                if let Some(p) = profile {
                    acct.profile = p;
                }
                if let Some(d) = duration {
                    acct.duration_seconds = d;
                }
                let writes_config =
                    acct.write_aws_config || acct.credential_mode == CredentialMode::Process;
                if writes_config && !force {
                    aws_config.check(&acct.profile, &acct.name)?;
                }
                Ok((acct, slots))
            })();
            match checked {
                Ok((acct, slots)) => {
                    let name = acct.name.to_string();
                    let _ = tx.send(Ok(acct));
                    store.warm_up(&name, &slots);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let acct = match rx.await {
            Ok(r) => r?,
            // the trip panicked before it answered
            Err(_) => match trip.await {
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                _ => {
                    return Err(Error::unavailable(
                        "the login could not be prepared: this process is shutting down",
                    ))
                }
            },
        };
        if acct.credential_mode == CredentialMode::Process {
            if let Some(why) = self.store.degraded() {
                return Err(Error::local_io(format!(
                    "credential_mode = \"process\" keeps the credentials in the system keyring, and none is reachable ({why}); use credential_mode = \"static\""
                )));
            }
        }
        Ok(acct)
    }

    /// Password grant → role → STS → profile written → session kept.
    pub async fn login(&self, req: LoginRequest) -> Result<LoginOutcome> {
        let r = match self.prepare_login(&req, true).await {
            Ok(acct) => self.password_login(acct, &req).await,
            Err(e) => Err(e),
        };
        self.note_login(req.account.as_deref(), "password", &r)
            .await;
        r
    }

    /// [`Session::login`] of an account [`Session::prepare_login`] gave for the same
    /// request (the CLI checks it before it asks for the password).
    pub async fn login_prepared(&self, acct: Account, req: LoginRequest) -> Result<LoginOutcome> {
        let r = self.password_login(acct, &req).await;
        self.note_login(req.account.as_deref(), "password", &r)
            .await;
        r
    }

    async fn password_login(&self, acct: Account, req: &LoginRequest) -> Result<LoginOutcome> {
        let name = acct.name.clone();
        let email = req.email.clone().or(acct.email.clone()).ok_or_else(|| {
            Error::config(format!(
                "no email for account {name}; pass --email or set ASTRAN_USERNAME"
            ))
        })?;
        let password = match req.password.clone() {
            Some(p) => p,
            None => self
                .remembered_password(&name)
                .await?
                .ok_or_else(|| Error::config("no password given"))?,
        };
        if password.is_empty() {
            return Err(Error::config("the password is empty"));
        }
        let http = self.http(&acct)?;
        let tokens = self
            .idp(http)
            .password_grant(&idp_settings(&acct), &email, &password)
            .await?;
        self.complete_login(acct, req, Some(email), tokens, Some(password))
            .await
    }

    /// Every login's tail, whatever gave the tokens: role → STS → profile written → session
    /// kept → config updated. `email` is the one typed (a password login), else the token's;
    /// `password` is remembered or forgotten as the account says (a password login only).
    pub(crate) async fn complete_login(
        &self,
        acct: Account,
        req: &LoginRequest,
        email: Option<String>,
        tokens: TokenSet,
        password: Option<Secret>,
    ) -> Result<LoginOutcome> {
        let name = acct.name.clone();
        let _turn = self.hold(name.as_str()).await;
        let http = self.http(&acct)?;
        let claims = decode_claims(&tokens)?;
        let email = email.or(claims.email.clone()).ok_or_else(|| {
            Error::refused(
                "the access token names no user (no email or preferred_username claim), so no STS session name can be made; ask your administrator to map the email claim",
            )
        })?;
        let role = pick_role(
            claims.roles.as_deref(),
            req.role_arn.as_deref(),
            acct.role_arn.as_deref(),
        )?;
        let sts_endpoint = acct.sts_endpoint_for(&role)?;

        let record = tokens.refresh_token.clone().map(|rt| SessionRecord {
            refresh_token: rt,
            refresh_expires_at: tokens.refresh_expires_at().map(|t| t.unix_timestamp()),
            idle_seconds: (tokens.refresh_expires_in > 0).then_some(tokens.refresh_expires_in),
            started_at: self.clock.now().unix_timestamp(),
            refreshed_at: Some(tokens.obtained_at.unix_timestamp()),
            email: email.clone(),
            role_arn: role.clone(),
            sts_endpoint: sts_endpoint.clone(),
            offline: tokens.offline,
        });
        // STS's request goes out first: what starts beside it below (the keyring's changes,
        // the look at the config) then takes no CPU before it is sent
        let (sts_role, sts_email) = (role.clone(), email.clone());
        let mut sts = std::pin::pin!(self.assume(
            &http,
            &sts_endpoint,
            &sts_role,
            &sts_email,
            &tokens,
            acct.duration_seconds,
        ));
        let sts_done = sent(&mut sts).await;
        // The login's keyring changes (the session, the password remembered or forgotten)
        // are made while STS answers, by a running agent holding the keyring open
        // (`store::Delegate`) when there is one, else here; what they replace is kept (never
        // sent back) to put back if STS refuses. The keyring daemon's file write is then off
        // the critical path, and so is the look-up of the entries (made then, not while the
        // IdP answers: CPU the IdP wants). Without a reachable keyring the changes are made
        // after STS has answered, beside the files (in memory).
        let remember = req.remember_password.unwrap_or(acct.remember_password);
        let session_json = record.as_ref().map(store::session_json).transpose()?;
        let (store, n, pw) = (self.store.clone(), name.clone(), password.clone());
        let early = tokio::task::spawn_blocking(move || {
            let session = match &session_json {
                Some(json) => store.set_undoable(Slot::Session, &n, Some(json)).is_some(),
                None => true,
            };
            let password = match &pw {
                Some(p) => store
                    .set_undoable(Slot::Password, &n, remember.then_some(p))
                    .is_some(),
                None => true,
            };
            (session, password)
        });
        // What the login's end changes in the config (the email and role found, the
        // request's overrides), and whether it and our sections of `~/.aws/config` already say
        // so: asked while STS answers, so that after it only the writes needed are made.
        let several_roles = claims.roles.as_ref().is_some_and(|r| r.len() > 1);
        let (req_email, req_profile, req_duration, req_role, req_remember) = (
            req.email.is_some(),
            req.profile.clone(),
            req.duration_seconds,
            req.role_arn.clone(),
            req.remember_password,
        );
        let (save_email, role_for_cfg) = (email.clone(), role.clone());
        let edit = move |a: &mut config::AccountConfig| {
            if a.email.is_none() || req_email {
                a.email = Some(save_email.clone());
            }
            if req_role.is_some() || (several_roles && a.role_arn.is_none()) {
                a.role_arn = Some(role_for_cfg.clone());
            }
            if let Some(p) = &req_profile {
                a.profile = Some(p.clone().into());
            }
            if let Some(d) = req_duration {
                a.duration_seconds = Some(d.seconds());
            }
            if let Some(r) = req_remember {
                a.remember_password = Some(r);
            }
        };
        let (cfg_path, cfg_name) = (self.config_path.clone(), name.clone());
        let aws_file = self.aws_config_file()?;
        let static_aws = (acct.credential_mode == CredentialMode::Static && acct.write_aws_config)
            .then(|| our_profile(&acct, &role, None, false));
        let (pre_path, pre_name, pre_edit, force) =
            (cfg_path.clone(), cfg_name.clone(), edit.clone(), req.force);
        // and the credentials file's write made ready (the lock file opened, the temp file
        // created beside it), so that after STS only the write itself is left
        let ready_file = (acct.credential_mode == CredentialMode::Static)
            .then(|| self.credentials_file())
            .transpose()?;
        let current = tokio::task::spawn_blocking(move || {
            let ready = ready_file.and_then(|f| {
                f.prepare_update()
                    .map_err(|e| {
                        log::debug!("the credentials file's write was not made ready: {e}")
                    })
                    .ok()
            });
            let config = config::account_edit_is_noop(&pre_path, &pre_name, pre_edit);
            let aws = static_aws.is_some_and(|ours| aws_file.is_current(&ours, force));
            (config, aws, ready)
        });
        let creds = match sts_done {
            Some(r) => r,
            None => sts.await,
        };
        let creds = match creds {
            Ok(c) => c,
            Err(e) => {
                let (session_kept, password_kept) = early
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                let (store, n) = (self.store.clone(), name.clone());
                let undone = off_worker(move || {
                    let mut slots = Vec::new();
                    if session_kept && record.is_some() {
                        slots.push(Slot::Session);
                    }
                    if password_kept && password.is_some() {
                        slots.push(Slot::Password);
                    }
                    slots.into_iter().try_for_each(|slot| store.undo(slot, &n))
                })
                .await;
                if let Err(ue) = undone {
                    log::warn!("the keyring's previous entries could not be put back: {ue}");
                }
                return Err(e);
            }
        };
        // Nothing else is kept before STS has answered, so a refused login leaves the keyring
        // as it found it. From here the keyring's changes and the files are independent, and
        // made at once: the files do not wait for the agent's changes to end (its keyring
        // daemon's write may outlast STS), and what the agent did not make is made here, on
        // the connection and session opened while the IdP and STS answered (`prepare_login`).
        let expires_at = creds.expiration.unwrap_or_else(|| self.clock.now());
        let n = name.clone();
        let keyring = async {
            let (session_kept, password_kept) = early
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let record = record.filter(|_| !session_kept);
            let password = password.filter(|_| !password_kept);
            if record.is_none() && password.is_none() {
                return (None, None);
            }
            self.blocking(move |s| {
                let saved = record.map(|rec| store::save_session(s, &n, &rec));
                let password =
                    password.map(|p| store::put(s, Slot::Password, &n, remember.then_some(&p)));
                (saved, password)
            })
            .await
        };

        // The files: the credentials, then the config. A failure to write the credentials
        // fails the login before the config is touched.
        let (config_current, aws_current, ready) = current.await.unwrap_or((false, false, None));
        let files = async {
            let when = Renewal::No {
                force: req.force,
                aws_current,
            };
            self.store_credentials(&acct, &role, &creds, when, ready)
                .await?;
            // (no trip to a blocking thread when the config already says it all)
            if config_current {
                return Ok(Ok(()));
            }
            Ok::<_, Error>(
                off_worker(move || config::update_account(&cfg_path, &cfg_name, edit)).await,
            )
        };
        let (files, (saved, password)) = tokio::join!(files, keyring);
        let config = files?;
        let mut keyring_unavailable = None;
        if let Some(Err(e)) = saved {
            log::warn!("the login session could not be saved: {e}");
            keyring_unavailable = Some(e.to_string());
        }
        if let Some(why) = self.store.degraded() {
            keyring_unavailable = Some(why);
        }
        if let Some(Err(e)) = password {
            log::warn!(
                "the password could not be {}: {e}",
                if remember { "remembered" } else { "forgotten" }
            );
        }
        config.unwrap_or_else(|e| log::warn!("the config file was not updated: {e}"));
        Ok(LoginOutcome {
            account: name,
            email,
            profile: acct.profile,
            role_arn: role,
            expires_at,
            session_expires_at: tokens.refresh_expires_at(),
            keyring_unavailable,
        })
    }

    async fn assume(
        &self,
        http: &reqwest::Client,
        endpoint: &str,
        role: &str,
        email: &str,
        tokens: &TokenSet,
        duration: StsDuration,
    ) -> Result<Credentials> {
        let name = sts::session_name(email);
        StsClient::new(http.clone())
            .assume_role_with_web_identity(&AssumeRequest {
                endpoint,
                role_arn: role,
                session_name: &name,
                web_identity_token: &tokens.access_token,
                duration_seconds: duration.seconds(),
            })
            .await
    }

    pub fn aws_config_file(&self) -> Result<AwsConfigFile> {
        match &self.aws_config_path {
            Some(p) => Ok(AwsConfigFile::new(p.clone())),
            None => AwsConfigFile::from_env(),
        }
    }

    /// Where the tools will find `c`: our profile of the credentials file (static mode) or the
    /// keyring behind a `credential_process` line (process mode; never both, since botocore
    /// takes the file's keys over the process), and our sections of `~/.aws/config`. On a
    /// renewal in static mode, a profile the user has since taken over in `~/.aws/config` is
    /// left as it is and said in the log (the keys are renewed all the same); at a login it
    /// is an error.
    async fn store_credentials(
        &self,
        acct: &Account,
        role: &str,
        c: &Credentials,
        when: Renewal,
        ready: Option<PreparedUpdate>,
    ) -> Result<()> {
        let force = matches!(when, Renewal::No { force: true, .. });
        let aws_current = matches!(
            when,
            Renewal::No {
                aws_current: true,
                ..
            }
        );
        let config = |r: Result<()>| match (r, when) {
            (Err(e), Renewal::Yes) => {
                log::warn!("account {}: ~/.aws/config not updated: {e}", acct.name);
                Ok(())
            }
            (r, _) => r,
        };
        match acct.credential_mode {
            CredentialMode::Static => {
                self.write_profile(&acct.profile, c, ready).await?;
                if acct.write_aws_config && !aws_current {
                    config(self.write_aws_config(acct, role, force, None).await)?;
                }
            }
            CredentialMode::Process => {
                let (n, kept) = (acct.name.clone(), c.clone());
                self.blocking(move |s| store::save_credentials(s, &n, &kept))
                    .await?;
                let exe = crate::paths::astran_creds_exe();
                let cp = crate::awsconfig::credential_process(&exe, &acct.name);
                // the line first, then the keys out of the credentials file
                self.write_aws_config(acct, role, force, Some(cp)).await?;
                let p = acct.profile.clone();
                self.files(move |f| f.remove_profile(&p)).await?;
            }
        }
        Ok(())
    }

    /// Our `[profile …]` and `[services …]` sections of `~/.aws/config`, for `role`.
    async fn write_aws_config(
        &self,
        acct: &Account,
        role: &str,
        force: bool,
        credential_process: Option<String>,
    ) -> Result<()> {
        let ours = our_profile(acct, role, credential_process, true);
        let file = self.aws_config_file()?;
        off_worker(move || file.write(&ours, force)).await
    }

    /// Our profile's keys in the credentials file, through the write made ready for them
    /// when there is one.
    async fn write_profile(
        &self,
        profile: &ProfileName,
        c: &Credentials,
        ready: Option<PreparedUpdate>,
    ) -> Result<()> {
        let (p, c) = (profile.clone(), c.clone());
        self.files(move |f| match ready {
            Some(r) => r.write_credentials(&p, &c),
            None => f.write_credentials(&p, &c),
        })
        .await
    }

    /// Use the held session: refresh-token grant, re-assume the role, rewrite the profile.
    pub async fn refresh(&self, account: Option<&str>) -> Result<RefreshOutcome> {
        let r = async {
            let acct = self.account(account).await?;
            let _turn = self.hold(acct.name.as_str()).await;
            let rec = self.load_record(&acct.name).await?;
            self.renew_in_turn(acct, rec).await
        }
        .await;
        self.note_renewal(account, &r).await;
        r
    }

    /// The scheduler's renewal of credentials it saw due, expiring at `seen`: once it is the
    /// account's turn, nothing is done (`Ok(None)`) if they are not the same any more (a
    /// login or a renewal wrote others meanwhile) or the session is gone (a logout). A
    /// renewal queued behind a login then makes no second one, and one queued behind a
    /// logout does not take the logout for a session that ended.
    pub async fn refresh_as_seen(
        &self,
        account: &str,
        seen: Option<OffsetDateTime>,
    ) -> Result<Option<RefreshOutcome>> {
        let made = async {
            let acct = self.account(Some(account)).await?;
            let _turn = self.hold(acct.name.as_str()).await;
            let rec = self.load_record(&acct.name).await?;
            let now = self.credentials_expiry(&acct).await?;
            if rec.is_none() || now != seen {
                log::debug!(
                    "account {}: {} meanwhile; no renewal",
                    acct.name,
                    if rec.is_none() {
                        "logged out"
                    } else {
                        "renewed"
                    }
                );
                return Ok(None);
            }
            self.renew_in_turn(acct, rec).await.map(Some)
        }
        .await;
        // nothing to note when nothing was done
        let Some(r) = made.transpose() else {
            return Ok(None);
        };
        self.note_renewal(Some(account), &r).await;
        r.map(Some)
    }

    async fn note_renewal(&self, account: Option<&str>, r: &Result<RefreshOutcome>) {
        match r {
            Ok(o) => self.note(
                &o.account,
                EventKind::Renewal,
                format!("profile {} renewed", o.profile),
            ),
            Err(e) => {
                self.note_failure(account, format!("renewal failed: {e}"))
                    .await
            }
        }
    }

    /// Note a failure of `account` (the default one when `None`).
    pub(crate) async fn note_failure(&self, account: Option<&str>, words: String) {
        let name = match self.account(account).await {
            Ok(a) => a.name.to_string(),
            Err(_) => account.unwrap_or(config::DEFAULT_ACCOUNT).to_owned(),
        };
        self.note(&name, EventKind::Failure, words);
    }

    /// The renewal itself, in the account's turn (`Session::hold`), of the session record
    /// `rec` read in it.
    async fn renew_in_turn(
        &self,
        acct: Account,
        rec: Option<SessionRecord>,
    ) -> Result<RefreshOutcome> {
        let (rec, tokens) = self.refresh_tokens(&acct, rec).await?;
        let claims = decode_claims(&tokens)?;
        let roles = claims.roles.unwrap_or_default();
        if !roles.iter().any(|r| r == &rec.role_arn) {
            return Err(Error::refused(format!(
                "the role {} is no longer in your token (it has: {}); log in again to pick one",
                rec.role_arn,
                if roles.is_empty() {
                    "none".into()
                } else {
                    roles.join(", ")
                }
            )));
        }
        let http = self.http_for(&acct, &[Service::Sts], Some(&rec.sts_endpoint))?;
        let creds = self
            .assume(
                &http,
                &rec.sts_endpoint,
                &rec.role_arn,
                &rec.email,
                &tokens,
                acct.duration_seconds,
            )
            .await?;
        self.store_credentials(&acct, &rec.role_arn, &creds, Renewal::Yes, None)
            .await?;
        Ok(RefreshOutcome {
            account: acct.name,
            profile: acct.profile,
            role_arn: rec.role_arn,
            expires_at: creds.expiration,
            session_expires_at: tokens.refresh_expires_at(),
        })
    }

    /// Refresh-token grant only: keeps the Keycloak session alive. `Ok(false)`: there was
    /// no session any more once it was the account's turn (a logout meanwhile), so nothing
    /// was done.
    pub async fn keep_alive(&self, account: &str) -> Result<bool> {
        let r = async {
            let acct = self.account(Some(account)).await?;
            let _turn = self.hold(acct.name.as_str()).await;
            let Some(rec) = self.load_record(&acct.name).await? else {
                log::debug!(
                    "account {}: logged out meanwhile; not kept alive",
                    acct.name
                );
                return Ok(false);
            };
            self.refresh_tokens(&acct, Some(rec)).await?;
            Ok(true)
        }
        .await;
        match &r {
            Ok(false) => {}
            Ok(true) => self.note(
                account,
                EventKind::KeepAlive,
                "login session kept alive".into(),
            ),
            Err(e) => self.note(
                account,
                EventKind::Failure,
                format!("keep-alive failed: {e}"),
            ),
        }
        r
    }

    /// `rec`: the account's session record, as read in its turn.
    async fn refresh_tokens(
        &self,
        acct: &Account,
        rec: Option<SessionRecord>,
    ) -> Result<(SessionRecord, TokenSet)> {
        let Some(mut rec) = rec else {
            return Err(Error::login_required(format!(
                "account {} has no login session{}; log in with `astran-creds login`",
                acct.name,
                self.store
                    .degraded()
                    .map(|w| format!(" (no keyring: {w})"))
                    .unwrap_or_default()
            )));
        };
        if let Some(end) = rec.refresh_expires_at {
            if end <= self.clock.now().unix_timestamp() {
                self.forget_session(&acct.name).await;
                return Err(Error::login_required(format!(
                    "the login session of account {} has ended; log in again",
                    acct.name
                )));
            }
        }
        let http = self.http(acct)?;
        let tokens = match self
            .idp(http)
            .refresh_grant(&idp_settings(acct), &rec.refresh_token)
            .await
        {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::LoginRequired => {
                self.forget_session(&acct.name).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if let Some(rt) = tokens.refresh_token.clone() {
            rec.refresh_token = rt;
        }
        rec.refresh_expires_at = tokens.refresh_expires_at().map(|t| t.unix_timestamp());
        rec.refreshed_at = Some(tokens.obtained_at.unix_timestamp());
        self.save_record(&acct.name, rec.clone()).await?;
        Ok((rec, tokens))
    }

    async fn forget_session(&self, account: &str) {
        let a = account.to_owned();
        if let Err(e) = self.blocking(move |s| s.delete(Slot::Session, &a)).await {
            log::warn!("cannot remove the ended session from the keyring: {e}");
        }
    }

    /// Forget the session (and the remembered password); with `remove_profile`, remove our
    /// profile from the credentials file.
    pub async fn logout(&self, account: Option<&str>, remove_profile: bool) -> Result<AccountName> {
        let r = self.end_session(account, remove_profile).await;
        match &r {
            Ok(a) => self.note(
                a,
                EventKind::Logout,
                if remove_profile {
                    "logged out; the profile was removed".into()
                } else {
                    "logged out".into()
                },
            ),
            Err(e) => {
                self.note_failure(account, format!("logout failed: {e}"))
                    .await
            }
        }
        r
    }

    async fn end_session(
        &self,
        account: Option<&str>,
        remove_profile: bool,
    ) -> Result<AccountName> {
        let acct = self.account(account).await?;
        let _turn = self.hold(acct.name.as_str()).await;
        let a = acct.name.clone();
        self.blocking(move |s| -> Result<()> {
            s.delete(Slot::Session, &a)?;
            s.delete(Slot::Password, &a)?;
            Ok(())
        })
        .await?;
        if remove_profile {
            let a = acct.name.clone();
            self.blocking(move |s| s.delete(Slot::Credentials, &a))
                .await?;
            let p = acct.profile.clone();
            self.files(move |f| f.remove_profile(&p)).await?;
            if acct.write_aws_config {
                let (file, p, r) = (
                    self.aws_config_file()?,
                    acct.profile.clone(),
                    acct.region.clone(),
                );
                off_worker(move || file.remove(&p, r.as_deref())).await?;
            }
        }
        Ok(acct.name)
    }

    /// When the account's credentials expire (the credentials file's
    /// `x_security_token_expires`, or the keyring's in process mode), if known.
    pub async fn credentials_expiry(&self, acct: &Account) -> Result<Option<OffsetDateTime>> {
        match acct.credential_mode {
            CredentialMode::Static => {
                let p = acct.profile.clone();
                self.files(move |f| f.credentials_expiry(&p)).await
            }
            CredentialMode::Process => Ok(self
                .read_credentials(acct)
                .await?
                .and_then(|c| c.expiration)),
        }
    }

    /// One account's status, with what the owner knows (`overlay`) laid over it, and the
    /// permanent keys its profiles hold (`keys`).
    pub async fn account_status(
        &self,
        acct: &Account,
        overlay: &Overlay,
        keys: &[HeldKey],
    ) -> Result<AccountStatus> {
        let rec = self.load_record(&acct.name).await?;
        let exp = self.credentials_expiry(acct).await?;
        Ok(state::derive(
            acct,
            rec.as_ref(),
            exp,
            overlay,
            keys,
            self.clock.now(),
        ))
    }

    /// Every account's status, with what the owner knows of each (`overlay`).
    pub async fn statuses(
        &self,
        overlay: impl Fn(&Account) -> Overlay,
    ) -> Result<Vec<AccountStatus>> {
        let keys = self.held_keys_or_none().await;
        let mut out = Vec::new();
        for acct in self.accounts().await? {
            let k = keys
                .get(acct.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            out.push(self.account_status(&acct, &overlay(&acct), k).await?);
        }
        Ok(out)
    }

    pub async fn status(&self) -> Result<Vec<AccountStatus>> {
        self.statuses(|_| Overlay::default()).await
    }

    /// The permanent keys held, by account; none when they cannot be read (said in the log:
    /// a status is still worth showing).
    pub async fn held_keys_or_none(&self) -> HashMap<String, Vec<HeldKey>> {
        self.held_keys().await.unwrap_or_else(|e| {
            log::warn!("cannot read the permanent keys' records: {e}");
            HashMap::new()
        })
    }

    /// The account's credentials when the credentials file holds them valid for `min_valid`
    /// more, read on the calling thread (the CLI's `credential-process` and `export` answer a
    /// cache hit so, before a runtime or any thread starts). `None` for anything else (process
    /// mode, missing, expiring, any error): [`Session::credentials`] then decides and says why.
    pub fn fresh_credentials_here(
        &self,
        account: Option<&str>,
        min_valid: time::Duration,
    ) -> Option<Credentials> {
        let cfg = Config::load_effective(&self.config_path).ok()?;
        let acct = cfg.account(&cfg.pick_name(account).ok()?).ok()?;
        if acct.credential_mode != CredentialMode::Static {
            return None;
        }
        let c = self
            .credentials_file()
            .ok()?
            .read_credentials(&acct.profile)
            .ok()??;
        let now = self.clock.now();
        c.expiration
            .is_none_or(|e| e - now >= min_valid)
            .then_some(c)
    }

    /// Credentials valid for at least `min_valid`, refreshing first when needed (for
    /// `credential-process` and `export`).
    pub async fn credentials(
        &self,
        account: Option<&str>,
        min_valid: time::Duration,
    ) -> Result<Credentials> {
        let acct = self.account(account).await?;
        let current = self.read_credentials(&acct).await?;
        let now = self.clock.now();
        if let Some(c) = &current {
            if c.expiration.is_none_or(|e| e - now >= min_valid) {
                return Ok(current.unwrap());
            }
        }
        match self.refresh(Some(&acct.name)).await {
            Ok(_) => self.read_credentials(&acct).await?.ok_or_else(|| {
                Error::local_io(format!(
                    "profile {} vanished from the credentials file",
                    acct.profile
                ))
            }),
            Err(e) => match current {
                Some(c) if c.expiration.is_some_and(|x| x > now) => {
                    log::warn!("refresh failed ({e}); using the credentials that are still valid");
                    Ok(c)
                }
                _ => Err(e),
            },
        }
    }

    async fn read_credentials(&self, acct: &Account) -> Result<Option<Credentials>> {
        match acct.credential_mode {
            CredentialMode::Static => {
                let p = acct.profile.clone();
                self.files(move |f| f.read_credentials(&p)).await
            }
            CredentialMode::Process => {
                let a = acct.name.clone();
                self.blocking(move |s| store::load_credentials(s, &a)).await
            }
        }
    }
}

pub(crate) fn idp_settings(a: &Account) -> IdpSettings {
    IdpSettings {
        token_url: a.token_url.to_string(),
        client_id: a.client_id.clone(),
        offline: a.offline,
    }
}

fn decode_claims(t: &TokenSet) -> Result<AccessClaims> {
    claims::decode(t.access_token.expose()).map_err(|e| {
        Error::refused(format!(
            "the identity provider sent an access token that cannot be read: {e}"
        ))
    })
}

/// Choose the role: the one asked for, else the configured one, else the only one.
pub fn pick_role(
    roles: Option<&[String]>,
    requested: Option<&str>,
    configured: Option<&str>,
) -> Result<String> {
    let Some(roles) = roles else {
        return Err(Error::refused(
            "your access token carries no role (claim \"https://aws.amazon.com/tags\".\"principal_tags\".\"role\" is missing); this login works for Astran root accounts only, ask your administrator",
        ));
    };
    if roles.is_empty() {
        return Err(Error::refused(
            "your access token carries an empty role list; ask your Astran administrator to grant you a role",
        ));
    }
    if let Some(r) = requested {
        return roles.iter().find(|x| *x == r).cloned().ok_or_else(|| {
            Error::refused(format!(
                "the role {r} is not in your token; you can use: {}",
                roles.join(", ")
            ))
        });
    }
    if let Some(r) = configured {
        if let Some(x) = roles.iter().find(|x| *x == r) {
            return Ok(x.clone());
        }
    }
    if roles.len() == 1 {
        return Ok(roles[0].clone());
    }
    Err(Error::role_choice(roles.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sessions with the same files and keyring have the same setup; another credentials
    /// file, config or keyring is another setup (whose login a running owner does not make).
    #[test]
    fn the_setup_names_the_files_and_the_keyring() {
        let d = tempfile::tempdir().unwrap();
        let session = |config: &str, creds: &str, store: FallbackStore| {
            Session::new(
                d.path().join(config),
                Arc::new(store),
                Arc::new(crate::clock::SystemClock),
            )
            .with_credentials_file(d.path().join(creds))
            .setup_fingerprint()
            .unwrap()
        };
        let memory = || FallbackStore::new(Box::new(store::MemoryStore::default()));
        let a = session("config.toml", "credentials", memory());
        assert_eq!(a, session("config.toml", "credentials", memory()));
        assert_eq!(a.len(), 64, "{a}");
        assert_ne!(a, session("config.toml", "other/credentials", memory()));
        assert_ne!(a, session("other.toml", "credentials", memory()));
        #[cfg(target_os = "linux")]
        {
            let keyring = FallbackStore::new(Box::new(
                store::secret_service::SecretServiceStore::new("astran-test-setup".into()),
            ));
            assert_ne!(a, session("config.toml", "credentials", keyring));
        }
    }

    #[test]
    fn fresh_credentials_are_read_here_and_anything_else_is_left_to_the_whole_way() {
        let d = tempfile::tempdir().unwrap();
        let now = crate::clock::parse_rfc3339("2026-06-01T12:00:00Z").unwrap();
        let session = Session::new(
            d.path().join("config.toml"),
            Arc::new(FallbackStore::new(Box::new(store::MemoryStore::default()))),
            Arc::new(crate::clock::ManualClock::new(now)),
        )
        .with_credentials_file(d.path().join("credentials"));
        let min = time::Duration::seconds(300);
        assert!(
            session.fresh_credentials_here(None, min).is_none(),
            "no file"
        );
        let write = |expires: &str| {
            let c = Credentials {
                access_key_id: "ASIAFRESH".into(),
                secret_access_key: Secret::new("S"),
                session_token: Some(Secret::new("T")),
                expiration: crate::clock::parse_rfc3339(expires),
            };
            let p = ProfileName::parse("astran").unwrap();
            session
                .credentials_file()
                .unwrap()
                .write_credentials(&p, &c)
                .unwrap();
        };
        write("2026-06-01T13:00:00Z");
        let c = session.fresh_credentials_here(None, min).expect("fresh");
        assert_eq!(c.access_key_id, "ASIAFRESH");
        // due for renewal (4 minutes left): the whole way, which renews
        write("2026-06-01T12:04:00Z");
        assert!(session.fresh_credentials_here(None, min).is_none());
        // process mode keeps them in the keyring; a bad config is for the whole way to say
        write("2026-06-01T13:00:00Z");
        std::fs::write(
            d.path().join("config.toml"),
            "[accounts.default]\ncredential_mode = \"process\"\n",
        )
        .unwrap();
        assert!(session.fresh_credentials_here(None, min).is_none());
        std::fs::write(d.path().join("config.toml"), "[accounts.default\n").unwrap();
        assert!(session.fresh_credentials_here(None, min).is_none());
        // an account whose profile the file does not hold
        std::fs::write(
            d.path().join("config.toml"),
            "[accounts.ops]\nprofile = \"ops\"\n",
        )
        .unwrap();
        assert!(session.fresh_credentials_here(Some("ops"), min).is_none());
        std::fs::write(d.path().join("config.toml"), "").unwrap();
        assert!(session.fresh_credentials_here(None, min).is_some());
    }

    #[test]
    fn role_choice() {
        let one = vec!["arn:demo:iam::1:root".to_string()];
        let two = vec![
            "arn:demo:iam::1:root".to_string(),
            "arn:demo:iam::2:root".to_string(),
        ];
        assert_eq!(pick_role(Some(&one), None, None).unwrap(), one[0]);
        let e = pick_role(Some(&two), None, None).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::RoleChoice);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("arn:demo:iam::2:root"));
        assert_eq!(pick_role(Some(&two), None, Some(&two[1])).unwrap(), two[1]);
        assert_eq!(
            pick_role(Some(&two), Some(&two[0]), Some(&two[1])).unwrap(),
            two[0]
        );
        assert_eq!(
            pick_role(Some(&two), Some("arn:x"), None)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Refused
        );
        assert_eq!(
            pick_role(None, None, None).unwrap_err().kind(),
            crate::ErrorKind::Refused
        );
        assert_eq!(
            pick_role(Some(&[]), None, None).unwrap_err().kind(),
            crate::ErrorKind::Refused
        );
    }
}
