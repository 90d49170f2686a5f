//! Property test of our `~/.aws/config` sections against botocore's own loader.
//!
//! Random config files (profiles, `[default]`, `[sso-session …]`, other `[services …]`
//! sections with nested values, comments, blank lines, LF/CRLF/mixed line ends, no final
//! newline, our `[profile astran]` absent or holding the user's own keys, our
//! `[services astran]` absent or stale) go through `awsconfig::apply`. Then:
//! - every byte outside our two sections is the same (checked here);
//! - botocore (`load_config`) reads every other profile, sso-session and services section as
//!   before, the user's own keys in our profile as before, and ours with `services = astran`,
//!   the region and the three endpoints (`tests/support/botocore_config_check.py`);
//! - a second identical write changes nothing;
//! - `awsconfig::remove` leaves botocore reading the other sections as before.
//!
//! `PROPTEST_CASES` sets the number of cases (default 2,000).
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
mod props;

use astran_creds::awsconfig::{self, OurProfile};
use astran_creds::config::Service;
use astran_creds::values::ProfileName;
use common::PyChecker;
use props::check_property;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const PROFILE: &str = "astran";

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9./:_-][a-zA-Z0-9 ./:_-]{0,14}"
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,9}",
        1 => proptest::sample::select(vec!["output", "cli_pager", "sso_session", "role_arn", "source_profile"]).prop_map(String::from),
    ]
    .prop_filter("not ours", |k| k != "services" && k != "region" && k != "credential_process")
}

fn comment() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(vec!["#", ";", "# ", "; "]),
        "[a-zA-Z0-9 \\[\\]=:.-]{0,20}",
    )
        .prop_map(|(p, t)| format!("{p}{t}"))
}

/// A body line or a nested option (`s3 =` and indented lines).
fn body() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            5 => (key(), proptest::sample::select(vec![" = ", "=", " =  "]), value())
                .prop_map(|(k, s, v)| vec![format!("{k}{s}{v}")]),
            2 => (proptest::sample::select(vec!["s3", "ec2", "dynamodb", "sts"]), value(), proptest::sample::select(vec!["  ", "    ", "\t"]))
                .prop_map(|(svc, v, ind)| vec![format!("{svc} ="), format!("{ind}endpoint_url = https://{v}")]),
            1 => Just(vec![String::new()]),
            1 => comment().prop_map(|c| vec![c]),
        ],
        0..5,
    )
    .prop_map(|v| {
        // a key set twice makes botocore refuse the whole file: one of each
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter(|entry| match entry[0].split_once('=') {
                Some((k, _)) if !entry[0].starts_with(['#', ';']) => {
                    seen.insert(k.trim().to_ascii_lowercase())
                }
                _ => true,
            })
            .flatten()
            .collect()
    })
}

fn other_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "profile [a-z][a-z0-9-]{0,8}",
        1 => "sso-session [a-z]{1,6}",
        1 => "services [a-z][a-z0-9-]{0,8}",
        1 => proptest::sample::select(vec![
            "default", "profile astran2", "services astran2", "profile Astran", "profile astran-permanent",
        ]).prop_map(String::from),
    ]
    .prop_filter("not ours", |n| n != "profile astran" && n != "services astran")
}

#[derive(Debug, Clone)]
struct Case {
    text: String,
    ours: OurProfile,
}

fn case() -> impl Strategy<Value = Case> {
    let other = (other_name(), body()).prop_map(|(n, b)| (format!("[{n}]"), b));
    // the user's own profile section: their keys, and maybe the services line of an
    // earlier write of ours
    let our_profile = (
        body(),
        any::<bool>(),
        proptest::option::of("[a-z]{2}-[a-z]{4}-[0-9]"),
    )
        .prop_map(|(mut b, services, region)| {
            if services {
                b.push(format!("services = {PROFILE}"));
            }
            if let Some(r) = region {
                b.insert(0, format!("region = {r}"));
            }
            (format!("[profile {PROFILE}]"), b)
        });
    let our_services = body().prop_map(|b| (format!("[services {PROFILE}]"), b));
    (
        proptest::collection::vec(prop_oneof![Just(String::new()), comment()], 0..3),
        proptest::collection::vec(other, 0..5),
        proptest::option::of((any::<prop::sample::Index>(), our_profile)),
        proptest::option::of((any::<prop::sample::Index>(), our_services)),
        0u8..3,
        proptest::collection::vec(any::<bool>(), 64),
        any::<bool>(),
        proptest::option::of("[a-z]{2}-[a-z]{4}-[0-9]"),
        proptest::collection::vec(value(), 3),
    )
        .prop_map(
            |(pre, mut sections, prof, svc, ends, mix, final_nl, region, urls)| {
                // a section twice makes botocore refuse the whole file: one of each
                let mut seen = std::collections::HashSet::new();
                sections.retain(|(h, _)| seen.insert(h.clone()));
                for (at, s) in [prof, svc].into_iter().flatten() {
                    let i = at.index(sections.len() + 1);
                    sections.insert(i, s);
                }
                let text = props::file_text(pre, sections, ends, &mix, final_nl);
                let endpoints = Service::ALL
                    .iter()
                    .zip(urls)
                    .map(|(s, u)| {
                        (
                            *s,
                            format!(
                                "https://{}.{}.example",
                                u.trim().replace([' ', '/', ':'], "-"),
                                s.name()
                            ),
                        )
                    })
                    .collect();
                Case {
                    text,
                    ours: OurProfile {
                        profile: ProfileName::parse(PROFILE).unwrap(),
                        account: astran_creds::values::AccountName::parse("default").unwrap(),
                        credential_process: None,
                        region,
                        endpoints,
                    },
                }
            },
        )
}

/// The file without our two sections (each from its header to the next header).
fn without_ours(text: &str) -> String {
    let mut out = String::new();
    let mut ours = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with('[') {
            let name = line
                .trim_end()
                .trim_start_matches('[')
                .trim_end_matches(']');
            ours = name == format!("profile {PROFILE}") || name == format!("services {PROFILE}");
        }
        if !ours {
            out.push_str(line);
        }
    }
    out
}

fn check(boto: &mut PyChecker, c: &Case, after: &str, removed: &str) -> Option<String> {
    let endpoints: serde_json::Map<String, serde_json::Value> = c
        .ours
        .endpoints
        .iter()
        .map(|(s, u)| (s.name().to_string(), u.clone().into()))
        .collect();
    let req = serde_json::json!({
        "before": c.text, "after": after, "removed": removed, "profile": PROFILE,
        "region": c.ours.region, "endpoints": endpoints,
    });
    boto.ask(&req)
}

fn check_case(c: &Case, boto: &mut PyChecker) -> Result<(), TestCaseError> {
    let p = &c.ours.profile;
    prop_assert!(
        awsconfig::check(&c.text, p, &c.ours.account, "config").is_ok(),
        "no conflict generated"
    );
    let after = awsconfig::apply(&c.text, &c.ours);
    let (rest_before, rest_after) = (without_ours(&c.text), without_ours(&after));
    // appended sections come after the old text, at most with the line end that ends it
    prop_assert!(
        rest_after == rest_before
            || (rest_after.starts_with(&rest_before)
                && rest_after[rest_before.len()..]
                    .chars()
                    .all(|c| c == '\r' || c == '\n')),
        "bytes outside our sections changed:\n{:?}\n{:?}",
        rest_before,
        rest_after
    );
    prop_assert_eq!(
        &awsconfig::apply(&after, &c.ours),
        &after,
        "a second identical write changed the file"
    );
    let removed = awsconfig::remove(&after, p, c.ours.region.as_deref());
    if let Some(why) = check(boto, c, &after, &removed) {
        return Err(TestCaseError::fail(format!(
            "botocore: {why}\nbefore:  {:?}\nafter:   {:?}\nremoved: {:?}",
            c.text, after, removed
        )));
    }
    Ok(())
}

#[test]
fn our_config_sections_keep_every_other_byte_and_what_botocore_reads() {
    check_property(2_000, "botocore_config_check.py", &case(), check_case);
}
