//! Load generator for `POST /api/public/ingestion`, with a report.
//!
//! Posts batches of whole traces, at least `--batch` events each, from `--concurrency`
//! connections for `--seconds`, then reports: events/s accepted, request latency p50/p99/max,
//! the answers by status, the bytes per event (raw, as sent, and as a client deflating whole
//! batches would send them), the traces, observations and scores landed in ClickHouse against
//! those accepted (every accepted entity is counted), and accept-to-queryable lag p50/p99
//! (measured on marker traces, looked for in the table the read API answers from). Run by
//! `scripts/bench-ingestion.sh`, which starts the processes and adds their peak memory.
//!
//! The default payload (`--payload realistic`) is what the Langfuse Python SDK 2.x sends for an
//! application traced with its decorator and OpenAI integration (`common/workload.rs`): per
//! trace a `trace-create` with input, user, session, tags and metadata, a `span-create` and
//! `span-update` or `generation-create` and `generation-update` (model, model parameters,
//! prompt, chat messages in, the assistant's message out, usage) per observation, a final
//! `trace-create` with the output, and sometimes scores; natural-language text of about
//! `--io-bytes` per input and output. The body is plain JSON, as the SDK sends it, unless
//! `--gzip`. A pool of `--pool-traces` traces is made into batches of whole traces, each encoded
//! (and deflated) once at start with holes for ids and times (`common/spliced_gzip.rs`); each
//! request sends the next batch with its holes filled, so the generator spends almost no CPU per
//! request. `--without-usage` leaves usage and cost out of the generations, so that the worker
//! counts their tokens. `--payload synthetic` sends what earlier runs sent: a `trace-create` and `--batch` - 1
//! `span-create`s whose input repeats one letter. `--describe` prints what the payload looks like
//! and exits.
//!
//!     cargo run --release --example ingest_load -- --url http://127.0.0.1:3000 \
//!         --public-key pk-lf-bench --secret-key sk-lf-bench --seconds 20

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use common::prose::mix64;
use common::spliced_gzip::{Segment, Template};
use common::workload::{self, as_text, Kind, ScoreValue, Trace};
use common::{percentile, Answers};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Payload {
    /// Traces of LLM applications as the Python SDK 2.x sends them.
    Realistic,
    /// A trace-create and `--batch` - 1 span-creates whose input repeats one letter (earlier
    /// runs).
    Synthetic,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    #[arg(long, default_value = "pk-lf-bench")]
    public_key: String,
    #[arg(long, default_value = "sk-lf-bench")]
    secret_key: String,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Events per batch, at least: whole traces are added until there are this many.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Bytes of input and of output per observation, on average (synthetic: about this many
    /// bytes per event).
    #[arg(long, default_value_t = 1000)]
    io_bytes: usize,
    #[arg(long, value_enum, default_value_t = Payload::Realistic)]
    payload: Payload,
    /// Realistic payload: generations without usage or cost, as SDKs send them when the
    /// application records none, so that the worker counts their tokens.
    #[arg(long)]
    without_usage: bool,
    /// Distinct traces encoded at start, which requests take in turn.
    #[arg(long, default_value_t = 256)]
    pool_traces: usize,
    /// Seed of the generated text and traces: the same seed gives the same payloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Send bodies gzip-compressed (the Python SDK sends them as they are).
    #[arg(long)]
    gzip: bool,
    /// Print what the payload looks like (sizes, sample events) and exit without sending.
    #[arg(long)]
    describe: bool,
    /// Total events/s to aim at across all connections; 0 means as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// ClickHouse HTTP URL and database, to count landed rows.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    #[arg(long, default_value = "default")]
    clickhouse_database: String,
    #[arg(long, default_value = "bench")]
    project_id: String,
    /// Seconds to wait after the load for the worker to land everything.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
}

/// Whose id an event's body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Trace,
    /// The trace's observation of that index (not the root: the trace itself).
    Observation(usize),
    Score(usize),
}

/// A field of an event's body that changes per request, written right after its id.
#[derive(Debug, Clone, Copy)]
enum Field {
    TraceId(&'static str),
    ObservationId(&'static str, usize),
    /// A time this many milliseconds after the trace started.
    Time(&'static str, u64),
}

/// One event of a trace: its type, its envelope time, and its body as the fields that change
/// (id first) and those that do not.
struct EventSpec {
    kind: &'static str,
    at_ms: u64,
    entity: Entity,
    fields: Vec<Field>,
    rest: Map<String, Value>,
}

/// A trace's events, in the order the SDK sends them, with its counts of entities.
struct TraceEvents {
    events: Vec<EventSpec>,
    observations: usize,
    scores: usize,
    duration_ms: u64,
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !value.is_null() {
        map.insert(key.into(), value);
    }
}

fn metadata(entries: &[(String, Value)]) -> Value {
    Value::Object(entries.iter().cloned().collect())
}

/// What the Python SDK 2.x sends for a trace: its decorator makes the root the trace itself, the
/// other observations spans or generations (v2 has no other types), each created when it starts
/// and updated when it ends.
fn realistic_events(trace: &Trace, with_usage: bool) -> TraceEvents {
    let root = &trace.observations[0];
    let mut events = Vec::new();
    let mut start = Map::new();
    insert(&mut start, "name", json!(trace.name));
    insert(&mut start, "userId", json!(trace.user_id));
    insert(&mut start, "sessionId", json!(trace.session_id));
    insert(&mut start, "release", json!(trace.release));
    insert(&mut start, "version", json!(trace.version));
    insert(&mut start, "metadata", metadata(&trace.metadata));
    insert(&mut start, "tags", json!(trace.tags));
    insert(&mut start, "input", root.input.clone());
    insert(&mut start, "environment", json!("production"));
    events.push(EventSpec {
        kind: "trace-create",
        at_ms: 0,
        entity: Entity::Trace,
        fields: vec![Field::Time("timestamp", 0)],
        rest: start,
    });
    for (k, o) in trace.observations.iter().enumerate().skip(1) {
        let kind = if o.kind == Kind::Generation {
            "generation"
        } else {
            "span"
        };
        let mut fields = vec![Field::TraceId("traceId")];
        if let Some(parent) = o.parent.filter(|p| *p != 0) {
            fields.push(Field::ObservationId("parentObservationId", parent));
        }
        fields.push(Field::Time("startTime", o.start_ms));
        let mut create = Map::new();
        insert(&mut create, "name", json!(o.name));
        insert(&mut create, "metadata", metadata(&o.metadata));
        insert(&mut create, "input", o.input.clone());
        insert(&mut create, "environment", json!("production"));
        let mut update = Map::new();
        insert(&mut update, "output", o.output.clone());
        if let Some(message) = &o.warning {
            insert(&mut update, "level", json!("WARNING"));
            insert(&mut update, "statusMessage", json!(message));
        }
        let mut update_fields = vec![Field::TraceId("traceId"), Field::Time("endTime", o.end_ms)];
        if let Some(g) = &o.generation {
            insert(&mut create, "model", json!(g.model));
            insert(
                &mut create,
                "modelParameters",
                Value::Object(g.parameters.clone()),
            );
            if let Some((name, version)) = g.prompt {
                insert(&mut create, "promptName", json!(name));
                insert(&mut create, "promptVersion", json!(version));
            }
            update_fields.push(Field::Time(
                "completionStartTime",
                o.start_ms + g.first_token_ms,
            ));
            insert(&mut update, "model", json!(g.model));
            let mut usage = json!({
                "input": g.prompt_tokens, "output": g.completion_tokens,
                "total": g.total_tokens(), "unit": "TOKENS",
            });
            if let Some((input, output)) = g.cost_usd {
                usage["inputCost"] = json!(input);
                usage["outputCost"] = json!(output);
                usage["totalCost"] = json!(input + output);
            }
            if with_usage {
                insert(&mut update, "usage", usage);
            }
        }
        events.push(EventSpec {
            kind: if kind == "span" {
                "span-create"
            } else {
                "generation-create"
            },
            at_ms: o.start_ms,
            entity: Entity::Observation(k),
            fields,
            rest: create,
        });
        events.push(EventSpec {
            kind: if kind == "span" {
                "span-update"
            } else {
                "generation-update"
            },
            at_ms: o.end_ms,
            entity: Entity::Observation(k),
            fields: update_fields,
            rest: update,
        });
    }
    let mut end = Map::new();
    insert(&mut end, "output", root.output.clone());
    events.push(EventSpec {
        kind: "trace-create",
        at_ms: root.end_ms,
        entity: Entity::Trace,
        fields: Vec::new(),
        rest: end,
    });
    for (s, score) in trace.scores.iter().enumerate() {
        let mut fields = vec![Field::TraceId("traceId")];
        if let Some(k) = score.observation {
            fields.push(Field::ObservationId("observationId", k));
        }
        let mut rest = Map::new();
        insert(&mut rest, "name", json!(score.name));
        let (value, data_type) = match &score.value {
            ScoreValue::Numeric(v) => (json!(v), "NUMERIC"),
            ScoreValue::Boolean(b) => (json!(u8::from(*b)), "BOOLEAN"),
            ScoreValue::Categorical(c) => (json!(c), "CATEGORICAL"),
        };
        insert(&mut rest, "value", value);
        insert(&mut rest, "dataType", json!(data_type));
        if let Some(comment) = &score.comment {
            insert(&mut rest, "comment", json!(comment));
        }
        events.push(EventSpec {
            kind: "score-create",
            at_ms: root.end_ms + 500 + s as u64 * 100,
            entity: Entity::Score(s),
            fields,
            rest,
        });
    }
    // The SDK queues events as they happen.
    events.sort_by_key(|e| e.at_ms);
    TraceEvents {
        events,
        observations: trace.observations.len() - 1,
        scores: trace.scores.len(),
        duration_ms: root.end_ms + 500 + trace.scores.len() as u64 * 100,
    }
}

/// The payload of earlier runs: a trace-create and `batch` - 1 span-creates whose input repeats
/// one letter.
fn synthetic_events(batch: usize, io_bytes: usize) -> TraceEvents {
    let padding = "x".repeat(io_bytes.saturating_sub(300));
    let mut events = vec![EventSpec {
        kind: "trace-create",
        at_ms: 0,
        entity: Entity::Trace,
        fields: Vec::new(),
        rest: json!({"name": "bench", "userId": "bench-user", "input": padding})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }];
    for i in 1..batch.max(1) {
        events.push(EventSpec {
            kind: "span-create",
            at_ms: 0,
            entity: Entity::Observation(i),
            fields: vec![Field::TraceId("traceId"), Field::Time("startTime", 0)],
            rest: json!({"name": "step", "input": padding, "metadata": {"i": i}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        });
    }
    TraceEvents {
        events,
        observations: batch.max(1) - 1,
        scores: 0,
        duration_ms: 0,
    }
}

/// Ids unique per run (`seed`), connection and request.
struct Ids {
    seed: u64,
    worker: u64,
    n: u64,
}

/// The kinds of id, kept apart in the bits an id is made from.
#[derive(Clone, Copy)]
enum IdKind {
    Event = 1,
    Trace = 2,
    Observation = 3,
    Score = 4,
}

impl Ids {
    fn batch_key(&self) -> u64 {
        (self.seed << 48) | (self.worker << 40) | (self.n & 0xff_ffff_ffff)
    }

    /// A UUID-shaped id (as the SDK's uuid4) for the `index`th entity of that kind in the
    /// `trace`th trace of the batch: the batch's key and the entity's place, mixed (each step a
    /// bijection, so distinct for every entity of the run).
    fn write(&self, out: &mut Vec<u8>, kind: IdKind, trace: usize, index: usize) {
        let high = mix64(self.batch_key());
        let place = ((kind as u64) << 56) | ((trace as u64) << 28) | index as u64;
        let low = mix64(place ^ high);
        let _ = write!(
            out,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        );
    }

    fn string(&self, kind: IdKind, trace: usize, index: usize) -> String {
        let mut out = Vec::with_capacity(36);
        self.write(&mut out, kind, trace, index);
        String::from_utf8(out).expect("ASCII")
    }
}

/// A time as the Python SDK writes it (`datetime.isoformat()` of an aware UTC time): always the
/// same length, so a hole's length does not change.
fn write_time(out: &mut Vec<u8>, unix_ms: i64) {
    let time = chrono::DateTime::from_timestamp_millis(unix_ms).unwrap_or_default();
    let _ = write!(out, "{}", time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"));
}

/// What a request changes in one event: the event's place in the batch (its id), its trace's,
/// its spec and when its trace starts relative to the request.
struct EventHole {
    event: usize,
    trace: usize,
    trace_duration_ms: u64,
    entity: Entity,
    fields: Vec<Field>,
    at_ms: u64,
}

/// One batch, encoded and deflated once: whole traces of the pool, a hole per event.
struct BatchTemplate {
    body: Template,
    holes: Vec<EventHole>,
    traces: usize,
    observations: usize,
    scores: usize,
}

struct Pool {
    batches: Vec<BatchTemplate>,
    /// A sample of the events, for `--describe`.
    sample: Vec<Value>,
}

impl Pool {
    fn new(args: &Args) -> Pool {
        let traces: Vec<TraceEvents> = match args.payload {
            Payload::Realistic => {
                workload::traces(args.seed, args.pool_traces.max(1), args.io_bytes)
                    .iter()
                    .map(|trace| realistic_events(trace, !args.without_usage))
                    .collect()
            }
            Payload::Synthetic => vec![synthetic_events(args.batch, args.io_bytes)],
        };
        let mut batches = Vec::new();
        let mut next = 0;
        while next < traces.len() || batches.is_empty() {
            let mut chosen = Vec::new();
            let mut events = 0;
            while events < args.batch || chosen.is_empty() {
                let trace = &traces[next % traces.len()];
                events += trace.events.len();
                chosen.push(trace);
                next += 1;
            }
            batches.push(batch_template(&chosen, &args.public_key));
        }
        let sample = traces
            .iter()
            .find(|t| t.events.iter().any(|e| e.kind == "generation-update"))
            .unwrap_or(&traces[0])
            .events
            .iter()
            .map(|e| json!({"type": e.kind, "body": e.rest}))
            .collect();
        Pool { batches, sample }
    }

    /// The `n`th request of a connection: the next batch of the pool, with ids unique to the
    /// run, the connection and the request, and traces ending now.
    fn batch(&self, gzip: bool, ids: &Ids, now_ms: i64) -> Batch {
        // Each connection goes through the pool in turn, from a place of its own.
        let template = &self.batches[(ids.worker + ids.n) as usize % self.batches.len()];
        self.write_batch(template, gzip, ids, now_ms)
    }

    fn write_batch(&self, template: &BatchTemplate, gzip: bool, ids: &Ids, now_ms: i64) -> Batch {
        let body = template.body.write(gzip, |hole, out| {
            write_hole(out, &template.holes[hole], ids, now_ms)
        });
        Batch {
            body,
            raw_len: template.body.raw_len(),
            events: template.holes.len(),
            entities: [template.traces, template.observations, template.scores],
            marker: ids.string(IdKind::Trace, 0, 0),
        }
    }
}

struct Batch {
    body: Vec<u8>,
    raw_len: usize,
    events: usize,
    /// Traces, observations and scores.
    entities: [usize; 3],
    /// The first trace's id, for the lag probe.
    marker: String,
}

/// An event's fields that change: `{"id":…,"timestamp":…,"body":{"id":…` and the body's fields
/// that change. The body's constant fields follow.
fn write_hole(out: &mut Vec<u8>, hole: &EventHole, ids: &Ids, now_ms: i64) {
    let start = now_ms - hole.trace_duration_ms as i64;
    out.extend_from_slice(br#"{"id":""#);
    ids.write(out, IdKind::Event, hole.trace, hole.event);
    out.extend_from_slice(br#"","timestamp":""#);
    write_time(out, start + hole.at_ms as i64);
    out.extend_from_slice(br#"","body":{"id":""#);
    match hole.entity {
        Entity::Trace => ids.write(out, IdKind::Trace, hole.trace, 0),
        Entity::Observation(k) => ids.write(out, IdKind::Observation, hole.trace, k),
        Entity::Score(s) => ids.write(out, IdKind::Score, hole.trace, s),
    }
    out.push(b'"');
    for field in &hole.fields {
        let key = match field {
            Field::TraceId(key) | Field::ObservationId(key, _) | Field::Time(key, _) => key,
        };
        let _ = write!(out, r#","{key}":""#);
        match *field {
            Field::TraceId(_) => ids.write(out, IdKind::Trace, hole.trace, 0),
            Field::ObservationId(_, k) => ids.write(out, IdKind::Observation, hole.trace, k),
            Field::Time(_, ms) => write_time(out, start + ms as i64),
        }
        out.push(b'"');
    }
}

fn batch_template(traces: &[&TraceEvents], public_key: &str) -> BatchTemplate {
    let mut segments = vec![Segment::Constant(br#"{"batch":["#.to_vec())];
    let mut holes = Vec::new();
    let placeholder_ids = Ids {
        seed: 0,
        worker: 0,
        n: 0,
    };
    for (t, trace) in traces.iter().enumerate() {
        for spec in &trace.events {
            if !holes.is_empty() {
                segments.push(Segment::Constant(b",".to_vec()));
            }
            let hole = EventHole {
                event: holes.len(),
                trace: t,
                trace_duration_ms: trace.duration_ms,
                entity: spec.entity,
                fields: spec.fields.clone(),
                at_ms: spec.at_ms,
            };
            let mut sized = Vec::new();
            write_hole(&mut sized, &hole, &placeholder_ids, 1_750_000_000_000);
            segments.push(Segment::Hole(sized.len()));
            holes.push(hole);
            let rest = serde_json::to_string(&spec.rest).expect("JSON");
            let mut constant = String::new();
            if spec.rest.is_empty() {
                constant.push('}');
            } else {
                constant.push(',');
                constant.push_str(&rest[1..]);
            }
            constant.push_str(&format!(r#","type":"{}"}}"#, spec.kind));
            segments.push(Segment::Constant(constant.into_bytes()));
        }
    }
    let metadata = json!({
        "batch_size": holes.len(), "sdk_integration": "default", "sdk_name": "python",
        "sdk_version": "2.60.3", "public_key": public_key,
    });
    segments.push(Segment::Constant(
        format!(r#"],"metadata":{metadata}}}"#).into_bytes(),
    ));
    BatchTemplate {
        body: Template::new(segments),
        holes,
        traces: traces.len(),
        observations: traces.iter().map(|t| t.observations).sum(),
        scores: traces.iter().map(|t| t.scores).sum(),
    }
}

/// Events a 207 says it refused (its `errors`).
fn refused_events(body: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["errors"].as_array().map(|e| e.len() as u64))
        .unwrap_or(0)
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("compressing into memory");
    gz.finish().expect("compressing into memory").len()
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// What the payload looks like: events and entities per batch, bytes per event (raw, as gzip
/// would send it, and as one deflate of the whole batch would make it), and a sample trace's
/// events (values cut to 100 characters).
fn describe(args: &Args, pool: &Pool) -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    let batches: Vec<(Batch, Batch)> = pool
        .batches
        .iter()
        .enumerate()
        .map(|(b, template)| {
            let ids = Ids {
                seed: 1,
                worker: 0,
                n: b as u64,
            };
            (
                pool.write_batch(template, false, &ids, now),
                pool.write_batch(template, true, &ids, now),
            )
        })
        .collect();
    let events: usize = batches.iter().map(|(b, _)| b.events).sum();
    let per_event = |bytes: usize| (bytes as f64 / events as f64).round();
    let per_batch = |f: &dyn Fn(&Batch) -> usize| {
        round1(batches.iter().map(|(b, _)| f(b)).sum::<usize>() as f64 / batches.len() as f64)
    };
    fn cut(value: &Value) -> Value {
        match value {
            Value::String(s) if s.len() > 100 => {
                let end = (0..=100)
                    .rev()
                    .find(|i| s.is_char_boundary(*i))
                    .unwrap_or(0);
                json!(format!("{}… ({} bytes)", &s[..end], s.len()))
            }
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), cut(v))).collect()),
            Value::Array(items) if items.len() > 3 => {
                json!(format!(
                    "[{} items, {} bytes]",
                    items.len(),
                    value.to_string().len()
                ))
            }
            Value::Array(items) => Value::Array(items.iter().map(cut).collect()),
            other => other.clone(),
        }
    }
    let sample: Vec<Value> = pool
        .sample
        .iter()
        .map(|event| {
            let body = &event["body"];
            let text = ["input", "output"]
                .iter()
                .map(|k| body.get(*k).map_or(0, |v| as_text(v).len()))
                .sum::<usize>();
            json!({"type": event["type"], "raw_bytes_of_input_and_output": text, "body": cut(body)})
        })
        .collect();
    let timer = Instant::now();
    let built: usize = (0..200)
        .map(|n| {
            let ids = Ids {
                seed: 2,
                worker: 0,
                n,
            };
            pool.batch(args.gzip, &ids, now).body.len()
        })
        .sum();
    let micros_per_batch = timer.elapsed().as_secs_f64() * 1e6 / 200.0;
    std::hint::black_box(built);
    json!({
        "payload": format!("{:?}", args.payload).to_lowercase(),
        "microseconds_to_build_a_batch": micros_per_batch.round(),
        "batches_in_pool": pool.batches.len(),
        "events_per_batch": per_batch(&|b| b.events),
        "traces_per_batch": per_batch(&|b| b.entities[0]),
        "observations_per_batch": per_batch(&|b| b.entities[1]),
        "scores_per_batch": per_batch(&|b| b.entities[2]),
        "bytes_per_event": {
            "raw": per_event(batches.iter().map(|(b, _)| b.body.len()).sum()),
            "sent_with_gzip_flag": per_event(batches.iter().map(|(_, g)| g.body.len()).sum()),
            "whole_batch_gzip": per_event(batches.iter().map(|(b, _)| gzip_len(&b.body)).sum()),
        },
        "sample_trace_events": sample,
    })
}

/// Which of the pending marker traces are in ClickHouse.
async fn landed_markers(
    http: &reqwest::Client,
    args: &Args,
    pending: &[(String, Instant)],
) -> std::collections::HashSet<String> {
    let ids: Vec<String> = pending.iter().map(|(id, _)| format!("'{id}'")).collect();
    let query = format!(
        "SELECT DISTINCT id FROM {}.traces WHERE project_id = '{}' AND id IN ({})",
        args.clickhouse_database,
        args.project_id,
        ids.join(",")
    );
    match http.post(&args.clickhouse_url).body(query).send().await {
        Ok(r) => r
            .text()
            .await
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        Err(_) => Default::default(),
    }
}

/// Distinct traces, observations and scores of the project in ClickHouse.
async fn count_landed(http: &reqwest::Client, args: &Args) -> [u64; 3] {
    let count = |table: &str| {
        format!(
            "(SELECT uniqExact(id) FROM {}.{table} WHERE project_id = '{}')",
            args.clickhouse_database, args.project_id
        )
    };
    let query = format!(
        "SELECT {}, {}, {}",
        count("traces"),
        count("observations"),
        count("scores")
    );
    let mut landed = [0; 3];
    if let Ok(r) = http.post(&args.clickhouse_url).body(query).send().await {
        let text = r.text().await.unwrap_or_default();
        for (slot, value) in landed.iter_mut().zip(text.split_whitespace()) {
            *slot = value.parse().unwrap_or(0);
        }
    }
    landed
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    // Ids are made from the connection's number in 8 bits.
    anyhow::ensure!(
        (1..=256).contains(&args.concurrency),
        "--concurrency must be 1 to 256"
    );
    let pool = Arc::new(Pool::new(&args));
    if args.describe {
        println!("{}", serde_json::to_string_pretty(&describe(&args, &pool))?);
        return Ok(());
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let seed = (chrono::Utc::now().timestamp() as u64 & 0xffff).max(1);
    let answers = Arc::new(Answers::new(207));
    // Traces, observations and scores in accepted batches, and the bytes sent.
    let expected: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let sent_events = Arc::new(AtomicU64::new(0));
    // What a client deflating whole batches would send, estimated on a few of the pool's.
    let whole_batch_gzip = {
        let sample: Vec<Batch> = pool
            .batches
            .iter()
            .take(4)
            .map(|b| {
                pool.write_batch(
                    b,
                    false,
                    &Ids {
                        seed,
                        worker: 0,
                        n: 0,
                    },
                    0,
                )
            })
            .collect();
        let bytes: usize = sample.iter().map(|b| gzip_len(&b.body)).sum();
        (bytes as f64 / sample.iter().map(|b| b.events).sum::<usize>() as f64).round()
    };
    let landed_at_start = count_landed(&http, &args).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let events_per_batch = pool.batches.iter().map(|b| b.holes.len()).sum::<usize>() as f64
        / pool.batches.len() as f64;
    let per_connection_interval = if args.rate > 0 {
        let batches_per_second = args.rate as f64 / events_per_batch;
        Some(Duration::from_secs_f64(
            args.concurrency as f64 / batches_per_second,
        ))
    } else {
        None
    };

    // Markers (one trace in twenty batches) are looked for while the load runs: one query for all
    // pending markers every 100 ms, against the table the read API answers from (it caches
    // nothing, so a row there is a row `GET /api/public/traces/{id}` returns). One request per
    // marker through the API would itself load the server being measured.
    let (marker_tx, mut marker_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let lag_poller = {
        let (http, args) = (http.clone(), args.clone());
        tokio::spawn(async move {
            let mut pending: Vec<(String, Instant)> = Vec::new();
            let mut lags = Vec::new();
            let mut open = true;
            let mut drain_deadline = None;
            loop {
                while let Ok(marker) = marker_rx.try_recv() {
                    pending.push(marker);
                }
                if open && marker_rx.is_closed() && marker_rx.is_empty() {
                    open = false;
                    drain_deadline = Some(Instant::now() + Duration::from_secs(args.drain_seconds));
                }
                if !pending.is_empty() {
                    let found = landed_markers(&http, &args, &pending).await;
                    let now = Instant::now();
                    pending.retain(|(id, accepted_at)| {
                        if found.contains(id) {
                            lags.push((now - *accepted_at).as_secs_f64());
                            false
                        } else {
                            true
                        }
                    });
                }
                let drained = !open && pending.is_empty();
                let timed_out = drain_deadline.is_some_and(|d| Instant::now() > d);
                if drained || timed_out {
                    return (lags, pending.len());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (http, args, answers, pool) =
            (http.clone(), args.clone(), answers.clone(), pool.clone());
        let (expected, raw_bytes, sent_bytes, sent_events) = (
            expected.clone(),
            raw_bytes.clone(),
            sent_bytes.clone(),
            sent_events.clone(),
        );
        let marker_tx = marker_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < deadline {
                if let Some(interval) = per_connection_interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let ids = Ids {
                    seed,
                    worker: worker as u64,
                    n,
                };
                let batch = pool.batch(args.gzip, &ids, chrono::Utc::now().timestamp_millis());
                raw_bytes.fetch_add(batch.raw_len as u64, Ordering::Relaxed);
                sent_bytes.fetch_add(batch.body.len() as u64, Ordering::Relaxed);
                sent_events.fetch_add(batch.events as u64, Ordering::Relaxed);
                let mut post = http
                    .post(format!("{}/api/public/ingestion", args.url))
                    .basic_auth(&args.public_key, Some(&args.secret_key))
                    .header("content-type", "application/json")
                    .body(batch.body);
                if args.gzip {
                    post = post.header("content-encoding", "gzip");
                }
                let sent = Instant::now();
                let response = post.send().await;
                let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
                if answers
                    .record(response, batch.events as u64, refused_events)
                    .await
                {
                    latencies.push(elapsed);
                    for (slot, count) in expected.iter().zip(batch.entities) {
                        slot.fetch_add(count as u64, Ordering::Relaxed);
                    }
                    if n.is_multiple_of(20) {
                        let _ = marker_tx.send((batch.marker, Instant::now()));
                    }
                }
                n += 1;
            }
            latencies
        }));
    }
    drop(marker_tx);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let accepted = answers.accepted.load(Ordering::Relaxed);

    let (mut lags, unresolved_markers) = lag_poller.await?;
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_seconds);

    // Landed: wait until every accepted trace, observation and score is in ClickHouse (or the
    // drain time runs out).
    let expected = expected.each_ref().map(|e| e.load(Ordering::Relaxed));
    let landed_now = || async {
        let now = count_landed(&http, &args).await;
        [0, 1, 2].map(|i| now[i].saturating_sub(landed_at_start[i]))
    };
    let mut landed = landed_now().await;
    while landed.iter().zip(&expected).any(|(l, e)| l < e) && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        landed = landed_now().await;
    }
    let landed_seconds = started.elapsed().as_secs_f64();
    let expected_total: u64 = expected.iter().sum();
    let landed_total: u64 = landed.iter().sum();

    latencies.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    let sent_events = sent_events.load(Ordering::Relaxed).max(1) as f64;
    let entities = |counts: [u64; 3]| {
        json!({"traces": counts[0], "observations": counts[1], "scores": counts[2],
               "total": counts.iter().sum::<u64>()})
    };
    let report = json!({
        "load_seconds": round1(load_seconds),
        "concurrency": args.concurrency,
        "payload": format!("{:?}", args.payload).to_lowercase(),
        "without_usage": args.without_usage,
        "batch_events": round1(events_per_batch),
        "io_bytes": args.io_bytes,
        "gzip": args.gzip,
        "bytes_per_event": {
            "raw": (raw_bytes.load(Ordering::Relaxed) as f64 / sent_events).round(),
            "sent": (sent_bytes.load(Ordering::Relaxed) as f64 / sent_events).round(),
            "whole_batch_gzip": whole_batch_gzip,
        },
        "target_rate": args.rate,
        "accepted_events": accepted,
        "accepted_events_per_second": (accepted as f64 / load_seconds).round(),
        "request_latency_ms": {
            "p50": round1(percentile(&latencies, 0.50)),
            "p99": round1(percentile(&latencies, 0.99)),
            "max": round1(latencies.last().copied().unwrap_or(f64::NAN)),
        },
        "responses": answers.json(),
        "entities_expected": entities(expected),
        "entities_landed": entities(landed),
        "landed_entities_per_second": (landed_total as f64 / landed_seconds).round(),
        // Events whose entities have landed: all accepted events once every entity is in
        // ClickHouse, else that share of them.
        "landed_events_per_second": (accepted as f64 * landed_total as f64
            / expected_total.max(1) as f64 / landed_seconds).round(),
        "accept_to_queryable_lag_s": {
            "samples": lags.len(),
            "unresolved": unresolved_markers,
            "p50": (percentile(&lags, 0.50) * 100.0).round() / 100.0,
            "p99": (percentile(&lags, 0.99) * 100.0).round() / 100.0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::io::Read;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["ingest_load"];
        if !extra.contains(&"--pool-traces") {
            argv.extend_from_slice(&["--pool-traces", "32"]);
        }
        argv.extend_from_slice(extra);
        Args::parse_from(argv)
    }

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// A batch is the SDK's JSON; its gzip form inflates to it; every entity it counts has its
    /// own id, unlike those of any other request; children name their trace and parent.
    #[test]
    fn batches_carry_the_entities_they_count() {
        let args = args(&[]);
        let pool = Pool::new(&args);
        let mut seen = HashSet::new();
        for n in 0..4 {
            let ids = Ids {
                seed: 7,
                worker: 1,
                n,
            };
            let batch = pool.batch(false, &ids, 1_750_000_000_000);
            assert_eq!(
                gunzip(&pool.batch(true, &ids, 1_750_000_000_000).body),
                batch.body
            );
            assert_eq!(batch.body.len(), batch.raw_len);
            let value: Value = serde_json::from_slice(&batch.body).unwrap();
            let events = value["batch"].as_array().unwrap();
            assert_eq!(events.len(), batch.events);
            assert!(events.len() >= 100);
            assert_eq!(value["metadata"]["batch_size"], events.len());
            let mut entities: HashMap<&str, HashSet<&str>> = HashMap::new();
            for event in events {
                let kind = event["type"].as_str().unwrap();
                let body = &event["body"];
                assert!(seen.insert(event["id"].as_str().unwrap().to_string()));
                let table = match kind {
                    "trace-create" => "traces",
                    "score-create" => "scores",
                    _ => "observations",
                };
                entities
                    .entry(table)
                    .or_default()
                    .insert(body["id"].as_str().unwrap());
                if table != "traces" {
                    let trace = body["traceId"].as_str().unwrap();
                    assert!(events
                        .iter()
                        .any(|e| e["type"] == "trace-create" && e["body"]["id"] == trace));
                }
                if let Some(parent) = body.get("parentObservationId") {
                    assert!(events
                        .iter()
                        .any(|e| e["body"]["id"] == *parent && e["type"] != "trace-create"));
                }
            }
            let count = |table: &str| entities.get(table).map_or(0, HashSet::len);
            assert_eq!(
                [count("traces"), count("observations"), count("scores")],
                batch.entities
            );
            assert!(entities["traces"].contains(batch.marker.as_str()));
            for table in ["traces", "observations"] {
                for id in &entities[table] {
                    assert!(seen.insert(format!("{table}:{id}")), "{id} sent twice");
                }
            }
        }
    }

    #[test]
    fn generations_carry_model_usage_and_chat_messages() {
        let pool = Pool::new(&args(&[]));
        let ids = Ids {
            seed: 1,
            worker: 0,
            n: 0,
        };
        let batch = pool.batch(false, &ids, 1_750_000_000_000);
        let value: Value = serde_json::from_slice(&batch.body).unwrap();
        let events = value["batch"].as_array().unwrap();
        let create = events
            .iter()
            .find(|e| e["type"] == "generation-create")
            .unwrap();
        assert!(create["body"]["model"].is_string());
        assert!(create["body"]["modelParameters"]["temperature"].is_number());
        assert_eq!(create["body"]["input"][0]["role"], "system");
        let update = events
            .iter()
            .find(|e| e["type"] == "generation-update" && e["body"]["id"] == create["body"]["id"])
            .unwrap();
        assert_eq!(update["body"]["output"]["role"], "assistant");
        assert_eq!(update["body"]["usage"]["unit"], "TOKENS");
        assert!(update["body"]["completionStartTime"].is_string());

        let pool = Pool::new(&args(&["--without-usage"]));
        let batch = pool.batch(false, &ids, 1_750_000_000_000);
        let value: Value = serde_json::from_slice(&batch.body).unwrap();
        let events = value["batch"].as_array().unwrap();
        assert!(events
            .iter()
            .any(|e| e["type"] == "generation-update" && e["body"]["output"].is_object()));
        assert!(events.iter().all(|e| e["body"].get("usage").is_none()));
    }

    #[test]
    fn the_synthetic_payload_is_a_trace_and_its_spans() {
        let pool = Pool::new(&args(&["--payload", "synthetic", "--batch", "10"]));
        let ids = Ids {
            seed: 1,
            worker: 0,
            n: 0,
        };
        let batch = pool.batch(false, &ids, 1_750_000_000_000);
        let value: Value = serde_json::from_slice(&batch.body).unwrap();
        let events = value["batch"].as_array().unwrap();
        assert_eq!(events.len(), 10);
        assert_eq!(batch.entities, [1, 9, 0]);
        assert!(events[5]["body"]["input"]
            .as_str()
            .unwrap()
            .starts_with("xxxx"));
    }

    /// About a kilobyte of input or output per event, deflating about three times.
    #[test]
    fn realistic_events_deflate_like_real_ones() {
        let args = args(&["--pool-traces", "64"]);
        let description = describe(&args, &Pool::new(&args));
        let bytes = &description["bytes_per_event"];
        let raw = bytes["raw"].as_f64().unwrap();
        let gzip = bytes["whole_batch_gzip"].as_f64().unwrap();
        assert!((800.0..=2000.0).contains(&raw), "{description}");
        assert!(raw / gzip > 2.5 && raw / gzip < 6.0, "{description}");
    }
}
