//! Query parameters, paging and cursors for every list of the API, by one set of rules:
//!
//! - A scalar parameter ([`Query::single`]) is given once; a repeated key is refused, as a list
//!   where a string belongs.
//! - An array parameter of the spec ([`Query::values`], `tags`, `environment`) may be repeated,
//!   and each value may itself be comma-separated.
//! - A comma-separated parameter ([`Query::list`]) is one value split on commas.
//! - Times ([`Query::time`]) are ISO 8601 date-times, or dates (midnight UTC), as Langfuse's
//!   `z.coerce.date()` takes them; numbers read as JavaScript's `Number()`.
//! - An empty value is a value (`parentObservationId=` asks for observations without a parent, and
//!   `toStartTime=` is refused), except on the endpoints where Langfuse reads an empty value as
//!   absent (prompts, v3 scores), which read their query [`Query::empty_as_absent`].
//! - Page-numbered lists take `page` and `limit` ([`Query::page`]) and answer [`page_meta`];
//!   cursor-paged lists take base64 JSON cursors ([`decode_cursor`]).
//!
//! Every refusal is 400 "Invalid query parameters: ..." ([`bad`]).

use actix_web::HttpRequest;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::domain::time::parse_time;
use crate::http::error::ApiError;

pub fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("Invalid query parameters: {message}"))
}

/// The query string as pairs, in order, repeated keys kept.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(req: &HttpRequest) -> Result<Query, ApiError> {
        Query::parse(req.query_string())
    }

    pub fn parse(query_string: &str) -> Result<Query, ApiError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query_string)
            .map(Query)
            .map_err(bad)
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Query {
        Query(pairs)
    }

    /// The same query without the parameters given with an empty value.
    pub fn empty_as_absent(self) -> Query {
        Query(self.0.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    }

    /// Every key given, in order, repeated ones once each time.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

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

    /// An integer from 1.
    pub fn positive_integer(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.single(key)?
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad(format!("{key} must be a positive integer, not {v:?}")))
            })
            .transpose()
    }

    /// [`Query::single`], owned.
    pub fn text(&self, key: &str) -> Result<Option<String>, ApiError> {
        Ok(self.single(key)?.map(str::to_string))
    }

    /// A comma-separated list, trimmed, without empty items; `None` when nothing is left.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        Ok(self.single(key)?.and_then(split_list))
    }

    /// An array parameter: every value of a repeated key, each split on commas, trimmed, without
    /// empty items.
    pub fn values(&self, key: &str) -> Vec<String> {
        self.all(key)
            .into_iter()
            .filter_map(split_list)
            .flatten()
            .collect()
    }

    /// A date-time (or a date, at midnight UTC).
    pub fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.single(key)?.map(|v| time_value(key, v)).transpose()
    }

    /// `page` (from 1) and `limit` (from 1 to `max_limit`, `default_limit` when absent).
    pub fn page(&self, default_limit: u64, max_limit: u64) -> Result<Page, ApiError> {
        let page = self.positive_integer("page")?.unwrap_or(1);
        let limit = self.positive_integer("limit")?.unwrap_or(default_limit);
        if limit > max_limit {
            return Err(bad(format!("limit must be at most {max_limit}")));
        }
        Ok(Page { page, limit })
    }
}

/// The time `value` of the parameter `key`, by [`loose_time`].
pub fn time_value(key: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    loose_time(value).ok_or_else(|| {
        bad(format!(
            "{key} {value:?} is not a date-time (ISO 8601, or a date)"
        ))
    })
}

/// A page of a page-numbered list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// From 1.
    pub page: u64,
    pub limit: u64,
}

impl Page {
    pub fn offset(self) -> u64 {
        self.page.saturating_sub(1) * self.limit
    }
}

/// The `meta` of a page-numbered list's answer.
pub fn page_meta(page: Page, total: u64) -> Value {
    json!({
        "page": page.page,
        "limit": page.limit,
        "totalItems": total,
        "totalPages": total.div_ceil(page.limit),
    })
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
            ("d".to_string(), "1,2".to_string()),
            ("d".to_string(), " 3".to_string()),
        ];
        let params = Query::from_pairs(pairs);
        assert_eq!(
            params.list("a").unwrap(),
            Some(vec!["x".into(), "y".into()])
        );
        assert_eq!(params.list("c").unwrap(), None);
        assert!(params.single("b").is_err());
        assert_eq!(params.single("z").unwrap(), None);
        assert_eq!(params.values("d"), vec!["1", "2", "3"]);
        assert!(params.values("z").is_empty());
    }

    #[test]
    fn times_and_pages() {
        let params =
            Query::parse("a=2024-05-01T10:00:00.000Z&b=2024-05-01&c=yesterday&page=2&limit=7")
                .unwrap();
        assert_eq!(
            params.time("a").unwrap().unwrap().to_rfc3339(),
            "2024-05-01T10:00:00+00:00"
        );
        assert_eq!(
            params.time("b").unwrap().unwrap().to_rfc3339(),
            "2024-05-01T00:00:00+00:00"
        );
        assert!(params.time("c").is_err());
        let page = params.page(50, 100).unwrap();
        assert_eq!((page.page, page.limit, page.offset()), (2, 7, 7));
        assert_eq!(page_meta(page, 15)["totalPages"], 3);
        assert!(Query::parse("limit=101").unwrap().page(50, 100).is_err());
        assert!(Query::parse("page=0").unwrap().page(50, 100).is_err());
        assert_eq!(Query::parse("").unwrap().page(50, 100).unwrap().limit, 50);
    }
}
