//! Our profile in `~/.aws/config`, as text: `[profile <p>]` (`[default]` for the profile
//! named default) with `services = <p>` and the region, and `[services <p>]` with the s3,
//! sts and iam endpoints as botocore's nested values (read since botocore 1.31 / awscli
//! 1.29; the SDKs read the same keys). Every other byte stays (`credfile`'s editor); a
//! profile the user wrote for something else is not taken over.

use crate::config::Service;
use crate::credfile;
use crate::error::{Error, Result};
use crate::values::{AccountName, ProfileName};

/// What we write for one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct OurProfile {
    pub profile: ProfileName,
    pub account: AccountName,
    pub region: Option<String>,
    /// In [`Service::ALL`] order.
    pub endpoints: Vec<(Service, String)>,
    /// `credential_mode = "process"`: the `credential_process` line (see
    /// [`credential_process`]); `None` takes ours out.
    pub credential_process: Option<String>,
}

/// `"<exe>" credential-process --account <a>`, quoted as botocore splits it (shlex).
pub fn credential_process(exe: &std::path::Path, account: &AccountName) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let a = account.as_str();
    let a = if a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-@+=,".contains(c))
    {
        a.to_owned()
    } else {
        quote(a)
    };
    format!(
        "{} credential-process --account {a}",
        quote(&exe.to_string_lossy())
    )
}

/// A `credential_process` value of ours (for `account`), whatever the path to the program.
fn is_ours(value: &str, account: &AccountName) -> bool {
    let v = value.trim();
    let a = account.as_str();
    v.ends_with(&format!(" credential-process --account {a}"))
        || v.ends_with(&format!(" credential-process --account \"{a}\""))
}

/// The keys of `[services <p>]` that are ours.
const SERVICE_KEYS: &[&str] = &["s3", "sts", "iam"];

/// `[profile <p>]`'s name (`default` for the default profile).
pub fn profile_section(p: &ProfileName) -> String {
    if p.as_str() == "default" {
        "default".into()
    } else {
        format!("profile {p}")
    }
}

/// `[services <p>]`'s name.
pub fn services_section(p: &ProfileName) -> String {
    format!("services {p}")
}

/// Refuse to take over a profile the user set up for something else: a `services` line that
/// names other endpoints, or a `credential_process` (botocore would use the static keys we
/// write to the credentials file instead of it, silently). `file` names the file.
pub fn check(text: &str, p: &ProfileName, account: &AccountName, file: &str) -> Result<()> {
    let section = profile_section(p);
    if let Some((line, v)) = credfile::find_key(text, &section, "services") {
        if v.trim() != p.as_str() {
            return Err(Error::config(format!(
                "{file} line {line}: [{section}] already has `services = {}`, which is not ours; \
                 remove that line (or the section), use another profile name, or pass --force to replace it",
                v.trim()
            )));
        }
    }
    match credfile::find_key(text, &section, "credential_process") {
        Some((_, v)) if is_ours(&v, account) => {}
        Some((line, _)) => {
            return Err(Error::config(format!(
            "{file} line {line}: [{section}] has a `credential_process`; the keys written to the \
             credentials file would silently win over it. Remove that line, use another profile \
             name, or pass --force to replace it"
        )))
        }
        None => {}
    }
    Ok(())
}

/// Write our two sections (our keys only; the user's own keys, such as `output`, stay).
/// With `force`, a conflicting `services` or `credential_process` line is replaced or removed.
pub fn apply(text: &str, ours: &OurProfile) -> String {
    let p = &ours.profile;
    let mut entries: Vec<(&str, &str)> = vec![("services", p.as_str())];
    if let Some(r) = &ours.region {
        entries.push(("region", r));
    }
    if let Some(cp) = &ours.credential_process {
        entries.push(("credential_process", cp));
    }
    // without process mode, a credential_process left in place would be a second source
    // (one of ours from an earlier mode, or the user's when forced)
    let mut managed = vec!["services", "credential_process"];
    if ours.region.is_some() {
        managed.push("region");
    }
    let text = credfile::set_profile(text, &profile_section(p), &entries, &managed);
    let nested: Vec<(&str, String)> = ours
        .endpoints
        .iter()
        .map(|(s, url)| (s.name(), format!("\n  endpoint_url = {url}")))
        .collect();
    let entries: Vec<(&str, &str)> = nested.iter().map(|(k, v)| (*k, v.as_str())).collect();
    credfile::set_profile(&text, &services_section(p), &entries, SERVICE_KEYS)
}

/// Take our keys out: the s3, sts and iam endpoints of `[services <p>]`, and of
/// `[profile <p>]` `services` and `region` when it is the one we wrote (`region`); each
/// section too when nothing of the user's is left in it.
pub fn remove(text: &str, p: &ProfileName, region: Option<&str>) -> String {
    let mut out = remove_keys(text, &services_section(p), SERVICE_KEYS);
    let section = profile_section(p);
    if credfile::read_profile(&out, &section).is_some() {
        let ours_region = region.is_some_and(|r| {
            credfile::find_key(&out, &section, "region").is_some_and(|(_, v)| v.trim() == r)
        });
        let keys: &[&str] = if ours_region {
            &["services", "credential_process", "region"]
        } else {
            &["services", "credential_process"]
        };
        out = remove_keys(&out, &section, keys);
    }
    out
}

/// `keys` out of `section`, and the section when it is left empty.
fn remove_keys(text: &str, section: &str, keys: &[&str]) -> String {
    if credfile::read_profile(text, section).is_none() {
        return text.to_owned();
    }
    let out = credfile::set_profile(text, section, &[], keys);
    if credfile::read_profile(&out, section).is_some_and(|kv| kv.is_empty()) {
        credfile::remove_profile(&out, section)
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(p: &str) -> OurProfile {
        OurProfile {
            profile: ProfileName::parse(p).unwrap(),
            account: AccountName::parse("default").unwrap(),
            credential_process: None,
            region: Some("eu-west-3".into()),
            endpoints: vec![
                (Service::S3, "https://demo.s3.astran.io".into()),
                (Service::Sts, "https://demo.sts.astran.io".into()),
                (Service::Iam, "https://demo.iam.astran.io".into()),
            ],
        }
    }

    #[test]
    fn writes_both_sections_keeping_the_rest() {
        let before = "# mine\r\n[profile dev]\r\nregion = us-east-1\r\n\r\n[profile astran]\r\noutput = json\r\n";
        let after = apply(before, &ours("astran"));
        assert!(after.starts_with("# mine\r\n[profile dev]\r\nregion = us-east-1\r\n\r\n[profile astran]\r\noutput = json\r\nservices = astran\r\nregion = eu-west-3\r\n"), "{after:?}");
        assert!(after.ends_with("[services astran]\r\ns3 =\r\n  endpoint_url = https://demo.s3.astran.io\r\nsts =\r\n  endpoint_url = https://demo.sts.astran.io\r\niam =\r\n  endpoint_url = https://demo.iam.astran.io\r\n"), "{after:?}");
        assert_eq!(
            apply(&after, &ours("astran")),
            after,
            "a second write changes nothing"
        );
        // a changed endpoint replaces its nested lines, not more
        let mut moved = ours("astran");
        moved.endpoints[0].1 = "http://127.0.0.1:9000".into();
        let again = apply(&after, &moved);
        assert!(
            again.contains("s3 =\r\n  endpoint_url = http://127.0.0.1:9000\r\nsts =\r\n"),
            "{again:?}"
        );
        assert_eq!(again.matches("endpoint_url").count(), 3);
        // removal leaves the user's key and everything else (and the blank line our
        // section was appended after, as for the credentials file)
        assert_eq!(
            remove(&after, &ours("astran").profile, Some("eu-west-3")),
            "# mine\r\n[profile dev]\r\nregion = us-east-1\r\n\r\n[profile astran]\r\noutput = json\r\n\r\n"
        );
        let fresh = apply("", &ours("default"));
        assert!(
            fresh.starts_with("[default]\nservices = default\n"),
            "{fresh}"
        );
        assert_eq!(
            remove(&fresh, &ours("default").profile, Some("eu-west-3")),
            ""
        );
        // a region that is not the one we wrote is the user's
        let theirs = remove(&fresh, &ours("default").profile, None);
        assert_eq!(theirs, "[default]\nregion = eu-west-3\n\n");
    }

    #[test]
    fn a_profile_set_up_for_something_else_is_refused_with_its_line() {
        let p = ProfileName::parse("astran").unwrap();
        let a = AccountName::parse("default").unwrap();
        let text = "[profile astran]\nregion = x\nservices = corp\n";
        let e = check(text, &p, &a, "~/.aws/config").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(
            e.to_string().contains("~/.aws/config line 3") && e.to_string().contains("--force"),
            "{e}"
        );
        let text = "[profile astran]\ncredential_process = /usr/bin/other\n";
        let e = check(text, &p, &a, "c").unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("credential_process"),
            "{e}"
        );
        assert!(check("[profile astran]\nservices = astran\n", &p, &a, "c").is_ok());
        assert!(check("[profile other]\nservices = corp\n", &p, &a, "c").is_ok());
        // ours, from the process mode, wherever the program lives
        let cp = credential_process(std::path::Path::new("/opt/a b/astran-creds"), &a);
        assert_eq!(
            cp,
            "\"/opt/a b/astran-creds\" credential-process --account default"
        );
        assert!(check(
            &format!("[profile astran]\ncredential_process = {cp}\n"),
            &p,
            &a,
            "c"
        )
        .is_ok());
        let other = AccountName::parse("work").unwrap();
        assert!(check(
            &format!("[profile astran]\ncredential_process = {cp}\n"),
            &p,
            &other,
            "c"
        )
        .is_err());
        // forced: the foreign lines go
        let forced = apply(
            "[profile astran]\ncredential_process = x\nservices = corp\n",
            &ours("astran"),
        );
        assert!(
            !forced.contains("credential_process") && forced.contains("services = astran"),
            "{forced}"
        );
    }

    /// Found by the property test: a nested value whose line ends differ from the file's
    /// first line end was rewritten with another line end on the next write.
    #[test]
    fn process_mode_adds_the_line_and_static_mode_takes_it_out() {
        let mut o = ours("astran");
        o.credential_process = Some(credential_process(
            std::path::Path::new("/usr/bin/astran-creds"),
            &o.account,
        ));
        let with = apply("[profile astran]\noutput = json\n", &o);
        assert!(with.starts_with("[profile astran]\noutput = json\nservices = astran\nregion = eu-west-3\ncredential_process = \"/usr/bin/astran-creds\" credential-process --account default\n"), "{with}");
        assert_eq!(apply(&with, &o), with);
        o.credential_process = None;
        let without = apply(&with, &o);
        assert!(
            !without.contains("credential_process") && without.contains("output = json"),
            "{without}"
        );
    }

    #[test]
    fn a_second_write_is_the_same_with_mixed_line_ends() {
        let t = "[services astran]\n\nsts =\r\n  endpoint_url = https://A\n[profile a]\na = _";
        let once = apply(t, &ours("astran"));
        assert_eq!(apply(&once, &ours("astran")), once);
        assert!(
            once.ends_with(
                "[profile a]\na = _\n\n[profile astran]\nservices = astran\nregion = eu-west-3\n"
            ),
            "{once:?}"
        );
    }
}
