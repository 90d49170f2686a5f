//! HTTP front: Keycloak's realm endpoints (with and without the legacy `/auth`
//! prefix), the `/__test` control endpoints, fault injection and the
//! connection loop (needed to drop a connection without a response).

use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::idp::{Idp, Lifetimes, Outcome, Page, DEVICE_CODE_GRANT};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    Http500,
    Http502,
    Http503,
    Hang,
    Malformed,
    Empty,
    NoRoleClaim,
    Close,
    SlowDown,
}

impl FaultMode {
    fn parse(s: &str) -> Option<Option<FaultMode>> {
        Some(Some(match s {
            "none" => return Some(None),
            "http500" => FaultMode::Http500,
            "http502" => FaultMode::Http502,
            "http503" => FaultMode::Http503,
            "hang" => FaultMode::Hang,
            "malformed" => FaultMode::Malformed,
            "empty" => FaultMode::Empty,
            "no_role_claim" => FaultMode::NoRoleClaim,
            "close" => FaultMode::Close,
            "slow_down" => FaultMode::SlowDown,
            _ => return None,
        }))
    }
    fn name(self) -> &'static str {
        match self {
            FaultMode::Http500 => "http500",
            FaultMode::Http502 => "http502",
            FaultMode::Http503 => "http503",
            FaultMode::Hang => "hang",
            FaultMode::Malformed => "malformed",
            FaultMode::Empty => "empty",
            FaultMode::NoRoleClaim => "no_role_claim",
            FaultMode::Close => "close",
            FaultMode::SlowDown => "slow_down",
        }
    }
}

#[derive(Default)]
struct Fault {
    mode: Option<FaultMode>,
    /// None: until cleared.
    remaining: Option<u64>,
    injected: u64,
}

impl Fault {
    /// Takes the fault for one token-endpoint request, if any.
    fn take(&mut self) -> Option<FaultMode> {
        let mode = self.mode?;
        if let Some(n) = self.remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                self.mode = None;
                self.remaining = None;
            }
        }
        self.injected += 1;
        Some(mode)
    }
    fn describe(&self) -> Value {
        json!({
            "mode": self.mode.map_or("none", FaultMode::name),
            "remaining": self.remaining,
            "injected": self.injected,
        })
    }
}

pub struct AppState {
    idp: Mutex<Idp>,
    /// Every token this server handed out (access, refresh, id) and every STS secret that
    /// went through the STS front: what a secrets scan must never find outside its places.
    pub issued: Arc<Mutex<Vec<String>>>,
    sts: crate::sts::StsFront,
    fault: Mutex<Fault>,
    /// Seconds added to the system clock (like Keycloak testsuite's Time offset).
    clock_offset: AtomicI64,
}

impl AppState {
    /// With the STS front forwarding to `sts_upstream`.
    pub fn with_sts(idp: Idp, sts_upstream: Option<String>) -> Arc<AppState> {
        let issued = Arc::new(Mutex::new(Vec::new()));
        Arc::new(AppState {
            idp: Mutex::new(idp),
            sts: crate::sts::StsFront::new(sts_upstream, issued.clone()),
            issued,
            fault: Mutex::new(Fault::default()),
            clock_offset: AtomicI64::new(0),
        })
    }
    fn now(&self) -> i64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        secs + self.clock_offset.load(Ordering::SeqCst)
    }
    fn idp(&self) -> MutexGuard<'_, Idp> {
        self.idp.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn fault(&self) -> MutexGuard<'_, Fault> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Lets a handler close its connection without answering.
#[derive(Clone)]
pub struct ConnControl(Arc<Notify>);

/// What the log line of a token-endpoint request adds.
#[derive(Clone)]
struct LogNote(String);

pub fn router(state: Arc<AppState>) -> Router {
    let realm = Router::new()
        .route("/realms/{realm}/protocol/openid-connect/token", post(token))
        .route("/realms/{realm}/protocol/openid-connect/certs", get(certs))
        .route(
            "/realms/{realm}/protocol/openid-connect/logout",
            post(logout),
        )
        .route(
            "/realms/{realm}/.well-known/openid-configuration",
            get(well_known),
        )
        .route(
            "/realms/{realm}/protocol/openid-connect/auth",
            get(authorize_get).post(authorize_post),
        )
        .route(
            "/realms/{realm}/protocol/openid-connect/auth/device",
            post(device_authorization),
        )
        .route(
            "/realms/{realm}/device",
            get(device_verify_get).post(device_verify_post),
        )
        .route("/realms/{realm}/device/", post(device_verify_post))
        .route("/realms/{realm}/device/status", get(device_status))
        .route(
            "/realms/{realm}/login-actions/authenticate",
            get(login_page_again).post(login_action),
        )
        .route(
            "/realms/{realm}/login-actions/consent",
            post(consent_action),
        );
    let control = Router::new()
        .route("/fault", post(set_fault).get(get_fault))
        .route("/end-sessions", post(end_sessions))
        .route("/expire-refresh-tokens", post(expire_refresh_tokens))
        .route("/users", post(upsert_user))
        .route("/stats", get(stats))
        .route("/lifetimes", post(set_lifetimes).get(get_lifetimes))
        .route("/clock", post(set_clock))
        .route("/sts-fault", post(set_sts_fault))
        .route("/sts-stats", get(sts_stats))
        .route("/issued", get(issued));
    Router::new()
        .merge(realm.clone())
        .nest("/auth", realm)
        .nest("/__test", control)
        .route("/sts", post(sts))
        .route("/sts/", post(sts))
        .fallback(not_found)
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}

async fn log_requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let note = resp
        .extensions()
        .get::<LogNote>()
        .map(|n| format!(" {}", n.0))
        .unwrap_or_default();
    eprintln!("{method} {path}{note} -> {}", resp.status().as_u16());
    resp
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "Unable to find matching target resource method"})),
    )
        .into_response()
}

fn realm_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "Realm does not exist"})),
    )
        .into_response()
}

fn json_response(status: u16, body: &impl serde::Serialize) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(body),
    )
        .into_response();
    no_store(&mut resp);
    resp
}

/// RFC 6749 §5.1 headers, set by Keycloak's TokenEndpoint on every answer.
fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The form parameters, or None when the body is not form-encoded (answered
/// with 415 like JAX-RS `@Consumes(APPLICATION_FORM_URLENCODED)`).
fn parse_form(headers: &HeaderMap, body: &Bytes) -> Option<Vec<(String, String)>> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return None;
        }
    }
    Some(form_urlencoded::parse(body).into_owned().collect())
}

fn proxy_error_page(status: u16, reason: &str) -> Response {
    let html = format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut resp = (StatusCode::from_u16(status).expect("valid status"), html).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

async fn token(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    conn: Option<Extension<ConnControl>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_form(&headers, &body) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    let grant = form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map_or("-", |(_, v)| v.as_str())
        .to_string();
    let mut note = format!("grant_type={grant}");
    let fault = if realm == st.idp().realm() {
        st.fault().take()
    } else {
        None
    };
    if let Some(f) = fault {
        note.push_str(&format!(" fault={}", f.name()));
        // Faulted requests still count in the grant counters.
        let mut idp = st.idp();
        match grant.as_str() {
            "password" => idp.counters.password_grants += 1,
            "refresh_token" => idp.counters.refresh_grants += 1,
            "authorization_code" => idp.counters.code_grants += 1,
            DEVICE_CODE_GRANT => idp.counters.device_grants += 1,
            _ => {}
        }
    }
    let mut resp = match fault {
        Some(FaultMode::Http500) => proxy_error_page(500, "Internal Server Error"),
        Some(FaultMode::Http502) => proxy_error_page(502, "Bad Gateway"),
        Some(FaultMode::Http503) => proxy_error_page(503, "Service Temporarily Unavailable"),
        Some(FaultMode::Malformed) => {
            let mut r = (
                StatusCode::OK,
                r#"{"access_token":"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3"#,
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            no_store(&mut r);
            r
        }
        Some(FaultMode::Empty) => {
            let mut r = (StatusCode::OK, Body::empty()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            no_store(&mut r);
            r
        }
        Some(FaultMode::Hang) => {
            eprintln!(
                "POST {} {note} -> (no answer, connection held open)",
                uri.path()
            );
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
        Some(FaultMode::Close) => {
            eprintln!(
                "POST {} {note} -> (connection closed, no answer)",
                uri.path()
            );
            match conn {
                Some(Extension(ConnControl(n))) => {
                    n.notify_one();
                    std::future::pending::<()>().await;
                    unreachable!("pending never completes")
                }
                // Served without the connection loop (unit tests): nothing to close.
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        // RFC 8628 §3.5: a server may ask any poll to slow down (Keycloak's answer shape)
        Some(FaultMode::SlowDown) => json_response(
            400,
            &json!({"error": "slow_down", "error_description": "Slow down"}),
        ),
        Some(FaultMode::NoRoleClaim) | None => {
            let omit_role_claim = fault == Some(FaultMode::NoRoleClaim);
            let now = st.now();
            let mut idp = st.idp();
            if realm != idp.realm() {
                return realm_not_found();
            }
            match idp.token(&form, now, omit_role_claim) {
                Ok(t) => {
                    let mut issued = st.issued.lock().unwrap_or_else(|e| e.into_inner());
                    for k in ["access_token", "refresh_token", "id_token"] {
                        if let Some(v) = serde_json::to_value(&t)
                            .ok()
                            .and_then(|j| j.get(k).and_then(Value::as_str).map(String::from))
                        {
                            issued.push(v);
                        }
                    }
                    json_response(200, &t)
                }
                Err(e) => {
                    note.push_str(&format!(" error={}", e.error));
                    json_response(e.status, &e.body())
                }
            }
        }
    };
    resp.extensions_mut().insert(LogNote(note));
    resp
}

async fn logout(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_form(&headers, &body) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    let now = st.now();
    let mut idp = st.idp();
    if realm != idp.realm() {
        return realm_not_found();
    }
    match idp.logout(&form, now) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            Json(e.body()),
        )
            .into_response(),
    }
}

async fn certs(State(st): State<Arc<AppState>>, Path(realm): Path<String>) -> Response {
    let idp = st.idp();
    if realm != idp.realm() {
        return realm_not_found();
    }
    Json(json!({"keys": [idp.keys().jwk()]})).into_response()
}

async fn well_known(State(st): State<Arc<AppState>>, Path(realm): Path<String>) -> Response {
    let idp = st.idp();
    if realm != idp.realm() {
        return realm_not_found();
    }
    let iss = idp.issuer();
    let oidc = format!("{iss}/protocol/openid-connect");
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{oidc}/auth"),
        "token_endpoint": format!("{oidc}/token"),
        "jwks_uri": format!("{oidc}/certs"),
        "end_session_endpoint": format!("{oidc}/logout"),
        "device_authorization_endpoint": format!("{oidc}/auth/device"),
        "grant_types_supported": ["authorization_code", "password", "refresh_token", DEVICE_CODE_GRANT],
        "response_types_supported": ["code", "none"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "scopes_supported": ["openid", "offline_access", "email", "profile", "address", "phone", "microprofile-jwt"],
        "claims_supported": ["aud", "sub", "iss", "email", "email_verified", "preferred_username", "acr"],
    }))
    .into_response()
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A `Location` value: bytes a header cannot carry (controls, non-ASCII) percent-encoded.
fn location_value(url: &str) -> HeaderValue {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        if (0x21..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("/"))
}

/// A browser answer: a 302, or an HTML page of the login theme. As Keycloak's
/// `CacheControlUtil.noBackButtonCacheControlHeader`, nothing is cached.
fn browser_response(outcome: Outcome, realm: &str) -> Response {
    let (mut resp, note) = match outcome {
        Outcome::Redirect(to) => {
            // The error code, from the query or (implicit answers) the fragment.
            let params = to.split(['?', '#']).skip(1).flat_map(|part| {
                form_urlencoded::parse(part.as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>()
            });
            let note = params
                .into_iter()
                .find(|(k, _)| k == "error")
                .map_or("redirect".to_string(), |(_, e)| {
                    format!("redirect error={e}")
                });
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut()
                .insert(header::LOCATION, location_value(&to));
            (r, note)
        }
        Outcome::Page(status, page) => {
            let html = crate::pages::render(&page, realm);
            let mut r =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html;charset=utf-8"),
            );
            if let Page::Login {
                auth_session_id, ..
            } = &page
            {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "AUTH_SESSION_ID={auth_session_id}; Path=/; HttpOnly; SameSite=Lax"
                )) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            let name = match page {
                Page::Error(_) => "error",
                Page::Login { error: None, .. } => "login",
                Page::Login { .. } => "login error=invalid_user",
                Page::UserCode { error: None, .. } => "user-code",
                Page::UserCode { .. } => "user-code error=invalid_code",
                Page::Consent { .. } => "consent",
                Page::Info { .. } => "info",
            };
            (r, format!("page={name}"))
        }
    };
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, must-revalidate, max-age=0"),
    );
    resp.extensions_mut().insert(LogNote(note));
    resp
}

/// Runs a browser step on the IdP, or answers 404 for another realm.
fn browser_step(
    st: &AppState,
    realm: &str,
    step: impl FnOnce(&mut Idp, i64) -> Outcome,
) -> Response {
    let now = st.now();
    let mut idp = st.idp();
    if realm != idp.realm() {
        return realm_not_found();
    }
    let outcome = step(&mut idp, now);
    let realm = idp.realm().to_string();
    drop(idp);
    browser_response(outcome, &realm)
}

async fn authorize_get(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    uri: Uri,
) -> Response {
    let params = query_pairs(&uri);
    browser_step(&st, &realm, |idp, now| idp.authorize(&params, now))
}

/// The authorization endpoint also takes its parameters as a form (OIDC Core §3.1.2.1).
async fn authorize_post(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(params) = parse_form(&headers, &body) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    browser_step(&st, &realm, |idp, now| idp.authorize(&params, now))
}

async fn login_page_again(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    uri: Uri,
) -> Response {
    let query = query_pairs(&uri);
    browser_step(&st, &realm, |idp, now| idp.login_page_again(&query, now))
}

async fn login_action(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_form(&headers, &body) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    let query = query_pairs(&uri);
    browser_step(&st, &realm, |idp, now| idp.login_action(&query, &form, now))
}

async fn consent_action(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_form(&headers, &body) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    let query = query_pairs(&uri);
    browser_step(&st, &realm, |idp, now| {
        idp.consent_action(&query, &form, now)
    })
}

async fn device_verify_get(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    uri: Uri,
) -> Response {
    let query = query_pairs(&uri);
    let code = query
        .iter()
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.clone());
    browser_step(&st, &realm, |idp, now| {
        idp.device_verify(code.as_deref(), now)
    })
}

async fn device_verify_post(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_form(&headers, &body) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    let code = form
        .iter()
        .find(|(k, _)| k == "device_user_code")
        .map(|(_, v)| v.clone());
    browser_step(&st, &realm, |idp, now| {
        idp.device_verify(code.as_deref(), now)
    })
}

async fn device_status(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    uri: Uri,
) -> Response {
    let query = query_pairs(&uri);
    let error = query
        .iter()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.clone());
    browser_step(&st, &realm, |_, _| {
        Outcome::Page(200, Idp::device_status(error.as_deref()))
    })
}

/// POST .../protocol/openid-connect/auth/device
async fn device_authorization(
    State(st): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_form(&headers, &body) else {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    };
    let now = st.now();
    let mut idp = st.idp();
    if realm != idp.realm() {
        return realm_not_found();
    }
    let (mut resp, note) = match idp.device_authorization(&form, now) {
        Ok(r) => (json_response(200, &r), "device code issued".to_string()),
        Err(e) => (
            json_response(e.status, &e.body()),
            format!("error={}", e.error),
        ),
    };
    resp.extensions_mut().insert(LogNote(note));
    resp
}

fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

#[derive(Deserialize)]
struct FaultBody {
    mode: String,
    count: Option<u64>,
}

async fn set_fault(State(st): State<Arc<AppState>>, Json(b): Json<FaultBody>) -> Response {
    let Some(mode) = FaultMode::parse(&b.mode) else {
        return bad_request("unknown fault mode");
    };
    if b.count == Some(0) {
        return bad_request("count must be at least 1");
    }
    let mut f = st.fault();
    f.mode = mode;
    f.remaining = if mode.is_some() { b.count } else { None };
    Json(f.describe()).into_response()
}

async fn sts(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    st.sts.handle(headers, body).await
}

async fn set_sts_fault(State(st): State<Arc<AppState>>, Json(b): Json<FaultBody>) -> Response {
    let Some(mode) = crate::sts::StsFault::parse(&b.mode) else {
        return bad_request("unknown STS fault mode");
    };
    st.sts.set_fault(mode);
    Json(json!({"mode": b.mode})).into_response()
}

async fn issued(State(st): State<Arc<AppState>>) -> Response {
    Json(json!(*st.issued.lock().unwrap_or_else(|e| e.into_inner()))).into_response()
}

async fn sts_stats(State(st): State<Arc<AppState>>) -> Response {
    Json(st.sts.stats()).into_response()
}

async fn get_fault(State(st): State<Arc<AppState>>) -> Response {
    Json(st.fault().describe()).into_response()
}

#[derive(Deserialize, Default)]
struct EndSessionsBody {
    #[serde(default)]
    include_offline: bool,
}

async fn end_sessions(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let b: EndSessionsBody = if body.is_empty() {
        EndSessionsBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(_) => return bad_request("body must be JSON like {\"include_offline\": true}"),
        }
    };
    let n = st.idp().end_sessions(b.include_offline);
    Json(json!({"ended": n})).into_response()
}

async fn expire_refresh_tokens(State(st): State<Arc<AppState>>) -> Response {
    let n = st.idp().expire_refresh_tokens();
    Json(json!({"expired": n})).into_response()
}

#[derive(Deserialize)]
struct UserBody {
    email: String,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn upsert_user(State(st): State<Arc<AppState>>, Json(b): Json<UserBody>) -> Response {
    if b.email.trim().is_empty() {
        return bad_request("email must not be empty");
    }
    let u = st.idp().upsert_user(&b.email, &b.password, b.roles);
    Json(json!({"email": u.email, "sub": u.sub, "roles": u.roles})).into_response()
}

async fn stats(State(st): State<Arc<AppState>>) -> Response {
    let now = st.now();
    let injected = st.fault().injected;
    let idp = st.idp();
    let (online, offline) = idp.active_sessions(now);
    let c = idp.counters;
    Json(json!({
        "password_grants": c.password_grants,
        "refresh_grants": c.refresh_grants,
        "code_grants": c.code_grants,
        "device_grants": c.device_grants,
        "errors": c.errors,
        "active_sessions": online,
        "offline_sessions": offline,
        "logouts": c.logouts,
        "faults_injected": injected,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct LifetimesBody {
    access: Option<i64>,
    sso_idle: Option<i64>,
    sso_max: Option<i64>,
    offline_idle: Option<i64>,
}

async fn set_lifetimes(State(st): State<Arc<AppState>>, Json(b): Json<LifetimesBody>) -> Response {
    if [b.access, b.sso_idle, b.sso_max, b.offline_idle]
        .iter()
        .flatten()
        .any(|v| *v <= 0)
    {
        return bad_request("lifetimes must be positive seconds");
    }
    let mut idp = st.idp();
    let cur = idp.lifetimes();
    let l = Lifetimes {
        access: b.access.unwrap_or(cur.access),
        sso_idle: b.sso_idle.unwrap_or(cur.sso_idle),
        sso_max: b.sso_max.unwrap_or(cur.sso_max),
        offline_idle: b.offline_idle.unwrap_or(cur.offline_idle),
    };
    idp.set_lifetimes(l);
    Json(l).into_response()
}

async fn get_lifetimes(State(st): State<Arc<AppState>>) -> Response {
    Json(st.idp().lifetimes()).into_response()
}

#[derive(Deserialize)]
struct ClockBody {
    offset: Option<i64>,
    advance: Option<i64>,
}

async fn set_clock(State(st): State<Arc<AppState>>, Json(b): Json<ClockBody>) -> Response {
    match (b.offset, b.advance) {
        (Some(o), None) => st.clock_offset.store(o, Ordering::SeqCst),
        (None, Some(a)) => {
            st.clock_offset.fetch_add(a, Ordering::SeqCst);
        }
        _ => return bad_request("give exactly one of offset or advance"),
    }
    Json(json!({"offset": st.clock_offset.load(Ordering::SeqCst), "now": st.now()})).into_response()
}

/// Serves HTTP/1.1 connections forever. Each connection gets a
/// [`ConnControl`]; when a handler fires it the connection is dropped
/// without a response.
pub async fn serve(listener: TcpListener, app: Router) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let abort = Arc::new(Notify::new());
            let ctl = ConnControl(abort.clone());
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ctl.clone());
                    let mut app = app.clone();
                    async move {
                        let resp = tower::Service::call(&mut app, req.map(Body::new)).await;
                        Ok::<_, Infallible>(resp.unwrap_or_else(|e| match e {}))
                    }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = abort.notified() => {}
            }
        });
    }
}
