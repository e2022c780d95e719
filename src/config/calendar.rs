//! Office-hours calendars named by `_business_hours_service` (spec 20 §3): a time zone, weekly
//! regular hours, holidays, per-date exceptions (extra open hours) and effective date ranges.
//!
//! ```toml
//! [calendar.office]
//! timezone = "Europe/Paris"                     # IANA name, default UTC
//! holidays = ["2026-12-25", "07-14"]            # a date, or MM-DD recurring every year
//! effective_dates = ["2026-01-01 to 2026-12-31"] # closed outside these ranges (when given)
//! [calendar.office.weekly]
//! mon = "08:00-12:00,13:00-20:00"
//! [calendar.office.exceptions]
//! "2026-12-24" = "09:00-12:00"                  # open these hours whatever else says
//! "12-31" = "10:00-14:00"                       # every year
//! ```
//!
//! Evaluation is in `crate::calendar`.

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;

use super::ConfigError;
use super::values::{Section, TomlTable};

/// Opening intervals of one day, in minutes from local midnight, sorted, not overlapping.
pub type DayHours = Vec<(u32, u32)>;

/// A date a holiday or exception applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRule {
    /// One date.
    Once(NaiveDate),
    /// The same month and day every year.
    Yearly { month: u32, day: u32 },
}

impl DateRule {
    pub fn matches(self, date: NaiveDate) -> bool {
        match self {
            DateRule::Once(d) => d == date,
            DateRule::Yearly { month, day } => date.month() == month && date.day() == day,
        }
    }

    /// `YYYY-MM-DD` or `MM-DD`.
    pub fn parse(text: &str) -> Result<DateRule, String> {
        let text = text.trim();
        if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(DateRule::Once(d));
        }
        let bad = || format!("expected a date YYYY-MM-DD or MM-DD, got '{text}'");
        let (m, d) = text.split_once('-').ok_or_else(bad)?;
        if m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let (month, day): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
        // 2000 is a leap year, so 02-29 is accepted (it applies in leap years only).
        NaiveDate::from_ymd_opt(2000, month, day).ok_or_else(bad)?;
        Ok(DateRule::Yearly { month, day })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CalendarConfig {
    pub name: String,
    pub timezone: Tz,
    /// Monday first.
    pub weekly: [DayHours; 7],
    /// Closed dates (regular hours do not apply).
    pub holidays: Vec<DateRule>,
    /// Extra open hours on a date; always applied, even on a holiday.
    pub exceptions: Vec<(DateRule, DayHours)>,
    /// Inclusive local date ranges; when not empty, the office is closed on any other date.
    pub effective: Vec<(NaiveDate, NaiveDate)>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parses an IANA time zone name, with an error message naming the problem.
pub fn parse_timezone(text: &str) -> Result<Tz, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("unknown time zone '{text}' (use an IANA name such as Europe/Paris)"))
}

impl CalendarConfig {
    /// A calendar open every day, all day, in UTC.
    pub fn always_open(name: &str) -> CalendarConfig {
        CalendarConfig {
            name: name.to_string(),
            timezone: Tz::UTC,
            weekly: std::array::from_fn(|_| vec![(0, 24 * 60)]),
            holidays: Vec::new(),
            exceptions: Vec::new(),
            effective: Vec::new(),
        }
    }

    pub fn parse(file: &str, name: &str, table: &TomlTable) -> Result<CalendarConfig, ConfigError> {
        let place = format!("calendar.{name}");
        let s = Section::new(file, &place, table);
        s.only_known(&["timezone", "weekly", "holidays", "exceptions", "effective_dates"])?;
        let timezone = match s.string("timezone")? {
            Some(text) => parse_timezone(&text).map_err(|p| s.invalid("timezone", p))?,
            None => Tz::UTC,
        };
        let weekly_t = s.table("weekly")?;
        let weekly_place = format!("{place}.weekly");
        let ws = Section::new(file, &weekly_place, &weekly_t);
        ws.only_known(&DAYS)?;
        let mut weekly: [DayHours; 7] = Default::default();
        for (i, day) in DAYS.iter().enumerate() {
            if let Some(text) = ws.string(day)? {
                weekly[i] = parse_day_hours(&text).map_err(|p| ws.invalid(day, p))?;
            }
        }
        let mut holidays = Vec::new();
        for text in s.list("holidays")? {
            holidays.push(DateRule::parse(&text).map_err(|p| s.invalid("holidays", p))?);
        }
        let exceptions_t = s.table("exceptions")?;
        let exceptions_place = format!("{place}.exceptions");
        let es = Section::new(file, &exceptions_place, &exceptions_t);
        let mut exceptions = Vec::new();
        for key in exceptions_t.keys() {
            let rule = DateRule::parse(key).map_err(|p| es.invalid(key, p))?;
            let text = es
                .string(key)?
                .ok_or_else(|| es.invalid(key, "expected hours such as \"09:00-12:00\""))?;
            let hours = parse_day_hours(&text).map_err(|p| es.invalid(key, p))?;
            exceptions.push((rule, hours));
        }
        let mut effective = Vec::new();
        for text in s.list("effective_dates")? {
            effective.push(parse_range(&text).map_err(|p| s.invalid("effective_dates", p))?);
        }
        Ok(CalendarConfig {
            name: name.to_string(),
            timezone,
            weekly,
            holidays,
            exceptions,
            effective,
        })
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DD to YYYY-MM-DD` (inclusive).
fn parse_range(text: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let date = |t: &str| {
        NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
            .map_err(|_| format!("expected YYYY-MM-DD or YYYY-MM-DD to YYYY-MM-DD, got '{text}'"))
    };
    let (a, b) = match text.split_once(" to ") {
        Some((a, b)) => (date(a)?, date(b)?),
        None => {
            let d = date(text)?;
            (d, d)
        }
    };
    if b < a {
        return Err(format!("range '{text}' ends before it starts"));
    }
    Ok((a, b))
}

/// Parses `08:00-12:00,13:00-20:00` (`24:00` allowed as an end).
pub fn parse_day_hours(text: &str) -> Result<DayHours, String> {
    let mut out: DayHours = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("expected HH:MM-HH:MM, got '{part}'"))?;
        let start = parse_hhmm(a.trim()).ok_or_else(|| format!("bad start time in '{part}'"))?;
        let end = parse_hhmm(b.trim()).ok_or_else(|| format!("bad end time in '{part}'"))?;
        if start >= end {
            return Err(format!("interval '{part}' ends before it starts"));
        }
        out.push((start, end));
    }
    out.sort_unstable();
    for pair in out.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(format!("intervals overlap in '{text}'"));
        }
    }
    Ok(out)
}

fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_hours() {
        assert_eq!(parse_day_hours("08:00-20:00").unwrap(), vec![(480, 1200)]);
        assert_eq!(
            parse_day_hours("13:00-20:00, 08:00-12:00").unwrap(),
            vec![(480, 720), (780, 1200)]
        );
        assert_eq!(parse_day_hours("00:00-24:00").unwrap(), vec![(0, 1440)]);
        assert!(
            parse_day_hours("20:00-08:00")
                .unwrap_err()
                .contains("ends before")
        );
        assert!(
            parse_day_hours("08:00-12:00,11:00-13:00")
                .unwrap_err()
                .contains("overlap")
        );
        assert!(parse_day_hours("8-12").is_err());
        assert!(parse_day_hours("08:00-25:00").is_err());
    }

    #[test]
    fn date_rules_and_ranges() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(DateRule::parse("2026-12-25"), Ok(DateRule::Once(d("2026-12-25"))));
        assert_eq!(
            DateRule::parse("07-15"),
            Ok(DateRule::Yearly { month: 7, day: 15 })
        );
        assert!(DateRule::parse("07-15").unwrap().matches(d("2031-07-15")));
        assert!(DateRule::parse("13-01").is_err());
        assert!(DateRule::parse("tomorrow").is_err());
        assert_eq!(
            parse_range("2026-01-01 to 2026-01-31"),
            Ok((d("2026-01-01"), d("2026-01-31")))
        );
        assert!(
            parse_range("2026-02-01 to 2026-01-31")
                .unwrap_err()
                .contains("ends before")
        );
    }

    fn error_of(text: &str) -> String {
        let table: TomlTable = text.parse().unwrap();
        let inner = match table.get("c") {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => panic!("no [c]"),
        };
        CalendarConfig::parse("f.toml", "c", &inner)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_section_and_option() {
        assert!(
            error_of("[c]\ntimezone='Mars/Olympus'\n")
                .starts_with("f.toml: [calendar.c] timezone: unknown time zone 'Mars/Olympus'")
        );
        assert!(
            error_of("[c.weekly]\nmon='09:00-12:00,11:00-14:00'\n")
                .starts_with("f.toml: [calendar.c.weekly] mon: intervals overlap")
        );
        assert!(
            error_of("[c.weekly]\ntue='18:00-09:00'\n")
                .starts_with("f.toml: [calendar.c.weekly] tue: interval '18:00-09:00' ends before")
        );
        assert!(
            error_of("[c.exceptions]\n'2026-02-30'='09:00-10:00'\n")
                .starts_with("f.toml: [calendar.c.exceptions] 2026-02-30: expected a date")
        );
        assert!(
            error_of("[c]\nholidays=['xmas']\n")
                .starts_with("f.toml: [calendar.c] holidays: expected a date")
        );
        assert!(
            error_of("[c]\neffective_dates=['2026-05-01 to 2026-04-01']\n")
                .starts_with("f.toml: [calendar.c] effective_dates: range")
        );
    }
}
