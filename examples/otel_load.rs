//! Load generator for `POST /api/public/otel/v1/traces`, with a report.
//!
//! Each request is one OTLP export of whole traces, at least `--batch` spans, in protobuf (gzip
//! unless `--no-gzip`) or `--json`, from `--concurrency` connections for `--seconds`. The report:
//! spans/s accepted, request latency p50/p99/max, answers by status, the bytes per span (raw, as
//! sent, and as an exporter deflating each export whole would send them), spans landed in ClickHouse and spans/s visible, accept-to-readable lag of
//! marker traces polled through the read API. Run by `scripts/bench-otel.sh`, which starts the
//! processes and adds their peak memory.
//!
//! The default payload (`--payload realistic`) is what instrumented LLM applications export:
//! traces of a root and two to six children (retrievals, generations with chat messages, tool
//! calls, guardrails; `common/workload.rs`) with the Langfuse Python SDK's span attributes, and
//! for about a third of the traces OpenInference's for the model calls instead; natural-language
//! text of about `--io-bytes` per input and output that deflates like real text. A pool of
//! `--pool-traces` traces is made into exports of whole traces, each encoded and deflated once at
//! start with holes for ids and times (`common/spliced_gzip.rs`); each request sends the next
//! export with its holes filled, so the generator spends almost no CPU per request.
//! `--payload synthetic` sends what earlier runs sent: one trace of `--batch` spans whose input
//! and output repeat one letter. `--describe` prints what the payload looks like and exits.
//!
//!     cargo run --release --example otel_load -- --url http://127.0.0.1:3000 \
//!         --public-key pk-lf-bench --secret-key sk-lf-bench --seconds 20

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use common::prose::mix64;
use common::spliced_gzip::{Segment, Template};
use common::workload::{self, as_text, Kind, Observation, Trace};
use common::{percentile, Answers};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prost::Message;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Payload {
    /// Traces of LLM applications with realistic text and attributes.
    Realistic,
    /// One trace of `--batch` spans whose input and output repeat one letter (earlier runs).
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
    /// Spans per export, at least: whole traces are added until there are this many.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Bytes of input and of output per span, on average.
    #[arg(long, default_value_t = 1000)]
    io_bytes: usize,
    #[arg(long, value_enum, default_value_t = Payload::Realistic)]
    payload: Payload,
    /// Distinct traces encoded at start, which requests take in turn.
    #[arg(long, default_value_t = 256)]
    pool_traces: usize,
    /// Seed of the generated text and traces: the same seed gives the same payloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print what the payload looks like (sizes, a sample span) and exit without sending.
    #[arg(long)]
    describe: bool,
    /// Write one export of each of the pool's templates, as it would be sent, into this
    /// directory (`export-0000.bin`, …) and exit without sending: the input of
    /// `examples/ingest_cpu.rs`.
    #[arg(long)]
    write_exports: Option<std::path::PathBuf>,
    /// Send OTLP/JSON instead of protobuf.
    #[arg(long)]
    json: bool,
    /// Send bodies uncompressed.
    #[arg(long)]
    no_gzip: bool,
    /// Total spans/s to aim at across all connections; 0 means as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    #[arg(long, default_value = "default")]
    clickhouse_database: String,
    #[arg(long, default_value = "bench")]
    project_id: String,
    /// Every this many exports of a connection, the first trace is a marker, polled through the
    /// read API until it reads back whole (the accept-to-readable lag). Each read is a real trace
    /// read: it costs ClickHouse as a person opening the trace would.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    probe_every: u64,
    /// Seconds to wait after the load for the worker to land everything.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
}

fn any(value: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: any(value),
        ..Default::default()
    }
}

fn kv_str(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

/// A metadata value as the Langfuse SDK flattens it: strings and integers as they are, anything
/// else as JSON text.
fn kv_metadata(key: &str, value: &Value) -> KeyValue {
    match value {
        Value::String(s) => kv_str(key, s.clone()),
        Value::Number(n) if n.is_i64() => kv_int(key, n.as_i64().unwrap_or_default()),
        other => kv_str(key, other.to_string()),
    }
}

/// Where a span comes from: its instrumentation scope in the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    LangfuseSdk,
    OpenInference,
}

const SCOPES: [Scope; 2] = [Scope::LangfuseSdk, Scope::OpenInference];

/// A span encoded once but for what each request changes: its ids and times, and the time of
/// its first token (a generation's `completion_start_time`).
struct SpanTemplate {
    /// Index of the parent span in its trace.
    parent: Option<usize>,
    /// From the start of the trace.
    start_ns: u64,
    end_ns: u64,
    first_token_ns: Option<u64>,
    scope: Scope,
    /// Everything else: name, kind, status, flags and attributes. In protobuf, Span fields;
    /// in JSON, the rest of the span object after the fields that change, starting inside its
    /// `attributes` array.
    body: Vec<u8>,
    attributes: usize,
}

struct TraceTemplate {
    /// In the order spans end, the order an exporter sends them in.
    spans: Vec<SpanTemplate>,
    duration_ns: u64,
}

/// What a request changes in one span, the hole before its constant part: which trace of the
/// export it is in, its place in the export (its id), its parent's, and its times.
struct SpanHole {
    trace: usize,
    index: usize,
    parent: Option<usize>,
    start_ns: u64,
    end_ns: u64,
    first_token_ns: Option<u64>,
    trace_duration_ns: u64,
}

/// One export, encoded and deflated once: whole traces of the pool, with a hole per span.
struct ExportTemplate {
    body: Template,
    holes: Vec<SpanHole>,
    traces: usize,
    /// Spans of the first trace, the lag probe's marker.
    first_trace_spans: usize,
}

/// The exports requests take in turn.
struct Pool {
    exports: Vec<ExportTemplate>,
    json: bool,
    /// Deflate each body when it is sent, at the fastest level, as earlier runs did: the
    /// synthetic payload is what they sent, bytes on the wire included (and it deflates fast).
    deflate_per_request: bool,
    /// The Langfuse attribute that holds a generation's first-token time, encoded, with the
    /// offset of the time in it.
    completion_start: (Vec<u8>, usize),
    /// What the pool was made of, for `--describe`.
    traces: Vec<TraceTemplate>,
}

/// The time of a generation's first token as the Langfuse SDK writes it: JSON text of an ISO
/// string. Always the same length, so the encoded span's length does not change.
fn completion_start_text(unix_ns: u64) -> String {
    let time = chrono::DateTime::from_timestamp_nanos(unix_ns as i64);
    time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// A span placed in an export: the trace it is in, its index among the export's spans (what
/// its id is made from) and its parent's.
struct Placed<'a> {
    trace: usize,
    index: usize,
    parent: Option<usize>,
    template: &'a SpanTemplate,
    trace_duration_ns: u64,
}

impl Pool {
    fn new(args: &Args) -> Pool {
        let json = args.json;
        let (traces, resource, scopes) = match args.payload {
            Payload::Realistic => {
                let traces = workload::traces(args.seed, args.pool_traces.max(1), args.io_bytes);
                let templates = traces.iter().map(|t| realistic_trace(t, json)).collect();
                let resource = Resource {
                    attributes: vec![
                        kv_str("service.name", "assistant-api"),
                        kv_str("service.version", "2025.06.2"),
                        kv_str("telemetry.sdk.language", "python"),
                        kv_str("telemetry.sdk.name", "opentelemetry"),
                        kv_str("telemetry.sdk.version", "1.33.1"),
                        kv_str("host.name", "ip-10-0-3-17.eu-west-1.compute.internal"),
                        kv_int("process.pid", 48213),
                        kv_str("langfuse.environment", "production"),
                        kv_str("langfuse.release", "2025.06.2"),
                    ],
                    ..Default::default()
                };
                let scopes = [
                    InstrumentationScope {
                        name: "langfuse-sdk".into(),
                        version: "3.8.1".into(),
                        attributes: vec![kv_str("public_key", args.public_key.clone())],
                        ..Default::default()
                    },
                    InstrumentationScope {
                        name: "openinference.instrumentation.openai".into(),
                        version: "0.1.30".into(),
                        ..Default::default()
                    },
                ];
                (templates, resource, scopes)
            }
            Payload::Synthetic => {
                let resource = Resource {
                    attributes: vec![kv_str("service.name", "otel-load")],
                    ..Default::default()
                };
                let scope = InstrumentationScope {
                    name: "langfuse-sdk".into(),
                    version: "5.0.4".into(),
                    ..Default::default()
                };
                let scopes = [scope.clone(), scope];
                (
                    vec![synthetic_trace(args.batch, args.io_bytes, json)],
                    resource,
                    scopes,
                )
            }
        };
        let attribute = kv_str(
            "langfuse.observation.completion_start_time",
            format!("\"{}\"", completion_start_text(0)),
        );
        let placeholder = completion_start_text(0);
        let completion_start = if json {
            let mut text = attribute_json(&attribute).to_string();
            text.push(',');
            let offset = text.find(&placeholder).expect("the placeholder");
            (text.into_bytes(), offset)
        } else {
            // Field 9 (attributes) of Span, length-delimited.
            let mut bytes = vec![(9 << 3) | 2];
            prost::encoding::encode_varint(attribute.encoded_len() as u64, &mut bytes);
            attribute.encode(&mut bytes).expect("encoding into memory");
            let offset = bytes
                .windows(placeholder.len())
                .position(|w| w == placeholder.as_bytes())
                .expect("the placeholder");
            (bytes, offset)
        };
        let (resource, scopes) = if json {
            (
                json!({"attributes": resource.attributes.iter().map(attribute_json).collect::<Vec<_>>()})
                    .to_string()
                    .into_bytes(),
                scopes.map(|s| {
                    let mut scope = json!({"name": s.name, "version": s.version});
                    if !s.attributes.is_empty() {
                        scope["attributes"] =
                            Value::Array(s.attributes.iter().map(attribute_json).collect());
                    }
                    scope.to_string().into_bytes()
                }),
            )
        } else {
            (resource.encode_to_vec(), scopes.map(|s| s.encode_to_vec()))
        };
        let mut pool = Pool {
            exports: Vec::new(),
            json,
            deflate_per_request: args.payload == Payload::Synthetic,
            completion_start,
            traces,
        };
        // Exports of consecutive traces, until every trace of the pool is in one.
        let mut next = 0;
        while next < pool.traces.len() || pool.exports.is_empty() {
            let mut chosen = Vec::new();
            let mut spans = 0;
            while spans < args.batch || chosen.is_empty() {
                let trace = next % pool.traces.len();
                spans += pool.traces[trace].spans.len();
                chosen.push(trace);
                next += 1;
            }
            let export = pool.export_template(&chosen, &resource, &scopes);
            pool.exports.push(export);
        }
        pool
    }

    /// The length of the part of a span a request writes (see [`Pool::write_hole`]).
    fn hole_len(&self, span: &SpanTemplate) -> usize {
        let completion = if span.first_token_ns.is_some() {
            self.completion_start.0.len()
        } else {
            0
        };
        let parent = span.parent.is_some();
        if self.json {
            // {"traceId":"…","spanId":"…",["parentSpanId":"…",]"startTimeUnixNano":"…",
            // "endTimeUnixNano":"…","attributes":[
            let fixed = r#"{"traceId":"","spanId":"","startTimeUnixNano":"","endTimeUnixNano":"","attributes":["#;
            fixed.len() + 32 + 16 + 19 + 19 + if parent { 34 } else { 0 } + completion
        } else {
            18 + 10 + if parent { 10 } else { 0 } + 18 + completion
        }
    }

    fn export_template(
        &self,
        chosen: &[usize],
        resource: &[u8],
        scopes: &[Vec<u8>; 2],
    ) -> ExportTemplate {
        let mut placed = Vec::new();
        for (t, &trace) in chosen.iter().enumerate() {
            let template = &self.traces[trace];
            let first = placed.len();
            for (i, span) in template.spans.iter().enumerate() {
                placed.push(Placed {
                    trace: t,
                    index: first + i,
                    parent: span.parent.map(|p| first + p),
                    template: span,
                    trace_duration_ns: template.duration_ns,
                });
            }
        }
        let in_scope = |scope: usize| {
            placed
                .iter()
                .filter(move |p| p.template.scope == SCOPES[scope])
        };
        let mut segments = Vec::new();
        let mut holes = Vec::new();
        let mut hole = |p: &Placed, segments: &mut Vec<Segment>| {
            segments.push(Segment::Hole(self.hole_len(p.template)));
            holes.push(SpanHole {
                trace: p.trace,
                index: p.index,
                parent: p.parent,
                start_ns: p.template.start_ns,
                end_ns: p.template.end_ns,
                first_token_ns: p.template.first_token_ns,
                trace_duration_ns: p.trace_duration_ns,
            });
        };
        if self.json {
            let mut head = br#"{"resourceSpans":[{"resource":"#.to_vec();
            head.extend_from_slice(resource);
            head.extend_from_slice(br#","scopeSpans":["#);
            segments.push(Segment::Constant(head));
            let mut first_scope = true;
            for (scope, scope_json) in scopes.iter().enumerate() {
                if in_scope(scope).next().is_none() {
                    continue;
                }
                let mut open = if first_scope {
                    Vec::new()
                } else {
                    b",".to_vec()
                };
                first_scope = false;
                open.extend_from_slice(br#"{"scope":"#);
                open.extend_from_slice(scope_json);
                open.extend_from_slice(br#","spans":["#);
                segments.push(Segment::Constant(open));
                for (i, p) in in_scope(scope).enumerate() {
                    if i > 0 {
                        segments.push(Segment::Constant(b",".to_vec()));
                    }
                    hole(p, &mut segments);
                    segments.push(Segment::Constant(p.template.body.clone()));
                }
                segments.push(Segment::Constant(b"]}".to_vec()));
            }
            segments.push(Segment::Constant(b"]}]}".to_vec()));
        } else {
            use prost::encoding::{encode_varint, encoded_len_varint};
            let entry = |len: usize| 1 + encoded_len_varint(len as u64) + len;
            let span_len = |p: &Placed| self.hole_len(p.template) + p.template.body.len();
            let scope_lens: Vec<Option<usize>> = (0..2)
                .map(|scope| {
                    let spans: usize = in_scope(scope).map(|p| entry(span_len(p))).sum();
                    (spans > 0).then(|| entry(scopes[scope].len()) + spans)
                })
                .collect();
            let resource_spans_len = entry(resource.len())
                + scope_lens
                    .iter()
                    .flatten()
                    .map(|l| entry(*l))
                    .sum::<usize>();
            // ExportTraceServiceRequest.resource_spans (1), its resource (1).
            let mut head = vec![0x0a];
            encode_varint(resource_spans_len as u64, &mut head);
            head.push(0x0a);
            encode_varint(resource.len() as u64, &mut head);
            head.extend_from_slice(resource);
            segments.push(Segment::Constant(head));
            for (scope, len) in scope_lens.iter().enumerate() {
                let Some(len) = len else { continue };
                // ResourceSpans.scope_spans (2), its scope (1).
                let mut open = vec![0x12];
                encode_varint(*len as u64, &mut open);
                open.push(0x0a);
                encode_varint(scopes[scope].len() as u64, &mut open);
                open.extend_from_slice(&scopes[scope]);
                segments.push(Segment::Constant(open));
                for p in in_scope(scope) {
                    // ScopeSpans.spans (2).
                    let mut key = vec![0x12];
                    encode_varint(span_len(p) as u64, &mut key);
                    segments.push(Segment::Constant(key));
                    hole(p, &mut segments);
                    segments.push(Segment::Constant(p.template.body.clone()));
                }
            }
        }
        ExportTemplate {
            body: Template::new(segments),
            holes,
            traces: chosen.len(),
            first_trace_spans: self.traces[chosen[0]].spans.len(),
        }
    }

    /// The `n`th request of a connection: the next export of the pool, with ids unique to the
    /// run, the connection and the request, and traces ending now.
    fn export(&self, gzip: bool, ids: &Ids, now_ns: u64) -> Export {
        // Each connection goes through the pool in turn, from a place of its own.
        let template = &self.exports[(ids.worker + ids.n) as usize % self.exports.len()];
        self.write_export(template, gzip, ids, now_ns)
    }

    fn write_export(
        &self,
        template: &ExportTemplate,
        gzip: bool,
        ids: &Ids,
        now_ns: u64,
    ) -> Export {
        let trace_ids: Vec<[u8; 16]> = (0..template.traces).map(|t| ids.trace(t)).collect();
        let fill = |hole: usize, out: &mut Vec<u8>| {
            self.write_hole(out, &template.holes[hole], &trace_ids, ids, now_ns)
        };
        let body = if gzip && self.deflate_per_request {
            let plain = template.body.write(false, fill);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&plain).expect("compressing into memory");
            gz.finish().expect("compressing into memory")
        } else {
            template.body.write(gzip, fill)
        };
        Export {
            body,
            raw_len: template.body.raw_len(),
            spans: template.holes.len(),
            marker: (hex::encode(trace_ids[0]), template.first_trace_spans),
        }
    }

    /// A span's fields that change: its trace, span and parent ids, its start and end times,
    /// and the time of its first token; in protobuf fields trace_id (1), span_id (2),
    /// parent_span_id (4), start (7) and end (8) times and an attribute (9).
    fn write_hole(
        &self,
        out: &mut Vec<u8>,
        hole: &SpanHole,
        trace_ids: &[[u8; 16]],
        ids: &Ids,
        now_ns: u64,
    ) {
        use std::io::Write as _;
        let base = now_ns - hole.trace_duration_ns;
        let (start, end) = (base + hole.start_ns, base + hole.end_ns);
        let span_id = ids.span(hole.index);
        let parent_id = hole.parent.map(|p| ids.span(p));
        if self.json {
            let _ = write!(
                out,
                r#"{{"traceId":"{}","spanId":"{span_id:016x}","#,
                hex::encode(trace_ids[hole.trace])
            );
            if let Some(parent) = parent_id {
                let _ = write!(out, r#""parentSpanId":"{parent:016x}","#);
            }
            let _ = write!(
                out,
                r#""startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":["#
            );
        } else {
            out.extend_from_slice(&[0x0a, 16]);
            out.extend_from_slice(&trace_ids[hole.trace]);
            out.extend_from_slice(&[0x12, 8]);
            out.extend_from_slice(&span_id.to_be_bytes());
            if let Some(parent) = parent_id {
                out.extend_from_slice(&[0x22, 8]);
                out.extend_from_slice(&parent.to_be_bytes());
            }
            out.push(0x39);
            out.extend_from_slice(&start.to_le_bytes());
            out.push(0x41);
            out.extend_from_slice(&end.to_le_bytes());
        }
        if let Some(first_token) = hole.first_token_ns {
            let (attribute, offset) = &self.completion_start;
            let at = out.len() + offset;
            out.extend_from_slice(attribute);
            let time = completion_start_text(base + first_token);
            out[at..at + time.len()].copy_from_slice(time.as_bytes());
        }
    }
}

struct Export {
    body: Vec<u8>,
    raw_len: usize,
    spans: usize,
    /// The first trace's id (hex) and span count, for the lag probe.
    marker: (String, usize),
}

/// Ids unique per run (`seed`), connection and request.
struct Ids {
    seed: u64,
    worker: u64,
    n: u64,
}

impl Ids {
    fn export_key(&self) -> u64 {
        (self.seed << 48) | (self.worker << 40) | (self.n & 0xff_ffff_ffff)
    }

    /// The `t`th trace's id: the export's key and the trace's place, mixed (a bijection, so
    /// distinct for every trace of the run).
    fn trace(&self, t: usize) -> [u8; 16] {
        let high = mix64(self.export_key());
        let low = mix64(high ^ t as u64);
        let mut id = [0; 16];
        id[..8].copy_from_slice(&high.to_be_bytes());
        id[8..].copy_from_slice(&low.to_be_bytes());
        id
    }

    /// The `i`th span's id: distinct for every span of the run while exports have fewer than
    /// 4,096 spans and a connection sends fewer than 2^28 of them.
    fn span(&self, i: usize) -> u64 {
        mix64((self.seed << 48) | (self.worker << 40) | ((self.n & 0x0fff_ffff) << 12) | i as u64)
    }
}

/// An attribute in OTLP/JSON.
fn attribute_json(attribute: &KeyValue) -> Value {
    fn value_json(value: &AnyValue) -> Value {
        match &value.value {
            Some(any_value::Value::StringValue(s)) => json!({"stringValue": s}),
            Some(any_value::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
            Some(any_value::Value::DoubleValue(d)) => json!({"doubleValue": d}),
            Some(any_value::Value::BoolValue(b)) => json!({"boolValue": b}),
            Some(any_value::Value::ArrayValue(a)) => {
                json!({"arrayValue": {"values": a.values.iter().map(value_json).collect::<Vec<_>>()}})
            }
            _ => json!({}),
        }
    }
    let value = attribute
        .value
        .as_ref()
        .map(value_json)
        .unwrap_or(json!({}));
    json!({"key": attribute.key, "value": value})
}

/// A span's constant part (see [`SpanTemplate::body`]).
fn span_body(name: &str, attributes: Vec<KeyValue>, status: Option<Status>, json: bool) -> Vec<u8> {
    if json {
        let attributes: Vec<Value> = attributes.iter().map(attribute_json).collect();
        let mut text = serde_json::to_string(&attributes).expect("JSON");
        text.remove(0); // the array's `[`, written with the attributes that change
        let mut rest = json!({"name": name, "kind": 1, "flags": 0x101});
        if let Some(status) = status {
            rest["status"] = json!({"code": status.code});
        }
        let rest = rest.to_string();
        text.push(',');
        text.push_str(&rest[1..]);
        text.into_bytes()
    } else {
        Span {
            name: name.into(),
            kind: 1,
            flags: 0x101,
            attributes,
            status,
            ..Default::default()
        }
        .encode_to_vec()
    }
}

fn realistic_trace(trace: &Trace, json: bool) -> TraceTemplate {
    let ms = 1_000_000;
    let mut spans: Vec<SpanTemplate> = trace
        .observations
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let openinference = trace.openinference_generations && o.kind == Kind::Generation;
            let (attributes, name, status, scope) = if openinference {
                (
                    openinference_attributes(trace, o),
                    "ChatCompletion".to_string(),
                    Some(Status {
                        code: 1,
                        ..Default::default()
                    }),
                    Scope::OpenInference,
                )
            } else {
                (
                    langfuse_attributes(trace, o, i == 0),
                    o.name.clone(),
                    None,
                    Scope::LangfuseSdk,
                )
            };
            let first_token_ns = o
                .generation
                .as_ref()
                .filter(|_| !openinference)
                .map(|g| (o.start_ms + g.first_token_ms) * ms);
            SpanTemplate {
                parent: o.parent,
                start_ns: o.start_ms * ms,
                end_ns: o.end_ms * ms,
                first_token_ns,
                scope,
                attributes: attributes.len() + usize::from(first_token_ns.is_some()),
                body: span_body(&name, attributes, status, json),
            }
        })
        .collect();
    // Exporters send spans as they end: children before their parents. Parents are indices
    // into the trace's spans, so they are renumbered with the new order.
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].end_ns, std::cmp::Reverse(i)));
    let mut new_index = vec![0; spans.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    for span in &mut spans {
        span.parent = span.parent.map(|p| new_index[p]);
    }
    let mut slots: Vec<Option<SpanTemplate>> = spans.into_iter().map(Some).collect();
    let spans = order
        .iter()
        .map(|&old| slots[old].take().expect("each span once"))
        .collect();
    TraceTemplate {
        spans,
        duration_ns: trace.duration_ms() * ms,
    }
}

/// What the Langfuse SDK's `propagate_attributes` puts on every span of a trace (whatever its
/// instrumentation): user, session, version, tags, and the trace's metadata as strings.
fn propagated_attributes(trace: &Trace) -> Vec<KeyValue> {
    let mut a = vec![
        kv_str("user.id", trace.user_id.clone()),
        kv_str("session.id", trace.session_id.clone()),
        kv_str("langfuse.version", trace.version),
        kv(
            "langfuse.trace.tags",
            any_value::Value::ArrayValue(ArrayValue {
                values: trace
                    .tags
                    .iter()
                    .filter_map(|t| any(any_value::Value::StringValue(t.to_string())))
                    .collect(),
            }),
        ),
    ];
    for (key, value) in &trace.metadata {
        // Python's str() of the value.
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| format!("'{}'", as_text(i)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        };
        a.push(kv_str(&format!("langfuse.trace.metadata.{key}"), text));
    }
    a
}

/// The attributes the Langfuse Python SDK (3.x) sets, with the trace's propagated to every span
/// and its name on the root.
fn langfuse_attributes(trace: &Trace, o: &Observation, is_root: bool) -> Vec<KeyValue> {
    let mut a = vec![
        kv_str("langfuse.observation.type", o.kind.langfuse_type()),
        kv_str("langfuse.environment", "production"),
    ];
    a.extend(propagated_attributes(trace));
    if is_root {
        a.push(kv_str("langfuse.trace.name", trace.name));
    }
    if !o.input.is_null() {
        a.push(kv_str("langfuse.observation.input", as_text(&o.input)));
    }
    if !o.output.is_null() {
        a.push(kv_str("langfuse.observation.output", as_text(&o.output)));
    }
    for (key, value) in &o.metadata {
        a.push(kv_metadata(
            &format!("langfuse.observation.metadata.{key}"),
            value,
        ));
    }
    if let Some(message) = &o.warning {
        a.push(kv_str("langfuse.observation.level", "WARNING"));
        a.push(kv_str(
            "langfuse.observation.status_message",
            message.clone(),
        ));
    }
    if let Some(g) = &o.generation {
        a.push(kv_str("langfuse.observation.model.name", g.model));
        a.push(kv_str(
            "langfuse.observation.model.parameters",
            Value::Object(g.parameters.clone()).to_string(),
        ));
        a.push(kv_str(
            "langfuse.observation.usage_details",
            json!({"input": g.prompt_tokens, "output": g.completion_tokens, "total": g.total_tokens()})
                .to_string(),
        ));
        if let Some((input, output)) = g.cost_usd {
            a.push(kv_str(
                "langfuse.observation.cost_details",
                json!({"input": input, "output": output, "total": input + output}).to_string(),
            ));
        }
        if let Some((name, version)) = g.prompt {
            a.push(kv_str("langfuse.observation.prompt.name", name));
            a.push(kv_int(
                "langfuse.observation.prompt.version",
                version as i64,
            ));
        }
    }
    a
}

/// The attributes OpenInference's OpenAI instrumentation sets on a chat completion span.
fn openinference_attributes(trace: &Trace, o: &Observation) -> Vec<KeyValue> {
    let g = o.generation.as_ref().expect("a generation");
    let mut parameters = g.parameters.clone();
    parameters.insert("model".into(), json!(g.model));
    let mut request = parameters.clone();
    request.insert("messages".into(), g.input_json());
    let mut a = vec![
        kv_str("openinference.span.kind", o.kind.openinference_kind()),
        kv_str("llm.system", "openai"),
        kv_str("llm.provider", g.provider),
        kv_str("llm.model_name", g.model),
        kv_str(
            "llm.invocation_parameters",
            Value::Object(parameters).to_string(),
        ),
        kv_str("input.value", Value::Object(request).to_string()),
        kv_str("input.mime_type", "application/json"),
    ];
    let messages = |a: &mut Vec<KeyValue>, prefix: &str, messages: &[&workload::Message]| {
        for (i, m) in messages.iter().enumerate() {
            let at = format!("{prefix}.{i}.message");
            a.push(kv_str(&format!("{at}.role"), m.role));
            if !m.content.is_empty() {
                a.push(kv_str(&format!("{at}.content"), m.content.clone()));
            }
            if let Some(id) = &m.tool_call_id {
                a.push(kv_str(&format!("{at}.tool_call_id"), id.clone()));
            }
            for (j, call) in m.tool_calls.iter().enumerate() {
                let call_at = format!("{at}.tool_calls.{j}.tool_call");
                a.push(kv_str(&format!("{call_at}.id"), call.id.clone()));
                a.push(kv_str(&format!("{call_at}.function.name"), call.name));
                a.push(kv_str(
                    &format!("{call_at}.function.arguments"),
                    call.arguments.clone(),
                ));
            }
        }
    };
    let input: Vec<&workload::Message> = g.messages.iter().collect();
    messages(&mut a, "llm.input_messages", &input);
    messages(&mut a, "llm.output_messages", &[&g.reply]);
    let response = json!({
        "id": format!("chatcmpl-{:016x}", mix64(g.prompt_tokens ^ o.start_ms)),
        "object": "chat.completion",
        "model": g.model,
        "choices": [{"index": 0, "message": g.reply.json(), "finish_reason": g.finish_reason}],
        "usage": {"prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
                  "total_tokens": g.total_tokens()},
    });
    a.push(kv_str("output.value", response.to_string()));
    a.push(kv_str("output.mime_type", "application/json"));
    a.push(kv_int("llm.token_count.prompt", g.prompt_tokens as i64));
    a.push(kv_int(
        "llm.token_count.completion",
        g.completion_tokens as i64,
    ));
    a.push(kv_int("llm.token_count.total", g.total_tokens() as i64));
    a.extend(propagated_attributes(trace));
    a
}

/// The payload of earlier runs: one trace of `spans` spans whose input and output repeat one
/// letter, every other child a generation.
fn synthetic_trace(spans: usize, io_bytes: usize, json: bool) -> TraceTemplate {
    let input = json!({"question": "q".repeat(io_bytes.saturating_sub(20))}).to_string();
    let output = json!({"answer": "a".repeat(io_bytes.saturating_sub(20))}).to_string();
    let spans = (0..spans.max(1))
        .map(|i| {
            let mut attributes = vec![
                kv_str("langfuse.observation.input", input.clone()),
                kv_str("langfuse.observation.output", output.clone()),
                kv_str("langfuse.environment", "bench"),
            ];
            if i == 0 {
                attributes.push(kv_str("langfuse.trace.name", "bench"));
                attributes.push(kv_str("user.id", "bench-user"));
            } else if i % 2 == 0 {
                attributes.push(kv_str("langfuse.observation.type", "generation"));
                attributes.push(kv_str("langfuse.observation.model.name", "gpt-4o-mini"));
                attributes.push(kv_str(
                    "langfuse.observation.usage_details",
                    "{\"input\": 250, \"output\": 250}",
                ));
            }
            let name = if i == 0 {
                "request".to_string()
            } else {
                format!("step-{i}")
            };
            SpanTemplate {
                parent: (i > 0).then_some(0),
                start_ns: i as u64 * 1_000,
                end_ns: i as u64 * 1_000 + 500,
                first_token_ns: None,
                scope: Scope::LangfuseSdk,
                attributes: attributes.len(),
                body: span_body(&name, attributes, None, json),
            }
        })
        .collect();
    TraceTemplate {
        spans,
        duration_ns: 1_000_000,
    }
}

/// Spans an OTLP answer says it refused (`partial_success.rejected_spans`).
fn refused_spans(body: &[u8]) -> u64 {
    if body.first() == Some(&b'{') {
        return serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                let rejected = &v["partialSuccess"]["rejectedSpans"];
                rejected
                    .as_u64()
                    .or_else(|| rejected.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0);
    }
    ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map(|p| p.rejected_spans.max(0) as u64)
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

/// What the payload looks like: sizes per span (raw, as sent, and as one deflate of the whole
/// export would make it), the text's gzip ratio, and a sample span's attributes.
fn describe(args: &Args, pool: &Pool) -> Value {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    // Each export of the pool once (the request number that picks it does not matter here).
    let exports: Vec<(Export, Export)> = (0..pool.exports.len())
        .map(|e| {
            let ids = Ids {
                seed: 1,
                worker: 0,
                n: e as u64,
            };
            let template = &pool.exports[e];
            (
                pool.write_export(template, false, &ids, now),
                pool.write_export(template, true, &ids, now),
            )
        })
        .collect();
    let spans: usize = exports.iter().map(|(e, _)| e.spans).sum();
    let raw: usize = exports.iter().map(|(e, _)| e.body.len()).sum();
    let sent: usize = exports.iter().map(|(_, g)| g.body.len()).sum();
    let whole: usize = exports.iter().map(|(e, _)| gzip_len(&e.body)).sum();
    let per_span = |bytes: usize| (bytes as f64 / spans as f64).round();

    let templates: Vec<&SpanTemplate> = pool.traces.iter().flat_map(|t| &t.spans).collect();
    let mean = |f: &dyn Fn(&SpanTemplate) -> usize| {
        round1(templates.iter().map(|s| f(s)).sum::<usize>() as f64 / templates.len() as f64)
    };
    let timer = Instant::now();
    let built: usize = (0..200)
        .map(|n| {
            let ids = Ids {
                seed: 2,
                worker: 0,
                n,
            };
            pool.export(!args.no_gzip, &ids, now).body.len()
        })
        .sum();
    let micros_per_export = timer.elapsed().as_secs_f64() * 1e6 / 200.0;
    std::hint::black_box(built);
    let mut report = json!({
        "payload": format!("{:?}", args.payload).to_lowercase(),
        "microseconds_to_build_an_export": micros_per_export.round(),
        "encoding": if args.json { "json" } else { "protobuf" },
        "pool_traces": pool.traces.len(),
        "spans_per_trace": round1(templates.len() as f64 / pool.traces.len() as f64),
        "spans_per_export": round1(spans as f64 / exports.len() as f64),
        "attributes_per_span": mean(&|s| s.attributes),
        "openinference_span_share": (1000.0
            * templates.iter().filter(|s| s.scope == Scope::OpenInference).count() as f64
            / templates.len() as f64)
            .round()
            / 1000.0,
        "bytes_per_span": {
            "raw": per_span(raw),
            "sent_gzip": per_span(sent),
            "whole_export_gzip": per_span(whole),
        },
    });
    if args.payload == Payload::Realistic {
        let traces = workload::traces(args.seed, args.pool_traces.max(1), args.io_bytes);
        let observations: Vec<&Observation> = traces.iter().flat_map(|t| &t.observations).collect();
        let mean = |f: &dyn Fn(&Observation) -> usize| {
            (observations.iter().map(|o| f(o)).sum::<usize>() as f64 / observations.len() as f64)
                .round()
        };
        report["text_bytes_per_span"] = json!({
            "input": mean(&|o| as_text(&o.input).len()),
            "output": mean(&|o| as_text(&o.output).len()),
        });
        let ratio = |texts: &[String]| {
            let all = texts.concat();
            (all.len() as f64 / gzip_len(all.as_bytes()) as f64 * 100.0).round() / 100.0
        };
        let prose = common::prose::Prose::new();
        let mut rng = common::prose::Rng::new(args.seed);
        let distinct: Vec<String> = (0..200).map(|_| prose.text(&mut rng, 1000)).collect();
        // The text of the first export's spans, deflated together as the export is.
        let first_export: Vec<String> = traces[..pool.exports[0].traces]
            .iter()
            .flat_map(|t| &t.observations)
            .map(|o| as_text(&o.input) + &as_text(&o.output))
            .collect();
        report["text_gzip_ratio"] = json!({
            "prose": ratio(&distinct),
            "export": ratio(&first_export),
        });
        // A sample: the first generation span of each scope, values cut to 100 characters.
        for (scope, kind) in [
            (0, "sample_langfuse_generation"),
            (1, "sample_openinference_llm"),
        ] {
            let Some(sample) = traces.iter().find_map(|t| {
                t.observations
                    .iter()
                    .find(|o| {
                        o.kind == Kind::Generation && t.openinference_generations == (scope == 1)
                    })
                    .map(|o| (t, o))
            }) else {
                continue;
            };
            let attributes = if scope == 1 {
                openinference_attributes(sample.0, sample.1)
            } else {
                langfuse_attributes(sample.0, sample.1, false)
            };
            let shown: serde_json::Map<String, Value> = attributes
                .iter()
                .map(|a| {
                    let value = match attribute_json(a)["value"]
                        .as_object()
                        .and_then(|o| o.values().next())
                    {
                        Some(Value::String(s)) if s.len() > 100 => {
                            let cut = s
                                .char_indices()
                                .take_while(|(i, _)| *i < 100)
                                .last()
                                .map_or(0, |(i, _)| i);
                            json!(format!("{}… ({} bytes)", &s[..cut], s.len()))
                        }
                        Some(v) => v.clone(),
                        None => Value::Null,
                    };
                    (a.key.clone(), value)
                })
                .collect();
            report[kind] = Value::Object(shown);
        }
    }
    report
}

async fn count_landed(http: &reqwest::Client, args: &Args) -> u64 {
    let query = format!(
        "SELECT uniqExact(id) FROM {}.observations WHERE project_id = '{}'",
        args.clickhouse_database, args.project_id
    );
    match http.post(&args.clickhouse_url).body(query).send().await {
        Ok(r) => r
            .text()
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    anyhow::ensure!(
        (1..=4000).contains(&args.batch),
        "--batch must be 1 to 4000"
    );
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
    if let Some(dir) = &args.write_exports {
        std::fs::create_dir_all(dir)?;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        for (n, template) in pool.exports.iter().enumerate() {
            let ids = Ids {
                seed: args.seed,
                worker: 0,
                n: n as u64,
            };
            let export = pool.write_export(template, !args.no_gzip, &ids, now);
            std::fs::write(dir.join(format!("export-{n:04}.bin")), &export.body)?;
        }
        eprintln!(
            "{} exports written to {}",
            pool.exports.len(),
            dir.display()
        );
        return Ok(());
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let seed = (chrono::Utc::now().timestamp() as u64 & 0xffff).max(1);
    let answers = Arc::new(Answers::new(200));
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let sent_spans = Arc::new(AtomicU64::new(0));
    let sent_requests = Arc::new(AtomicU64::new(0));
    // What an exporter deflating each export as a whole would send, estimated on a few of the
    // pool's.
    let whole_export_gzip = {
        let ids = Ids {
            seed,
            worker: 0,
            n: 0,
        };
        let sample: Vec<Export> = pool
            .exports
            .iter()
            .take(2)
            .map(|e| pool.write_export(e, false, &ids, 1_750_000_000_000_000_000))
            .collect();
        let bytes: usize = sample.iter().map(|e| gzip_len(&e.body)).sum();
        (bytes as f64 / sample.iter().map(|e| e.spans).sum::<usize>() as f64).round()
    };
    let landed_at_start = count_landed(&http, &args).await;
    let spans_per_export = pool.exports.iter().map(|e| e.holes.len()).sum::<usize>() as f64
        / pool.exports.len() as f64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let per_connection_interval = (args.rate > 0).then(|| {
        let exports_per_second = args.rate as f64 / spans_per_export;
        Duration::from_secs_f64(args.concurrency as f64 / exports_per_second)
    });

    // One trace in twenty exports is polled through the read API until it reads back whole, oldest
    // first.
    let (marker_tx, mut marker_rx) =
        tokio::sync::mpsc::unbounded_channel::<(String, usize, Instant)>();
    let lag_poller = {
        let (http, args) = (http.clone(), args.clone());
        tokio::spawn(async move {
            let mut pending: Vec<(String, usize, Instant)> = Vec::new();
            let mut lags = Vec::new();
            let mut drain_deadline = None;
            loop {
                while let Ok(marker) = marker_rx.try_recv() {
                    pending.push(marker);
                }
                if drain_deadline.is_none() && marker_rx.is_closed() && marker_rx.is_empty() {
                    drain_deadline = Some(Instant::now() + Duration::from_secs(args.drain_seconds));
                }
                // Markers land about in the order they were accepted: the oldest one not yet
                // whole ends this round, so the probe costs the server a request or so per tick
                // however large the backlog, instead of one per pending marker.
                let mut still = Vec::new();
                for (trace_id, spans, accepted_at) in pending {
                    if !still.is_empty() {
                        still.push((trace_id, spans, accepted_at));
                        continue;
                    }
                    let whole = match http
                        .get(format!("{}/api/public/traces/{trace_id}", args.url))
                        .basic_auth(&args.public_key, Some(&args.secret_key))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().as_u16() == 200 => {
                            r.json::<Value>()
                                .await
                                .ok()
                                .and_then(|t| t["observations"].as_array().map(Vec::len))
                                == Some(spans)
                        }
                        _ => false,
                    };
                    if whole {
                        lags.push(accepted_at.elapsed().as_secs_f64());
                    } else {
                        still.push((trace_id, spans, accepted_at));
                    }
                }
                pending = still;
                let done = drain_deadline.is_some() && pending.is_empty();
                if done || drain_deadline.is_some_and(|d| Instant::now() > d) {
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
        let (raw_bytes, sent_bytes, sent_spans, sent_requests) = (
            raw_bytes.clone(),
            sent_bytes.clone(),
            sent_spans.clone(),
            sent_requests.clone(),
        );
        let marker_tx = marker_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            let mut next = Instant::now();
            let content_type = if args.json {
                "application/json"
            } else {
                "application/x-protobuf"
            };
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
                let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
                let export = pool.export(!args.no_gzip, &ids, now);
                raw_bytes.fetch_add(export.raw_len as u64, Ordering::Relaxed);
                sent_bytes.fetch_add(export.body.len() as u64, Ordering::Relaxed);
                sent_spans.fetch_add(export.spans as u64, Ordering::Relaxed);
                sent_requests.fetch_add(1, Ordering::Relaxed);
                let mut post = http
                    .post(format!("{}/api/public/otel/v1/traces", args.url))
                    .basic_auth(&args.public_key, Some(&args.secret_key))
                    .header("content-type", content_type)
                    .body(export.body);
                if !args.no_gzip {
                    post = post.header("content-encoding", "gzip");
                }
                let sent = Instant::now();
                let response = post.send().await;
                let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
                if answers
                    .record(response, export.spans as u64, refused_spans)
                    .await
                {
                    latencies.push(elapsed);
                    if n.is_multiple_of(args.probe_every) {
                        let (trace_id, spans) = export.marker;
                        let _ = marker_tx.send((trace_id, spans, Instant::now()));
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
    let mut landed = count_landed(&http, &args).await - landed_at_start;
    while landed < accepted && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        landed = count_landed(&http, &args).await - landed_at_start;
    }
    let landed_seconds = started.elapsed().as_secs_f64();

    latencies.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    let sent_spans = sent_spans.load(Ordering::Relaxed).max(1) as f64;
    let sent_requests = sent_requests.load(Ordering::Relaxed).max(1) as f64;
    let sent_bytes = sent_bytes.load(Ordering::Relaxed) as f64;
    let report = json!({
        "load_seconds": round1(load_seconds),
        "concurrency": args.concurrency,
        "payload": format!("{:?}", args.payload).to_lowercase(),
        "spans_per_export": round1(sent_spans / sent_requests),
        "io_bytes_per_span": args.io_bytes * 2,
        "encoding": if args.json { "json" } else { "protobuf" },
        "gzip": !args.no_gzip,
        "bytes_per_span": {
            "raw": (raw_bytes.load(Ordering::Relaxed) as f64 / sent_spans).round(),
            "sent": (sent_bytes / sent_spans).round(),
            "whole_export_gzip": whole_export_gzip,
        },
        "mean_body_kib": round1(sent_bytes / sent_requests / 1024.0),
        "target_rate": args.rate,
        "accepted_spans": accepted,
        "accepted_spans_per_second": (accepted as f64 / load_seconds).round(),
        "request_latency_ms": {
            "p50": round1(percentile(&latencies, 0.50)),
            "p99": round1(percentile(&latencies, 0.99)),
            "max": round1(latencies.last().copied().unwrap_or(f64::NAN)),
        },
        "responses": answers.json(),
        "spans_landed": landed,
        "visible_spans_per_second": (landed as f64 / landed_seconds).round(),
        "accept_to_readable_lag_s": {
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
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use std::io::Read;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["otel_load"];
        if !extra.contains(&"--pool-traces") {
            argv.extend_from_slice(&["--pool-traces", "16"]);
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

    /// The spliced gzip export inflates to the plain one, which decodes to whole traces with
    /// the ids, parents and times the request was given.
    #[test]
    fn exports_decode_with_their_ids_and_times() {
        let args = args(&[]);
        let pool = Pool::new(&args);
        let ids = Ids {
            seed: 3,
            worker: 2,
            n: 5,
        };
        let now = 1_750_000_000_000_000_000;
        let plain = pool.export(false, &ids, now);
        let gzip = pool.export(true, &ids, now);
        assert_eq!(gunzip(&gzip.body), plain.body);
        assert_eq!(gzip.raw_len, plain.body.len());

        let request = ExportTraceServiceRequest::decode(plain.body.as_slice()).unwrap();
        let resource = &request.resource_spans[0];
        assert!(resource.resource.as_ref().unwrap().attributes.len() >= 8);
        let spans: Vec<&Span> = resource.scope_spans.iter().flat_map(|s| &s.spans).collect();
        assert_eq!(spans.len(), plain.spans);
        assert!(plain.spans >= 100);
        let span_ids: std::collections::HashSet<&[u8]> =
            spans.iter().map(|s| s.span_id.as_slice()).collect();
        assert_eq!(span_ids.len(), spans.len());
        for span in &spans {
            assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
            assert!(span.end_time_unix_nano <= now);
            if !span.parent_span_id.is_empty() {
                let parent = spans
                    .iter()
                    .find(|p| p.span_id == span.parent_span_id)
                    .expect("the parent in the export");
                assert_eq!(parent.trace_id, span.trace_id);
            }
        }
        let marker = hex::decode(&plain.marker.0).unwrap();
        let in_marker = spans.iter().filter(|s| s.trace_id == marker).count();
        assert_eq!(in_marker, plain.marker.1);
        assert_eq!(
            spans
                .iter()
                .filter(|s| s.trace_id == marker && s.parent_span_id.is_empty())
                .count(),
            1
        );
        let generation = spans
            .iter()
            .find(|s| {
                s.attributes
                    .iter()
                    .any(|a| a.key == "langfuse.observation.completion_start_time")
            })
            .expect("a Langfuse generation");
        assert!(generation.attributes.len() >= 12);
    }

    #[test]
    fn json_exports_are_otlp_json() {
        let args = args(&["--json"]);
        let pool = Pool::new(&args);
        let ids = Ids {
            seed: 3,
            worker: 0,
            n: 1,
        };
        let export = pool.export(false, &ids, 1_750_000_000_000_000_000);
        let value: Value = serde_json::from_slice(&export.body).unwrap();
        let spans: Vec<&Value> = value["resourceSpans"][0]["scopeSpans"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["spans"].as_array().unwrap())
            .collect();
        assert_eq!(spans.len(), export.spans);
        assert_eq!(spans[0]["traceId"].as_str().unwrap().len(), 32);
        assert!(spans[0]["attributes"].as_array().unwrap().len() >= 4);
        assert!(spans
            .iter()
            .all(|s| s["kind"] == 1 && s["name"].is_string()));
        let gzip = pool.export(true, &ids, 1_750_000_000_000_000_000);
        assert_eq!(gunzip(&gzip.body), export.body);
    }

    #[test]
    fn the_synthetic_payload_is_one_trace_of_a_batch_of_spans() {
        let args = args(&["--payload", "synthetic", "--batch", "10"]);
        let pool = Pool::new(&args);
        let ids = Ids {
            seed: 1,
            worker: 0,
            n: 0,
        };
        let export = pool.export(false, &ids, 1_750_000_000_000_000_000);
        let request = ExportTraceServiceRequest::decode(export.body.as_slice()).unwrap();
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 10);
        assert_eq!(export.marker.1, 10);
        let input = spans[3]
            .attributes
            .iter()
            .find(|a| a.key == "langfuse.observation.input")
            .unwrap();
        assert!(matches!(
            &input.value.as_ref().unwrap().value,
            Some(any_value::Value::StringValue(s)) if s.contains("qqqq")
        ));
    }

    /// What a realistic export costs on the wire: ~1 KB of input and ~1 KB of output per span
    /// deflate to 600–800 bytes, as real ones do, and the text alone about three times.
    #[test]
    fn realistic_spans_deflate_like_real_ones() {
        let args = args(&["--pool-traces", "64"]);
        let pool = Pool::new(&args);
        let description = describe(&args, &pool);
        let sent = description["bytes_per_span"]["sent_gzip"].as_f64().unwrap();
        assert!((600.0..=800.0).contains(&sent), "{description}");
        let ratio = description["text_gzip_ratio"]["prose"].as_f64().unwrap();
        assert!((2.5..=3.5).contains(&ratio), "{description}");
    }
}
