//! STS's `AssumeRoleWithWebIdentity` reply parser (`sts::parse_reply`).
//!
//! Input: bytes 0-1 are the HTTP status (big-endian), the rest is the XML body.
#![no_main]

use astran_creds::sts::parse_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    match parse_reply(status, &data[2..], "sts.example", "arn:demo:iam::1:root") {
        Ok(c) => {
            assert!((200..300).contains(&status));
            for v in [
                c.access_key_id.as_str(),
                c.secret_access_key.expose(),
                c.session_token.as_ref().unwrap().expose(),
            ] {
                assert!(!v.is_empty() && v.trim() == v, "{v:?}");
            }
            let _ = astran_creds::clock::rfc3339(c.expiration.unwrap());
        }
        Err(e) => {
            let _ = (e.kind(), e.to_string());
        }
    }
});
