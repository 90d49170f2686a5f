//! `astran-creds config show`: the effective settings of each account and where each value
//! came from (the built-in default, the system config, the user's file, the environment).

use astran_creds::config::system::AccountSettings;
use astran_creds::error::{Error, Result};
use astran_creds::session::Session;
use clap::Subcommand;
use serde::Serialize;

#[derive(Subcommand, Debug)]
// each subcommand's arguments are built only when it is the one given (clap's `defer`)
#[command(defer = true)]
pub enum ConfigCommand {
    /// Print the effective settings and where each came from.
    Show {
        /// Only this account (default: every configured account, or `default`).
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Shown {
    user_config: String,
    system_config: Option<String>,
    accounts: Vec<AccountSettings>,
}

pub async fn run(session: &Session, cmd: ConfigCommand) -> Result<()> {
    let ConfigCommand::Show { account, json } = cmd;
    let cfg = session.config().await?;
    let names = match &account {
        Some(a) => vec![cfg.pick_name(Some(a))?],
        None => {
            let mut n = cfg.account_names();
            if n.is_empty() {
                n.push(cfg.pick_name(None)?);
            }
            n
        }
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let accounts = names
        .iter()
        .map(|n| cfg.show(n, &env))
        .collect::<Result<Vec<_>>>()?;
    let shown = Shown {
        user_config: session.config_path.display().to_string(),
        system_config: cfg.system.as_ref().map(|s| s.path.display().to_string()),
        accounts,
    };
    if json {
        let text = serde_json::to_string_pretty(&shown)
            .map_err(|e| Error::local_io(format!("cannot encode the settings: {e}")))?;
        return crate::write_stdout(&format!("{text}\n"));
    }
    let mut out = format!(
        "user config: {}\nsystem config: {}\n",
        shown.user_config,
        shown.system_config.as_deref().unwrap_or("none")
    );
    for a in &shown.accounts {
        out.push_str(&format!("\n[accounts.{}]\n", a.account));
        for s in &a.settings {
            if s.value.is_null() {
                continue;
            }
            let mut from = s.source.words().to_string();
            if s.locked {
                from.push_str(", locked");
            }
            if let Some(i) = &s.ignored {
                from.push_str(&format!("; your {i} is ignored"));
            }
            out.push_str(&format!("{} = {}  ({from})\n", s.key, s.value));
        }
    }
    crate::write_stdout(&out)
}
