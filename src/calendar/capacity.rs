//! The capacity of a time bucket (spec 20 §4, spec 40 §5.6): a capacity service's grid (the dated
//! exception if there is one, else the weekday grid, read in the capacity service's zone at the
//! bucket's start, hour or half-hour cell), a fixed `_max_request_by_time_bucket`, or unlimited.

use chrono::{Datelike, TimeZone, Timelike, Utc};

use crate::clock::Millis;
use crate::config::CapacityConfig;

/// What R9 reports as the total of a slot without a configured capacity.
pub const UNLIMITED: u32 = i32::MAX as u32;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CapacityRule<'a> {
    Unlimited,
    /// `_max_request_by_time_bucket`.
    Fixed(u32),
    /// `_capacity_service`: the value of the local half-hour cell the bucket starts in, per bucket.
    Grid(&'a CapacityConfig),
}

impl CapacityRule<'_> {
    /// The configured total of the bucket starting at `start`.
    pub fn total_at(&self, start: Millis) -> u32 {
        match self {
            CapacityRule::Unlimited => UNLIMITED,
            CapacityRule::Fixed(n) => *n,
            CapacityRule::Grid(grid) => {
                let Some(utc) = Utc.timestamp_millis_opt(start).single() else {
                    return 0;
                };
                let local = utc.with_timezone(&grid.timezone);
                let date = local.date_naive();
                let hours = match grid.exceptions.get(&date) {
                    Some(exception) => exception,
                    None => match grid.weekly.get(date.weekday().num_days_from_monday() as usize) {
                        Some(week) => week,
                        None => return 0,
                    },
                };
                let cell = local.hour() as usize * 2 + usize::from(local.minute() >= 30);
                hours.get(cell).copied().unwrap_or(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, parse_timezone};
    use crate::time::parse_iso;

    #[test]
    fn grid_exception_and_zone() {
        let config = Config::parse(
            "[capacity.k]\ntimezone='America/New_York'\n[capacity.k.weekly]\n\
             mon={ '0900' = 10, '1000' = 3, '1030' = 2 }\nsun={ '0900' = 5 }\n\
             [capacity.k.exceptions]\n'2026-11-23' = { '0900' = 1 }\n",
            "t",
        )
        .unwrap();
        let rule = CapacityRule::Grid(&config.capacities["k"]);
        let at = |s: &str| rule.total_at(parse_iso(s).unwrap());
        // Monday 2026-11-30 09:xx New York (EST) = 14:xxZ.
        assert_eq!(at("2026-11-30T14:00:00Z"), 10);
        assert_eq!(at("2026-11-30T14:55:00Z"), 10);
        assert_eq!(at("2026-11-30T15:00:00Z"), 3);
        assert_eq!(at("2026-11-30T15:25:00Z"), 3);
        assert_eq!(at("2026-11-30T15:30:00Z"), 2);
        assert_eq!(at("2026-11-30T16:00:00Z"), 0);
        // 09:00Z is 04:00 local: nothing.
        assert_eq!(at("2026-11-30T09:00:00Z"), 0);
        // The dated exception replaces the Monday grid.
        assert_eq!(at("2026-11-23T14:00:00Z"), 1);
        assert_eq!(at("2026-11-23T15:00:00Z"), 0);
        // Sunday 2026-11-29.
        assert_eq!(at("2026-11-29T14:30:00Z"), 5);
        // Across DST: Monday 2026-06-01 09:00 EDT = 13:00Z.
        assert_eq!(at("2026-06-01T13:00:00Z"), 10);
        assert!(parse_timezone("America/New_York").is_ok());
        assert_eq!(CapacityRule::Fixed(4).total_at(0), 4);
        assert_eq!(CapacityRule::Unlimited.total_at(0), 2_147_483_647);
    }
}
