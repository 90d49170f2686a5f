//! Configuration: `$XDG_CONFIG_HOME/astran-tray/config.toml` (or `ASTRAN_CONFIG`), shared by
//! the CLI and the tray. Environment variables from Astran's tutorial override the file.

/// Company-wide defaults: the system config under the user's file.
pub mod system;

use crate::claims::RoleArn;
use crate::error::{Error, Result};
use crate::fsio::{self, FileLock};
use crate::values::{AccountName, Endpoint, ProfileName, StsDuration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use system::SystemConfig;

pub const DEFAULT_TOKEN_URL: &str =
    "https://astran.cloud-iam.com/auth/realms/root-accounts/protocol/openid-connect/token";
pub const DEFAULT_CLIENT_ID: &str = "root-client";
pub const DEFAULT_PROFILE: &str = "astran";
pub const DEFAULT_ACCOUNT: &str = "default";
pub const DEFAULT_DURATION: u32 = 3600;
pub const MIN_DURATION: u32 = StsDuration::MIN;
pub const MAX_DURATION: u32 = StsDuration::MAX;
pub const DEFAULT_NOTICE_LEAD: u32 = 600;
/// A permanent key older than this many days is worth a reminder.
pub const DEFAULT_MAX_KEY_AGE_DAYS: u32 = 90;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The account used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account: Option<String>,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    /// The company-wide defaults under the user's file (not part of it: never written).
    #[serde(skip)]
    pub system: Option<SystemConfig>,
}

/// One Astran login (an email at an identity provider) and the profile it feeds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Keycloak token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// How to log in: `password` (default), `browser` (authorization code + PKCE) or
    /// `device` (device authorization grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthKind>,
    /// Keycloak's authorization endpoint (browser login); default: `token_url` with
    /// `/token` replaced by `/auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// Keycloak's device authorization endpoint; default: `token_url` with `/token`
    /// replaced by `/auth/device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_url: Option<String>,
    /// STS endpoint; default `https://<partition>.sts.astran.io` from the role ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint: Option<String>,
    /// The role to assume when the token carries several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Profile written in the credentials file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// STS DurationSeconds, 900..=43200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    /// Re-assume this long before the credentials expire. Default: the later of 10 minutes
    /// before expiry and 80 % of the lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_lead_seconds: Option<u32>,
    /// Warn this long before credentials expire that cannot be renewed. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_lead_seconds: Option<u32>,
    /// Ask Keycloak for an offline token (`scope=offline_access`), where the realm allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<bool>,
    /// Keep the password in the system keyring (opt-in; the tray's "remember password").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_password: Option<bool>,
    /// PEM file of extra certificate authorities to trust (a company proxy's CA).
    /// `AWS_CA_BUNDLE` overrides it, as for the AWS CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Endpoints per service; default `https://<tenant>.<service>.astran.io` from the role ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Endpoints>,
    /// Write our profile's `[profile …]` and `[services …]` sections into `~/.aws/config`
    /// (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_aws_config: Option<bool>,
    /// `static`: the keys in the credentials file (default); `process`: a
    /// `credential_process` line in `~/.aws/config`, the keys in the keyring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_mode: Option<CredentialMode>,
    /// Remind (once a day) when a permanent key held in one of our profiles is older than
    /// this many days (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_age_days: Option<u32>,
}

/// How an account logs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// Keycloak's password grant (Astran's root accounts).
    #[default]
    Password,
    /// OpenID Connect authorization code with PKCE, in the user's browser.
    Browser,
    /// OAuth 2.0 device authorization grant (RFC 8628): a code to enter on another device.
    Device,
}

impl AuthKind {
    pub fn name(self) -> &'static str {
        match self {
            AuthKind::Password => "password",
            AuthKind::Browser => "browser",
            AuthKind::Device => "device",
        }
    }
}

/// Where the tools get the temporary credentials from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialMode {
    /// `aws_access_key_id`… in our profile of the credentials file.
    #[default]
    Static,
    /// `credential_process = "…/astran-creds" credential-process --account <a>` in our
    /// profile of `~/.aws/config`; our section of the credentials file removed (a static key
    /// there would win over it).
    Process,
}

/// `endpoints = { s3 = "…", sts = "…", iam = "…" }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<String>,
}

/// The services whose endpoints go into `~/.aws/config`, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    S3,
    Sts,
    Iam,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::S3, Service::Sts, Service::Iam];

    /// botocore's name for it in a `[services …]` section, and Astran's host label.
    pub fn name(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Sts => "sts",
            Service::Iam => "iam",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Service::S3 => "ASTRAN_S3_ENDPOINT",
            Service::Sts => "ASTRAN_STS_ENDPOINT",
            Service::Iam => "ASTRAN_IAM_ENDPOINT",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Service::S3 => "S3 endpoint",
            Service::Sts => "STS endpoint",
            Service::Iam => "IAM endpoint",
        }
    }
}

impl AccountConfig {
    /// Check every value that could break a file or a request; `Err((key, message))`.
    pub(crate) fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        let msg = |e: Error| e.to_string();
        if let Some(p) = &self.profile {
            ProfileName::parse(p).map_err(|e| ("profile", msg(e)))?;
        }
        if self.max_key_age_days == Some(0) {
            return Err((
                "max_key_age_days",
                "0 would remind of every key every day; use a number of days, like 90".into(),
            ));
        }
        if let Some(d) = self.duration_seconds {
            StsDuration::new(d).map_err(|e| ("duration_seconds", msg(e)))?;
        }
        if let Some(r) = &self.region {
            // it is written into ~/.aws/config
            let ok = !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err((
                    "region",
                    format!("{r:?} is not a region name (like eu-west-3)"),
                ));
            }
        }
        let e = self.endpoints.clone().unwrap_or_default();
        for (key, what, url) in [
            ("token_url", "token endpoint", &self.token_url),
            (
                "authorize_url",
                "authorization endpoint",
                &self.authorize_url,
            ),
            (
                "device_url",
                "device authorization endpoint",
                &self.device_url,
            ),
            ("sts_endpoint", "STS endpoint", &self.sts_endpoint),
            ("endpoints.s3", "S3 endpoint", &e.s3),
            ("endpoints.sts", "STS endpoint", &e.sts),
            ("endpoints.iam", "IAM endpoint", &e.iam),
        ] {
            if let Some(u) = url {
                Endpoint::parse(what, u).map_err(|e| (key, msg(e)))?;
            }
        }
        Ok(())
    }
}

/// An account with every default and override applied, its names validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: AccountName,
    pub email: Option<String>,
    pub token_url: Endpoint,
    pub client_id: String,
    pub auth: AuthKind,
    /// The authorization endpoint: configured, else derived from the token URL (`None` when
    /// it does not end in `/token`).
    pub authorize_url: Option<Endpoint>,
    /// The device authorization endpoint, likewise.
    pub device_url: Option<Endpoint>,
    /// The endpoints set for this account (environment, then the file), by service.
    pub endpoints: Vec<(Service, Endpoint)>,
    pub role_arn: Option<String>,
    pub region: Option<String>,
    pub profile: ProfileName,
    pub duration_seconds: StsDuration,
    pub refresh_lead_seconds: Option<u32>,
    pub notice_lead_seconds: u32,
    pub offline: bool,
    pub remember_password: bool,
    pub ca_bundle: Option<PathBuf>,
    pub write_aws_config: bool,
    pub credential_mode: CredentialMode,
    pub max_key_age_days: u32,
}

impl Account {
    /// The endpoint of `service` for `role`: the configured one, else Astran's per-tenant
    /// endpoint `https://<tenant>.<service>.astran.io` (the tenant is the ARN's partition).
    pub fn endpoint_for(&self, service: Service, role: &str) -> Result<Endpoint> {
        if let Some((_, e)) = self.endpoints.iter().find(|(s, _)| *s == service) {
            return Ok(e.clone());
        }
        let arn = RoleArn::parse(role).ok_or_else(|| {
            Error::refused(format!(
                "the role {role:?} is not an ARN like arn:<tenant>:iam::<id>:root, so no {} can be derived; set endpoints.{} in the config",
                service.what(),
                service.name()
            ))
        })?;
        // parsed like any other: the tenant comes from a token, and lands in files
        Endpoint::parse(
            service.what(),
            &format!("https://{}.{}.astran.io", arn.partition, service.name()),
        )
    }

    /// Whether talking to the IdP and to `services` needs TLS (and so the system's root
    /// certificates): any of their URLs is https, or a service's endpoint is not configured
    /// (Astran's derived endpoints are https).
    pub fn needs_tls(&self, services: &[Service]) -> bool {
        let https = |e: &Endpoint| e.url().scheme() == "https";
        https(&self.token_url)
            || self.authorize_url.as_ref().is_some_and(https)
            || self.device_url.as_ref().is_some_and(https)
            || services.iter().any(|s| {
                self.endpoints
                    .iter()
                    .find(|(x, _)| x == s)
                    .is_none_or(|(_, e)| https(e))
            })
    }

    /// The STS endpoint for `role`.
    pub fn sts_endpoint_for(&self, role: &str) -> Result<String> {
        self.endpoint_for(Service::Sts, role).map(|e| e.to_string())
    }
}

/// Log `msg` once per process (a config is resolved many times).
fn warn_once(msg: &str) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|m| m == msg) {
        log::warn!("{msg}");
        said.push(msg.to_owned());
    }
}

/// Read a config file; a missing file is empty. Bytes that are not UTF-8 are the user's to
/// fix (`config`); a file that cannot be read at all is `local_io`.
fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map(Some).map_err(|_| {
            Error::config(format!(
                "the config file {} is not UTF-8 text; fix it or move it away (it was left untouched)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(
            format!(
                "cannot read the config file {} (it was left untouched)",
                path.display()
            ),
            e,
        )),
    }
}

impl Config {
    /// The user's file with the system config under it ([`system`]): what every program
    /// acts on. Writes go to the user's file alone ([`update_account`]).
    pub fn load_effective(path: &Path) -> Result<Config> {
        let mut cfg = Config::load(path)?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(p) = system::path_from_env(&env) {
            cfg.system = system::load(&p)?;
        }
        Ok(cfg)
    }

    /// Load the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config> {
        match read_text(path)? {
            Some(t) => Config::parse(&t, path),
            None => Ok(Config::default()),
        }
    }

    /// Parse and check the whole file: a bad value is refused with the file, line and key.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, path, &e))?;
        let bad = |line: Option<usize>, what: String| {
            Error::config(format!(
                "invalid config file {}: {}{what}; fix it or move it away",
                path.display(),
                line.map(|l| format!("line {l}, ")).unwrap_or_default(),
            ))
        };
        if let Some(d) = &cfg.default_account {
            AccountName::parse(d).map_err(|e| {
                bad(
                    line_of_key(text, None, "default_account"),
                    format!("key `default_account`: {e}"),
                )
            })?;
        }
        for (name, a) in &cfg.accounts {
            AccountName::parse(name)
                .map_err(|e| bad(line_of_account(text, name), e.to_string()))?;
            a.check().map_err(|(key, e)| {
                bad(
                    line_of_key(text, Some(name), key),
                    format!("key `{key}` of account `{name}`: {e}"),
                )
            })?;
        }
        Ok(cfg)
    }

    /// Names of the configured accounts (checked when the file was parsed).
    pub fn account_names(&self) -> Vec<AccountName> {
        self.accounts
            .keys()
            .filter_map(|k| AccountName::parse(k).ok())
            .collect()
    }

    /// The account to act on: `name`, else `default_account`, else the only one, else
    /// `default`.
    pub fn pick_name(&self, name: Option<&str>) -> Result<AccountName> {
        let n = match (name, &self.default_account) {
            (Some(n), _) => n,
            (None, Some(d)) => d.as_str(),
            (None, None) if self.accounts.len() == 1 => self
                .accounts
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or(DEFAULT_ACCOUNT),
            (None, None) => DEFAULT_ACCOUNT,
        };
        AccountName::parse(n)
    }

    /// `config show`: every key of account `name`, its effective value and where it came from.
    pub fn show(
        &self,
        name: &AccountName,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<system::AccountSettings> {
        let acct = self.account_with_env(name, env)?;
        let user = self
            .accounts
            .get(name.as_str())
            .cloned()
            .unwrap_or_default();
        let merged = match &self.system {
            Some(s) => s.merge(&user).0,
            None => user.clone(),
        };
        Ok(system::show(
            &acct,
            &user,
            &merged,
            self.system.as_ref(),
            env,
        ))
    }

    /// Every account in the file (the default one alone when it names none), resolved.
    pub fn all_accounts(&self) -> Result<Vec<Account>> {
        let mut names = self.account_names();
        if names.is_empty() {
            names.push(self.pick_name(None)?);
        }
        names.iter().map(|n| self.account(n)).collect()
    }

    /// Resolve an account with defaults and the environment's overrides (`ASTRAN_IDP_URL`,
    /// `ASTRAN_IDP_CLIENT_ID`, `ASTRAN_USERNAME`, `ASTRAN_STS_ENDPOINT`, `ASTRAN_PROFILE`).
    pub fn account(&self, name: &AccountName) -> Result<Account> {
        self.account_with_env(name, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn account_with_env(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Account> {
        let user = self.accounts.get(name).cloned().unwrap_or_default();
        let c = match &self.system {
            Some(sys) => {
                let (merged, ignored) = sys.merge(&user);
                for key in ignored {
                    warn_once(&format!(
                        "account {name}: `{key}` in your config file is ignored: {} locks it",
                        sys.path.display()
                    ));
                }
                merged
            }
            None => user,
        };
        // a locked key is not taken from the environment either
        let env = |var: &str| -> Option<String> {
            let v = env(var)?;
            let locked = self.system.as_ref().is_some_and(|s| {
                system::ENV_KEYS
                    .iter()
                    .any(|(e, k)| *e == var && s.is_locked(k))
            });
            if locked {
                warn_once(&format!("{var} is ignored: the system config locks it"));
                return None;
            }
            Some(v)
        };
        let env = &env;
        // a value from the environment is checked here, naming the variable; the file's
        // values were checked when it was parsed
        let from_env = |var: &str, e: Error| Error::config(format!("{var}: {e}"));
        let profile = match env("ASTRAN_PROFILE") {
            Some(p) => ProfileName::parse(&p).map_err(|e| from_env("ASTRAN_PROFILE", e))?,
            None => ProfileName::parse(c.profile.as_deref().unwrap_or(DEFAULT_PROFILE))?,
        };
        let token_url = match env("ASTRAN_IDP_URL") {
            Some(u) => {
                Endpoint::parse("token endpoint", &u).map_err(|e| from_env("ASTRAN_IDP_URL", e))?
            }
            None => Endpoint::parse(
                "token endpoint",
                c.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL),
            )?,
        };
        // Keycloak's endpoints sit beside the token endpoint
        let beside_token = |what: &str, tail: &str| {
            let base = token_url.as_str().strip_suffix("/token")?;
            Endpoint::parse(what, &format!("{base}/{tail}")).ok()
        };
        let authorize_url = match &c.authorize_url {
            Some(u) => Some(Endpoint::parse("authorization endpoint", u)?),
            None => beside_token("authorization endpoint", "auth"),
        };
        let device_url = match &c.device_url {
            Some(u) => Some(Endpoint::parse("device authorization endpoint", u)?),
            None => beside_token("device authorization endpoint", "auth/device"),
        };
        let file = c.endpoints.clone().unwrap_or_default();
        let mut endpoints = Vec::new();
        for service in Service::ALL {
            let from_file = match service {
                Service::S3 => file.s3.clone(),
                // `sts_endpoint` is the older key for the same
                Service::Sts => file.sts.clone().or(c.sts_endpoint.clone()),
                Service::Iam => file.iam.clone(),
            };
            let e = match env(service.env_var()) {
                Some(u) => Some(
                    Endpoint::parse(service.what(), &u)
                        .map_err(|e| from_env(service.env_var(), e))?,
                ),
                None => from_file
                    .as_deref()
                    .map(|u| Endpoint::parse(service.what(), u))
                    .transpose()?,
            };
            if let Some(e) = e {
                endpoints.push((service, e));
            }
        }
        Ok(Account {
            name: AccountName::parse(name)?,
            email: env("ASTRAN_USERNAME").or(c.email),
            token_url,
            endpoints,
            client_id: env("ASTRAN_IDP_CLIENT_ID")
                .or(c.client_id)
                .unwrap_or_else(|| DEFAULT_CLIENT_ID.into()),
            auth: c.auth.unwrap_or_default(),
            authorize_url,
            device_url,
            role_arn: c.role_arn,
            region: c.region,
            profile,
            duration_seconds: StsDuration::new(c.duration_seconds.unwrap_or(DEFAULT_DURATION))?,
            refresh_lead_seconds: c.refresh_lead_seconds,
            notice_lead_seconds: c.notice_lead_seconds.unwrap_or(DEFAULT_NOTICE_LEAD),
            offline: c.offline.unwrap_or(false),
            remember_password: c.remember_password.unwrap_or(false),
            ca_bundle: env("AWS_CA_BUNDLE")
                .or(c.ca_bundle)
                .map(|p| crate::paths::expand_tilde(Path::new(&p))),
            write_aws_config: c.write_aws_config.unwrap_or(true),
            credential_mode: c.credential_mode.unwrap_or_default(),
            max_key_age_days: c.max_key_age_days.unwrap_or(DEFAULT_MAX_KEY_AGE_DAYS),
        })
    }
}

/// The account `name` of the config `text` before and after `edit`: `None` when `edit`
/// leaves it as it is in a file that exists (a missing or empty file is always written, with
/// its header).
fn edited_account(
    text: &str,
    path: &Path,
    name: &AccountName,
    edit: impl FnOnce(&mut AccountConfig),
) -> Result<Option<(AccountConfig, AccountConfig)>> {
    let cfg = Config::parse(text, path)?;
    let before = cfg.accounts.get(name.as_str()).cloned().unwrap_or_default();
    let mut after = before.clone();
    edit(&mut after);
    Ok((after != before || text.is_empty()).then_some((before, after)))
}

/// Whether [`update_account`] with `edit` would leave the file as it is now (read without the
/// lock; any doubt is a no).
pub fn account_edit_is_noop(
    path: &Path,
    name: &AccountName,
    edit: impl FnOnce(&mut AccountConfig),
) -> bool {
    let Ok(Some(text)) = read_text(path) else {
        return false;
    };
    matches!(edited_account(&text, path, name, edit), Ok(None))
}

/// Apply `edit` to the account `name` in the file at `path`, keeping the file's comments
/// and layout (toml_edit), creating the file (and its folder, 0700) when missing.
pub fn update_account(
    path: &Path,
    name: &AccountName,
    edit: impl FnOnce(&mut AccountConfig),
) -> Result<()> {
    // read-modify-write under a lock: concurrent logins of different accounts all land
    let dir = fsio::parent_dir(path);
    fsio::create_private_dir(dir)?;
    let _lock = FileLock::for_file(path)?;
    // a file that cannot be read (or is not UTF-8) is never written over
    let text = read_text(path)?.unwrap_or_default();
    let Some((before, after)) = edited_account(&text, path, name, edit)? else {
        return Ok(());
    };
    after
        .check()
        .map_err(|(key, e)| Error::config(format!("key `{key}` of account `{name}`: {e}")))?;
    let header = if text.trim().is_empty() {
        new_file_header()
    } else {
        String::new()
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::config(format!("invalid config file {}: {e}", path.display())))?;
    if !doc.contains_key("accounts") {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        doc.insert("accounts", toml_edit::Item::Table(t));
    }
    let accounts = doc["accounts"].as_table_mut().ok_or_else(|| {
        Error::config(format!(
            "invalid config file {}: `accounts` is not a table",
            path.display()
        ))
    })?;
    if !accounts.contains_key(name) {
        accounts.insert(name, toml_edit::Item::Table(toml_edit::Table::new()));
    }
    let table = accounts[name.as_str()].as_table_mut().ok_or_else(|| {
        Error::config(format!(
            "invalid config file {}: `accounts.{name}` is not a table",
            path.display()
        ))
    })?;
    let new_val = toml_edit::ser::to_document(&after)
        .map_err(|e| Error::config(format!("cannot encode the config: {e}")))?;
    // only the keys whose value changed are touched (compared as values, so a table the
    // user wrote inline stays as written when it did not change)
    let (old_json, new_json) = (
        serde_json::to_value(&before).unwrap_or_default(),
        serde_json::to_value(&after).unwrap_or_default(),
    );
    let old_keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    for k in old_keys {
        if !new_val.contains_key(&k) {
            table.remove(&k);
        }
    }
    for (k, v) in new_val.iter() {
        if old_json.get(k) != new_json.get(k) || !table.contains_key(k) {
            table.insert(k, v.clone());
        }
    }
    // the folder was made above, before taking the lock
    fsio::write_atomic(path, format!("{header}{doc}").as_bytes())
}

/// The settings window's save: `settings` replace account `account` (values trimmed, empty
/// ones dropped), checked as the file's values are; optionally made the default account.
pub fn save_settings(
    path: &Path,
    account: &str,
    settings: AccountConfig,
    make_default: bool,
) -> Result<()> {
    let name = AccountName::parse(account.trim())?;
    let clean = |o: Option<String>| o.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let s = AccountConfig {
        email: clean(settings.email),
        token_url: clean(settings.token_url),
        client_id: clean(settings.client_id),
        authorize_url: clean(settings.authorize_url),
        device_url: clean(settings.device_url),
        sts_endpoint: clean(settings.sts_endpoint),
        role_arn: clean(settings.role_arn),
        region: clean(settings.region),
        profile: clean(settings.profile),
        ca_bundle: clean(settings.ca_bundle),
        endpoints: settings
            .endpoints
            .map(|e| Endpoints {
                s3: clean(e.s3),
                sts: clean(e.sts),
                iam: clean(e.iam),
            })
            .filter(|e| *e != Endpoints::default()),
        ..settings
    };
    s.check()
        .map_err(|(key, e)| Error::config(format!("settings of account `{name}`, `{key}`: {e}")))?;
    update_account(path, &name, |a| *a = s)?;
    if make_default {
        set_default_account(path, &name)?;
    }
    Ok(())
}

/// The comment a new config file starts with: every key and its default.
fn new_file_header() -> String {
    format!(
        "# astran-tray / astran-creds configuration (shared by the tray and the CLI).\n\
         # Per account, with their defaults:\n\
         #   email = \"you@example.com\"\n\
         #   token_url = \"{DEFAULT_TOKEN_URL}\"\n\
         #   client_id = \"{DEFAULT_CLIENT_ID}\"\n\
         #   auth = \"password\"               (or \"browser\", \"device\": your company's SSO)\n\
         #   authorize_url = \"…/protocol/openid-connect/auth\"          (from token_url)\n\
         #   device_url = \"…/protocol/openid-connect/auth/device\"      (from token_url)\n\
         #   sts_endpoint = \"https://<tenant>.sts.astran.io\"   (from the role ARN)\n\
         #   role_arn = \"arn:<tenant>:iam::<id>:root\"         (when the token has several)\n\
         #   region = \"\"\n\
         #   profile = \"{DEFAULT_PROFILE}\"\n\
         #   duration_seconds = {DEFAULT_DURATION}               ({MIN_DURATION} to {MAX_DURATION})\n\
         #   refresh_lead_seconds = 600      (default: later of 10 min before expiry and 80 % of the lifetime)\n\
         #   notice_lead_seconds = {DEFAULT_NOTICE_LEAD}\n\
         #   offline = false                 (scope=offline_access)\n\
         #   remember_password = false\n\
         #   ca_bundle = \"/path/to/ca.pem\"   (extra trusted CAs; AWS_CA_BUNDLE overrides)\n\
         #   endpoints = {{ s3 = \"https://<tenant>.s3.astran.io\" }}   (sts, iam too; from the role ARN)\n\
         #   write_aws_config = true         (our profile's sections in ~/.aws/config)\n\
         #   credential_mode = \"static\"      (or \"process\": credential_process in ~/.aws/config)\n\
         #   max_key_age_days = {DEFAULT_MAX_KEY_AGE_DAYS}          (remind to rotate a permanent key older than this)\n\n"
    )
}

/// Set `default_account` in the file, keeping its layout.
pub fn set_default_account(path: &Path, name: &AccountName) -> Result<()> {
    fsio::create_private_dir(fsio::parent_dir(path))?;
    let _lock = FileLock::for_file(path)?;
    // a file that cannot be read (or is not UTF-8) is never written over
    let text = read_text(path)?.unwrap_or_default();
    Config::parse(&text, path)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::config(format!("invalid config file {}: {e}", path.display())))?;
    if doc.get("default_account").and_then(|v| v.as_str()) == Some(name.as_str()) {
        return Ok(());
    }
    // a top-level key must come before the first table
    doc.remove("default_account");
    let mut out = toml_edit::DocumentMut::new();
    out.insert("default_account", toml_edit::value(name.as_str()));
    let rendered = format!("{}{}", out, doc);
    fsio::write_atomic(path, rendered.as_bytes())
}

/// The line of `[accounts.<name>]`, if it is there.
fn line_of_account(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim();
            l.starts_with("[accounts.") && l.contains(name)
        })
        .map(|i| i + 1)
}

/// The line where `key` is set (within `[accounts.<account>]` when given).
fn line_of_key(text: &str, account: Option<&str>, key: &str) -> Option<usize> {
    // `endpoints.s3` is set on the line of `endpoints = { … }`
    let key = key.split('.').next().unwrap_or(key);
    let from = account.and_then(|a| line_of_account(text, a)).unwrap_or(0);
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
}

fn describe_toml_error(text: &str, path: &Path, e: &toml::de::Error) -> Error {
    let (line, key) = match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("");
            let key = line
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_owned());
            (Some(line_no), key)
        }
        None => (None, None),
    };
    let msg = e.message().trim().replace('\n', " ");
    let mut where_ = String::new();
    if let Some(l) = line {
        where_.push_str(&format!("line {l}, "));
    }
    if let Some(k) = key.filter(|k| !k.is_empty() && !k.starts_with('[')) {
        where_.push_str(&format!("key `{k}`: "));
    }
    Error::config(format!(
        "invalid config file {}: {where_}{msg}; fix it or move it away",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> AccountName {
        AccountName::parse(n).unwrap()
    }

    #[test]
    fn defaults_and_env_overrides() {
        let cfg = Config::parse(
            "[accounts.work]\nemail = \"a@b.c\"\nprofile = \"p\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(cfg.pick_name(None).unwrap(), "work");
        let a = cfg.account_with_env("work", &|_| None).unwrap();
        assert_eq!(a.token_url.as_str(), DEFAULT_TOKEN_URL);
        assert_eq!(a.client_id, "root-client");
        assert_eq!(a.profile, "p");
        assert_eq!(a.duration_seconds.seconds(), 3600);
        let env = |k: &str| match k {
            "ASTRAN_PROFILE" => Some("q".to_string()),
            "ASTRAN_USERNAME" => Some("x@y.z".to_string()),
            _ => None,
        };
        let a = cfg.account_with_env("work", &env).unwrap();
        assert_eq!(
            (a.profile.as_str(), a.email.as_deref()),
            ("q", Some("x@y.z"))
        );
        assert_eq!(
            a.sts_endpoint_for("arn:demo:iam::1:root").unwrap(),
            "https://demo.sts.astran.io"
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let text = "[accounts.default]\nemail = \"a@b.c\"\nduration_seconds = \"long\"\n";
        let e = Config::parse(text, Path::new("/x/config.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/x/config.toml") && e.contains("line 3") && e.contains("duration_seconds"),
            "{e}"
        );
        let e = Config::parse("[accounts.default]\ncolour = 1\n", Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("colour"), "{e}");
        let e = Config::parse(
            "[accounts.default]\nduration_seconds = 60\n",
            Path::new("c"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("900") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn update_keeps_comments() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/config.toml");
        update_account(&p, &name("default"), |a| a.email = Some("a@b.c".into())).unwrap();
        let mut t = std::fs::read_to_string(&p).unwrap();
        assert!(
            t.starts_with("# astran-tray / astran-creds configuration"),
            "{t}"
        );
        assert!(
            t.contains("#   client_id = \"root-client\"")
                && t.contains("[accounts.default]\nemail = \"a@b.c\""),
            "{t}"
        );
        t.insert_str(0, "# my comment\n");
        std::fs::write(&p, &t).unwrap();
        update_account(&p, &name("default"), |a| {
            a.role_arn = Some("arn:demo:iam::1:root".into())
        })
        .unwrap();
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.starts_with("# my comment\n"), "{t}");
        let cfg = Config::load(&p).unwrap();
        assert_eq!(cfg.accounts["default"].email.as_deref(), Some("a@b.c"));
        assert_eq!(
            cfg.accounts["default"].role_arn.as_deref(),
            Some("arn:demo:iam::1:root")
        );
    }

    #[test]
    fn values_that_would_break_a_file_are_refused_with_their_line() {
        for (text, key, line) in [
            ("[accounts.default]\nemail = \"a@b.c\"\nprofile = \"a]b\"\n", "profile", 3),
            ("[accounts.default]\nprofile = \"a\\nb\"\n", "profile", 2),
            ("[accounts.w]\nemail = \"x\"\n[accounts.default]\nemail = \"y\"\ntoken_url = \"http://example.com/t\"\n", "token_url", 5),
        ] {
            let e = Config::parse(text, Path::new("/c.toml")).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            let m = e.to_string();
            assert!(m.contains("/c.toml") && m.contains(&format!("line {line}")) && m.contains(key), "{m}");
        }
        let e = Config::parse("[accounts.\"a.b\"]\n", Path::new("c")).unwrap_err();
        assert!(
            e.to_string().contains("account name") && e.to_string().contains("line 1"),
            "{e}"
        );
        let e = Config::parse("default_account = \"x]\"\n", Path::new("c")).unwrap_err();
        assert!(e.to_string().contains("default_account"), "{e}");
        // the environment's override is checked too
        let env = |k: &str| (k == "ASTRAN_PROFILE").then(|| "a]b".to_string());
        let e = Config::default()
            .account_with_env("default", &env)
            .unwrap_err();
        assert!(e.to_string().starts_with("ASTRAN_PROFILE: "), "{e}");
    }

    #[test]
    fn updates_refuse_bad_values_and_unreadable_files_and_write_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.toml");
        std::fs::write(&p, "# mine\n").unwrap();
        let e =
            update_account(&p, &name("default"), |a| a.profile = Some("a]b".into())).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "# mine\n");
        // not UTF-8: refused, bytes kept
        std::fs::write(&p, b"# \xff\xfe\n[accounts.default]\n").unwrap();
        for r in [
            update_account(&p, &name("default"), |a| a.email = Some("a@b.c".into())),
            set_default_account(&p, &name("default")),
        ] {
            assert_eq!(r.unwrap_err().kind(), crate::ErrorKind::Config);
        }
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"# \xff\xfe\n[accounts.default]\n"
        );
        // a directory where the file should be: local_io, nothing made
        let dir = d.path().join("isdir.toml");
        std::fs::create_dir(&dir).unwrap();
        for r in [
            update_account(&dir, &name("default"), |a| a.email = Some("a@b.c".into())),
            set_default_account(&dir, &name("default")),
        ] {
            assert_eq!(r.unwrap_err().kind(), crate::ErrorKind::LocalIo);
        }
        assert!(dir.is_dir() && std::fs::read_dir(&dir).unwrap().next().is_none());
        assert_eq!(
            Config::load(&dir).unwrap_err().kind(),
            crate::ErrorKind::LocalIo
        );
    }
}
