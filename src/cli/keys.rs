//! `astran-creds keys …`: the words and the confirmations around the core's permanent-key
//! operations (`astran_creds::keys`).

use astran_creds::clock::rfc3339;
use astran_creds::config::Account;
use astran_creds::error::{Error, Result};
use astran_creds::keys::{self, KeyWritten};
use astran_creds::session::Session;
use astran_creds::values::ProfileName;
use clap::Subcommand;
use std::io::IsTerminal;

#[derive(Subcommand, Debug)]
// each subcommand's arguments are built only when it is the one given (clap's `defer`)
#[command(defer = true)]
pub enum KeysCommand {
    /// Create a permanent access key (IAM CreateAccessKey) into its own profile
    /// (default `<profile>-permanent`).
    Create {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// List the access keys of your user, their age and the profile that holds each.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Replace the key in a permanent profile: create, prove, write, then delete the old one.
    Rotate {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Delete an access key (IAM DeleteAccessKey) and our profile that held it.
    Delete {
        /// The access key id (AKIA…), as `keys list` shows it.
        key_id: String,
        #[arg(long)]
        account: Option<String>,
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Ask on the terminal; without one, only `--yes` confirms.
fn confirm(question: &str, yes: bool, what: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::config(format!(
            "not confirmed: there is no terminal to ask on, so pass --yes to {what} (nothing was changed)"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::config(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::config("cancelled; nothing was changed")),
    }
}

fn warn_all(out: &KeyWritten) {
    for w in &out.warnings {
        eprintln!("astran-creds: warning: {w}");
    }
}

/// The account, and the permanent profile: `--profile` (checked before anything else) or the
/// account's default.
async fn target(
    session: &Session,
    account: Option<&str>,
    profile: Option<&str>,
) -> Result<(Account, ProfileName)> {
    let profile = profile.map(ProfileName::parse).transpose()?;
    let acct = session.account(account).await?;
    let target = match profile {
        Some(p) => p,
        None => keys::default_profile(&acct)?,
    };
    Ok((acct, target))
}

pub async fn run(session: &Session, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create {
            account,
            profile,
            yes,
        } => {
            let (acct, target) = target(session, account.as_deref(), profile.as_deref()).await?;
            eprintln!("astran-creds: {}", keys::WARNING);
            confirm(
                &format!(
                    "Create a permanent access key for account {} into profile {target}?",
                    acct.name
                ),
                yes,
                "create a permanent key",
            )?;
            let out = session
                .keys_create(Some(acct.name.as_str()), Some(target))
                .await?;
            warn_all(&out);
            let file = session.credentials_file()?;
            println!(
                "created access key {} for user {} on {}\nwritten to profile {} in {} (the secret is there and nowhere else)\nuse it with: aws --profile {} s3 ls",
                out.access_key_id,
                out.user_name,
                rfc3339(out.created),
                out.profile,
                file.path.display(),
                out.profile
            );
        }
        KeysCommand::List { account, json } => {
            let r = session.keys_list(account.as_deref()).await?;
            if json {
                let text = serde_json::to_string_pretty(&r)
                    .map_err(|e| Error::local_io(format!("cannot encode the list: {e}")))?;
                crate::write_stdout(&format!("{text}\n"))?;
                return Ok(());
            }
            let mut out = format!(
                "account {}, user {} ({} key{}; a reminder comes after {} days)\n",
                r.account,
                if r.user_name.is_empty() {
                    "?"
                } else {
                    &r.user_name
                },
                r.keys.len(),
                if r.keys.len() == 1 { "" } else { "s" },
                r.max_key_age_days
            );
            if !r.keys.is_empty() {
                out.push_str(&format!(
                    "{:<24} {:<9} {:<21} {:>8}  {}\n",
                    "ACCESS KEY ID", "STATUS", "CREATED", "AGE", "PROFILE"
                ));
            }
            for k in &r.keys {
                let old = if k.profile.is_some() && k.age_days >= i64::from(r.max_key_age_days) {
                    " (rotate it: `astran-creds keys rotate`)"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "{:<24} {:<9} {:<21} {:>6} d  {}{old}\n",
                    k.access_key_id,
                    k.status,
                    rfc3339(k.created),
                    k.age_days,
                    k.profile
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                ));
            }
            crate::write_stdout(&out)?;
        }
        KeysCommand::Rotate {
            account,
            profile,
            yes,
        } => {
            let (acct, target) = target(session, account.as_deref(), profile.as_deref()).await?;
            confirm(
                &format!(
                    "Replace the permanent key in profile {target} with a new one and delete the old one?"
                ),
                yes,
                "rotate the key",
            )?;
            let out = session
                .keys_rotate(Some(acct.name.as_str()), Some(target))
                .await?;
            warn_all(&out);
            println!(
                "rotated profile {}: new access key {} (created {}) replaces {}, which was deleted",
                out.profile,
                out.access_key_id,
                rfc3339(out.created),
                out.replaced.as_deref().unwrap_or("-")
            );
        }
        KeysCommand::Delete {
            key_id,
            account,
            yes,
        } => {
            keys::check_key_id(&key_id)?;
            confirm(
                &format!("Delete the access key {key_id}? Whatever uses it will stop working."),
                yes,
                "delete the key",
            )?;
            let out = session.keys_delete(account.as_deref(), &key_id).await?;
            let profiles = if out.profiles_removed.is_empty() {
                "no profile of ours held it".to_string()
            } else {
                format!(
                    "removed profile {}",
                    out.profiles_removed
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            if out.was_gone {
                println!("access key {key_id} was already gone from IAM; {profiles}");
            } else {
                println!("deleted access key {key_id}; {profiles}");
            }
        }
    }
    Ok(())
}
