//! OTLP/HTTP request bodies → [`Export`]: gzip, protobuf and OTLP/JSON.
//!
//! Protobuf is decoded by `prost` into the OpenTelemetry project's own generated message types
//! (`opentelemetry-proto`), so the wire format follows the spec without hand-written parsing.
//! OTLP/JSON is not protobuf's canonical JSON: ids are hex (not base64), 64-bit integers may be
//! strings or numbers, enums may be names or numbers, and any field may be absent or `null`. It is
//! read with serde into the small structs below, which say exactly that.
//!
//! Every span must carry a valid trace id (16 bytes) and span id (8 bytes), and a parent id, when
//! present, must be 8 bytes: like Langfuse, one span without usable ids rejects the whole export,
//! since such an export is almost always something else (OTLP logs sent to the traces endpoint).

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1 as collector;
use opentelemetry_proto::tonic::common::v1 as common;
use prost::Message;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::ingest::gzip::GzipError;

use super::{Attributes, Export, ResourceSpans, ScopeSpans, Span, SpanEvent, Status};

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type` header; parameters such as `charset` are ignored.
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not gzip, not protobuf, not OTLP/JSON, or cut short.
    #[error("{0}")]
    Malformed(String),
    /// A span whose trace, span or parent id is missing or not an id.
    #[error("{0}")]
    InvalidId(String),
    /// Decompressed, the body is larger than the limit.
    #[error("The decompressed request body exceeds the limit of {0} bytes; send smaller batches")]
    TooLarge(usize),
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes (a small compressed body can
/// expand without bound).
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    crate::ingest::gzip::gunzip(body, limit).map_err(|e| match e {
        GzipError::TooLarge(limit) => DecodeError::TooLarge(limit),
        GzipError::Invalid(_) => DecodeError::Malformed(e.to_string()),
    })
}

/// Decodes an `ExportTraceServiceRequest`.
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<Export, DecodeError> {
    match encoding {
        Encoding::Protobuf => {
            let request = collector::ExportTraceServiceRequest::decode(body).map_err(|e| {
                DecodeError::Malformed(format!(
                    "Invalid request body: not an OTLP ExportTraceServiceRequest in protobuf ({e})"
                ))
            })?;
            from_proto(request)
        }
        Encoding::Json => {
            // serde would also read a struct from an array; an export is an object.
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(DecodeError::Malformed(
                    "Invalid request body: an OTLP/JSON export is a JSON object".into(),
                ));
            }
            let request: JsonRequest = serde_json::from_slice(body).map_err(|e| {
                DecodeError::Malformed(format!(
                    "Invalid request body: not an OTLP ExportTraceServiceRequest in JSON ({e})"
                ))
            })?;
            from_json(request)
        }
    }
}

/// Encodes the answer: an `ExportTraceServiceResponse`, with `partial_success` only when spans
/// were rejected, in the encoding of the request.
pub fn encode_response(encoding: Encoding, rejected_spans: i64, error_message: &str) -> Vec<u8> {
    let partial_success = (rejected_spans > 0 || !error_message.is_empty()).then(|| {
        collector::ExportTracePartialSuccess {
            rejected_spans,
            error_message: error_message.to_string(),
        }
    });
    match encoding {
        Encoding::Protobuf => {
            collector::ExportTraceServiceResponse { partial_success }.encode_to_vec()
        }
        Encoding::Json => {
            let body = match partial_success {
                // int64 is a decimal string in OTLP/JSON.
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            body.to_string().into_bytes()
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Protobuf
// ------------------------------------------------------------------------------------------------

fn from_proto(request: collector::ExportTraceServiceRequest) -> Result<Export, DecodeError> {
    let mut resources = Vec::with_capacity(request.resource_spans.len());
    for rs in request.resource_spans {
        let mut scopes = Vec::with_capacity(rs.scope_spans.len());
        for ss in rs.scope_spans {
            let scope = ss.scope.unwrap_or_default();
            let mut spans = Vec::with_capacity(ss.spans.len());
            for span in ss.spans {
                let trace_id = id_from_bytes(&span.trace_id, 16, "traceId", &span.name)?;
                let span_id = id_from_bytes(&span.span_id, 8, "spanId", &span.name)?;
                let parent_span_id = if span.parent_span_id.is_empty() {
                    None
                } else {
                    Some(id_from_bytes(
                        &span.parent_span_id,
                        8,
                        "parentSpanId",
                        &span.name,
                    )?)
                };
                let status = span.status.unwrap_or_default();
                spans.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    name: span.name,
                    start_time_unix_nano: span.start_time_unix_nano,
                    end_time_unix_nano: span.end_time_unix_nano,
                    attributes: proto_attributes(span.attributes),
                    events: span
                        .events
                        .into_iter()
                        .map(|e| SpanEvent {
                            name: e.name,
                            time_unix_nano: e.time_unix_nano,
                            attributes: proto_attributes(e.attributes),
                        })
                        .collect(),
                    status: Status {
                        code: status.code,
                        message: status.message,
                    },
                });
            }
            scopes.push(ScopeSpans {
                name: scope.name,
                version: scope.version,
                attributes: proto_attributes(scope.attributes),
                spans,
            });
        }
        resources.push(ResourceSpans {
            attributes: proto_attributes(rs.resource.map(|r| r.attributes).unwrap_or_default()),
            scopes,
        });
    }
    Ok(Export { resources })
}

fn id_from_bytes(bytes: &[u8], len: usize, field: &str, span: &str) -> Result<String, DecodeError> {
    if bytes.len() != len {
        return Err(DecodeError::InvalidId(format!(
            "Invalid OTLP trace export: span {span:?} has a {field} of {} bytes, expected {len}; \
             no spans were ingested",
            bytes.len()
        )));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(DecodeError::InvalidId(format!(
            "Invalid OTLP trace export: span {span:?} has an all-zero {field}; no spans were ingested"
        )));
    }
    Ok(hex::encode(bytes))
}

fn proto_attributes(attributes: Vec<common::KeyValue>) -> Attributes {
    let mut out = Attributes::new();
    for kv in attributes {
        if let Some(value) = kv.value.and_then(proto_value) {
            out.insert(kv.key, value);
        }
    }
    out
}

/// An attribute value as plain JSON. Integers stay integers and doubles numbers (a non-finite
/// double becomes its name, since JSON has no NaN); a key-value list becomes an object and bytes
/// their base64 text. An empty value is `None`: the attribute counts as absent.
fn proto_value(value: common::AnyValue) -> Option<Value> {
    use common::any_value::Value as V;
    Some(match value.value? {
        V::StringValue(s) => Value::String(s),
        V::BoolValue(b) => Value::Bool(b),
        V::IntValue(i) => Value::from(i),
        V::DoubleValue(d) => double(d),
        V::ArrayValue(a) => Value::Array(
            a.values
                .into_iter()
                .map(|v| proto_value(v).unwrap_or(Value::Null))
                .collect(),
        ),
        V::KvlistValue(kv) => Value::Object(proto_attributes(kv.values)),
        V::BytesValue(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        // A reference into the profiling signal's string table means nothing for traces.
        V::StringValueStrindex(_) => return None,
    })
}

fn double(d: f64) -> Value {
    serde_json::Number::from_f64(d)
        .map(Value::Number)
        .unwrap_or_else(|| {
            Value::String(if d.is_nan() {
                "NaN".into()
            } else if d > 0.0 {
                "Infinity".into()
            } else {
                "-Infinity".into()
            })
        })
}

// ------------------------------------------------------------------------------------------------
// OTLP/JSON
// ------------------------------------------------------------------------------------------------

/// `null` is the same as absent, for every field.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRequest {
    #[serde(default, deserialize_with = "nullable", alias = "resource_spans")]
    resource_spans: Vec<JsonResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonResourceSpans {
    #[serde(default, deserialize_with = "nullable")]
    resource: JsonResource,
    #[serde(default, deserialize_with = "nullable", alias = "scope_spans")]
    scope_spans: Vec<JsonScopeSpans>,
}

#[derive(Deserialize, Default)]
struct JsonResource {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
}

#[derive(Deserialize, Default)]
struct JsonScopeSpans {
    #[serde(default, deserialize_with = "nullable")]
    scope: JsonScope,
    #[serde(default, deserialize_with = "nullable")]
    spans: Vec<JsonSpan>,
}

#[derive(Deserialize, Default)]
struct JsonScope {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    version: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    #[serde(default, alias = "trace_id")]
    trace_id: Option<Value>,
    #[serde(default, alias = "span_id")]
    span_id: Option<Value>,
    #[serde(default, alias = "parent_span_id")]
    parent_span_id: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable", alias = "start_time_unix_nano")]
    start_time_unix_nano: JsonU64,
    #[serde(default, deserialize_with = "nullable", alias = "end_time_unix_nano")]
    end_time_unix_nano: JsonU64,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
    #[serde(default, deserialize_with = "nullable")]
    events: Vec<JsonEvent>,
    #[serde(default, deserialize_with = "nullable")]
    status: JsonStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsonEvent {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable", alias = "time_unix_nano")]
    time_unix_nano: JsonU64,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JsonKeyValue>,
}

#[derive(Deserialize, Default)]
struct JsonStatus {
    #[serde(default, deserialize_with = "nullable")]
    code: JsonStatusCode,
    #[serde(default, deserialize_with = "nullable")]
    message: String,
}

#[derive(Deserialize)]
struct JsonKeyValue {
    #[serde(default, deserialize_with = "nullable")]
    key: String,
    #[serde(default)]
    value: Option<JsonAnyValue>,
}

/// A 64-bit unsigned integer: a JSON number or a decimal string.
#[derive(Default)]
struct JsonU64(u64);

impl<'de> Deserialize<'de> for JsonU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(JsonU64)
                .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a u64"))),
            Value::String(s) if s.is_empty() => Ok(JsonU64(0)),
            Value::String(s) => s
                .parse()
                .map(JsonU64)
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a u64"))),
            other => Err(serde::de::Error::custom(format!(
                "expected a number or a decimal string, found {other}"
            ))),
        }
    }
}

/// `Status.code`: a number or the enum's name.
#[derive(Default)]
struct JsonStatusCode(i32);

impl<'de> Deserialize<'de> for JsonStatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => Ok(JsonStatusCode(n.as_i64().unwrap_or(0) as i32)),
            Value::String(s) => match s.as_str() {
                "STATUS_CODE_UNSET" => Ok(JsonStatusCode(0)),
                "STATUS_CODE_OK" => Ok(JsonStatusCode(1)),
                "STATUS_CODE_ERROR" => Ok(JsonStatusCode(2)),
                other => other.parse().map(JsonStatusCode).map_err(|_| {
                    serde::de::Error::custom(format!("unknown status code {other:?}"))
                }),
            },
            other => Err(serde::de::Error::custom(format!(
                "expected a status code, found {other}"
            ))),
        }
    }
}

/// `AnyValue`: an object with one of `stringValue`, `boolValue`, `intValue` (number or decimal
/// string), `doubleValue` (number, or "NaN"/"Infinity"/"-Infinity"), `arrayValue`, `kvlistValue`,
/// `bytesValue` (base64). Converted to plain JSON as the protobuf path does; empty is `None`.
struct JsonAnyValue(Option<Value>);

impl<'de> Deserialize<'de> for JsonAnyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            #[serde(default)]
            string_value: Option<String>,
            #[serde(default)]
            bool_value: Option<bool>,
            #[serde(default)]
            int_value: Option<Value>,
            #[serde(default)]
            double_value: Option<Value>,
            #[serde(default)]
            array_value: Option<JsonArray>,
            #[serde(default)]
            kvlist_value: Option<JsonKvList>,
            #[serde(default)]
            bytes_value: Option<String>,
        }
        #[derive(Deserialize, Default)]
        struct JsonArray {
            #[serde(default, deserialize_with = "nullable")]
            values: Vec<Option<JsonAnyValue>>,
        }
        #[derive(Deserialize, Default)]
        struct JsonKvList {
            #[serde(default, deserialize_with = "nullable")]
            values: Vec<JsonKeyValue>,
        }
        use serde::de::Error;
        let Some(raw) = Option::<Raw>::deserialize(d)? else {
            return Ok(JsonAnyValue(None));
        };
        let value =
            if let Some(s) = raw.string_value {
                Some(Value::String(s))
            } else if let Some(b) = raw.bool_value {
                Some(Value::Bool(b))
            } else if let Some(i) = raw.int_value {
                Some(match i {
                    Value::Number(n) if n.is_i64() || n.is_u64() => Value::Number(n),
                    Value::String(s) => Value::from(s.trim().parse::<i64>().map_err(|_| {
                        D::Error::custom(format!("intValue {s:?} is not an int64"))
                    })?),
                    other => {
                        return Err(D::Error::custom(format!(
                            "intValue {other} is not an int64"
                        )))
                    }
                })
            } else if let Some(f) = raw.double_value {
                Some(match f {
                    Value::Number(n) => Value::Number(n),
                    Value::String(s) => match s.as_str() {
                        "NaN" | "Infinity" | "-Infinity" => Value::String(s),
                        _ => double(s.trim().parse::<f64>().map_err(|_| {
                            D::Error::custom(format!("doubleValue {s:?} is not a number"))
                        })?),
                    },
                    other => {
                        return Err(D::Error::custom(format!(
                            "doubleValue {other} is not a number"
                        )))
                    }
                })
            } else if let Some(a) = raw.array_value {
                Some(Value::Array(
                    a.values
                        .into_iter()
                        .map(|v| v.and_then(|v| v.0).unwrap_or(Value::Null))
                        .collect(),
                ))
            } else if let Some(kv) = raw.kvlist_value {
                Some(Value::Object(json_attributes(kv.values)))
            } else if let Some(b) = raw.bytes_value {
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|_| D::Error::custom("bytesValue is not base64"))?;
                Some(Value::String(b))
            } else {
                None
            };
        Ok(JsonAnyValue(value))
    }
}

fn json_attributes(attributes: Vec<JsonKeyValue>) -> Attributes {
    let mut out = Attributes::new();
    for kv in attributes {
        if let Some(value) = kv.value.and_then(|v| v.0) {
            out.insert(kv.key, value);
        }
    }
    out
}

fn from_json(request: JsonRequest) -> Result<Export, DecodeError> {
    let mut resources = Vec::with_capacity(request.resource_spans.len());
    for rs in request.resource_spans {
        let mut scopes = Vec::with_capacity(rs.scope_spans.len());
        for ss in rs.scope_spans {
            let mut spans = Vec::with_capacity(ss.spans.len());
            for span in ss.spans {
                let trace_id = json_id(span.trace_id.as_ref(), 16, "traceId", &span.name)?
                    .ok_or_else(|| missing_id("traceId", &span.name))?;
                let span_id = json_id(span.span_id.as_ref(), 8, "spanId", &span.name)?
                    .ok_or_else(|| missing_id("spanId", &span.name))?;
                let parent_span_id =
                    json_id(span.parent_span_id.as_ref(), 8, "parentSpanId", &span.name)?;
                spans.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    name: span.name,
                    start_time_unix_nano: span.start_time_unix_nano.0,
                    end_time_unix_nano: span.end_time_unix_nano.0,
                    attributes: json_attributes(span.attributes),
                    events: span
                        .events
                        .into_iter()
                        .map(|e| SpanEvent {
                            name: e.name,
                            time_unix_nano: e.time_unix_nano.0,
                            attributes: json_attributes(e.attributes),
                        })
                        .collect(),
                    status: Status {
                        code: span.status.code.0,
                        message: span.status.message,
                    },
                });
            }
            scopes.push(ScopeSpans {
                name: ss.scope.name,
                version: ss.scope.version,
                attributes: json_attributes(ss.scope.attributes),
                spans,
            });
        }
        resources.push(ResourceSpans {
            attributes: json_attributes(rs.resource.attributes),
            scopes,
        });
    }
    Ok(Export { resources })
}

fn missing_id(field: &str, span: &str) -> DecodeError {
    DecodeError::InvalidId(format!(
        "Invalid OTLP trace export: span {span:?} has no {field}; traceId and spanId are required \
         on every span; no spans were ingested"
    ))
}

/// An id in OTLP/JSON: hex, as the spec says; base64 (protobuf's canonical JSON for bytes) is
/// accepted too, told apart by its length. Absent, `null` or empty is `None`.
fn json_id(
    value: Option<&Value>,
    len: usize,
    field: &str,
    span: &str,
) -> Result<Option<String>, DecodeError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(DecodeError::InvalidId(format!(
                "Invalid OTLP trace export: span {span:?} has a {field} that is not a string \
                 ({other}); ids are hex strings in OTLP/JSON; no spans were ingested"
            )))
        }
    };
    let bytes = if text.len() == len * 2 {
        hex::decode(text).ok()
    } else if text.len() == len.div_ceil(3) * 4 {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .filter(|b| b.len() == len)
    } else {
        None
    };
    match bytes {
        Some(bytes) => id_from_bytes(&bytes, len, field, span).map(Some),
        None => Err(DecodeError::InvalidId(format!(
            "Invalid OTLP trace export: span {span:?} has {field} {text:?}, which is not {} hex \
             digits; no spans were ingested",
            len * 2
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1 as trace;

    fn kv(key: &str, value: common::any_value::Value) -> common::KeyValue {
        common::KeyValue {
            key: key.into(),
            value: Some(common::AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn proto_request(trace_id: Vec<u8>, span_id: Vec<u8>) -> Vec<u8> {
        use common::any_value::Value as V;
        collector::ExportTraceServiceRequest {
            resource_spans: vec![trace::ResourceSpans {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![kv("service.name", V::StringValue("svc".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![trace::ScopeSpans {
                    scope: Some(common::InstrumentationScope {
                        name: "langfuse-sdk".into(),
                        version: "5.0.4".into(),
                        ..Default::default()
                    }),
                    spans: vec![trace::Span {
                        trace_id,
                        span_id,
                        name: "root".into(),
                        start_time_unix_nano: 1_700_000_000_123_456_789,
                        end_time_unix_nano: 1_700_000_001_000_000_000,
                        attributes: vec![
                            kv("i", V::IntValue(7)),
                            kv("d", V::DoubleValue(0.5)),
                            kv("b", V::BoolValue(true)),
                            kv(
                                "a",
                                V::ArrayValue(common::ArrayValue {
                                    values: vec![common::AnyValue {
                                        value: Some(V::StringValue("x".into())),
                                    }],
                                }),
                            ),
                            kv("bytes", V::BytesValue(vec![1, 2, 3])),
                        ],
                        status: Some(trace::Status {
                            code: 2,
                            message: "boom".into(),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn protobuf_and_json_decode_to_the_same_export() {
        let proto = decode(
            Encoding::Protobuf,
            &proto_request(vec![0xab; 16], vec![0x01; 8]),
        )
        .unwrap();
        let json = decode(
            Encoding::Json,
            br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
            "scopeSpans":[{"scope":{"name":"langfuse-sdk","version":"5.0.4"},"spans":[{
              "traceId":"ABABABABABABABABABABABABABABABAB","spanId":"0101010101010101","parentSpanId":"",
              "name":"root","kind":"SPAN_KIND_INTERNAL",
              "startTimeUnixNano":"1700000000123456789","endTimeUnixNano":1700000001000000000,
              "attributes":[{"key":"i","value":{"intValue":"7"}},{"key":"d","value":{"doubleValue":0.5}},
                {"key":"b","value":{"boolValue":true}},{"key":"a","value":{"arrayValue":{"values":[{"stringValue":"x"}]}}},
                {"key":"bytes","value":{"bytesValue":"AQID"}},{"key":"empty","value":{}}],
              "status":{"code":"STATUS_CODE_ERROR","message":"boom"}}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(proto, json);
        let span = &json.resources[0].scopes[0].spans[0];
        assert_eq!(span.trace_id, "ab".repeat(16));
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.attributes["i"], 7);
        assert_eq!(span.attributes["bytes"], "AQID");
        assert!(!span.attributes.contains_key("empty"));
        assert_eq!(span.status.code, 2);
    }

    #[test]
    fn bad_ids_reject_the_export() {
        for (trace_id, span_id) in [
            (vec![1; 15], vec![1; 8]),
            (vec![1; 16], vec![]),
            (vec![0; 16], vec![1; 8]),
        ] {
            let err = decode(Encoding::Protobuf, &proto_request(trace_id, span_id)).unwrap_err();
            assert!(matches!(err, DecodeError::InvalidId(_)), "{err}");
        }
        for span in [
            r#"{"spanId":"0101010101010101"}"#,
            r#"{"traceId":"xyz","spanId":"0101010101010101"}"#,
            r#"{"traceId":"abababababababababababababababab","spanId":"01"}"#,
            r#"{"traceId":"abababababababababababababababab","spanId":1}"#,
            r#"{"traceId":"abababababababababababababababab","spanId":"0101010101010101","parentSpanId":"zz"}"#,
        ] {
            let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#);
            let err = decode(Encoding::Json, body.as_bytes()).unwrap_err();
            assert!(matches!(err, DecodeError::InvalidId(_)), "{span}: {err}");
        }
    }

    #[test]
    fn base64_ids_are_accepted_in_json() {
        let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"q6urq6urq6urq6urq6urqw==","spanId":"AQEBAQEBAQE="}]}]}]}"#;
        let export = decode(Encoding::Json, body.as_bytes()).unwrap();
        let span = &export.resources[0].scopes[0].spans[0];
        assert_eq!(span.trace_id, "ab".repeat(16));
        assert_eq!(span.span_id, "01".repeat(8));
    }

    #[test]
    fn malformed_and_truncated_bodies_are_refused() {
        let full = proto_request(vec![0xab; 16], vec![0x01; 8]);
        for cut in [1, full.len() / 2, full.len() - 1] {
            assert!(
                matches!(
                    decode(Encoding::Protobuf, &full[..cut]),
                    Err(DecodeError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        for body in [
            &b"{"[..],
            b"[]",
            b"\"x\"",
            br#"{"resourceSpans":{}}"#,
            b"\xff\xfe",
        ] {
            assert!(matches!(
                decode(Encoding::Json, body),
                Err(DecodeError::Malformed(_))
            ));
        }
        assert_eq!(decode(Encoding::Json, b"{}").unwrap(), Export::default());
        assert_eq!(decode(Encoding::Protobuf, b"").unwrap(), Export::default());
    }

    #[test]
    fn gzip_is_bounded() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(gunzip(&gz, 10_000).unwrap().len(), 10_000);
        assert_eq!(gunzip(&gz, 9_999), Err(DecodeError::TooLarge(9_999)));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            gunzip(&gz[..gz.len() / 2], 100_000),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn responses_are_encoded_like_the_request() {
        assert_eq!(encode_response(Encoding::Json, 0, ""), b"{}");
        let json: Value =
            serde_json::from_slice(&encode_response(Encoding::Json, 2, "bad spans")).unwrap();
        assert_eq!(json["partialSuccess"]["rejectedSpans"], "2");
        assert!(encode_response(Encoding::Protobuf, 0, "").is_empty());
        let decoded = collector::ExportTraceServiceResponse::decode(
            &encode_response(Encoding::Protobuf, 3, "x")[..],
        )
        .unwrap();
        assert_eq!(decoded.partial_success.unwrap().rejected_spans, 3);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type("Application/JSON; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }
}
