//! Office-hours evaluation (spec 20 §3.3): for a local date in the calendar's zone, the open
//! intervals are `(holiday ? ∅ : regular(weekday)) ∪ exceptions(date)`, and nothing outside the
//! effective date ranges when some are configured.
//!
//! Instants are converted to local wall-clock time in the calendar's IANA zone, so the hours
//! follow the zone's offset on every day, DST change days included: on a spring-forward day the
//! skipped local hour simply never occurs, on a fall-back day the repeated hour is open (or
//! closed) both times, as the wall clock says.

use chrono::{Datelike, NaiveDate, TimeZone, Timelike, Utc};

use crate::clock::Millis;
use crate::config::{CalendarConfig, DayHours};

/// Whether `date` lies in an effective range (always, when none are configured).
fn effective(cal: &CalendarConfig, date: NaiveDate) -> bool {
    cal.effective.is_empty() || cal.effective.iter().any(|(a, b)| *a <= date && date <= *b)
}

fn in_hours(hours: &DayHours, minute: u32) -> bool {
    hours.iter().any(|(a, b)| *a <= minute && minute < *b)
}

/// The open intervals of a local date, in minutes from local midnight, sorted and merged.
pub fn open_intervals(cal: &CalendarConfig, date: NaiveDate) -> DayHours {
    if !effective(cal, date) {
        return Vec::new();
    }
    let mut out: DayHours = Vec::new();
    if !cal.holidays.iter().any(|h| h.matches(date))
        && let Some(regular) = cal.weekly.get(date.weekday().num_days_from_monday() as usize)
    {
        out.extend_from_slice(regular);
    }
    for (rule, hours) in &cal.exceptions {
        if rule.matches(date) {
            out.extend_from_slice(hours);
        }
    }
    out.sort_unstable();
    let mut merged: DayHours = Vec::with_capacity(out.len());
    for (a, b) in out {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Whether the office is open at local `minute` (from midnight) of `date`. Allocation-free.
pub fn open_on(cal: &CalendarConfig, date: NaiveDate, minute: u32) -> bool {
    if !effective(cal, date) {
        return false;
    }
    if cal
        .exceptions
        .iter()
        .any(|(rule, hours)| rule.matches(date) && in_hours(hours, minute))
    {
        return true;
    }
    if cal.holidays.iter().any(|h| h.matches(date)) {
        return false;
    }
    cal.weekly
        .get(date.weekday().num_days_from_monday() as usize)
        .is_some_and(|regular| in_hours(regular, minute))
}

/// Whether the office is open at an instant (epoch milliseconds).
pub fn is_open_at(cal: &CalendarConfig, at: Millis) -> bool {
    let Some(utc) = Utc.timestamp_millis_opt(at).single() else {
        return false;
    };
    let local = utc.with_timezone(&cal.timezone);
    open_on(cal, local.date_naive(), local.hour() * 60 + local.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DateRule, parse_timezone};
    use crate::time::{format_iso, parse_iso};

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal(tz: &str, weekly: &str) -> CalendarConfig {
        let mut c = CalendarConfig::always_open("t");
        c.timezone = parse_timezone(tz).unwrap();
        let hours = crate::config::parse_day_hours(weekly).unwrap();
        c.weekly = std::array::from_fn(|_| hours.clone());
        c
    }

    fn at(s: &str) -> Millis {
        parse_iso(s).unwrap()
    }

    /// The UTC instants where openness changes, scanning `from..to` minute by minute.
    fn edges(c: &CalendarConfig, from: &str, to: &str) -> Vec<String> {
        let (mut t, end) = (at(from), at(to));
        let mut was = is_open_at(c, t - 60_000);
        let mut out = Vec::new();
        while t < end {
            let now = is_open_at(c, t);
            if now != was {
                out.push(format!(
                    "{}{}",
                    if now { "open " } else { "close " },
                    format_iso(t)
                ));
            }
            was = now;
            t += 60_000;
        }
        out
    }

    #[test]
    fn precedence_exception_over_holiday_over_regular() {
        let mut c = cal("UTC", "09:00-17:00");
        let xmas = date("2026-12-25");
        c.holidays.push(DateRule::Once(xmas));
        assert_eq!(open_intervals(&c, xmas), vec![]);
        assert!(!is_open_at(&c, at("2026-12-25T10:00:00Z")));
        // A holiday and an exception: the exception hours only.
        c.exceptions
            .push((DateRule::Once(xmas), vec![(18 * 60, 20 * 60)]));
        assert_eq!(open_intervals(&c, xmas), vec![(1080, 1200)]);
        assert!(!is_open_at(&c, at("2026-12-25T10:00:00Z")));
        assert!(is_open_at(&c, at("2026-12-25T18:30:00Z")));
        // Regular + exception (no holiday): the union, merged.
        c.exceptions
            .push((DateRule::Yearly { month: 12, day: 24 }, vec![(16 * 60, 19 * 60)]));
        assert_eq!(open_intervals(&c, date("2026-12-24")), vec![(540, 1140)]);
        assert!(is_open_at(&c, at("2031-12-24T18:59:00Z")));
        assert!(!is_open_at(&c, at("2031-12-24T19:00:00Z")));
        // A recurring holiday.
        c.holidays.push(DateRule::Yearly { month: 7, day: 15 });
        assert!(!is_open_at(&c, at("2029-07-15T10:00:00Z")));
        assert!(is_open_at(&c, at("2029-07-16T10:00:00Z")));
    }

    #[test]
    fn effective_ranges_close_everything_outside() {
        let mut c = cal("UTC", "09:00-17:00");
        c.effective.push((date("2026-03-01"), date("2026-03-31")));
        c.exceptions
            .push((DateRule::Once(date("2026-04-02")), vec![(600, 700)]));
        assert!(is_open_at(&c, at("2026-03-31T10:00:00Z")));
        assert!(!is_open_at(&c, at("2026-04-01T10:00:00Z")));
        assert!(!is_open_at(&c, at("2026-04-02T10:05:00Z")));
        assert!(!is_open_at(&c, at("2026-02-28T10:00:00Z")));
    }

    #[test]
    fn weekdays_and_bounds() {
        let mut c = cal("UTC", "");
        c.weekly[0] = vec![(9 * 60, 24 * 60)]; // Monday 09:00-24:00
        // 2026-11-23 is a Monday.
        assert!(!is_open_at(&c, at("2026-11-23T08:59:59Z")));
        assert!(is_open_at(&c, at("2026-11-23T09:00:00Z")));
        assert!(is_open_at(&c, at("2026-11-23T23:59:00Z")));
        assert!(!is_open_at(&c, at("2026-11-24T00:00:00Z")));
        assert!(!is_open_at(&c, i64::MAX));
    }

    #[test]
    fn new_york_spring_forward_day() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let c = cal("America/New_York", "09:00-17:00");
        assert_eq!(
            edges(&c, "2026-03-07T00:00:00Z", "2026-03-09T00:00:00Z"),
            [
                "open 2026-03-07T14:00:00.000Z",
                "close 2026-03-07T22:00:00.000Z",
                "open 2026-03-08T13:00:00.000Z",
                "close 2026-03-08T21:00:00.000Z",
            ]
        );
        // Hours spanning the gap: 01:00-04:00 local is only two real hours that day.
        let c = cal("America/New_York", "01:00-04:00");
        assert_eq!(
            edges(&c, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"),
            ["open 2026-03-08T06:00:00.000Z", "close 2026-03-08T08:00:00.000Z"]
        );
        // Hours inside the skipped hour never open.
        let c = cal("America/New_York", "02:00-03:00");
        assert!(edges(&c, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z").is_empty());
    }

    #[test]
    fn new_york_fall_back_day() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:00-02:00 happens twice.
        let c = cal("America/New_York", "00:00-02:00");
        assert_eq!(
            edges(&c, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"),
            ["open 2026-11-01T04:00:00.000Z", "close 2026-11-01T07:00:00.000Z"]
        );
        let c = cal("America/New_York", "09:00-17:00");
        assert_eq!(
            edges(&c, "2026-10-31T00:00:00Z", "2026-11-02T00:00:00Z"),
            [
                "open 2026-10-31T13:00:00.000Z",
                "close 2026-10-31T21:00:00.000Z",
                "open 2026-11-01T14:00:00.000Z",
                "close 2026-11-01T22:00:00.000Z",
            ]
        );
    }

    #[test]
    fn paris_change_days() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 2026-10-25: 03:00 CEST falls back to 02:00 CET.
        let c = cal("Europe/Paris", "08:00-20:00");
        assert_eq!(
            edges(&c, "2026-03-28T00:00:00Z", "2026-03-30T00:00:00Z"),
            [
                "open 2026-03-28T07:00:00.000Z",
                "close 2026-03-28T19:00:00.000Z",
                "open 2026-03-29T06:00:00.000Z",
                "close 2026-03-29T18:00:00.000Z",
            ]
        );
        assert_eq!(
            edges(&c, "2026-10-24T00:00:00Z", "2026-10-26T00:00:00Z"),
            [
                "open 2026-10-24T06:00:00.000Z",
                "close 2026-10-24T18:00:00.000Z",
                "open 2026-10-25T07:00:00.000Z",
                "close 2026-10-25T19:00:00.000Z",
            ]
        );
        let c = cal("Europe/Paris", "02:00-03:00");
        assert_eq!(
            edges(&c, "2026-10-25T00:00:00Z", "2026-10-26T00:00:00Z"),
            ["open 2026-10-25T00:00:00.000Z", "close 2026-10-25T02:00:00.000Z"]
        );
        assert!(edges(&c, "2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z").is_empty());
    }
}
