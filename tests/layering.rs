//! The rooms of `src/` depend on each other one way only (docs/architecture.md):
//!
//! `main`/`cli` → commands (`controller`, `review`, `token`) → `cluster` → `policy`,
//! and `telemetry` (logging setup) is used by `cli` only.
//!
//! Read from the source text: every `crate::<room>` a room mentions outside comments is an
//! arrow. An arrow missing from [`ALLOWED`] fails the test and names the file and line, so a
//! new import that would start a cycle is caught in CI before it is merged. Inside `policy/`
//! (the pure core) the files' `super::<module>` arrows must not form a cycle either.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// room → the rooms it may use. A room may always use itself.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "cli",
        &[
            "cluster",
            "controller",
            "policy",
            "review",
            "telemetry",
            "token",
        ],
    ),
    ("controller", &["cluster", "policy"]),
    ("review", &["cluster", "policy"]),
    ("token", &["cluster", "policy"]),
    ("cluster", &["policy"]),
    ("policy", &[]),
    ("telemetry", &[]),
    ("lib", &[]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot read {}", dir.display())
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/review/list.rs` → `review`; `src/cli.rs` → `cli`.
fn room_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap_or(path);
    let first = rel.components().next().map_or_else(String::new, |c| {
        c.as_os_str().to_string_lossy().into_owned()
    });
    first.trim_end_matches(".rs").to_owned()
}

/// The identifiers that follow `prefix` on a line of code (comments are not code).
fn targets<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    let code = match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // `foo_crate::x` is not `crate::x`.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        // `prefix{a, b::c}`: each first name in the group (a group spanning lines is not
        // rustfmt's style for these short paths).
        if let Some(group) = rest.strip_prefix('{') {
            let close = group.find('}').unwrap_or(group.len());
            for item in group[..close].split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() && name != "self" {
                    out.push(name);
                }
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 {
            out.push(&rest[..end]);
        }
    }
    out
}

/// Every `crate::<room>` arrow between two different rooms, with where it stands.
fn room_arrows() -> BTreeMap<(String, String), Vec<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut arrows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for file in files {
        let from = room_of(&file);
        let Ok(text) = std::fs::read_to_string(&file) else {
            panic!("cannot read {}", file.display())
        };
        for (n, line) in text.lines().enumerate() {
            for to in targets(line, "crate::") {
                if to != from {
                    arrows
                        .entry((from.clone(), to.to_owned()))
                        .or_default()
                        .push(format!("{}:{}", file.display(), n + 1));
                }
            }
        }
    }
    arrows
}

#[test]
fn every_arrow_between_rooms_points_down() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let arrows = room_arrows();
    assert!(
        arrows.contains_key(&("cluster".to_owned(), "policy".to_owned())),
        "the scan found no arrow cluster → policy: it reads nothing ({arrows:?})"
    );
    let mut wrong = Vec::new();
    for ((from, to), places) in &arrows {
        let ok = allowed
            .get(from.as_str())
            .is_some_and(|may| may.contains(&to.as_str()));
        if !ok {
            wrong.push(format!("{from} → {to} at {}", places.join(", ")));
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows against the layering in docs/architecture.md:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_allowed_arrows_have_no_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(from, to)| {
            (
                (*from).to_owned(),
                to.iter().map(|t| (*t).to_owned()).collect(),
            )
        })
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("ALLOWED has a cycle: {}", cycle.join(" → "));
    }
}

/// The pure core's own files: `super::<module>` arrows between them form no cycle.
#[test]
fn policy_modules_have_no_cycle() {
    let mut files = Vec::new();
    rust_files(&src().join("policy"), &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|m| m != "mod")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = file.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        // mod.rs re-exports everything; the tests sit above the modules they test.
        if from == "mod" || from == "tests" || from == "proptests" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            panic!("cannot read {}", file.display())
        };
        // Only the product code: a file's own `mod tests` may use anything.
        let product = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in product.lines() {
            for prefix in ["super::", "crate::policy::"] {
                for to in targets(line, prefix) {
                    if to != from && modules.contains(to) {
                        graph.entry(from.clone()).or_default().insert(to.to_owned());
                    }
                }
            }
        }
    }
    assert!(
        graph.get("decision").is_some_and(|d| d.contains("csr")),
        "the scan found no arrow decision → csr: it reads nothing ({graph:?})"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("policy modules import each other: {}", cycle.join(" → "));
    }
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}
