//! Stored values back to the JSON the API answers with, shared by every area that shows traces,
//! observations, scores or sessions.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// Stored text back to JSON: what was JSON is returned as JSON, anything else as a string.
pub fn json_text(text: &Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
    }
}

/// Metadata pairs as one object, each value back to JSON.
pub fn metadata(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), json_text(&Some(v.clone()))))
            .collect::<Map<String, Value>>(),
    )
}

/// Seconds from `from` to `to`, null while `to` is unknown.
pub fn seconds_between(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Value {
    match to {
        Some(to) => json!((to - from).num_milliseconds() as f64 / 1000.0),
        None => Value::Null,
    }
}

/// A number as JavaScript writes it: `200000`, not `200000.0`, so answers read as Langfuse's do.
pub fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_numbers_are_written_without_a_fraction() {
        assert_eq!(number(200000.0).to_string(), "200000");
        assert_eq!(number(0.0000025).to_string(), "2.5e-6");
        assert_eq!(number(1.5).to_string(), "1.5");
    }
}
