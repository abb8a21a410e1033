//! Token counts of an observation's input and output, as Langfuse's worker counts them for an
//! observation that names a model but was sent neither usage nor cost. Pure: text in, a count
//! out; the encoders are OpenAI's BPE ranks compiled into the binary (`tiktoken-rs`), built once
//! per process on first use and shared by every thread, and recent counts are remembered
//! ([`COUNTS`]).
//!
//! Rules, from Langfuse's behaviour (its worker's `tokenCount`):
//! - A model's tokenizer is its `tokenizerId` with its `tokenizerConfig`. `openai` needs a
//!   `tokenizerModel` that is one of the OpenAI model names its tokenizer library knew when the
//!   shipped models were written (the list in [`encoding_of`]); that name picks the encoding
//!   (`o200k_base` for `gpt-4o`, `cl100k_base` for GPT-4, GPT-3.5 and `text-embedding-ada-002`,
//!   the older ones for older models). Any other name, or no config, counts nothing.
//! - `claude` is Anthropic's legacy tokenizer, which has no well-kept Rust implementation: it
//!   counts nothing here (Langfuse counts with it). Any other tokenizer counts nothing either.
//! - A text is read as JSON when it parses. A list of chat messages (every item an object whose
//!   `role` and `content` are strings, with a string `name` if any) sent to a chat model's
//!   tokenizer is counted per message: `tokensPerMessage`, plus the tokens of each of `content`,
//!   `role`, `name`, `tool_calls`, `function_call`, `toolCalls` and `functionCall` that is present
//!   and not empty, plus `tokensPerName` when `name` is present, and 3 for the reply's priming.
//!   A chat model's config without `tokensPerMessage` and `tokensPerName` counts nothing for such
//!   a list.
//! - Otherwise a text that is a JSON string is counted as that string, any other JSON as its
//!   compact text, and a text that is not JSON as it is.
//! - Special tokens in a text (`<|endoftext|>`) count as one token each, as the encoder allows
//!   them all.
//!
//! Two things are not exactly Langfuse's. A message field that is not a string (a `tool_calls`
//! list) is counted as its compact JSON text: Langfuse hands such values to its encoder as they
//! are, which refuses them, and the observation gets no usage at all. The compact text of JSON is the stored text without the whitespace between tokens, so
//! numbers and escapes keep their written form, and objects the server stored itself keep the
//! key order it wrote them in (Langfuse re-serialises its parse).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{LazyLock, Mutex};

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Texts this long or longer have their counts remembered; shorter ones cost less to count than
/// to look up.
const CACHED_FROM: usize = 64;
/// Counts remembered at most; past it, the memory starts over (about 2 MiB when full).
const CACHED_COUNTS: usize = 65_536;

/// The counts of texts counted recently, by a 64-bit hash of the encoding and the text. The same
/// texts come back all the time: an application's system prompt is in every call it makes, and a
/// conversation's earlier messages are in each later call's input, so a chat message list is
/// mostly counted already. Counting runs at tens of megabytes a second and hashing at gigabytes,
/// so a remembered count costs next to nothing. (Two texts of one hash would share a count; at
/// 2⁻⁶⁴ a pair, that does not happen.)
static COUNTS: LazyLock<Mutex<HashMap<u64, u64>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// One of OpenAI's encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-3 and GPT-2 (`gpt2` has the same ranks).
    R50k,
    P50k,
    P50kEdit,
    Cl100k,
    O200k,
}

impl Encoding {
    /// The process's encoder, built on first use (a fraction of a second; the larger ones take
    /// tens of MiB).
    fn encoder(self) -> &'static CoreBPE {
        match self {
            Encoding::R50k => tiktoken_rs::r50k_base_singleton(),
            Encoding::P50k => tiktoken_rs::p50k_base_singleton(),
            Encoding::P50kEdit => tiktoken_rs::p50k_edit_singleton(),
            Encoding::Cl100k => tiktoken_rs::cl100k_base_singleton(),
            Encoding::O200k => tiktoken_rs::o200k_base_singleton(),
        }
    }

    /// The number of tokens of `text`, special tokens allowed; `None` if the encoder fails.
    /// Counts of texts of [`CACHED_FROM`] bytes or more are remembered (see [`COUNTS`]).
    pub fn count(self, text: &str) -> Option<u64> {
        if text.len() < CACHED_FROM {
            return self.encode_count(text);
        }
        let key = {
            let mut hasher = DefaultHasher::new();
            (self as u8, text).hash(&mut hasher);
            hasher.finish()
        };
        if let Some(count) = COUNTS.lock().expect("token counts").get(&key) {
            return Some(*count);
        }
        let count = self.encode_count(text)?;
        let mut counts = COUNTS.lock().expect("token counts");
        if counts.len() >= CACHED_COUNTS {
            counts.clear();
        }
        counts.insert(key, count);
        Some(count)
    }

    fn encode_count(self, text: &str) -> Option<u64> {
        let encoder = self.encoder();
        // The encoder's pattern runs on a backtracking engine, which reports (or, deep inside a
        // dependency, might panic on) a pathological input: such a text is not counted.
        catch_unwind(AssertUnwindSafe(|| {
            let special: HashSet<&str> = encoder.special_tokens();
            encoder
                .encode(text, &special)
                .ok()
                .map(|(tokens, _)| tokens.len() as u64)
        }))
        .ok()
        .flatten()
    }
}

/// The encoding of an OpenAI model name, for the names Langfuse accepts as `tokenizerModel`.
pub fn encoding_of(model: &str) -> Option<Encoding> {
    use Encoding::*;
    Some(match model {
        "gpt-4o" | "gpt-4o-2024-05-13" => O200k,
        "davinci-002"
        | "babbage-002"
        | "text-embedding-ada-002"
        | "gpt-3.5-turbo"
        | "gpt-35-turbo"
        | "gpt-3.5-turbo-0301"
        | "gpt-3.5-turbo-0613"
        | "gpt-3.5-turbo-1106"
        | "gpt-3.5-turbo-0125"
        | "gpt-3.5-turbo-16k"
        | "gpt-3.5-turbo-16k-0613"
        | "gpt-3.5-turbo-instruct"
        | "gpt-3.5-turbo-instruct-0914"
        | "gpt-4"
        | "gpt-4-0314"
        | "gpt-4-0613"
        | "gpt-4-32k"
        | "gpt-4-32k-0314"
        | "gpt-4-32k-0613"
        | "gpt-4-turbo"
        | "gpt-4-turbo-2024-04-09"
        | "gpt-4-turbo-preview"
        | "gpt-4-1106-preview"
        | "gpt-4-0125-preview"
        | "gpt-4-vision-preview" => Cl100k,
        "text-davinci-003" | "text-davinci-002" | "code-davinci-002" | "code-davinci-001"
        | "code-cushman-002" | "code-cushman-001" | "davinci-codex" | "cushman-codex" => P50k,
        "text-davinci-edit-001" | "code-davinci-edit-001" => P50kEdit,
        "text-davinci-001"
        | "text-curie-001"
        | "text-babbage-001"
        | "text-ada-001"
        | "davinci"
        | "curie"
        | "babbage"
        | "ada"
        | "text-similarity-davinci-001"
        | "text-similarity-curie-001"
        | "text-similarity-babbage-001"
        | "text-similarity-ada-001"
        | "text-search-davinci-doc-001"
        | "text-search-curie-doc-001"
        | "text-search-babbage-doc-001"
        | "text-search-ada-doc-001"
        | "code-search-babbage-code-001"
        | "code-search-ada-code-001"
        | "gpt2" => R50k,
        _ => return None,
    })
}

/// Whether a `tokenizerModel` is one of the chat models whose message lists are counted per
/// message.
fn is_chat_model(model: &str) -> bool {
    matches!(
        model,
        "gpt-4"
            | "gpt-4-0314"
            | "gpt-4-0613"
            | "gpt-4-32k"
            | "gpt-4-32k-0314"
            | "gpt-4-32k-0613"
            | "gpt-3.5-turbo"
            | "gpt-35-turbo"
            | "gpt-3.5-turbo-0301"
            | "gpt-3.5-turbo-0613"
            | "gpt-3.5-turbo-1106"
            | "gpt-3.5-turbo-16k"
            | "gpt-3.5-turbo-16k-0613"
            | "gpt-4-1106-preview"
            | "gpt-4-vision-preview"
            | "gpt-4o-2024-05-13"
            | "gpt-4o"
    )
}

/// How a tokenizer counts a list of chat messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chat {
    /// Not a chat model: a message list is counted as JSON text.
    No,
    /// A chat model with its per-message and per-name tokens.
    Messages { per_message: i64, per_name: i64 },
    /// A chat model whose config lacks them: a message list is not counted.
    Unconfigured,
}

/// A model's tokenizer, compiled from its `tokenizerId` and `tokenizerConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokenizer {
    encoding: Encoding,
    chat: Chat,
}

/// The message fields whose values are counted (OpenAI's chat request fields).
const COUNTED_FIELDS: [&str; 7] = [
    "content",
    "role",
    "name",
    "tool_calls",
    "function_call",
    "toolCalls",
    "functionCall",
];

/// Tokens that prime every reply: `<|start|>assistant<|message|>`.
const REPLY_PRIMING: i64 = 3;

impl Tokenizer {
    /// The tokenizer of a model; `None` when it counts nothing (no tokenizer, `claude`, an
    /// unknown one, or a config that does not name a known OpenAI model).
    pub fn of(tokenizer_id: Option<&str>, config: Option<&Value>) -> Option<Tokenizer> {
        if tokenizer_id? != "openai" {
            return None;
        }
        let config = config?.as_object()?;
        let model = config.get("tokenizerModel")?.as_str()?;
        let encoding = encoding_of(model)?;
        let chat = if !is_chat_model(model) {
            Chat::No
        } else {
            let integer = |key: &str| config.get(key).and_then(Value::as_i64);
            match (integer("tokensPerMessage"), integer("tokensPerName")) {
                (Some(per_message), Some(per_name)) => Chat::Messages {
                    per_message,
                    per_name,
                },
                _ => Chat::Unconfigured,
            }
        };
        Some(Tokenizer { encoding, chat })
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The tokens of a stored input or output; `None` when it is not counted.
    pub fn count(&self, text: &str) -> Option<u64> {
        let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r']);
        match trimmed.as_bytes().first() {
            // A list may be chat messages: read it whole.
            Some(b'[') => match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(items)) if is_chat_messages(&items) && self.chat != Chat::No => {
                    self.count_messages(&items)
                }
                Ok(_) => self.encoding.count(&compact(text)),
                Err(_) => self.encoding.count(text),
            },
            Some(b'"') => match serde_json::from_str::<String>(text) {
                Ok(s) => self.encoding.count(&s),
                Err(_) => self.encoding.count(text),
            },
            // Other JSON: only its validity matters, which is checked without building it.
            Some(b'{' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                    Ok(_) => self.encoding.count(&compact(text)),
                    Err(_) => self.encoding.count(text),
                }
            }
            _ => self.encoding.count(text),
        }
    }

    fn count_messages(&self, messages: &[Value]) -> Option<u64> {
        let Chat::Messages {
            per_message,
            per_name,
        } = self.chat
        else {
            return None;
        };
        let mut total: i64 = 0;
        for message in messages {
            let Value::Object(fields) = message else {
                return None;
            };
            total += per_message;
            for (key, value) in fields {
                if COUNTED_FIELDS.contains(&key.as_str()) && truthy(value) {
                    let tokens = match value {
                        Value::String(s) => self.encoding.count(s),
                        other => self.encoding.count(&other.to_string()),
                    };
                    total += tokens.map_or(0, |t| t as i64);
                }
                if key == "name" {
                    total += per_name;
                }
            }
        }
        Some((total + REPLY_PRIMING).max(0) as u64)
    }
}

/// Every item an object with string `role` and `content`, and a string `name` if it has one.
/// (An empty list is one, as in Langfuse.)
fn is_chat_messages(items: &[Value]) -> bool {
    items.iter().all(|item| {
        item.as_object().is_some_and(|m| {
            m.get("role").is_some_and(Value::is_string)
                && m.get("content").is_some_and(Value::is_string)
                && m.get("name").is_none_or(Value::is_string)
        })
    })
}

/// JavaScript's truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Valid JSON text without the whitespace between its tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
            in_string = c == '"';
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn openai(config: Value) -> Tokenizer {
        Tokenizer::of(Some("openai"), Some(&config)).expect("a tokenizer")
    }

    fn gpt_4o() -> Tokenizer {
        openai(json!({"tokenizerModel": "gpt-4o", "tokensPerMessage": 3, "tokensPerName": 1}))
    }

    fn gpt_4() -> Tokenizer {
        openai(json!({"tokenizerModel": "gpt-4", "tokensPerMessage": 3, "tokensPerName": 1}))
    }

    // Reference counts below are those of OpenAI's `tiktoken` 0.14 (Python) over the same ranks,
    // whose files this crate embeds (their SHA-256 match the ones `tiktoken` checks).

    #[test]
    fn strings_count_as_openais_encodings_do() {
        for (text, o200k, cl100k) in [
            ("tiktoken is great!", 6, 6),
            ("", 0, 0),
            ("Hello, world!", 4, 4),
            ("antidisestablishmentarianism", 6, 6),
            ("お誕生日おめでとう", 8, 9),
            ("    indented\n\tcode();\r\n", 6, 6),
            ("naïve café — “quotes” 🎉🎉", 12, 14),
            ("1234567890 3.14159", 9, 9),
            ("<|endoftext|> is special", 3, 3),
        ] {
            assert_eq!(Encoding::O200k.count(text), Some(o200k), "o200k {text:?}");
            assert_eq!(
                Encoding::Cl100k.count(text),
                Some(cl100k),
                "cl100k {text:?}"
            );
            assert_eq!(gpt_4o().count(text), Some(o200k), "gpt-4o {text:?}");
            assert_eq!(gpt_4().count(text), Some(cl100k), "gpt-4 {text:?}");
        }
    }

    /// The example of OpenAI's cookbook "How to count tokens with tiktoken": its function gives
    /// these counts (the API agreed), with 3 tokens per message and 1 per name.
    fn cookbook_messages() -> Value {
        json!([
            {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
            {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
            {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
            {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
            {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
            {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
        ])
    }

    #[test]
    fn chat_messages_count_per_message() {
        let messages = cookbook_messages().to_string();
        assert_eq!(gpt_4o().count(&messages), Some(124));
        assert_eq!(gpt_4().count(&messages), Some(129));
        // GPT-3.5's first snapshot: 4 per message, and a name replaces the role.
        let old = openai(json!({"tokenizerModel": "gpt-3.5-turbo-0301",
                                "tokensPerMessage": 4, "tokensPerName": -1}));
        assert_eq!(old.count(&messages), Some(127));
        // Whitespace and key order do not matter to a message list.
        let spaced = serde_json::to_string_pretty(&cookbook_messages()).unwrap();
        assert_eq!(gpt_4o().count(&spaced), Some(124));

        let short = r#"[{"role":"user","content":"Hi"}]"#;
        // 3 + "user" 1 + "Hi" 1 + 3.
        assert_eq!(gpt_4o().count(short), Some(8));
        // An empty list is a list of no messages: the priming alone.
        assert_eq!(gpt_4o().count("[]"), Some(3));
        // An empty field is not counted; a name costs its tokens and tokensPerName even empty.
        assert_eq!(
            gpt_4o().count(r#"[{"role":"user","content":"","name":""}]"#),
            Some(3 + 1 + 1 + 3)
        );
        // Fields other than OpenAI's are not counted.
        assert_eq!(
            gpt_4o().count(r#"[{"role":"user","content":"Hi","id":"msg_123456789"}]"#),
            Some(8)
        );
        // A tool call list is counted as its JSON text.
        let calls = json!([{"id": "call_1", "type": "function",
                            "function": {"name": "lookup", "arguments": "{}"}}]);
        let with_calls = json!([{"role": "assistant", "content": "", "tool_calls": calls}]);
        assert_eq!(
            gpt_4o().count(&with_calls.to_string()),
            Some(3 + 1 + Encoding::O200k.count(&calls.to_string()).unwrap() + 3)
        );
    }

    #[test]
    fn a_list_that_is_not_chat_messages_counts_as_json_text() {
        // `content` that is not a string: the whole text, compact.
        let parts = r#"[ {"role": "user", "content": [{"type": "text", "text": "Hi"}]} ]"#;
        let compact_parts = r#"[{"role":"user","content":[{"type":"text","text":"Hi"}]}]"#;
        assert_eq!(gpt_4o().count(parts), Encoding::O200k.count(compact_parts));
        assert_eq!(Encoding::O200k.count(compact_parts), Some(19));
        // A name that is not a string.
        let nameless = r#"[{"role":"user","content":"Hi","name":null}]"#;
        assert_eq!(gpt_4o().count(nameless), Encoding::O200k.count(nameless));
        // A non-chat tokenizer counts a message list as text.
        let ada = openai(json!({"tokenizerModel": "text-embedding-ada-002"}));
        let messages = r#"[{"role":"user","content":"Hi"}]"#;
        assert_eq!(ada.count(messages), Encoding::Cl100k.count(messages));
        assert_eq!(ada.count(messages), Some(11));
        // A chat model without its per-message tokens does not count message lists, only text.
        let bare = openai(json!({"tokenizerModel": "gpt-4o"}));
        assert_eq!(bare.count(messages), None);
        assert_eq!(bare.count("Hi"), Some(1));
    }

    #[test]
    fn json_counts_as_its_compact_text_and_strings_as_themselves() {
        let object = "{\n  \"question\": \"What is the capital of France?\",\n  \"k\": 3\n}";
        let compact_object = r#"{"question":"What is the capital of France?","k":3}"#;
        assert_eq!(compact(object), compact_object);
        assert_eq!(
            gpt_4o().count(object),
            Encoding::O200k.count(compact_object)
        );
        assert_eq!(Encoding::O200k.count(compact_object), Some(15));
        // Whitespace inside strings stays.
        assert_eq!(compact(r#"{ "a b" : "c \" d" }"#), r#"{"a b":"c \" d"}"#);
        // A JSON string is its content.
        assert_eq!(gpt_4o().count(r#""Hello, world!""#), Some(4));
        // Not JSON: as it is.
        assert_eq!(
            gpt_4o().count("{not json"),
            Encoding::O200k.count("{not json")
        );
        assert_eq!(gpt_4o().count("true"), Some(1));
    }

    #[test]
    fn a_remembered_count_is_the_count() {
        let text = "A system prompt long enough to be remembered: be brief, be kind, be right.";
        assert!(text.len() >= CACHED_FROM);
        let first = Encoding::O200k.count(text);
        assert_eq!(first, Encoding::O200k.encode_count(text));
        assert_eq!(Encoding::O200k.count(text), first);
        // Each encoding remembers its own count.
        assert_eq!(
            Encoding::Cl100k.count(text),
            Encoding::Cl100k.encode_count(text)
        );
    }

    #[test]
    fn only_known_openai_models_have_a_tokenizer() {
        assert_eq!(Tokenizer::of(None, None), None);
        assert_eq!(Tokenizer::of(Some("claude"), None), None);
        assert_eq!(Tokenizer::of(Some("llama"), Some(&json!({}))), None);
        assert_eq!(Tokenizer::of(Some("openai"), None), None);
        assert_eq!(
            Tokenizer::of(Some("openai"), Some(&json!({"tokenizerModel": "gpt-5"}))),
            None
        );
        assert_eq!(
            Tokenizer::of(Some("openai"), Some(&json!({"tokenizerModel": 4}))),
            None
        );
        let davinci = openai(json!({"tokenizerModel": "text-davinci-003"}));
        assert_eq!(davinci.encoding(), Encoding::P50k);
        let curie = openai(json!({"tokenizerModel": "text-curie-001"}));
        assert_eq!(curie.encoding(), Encoding::R50k);
        assert_eq!(gpt_4().encoding(), Encoding::Cl100k);
        assert_eq!(gpt_4o().encoding(), Encoding::O200k);
    }

    #[test]
    fn every_shipped_openai_tokenizer_config_is_understood() {
        let shipped: Value =
            serde_json::from_str(include_str!("../../sql/models/default-models.json")).unwrap();
        let mut openai = 0;
        for model in shipped["models"].as_array().unwrap() {
            let id = model["tokenizer"].as_str();
            let tokenizer = Tokenizer::of(id, model.get("tokenizerConfig"));
            if id == Some("openai") {
                openai += 1;
                assert!(tokenizer.is_some(), "{}", model["name"]);
            } else {
                assert!(tokenizer.is_none(), "{}", model["name"]);
            }
        }
        assert!(openai > 50, "{openai}");
    }
}
