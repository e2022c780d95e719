//! R8 and R9: availability of a service's time slots (spec 40 §6.7-§6.8), computed by
//! `crate::calendar` from the office hours, the capacity and the store's booked counts.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json as json_value};

use super::AppState;
use super::params::query_params;
use super::response::{error, json};
use crate::calendar::{DAY_MS, MINUTE_MS, Slot, SlotRules, Window};
use crate::callback::options::service_options;
use crate::callback::validate::{Access, check_service};
use crate::callback::{CallbackError, CallbackResult, Params};
use crate::clock::Millis;
use crate::config::parse_timezone;
use crate::time::{format_iso, parse_iso_in};

/// The API version of the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A decoded availability request.
struct Request {
    window: Window,
    /// v2: the zone of `localTime` (and of zone-less `start`/`end`).
    zone: Tz,
}

fn bad(option: &str, text: &str) -> CallbackError {
    CallbackError::bad_parameter(option, format!("Invalid value for {option}: '{text}'"))
}

fn non_empty<'p>(params: &'p Params, key: &str) -> Option<&'p str> {
    params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn instant(params: &Params, key: &str, zone: &Tz) -> CallbackResult<Option<Millis>> {
    match non_empty(params, key) {
        None => Ok(None),
        Some(text) => parse_iso_in(text, zone).map(Some).ok_or_else(|| bad(key, text)),
    }
}

fn epoch_ms(params: &Params, key: &str) -> CallbackResult<Option<Millis>> {
    match non_empty(params, key) {
        None => Ok(None),
        Some(text) => match text.parse::<i64>() {
            // Within chrono's range of instants.
            Ok(ms) if Utc.timestamp_millis_opt(ms).single().is_some() => Ok(Some(ms)),
            _ => Err(bad(key, text)),
        },
    }
}

fn decode(version: Version, params: &Params, rules: &SlotRules<'_>, now: Millis) -> CallbackResult<Request> {
    let zone = match (version, non_empty(params, "timezone")) {
        (Version::V2, Some(text)) => {
            parse_timezone(text).map_err(|m| CallbackError::bad_parameter("timezone", m))?
        }
        (Version::V2, None) => rules.calendar.timezone,
        (Version::V1, _) => Tz::UTC,
    };
    // Precedence: start > start-ms > timestamp; end > end-ms > number-of-days.
    let mut start = instant(params, "start", &zone)?;
    if version == Version::V2 && start.is_none() {
        start = epoch_ms(params, "start-ms")?;
    }
    if start.is_none() {
        start = instant(params, "timestamp", &zone)?;
    }
    let start = start.unwrap_or(now);
    let mut end = instant(params, "end", &zone)?;
    if version == Version::V2 && end.is_none() {
        end = epoch_ms(params, "end-ms")?;
    }
    if end.is_none()
        && let Some(text) = non_empty(params, "number-of-days")
    {
        let days: i64 = text.parse().map_err(|_| bad("number-of-days", text))?;
        if !(1..=7).contains(&days) {
            return Err(CallbackError::bad_parameter(
                "number-of-days",
                format!("day parameter must be between 1 and 7, inclusively. Actual value is: {days}"),
            )
            .with("day", days));
        }
        end = Some(start.saturating_add(days * DAY_MS));
    }
    let end = end.unwrap_or(start);
    if end < start {
        return Err(CallbackError::bad_parameter(
            "end",
            format!(
                "The end of the time period ({}) is before its start ({}).",
                format_iso(end),
                format_iso(start)
            ),
        ));
    }
    let max_slots = match non_empty(params, "max-time-slots") {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(bad("max-time-slots", text)),
        },
    };
    let report_busy = match (version, non_empty(params, "report-busy")) {
        (Version::V2, Some(text)) if text.eq_ignore_ascii_case("true") => true,
        (Version::V2, Some(text)) if text.eq_ignore_ascii_case("false") => false,
        (Version::V2, Some(text)) => return Err(bad("report-busy", text)),
        _ => false,
    };
    Ok(Request {
        window: Window {
            start,
            end,
            max_slots,
            report_busy,
        },
        zone,
    })
}

async fn compute(
    app: &AppState,
    service_name: &str,
    query: Option<&str>,
    version: Version,
) -> CallbackResult<(Vec<Slot>, Request, i64)> {
    let config = app.callbacks.config();
    let service = check_service(config, service_name, Access::Availability)?;
    let params = query_params(query);
    let options = service_options(service, &Params::new());
    let rules = SlotRules::for_service(config, service_name, &options)?;
    let now = app.callbacks.now();
    let request = decode(version, &params, &rules, now)?;
    let (from, to) = rules.check_window(&request.window, now)?;
    let booked = app
        .callbacks
        .store()
        .booked_per_slot(service_name, from, to, rules.bucket_ms())
        .await
        .map_err(CallbackError::unknown)?;
    let slots = rules.availability(&request.window, now, &booked)?;
    Ok((slots, request, rules.bucket_ms() / MINUTE_MS))
}

/// R8: `GET /genesys/1/service/callback/{service}/availability`: slot start → remaining.
pub async fn v1(
    State(app): State<AppState>,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match compute(&app, &service, query.as_deref(), Version::V1).await {
        Ok((slots, _, _)) => {
            let body: Map<String, Value> = slots
                .iter()
                .filter(|s| s.remaining > 0)
                .map(|s| (format_iso(s.start), Value::from(s.remaining)))
                .collect();
            json(StatusCode::OK, &Value::Object(body))
        }
        Err(e) => error(&e),
    }
}

/// R9: `GET /genesys/2/service/callback/{service}/availability`: slots with UTC and local
/// times, remaining and total capacity.
pub async fn v2(
    State(app): State<AppState>,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match compute(&app, &service, query.as_deref(), Version::V2).await {
        Ok((slots, request, duration_min)) => {
            let items: Vec<Value> = slots
                .iter()
                .map(|s| {
                    let local = Utc
                        .timestamp_millis_opt(s.start)
                        .single()
                        .map(|t| {
                            t.with_timezone(&request.zone)
                                .format("%Y-%m-%dT%H:%M:%S%.3f")
                                .to_string()
                        })
                        .unwrap_or_default();
                    json_value!({
                        "utcTime": format_iso(s.start),
                        "localTime": local,
                        "capacity": s.remaining,
                        "total": s.total,
                    })
                })
                .collect();
            let body = json_value!({
                "slots": items,
                "durationMin": duration_min,
                "timezone": request.zone.name(),
            });
            json(StatusCode::OK, &body)
        }
        Err(e) => error(&e),
    }
}
