//! The runner both botocore property tests share (not in `common`: the agent's tests include
//! that and have no proptest).

use super::common::PyChecker;

/// Run a property check against a checker script: `PROPTEST_CASES` cases (else
/// `default_cases`), failures shrunk and printed, nothing persisted.
pub fn check_property<S: proptest::strategy::Strategy>(
    default_cases: u32,
    script: &str,
    strategy: &S,
    check: impl Fn(&S::Value, &mut PyChecker) -> Result<(), proptest::test_runner::TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..proptest::test_runner::Config::default()
    });
    let checker = std::cell::RefCell::new(PyChecker::start(script));
    if let Err(e) = runner.run(strategy, |v| check(&v, &mut checker.borrow_mut())) {
        panic!("{e}");
    }
}

/// A file from its preamble and sections (header, body lines): line ends LF (`ends` 0),
/// CRLF (1) or mixed by `mix` (2), the last line ended or not.
pub fn file_text(
    pre: Vec<String>,
    sections: Vec<(String, Vec<String>)>,
    ends: u8,
    mix: &[bool],
    final_nl: bool,
) -> String {
    let mut lines = pre;
    for (h, b) in sections {
        lines.push(h);
        lines.extend(b);
    }
    let mut text = String::new();
    for (n, l) in lines.iter().enumerate() {
        text.push_str(l);
        if n + 1 == lines.len() && !final_nl {
            break;
        }
        let crlf = match ends {
            0 => false,
            1 => true,
            _ => mix[n % mix.len()],
        };
        text.push_str(if crlf { "\r\n" } else { "\n" });
    }
    text
}
