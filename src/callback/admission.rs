//! Admission control (spec 40 §5.8): in-queue checking and the three throttles, decided inside
//! the store's write transaction together with the insert, so that concurrent requests for the
//! last place are serialised and exactly one wins.
//!
//! Options (the seed names the errors, not the options; these names are Boomerang's):
//!
//! | option | meaning | error |
//! |---|---|---|
//! | `_enable_in_queue_checking` | `strict`: refuse when 1 callback for the number is live; `true`: when 2 are | 40001 |
//! | `_throttle_max_queued_callbacks` | most live (QUEUED, ROUTING, PROCESSING, PAUSED) callbacks of the service | 40002 |
//! | `_throttle_callbacks_per_service_1` / `_throttle_ttl_1` | most callbacks accepted by the service in a sliding interval (default 300 s) | 40003 |
//! | `_throttle_callbacks_per_service_2` / `_throttle_ttl_2` | a second interval (default 3600 s) | 40003 |
//! | `_throttle_request_parameters` / `_throttle_request_parameters_limit` | most callbacks accepted per UTC day with the same value of each listed parameter (default `_customer_number`) | 40004 |
//! | `_throttle_customer_number_limit` | the same limit for `_customer_number` alone | 40004 |

use std::collections::BTreeMap;

use super::error::{CallbackError, ErrorCode};
use crate::clock::Millis;

const DAY_MS: Millis = 86_400_000;

/// One condition a new callback must meet to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Fewer than `max` live callbacks of the service for this number.
    InQueue { number: String, max: u32 },
    /// Fewer than `limit` live callbacks in the service.
    ServiceQueued { limit: u32 },
    /// Fewer than `limit` callbacks accepted by the service since `since`.
    Interval {
        since: Millis,
        interval_secs: i64,
        limit: u32,
    },
    /// Fewer than `limit` callbacks accepted since `since` with `key` = `value`.
    Parameter {
        key: String,
        value: String,
        since: Millis,
        limit: u32,
    },
    /// Fewer than `capacity` bookings (not cancelled) with a desired time in `[from, to)`,
    /// not counting the record `exclude` (a reschedule's own booking).
    Capacity {
        from: Millis,
        to: Millis,
        capacity: u32,
        exclude: Option<String>,
    },
}

/// Why the store refused a new callback: the first admission it did not meet, with the count
/// it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub admission: Admission,
    pub count: u32,
}

fn limit(options: &BTreeMap<String, String>, key: &str) -> Option<u32> {
    options
        .get(key)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
}

/// The admissions a new callback's options call for.
pub fn admissions(options: &BTreeMap<String, String>, number: Option<&str>, now: Millis) -> Vec<Admission> {
    let mut out = Vec::new();
    if let Some(number) = number {
        let max = match options
            .get("_enable_in_queue_checking")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            Some(v) if v == "strict" => Some(1),
            Some(v) if v == "true" => Some(2),
            _ => None,
        };
        if let Some(max) = max {
            out.push(Admission::InQueue {
                number: number.to_string(),
                max,
            });
        }
    }
    if let Some(limit) = limit(options, "_throttle_max_queued_callbacks") {
        out.push(Admission::ServiceQueued { limit });
    }
    for (count_key, ttl_key, default_ttl) in [
        ("_throttle_callbacks_per_service_1", "_throttle_ttl_1", 300),
        ("_throttle_callbacks_per_service_2", "_throttle_ttl_2", 3600),
    ] {
        if let Some(limit) = limit(options, count_key) {
            let interval_secs = options
                .get(ttl_key)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|s| *s > 0)
                .unwrap_or(default_ttl);
            out.push(Admission::Interval {
                since: now - interval_secs * 1000,
                interval_secs,
                limit,
            });
        }
    }
    let day_start = now.div_euclid(DAY_MS) * DAY_MS;
    let mut per_parameter: BTreeMap<String, u32> = BTreeMap::new();
    if let Some(limit) = limit(options, "_throttle_request_parameters_limit") {
        let keys = options
            .get("_throttle_request_parameters")
            .map_or("_customer_number", String::as_str);
        for key in keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            per_parameter.insert(key.to_string(), limit);
        }
    }
    if let Some(limit) = limit(options, "_throttle_customer_number_limit") {
        let entry = per_parameter.entry("_customer_number".into()).or_insert(limit);
        *entry = (*entry).min(limit);
    }
    for (key, limit) in per_parameter {
        let value = if key == "_customer_number" {
            number.map(str::to_string)
        } else {
            options.get(&key).cloned()
        };
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push(Admission::Parameter {
                key,
                value,
                since: day_start,
                limit,
            });
        }
    }
    out
}

/// The API error for a refusal (capacity refusals are turned into 40051 by the caller, which
/// knows the slots to propose).
pub fn refusal_error(service: &str, refusal: &Refusal) -> CallbackError {
    match &refusal.admission {
        Admission::InQueue { max, .. } => CallbackError::new(
            ErrorCode::NumberAlreadyBooked,
            format!(
                "There is already {max} or more Callbacks QUEUED for this number, please refer to _enable_in_queue_checking for detail."
            ),
        )
        .with("max_queued", *max),
        Admission::ServiceQueued { .. } => CallbackError::new(
            ErrorCode::ThrottleServiceLimit,
            format!("Limit of queued callbacks for {service} is reached."),
        )
        .with("service", service),
        Admission::Interval { interval_secs, .. } => CallbackError::new(
            ErrorCode::ThrottleServiceIntervalLimit,
            format!("Limit of queued callbacks for {service} is reached for interval {interval_secs}s."),
        )
        .with("service", service)
        .with("interval", *interval_secs),
        Admission::Parameter { key, .. } => CallbackError::new(
            ErrorCode::ThrottleServiceParameterLimit,
            format!(
                "Limit of queued callbacks for {service} is reached for parameter {key}. Reached {} times today.",
                refusal.count
            ),
        )
        .with("service", service)
        .with("parameter", key.as_str())
        .with("attempts", refusal.count),
        Admission::Capacity { .. } => CallbackError::new(ErrorCode::SlotUnavailable, "No time slots available.")
            .with("service", service),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn nothing_configured_nothing_checked() {
        assert!(admissions(&opts(&[]), Some("5115"), 0).is_empty());
    }

    #[test]
    fn each_option_gives_its_admission() {
        let now = 10 * DAY_MS + 5000;
        let a = admissions(
            &opts(&[
                ("_enable_in_queue_checking", "strict"),
                ("_throttle_max_queued_callbacks", "1"),
                ("_throttle_callbacks_per_service_1", "1"),
                ("_throttle_ttl_1", "3600"),
                ("_throttle_customer_number_limit", "1"),
            ]),
            Some("5115"),
            now,
        );
        assert_eq!(
            a,
            vec![
                Admission::InQueue {
                    number: "5115".into(),
                    max: 1
                },
                Admission::ServiceQueued { limit: 1 },
                Admission::Interval {
                    since: now - 3_600_000,
                    interval_secs: 3600,
                    limit: 1
                },
                Admission::Parameter {
                    key: "_customer_number".into(),
                    value: "5115".into(),
                    since: 10 * DAY_MS,
                    limit: 1
                },
            ]
        );
        let t = admissions(&opts(&[("_enable_in_queue_checking", "true")]), Some("1"), 0);
        assert_eq!(
            t,
            vec![Admission::InQueue {
                number: "1".into(),
                max: 2
            }]
        );
    }

    #[test]
    fn refusal_messages() {
        let e = refusal_error(
            "cb",
            &Refusal {
                admission: Admission::InQueue {
                    number: "1".into(),
                    max: 2,
                },
                count: 2,
            },
        );
        assert_eq!(
            (e.code.code(), e.properties["max_queued"].as_u64()),
            (40001, Some(2))
        );
        let p = Admission::Parameter {
            key: "_customer_number".into(),
            value: "1".into(),
            since: 0,
            limit: 1,
        };
        let e = refusal_error(
            "cb",
            &Refusal {
                admission: p,
                count: 1,
            },
        );
        assert_eq!(
            e.message,
            "Limit of queued callbacks for cb is reached for parameter _customer_number. Reached 1 times today."
        );
    }
}
