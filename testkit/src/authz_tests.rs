//! Unit tests of `authz.rs`: the browser login, PKCE, codes, and the device grant.

use super::*;
use crate::idp::tests::{form, idp_with, refresh, T0};
use crate::jwt::payload_unverified;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    param(pairs, k)
}

fn auth_params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = form(&[
        ("client_id", "root-client"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st-1"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    for (k, v) in extra {
        p.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            p.push((k.to_string(), v.to_string()));
        }
    }
    p
}

fn login_action_of(page: &Outcome) -> String {
    match page {
        Outcome::Page(200, Page::Login { action, .. }) => action.clone(),
        other => panic!("expected the login page, got {other:?}"),
    }
}

/// Posts the login form; gives the outcome.
fn post_login(idp: &mut Idp, action: &str, user: &str, pw: &str, now: i64) -> Outcome {
    idp.login_action(
        &query(action),
        &form(&[("username", user), ("password", pw), ("login", "Sign In")]),
        now,
    )
}

/// A browser login up to the code: the redirect's query.
fn browser_login(idp: &mut Idp, extra: &[(&str, &str)], now: i64) -> Vec<(String, String)> {
    let page = idp.authorize(&auth_params(extra), now);
    let action = login_action_of(&page);
    match post_login(idp, &action, "alice@example.com", "s3cret", now) {
        Outcome::Redirect(to) => {
            assert!(to.starts_with(REDIRECT), "{to}");
            query(&to)
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

fn exchange(
    idp: &mut Idp,
    code: &str,
    verifier: Option<&str>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let mut f = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", "root-client"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ]);
    if let Some(v) = verifier {
        f.push(("code_verifier".into(), v.into()));
    }
    idp.token(&f, now, false)
}

fn err(r: Result<TokenResponse, OAuthError>) -> (u16, &'static str, String) {
    let e = r.expect_err("an error");
    (e.status, e.error, e.description)
}

fn redirect_query(o: Outcome) -> Vec<(String, String)> {
    match o {
        Outcome::Redirect(to) => {
            assert!(to.starts_with(REDIRECT), "{to}");
            query(&to)
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

#[test]
fn code_flow_issues_tokens_with_the_nonce() {
    let mut idp = idp_with(ClientPolicy::default());
    let q = browser_login(&mut idp, &[], T0);
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["state", "session_state", "iss", "code"]);
    assert_eq!(get(&q, "state"), Some("st-1"));
    assert_eq!(
        get(&q, "iss"),
        Some("http://127.0.0.1:1/auth/realms/root-accounts")
    );
    let r = exchange(&mut idp, get(&q, "code").unwrap(), Some(VERIFIER), T0 + 5).unwrap();
    assert_eq!(r.scope, "openid email profile");
    assert_eq!(Some(r.session_state.as_str()), get(&q, "session_state"));
    assert_eq!(r.refresh_expires_in, 1800);
    let id = payload_unverified(r.id_token.as_ref().unwrap());
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(idp.counters.code_grants, 1);
    assert_eq!(idp.active_sessions(T0 + 5), (1, 0));
    // The refresh grant works for this session as for a password login.
    let r2 = refresh(&mut idp, &r.refresh_token, T0 + 10).unwrap();
    assert_eq!(r2.session_state, r.session_state);
}

#[test]
fn code_flow_with_offline_access_gives_an_offline_session() {
    let mut idp = idp_with(ClientPolicy::default());
    let q = browser_login(&mut idp, &[("scope", "openid offline_access")], T0);
    let r = exchange(&mut idp, get(&q, "code").unwrap(), Some(VERIFIER), T0).unwrap();
    assert_eq!(r.refresh_expires_in, 0);
    assert_eq!(payload_unverified(&r.refresh_token)["typ"], "Offline");
    assert_eq!(idp.active_sessions(T0), (0, 1));
    refresh(&mut idp, &r.refresh_token, T0 + 100_000).unwrap();
}

#[test]
fn pkce_errors_at_the_token_endpoint() {
    let mut idp = idp_with(ClientPolicy::default());
    let cases = [
        (None, "PKCE code verifier not specified"),
        (
            Some("short"),
            "PKCE verification failed: Invalid code verifier",
        ),
        (
            Some("a-verifier-of-the-right-shape-but-the-wrong-value-0123"),
            "PKCE verification failed: Code mismatch",
        ),
    ];
    for (verifier, want) in cases {
        let q = browser_login(&mut idp, &[], T0);
        let e = err(exchange(&mut idp, get(&q, "code").unwrap(), verifier, T0));
        assert_eq!(e, (400, "invalid_grant", want.to_string()), "{verifier:?}");
    }
    // plain compares the verifier itself.
    let plain = "p".repeat(43);
    let q = browser_login(
        &mut idp,
        &[
            ("code_challenge", &plain),
            ("code_challenge_method", "plain"),
        ],
        T0,
    );
    exchange(&mut idp, get(&q, "code").unwrap(), Some(&plain), T0).unwrap();
    // No code_challenge at all: no PKCE check.
    let q = browser_login(
        &mut idp,
        &[("code_challenge", ""), ("code_challenge_method", "")],
        T0,
    );
    exchange(&mut idp, get(&q, "code").unwrap(), None, T0).unwrap();
}

#[test]
fn a_reused_code_is_refused_and_detaches_the_session() {
    let mut idp = idp_with(ClientPolicy::default());
    let q = browser_login(&mut idp, &[], T0);
    let code = get(&q, "code").unwrap().to_string();
    let r = exchange(&mut idp, &code, Some(VERIFIER), T0).unwrap();
    let e = err(exchange(&mut idp, &code, Some(VERIFIER), T0 + 1));
    assert_eq!(e, (400, "invalid_grant", "Code not valid".into()));
    // TokenManager.validateToken: the user session lost its client session.
    let e = err(refresh(&mut idp, &r.refresh_token, T0 + 2));
    assert_eq!(
        e,
        (
            400,
            "invalid_grant",
            "Session doesn't have required client".into()
        )
    );
    assert_eq!(idp.active_sessions(T0 + 2), (0, 0));
    // A code that failed its PKCE check is used up as well.
    let q = browser_login(&mut idp, &[], T0);
    let code = get(&q, "code").unwrap().to_string();
    err(exchange(&mut idp, &code, None, T0));
    let e = err(exchange(&mut idp, &code, Some(VERIFIER), T0));
    assert_eq!(e.2, "Code not valid");
    // Garbage.
    assert_eq!(
        err(exchange(&mut idp, "nope", None, T0)).2,
        "Code not valid"
    );
}

#[test]
fn an_expired_code_is_not_valid() {
    let mut idp = idp_with(ClientPolicy::default());
    let q = browser_login(&mut idp, &[], T0);
    let code = get(&q, "code").unwrap().to_string();
    let e = err(exchange(
        &mut idp,
        &code,
        Some(VERIFIER),
        T0 + CODE_LIFESPAN,
    ));
    assert_eq!(e, (400, "invalid_grant", "Code not valid".into()));
    // Just in time is fine.
    let q = browser_login(&mut idp, &[], T0);
    exchange(
        &mut idp,
        get(&q, "code").unwrap(),
        Some(VERIFIER),
        T0 + CODE_LIFESPAN - 1,
    )
    .unwrap();
}

#[test]
fn the_redirect_uri_must_be_the_same() {
    let mut idp = idp_with(ClientPolicy::default());
    let q = browser_login(&mut idp, &[], T0);
    let f = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", "root-client"),
        ("code", get(&q, "code").unwrap()),
        ("redirect_uri", "http://127.0.0.1:49153/callback"),
        ("code_verifier", VERIFIER),
    ]);
    let e = err(idp.token(&f, T0, false));
    assert_eq!(e, (400, "invalid_grant", "Incorrect redirect_uri".into()));
}

#[test]
fn authorization_endpoint_checks_in_keycloak_order() {
    let mut idp = idp_with(ClientPolicy::default());
    let page = |o: Outcome| match o {
        Outcome::Page(400, Page::Error(m)) => m,
        other => panic!("expected an error page, got {other:?}"),
    };
    assert_eq!(
        page(idp.authorize(&auth_params(&[("client_id", "")]), T0)),
        "Missing parameters: client_id"
    );
    assert_eq!(
        page(idp.authorize(&auth_params(&[("client_id", "other")]), T0)),
        "Client not found."
    );
    for bad in [
        "http://example.com/cb",
        "https://127.0.0.1:5000/cb",
        "http://127.0.0.1.example.com/cb",
        "http://localhost:x@evil.example/cb",
        "http://[::1]:5000/cb",
        "",
    ] {
        assert_eq!(
            page(idp.authorize(
                &auth_params(&[("redirect_uri", bad), ("response_type", "bogus")]),
                T0
            )),
            "Invalid parameter: redirect_uri",
            "{bad}"
        );
    }
    let e = |o: Outcome| {
        let q = redirect_query(o);
        (
            get(&q, "error").unwrap_or("").to_string(),
            get(&q, "error_description").map(String::from),
            get(&q, "state").map(String::from),
            get(&q, "iss").is_some(),
        )
    };
    let ed = |s: &str| Some(s.to_string());
    let st = ed("st-1");
    assert_eq!(
        e(idp.authorize(&auth_params(&[("response_type", "")]), T0)),
        (
            "invalid_request".into(),
            ed("Missing parameter: response_type"),
            st.clone(),
            true
        )
    );
    assert_eq!(
        e(idp.authorize(&auth_params(&[("response_type", "bogus")]), T0)),
        ("unsupported_response_type".into(), None, st.clone(), true)
    );
    assert_eq!(
        e(idp.authorize(&auth_params(&[("code_challenge_method", "S512")]), T0)),
        (
            "invalid_request".into(),
            ed("Invalid parameter: code_challenge_method"),
            st.clone(),
            true
        )
    );
    assert_eq!(
        e(idp.authorize(&auth_params(&[("scope", "openid bogus")]), T0)),
        (
            "invalid_scope".into(),
            ed("Invalid scopes: openid bogus"),
            st.clone(),
            true
        )
    );
    assert_eq!(
        e(idp.authorize(&auth_params(&[("prompt", "none"), ("state", "")]), T0)),
        ("login_required".into(), None, None, true)
    );
    let mut dup = auth_params(&[]);
    dup.push(("state".into(), "again".into()));
    assert_eq!(e(idp.authorize(&dup, T0)).1, ed("duplicated parameter"));
    // Any port on localhost too, and an existing query is kept.
    let o = idp.authorize(
        &auth_params(&[
            ("redirect_uri", "http://LOCALHOST:1234/cb?x=1"),
            ("prompt", "none"),
        ]),
        T0,
    );
    assert!(
        matches!(&o, Outcome::Redirect(to) if to.starts_with("http://localhost:1234/cb?x=1&error=login_required")),
        "{o:?}"
    );

    let mut strict = idp_with(ClientPolicy {
        pkce_method: Some("S256".into()),
        ..ClientPolicy::default()
    });
    assert_eq!(
        e(strict.authorize(&auth_params(&[("code_challenge", "")]), T0)).1,
        ed("Missing parameter: code_challenge")
    );
    assert_eq!(
        e(strict.authorize(
            &auth_params(&[("code_challenge", ""), ("code_challenge_method", "")]),
            T0
        ))
        .1,
        ed("Missing parameter: code_challenge_method")
    );

    let mut no_std = idp_with(ClientPolicy {
        standard_flow: false,
        ..ClientPolicy::default()
    });
    assert_eq!(
        e(no_std.authorize(&auth_params(&[]), T0)),
        (
            "unauthorized_client".into(),
            ed(STANDARD_FLOW_DISABLED),
            st,
            true
        )
    );

    let mut no_offline = idp_with(ClientPolicy::default());
    no_offline.offline_scope = false;
    assert_eq!(
        e(no_offline.authorize(&auth_params(&[("scope", "openid offline_access")]), T0)).0,
        "invalid_scope"
    );
}

#[test]
fn login_form_cancel_wrong_password_and_stale_pages() {
    let mut idp = idp_with(ClientPolicy::default());
    let action = login_action_of(&idp.authorize(&auth_params(&[]), T0));
    // Wrong password: the form again, with Keycloak's message and a new action.
    let again = post_login(&mut idp, &action, "alice@example.com", "nope", T0);
    let Outcome::Page(
        200,
        Page::Login {
            action: action2,
            error,
            username,
            ..
        },
    ) = again
    else {
        panic!("{again:?}")
    };
    assert_eq!(error, Some(INVALID_USER));
    assert_eq!(username, "alice@example.com");
    assert_ne!(action2, action);
    // The page from before is stale now.
    assert_eq!(
        post_login(&mut idp, &action, "alice@example.com", "s3cret", T0),
        Outcome::Page(400, Page::Error(LOGIN_TIMEOUT.into()))
    );
    // Cancel: access_denied, no description.
    let q = redirect_query(idp.login_action(&query(&action2), &form(&[("cancel", "Cancel")]), T0));
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["error", "state", "iss"]);
    assert_eq!(get(&q, "error"), Some("access_denied"));
    // A login left alone past the login timeout is gone.
    let action = login_action_of(&idp.authorize(&auth_params(&[]), T0));
    assert_eq!(
        post_login(
            &mut idp,
            &action,
            "alice@example.com",
            "s3cret",
            T0 + LOGIN_LIFESPAN
        ),
        Outcome::Page(400, Page::Error(LOGIN_TIMEOUT.into()))
    );
}

/// Starts a device login; gives (device_code, user_code as shown).
fn device_start(idp: &mut Idp, scope: Option<&str>, now: i64) -> (String, String) {
    let mut f = form(&[("client_id", "root-client")]);
    if let Some(s) = scope {
        f.push(("scope".into(), s.into()));
    }
    let r = idp.device_authorization(&f, now).unwrap();
    assert_eq!(r.user_code.len(), 9);
    assert!(r.user_code.chars().enumerate().all(|(i, c)| if i == 4 {
        c == '-'
    } else {
        c.is_ascii_uppercase()
    }));
    assert_eq!(
        r.verification_uri,
        "http://127.0.0.1:1/auth/realms/root-accounts/device"
    );
    assert_eq!(
        r.verification_uri_complete,
        format!("{}?user_code={}", r.verification_uri, r.user_code)
    );
    assert_eq!((r.expires_in, r.interval), (600, 5));
    (r.device_code, r.user_code)
}

/// The person: opens the verification page, logs in, answers the consent page.
fn device_person(idp: &mut Idp, user_code: &str, accept: bool, now: i64) -> Outcome {
    let action = login_action_of(&idp.device_verify(Some(user_code), now));
    let consent = post_login(idp, &action, "alice@example.com", "s3cret", now);
    let Outcome::Page(
        200,
        Page::Consent {
            action,
            code,
            client,
            scopes,
        },
    ) = consent
    else {
        panic!("{consent:?}")
    };
    assert_eq!(client, "root-client");
    assert!(scopes.contains(&"Email address"));
    let button = if accept {
        ("accept", "Yes")
    } else {
        ("cancel", "No")
    };
    idp.consent_action(&query(&action), &form(&[("code", &code), button]), now)
}

fn poll(idp: &mut Idp, dc: &str, now: i64) -> Result<TokenResponse, OAuthError> {
    idp.token(
        &form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "root-client"),
            ("device_code", dc),
        ]),
        now,
        false,
    )
}

#[test]
fn device_flow_pending_slow_down_approved_reused() {
    let mut idp = idp_with(ClientPolicy::default());
    let (dc, uc) = device_start(&mut idp, Some("openid"), T0);
    let pending = (
        400,
        "authorization_pending",
        "The authorization request is still pending".to_string(),
    );
    assert_eq!(err(poll(&mut idp, &dc, T0)), pending);
    let slow = (400, "slow_down", "Slow down".to_string());
    assert_eq!(err(poll(&mut idp, &dc, T0 + 4)), slow);
    // slow_down does not restart the interval.
    assert_eq!(err(poll(&mut idp, &dc, T0 + 5)), pending);
    let done = device_person(&mut idp, &uc.to_lowercase(), true, T0 + 6);
    assert_eq!(
        done,
        Outcome::Redirect("http://127.0.0.1:1/auth/realms/root-accounts/device/status".into())
    );
    assert_eq!(
        Idp::device_status(None),
        Page::Info {
            header: "Device Login Successful",
            message: "You may close this browser window and go back to your device."
        }
    );
    assert_eq!(err(poll(&mut idp, &dc, T0 + 7)), slow);
    let r = poll(&mut idp, &dc, T0 + 10).unwrap();
    assert_eq!(r.scope, "openid email profile");
    assert!(r.id_token.is_some());
    assert_eq!(r.refresh_expires_in, 1800);
    assert_eq!(idp.counters.device_grants, 5);
    refresh(&mut idp, &r.refresh_token, T0 + 11).unwrap();
    // Once: the device code is gone, and so is the user code.
    assert_eq!(
        err(poll(&mut idp, &dc, T0 + 20)),
        (400, "invalid_grant", "Device code not valid".into())
    );
    assert_eq!(
        idp.device_verify(Some(&uc), T0 + 20),
        Outcome::Page(
            200,
            Page::UserCode {
                action: "http://127.0.0.1:1/auth/realms/root-accounts/device".into(),
                error: Some(INVALID_USER_CODE)
            }
        )
    );
    assert_eq!(
        err(poll(&mut idp, "unknown", T0 + 20)).2,
        "Device code not valid"
    );
}

#[test]
fn device_flow_denied_expired_and_offline() {
    let mut idp = idp_with(ClientPolicy {
        device_interval: 1,
        ..ClientPolicy::default()
    });
    let (dc, uc) = device_start_with_interval(&mut idp, T0);
    let no = device_person(&mut idp, &uc, false, T0);
    assert_eq!(
        no,
        Outcome::Redirect(
            "http://127.0.0.1:1/auth/realms/root-accounts/device/status?error=access_denied".into()
        )
    );
    assert_eq!(
        Idp::device_status(Some("access_denied")),
        Page::Info {
            header: "Device Login Failed",
            message: "Consent denied for connecting the device."
        }
    );
    assert_eq!(
        err(poll(&mut idp, &dc, T0 + 1)),
        (
            400,
            "access_denied",
            "The end user denied the authorization request".into()
        )
    );
    // Expired: expired_token until the store drops the code.
    let (dc, uc) = device_start_with_interval(&mut idp, T0);
    assert_eq!(
        err(poll(&mut idp, &dc, T0 + 601)),
        (400, "expired_token", "Device code is expired".into())
    );
    assert!(matches!(
        idp.device_verify(Some(&uc), T0 + 601),
        Outcome::Page(
            200,
            Page::UserCode {
                error: Some(EXPIRED_USER_CODE),
                ..
            }
        )
    ));
    assert_eq!(
        err(poll(&mut idp, &dc, T0 + 600 + 1 + 10)).2,
        "Device code not valid"
    );
    // offline_access gives an offline session; unknown scopes are dropped, not refused.
    let r = idp
        .device_authorization(
            &form(&[
                ("client_id", "root-client"),
                ("scope", "offline_access bogus"),
            ]),
            T0,
        )
        .unwrap();
    let yes = device_person(&mut idp, &r.user_code, true, T0);
    assert!(matches!(yes, Outcome::Redirect(_)));
    let t = poll(&mut idp, &r.device_code, T0 + 1).unwrap();
    assert_eq!(t.scope, "offline_access email profile");
    assert_eq!(t.refresh_expires_in, 0);
    assert_eq!(idp.active_sessions(T0 + 1).1, 1);
}

fn device_start_with_interval(idp: &mut Idp, now: i64) -> (String, String) {
    let r = idp
        .device_authorization(&form(&[("client_id", "root-client")]), now)
        .unwrap();
    assert_eq!(r.interval, 1);
    (r.device_code, r.user_code)
}

#[test]
fn device_verification_page_and_wrong_password() {
    let mut idp = idp_with(ClientPolicy::default());
    let (_, uc) = device_start(&mut idp, None, T0);
    assert!(matches!(
        idp.device_verify(None, T0),
        Outcome::Page(200, Page::UserCode { error: None, .. })
    ));
    assert!(matches!(
        idp.device_verify(Some("ABCD-EFGH"), T0),
        Outcome::Page(
            200,
            Page::UserCode {
                error: Some(INVALID_USER_CODE),
                ..
            }
        )
    ));
    let action = login_action_of(&idp.device_verify(Some(&uc.replace('-', "")), T0));
    let again = post_login(&mut idp, &action, "alice@example.com", "nope", T0);
    assert!(matches!(
        again,
        Outcome::Page(
            200,
            Page::Login {
                error: Some(INVALID_USER),
                ..
            }
        )
    ));
}

#[test]
fn client_policies_refuse_grants() {
    let mut idp = idp_with(ClientPolicy {
        direct_access_grants: false,
        device_grant: false,
        ..ClientPolicy::default()
    });
    let e = err(idp.token(
        &form(&[
            ("grant_type", "password"),
            ("client_id", "root-client"),
            ("username", "alice@example.com"),
            ("password", "s3cret"),
        ]),
        T0,
        false,
    ));
    assert_eq!(
        e,
        (
            400,
            "unauthorized_client",
            "Client not allowed for direct access grants".into()
        )
    );
    let e = idp
        .device_authorization(&form(&[("client_id", "root-client")]), T0)
        .unwrap_err();
    assert_eq!(
        (e.status, e.error, e.description.as_str()),
        (400, "unauthorized_client", DEVICE_FLOW_DISABLED)
    );
    let e = idp
        .device_authorization(&form(&[("client_id", "nope")]), T0)
        .unwrap_err();
    assert_eq!((e.status, e.error), (401, "invalid_client"));
    assert_eq!(
        err(poll(&mut idp, "x", T0)).2,
        "Client not allowed OAuth 2.0 Device Authorization Grant"
    );
    assert_eq!(idp.counters.password_grants, 1);
}

#[test]
fn loopback_redirects() {
    assert_eq!(
        verify_loopback_redirect("http://127.0.0.1:8400/cb?x=y").as_deref(),
        Some("http://127.0.0.1:8400/cb?x=y")
    );
    assert!(verify_loopback_redirect("http://localhost/").is_some());
    assert!(verify_loopback_redirect("http://localhost").is_some());
    assert!(verify_loopback_redirect("http://127.0.0.1:/cb").is_none());
    assert!(verify_loopback_redirect("http://evil@127.0.0.1/cb").is_none());
    assert_eq!(
        add_params("http://h/cb?a=1#f", false, &[("e", "a b:c")]),
        "http://h/cb?a=1&e=a%20b%3Ac#f"
    );
}
