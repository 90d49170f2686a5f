//! IAM's reply parsers (`iam::parse_create`, `iam::parse_list`, `iam::parse_error`).
//!
//! Input: bytes 0-1 are the HTTP status (big-endian), the rest is the XML body.
#![no_main]

use astran_creds::iam::{parse_create, parse_error, parse_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    let text = String::from_utf8_lossy(&data[2..]);
    if let Ok(k) = parse_create(&text) {
        for v in [
            k.user_name.as_str(),
            k.access_key_id.as_str(),
            k.secret_access_key.expose(),
        ] {
            assert!(!v.is_empty() && v.trim() == v, "{v:?}");
        }
        // the secret never shows in Debug
        assert!(!format!("{k:?}").contains(k.secret_access_key.expose()) || k.secret_access_key.expose().len() < 4);
    }
    if let Ok((list, next)) = parse_list(&text) {
        assert!(list.keys.iter().all(|k| !k.access_key_id.is_empty()));
        assert!(next.is_none_or(|m| !m.is_empty()));
    }
    let r = parse_error(status, &text);
    assert!(!r.code.is_empty());
    let e = r.to_error("iam.example");
    let _ = (e.kind(), e.to_string());
});
