//! Inputs, outputs and metadata rendered for a person: chat messages as a conversation (OpenAI
//! `{role, content}` with content parts, `tool_calls` and `tool` results; Anthropic content blocks
//! `text`, `tool_use` and `tool_result`; Gemini `contents[{role, parts}]`), any other JSON as a
//! tree that folds (`<details>`, no script needed), strings as markdown.
//!
//! Everything here was written by strangers. This module is the one place that turns such text
//! into HTML the templates mark safe, so it builds that HTML itself: every piece of text goes
//! through [`escape`], markdown goes through pulldown-cmark with raw HTML turned into text and
//! link targets limited to `http`, `https`, `mailto` and this site's paths, and images become
//! links (nothing is loaded from elsewhere). The tests feed it `<script>`, `onerror=` and
//! `javascript:` payloads in every shape.
//!
//! Media references (`@@@langfuseMedia:type=…|id=…|source=…@@@`, the strings SDKs leave where
//! they cut out a file) are shown as the file itself, an image, a player or a link, when the page
//! resolved them ([`with_media`]); else as a note saying which file is missing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use serde_json::Value;

/// Values longer than this (bytes of stored JSON) are shown cut, with a way to show them all.
pub const SHOW_AT_MOST: usize = 64 * 1024;

/// Objects and arrays deeper than this start folded in the tree.
const OPEN_DEPTH: usize = 2;

/// A media file a page may show: its type as stored and a link to its bytes that this server
/// signed for the page's project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownMedia {
    pub content_type: String,
    pub url: String,
}

thread_local! {
    /// The media of the rendering in progress on this thread, by id. Rendering is synchronous
    /// (nothing is awaited inside [`with_media`]), so this is the page's own map; it spares every
    /// function of this module a parameter that only the leaves read.
    static SHOWN_MEDIA: RefCell<HashMap<String, ShownMedia>> = RefCell::new(HashMap::new());
}

/// Runs `render` with `media` as the files its references resolve to; none outside it.
pub fn with_media<R>(media: HashMap<String, ShownMedia>, render: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SHOWN_MEDIA.with(|m| m.borrow_mut().clear());
        }
    }
    SHOWN_MEDIA.with(|m| *m.borrow_mut() = media);
    let _reset = Reset;
    render()
}

/// The HTML of `text` if it is a media reference: the file, or a note that it is not available.
fn media_html(text: &str) -> Option<String> {
    use crate::domain::media::{presentation_of, MediaReference, Presentation};
    let reference = MediaReference::parse(text)?;
    let shown = SHOWN_MEDIA.with(|m| m.borrow().get(&reference.id).cloned());
    let Some(shown) = shown else {
        return Some(format!(
            "<span class=\"media-missing\" title=\"{}\">[{} media not available]</span>",
            escape(&reference.id),
            escape(&reference.content_type)
        ));
    };
    let url = escape(&shown.url);
    let kind = escape(&shown.content_type);
    let html = match presentation_of(&shown.content_type) {
        Presentation::Image => format!(
            "<figure class=\"media media-image\"><a href=\"{url}\" target=\"_blank\" rel=\"noopener\">\
             <img src=\"{url}\" alt=\"{kind}\" loading=\"lazy\"></a><figcaption>{kind}</figcaption></figure>"
        ),
        Presentation::Audio => format!(
            "<figure class=\"media media-audio\"><audio controls preload=\"metadata\" src=\"{url}\"></audio>\
             <figcaption>{kind}</figcaption></figure>"
        ),
        Presentation::Video => format!(
            "<figure class=\"media media-video\"><video controls preload=\"metadata\" src=\"{url}\"></video>\
             <figcaption>{kind}</figcaption></figure>"
        ),
        Presentation::Link => format!(
            "<a class=\"media media-file\" href=\"{url}\" download>{kind} file</a>"
        ),
    };
    Some(html)
}

/// Text as HTML: `& < > " '` escaped (so it is safe in elements and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A stored value (JSON text, as the tables hold input and output) rendered for a person, with a
/// toggle to its exact text. `full_href`, when the value is longer than [`SHOW_AT_MOST`] and not
/// asked for whole, is where "show all" leads; then only the beginning is shown, as text.
pub fn stored_value(stored: &str, full_href: Option<&str>) -> String {
    if let Some(href) = full_href.filter(|_| stored.len() > SHOW_AT_MOST) {
        let mut cut = SHOW_AT_MOST;
        while !stored.is_char_boundary(cut) {
            cut -= 1;
        }
        return format!(
            "<div class=\"truncated\"><p class=\"hint\">Showing the first {} KB of {} KB. \
             <a class=\"show-all\" href=\"{}\">Show all</a></p><pre class=\"raw-text\">{}…</pre></div>",
            SHOW_AT_MOST / 1024,
            stored.len().div_ceil(1024),
            escape(href),
            escape(&stored[..cut])
        );
    }
    let value: Value = match serde_json::from_str(stored) {
        Ok(value) => value,
        // Not JSON: the text as it is.
        Err(_) => Value::String(stored.to_string()),
    };
    let mut out = String::from("<div class=\"rendered\">");
    out.push_str(&value_html(&value));
    out.push_str("</div>");
    let raw = match &value {
        Value::String(_) if serde_json::from_str::<Value>(stored).is_err() => stored.to_string(),
        _ => serde_json::to_string_pretty(&value).unwrap_or_else(|_| stored.to_string()),
    };
    let _ = write!(
        out,
        "<details class=\"raw\"><summary>Raw</summary><pre class=\"raw-text\">{}</pre></details>",
        escape(&raw)
    );
    out
}

/// A JSON value for a person: a conversation when it is one, else markdown or a tree.
pub fn value_html(value: &Value) -> String {
    if let Some(messages) = conversation(value) {
        let mut out = String::from("<div class=\"chat\">");
        for message in messages {
            out.push_str(&message_html(message));
        }
        out.push_str("</div>");
        // What the object holds beside its messages (tools, settings) stays visible.
        if let Some(map) = value.as_object().filter(|m| !m.contains_key("role")) {
            let rest: serde_json::Map<String, Value> = map
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "messages" | "contents" | "choices"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !rest.is_empty() {
                out.push_str(&tree_html(&Value::Object(rest), 0));
            }
        }
        return out;
    }
    match value {
        Value::String(text) => markdown(text),
        Value::Null => "<span class=\"muted\">null</span>".to_string(),
        _ => tree_html(value, 0),
    }
}

/// One message of a conversation, whatever its dialect.
struct Message<'a> {
    role: String,
    name: Option<&'a str>,
    body: &'a Value,
}

/// The messages of a value, when it is a conversation: a list of messages, one message, an
/// object with `messages` (OpenAI, Anthropic), `contents` (Gemini) or `choices` (an OpenAI answer).
fn conversation(value: &Value) -> Option<Vec<Message<'_>>> {
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_message) => {
            Some(items.iter().map(message).collect())
        }
        Value::Object(map) => {
            for key in ["messages", "contents"] {
                if let Some(Value::Array(items)) = map.get(key) {
                    if !items.is_empty() && items.iter().all(is_message) {
                        return Some(items.iter().map(message).collect());
                    }
                }
            }
            if let Some(Value::Array(choices)) = map.get("choices") {
                let messages: Vec<&Value> = choices
                    .iter()
                    .filter_map(|c| c.get("message").or_else(|| c.get("delta")))
                    .collect();
                if !messages.is_empty() && messages.iter().all(|m| is_message(m)) {
                    return Some(messages.into_iter().map(message).collect());
                }
            }
            is_message(value).then(|| vec![message(value)])
        }
        _ => None,
    }
}

fn is_message(value: &Value) -> bool {
    let Some(map) = value.as_object() else {
        return false;
    };
    map.get("role").is_some_and(Value::is_string)
        && ["content", "tool_calls", "parts", "function_call"]
            .iter()
            .any(|k| map.contains_key(*k))
}

fn message(value: &Value) -> Message<'_> {
    Message {
        role: value
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("message")
            .to_string(),
        name: value.get("name").and_then(Value::as_str),
        body: value,
    }
}

fn message_html(message: Message<'_>) -> String {
    let role_class = match message.role.as_str() {
        "system" | "developer" => "system",
        "user" | "human" => "user",
        "assistant" | "model" | "ai" => "assistant",
        "tool" | "function" => "tool",
        _ => "other",
    };
    let mut out = format!(
        "<div class=\"message role-{role_class}\"><div class=\"message-role\">{}",
        escape(&message.role)
    );
    if let Some(name) = message.name {
        let _ = write!(out, " <span class=\"muted\">{}</span>", escape(name));
    }
    if let Some(id) = message.body.get("tool_call_id").and_then(Value::as_str) {
        let _ = write!(
            out,
            " <span class=\"muted\">result of <code>{}</code></span>",
            escape(id)
        );
    }
    out.push_str("</div><div class=\"message-body\">");
    match message.body.get("content") {
        Some(Value::String(text)) => out.push_str(&markdown(text)),
        Some(Value::Array(parts)) => {
            for part in parts {
                out.push_str(&part_html(part));
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => out.push_str(&tree_html(other, 0)),
    }
    if let Some(Value::Array(parts)) = message.body.get("parts") {
        for part in parts {
            out.push_str(&part_html(part));
        }
    }
    if let Some(Value::Array(calls)) = message.body.get("tool_calls") {
        for call in calls {
            let function = call.get("function").unwrap_or(call);
            let name = function.get("name").and_then(Value::as_str).unwrap_or("");
            let arguments = function.get("arguments").map(|a| match a {
                // OpenAI sends the arguments as JSON text.
                Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| a.clone()),
                other => other.clone(),
            });
            out.push_str(&tool_call_html(
                name,
                call.get("id").and_then(Value::as_str),
                arguments.as_ref(),
            ));
        }
    }
    if let Some(call) = message.body.get("function_call") {
        let name = call.get("name").and_then(Value::as_str).unwrap_or("");
        out.push_str(&tool_call_html(name, None, call.get("arguments")));
    }
    out.push_str("</div></div>");
    out
}

/// A content part or block: text, a tool call or result, an image, anything else as a tree.
fn part_html(part: &Value) -> String {
    if let Value::String(text) = part {
        return markdown(text);
    }
    let Some(map) = part.as_object() else {
        return tree_html(part, 0);
    };
    let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
    if let Some(Value::String(text)) = map.get("text") {
        return markdown(text);
    }
    match kind {
        "tool_use" => tool_call_html(
            map.get("name").and_then(Value::as_str).unwrap_or(""),
            map.get("id").and_then(Value::as_str),
            map.get("input"),
        ),
        "tool_result" => {
            let mut out =
                String::from("<div class=\"tool-result\"><div class=\"tool-label\">Tool result");
            if let Some(id) = map.get("tool_use_id").and_then(Value::as_str) {
                let _ = write!(out, " <code>{}</code>", escape(id));
            }
            if map.get("is_error").and_then(Value::as_bool) == Some(true) {
                out.push_str(" <span class=\"level-badge error\">ERROR</span>");
            }
            out.push_str("</div>");
            match map.get("content") {
                Some(Value::Array(parts)) => {
                    for part in parts {
                        out.push_str(&part_html(part));
                    }
                }
                Some(Value::String(text)) => out.push_str(&markdown(text)),
                Some(other) => out.push_str(&tree_html(other, 0)),
                None => {}
            }
            out.push_str("</div>");
            out
        }
        "image_url" | "image" | "input_image" => {
            let url = map
                .get("image_url")
                .and_then(|u| u.get("url").or(Some(u)))
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Some(html) = media_html(url) {
                return html;
            }
            let shown = if url.starts_with("data:") {
                "an inline image".to_string()
            } else {
                url.chars().take(120).collect()
            };
            format!(
                "<div class=\"media-part\">[image: {}]</div>",
                escape(&shown)
            )
        }
        _ => {
            if let Some(call) = map.get("functionCall") {
                return tool_call_html(
                    call.get("name").and_then(Value::as_str).unwrap_or(""),
                    None,
                    call.get("args"),
                );
            }
            if let Some(response) = map.get("functionResponse") {
                let mut out = format!(
                    "<div class=\"tool-result\"><div class=\"tool-label\">Tool result <code>{}</code></div>",
                    escape(response.get("name").and_then(Value::as_str).unwrap_or(""))
                );
                if let Some(body) = response.get("response") {
                    out.push_str(&value_html(body));
                }
                out.push_str("</div>");
                return out;
            }
            tree_html(part, 0)
        }
    }
}

fn tool_call_html(name: &str, id: Option<&str>, arguments: Option<&Value>) -> String {
    let mut out = format!(
        "<div class=\"tool-call\"><div class=\"tool-label\">Tool call <strong>{}</strong>",
        escape(name)
    );
    if let Some(id) = id {
        let _ = write!(out, " <code class=\"muted\">{}</code>", escape(id));
    }
    out.push_str("</div>");
    match arguments {
        Some(Value::String(text)) => {
            let _ = write!(out, "<pre class=\"raw-text\">{}</pre>", escape(text));
        }
        Some(value) => out.push_str(&tree_html(value, 0)),
        None => {}
    }
    out.push_str("</div>");
    out
}

/// JSON as a tree: objects and arrays fold (open down to [`OPEN_DEPTH`]), scalars are typed text;
/// long strings are markdown.
pub fn tree_html(value: &Value, depth: usize) -> String {
    let mut out = String::new();
    tree_into(&mut out, value, depth);
    out
}

fn tree_into(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let _ = write!(
                out,
                "<details class=\"tree\"{}><summary>{{{} {}}}</summary><dl>",
                if depth < OPEN_DEPTH { " open" } else { "" },
                map.len(),
                if map.len() == 1 { "key" } else { "keys" }
            );
            for (key, item) in map {
                let _ = write!(out, "<dt>{}</dt><dd>", escape(key));
                tree_into(out, item, depth + 1);
                out.push_str("</dd>");
            }
            out.push_str("</dl></details>");
        }
        Value::Array(items) if !items.is_empty() => {
            let _ = write!(
                out,
                "<details class=\"tree\"{}><summary>[{} {}]</summary><ol start=\"0\">",
                if depth < OPEN_DEPTH { " open" } else { "" },
                items.len(),
                if items.len() == 1 { "item" } else { "items" }
            );
            for item in items {
                out.push_str("<li>");
                tree_into(out, item, depth + 1);
                out.push_str("</li>");
            }
            out.push_str("</ol></details>");
        }
        Value::Object(_) => out.push_str("<span class=\"json-empty\">{}</span>"),
        Value::Array(_) => out.push_str("<span class=\"json-empty\">[]</span>"),
        Value::String(text) if text.contains('\n') || text.len() > 120 => {
            out.push_str(&markdown(text))
        }
        Value::String(text) if text.starts_with("@@@langfuseMedia:") => {
            out.push_str(&markdown(text))
        }
        Value::String(text) => {
            let _ = write!(out, "<span class=\"json-string\">{}</span>", escape(text));
        }
        Value::Number(n) => {
            let _ = write!(out, "<span class=\"json-number\">{n}</span>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<span class=\"json-bool\">{b}</span>");
        }
        Value::Null => out.push_str("<span class=\"json-null\">null</span>"),
    }
}

/// Markdown as HTML, safely: raw HTML is shown as text, link targets other than `http(s)`,
/// `mailto` and paths become `#`, images become links to their address.
pub fn markdown(text: &str) -> String {
    if let Some(html) = media_html(text) {
        return html;
    }
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::from("<div class=\"markdown\">");
    pulldown_cmark::html::push_html(&mut out, events);
    out.push_str("</div>");
    out
}

/// A link target if it is `http`, `https`, `mailto` or has no scheme (a path, an anchor);
/// anything else (`javascript:`, `data:`, `vbscript:`…) becomes `#`. Browsers ignore tabs,
/// newlines and leading spaces in a scheme, so they are ignored here too.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = cleaned.find(':');
    let before_path = cleaned.find(['/', '?', '#']).unwrap_or(usize::MAX);
    match scheme_end {
        Some(end) if end < before_path => {
            let scheme = &cleaned[..end];
            if matches!(scheme, "http" | "https" | "mailto") {
                url
            } else {
                CowStr::Borrowed("#")
            }
        }
        _ => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCRIPT: &str = "<script>window.__pwned=1</script>";
    const IMG: &str = "<img src=x onerror=alert(1)>";

    /// No element or attribute of a payload survives as markup.
    fn assert_inert(html: &str) {
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("<img"), "{html}");
        assert!(!lower.contains("javascript:"), "{html}");
        // `onerror=` may appear only as text, never inside a tag.
        let mut in_tag = false;
        let mut tag = String::new();
        for c in lower.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    tag.clear();
                }
                '>' if in_tag => {
                    assert!(!tag.contains("onerror"), "an attribute in {html}");
                    in_tag = false;
                }
                _ if in_tag => tag.push(c),
                _ => {}
            }
        }
    }

    #[test]
    fn openai_messages_are_a_conversation_with_tool_calls_and_results() {
        let value = json!([
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in **Paris**?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        ]);
        let html = value_html(&value);
        assert_eq!(html.matches("class=\"message ").count(), 4, "{html}");
        assert!(html.contains("role-system") && html.contains("role-tool"));
        assert!(html.contains("<strong>Paris</strong>"), "{html}");
        assert!(html.contains("Tool call <strong>get_weather</strong>"));
        assert!(html.contains("<dt>city</dt><dd><span class=\"json-string\">Paris</span>"));
        assert!(html.contains("result of <code>call_1</code>"));
        assert!(html.contains("[image: https://example.com/a.png]"));
        // One message alone (an answer) and an object with messages are conversations too.
        let one = value_html(&json!({"role": "assistant", "content": "hello"}));
        assert!(one.contains("role-assistant") && one.contains("hello"));
        let wrapped =
            value_html(&json!({"messages": [{"role": "user", "content": "hi"}], "tools": []}));
        assert!(wrapped.contains("role-user") && wrapped.contains("<dt>tools</dt>"));
        let answer = value_html(
            &json!({"choices": [{"message": {"role": "assistant", "content": "done"}}]}),
        );
        assert!(answer.contains("role-assistant") && answer.contains("done"));
    }

    #[test]
    fn anthropic_blocks_show_text_tool_use_and_tool_results() {
        let value = json!({"messages": [
            {"role": "user", "content": "Look up x"},
            {"role": "assistant", "content": [{"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"key": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "found"}], "is_error": true}]},
        ]});
        let html = value_html(&value);
        assert_eq!(html.matches("class=\"message ").count(), 3);
        assert!(
            html.contains("Tool call <strong>lookup</strong> <code class=\"muted\">toolu_1</code>")
        );
        assert!(html.contains("Tool result <code>toolu_1</code>"));
        assert!(html.contains("found") && html.contains("ERROR"));
    }

    #[test]
    fn gemini_contents_show_parts_function_calls_and_responses() {
        let value = json!({"contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Rome"}}}]},
            {"role": "function", "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 21}}}]},
        ]});
        let html = value_html(&value);
        assert_eq!(html.matches("class=\"message ").count(), 3, "{html}");
        assert!(html.contains("role-assistant") && html.contains("Weather?"));
        assert!(html.contains("Tool call <strong>weather</strong>"));
        assert!(html.contains("Tool result <code>weather</code>") && html.contains("21"));
    }

    #[test]
    fn other_json_is_a_tree_and_strings_are_markdown() {
        let html = value_html(&json!({"a": {"b": {"c": {"d": 1}}}, "list": [1, true, null]}));
        assert!(html.contains("<details class=\"tree\" open><summary>{2 keys}"));
        assert!(
            html.contains("<details class=\"tree\"><summary>{1 key}"),
            "deep levels start folded: {html}"
        );
        assert!(html.contains("json-bool\">true") && html.contains("json-null"));
        let md = markdown("# Title\n\n- one\n- `two`\n\n| a | b |\n|---|---|\n| 1 | 2 |");
        assert!(md.contains("<h1>Title</h1>") && md.contains("<code>two</code>"));
        assert!(md.contains("<table>"));
    }

    #[test]
    fn payloads_stay_text_in_every_shape() {
        for payload in [
            SCRIPT,
            IMG,
            "<svg onload=alert(1)>",
            "\"><script>x</script>",
        ] {
            for value in [
                json!(payload),
                json!({"k": payload, payload: payload}),
                json!([{"role": payload, "content": payload, "name": payload}]),
                json!([{"role": "assistant", "content": [{"type": "tool_use", "id": payload, "name": payload, "input": payload}]}]),
                json!([{"role": "tool", "tool_call_id": payload, "content": [{"type": "image_url", "image_url": {"url": payload}}]}]),
                json!({"contents": [{"role": "model", "parts": [{"functionCall": {"name": payload, "args": {"x": payload}}}]}]}),
            ] {
                assert_inert(&value_html(&value));
                assert_inert(&stored_value(&value.to_string(), Some("/x")));
            }
            assert_inert(&stored_value(payload, None));
        }
        let html = markdown(&format!(
            "hello {SCRIPT} and {IMG}\n\n<div onmouseover=alert(1)>x</div>"
        ));
        assert_inert(&html);
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn markdown_links_keep_only_safe_targets_and_images_load_nothing() {
        for evil in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "vbscript:x",
        ] {
            let html = markdown(&format!("[click](<{evil}>) and ![pic](<{evil}>)"));
            assert_inert(&html);
            assert!(html.contains("href=\"#\""), "{evil}: {html}");
        }
        let html = markdown(
            "[ok](https://example.com/a?b=1) [rel](/project/p) ![i](https://x.test/i.png)",
        );
        assert!(html.contains("href=\"https://example.com/a?b=1\""));
        assert!(html.contains("href=\"/project/p\""));
        assert!(html.contains("href=\"https://x.test/i.png\"") && !html.contains("<img"));
    }

    #[test]
    fn long_values_are_cut_with_a_way_to_show_them_all() {
        let long = json!("x".repeat(SHOW_AT_MOST * 2)).to_string();
        let html = stored_value(&long, Some("/p/t/o?full=1&a=<b>"));
        assert!(html.contains("Show all") && html.contains("full=1&amp;a=&lt;b&gt;"));
        assert!(html.len() < SHOW_AT_MOST + 1024);
        let whole = stored_value(&long, None);
        assert!(whole.len() > SHOW_AT_MOST * 2);
        // Text that is not JSON is shown as it is, and its raw form is the same text.
        let html = stored_value("plain *text*", None);
        assert!(html.contains("<em>text</em>") && html.contains(">plain *text*</pre>"));
    }

    #[test]
    fn media_references_become_the_files_the_page_resolved() {
        let reference = "@@@langfuseMedia:type=image/png|id=img_1|source=base64_data_uri@@@";
        let audio = "@@@langfuseMedia:type=audio/wav|id=aud-2|source=bytes@@@";
        let value = json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": reference}}]}],
            "recording": audio, "doc": "@@@langfuseMedia:type=application/pdf|id=gone|source=bytes@@@"});
        let media = HashMap::from([
            (
                "img_1".to_string(),
                ShownMedia {
                    content_type: "image/png".into(),
                    url: "/api/public/media/img_1/download?a=1&b=\"x".into(),
                },
            ),
            (
                "aud-2".to_string(),
                ShownMedia {
                    content_type: "audio/wav".into(),
                    url: "/api/public/media/aud-2/download?s=2".into(),
                },
            ),
        ]);
        let html = with_media(media, || value_html(&value));
        assert!(
            html.contains("<img src=\"/api/public/media/img_1/download?a=1&amp;b=&quot;x\""),
            "{html}"
        );
        assert!(html.contains("<audio controls preload=\"metadata\" src=\"/api/public/media/aud-2/download?s=2\">"), "{html}");
        assert!(
            html.contains("[application/pdf media not available]"),
            "{html}"
        );
        // Outside a page's rendering, nothing resolves.
        assert!(value_html(&json!(reference)).contains("media not available"));
        // A reference whose type is a payload stays text.
        let hostile = format!("@@@langfuseMedia:type={IMG}|id=x|source=y@@@");
        assert_inert(&value_html(&json!({ "a": hostile })));
    }
}
