//! A fault-injecting front for STS: `POST /sts` forwards to the real STS under test (moto in
//! server mode, `--sts-upstream`) unless a fault is set through `POST /__test/sts-fault`.
//! The faults are the replies STS really gives (AWS Query-protocol `ErrorResponse` XML with
//! the documented codes and statuses of AssumeRoleWithWebIdentity) and transport failures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StsFault {
    /// 400 ExpiredTokenException: the web identity token has expired.
    ExpiredToken,
    /// 400 InvalidIdentityToken: STS could not validate the token with the IdP.
    InvalidIdentityToken,
    /// 403 AccessDenied: not allowed to assume the role.
    AccessDenied,
    /// 400 Throttling: rate exceeded.
    Throttling,
    /// 503 with a proxy's HTML page.
    Http503,
    /// 200 with XML cut off in the middle.
    Malformed,
    /// 200 with an empty body.
    Empty,
    /// 200 with credentials that lack SecretAccessKey and SessionToken.
    MissingFields,
    /// Never answers.
    Hang,
    /// Answers as STS does, two seconds late (a slow link or a busy STS).
    Slow,
}

impl StsFault {
    pub fn parse(s: &str) -> Option<Option<StsFault>> {
        Some(Some(match s {
            "none" => return Some(None),
            "expired_token" => StsFault::ExpiredToken,
            "invalid_identity_token" => StsFault::InvalidIdentityToken,
            "access_denied" => StsFault::AccessDenied,
            "throttling" => StsFault::Throttling,
            "http503" => StsFault::Http503,
            "malformed" => StsFault::Malformed,
            "empty" => StsFault::Empty,
            "missing_fields" => StsFault::MissingFields,
            "hang" => StsFault::Hang,
            "slow" => StsFault::Slow,
            _ => return None,
        }))
    }
}

/// How late the `slow` fault's answers are.
const SLOW: Duration = Duration::from_secs(2);

pub struct StsFront {
    upstream: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
    state: Mutex<FrontState>,
    started: Instant,
    issued: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
struct FrontState {
    fault: Option<StsFault>,
    /// Milliseconds since start of every request, faulted or not.
    requests: Vec<u64>,
    forwarded: u64,
}

impl StsFront {
    pub fn new(upstream: Option<String>, issued: Arc<Mutex<Vec<String>>>) -> StsFront {
        StsFront {
            issued,
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
            state: Mutex::new(FrontState::default()),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FrontState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_fault(&self, f: Option<StsFault>) {
        self.lock().fault = f;
    }

    pub fn stats(&self) -> Value {
        let s = self.lock();
        json!({"requests": s.requests.len(), "request_ms": s.requests, "forwarded": s.forwarded})
    }

    pub async fn handle(&self, headers: HeaderMap, body: Bytes) -> Response {
        let fault = {
            let mut s = self.lock();
            s.requests.push(self.started.elapsed().as_millis() as u64);
            s.fault
        };
        match fault {
            Some(StsFault::ExpiredToken) => error(
                400,
                "Sender",
                "ExpiredTokenException",
                "Token expired: current date/time 1764417600 must be before the expiration date/time 1764417300",
            ),
            Some(StsFault::InvalidIdentityToken) => error(
                400,
                "Sender",
                "InvalidIdentityToken",
                "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
            ),
            Some(StsFault::AccessDenied) => error(
                403,
                "Sender",
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            ),
            Some(StsFault::Throttling) => error(400, "Sender", "Throttling", "Rate exceeded"),
            Some(StsFault::Http503) => {
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                r
            }
            Some(StsFault::Malformed) => xml(
                200,
                "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <AssumeRoleWithWebIdentityResult>\n    <Credentials>\n      <AccessKeyId>ASIA",
            ),
            Some(StsFault::Empty) => xml(200, ""),
            Some(StsFault::MissingFields) => xml(
                200,
                "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <AssumeRoleWithWebIdentityResult>\n    <Credentials>\n      <AccessKeyId>ASIAMISSINGFIELDS01</AccessKeyId>\n      <Expiration>2026-11-29T13:00:00Z</Expiration>\n    </Credentials>\n  </AssumeRoleWithWebIdentityResult>\n  <ResponseMetadata><RequestId>0</RequestId></ResponseMetadata>\n</AssumeRoleWithWebIdentityResponse>",
            ),
            Some(StsFault::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
            Some(StsFault::Slow) => {
                tokio::time::sleep(SLOW).await;
                self.forward(headers, body).await
            }
            None => self.forward(headers, body).await,
        }
    }

    async fn forward(&self, headers: HeaderMap, body: Bytes) -> Response {
        let Some(up) = &self.upstream else {
            return (StatusCode::BAD_GATEWAY, "no --sts-upstream given").into_response();
        };
        let mut req = hyper::Request::post(up.as_str());
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let Ok(req) = req.body(Full::new(body)) else {
            return (StatusCode::BAD_GATEWAY, "bad upstream URL").into_response();
        };
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
        };
        let status = resp.status();
        let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("upstream body: {e}")).into_response()
            }
        };
        self.lock().forwarded += 1;
        let text = String::from_utf8_lossy(&bytes);
        for tag in ["SecretAccessKey", "SessionToken"] {
            if let Some(v) = between(&text, &format!("<{tag}>"), &format!("</{tag}>")) {
                self.issued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(v.replace("&amp;", "&"));
            }
        }
        let mut r = (status, Body::from(bytes)).into_response();
        if let Some(ct) = ct {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        r
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

fn xml(status: u16, body: &'static str) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}

/// STS's Query-protocol error document.
fn error(status: u16, kind: &str, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n</ErrorResponse>\n"
    );
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
        .into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}
