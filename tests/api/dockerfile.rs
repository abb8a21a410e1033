//! The image is built from a clean copy of what the Dockerfile copies in; no Docker engine runs
//! here, so this reads the Dockerfile: everything the compiler reads must be copied into the
//! build stage (a directory left out builds here and fails in the image).

use std::collections::BTreeSet;
use std::path::Path;

/// What the build stage copies: the sources of its `COPY` lines (those without `--from`).
fn copied(dockerfile: &str) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    for line in dockerfile.lines() {
        let Some(rest) = line.trim().strip_prefix("COPY ") else {
            continue;
        };
        if rest.contains("--from") {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        // The last word is the destination.
        for source in &words[..words.len().saturating_sub(1)] {
            sources.insert(source.trim_end_matches('/').to_string());
        }
    }
    sources
}

/// The top-level files and directories the compiler reads: the manifest, the sources, the test
/// targets, askama's `templates/`, and whatever `include_str!`/`include_bytes!` reach above `src/`.
fn read_by_the_build(root: &Path) -> BTreeSet<String> {
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src", "tests"]
        .map(String::from)
        .into();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    if manifest.contains("askama") {
        needed.insert("templates".into());
    }
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // A path climbing out of src/ names a top-level entry: "../sql/", "../config.example.toml".
            let depth = path
                .strip_prefix(root.join("src"))
                .unwrap()
                .components()
                .count()
                - 1;
            let up = format!("\"{}", "../".repeat(depth + 1));
            for (at, _) in text.match_indices(&up) {
                let rest = &text[at + up.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, '/' | '"'))
                    .collect();
                if !name.is_empty() && root.join(&name).exists() {
                    needed.insert(name);
                }
            }
        }
    }
    needed
}

#[test]
fn the_image_build_copies_everything_the_compiler_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let copied = copied(&dockerfile);
    let needed = read_by_the_build(root);
    for name in ["sql", "config.example.toml", "templates"] {
        assert!(
            needed.contains(name),
            "{name} is read by the build: {needed:?}"
        );
    }
    let missing: Vec<&String> = needed.difference(&copied).collect();
    assert!(
        missing.is_empty(),
        "the Dockerfile's build stage does not copy {missing:?} (it copies {copied:?})"
    );
}

#[test]
fn a_copy_left_out_is_found() {
    let copied =
        copied("FROM x AS b\nCOPY Cargo.toml Cargo.lock ./\nCOPY src ./src\nCOPY --from=b /x /y\n");
    assert_eq!(
        copied,
        ["Cargo.lock", "Cargo.toml", "src"].map(String::from).into()
    );
}
