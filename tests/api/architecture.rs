//! A tidy check of the layering ARCHITECTURE.md promises ("Invariants"): which top-level modules of
//! `src/` may name which others, and which I/O crates. It reads the sources and needs no services.
//!
//! Every path in the code counts, not only `use` lines: `crate::…`, `self::…`, `super::…` (resolved
//! against the file's module and its inline `mod`s, so a `super` that climbs out of a module is
//! followed to where it lands), the groups of a `use` tree, and paths that start with a crate name
//! (`tokio::spawn`, `#[tokio::test]`, `::reqwest::get`). Comments and string literals are left out,
//! so documentation may mention any module; segments compare whole, so `crate::workers_x` is not
//! `crate::worker`.

use std::path::{Path, PathBuf};

/// What a group of top-level modules may not name.
struct Rule {
    /// The invariant, as the failure message states it.
    invariant: &'static str,
    /// Top-level modules of `src/` the rule covers: `src/<name>.rs` and every file under `src/<name>/`.
    modules: &'static [&'static str],
    /// Covered modules that may not exist (yet); any other one missing fails the check, so that a
    /// module moved away does not silently leave the rule with nothing to check.
    optional: &'static [&'static str],
    /// Top-level modules of this crate the covered ones may not name.
    forbidden_modules: &'static [&'static str],
    /// Crates they may not name; `name*` is the crate `name` and every `name_…` crate.
    forbidden_crates: &'static [&'static str],
}

const WEB: &[&str] = &["http", "write_path", "prompt_cache"];

const RULES: &[Rule] = &[
    Rule {
        invariant: "the web role never imports the worker role",
        modules: WEB,
        optional: &["write_path"],
        forbidden_modules: &["worker"],
        forbidden_crates: &[],
    },
    Rule {
        invariant: "the worker role never imports the web role, nor actix",
        modules: &["worker"],
        optional: &[],
        forbidden_modules: WEB,
        forbidden_crates: &["actix*"],
    },
    Rule {
        invariant: "domain and ingest are pure: no storage, no role, no I/O crate",
        modules: &["domain", "ingest"],
        optional: &[],
        forbidden_modules: &["storage", "http", "worker", "write_path", "prompt_cache"],
        // `tokio*` includes tokio_postgres and tokio_util; `deadpool*` deadpool_postgres.
        forbidden_crates: &[
            "actix*",
            "tokio*",
            "fred",
            "clickhouse",
            "object_store",
            "deadpool*",
            "reqwest",
        ],
    },
];

#[test]
fn the_modules_of_src_name_only_what_the_architecture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for rule in RULES {
        for module in rule.modules {
            let files = module_files(&src, module);
            if files.is_empty() && !rule.optional.contains(module) {
                problems.push(format!(
                    "src/{module}.rs and src/{module}/ are missing: update RULES in {}",
                    file!()
                ));
            }
            for file in files {
                let source = std::fs::read_to_string(&file).unwrap();
                let shown = file.strip_prefix(src.parent().unwrap()).unwrap().display();
                for found in violations(&module_path(&src, &file), &source, rule) {
                    problems.push(format!(
                        "{shown}:{}: {} ({})",
                        found.line, found.path, rule.invariant
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the layering of ARCHITECTURE.md is broken:\n{}",
        problems.join("\n")
    );
}

/// `src/<module>.rs` and every `.rs` file under `src/<module>/`, in a stable order.
/// Files of `src/` that may make a `ProjectId`: where the caller's identity is established.
const PROJECT_SCOPE_MAKERS: &[&str] = &["src/http/auth.rs"];

#[test]
fn project_scopes_are_made_only_where_callers_are_authenticated() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut folders = vec![root.join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut problems = Vec::new();
    for file in files {
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        if PROJECT_SCOPE_MAKERS.contains(&shown.as_str()) || shown == "src/domain/project.rs" {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        for line in project_scopes_made(&source) {
            problems.push(format!(
                "{shown}:{line}: ProjectId::authenticated outside authentication"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Lines of `source` that call `ProjectId::authenticated`, outside comments, strings and the
/// file's unit tests (a `#[cfg(test)]` module, which comes last by this codebase's convention).
fn project_scopes_made(source: &str) -> Vec<usize> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let tokens = tokens(code);
    tokens
        .windows(3)
        .filter(|w| {
            matches!(&w[0].tok, Tok::Ident(a) if a == "ProjectId")
                && matches!(w[1].tok, Tok::PathSep)
                && matches!(&w[2].tok, Tok::Ident(b) if b == "authenticated")
        })
        .map(|w| w[0].line)
        .collect()
}

#[test]
fn a_project_scope_made_outside_authentication_is_found() {
    let source = "// ProjectId::authenticated in a comment\nlet s = \"ProjectId::authenticated\";\nlet p = ProjectId::authenticated(id);\n#[cfg(test)]\nmod tests { fn t() { ProjectId::authenticated(\"p\"); } }\n";
    assert_eq!(project_scopes_made(source), vec![3]);
}

fn module_files(src: &Path, module: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    walk(&src.join(module), &mut files);
    files.sort();
    files
}

/// The module a file under `src/` defines: `src/worker/ingest/mod.rs` is `worker::ingest`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        path.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        path.pop();
    }
    path
}

/// A path in the source that breaks a rule.
#[derive(Debug, PartialEq)]
struct Violation {
    /// The line of the segment that names what is forbidden.
    line: usize,
    /// The path as written, with the groups of a `use` tree expanded.
    path: String,
}

/// The paths of `source`, a file of module `module`, that name what `rule` forbids.
fn violations(module: &[String], source: &str, rule: &Rule) -> Vec<Violation> {
    let mut found = Vec::new();
    for path in paths(module, &tokens(source)) {
        let Some((kind, name, line)) = path.target() else {
            continue;
        };
        let forbidden = match kind {
            Target::Module => rule.forbidden_modules.contains(&name),
            Target::Crate => rule
                .forbidden_crates
                .iter()
                .any(|pattern| crate_matches(pattern, name)),
        };
        if forbidden {
            found.push(Violation {
                line,
                path: path.to_string(),
            });
        }
    }
    found
}

fn crate_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(family) => name == family || name.starts_with(&format!("{family}_")),
        None => name == pattern,
    }
}

// ------------------------------------------------------------------------------------------------
// Tokens: identifiers, `::` and the punctuation paths are made of; comments, string and character
// literals, lifetimes and numbers leave nothing behind but the lines they span.
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Other(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips from `i` (just after an opening quote) past the closing `"`, minding escapes.
    let skip_string = |mut i: usize, line: &mut usize| {
        while i < chars.len() && chars[i] != '"' {
            if chars[i] == '\\' {
                i += 1;
            }
            if at(i) == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(i + 1, &mut line),
            '\'' => {
                if at(i + 1) == '\\' {
                    // An escaped character literal: '\n', '\'', '\u{1F600}'.
                    i += 3;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == '\'' {
                    i += 3; // 'x'
                } else {
                    // A lifetime or loop label.
                    i += 1;
                    while i < chars.len() && is_ident_char(chars[i]) {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() => {
                while i < chars.len()
                    && (is_ident_char(chars[i]) || (chars[i] == '.' && at(i + 1).is_ascii_digit()))
                {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Other('0'),
                    line,
                });
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = at(i);
                match word.as_str() {
                    "r" if next == '#' && is_ident_start(at(i + 1)) => {
                        // A raw identifier, r#name.
                        let start = i + 1;
                        i = start;
                        while i < chars.len() && is_ident_char(chars[i]) {
                            i += 1;
                        }
                        out.push(Token {
                            tok: Tok::Ident(chars[start..i].iter().collect()),
                            line,
                        });
                    }
                    "r" | "br" | "cr" if next == '"' || next == '#' => {
                        // A raw string: r"…", r#"…"#, with as many hashes at both ends.
                        let mut hashes = 0;
                        while at(i) == '#' {
                            hashes += 1;
                            i += 1;
                        }
                        i += 1; // the opening quote
                        while i < chars.len() {
                            if chars[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                                i += 1 + hashes;
                                break;
                            }
                            if chars[i] == '\n' {
                                line += 1;
                            }
                            i += 1;
                        }
                    }
                    "b" | "c" if next == '"' => i = skip_string(i + 1, &mut line),
                    "b" if next == '\'' => {
                        // A byte literal: b'x', b'\n'.
                        i += if at(i + 1) == '\\' { 3 } else { 2 };
                        while i < chars.len() && chars[i] != '\'' {
                            i += 1;
                        }
                        i += 1;
                    }
                    _ => out.push(Token {
                        tok: Tok::Ident(word),
                        line,
                    }),
                }
            }
            ':' if at(i + 1) == ':' => {
                out.push(Token {
                    tok: Tok::PathSep,
                    line,
                });
                i += 2;
            }
            _ => {
                let tok = match c {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    '*' => Tok::Star,
                    other => Tok::Other(other),
                };
                out.push(Token { tok, line });
                i += 1;
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Paths, and what they name
// ------------------------------------------------------------------------------------------------

/// One path as written, with the module it was written in.
#[derive(Debug)]
struct PathRef {
    /// Each segment with its line.
    segments: Vec<(String, usize)>,
    /// Written as `::name::…`: `name` is a crate.
    global: bool,
    /// Part of a `use` item, where even one segment (`use tokio;`) names a crate.
    in_use: bool,
    /// The module the path appears in, inline `mod` blocks included.
    module: Vec<String>,
}

enum Target {
    /// A top-level module of this crate.
    Module,
    /// Another crate.
    Crate,
}

impl PathRef {
    /// The top-level module or the crate the path names, and the line of the segment naming it.
    fn target(&self) -> Option<(Target, &str, usize)> {
        let segment = |i: usize| self.segments.get(i).map(|(s, line)| (s.as_str(), *line));
        let (first, line) = segment(0)?;
        if self.global {
            return Some((Target::Crate, first, line));
        }
        match first {
            "crate" => segment(1).map(|(name, line)| (Target::Module, name, line)),
            "super" | "self" => {
                let ups = if first == "super" {
                    self.segments
                        .iter()
                        .take_while(|(s, _)| s == "super")
                        .count()
                } else {
                    0
                };
                let depth = self.module.len().checked_sub(ups)?;
                let skip = if first == "self" { 1 } else { ups };
                if depth == 0 {
                    // Landed at the crate root: the next segment is a top-level module.
                    segment(skip).map(|(name, line)| (Target::Module, name, line))
                } else {
                    Some((Target::Module, self.module[0].as_str(), line))
                }
            }
            _ if self.segments.len() > 1 || self.in_use => Some((Target::Crate, first, line)),
            _ => None,
        }
    }
}

impl std::fmt::Display for PathRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.segments.iter().map(|(s, _)| s.as_str()).collect();
        let prefix = if self.global { "::" } else { "" };
        write!(f, "{prefix}{}", names.join("::"))
    }
}

/// Keywords after which `::name` starts a path rather than continuing one.
const BEFORE_GLOBAL_PATH: &[&str] = &[
    "use", "as", "in", "return", "let", "mut", "ref", "impl", "dyn", "for", "where", "if", "else",
    "match", "break", "move", "const", "static", "type",
];

/// Every path in `tokens`, a file of module `module`.
fn paths(module: &[String], tokens: &[Token]) -> Vec<PathRef> {
    let mut parser = Parser {
        tokens,
        out: Vec::new(),
        module: module.to_vec(),
    };
    // Inline modules entered, with the brace depth of their body.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let previous = i.checked_sub(1).map(|p| &tokens[p].tok);
        let in_use = matches!(previous, Some(Tok::Ident(k)) if k == "use")
            || matches!(
                (i.checked_sub(2).map(|p| &tokens[p].tok), previous),
                (Some(Tok::Ident(e)), Some(Tok::Ident(c))) if e == "extern" && c == "crate"
            );
        match &tokens[i].tok {
            Tok::Ident(word) if word == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) = (
                    tokens.get(i + 1).map(|t| &t.tok),
                    tokens.get(i + 2).map(|t| &t.tok),
                ) {
                    parser.module.push(name.clone());
                    depth += 1;
                    inline.push(depth);
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Tok::Ident(_) => i = parser.path(i, Vec::new(), false, in_use),
            Tok::PathSep => {
                let global = match previous {
                    Some(Tok::Ident(k)) => BEFORE_GLOBAL_PATH.contains(&k.as_str()),
                    Some(Tok::Other('>')) => false,
                    _ => true,
                };
                let next_is_ident = matches!(
                    tokens.get(i + 1),
                    Some(Token {
                        tok: Tok::Ident(_),
                        ..
                    })
                );
                if global && next_is_ident {
                    i = parser.path(i + 1, Vec::new(), true, true);
                } else {
                    i += 1;
                }
            }
            Tok::Open if in_use => i = parser.group(i, Vec::new(), false),
            Tok::Open => {
                depth += 1;
                i += 1;
            }
            Tok::Close => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                    parser.module.pop();
                }
                depth -= 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parser.out
}

struct Parser<'t> {
    tokens: &'t [Token],
    out: Vec<PathRef>,
    module: Vec<String>,
}

impl Parser<'_> {
    fn tok(&self, i: usize) -> Option<&Tok> {
        self.tokens.get(i).map(|t| &t.tok)
    }

    /// Reads the path starting at the identifier at `i`, after `prefix` (the segments before a
    /// `use` group); returns where it ends.
    fn path(
        &mut self,
        mut i: usize,
        mut segments: Vec<(String, usize)>,
        global: bool,
        in_use: bool,
    ) -> usize {
        while let Some(Tok::Ident(name)) = self.tok(i) {
            segments.push((name.clone(), self.tokens[i].line));
            i += 1;
            if self.tok(i) != Some(&Tok::PathSep) {
                break;
            }
            match self.tok(i + 1) {
                Some(Tok::Ident(_)) => i += 1,
                Some(Tok::Open) => return self.group(i + 1, segments, global),
                Some(Tok::Star) => {
                    i += 2;
                    break;
                }
                // `::<` of a turbofish: the path ends before it.
                _ => break,
            }
        }
        self.out.push(PathRef {
            segments,
            global,
            in_use,
            module: self.module.clone(),
        });
        i
    }

    /// Reads the `use` group opening at `i` after `prefix`; returns the index after its `}`.
    fn group(&mut self, mut i: usize, prefix: Vec<(String, usize)>, global: bool) -> usize {
        i += 1;
        while let Some(tok) = self.tok(i) {
            match tok {
                Tok::Close => return i + 1,
                Tok::Comma => i += 1,
                Tok::Star => {
                    self.push_prefix(&prefix, global);
                    i += 1;
                }
                Tok::Ident(word) if word == "self" => {
                    self.push_prefix(&prefix, global);
                    i += 1;
                }
                Tok::Ident(_) => {
                    i = self.path(i, prefix.clone(), global, true);
                    if matches!(self.tok(i), Some(Tok::Ident(word)) if word == "as") {
                        i += 2; // the alias
                    }
                }
                Tok::Open => i = self.group(i, prefix.clone(), global),
                _ => i += 1,
            }
        }
        i
    }

    fn push_prefix(&mut self, prefix: &[(String, usize)], global: bool) {
        self.out.push(PathRef {
            segments: prefix.to_vec(),
            global,
            in_use: true,
            module: self.module.clone(),
        });
    }
}

// ------------------------------------------------------------------------------------------------
// The checker itself, on small sources
// ------------------------------------------------------------------------------------------------

fn rule_for(top_level_module: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.modules.contains(&top_level_module))
        .unwrap()
}

fn module(path: &str) -> Vec<String> {
    path.split("::").map(str::to_string).collect()
}

/// `(line, path)` of every violation of `source` in `module`.
fn check(module_path: &str, source: &str) -> Vec<(usize, String)> {
    let top = module_path.split("::").next().unwrap();
    violations(&module(module_path), source, rule_for(top))
        .into_iter()
        .map(|v| (v.line, v.path))
        .collect()
}

#[test]
fn a_web_module_naming_the_worker_is_reported_with_its_line() {
    let source = "use crate::storage::queue;\n\
                  use crate::worker::ingest::run;\n\
                  fn f() { crate::worker::ingest::ConsumerSettings::default(); }\n";
    assert_eq!(
        check("http::ingestion", source),
        [
            (2, "crate::worker::ingest::run".to_string()),
            (
                3,
                "crate::worker::ingest::ConsumerSettings::default".to_string()
            ),
        ]
    );
    assert_eq!(check("prompt_cache", source).len(), 2);
    assert_eq!(check("write_path::persist", source).len(), 2);
}

#[test]
fn a_clean_web_module_passes() {
    let source = r###"
        //! The write path; the worker (`crate::worker::ingest`) reads what it stores.
        use crate::storage::{queue, raw_events::Segment};
        use crate::workers_note::x; // a segment is compared whole
        use super::auth::ProjectAuth;
        /// Unlike crate::worker, this answers HTTP. /* crate::worker */
        fn f() -> &'static str {
            /* a block comment: crate::worker::run, /* nested crate::worker */ still a comment */
            let _ = Vec::<u8>::new();
            let _ = '"'; let _ = b'"';
            let _ = r#"crate::worker "quoted" "#;
            "crate::worker::ingest"
        }
    "###;
    assert_eq!(check("http::ingestion", source), []);
}

#[test]
fn use_groups_are_expanded_and_each_member_reported_on_its_line() {
    let source = "use crate::{\n    storage::queue,\n    worker::{ingest, self},\n};\n";
    assert_eq!(
        check("http", source),
        [
            (3, "crate::worker::ingest".to_string()),
            (3, "crate::worker".to_string()),
        ]
    );
    assert_eq!(
        check("http", "use {std::fmt, crate::worker::run as go};"),
        [(1, "crate::worker::run".to_string())]
    );
}

#[test]
fn super_is_followed_to_where_it_lands() {
    // From http::ingestion, `super::super` is the crate root.
    assert_eq!(
        check("http::ingestion", "use super::super::worker::ingest;"),
        [(1, "super::super::worker::ingest".to_string())]
    );
    // From a file's inline test module, `super` is the file's own module: still the web role.
    assert_eq!(
        check(
            "http::ingestion",
            "mod tests { use super::*; use super::super::worker; }"
        ),
        []
    );
    assert_eq!(
        check(
            "http::ingestion",
            "mod tests { use super::super::super::worker::run; }\nfn f() { self::worker::x(); }"
        ),
        [(1, "super::super::super::worker::run".to_string())]
    );
    // In `http` itself, `self::worker` would be a child of `http`.
    assert_eq!(check("http", "use self::worker::run;"), []);
}

#[test]
fn the_worker_may_not_name_the_web_role_or_actix() {
    let source = "use actix_web::web;\n\
                  use crate::http::error::ApiError;\n\
                  fn f() { crate::prompt_cache::PromptCache::get(); crate::write_path::persist(); }\n\
                  use crate::storage::queue;\n";
    assert_eq!(
        check("worker::ingest::round", source),
        [
            (1, "actix_web::web".to_string()),
            (2, "crate::http::error::ApiError".to_string()),
            (3, "crate::prompt_cache::PromptCache::get".to_string()),
            (3, "crate::write_path::persist".to_string()),
        ]
    );
    assert_eq!(check("worker", "use actix;"), [(1, "actix".to_string())]);
}

#[test]
fn pure_modules_may_not_name_storage_the_roles_or_io_crates() {
    let source = "use crate::storage::blob;\n\
                  #[tokio::test]\n\
                  async fn f() { tokio::spawn(async {}); ::reqwest::get(\"x\"); }\n\
                  use tokio_postgres::Client;\n\
                  use {fred::prelude::*, clickhouse::Row};\n\
                  fn g(_: object_store::path::Path, _: deadpool_postgres::Pool) {}\n";
    assert_eq!(
        check("ingest::event", source),
        [
            (1, "crate::storage::blob".to_string()),
            (2, "tokio::test".to_string()),
            (3, "tokio::spawn".to_string()),
            (3, "::reqwest::get".to_string()),
            (4, "tokio_postgres::Client".to_string()),
            (5, "fred::prelude".to_string()),
            (5, "clickhouse::Row".to_string()),
            (6, "object_store::path::Path".to_string()),
            (6, "deadpool_postgres::Pool".to_string()),
        ]
    );
    // A local name that happens to be a crate's is not a path into that crate.
    let clean = "use crate::ingest::merge;\nuse serde_json::Value;\n\
                 fn f(tokio: u8) -> u8 { let reqwest = tokio; reqwest }\n";
    assert_eq!(check("domain::prompt", clean), []);
}

#[test]
fn file_modules_follow_the_file_layout() {
    let src = Path::new("/x/src");
    assert_eq!(
        module_path(src, Path::new("/x/src/worker/ingest/mod.rs")),
        ["worker", "ingest"]
    );
    assert_eq!(
        module_path(src, Path::new("/x/src/http/auth.rs")),
        ["http", "auth"]
    );
    assert_eq!(
        module_path(src, Path::new("/x/src/prompt_cache.rs")),
        ["prompt_cache"]
    );
    assert!(module_path(src, Path::new("/x/src/lib.rs")).is_empty());
}

/// A merge that left its conflict markers in a file is caught here, not by a reader: the
/// documents are text nothing else compiles.
#[test]
fn no_file_holds_a_merge_conflict_marker() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = ["ARCHITECTURE.md", "README.md", "Dockerfile", "Cargo.toml"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    for dir in [
        "src",
        "sql",
        "templates",
        "scripts",
        "tests",
        "docs",
        "examples",
    ] {
        collect_text_files(&root.join(dir), &mut files);
    }
    let marked: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            let line = text.lines().position(|l| {
                l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> ") || l == "======="
            })?;
            Some(format!("{}:{}", file.display(), line + 1))
        })
        .collect();
    assert!(marked.is_empty(), "merge conflict markers in: {marked:?}");
}

fn collect_text_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_text_files(&path, files);
        } else if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("png" | "gz" | "bin" | "pb")
        ) {
            files.push(path);
        }
    }
}
