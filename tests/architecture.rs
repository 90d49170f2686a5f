//! The shape of the code, checked: no module of the core imports one that imports it back
//! (directly or around a loop), and the library links no CLI crates (clap, rpassword live in
//! the binary: src/main.rs and its modules in src/cli/).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `crate::x` references of each module of `dir` (its code, not its `#[cfg(test)] mod tests`).
fn imports(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        // comments (doc links name modules too) are not imports
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut uses = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let m: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` groups
            if rest.starts_with('{') {
                let group = &rest[1..rest.find('}').unwrap()];
                for part in group.split(',') {
                    let m: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !m.is_empty() && m != name {
                        uses.insert(m);
                    }
                }
            } else if !m.is_empty() && m != name {
                uses.insert(m);
            }
        }
        out.insert(name, uses);
    }
    out
}

/// A cycle in `g`, if there is one (depth-first search).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            if g.contains_key(m) {
                if let Some(c) = visit(m, g, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["src", "agent/src"] {
        let g = imports(&root.join(dir));
        assert!(g.len() > 3, "{dir}: {g:?}");
        assert_eq!(find_cycle(&g), None, "import cycle in {dir}");
    }
    // the check itself finds a loop
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn the_library_links_no_cli_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        let path = entry.unwrap().path();
        // the binary: main.rs and src/cli/
        if path.file_name().unwrap() == "main.rs" || path.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for krate in ["clap::", "rpassword::"] {
            assert!(
                !text.contains(krate),
                "{} uses {krate}: it belongs in src/main.rs",
                path.display()
            );
        }
    }
}
