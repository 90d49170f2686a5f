//! Configuration: `$XDG_CONFIG_HOME/astran-tray/config.toml` (or `ASTRAN_CONFIG`), shared by
//! the CLI and the tray. Environment variables from Astran's tutorial override the file.

use crate::claims::RoleArn;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_TOKEN_URL: &str =
    "https://astran.cloud-iam.com/auth/realms/root-accounts/protocol/openid-connect/token";
pub const DEFAULT_CLIENT_ID: &str = "root-client";
pub const DEFAULT_PROFILE: &str = "astran";
pub const DEFAULT_ACCOUNT: &str = "default";
pub const DEFAULT_DURATION: u32 = 3600;
pub const MIN_DURATION: u32 = 900;
pub const MAX_DURATION: u32 = 43200;
pub const DEFAULT_NOTICE_LEAD: u32 = 600;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The account used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_account: Option<String>,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
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
}

/// STS DurationSeconds must lie in 900..=43200.
pub fn check_duration(d: u32) -> Result<()> {
    if (MIN_DURATION..=MAX_DURATION).contains(&d) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "the duration {d}s is out of range; STS allows {MIN_DURATION} to {MAX_DURATION} seconds"
        )))
    }
}

/// An account with every default and override applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: String,
    pub email: Option<String>,
    pub token_url: String,
    pub client_id: String,
    pub sts_endpoint: Option<String>,
    pub role_arn: Option<String>,
    pub region: Option<String>,
    pub profile: String,
    pub duration_seconds: u32,
    pub refresh_lead_seconds: Option<u32>,
    pub notice_lead_seconds: u32,
    pub offline: bool,
    pub remember_password: bool,
    pub ca_bundle: Option<PathBuf>,
}

impl Account {
    /// The STS endpoint for `role`: the configured one, else Astran's per-tenant endpoint.
    pub fn sts_endpoint_for(&self, role: &str) -> Result<String> {
        if let Some(e) = &self.sts_endpoint {
            return Ok(e.clone());
        }
        let arn = RoleArn::parse(role).ok_or_else(|| {
            Error::Refused(format!(
                "the role {role:?} is not an ARN like arn:<tenant>:iam::<id>:root, so no STS endpoint can be derived; set sts_endpoint"
            ))
        })?;
        Ok(format!("https://{}.sts.astran.io", arn.partition))
    }
}

/// Where the config lives: `ASTRAN_CONFIG`, else `$XDG_CONFIG_HOME/astran-tray/config.toml`
/// (`~/.config/...`; the platform's config dir elsewhere).
pub fn default_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ASTRAN_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("astran-tray").join("config.toml"));
    }
    #[cfg(windows)]
    if let Some(a) = std::env::var_os("APPDATA") {
        return Ok(PathBuf::from(a).join("astran-tray").join("config.toml"));
    }
    let home = crate::credfile::home_dir()
        .ok_or_else(|| Error::Config("no home directory; set ASTRAN_CONFIG".into()))?;
    #[cfg(target_os = "macos")]
    return Ok(home.join("Library/Application Support/astran-tray/config.toml"));
    #[cfg(not(target_os = "macos"))]
    Ok(home.join(".config").join("astran-tray").join("config.toml"))
}

impl Config {
    /// Load the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read the config file {}: {e}",
                    path.display()
                )))
            }
        };
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, path, &e))?;
        for (name, a) in &cfg.accounts {
            if let Some(d) = a.duration_seconds {
                if !(MIN_DURATION..=MAX_DURATION).contains(&d) {
                    return Err(Error::Config(format!(
                        "invalid config file {}: {}key `duration_seconds` of account `{name}` is {d}; STS allows {MIN_DURATION} to {MAX_DURATION} seconds",
                        path.display(),
                        line_of_key(text, "duration_seconds").map(|l| format!("line {l}, ")).unwrap_or_default()
                    )));
                }
            }
        }
        Ok(cfg)
    }

    /// Names of the configured accounts.
    pub fn account_names(&self) -> Vec<String> {
        self.accounts.keys().cloned().collect()
    }

    /// The account to act on: `name`, else `default_account`, else the only one, else
    /// `default`.
    pub fn pick_name(&self, name: Option<&str>) -> String {
        if let Some(n) = name {
            return n.to_owned();
        }
        if let Some(d) = &self.default_account {
            return d.clone();
        }
        if self.accounts.len() == 1 {
            return self.accounts.keys().next().cloned().unwrap_or_default();
        }
        DEFAULT_ACCOUNT.to_owned()
    }

    /// Resolve an account with defaults and the environment's overrides (`ASTRAN_IDP_URL`,
    /// `ASTRAN_IDP_CLIENT_ID`, `ASTRAN_USERNAME`, `ASTRAN_STS_ENDPOINT`, `ASTRAN_PROFILE`).
    pub fn account(&self, name: &str) -> Account {
        self.account_with_env(name, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn account_with_env(&self, name: &str, env: &dyn Fn(&str) -> Option<String>) -> Account {
        let c = self.accounts.get(name).cloned().unwrap_or_default();
        Account {
            name: name.to_owned(),
            email: env("ASTRAN_USERNAME").or(c.email),
            token_url: env("ASTRAN_IDP_URL")
                .or(c.token_url)
                .unwrap_or_else(|| DEFAULT_TOKEN_URL.into()),
            client_id: env("ASTRAN_IDP_CLIENT_ID")
                .or(c.client_id)
                .unwrap_or_else(|| DEFAULT_CLIENT_ID.into()),
            sts_endpoint: env("ASTRAN_STS_ENDPOINT").or(c.sts_endpoint),
            role_arn: c.role_arn,
            region: c.region,
            profile: env("ASTRAN_PROFILE")
                .or(c.profile)
                .unwrap_or_else(|| DEFAULT_PROFILE.into()),
            duration_seconds: c.duration_seconds.unwrap_or(DEFAULT_DURATION),
            refresh_lead_seconds: c.refresh_lead_seconds,
            notice_lead_seconds: c.notice_lead_seconds.unwrap_or(DEFAULT_NOTICE_LEAD),
            offline: c.offline.unwrap_or(false),
            remember_password: c.remember_password.unwrap_or(false),
            ca_bundle: env("AWS_CA_BUNDLE")
                .or(c.ca_bundle)
                .map(|p| expand_home(&p)),
        }
    }
}

/// `~/x` is relative to the home directory.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), crate::credfile::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

/// Apply `edit` to the account `name` in the file at `path`, keeping the file's comments
/// and layout (toml_edit), creating the file (and its folder, 0700) when missing.
pub fn update_account(
    path: &Path,
    name: &str,
    edit: impl FnOnce(&mut AccountConfig),
) -> Result<()> {
    // read-modify-write under a lock: concurrent logins of different accounts all land
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::credfile::create_private_dir(dir)?;
    let name_of = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("config");
    let _lock = crate::credfile::FileLock::acquire(
        &dir.join(format!(".{name_of}.astran-lock")),
        std::time::Duration::from_secs(10),
    )?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )))
        }
    };
    let cfg = Config::parse(&text, path)?;
    let before = cfg.accounts.get(name).cloned().unwrap_or_default();
    let mut after = before.clone();
    edit(&mut after);
    if after == before && !text.is_empty() {
        return Ok(());
    }
    let header = if text.trim().is_empty() {
        new_file_header()
    } else {
        String::new()
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::Config(format!("invalid config file {}: {e}", path.display())))?;
    if !doc.contains_key("accounts") {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        doc.insert("accounts", toml_edit::Item::Table(t));
    }
    let accounts = doc["accounts"].as_table_mut().ok_or_else(|| {
        Error::Config(format!(
            "invalid config file {}: `accounts` is not a table",
            path.display()
        ))
    })?;
    if !accounts.contains_key(name) {
        accounts.insert(name, toml_edit::Item::Table(toml_edit::Table::new()));
    }
    let table = accounts[name].as_table_mut().ok_or_else(|| {
        Error::Config(format!(
            "invalid config file {}: `accounts.{name}` is not a table",
            path.display()
        ))
    })?;
    let new_val = toml_edit::ser::to_document(&after)
        .map_err(|e| Error::Config(format!("cannot encode the config: {e}")))?;
    let old_keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    for k in old_keys {
        if !new_val.contains_key(&k) {
            table.remove(&k);
        }
    }
    for (k, v) in new_val.iter() {
        let same = table
            .get(k)
            .and_then(|i| i.as_value())
            .map(|x| x.to_string().trim().to_owned())
            == v.as_value().map(|x| x.to_string().trim().to_owned());
        if !same {
            table.insert(k, v.clone());
        }
    }
    // the folder was made above, before taking the lock
    crate::credfile::write_atomic(path, format!("{header}{doc}").as_bytes())
}

/// The comment a new config file starts with: every key and its default.
fn new_file_header() -> String {
    format!(
        "# astran-tray / astran-creds configuration (shared by the tray and the CLI).\n\
         # Per account, with their defaults:\n\
         #   email = \"you@example.com\"\n\
         #   token_url = \"{DEFAULT_TOKEN_URL}\"\n\
         #   client_id = \"{DEFAULT_CLIENT_ID}\"\n\
         #   sts_endpoint = \"https://<tenant>.sts.astran.io\"   (from the role ARN)\n\
         #   role_arn = \"arn:<tenant>:iam::<id>:root\"         (when the token has several)\n\
         #   region = \"\"\n\
         #   profile = \"{DEFAULT_PROFILE}\"\n\
         #   duration_seconds = {DEFAULT_DURATION}               ({MIN_DURATION} to {MAX_DURATION})\n\
         #   refresh_lead_seconds = 600      (default: later of 10 min before expiry and 80 % of the lifetime)\n\
         #   notice_lead_seconds = {DEFAULT_NOTICE_LEAD}\n\
         #   offline = false                 (scope=offline_access)\n\
         #   remember_password = false\n\
         #   ca_bundle = \"/path/to/ca.pem\"   (extra trusted CAs; AWS_CA_BUNDLE overrides)\n\n"
    )
}

/// Set `default_account` in the file, keeping its layout.
pub fn set_default_account(path: &Path, name: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    Config::parse(&text, path)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::Config(format!("invalid config file {}: {e}", path.display())))?;
    if doc.get("default_account").and_then(|v| v.as_str()) == Some(name) {
        return Ok(());
    }
    // a top-level key must come before the first table
    doc.remove("default_account");
    let mut out = toml_edit::DocumentMut::new();
    out.insert("default_account", toml_edit::value(name));
    let rendered = format!("{}{}", out, doc);
    crate::credfile::write_atomic(path, rendered.as_bytes())
}

fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(key) && l.contains('='))
        .map(|i| i + 1)
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
    Error::Config(format!(
        "invalid config file {}: {where_}{msg}; fix it or move it away",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_env_overrides() {
        let cfg = Config::parse(
            "[accounts.work]\nemail = \"a@b.c\"\nprofile = \"p\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(cfg.pick_name(None), "work");
        let a = cfg.account_with_env("work", &|_| None);
        assert_eq!(a.token_url, DEFAULT_TOKEN_URL);
        assert_eq!(a.client_id, "root-client");
        assert_eq!(a.profile, "p");
        assert_eq!(a.duration_seconds, 3600);
        let env = |k: &str| match k {
            "ASTRAN_PROFILE" => Some("q".to_string()),
            "ASTRAN_USERNAME" => Some("x@y.z".to_string()),
            _ => None,
        };
        let a = cfg.account_with_env("work", &env);
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
        update_account(&p, "default", |a| a.email = Some("a@b.c".into())).unwrap();
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
        update_account(&p, "default", |a| {
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
}
