//! Company-wide defaults (`config::system`, part of the config): the system config that IT
//! pushes with its device management (`/etc/xdg/astran-tray/config.toml`, or the first match
//! in `$XDG_CONFIG_DIRS`; `ASTRAN_SYSTEM_CONFIG` overrides the path). Its `[defaults]` apply to every account; the
//! user's file overrides them key by key, except the keys listed in `locked`, where the
//! user's value (and the environment's) is ignored and said so. `config show` tells where each
//! effective value came from.
//!
//! ```toml
//! locked = ["token_url", "client_id"]
//!
//! [defaults]
//! token_url = "https://sso.example.com/realms/example/protocol/openid-connect/token"
//! client_id = "astran-cli"
//! ca_bundle = "/etc/ssl/certs/example-proxy.pem"
//! ```

use super::{Account, AccountConfig};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every key of an account, in the order `config show` lists them.
pub const KEYS: &[&str] = &[
    "email",
    "token_url",
    "client_id",
    "auth",
    "authorize_url",
    "device_url",
    "sts_endpoint",
    "role_arn",
    "region",
    "profile",
    "duration_seconds",
    "refresh_lead_seconds",
    "notice_lead_seconds",
    "offline",
    "remember_password",
    "ca_bundle",
    "endpoints",
    "write_aws_config",
    "credential_mode",
    "max_key_age_days",
];

/// The environment variables that set a key, as `Config::account_with_env` reads them.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("ASTRAN_USERNAME", "email"),
    ("ASTRAN_IDP_URL", "token_url"),
    ("ASTRAN_IDP_CLIENT_ID", "client_id"),
    ("ASTRAN_PROFILE", "profile"),
    ("ASTRAN_S3_ENDPOINT", "endpoints"),
    ("ASTRAN_STS_ENDPOINT", "endpoints"),
    ("ASTRAN_IAM_ENDPOINT", "endpoints"),
    ("AWS_CA_BUNDLE", "ca_bundle"),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemFile {
    #[serde(default)]
    locked: Vec<String>,
    #[serde(default)]
    defaults: AccountConfig,
}

/// The system config, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemConfig {
    pub path: PathBuf,
    pub defaults: AccountConfig,
    pub locked: BTreeSet<String>,
}

/// `ASTRAN_SYSTEM_CONFIG`, else `<dir>/astran-tray/config.toml` for the first `dir` of
/// `$XDG_CONFIG_DIRS` (default `/etc/xdg`) where it exists.
pub fn path_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("ASTRAN_SYSTEM_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let dirs = env("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
    dirs.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("astran-tray").join("config.toml"))
        .find(|p| p.exists())
}

/// Read and check the system config at `path`; `None` when there is no such file.
pub fn load(path: &Path) -> Result<Option<SystemConfig>> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map_err(|_| {
            Error::config(format!(
                "the system config file {} is not UTF-8 text; ask your administrator to fix it",
                path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::io(
                format!("cannot read the system config file {}", path.display()),
                e,
            ))
        }
    };
    parse(&text, path).map(Some)
}

/// Parse and check a system config's text.
pub fn parse(text: &str, path: &Path) -> Result<SystemConfig> {
    let bad = |line: Option<usize>, what: String| {
        Error::config(format!(
            "invalid system config file {}: {}{what}; ask your administrator to fix it (or set ASTRAN_SYSTEM_CONFIG to another file)",
            path.display(),
            line.map(|l| format!("line {l}, ")).unwrap_or_default(),
        ))
    };
    let file: SystemFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        bad(line, e.message().trim().replace('\n', " "))
    })?;
    let line_of = |key: &str| {
        text.lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map(|i| i + 1)
    };
    file.defaults.check().map_err(|(key, e)| {
        bad(
            line_of(key.split('.').next().unwrap_or(key)),
            format!("key `{key}`: {e}"),
        )
    })?;
    for k in &file.locked {
        if !KEYS.contains(&k.as_str()) {
            return Err(bad(
                line_of("locked"),
                format!("`locked` names {k:?}, which is not a key of an account"),
            ));
        }
    }
    Ok(SystemConfig {
        path: path.to_path_buf(),
        defaults: file.defaults,
        locked: file.locked.into_iter().collect(),
    })
}

impl SystemConfig {
    pub fn is_locked(&self, key: &str) -> bool {
        self.locked.contains(key)
    }

    /// The user's account over the system's defaults, key by key (the `endpoints` table
    /// service by service); for a locked key the system's value, or the built-in default when
    /// the system sets none. Also the keys whose user value was ignored.
    pub fn merge(&self, user: &AccountConfig) -> (AccountConfig, Vec<&'static str>) {
        let as_map = |c: &AccountConfig| match serde_json::to_value(c) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let sys = as_map(&self.defaults);
        let mut out = as_map(user);
        let mut ignored = Vec::new();
        for &key in KEYS {
            let locked = self.is_locked(key);
            match (sys.get(key), out.get(key).cloned()) {
                (Some(s), Some(u)) if locked => {
                    if *s != u {
                        ignored.push(key);
                    }
                    out.insert(key.into(), s.clone());
                }
                (None, Some(_)) if locked => {
                    ignored.push(key);
                    out.remove(key);
                }
                (Some(serde_json::Value::Object(s)), Some(serde_json::Value::Object(u))) => {
                    let mut m = s.clone();
                    m.extend(u);
                    out.insert(key.into(), serde_json::Value::Object(m));
                }
                (Some(s), None) => {
                    out.insert(key.into(), s.clone());
                }
                _ => {}
            }
        }
        let merged = serde_json::from_value(serde_json::Value::Object(out)).unwrap_or_else(|e| {
            // both sides were AccountConfigs: a merge of them is one too
            log::error!("merging the system config failed ({e}); using the user's file alone");
            user.clone()
        });
        (merged, ignored)
    }
}

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The built-in default (or nothing set).
    Default,
    /// The system config's `[defaults]`.
    System,
    /// The user's config file.
    User,
    /// An environment variable.
    Environment,
}

impl Source {
    pub fn words(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::System => "system file",
            Source::User => "user file",
            Source::Environment => "environment",
        }
    }
}

/// One line of `config show`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Setting {
    pub key: String,
    /// The effective value (`null`: not set).
    pub value: serde_json::Value,
    pub source: Source,
    /// The system config locks it.
    pub locked: bool,
    /// The user's value that the lock ignores.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ignored: Option<serde_json::Value>,
}

/// `config show`'s document for one account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountSettings {
    pub account: String,
    pub settings: Vec<Setting>,
}

/// The effective value of `key` for the resolved account.
fn effective(acct: &Account, merged: &AccountConfig, key: &str) -> serde_json::Value {
    use serde_json::json;
    match key {
        "email" => json!(acct.email),
        "token_url" => json!(acct.token_url.as_str()),
        "client_id" => json!(acct.client_id),
        "auth" => json!(acct.auth.name()),
        "authorize_url" => json!(acct.authorize_url.as_ref().map(|u| u.as_str())),
        "device_url" => json!(acct.device_url.as_ref().map(|u| u.as_str())),
        "sts_endpoint" => json!(merged.sts_endpoint),
        "role_arn" => json!(acct.role_arn),
        "region" => json!(acct.region),
        "profile" => json!(acct.profile.as_str()),
        "duration_seconds" => json!(acct.duration_seconds.seconds()),
        "refresh_lead_seconds" => json!(acct.refresh_lead_seconds),
        "notice_lead_seconds" => json!(acct.notice_lead_seconds),
        "offline" => json!(acct.offline),
        "remember_password" => json!(acct.remember_password),
        "ca_bundle" => json!(acct.ca_bundle.as_ref().map(|p| p.display().to_string())),
        "endpoints" => {
            let m: serde_json::Map<String, serde_json::Value> = acct
                .endpoints
                .iter()
                .map(|(s, e)| (s.name().to_owned(), json!(e.as_str())))
                .collect();
            serde_json::Value::Object(m)
        }
        "write_aws_config" => json!(acct.write_aws_config),
        "credential_mode" => serde_json::to_value(acct.credential_mode).unwrap_or_default(),
        "max_key_age_days" => json!(acct.max_key_age_days),
        _ => serde_json::Value::Null,
    }
}

/// Every key of the account: its effective value and where it came from.
pub fn show(
    acct: &Account,
    user: &AccountConfig,
    merged: &AccountConfig,
    system: Option<&SystemConfig>,
    env: &dyn Fn(&str) -> Option<String>,
) -> AccountSettings {
    let as_map = |c: &AccountConfig| match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (user_map, sys_map) = (
        as_map(user),
        system.map(|s| as_map(&s.defaults)).unwrap_or_default(),
    );
    let settings = KEYS
        .iter()
        .map(|&key| {
            let locked = system.is_some_and(|s| s.is_locked(key));
            let from_env = ENV_KEYS.iter().any(|(v, k)| *k == key && env(v).is_some());
            let source = if from_env && !locked {
                Source::Environment
            } else if locked {
                if sys_map.contains_key(key) {
                    Source::System
                } else {
                    Source::Default
                }
            } else if user_map.contains_key(key) {
                Source::User
            } else if sys_map.contains_key(key) {
                Source::System
            } else {
                Source::Default
            };
            let ignored = if locked {
                user_map
                    .get(key)
                    .filter(|u| sys_map.get(key) != Some(*u))
                    .cloned()
            } else {
                None
            };
            Setting {
                key: key.to_owned(),
                value: effective(acct, merged, key),
                source,
                locked,
                ignored,
            }
        })
        .collect();
    AccountSettings {
        account: acct.name.to_string(),
        settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoints;

    fn sys(text: &str) -> SystemConfig {
        parse(text, Path::new("/etc/xdg/astran-tray/config.toml")).unwrap()
    }

    #[test]
    fn keys_cover_every_field() {
        // a literal with every field: adding one to AccountConfig fails to compile here until
        // it is added to KEYS (and to `effective`)
        let all = AccountConfig {
            email: Some("e".into()),
            token_url: Some("https://t".into()),
            client_id: Some("c".into()),
            auth: Some(Default::default()),
            authorize_url: Some("https://a".into()),
            device_url: Some("https://d".into()),
            sts_endpoint: Some("https://s".into()),
            role_arn: Some("r".into()),
            region: Some("eu-west-3".into()),
            profile: Some("p".into()),
            duration_seconds: Some(900),
            refresh_lead_seconds: Some(1),
            notice_lead_seconds: Some(1),
            offline: Some(true),
            remember_password: Some(true),
            ca_bundle: Some("/c".into()),
            endpoints: Some(Endpoints::default()),
            write_aws_config: Some(true),
            credential_mode: Some(Default::default()),
            max_key_age_days: Some(1),
        };
        let serde_json::Value::Object(m) = serde_json::to_value(&all).unwrap() else {
            panic!()
        };
        let mut fields: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut keys = KEYS.to_vec();
        fields.sort();
        keys.sort();
        assert_eq!(fields, keys);
    }

    #[test]
    fn the_user_overrides_key_by_key_but_not_a_locked_key() {
        let s = sys(
            "locked = [\"client_id\", \"ca_bundle\"]\n[defaults]\ntoken_url = \"https://sso.example.com/t\"\nclient_id = \"corp\"\nduration_seconds = 7200\nendpoints = { s3 = \"https://s3.example.com\", iam = \"https://iam.example.com\" }\n",
        );
        let user = AccountConfig {
            client_id: Some("mine".into()),
            ca_bundle: Some("/mine.pem".into()),
            duration_seconds: Some(900),
            endpoints: Some(Endpoints {
                s3: Some("https://my-s3.example.com".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (m, ignored) = s.merge(&user);
        assert_eq!(m.token_url.as_deref(), Some("https://sso.example.com/t"));
        assert_eq!(m.client_id.as_deref(), Some("corp"), "locked");
        assert_eq!(m.ca_bundle, None, "locked to the built-in default");
        assert_eq!(m.duration_seconds, Some(900), "the user's");
        let e = m.endpoints.unwrap();
        assert_eq!(e.s3.as_deref(), Some("https://my-s3.example.com"));
        assert_eq!(e.iam.as_deref(), Some("https://iam.example.com"));
        assert_eq!(ignored, vec!["client_id", "ca_bundle"]);
        // the same value as the system's is not "ignored"
        let (_, ignored) = s.merge(&AccountConfig {
            client_id: Some("corp".into()),
            ..Default::default()
        });
        assert!(ignored.is_empty());
    }

    #[test]
    fn bad_system_files_are_refused_with_their_line() {
        let p = Path::new("/etc/xdg/astran-tray/config.toml");
        for (text, needle) in [
            ("locked = [\"nope\"]\n", "line 1, `locked` names \"nope\""),
            ("[defaults]\nprofile = \"a]b\"\n", "line 2, key `profile`"),
            (
                "[defaults]\ntoken_url = \"http://sso.example.com/\"\n",
                "line 2, key `token_url`",
            ),
            ("[defaults]\nnot_a_key = 1\n", "line 2"),
            ("locked = \n", "line 1"),
        ] {
            let e = parse(text, p).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{text}");
            let m = e.to_string();
            assert!(
                m.contains(needle) && m.contains("/etc/xdg/astran-tray/config.toml"),
                "{text}: {m}"
            );
        }
    }

    #[test]
    fn the_path_comes_from_the_variable_or_the_first_xdg_dir_that_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(b.join("astran-tray")).unwrap();
        std::fs::write(b.join("astran-tray/config.toml"), "").unwrap();
        let dirs = format!("{}:{}", a.display(), b.display());
        let env = |k: &str| (k == "XDG_CONFIG_DIRS").then(|| dirs.clone());
        assert_eq!(path_from_env(&env), Some(b.join("astran-tray/config.toml")));
        let env = |k: &str| (k == "ASTRAN_SYSTEM_CONFIG").then(|| "/x/y.toml".to_string());
        assert_eq!(path_from_env(&env), Some(PathBuf::from("/x/y.toml")));
        let none = dir.path().join("none").display().to_string();
        let env = |k: &str| (k == "XDG_CONFIG_DIRS").then(|| none.clone());
        assert_eq!(path_from_env(&env), None);
    }
}
