//! Permanent access keys (the tutorial's second half): create, list, rotate, delete, and the
//! age reminders. The IAM calls are signed with the account's temporary credentials (renewed
//! first when they are about to expire, and once more on `ExpiredToken`). A key goes into its
//! own profile of the credentials file (`aws_access_key_id` and `aws_secret_access_key`
//! only), written with the same guarantees as the temporary one, and never renewed.
//!
//! Which profiles are ours is kept in `permanent-keys.json` beside the config file: the
//! account, the profile, the key id and its creation date (no secret). A profile is only
//! removed when that record says it is ours and the file still holds the recorded key.
//!
//! Rotation never leaves the profile without a working key: create → prove the new key works
//! (IAM is eventually consistent: retried for a bounded time) → write it → delete the old one.

use crate::awsconfig::OurProfile;
use crate::config::{Account, Service};
use crate::error::{Error, Result};
use crate::fsio::{self, FileLock};
use crate::iam::{Failure, IamClient, KeyList, NewKey};
use crate::session::{off_worker, Session};
use crate::sts::Credentials;
use crate::timeline::HeldKey;
use crate::values::{AccountName, ProfileName};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// The vendor's warning, said before a key is made.
pub const WARNING: &str = "Astran does not recommend permanent credentials: they need regular access key rotation. Use temporary credentials (`astran-creds login`) where you can.";

/// The temporary credentials must stay valid at least this long for a key operation.
const MIN_VALID: time::Duration = time::Duration::minutes(5);

/// How long a new key is tried before rotation gives up on it (`ASTRAN_KEY_PROBE_SECS`).
const PROBE_SECS: u64 = 60;

/// The record of a key we wrote into a profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyRecord {
    pub account: AccountName,
    pub profile: ProfileName,
    pub access_key_id: String,
    pub user_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When the last age reminder for it was shown (one a day, whoever shows it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub reminded_at: Option<OffsetDateTime>,
}

/// Age reminders come at most this often per key.
pub const REMIND_EVERY: time::Duration = time::Duration::days(1);

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordsFile {
    #[serde(default)]
    keys: Vec<KeyRecord>,
}

/// `keys create`'s and `keys rotate`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyWritten {
    pub account: AccountName,
    pub profile: ProfileName,
    pub access_key_id: String,
    pub user_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The key that was replaced and deleted (rotate).
    pub replaced: Option<String>,
    /// A signed call with the new key succeeded.
    pub verified: bool,
    /// What did not work but left the key usable (e.g. `~/.aws/config` not updated).
    pub warnings: Vec<String>,
}

/// One line of `keys list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyEntry {
    pub access_key_id: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub age_days: i64,
    /// Our profile that holds it.
    pub profile: Option<ProfileName>,
}

/// `keys list`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeysReport {
    pub account: AccountName,
    pub user_name: String,
    pub max_key_age_days: u32,
    /// Where `keys create` and `keys rotate` write without `--profile`.
    pub default_profile: ProfileName,
    pub keys: Vec<KeyEntry>,
}

/// `keys delete`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyDeleted {
    pub account: AccountName,
    pub access_key_id: String,
    /// Our profiles that held it, now removed.
    pub profiles_removed: Vec<ProfileName>,
    /// IAM had no such key any more (our profile was removed all the same).
    pub was_gone: bool,
}

/// A key held in one of our profiles and older than its account's `max_key_age_days`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OldKey {
    pub account: AccountName,
    pub profile: ProfileName,
    pub access_key_id: String,
    pub age_days: i64,
    pub max_key_age_days: u32,
    /// When it turned too old.
    #[serde(with = "time::serde::rfc3339")]
    pub due: OffsetDateTime,
    /// When it was last reminded of.
    #[serde(with = "time::serde::rfc3339::option")]
    pub reminded_at: Option<OffsetDateTime>,
}

impl OldKey {
    /// The reminder's words: (summary, body).
    pub fn words(&self) -> (String, String) {
        (
            format!("Permanent key is {} days old", self.age_days),
            format!(
                "The access key {} in profile {} (account {}) was created {} days ago; keys older than {} days should be rotated. Rotate it from the tray, or with `astran-creds keys rotate --profile {}`.",
                self.access_key_id,
                self.profile,
                self.account,
                self.age_days,
                self.max_key_age_days,
                self.profile
            ),
        )
    }
}

/// An access key id as IAM makes them (`AKIA…`): refused before any call when it is not one.
pub fn check_key_id(id: &str) -> Result<&str> {
    let ok = (16..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(id)
    } else {
        Err(Error::config(format!(
            "{id:?} is not an access key id (like AKIAEXAMPLE1234567890); see `astran-creds keys list`"
        )))
    }
}

/// The default permanent profile of an account: `<profile>-permanent`.
pub fn default_profile(acct: &Account) -> Result<ProfileName> {
    ProfileName::parse(&format!("{}-permanent", acct.profile))
}

/// Where the records are: `permanent-keys.json` beside the config file.
pub fn records_path(config_path: &Path) -> PathBuf {
    fsio::parent_dir(config_path).join("permanent-keys.json")
}

fn load_records(path: &Path) -> Result<Vec<KeyRecord>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice::<RecordsFile>(&b)
            .map(|f| f.keys)
            .map_err(|e| {
                Error::local_io(format!(
                    "{} cannot be read ({e}); fix or remove it (it only says which profiles hold our permanent keys)",
                    path.display()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

fn update_records(path: &Path, edit: impl FnOnce(&mut Vec<KeyRecord>)) -> Result<()> {
    fsio::create_private_dir(fsio::parent_dir(path))?;
    let _lock = FileLock::for_file(path)?;
    let mut keys = load_records(path)?;
    edit(&mut keys);
    let mut text = serde_json::to_string_pretty(&RecordsFile { keys })
        .map_err(|e| Error::local_io(format!("cannot encode the key records: {e}")))?;
    text.push('\n');
    fsio::write_atomic(path, text.as_bytes())
}

/// The temporary credentials and the IAM client of one account.
struct Ctx {
    acct: Account,
    iam: IamClient,
    creds: Credentials,
}

impl Ctx {
    fn host(&self) -> String {
        self.iam.host().to_owned()
    }
}

fn probe_window() -> Duration {
    let secs = std::env::var("ASTRAN_KEY_PROBE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(PROBE_SECS);
    Duration::from_secs(secs)
}

impl Session {
    fn records_path(&self) -> PathBuf {
        records_path(&self.config_path)
    }

    async fn records(&self) -> Result<Vec<KeyRecord>> {
        let p = self.records_path();
        off_worker(move || load_records(&p)).await
    }

    async fn edit_records(
        &self,
        edit: impl FnOnce(&mut Vec<KeyRecord>) + Send + 'static,
    ) -> Result<()> {
        let p = self.records_path();
        off_worker(move || update_records(&p, edit)).await
    }

    /// The key id the credentials file holds in `profile`, if any.
    async fn held_key(&self, profile: &ProfileName) -> Result<Option<String>> {
        let p = profile.clone();
        Ok(self
            .files(move |f| f.read_credentials(&p))
            .await?
            .map(|c| c.access_key_id))
    }

    /// Our profiles of `account` that still hold the key we recorded: (record, held).
    async fn our_profiles(&self, account: &AccountName) -> Result<Vec<KeyRecord>> {
        let mut out = Vec::new();
        for r in self.records().await? {
            if &r.account == account
                && self.held_key(&r.profile).await?.as_deref() == Some(&r.access_key_id)
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn iam_context(&self, account: Option<&str>) -> Result<Ctx> {
        let acct = self.account(account).await?;
        let creds = self
            .credentials(Some(acct.name.as_str()), MIN_VALID)
            .await?;
        let role = match self.load_record(&acct.name).await? {
            Some(r) => Some(r.role_arn),
            None => acct.role_arn.clone(),
        };
        let endpoint = match role {
            Some(r) => acct.endpoint_for(Service::Iam, &r)?,
            None => match acct.endpoints.iter().find(|(s, _)| *s == Service::Iam) {
                Some((_, e)) => e.clone(),
                None => {
                    return Err(Error::login_required(format!(
                        "account {} has no login session to derive its IAM endpoint from; log in with `astran-creds login`, or set endpoints.iam",
                        acct.name
                    )))
                }
            },
        };
        let region = acct.region.clone().unwrap_or_else(|| "us-east-1".into());
        let iam = IamClient::new(
            self.http_for(&acct, &[Service::Sts, Service::Iam], None)?,
            endpoint.as_str(),
            &region,
            self.clock().clone(),
        )?;
        Ok(Ctx { acct, iam, creds })
    }

    /// Renew the temporary credentials (IAM said `ExpiredToken`).
    async fn renew(&self, ctx: &mut Ctx) -> Result<()> {
        log::info!(
            "account {}: IAM says the temporary credentials expired; renewing",
            ctx.acct.name
        );
        self.refresh(Some(ctx.acct.name.as_str())).await?;
        ctx.creds = self
            .credentials(Some(ctx.acct.name.as_str()), MIN_VALID)
            .await?;
        Ok(())
    }

    async fn list_with(&self, ctx: &mut Ctx) -> Result<KeyList> {
        match ctx.iam.list_access_keys(&ctx.creds).await {
            Err(Failure::Iam(r)) if r.expired_token() => {
                self.renew(ctx).await?;
                ctx.iam.list_access_keys(&ctx.creds).await
            }
            r => r,
        }
        .map_err(|f| f.into_error(&ctx.host()))
    }

    async fn create_with(&self, ctx: &mut Ctx) -> Result<NewKey> {
        match ctx.iam.create_access_key(&ctx.creds).await {
            Err(Failure::Iam(r)) if r.expired_token() => {
                self.renew(ctx).await?;
                ctx.iam.create_access_key(&ctx.creds).await
            }
            r => r,
        }
        .map_err(|f| f.into_error(&ctx.host()))
    }

    async fn delete_with(&self, ctx: &mut Ctx, id: &str) -> std::result::Result<(), Failure> {
        match ctx.iam.delete_access_key(&ctx.creds, id).await {
            Err(Failure::Iam(r)) if r.expired_token() => {
                self.renew(ctx).await?;
                ctx.iam.delete_access_key(&ctx.creds, id).await
            }
            r => r,
        }
    }

    /// A call signed with the new key, until IAM accepts it or the window is over.
    async fn prove(&self, ctx: &Ctx, key: &NewKey) -> Result<()> {
        let creds = key.credentials();
        let until = tokio::time::Instant::now() + probe_window();
        let mut wait = Duration::from_millis(250);
        loop {
            match ctx.iam.list_access_keys(&creds).await {
                Ok(l) if l.keys.iter().any(|k| k.access_key_id == key.access_key_id) => {
                    return Ok(())
                }
                Ok(_) => {}
                Err(Failure::Iam(r)) if r.key_not_accepted() => {
                    log::info!(
                        "the new key {} is not accepted yet ({})",
                        key.access_key_id,
                        r.code
                    )
                }
                Err(f) => return Err(f.into_error(&ctx.host())),
            }
            if tokio::time::Instant::now() + wait > until {
                return Err(Error::unavailable(format!(
                    "IAM at {} did not accept the new key {} within {} s",
                    ctx.host(),
                    key.access_key_id,
                    probe_window().as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// Refuse a permanent profile that would take over something not ours.
    async fn check_target(
        &self,
        acct: &Account,
        profile: &ProfileName,
    ) -> Result<Option<KeyRecord>> {
        let cfg = self.config().await?;
        for name in cfg.account_names() {
            let other = cfg.account(&name)?;
            if &other.profile == profile {
                return Err(Error::config(format!(
                    "profile {profile} is where account {name} keeps its temporary credentials; choose another --profile"
                )));
            }
        }
        if &acct.profile == profile {
            return Err(Error::config(format!(
                "profile {profile} is where account {} keeps its temporary credentials; choose another --profile",
                acct.name
            )));
        }
        let record = self
            .records()
            .await?
            .into_iter()
            .find(|r| &r.profile == profile);
        let p = profile.clone();
        let existing = self.files(move |f| f.read_profile(&p)).await?;
        if let Some(r) = &record {
            if r.account != acct.name {
                return Err(Error::config(format!(
                    "profile {profile} holds the permanent key of account {}; choose another --profile",
                    r.account
                )));
            }
        }
        let ours = record.as_ref().is_some_and(|r| {
            existing.as_ref().is_some_and(|kv| {
                kv.iter()
                    .any(|(k, v)| k == "aws_access_key_id" && v == &r.access_key_id)
            })
        });
        if existing.is_some() && !ours {
            return Err(Error::config(format!(
                "profile {profile} already exists in {} and astran-creds did not write it; choose another --profile (nothing was changed)",
                self.credentials_file()?.path.display()
            )));
        }
        if acct.write_aws_config {
            let (file, p, a) = (self.aws_config_file()?, profile.clone(), acct.name.clone());
            off_worker(move || file.check(&p, &a)).await?;
        }
        Ok(record.filter(|_| ours))
    }

    /// Write the key into `profile` and its `~/.aws/config` sections, and record it.
    /// Returns the warnings (the config sections are not worth failing for).
    async fn write_permanent(
        &self,
        ctx: &Ctx,
        profile: &ProfileName,
        key: &NewKey,
    ) -> Result<Vec<String>> {
        let (p, c) = (profile.clone(), key.credentials());
        self.files(move |f| f.write_credentials(&p, &c)).await?;
        let mut warnings = Vec::new();
        let record = KeyRecord {
            account: ctx.acct.name.clone(),
            profile: profile.clone(),
            access_key_id: key.access_key_id.clone(),
            user_name: key.user_name.clone(),
            created: key.created,
            reminded_at: None,
        };
        if let Err(e) = self
            .edit_records(move |keys| {
                keys.retain(|r| r.profile != record.profile);
                keys.push(record);
            })
            .await
        {
            warnings.push(format!(
                "the record of which profile holds the key was not saved: {e}"
            ));
        }
        if ctx.acct.write_aws_config {
            let role = self.load_record(&ctx.acct.name).await?.map(|r| r.role_arn);
            let mut endpoints = Vec::new();
            for service in Service::ALL {
                let e = match &role {
                    Some(r) => ctx.acct.endpoint_for(service, r).ok(),
                    None => ctx
                        .acct
                        .endpoints
                        .iter()
                        .find(|(s, _)| *s == service)
                        .map(|(_, e)| e.clone()),
                };
                if let Some(e) = e {
                    endpoints.push((service, e.to_string()));
                }
            }
            let ours = OurProfile {
                profile: profile.clone(),
                account: ctx.acct.name.clone(),
                region: ctx.acct.region.clone(),
                endpoints,
                credential_process: None,
            };
            let file = self.aws_config_file()?;
            if let Err(e) = off_worker(move || file.write(&ours, false)).await {
                warnings.push(format!("~/.aws/config was not updated: {e}"));
            }
        }
        for w in &warnings {
            log::warn!("account {}: {w}", ctx.acct.name);
        }
        Ok(warnings)
    }

    /// `keys create`: a new key for the caller's user, into `profile` (default
    /// `<profile>-permanent`). The caller has confirmed.
    pub async fn keys_create(
        &self,
        account: Option<&str>,
        profile: Option<ProfileName>,
    ) -> Result<KeyWritten> {
        let acct = self.account(account).await?;
        let profile = match profile {
            Some(p) => p,
            None => default_profile(&acct)?,
        };
        if let Some(r) = self.check_target(&acct, &profile).await? {
            return Err(Error::config(format!(
                "profile {profile} already holds the permanent key {} (created {}); rotate it with `astran-creds keys rotate --profile {profile}`, or choose another --profile",
                r.access_key_id,
                crate::clock::rfc3339(r.created)
            )));
        }
        let mut ctx = self.iam_context(Some(acct.name.as_str())).await?;
        let key = self.create_with(&mut ctx).await?;
        log::info!(
            "account {}: created the access key {}",
            acct.name,
            key.access_key_id
        );
        let warnings = match self.write_permanent(&ctx, &profile, &key).await {
            Ok(w) => w,
            Err(e) => {
                let undo = self.delete_with(&mut ctx, &key.access_key_id).await;
                return Err(Error::new(
                    e.kind(),
                    match undo {
                        Ok(()) => format!(
                            "the new key {} could not be written to profile {profile} ({e}); it was deleted again, nothing changed",
                            key.access_key_id
                        ),
                        Err(f) => format!(
                            "a new key {} was created but not written to profile {profile} ({e}), and deleting it failed ({}); delete it with `astran-creds keys delete {}`",
                            key.access_key_id,
                            f.into_error(&ctx.host()),
                            key.access_key_id
                        ),
                    },
                ));
            }
        };
        let mut out = KeyWritten {
            account: acct.name,
            profile,
            access_key_id: key.access_key_id.clone(),
            user_name: key.user_name.clone(),
            created: key.created,
            replaced: None,
            verified: false,
            warnings,
        };
        match self.prove(&ctx, &key).await {
            Ok(()) => out.verified = true,
            Err(e) => out.warnings.push(format!(
                "{e}; it may need a little longer to work everywhere"
            )),
        }
        Ok(out)
    }

    /// `keys list`: the caller's keys, with the profile of ours that holds each.
    pub async fn keys_list(&self, account: Option<&str>) -> Result<KeysReport> {
        let mut ctx = self.iam_context(account).await?;
        let list = self.list_with(&mut ctx).await?;
        let ours = self.our_profiles(&ctx.acct.name).await?;
        let now = self.clock().now();
        Ok(KeysReport {
            account: ctx.acct.name.clone(),
            user_name: list.user_name,
            max_key_age_days: ctx.acct.max_key_age_days,
            default_profile: default_profile(&ctx.acct)?,
            keys: list
                .keys
                .into_iter()
                .map(|k| KeyEntry {
                    profile: ours
                        .iter()
                        .find(|r| r.access_key_id == k.access_key_id)
                        .map(|r| r.profile.clone()),
                    age_days: (now - k.created).whole_days().max(0),
                    access_key_id: k.access_key_id,
                    status: k.status,
                    created: k.created,
                })
                .collect(),
        })
    }

    /// `keys rotate`: create → prove → write → delete the old key. At every failure the
    /// profile holds a working key, and the error says what was left.
    pub async fn keys_rotate(
        &self,
        account: Option<&str>,
        profile: Option<ProfileName>,
    ) -> Result<KeyWritten> {
        let acct = self.account(account).await?;
        let profile = match profile {
            Some(p) => p,
            None => default_profile(&acct)?,
        };
        let Some(current) = self.check_target(&acct, &profile).await? else {
            return Err(Error::config(format!(
                "profile {profile} holds no permanent key of account {}; create one with `astran-creds keys create`",
                acct.name
            )));
        };
        let mut ctx = self.iam_context(Some(acct.name.as_str())).await?;
        let list = self.list_with(&mut ctx).await?;
        if list.keys.len() >= 2 {
            let ours = self.our_profiles(&acct.name).await?;
            let held = |id: &str| {
                ours.iter()
                    .find(|r| r.access_key_id == id)
                    .map(|r| r.profile.clone())
            };
            let free: Vec<&str> = list
                .keys
                .iter()
                .map(|k| k.access_key_id.as_str())
                .filter(|id| held(id).is_none())
                .collect();
            let words = match free.as_slice() {
                [] => format!(
                    "both are held by profiles of ours ({}); delete the one you no longer need with `astran-creds keys delete KEY_ID`",
                    list.keys
                        .iter()
                        .map(|k| format!("{} in {}", k.access_key_id, held(&k.access_key_id).map(|p| p.to_string()).unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ids => format!(
                    "{} is held by no profile of ours; if nothing else uses it, delete it with `astran-creds keys delete {}`, then rotate again",
                    ids.join(" and "),
                    ids[0]
                ),
            };
            return Err(Error::config(format!(
                "user {} already has two access keys, the most IAM allows, so a new one cannot be made: {words} (nothing was changed)",
                list.user_name
            )));
        }
        let old = current.access_key_id.clone();
        let old_exists = list.keys.iter().any(|k| k.access_key_id == old);
        let key = self.create_with(&mut ctx).await?;
        log::info!(
            "account {}: rotating {old} -> {}",
            acct.name,
            key.access_key_id
        );
        let new = key.access_key_id.clone();
        let left = |e: &Error, what: &str| {
            format!(
                "a new key {new} was created but {what} ({e}); profile {profile} still holds {old}"
            )
        };
        if let Err(e) = self.prove(&ctx, &key).await {
            let msg = match self.delete_with(&mut ctx, &new).await {
                Ok(()) => format!(
                    "the new key {new} did not work ({e}); it was deleted again and profile {profile} still holds {old}; run rotate again later"
                ),
                Err(f) => format!(
                    "{}; run rotate again or delete it with `astran-creds keys delete {new}` ({})",
                    left(&e, "does not work yet"),
                    f.into_error(&ctx.host())
                ),
            };
            return Err(Error::new(e.kind(), msg));
        }
        let mut warnings = match self.write_permanent(&ctx, &profile, &key).await {
            Ok(w) => w,
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!(
                        "{}; run rotate again or delete it with `astran-creds keys delete {new}`",
                        left(&e, "not yet written")
                    ),
                ))
            }
        };
        if old_exists {
            if let Err(f) = self.delete_with(&mut ctx, &old).await {
                let e = f.into_error(&ctx.host());
                return Err(Error::new(
                    e.kind(),
                    format!(
                        "profile {profile} now holds the new key {new}, but the old key {old} could not be deleted ({e}); delete it with `astran-creds keys delete {old}`"
                    ),
                ));
            }
        } else {
            warnings.push(format!("the old key {old} was already gone from IAM"));
        }
        Ok(KeyWritten {
            account: acct.name,
            profile,
            access_key_id: new,
            user_name: key.user_name,
            created: key.created,
            replaced: Some(old),
            verified: true,
            warnings,
        })
    }

    /// `keys delete`: delete the key at IAM, then our profiles that held it (only ours).
    pub async fn keys_delete(&self, account: Option<&str>, key_id: &str) -> Result<KeyDeleted> {
        check_key_id(key_id)?;
        let mut ctx = self.iam_context(account).await?;
        let ours: Vec<KeyRecord> = self
            .our_profiles(&ctx.acct.name)
            .await?
            .into_iter()
            .filter(|r| r.access_key_id == key_id)
            .collect();
        let was_gone = match self.delete_with(&mut ctx, key_id).await {
            Ok(()) => false,
            // gone already: our profile holding it is of no use any more
            Err(Failure::Iam(r)) if r.code == "NoSuchEntity" && !ours.is_empty() => true,
            Err(f) => return Err(f.into_error(&ctx.host())),
        };
        let mut removed = Vec::new();
        for r in &ours {
            let p = r.profile.clone();
            self.files(move |f| f.remove_profile(&p)).await?;
            if ctx.acct.write_aws_config {
                let (file, p, region) = (
                    self.aws_config_file()?,
                    r.profile.clone(),
                    ctx.acct.region.clone(),
                );
                if let Err(e) = off_worker(move || file.remove(&p, region.as_deref())).await {
                    log::warn!(
                        "~/.aws/config was not cleaned of profile {}: {e}",
                        r.profile
                    );
                }
            }
            removed.push(r.profile.clone());
        }
        let id = key_id.to_owned();
        self.edit_records(move |keys| keys.retain(|r| r.access_key_id != id))
            .await?;
        Ok(KeyDeleted {
            account: ctx.acct.name,
            access_key_id: key_id.to_owned(),
            profiles_removed: removed,
            was_gone,
        })
    }

    /// The key records whose profile still holds their key (only those are worth a reminder
    /// or a mark), with their account's `max_key_age_days`. No network: the records, the
    /// config and the credentials file, each read once.
    async fn held_records(&self) -> Result<Vec<(KeyRecord, u32)>> {
        let records = self.records().await?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let cfg = self.config().await?;
        let held = {
            let file = self.credentials_file()?;
            let profiles: Vec<ProfileName> = records.iter().map(|r| r.profile.clone()).collect();
            off_worker(move || -> Result<Vec<Option<String>>> {
                let text = file.read()?;
                Ok(profiles
                    .iter()
                    .map(|p| {
                        crate::credfile::read_profile(&text, p.as_str())?
                            .into_iter()
                            .find(|(k, _)| k == "aws_access_key_id")
                            .map(|(_, v)| v)
                    })
                    .collect())
            })
            .await?
        };
        Ok(records
            .into_iter()
            .zip(held)
            .filter(|(r, held)| held.as_deref() == Some(&r.access_key_id))
            .filter_map(|(r, _)| {
                let max = cfg.account(&r.account).ok()?.max_key_age_days;
                Some((r, max))
            })
            .collect())
    }

    /// The permanent keys our profiles hold, by account (the status's and the timeline's).
    pub async fn held_keys(&self) -> Result<HashMap<String, Vec<HeldKey>>> {
        let now = self.clock().now();
        let mut out: HashMap<String, Vec<HeldKey>> = HashMap::new();
        for (r, max) in self.held_records().await? {
            out.entry(r.account.to_string())
                .or_default()
                .push(HeldKey::new(
                    r.profile.to_string(),
                    r.access_key_id.clone(),
                    r.created,
                    max,
                    now,
                ));
        }
        Ok(out)
    }

    /// The keys held in our profiles that are older than their account's limit and whose
    /// reminder is due now (none in the last day), and when the next reminder will be due (a
    /// key turning too old, or a day after the last reminder). No network: the records, the
    /// config and the credentials file only, each read once.
    pub async fn key_reminders(&self) -> Result<(Vec<OldKey>, Option<OffsetDateTime>)> {
        let records = self.held_records().await?;
        let now = self.clock().now();
        let mut next: Option<OffsetDateTime> = None;
        let mut earliest = |t: OffsetDateTime| next = Some(next.map_or(t, |n| n.min(t)));
        let mut due_now = Vec::new();
        for (r, max_age) in records {
            let due = r.created + time::Duration::days(max_age.into());
            if now < due {
                earliest(due);
                continue;
            }
            match r.reminded_at {
                Some(t) if now - t < REMIND_EVERY => earliest(t + REMIND_EVERY),
                _ => {
                    earliest(now + REMIND_EVERY);
                    due_now.push(OldKey {
                        age_days: (now - r.created).whole_days(),
                        account: r.account,
                        profile: r.profile,
                        access_key_id: r.access_key_id,
                        max_key_age_days: max_age,
                        due,
                        reminded_at: r.reminded_at,
                    });
                }
            }
        }
        Ok((due_now, next))
    }

    /// Note that `profile`'s key was reminded of at `at`.
    pub async fn mark_reminded(&self, profile: &ProfileName, at: OffsetDateTime) -> Result<()> {
        let p = profile.clone();
        self.edit_records(move |keys| {
            for r in keys.iter_mut().filter(|r| r.profile == p) {
                r.reminded_at = Some(at);
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn key_ids() {
        assert!(check_key_id("AKIAEXAMPLE1234567890").is_ok());
        for bad in [
            "",
            "akiaexample1234567890",
            "AKIA",
            "AKIA EXAMPLE12345678",
            "AKIA]\n[x]12345678",
        ] {
            assert_eq!(
                check_key_id(bad).unwrap_err().kind(),
                ErrorKind::Config,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn records_round_trip_and_keep_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = records_path(&dir.path().join("config.toml"));
        assert_eq!(load_records(&path).unwrap(), vec![]);
        let rec = |p: &str, id: &str| KeyRecord {
            account: AccountName::parse("default").unwrap(),
            profile: ProfileName::parse(p).unwrap(),
            access_key_id: id.into(),
            user_name: "root".into(),
            created: time::macros::datetime!(2026-01-01 00:00 UTC),
            reminded_at: None,
        };
        update_records(&path, |k| k.push(rec("a-permanent", "AKIA1"))).unwrap();
        update_records(&path, |k| k.push(rec("b-permanent", "AKIA2"))).unwrap();
        update_records(&path, |k| k.retain(|r| r.access_key_id != "AKIA1")).unwrap();
        assert_eq!(
            load_records(&path).unwrap(),
            vec![rec("b-permanent", "AKIA2")]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(load_records(&path).unwrap_err().kind(), ErrorKind::LocalIo);
    }
}
