//! The INI editor of the AWS shared files (credentials, and config), byte for byte. Pure text
//! in, text out: the files on disk are `awsfile`'s, the atomic write and lock `fsio`'s.
//!
//! Only the managed profile's section changes; every other byte (other profiles, comments,
//! blank lines, key order, CRLF line ends, a missing final newline) stays as it was. The
//! parser follows Python's `configparser` as botocore uses it (full-line `#`/`;` comments,
//! `=` or `:` delimiters, indented continuation lines, `[name]` headers), so it agrees with
//! the AWS CLI on where a section starts and ends.

/// Keys we own in a profile of the credentials file.
pub const MANAGED_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "x_security_token_expires",
];

/// One physical line, with its line ending (if any).
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    text: &'a str,
    /// The whole line including its ending.
    full: &'a str,
}

fn split_lines(s: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (full, next) = match rest.find('\n') {
            Some(i) => rest.split_at(i + 1),
            None => (rest, ""),
        };
        let text = full
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(full);
        out.push(Line { text, full });
        rest = next;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Blank or a full-line comment.
    Blank,
    Header,
    Option,
    Continuation,
    /// A line with no `=` or `:`: configparser reports it but the option before it goes on
    /// (a more indented line after it still continues that option).
    Invalid,
}

/// A section: header line index, and the range of lines up to the next header.
#[derive(Debug)]
struct Section<'a> {
    name: &'a str,
    header: usize,
    end: usize,
    /// One past the last option/continuation line (trailing blanks and comments excluded).
    content_end: usize,
}

/// Python's `str.isspace`: Unicode whitespace plus the separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn header_name(stripped: &str) -> Option<&str> {
    // configparser: SECTCRE = r"\[(?P<header>.+)\]" matched at the start of the stripped line.
    let rest = stripped.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    if close == 0 {
        return None;
    }
    Some(&rest[..close])
}

fn classify<'a>(lines: &[Line<'a>]) -> (Vec<Kind>, Vec<Section<'a>>) {
    let mut kinds = Vec::with_capacity(lines.len());
    let mut sections: Vec<Section> = Vec::new();
    let mut in_option = false;
    let mut indent_level = 0usize;
    for (i, l) in lines.iter().enumerate() {
        let stripped = l.text.trim_matches(is_python_space);
        if stripped.is_empty() || stripped.starts_with('#') || stripped.starts_with(';') {
            kinds.push(Kind::Blank);
            continue;
        }
        let indent = l.text.len() - l.text.trim_start_matches(is_python_space).len();
        if !sections.is_empty() && in_option && indent > indent_level {
            kinds.push(Kind::Continuation);
            if let Some(s) = sections.last_mut() {
                s.content_end = i + 1;
            }
            continue;
        }
        indent_level = indent;
        if let Some(name) = header_name(stripped) {
            if let Some(s) = sections.last_mut() {
                s.end = i;
            }
            sections.push(Section {
                name,
                header: i,
                end: lines.len(),
                content_end: i + 1,
            });
            in_option = false;
            kinds.push(Kind::Header);
        } else {
            match option_key(l.text) {
                Some(key) => {
                    kinds.push(Kind::Option);
                    // configparser's `optname`: an empty key takes no continuation lines
                    in_option = !key.is_empty();
                }
                None => kinds.push(Kind::Invalid),
            }
            if let Some(s) = sections.last_mut() {
                s.content_end = i + 1;
            }
        }
    }
    (kinds, sections)
}

/// The line without its indentation. For the header after a section we rewrote or removed:
/// indented, it would read as a continuation of the key now before it.
fn unindented(full: &str) -> &str {
    full.trim_start_matches(is_python_space)
}

fn option_key(text: &str) -> Option<&str> {
    let i = text.find(['=', ':'])?;
    Some(text[..i].trim_matches(is_python_space))
}

fn option_value(text: &str) -> Option<&str> {
    let i = text.find(['=', ':'])?;
    Some(text[i + 1..].trim_matches(is_python_space))
}

/// Where a line starts in the text it was split from.
fn offset_of(text: &str, line: &Line<'_>) -> usize {
    line.full.as_ptr() as usize - text.as_ptr() as usize
}

/// The line ending the file uses: that of its first line, else `\n`.
fn newline_of(s: &str) -> &'static str {
    match s.find('\n') {
        Some(i) if i > 0 && s.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Read a profile's keys and values (first section of that name), `None` when absent.
pub fn read_profile(text: &str, profile: &str) -> Option<Vec<(String, String)>> {
    let lines = split_lines(text);
    let (kinds, sections) = classify(&lines);
    let s = sections.iter().find(|s| s.name == profile)?;
    let mut out = Vec::new();
    for i in s.header + 1..s.end {
        if kinds[i] == Kind::Option {
            if let (Some(k), Some(v)) = (option_key(lines[i].text), option_value(lines[i].text)) {
                out.push((k.to_ascii_lowercase(), v.to_owned()));
            }
        }
    }
    Some(out)
}

/// Where `key` is set in the first section named `section`: its 1-based line number and its
/// value (the first line of it).
pub fn find_key(text: &str, section: &str, key: &str) -> Option<(usize, String)> {
    let lines = split_lines(text);
    let (kinds, sections) = classify(&lines);
    let s = sections.iter().find(|s| s.name == section)?;
    (s.header + 1..s.end).find_map(|i| {
        let k = option_key(lines[i].text)?;
        (kinds[i] == Kind::Option && k.eq_ignore_ascii_case(key))
            .then(|| (i + 1, option_value(lines[i].text).unwrap_or("").to_owned()))
    })
}

/// Names of all sections in file order (duplicates included).
pub fn profile_names(text: &str) -> Vec<String> {
    let lines = split_lines(text);
    classify(&lines)
        .1
        .into_iter()
        .map(|s| s.name.to_owned())
        .collect()
}

/// Set `entries` in `profile`; remove the `managed` keys not in `entries`. Other keys and
/// comments in the profile stay; everything outside it stays byte for byte. Later duplicate
/// sections of the same profile (which botocore refuses to parse) are removed.
pub fn set_profile(
    text: &str,
    profile: &str,
    entries: &[(&str, &str)],
    managed: &[&str],
) -> String {
    let nl = newline_of(text);
    let lines = split_lines(text);
    let (kinds, sections) = classify(&lines);
    let ours: Vec<&Section> = sections.iter().filter(|s| s.name == profile).collect();
    let (Some(first), Some(last)) = (ours.first(), ours.last()) else {
        // Append a new section at the end.
        let mut out = String::with_capacity(text.len() + 256);
        out.push_str(text);
        if !text.is_empty() {
            if !text.ends_with('\n') {
                out.push_str(nl);
            }
            let last_blank = lines
                .last()
                .map(|l| l.text.trim_matches(is_python_space).is_empty())
                .unwrap_or(true);
            if !last_blank {
                out.push_str(nl);
            }
        }
        out.push('[');
        out.push_str(profile);
        out.push(']');
        out.push_str(nl);
        for (k, v) in entries {
            push_entry(&mut out, "", k, v, nl);
            out.push_str(nl);
        }
        return out;
    };

    let is_managed = |k: &str| {
        let k = k.to_ascii_lowercase();
        managed.iter().any(|m| *m == k) || entries.iter().any(|(e, _)| *e == k)
    };
    let mut written = vec![false; entries.len()];
    let mut out = String::with_capacity(text.len() + 256);
    // Everything before our section, and everything after the last line this can change (the
    // header after our section or a duplicate), is copied as one run of bytes.
    // (sections come in file order, so the last of ours ends last)
    let last_changed = last.end;
    out.push_str(&text[..offset_of(text, &lines[first.header])]);
    let mut i = first.header;
    let mut skip_continuation = false;
    while i < lines.len() {
        if i > last_changed {
            out.push_str(&text[offset_of(text, &lines[i])..]);
            break;
        }
        let line = lines[i];
        // Drop later duplicates of our section entirely.
        if let Some(dup) = ours[1..].iter().find(|s| s.header == i) {
            i = dup.end;
            continue;
        }
        let in_first = i > first.header && i < first.end;
        match kinds[i] {
            Kind::Continuation if in_first && skip_continuation => {}
            Kind::Option if in_first => {
                let key = option_key(line.text).unwrap_or("");
                skip_continuation = is_managed(key);
                if skip_continuation {
                    let lk = key.to_ascii_lowercase();
                    if let Some(idx) = entries.iter().position(|(k, _)| *k == lk) {
                        if !written[idx] {
                            written[idx] = true;
                            // keep the indentation: siblings indented alike stay keys
                            let indent = line.text.len() - unindented(line.text).len();
                            let (k, v) = entries[idx];
                            push_entry(&mut out, &line.text[..indent], k, v, nl);
                            // the old value's line end: that of its last line (a nested
                            // value's last line; the file's last may have none)
                            let mut last = i;
                            while last + 1 < lines.len() && kinds[last + 1] == Kind::Continuation {
                                last += 1;
                            }
                            let end = lines[last];
                            out.push_str(&end.full[end.text.len()..]);
                        }
                    }
                } else {
                    out.push_str(line.full);
                }
            }
            Kind::Header if i == first.end || ours[1..].iter().any(|s| s.end == i) => {
                out.push_str(unindented(line.full))
            }
            _ => out.push_str(line.full),
        }
        i += 1;
        if i == first.content_end {
            push_missing(&mut out, entries, &mut written, nl, &lines, i);
        }
    }
    out
}

/// `key = value`, without its line end. A value that starts with a line break is a nested
/// one (botocore's `s3 =` then indented `endpoint_url = …` lines): written `key =` and its
/// lines, in the file's line ends.
fn push_entry(out: &mut String, indent: &str, key: &str, value: &str, nl: &str) {
    out.push_str(indent);
    out.push_str(key);
    match value.strip_prefix('\n') {
        Some(nested) => {
            out.push_str(" =");
            for line in nested.split('\n') {
                out.push_str(nl);
                out.push_str(line);
            }
        }
        None => {
            out.push_str(" = ");
            out.push_str(value);
        }
    }
}

fn push_missing(
    out: &mut String,
    entries: &[(&str, &str)],
    written: &mut [bool],
    nl: &str,
    lines: &[Line<'_>],
    at: usize,
) {
    if written.iter().all(|w| *w) {
        return;
    }
    // The line just written had no ending (end of file): end it first.
    if at == lines.len() && !out.ends_with('\n') {
        out.push_str(nl);
    }
    let keep_unterminated = at == lines.len() && !lines[at - 1].full.ends_with('\n');
    let todo: Vec<usize> = (0..entries.len()).filter(|i| !written[*i]).collect();
    for (n, idx) in todo.iter().enumerate() {
        written[*idx] = true;
        push_entry(out, "", entries[*idx].0, entries[*idx].1, nl);
        if !(keep_unterminated && n + 1 == todo.len()) {
            out.push_str(nl);
        }
    }
}

/// Remove every section named `profile` with the blank lines that follow it; comments after
/// its last key (which introduce what comes next) and all other bytes stay.
pub fn remove_profile(text: &str, profile: &str) -> String {
    let lines = split_lines(text);
    let (_, sections) = classify(&lines);
    // ours, in file order: each is met once, so the walk stays linear in the file
    let mut ours = sections.iter().filter(|s| s.name == profile).peekable();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut next_header = usize::MAX;
    while i < lines.len() {
        if let Some(s) = ours.next_if(|s| s.header == i) {
            i = s.content_end;
            while i < s.end && lines[i].text.trim_matches(is_python_space).is_empty() {
                i += 1;
            }
            next_header = s.end;
            continue;
        }
        if i == next_header {
            out.push_str(unindented(lines[i].full));
        } else {
            out.push_str(lines[i].full);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[&str] = MANAGED_KEYS;

    fn e<'a>(k: &'a str, s: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("aws_access_key_id", k),
            ("aws_secret_access_key", s),
            ("aws_session_token", "TOK"),
            ("x_security_token_expires", "2026-01-01T00:00:00Z"),
        ]
    }

    #[test]
    fn appends_to_empty_and_to_existing_files() {
        let out = set_profile("", "astran", &e("ASIA1", "S1"), M);
        assert_eq!(
            out,
            "[astran]\naws_access_key_id = ASIA1\naws_secret_access_key = S1\naws_session_token = TOK\nx_security_token_expires = 2026-01-01T00:00:00Z\n"
        );
        let before = "# mine\n[default]\naws_access_key_id = AKIA\n";
        let out = set_profile(before, "astran", &e("ASIA1", "S1"), M);
        assert!(out.starts_with(before));
        assert!(out[before.len()..].starts_with("\n[astran]\n"));
    }

    #[test]
    fn missing_final_newline_and_crlf() {
        let before = "[default]\r\nregion = x";
        let out = set_profile(before, "astran", &e("A", "S"), M);
        assert!(
            out.starts_with("[default]\r\nregion = x\r\n\r\n[astran]\r\n"),
            "{out:?}"
        );
        assert!(!out.contains("\n\n") || out.contains("\r\n\r\n"));
        // our section last and unterminated: stays unterminated
        let before = "[a]\r\nk = v\r\n\r\n[astran]\r\naws_access_key_id = OLD";
        let out = set_profile(before, "astran", &e("NEW", "S"), M);
        assert!(out.starts_with("[a]\r\nk = v\r\n\r\n[astran]\r\naws_access_key_id = NEW\r\n"));
        assert!(
            out.ends_with("x_security_token_expires = 2026-01-01T00:00:00Z"),
            "{out:?}"
        );
    }

    #[test]
    fn updates_in_place_and_keeps_everything_else() {
        let before = "; top comment\n[default]\naws_access_key_id=AKIADEF\n\n[astran]\n# keep me\naws_access_key_id = OLD\nregion = eu\naws_session_token = OLDTOK\n   continued\n\n# about other\n[other]\nk = v\n";
        let out = set_profile(before, "astran", &e("NEW", "S"), M);
        let expected = "; top comment\n[default]\naws_access_key_id=AKIADEF\n\n[astran]\n# keep me\naws_access_key_id = NEW\nregion = eu\naws_session_token = TOK\naws_secret_access_key = S\nx_security_token_expires = 2026-01-01T00:00:00Z\n\n# about other\n[other]\nk = v\n";
        assert_eq!(out, expected);
        assert_eq!(
            set_profile(&out, "astran", &e("NEW", "S"), M),
            out,
            "idempotent"
        );
    }

    #[test]
    fn permanent_keys_drop_the_session_token() {
        let before = set_profile("", "astran", &e("ASIA", "S"), M);
        let out = set_profile(
            &before,
            "astran",
            &[
                ("aws_access_key_id", "AKIA"),
                ("aws_secret_access_key", "P"),
            ],
            M,
        );
        assert_eq!(
            out,
            "[astran]\naws_access_key_id = AKIA\naws_secret_access_key = P\n"
        );
    }

    #[test]
    fn duplicates_of_our_section_are_merged_into_the_first() {
        let before = "[astran]\naws_access_key_id = A\n[x]\nk = 1\n[astran]\naws_access_key_id = B\n[y]\nk = 2\n";
        let out = set_profile(before, "astran", &e("N", "S"), M);
        assert_eq!(profile_names(&out), vec!["astran", "x", "y"]);
        assert!(out.contains("[x]\nk = 1\n[y]\nk = 2\n"));
        assert_eq!(read_profile(&out, "astran").unwrap()[0].1, "N");
    }

    #[test]
    fn lookalike_sections_are_not_ours() {
        let before = "[ astran ]\nk = v\n[profile astran]\nk = w\n  [astran]\n";
        // the indented header after an option is a continuation line in configparser
        assert_eq!(profile_names(before), vec![" astran ", "profile astran"]);
        let out = set_profile(before, "astran", &e("N", "S"), M);
        assert!(out.starts_with(before));
    }

    // Found by tests/credfile_props.rs: a line we rewrite keeps its indentation, or the
    // next line (indented like it) would turn into a continuation of our value.
    #[test]
    fn rewritten_keys_keep_their_indentation() {
        let before = "[astran]\n aws_access_key_id = OLD\n region = eu\n";
        let out = set_profile(before, "astran", &e("NEW", "S"), M);
        assert!(out.starts_with("[astran]\n aws_access_key_id = NEW\n region = eu\n"));
        assert_eq!(
            read_profile(&out, "astran").unwrap()[1],
            ("region".to_string(), "eu".to_string())
        );
    }

    // Found by tests/credfile_props.rs: configparser lets a line with no delimiter pass
    // without ending the option before it, so an indented line after it still continues
    // that option (and is dropped with our old value).
    #[test]
    fn a_line_without_delimiter_does_not_end_the_option() {
        let before = "[astran]\naws_access_key_id = OLD\nbogus\n  continued\n";
        let out = set_profile(before, "astran", &e("NEW", "S"), M);
        assert!(
            out.starts_with("[astran]\naws_access_key_id = NEW\nbogus\n"),
            "{out}"
        );
        assert!(!out.contains("continued"), "{out}");
    }

    #[test]
    fn remove_only_ours() {
        let before = "[a]\nk = v\n\n[astran]\naws_access_key_id = X\n\n[b]\nk = w";
        assert_eq!(remove_profile(before, "astran"), "[a]\nk = v\n\n[b]\nk = w");
        let before = "[a]\n\n[astran]\n# ours\nk = X\n\n# about b\n[b]\n";
        assert_eq!(remove_profile(before, "astran"), "[a]\n\n# about b\n[b]\n");
        assert_eq!(remove_profile("[a]\n", "astran"), "[a]\n");
        // every duplicate goes, whatever lies between them
        let before = "[astran]\nk=1\n[a]\nx=1\n[astran]\nk=2\n\n[b]\ny=2\n[astran]\n";
        assert_eq!(remove_profile(before, "astran"), "[a]\nx=1\n[b]\ny=2\n");
    }

    #[test]
    fn indented_lines_keep_their_meaning() {
        // found by fuzz/fuzz_targets/credfile.rs: an indented header after the section we
        // edit or remove became a continuation of the key before it (losing that profile),
        // and a rewritten indented key swallowed its indented siblings
        let before = "[x]\nk = v\n[astran]\n  [b]\nk = w\n";
        assert_eq!(remove_profile(before, "astran"), "[x]\nk = v\n[b]\nk = w\n");
        let out = set_profile(before, "astran", &e("N", "S"), M);
        assert_eq!(profile_names(&out), vec!["x", "astran", "b"]);
        assert!(
            out.ends_with("2026-01-01T00:00:00Z\n[b]\nk = w\n"),
            "{out:?}"
        );
        assert_eq!(set_profile(&out, "astran", &e("N", "S"), M), out);

        let dup = "[astran]\nk = 1\n[astran]\n  [b]\nk = w\n";
        let out = set_profile(dup, "astran", &e("N", "S"), M);
        assert_eq!(profile_names(&out), vec!["astran", "b"]);
        assert_eq!(read_profile(&out, "b").unwrap(), [("k".into(), "w".into())]);

        let indented = "[astran]\n  aws_access_key_id = OLD\n  region = eu\n";
        let out = set_profile(indented, "astran", &e("N", "S"), M);
        assert!(out.starts_with("[astran]\n  aws_access_key_id = N\n  region = eu\n"));
        assert_eq!(read_profile(&out, "astran").unwrap()[1].0, "region");
        assert_eq!(set_profile(&out, "astran", &e("N", "S"), M), out);
    }
}
