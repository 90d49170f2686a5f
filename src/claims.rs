//! The access token's claims, read without verifying the signature: STS verifies it; we
//! only need the role ARNs.

use base64::Engine;
use serde_json::Value;

/// The claim that carries Astran's role ARNs: `"https://aws.amazon.com/tags"."principal_tags"."role"`.
pub const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// `None` when the token has no role claim at all; `Some(vec![])` when it is empty.
    pub roles: Option<Vec<String>>,
    /// Who logged in: `email`, else `preferred_username` (a browser or device login learns
    /// it here).
    pub email: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimsError {
    #[error("the access token is not a JWT (expected three dot-separated parts)")]
    NotJwt,
    #[error("the access token's payload is not base64url")]
    BadBase64,
    #[error("the access token's payload is not a JSON object")]
    BadJson,
}

/// Decode the payload of a JWT (header.payload.signature).
pub fn decode(token: &str) -> Result<AccessClaims, ClaimsError> {
    let mut parts = token.trim().split('.');
    let (Some(_header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::NotJwt);
    };
    let payload = payload.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| ClaimsError::BadBase64)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| ClaimsError::BadJson)?;
    let obj = v.as_object().ok_or(ClaimsError::BadJson)?;
    let roles = obj
        .get(TAGS_CLAIM)
        .and_then(|t| t.get("principal_tags"))
        .and_then(|t| t.get("role"))
        .map(|r| match r {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str())
                .map(str::to_owned)
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => vec![],
        });
    let email = ["email", "preferred_username"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    Ok(AccessClaims { roles, email })
}

/// A parsed role ARN: `arn:<partition>:iam::<account>:<resource>`. The partition is the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub partition: String,
    pub account: String,
    pub resource: String,
}

impl RoleArn {
    pub fn parse(arn: &str) -> Option<RoleArn> {
        let mut it = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(_region), Some(account), Some(res)) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        ) else {
            return None;
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !ok(partition) || account.is_empty() || res.is_empty() {
            return None;
        }
        Some(RoleArn {
            partition: partition.to_owned(),
            account: account.to_owned(),
            resource: res.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"RS256"}"#),
            e.encode(payload)
        )
    }

    #[test]
    fn reads_the_tutorial_claims() {
        let t = jwt(r#"{"exp":1724308670,"sid":"104b","email":"demo@astran.io",
            "https://aws.amazon.com/tags":{"principal_tags":{"role":["arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced80013:root"]}}}"#);
        let c = decode(&t).unwrap();
        assert_eq!(
            c.roles.unwrap(),
            vec!["arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced80013:root"]
        );
    }

    #[test]
    fn missing_and_empty_claims_are_told_apart() {
        assert_eq!(decode(&jwt(r#"{"exp":1}"#)).unwrap().roles, None);
        let empty = jwt(r#"{"https://aws.amazon.com/tags":{"principal_tags":{"role":[]}}}"#);
        assert_eq!(decode(&empty).unwrap().roles, Some(vec![]));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(decode("abc"), Err(ClaimsError::NotJwt));
        assert_eq!(decode("a.b.c.d"), Err(ClaimsError::NotJwt));
        assert_eq!(decode("a.!!!.c"), Err(ClaimsError::BadBase64));
        assert_eq!(decode(&jwt("[1,2]")), Err(ClaimsError::BadJson));
    }

    #[test]
    fn role_arn_partition_is_the_tenant() {
        let a = RoleArn::parse("arn:demo:iam::ce04d61d-afac-504f-a96b-ebbbced80013:root").unwrap();
        assert_eq!(a.partition, "demo");
        assert_eq!(a.resource, "root");
        assert!(RoleArn::parse("arn:demo:s3:::bucket").is_none());
        assert!(RoleArn::parse("arn:de/mo:iam::1:root").is_none());
        assert!(RoleArn::parse("not-an-arn").is_none());
    }
}
