//! The device authorization endpoint's reply parser (`idp::parse_device_reply`).
//!
//! Input: bytes 0-1 are the HTTP status (big-endian), the rest is the body.
#![no_main]

use astran_creds::idp::parse_device_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    match parse_device_reply(status, &data[2..], "idp.example", "root-client") {
        Ok(d) => {
            assert!((200..300).contains(&status));
            assert!(!d.device_code.is_empty());
            assert!(!d.user_code.is_empty() && d.user_code.len() <= 64);
            // what is shown to be opened is https, or http on loopback only
            for u in std::iter::once(&d.verification_uri).chain(d.verification_uri_complete.as_ref()) {
                assert!(u.starts_with("https://") || u.starts_with("http://"), "{u}");
            }
            assert!((1..=60).contains(&d.interval));
            assert!((1..=86400).contains(&d.expires_in));
        }
        Err(e) => {
            let _ = (e.kind(), e.to_string());
        }
    }
});
