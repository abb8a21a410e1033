//! Prompt management rules: what a valid prompt is, how versions get their labels, the reference
//! syntax of composed prompts and how references are resolved. Pure code, no I/O: storage fetches
//! the prompts a resolution needs and hands them in.
//!
//! The rules follow Langfuse, so that prompts move between the two unchanged:
//! - A prompt is a name with versions 1, 2, 3, …; every version is `text` (a string) or `chat`
//!   (a list of messages and placeholders), and all versions of a name have the same type.
//! - A label points at one version of a name. A new version always takes `latest` and the labels
//!   it is created with, away from older versions. `production` is what a read without version
//!   or label gets.
//! - A text prompt may include another: `@@@langfusePrompt:name=X|version=N@@@` or
//!   `@@@langfusePrompt:name=X|label=L@@@` is replaced, on read, by the resolved text of that
//!   version. Only text prompts can be included, at most [`MAX_NESTING_DEPTH`] levels deep, and
//!   a graph may not reach the root again or any other version of the root's name.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

pub const LATEST_LABEL: &str = "latest";
pub const PRODUCTION_LABEL: &str = "production";
/// Levels of inclusion a resolution may descend: the root is level 0, and a prompt reached at
/// this level is refused.
pub const MAX_NESTING_DEPTH: usize = 5;
pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_LABEL_CHARS: usize = 36;
pub const MAX_COMMIT_MESSAGE_CHARS: usize = 500;
/// Names of pages in Langfuse's web app under `/prompts/`: a prompt named so could not be opened
/// there, so Langfuse refuses them and so do we, to keep prompts portable.
const RESERVED_NAMES: &[&str] = &["new", "metrics", "prompt-detail"];

const TAG_OPEN: &str = "@@@langfusePrompt:";
const TAG_CLOSE: &str = "@@@";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptType {
    Text,
    Chat,
}

impl PromptType {
    pub fn as_str(self) -> &'static str {
        match self {
            PromptType::Text => "text",
            PromptType::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<PromptType> {
        match s {
            "text" => Some(PromptType::Text),
            "chat" => Some(PromptType::Chat),
            _ => None,
        }
    }
}

/// Which version of a name a read asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    Version(i32),
    Label(String),
}

impl Selector {
    /// The selector of a read, from its optional `version` and `label`: both at once is an error,
    /// neither means the `production` label.
    pub fn from_parts(version: Option<i32>, label: Option<String>) -> Result<Selector, String> {
        match (version, label) {
            (Some(_), Some(_)) => Err("Cannot specify both version and label".to_string()),
            (Some(v), None) => Ok(Selector::Version(v)),
            (None, Some(l)) => Ok(Selector::Label(l)),
            (None, None) => Ok(Selector::Label(PRODUCTION_LABEL.to_string())),
        }
    }
}

/// A validated `POST /api/public/v2/prompts` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPrompt {
    pub name: String,
    pub kind: PromptType,
    /// A JSON string (text) or array of messages (chat), normalised.
    pub content: Value,
    pub config: Value,
    /// The labels the caller asked for, without `latest` (see [`labels_of_new_version`]).
    pub labels: Vec<String>,
    /// `None`: keep the tags the name has.
    pub tags: Option<Vec<String>>,
    pub commit_message: Option<String>,
}

/// Checks a prompt name; returns it trimmed, as it is stored.
pub fn validate_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("name must not be empty".to_string());
    }
    if raw.contains('|') {
        // `|` separates the parts of a reference to the prompt.
        return Err("name must not contain '|'".to_string());
    }
    if contains_html_tag(raw) {
        return Err("name must not contain HTML tags".to_string());
    }
    if raw.starts_with('/') || raw.ends_with('/') || raw.contains("//") {
        return Err(
            "name must not start or end with '/' or contain '//' (a '/' separates folders)"
                .to_string(),
        );
    }
    let name = raw.trim().to_string();
    if name.is_empty() {
        return Err("name must not be blank".to_string());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name must be at most {MAX_NAME_CHARS} characters"));
    }
    if RESERVED_NAMES.contains(&name.as_str()) {
        return Err(format!("name must not be '{name}' (reserved)"));
    }
    Ok(name)
}

/// `<` … `>` with no angle bracket in between, the shape Langfuse refuses in names.
fn contains_html_tag(s: &str) -> bool {
    let mut open = false;
    for c in s.chars() {
        match c {
            '<' => open = true,
            '>' if open => return true,
            _ => {}
        }
    }
    false
}

pub fn validate_label(label: &str) -> Result<(), String> {
    let well_formed = !label.is_empty()
        && label.chars().count() <= MAX_LABEL_CHARS
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "label {label:?} is invalid: use 1 to {MAX_LABEL_CHARS} of a-z, 0-9, '_', '-' and '.'"
        ))
    }
}

/// The labels a new version gets: the requested ones, in order and once each, then `latest`.
pub fn labels_of_new_version(requested: &[String]) -> Vec<String> {
    let mut labels = dedupe(requested.iter().filter(|l| *l != LATEST_LABEL).cloned());
    labels.push(LATEST_LABEL.to_string());
    labels
}

/// The labels of a version after `PATCH …/versions/{v}` with `new_labels`: the new ones first,
/// then those it had. Labels are only ever added here; a label leaves a version when another
/// version takes it.
pub fn labels_after_update(current: &[String], new_labels: &[String]) -> Vec<String> {
    dedupe(new_labels.iter().chain(current.iter()).cloned())
}

fn dedupe(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

fn field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn string_list(body: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match field(body, key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key} must be a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("{key} must be a list of strings")),
    }
}

/// Parses and validates a create request. Unknown keys are ignored, as Langfuse does.
pub fn parse_new_prompt(body: &Value) -> Result<NewPrompt, String> {
    let body = body
        .as_object()
        .ok_or_else(|| "the body must be a JSON object".to_string())?;
    let name = match field(body, "name") {
        Some(Value::String(name)) => validate_name(name)?,
        Some(_) => return Err("name must be a string".to_string()),
        None => return Err("name is required".to_string()),
    };
    let kind = match field(body, "type") {
        None => PromptType::Text,
        Some(Value::String(t)) => PromptType::parse(t)
            .ok_or_else(|| format!("type must be 'text' or 'chat', not {t:?}"))?,
        Some(_) => return Err("type must be 'text' or 'chat'".to_string()),
    };
    let content = match (kind, field(body, "prompt")) {
        (_, None) => return Err("prompt is required".to_string()),
        (PromptType::Text, Some(Value::String(text))) => Value::String(text.clone()),
        (PromptType::Text, Some(_)) => return Err(
            "prompt must be a string for a text prompt (send type 'chat' for a list of messages)"
                .to_string(),
        ),
        (PromptType::Chat, Some(Value::Array(messages))) => chat_messages(messages)?,
        (PromptType::Chat, Some(_)) => {
            return Err("prompt must be a list of messages for a chat prompt".to_string())
        }
    };
    let labels = string_list(body, "labels")?.unwrap_or_default();
    for label in &labels {
        validate_label(label)?;
    }
    let tags = string_list(body, "tags")?.map(|t| dedupe(t.into_iter()));
    let commit_message = match field(body, "commitMessage") {
        None => None,
        Some(Value::String(m)) if m.chars().count() <= MAX_COMMIT_MESSAGE_CHARS => Some(m.clone()),
        Some(Value::String(_)) => {
            return Err(format!(
                "commitMessage must be at most {MAX_COMMIT_MESSAGE_CHARS} characters"
            ))
        }
        Some(_) => return Err("commitMessage must be a string".to_string()),
    };
    let config = field(body, "config")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    references(&content)?;
    Ok(NewPrompt {
        name,
        kind,
        content,
        config,
        labels,
        tags,
        commit_message,
    })
}

/// Normalises chat messages to `{role, content}` or `{type: "placeholder", name}`; other keys
/// (such as the `type: "chatmessage"` some SDKs send) are dropped, as Langfuse stores them.
fn chat_messages(messages: &[Value]) -> Result<Value, String> {
    let mut out = Vec::with_capacity(messages.len());
    let mut variables = Vec::new();
    let mut placeholders = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        let content = message.get("content").and_then(Value::as_str);
        let kind = message.get("type").and_then(Value::as_str);
        match (role, content, kind) {
            (Some(role), Some(content), _) => {
                variables.extend(template_variables(content));
                out.push(serde_json::json!({"role": role, "content": content}));
            }
            (_, _, Some("placeholder")) => {
                let name = message
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| is_placeholder_name(n))
                    .ok_or_else(|| {
                        format!(
                            "prompt[{i}]: a placeholder needs a name that starts with a letter and \
                             has only letters, digits and '_'"
                        )
                    })?;
                placeholders.push(name.to_string());
                out.push(serde_json::json!({"type": "placeholder", "name": name}));
            }
            _ => {
                return Err(format!(
                    "prompt[{i}]: a message needs string 'role' and 'content', or 'type': \
                     'placeholder' and a 'name'"
                ))
            }
        }
    }
    let clashes: Vec<String> = dedupe(variables.into_iter().filter(|v| placeholders.contains(v)));
    if !clashes.is_empty() {
        return Err(format!(
            "a name cannot be both a variable and a placeholder: {}",
            clashes.join(", ")
        ));
    }
    Ok(Value::Array(out))
}

fn is_placeholder_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `{{variable}}` names of a template, as the SDKs' `compile` sees them: the text between
/// `{{` and `}}` with no brace inside, when it is a letter followed by letters, digits or `_`.
pub fn template_variables(template: &str) -> Vec<String> {
    let bytes = template.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'{' && bytes[i + 1] == b'{' {
            let start = i + 2;
            let mut j = start;
            while j < bytes.len() && bytes[j] != b'{' && bytes[j] != b'}' {
                j += 1;
            }
            if j + 1 < bytes.len() && bytes[j] == b'}' && bytes[j + 1] == b'}' {
                let name = &template[start..j];
                let mut chars = name.chars();
                if chars.next().is_some_and(char::is_alphabetic)
                    && chars.all(|c| c.is_alphanumeric() || c == '_')
                {
                    found.push(name.to_string());
                }
                i = j + 2;
                continue;
            }
        }
        i += 1;
    }
    dedupe(found.into_iter())
}

/// Parses a `PATCH …/versions/{v}` body: `{"newLabels": [...]}`.
pub fn parse_new_labels(body: &Value) -> Result<Vec<String>, String> {
    let body = body
        .as_object()
        .ok_or_else(|| "the body must be a JSON object".to_string())?;
    let labels =
        string_list(body, "newLabels")?.ok_or_else(|| "newLabels is required".to_string())?;
    for label in &labels {
        if label == LATEST_LABEL {
            return Err(
                "the label 'latest' cannot be set: it always points at the newest version"
                    .to_string(),
            );
        }
        validate_label(label)?;
    }
    Ok(labels)
}

/// A reference from one prompt to another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    Version { name: String, version: i32 },
    Label { name: String, label: String },
}

impl Reference {
    pub fn name(&self) -> &str {
        match self {
            Reference::Version { name, .. } | Reference::Label { name, .. } => name,
        }
    }

    /// The tag that writes this reference in a prompt.
    pub fn tag(&self) -> String {
        match self {
            Reference::Version { name, version } => {
                format!("{TAG_OPEN}name={name}|version={version}{TAG_CLOSE}")
            }
            Reference::Label { name, label } => {
                format!("{TAG_OPEN}name={name}|label={label}{TAG_CLOSE}")
            }
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Version { name, version } => write!(f, "'{name}' version {version}"),
            Reference::Label { name, label } => write!(f, "'{name}' label '{label}'"),
        }
    }
}

/// Every reference in a prompt's content (every string in it, for chat prompts), once each, in
/// order of first appearance. A tag is `@@@langfusePrompt:` … `@@@` on one line; one that is not
/// exactly `name=X|version=N` (N a positive integer without leading zeros) or `name=X|label=L`
/// is refused, so that a typo does not silently end up in what the model is sent.
pub fn references(content: &Value) -> Result<Vec<Reference>, String> {
    let mut found = Vec::new();
    for_each_string(content, &mut |s| {
        for tag in tags_in(s) {
            let reference = parse_tag(tag).ok_or_else(|| {
                format!(
                    "invalid prompt reference {:?}: write {TAG_OPEN}name=NAME|version=N{TAG_CLOSE} \
                     or {TAG_OPEN}name=NAME|label=LABEL{TAG_CLOSE}",
                    format!("{TAG_OPEN}{tag}{TAG_CLOSE}")
                )
            })?;
            if !found.contains(&reference) {
                found.push(reference);
            }
        }
        Ok(())
    })?;
    Ok(found)
}

fn for_each_string(
    value: &Value,
    f: &mut dyn FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().try_for_each(|v| for_each_string(v, f)),
        Value::Object(map) => map.values().try_for_each(|v| for_each_string(v, f)),
        _ => Ok(()),
    }
}

/// The inner text of each tag in `s`, left to right, not overlapping.
fn tags_in(s: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut offset = 0;
    while let Some(found) = s[offset..].find(TAG_OPEN) {
        let start = offset + found;
        let inner_start = start + TAG_OPEN.len();
        match s[inner_start..].find(TAG_CLOSE) {
            Some(len) if !s[inner_start..inner_start + len].contains(['\n', '\r']) => {
                tags.push(&s[inner_start..inner_start + len]);
                offset = inner_start + len + TAG_CLOSE.len();
            }
            // No closing marker on this line: not a tag here; look again one character on.
            _ => offset = start + 1,
        }
    }
    tags
}

fn parse_tag(inner: &str) -> Option<Reference> {
    let (first, second) = inner.split_once('|')?;
    if second.contains('|') {
        return None;
    }
    let name = first.strip_prefix("name=").filter(|n| !n.is_empty())?;
    if let Some(version) = second.strip_prefix("version=") {
        let canonical = !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_digit())
            && !version.starts_with('0');
        let version: i32 = version.parse().ok().filter(|_| canonical)?;
        return Some(Reference::Version {
            name: name.to_string(),
            version,
        });
    }
    let label = second.strip_prefix("label=").filter(|l| !l.is_empty())?;
    Some(Reference::Label {
        name: name.to_string(),
        label: label.to_string(),
    })
}

/// One stored prompt version, as resolution needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptNode {
    pub id: String,
    pub name: String,
    pub version: i32,
    pub kind: PromptType,
    pub content: Value,
    pub labels: Vec<String>,
}

impl PromptNode {
    /// Whether `reference` points at this version.
    pub fn is_target_of(&self, reference: &Reference) -> bool {
        match reference {
            Reference::Version { name, version } => *name == self.name && *version == self.version,
            Reference::Label { name, label } => *name == self.name && self.labels.contains(label),
        }
    }
}

/// Which versions a resolution included, by the id of the including version. Serialised as the
/// `resolutionGraph` of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolutionGraph {
    pub root: NodeRef,
    pub dependencies: BTreeMap<String, Vec<NodeRef>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    pub id: String,
    pub name: String,
    pub version: i32,
}

impl NodeRef {
    fn of(node: &PromptNode) -> NodeRef {
        NodeRef {
            id: node.id.clone(),
            name: node.name.clone(),
            version: node.version,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub content: Value,
    /// `None` when the prompt includes nothing.
    pub graph: Option<ResolutionGraph>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Malformed(String),
    #[error("the referenced prompt {0} does not exist")]
    NotFound(Reference),
    #[error("the referenced prompt {0} is a chat prompt; only text prompts can be included")]
    NotText(Reference),
    #[error("circular reference: prompt '{name}' version {version} is reached again")]
    Cycle { name: String, version: i32 },
    #[error("prompts are included more than {} levels deep", MAX_NESTING_DEPTH - 1)]
    TooDeep,
}

/// Resolves `root`'s references, depth first, with `lookup` answering which version a reference
/// points at. `lookup` must answer from one consistent state (one transaction, one read).
pub fn resolve<'a>(
    root: &PromptNode,
    lookup: &dyn Fn(&Reference) -> Option<&'a PromptNode>,
) -> Result<Resolved, ResolveError> {
    let mut walk = Walk {
        root,
        path: Vec::new(),
        graph: BTreeMap::new(),
        lookup,
    };
    let content = walk.resolve(root, 0)?;
    let graph = (!walk.graph.is_empty()).then(|| ResolutionGraph {
        root: NodeRef::of(root),
        dependencies: walk.graph,
    });
    Ok(Resolved { content, graph })
}

struct Walk<'r, 'a> {
    root: &'r PromptNode,
    /// Ids of the versions being resolved, root first: reaching one again is a cycle.
    path: Vec<String>,
    graph: BTreeMap<String, Vec<NodeRef>>,
    lookup: &'r dyn Fn(&Reference) -> Option<&'a PromptNode>,
}

impl Walk<'_, '_> {
    fn resolve(&mut self, node: &PromptNode, level: usize) -> Result<Value, ResolveError> {
        if level >= MAX_NESTING_DEPTH {
            return Err(ResolveError::TooDeep);
        }
        // Another version of the root's name is refused too: a prompt must not include itself
        // through a label that a later version may take.
        if self.path.contains(&node.id) || (node.name == self.root.name && node.id != self.root.id)
        {
            return Err(ResolveError::Cycle {
                name: node.name.clone(),
                version: node.version,
            });
        }
        let refs = references(&node.content).map_err(ResolveError::Malformed)?;
        if refs.is_empty() {
            return Ok(node.content.clone());
        }
        self.path.push(node.id.clone());
        let mut content = node.content.clone();
        for reference in refs {
            let target = (self.lookup)(&reference)
                .ok_or_else(|| ResolveError::NotFound(reference.clone()))?;
            if target.kind != PromptType::Text {
                return Err(ResolveError::NotText(reference));
            }
            let included_here = self.graph.entry(node.id.clone()).or_default();
            if !included_here.iter().any(|n| n.id == target.id) {
                included_here.push(NodeRef::of(target));
            }
            let included = self.resolve(target, level + 1)?;
            let text = included.as_str().unwrap_or_default();
            // Every tag naming the target (by version or by any of its labels) becomes its text.
            let mut tags = vec![Reference::Version {
                name: target.name.clone(),
                version: target.version,
            }
            .tag()];
            tags.extend(target.labels.iter().map(|label| {
                Reference::Label {
                    name: target.name.clone(),
                    label: label.clone(),
                }
                .tag()
            }));
            replace_in_strings(&mut content, &tags, text);
        }
        self.path.pop();
        Ok(content)
    }
}

fn replace_in_strings(value: &mut Value, tags: &[String], text: &str) {
    match value {
        Value::String(s) => {
            for tag in tags {
                if s.contains(tag.as_str()) {
                    *s = s.replace(tag.as_str(), text);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_in_strings(v, tags, text)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_in_strings(v, tags, text)),
        _ => {}
    }
}

/// A stored reference to `name`, from another prompt version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    pub parent_name: String,
    pub parent_version: i32,
    pub reference: Reference,
}

/// The dependents a deletion would break: those naming a deleted version, or a label that no
/// remaining version holds. (A reference to `latest` counts as broken when its holder is deleted,
/// even though `latest` then moves to the newest remaining version: moving it silently would
/// change what the dependent includes.)
pub fn broken_by_deletion<'a>(
    dependents: &'a [Dependent],
    deleted_versions: &[i32],
    remaining_labels: &HashSet<String>,
) -> Vec<&'a Dependent> {
    dependents
        .iter()
        .filter(|d| match &d.reference {
            Reference::Version { version, .. } => deleted_versions.contains(version),
            Reference::Label { label, .. } => !remaining_labels.contains(label),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn text(id: &str, name: &str, version: i32, labels: &[&str], content: &str) -> PromptNode {
        PromptNode {
            id: id.to_string(),
            name: name.to_string(),
            version,
            kind: PromptType::Text,
            content: json!(content),
            labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn lookup_in<'a>(
        nodes: &'a [PromptNode],
    ) -> impl Fn(&Reference) -> Option<&'a PromptNode> + 'a {
        move |r| nodes.iter().find(|n| n.is_target_of(r))
    }

    #[test]
    fn names_are_validated_and_trimmed() {
        assert_eq!(validate_name(" folder/a b ").unwrap(), "folder/a b");
        for bad in [
            "", " ", "a|b", "/a", "a/", "a//b", "<b>x</b>", "new", "metrics",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"x".repeat(256)).is_err());
        assert!(validate_name("a < b").is_ok(), "a lone '<' is not a tag");
    }

    #[test]
    fn labels_are_lowercase_words() {
        for good in ["production", "v1.2", "a_b-c", &"x".repeat(36)] {
            assert!(validate_label(good).is_ok(), "{good}");
        }
        for bad in ["", "Prod", "a b", "ü", &"x".repeat(37)] {
            assert!(validate_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_version_is_always_latest() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            labels_of_new_version(&l(&["production", "staging", "production"])),
            l(&["production", "staging", "latest"])
        );
        assert_eq!(
            labels_of_new_version(&l(&["latest", "a"])),
            l(&["a", "latest"])
        );
        assert_eq!(labels_of_new_version(&[]), l(&["latest"]));
        assert_eq!(
            labels_after_update(&l(&["latest", "a"]), &l(&["b", "a"])),
            l(&["b", "a", "latest"])
        );
    }

    #[test]
    fn create_bodies_are_parsed_like_langfuse() {
        let p = parse_new_prompt(&json!({
            "name": "greet", "prompt": "Hi {{name}}", "labels": ["production"],
            "config": {"temperature": 0.2}, "tags": ["a", "a", "b"], "commitMessage": "first",
            "unknown": true,
        }))
        .unwrap();
        assert_eq!(p.kind, PromptType::Text);
        assert_eq!(p.content, json!("Hi {{name}}"));
        assert_eq!(p.tags, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(p.config, json!({"temperature": 0.2}));

        let p = parse_new_prompt(
            &json!({"name": "c", "type": "chat", "config": null, "prompt": [
                {"role": "system", "content": "Be {{tone}}", "type": "chatmessage"},
                {"type": "placeholder", "name": "history"},
            ]}),
        )
        .unwrap();
        assert_eq!(
            p.content,
            json!([{"role": "system", "content": "Be {{tone}}"}, {"type": "placeholder", "name": "history"}])
        );
        assert_eq!(p.config, json!({}));
        assert_eq!(p.tags, None);

        for (body, needle) in [
            (json!({"prompt": "x"}), "name is required"),
            (json!({"name": "a", "prompt": ["x"]}), "must be a string"),
            (
                json!({"name": "a", "type": "chat", "prompt": "x"}),
                "list of messages",
            ),
            (
                json!({"name": "a", "type": "audio", "prompt": "x"}),
                "type must be",
            ),
            (
                json!({"name": "a", "prompt": "x", "labels": ["Prod"]}),
                "label",
            ),
            (
                json!({"name": "a", "type": "chat", "prompt": [{"role": "user"}]}),
                "prompt[0]",
            ),
            (
                json!({"name": "a", "type": "chat", "prompt": [{"type": "placeholder", "name": "1x"}]}),
                "placeholder",
            ),
            (
                json!({"name": "a", "type": "chat", "prompt": [
                    {"role": "user", "content": "{{h}}"}, {"type": "placeholder", "name": "h"}]}),
                "both a variable and a placeholder: h",
            ),
            (
                json!({"name": "a", "prompt": "x", "commitMessage": "m".repeat(501)}),
                "commitMessage",
            ),
            (
                json!({"name": "a", "prompt": "@@@langfusePrompt:name=b@@@"}),
                "invalid prompt reference",
            ),
            (json!([1]), "JSON object"),
        ] {
            let err = parse_new_prompt(&body).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn template_variables_follow_the_sdks() {
        assert_eq!(
            template_variables("{{a}} {{ b }} {{{c}}} {{d_1}} {{1x}} {{é}} {{a}}"),
            vec!["a", "c", "d_1", "é"]
        );
        assert!(template_variables("{{ unclosed").is_empty());
    }

    #[test]
    fn patch_bodies_refuse_latest() {
        assert_eq!(
            parse_new_labels(&json!({"newLabels": ["production"]})).unwrap(),
            vec!["production"]
        );
        assert!(parse_new_labels(&json!({"newLabels": ["latest"]}))
            .unwrap_err()
            .contains("latest"));
        assert!(parse_new_labels(&json!({})).is_err());
        assert!(parse_new_labels(&json!({"newLabels": "production"})).is_err());
    }

    #[test]
    fn references_are_found_in_every_string() {
        let content = json!([
            {"role": "system", "content": "A @@@langfusePrompt:name=x|label=production@@@ B"},
            {"role": "user", "content": "@@@langfusePrompt:name=f/y|version=12@@@@@@langfusePrompt:name=x|label=production@@@"},
        ]);
        assert_eq!(
            references(&content).unwrap(),
            vec![
                Reference::Label {
                    name: "x".into(),
                    label: "production".into()
                },
                Reference::Version {
                    name: "f/y".into(),
                    version: 12
                },
            ]
        );
        // Not tags: no closing marker on the line.
        assert!(references(&json!("@@@langfusePrompt:name=x|label=a\n@@@"))
            .unwrap()
            .is_empty());
        for bad in [
            "@@@langfusePrompt:name=x@@@",
            "@@@langfusePrompt:name=x|version=01@@@",
            "@@@langfusePrompt:name=x|version=0@@@",
            "@@@langfusePrompt:name=x|version=abc@@@",
            "@@@langfusePrompt:label=a|name=x@@@",
            "@@@langfusePrompt:name=x|label=a|version=1@@@",
            "@@@langfusePrompt:name=|label=a@@@",
        ] {
            assert!(references(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolution_replaces_references_recursively() {
        let nodes = vec![
            text(
                "c1",
                "child",
                1,
                &["production"],
                "child v1 with @@@langfusePrompt:name=leaf|version=1@@@",
            ),
            text("c2", "child", 2, &["latest"], "child v2"),
            text("l1", "leaf", 1, &["latest"], "leaf $1 \"quoted\""),
        ];
        let root = text(
            "r1",
            "root",
            1,
            &[],
            "[@@@langfusePrompt:name=child|label=production@@@] [@@@langfusePrompt:name=child|version=2@@@] [@@@langfusePrompt:name=child|version=1@@@]",
        );
        let lookup = lookup_in(&nodes);
        let resolved = resolve(&root, &lookup).unwrap();
        assert_eq!(
            resolved.content,
            json!(
                "[child v1 with leaf $1 \"quoted\"] [child v2] [child v1 with leaf $1 \"quoted\"]"
            )
        );
        let graph = resolved.graph.unwrap();
        assert_eq!(graph.root.id, "r1");
        assert_eq!(
            graph.dependencies["r1"]
                .iter()
                .map(|n| n.id.as_str())
                .collect::<Vec<_>>(),
            vec!["c1", "c2"]
        );
        assert_eq!(graph.dependencies["c1"][0].id, "l1");

        let plain = text("p", "plain", 1, &[], "no refs");
        assert_eq!(resolve(&plain, &lookup).unwrap().graph, None);
    }

    #[test]
    fn chat_prompts_include_text_prompts_in_their_messages() {
        let nodes = vec![text("t", "tone", 1, &["production"], "friendly")];
        let root = PromptNode {
            id: "c".into(),
            name: "chat".into(),
            version: 1,
            kind: PromptType::Chat,
            content: json!([{"role": "system", "content": "Be @@@langfusePrompt:name=tone|label=production@@@."}]),
            labels: vec![],
        };
        let lookup = lookup_in(&nodes);
        assert_eq!(
            resolve(&root, &lookup).unwrap().content,
            json!([{"role": "system", "content": "Be friendly."}])
        );
    }

    #[test]
    fn resolution_refuses_missing_chat_cyclic_and_deep_graphs() {
        let chat = PromptNode {
            kind: PromptType::Chat,
            content: json!([]),
            ..text("ch", "chatty", 1, &["production"], "")
        };
        let nodes = vec![
            chat,
            text(
                "a1",
                "a",
                1,
                &["production"],
                "@@@langfusePrompt:name=b|label=production@@@",
            ),
            text(
                "b1",
                "b",
                1,
                &["production"],
                "@@@langfusePrompt:name=a|label=production@@@",
            ),
            text("s1", "self", 1, &["old"], "old self"),
        ];
        let lookup = lookup_in(&nodes);
        let missing = text("r", "r", 1, &[], "@@@langfusePrompt:name=nope|version=3@@@");
        assert_eq!(
            resolve(&missing, &lookup).unwrap_err(),
            ResolveError::NotFound(Reference::Version {
                name: "nope".into(),
                version: 3
            })
        );
        let to_chat = text(
            "r",
            "r",
            1,
            &[],
            "@@@langfusePrompt:name=chatty|label=production@@@",
        );
        assert!(matches!(
            resolve(&to_chat, &lookup),
            Err(ResolveError::NotText(_))
        ));
        let cyclic = nodes[1].clone();
        assert_eq!(
            resolve(&cyclic, &lookup).unwrap_err(),
            ResolveError::Cycle {
                name: "a".into(),
                version: 1
            }
        );
        let self_by_label = text(
            "s2",
            "self",
            2,
            &[],
            "@@@langfusePrompt:name=self|label=old@@@",
        );
        assert!(matches!(
            resolve(&self_by_label, &lookup),
            Err(ResolveError::Cycle { .. })
        ));

        let mut chain: Vec<PromptNode> = (1..=MAX_NESTING_DEPTH)
            .map(|i| {
                text(
                    &format!("n{i}"),
                    &format!("n{i}"),
                    1,
                    &[],
                    &format!("@@@langfusePrompt:name=n{}|version=1@@@", i + 1),
                )
            })
            .collect();
        chain.push(text(
            "end",
            &format!("n{}", MAX_NESTING_DEPTH + 1),
            1,
            &[],
            "end",
        ));
        let lookup = lookup_in(&chain);
        // n1 includes n2 … n6: six levels, one too many.
        assert_eq!(
            resolve(&chain[0], &lookup).unwrap_err(),
            ResolveError::TooDeep
        );
        // n2 … n6 is five levels: allowed.
        assert_eq!(resolve(&chain[1], &lookup).unwrap().content, json!("end"));
    }

    #[test]
    fn deletion_is_refused_only_for_dependents_it_breaks() {
        let dep = |parent: &str, reference: Reference| Dependent {
            parent_name: parent.into(),
            parent_version: 1,
            reference,
        };
        let dependents = vec![
            dep(
                "p",
                Reference::Version {
                    name: "c".into(),
                    version: 2,
                },
            ),
            dep(
                "q",
                Reference::Label {
                    name: "c".into(),
                    label: "production".into(),
                },
            ),
            dep(
                "r",
                Reference::Label {
                    name: "c".into(),
                    label: "latest".into(),
                },
            ),
        ];
        let remaining: HashSet<String> = ["production".to_string()].into();
        let broken = broken_by_deletion(&dependents, &[3], &remaining);
        assert_eq!(
            broken
                .iter()
                .map(|d| d.parent_name.as_str())
                .collect::<Vec<_>>(),
            vec!["r"]
        );
        let broken = broken_by_deletion(&dependents, &[2], &HashSet::new());
        assert_eq!(broken.len(), 3);
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 _./=-]{1,20}"
            .prop_filter("valid name", |n| validate_name(n).as_deref() == Ok(n))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A reference written as a tag is read back as itself, wherever it stands in the text.
        #[test]
        fn tags_round_trip(
            name in name_strategy(),
            by_version in any::<bool>(),
            version in 1i32..100_000,
            label in "[a-z0-9_.-]{1,36}",
            before in "[^@\n]{0,10}",
            after in "[^@\n]{0,10}",
        ) {
            let reference = if by_version {
                Reference::Version { name, version }
            } else {
                Reference::Label { name, label }
            };
            let text = format!("{before}{}{after}", reference.tag());
            prop_assert_eq!(references(&json!(text)).unwrap(), vec![reference]);
        }

        /// In any graph of text prompts, resolution either fails or leaves no tag behind; it
        /// always terminates, and refuses exactly the graphs with a cycle or a path too long.
        #[test]
        fn resolution_terminates_and_leaves_no_tags(
            edges in prop::collection::vec(prop::collection::vec(0usize..6, 0..3), 6),
        ) {
            let nodes: Vec<PromptNode> = edges.iter().enumerate().map(|(i, targets)| {
                let body: String = targets
                    .iter()
                    .map(|t| format!("<{}>", Reference::Version { name: format!("p{t}"), version: 1 }.tag()))
                    .collect();
                text(&format!("id{i}"), &format!("p{i}"), 1, &[], &format!("p{i}{body}"))
            }).collect();
            let lookup = lookup_in(&nodes);
            // The longest path from node 0 (in nodes visited), or None when a cycle is reachable.
            fn longest(i: usize, edges: &[Vec<usize>], path: &mut Vec<usize>) -> Option<usize> {
                if path.contains(&i) { return None; }
                path.push(i);
                let mut best = 1;
                for &t in &edges[i] {
                    best = best.max(1 + longest(t, edges, path)?);
                }
                path.pop();
                Some(best)
            }
            let expected_ok = longest(0, &edges, &mut Vec::new()).is_some_and(|l| l <= MAX_NESTING_DEPTH);
            match resolve(&nodes[0], &lookup) {
                Ok(resolved) => {
                    prop_assert!(expected_ok);
                    let text = resolved.content.as_str().unwrap().to_string();
                    prop_assert!(!text.contains(TAG_OPEN), "{}", text);
                    prop_assert!(text.starts_with("p0"));
                }
                Err(err) => {
                    prop_assert!(!expected_ok, "unexpected {err}");
                    let expected_kind = matches!(err, ResolveError::Cycle { .. } | ResolveError::TooDeep);
                    prop_assert!(expected_kind, "{}", err);
                }
            }
        }

        /// `latest` is on every new version exactly once, after the requested labels in order.
        #[test]
        fn new_versions_carry_latest_once(labels in prop::collection::vec("[a-z]{1,3}|latest", 0..8)) {
            let out = labels_of_new_version(&labels);
            prop_assert_eq!(out.iter().filter(|l| *l == LATEST_LABEL).count(), 1);
            prop_assert_eq!(out.last().map(String::as_str), Some(LATEST_LABEL));
            let unique: HashSet<&String> = out.iter().collect();
            prop_assert_eq!(unique.len(), out.len());
            for l in &labels { prop_assert!(out.contains(l)); }
        }
    }
}
