//! Reporting events (spec 40 §5.10): every start request is reported as accepted (with the
//! new ID and whether it is immediate or scheduled) or rejected (with the error), and every
//! completion with its reason. Events go to the log under the `report` target and to counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of reported events.
#[derive(Debug, Default)]
pub struct Reporter {
    pub accepted_immediate: AtomicU64,
    pub accepted_scheduled: AtomicU64,
    pub rejected: AtomicU64,
    pub completed: AtomicU64,
}

impl Reporter {
    pub fn accepted(&self, service: &str, id: &str, immediate: bool) {
        let counter = if immediate {
            &self.accepted_immediate
        } else {
            &self.accepted_scheduled
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "report", event = "accepted", service, id, immediate);
    }

    pub fn rejected(&self, service: &str, code: u32, message: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "report", event = "rejected", service, code, message);
    }

    pub fn completed(&self, service: &str, id: &str, reason: &str) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "report", event = "completed", service, id, reason);
    }
}
