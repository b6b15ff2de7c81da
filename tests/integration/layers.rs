//! The flow of the code, checked: a module may use the modules below it, never one above
//! it. docs/architecture.md draws the same layers; this test is what keeps it true.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// herald's top-level modules, from the top of the flow down. A module may use any
/// module of a lower layer; within a layer, only the pairs in `PEERS`.
const LAYERS: &[&[&str]] = &[
    &["main", "lib"],
    &["cli"],
    // The HTTP side: a peer of the command line that starts it, used by nothing below.
    &["serve"],
    // Review before merge: diffs and the pull request's comment, for the command line.
    &["watch", "review"],
    &["reconcile"],
    &["metrics"],
    &["transport"],
    &["plan", "message", "status", "live"],
    &["store", "render"],
    &["manifest"],
    &["audience"],
    &[
        "address", "clock", "digest", "git", "input", "keyhash", "langtag", "secret", "text",
    ],
];

/// Uses within a layer that are part of the design: (user, used).
const PEERS: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a file under `src/` belongs to.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().expect("a file under src");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The top-level modules a file's code names as `crate::X`, including
/// `use crate::{X, Y::z}`; comments are not code.
fn uses(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn sources(folder: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut against = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_of(relative);
        let Some(own) = layer(&module) else {
            against.push(format!(
                "src/{}: module `{module}` has no layer in tests/integration/layers.rs",
                relative.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap();
        for used in uses(&source) {
            if used == module {
                continue;
            }
            let Some(theirs) = layer(&used) else {
                against.push(format!(
                    "src/{}: uses `crate::{used}`, which has no layer",
                    relative.display()
                ));
                continue;
            };
            let allowed = theirs > own
                || (theirs == own && PEERS.contains(&(module.as_str(), used.as_str())));
            if !allowed {
                against.push(format!(
                    "src/{}: `{module}` uses `crate::{used}`, which is {} it in the flow",
                    relative.display(),
                    if theirs == own { "beside" } else { "above" }
                ));
            }
        }
    }
    assert!(
        against.is_empty(),
        "imports against the flow (see docs/architecture.md):\n{}",
        against.join("\n")
    );
    assert!(files.len() > 50, "read {} files", files.len());
}

#[test]
fn the_check_sees_grouped_and_inline_uses() {
    let found = uses(
        "//! see `crate::serve`\nuse crate::{audience::Record, text};\nlet x = crate::plan::CHUNK;",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["audience", "plan", "text"]
    );
}
