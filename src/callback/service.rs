//! The operations of the callback API (start, cancel, reschedule/update, get, lookup, queue
//! position, session events) and what the timers do, over the store, the engine and the clock.
//!
//! Every change of a record is a compare-and-swap write of the whole record: read, decide,
//! write if nobody wrote in between, else read again and decide again. A transition is
//! committed before its side effects (starting, cancelling or ending a session).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::Params;
use super::admission::{Admission, admissions, refusal_error};
use super::engine::{Dialog, Engine, EngineError, QueuePosition, RoutingOptions, Session};
use super::error::{CallbackError, CallbackResult, ErrorCode};
use super::options::{
    check_desired_window, check_keys, check_number_rules_configured, is_immediate, merge_request,
    normalize_number, option_flag, service_options,
};
use super::record::CallbackRecord;
use super::scheduler::{RECHECK_MS, TimerKind, Timers};
use super::state::{State, reason};
use super::validate::{Access, check_service};
use crate::calendar::{SlotRules, UNLIMITED};
use crate::clock::{Clock, Millis};
use crate::config::{Config, EwtSource, ServiceConfig};
use crate::report::Reporter;
use crate::routing::WaitEstimator;
use crate::store::{LookupEntry, LookupQuery, Store, StoreError};
use crate::time::parse_iso;

/// How often a write that lost a race is retried before giving up.
const MAX_CONFLICT_RETRIES: usize = 16;

/// Keys of a source record that `_copy_from_id` never copies (the fixed fields are not
/// properties and are never copied either).
const NEVER_COPIED: [&str; 2] = ["_callback_state", "_ors_session_id"];
/// Prefix of the engine's internal counters and flags, which are never copied.
pub const INTERNAL_PREFIX: &str = "_bmr_";

/// A new callback: its ID, and the engine's dialog for an immediate one.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub id: String,
    pub dialog: Option<Dialog>,
}

/// What R12 reports.
#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub record: CallbackRecord,
    pub position: QueuePosition,
    pub ewt_secs: i64,
    pub now: Millis,
}

/// Events R14 forwards to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    Resume,
    Fail,
}

/// What a restart found in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    pub records: usize,
    pub sessions: usize,
}

pub struct Callbacks {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    engine: Arc<dyn Engine>,
    clock: Arc<dyn Clock>,
    estimator: Arc<dyn WaitEstimator>,
    timers: Arc<Timers>,
    reporter: Reporter,
}

fn store_error(e: StoreError) -> CallbackError {
    tracing::error!("{e}");
    CallbackError::unknown(e)
}

fn conflict(id: &str) -> CallbackError {
    CallbackError::unknown(format!("callback {id} kept changing under concurrent requests"))
}

fn option_i64(options: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    options.get(key).and_then(|v| v.trim().parse().ok())
}

/// The effective `_target` (after token substitution and the request's overrides) must parse:
/// a callback whose target routing cannot read would wait for no agent (spec 40 §5.1 step 3).
fn check_effective_target(options: &BTreeMap<String, String>) -> CallbackResult<()> {
    match options.get("_target").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        Some(target) => crate::routing::target::TargetList::parse(target)
            .map(|_| ())
            .map_err(|e| {
                CallbackError::bad_parameter("_target", format!("Invalid value for option _target: {e}"))
            }),
        None => Ok(()),
    }
}

fn parse_time_param(option: &str, text: &str) -> CallbackResult<Millis> {
    parse_iso(text).ok_or_else(|| {
        CallbackError::bad_parameter(
            option,
            format!("Invalid value for {option}: '{text}' is not an ISO 8601 time such as 2013-05-28T15:30:00.000Z"),
        )
    })
}

fn parse_forced_state(text: &str) -> CallbackResult<State> {
    State::parse(text).ok_or_else(|| {
        CallbackError::bad_parameter(
            "_callback_state",
            format!("Invalid value for _callback_state: '{text}' (expected SCHEDULED, QUEUED, ROUTING, PROCESSING, PAUSED or COMPLETED)"),
        )
    })
}

/// A `_callback_state` lookup filter: optional quotes, optional `!` negation.
fn parse_state_filter(text: &str) -> CallbackResult<(bool, State)> {
    let unquoted = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(text);
    let (negated, name) = match unquoted.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, unquoted),
    };
    State::parse(name).map(|s| (negated, s)).ok_or_else(|| {
        CallbackError::invalid_operation(format!("Cannot process 'filter' parameter correctly : {text}"))
            .with("filter", text)
    })
}

/// Java-style rendering of a property map, as the seed's messages print it: `{a=1, b=2}`.
fn render_properties(terms: &[LookupEntry]) -> String {
    let items: Vec<String> = terms.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", items.join(", "))
}

impl Callbacks {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        engine: Arc<dyn Engine>,
        clock: Arc<dyn Clock>,
        estimator: Arc<dyn WaitEstimator>,
    ) -> Self {
        Self {
            config,
            store,
            engine,
            clock,
            estimator,
            timers: Timers::new(),
            reporter: Reporter::default(),
        }
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn timers(&self) -> &Arc<Timers> {
        &self.timers
    }

    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// How early wake timers are taken: the largest EWT of any queue.
    pub fn wake_lead_ms(&self) -> Millis {
        self.estimator.max_ewt_secs().max(0) * 1000
    }

    fn new_id(&self) -> String {
        format!("{}-{}", self.config.node_id, Uuid::new_v4())
    }

    fn new_session_id() -> String {
        Uuid::new_v4().simple().to_string().to_uppercase()
    }

    fn ttl_secs(&self, record: &CallbackRecord) -> i64 {
        option_i64(&record.properties, "_ttl")
            .or_else(|| self.config.service(&record.service).map(|s| s.ttl_secs))
            .unwrap_or(crate::config::DEFAULT_TTL_SECS)
    }

    fn buffer_secs(&self, options: &BTreeMap<String, String>, service: &str) -> i64 {
        option_i64(options, "_request_execution_time_buffer")
            .or_else(|| self.config.service(service).map(|s| s.buffer_secs))
            .unwrap_or(0)
    }

    fn past_window_secs(&self, ttl_secs: i64) -> i64 {
        self.config.callback.desired_time_max_past.unwrap_or(ttl_secs)
    }

    /// EWT for an option set; 50020 when `_request_queue_time_stat` cannot be parsed.
    fn ewt_secs(&self, service: &str, options: &BTreeMap<String, String>) -> CallbackResult<i64> {
        match EwtSource::from_options(options) {
            Ok(Some(source)) => Ok(self.estimator.ewt_secs(&source).unwrap_or(0).max(0)),
            Ok(None) => Ok(0),
            Err(stat) => Err(CallbackError::bad_configuration(
                service,
                format!("Unable to parse option: _request_queue_time_stat={stat}"),
            )),
        }
    }

    /// The lookup-index entries of a record's current values.
    fn lookup_entries(&self, record: &CallbackRecord) -> Vec<LookupEntry> {
        let default_keys = ["_customer_number".to_string()];
        let keys = self
            .config
            .service(&record.service)
            .map_or(&default_keys[..], |s| &s.lookup_keys[..]);
        keys.iter()
            .filter_map(|k| record.field(k).filter(|v| !v.is_empty()).map(|v| (k.clone(), v)))
            .collect()
    }

    fn session_for(&self, record: &CallbackRecord, session_id: &str) -> Session {
        let p = &record.properties;
        Session {
            id: session_id.to_string(),
            callback_id: record.id.clone(),
            service: record.service.clone(),
            queue: p
                .get("_urs_virtual_queue")
                .filter(|q| !q.is_empty())
                .cloned()
                .unwrap_or_else(|| record.service.clone()),
            priority: option_i64(p, "_urs_vq_priority").unwrap_or(0),
            accepted_at: record.time_scheduled,
            wait_for_agent: option_flag(p, "_wait_for_agent"),
            agent_preview: option_flag(p, "_agent_preview"),
            routing: RoutingOptions {
                target: p.get("_target").filter(|t| !t.trim().is_empty()).cloned(),
                priority_increment: option_i64(p, "_urs_vq_priority_increment").map(|step| {
                    (
                        step,
                        option_i64(p, "_urs_vq_priority_increment_interval")
                            .unwrap_or(60)
                            .max(1),
                    )
                }),
                max_transfer_attempts: option_i64(p, "_max_transfer_to_agent_attempts")
                    .and_then(|n| u32::try_from(n).ok()),
                confirm_timeout_secs: option_i64(p, "_agent_transfer_confirm_timeout").filter(|&t| t > 0),
                customer_first: !option_flag(p, "_wait_for_agent")
                    && !p
                        .get("_userterminated_first_connect_party")
                        .is_some_and(|v| v.eq_ignore_ascii_case("AGENT")),
            },
        }
    }

    /// Sets the one timer a record needs in its state.
    fn arm(&self, record: &CallbackRecord) {
        match record.state {
            State::Scheduled => {
                let buffer = self.buffer_secs(&record.properties, &record.service);
                self.timers
                    .set(&record.id, record.desired_time - buffer * 1000, TimerKind::Wake);
            }
            State::Completed => {
                let purge_at = record.expiration_time + self.config.callback.purge_grace * 1000;
                self.timers.set(&record.id, purge_at, TimerKind::Purge);
            }
            _ => self
                .timers
                .set(&record.id, record.expiration_time, TimerKind::Expire),
        }
    }

    /// Writes a changed record if nobody wrote it since it was read; re-arms its timer.
    async fn save(&self, record: &mut CallbackRecord) -> CallbackResult<bool> {
        Ok(self.save_admitted(record, &[]).await?.unwrap_or(false))
    }

    /// [`Callbacks::save`] if every admission holds in the same transaction.
    async fn save_admitted(
        &self,
        record: &mut CallbackRecord,
        admissions: &[Admission],
    ) -> CallbackResult<Result<bool, super::admission::Refusal>> {
        let lookups = self.lookup_entries(record);
        let applied = match self
            .store
            .update_admitted(record, &lookups, admissions)
            .await
            .map_err(store_error)?
        {
            Ok(applied) => applied,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if applied {
            record.version += 1;
            self.arm(record);
            if record.state == State::Completed {
                self.reporter.completed(
                    &record.service,
                    &record.id,
                    record.reason.as_deref().unwrap_or(""),
                );
            }
        }
        Ok(Ok(applied))
    }

    async fn load(&self, id: &str) -> CallbackResult<Option<CallbackRecord>> {
        self.store.get(id).await.map_err(store_error)
    }

    /// The record `id` of service `service`; 40030 when absent or owned by another service.
    async fn load_in_service(&self, service: &str, id: &str) -> CallbackResult<CallbackRecord> {
        match self.load(id).await? {
            Some(record) if record.service == service => Ok(record),
            _ => Err(CallbackError::not_found(id)),
        }
    }

    // ---------------------------------------------------------------- R1: start or schedule

    /// Starts or schedules a callback (R1).
    pub async fn create(&self, service_name: &str, params: Params) -> CallbackResult<Created> {
        let result = self.create_checked(service_name, params).await;
        if let Err(e) = &result {
            self.reporter.rejected(service_name, e.code.code(), &e.message);
        }
        result
    }

    async fn create_checked(&self, service_name: &str, params: Params) -> CallbackResult<Created> {
        let service = check_service(&self.config, service_name, Access::Write)?;
        check_keys(&params)?;
        let id = self.new_id();
        let request = self.with_copied_source(&params).await?;

        let mut options = service_options(service, &request);
        merge_request(service, &mut options, &request)?;
        check_effective_target(&options)?;
        let ewt = self.ewt_secs(service_name, &options)?;

        let fix_plus = options
            .get("_fix_plus_on_int_phone_numbers")
            .map_or(service.fix_plus, |v| v.trim().eq_ignore_ascii_case("true"));
        let number = request
            .get("_customer_number")
            .map(|n| normalize_number(n, fix_plus));
        check_customer_identity(service, &id, number.as_deref(), &options)?;

        let now = self.now();
        let desired = match request.get("_desired_time").filter(|t| !t.trim().is_empty()) {
            Some(text) => parse_time_param("_desired_time", text)?,
            None => now,
        };
        let ttl = option_i64(&options, "_ttl").unwrap_or(service.ttl_secs);
        check_desired_window(
            &id,
            desired,
            now,
            self.past_window_secs(ttl),
            self.config.callback.desired_time_max_future,
        )?;
        let forced = match request.get("_callback_state").filter(|s| !s.is_empty()) {
            Some(text) => Some(parse_forced_state(text)?),
            None => None,
        };
        match number.as_deref().filter(|n| !n.is_empty()) {
            // The configured rules first (an unparseable number is their 40040), then the
            // check that any number can be dialled at all (40010).
            Some(n) => {
                super::numbers::check(&self.config, service_name, &options, n)?;
                super::numbers::check_dialable(n)?
            }
            None => check_number_rules_configured(service_name, &options)?,
        }

        let buffer = self.buffer_secs(&options, service_name);
        let immediate = is_immediate(desired, now, buffer, ewt);
        let state = forced.unwrap_or(if immediate {
            State::Queued
        } else {
            State::Scheduled
        });
        let starts_session = forced.is_none() && immediate;
        let reason = (state == State::Completed).then(|| {
            request
                .get("_callback_reason")
                .filter(|r| !r.is_empty())
                .cloned()
                .unwrap_or_else(|| reason::NOT_AVAILABLE.into())
        });
        let mut record = CallbackRecord {
            id: id.clone(),
            service: service_name.to_string(),
            state,
            reason,
            customer_number: number.filter(|n| !n.is_empty()),
            desired_time: desired,
            time_scheduled: now,
            created_at: now,
            expiration_time: desired + ttl * 1000,
            state_changed_at: now,
            session_id: starts_session.then(Self::new_session_id),
            paused_from: None,
            properties: options,
            version: 0,
        };
        let lookups = self.lookup_entries(&record);
        let admissions = admissions(&record.properties, record.customer_number.as_deref(), now);
        // Office hours and capacity apply to scheduled requests, and to immediate ones with
        // `_enable_reject_out_of_office_hours` (spec 40 §5.5-5.6); not to other forced states.
        let slot_rules = if state == State::Scheduled || starts_session {
            SlotRules::for_booking(&self.config, service_name, &record.properties, starts_session)?
        } else {
            None
        };
        for attempt in 1..=MAX_CONFLICT_RETRIES {
            let mut checks = admissions.clone();
            if let Some(rules) = &slot_rules {
                checks.extend(self.booking_admission(rules, desired, now, None).await?);
            }
            match self
                .store
                .insert_admitted(&record, &lookups, &checks)
                .await
                .map_err(store_error)?
            {
                None => break,
                // Another request took the last place since the slot was read: check again,
                // which now refuses with proposals.
                Some(r)
                    if matches!(r.admission, Admission::Capacity { .. })
                        && attempt < MAX_CONFLICT_RETRIES => {}
                Some(refusal) => return Err(refusal_error(service_name, &refusal)),
            }
        }
        self.reporter
            .accepted(service_name, &id, state != State::Scheduled);
        self.arm(&record);
        let dialog = if starts_session {
            self.start_session(&mut record).await?
        } else {
            None
        };
        Ok(Created { id, dialog })
    }

    /// Checks the slot of a booking at `desired` (40050/40051 with proposals when it is closed
    /// or full) and gives the capacity admission the write must meet. `own` is the desired
    /// time of the record being rescheduled: its own booking does not count.
    async fn booking_admission(
        &self,
        rules: &SlotRules<'_>,
        desired: Millis,
        now: Millis,
        own: Option<(&str, Millis)>,
    ) -> CallbackResult<Option<Admission>> {
        let own_slot = own.map(|(_, own_desired)| rules.slot_of(own_desired));
        let booked_in = |from: Millis, to: Millis| async move {
            let mut booked = self
                .store
                .booked_per_slot(rules.service, from, to, rules.bucket_ms())
                .await
                .map_err(store_error)?;
            if let Some(count) = own_slot.and_then(|s| booked.get_mut(&s)) {
                *count = count.saturating_sub(1);
            }
            Ok::<_, CallbackError>(booked)
        };
        // The desired slot alone decides an acceptance; the wider range (neighbours, the next
        // 7 days) is read only to propose slots for a refusal.
        let start = rules.slot_of(desired);
        let slot = match rules.check(desired, now, &booked_in(start, start + rules.bucket_ms()).await?) {
            Ok(slot) => slot,
            Err(_) => {
                let (from, to) = rules.booked_range(desired);
                rules.check(desired, now, &booked_in(from, to).await?)?
            }
        };
        Ok((slot.total != UNLIMITED).then(|| Admission::Capacity {
            from: slot.start,
            to: slot.end,
            capacity: slot.total,
            exclude: own.map(|(id, _)| id.to_string()),
        }))
    }

    /// With `_copy_from_id`, the source's options and user data under the request's own.
    async fn with_copied_source(&self, params: &Params) -> CallbackResult<Params> {
        let Some(source_id) = params.get("_copy_from_id").filter(|s| !s.is_empty()) else {
            return Ok(params.clone());
        };
        let source = self.load(source_id).await?.ok_or_else(|| {
            CallbackError::new(
                ErrorCode::CallbackNotFound,
                format!("Callback {source_id} to copy from cannot be found"),
            )
            .with("id", source_id.as_str())
        })?;
        if source.state != State::Completed {
            return Err(CallbackError::invalid_operation(format!(
                "Request cannot be processed because callback {source_id} to copy is not COMPLETED. Check parameter _copy_from_id"
            ))
            .with("id", source_id.as_str())
            .with("state", source.state.as_str())
            .with("service", source.service.as_str()));
        }
        let mut request: Params = source
            .properties
            .iter()
            .filter(|(k, _)| !NEVER_COPIED.contains(&k.as_str()) && !k.starts_with(INTERNAL_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(number) = &source.customer_number {
            request.insert("_customer_number".into(), number.clone());
        }
        request.extend(
            params
                .iter()
                .filter(|(k, _)| *k != "_copy_from_id")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        Ok(request)
    }

    /// Hands a record that was just committed as QUEUED with a new session to the engine,
    /// retrying up to `_max_ors_submit_attempts`; a submission that fails for good completes
    /// the record with SUBMIT_ERROR.
    async fn start_session(&self, record: &mut CallbackRecord) -> CallbackResult<Option<Dialog>> {
        let Some(session_id) = record.session_id.clone() else {
            return Ok(None);
        };
        let attempts = option_i64(&record.properties, "_max_ors_submit_attempts")
            .or_else(|| {
                self.config
                    .service(&record.service)
                    .map(|s| s.max_submit_attempts as i64)
            })
            .unwrap_or(crate::config::DEFAULT_MAX_SUBMIT_ATTEMPTS as i64)
            .max(1);
        let session = self.session_for(record, &session_id);
        for attempt in 1..=attempts {
            match self.engine.start(session.clone()).await {
                Ok(dialog) => return Ok(dialog),
                Err(EngineError::Unavailable(why)) => {
                    tracing::warn!(callback = %record.id, attempt, "submission to the engine failed: {why}");
                    if attempt < attempts {
                        tokio::time::sleep(std::time::Duration::from_millis(20 * attempt as u64)).await;
                    }
                }
                Err(other) => {
                    self.fail_submission(record, &session_id).await?;
                    let text = match &other {
                        EngineError::InvalidResponse(_) => "Invalid ORS response".to_string(),
                        e => e.to_string(),
                    };
                    return Err(CallbackError::new(ErrorCode::OrsError, text)
                        .with("service", record.service.as_str()));
                }
            }
        }
        self.fail_submission(record, &session_id).await?;
        Err(CallbackError::new(
            ErrorCode::OrsMaxSubmitRetries,
            format!(
                "Callback {} reached maximum attempts to submit to ORS reached ({attempts})",
                record.id
            ),
        )
        .with("id", record.id.as_str())
        .with("max-attempts", attempts))
    }

    async fn fail_submission(&self, record: &mut CallbackRecord, session_id: &str) -> CallbackResult<()> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            if record.session_id.as_deref() != Some(session_id) {
                return Ok(());
            }
            record.complete(reason::SUBMIT_ERROR, self.now());
            if self.save(record).await? {
                return Ok(());
            }
            match self.load(&record.id).await? {
                Some(fresh) => *record = fresh,
                None => return Ok(()),
            }
        }
        Err(conflict(&record.id))
    }

    // ---------------------------------------------------------------- R2: cancel

    /// Cancels a callback (R2).
    pub async fn cancel(
        &self,
        service_name: &str,
        id: &str,
        discard_engine_failure: bool,
    ) -> CallbackResult<()> {
        check_service(&self.config, service_name, Access::Read)?;
        let mut cancelled_session: Option<String> = None;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let mut record = self.load_in_service(service_name, id).await?;
            let state = record.state;
            match state {
                State::Completed => {
                    return Err(CallbackError::invalid_operation(format!(
                        "Callback {id} cannot be cancelled or completed - _callback_state=COMPLETED"
                    ))
                    .with("id", id)
                    .with("state", state.as_str()));
                }
                State::Scheduled => {}
                _ => match record.session_id.clone() {
                    None if discard_engine_failure => {
                        tracing::error!(
                            callback = id,
                            "cancel: no session for a {state} callback (discarded)"
                        );
                    }
                    None => {
                        return Err(CallbackError::invalid_operation(format!(
                            "Callback {id} cannot be cancelled - No ORS session found. (_callback_state={state} while _ors_session_id=null?)"
                        ))
                        .with("id", id)
                        .with("state", state.as_str()));
                    }
                    Some(session) if cancelled_session.as_deref() == Some(session.as_str()) => {}
                    Some(session) => match self.engine.cancel(&session).await {
                        Ok(()) => cancelled_session = Some(session),
                        Err(e) if discard_engine_failure => {
                            tracing::error!(callback = id, "cancel: engine failure discarded: {e}");
                        }
                        Err(EngineError::InvalidResponse(_)) => {
                            return Err(CallbackError::new(ErrorCode::OrsError, "Invalid ORS response")
                                .with("service", service_name));
                        }
                        Err(e) => {
                            let message = e.to_string();
                            return Err(CallbackError::invalid_operation(format!(
                                "Callback {id} cannot be cancelled - unable to process ORS cancel request : {message} "
                            ))
                            .with("id", id)
                            .with("message", message));
                        }
                    },
                },
            }
            record.complete(reason::CANCELLED, self.now());
            if self.save(&mut record).await? {
                return Ok(());
            }
        }
        Err(conflict(id))
    }

    // ---------------------------------------------------------------- R3: reschedule or update

    /// Reschedules (with `_new_desired_time`) or updates a callback (R3).
    pub async fn update(&self, service_name: &str, id: &str, params: Params) -> CallbackResult<()> {
        let service = check_service(&self.config, service_name, Access::Write)?;
        check_keys(&params)?;
        if let Some(new_time) = params.get("_new_desired_time") {
            return self.reschedule(service, id, new_time, &params).await;
        }
        let forced = match params.get("_callback_state").filter(|s| !s.is_empty()) {
            Some(text) => Some(parse_forced_state(text)?),
            None => None,
        };
        for _ in 0..MAX_CONFLICT_RETRIES {
            let mut record = self.load_in_service(service_name, id).await?;
            if record.state == State::Completed {
                let time = crate::time::format_iso(record.desired_time);
                return Err(CallbackError::invalid_operation(format!(
                    "Rejecting update : {service_name}=[{id} @ {time}] - reached state COMPLETED"
                ))
                .with("id", id)
                .with("service", service_name)
                .with("time", time));
            }
            let old_session = record.session_id.clone();
            self.apply_properties(service, &mut record, &params, true)?;
            let now = self.now();
            match forced {
                Some(State::Completed) => {
                    let why = params
                        .get("_callback_reason")
                        .filter(|r| !r.is_empty())
                        .map_or(reason::NOT_AVAILABLE, String::as_str);
                    record.complete(why, now);
                }
                Some(State::Scheduled) => {
                    record.set_state(State::Scheduled, now);
                    record.session_id = None;
                    record.paused_from = None;
                }
                Some(State::Paused) => {
                    if record.state != State::Paused {
                        record.paused_from = Some(record.state);
                    }
                    record.set_state(State::Paused, now);
                }
                Some(other) => {
                    record.set_state(other, now);
                    record.paused_from = None;
                }
                None => {}
            }
            if self.save(&mut record).await? {
                if let Some(old) = old_session
                    && record.session_id.as_deref() != Some(old.as_str())
                {
                    self.engine.end(&old).await;
                }
                return Ok(());
            }
        }
        Err(conflict(id))
    }

    async fn reschedule(
        &self,
        service: &ServiceConfig,
        id: &str,
        new_time: &str,
        params: &Params,
    ) -> CallbackResult<()> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let mut record = self.load_in_service(&service.name, id).await?;
            if record.state != State::Scheduled {
                return Err(CallbackError::invalid_operation(format!(
                    "Callback {id} is no longer scheduled. State={}",
                    record.state
                ))
                .with("id", id)
                .with("state", record.state.as_str()));
            }
            let desired = parse_time_param("_new_desired_time", new_time)?;
            let now = self.now();
            let ttl = self.ttl_secs(&record);
            check_desired_window(
                id,
                desired,
                now,
                self.past_window_secs(ttl),
                self.config.callback.desired_time_max_future,
            )?;
            let ewt = self.ewt_secs(&service.name, &record.properties)?;
            let buffer = self.buffer_secs(&record.properties, &service.name);
            let immediate = is_immediate(desired, now, buffer, ewt);
            // Office hours and capacity at the new slot; the record's own booking does not count.
            let mut checks = Vec::new();
            if let Some(rules) =
                SlotRules::for_booking(&self.config, &service.name, &record.properties, immediate)?
            {
                checks.extend(
                    self.booking_admission(&rules, desired, now, Some((id, record.desired_time)))
                        .await?,
                );
            }
            self.apply_properties(service, &mut record, params, false)?;
            let ttl = self.ttl_secs(&record);
            record.desired_time = desired;
            record.time_scheduled = now;
            record.expiration_time = desired + ttl * 1000;
            if immediate {
                record.set_state(State::Queued, now);
                record.session_id = Some(Self::new_session_id());
            }
            // Otherwise a race was lost (the record changed, or another booking took the last
            // place): read and decide again.
            if let Ok(true) = self.save_admitted(&mut record, &checks).await? {
                self.start_session(&mut record).await?;
                return Ok(());
            }
        }
        Err(conflict(id))
    }

    /// Merges R3 body properties into a record. `engine_mode` (update without a new time)
    /// also lets the engine set `_ors_session_id` and `_desired_time`.
    fn apply_properties(
        &self,
        service: &ServiceConfig,
        record: &mut CallbackRecord,
        params: &Params,
        engine_mode: bool,
    ) -> CallbackResult<()> {
        for (key, value) in params {
            match key.as_str() {
                "_callback_state" | "_callback_reason" | "_new_desired_time" | "_copy_from_id" | "_id"
                | "_service_name" | "_time_scheduled" | "_expiration_time" => {}
                "_ors_session_id" if engine_mode => {
                    record.session_id = Some(value.clone()).filter(|v| !v.is_empty());
                }
                "_ors_session_id" => {}
                "_customer_number" => {
                    super::numbers::check(&self.config, &service.name, &record.properties, value.trim())?;
                    if !value.trim().is_empty() {
                        super::numbers::check_dialable(value.trim())?;
                    }
                    let fix_plus =
                        option_flag(&record.properties, "_fix_plus_on_int_phone_numbers") || service.fix_plus;
                    record.customer_number =
                        Some(normalize_number(value, fix_plus)).filter(|n| !n.is_empty());
                }
                "_desired_time" if engine_mode => {
                    record.desired_time = parse_time_param("_desired_time", value)?;
                    record.expiration_time = record.desired_time + self.ttl_secs(record) * 1000;
                }
                "_desired_time" => {}
                option if option.starts_with('_') => {
                    crate::config::service_check_typed_option(option, value).map_err(|problem| {
                        CallbackError::bad_parameter(
                            option,
                            format!("Invalid value for option {option}: {problem}"),
                        )
                    })?;
                    record.properties.insert(key.clone(), value.clone());
                }
                _ => {
                    record.properties.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- R5, R6/R7: read

    /// One callback of a service (R5).
    pub async fn get(&self, service_name: &str, id: &str) -> CallbackResult<CallbackRecord> {
        check_service(&self.config, service_name, Access::Read)?;
        self.load_in_service(service_name, id).await
    }

    /// Callbacks whose lookup properties are or were equal to the given values (R6 with a
    /// service, R7 across services), with the state and desired-time filters applied.
    pub async fn lookup(
        &self,
        service_name: Option<&str>,
        query: &[(String, String)],
    ) -> CallbackResult<Vec<CallbackRecord>> {
        let service = match service_name {
            Some(name) => Some(check_service(&self.config, name, Access::Read)?),
            None => None,
        };
        let mut any = false;
        let mut state_filter = None;
        let (mut from, mut to) = (None, None);
        let mut terms: Vec<LookupEntry> = Vec::new();
        for (key, value) in query {
            match key.as_str() {
                "operand" => {
                    any = match value.to_ascii_uppercase().as_str() {
                        "AND" => false,
                        "OR" => true,
                        _ => {
                            return Err(CallbackError::bad_parameter(
                                "operand",
                                format!("Invalid value for operand: '{value}' (expected AND or OR)"),
                            ));
                        }
                    }
                }
                "_callback_state" => state_filter = Some(parse_state_filter(value)?),
                "_desired_time_from" => from = Some(parse_time_param(key, value)?),
                "_desired_time_to" => to = Some(parse_time_param(key, value)?),
                "_" => {}
                _ => terms.push((key.clone(), value.clone())),
            }
        }
        if terms.is_empty() {
            return Err(CallbackError::new(
                ErrorCode::BadParameter,
                "No lookup possible. No properties to look for.",
            ));
        }
        let allowed: BTreeSet<&str> = match service {
            Some(s) => s.lookup_keys.iter().map(String::as_str).collect(),
            None => self
                .config
                .services
                .values()
                .flat_map(|s| s.lookup_keys.iter().map(String::as_str))
                .chain(["_customer_number"])
                .collect(),
        };
        if terms.iter().any(|(k, _)| !allowed.contains(k.as_str())) {
            let properties: Map<String, Value> = terms
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            return Err(CallbackError::new(
                ErrorCode::BadParameter,
                format!("No such lookup possible for {}", render_properties(&terms)),
            )
            .with("properties", properties));
        }
        let fix_plus = service.map_or(self.config.callback.fix_plus, |s| s.fix_plus);
        for (key, value) in terms.iter_mut() {
            if key == "_customer_number" {
                *value = normalize_number(value, fix_plus);
            }
        }
        let records = self
            .store
            .lookup(&LookupQuery {
                service: service_name.map(str::to_string),
                terms,
                any,
            })
            .await
            .map_err(store_error)?;
        Ok(records
            .into_iter()
            .filter(|r| state_filter.is_none_or(|(negated, s)| (r.state == s) != negated))
            .filter(|r| from.is_none_or(|f| r.desired_time >= f) && to.is_none_or(|t| r.desired_time <= t))
            .collect())
    }

    // ---------------------------------------------------------------- R12, R14: sessions

    /// Position and EWT of a callback waiting in its queue (R12).
    pub async fn queue_position(&self, id: &str) -> CallbackResult<QueueInfo> {
        let record = self.load(id).await?.ok_or_else(|| CallbackError::not_found(id))?;
        let position = record
            .session_id
            .as_deref()
            .filter(|_| record.state.is_in_session())
            .and_then(|s| self.engine.position(s))
            .ok_or_else(|| {
                CallbackError::invalid_operation(format!(
                    "Callback {id} has no active session - _callback_state={}",
                    record.state
                ))
                .with("id", id)
                .with("state", record.state.as_str())
            })?;
        let ewt_secs = self.ewt_secs(&record.service, &record.properties).unwrap_or(0);
        Ok(QueueInfo {
            record,
            position,
            ewt_secs,
            now: self.now(),
        })
    }

    /// Delivers `resume_session` or `fail_session` (R14); `Ok(false)` for an unknown session.
    pub async fn session_event(&self, session_id: &str, event_name: &str) -> CallbackResult<bool> {
        let event = match event_name {
            "resume_session" => SessionEvent::Resume,
            "fail_session" => SessionEvent::Fail,
            other => {
                return Err(CallbackError::bad_parameter(
                    "event-name",
                    format!("Unknown session event '{other}' (expected resume_session or fail_session)"),
                ));
            }
        };
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(mut record) = self.store.get_by_session(session_id).await.map_err(store_error)? else {
                return Ok(false);
            };
            let now = self.now();
            match event {
                SessionEvent::Resume => {
                    if record.state == State::Paused {
                        let back = record.paused_from.take().unwrap_or(State::Queued);
                        record.set_state(back, now);
                        if !self.save(&mut record).await? {
                            continue;
                        }
                    }
                    if let Err(e) = self.engine.resume(session_id).await {
                        tracing::warn!(session = session_id, "resume_session: {e}");
                    }
                }
                SessionEvent::Fail => {
                    record.complete(reason::NOT_AVAILABLE, now);
                    if !self.save(&mut record).await? {
                        continue;
                    }
                    self.engine.end(session_id).await;
                }
            }
            return Ok(true);
        }
        Err(conflict(session_id))
    }

    // ---------------------------------------------------------------- timers and restart

    /// Handles a due timer: looks at the record and does what its state calls for now.
    pub async fn on_timer(&self, id: &str, _kind: TimerKind) {
        if let Err(e) = self.run_timer(id).await {
            tracing::error!(
                callback = id,
                "timer failed, retrying in {} s: {e}",
                RECHECK_MS / 1000
            );
            self.timers.set(id, self.now() + RECHECK_MS, TimerKind::Recheck);
        }
    }

    async fn run_timer(&self, id: &str) -> CallbackResult<()> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(mut record) = self.load(id).await? else {
                self.timers.cancel(id);
                return Ok(());
            };
            let now = self.now();
            match record.state {
                State::Completed => {
                    if now >= record.expiration_time + self.config.callback.purge_grace * 1000 {
                        if !self
                            .store
                            .delete(id, Some(record.version))
                            .await
                            .map_err(store_error)?
                        {
                            continue;
                        }
                        self.timers.cancel(id);
                    } else {
                        self.arm(&record);
                    }
                }
                _ if now >= record.expiration_time => {
                    let session = record.session_id.clone();
                    record.complete(reason::FAIL_TIMEOUT_TTL, now);
                    if !self.save(&mut record).await? {
                        continue;
                    }
                    if let Some(session) = session {
                        self.engine.end(&session).await;
                    }
                }
                State::Scheduled => {
                    let buffer = self.buffer_secs(&record.properties, &record.service);
                    let ewt = self.ewt_secs(&record.service, &record.properties).unwrap_or(0);
                    if is_immediate(record.desired_time, now, buffer, ewt) {
                        record.set_state(State::Queued, now);
                        record.session_id = Some(Self::new_session_id());
                        if !self.save(&mut record).await? {
                            continue;
                        }
                        if let Err(e) = self.start_session(&mut record).await {
                            tracing::error!(callback = id, "scheduled callback could not be submitted: {e}");
                        }
                    } else if record.desired_time - buffer * 1000 < now + self.wake_lead_ms() {
                        self.timers.set(id, now + RECHECK_MS, TimerKind::Recheck);
                    } else {
                        self.arm(&record);
                    }
                }
                _ => self.arm(&record),
            }
            return Ok(());
        }
        Err(conflict(id))
    }

    /// After a start: re-arms every record's timer and hands live sessions back to the engine.
    pub async fn recover(&self) -> Result<Recovery, StoreError> {
        let seeds = self.store.timer_seeds().await?;
        let grace = self.config.callback.purge_grace * 1000;
        for seed in &seeds {
            match seed.state {
                State::Scheduled => {
                    let buffer = seed
                        .buffer_secs
                        .unwrap_or_else(|| self.config.service(&seed.service).map_or(0, |s| s.buffer_secs));
                    self.timers
                        .set(&seed.id, seed.desired_time - buffer * 1000, TimerKind::Wake);
                }
                State::Completed => self
                    .timers
                    .set(&seed.id, seed.expiration_time + grace, TimerKind::Purge),
                _ => self.timers.set(&seed.id, seed.expiration_time, TimerKind::Expire),
            }
        }
        let live = self.store.in_session().await?;
        let mut sessions = 0;
        for record in &live {
            if let Some(session_id) = &record.session_id {
                self.engine.restore(self.session_for(record, session_id)).await;
                sessions += 1;
            }
        }
        Ok(Recovery {
            records: seeds.len(),
            sessions,
        })
    }
}

/// `_customer_number`, or with `_mandatory_customer_lookup_keys` one of those keys, must be
/// present and non-empty (spec 40 §5.4, §6.1 step 5).
fn check_customer_identity(
    service: &ServiceConfig,
    id: &str,
    number: Option<&str>,
    options: &BTreeMap<String, String>,
) -> CallbackResult<()> {
    if !service.mandatory_lookup_keys.is_empty() {
        let present = |key: &str| match key {
            "_customer_number" => number.is_some_and(|n| !n.is_empty()),
            other => options.get(other).is_some_and(|v| !v.trim().is_empty()),
        };
        if present("_customer_number") || service.mandatory_lookup_keys.iter().any(|k| present(k)) {
            return Ok(());
        }
        let keys = &service.mandatory_lookup_keys;
        return Err(CallbackError::new(
            ErrorCode::BadParameter,
            format!(
                "Callback {id} does not contain the mandatory customer lookup keys [{}]",
                keys.join(", ")
            ),
        )
        .with("keys", keys.clone())
        .with("id", id));
    }
    match number {
        None => Err(CallbackError::bad_parameter(
            "_customer_number",
            "Cannot create service, missing mandatory callback option _customer_number",
        )),
        Some("") => Err(CallbackError::bad_parameter(
            "_customer_number",
            "Cannot create service, empty mandatory callback option _customer_number",
        )),
        Some(_) => Ok(()),
    }
}
