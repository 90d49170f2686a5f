//! Every type of the core that carries a secret shows it redacted in Debug output, however
//! it is nested (a panic or a log line with `{:?}` must not leak it).

use astran_creds::secret::Secret;

/// Every type that carries a secret shows it redacted, however it is nested.
#[test]
fn types_holding_secrets_debug_without_them() {
    const S: &str = "TOPSECRET-hunter2";
    let shown = [
        format!(
            "{:?}",
            astran_creds::idp::TokenSet {
                access_token: Secret::new(S),
                refresh_token: Some(Secret::new(S)),
                id_token: Some(Secret::new(S)),
                expires_in: 300,
                refresh_expires_in: 1800,
                obtained_at: time::OffsetDateTime::UNIX_EPOCH,
                offline: true,
            }
        ),
        format!(
            "{:?}",
            astran_creds::sts::Credentials {
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: Secret::new(S),
                session_token: Some(Secret::new(S)),
                expiration: None,
            }
        ),
        format!(
            "{:?}",
            astran_creds::store::SessionRecord {
                refresh_token: Secret::new(S),
                refresh_expires_at: None,
                idle_seconds: None,
                started_at: 0,
                refreshed_at: None,
                email: "a@b.c".into(),
                role_arn: "arn:demo:iam::1:root".into(),
                sts_endpoint: "https://demo.sts.astran.io".into(),
                offline: false,
            }
        ),
        format!(
            "{:?}",
            astran_creds::session::LoginRequest {
                password: Some(Secret::new(S)),
                ..Default::default()
            }
        ),
        format!(
            "{:?}",
            serde_json::from_str::<astran_creds::protocol::Request>(&format!(
                r#"{{"cmd":"login","email":"a@b.c","password":"{S}"}}"#
            ))
            .unwrap()
        ),
        format!(
            "{:?}",
            serde_json::from_str::<astran_creds::protocol::Request>(&format!(
                r#"{{"cmd":"keyring_change","keyring":"k","slot":"session","account":"default","value":"{S}"}}"#
            ))
            .unwrap()
        ),
    ];
    for s in shown {
        assert!(!s.contains(S), "{s}");
        assert!(s.contains("redacted"), "{s}");
    }
}
