//! What instrumented LLM applications record per request, independent of how it is sent: traces
//! of a root and two to six observations (retrievals, generations with chat messages, tool calls,
//! guardrails), nested as applications nest them, with the metadata, model parameters, usage and
//! scores real instrumentations attach. Each generator renders these into its own wire format.
//!
//! Four applications take turns, each with its own system prompt (the same in all its traces, as
//! in a real deployment): a retrieval-augmented answerer, a support agent calling tools, a chat
//! assistant behind a moderation check, and a ticket summariser returning JSON.

use serde_json::{json, Map, Value};

use super::prose::{Prose, Rng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Span,
    Agent,
    Retriever,
    Generation,
    Tool,
    Guardrail,
}

impl Kind {
    /// The Langfuse observation type, as the SDKs write it.
    pub fn langfuse_type(self) -> &'static str {
        match self {
            Kind::Span => "span",
            Kind::Agent => "agent",
            Kind::Retriever => "retriever",
            Kind::Generation => "generation",
            Kind::Tool => "tool",
            Kind::Guardrail => "guardrail",
        }
    }

    /// OpenInference's span kind.
    pub fn openinference_kind(self) -> &'static str {
        match self {
            Kind::Span => "CHAIN",
            Kind::Agent => "AGENT",
            Kind::Retriever => "RETRIEVER",
            Kind::Generation => "LLM",
            Kind::Tool => "TOOL",
            Kind::Guardrail => "GUARDRAIL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ToolCall {
    pub id: String,
    pub name: &'static str,
    /// JSON text, as models return it.
    pub arguments: String,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the call it answers.
    pub tool_call_id: Option<String>,
}

impl Message {
    fn new(role: &'static str, content: String) -> Message {
        Message {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The message as OpenAI's chat API has it (and the SDKs record it).
    pub fn json(&self) -> Value {
        let mut message = Map::new();
        message.insert("role".into(), json!(self.role));
        if self.content.is_empty() && !self.tool_calls.is_empty() {
            message.insert("content".into(), Value::Null);
        } else {
            message.insert("content".into(), json!(self.content));
        }
        if !self.tool_calls.is_empty() {
            let calls: Vec<Value> = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        if let Some(id) = &self.tool_call_id {
            message.insert("tool_call_id".into(), json!(id));
        }
        Value::Object(message)
    }
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub model: &'static str,
    pub provider: &'static str,
    /// Model parameters as the caller set them (temperature, max_tokens, ...).
    pub parameters: Map<String, Value>,
    pub messages: Vec<Message>,
    pub reply: Message,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Time to the first token, from the observation's start.
    pub first_token_ms: u64,
    /// A managed prompt's name and version.
    pub prompt: Option<(&'static str, u64)>,
    pub cost_usd: Option<(f64, f64)>,
    pub finish_reason: &'static str,
}

impl Generation {
    pub fn input_json(&self) -> Value {
        Value::Array(self.messages.iter().map(Message::json).collect())
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

#[derive(Debug, Clone)]
pub struct Observation {
    pub kind: Kind,
    pub name: String,
    /// Index of the parent in the trace's observations; only the root has none.
    pub parent: Option<usize>,
    /// Times from the start of the trace.
    pub start_ms: u64,
    pub end_ms: u64,
    /// Input and output as the application passed them: a string is sent as it is, anything
    /// else as JSON. A generation's are its messages and its reply.
    pub input: Value,
    pub output: Value,
    pub metadata: Vec<(String, Value)>,
    pub generation: Option<Generation>,
    /// A level of WARNING with this status message.
    pub warning: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ScoreValue {
    Numeric(f64),
    Boolean(bool),
    Categorical(&'static str),
}

#[derive(Debug, Clone)]
pub struct Score {
    pub name: &'static str,
    pub value: ScoreValue,
    pub comment: Option<String>,
    /// The observation scored, else the whole trace.
    pub observation: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Trace {
    pub name: &'static str,
    pub user_id: String,
    pub session_id: String,
    pub tags: Vec<&'static str>,
    pub release: &'static str,
    pub version: &'static str,
    pub metadata: Vec<(String, Value)>,
    /// The root first, every parent before its children.
    pub observations: Vec<Observation>,
    pub scores: Vec<Score>,
    /// Whether an OpenInference instrumentation of the model client, not the Langfuse SDK,
    /// records this trace's generations (OTLP only; the batch API has no such thing).
    pub openinference_generations: bool,
}

impl Trace {
    pub fn duration_ms(&self) -> u64 {
        self.observations
            .iter()
            .map(|o| o.end_ms)
            .max()
            .unwrap_or(0)
    }
}

/// `value` as an instrumentation records an input or output: strings as they are, anything
/// else as JSON.
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `count` traces from `seed`, with inputs and outputs of about `io_bytes` each on average.
pub fn traces(seed: u64, count: usize, io_bytes: usize) -> Vec<Trace> {
    let prose = Prose::new();
    let apps: Vec<App> = (0..4)
        .map(|i| App::new(&prose, &mut Rng::new(seed ^ (0xa99 + i)), i, io_bytes))
        .collect();
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let app = &apps[i % apps.len()];
            let mut builder = TraceBuilder {
                prose: &prose,
                rng: &mut rng,
                app,
                bytes: io_bytes as f64,
                observations: Vec::new(),
                topic: Vec::new(),
            };
            builder.build()
        })
        .collect()
}

/// What stays the same across an application's traces.
struct App {
    kind: AppKind,
    system_prompt: String,
    tags: Vec<&'static str>,
    release: &'static str,
}

#[derive(Clone, Copy)]
enum AppKind {
    Answerer,
    SupportAgent,
    Chat,
    Summariser,
}

impl App {
    fn new(prose: &Prose, rng: &mut Rng, index: u64, io_bytes: usize) -> App {
        let (kind, role, tags, release) = match index {
            0 => (
                AppKind::Answerer,
                "a documentation assistant",
                vec!["rag", "docs"],
                "2025.06.2",
            ),
            1 => (
                AppKind::SupportAgent,
                "a customer support agent",
                vec!["agent", "support"],
                "2025.06.1",
            ),
            2 => (
                AppKind::Chat,
                "a friendly chat assistant",
                vec!["chat"],
                "1.42.0",
            ),
            _ => (
                AppKind::Summariser,
                "a ticket triage assistant",
                vec!["batch", "tickets"],
                "0.9.3",
            ),
        };
        let company = prose.title(rng, 1);
        let mut system_prompt =
            format!("You are {role} for {company}. Answer in the language of the user. ");
        let rules = prose.text(rng, io_bytes / 2);
        system_prompt.push_str(&rules);
        App {
            kind,
            system_prompt,
            tags,
            release,
        }
    }
}

const MODELS: &[(&str, &str, f64, f64)] = &[
    ("gpt-4o-mini", "openai", 0.15, 0.6),
    ("gpt-4o-2024-08-06", "openai", 2.5, 10.0),
    ("gpt-4.1-mini", "openai", 0.4, 1.6),
    ("claude-3-5-sonnet-20241022", "anthropic", 3.0, 15.0),
    ("claude-3-5-haiku-20241022", "anthropic", 0.8, 4.0),
];

const TOOLS: &[&str] = &[
    "lookup_order",
    "search_knowledge_base",
    "get_account",
    "create_ticket",
    "check_refund_eligibility",
];

struct TraceBuilder<'a> {
    prose: &'a Prose,
    rng: &'a mut Rng,
    app: &'a App,
    /// The mean size of an input or output.
    bytes: f64,
    observations: Vec<Observation>,
    topic: Vec<&'static str>,
}

impl TraceBuilder<'_> {
    fn build(&mut self) -> Trace {
        self.topic = self.prose.topic(self.rng);
        let user = self.rng.between(1, 5_000);
        let scores_wanted = self.rng.unit();
        match self.app.kind {
            AppKind::Answerer => self.answerer(),
            AppKind::SupportAgent => self.support_agent(),
            AppKind::Chat => self.chat(),
            AppKind::Summariser => self.summariser(),
        }
        let scores = self.scores(scores_wanted);
        let region = *self.rng.pick(&["eu-west-1", "us-east-1", "ap-southeast-2"]);
        let plan = *self.rng.pick(&["free", "pro", "enterprise"]);
        Trace {
            name: self.root_name(),
            user_id: format!("user_{user:05}"),
            session_id: format!("sess_{:016x}", self.rng.next_u64()),
            tags: self.app.tags.clone(),
            release: self.app.release,
            version: "v3",
            metadata: vec![
                ("tenant".into(), json!(self.prose.identifier(self.rng, 1))),
                ("plan".into(), json!(plan)),
                ("region".into(), json!(region)),
                ("feature_flags".into(), json!(["streaming", "new-ranker"])),
            ],
            observations: std::mem::take(&mut self.observations),
            scores,
            openinference_generations: self.rng.chance(0.3),
        }
    }

    fn root_name(&self) -> &'static str {
        match self.app.kind {
            AppKind::Answerer => "answer-question",
            AppKind::SupportAgent => "support-agent",
            AppKind::Chat => "chat",
            AppKind::Summariser => "summarize-ticket",
        }
    }

    /// About `share` of the mean size, give or take a half.
    fn size(&mut self, share: f64) -> usize {
        (self.bytes * share * (0.5 + self.rng.unit())).max(16.0) as usize
    }

    fn text(&mut self, share: f64) -> String {
        let bytes = self.size(share);
        self.prose.text_on(self.rng, &self.topic, bytes)
    }

    fn question(&mut self) -> String {
        self.prose.question(self.rng)
    }

    /// Adds an observation lasting `ms` from `start_ms` and returns its index.
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &mut self,
        kind: Kind,
        name: &str,
        parent: Option<usize>,
        start_ms: u64,
        ms: u64,
        input: Value,
        output: Value,
    ) -> usize {
        let mut metadata = Vec::new();
        if self.rng.chance(0.5) {
            metadata.push((
                "request_id".into(),
                json!(format!("req_{:012x}", self.rng.next_u64() >> 16)),
            ));
        }
        let warning = (kind != Kind::Generation && self.rng.chance(0.03))
            .then(|| format!("Retried after a timeout: {}", self.prose.title(self.rng, 2)));
        self.observations.push(Observation {
            kind,
            name: name.to_string(),
            parent,
            start_ms,
            end_ms: start_ms + ms.max(1),
            input,
            output,
            metadata,
            generation: None,
            warning,
        });
        self.observations.len() - 1
    }

    /// A model call: the app's system prompt, `history`, then `user`; the reply is `reply`.
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &mut self,
        name: &str,
        parent: usize,
        start_ms: u64,
        mut messages: Vec<Message>,
        reply: Message,
        prompt: Option<&'static str>,
    ) -> usize {
        let &(model, provider, input_price, output_price) = self.rng.pick(MODELS);
        messages.insert(0, Message::new("system", self.app.system_prompt.clone()));
        let input_chars: usize = messages
            .iter()
            .map(|m| {
                m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.arguments.len())
                        .sum::<usize>()
            })
            .sum();
        let output_chars = reply.content.len()
            + reply
                .tool_calls
                .iter()
                .map(|c| c.arguments.len() + 20)
                .sum::<usize>();
        let prompt_tokens = (input_chars / 4) as u64 + 7 * messages.len() as u64;
        let completion_tokens = (output_chars / 4).max(1) as u64;
        let first_token_ms = self.rng.between(180, 900);
        let ms = first_token_ms + completion_tokens * self.rng.between(8, 25);
        let mut parameters = Map::new();
        parameters.insert(
            "temperature".into(),
            json!(*self.rng.pick(&[0.0, 0.2, 0.3, 0.7, 1.0])),
        );
        parameters.insert(
            "max_tokens".into(),
            json!(*self.rng.pick(&[512, 1024, 2048, 4096])),
        );
        if self.rng.chance(0.4) {
            parameters.insert("top_p".into(), json!(1.0));
        }
        if self.rng.chance(0.3) {
            parameters.insert("stream".into(), json!(true));
        }
        let finish_reason = if reply.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        let generation = Generation {
            model,
            provider,
            parameters,
            reply: reply.clone(),
            prompt_tokens,
            completion_tokens,
            first_token_ms,
            prompt: prompt.map(|p| (p, self.rng.between(1, 12))),
            cost_usd: self.rng.chance(0.5).then(|| {
                (
                    prompt_tokens as f64 * input_price / 1e6,
                    completion_tokens as f64 * output_price / 1e6,
                )
            }),
            finish_reason,
            messages,
        };
        let index = self.observe(
            Kind::Generation,
            name,
            Some(parent),
            start_ms,
            ms,
            generation.input_json(),
            reply.json(),
        );
        self.observations[index]
            .metadata
            .push(("provider".into(), json!(provider)));
        self.observations[index].generation = Some(generation);
        index
    }

    fn reply(&mut self, share: f64) -> Message {
        let mut content = String::new();
        if self.rng.chance(0.5) {
            content.push_str(self.rng.pick::<&str>(&[
                "Sure! ",
                "Great question. ",
                "Here is what I found. ",
                "Thanks for reaching out. ",
            ]));
        }
        content.push_str(&self.text(share));
        if self.rng.chance(0.5) {
            content.push_str(self.rng.pick::<&str>(&[
                "\n\nLet me know if you have any other questions.",
                "\n\nIs there anything else I can help you with?",
                "\n\nI hope this helps!",
            ]));
        }
        Message::new("assistant", content)
    }

    /// Earlier turns of the conversation.
    fn history(&mut self, turns: u64) -> Vec<Message> {
        let mut history = Vec::new();
        for _ in 0..turns {
            history.push(Message::new("user", self.question()));
            history.push(self.reply(0.4));
        }
        history
    }

    fn documents(&mut self, count: u64) -> Vec<Value> {
        (0..count)
            .map(|_| {
                json!({
                    "id": format!("doc_{:08x}", self.rng.next_u64() as u32),
                    "source": format!("https://docs.example.com/{}/{}",
                        self.prose.rare_word(self.rng), self.prose.identifier(self.rng, 2)),
                    "score": (600.0 + self.rng.unit() * 390.0).round() / 1000.0,
                    "text": self.text(0.4),
                })
            })
            .collect()
    }

    fn answerer(&mut self) {
        let question = self.question();
        let root = self.observe(
            Kind::Span,
            "answer-question",
            None,
            0,
            0,
            json!({"args": [question], "kwargs": {}}),
            Value::Null,
        );
        let k = self.rng.between(3, 5);
        let documents = self.documents(k);
        let retrieval_ms = self.rng.between(40, 300);
        let retriever = self.observe(
            Kind::Retriever,
            "retrieve-documents",
            Some(root),
            2,
            retrieval_ms,
            json!({"query": question, "top_k": k}),
            Value::Array(documents.clone()),
        );
        self.observations[retriever]
            .metadata
            .push(("index".into(), json!("kb-articles-v3")));
        let mut at = 2 + retrieval_ms;
        if self.rng.chance(0.4) {
            let ranked: Vec<Value> = documents
                .iter()
                .map(|d| json!({"id": d["id"], "relevance": d["score"]}))
                .collect();
            let ms = self.rng.between(20, 120);
            self.observe(
                Kind::Span,
                "rerank",
                Some(root),
                at,
                ms,
                json!({"query": question, "documents": k}),
                Value::Array(ranked),
            );
            at += ms;
        }
        let context: Vec<String> = documents
            .iter()
            .map(|d| d["text"].as_str().unwrap_or_default().to_string())
            .collect();
        let user = Message::new(
            "user",
            format!(
                "Context:\n{}\n\nQuestion: {question}",
                context.join("\n---\n")
            ),
        );
        let reply = self.reply(1.3);
        let answer = reply.content.clone();
        let generation = self.generate(
            "generate-answer",
            root,
            at,
            vec![user],
            reply,
            Some("docs-answer"),
        );
        at = self.observations[generation].end_ms;
        if self.rng.chance(0.3) {
            let citations: Vec<Value> = documents.iter().map(|d| d["source"].clone()).collect();
            self.observe(
                Kind::Span,
                "format-citations",
                Some(root),
                at,
                3,
                json!({"answer_chars": answer.len()}),
                json!({"citations": citations}),
            );
            at += 3;
        }
        self.close_root(root, at, json!(answer));
    }

    fn support_agent(&mut self) {
        let message = self.question();
        let root = self.observe(
            Kind::Agent,
            "support-agent",
            None,
            0,
            0,
            json!({"message": message, "channel": "web"}),
            Value::Null,
        );
        let history_turns = self.rng.between(0, 2);
        let history = self.history(history_turns);
        let step = self.observe(
            Kind::Span,
            "agent-step",
            Some(root),
            1,
            0,
            json!({"step": 1}),
            Value::Null,
        );
        let mut at = 2;
        let tool = *self.rng.pick(TOOLS);
        let call = ToolCall {
            id: format!("call_{:016x}", self.rng.next_u64()),
            name: tool,
            arguments: self.prose.json_object(self.rng, 2).to_string(),
        };
        let mut messages = history.clone();
        messages.push(Message::new("user", message.clone()));
        let plan_reply = Message {
            tool_calls: vec![call.clone()],
            ..Message::new("assistant", String::new())
        };
        let plan = self.generate("plan", step, at, messages.clone(), plan_reply.clone(), None);
        at = self.observations[plan].end_ms;
        let fields = self.rng.between(6, 12) as usize;
        let result = self.prose.json_object(self.rng, fields);
        let ms = self.rng.between(30, 600);
        let tool_index = self.observe(
            Kind::Tool,
            tool,
            Some(step),
            at,
            ms,
            serde_json::from_str(&call.arguments).unwrap_or(Value::Null),
            result.clone(),
        );
        at = self.observations[tool_index].end_ms;
        self.observations[step].end_ms = at;
        self.observations[step].output = json!({"tool": tool, "ok": true});
        messages.push(plan_reply);
        messages.push(Message {
            tool_call_id: Some(call.id.clone()),
            ..Message::new("tool", result.to_string())
        });
        let reply = self.reply(1.2);
        let answer = reply.content.clone();
        let respond = self.generate("respond", root, at, messages, reply, Some("support-reply"));
        at = self.observations[respond].end_ms;
        if self.rng.chance(0.4) {
            let ms = self.rng.between(50, 200);
            self.observe(
                Kind::Guardrail,
                "check-policy",
                Some(root),
                at,
                ms,
                json!({"text": answer}),
                json!({"allowed": true, "violations": []}),
            );
            at += ms;
        }
        self.close_root(root, at, json!(answer));
    }

    fn chat(&mut self) {
        let message = self.question();
        let root = self.observe(
            Kind::Span,
            "chat",
            None,
            0,
            0,
            json!(message.clone()),
            Value::Null,
        );
        let ms = self.rng.between(30, 150);
        self.observe(
            Kind::Guardrail,
            "moderate-input",
            Some(root),
            1,
            ms,
            json!(message.clone()),
            json!({"flagged": false, "categories": {"harassment": false, "self-harm": false,
                   "violence": false}, "scores": {"harassment": 0.0012, "violence": 0.0004}}),
        );
        let mut at = 1 + ms;
        let turns = self.rng.between(1, 4);
        let mut messages = self.history(turns);
        messages.push(Message::new("user", message));
        let reply = self.reply(1.4);
        let answer = reply.content.clone();
        let generation = self.generate("chat-completion", root, at, messages, reply, None);
        at = self.observations[generation].end_ms;
        if self.rng.chance(0.5) {
            self.observe(
                Kind::Span,
                "save-history",
                Some(root),
                at,
                4,
                json!({"turns": turns + 1}),
                json!({"ok": true}),
            );
            at += 4;
        }
        self.close_root(root, at, json!(answer));
    }

    fn summariser(&mut self) {
        let ticket_id = format!("TCK-{}", self.rng.between(10_000, 99_999));
        let root = self.observe(
            Kind::Span,
            "summarize-ticket",
            None,
            0,
            0,
            json!({"ticket_id": ticket_id}),
            Value::Null,
        );
        let ticket = self.text(1.2);
        let ms = self.rng.between(10, 80);
        self.observe(
            Kind::Span,
            "load-ticket",
            Some(root),
            1,
            ms,
            json!({"ticket_id": ticket_id}),
            json!(ticket.clone()),
        );
        let mut at = 1 + ms;
        let fields = self.prose.json_object(self.rng, 8);
        let extract_reply = Message::new("assistant", fields.to_string());
        let extract = self.generate(
            "extract-fields",
            root,
            at,
            vec![Message::new("user", ticket.clone())],
            extract_reply,
            Some("ticket-fields"),
        );
        at = self.observations[extract].end_ms;
        let reply = self.reply(1.0);
        let summary = reply.content.clone();
        let write = self.generate(
            "write-summary",
            root,
            at,
            vec![Message::new(
                "user",
                format!("Ticket:\n{ticket}\n\nFields: {fields}"),
            )],
            reply,
            None,
        );
        at = self.observations[write].end_ms;
        if self.rng.chance(0.5) {
            let ms = self.rng.between(40, 250);
            self.observe(
                Kind::Tool,
                "update-crm",
                Some(root),
                at,
                ms,
                json!({"ticket_id": ticket_id, "fields": fields}),
                json!({"status": "ok", "updated": 6}),
            );
            at += ms;
        }
        self.close_root(
            root,
            at,
            json!({"ticket_id": ticket_id, "summary": summary}),
        );
    }

    fn close_root(&mut self, root: usize, end_ms: u64, output: Value) {
        self.observations[root].end_ms = end_ms + 1;
        self.observations[root].output = output;
    }

    fn scores(&mut self, roll: f64) -> Vec<Score> {
        let mut scores = Vec::new();
        if roll < 0.3 {
            scores.push(Score {
                name: "user-feedback",
                value: ScoreValue::Numeric(self.rng.between(1, 5) as f64),
                comment: self.rng.chance(0.3).then(|| self.prose.question(self.rng)),
                observation: None,
            });
        }
        if (0.2..0.4).contains(&roll) {
            scores.push(Score {
                name: "helpful",
                value: ScoreValue::Boolean(self.rng.chance(0.8)),
                comment: None,
                observation: None,
            });
        }
        let generation = self
            .observations
            .iter()
            .rposition(|o| o.kind == Kind::Generation);
        if roll > 0.75 {
            scores.push(Score {
                name: "faithfulness",
                value: ScoreValue::Numeric((self.rng.unit() * 100.0).round() / 100.0),
                comment: Some(self.prose.question(self.rng)),
                observation: generation,
            });
        }
        if roll > 0.9 {
            let topic = *self.rng.pick(&["billing", "bug", "how-to"]);
            scores.push(Score {
                name: "topic",
                value: ScoreValue::Categorical(topic),
                comment: None,
                observation: None,
            });
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_have_a_root_and_two_to_six_children_each_after_its_parent() {
        for trace in traces(5, 200, 1000) {
            let children = trace.observations.len() - 1;
            assert!((2..=6).contains(&children), "{children}");
            assert!(trace.observations[0].parent.is_none());
            for (i, o) in trace.observations.iter().enumerate().skip(1) {
                let parent = o.parent.expect("a parent");
                assert!(parent < i);
                let p = &trace.observations[parent];
                assert!(o.start_ms >= p.start_ms && o.end_ms <= p.end_ms);
            }
        }
    }

    #[test]
    fn inputs_and_outputs_are_about_the_size_asked_on_average() {
        let traces = traces(9, 400, 1000);
        let observations: Vec<&Observation> = traces.iter().flat_map(|t| &t.observations).collect();
        let mean = |f: &dyn Fn(&Observation) -> usize| {
            observations.iter().map(|o| f(o)).sum::<usize>() as f64 / observations.len() as f64
        };
        let input = mean(&|o| as_text(&o.input).len());
        let output = mean(&|o| as_text(&o.output).len());
        assert!((700.0..1500.0).contains(&input), "{input}");
        assert!((700.0..1500.0).contains(&output), "{output}");
    }
}
