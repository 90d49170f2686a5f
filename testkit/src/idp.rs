//! The IdP's state and the OAuth 2.0 token logic, free of any I/O so it can be
//! unit tested with an explicit clock (`now`, seconds since the epoch).
//!
//! The rules and the error texts follow Keycloak's source:
//! `TokenEndpoint` (grant type and client checks), `ValidateUsername` /
//! `ValidatePassword` (direct grant), `RefreshTokenGrantType` and
//! `TokenManager` (`verifyRefreshToken`, `validateToken`,
//! `getRefreshExpiration`, `getTokenExpiration`), `LogoutEndpoint`. The browser
//! login (authorization code + PKCE) and the device grant are in `authz.rs`, a child
//! module that shares this state.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::jwt::{self, Keys};

#[path = "authz.rs"]
pub mod authz;
pub use authz::{ClientPolicy, Outcome, Page};

/// Claim that carries the AWS session tags (Astran's protocol mapper).
pub const AWS_TAGS_CLAIM: &str = "https://aws.amazon.com/tags";

/// Default scopes of the client, the ones Keycloak puts in `scope` when none
/// is requested ("email profile").
const DEFAULT_SCOPES: [&str; 2] = ["email", "profile"];
/// Optional client scopes of a stock Keycloak client that may be requested.
const OPTIONAL_SCOPES: [&str; 4] = ["offline_access", "address", "phone", "microprofile-jwt"];
/// The device grant's `grant_type` (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_string(&b)
}

fn uuid_string(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Stable per-user id (a name-based UUID from realm and email), so `sub` does
/// not change across restarts of the test IdP.
fn stable_sub(realm: &str, email: &str) -> String {
    let d = Sha256::digest(format!("astran-test-idp:{realm}:{email}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_string(&b)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Lifetimes {
    /// Realm "Access Token Lifespan".
    pub access: i64,
    /// Realm "SSO Session Idle".
    pub sso_idle: i64,
    /// Realm "SSO Session Max".
    pub sso_max: i64,
    /// Realm "Offline Session Idle".
    pub offline_idle: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        // Keycloak's realm defaults.
        Lifetimes {
            access: 300,
            sso_idle: 1800,
            sso_max: 36000,
            offline_idle: 2_592_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub email: String,
    pub password: String,
    pub roles: Vec<String>,
    pub sub: String,
}

#[derive(Clone, Debug)]
struct Session {
    email: String,
    started: i64,
    last_refresh: i64,
    offline: bool,
    /// The client's session was detached from this user session (a replayed code, as in
    /// `AuthorizationCodeGrantType`); its refresh tokens fail "Session doesn't have
    /// required client".
    detached: bool,
}

impl Session {
    fn new(email: &str, now: i64) -> Session {
        Session {
            email: email.to_string(),
            started: now,
            last_refresh: now,
            offline: false,
            detached: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", description)
    }
    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// Keycloak's `AccessTokenResponse`, fields in Keycloak's order.
#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub refresh_token: String,
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(rename = "not-before-policy")]
    pub not_before_policy: i64,
    pub session_state: String,
    pub scope: String,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counters {
    pub password_grants: u64,
    pub refresh_grants: u64,
    pub code_grants: u64,
    pub device_grants: u64,
    pub errors: u64,
    pub logouts: u64,
}

pub struct Idp {
    realm: String,
    client_id: String,
    issuer: String,
    lifetimes: Lifetimes,
    /// HTTP status of `invalid_grant` "Invalid user credentials": 401 up to
    /// Keycloak 26.5, 400 from Keycloak 26.6 on.
    invalid_grant_status: u16,
    /// The client has `offline_access` among its optional client scopes (Keycloak's default);
    /// without it, asking for the scope is `invalid_scope`.
    offline_scope: bool,
    /// What the client allows (flows, PKCE, device code timings).
    policy: ClientPolicy,
    /// Logins in progress, authorization codes, device codes.
    authz: authz::AuthzState,
    users: HashMap<String, User>,
    sessions: HashMap<String, Session>,
    keys: Keys,
    /// Refresh-token ids issued and not yet force-expired.
    outstanding_refresh: HashSet<String>,
    /// Refresh-token ids force-expired by the test control endpoint.
    expired_refresh: HashSet<String>,
    pub counters: Counters,
}

pub struct IdpConfig {
    pub realm: String,
    pub client_id: String,
    /// e.g. `http://127.0.0.1:8080/auth`; the issuer is this + `/realms/{realm}`.
    pub issuer_base: String,
    pub lifetimes: Lifetimes,
    pub invalid_grant_status: u16,
    pub offline_scope: bool,
    pub policy: ClientPolicy,
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Idp {
    pub fn new(cfg: IdpConfig, keys: Keys) -> Idp {
        let issuer = format!(
            "{}/realms/{}",
            cfg.issuer_base.trim_end_matches('/'),
            cfg.realm
        );
        Idp {
            realm: cfg.realm,
            client_id: cfg.client_id,
            issuer,
            lifetimes: cfg.lifetimes,
            invalid_grant_status: cfg.invalid_grant_status,
            offline_scope: cfg.offline_scope,
            policy: cfg.policy,
            authz: authz::AuthzState::default(),
            users: HashMap::new(),
            sessions: HashMap::new(),
            keys,
            outstanding_refresh: HashSet::new(),
            expired_refresh: HashSet::new(),
            counters: Counters::default(),
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }
    pub fn set_lifetimes(&mut self, l: Lifetimes) {
        self.lifetimes = l;
    }

    /// Adds or replaces a user; the email is the username and, as in
    /// Keycloak, stored lower-case. Existing sessions of the user stay valid.
    pub fn upsert_user(&mut self, email: &str, password: &str, roles: Vec<String>) -> User {
        let email = email.trim().to_lowercase();
        let user = User {
            sub: stable_sub(&self.realm, &email),
            email: email.clone(),
            password: password.to_string(),
            roles,
        };
        self.users.insert(email, user.clone());
        user
    }

    fn online_valid(&self, s: &Session, now: i64) -> bool {
        // AuthenticationManager.isSessionValid / SessionExpirationUtils, with
        // Keycloak 26's persistent sessions (no extra idle window).
        now < s.last_refresh + self.lifetimes.sso_idle && now < s.started + self.lifetimes.sso_max
    }

    fn offline_valid(&self, s: &Session, now: i64) -> bool {
        // Offline session max lifespan is disabled by default in Keycloak.
        now < s.last_refresh + self.lifetimes.offline_idle
    }

    pub fn active_sessions(&self, now: i64) -> (usize, usize) {
        let online = self
            .sessions
            .values()
            .filter(|s| !s.offline && !s.detached && self.online_valid(s, now))
            .count();
        let offline = self
            .sessions
            .values()
            .filter(|s| s.offline && self.offline_valid(s, now))
            .count();
        (online, offline)
    }

    /// Removes every online (SSO) session, and the offline ones too if asked.
    pub fn end_sessions(&mut self, include_offline: bool) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| s.offline && !include_offline);
        before - self.sessions.len()
    }

    /// Makes every refresh token issued so far fail as expired.
    pub fn expire_refresh_tokens(&mut self) -> usize {
        let n = self.outstanding_refresh.len();
        self.expired_refresh
            .extend(self.outstanding_refresh.drain());
        n
    }

    /// Client authentication for a public client (`ClientIdAndSecretAuthenticator`
    /// and `AuthenticationProcessor.handleClientAuthException`).
    fn check_client(&self, form: &[(String, String)]) -> Result<(), OAuthError> {
        match param(form, "client_id") {
            None => Err(OAuthError::new(
                400,
                "invalid_client",
                "Missing client_id parameter",
            )),
            Some(c) if c == self.client_id => Ok(()),
            Some(_) => Err(OAuthError::new(
                401,
                "invalid_client",
                "Invalid client or Invalid client credentials",
            )),
        }
    }

    /// POST .../protocol/openid-connect/token
    pub fn token(
        &mut self,
        form: &[(String, String)],
        now: i64,
        omit_role_claim: bool,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = param(form, "grant_type");
        match grant_type {
            Some("password") => self.counters.password_grants += 1,
            Some("refresh_token") => self.counters.refresh_grants += 1,
            Some("authorization_code") => self.counters.code_grants += 1,
            Some(DEVICE_CODE_GRANT) => self.counters.device_grants += 1,
            _ => {}
        }
        let result = self.token_inner(grant_type, form, now, omit_role_claim);
        if result.is_err() {
            self.counters.errors += 1;
        }
        result
    }

    fn token_inner(
        &mut self,
        grant_type: Option<&str>,
        form: &[(String, String)],
        now: i64,
        omit_role_claim: bool,
    ) -> Result<TokenResponse, OAuthError> {
        // TokenEndpoint.checkGrantType runs before the client is authenticated.
        let grant_type = match grant_type {
            None => {
                return Err(OAuthError::new(
                    400,
                    "invalid_request",
                    "Missing form parameter: grant_type",
                ))
            }
            Some(g @ ("password" | "refresh_token" | "authorization_code" | DEVICE_CODE_GRANT)) => {
                g
            }
            Some(_) => {
                return Err(OAuthError::new(
                    400,
                    "unsupported_grant_type",
                    "Unsupported grant_type",
                ))
            }
        };
        self.check_client(form)?;
        // TokenEndpoint.checkParameterDuplicated
        let mut seen = HashSet::new();
        if !form.iter().all(|(k, _)| seen.insert(k.as_str())) {
            return Err(OAuthError::new(
                400,
                "invalid_request",
                "duplicated parameter",
            ));
        }
        match grant_type {
            "password" => self.password_grant(form, now, omit_role_claim),
            "authorization_code" => self.code_grant(form, now, omit_role_claim),
            DEVICE_CODE_GRANT => self.device_code_grant(form, now, omit_role_claim),
            _ => self.refresh_grant(form, now, omit_role_claim),
        }
    }

    /// Scope string of the client session, or Keycloak's invalid_scope error.
    fn resolve_scope(
        requested: Option<&str>,
        offline_scope: bool,
    ) -> Result<(String, bool, bool), OAuthError> {
        let mut openid = false;
        let mut extra: Vec<&str> = Vec::new();
        if let Some(req) = requested {
            for s in req.split(' ').filter(|s| !s.is_empty()) {
                if s == "openid" {
                    openid = true;
                } else if OPTIONAL_SCOPES.contains(&s) && (offline_scope || s != "offline_access") {
                    if !extra.contains(&s) {
                        extra.push(s);
                    }
                } else if !DEFAULT_SCOPES.contains(&s) {
                    return Err(OAuthError::new(
                        400,
                        "invalid_scope",
                        format!("Invalid scopes: {req}"),
                    ));
                }
            }
        }
        let offline = extra.contains(&"offline_access");
        let mut parts: Vec<&str> = Vec::new();
        if openid {
            parts.push("openid");
        }
        parts.extend(extra);
        parts.extend(DEFAULT_SCOPES);
        Ok((parts.join(" "), openid, offline))
    }

    fn password_grant(
        &mut self,
        form: &[(String, String)],
        now: i64,
        omit_role_claim: bool,
    ) -> Result<TokenResponse, OAuthError> {
        // ResourceOwnerPasswordCredentialsGrantType: the client's "Direct access grants".
        if !self.policy.direct_access_grants {
            return Err(OAuthError::new(
                400,
                "unauthorized_client",
                "Client not allowed for direct access grants",
            ));
        }
        let Some(username) = param(form, "username") else {
            // ValidateUsername: 401 even in Keycloak 26.6 (it is invalid_request).
            return Err(OAuthError::new(
                401,
                "invalid_request",
                "Missing parameter: username",
            ));
        };
        let bad_credentials = OAuthError::new(
            self.invalid_grant_status,
            "invalid_grant",
            "Invalid user credentials",
        );
        let user = match self.users.get(&username.trim().to_lowercase()) {
            Some(u) if param(form, "password") == Some(u.password.as_str()) => u.clone(),
            _ => return Err(bad_credentials),
        };
        let (scope, openid, offline) =
            Self::resolve_scope(param(form, "scope"), self.offline_scope)?;
        let sid = new_uuid();
        let mut session = Session::new(&user.email, now);
        session.offline = offline;
        self.sessions.insert(sid.clone(), session);
        Ok(self.issue(&user, &sid, &scope, openid, None, now, omit_role_claim))
    }

    fn refresh_grant(
        &mut self,
        form: &[(String, String)],
        now: i64,
        omit_role_claim: bool,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(encoded) = param(form, "refresh_token") else {
            return Err(OAuthError::new(400, "invalid_request", "No refresh token"));
        };
        let token = self.verify_refresh_token(encoded, now, true)?;
        let offline = token.get("typ").and_then(Value::as_str) == Some("Offline");
        let sid = token
            .get("sid")
            .or_else(|| token.get("session_state"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let session = self.sessions.get(sid).cloned();
        // TokenManager.validateToken
        let session = if offline {
            match session.filter(|s| s.offline) {
                None => return Err(OAuthError::invalid_grant("Offline user session not found")),
                Some(s) if !self.offline_valid(&s, now) => {
                    self.sessions.remove(sid);
                    return Err(OAuthError::invalid_grant("Offline session not active"));
                }
                Some(s) => s,
            }
        } else {
            match session.filter(|s| !s.offline) {
                Some(s) if self.online_valid(&s, now) && s.detached => {
                    return Err(OAuthError::invalid_grant(
                        "Session doesn't have required client",
                    ))
                }
                Some(s) if self.online_valid(&s, now) => s,
                _ => {
                    self.sessions.remove(sid);
                    return Err(OAuthError::invalid_grant("Session not active"));
                }
            }
        };
        let Some(user) = self.users.get(&session.email).cloned() else {
            return Err(OAuthError::invalid_grant("Unknown user"));
        };
        let scope = token
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let openid = scope.split(' ').any(|s| s == "openid");
        let sid = sid.to_string();
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.last_refresh = now;
        }
        Ok(self.issue(&user, &sid, &scope, openid, None, now, omit_role_claim))
    }

    /// TokenManager.verifyRefreshToken. The error texts are Keycloak's.
    fn verify_refresh_token(
        &self,
        encoded: &str,
        now: i64,
        check_expiration: bool,
    ) -> Result<Map<String, Value>, OAuthError> {
        let token = self
            .keys
            .decode_hmac(encoded)
            .map_err(|_| OAuthError::invalid_grant("Invalid refresh token"))?;
        let typ = token.get("typ").and_then(Value::as_str);
        if !matches!(typ, Some("Refresh" | "Offline")) {
            return Err(OAuthError::invalid_grant("Invalid refresh token"));
        }
        if check_expiration {
            // TokenVerifier.IS_ACTIVE: a token whose exp has passed, here also
            // one force-expired through /__test/expire-refresh-tokens.
            let exp = token.get("exp").and_then(Value::as_i64).unwrap_or(0);
            let jti = token.get("jti").and_then(Value::as_str).unwrap_or("");
            if (exp != 0 && now > exp) || self.expired_refresh.contains(jti) {
                return Err(OAuthError::invalid_grant("Token is not active"));
            }
        }
        if token.get("azp").and_then(Value::as_str) != Some(self.client_id.as_str()) {
            return Err(OAuthError::invalid_grant(
                "Invalid refresh token. Token client and authorized client don't match",
            ));
        }
        Ok(token)
    }

    /// POST .../protocol/openid-connect/logout (LogoutEndpoint.logoutToken):
    /// the refresh token's signature is checked but not its expiry; the
    /// session, if still there, is removed. 204 either way.
    pub fn logout(&mut self, form: &[(String, String)], now: i64) -> Result<(), OAuthError> {
        self.check_client(form)?;
        let Some(encoded) = param(form, "refresh_token") else {
            return Err(OAuthError::new(400, "invalid_request", "No refresh token"));
        };
        let token = self.verify_refresh_token(encoded, now, false)?;
        if let Some(sid) = token
            .get("sid")
            .or_else(|| token.get("session_state"))
            .and_then(Value::as_str)
        {
            self.sessions.remove(sid);
        }
        self.counters.logouts += 1;
        Ok(())
    }

    /// The tokens of a login or refresh; `nonce` (of the authorization or device request)
    /// goes into the ID token.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &mut self,
        user: &User,
        sid: &str,
        scope: &str,
        openid: bool,
        nonce: Option<&str>,
        now: i64,
        omit_role_claim: bool,
    ) -> TokenResponse {
        let session = self
            .sessions
            .get(sid)
            .cloned()
            .expect("session exists when issuing");
        let l = self.lifetimes;
        let (access_exp, refresh_exp) = if session.offline {
            // Offline tokens: no session cap, refresh token without exp.
            (now + l.access, None)
        } else {
            // getTokenExpiration / getRefreshExpiration: both capped at the
            // SSO session's end.
            let session_end = session.started + l.sso_max;
            (
                (now + l.access).min(session_end),
                Some((now + l.sso_idle).min(session_end)),
            )
        };

        let mut at = Map::new();
        at.insert("exp".into(), json!(access_exp));
        at.insert("iat".into(), json!(now));
        at.insert("jti".into(), json!(new_uuid()));
        at.insert("iss".into(), json!(self.issuer));
        at.insert("aud".into(), json!(self.client_id));
        at.insert("sub".into(), json!(user.sub));
        at.insert("typ".into(), json!("Bearer"));
        at.insert("azp".into(), json!(self.client_id));
        at.insert("sid".into(), json!(sid));
        at.insert("session_state".into(), json!(sid));
        at.insert("acr".into(), json!("1"));
        at.insert("scope".into(), json!(scope));
        at.insert("email_verified".into(), json!(true));
        at.insert("preferred_username".into(), json!(user.email));
        at.insert("email".into(), json!(user.email));
        if !omit_role_claim {
            at.insert(
                AWS_TAGS_CLAIM.into(),
                json!({"principal_tags": {"role": user.roles}}),
            );
        }
        let access_token = self.keys.sign_rs256(&at);

        let refresh_jti = new_uuid();
        let mut rt = Map::new();
        if let Some(exp) = refresh_exp {
            rt.insert("exp".into(), json!(exp));
        }
        rt.insert("iat".into(), json!(now));
        rt.insert("jti".into(), json!(refresh_jti));
        rt.insert("iss".into(), json!(self.issuer));
        rt.insert("aud".into(), json!(self.issuer));
        rt.insert("sub".into(), json!(user.sub));
        rt.insert(
            "typ".into(),
            json!(if session.offline {
                "Offline"
            } else {
                "Refresh"
            }),
        );
        rt.insert("azp".into(), json!(self.client_id));
        rt.insert("sid".into(), json!(sid));
        rt.insert("session_state".into(), json!(sid));
        rt.insert("scope".into(), json!(scope));
        let refresh_token = self.keys.sign_hs512(&rt);
        self.outstanding_refresh.insert(refresh_jti);

        let id_token = openid.then(|| {
            let mut it = Map::new();
            it.insert("exp".into(), json!(access_exp));
            it.insert("iat".into(), json!(now));
            it.insert("jti".into(), json!(new_uuid()));
            it.insert("iss".into(), json!(self.issuer));
            it.insert("aud".into(), json!(self.client_id));
            it.insert("sub".into(), json!(user.sub));
            it.insert("typ".into(), json!("ID"));
            it.insert("azp".into(), json!(self.client_id));
            it.insert("sid".into(), json!(sid));
            it.insert("session_state".into(), json!(sid));
            it.insert("at_hash".into(), json!(jwt::at_hash(&access_token)));
            if let Some(n) = nonce {
                it.insert("nonce".into(), json!(n));
            }
            it.insert("acr".into(), json!("1"));
            it.insert("email_verified".into(), json!(true));
            it.insert("preferred_username".into(), json!(user.email));
            it.insert("email".into(), json!(user.email));
            self.keys.sign_rs256(&it)
        });

        TokenResponse {
            access_token,
            expires_in: access_exp - now,
            // Keycloak leaves refresh_expires_in at 0 for a token without exp.
            refresh_expires_in: refresh_exp.map_or(0, |e| e - now),
            refresh_token,
            token_type: "Bearer",
            id_token,
            not_before_policy: 0,
            session_state: sid.to_string(),
            scope: scope.to_string(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jwt::payload_unverified;

    pub(super) const T0: i64 = 1_700_000_000;

    fn idp(l: Lifetimes, invalid_grant_status: u16) -> Idp {
        idp_full(l, invalid_grant_status, ClientPolicy::default())
    }

    pub(super) fn idp_with(policy: ClientPolicy) -> Idp {
        idp_full(Lifetimes::default(), 401, policy)
    }

    fn idp_full(l: Lifetimes, invalid_grant_status: u16, policy: ClientPolicy) -> Idp {
        let keys = Keys::from_pem(jwt::BUNDLED_TEST_KEY_PEM).unwrap();
        let mut idp = Idp::new(
            IdpConfig {
                realm: "root-accounts".into(),
                client_id: "root-client".into(),
                issuer_base: "http://127.0.0.1:1/auth".into(),
                lifetimes: l,
                invalid_grant_status,
                offline_scope: true,
                policy,
            },
            keys,
        );
        idp.upsert_user(
            "Alice@Example.com",
            "s3cret",
            vec!["admin".into(), "dev".into()],
        );
        idp
    }

    pub(super) fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn login(idp: &mut Idp, now: i64, scope: Option<&str>) -> TokenResponse {
        let mut f = form(&[
            ("grant_type", "password"),
            ("client_id", "root-client"),
            ("username", "ALICE@example.com"),
            ("password", "s3cret"),
        ]);
        if let Some(s) = scope {
            f.push(("scope".into(), s.into()));
        }
        idp.token(&f, now, false).expect("login")
    }

    pub(crate) fn refresh(idp: &mut Idp, rt: &str, now: i64) -> Result<TokenResponse, OAuthError> {
        idp.token(
            &form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "root-client"),
                ("refresh_token", rt),
            ]),
            now,
            false,
        )
    }

    fn lifetimes(access: i64, sso_idle: i64, sso_max: i64) -> Lifetimes {
        Lifetimes {
            access,
            sso_idle,
            sso_max,
            ..Lifetimes::default()
        }
    }

    #[test]
    fn password_grant_issues_keycloak_shaped_tokens() {
        let mut idp = idp(Lifetimes::default(), 401);
        let r = login(&mut idp, T0, None);
        assert_eq!(r.expires_in, 300);
        assert_eq!(r.refresh_expires_in, 1800);
        assert_eq!(r.token_type, "Bearer");
        assert_eq!(r.scope, "email profile");
        assert!(r.id_token.is_none());
        let at = payload_unverified(&r.access_token);
        assert_eq!(at["iss"], "http://127.0.0.1:1/auth/realms/root-accounts");
        assert_eq!(at["aud"], "root-client");
        assert_eq!(at["azp"], "root-client");
        assert_eq!(at["typ"], "Bearer");
        assert_eq!(at["email"], "alice@example.com");
        assert_eq!(at["preferred_username"], "alice@example.com");
        assert_eq!(at["sid"], json!(r.session_state));
        assert_eq!(at["exp"], json!(T0 + 300));
        assert_eq!(
            at[AWS_TAGS_CLAIM],
            json!({"principal_tags": {"role": ["admin", "dev"]}})
        );
        let rt = payload_unverified(&r.refresh_token);
        assert_eq!(rt["typ"], "Refresh");
        assert_eq!(rt["exp"], json!(T0 + 1800));
        // sub is stable for the user.
        let again = login(&mut idp, T0 + 5, None);
        assert_eq!(payload_unverified(&again.access_token)["sub"], at["sub"]);
        assert_ne!(again.session_state, r.session_state);
    }

    #[test]
    fn refresh_expiry_is_capped_at_sso_session_max() {
        let mut idp = idp(lifetimes(300, 1800, 3600), 401);
        let r = login(&mut idp, T0, None);
        let r2 = refresh(&mut idp, &r.refresh_token, T0 + 1700).unwrap();
        assert_eq!(r2.refresh_expires_in, 1800); // T0+3500 < T0+3600
        let r3 = refresh(&mut idp, &r2.refresh_token, T0 + 3000).unwrap();
        assert_eq!(r3.refresh_expires_in, 600); // capped at session max
        assert_eq!(r3.expires_in, 300);
        let r4 = refresh(&mut idp, &r3.refresh_token, T0 + 3500).unwrap();
        assert_eq!(r4.refresh_expires_in, 100);
        assert_eq!(r4.expires_in, 100); // access token capped too
        assert_eq!(
            payload_unverified(&r4.access_token)["exp"],
            json!(T0 + 3600)
        );
        // Past the session max the refresh token has expired.
        let e = refresh(&mut idp, &r4.refresh_token, T0 + 3601).unwrap_err();
        assert_eq!(
            (e.status, e.error, e.description.as_str()),
            (400, "invalid_grant", "Token is not active")
        );
    }

    #[test]
    fn refreshing_resets_the_idle_timer() {
        let mut idp = idp(lifetimes(60, 100, 10_000), 401);
        let r = login(&mut idp, T0, None);
        let r2 = refresh(&mut idp, &r.refresh_token, T0 + 90).unwrap();
        // Still alive at T0+180 thanks to the refresh at T0+90.
        let r3 = refresh(&mut idp, &r2.refresh_token, T0 + 180).unwrap();
        assert_eq!(r3.refresh_expires_in, 100);
        // Idle for longer than sso_idle: the refresh token has expired.
        let e = refresh(&mut idp, &r3.refresh_token, T0 + 281).unwrap_err();
        assert_eq!(e.description, "Token is not active");
    }

    #[test]
    fn old_refresh_tokens_stay_usable_like_keycloak_default() {
        let mut idp = idp(Lifetimes::default(), 401);
        let r = login(&mut idp, T0, None);
        refresh(&mut idp, &r.refresh_token, T0 + 10).unwrap();
        refresh(&mut idp, &r.refresh_token, T0 + 20).unwrap();
    }

    #[test]
    fn shortened_session_max_ends_sessions_with_session_not_active() {
        let mut idp = idp(Lifetimes::default(), 401);
        let r = login(&mut idp, T0, None);
        idp.set_lifetimes(lifetimes(300, 1800, 100));
        let e = refresh(&mut idp, &r.refresh_token, T0 + 200).unwrap_err();
        assert_eq!(
            (e.status, e.description.as_str()),
            (400, "Session not active")
        );
    }

    #[test]
    fn offline_tokens_outlive_sso_max() {
        let mut idp = idp(lifetimes(300, 100, 200), 401);
        let r = login(&mut idp, T0, Some("offline_access"));
        assert_eq!(r.refresh_expires_in, 0);
        assert_eq!(r.scope, "offline_access email profile");
        let rt = payload_unverified(&r.refresh_token);
        assert_eq!(rt["typ"], "Offline");
        assert!(rt.get("exp").is_none());
        let r2 = refresh(&mut idp, &r.refresh_token, T0 + 10_000).unwrap();
        assert_eq!(r2.refresh_expires_in, 0);
        assert_eq!(r2.expires_in, 300);
        assert_eq!(payload_unverified(&r2.refresh_token)["typ"], "Offline");
        // Offline sessions are not SSO sessions.
        idp.end_sessions(false);
        refresh(&mut idp, &r2.refresh_token, T0 + 10_001).unwrap();
        idp.end_sessions(true);
        let e = refresh(&mut idp, &r2.refresh_token, T0 + 10_002).unwrap_err();
        assert_eq!(e.description, "Offline user session not found");
    }

    #[test]
    fn openid_scope_adds_id_token() {
        let mut idp = idp(Lifetimes::default(), 401);
        let r = login(&mut idp, T0, Some("openid"));
        assert_eq!(r.scope, "openid email profile");
        let id = payload_unverified(r.id_token.as_ref().unwrap());
        assert_eq!(id["typ"], "ID");
        assert_eq!(id["at_hash"], json!(jwt::at_hash(&r.access_token)));
        let r2 = refresh(&mut idp, &r.refresh_token, T0 + 1).unwrap();
        assert!(r2.id_token.is_some());
    }

    #[test]
    fn end_sessions_and_expire_refresh_tokens() {
        let mut idp = idp(Lifetimes::default(), 401);
        let a = login(&mut idp, T0, None);
        let b = login(&mut idp, T0, None);
        assert_eq!(idp.active_sessions(T0), (2, 0));
        assert_eq!(idp.expire_refresh_tokens(), 2);
        let e = refresh(&mut idp, &a.refresh_token, T0 + 1).unwrap_err();
        assert_eq!(e.description, "Token is not active");
        // A new login works and its tokens are not affected.
        let c = login(&mut idp, T0 + 2, None);
        refresh(&mut idp, &c.refresh_token, T0 + 3).unwrap();
        assert_eq!(idp.end_sessions(false), 3);
        let e = refresh(&mut idp, &c.refresh_token, T0 + 4).unwrap_err();
        assert_eq!(e.description, "Session not active");
        let e = refresh(&mut idp, &b.refresh_token, T0 + 4).unwrap_err();
        assert_eq!(e.description, "Token is not active");
    }

    #[test]
    fn logout_ends_the_session() {
        let mut idp = idp(Lifetimes::default(), 401);
        let r = login(&mut idp, T0, None);
        idp.logout(
            &form(&[
                ("client_id", "root-client"),
                ("refresh_token", &r.refresh_token),
            ]),
            T0 + 1,
        )
        .unwrap();
        let e = refresh(&mut idp, &r.refresh_token, T0 + 2).unwrap_err();
        assert_eq!(e.description, "Session not active");
        let e = idp
            .logout(&form(&[("client_id", "root-client")]), T0)
            .unwrap_err();
        assert_eq!((e.status, e.error), (400, "invalid_request"));
    }

    #[test]
    fn error_statuses_and_texts() {
        let mut idp = idp(Lifetimes::default(), 401);
        let mut check = |pairs: &[(&str, &str)], want: (u16, &str, &str)| {
            let e = idp.token(&form(pairs), T0, false).unwrap_err();
            assert_eq!(
                (e.status, e.error, e.description.as_str()),
                want,
                "{pairs:?}"
            );
        };
        let bad_pw = [
            ("grant_type", "password"),
            ("client_id", "root-client"),
            ("username", "alice@example.com"),
            ("password", "x"),
        ];
        check(&bad_pw, (401, "invalid_grant", "Invalid user credentials"));
        check(
            &[
                ("grant_type", "password"),
                ("client_id", "root-client"),
                ("username", "bob@example.com"),
                ("password", "x"),
            ],
            (401, "invalid_grant", "Invalid user credentials"),
        );
        check(
            &[
                ("grant_type", "password"),
                ("client_id", "other"),
                ("username", "a"),
                ("password", "x"),
            ],
            (
                401,
                "invalid_client",
                "Invalid client or Invalid client credentials",
            ),
        );
        check(
            &[("grant_type", "password")],
            (400, "invalid_client", "Missing client_id parameter"),
        );
        check(
            &[("client_id", "root-client")],
            (400, "invalid_request", "Missing form parameter: grant_type"),
        );
        check(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "root-client"),
            ],
            (400, "unsupported_grant_type", "Unsupported grant_type"),
        );
        check(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "root-client"),
            ],
            (400, "invalid_request", "No refresh token"),
        );
        check(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "root-client"),
                ("refresh_token", "abc.def.ghi"),
            ],
            (400, "invalid_grant", "Invalid refresh token"),
        );
        check(
            &[
                ("grant_type", "password"),
                ("client_id", "root-client"),
                ("client_id", "root-client"),
            ],
            (400, "invalid_request", "duplicated parameter"),
        );
        check(
            &[
                ("grant_type", "password"),
                ("client_id", "root-client"),
                ("username", "alice@example.com"),
                ("password", "s3cret"),
                ("scope", "bogus"),
            ],
            (400, "invalid_scope", "Invalid scopes: bogus"),
        );
        assert_eq!(idp.counters.errors, 10);

        let mut idp400 = self::idp(Lifetimes::default(), 400);
        let e = idp400.token(&form(&bad_pw), T0, false).unwrap_err();
        assert_eq!((e.status, e.error), (400, "invalid_grant"));
    }

    #[test]
    fn refresh_token_for_another_client_is_rejected() {
        let mut idp = idp(Lifetimes::default(), 401);
        let r = login(&mut idp, T0, None);
        idp.client_id = "other-client".into();
        let e = idp
            .token(
                &form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "other-client"),
                    ("refresh_token", &r.refresh_token),
                ]),
                T0 + 1,
                false,
            )
            .unwrap_err();
        assert_eq!(
            e.description,
            "Invalid refresh token. Token client and authorized client don't match"
        );
    }

    #[test]
    fn no_role_claim_fault_drops_the_tags_claim_only() {
        let mut idp = idp(Lifetimes::default(), 401);
        let r = idp
            .token(
                &form(&[
                    ("grant_type", "password"),
                    ("client_id", "root-client"),
                    ("username", "alice@example.com"),
                    ("password", "s3cret"),
                ]),
                T0,
                true,
            )
            .unwrap();
        let at = payload_unverified(&r.access_token);
        assert!(at.get(AWS_TAGS_CLAIM).is_none());
        assert_eq!(at["email"], "alice@example.com");
    }
}
