//! astran-test-idp: a local, Keycloak-faithful OpenID Connect provider for the
//! integration tests of astran-creds. See README.md in this crate.

mod http;
mod idp;
mod jwt;
mod pages;
mod sts;

use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;

use crate::idp::{ClientPolicy, Idp, IdpConfig, Lifetimes};
use crate::jwt::Keys;

#[derive(Parser, Debug)]
#[command(
    name = "astran-test-idp",
    version,
    about = "Keycloak-faithful test identity provider for astran-creds"
)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Realm name.
    #[arg(long, default_value = "root-accounts")]
    realm: String,
    /// The (public) client allowed to use the token endpoint.
    #[arg(long, default_value = "root-client")]
    client_id: String,
    /// A user, as EMAIL:PASSWORD:ROLE1,ROLE2 (roles may be empty). Repeatable.
    /// The password may contain ':'; the roles are after the last ':'.
    #[arg(long = "user", value_name = "EMAIL:PASSWORD:ROLES", value_parser = parse_user)]
    users: Vec<UserArg>,
    /// Access Token Lifespan, seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(1..))]
    access_lifespan: i64,
    /// SSO Session Idle, seconds.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(i64).range(1..))]
    sso_idle: i64,
    /// SSO Session Max, seconds.
    #[arg(long, default_value_t = 36000, value_parser = clap::value_parser!(i64).range(1..))]
    sso_max: i64,
    /// Offline Session Idle, seconds (Keycloak default: 30 days).
    #[arg(long, default_value_t = 2_592_000, value_parser = clap::value_parser!(i64).range(1..))]
    offline_idle: i64,
    /// Base of the issuer; the issuer is BASE/realms/REALM.
    /// Default: http://<bound address>/auth
    #[arg(long, value_name = "URL")]
    issuer_base: Option<String>,
    /// HTTP status for invalid_grant "Invalid user credentials":
    /// 401 as Keycloak up to 26.5, 400 as Keycloak 26.6 and later.
    #[arg(long, default_value_t = 401, value_parser = parse_invalid_grant_status)]
    invalid_grant_status: u16,
    /// PEM file with the RSA private key that signs tokens
    /// (default: the test key bundled with the crate).
    #[arg(long, value_name = "PATH", conflicts_with = "generate_key")]
    key_file: Option<std::path::PathBuf>,
    /// Generate a fresh RSA-2048 key at start-up instead of using the bundled one.
    #[arg(long)]
    generate_key: bool,
    /// The client lacks `offline_access` among its optional client scopes: asking for it is
    /// `invalid_scope`, as Keycloak answers (the scope is there by default).
    #[arg(long)]
    no_offline_scope: bool,
    /// The client requires PKCE with S256 (client attribute pkce.code.challenge.method=S256):
    /// an authorization request without code_challenge_method=S256 and a code_challenge
    /// is refused.
    #[arg(long)]
    require_pkce: bool,
    /// The client has "Standard flow" (the authorization code flow) disabled.
    #[arg(long)]
    no_standard_flow: bool,
    /// The client has "Direct access grants" (the password grant) disabled.
    #[arg(long)]
    no_direct_access_grants: bool,
    /// The client has "OAuth 2.0 Device Authorization Grant" disabled.
    #[arg(long)]
    no_device_grant: bool,
    /// OAuth 2.0 Device Code Lifespan, seconds (expires_in of a device code).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(i64).range(1..))]
    device_lifespan: i64,
    /// OAuth 2.0 Device Polling Interval, seconds (interval of a device code).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    device_interval: i64,
    /// The STS that `POST /sts` forwards to (moto in server mode) when no STS fault is set.
    #[arg(long, value_name = "URL")]
    sts_upstream: Option<String>,
}

#[derive(Clone, Debug)]
struct UserArg {
    email: String,
    password: String,
    roles: Vec<String>,
}

fn parse_user(s: &str) -> Result<UserArg, String> {
    let (email, rest) = s.split_once(':').ok_or("expected EMAIL:PASSWORD:ROLES")?;
    // Role ARNs contain colons, so the password ends at the first one (a password with a
    // colon can be set through POST /__test/users).
    let (password, roles) = rest
        .split_once(':')
        .ok_or("expected EMAIL:PASSWORD:ROLES")?;
    if email.trim().is_empty() {
        return Err("empty email".into());
    }
    let roles = roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(String::from)
        .collect();
    Ok(UserArg {
        email: email.to_string(),
        password: password.to_string(),
        roles,
    })
}

fn parse_invalid_grant_status(s: &str) -> Result<u16, String> {
    match s {
        "400" => Ok(400),
        "401" => Ok(401),
        _ => Err("must be 400 or 401".into()),
    }
}

fn main() {
    let cli = Cli::parse();
    let keys = match (&cli.key_file, cli.generate_key) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|pem| Keys::from_pem(&pem)),
        (None, true) => Keys::generate(),
        (None, false) => Keys::from_pem(jwt::BUNDLED_TEST_KEY_PEM),
    };
    let keys = keys.unwrap_or_else(|e| {
        eprintln!("astran-test-idp: {e}");
        std::process::exit(2);
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(cli, keys));
}

async fn run(cli: Cli, keys: Keys) {
    let listener = tokio::net::TcpListener::bind(cli.bind)
        .await
        .unwrap_or_else(|e| {
            eprintln!("astran-test-idp: cannot listen on {}: {e}", cli.bind);
            std::process::exit(2);
        });
    let addr = listener.local_addr().expect("bound address");
    let issuer_base = cli
        .issuer_base
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/auth"));
    let mut idp = Idp::new(
        IdpConfig {
            realm: cli.realm.clone(),
            client_id: cli.client_id.clone(),
            issuer_base,
            lifetimes: Lifetimes {
                access: cli.access_lifespan,
                sso_idle: cli.sso_idle,
                sso_max: cli.sso_max,
                offline_idle: cli.offline_idle,
            },
            invalid_grant_status: cli.invalid_grant_status,
            offline_scope: !cli.no_offline_scope,
            policy: ClientPolicy {
                standard_flow: !cli.no_standard_flow,
                direct_access_grants: !cli.no_direct_access_grants,
                device_grant: !cli.no_device_grant,
                pkce_method: cli.require_pkce.then(|| "S256".to_string()),
                device_lifespan: cli.device_lifespan,
                device_interval: cli.device_interval,
            },
        },
        keys,
    );
    for u in cli.users {
        idp.upsert_user(&u.email, &u.password, u.roles);
    }
    eprintln!(
        "astran-test-idp: realm {} client {} issuer {}",
        idp.realm(),
        cli.client_id,
        idp.issuer()
    );
    let app = http::router(http::AppState::with_sts(idp, cli.sts_upstream.clone()));

    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }

    tokio::select! {
        _ = http::serve(listener, app) => {}
        _ = shutdown_signal() => {}
    }
    // Connections held open by the "hang" fault must not delay the exit.
    std::process::exit(0);
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_flag_parsing() {
        let u = parse_user("a@b.c:pw:arn:demo:iam::1:root, arn:demo:iam::2:root").unwrap();
        assert_eq!((u.email.as_str(), u.password.as_str()), ("a@b.c", "pw"));
        assert_eq!(
            u.roles,
            vec!["arn:demo:iam::1:root", "arn:demo:iam::2:root"]
        );
        let u = parse_user("a@b.c:pw:").unwrap();
        assert!(u.roles.is_empty());
        assert!(parse_user("a@b.c:pw").is_err());
    }

    #[test]
    fn device_interval_must_be_at_least_one_second() {
        assert!(Cli::try_parse_from(["idp", "--device-interval", "0"]).is_err());
        let cli = Cli::try_parse_from(["idp", "--device-interval", "1"]).unwrap();
        assert_eq!((cli.device_interval, cli.device_lifespan), (1, 600));
    }
}
