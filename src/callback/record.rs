//! The callback record: what the store keeps and the API shows (spec 40 §3).

use std::collections::BTreeMap;

use crate::callback::state::State;
use crate::clock::Millis;
use crate::time::format_iso;

/// Keys the server manages itself; a client never sets them on create (spec 40 §5.2).
pub const SYSTEM_KEYS: [&str; 5] = [
    "_id",
    "_service_name",
    "_ors_session_id",
    "_time_scheduled",
    "_expiration_time",
];

/// One callback request and everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackRecord {
    pub id: String,
    pub service: String,
    pub state: State,
    /// `_callback_reason`; meaningful in COMPLETED.
    pub reason: Option<String>,
    pub customer_number: Option<String>,
    /// `_desired_time`; every record is created with one.
    pub desired_time: Millis,
    /// `_time_scheduled`: acceptance, refreshed by each reschedule.
    pub time_scheduled: Millis,
    /// When the request was accepted (never changes; throttles count by it).
    pub created_at: Millis,
    /// `_expiration_time` = desired time + `_ttl`.
    pub expiration_time: Millis,
    /// When the state last changed (for the 3-hour stale rule of R11).
    pub state_changed_at: Millis,
    /// `_ors_session_id`: the live execution session, while one exists.
    pub session_id: Option<String>,
    /// The state held before PAUSED, restored by `resume_session`.
    pub paused_from: Option<State>,
    /// Every other option (`_xxx`) and user-data key, with its text value.
    pub properties: BTreeMap<String, String>,
    /// Optimistic-concurrency version: bumped by every successful write.
    pub version: u64,
}

impl CallbackRecord {
    /// The value of any record key as the API shows it, fixed fields included.
    pub fn field(&self, key: &str) -> Option<String> {
        match key {
            "_id" => Some(self.id.clone()),
            "_service_name" => Some(self.service.clone()),
            "_callback_state" => Some(self.state.as_str().to_string()),
            "_callback_reason" => self.reason.clone(),
            "_customer_number" => self.customer_number.clone(),
            "_desired_time" => Some(format_iso(self.desired_time)),
            "_time_scheduled" => Some(format_iso(self.time_scheduled)),
            "_expiration_time" => Some(format_iso(self.expiration_time)),
            "_ors_session_id" => self.session_id.clone(),
            other => self.properties.get(other).cloned(),
        }
    }

    /// Option or user-data value (not the fixed fields).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Moves the record to `state`, stamping the time of the change.
    pub fn set_state(&mut self, state: State, now: Millis) {
        if self.state != state {
            self.state = state;
            self.state_changed_at = now;
        }
    }

    /// Ends the record with a completion reason; the session, if any, is gone.
    pub fn complete(&mut self, reason: &str, now: Millis) {
        self.set_state(State::Completed, now);
        self.reason = Some(reason.to_string());
        self.session_id = None;
        self.paused_from = None;
    }
}
