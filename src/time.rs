//! ISO 8601 timestamps as the API writes and reads them (spec 40 §2.6).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

use crate::clock::Millis;

/// Formats an instant in the canonical wire form `yyyy-MM-ddTHH:mm:ss.SSSZ`.
pub fn format_iso(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => String::new(),
    }
}

/// Parses an instant: the canonical form, the same without milliseconds, or any RFC 3339
/// offset; a timestamp without zone designator is UTC.
pub fn parse_iso(text: &str) -> Option<Millis> {
    parse_iso_in(text, &Utc)
}

/// Like [`parse_iso`], but a timestamp without zone designator is local time in `zone`.
pub fn parse_iso_in<Tz: TimeZone>(text: &str, zone: &Tz) -> Option<Millis> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return zone
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.timestamp_millis());
        }
    }
    None
}

/// Epoch seconds of an instant, as R12 writes its times.
pub fn epoch_seconds(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        let ms = parse_iso("2013-05-28T15:30:00.000Z").unwrap();
        assert_eq!(format_iso(ms), "2013-05-28T15:30:00.000Z");
        assert_eq!(format_iso(ms + 7), "2013-05-28T15:30:00.007Z");
    }

    #[test]
    fn accepted_forms() {
        let utc = parse_iso("2013-05-28T15:30:00.000Z").unwrap();
        assert_eq!(parse_iso("2013-05-28T15:30:00Z"), Some(utc));
        assert_eq!(parse_iso("2013-05-28T17:30:00+02:00"), Some(utc));
        assert_eq!(parse_iso("2013-05-28T17:30:00.000+02:00"), Some(utc));
        assert_eq!(parse_iso("2013-05-28T15:30:00.000"), Some(utc));
        assert_eq!(parse_iso("2013-05-28T15:30:00"), Some(utc));
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "tomorrow",
            "2013-13-28T15:30:00Z",
            "2013-05-28",
            "15:30",
            "2013-05-28T25:00:00Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_time_in_zone() {
        let tz: chrono_tz::Tz = "America/Toronto".parse().unwrap();
        let ms = parse_iso_in("2030-04-13T09:00:00.000", &tz).unwrap();
        assert_eq!(format_iso(ms), "2030-04-13T13:00:00.000Z");
        // An explicit zone wins over the given one.
        assert_eq!(
            parse_iso_in("2030-04-13T09:00:00.000Z", &tz),
            parse_iso("2030-04-13T09:00:00Z")
        );
    }
}
