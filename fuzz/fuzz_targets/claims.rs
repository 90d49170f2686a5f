//! The access-token claims decoder (`claims::decode`) and the role-ARN parser.
//!
//! Input: the first byte picks the shape, the rest is
//! - 0: the whole token, as UTF-8 text;
//! - 1: the JWT payload (JSON bytes), wrapped as `header.base64url(payload).sig` so the
//!   fuzzer reaches the claim parsing;
//! - 2: the value of the role claim (JSON bytes), wrapped in a complete payload.
#![no_main]

use astran_creds::claims::{decode, ClaimsError, RoleArn, TAGS_CLAIM};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

fn jwt(payload: &[u8]) -> String {
    let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
    format!("{HEADER}.{p}.c2ln")
}

fn check(token: &str, payload: Option<&[u8]>) {
    let r = decode(token);
    if let Some(payload) = payload {
        // A well-formed JWT whose payload is a JSON object always decodes, and the claims
        // are the ones in the object.
        let v: Option<Value> = serde_json::from_slice(payload).ok();
        match v.as_ref().and_then(Value::as_object) {
            Some(obj) => {
                let c = r.as_ref().expect("a JSON-object payload decodes");
                let role = obj
                    .get(TAGS_CLAIM)
                    .and_then(|t| t.get("principal_tags"))
                    .and_then(|t| t.get("role"));
                assert_eq!(c.roles.is_some(), role.is_some());
            }
            None => assert_eq!(r.as_ref().unwrap_err(), &ClaimsError::BadJson),
        }
    }
    if let Ok(c) = r {
        for role in c.roles.iter().flatten() {
            if let Some(a) = RoleArn::parse(role) {
                assert!(!a.partition.is_empty() && !a.account.is_empty() && !a.resource.is_empty());
                assert!(role.starts_with(&format!("arn:{}:iam:", a.partition)));
                assert!(role.ends_with(&format!(":{}:{}", a.account, a.resource)));
            }
        }
    } else if let Err(e) = r {
        let _ = e.to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(s) = std::str::from_utf8(rest) {
                check(s, None);
                if let Some(role) = s.strip_prefix("arn:") {
                    let _ = RoleArn::parse(role);
                }
            }
        }
        1 => check(&jwt(rest), Some(rest)),
        _ => {
            let Ok(role) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let payload = serde_json::json!({
                "exp": 1724308670,
                "email": "demo@astran.io",
                "sid": "104b",
                TAGS_CLAIM: { "principal_tags": { "role": role } },
            });
            let bytes = serde_json::to_vec(&payload).unwrap();
            check(&jwt(&bytes), Some(&bytes));
        }
    }
});
