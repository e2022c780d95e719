//! Office-hours calendars named by `_business_hours_service`: a time zone and weekly hours.

use chrono_tz::Tz;

use super::ConfigError;
use super::values::{Section, TomlTable};

/// Opening intervals of one weekday, in minutes from local midnight, sorted, not overlapping.
pub type DayHours = Vec<(u32, u32)>;

#[derive(Debug, Clone, PartialEq)]
pub struct CalendarConfig {
    pub name: String,
    pub timezone: Tz,
    /// Monday first.
    pub weekly: [DayHours; 7],
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl CalendarConfig {
    pub fn parse(file: &str, name: &str, table: &TomlTable) -> Result<CalendarConfig, ConfigError> {
        let place = format!("calendar.{name}");
        let s = Section::new(file, &place, table);
        s.only_known(&["timezone", "weekly"])?;
        let tz_text = s
            .string("timezone")?
            .ok_or_else(|| s.invalid("timezone", "missing (an IANA name such as Europe/Paris)"))?;
        let timezone: Tz = tz_text.parse().map_err(|_| {
            s.invalid(
                "timezone",
                format!("unknown time zone '{tz_text}' (use an IANA name such as Europe/Paris)"),
            )
        })?;
        let weekly_t = s.table("weekly")?;
        let weekly_place = format!("{place}.weekly");
        let ws = Section::new(file, &weekly_place, &weekly_t);
        ws.only_known(&DAYS)?;
        let mut weekly: [DayHours; 7] = Default::default();
        for (i, day) in DAYS.iter().enumerate() {
            if let Some(text) = ws.string(day)? {
                weekly[i] = parse_day(&text).map_err(|p| ws.invalid(day, p))?;
            }
        }
        Ok(CalendarConfig {
            name: name.to_string(),
            timezone,
            weekly,
        })
    }
}

/// Parses `08:00-12:00,13:00-20:00` (`24:00` allowed as an end).
pub fn parse_day(text: &str) -> Result<DayHours, String> {
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
        assert_eq!(parse_day("08:00-20:00").unwrap(), vec![(480, 1200)]);
        assert_eq!(
            parse_day("13:00-20:00, 08:00-12:00").unwrap(),
            vec![(480, 720), (780, 1200)]
        );
        assert_eq!(parse_day("00:00-24:00").unwrap(), vec![(0, 1440)]);
        assert!(parse_day("20:00-08:00").unwrap_err().contains("ends before"));
        assert!(
            parse_day("08:00-12:00,11:00-13:00")
                .unwrap_err()
                .contains("overlap")
        );
        assert!(parse_day("8-12").is_err());
        assert!(parse_day("08:00-25:00").is_err());
    }
}
