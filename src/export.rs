//! Credentials as other programs take them: shell `export` lines (sh, fish, PowerShell, JSON)
//! and the `credential_process` JSON document. One renderer for the CLI and the tray's
//! "Copy export lines". The text is secret: it comes back as a [`Secret`].

use crate::secret::Secret;
use crate::sts::Credentials;
use zeroize::Zeroize;

/// How `export` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sh,
    Fish,
    Powershell,
    Json,
}

/// The environment variables the AWS CLI and SDKs read, in order.
fn vars(c: &Credentials) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("AWS_ACCESS_KEY_ID", c.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            c.secret_access_key.expose().to_owned(),
        ),
    ];
    if let Some(t) = &c.session_token {
        v.push(("AWS_SESSION_TOKEN", t.expose().to_owned()));
    }
    if let Some(e) = c.expiration {
        v.push(("AWS_CREDENTIAL_EXPIRATION", crate::clock::rfc3339(e)));
    }
    v
}

/// `export K='v'` lines (or the format's equivalent), quoted for the shell.
pub fn render(c: &Credentials, format: Format) -> Secret {
    let mut vars = vars(c);
    let out = render_vars(&vars, format);
    for (_, v) in vars.iter_mut() {
        v.zeroize();
    }
    Secret::new(out)
}

fn render_vars(vars: &[(&str, String)], format: Format) -> String {
    let sq = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
    let mut out = String::new();
    match format {
        Format::Sh => vars
            .iter()
            .for_each(|(k, v)| out.push_str(&format!("export {k}={}\n", sq(v)))),
        Format::Fish => vars.iter().for_each(|(k, v)| {
            out.push_str(&format!(
                "set -gx {k} '{}';\n",
                v.replace('\\', "\\\\").replace('\'', "\\'")
            ))
        }),
        Format::Powershell => vars
            .iter()
            .for_each(|(k, v)| out.push_str(&format!("$Env:{k} = '{}'\n", v.replace('\'', "''")))),
        Format::Json => {
            let m: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone().into()))
                .collect();
            out = serde_json::Value::Object(m).to_string();
            out.push('\n');
        }
    }
    out
}

/// The AWS `credential_process` document (`Version` 1).
pub fn credential_process_json(c: &Credentials) -> Secret {
    let mut doc = serde_json::json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
    });
    if let Some(t) = &c.session_token {
        doc["SessionToken"] = t.expose().into();
    }
    if let Some(e) = c.expiration {
        doc["Expiration"] = crate::clock::rfc3339(e).into();
    }
    Secret::new(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let v = vec![("K", "a'b c".to_string())];
        assert_eq!(render_vars(&v, Format::Sh), "export K='a'\\''b c'\n");
        assert_eq!(render_vars(&v, Format::Fish), "set -gx K 'a\\'b c';\n");
        assert_eq!(render_vars(&v, Format::Powershell), "$Env:K = 'a''b c'\n");
        assert_eq!(render_vars(&v, Format::Json), "{\"K\":\"a'b c\"}\n");
    }

    #[test]
    fn every_variable_in_order() {
        let c = Credentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: Secret::new("S'1"),
            session_token: Some(Secret::new("T")),
            expiration: crate::clock::parse_rfc3339("2026-01-01T00:00:00Z"),
        };
        assert_eq!(
            render(&c, Format::Sh).expose(),
            "export AWS_ACCESS_KEY_ID='ASIA1'\nexport AWS_SECRET_ACCESS_KEY='S'\\''1'\n\
             export AWS_SESSION_TOKEN='T'\nexport AWS_CREDENTIAL_EXPIRATION='2026-01-01T00:00:00Z'\n"
        );
        let j: serde_json::Value =
            serde_json::from_str(credential_process_json(&c).expose()).unwrap();
        assert_eq!(j["Version"], 1);
        assert_eq!(j["SessionToken"], "T");
        assert_eq!(j["Expiration"], "2026-01-01T00:00:00Z");
    }
}
