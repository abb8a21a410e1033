//! Date-times as text: what clients may send, and the one form this server writes.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Accepts RFC 3339 (with `Z` or an offset) and, as UTC, an ISO date-time without an offset.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// RFC 3339 in UTC with milliseconds and `Z`, as Langfuse writes timestamps.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn timestamps_with_and_without_offsets_parse() {
        assert!(parse_time("2024-05-01T10:00:00Z").is_some());
        assert!(parse_time("2024-05-01T10:00:00.123456+02:00").is_some());
        assert!(parse_time("2024-05-01T10:00:00.123").is_some());
        assert!(parse_time("2024-05-01").is_none());
    }

    #[test]
    fn offsets_and_naive_times_are_read_as_the_same_utc_instant() {
        let expected = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
        assert_eq!(parse_time("2024-05-01T10:00:00+02:00"), Some(expected));
        assert_eq!(parse_time("2024-05-01T08:00:00"), Some(expected));
        assert_eq!(parse_time("2024-05-01 08:00:00.000"), Some(expected));
    }

    #[test]
    fn iso_writes_milliseconds_and_z() {
        let t = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        assert_eq!(iso(t), "2024-05-01T10:00:00.123Z");
        let whole = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
        assert_eq!(iso(whole), "2024-05-01T10:00:00.000Z");
    }

    #[test]
    fn what_iso_writes_parses_back() {
        let t = Utc.timestamp_millis_opt(1_714_557_600_123).unwrap();
        assert_eq!(parse_time(&iso(t)), Some(t));
    }
}
