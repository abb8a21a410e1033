//! Query-parameter reading shared by the cursor-paged lists (`v2/observations`, `v3/scores`):
//! single values, comma-separated lists, numbers and dates as Langfuse coerces them, and the
//! base64 JSON cursors.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::http::error::ApiError;
use crate::ingest::event::parse_time;

pub fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("Invalid query parameters: {message}"))
}

/// The query string as pairs, in order, repeated keys kept.
pub struct Params<'a>(pub &'a [(String, String)]);

impl Params<'_> {
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `key`: a repeated key is an error, as a list where a string belongs.
    pub fn single(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.all(key).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(bad(format!("{key} must be given once"))),
        }
    }

    /// A comma-separated list, trimmed, without empty items; `None` when nothing is left.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        Ok(self.single(key)?.and_then(split_list))
    }
}

pub fn split_list(value: &str) -> Option<Vec<String>> {
    let items: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (!items.is_empty()).then_some(items)
}

/// A number as JavaScript's `Number()` reads a query value: surrounding blanks ignored, blank
/// is 0; only finite numbers count.
pub fn js_number(value: &str) -> Option<f64> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Some(0.0);
    }
    // Rust would also read "inf" and "NaN", which are not numbers here.
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
    {
        return None;
    }
    trimmed.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date-time, or a date (midnight UTC), as the lists' `z.coerce.date()` parameters take them.
pub fn loose_time(value: &str) -> Option<DateTime<Utc>> {
    parse_time(value).or_else(|| {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc())
    })
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding (the observation cursor).
pub fn base64_standard(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// URL-safe base64 without padding (the score cursor).
pub fn base64_url(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// A cursor's JSON object, from base64 in either alphabet, padded or not. A `+` that reached us
/// unencoded in a URL arrives as a space, so spaces are read as `+`.
pub fn decode_cursor(text: &str) -> Result<serde_json::Map<String, Value>, ApiError> {
    let invalid = || ApiError::BadRequest("Invalid cursor format".to_string());
    let cleaned = text.trim().replace(' ', "+");
    let bytes = STANDARD
        .decode(&cleaned)
        .or_else(|_| URL_SAFE.decode(&cleaned))
        .map_err(|_| invalid())?;
    match serde_json::from_slice::<Value>(&bytes).map_err(|_| invalid())? {
        Value::Object(map) => Ok(map),
        _ => Err(bad("cursor must encode a JSON object")),
    }
}

/// A date-time field of a decoded cursor (an ISO string, or epoch milliseconds).
pub fn cursor_time(
    cursor: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<DateTime<Utc>, ApiError> {
    match cursor.get(field) {
        Some(Value::String(s)) => loose_time(s),
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(|ms| DateTime::from_timestamp_millis(ms as i64)),
        _ => None,
    }
    .ok_or_else(|| bad(format!("cursor.{field} must be a date-time")))
}

pub fn cursor_text(
    cursor: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<String, ApiError> {
    cursor
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad(format!("cursor.{field} must be a string")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_javascript() {
        assert_eq!(js_number("12"), Some(12.0));
        assert_eq!(js_number(" 1e2 "), Some(100.0));
        assert_eq!(js_number(""), Some(0.0));
        assert_eq!(js_number("-0.5"), Some(-0.5));
        for bad in ["abc", "inf", "NaN", "1,2", "Infinity"] {
            assert_eq!(js_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn cursors_decode_in_either_alphabet() {
        let json = br#"{"a":"b?>"}"#;
        for encoded in [
            base64_standard(json),
            base64_url(json),
            base64_standard(json).trim_end_matches('=').to_string(),
            base64_standard(json).replace('+', " "),
        ] {
            let map = decode_cursor(&encoded).unwrap();
            assert_eq!(map["a"], "b?>", "{encoded}");
        }
        for garbage in [
            "invalid-base64-string",
            "!!!",
            &base64_standard(b"not json"),
        ] {
            let err = decode_cursor(garbage).unwrap_err().to_string();
            assert_eq!(err, "Invalid cursor format", "{garbage}");
        }
    }

    #[test]
    fn lists_and_single_values() {
        let pairs = vec![
            ("a".to_string(), " x, ,y ".to_string()),
            ("b".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), " , ".to_string()),
        ];
        let params = Params(&pairs);
        assert_eq!(
            params.list("a").unwrap(),
            Some(vec!["x".into(), "y".into()])
        );
        assert_eq!(params.list("c").unwrap(), None);
        assert!(params.single("b").is_err());
        assert_eq!(params.single("z").unwrap(), None);
    }
}
