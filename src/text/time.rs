//! RFC 3339 timestamps as the API writes them: UTC, milliseconds, `Z`
//! (`2026-11-23T12:00:00.000Z`). Written in one form only, they sort as text in time order,
//! which the audit trail's `since` relies on.

use chrono::{DateTime, SecondsFormat, Utc};

/// `millis` after the Unix epoch, as RFC 3339 with milliseconds, UTC.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn rfc3339_millis(millis: u64) -> String {
    let millis = i64::try_from(millis).unwrap_or(i64::MAX);
    DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Any RFC 3339 timestamp (any offset, any precision), rewritten in the API's own form; `None`
/// when `text` is not one.
pub fn normalise_rfc3339(text: &str) -> Option<String> {
    let parsed = DateTime::parse_from_rfc3339(text).ok()?;
    Some(
        parsed
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// Seconds after the Unix epoch of an RFC 3339 timestamp; `None` when `text` is not one.
pub fn unix_seconds(text: &str) -> Option<i64> {
    Some(DateTime::parse_from_rfc3339(text).ok()?.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_form_that_sorts_as_text() {
        assert_eq!(
            rfc3339_millis(1_795_435_200_000),
            "2026-11-23T12:00:00.000Z"
        );
        assert_eq!(
            normalise_rfc3339("2026-11-23T13:00:00+01:00").as_deref(),
            Some("2026-11-23T12:00:00.000Z")
        );
        assert_eq!(
            normalise_rfc3339("2026-11-23T12:00:00.5Z").as_deref(),
            Some("2026-11-23T12:00:00.500Z")
        );
        assert_eq!(normalise_rfc3339("2026-11-23"), None);
        assert_eq!(normalise_rfc3339("yesterday"), None);
        assert_eq!(
            unix_seconds("2026-11-23T12:00:00.000Z"),
            Some(1_795_435_200)
        );
        assert_eq!(unix_seconds("yesterday"), None);
    }
}
