//! Property test of the credentials-file editor against the AWS CLI's own parser.
//!
//! Random credentials files (comments with `#` and `;`, blank lines, LF, CRLF and both mixed,
//! no final newline, duplicate sections, odd spacing around keys, continuation lines, our
//! profile absent, present or present twice, lookalike section names, unicode and the
//! control characters Python counts as whitespace) go through `credfile::set_profile`. Then:
//! - every byte outside our section is the same (checked here, byte for byte);
//! - botocore (`raw_config_parse`, in the project's venv) reads every other profile exactly
//!   as before, and reads our profile with the written keys (`tests/support/botocore_check.py`);
//! - a second identical write changes nothing.
//!
//! `PROPTEST_CASES` sets the number of cases (default 10,000). A failing case is shrunk to a
//! small file, and printed.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
mod props;

use astran_creds::credfile;
use common::PyChecker;
use props::check_property;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const PROFILE: &str = "astran";
const MANAGED: &[&str] = astran_creds::awsfile::MANAGED_KEYS;

// ---------------------------------------------------------------------------------------
// Generators. Only section headers start with `[` in column 0, so the check below can find
// section boundaries without a parser of its own.

fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        2 => proptest::char::range('0', '9'),
        3 => proptest::sample::select(vec![' ', '=', ':', '#', ';', '[', ']', '/', '+', '.', '-', '_', '"', '\'', '%', '$', '\\']),
        2 => proptest::sample::select(vec!['é', 'ü', 'ß', 'Ω', '日', '本', '🔑', 'ø', '\u{a0}', '\u{3000}']),
        1 => proptest::sample::select(vec!['\t', '\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}', '\u{85}']),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(text_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// Text that starts with a visible character, so it is not all whitespace.
fn solid_text(max: usize) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(vec!['x', 'Q', '7', 'é', '日', '"', '/']),
        text(max),
    )
        .prop_map(|(c, t)| format!("{c}{t}"))
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_.-]{0,10}",
        1 => "[A-Z][A-Za-z0-9_]{0,8}",
        1 => proptest::sample::select(vec!["region", "output", "AWS_ACCESS_KEY_ID", "Aws_Session_Token", "aws_secret_access_key", "clé"]).prop_map(String::from),
    ]
}

fn our_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(MANAGED.to_vec()).prop_map(String::from),
        1 => proptest::sample::select(MANAGED.to_vec()).prop_map(|k| k.to_ascii_uppercase()),
        1 => key(),
    ]
}

fn indent() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\t"), 1 => Just("  ")]
}

fn separator() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        " = ", "=", " =", "= ", " : ", ":", "\t=\t", "  =  ", " = ", " =  ",
    ])
}

fn blank() -> impl Strategy<Value = String> {
    proptest::sample::select(vec!["", "", " ", "\t", "  \t", "\u{c}", "\u{a0}"])
        .prop_map(String::from)
}

fn comment() -> impl Strategy<Value = String> {
    (
        indent(),
        proptest::sample::select(vec!["#", ";", "# ", "; ", "##"]),
        text(24),
    )
        .prop_map(|(i, p, t)| format!("{i}{p}{t}"))
}

/// An option with its continuation lines (some after a blank line, which Python's
/// configparser also takes as part of the value).
fn option(k: BoxedStrategy<String>) -> impl Strategy<Value = Vec<String>> {
    (
        indent(),
        k,
        separator(),
        text(30),
        proptest::collection::vec(
            (
                any::<bool>(),
                proptest::sample::select(vec!["  ", "    ", "\t", "      "]),
                solid_text(20),
            ),
            0..3,
        ),
    )
        .prop_map(|(i, k, sep, v, conts)| {
            let mut lines = vec![format!("{i}{k}{sep}{v}")];
            for (blank_before, ind, t) in conts {
                if blank_before {
                    lines.push(String::new());
                }
                lines.push(format!("    {ind}{t}"));
            }
            lines
        })
}

fn body(k: fn() -> BoxedStrategy<String>) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            6 => option(k()),
            2 => blank().prop_map(|b| vec![b]),
            2 => comment().prop_map(|c| vec![c]),
            // a line without a delimiter: botocore refuses the file
            1 => "[a-z][a-z ]{0,8}".prop_map(|g| vec![g]),
        ],
        0..6,
    )
    .prop_map(|v| v.into_iter().flatten().collect())
}

fn other_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "(profile )?[a-z][a-z0-9_-]{0,10}",
        2 => proptest::sample::select(vec![
            "astran2", "Astran", "ASTRAN", "astran ", " astran", "profile astran",
            "astran.bak", "prød", "日本", "default", "DEFAULT", "a]b",
        ]).prop_map(String::from),
    ]
    .prop_filter("not ours", |n| n != PROFILE)
}

fn header_trailer() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\t"), 1 => Just(" ; note"), 1 => Just("  # x")]
}

#[derive(Debug, Clone)]
struct Case {
    text: String,
    entries: Vec<(String, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    let other = (other_name(), header_trailer(), body(|| key().boxed()))
        .prop_map(|(n, t, b)| (format!("[{n}]{t}"), b));
    let ours = (header_trailer(), body(|| our_key().boxed()))
        .prop_map(|(t, b)| (format!("[{PROFILE}]{t}"), b));
    let preamble = proptest::collection::vec(
        prop_oneof![
            4 => blank(),
            4 => comment(),
            // an option before any section: botocore refuses the file
            1 => "[a-z]{1,5} = [a-z]{0,5}",
        ],
        0..3,
    );
    (
        preamble,
        proptest::collection::vec(other, 0..5),
        proptest::collection::vec((any::<prop::sample::Index>(), ours), 0..=2),
        0u8..3, // line ends: LF, CRLF, mixed
        proptest::collection::vec(any::<bool>(), 64),
        any::<bool>(), // final newline
        entries(),
    )
        .prop_map(|(pre, mut sections, ours, ends, mix, final_nl, entries)| {
            for (at, s) in ours {
                let i = at.index(sections.len() + 1);
                sections.insert(i, s);
            }
            let text = props::file_text(pre, sections, ends, &mix, final_nl);
            Case { text, entries }
        })
}

fn entries() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        "(ASIA|AKIA)[A-Z0-9]{16}",
        "[A-Za-z0-9/+]{40}",
        proptest::option::of("[A-Za-z0-9/+=]{20,120}"),
        proptest::option::of(Just("2026-11-29T13:00:00Z".to_string())),
    )
        .prop_map(|(id, secret, token, exp)| {
            let mut e = vec![
                ("aws_access_key_id".to_string(), id),
                ("aws_secret_access_key".to_string(), secret),
            ];
            if let Some(t) = token {
                e.push(("aws_session_token".into(), t));
            }
            if let Some(x) = exp {
                e.push(("x_security_token_expires".into(), x));
            }
            e
        })
}

// ---------------------------------------------------------------------------------------
// Checks.

fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// The section name of a header line in column 0, the way configparser reads it.
fn header(line: &str) -> Option<&str> {
    if !line.starts_with('[') {
        return None;
    }
    let rest = python_strip(line).strip_prefix('[')?;
    let close = rest.rfind(']')?;
    (close > 0).then(|| &rest[..close])
}

/// The file without our sections (each from its header to the next header).
fn without_ours(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut ours = false;
    let mut count = 0;
    for line in text.split_inclusive('\n') {
        if let Some(name) = header(line) {
            ours = name == PROFILE;
            count += ours as usize;
        }
        if !ours {
            out.push_str(line);
        }
    }
    (out, count)
}

fn check(
    boto: &mut PyChecker,
    before: &str,
    after: &str,
    entries: &[(String, String)],
) -> Option<String> {
    let req = serde_json::json!({
        "before": before, "after": after, "profile": PROFILE,
        "entries": entries, "managed": MANAGED,
    });
    boto.ask(&req)
}

fn check_case(c: &Case, boto: &mut PyChecker) -> Result<(), TestCaseError> {
    let entries: Vec<(&str, &str)> = c
        .entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let after = credfile::set_profile(&c.text, PROFILE, &entries, MANAGED);

    let (rest_before, ours_before) = without_ours(&c.text);
    let (rest_after, ours_after) = without_ours(&after);
    prop_assert_eq!(
        ours_after,
        1,
        "one section of ours after the edit:\n{}",
        after
    );
    if ours_before > 0 {
        prop_assert_eq!(
            &rest_after,
            &rest_before,
            "bytes outside our section changed"
        );
    } else {
        // appended: the old file, then at most the line ends that separate our section
        prop_assert!(
            rest_after.starts_with(&rest_before)
                && rest_after[rest_before.len()..]
                    .chars()
                    .all(|c| c == '\r' || c == '\n'),
            "appending changed the file before our section:\n{:?}\n{:?}",
            rest_before,
            rest_after
        );
    }
    let read = credfile::read_profile(&after, PROFILE).expect("our profile");
    for (k, v) in &c.entries {
        prop_assert!(
            read.iter().any(|(rk, rv)| rk == k && rv == v),
            "our reader misses {} in {:?}",
            k,
            read
        );
    }
    prop_assert_eq!(
        &credfile::set_profile(&after, PROFILE, &entries, MANAGED),
        &after,
        "a second identical write changed the file"
    );
    if let Some(why) = check(boto, &c.text, &after, &c.entries) {
        return Err(TestCaseError::fail(format!(
            "botocore: {why}\nbefore: {:?}\nafter:  {:?}",
            c.text, after
        )));
    }
    Ok(())
}

#[test]
fn writing_our_profile_keeps_every_other_byte_and_what_botocore_reads() {
    check_property(10_000, "botocore_check.py", &case(), check_case);
}
