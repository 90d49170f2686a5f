//! Company-wide defaults: the system config under the user's file, key by key, its locked
//! keys, `config show`, and a system file that does not parse.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;

use common::*;
use std::process::Output;

/// `astran-creds ARGS` with the system config at `system` and no `ASTRAN_IDP_URL` (so the
/// token URL comes from the files), the password on stdin when given.
fn run(env: &Env, system: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = env.cmd(args);
    c.env_remove("ASTRAN_IDP_URL")
        .env("ASTRAN_SYSTEM_CONFIG", system);
    env.run_command(c, args, stdin)
}

fn setting<'a>(doc: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    doc["accounts"][0]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {doc}"))
}

#[test]
fn system_defaults_apply_key_by_key_and_a_locked_key_wins() {
    let env = Env::standard();
    let system = env.dir.path().join("system.toml");
    std::fs::write(
        &system,
        format!(
            "# pushed by IT\nlocked = [\"client_id\"]\n\n[defaults]\ntoken_url = \"{}\"\nclient_id = \"root-client\"\nduration_seconds = 1800\nmax_key_age_days = 30\n",
            env.idp.token_url
        ),
    )
    .unwrap();
    // the user's own values: one the lock ignores (the IdP knows no such client), one that wins
    let user = format!("[accounts.default]\nemail = \"{EMAIL}\"\nclient_id = \"my-client\"\nduration_seconds = 900\n");
    env.write_config(&user);

    let o = run(&env, &system, &["config", "show", "--json"], None);
    assert_ok(&o, "config show --json");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["system_config"], system.display().to_string());
    let t = setting(&doc, "token_url");
    assert_eq!(
        (t["value"].as_str(), t["source"].as_str()),
        (Some(env.idp.token_url.as_str()), Some("system"))
    );
    let c = setting(&doc, "client_id");
    assert_eq!(c["value"], "root-client");
    assert_eq!(c["source"], "system");
    assert_eq!(c["locked"], true);
    assert_eq!(c["ignored"], "my-client");
    let d = setting(&doc, "duration_seconds");
    assert_eq!(
        (d["value"].as_u64(), d["source"].as_str()),
        (Some(900), Some("user"))
    );
    assert_eq!(setting(&doc, "max_key_age_days")["source"], "system");
    let p = setting(&doc, "profile");
    assert_eq!(
        (p["value"].as_str(), p["source"].as_str()),
        (Some("astran"), Some("default"))
    );
    assert_eq!(
        setting(&doc, "endpoints")["source"],
        "environment",
        "ASTRAN_STS_ENDPOINT is set"
    );
    // said (as a warning: on stderr, here in the scene's log file)
    let log = env.log_text();
    assert!(
        log.contains("`client_id` in your config file is ignored"),
        "{log}"
    );

    // the words
    let o = run(&env, &system, &["config", "show"], None);
    assert_ok(&o, "config show");
    let (out, _) = text(&o);
    assert!(
        out.contains(
            "client_id = \"root-client\"  (system file, locked; your \"my-client\" is ignored)"
        ),
        "{out}"
    );
    assert!(out.contains("duration_seconds = 900  (user file)"), "{out}");

    // a login uses them: the system's token URL and locked client, the user's duration
    let o = run(
        &env,
        &system,
        &["login", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_ok(&o, "login with the system config");
    let exp = env
        .profile_value("astran", "x_security_token_expires")
        .unwrap();
    let exp =
        time::OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339).unwrap();
    let left = (exp - time::OffsetDateTime::now_utc()).whole_seconds();
    assert!(
        (800..=900).contains(&left),
        "the user's 900 s duration: {left}"
    );
    // and nothing of the system's was copied into the user's file
    let after = std::fs::read_to_string(&env.config).unwrap();
    assert!(
        !after.contains("token_url") && !after.contains("1800") && after.contains("my-client"),
        "{after}"
    );

    // without the lock, the user's client is used (and refused by the IdP: it knows no such client)
    std::fs::write(
        &system,
        format!("[defaults]\ntoken_url = \"{}\"\n", env.idp.token_url),
    )
    .unwrap();
    let o = run(
        &env,
        &system,
        &["login", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(
        !o.status.success(),
        "the user's client_id was not used: {:?}",
        text(&o)
    );
}

#[test]
fn a_system_config_that_does_not_parse_stops_every_command_and_writes_nothing() {
    let env = Env::standard();
    let system = env.dir.path().join("system.toml");
    std::fs::write(&system, "[defaults]\nprofile = \"corp]\\n[x\"\n").unwrap();
    for args in [
        &["status"][..],
        &["config", "show"],
        &["login", "--email", EMAIL, "--password-stdin"],
    ] {
        let o = run(&env, &system, args, Some(&format!("{PASSWORD}\n")));
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("invalid system config file")
                && err.contains("line 2")
                && err.contains("profile"),
            "{args:?}: {err}"
        );
    }
    assert!(!env.creds.exists(), "a file was written");
    assert!(!env.config.exists(), "the user's config was written");
    // a locked key that is not a key
    std::fs::write(&system, "locked = [\"token\"]\n").unwrap();
    let o = run(&env, &system, &["status"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("\"token\""), "{:?}", text(&o));
}
