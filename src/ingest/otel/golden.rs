//! Golden tests: one file per convention under `tests/otel-golden/`, each an OTLP/JSON export
//! (`request`) and the envelopes it must become (`envelopes`), checked by hand against Langfuse's
//! rules. `UPDATE_GOLDEN=1 cargo test --lib golden` rewrites `envelopes` from the current code, for
//! reviewing a deliberate change as a diff.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::{decode, map_export, Encoding};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/otel-golden")
}

fn check(name: &str) {
    let path = golden_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut golden: Value = serde_json::from_str(&text).unwrap();
    let request = serde_json::to_vec(&golden["request"]).unwrap();
    let export = decode(Encoding::Json, &request).expect("the request decodes");
    let received_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mapped = map_export(&export, received_at);
    let actual = Value::Array(mapped.envelopes.into_iter().map(|(e, _)| e).collect());
    let rejected = Value::Array(
        mapped
            .rejected
            .iter()
            .map(|(span, reason)| serde_json::json!({"spanId": span.span_id, "reason": reason}))
            .collect(),
    );
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        golden["envelopes"] = actual;
        golden["rejected"] = rejected;
        std::fs::write(&path, serde_json::to_string_pretty(&golden).unwrap() + "\n").unwrap();
        return;
    }
    assert_eq!(
        rejected,
        golden
            .get("rejected")
            .cloned()
            .unwrap_or(Value::Array(vec![])),
        "{name}: rejected spans"
    );
    let expected = golden["envelopes"].as_array().expect("envelopes");
    let actual = actual.as_array().unwrap();
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(
            a,
            e,
            "{name}: envelope {i} differs\nactual:   {}\nexpected: {}",
            serde_json::to_string_pretty(a).unwrap(),
            serde_json::to_string_pretty(e).unwrap()
        );
    }
    assert_eq!(actual.len(), expected.len(), "{name}: number of envelopes");
}

#[test]
fn langfuse_sdk() {
    check("langfuse-sdk");
}

#[test]
fn gen_ai() {
    check("gen-ai");
}

#[test]
fn gen_ai_legacy_prompt_completion() {
    check("gen-ai-legacy");
}

#[test]
fn openinference() {
    check("openinference");
}

#[test]
fn vercel_ai_sdk() {
    check("vercel-ai-sdk");
}

#[test]
fn openllmetry_traceloop() {
    check("traceloop");
}

#[test]
fn trace_fields_from_root_and_child_spans() {
    check("trace-fields");
}

#[test]
fn experiment_runner_attributes() {
    check("experiment");
}
