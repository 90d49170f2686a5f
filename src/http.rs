//! The HTTP client shared by the IdP and STS clients, and the endpoint policy.

use crate::error::{Error, Result};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// Whole-request timeout: a hung server becomes "unavailable" after this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Build the client (rustls, the system's trust store plus the certificates of `ca_bundle`,
/// `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` honoured). `ASTRAN_HTTP_TIMEOUT_SECS` shortens the
/// timeout (tests, slow links). Without `tls` neither the system's roots nor `ca_bundle` are
/// loaded (reading them was most of a login's start-up): for a client that only talks http
/// to loopback, where an https URL would fail as untrusted, never go unchecked.
pub fn client(ca_bundle: Option<&Path>, tls: bool) -> Result<reqwest::Client> {
    let timeout = std::env::var("ASTRAN_HTTP_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(REQUEST_TIMEOUT);
    let mut b = reqwest::Client::builder().tls_built_in_root_certs(tls);
    // the CA bundle too is for https only
    if let Some(path) = ca_bundle.filter(|_| tls) {
        for cert in read_ca_bundle(path)? {
            b = b.add_root_certificate(cert);
        }
    }
    b.user_agent(concat!("astran-creds/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .https_only(false)
        .build()
        .map_err(|e| Error::config(format!("cannot set up HTTPS: {e}")))
}

/// The certificates of a PEM bundle (`ca_bundle` in the config, or `AWS_CA_BUNDLE`).
fn read_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let bad = |why: String| {
        Error::config(format!(
            "the CA bundle {} {why}; fix ca_bundle in the config or AWS_CA_BUNDLE",
            path.display()
        ))
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("is not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(certs)
}

/// Refuse `http://` unless the host is loopback; refuse other schemes.
pub fn check_endpoint(what: &str, url: &str) -> Result<reqwest::Url> {
    let u = reqwest::Url::parse(url).map_err(|e| {
        Error::config(format!(
            "the {what} {url:?} is not a valid URL ({e}); fix it in the config"
        ))
    })?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback(&u) => Ok(u),
        "http" => Err(Error::config(format!(
            "the {what} {url} uses plain http:// to a host that is not this machine; secrets would travel unencrypted, use https://"
        ))),
        s => Err(Error::config(format!("the {what} {url} has the scheme {s}:; use https://"))),
    }
}

fn is_loopback(u: &reqwest::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Turn a transport error into words; never includes the request body.
pub fn describe_send_error(what: &str, url: &reqwest::Url, e: &reqwest::Error) -> Error {
    let host = url.host_str().unwrap_or("?");
    let why = if e.is_timeout() {
        "it did not answer in time".to_string()
    } else if e.is_connect() {
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        let mut detail = String::from("cannot connect");
        while let Some(s) = src {
            let t = s.to_string();
            if t.contains("dns") || t.contains("resolve") || t.contains("failed to lookup") {
                detail = format!("cannot resolve {host}");
            } else if t.contains("certificate")
                || t.contains("Certificate")
                || t.contains("UnknownIssuer")
            {
                detail = format!(
                    "its TLS certificate is not trusted ({t}); if your network uses its own certificate authority, set ca_bundle in the config or AWS_CA_BUNDLE"
                );
            } else if t.contains("refused") {
                detail = "connection refused".into();
            }
            src = s.source();
        }
        detail
    } else {
        "the connection failed".to_string()
    };
    Error::unavailable(format!(
        "{what} at {host} is unreachable: {why}; check the network and try again later"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_endpoint("x", "https://astran.cloud-iam.com/a").is_ok());
        assert!(check_endpoint("x", "http://127.0.0.1:8080/a").is_ok());
        assert!(check_endpoint("x", "http://127.9.9.9/a").is_ok());
        assert!(check_endpoint("x", "http://[::1]:80/a").is_ok());
        assert!(check_endpoint("x", "http://localhost/a").is_ok());
        let e = check_endpoint("token endpoint", "http://demo.sts.astran.io/").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.to_string().contains("https://"));
        assert!(check_endpoint("x", "http://10.0.0.1/").is_err());
        assert!(check_endpoint("x", "ftp://localhost/").is_err());
        assert!(check_endpoint("x", "not a url").is_err());
    }
}
