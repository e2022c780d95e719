//! Capacity services named by `_capacity_service` (spec 20 §4, spec 50 §8): per weekday, the
//! number of callbacks that may be booked in each time bucket starting in a given local hour or
//! half hour, and dated exceptions that replace the weekday grid for one date. A `HH00` key covers
//! the whole hour unless the same hour also has a `HH30` key (spec 50 §8.4).
//!
//! ```toml
//! [capacity.agents]
//! timezone = "Europe/Paris"          # IANA name, default UTC
//! [capacity.agents.weekly]
//! mon = { "0900" = 10, "1000" = 10, "1030" = 4 } # HHMM (minutes 00 or 30) -> capacity; missing = 0
//! [capacity.agents.exceptions]
//! "2026-07-04" = { "0800" = 1 }      # also 20260704; replaces the weekday grid that date
//! ```

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::ConfigError;
use super::calendar::parse_timezone;
use super::values::{Section, TomlTable};

/// Capacity per local half hour, 00:00 first (cell `2h` is hh:00, `2h+1` is hh:30).
pub type HourGrid = [u32; 48];

/// The largest capacity accepted (it is reported as a 32-bit signed integer).
pub const MAX_CAPACITY: i64 = i32::MAX as i64;

#[derive(Debug, Clone, PartialEq)]
pub struct CapacityConfig {
    pub name: String,
    pub timezone: Tz,
    /// Monday first.
    pub weekly: [HourGrid; 7],
    pub exceptions: BTreeMap<NaiveDate, HourGrid>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl CapacityConfig {
    pub fn parse(file: &str, name: &str, table: &TomlTable) -> Result<CapacityConfig, ConfigError> {
        let place = format!("capacity.{name}");
        let s = Section::new(file, &place, table);
        s.only_known(&["timezone", "weekly", "exceptions"])?;
        let timezone = match s.string("timezone")? {
            Some(text) => parse_timezone(&text).map_err(|p| s.invalid("timezone", p))?,
            None => Tz::UTC,
        };
        let weekly_t = s.table("weekly")?;
        let weekly_place = format!("{place}.weekly");
        let ws = Section::new(file, &weekly_place, &weekly_t);
        ws.only_known(&DAYS)?;
        let mut weekly = [[0u32; 48]; 7];
        for (i, day) in DAYS.iter().enumerate() {
            if let Some(value) = weekly_t.get(*day) {
                weekly[i] = parse_grid(value).map_err(|p| ws.invalid(day, p))?;
            }
        }
        let exceptions_t = s.table("exceptions")?;
        let exceptions_place = format!("{place}.exceptions");
        let es = Section::new(file, &exceptions_place, &exceptions_t);
        let mut exceptions = BTreeMap::new();
        for (key, value) in &exceptions_t {
            let date = NaiveDate::parse_from_str(key, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(key, "%Y%m%d"))
                .map_err(|_| es.invalid(key, "expected a date YYYY-MM-DD or YYYYMMDD"))?;
            let grid = parse_grid(value).map_err(|p| es.invalid(key, p))?;
            if exceptions.insert(date, grid).is_some() {
                return Err(es.invalid(key, "this date has two exceptions"));
            }
        }
        Ok(CapacityConfig {
            name: name.to_string(),
            timezone,
            weekly,
            exceptions,
        })
    }
}

/// `{ "0900" = 10, "1000" = 10 }` (also `"09:00"` or `"9"`).
fn parse_grid(value: &toml::Value) -> Result<HourGrid, String> {
    let toml::Value::Table(table) = value else {
        return Err("expected a table of hour = capacity, such as { \"0900\" = 10 }".into());
    };
    let mut grid = [0u32; 48];
    let mut explicit = [false; 48];
    let mut entries = Vec::new();
    for (key, count) in table {
        let cell = parse_cell(key).ok_or_else(|| {
            format!("'{key}' is not a slot of the day (HHMM with minutes 00 or 30, from 0000 to 2330)")
        })?;
        let n = match count {
            toml::Value::Integer(n) => Some(*n),
            toml::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let n = match n {
            Some(n) if (0..=MAX_CAPACITY).contains(&n) => n as u32,
            Some(n) => {
                return Err(format!(
                    "capacity at {key} must be a whole number from 0 to {MAX_CAPACITY}, got {n}"
                ));
            }
            None => return Err(format!("capacity at {key} must be a whole number, got {count}")),
        };
        if let Some(e) = explicit.get_mut(cell) {
            *e = true;
        }
        entries.push((cell, n));
    }
    for (cell, n) in entries {
        if let Some(c) = grid.get_mut(cell) {
            *c = n;
        }
        // An hour key also covers the half hour, unless that has its own value.
        if cell % 2 == 0
            && !explicit.get(cell + 1).copied().unwrap_or(true)
            && let Some(c) = grid.get_mut(cell + 1)
        {
            *c = n;
        }
    }
    Ok(grid)
}

fn parse_cell(key: &str) -> Option<usize> {
    let digits: String = key.trim().chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || digits.is_empty() {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<usize>().ok()?, 0),
        3 | 4 => {
            let split = digits.len() - 2;
            (
                digits.get(..split)?.parse().ok()?,
                digits.get(split..)?.parse::<usize>().ok()?,
            )
        }
        _ => return None,
    };
    (h < 24 && (m == 0 || m == 30)).then_some(h * 2 + m / 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CapacityConfig, String> {
        let table: TomlTable = text.parse().map_err(|e| format!("{e}"))?;
        let inner = match table.get("k") {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => TomlTable::new(),
        };
        CapacityConfig::parse("f.toml", "k", &inner).map_err(|e| e.to_string())
    }

    #[test]
    fn grid_and_exceptions() {
        let c = parse(
            "[k]\ntimezone='America/New_York'\n[k.weekly]\nmon={ '0900' = 10, '10:00' = 3, '1030' = 7, '23' = 4000 }\n\
             [k.exceptions]\n'2026-07-04' = { '0800' = 1 }\n'20261225' = {}\n",
        )
        .unwrap();
        assert_eq!(c.timezone.name(), "America/New_York");
        assert_eq!(c.weekly[0][18], 10);
        assert_eq!(c.weekly[0][19], 10);
        assert_eq!(c.weekly[0][20], 3);
        assert_eq!(c.weekly[0][21], 7);
        assert_eq!(c.weekly[0][46], 4000);
        assert_eq!(c.weekly[0][47], 4000);
        assert_eq!(c.weekly[0][16], 0);
        assert_eq!(c.weekly[1], [0; 48]);
        let d = NaiveDate::from_ymd_opt(2026, 7, 4).unwrap();
        assert_eq!(c.exceptions[&d][16], 1);
        assert_eq!(c.exceptions.len(), 2);
    }

    #[test]
    fn bad_capacities_are_named() {
        let e = parse("[k.weekly]\nmon={ '0900' = -1 }\n").unwrap_err();
        assert_eq!(
            e,
            "f.toml: [capacity.k.weekly] mon: capacity at 0900 must be a whole number from 0 to 2147483647, got -1"
        );
        let e = parse("[k.weekly]\nmon={ '0915' = 1 }\n").unwrap_err();
        assert!(e.contains("'0915' is not a slot of the day"), "{e}");
        let e = parse("[k.weekly]\nmon={ '0900' = 'many' }\n").unwrap_err();
        assert!(e.contains("must be a whole number"), "{e}");
        let e = parse("[k.exceptions]\n'2026-13-01' = {}\n").unwrap_err();
        assert!(
            e.starts_with("f.toml: [capacity.k.exceptions] 2026-13-01: expected a date"),
            "{e}"
        );
        let e = parse("[k]\ntimezone='Mars/Olympus'\n").unwrap_err();
        assert!(e.contains("unknown time zone"), "{e}");
        let e = parse("[k.weekly]\nfunday={}\n").unwrap_err();
        assert!(e.contains("unknown option"), "{e}");
    }
}
