//! The token endpoint's reply parser (`idp::parse_token_reply`).
//!
//! Input: byte 0 picks the grant (mod 4: password, refresh, authorization code, device code),
//! bytes 1-2 are the HTTP status (big-endian), the rest is the body.
#![no_main]

use astran_creds::idp::{parse_token_reply, Grant};
use astran_creds::secret::Secret;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let secret = Secret::new("p");
    let grant = match data[0] % 4 {
        0 => Grant::Password {
            username: "demo@astran.io",
            password: &secret,
        },
        1 => Grant::Refresh {
            refresh_token: &secret,
        },
        2 => Grant::Code {
            code: &secret,
            verifier: &secret,
            redirect_uri: "http://127.0.0.1:1/callback",
        },
        _ => Grant::Device {
            device_code: &secret,
        },
    };
    let status = u16::from_be_bytes([data[1], data[2]]);
    let body = &data[3..];
    // A recent time and the latest representable one: the lifetimes are added to it.
    for obtained_at in [
        OffsetDateTime::from_unix_timestamp(1_724_308_670).unwrap(),
        time::PrimitiveDateTime::MAX.assume_utc(),
    ] {
        match parse_token_reply(status, body, "idp.example", &grant, obtained_at) {
            Ok(t) => {
                assert!((200..300).contains(&status));
                assert!(!t.access_token.is_empty());
                assert!(t.refresh_token.as_ref().is_none_or(|r| !r.is_empty()));
                if let Some(end) = t.refresh_expires_at() {
                    assert!(end >= t.obtained_at);
                }
            }
            Err(e) => {
                let _ = (e.kind(), e.to_string());
            }
        }
    }
});
