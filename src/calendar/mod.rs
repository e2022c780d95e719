//! Office hours, capacity and availability (spec 20 §3-§4, spec 40 §5.5-§5.6, §6.7-§6.8).
//!
//! Sans-IO: no clock and no store here. The caller passes `now` and the booked count per slot
//! (from `Store::booked_per_slot`), and gets back slots, availability or a refusal value.
//!
//! Slots are `_request_time_bucket` minutes long (default 5), aligned to multiples of the
//! bucket counted from 00:00 UTC. A slot is open when the office is open at its start. Its total
//! is the capacity service's value for the local hour it starts in (or the fixed
//! `_max_request_by_time_bucket`, or unlimited); remaining = total − booked.
//!
//! # Booking check (create / reschedule)
//!
//! ```ignore
//! let Some(rules) = calendar::SlotRules::for_booking(&config, service, &options, immediate)? else {
//!     /* no office-hours check applies */
//! };
//! let (from, to) = rules.booked_range(desired);
//! let booked = store.booked_per_slot(service, from, to, rules.bucket_ms()).await?;
//! let slot: calendar::SlotCheck = rules.check(desired, now, &booked)?;   // 40050 / 40051
//! ```

pub mod capacity;
pub mod hours;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use capacity::{CapacityRule, UNLIMITED};
pub use hours::{is_open_at, open_intervals};

use crate::callback::options::option_flag;
use crate::callback::{CallbackError, ErrorCode};
use crate::clock::Millis;
use crate::config::{CalendarConfig, Config};
use crate::time::format_iso;

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;
/// `_request_time_bucket` when the service does not set it, minutes.
pub const DEFAULT_BUCKET_MIN: i64 = 5;
/// Slots looked at on each side of a full slot for proposals.
pub const PROPOSAL_NEIGHBOURS: i64 = 4;
/// Proposals made for a closed slot, at most.
pub const PROPOSALS_FOR_CLOSED: usize = 8;
/// How far after a closed slot proposals are searched.
pub const PROPOSAL_HORIZON_MS: i64 = 7 * DAY_MS;
/// The longest availability window (`end` may be given freely; `number-of-days` is 1-7).
pub const MAX_WINDOW_MS: i64 = 31 * DAY_MS;

/// One evaluated slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub start: Millis,
    pub open: bool,
    pub total: u32,
    pub remaining: u32,
}

/// A slot a booking was accepted into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCheck {
    pub start: Millis,
    pub end: Millis,
    pub total: u32,
    /// Remaining before this booking.
    pub remaining: u32,
}

/// An availability query, already decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Millis,
    /// Exclusive; `end <= start` means the one slot containing `start`.
    pub end: Millis,
    /// Cap on returned slots with remaining capacity.
    pub max_slots: Option<usize>,
    /// Include open slots with nothing left (remaining 0).
    pub report_busy: bool,
}

/// Everything that decides a service's slots.
#[derive(Debug, Clone, Copy)]
pub struct SlotRules<'a> {
    pub service: &'a str,
    pub calendar: &'a CalendarConfig,
    pub capacity: CapacityRule<'a>,
    pub bucket_ms: i64,
}

fn invalid(service: &str, option: &str, problem: impl std::fmt::Display) -> CallbackError {
    CallbackError::bad_configuration(service, format!("Option {option} is invalid: {problem}"))
}

/// `[start, end]` in ISO, as the 40050/40051 messages and `properties.slot` render a slot.
pub fn render_slot(start: Millis, end: Millis) -> String {
    format!("[{}, {}]", format_iso(start), format_iso(end))
}

impl<'a> SlotRules<'a> {
    /// The rules of a service from its (merged) options, for availability: the calendar is
    /// required (50020 when missing or unknown).
    pub fn for_service(
        config: &'a Config,
        service: &'a str,
        options: &BTreeMap<String, String>,
    ) -> Result<SlotRules<'a>, CallbackError> {
        let name = options
            .get("_business_hours_service")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                CallbackError::bad_configuration(
                    service,
                    format!("Option service.{service} / _business_hours_service not configured."),
                )
            })?;
        let calendar = config.calendars.get(name).ok_or_else(|| {
            invalid(
                service,
                "_business_hours_service",
                format_args!("no calendar named '{name}' is configured"),
            )
        })?;
        let bucket_min = match options.get("_request_time_bucket").map(|s| s.trim()) {
            None | Some("") => DEFAULT_BUCKET_MIN,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=1440).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        service,
                        "_request_time_bucket",
                        format_args!("expected minutes from 1 to 1440, got '{text}'"),
                    ));
                }
            },
        };
        let capacity = match options
            .get("_capacity_service")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            Some(cap) => CapacityRule::Grid(config.capacities.get(cap).ok_or_else(|| {
                invalid(
                    service,
                    "_capacity_service",
                    format_args!("no capacity service named '{cap}' is configured"),
                )
            })?),
            None => match options
                .get("_max_request_by_time_bucket")
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
            {
                None => CapacityRule::Unlimited,
                Some(text) => match text.parse::<i64>() {
                    Ok(n) if (0..=i64::from(UNLIMITED)).contains(&n) => CapacityRule::Fixed(n as u32),
                    _ => {
                        return Err(invalid(
                            service,
                            "_max_request_by_time_bucket",
                            format_args!("expected a whole number from 0 to {UNLIMITED}, got '{text}'"),
                        ));
                    }
                },
            },
        };
        Ok(SlotRules {
            service,
            calendar,
            capacity,
            bucket_ms: bucket_min * MINUTE_MS,
        })
    }

    /// The rules a create/reschedule must check, or `None` when no check applies: no
    /// `_business_hours_service`, or an immediate request without
    /// `_enable_reject_out_of_office_hours=true`. A missing calendar is still 50020.
    pub fn for_booking(
        config: &'a Config,
        service: &'a str,
        options: &BTreeMap<String, String>,
        immediate: bool,
    ) -> Result<Option<SlotRules<'a>>, CallbackError> {
        let configured = options
            .get("_business_hours_service")
            .is_some_and(|s| !s.trim().is_empty());
        if !configured || (immediate && !option_flag(options, "_enable_reject_out_of_office_hours")) {
            return Ok(None);
        }
        let mut rules = SlotRules::for_service(config, service, options)?;
        if immediate {
            // An immediate callback is checked against the office hours only.
            rules.capacity = CapacityRule::Unlimited;
        }
        Ok(Some(rules))
    }

    pub fn bucket_ms(&self) -> i64 {
        self.bucket_ms
    }

    /// Start of the slot containing `at`.
    pub fn slot_of(&self, at: Millis) -> Millis {
        at - at.rem_euclid(self.bucket_ms)
    }

    /// Evaluates the slot starting at `start` (a slot boundary).
    pub fn slot(&self, start: Millis, booked: &BTreeMap<Millis, u32>) -> Slot {
        let open = is_open_at(self.calendar, start);
        let total = if open { self.capacity.total_at(start) } else { 0 };
        let used = booked.get(&start).copied().unwrap_or(0);
        Slot {
            start,
            open,
            total,
            remaining: total.saturating_sub(used),
        }
    }

    /// The range `[from, to)` of desired times whose booked counts [`SlotRules::check`] needs.
    pub fn booked_range(&self, desired: Millis) -> (Millis, Millis) {
        let slot = self.slot_of(desired);
        (
            slot - PROPOSAL_NEIGHBOURS * self.bucket_ms,
            slot + PROPOSAL_HORIZON_MS + self.bucket_ms,
        )
    }

    /// `[floor(start), end)`, or the one slot containing `start`.
    fn window_range(&self, window: &Window) -> (Millis, Millis) {
        let from = self.slot_of(window.start);
        let to = if window.end > window.start {
            window.end
        } else {
            from + self.bucket_ms
        };
        (from, to)
    }

    /// Checks a booking at `desired`: the slot must be open and have remaining capacity.
    /// Otherwise 40051 with proposals (ISO slot start → remaining capacity), or 40050 when
    /// nothing can be proposed. Past slots are never proposed.
    pub fn check(
        &self,
        desired: Millis,
        now: Millis,
        booked: &BTreeMap<Millis, u32>,
    ) -> Result<SlotCheck, CallbackError> {
        let start = self.slot_of(desired);
        let slot = self.slot(start, booked);
        let end = start + self.bucket_ms;
        if slot.open && slot.remaining > 0 {
            return Ok(SlotCheck {
                start,
                end,
                total: slot.total,
                remaining: slot.remaining,
            });
        }
        let usable = |s: &Slot| s.open && s.remaining > 0 && s.start + self.bucket_ms > now;
        let mut proposals = Map::new();
        if slot.open {
            for k in (-PROPOSAL_NEIGHBOURS..=PROPOSAL_NEIGHBOURS).filter(|k| *k != 0) {
                let s = self.slot(start + k * self.bucket_ms, booked);
                if usable(&s) {
                    proposals.insert(format_iso(s.start), Value::from(s.remaining));
                }
            }
        } else {
            let mut at = start + self.bucket_ms;
            while at < desired + PROPOSAL_HORIZON_MS && proposals.len() < PROPOSALS_FOR_CLOSED {
                let s = self.slot(at, booked);
                if usable(&s) {
                    proposals.insert(format_iso(s.start), Value::from(s.remaining));
                }
                at += self.bucket_ms;
            }
        }
        let rendered = render_slot(start, end);
        if proposals.is_empty() {
            return Err(
                CallbackError::new(ErrorCode::SlotUnavailable, "No time slots available.")
                    .with("slot", rendered)
                    .with("service", self.service),
            );
        }
        let message = if slot.open {
            format!("Too many requests at desired time slot {rendered}. Proposing time slots.")
        } else {
            format!("Office is closed at desired time slot {rendered}. Proposing time slots.")
        };
        let mut e = CallbackError::new(ErrorCode::SlotUnavailableProposal, message)
            .with("slot", rendered)
            .with("service", self.service);
        e.availability = Some(Box::new(proposals));
        Err(e)
    }

    /// The open slots of a window (spec 40 §6.7-§6.8): slots that ended before `now` are
    /// skipped, closed slots never listed, full slots only with `report_busy`; at most
    /// `max_slots` slots with remaining capacity. A window entirely in the past is 40010.
    pub fn availability(
        &self,
        window: &Window,
        now: Millis,
        booked: &BTreeMap<Millis, u32>,
    ) -> Result<Vec<Slot>, CallbackError> {
        let (from, to) = self.check_window(window, now)?;
        let mut out = Vec::new();
        let mut with_room = 0usize;
        let mut at = from.max(self.slot_of(now));
        while at < to {
            let s = self.slot(at, booked);
            at += self.bucket_ms;
            if !s.open || (s.remaining == 0 && !window.report_busy) {
                continue;
            }
            out.push(s);
            if s.remaining > 0 {
                with_room += 1;
                if window.max_slots.is_some_and(|m| with_room >= m) {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Checks a window (not longer than [`MAX_WINDOW_MS`], not entirely past) and returns the
    /// desired-time range `[from, to)` whose booked counts [`SlotRules::availability`] needs.
    pub fn check_window(&self, window: &Window, now: Millis) -> Result<(Millis, Millis), CallbackError> {
        let (from, to) = self.window_range(window);
        if to - from > MAX_WINDOW_MS {
            return Err(CallbackError::bad_parameter(
                "end",
                format!(
                    "The requested time period is longer than {} days.",
                    MAX_WINDOW_MS / DAY_MS
                ),
            ));
        }
        let last_start = self.slot_of(to - 1);
        if last_start + self.bucket_ms <= now {
            return Err(CallbackError::new(
                ErrorCode::BadParameter,
                "No time slots available. The requested time period is in the past.",
            ));
        }
        Ok((from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_iso;

    const CONFIG: &str = r#"
        [calendar.always]
        [calendar.always.weekly]
        mon = "00:00-24:00"
        tue = "00:00-24:00"
        wed = "00:00-24:00"
        thu = "00:00-24:00"
        fri = "00:00-24:00"
        sat = "00:00-24:00"
        sun = "00:00-24:00"
        [calendar.days]
        timezone = "Europe/Paris"
        [calendar.days.weekly]
        mon = "09:00-17:00"
        tue = "09:00-17:00"
        [capacity.grid]
        timezone = "Europe/Paris"
        [capacity.grid.weekly]
        mon = { "0900" = 2, "1000" = 1 }
    "#;

    fn config() -> Config {
        Config::parse(CONFIG, "t").unwrap()
    }

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at(s: &str) -> Millis {
        parse_iso(s).unwrap()
    }

    #[test]
    fn configuration_errors() {
        let c = config();
        let e = SlotRules::for_service(&c, "s", &opts(&[])).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadConfiguration);
        assert_eq!(
            e.message,
            "Option service.s / _business_hours_service not configured."
        );
        let e = SlotRules::for_service(&c, "s", &opts(&[("_business_hours_service", "nope")])).unwrap_err();
        assert!(
            e.message
                .starts_with("Option _business_hours_service is invalid:"),
            "{}",
            e.message
        );
        let bad = [
            ("_request_time_bucket", "0"),
            ("_request_time_bucket", "five"),
            ("_capacity_service", "nope"),
            ("_max_request_by_time_bucket", "-1"),
        ];
        for (k, v) in bad {
            let e = SlotRules::for_service(&c, "s", &opts(&[("_business_hours_service", "always"), (k, v)]))
                .unwrap_err();
            assert!(
                e.message.starts_with(&format!("Option {k} is invalid:")),
                "{}",
                e.message
            );
        }
        // _capacity_service wins over _max_request_by_time_bucket.
        let r = SlotRules::for_service(
            &c,
            "s",
            &opts(&[
                ("_business_hours_service", "always"),
                ("_capacity_service", "grid"),
                ("_max_request_by_time_bucket", "9"),
            ]),
        )
        .unwrap();
        assert!(matches!(r.capacity, CapacityRule::Grid(_)));
        // Booking: no calendar → no check; immediate without the reject flag → no check.
        assert!(
            SlotRules::for_booking(&c, "s", &opts(&[]), false)
                .unwrap()
                .is_none()
        );
        let o = opts(&[("_business_hours_service", "always")]);
        assert!(SlotRules::for_booking(&c, "s", &o, true).unwrap().is_none());
        assert!(SlotRules::for_booking(&c, "s", &o, false).unwrap().is_some());
        let o = opts(&[
            ("_business_hours_service", "always"),
            ("_enable_reject_out_of_office_hours", "true"),
            ("_max_request_by_time_bucket", "0"),
        ]);
        let r = SlotRules::for_booking(&c, "s", &o, true).unwrap().unwrap();
        assert_eq!(r.capacity, CapacityRule::Unlimited);
    }

    #[test]
    fn slot_math_and_capacity() {
        let c = config();
        let o = opts(&[
            ("_business_hours_service", "days"),
            ("_capacity_service", "grid"),
            ("_request_time_bucket", "15"),
        ]);
        let r = SlotRules::for_service(&c, "s", &o).unwrap();
        assert_eq!(r.bucket_ms(), 15 * MINUTE_MS);
        assert_eq!(r.slot_of(at("2026-11-30T08:14:59Z")), at("2026-11-30T08:00:00Z"));
        assert_eq!(r.slot_of(at("2026-11-30T08:15:00Z")), at("2026-11-30T08:15:00Z"));
        // Monday 2026-11-30, Paris is UTC+1: 09:00 local = 08:00Z.
        let mut booked = BTreeMap::new();
        booked.insert(at("2026-11-30T08:15:00Z"), 1);
        booked.insert(at("2026-11-30T08:30:00Z"), 5);
        let s = |t: &str, b: &BTreeMap<Millis, u32>| r.slot(at(t), b);
        assert!(!s("2026-11-30T07:45:00Z", &booked).open);
        assert_eq!(s("2026-11-30T08:00:00Z", &booked).remaining, 2);
        assert_eq!(s("2026-11-30T08:15:00Z", &booked).remaining, 1);
        assert_eq!(s("2026-11-30T08:30:00Z", &booked).remaining, 0);
        assert_eq!(s("2026-11-30T09:00:00Z", &booked).total, 1);
        // Open, but no capacity configured at 11:00 local.
        let eleven = s("2026-11-30T10:00:00Z", &booked);
        assert!(eleven.open);
        assert_eq!(eleven.total, 0);
        // Tuesday: open, the grid has no Tuesday.
        assert_eq!(s("2026-12-01T08:00:00Z", &booked).total, 0);
    }

    fn always(bucket: &str, max: &str) -> (Config, BTreeMap<String, String>) {
        (
            config(),
            opts(&[
                ("_business_hours_service", "always"),
                ("_request_time_bucket", bucket),
                ("_max_request_by_time_bucket", max),
            ]),
        )
    }

    #[test]
    fn availability_windows() {
        let (c, o) = always("5", "5");
        let r = SlotRules::for_service(&c, "s", &o).unwrap();
        let now = at("2026-11-24T10:02:00Z");
        let t = at("2026-11-26T10:00:00Z");
        let none = BTreeMap::new();
        let w = |start, end| Window {
            start,
            end,
            max_slots: None,
            report_busy: false,
        };
        // One slot when end = start, even when start is not on a boundary.
        let one = r.availability(&w(t + 61_000, t + 61_000), now, &none).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].start, t);
        assert_eq!(one[0].remaining, 5);
        // One day = 288 slots, ascending.
        let day = r.availability(&w(t, t + DAY_MS), now, &none).unwrap();
        assert_eq!(day.len(), 288);
        assert!(day.windows(2).all(|p| p[0].start < p[1].start));
        // max_slots counts slots with room only; busy ones still listed with report_busy.
        let mut booked = BTreeMap::new();
        booked.insert(t, 5);
        let mut q = w(t, t + DAY_MS);
        q.max_slots = Some(3);
        let capped = r.availability(&q, now, &booked).unwrap();
        assert_eq!(
            capped.iter().map(|s| s.start).collect::<Vec<_>>(),
            [t + 300_000, t + 600_000, t + 900_000]
        );
        q.report_busy = true;
        let capped = r.availability(&q, now, &booked).unwrap();
        assert_eq!(capped.len(), 4);
        assert_eq!(capped[0].remaining, 0);
        // Past slots are skipped; the slot containing now is kept.
        let partly = r
            .availability(&w(now - DAY_MS, now + 600_000), now, &none)
            .unwrap();
        assert_eq!(partly.first().map(|s| s.start), Some(at("2026-11-24T10:00:00Z")));
        assert_eq!(partly.len(), 3);
        // Entirely past.
        let e = r
            .availability(&w(now - 3 * DAY_MS, now - 2 * DAY_MS), now, &none)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParameter);
        assert_eq!(
            e.message,
            "No time slots available. The requested time period is in the past."
        );
        // Bounded window.
        let e = r.availability(&w(t, t + 40 * DAY_MS), now, &none).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParameter);
    }

    #[test]
    fn full_slot_proposes_neighbours() {
        let (c, o) = always("5", "1");
        let r = SlotRules::for_service(&c, "s", &o).unwrap();
        let now = at("2026-11-24T10:00:00Z");
        let s = at("2026-11-26T16:45:00Z");
        let mut booked = BTreeMap::new();
        for k in [-2i64, 0, 2, 3] {
            booked.insert(s + k * 300_000, 1);
        }
        let ok = r.check(s + 299_999 + 300_000, now, &booked).unwrap();
        assert_eq!((ok.start, ok.total, ok.remaining), (s + 300_000, 1, 1));
        let e = r.check(s + 120_000, now, &booked).unwrap_err();
        assert_eq!(e.code, ErrorCode::SlotUnavailableProposal);
        assert_eq!(
            e.message,
            "Too many requests at desired time slot [2026-11-26T16:45:00.000Z, 2026-11-26T16:50:00.000Z]. Proposing time slots."
        );
        assert_eq!(
            e.properties["slot"],
            "[2026-11-26T16:45:00.000Z, 2026-11-26T16:50:00.000Z]"
        );
        assert_eq!(e.properties["service"], "s");
        let proposed: Vec<&String> = e.availability.as_ref().unwrap().keys().collect();
        assert_eq!(
            proposed,
            [
                "2026-11-26T16:25:00.000Z",
                "2026-11-26T16:30:00.000Z",
                "2026-11-26T16:40:00.000Z",
                "2026-11-26T16:50:00.000Z",
                "2026-11-26T17:05:00.000Z",
            ]
        );
        assert_eq!(e.availability.as_ref().unwrap()["2026-11-26T16:25:00.000Z"], 1);
        // All neighbours full too → 40050.
        for k in -4..=4 {
            booked.insert(s + k * 300_000, 1);
        }
        let e = r.check(s, now, &booked).unwrap_err();
        assert_eq!(e.code, ErrorCode::SlotUnavailable);
        assert_eq!(e.message, "No time slots available.");
        assert!(e.availability.is_none());
    }

    #[test]
    fn closed_slot_proposes_next_open_slots() {
        let c = config();
        let o = opts(&[
            ("_business_hours_service", "days"),
            ("_request_time_bucket", "30"),
        ]);
        let r = SlotRules::for_service(&c, "s", &o).unwrap();
        let now = at("2026-11-24T10:00:00Z");
        // Saturday 2026-11-28 noon: closed until Monday 09:00 Paris = 08:00Z.
        let mut booked = BTreeMap::new();
        booked.insert(at("2026-11-30T08:30:00Z"), 3);
        let e = r.check(at("2026-11-28T12:10:00Z"), now, &booked).unwrap_err();
        assert_eq!(e.code, ErrorCode::SlotUnavailableProposal);
        assert!(e.message.starts_with(
            "Office is closed at desired time slot [2026-11-28T12:00:00.000Z, 2026-11-28T12:30:00.000Z]."
        ));
        let a = e.availability.unwrap();
        assert_eq!(a.len(), 8);
        // Unlimited capacity: the remaining value is the unlimited total.
        assert_eq!(a["2026-11-30T08:00:00.000Z"], UNLIMITED);
        assert_eq!(
            a.keys().next_back().map(String::as_str),
            Some("2026-11-30T11:30:00.000Z")
        );
        // A calendar that is never open → 40050.
        let mut never = c.clone();
        if let Some(cal) = never.calendars.get_mut("days") {
            cal.weekly = Default::default();
        }
        let r = SlotRules::for_service(&never, "s", &o).unwrap();
        let e = r.check(at("2026-11-28T12:10:00Z"), now, &booked).unwrap_err();
        assert_eq!(e.code, ErrorCode::SlotUnavailable);
        // booked_range covers what check reads.
        let (from, to) = r.booked_range(at("2026-11-28T12:10:00Z"));
        assert_eq!(from, at("2026-11-28T10:00:00Z"));
        assert_eq!(to, at("2026-12-05T12:30:00Z"));
    }
}
