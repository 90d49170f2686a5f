//! `astran-creds`, the headless CLI: a thin shell over the core's session facade and owner
//! runtime. Every error is the core's, and its kind decides the exit code.

use astran_creds::config::AuthKind;
use astran_creds::error::{Error, Result};
use astran_creds::export;
use astran_creds::notify::{DesktopNotifier, Fanout, LogNotifier, Notifier};
use astran_creds::protocol::StatusReport;
use astran_creds::secret::Secret;
use astran_creds::serve;
use astran_creds::session::LoginOutcome;
use astran_creds::session::{LoginRequest, Session};
use astran_creds::sts::Credentials;
use astran_creds::values::{ProfileName, StsDuration};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;

/// The binary's own modules live in src/cli/ (the library's are the other files of src/).
#[path = "cli/config.rs"]
mod config_cli;
#[path = "cli/keys.rs"]
mod keys_cli;
#[path = "cli/login.rs"]
mod login_cli;

#[derive(Parser, Debug)]
#[command(
    name = "astran-creds",
    version,
    about = "Astran Continuity Cloud credentials for the AWS CLI and SDKs",
    after_help = "Exit codes: 0 ok, 1 unexpected error, 2 usage or configuration error, 3 wrong email or password,\n\
                  4 login required (session over), 5 service unavailable / timeout / malformed reply,\n\
                  6 refused by the identity provider, STS or IAM, 7 local file or keyring error."
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
// each subcommand's arguments are built only when it is the one given (clap's `defer`)
#[command(defer = true)]
enum Command {
    /// Log in (with email and password, in the browser, or with a device code), assume the
    /// role, write the profile.
    Login {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input instead of a terminal prompt.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        profile: Option<String>,
        /// Credential lifetime in seconds (900-43200).
        #[arg(long)]
        duration: Option<u32>,
        /// The role to assume when the token carries several.
        #[arg(long)]
        role_arn: Option<String>,
        /// Replace a `services` or `credential_process` line of yours in the profile's
        /// section of ~/.aws/config instead of refusing.
        #[arg(long)]
        force: bool,
        /// Log in with your browser (your company's sign-in: SSO, MFA, passkeys), whatever
        /// the account's `auth` says.
        #[arg(long, conflicts_with_all = ["device", "password_stdin"])]
        browser: bool,
        /// Log in with a code shown here, on any other device (for SSH sessions and servers).
        #[arg(long, conflicts_with_all = ["browser", "password_stdin", "no_browser"])]
        device: bool,
        /// Browser login: print the address instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Show each account's login and credentials state.
    Status {
        /// Machine-readable output (stable, see README).
        #[arg(long)]
        json: bool,
        /// Also list what comes next for each account: renewals, keep-alives, the session's
        /// ends, the moment a login is needed, a permanent key's age limit.
        #[arg(long, conflicts_with = "json")]
        timeline: bool,
    },
    /// What happened recently (logins, renewals, failures, notices), as the running tray
    /// agent or daemon remembers it, newest first.
    Events {
        #[arg(long)]
        account: Option<String>,
        /// How many (default 50).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Renew the credentials now with the held session.
    Refresh {
        #[arg(long)]
        account: Option<String>,
    },
    /// Forget the login session.
    Logout {
        #[arg(long)]
        account: Option<String>,
        /// Also remove the profile from the credentials file (only that profile).
        #[arg(long)]
        remove_profile: bool,
    },
    /// Stay in the foreground and keep every logged-in account fresh.
    Daemon {
        /// Where notices go.
        #[arg(long, value_enum, default_value_t = NotifyTo::Desktop)]
        notify: NotifyTo,
    },
    /// Print credentials as AWS `credential_process` JSON.
    CredentialProcess {
        #[arg(long)]
        account: Option<String>,
    },
    /// Serve the credentials on 127.0.0.1 as AWS container credentials (for SDKs and tools):
    /// prints the export lines, then serves until SIGINT/SIGTERM.
    Serve {
        #[arg(long)]
        account: Option<String>,
        /// The port (default: a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run a command with the credentials from a private local endpoint, alive as long as it.
    Exec {
        #[arg(long)]
        account: Option<String>,
        /// The command and its arguments, after `--`.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<std::ffi::OsString>,
    },
    /// The effective settings and where each came from (system config, your file, the
    /// environment).
    Config {
        #[command(subcommand)]
        command: config_cli::ConfigCommand,
    },
    /// Permanent access keys (discouraged: temporary credentials are safer): create, list,
    /// rotate, delete.
    Keys {
        #[command(subcommand)]
        command: keys_cli::KeysCommand,
    },
    /// Print the credentials as environment variables: eval "$(astran-creds export)".
    Export {
        #[arg(long)]
        account: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Sh)]
        format: Format,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Sh,
    Fish,
    Powershell,
    Json,
}

impl From<Format> for export::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Sh => export::Format::Sh,
            Format::Fish => export::Format::Fish,
            Format::Powershell => export::Format::Powershell,
            Format::Json => export::Format::Json,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum NotifyTo {
    /// Desktop notifications (and the log).
    Desktop,
    /// The log only.
    Log,
}

/// What every login prints, after telling a running owner.
async fn logged_in(out: LoginOutcome) -> Result<i32> {
    tell_owner().await;
    say_logged_in(&out);
    Ok(0)
}

fn say_logged_in(out: &LoginOutcome) {
    if let Some(why) = &out.keyring_unavailable {
        eprintln!(
            "astran-creds: warning: no keyring service is reachable ({why}); the login session was not saved, so `refresh` and `daemon` will need a new login"
        );
    }
    println!(
        "profile {}: role {}, valid until {}",
        out.profile,
        out.role_arn,
        astran_creds::clock::rfc3339(out.expires_at)
    );
}

/// A password login made by the running owner (the tray agent or `astran-creds daemon`) when
/// its setup is this command's: a warm process with the keyring open makes it, this one
/// only asks for the password and says the outcome, with no runtime of its own.
#[cfg(target_os = "linux")]
enum ByOwner {
    /// Made (or refused) there: the exit code.
    Done(i32),
    /// To be made here, with the email and password if they were asked for already.
    Here(Option<(String, Secret)>),
}

#[cfg(target_os = "linux")]
fn login_by_owner(command: &Command) -> ByOwner {
    let Command::Login {
        account,
        email,
        password_stdin,
        profile,
        duration,
        role_arn,
        force,
        browser: false,
        device: false,
        no_browser: false,
    } = command
    else {
        return ByOwner::Here(None);
    };
    // a wrong value is said by the whole way, as ever
    let Ok(req) = asked_login(account, email, profile, *duration, role_arn, *force) else {
        return ByOwner::Here(None);
    };
    let Some(setup) = Session::from_env().and_then(|s| s.setup_fingerprint()).ok() else {
        return ByOwner::Here(None);
    };
    let mut owner = astran_creds::control::OwnerLogin::new(setup);
    // With the email on the command line and the password on standard input, both go with
    // the check and the owner makes the login at once (one answer to wait for). When no
    // password can be read, the check comes first all the same, so that a refusal is what
    // is said, as a login here says it.
    let typed = match (email, *password_stdin) {
        (Some(e), true) => read_stdin_password().ok().map(|p| (e.clone(), p)),
        _ => None,
    };
    let asked = LoginRequest {
        email: typed.as_ref().map(|(e, _)| e.clone()),
        password: typed.as_ref().map(|(_, p)| p.clone()),
        ..req.clone()
    };
    // the owner checks the account before the password is asked for, as a login here does;
    // any refusal is said again, by the login here
    let checked = match owner.check(&asked) {
        Ok(c) if c.auth == AuthKind::Password => c,
        Ok(_) => return ByOwner::Here(None),
        Err(e) => {
            log::debug!("no running agent makes this login ({e}); logging in here");
            return ByOwner::Here(typed);
        }
    };
    if let Some(out) = &checked.login {
        say_logged_in(out);
        return ByOwner::Done(0);
    }
    if let Some(e) = checked.login_error {
        let e = astran_creds::Error::from_wire(e);
        eprintln!("astran-creds: {e}");
        return ByOwner::Done(e.exit_code());
    }
    let told = match typed {
        Some(t) => Ok(t),
        None => ask_email_and_password(email.clone().or(checked.email), *password_stdin),
    };
    let (email, password) = match told {
        Ok(t) => t,
        Err(e) => {
            eprintln!("astran-creds: {e}");
            return ByOwner::Done(e.exit_code());
        }
    };
    let req = LoginRequest {
        account: Some(checked.account.to_string()),
        email: Some(email.clone()),
        password: Some(password.clone()),
        ..req
    };
    match owner.login(req, checked.ticket) {
        Ok(out) => {
            say_logged_in(&out);
            ByOwner::Done(0)
        }
        Err(Some(e)) => {
            eprintln!("astran-creds: {e}");
            ByOwner::Done(e.exit_code())
        }
        Err(None) => ByOwner::Here(Some((email, password))),
    }
}

/// The login the command line asks for, every value checked (before a password is asked
/// for).
fn asked_login(
    account: &Option<String>,
    email: &Option<String>,
    profile: &Option<String>,
    duration: Option<u32>,
    role_arn: &Option<String>,
    force: bool,
) -> Result<LoginRequest> {
    Ok(LoginRequest {
        account: account.clone(),
        email: email.clone(),
        profile: profile.as_deref().map(ProfileName::parse).transpose()?,
        duration_seconds: duration.map(StsDuration::new).transpose()?,
        role_arn: role_arn.clone(),
        force,
        ..Default::default()
    })
}

/// The email (asked for when neither the command line nor the account gives one), then the
/// password (standard input or the terminal).
fn ask_email_and_password(email: Option<String>, password_stdin: bool) -> Result<(String, Secret)> {
    let email = match email {
        Some(e) => e,
        None => prompt_line("Email: ")?,
    };
    let password = if password_stdin {
        read_stdin_password()?
    } else {
        prompt_password(&email)?
    };
    Ok((email, password))
}

/// Credentials handed out by `credential-process`/`export` are renewed first when fewer
/// than this many seconds remain.
pub const MIN_VALID_SECONDS: i64 = 300;

fn main() {
    std::process::exit(run_main());
}

fn run_main() -> i32 {
    // `credential-process` runs at every AWS CLI and SDK start: its plain form is read
    // without building clap's parser for every command (a third of its own time)
    if let Some(account) = plain_credential_process(std::env::args_os().skip(1)) {
        astran_creds::logging::init("astran_creds=warn,warn");
        if let Some(code) = answer_from_the_file(&Command::CredentialProcess { account }) {
            return code;
        }
    }
    // likewise a password login's plain forms (what scripts and the bench run)
    let plain = plain_login(std::env::args_os().skip(1)).map(|command| Cli {
        verbose: 0,
        command,
    });
    let cli = match plain.map(Ok).unwrap_or_else(Cli::try_parse) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let default_level = match (cli.verbose, matches!(cli.command, Command::Daemon { .. })) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        (2, _) => "debug",
        _ => "trace",
    };
    astran_creds::logging::init(&format!("astran_creds={default_level},warn"));
    if let Some(code) = answer_from_the_file(&cli.command) {
        return code;
    }
    #[cfg(target_os = "linux")]
    let typed = match login_by_owner(&cli.command) {
        ByOwner::Done(code) => return code,
        ByOwner::Here(typed) => typed,
    };
    #[cfg(not(target_os = "linux"))]
    let typed = None;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("astran-creds: cannot start: {e}");
            return 1;
        }
    };
    let code = match rt.block_on(run(cli, typed)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("astran-creds: {e}");
            e.exit_code()
        }
    };
    // the command's work is done and said (its files written and synced, the keyring's
    // calls answered, the owner told): the process exits now, without waiting for the
    // runtime's idle threads to wind down (the kernel closes the keyring's connection)
    std::mem::forget(rt);
    code
}

/// `credential-process` and `export` with fresh credentials in the credentials file (what
/// they almost always find, being asked at every AWS CLI or SDK start): answered before a
/// runtime or thread starts. Anything else (a renewal due, process mode, an error to say) goes
/// the whole way, in `run`.
fn answer_from_the_file(command: &Command) -> Option<i32> {
    let (account, render) = credentials_output(command)?;
    let session = Session::from_env().ok()?;
    let c = session.fresh_credentials_here(account, time::Duration::seconds(MIN_VALID_SECONDS))?;
    Some(match write_stdout(render(&c).expose()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("astran-creds: {e}");
            e.exit_code()
        }
    })
}

/// The account a `credential-process` or `export` asks for, and how it prints the
/// credentials; `None` for the other commands.
type Render = Box<dyn Fn(&Credentials) -> Secret>;
fn credentials_output(command: &Command) -> Option<(Option<&str>, Render)> {
    match command {
        Command::CredentialProcess { account } => Some((
            account.as_deref(),
            Box::new(export::credential_process_json),
        )),
        Command::Export { account, format } => {
            let format = (*format).into();
            Some((
                account.as_deref(),
                Box::new(move |c| export::render(c, format)),
            ))
        }
        _ => None,
    }
}

/// `credential-process` alone or with `--account NAME` / `--account=NAME` and nothing else:
/// the account asked for. Anything else (another command, `-v`, `--help`, a typo, a name
/// clap would take for a flag) is `None`, for clap to read and answer.
fn plain_credential_process(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Option<Option<String>> {
    let args: Vec<std::ffi::OsString> = args.collect();
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    match args.as_slice() {
        ["credential-process"] => Some(None),
        ["credential-process", "--account", n] if !n.is_empty() && !n.starts_with('-') => {
            Some(Some(n.to_string()))
        }
        ["credential-process", a] => a
            .strip_prefix("--account=")
            .filter(|n| !n.is_empty())
            .map(|n| Some(n.to_string())),
        _ => None,
    }
}

/// `login` with only `--email`, `--account`, `--profile`, `--role-arn`, `--duration` (each
/// once, as `--flag VALUE` or `--flag=VALUE`), `--password-stdin` and `--force`: the command
/// clap would make of it. Anything else (another command, `-v`, `--help`, `--browser`, a
/// repeated flag, a value clap could take for a flag or would refuse) is `None`, for clap to
/// read and answer.
fn plain_login(args: impl Iterator<Item = std::ffi::OsString>) -> Option<Command> {
    let args: Vec<std::ffi::OsString> = args.collect();
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    let (&"login", mut rest) = args.split_first()? else {
        return None;
    };
    let (mut account, mut email, mut profile, mut role_arn, mut duration) =
        (None, None, None, None, None);
    let (mut password_stdin, mut force) = (false, false);
    while let Some((&arg, tail)) = rest.split_first() {
        rest = tail;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (arg, None),
        };
        let switch = match flag {
            "--password-stdin" => Some(&mut password_stdin),
            "--force" => Some(&mut force),
            _ => None,
        };
        if let Some(on) = switch {
            if inline.is_some() || *on {
                return None;
            }
            *on = true;
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let (&v, tail) = rest.split_first()?;
                rest = tail;
                v
            }
        };
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        let slot = match flag {
            "--email" => &mut email,
            "--account" => &mut account,
            "--profile" => &mut profile,
            "--role-arn" => &mut role_arn,
            "--duration" => &mut duration,
            _ => return None,
        };
        if slot.replace(value.to_string()).is_some() {
            return None;
        }
    }
    Some(Command::Login {
        account,
        email,
        password_stdin,
        profile,
        duration: match duration {
            Some(d) => Some(d.parse().ok()?),
            None => None,
        },
        role_arn,
        force,
        browser: false,
        device: false,
        no_browser: false,
    })
}

async fn run(cli: Cli, typed: Option<(String, Secret)>) -> Result<i32> {
    let session = Arc::new(Session::from_env()?);
    // a login's or logout's keyring changes (nothing it reads) go through a running agent
    // holding the same keyring open, when there is one: no keyring session of its own
    #[cfg(target_os = "linux")]
    if matches!(cli.command, Command::Login { .. } | Command::Logout { .. }) {
        session
            .store()
            .offer_delegate(Box::new(astran_creds::control::OwnerKeyring::from_env()));
    }
    match cli.command {
        Command::Login {
            account,
            email,
            password_stdin,
            profile,
            duration,
            role_arn,
            force,
            browser,
            device,
            no_browser,
        } => {
            let req = asked_login(&account, &email, &profile, duration, &role_arn, force)?;
            let flag = match (browser || no_browser, device) {
                (true, _) => Some(AuthKind::Browser),
                (_, true) => Some(AuthKind::Device),
                _ => None,
            };
            // the account, checked (and the keyring warmed up) before the password is asked
            let acct = match flag {
                None => Some(session.prepare_login(&req, true).await?),
                Some(_) => None,
            };
            let auth = flag.or(acct.as_ref().map(|a| a.auth)).unwrap_or_default();
            let Some(acct) = acct.filter(|_| auth == AuthKind::Password) else {
                let req = LoginRequest { email: None, ..req };
                let out = login_cli::interactive(&session, req, auth, !no_browser).await?;
                return logged_in(out).await;
            };
            let (email, password) = match typed {
                // asked for already, for a running agent that then did not make the login
                Some(t) => t,
                None => ask_email_and_password(
                    req.email.clone().or(acct.email.clone()),
                    password_stdin,
                )?,
            };
            let req = LoginRequest {
                email: Some(email),
                password: Some(password),
                ..req
            };
            let out = session.login_prepared(acct, req).await?;
            return logged_in(out).await;
        }
        Command::Events {
            account,
            limit,
            json,
        } => {
            // the events live in the running owner (tray agent or daemon), not in a file
            let r = astran_creds::control::Client::from_env()
                .events(account, limit)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                for e in r.events {
                    println!(
                        "{} {}: {}",
                        astran_creds::clock::rfc3339(e.at),
                        e.account,
                        e.words
                    );
                }
            }
        }
        Command::Status { json, timeline } => {
            let st = session.status().await?;
            if json {
                let doc = StatusReport::new(st);
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                let fmt = |t: Option<time::OffsetDateTime>| {
                    t.map(astran_creds::clock::rfc3339)
                        .unwrap_or_else(|| "-".into())
                };
                for s in st {
                    // an offline session's refresh token may have no end of its own: say so,
                    // never a guess
                    let session = match (s.offline_session, s.session_expires_at) {
                        (true, Some(t)) => format!("offline session until {}", fmt(Some(t))),
                        (true, None) => "offline session (no fixed end)".to_string(),
                        (false, t) => format!("session until {}", fmt(t)),
                    };
                    println!(
                        "{}: {} (profile {}{}); credentials until {}, {session}, next refresh {}",
                        s.account,
                        s.state.words(),
                        s.profile,
                        s.email
                            .as_deref()
                            .map(|e| format!(", {e}"))
                            .unwrap_or_default(),
                        fmt(s.credentials_expire_at),
                        fmt(s.next_refresh_at),
                    );
                    if timeline {
                        for m in &s.timeline.marks {
                            println!(
                                "  {} {}{}{}",
                                fmt(Some(m.at)),
                                m.kind.words(),
                                m.detail
                                    .as_deref()
                                    .map(|d| format!(" {d}"))
                                    .unwrap_or_default(),
                                if m.projected { " (projected)" } else { "" }
                            );
                        }
                    }
                }
            }
        }
        Command::Refresh { account } => {
            let o = session.refresh(account.as_deref()).await?;
            tell_owner().await;
            println!(
                "profile {}: role {}, valid until {}",
                o.profile,
                o.role_arn,
                o.expires_at
                    .map(astran_creds::clock::rfc3339)
                    .unwrap_or_default()
            );
        }
        Command::Logout {
            account,
            remove_profile,
        } => {
            let name = session.logout(account.as_deref(), remove_profile).await?;
            tell_owner().await;
            println!(
                "logged out of account {name}{}",
                if remove_profile {
                    "; profile removed"
                } else {
                    ""
                }
            );
        }
        Command::Daemon { notify } => daemon(session, notify).await?,
        c @ (Command::CredentialProcess { .. } | Command::Export { .. }) => {
            let (account, render) = credentials_output(&c).expect("a credentials command");
            let min_valid = time::Duration::seconds(MIN_VALID_SECONDS);
            let c = session.credentials(account, min_valid).await?;
            write_stdout(render(&c).expose())?;
        }
        Command::Serve { account, port } => {
            let bound = serve::bind(port).await?;
            let vars = bound.env(&session, account.as_deref()).await?;
            write_stdout(serve::export_lines(&vars).expose())?;
            log::info!("credentials endpoint on 127.0.0.1:{}", bound.port());
            tokio::select! {
                _ = bound.serve(session, account) => {}
                _ = stop_signal() => {}
            }
        }
        Command::Exec { account, command } => return exec(session, account, command).await,
        Command::Config { command } => config_cli::run(&session, command).await?,
        Command::Keys { command } => {
            keys_cli::run(&session, command).await?;
            tell_owner().await;
        }
    }
    Ok(0)
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut t), Ok(mut i)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Variables that would win over the endpoint in the SDKs' credential chain.
const SHADOWING: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// `exec`: a private endpoint for CMD's lifetime, signals passed on, CMD's status ours
/// (128 + n for a signal; 127 not found, 126 not runnable, as env(1)).
async fn exec(
    session: Arc<Session>,
    account: Option<String>,
    command: Vec<std::ffi::OsString>,
) -> Result<i32> {
    let bound = serve::bind(None).await?;
    let vars = bound.env(&session, account.as_deref()).await?;
    let (prog, args) = command
        .split_first()
        .ok_or_else(|| Error::config("no command given"))?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args);
    for v in SHADOWING {
        cmd.env_remove(v);
    }
    for (k, v) in &vars {
        cmd.env(k, v.expose());
    }
    let server = tokio::spawn(bound.serve(session, account));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            server.abort();
            let (code, why) = match e.kind() {
                std::io::ErrorKind::NotFound => (127, "not found"),
                std::io::ErrorKind::PermissionDenied => (126, "not executable"),
                _ => (126, "cannot be started"),
            };
            eprintln!(
                "astran-creds: {}: {why} ({e})",
                std::path::Path::new(prog).display()
            );
            return Ok(code);
        }
    };
    let status = wait_passing_signals(&mut child).await;
    server.abort();
    let status = status.map_err(|e| Error::io("cannot wait for the command", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return Ok(128 + sig);
        }
    }
    Ok(status.code().unwrap_or(1))
}

/// Wait for `child`, passing on SIGINT, SIGTERM, SIGHUP and SIGQUIT.
async fn wait_passing_signals(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            (SignalKind::interrupt(), rustix::process::Signal::INT),
            (SignalKind::terminate(), rustix::process::Signal::TERM),
            (SignalKind::hangup(), rustix::process::Signal::HUP),
            (SignalKind::quit(), rustix::process::Signal::QUIT),
        ];
        let mut streams = Vec::new();
        for (k, s) in kinds {
            streams.push((signal(k)?, s));
        }
        let pid = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32));
        loop {
            let next = futures_select(&mut streams);
            tokio::select! {
                status = child.wait() => return status,
                sig = next => {
                    if let Some(pid) = pid {
                        let _ = rustix::process::kill_process(pid, sig);
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    child.wait().await
}

/// The next of several signal streams to fire.
#[cfg(unix)]
async fn futures_select(
    streams: &mut [(tokio::signal::unix::Signal, rustix::process::Signal)],
) -> rustix::process::Signal {
    std::future::poll_fn(|cx| {
        for (s, sig) in streams.iter_mut() {
            if let std::task::Poll::Ready(Some(())) = s.poll_recv(cx) {
                return std::task::Poll::Ready(*sig);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Let a running tray agent or daemon pick up what this command changed.
async fn tell_owner() {
    astran_creds::control::notify_reload().await;
}

pub(crate) fn write_stdout(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())
        .and_then(|_| o.flush())
        .map_err(|e| Error::io("cannot write to standard output", e))
}

fn read_stdin_password() -> Result<Secret> {
    let mut buf = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| Error::config(format!("cannot read the password from standard input: {e}")))?;
    let p = buf
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&buf);
    if p.is_empty() {
        return Err(Error::config("no password on standard input"));
    }
    Ok(Secret::new(p))
}

fn prompt_password(email: &str) -> Result<Secret> {
    if !std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_err() {
        return Err(Error::config(
            "no terminal to ask for the password; pipe it in with --password-stdin",
        ));
    }
    let p = rpassword::prompt_password(format!("Password for {email}: ")).map_err(|e| {
        Error::config(format!(
            "cannot read the password from the terminal ({e}); use --password-stdin"
        ))
    })?;
    if p.is_empty() {
        return Err(Error::config("the password is empty"));
    }
    Ok(Secret::new(p))
}

fn prompt_line(prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::config(
            "no email given; pass --email or set ASTRAN_USERNAME",
        ));
    }
    eprint!("{prompt}");
    let mut s = String::new();
    std::io::stdin()
        .read_line(&mut s)
        .map_err(|e| Error::config(format!("cannot read the email: {e}")))?;
    let s = s.trim().to_owned();
    if s.is_empty() {
        return Err(Error::config("no email given"));
    }
    Ok(s)
}

async fn daemon(session: Arc<Session>, to: NotifyTo) -> Result<()> {
    use astran_creds::owner::{Hooks, Owner, Start};
    let notifier: Arc<dyn Notifier> = match to {
        NotifyTo::Desktop => Arc::new(Fanout(vec![
            Box::new(LogNotifier),
            Box::new(DesktopNotifier::new("astran-tray")),
        ])),
        NotifyTo::Log => Arc::new(LogNotifier),
    };
    // a config that cannot be used stops the daemon here, before it owns anything
    let accounts = session.accounts().await?;
    log::info!(
        "daemon started for {} account(s): {}; credentials file {}",
        accounts.len(),
        accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        session.credentials_file()?.path.display()
    );
    let owner = match Owner::start(session, notifier, Hooks::default()).await? {
        Start::Running(o) => o,
        Start::AlreadyRunning(path) => {
            return Err(Error::config(format!(
                "another astran-tray agent or astran-creds daemon is already running (it answers on {})",
                path.display()
            )))
        }
    };
    owner.run_until_stopped().await;
    log::info!("daemon stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    /// What clap makes of `line`, when it takes it.
    fn clap_of(line: &str) -> Option<Command> {
        let mut all = args(line);
        all.insert(0, "astran-creds".into());
        Cli::try_parse_from(all)
            .ok()
            .filter(|c| c.verbose == 0)
            .map(|c| c.command)
    }

    /// The plain forms read without clap mean to clap what they mean here, and anything else
    /// is left to clap.
    #[test]
    fn plain_forms_are_read_as_clap_reads_them() {
        let taken = [
            "login",
            "login --email a@b.c --password-stdin",
            "login --password-stdin --email=a@b.c",
            "login --account work --email a@b.c --password-stdin --profile p1 --force",
            "login --account=work --role-arn arn:a --duration 3600",
            "login --duration=900 --profile=x",
        ];
        for line in taken {
            let here = plain_login(args(line).into_iter());
            assert!(here.is_some(), "{line}");
            assert_eq!(
                format!("{here:?}"),
                format!("{:?}", clap_of(line)),
                "{line}"
            );
        }
        let left = [
            "login --browser",
            "login --device",
            "login -v --email a@b.c",
            "login --email a@b.c --email b@c.d",
            "login --password-stdin --password-stdin",
            "login --email",
            "login --email -v",
            "login --email=",
            "login --duration lots",
            "login --force=yes",
            "login --help",
            "login extra",
            "status",
            "logout --email a@b.c",
        ];
        for line in left {
            assert!(plain_login(args(line).into_iter()).is_none(), "{line}");
        }
        for line in ["credential-process", "credential-process --account work"] {
            let here = plain_credential_process(args(line).into_iter());
            let Some(Command::CredentialProcess { account }) = clap_of(line) else {
                panic!("{line}");
            };
            assert_eq!(here, Some(account), "{line}");
        }
        for line in ["credential-process -v", "credential-process --account"] {
            assert!(plain_credential_process(args(line).into_iter()).is_none());
        }
    }
}
