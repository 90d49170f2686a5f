//! The credentials-file editor (`credfile::{set_profile, remove_profile, read_profile,
//! profile_names}`) on arbitrary text, checking what the tray relies on, not only that
//! nothing panics.
//!
//! Input: byte 0 holds flags, the rest is the file's text (UTF-8).
//! - bit 0: write permanent keys (2 entries) instead of temporary ones (4 entries);
//! - bit 1: which set of values (so an update really changes the values);
//! - bit 2: edit the file's first section (when its name is a usable profile name)
//!   instead of `astran`, so existing sections get edited far more often.
#![no_main]

use astran_creds::credfile::{profile_names, read_profile, remove_profile, set_profile};
use libfuzzer_sys::fuzz_target;

const MANAGED: &[&str] = astran_creds::awsfile::MANAGED_KEYS;

/// What `session::check_profile_name` accepts.
fn usable(p: &str) -> bool {
    !p.is_empty() && !p.contains(['[', ']', '\n', '\r']) && p.trim() == p
}

fn others(text: &str, profile: &str) -> Vec<(String, Option<Vec<(String, String)>>)> {
    profile_names(text)
        .into_iter()
        .filter(|n| n != profile)
        .map(|n| {
            let r = read_profile(text, &n);
            (n, r)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (id, secret) = if flags & 2 == 0 {
        ("ASIAEXAMPLE1", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY=")
    } else {
        ("AKIAEXAMPLE2", "c2VjcmV0/aW4=+dGhl")
    };
    let entries: Vec<(&str, &str)> = if flags & 1 == 0 {
        vec![
            ("aws_access_key_id", id),
            ("aws_secret_access_key", secret),
            ("aws_session_token", "FQoGZXIvYXdzEPT//////////wEaDM="),
            ("x_security_token_expires", "2026-01-01T00:00:00Z"),
        ]
    } else {
        vec![("aws_access_key_id", id), ("aws_secret_access_key", secret)]
    };
    let names = profile_names(text);
    let profile = match names.first() {
        Some(n) if flags & 4 != 0 && usable(n) => n.clone(),
        _ => "astran".to_owned(),
    };
    let profile = profile.as_str();
    let before = others(text, profile);

    // Set: our profile reads back exactly the written keys.
    let set = set_profile(text, profile, &entries, MANAGED);
    let got = read_profile(&set, profile).expect("the profile exists after set_profile");
    for (k, v) in &entries {
        let vals: Vec<&str> = got
            .iter()
            .filter(|(gk, _)| gk == k)
            .map(|(_, gv)| gv.as_str())
            .collect();
        assert_eq!(vals, [*v], "{k} after set_profile:\n{set:?}");
    }
    for m in MANAGED {
        if !entries.iter().any(|(k, _)| k == m) {
            assert!(!got.iter().any(|(k, _)| k == m), "stale {m}:\n{set:?}");
        }
    }
    assert_eq!(
        profile_names(&set).iter().filter(|n| *n == profile).count(),
        1,
        "one section of ours after set_profile:\n{set:?}"
    );
    // Idempotent.
    assert_eq!(
        set_profile(&set, profile, &entries, MANAGED),
        set,
        "set_profile twice"
    );
    // Nothing else changes.
    if !names.iter().any(|n| n == profile) {
        assert!(set.starts_with(text), "appending keeps the text as it was");
        assert_eq!(
            remove_profile(text, profile),
            text,
            "removing an absent profile"
        );
    }
    assert_eq!(
        others(&set, profile),
        before,
        "other profiles after set_profile:\n{set:?}"
    );

    // Remove: no section of ours left, and nothing else changes.
    let removed = remove_profile(&set, profile);
    assert!(
        !profile_names(&removed).iter().any(|n| n == profile),
        "our profile after remove_profile:\n{removed:?}"
    );
    assert_eq!(
        others(&removed, profile),
        before,
        "other profiles after remove_profile:\n{removed:?}"
    );
    let removed_direct = remove_profile(text, profile);
    assert!(!profile_names(&removed_direct).iter().any(|n| n == profile));
    assert_eq!(
        others(&removed_direct, profile),
        before,
        "other profiles after remove_profile:\n{removed_direct:?}"
    );
});
