//! Administrative operations (spec 40 §6.4, §6.9, §6.10, §6.12): "Forget Me" bulk delete,
//! outstanding callbacks per queue, counter watermarks, and the cancelled-callbacks report.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::error::{CallbackError, CallbackResult, ErrorCode};
use super::options::normalize_number;
use super::record::CallbackRecord;
use super::service::Callbacks;
use super::state::{State, reason};
use crate::clock::Millis;
use crate::store::{ListQuery, LookupQuery, StoreError};
use crate::time::parse_iso;

const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * HOUR_MS;
/// Widest R10 window when both bounds are given (spec 40 §6.9 [D]).
pub const MAX_QUEUE_SPAN_SECS: i64 = 31 * 86_400;
/// Live records unchanged for longer are stale for R11 (spec 40 §6.10).
const STALE_MS: Millis = 3 * HOUR_MS;
/// Default columns of R13.
pub const REPORT_COLUMNS: [&str; 6] = [
    "_desired_time",
    "_service_name",
    "_customer_number",
    "_target",
    "_vq_for_outbound_calls",
    "_urs_virtual_queue",
];
/// Most records R10 reads per service before applying filter keys.
const SCAN_LIMIT: usize = 100_000;

fn store_error(e: StoreError) -> CallbackError {
    tracing::error!("{e}");
    CallbackError::unknown(e)
}

/// The two lists R4 answers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeleteReport {
    pub success: Vec<Value>,
    pub errors: Vec<Value>,
}

/// R10 query parameters, as given.
#[derive(Debug, Default, Clone)]
pub struct QueueQuery {
    pub target: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub states: Option<String>,
    pub max: Option<String>,
    /// Every other query parameter (the configured `filter-keys` filter by equality).
    pub others: Vec<(String, String)>,
}

fn parse_time(option: &str, text: &str) -> CallbackResult<Millis> {
    parse_iso(text).ok_or_else(|| {
        CallbackError::bad_parameter(
            option,
            format!("Invalid value for {option}: '{text}' is not an ISO 8601 time"),
        )
    })
}

impl Callbacks {
    /// R4: deletes SCHEDULED and COMPLETED callbacks by ID and by customer number.
    pub async fn bulk_delete(&self, ids: &[String], numbers: &[String]) -> CallbackResult<DeleteReport> {
        if ids.is_empty() && numbers.is_empty() {
            return Err(CallbackError::new(
                ErrorCode::BadParameter,
                "No lookup possible. No properties to look for.",
            ));
        }
        let mut report = DeleteReport::default();
        let mut reached = BTreeSet::new();
        for id in ids {
            if !reached.insert(id.clone()) {
                continue;
            }
            match self.store().get(id).await.map_err(store_error)? {
                None => report
                    .success
                    .push(json!({"reason": "no callback(s) to delete", "_id": id})),
                Some(record) => self.delete_one(record, &mut report).await?,
            }
        }
        for raw in numbers {
            let number = normalize_number(raw, self.config().callback.fix_plus);
            let query = LookupQuery {
                service: None,
                terms: vec![("_customer_number".into(), number.clone())],
                any: false,
            };
            let found = self.store().lookup(&query).await.map_err(store_error)?;
            if found.is_empty() {
                report
                    .success
                    .push(json!({"reason": "no callback(s) to delete", "_customer_number": raw}));
            }
            for record in found {
                if reached.insert(record.id.clone()) {
                    self.delete_one(record, &mut report).await?;
                }
            }
        }
        Ok(report)
    }

    async fn delete_one(&self, mut record: CallbackRecord, report: &mut DeleteReport) -> CallbackResult<()> {
        for _ in 0..8 {
            if !matches!(record.state, State::Scheduled | State::Completed) {
                report.errors.push(json!({
                    "code": 40020,
                    "phrase": "INVALID_OPERATION",
                    "_id": record.id,
                    "message": format!("Callback {} cannot be deleted - _callback_state={}", record.id, record.state),
                }));
                return Ok(());
            }
            if self
                .store()
                .delete(&record.id, Some(record.version))
                .await
                .map_err(store_error)?
            {
                self.timers().cancel(&record.id);
                tracing::info!(target: "report", event = "deleted", service = record.service, id = record.id);
                report.success.push(json!({"_id": record.id}));
                return Ok(());
            }
            match self.store().get(&record.id).await.map_err(store_error)? {
                Some(fresh) => record = fresh,
                None => {
                    report.success.push(json!({"_id": record.id}));
                    return Ok(());
                }
            }
        }
        Err(CallbackError::unknown(format!(
            "callback {} kept changing during deletion",
            record.id
        )))
    }

    /// R10: outstanding callbacks per service.
    pub async fn queues(&self, q: &QueueQuery) -> CallbackResult<BTreeMap<String, Vec<CallbackRecord>>> {
        let now = self.now();
        let from = q
            .start_time
            .as_deref()
            .map(|t| parse_time("start_time", t))
            .transpose()?;
        let to = match q.end_time.as_deref() {
            Some(t) => parse_time("end_time", t)?,
            None => now + DAY_MS,
        };
        if let (Some(from), Some(_)) = (from, q.end_time.as_ref()) {
            let span = (to - from).div_euclid(1000);
            if span > MAX_QUEUE_SPAN_SECS {
                return Err(CallbackError::invalid_operation(format!(
                    "Query range spans too wide time range ({span} / {MAX_QUEUE_SPAN_SECS}). Adjust query parameters for time range."
                )));
            }
        }
        let mut states = Vec::new();
        for item in q
            .states
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            states.push(State::parse(item).ok_or_else(|| {
                CallbackError::bad_parameter(
                    "states",
                    format!("Invalid value for states: unknown state '{item}'"),
                )
            })?);
        }
        let max = match q.max.as_deref() {
            None => 500,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|m| *m >= 1)
                .ok_or_else(|| {
                    CallbackError::bad_parameter(
                        "max",
                        format!("Invalid value for max: '{text}' (expected a whole number >= 1)"),
                    )
                })?,
        };
        let filter_keys = &self.config().callback.filter_keys;
        let filters: Vec<&(String, String)> =
            q.others.iter().filter(|(k, _)| filter_keys.contains(k)).collect();
        let services: Vec<String> = match &q.target {
            Some(t) => vec![t.clone()],
            None => self.config().services.keys().cloned().collect(),
        };
        let mut out = BTreeMap::new();
        for service in services {
            let query = ListQuery {
                service: Some(service.clone()),
                desired_from: from,
                desired_to: Some(to),
                states: states.clone(),
                limit: if filters.is_empty() { max } else { SCAN_LIMIT },
                ..ListQuery::default()
            };
            let records: Vec<CallbackRecord> = self
                .store()
                .list(&query)
                .await
                .map_err(store_error)?
                .into_iter()
                .filter(|r| {
                    filters
                        .iter()
                        .all(|(k, v)| r.field(k).as_deref() == Some(v.as_str()))
                })
                .take(max)
                .collect();
            if !records.is_empty() {
                out.insert(service, records);
            }
        }
        Ok(out)
    }

    /// R11: live callbacks per service, not counting records unchanged for over 3 hours.
    pub async fn watermarks(&self, services: &[String]) -> CallbackResult<(u64, Map<String, Value>)> {
        let names: Vec<String> = if services.is_empty() {
            self.config().services.keys().cloned().collect()
        } else {
            services.to_vec()
        };
        let fresh_after = self.now() - STALE_MS;
        let mut total = 0;
        let mut counts = Map::new();
        for name in names {
            let query = ListQuery {
                service: Some(name.clone()),
                states: vec![State::Queued, State::Routing, State::Processing, State::Paused],
                limit: 1_000_000,
                ..ListQuery::default()
            };
            let live = self.store().list(&query).await.map_err(store_error)?;
            let count = live.iter().filter(|r| r.state_changed_at > fresh_after).count() as u64;
            total += count;
            counts.insert(name, count.into());
        }
        Ok((total, counts))
    }

    /// R13: completed callbacks with a reason, from 30 days back to 15 days ahead, as CSV
    /// (`None` when nothing is selected).
    pub async fn cancelled_report(
        &self,
        callback_reason: &str,
        columns: &[String],
    ) -> CallbackResult<Option<String>> {
        let now = self.now();
        let mut reasons = vec![callback_reason.to_string()];
        if callback_reason == reason::FAIL_USER_UNREACHABLE {
            reasons.push(reason::FAIL_CALL_TO_CUSTOMER.into());
        }
        let query = ListQuery {
            desired_from: Some(now - 30 * DAY_MS),
            desired_to: Some(now + 15 * DAY_MS),
            states: vec![State::Completed],
            reasons,
            descending: true,
            limit: 1_000_000,
            ..ListQuery::default()
        };
        let records = self.store().list(&query).await.map_err(store_error)?;
        if records.is_empty() {
            return Ok(None);
        }
        let mut columns: Vec<String> = columns
            .iter()
            .flat_map(|c| c.split(','))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut seen = BTreeSet::new();
        columns.retain(|c| seen.insert(c.clone()));
        if columns.is_empty() {
            columns = REPORT_COLUMNS.iter().map(|c| c.to_string()).collect();
        }
        let mut csv = csv_line(columns.iter().map(String::as_str));
        for record in &records {
            let values: Vec<String> = columns
                .iter()
                .map(|c| record.field(c).unwrap_or_default())
                .collect();
            csv.push_str(&csv_line(values.iter().map(String::as_str)));
        }
        Ok(Some(csv))
    }
}

/// One RFC 4180 line, `\n`-terminated.
fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = fields
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_string()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_line(["a", "b,c", "say \"hi\""].into_iter()),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
    }
}
