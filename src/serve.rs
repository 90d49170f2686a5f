//! The local credentials endpoint: the AWS container-credentials contract
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN`), which
//! botocore, every AWS SDK and many tools read. It binds 127.0.0.1 only, answers one path,
//! to `GET` requests whose `Host` is itself (no DNS rebinding) and whose `Authorization` is
//! its random token (compared in constant time), and renews the credentials first when fewer
//! than 5 minutes remain. `serve` runs it until a signal; `exec` runs it exactly as long as
//! the command it starts.

use crate::config::Service;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::session::Session;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// The one path served.
pub const PATH: &str = "/astran/credentials";

/// Credentials handed out are renewed first when fewer than this many seconds remain.
pub const MIN_VALID_SECONDS: i64 = 300;

/// A bound endpoint, not serving yet.
pub struct Bound {
    listener: tokio::net::TcpListener,
    port: u16,
    token: Secret,
}

/// Bind 127.0.0.1 (`port`, or one the system picks) and draw the token: 32 random bytes,
/// base64url.
pub async fn bind(port: Option<u16>) -> Result<Bound> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0)))
        .await
        .map_err(|e| match (port, e.kind()) {
            (Some(p), std::io::ErrorKind::AddrInUse) => Error::config(format!(
                "port {p} on 127.0.0.1 is in use; pick another with --port, or leave it out for a free one"
            ))
            .with_source(e),
            _ => Error::io("cannot open the local credentials endpoint on 127.0.0.1", e),
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the endpoint's address", e))?
        .port();
    let token = Secret::random();
    Ok(Bound {
        listener,
        port,
        token,
    })
}

impl Bound {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// The variables a client needs: the URI and the token, then the account's endpoints and
    /// region where they are known (`AWS_ENDPOINT_URL_S3`, `_STS`, `_IAM`, `AWS_REGION`).
    pub async fn env(
        &self,
        session: &Session,
        account: Option<&str>,
    ) -> Result<Vec<(String, Secret)>> {
        let acct = session.account(account).await?;
        let mut vars = vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                Secret::new(self.uri()),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_string(),
                self.token.clone(),
            ),
        ];
        let role = match session.load_record(&acct.name).await {
            Ok(Some(r)) => Some(r.role_arn),
            _ => acct.role_arn.clone(),
        };
        for service in Service::ALL {
            let known = match &role {
                Some(r) => acct.endpoint_for(service, r).ok(),
                None => acct
                    .endpoints
                    .iter()
                    .find(|(s, _)| *s == service)
                    .map(|(_, e)| e.clone()),
            };
            if let Some(e) = known {
                vars.push((
                    format!("AWS_ENDPOINT_URL_{}", service.name().to_ascii_uppercase()),
                    Secret::new(e.to_string()),
                ));
            }
        }
        if let Some(r) = &acct.region {
            vars.push(("AWS_REGION".into(), Secret::new(r.clone())));
        }
        Ok(vars)
    }

    /// Serve until the task is dropped.
    pub async fn serve(self, session: Arc<Session>, account: Option<String>) {
        let ctx = Arc::new(Ctx {
            session,
            account,
            token: self.token,
            hosts: [
                format!("127.0.0.1:{}", self.port),
                format!("localhost:{}", self.port),
            ],
        });
        crate::listen::accept_loop(&self.listener, "credentials endpoint", true, move |req| {
            let ctx = ctx.clone();
            async move { answer(&ctx, req).await }
        })
        .await
    }
}

struct Ctx {
    session: Arc<Session>,
    account: Option<String>,
    token: Secret,
    hosts: [String; 2],
}

/// A JSON reply; refusals say what is wrong with the request, never anything of the server's.
fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        serde_json::json!({ "code": code, "message": message }),
    )
}

async fn answer(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| ctx.hosts.iter().any(|ours| ours == h)) {
        log::warn!("credentials endpoint: refused a request for another host");
        return refuse(StatusCode::FORBIDDEN, "AccessDenied", "wrong Host");
    }
    if req.method() != Method::GET {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "only GET",
        );
    }
    if req.uri().path() != PATH || req.uri().query().is_some() {
        return refuse(StatusCode::NOT_FOUND, "NotFound", "no such path");
    }
    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TooLarge",
            "no body is taken",
        );
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let ours = ctx.token.expose().as_bytes();
    let same = given.len() == ours.len() && bool::from(subtle::ConstantTimeEq::ct_eq(given, ours));
    if !same {
        log::warn!("credentials endpoint: refused a request without the right token");
        return refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "missing or wrong token",
        );
    }
    let min = time::Duration::seconds(MIN_VALID_SECONDS);
    match ctx.session.credentials(ctx.account.as_deref(), min).await {
        Ok(c) => {
            let mut doc = serde_json::json!({
                "AccessKeyId": c.access_key_id,
                "SecretAccessKey": c.secret_access_key.expose(),
            });
            if let Some(t) = &c.session_token {
                doc["Token"] = t.expose().into();
            }
            if let Some(e) = c.expiration {
                doc["Expiration"] = crate::clock::rfc3339(e).into();
            }
            reply(StatusCode::OK, doc)
        }
        Err(e) => {
            log::warn!("credentials endpoint: {e}");
            let (status, code) = match e.kind() {
                ErrorKind::LoginRequired => (StatusCode::SERVICE_UNAVAILABLE, "LoginRequired"),
                ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
                ErrorKind::Refused | ErrorKind::WrongCredentials => {
                    (StatusCode::SERVICE_UNAVAILABLE, "Refused")
                }
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "LocalError"),
            };
            // the message is the core's: in words, never a secret
            refuse(status, code, e.message())
        }
    }
}

/// `export NAME=value` lines, quoted for the shell where a value needs it.
pub fn export_lines(vars: &[(String, Secret)]) -> Secret {
    let mut out = String::new();
    for (k, v) in vars {
        let v = v.expose();
        let plain = v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":/._-".contains(c));
        if plain {
            out.push_str(&format!("export {k}={v}\n"));
        } else {
            out.push_str(&format!("export {k}='{}'\n", v.replace('\'', "'\\''")));
        }
    }
    Secret::new(out)
}
