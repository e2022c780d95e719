//! The callback timers: when a SCHEDULED callback must be looked at, when an unfinished one
//! expires (`_ttl`), when a completed one is purged.
//!
//! [`TimerQueue`] is sans-IO: it holds at most one timer per callback and answers what is due
//! at a time it is given. The tokio driver in [`run`] sleeps until the next due time (or at most
//! [`RECHECK_MS`]), hands due timers to [`Callbacks::on_timer`](super::Callbacks::on_timer), and
//! is woken early when a new timer is set.
//!
//! A wake timer is set at `desired - buffer`, the moment the immediate rule holds when EWT is
//! zero. With a larger EWT the rule holds earlier, so wake timers are taken `lead` ahead of
//! their time, where `lead` is the largest EWT of any queue; one taken too early is re-checked
//! every [`RECHECK_MS`] until it is due (spec 40 §5.5: re-evaluate at least every 10 s).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Millis;

/// Re-evaluation period of wake timers taken ahead of their time, and the driver's longest sleep.
pub const RECHECK_MS: Millis = 10_000;
/// Most timers handed out by one `pop_due`.
pub const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// A SCHEDULED callback may be due (taken `lead` early).
    Wake,
    /// A SCHEDULED callback taken early is looked at again (exactly on time).
    Recheck,
    /// `_expiration_time` of an unfinished callback: it fails with FAIL_TIMEOUT_TTL.
    Expire,
    /// A completed callback's retention is over: it is deleted.
    Purge,
}

/// One timer per callback, ordered by due time.
#[derive(Debug, Default)]
pub struct TimerQueue {
    wakes: BTreeSet<(Millis, String)>,
    others: BTreeSet<(Millis, String)>,
    by_id: HashMap<String, (Millis, TimerKind)>,
}

impl TimerQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The timer set for a callback.
    pub fn get(&self, id: &str) -> Option<(Millis, TimerKind)> {
        self.by_id.get(id).copied()
    }

    /// Sets (or replaces) the timer of a callback.
    pub fn set(&mut self, id: &str, at: Millis, kind: TimerKind) {
        self.cancel(id);
        let key = (at, id.to_string());
        match kind {
            TimerKind::Wake => self.wakes.insert(key),
            _ => self.others.insert(key),
        };
        self.by_id.insert(id.to_string(), (at, kind));
    }

    /// Removes the timer of a callback, if any.
    pub fn cancel(&mut self, id: &str) {
        if let Some((at, kind)) = self.by_id.remove(id) {
            let key = (at, id.to_string());
            match kind {
                TimerKind::Wake => self.wakes.remove(&key),
                _ => self.others.remove(&key),
            };
        }
    }

    /// When the next timer is due, given the wake lead.
    pub fn next_due(&self, lead: Millis) -> Option<Millis> {
        let wake = self.wakes.first().map(|(at, _)| at - lead);
        let other = self.others.first().map(|(at, _)| *at);
        match (wake, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes and returns the timers due at `now` (at most `max`): wake timers whose time is
    /// before `now + lead` (the immediate rule is strict), other timers whose time has come.
    pub fn pop_due(&mut self, now: Millis, lead: Millis, max: usize) -> Vec<(String, TimerKind)> {
        let mut due = Vec::new();
        while due.len() < max {
            let wake = self
                .wakes
                .first()
                .filter(|(at, _)| *at < now.saturating_add(lead))
                .cloned();
            let other = self.others.first().filter(|(at, _)| *at <= now).cloned();
            let Some((_, id)) = (match (wake, other) {
                (Some(w), Some(o)) => Some(if w.0 - lead <= o.0 { w } else { o }),
                (w, o) => w.or(o),
            }) else {
                break;
            };
            if let Some((_, kind)) = self.by_id.get(&id).copied() {
                self.cancel(&id);
                due.push((id, kind));
            }
        }
        due
    }
}

/// The timer queue shared by the callback service and the driver.
#[derive(Debug, Default)]
pub struct Timers {
    queue: Mutex<TimerQueue>,
    changed: tokio::sync::Notify,
}

impl Timers {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, TimerQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, id: &str, at: Millis, kind: TimerKind) {
        let earlier = {
            let mut q = self.queue();
            let before = q.next_due(0);
            q.set(id, at, kind);
            before.is_none_or(|b| at < b)
        };
        if earlier {
            self.changed.notify_one();
        }
    }

    pub fn cancel(&self, id: &str) {
        self.queue().cancel(id);
    }

    pub fn get(&self, id: &str) -> Option<(Millis, TimerKind)> {
        self.queue().get(id)
    }

    pub fn len(&self) -> usize {
        self.queue().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pop_due(&self, now: Millis, lead: Millis) -> Vec<(String, TimerKind)> {
        self.queue().pop_due(now, lead, MAX_BATCH)
    }

    pub fn next_due(&self, lead: Millis) -> Option<Millis> {
        self.queue().next_due(lead)
    }
}

/// The tokio driver: runs due timers until the process ends.
pub async fn run(callbacks: Arc<super::Callbacks>) {
    let timers = callbacks.timers().clone();
    loop {
        let now = callbacks.now();
        let lead = callbacks.wake_lead_ms();
        let due = timers.pop_due(now, lead);
        let full = due.len() == MAX_BATCH;
        for (id, kind) in due {
            callbacks.on_timer(&id, kind).await;
        }
        if full {
            tokio::task::yield_now().await;
            continue;
        }
        let now = callbacks.now();
        let sleep_ms = match timers.next_due(lead) {
            Some(at) => (at - now + 1).clamp(1, RECHECK_MS),
            None => RECHECK_MS,
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
            _ = timers.changed.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timer_per_callback_in_time_order() {
        let mut q = TimerQueue::new();
        q.set("a", 300, TimerKind::Expire);
        q.set("b", 100, TimerKind::Purge);
        q.set("a", 200, TimerKind::Expire);
        assert_eq!(q.len(), 2);
        assert_eq!(q.next_due(0), Some(100));
        assert!(q.pop_due(99, 0, 10).is_empty());
        assert_eq!(
            q.pop_due(200, 0, 10),
            vec![("b".into(), TimerKind::Purge), ("a".into(), TimerKind::Expire)]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn wake_is_strict_and_honours_lead() {
        let mut q = TimerQueue::new();
        q.set("w", 1000, TimerKind::Wake);
        // desired - buffer == now: the strict rule does not hold yet.
        assert!(q.pop_due(1000, 0, 10).is_empty());
        assert_eq!(q.next_due(0), Some(1000));
        assert_eq!(q.pop_due(1001, 0, 10), vec![("w".into(), TimerKind::Wake)]);
        q.set("w", 1000, TimerKind::Wake);
        // With a 600 ms lead it is taken 600 ms early.
        assert_eq!(q.next_due(600), Some(400));
        assert_eq!(q.pop_due(401, 600, 10).len(), 1);
    }

    #[test]
    fn cancel_and_batch_limit() {
        let mut q = TimerQueue::new();
        for i in 0..10 {
            q.set(&format!("c{i}"), i, TimerKind::Expire);
        }
        q.cancel("c0");
        assert_eq!(q.pop_due(100, 0, 4).len(), 4);
        assert_eq!(q.len(), 5);
    }
}
