//! "Stay signed in": `offline = true` asks Keycloak for `offline_access`. The offline session
//! outlives SSO Session Max, `status` says "offline session" with no guessed end, and a realm
//! that refuses the scope says how to turn it off.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;

use common::*;
use std::time::Duration;

fn scene(extra: &[&str], offline: bool) -> Env {
    let mut flags = vec!["--sso-idle", "2", "--sso-max", "3"];
    flags.extend_from_slice(extra);
    let env = Env::new(Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
        &flags,
    ));
    env.write_config(&format!(
        "[accounts.default]\nemail = \"{EMAIL}\"\nduration_seconds = 900\noffline = {offline}\n"
    ));
    env
}

#[test]
fn an_offline_session_outlives_sso_max_and_status_says_so() {
    let env = scene(&[], true);
    assert_ok(&env.login(&[]), "login (offline)");
    let st = env.status_json();
    let a = &st["accounts"][0];
    assert_eq!(a["offline_session"], true, "{st}");
    // Keycloak sends refresh_expires_in 0 for an offline token: no end is made up
    assert!(a["session_expires_at"].is_null(), "{st}");
    let o = env.run(&["status"], None);
    assert_ok(&o, "status");
    assert!(
        text(&o).0.contains("offline session (no fixed end)"),
        "{:?}",
        text(&o)
    );

    // past SSO Session Max (3 s) the offline session still renews
    std::thread::sleep(Duration::from_secs(4));
    let before = env.profile_value("astran", "aws_access_key_id").unwrap();
    assert_ok(
        &env.run(&["refresh"], None),
        "refresh after SSO max (offline)",
    );
    assert_ne!(
        env.profile_value("astran", "aws_access_key_id").unwrap(),
        before
    );
    assert_eq!(env.status_json()["accounts"][0]["offline_session"], true);
}

#[test]
fn an_online_session_ends_at_sso_max() {
    // the same scene without offline: the control for the test above
    let env = scene(&[], false);
    assert_ok(&env.login(&[]), "login");
    let a = &env.status_json()["accounts"][0];
    assert_eq!(a["offline_session"], false);
    assert!(!a["session_expires_at"].is_null());
    std::thread::sleep(Duration::from_secs(4));
    let o = env.run(&["refresh"], None);
    assert_eq!(o.status.code(), Some(4), "{:?}", text(&o));
}

#[test]
fn a_realm_that_refuses_offline_access_says_how_to_turn_it_off() {
    let env = scene(&["--no-offline-scope"], true);
    let o = env.login(&[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid_scope") && err.contains("offline = false"),
        "{err}"
    );
    assert!(!env.creds.exists(), "a credentials file was written");
}
