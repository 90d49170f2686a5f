//! Browser login (the authorization code flow with PKCE) and the OAuth 2.0 device
//! authorization grant (RFC 8628), as Keycloak does them. This is a child module of
//! `idp` (it shares the IdP's private state) and, like it, free of I/O: every call
//! takes an explicit `now`. What a browser gets back is an [`Outcome`]: a redirect
//! or one of the HTML [`Page`]s that `pages.rs` renders.
//!
//! The rules and texts follow keycloak/keycloak, `services/src/main/java/org/keycloak/`:
//! `protocol/oidc/endpoints/AuthorizationEndpoint.java` and
//! `AuthorizationEndpointChecker.java` (the order of the checks and their texts),
//! `protocol/oidc/utils/RedirectUtils.java` (loopback redirect URIs, any port),
//! `protocol/oidc/OIDCLoginProtocol.java` (the redirect parameters),
//! `protocol/oidc/utils/OAuth2CodeParser.java` and `grants/AuthorizationCodeGrantType.java`
//! (single-use codes), `protocol/oidc/utils/PkceUtils.java`,
//! `protocol/oidc/grants/device/endpoints/DeviceEndpoint.java` and
//! `grants/device/DeviceGrantType.java`, the login theme's `messages_en.properties`.

use std::collections::HashMap;

use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{new_uuid, param, stable_sub, Idp, OAuthError, Session, TokenResponse};
use crate::jwt;

/// Realm "Client login timeout" (`accessCodeLifespan`, Keycloak default 60 s): the
/// lifetime of an authorization code.
pub const CODE_LIFESPAN: i64 = 60;
/// Realm "Login timeout" (`accessCodeLifespanLogin`, Keycloak default 30 min): how long an
/// unfinished login (authentication session) stays usable after its last step.
pub const LOGIN_LIFESPAN: i64 = 1800;
/// Id of the "Username Password Form" execution of the browser flow, as in the
/// `execution` parameter of Keycloak's login form action (a fixed UUID here).
const PASSWORD_FORM_EXECUTION: &str = "1c7e3f5a-4b2d-4e8f-9a61-0d2c5b7e8f34";

// Texts of the login theme (messages_en.properties) and the endpoints.
pub const INVALID_USER: &str = "Invalid username or password.";
pub const LOGIN_TIMEOUT: &str =
    "Your login attempt timed out.  Login will start from the beginning.";
pub const INVALID_USER_CODE: &str = "Invalid code, please try again.";
pub const EXPIRED_USER_CODE: &str =
    "The code has expired. Please go back to your device and try connecting again.";
const STANDARD_FLOW_DISABLED: &str = "Client is not allowed to initiate browser login with given response_type. Standard flow is disabled for the client.";
const IMPLICIT_FLOW_DISABLED: &str = "Client is not allowed to initiate browser login with given response_type. Implicit flow is disabled for the client.";
const DEVICE_FLOW_DISABLED: &str = "Client is not allowed to initiate OAuth 2.0 Device Authorization Grant. The flow is disabled for the client.";

/// Parameters of an authorization request that may appear only once
/// (`AuthzEndpointRequestParser.KNOWN_REQ_PARAMS`, the ones this IdP reads).
const SINGLE_PARAMS: [&str; 10] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "prompt",
    "code_challenge",
    "code_challenge_method",
];

/// What the one client allows, as its settings in Keycloak's admin console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientPolicy {
    /// "Standard flow" (authorization code).
    pub standard_flow: bool,
    /// "Direct access grants" (the password grant).
    pub direct_access_grants: bool,
    /// "OAuth 2.0 Device Authorization Grant".
    pub device_grant: bool,
    /// Client attribute `pkce.code.challenge.method` ("Proof Key for Code Exchange Code
    /// Challenge Method"); `Some("S256")` with `--require-pkce`.
    pub pkce_method: Option<String>,
    /// "OAuth 2.0 Device Code Lifespan", seconds.
    pub device_lifespan: i64,
    /// "OAuth 2.0 Device Polling Interval", seconds.
    pub device_interval: i64,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy {
            standard_flow: true,
            direct_access_grants: true,
            device_grant: true,
            pkce_method: None,
            device_lifespan: 600,
            device_interval: 5,
        }
    }
}

/// What a browser request gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 302 to this URL.
    Redirect(String),
    /// An HTML page with this status.
    Page(u16, Page),
}

/// The HTML pages, named after the Keycloak login theme templates they imitate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    /// `error.ftl`: "We are sorry..." and the message.
    Error(String),
    /// `login.ftl`: the username and password form.
    Login {
        action: String,
        username: String,
        error: Option<&'static str>,
        /// Value of the `AUTH_SESSION_ID` cookie.
        auth_session_id: String,
    },
    /// `login-oauth2-device-verify-user-code.ftl`: the form asking for the user code.
    UserCode {
        action: String,
        error: Option<&'static str>,
    },
    /// `login-oauth-grant.ftl`: "Grant Access to <client>", Yes / No.
    Consent {
        action: String,
        code: String,
        client: String,
        scopes: Vec<&'static str>,
    },
    /// `info.ftl`: a header and a message (the device login result).
    Info {
        header: &'static str,
        message: &'static str,
    },
}

/// `OAuth2DeviceAuthorizationResponse`, fields in Keycloak's order.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceAuthResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Codes, logins in progress and device codes.
#[derive(Default)]
pub(super) struct AuthzState {
    /// Authentication sessions (logins in progress), by `tab_id`.
    auth_sessions: HashMap<String, AuthSession>,
    /// Authorization codes, by the UUID that starts the code.
    codes: HashMap<String, CodeData>,
    /// Device codes, by device code.
    devices: HashMap<String, DeviceCode>,
    /// User code (8 letters, no dash) to device code.
    user_codes: HashMap<String, String>,
}

struct AuthSession {
    root_id: String,
    /// The active code of the page last shown; a page from before is stale.
    session_code: String,
    touched: i64,
    kind: AuthKind,
    /// Set once the user logged in, on the way to the consent page (device logins).
    consent_for: Option<String>,
}

enum AuthKind {
    Browser(AuthRequest),
    Device { user_code: String },
}

struct AuthRequest {
    /// Where to redirect (the host lower-cased, as `RedirectUtils` returns it).
    redirect: String,
    /// The `redirect_uri` parameter as sent, which the token request must repeat.
    redirect_param: String,
    state: Option<String>,
    nonce: Option<String>,
    scope: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// `response_type=none`: the redirect carries no code.
    response_none: bool,
}

struct CodeData {
    sid: String,
    redirect_param: String,
    scope: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// The code store drops the code at this time.
    expires: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved { sid: String },
    Denied,
}

struct DeviceCode {
    user_code: String,
    scope: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// `isExpired()` once `now > expires`.
    expires: i64,
    /// The single-use store drops the entry at this time (expires + interval + 10 s,
    /// "to inform expired_token to the client").
    purge_at: i64,
    interval: i64,
    /// Last poll that was let through (`isPollingAllowed` puts a key for `interval` s).
    last_poll: Option<i64>,
    status: DeviceStatus,
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill(b.as_mut_slice());
    jwt::b64(&b)
}

fn random_user_code() -> String {
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
        .collect()
}

/// The user code as shown, `XXXX-XXXX`.
fn display_user_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// The user code as typed, normalised: upper case, without dashes or spaces.
fn format_user_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `uri` with these parameters added to its query (or, for `fragment`, as its fragment),
/// as `OIDCRedirectUriBuilder` does.
fn add_params(uri: &str, fragment: bool, params: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect();
    let encoded = encoded.join("&");
    let (base, frag) = match uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (uri, None),
    };
    if fragment {
        return format!("{base}#{encoded}");
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    match frag {
        Some(f) => format!("{base}{sep}{encoded}#{f}"),
        None => format!("{base}{sep}{encoded}"),
    }
}

/// `RedirectUtils.verifyRedirectUri` for a client whose valid redirect URIs are
/// `http://127.0.0.1/*` and `http://localhost/*`: a loopback URI matches with any port
/// (RFC 8252 §7.3). Gives the URI to redirect to (scheme and host lower-cased), or None.
pub fn verify_loopback_redirect(uri: &str) -> Option<String> {
    if uri.len() < 7 || !uri[..7].eq_ignore_ascii_case("http://") {
        return None;
    }
    // lowerCaseHostname: everything before the first '/' after the scheme.
    let uri = match uri[7..].find('/') {
        Some(i) => format!("{}{}", uri[..7 + i].to_lowercase(), &uri[7 + i..]),
        None => uri.to_lowercase(),
    };
    let without_query = uri.split('?').next().unwrap_or("");
    let authority_end = without_query[7..]
        .find(['/', '#'])
        .map_or(without_query.len(), |i| i + 7);
    let (host, port) = match without_query[7..authority_end].split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (&without_query[7..authority_end], None),
    };
    if !matches!(host, "127.0.0.1" | "localhost") {
        return None;
    }
    if let Some(p) = port {
        // A port must be a port: "localhost:x@evil" is not a loopback URI.
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    Some(uri)
}

fn valid_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn s256(verifier: &str) -> String {
    jwt::b64(&Sha256::digest(verifier.as_bytes()))
}

/// `PkceUtils.checkParamsForPkce(Not)EnforcedClient` at the token endpoint.
fn check_code_verifier(
    verifier: Option<&str>,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<(), OAuthError> {
    let Some(challenge) = challenge else {
        return Ok(());
    };
    let Some(verifier) = verifier else {
        return Err(OAuthError::invalid_grant(
            "PKCE code verifier not specified",
        ));
    };
    if !valid_pkce_value(verifier) {
        return Err(OAuthError::invalid_grant(
            "PKCE verification failed: Invalid code verifier",
        ));
    }
    let encoded = if method == Some("S256") {
        s256(verifier)
    } else {
        verifier.to_string()
    };
    if encoded != challenge {
        return Err(OAuthError::invalid_grant(
            "PKCE verification failed: Code mismatch",
        ));
    }
    Ok(())
}

fn duplicated(params: &[(String, String)]) -> bool {
    SINGLE_PARAMS
        .iter()
        .any(|name| params.iter().filter(|(k, _)| k == name).count() > 1)
}

impl Idp {
    fn client_uuid(&self) -> String {
        stable_sub(&self.realm, &format!("client:{}", self.client_id))
    }

    /// Drops what Keycloak's stores would have let expire.
    fn expire_authz(&mut self, now: i64) {
        let a = &mut self.authz;
        a.auth_sessions
            .retain(|_, s| now < s.touched + LOGIN_LIFESPAN);
        a.codes.retain(|_, c| now < c.expires);
        a.devices.retain(|_, d| now < d.purge_at);
        let devices = &a.devices;
        a.user_codes.retain(|_, dc| devices.contains_key(dc));
    }

    fn error_page(message: impl Into<String>) -> Outcome {
        Outcome::Page(400, Page::Error(message.into()))
    }

    fn timeout_page() -> Outcome {
        Self::error_page(LOGIN_TIMEOUT)
    }

    /// `AuthorizationEndpoint.redirectErrorToClient`: error, error_description (if any),
    /// state (if any), iss.
    fn error_redirect(
        &self,
        uri: &str,
        fragment: bool,
        error: &str,
        description: Option<&str>,
        state: Option<&str>,
    ) -> Outcome {
        let mut p = vec![("error", error)];
        if let Some(d) = description {
            p.push(("error_description", d));
        }
        if let Some(s) = state {
            p.push(("state", s));
        }
        p.push(("iss", self.issuer.as_str()));
        Outcome::Redirect(add_params(uri, fragment, &p))
    }

    /// `AuthorizationEndpointChecker.checkPKCEParams`: (error, description) on failure.
    fn check_pkce_params(
        &self,
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<(), (&'static str, String)> {
        let invalid = |d: &str| Err(("invalid_request", d.to_string()));
        if let Some(required) = self.policy.pkce_method.as_deref() {
            let Some(method) = method else {
                return invalid("Missing parameter: code_challenge_method");
            };
            if method != required {
                return invalid(
                    "Invalid parameter: code challenge method is not matching the configured one",
                );
            }
            let Some(challenge) = challenge else {
                return invalid("Missing parameter: code_challenge");
            };
            if !valid_pkce_value(challenge) {
                return invalid("Invalid parameter: code_challenge");
            }
            return Ok(());
        }
        let Some(challenge) = challenge else {
            return match method {
                Some(_) => invalid("Missing parameter: code_challenge"),
                None => Ok(()),
            };
        };
        if let Some(m) = method {
            if m != "S256" && m != "plain" {
                return invalid("Invalid parameter: code_challenge_method");
            }
        }
        if !valid_pkce_value(challenge) {
            return invalid("Invalid parameter: code_challenge");
        }
        Ok(())
    }

    fn new_auth_session(&mut self, kind: AuthKind, now: i64) -> String {
        let tab_id = random_b64(8);
        self.authz.auth_sessions.insert(
            tab_id.clone(),
            AuthSession {
                root_id: new_uuid(),
                session_code: random_b64(32),
                touched: now,
                kind,
                consent_for: None,
            },
        );
        tab_id
    }

    /// The login form of this authentication session, with a fresh active code.
    fn login_page(&mut self, tab_id: &str, username: &str, error: Option<&'static str>) -> Page {
        let (code, s) = renew_session_code(&mut self.authz.auth_sessions, tab_id);
        Page::Login {
            action: format!(
                "{}/login-actions/authenticate?session_code={}&execution={}&client_id={}&tab_id={}",
                self.issuer,
                encode_component(&code),
                PASSWORD_FORM_EXECUTION,
                encode_component(&self.client_id),
                encode_component(tab_id),
            ),
            username: username.to_string(),
            error,
            auth_session_id: s.root_id.clone(),
        }
    }

    fn consent_page(&mut self, tab_id: &str) -> Page {
        let (code, s) = renew_session_code(&mut self.authz.auth_sessions, tab_id);
        let scope = match &s.kind {
            AuthKind::Device { user_code } => self
                .authz
                .user_codes
                .get(user_code)
                .and_then(|dc| self.authz.devices.get(dc))
                .and_then(|d| d.scope.clone()),
            AuthKind::Browser(r) => r.scope.clone(),
        };
        let (_, _, offline) = Self::lenient_scope(scope.as_deref(), self.offline_scope);
        // The consent texts of the client scopes (`emailScopeConsentText` …).
        let mut scopes = vec!["Email address", "User profile"];
        if offline {
            scopes.push("Offline Access");
        }
        Page::Consent {
            action: format!(
                "{}/login-actions/consent?client_id={}&tab_id={}",
                self.issuer,
                encode_component(&self.client_id),
                encode_component(tab_id),
            ),
            code,
            client: self.client_id.clone(),
            scopes,
        }
    }

    /// The scope of a request that was not validated (the device endpoint does not check
    /// it): unknown scopes are dropped, as `TokenManager.getRequestedClientScopes` does.
    fn lenient_scope(requested: Option<&str>, offline_scope: bool) -> (String, bool, bool) {
        let kept: Vec<&str> = requested
            .unwrap_or("")
            .split(' ')
            .filter(|s| {
                *s == "openid"
                    || super::DEFAULT_SCOPES.contains(s)
                    || (super::OPTIONAL_SCOPES.contains(s)
                        && (offline_scope || *s != "offline_access"))
            })
            .collect();
        let kept = kept.join(" ");
        Self::resolve_scope(Some(&kept), offline_scope).expect("only known scopes are left")
    }

    /// The session a code or device login created, made offline when the scope asks for
    /// offline_access (the offline session copies the user session and keeps its id).
    fn make_offline(&mut self, sid: &str, now: i64) {
        if let Some(s) = self.sessions.get_mut(sid) {
            s.offline = true;
            s.started = now;
            s.last_refresh = now;
        }
    }

    /// GET (or POST) .../protocol/openid-connect/auth
    pub fn authorize(&mut self, params: &[(String, String)], now: i64) -> Outcome {
        self.expire_authz(now);
        let p = |k: &str| param(params, k);
        // AuthorizationEndpointBase.checkClient: an error page, nothing to redirect to.
        match p("client_id") {
            None => return Self::error_page("Missing parameters: client_id"),
            Some(c) if c != self.client_id => return Self::error_page("Client not found."),
            Some(_) => {}
        }
        // checkRedirectUri
        let Some(redirect) = p("redirect_uri").and_then(verify_loopback_redirect) else {
            return Self::error_page("Invalid parameter: redirect_uri");
        };
        let state = p("state");
        // checkResponseType
        let Some(response_type) = p("response_type") else {
            return self.error_redirect(
                &redirect,
                false,
                "invalid_request",
                Some("Missing parameter: response_type"),
                state,
            );
        };
        let types: Vec<&str> = response_type.split(' ').filter(|t| !t.is_empty()).collect();
        let parsed = !types.is_empty()
            && types
                .iter()
                .all(|t| matches!(*t, "code" | "token" | "id_token" | "none"))
            && !(types.contains(&"none") && types.len() > 1);
        if !parsed {
            return self.error_redirect(&redirect, false, "unsupported_response_type", None, state);
        }
        let implicit = types.iter().any(|t| *t == "token" || *t == "id_token");
        let response_none = types == ["none"];
        if (types.contains(&"code") || response_none) && !self.policy.standard_flow {
            return self.error_redirect(
                &redirect,
                implicit,
                "unauthorized_client",
                Some(STANDARD_FLOW_DISABLED),
                state,
            );
        }
        if implicit {
            // The implicit flow is off (Keycloak's default); its answer goes in the fragment.
            return self.error_redirect(
                &redirect,
                true,
                "unauthorized_client",
                Some(IMPLICIT_FLOW_DISABLED),
                state,
            );
        }
        // checkInvalidRequestMessage
        if duplicated(params) {
            return self.error_redirect(
                &redirect,
                false,
                "invalid_request",
                Some("duplicated parameter"),
                state,
            );
        }
        // checkValidScope
        if let Err(e) = Self::resolve_scope(p("scope"), self.offline_scope) {
            return self.error_redirect(&redirect, false, e.error, Some(&e.description), state);
        }
        // checkPKCEParams
        if let Err((error, description)) =
            self.check_pkce_params(p("code_challenge"), p("code_challenge_method"))
        {
            return self.error_redirect(&redirect, false, error, Some(&description), state);
        }
        // handleBrowserAuthenticationRequest: prompt=none needs an SSO session, and this IdP
        // keeps none for browsers.
        if p("prompt").is_some_and(|v| v.split(' ').any(|x| x == "none")) {
            return self.error_redirect(&redirect, false, "login_required", None, state);
        }
        let request = AuthRequest {
            redirect,
            redirect_param: p("redirect_uri").unwrap_or_default().to_string(),
            state: state.map(String::from),
            nonce: p("nonce").map(String::from),
            scope: p("scope").map(String::from),
            code_challenge: p("code_challenge").map(String::from),
            code_challenge_method: p("code_challenge_method").map(String::from),
            response_none,
        };
        let tab = self.new_auth_session(AuthKind::Browser(request), now);
        Outcome::Page(200, self.login_page(&tab, "", None))
    }

    /// The authentication session a login-actions request is for, if its code is the
    /// active one and the login has not timed out.
    fn current_auth_session(
        &mut self,
        tab_id: Option<&str>,
        code: Option<&str>,
        now: i64,
    ) -> Option<String> {
        self.expire_authz(now);
        let tab = tab_id?;
        let s = self.authz.auth_sessions.get_mut(tab)?;
        if Some(s.session_code.as_str()) != code {
            return None;
        }
        s.touched = now;
        Some(tab.to_string())
    }

    /// GET .../login-actions/authenticate: the page of a login in progress again.
    pub fn login_page_again(&mut self, query: &[(String, String)], now: i64) -> Outcome {
        let Some(tab) =
            self.current_auth_session(param(query, "tab_id"), param(query, "session_code"), now)
        else {
            return Self::timeout_page();
        };
        if self.authz.auth_sessions[&tab].consent_for.is_some() {
            return Outcome::Page(200, self.consent_page(&tab));
        }
        Outcome::Page(200, self.login_page(&tab, "", None))
    }

    /// POST .../login-actions/authenticate (the login form).
    pub fn login_action(
        &mut self,
        query: &[(String, String)],
        form: &[(String, String)],
        now: i64,
    ) -> Outcome {
        let Some(tab) =
            self.current_auth_session(param(query, "tab_id"), param(query, "session_code"), now)
        else {
            return Self::timeout_page();
        };
        if self.authz.auth_sessions[&tab].consent_for.is_some() {
            return Self::timeout_page();
        }
        // UsernamePasswordForm.action: "cancel" ends the login (Error.CANCELLED_BY_USER).
        if param(form, "cancel").is_some() {
            let s = self.authz.auth_sessions.remove(&tab).expect("checked");
            return match s.kind {
                AuthKind::Browser(r) => self.error_redirect(
                    &r.redirect,
                    false,
                    "access_denied",
                    None,
                    r.state.as_deref(),
                ),
                AuthKind::Device { user_code } => self.deny_device(&user_code),
            };
        }
        let username = param(form, "username").unwrap_or("");
        let user = self
            .users
            .get(&username.trim().to_lowercase())
            .filter(|u| param(form, "password") == Some(u.password.as_str()))
            .cloned();
        let Some(user) = user else {
            return Outcome::Page(200, self.login_page(&tab, username, Some(INVALID_USER)));
        };
        if matches!(self.authz.auth_sessions[&tab].kind, AuthKind::Device { .. }) {
            // Device logins always ask for consent.
            self.authz
                .auth_sessions
                .get_mut(&tab)
                .expect("checked")
                .consent_for = Some(user.email.clone());
            return Outcome::Page(200, self.consent_page(&tab));
        }
        let s = self.authz.auth_sessions.remove(&tab).expect("checked");
        let AuthKind::Browser(r) = s.kind else {
            unreachable!("device logins went to consent")
        };
        let sid = new_uuid();
        self.sessions
            .insert(sid.clone(), Session::new(&user.email, now));
        let code = (!r.response_none).then(|| {
            let id = new_uuid();
            let code = format!("{id}.{sid}.{}", self.client_uuid());
            self.authz.codes.insert(
                id,
                CodeData {
                    sid: sid.clone(),
                    redirect_param: r.redirect_param.clone(),
                    scope: r.scope.clone(),
                    nonce: r.nonce.clone(),
                    code_challenge: r.code_challenge.clone(),
                    code_challenge_method: r.code_challenge_method.clone(),
                    expires: now + CODE_LIFESPAN,
                },
            );
            code
        });
        // OIDCLoginProtocol.authenticated: state, session_state, iss, code.
        let mut p: Vec<(&str, &str)> = Vec::new();
        if let Some(st) = r.state.as_deref() {
            p.push(("state", st));
        }
        p.push(("session_state", &sid));
        p.push(("iss", &self.issuer));
        if let Some(c) = code.as_deref() {
            p.push(("code", c));
        }
        Outcome::Redirect(add_params(&r.redirect, false, &p))
    }

    /// POST .../login-actions/consent (device logins).
    pub fn consent_action(
        &mut self,
        query: &[(String, String)],
        form: &[(String, String)],
        now: i64,
    ) -> Outcome {
        let Some(tab) = self.current_auth_session(param(query, "tab_id"), param(form, "code"), now)
        else {
            return Self::timeout_page();
        };
        let Some(email) = self.authz.auth_sessions[&tab].consent_for.clone() else {
            return Self::timeout_page();
        };
        let s = self.authz.auth_sessions.remove(&tab).expect("checked");
        let AuthKind::Device { user_code } = s.kind else {
            return Self::timeout_page();
        };
        // LoginActionsService.processConsent: anything but "cancel" accepts.
        if param(form, "cancel").is_some() {
            return self.deny_device(&user_code);
        }
        // DeviceGrantType.approveOAuth2DeviceAuthorization
        let status_url = format!("{}/device/status", self.issuer);
        let Some(dc) = self.authz.user_codes.get(&user_code).cloned() else {
            return Outcome::Redirect(format!("{status_url}?error=expired_token"));
        };
        let sid = new_uuid();
        self.sessions.insert(sid.clone(), Session::new(&email, now));
        if let Some(d) = self.authz.devices.get_mut(&dc) {
            d.status = DeviceStatus::Approved { sid };
        }
        self.authz.user_codes.remove(&user_code);
        Outcome::Redirect(status_url)
    }

    /// `DeviceGrantType.denyOAuth2DeviceAuthorization` (consent "No", or Cancel on the login
    /// form of a device login).
    fn deny_device(&mut self, user_code: &str) -> Outcome {
        let status_url = format!("{}/device/status", self.issuer);
        match self
            .authz
            .user_codes
            .get(user_code)
            .and_then(|dc| self.authz.devices.get_mut(dc))
        {
            Some(d) => {
                d.status = DeviceStatus::Denied;
                Outcome::Redirect(format!("{status_url}?error=access_denied"))
            }
            None => Outcome::Redirect(format!("{status_url}?error=expired_token")),
        }
    }

    /// POST .../protocol/openid-connect/auth/device (`DeviceEndpoint.handleDeviceRequest`).
    pub fn device_authorization(
        &mut self,
        form: &[(String, String)],
        now: i64,
    ) -> Result<DeviceAuthResponse, OAuthError> {
        self.expire_authz(now);
        self.check_client(form)?;
        if !self.policy.device_grant {
            return Err(OAuthError::new(
                400,
                "unauthorized_client",
                DEVICE_FLOW_DISABLED,
            ));
        }
        if duplicated(form) {
            // request.getInvalidRequestMessage(), answered as invalid_grant there.
            return Err(OAuthError::invalid_grant("duplicated parameter"));
        }
        // The scope is not checked here (Keycloak does not); unknown scopes are dropped
        // when the tokens are made.
        let challenge = param(form, "code_challenge");
        let method = param(form, "code_challenge_method");
        if let Err((error, description)) = self.check_pkce_params(challenge, method) {
            return Err(OAuthError::new(400, error, description));
        }
        let device_code = random_b64(32);
        let mut user_code = random_user_code();
        while self.authz.user_codes.contains_key(&user_code) {
            user_code = random_user_code();
        }
        let (lifespan, interval) = (self.policy.device_lifespan, self.policy.device_interval);
        self.authz.devices.insert(
            device_code.clone(),
            DeviceCode {
                user_code: user_code.clone(),
                scope: param(form, "scope").map(String::from),
                nonce: param(form, "nonce").map(String::from),
                code_challenge: challenge.map(String::from),
                code_challenge_method: method.map(String::from),
                expires: now + lifespan,
                purge_at: now + lifespan + interval + 10,
                interval,
                last_poll: None,
                status: DeviceStatus::Pending,
            },
        );
        self.authz
            .user_codes
            .insert(user_code.clone(), device_code.clone());
        let verification_uri = format!("{}/device", self.issuer);
        let shown = display_user_code(&user_code);
        Ok(DeviceAuthResponse {
            device_code,
            verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
            user_code: shown,
            verification_uri,
            expires_in: lifespan,
            interval,
        })
    }

    /// GET .../device (with `user_code` from the query) or POST .../device (with
    /// `device_user_code` from the form): `DeviceEndpoint.verifyUserCode`.
    pub fn device_verify(&mut self, user_code: Option<&str>, now: i64) -> Outcome {
        self.expire_authz(now);
        let action = format!("{}/device", self.issuer);
        let typed = user_code.map(format_user_code).unwrap_or_default();
        if typed.is_empty() {
            return Outcome::Page(
                200,
                Page::UserCode {
                    action,
                    error: None,
                },
            );
        }
        let device = self
            .authz
            .user_codes
            .get(&typed)
            .and_then(|dc| self.authz.devices.get(dc));
        let error = match device {
            None => Some(INVALID_USER_CODE),
            // Approved or denied: not pending any more.
            Some(d) if d.status != DeviceStatus::Pending => Some(INVALID_USER_CODE),
            Some(d) if now > d.expires => Some(EXPIRED_USER_CODE),
            Some(_) => None,
        };
        if let Some(error) = error {
            return Outcome::Page(
                200,
                Page::UserCode {
                    action,
                    error: Some(error),
                },
            );
        }
        let tab = self.new_auth_session(AuthKind::Device { user_code: typed }, now);
        Outcome::Page(200, self.login_page(&tab, "", None))
    }

    /// GET .../device/status (`DeviceEndpoint.status`).
    pub fn device_status(error: Option<&str>) -> Page {
        match error {
            None | Some("") => Page::Info {
                header: "Device Login Successful",
                message: "You may close this browser window and go back to your device.",
            },
            Some(e) => Page::Info {
                header: "Device Login Failed",
                message: match e {
                    "access_denied" => "Consent denied for connecting the device.",
                    "expired_token" => EXPIRED_USER_CODE,
                    _ => "You may close this browser window and go back to your device and try connecting again.",
                },
            },
        }
    }

    /// grant_type=authorization_code (`AuthorizationCodeGrantType.process`).
    pub(super) fn code_grant(
        &mut self,
        form: &[(String, String)],
        now: i64,
        omit_role_claim: bool,
    ) -> Result<TokenResponse, OAuthError> {
        self.expire_authz(now);
        let Some(code) = param(form, "code") else {
            return Err(OAuthError::new(
                400,
                "invalid_request",
                "Missing parameter: code",
            ));
        };
        // OAuth2CodeParser.parseCode: UUID.userSessionId.clientUUID; the code leaves the
        // single-use store on its first use, whatever happens next.
        let not_valid = || OAuthError::invalid_grant("Code not valid");
        let parts: Vec<&str> = code.splitn(3, '.').collect();
        let [id, sid, _client] = parts[..] else {
            return Err(not_valid());
        };
        if !self.sessions.contains_key(sid) {
            return Err(not_valid());
        }
        let Some(data) = self.authz.codes.remove(id).filter(|d| d.sid == sid) else {
            // A used (or expired, hence dropped) code: "Attempt to use same code twice should
            // invalidate existing clientSession" (detachFromUserSession). An offline session
            // is a separate copy and is not touched.
            if let Some(s) = self.sessions.get_mut(sid) {
                if !s.offline {
                    s.detached = true;
                }
            }
            return Err(not_valid());
        };
        let session = self.sessions.get(sid).cloned().ok_or_else(not_valid)?;
        if param(form, "redirect_uri") != Some(data.redirect_param.as_str()) {
            return Err(OAuthError::invalid_grant("Incorrect redirect_uri"));
        }
        if !self.policy.standard_flow {
            return Err(OAuthError::invalid_grant(
                "Client not allowed to exchange code",
            ));
        }
        if session.detached || !self.online_valid(&session, now) {
            return Err(OAuthError::invalid_grant("Session not active"));
        }
        check_code_verifier(
            param(form, "code_verifier"),
            data.code_challenge.as_deref(),
            data.code_challenge_method.as_deref(),
        )?;
        let Some(user) = self.users.get(&session.email).cloned() else {
            return Err(OAuthError::invalid_grant("User not found"));
        };
        // The scope was checked at the authorization endpoint.
        let (scope, openid, offline) =
            Self::lenient_scope(data.scope.as_deref(), self.offline_scope);
        if offline {
            self.make_offline(sid, now);
        } else if let Some(s) = self.sessions.get_mut(sid) {
            s.last_refresh = now;
        }
        Ok(self.issue(
            &user,
            sid,
            &scope,
            openid,
            data.nonce.as_deref(),
            now,
            omit_role_claim,
        ))
    }

    /// grant_type=urn:ietf:params:oauth:grant-type:device_code
    /// (`DeviceGrantType.oauth2DeviceFlow`).
    pub(super) fn device_code_grant(
        &mut self,
        form: &[(String, String)],
        now: i64,
        omit_role_claim: bool,
    ) -> Result<TokenResponse, OAuthError> {
        self.expire_authz(now);
        if !self.policy.device_grant {
            return Err(OAuthError::invalid_grant(
                "Client not allowed OAuth 2.0 Device Authorization Grant",
            ));
        }
        let Some(dc) = param(form, "device_code") else {
            return Err(OAuthError::new(
                400,
                "invalid_request",
                "Missing parameter: device_code",
            ));
        };
        let Some(device) = self.authz.devices.get_mut(dc) else {
            return Err(OAuthError::invalid_grant("Device code not valid"));
        };
        if now > device.expires {
            return Err(OAuthError::new(
                400,
                "expired_token",
                "Device code is expired",
            ));
        }
        // isPollingAllowed: putIfAbsent of a key that lives `interval` seconds.
        if device.last_poll.is_some_and(|l| now < l + device.interval) {
            return Err(OAuthError::new(400, "slow_down", "Slow down"));
        }
        device.last_poll = Some(now);
        let sid = match &device.status {
            DeviceStatus::Denied => {
                return Err(OAuthError::new(
                    400,
                    "access_denied",
                    "The end user denied the authorization request",
                ))
            }
            DeviceStatus::Pending => {
                return Err(OAuthError::new(
                    400,
                    "authorization_pending",
                    "The authorization request is still pending",
                ))
            }
            DeviceStatus::Approved { sid } => sid.clone(),
        };
        check_code_verifier(
            param(form, "code_verifier"),
            device.code_challenge.as_deref(),
            device.code_challenge_method.as_deref(),
        )?;
        let Some(session) = self.sessions.get(&sid).cloned() else {
            return Err(OAuthError::new(
                400,
                "authorization_pending",
                "The authorization request is verified but can not lookup the user session yet",
            ));
        };
        let device = self.authz.devices.remove(dc).expect("looked up above");
        self.authz.user_codes.remove(&device.user_code);
        let Some(user) = self.users.get(&session.email).cloned() else {
            return Err(OAuthError::invalid_grant("User not found"));
        };
        if !self.online_valid(&session, now) {
            return Err(OAuthError::invalid_grant("Session not active"));
        }
        let (scope, openid, offline) =
            Self::lenient_scope(device.scope.as_deref(), self.offline_scope);
        if offline {
            self.make_offline(&sid, now);
        }
        Ok(self.issue(
            &user,
            &sid,
            &scope,
            openid,
            device.nonce.as_deref(),
            now,
            omit_role_claim,
        ))
    }
}

/// A fresh active code for the page shown next in an authentication session (an older
/// page's form is then stale, as in Keycloak).
fn renew_session_code<'a>(
    sessions: &'a mut HashMap<String, AuthSession>,
    tab_id: &str,
) -> (String, &'a mut AuthSession) {
    let code = random_b64(32);
    let s = sessions.get_mut(tab_id).expect("auth session exists");
    s.session_code = code.clone();
    (code, s)
}

#[cfg(test)]
#[path = "authz_tests.rs"]
mod tests;
