//! The scheduler in virtual time: a manual clock, the real SQLite store and the in-process
//! engine; timers are popped and run by hand, as the tokio driver would.

use std::sync::Arc;

use boomerang::callback::engine::{Engine, SessionTable};
use boomerang::callback::scheduler::TimerKind;
use boomerang::callback::{Callbacks, Params, State};
use boomerang::clock::{Clock, ManualClock, Millis};
use boomerang::config::{Config, EwtSource};
use boomerang::routing::{NoHistory, WaitEstimator};
use boomerang::store::{SqliteStore, Store};
use boomerang::time::{format_iso, parse_iso};

const CONFIG: &str = r#"
[callback]
purge_grace = 600
[service.s]
_type = "ors"
_service = "callback"
_ttl = 7200
_request_execution_time_buffer = 300
_urs_virtual_queue = "VQ"
"#;

const MIN: Millis = 60_000;

struct Rig {
    clock: ManualClock,
    engine: Arc<SessionTable>,
    callbacks: Callbacks,
    _dir: tempfile::TempDir,
}

fn rig(estimator: Arc<dyn WaitEstimator>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
    let clock = ManualClock::new(parse_iso("2030-03-01T10:00:00Z").unwrap());
    let engine = Arc::new(SessionTable::new());
    let config = Arc::new(Config::parse(CONFIG, "t").unwrap());
    let callbacks = Callbacks::new(
        config,
        store,
        engine.clone() as Arc<dyn Engine>,
        Arc::new(clock.clone()),
        estimator,
    );
    Rig {
        clock,
        engine,
        callbacks,
        _dir: dir,
    }
}

impl Rig {
    async fn create(&self, desired: Millis) -> String {
        let mut p = Params::new();
        p.insert("_customer_number".into(), "5115".into());
        p.insert("_desired_time".into(), format_iso(desired));
        self.callbacks.create("s", p).await.unwrap().id
    }

    /// Runs every timer due now, as the driver does.
    async fn run_due(&self) -> usize {
        let due = self
            .callbacks
            .timers()
            .pop_due(self.clock.now_ms(), self.callbacks.wake_lead_ms());
        let n = due.len();
        for (id, kind) in due {
            self.callbacks.on_timer(&id, kind).await;
        }
        n
    }

    async fn state(&self, id: &str) -> Option<(State, Option<String>)> {
        self.callbacks
            .get("s", id)
            .await
            .ok()
            .map(|r| (r.state, r.reason))
    }
}

#[tokio::test]
async fn scheduled_callback_wakes_expires_and_is_purged_on_time() {
    let rig = rig(Arc::new(NoHistory));
    let t0 = rig.clock.now_ms();
    let desired = t0 + 60 * MIN;
    let id = rig.create(desired).await;
    assert_eq!(rig.state(&id).await, Some((State::Scheduled, None)));
    // Wake at desired - buffer (300 s).
    assert_eq!(
        rig.callbacks.timers().get(&id),
        Some((desired - 5 * MIN, TimerKind::Wake))
    );

    // Exactly at desired - buffer the strict rule does not hold yet.
    rig.clock.set(desired - 5 * MIN);
    assert_eq!(rig.run_due().await, 0);
    rig.clock.advance(1);
    assert_eq!(rig.run_due().await, 1);
    assert_eq!(rig.state(&id).await, Some((State::Queued, None)));
    assert_eq!(rig.engine.len(), 1);

    // Unfinished at desired + _ttl: FAIL_TIMEOUT_TTL, session ended.
    let expiration = desired + 120 * MIN;
    rig.clock.set(expiration - 1);
    assert_eq!(rig.run_due().await, 0);
    rig.clock.set(expiration);
    assert_eq!(rig.run_due().await, 1);
    assert_eq!(
        rig.state(&id).await,
        Some((State::Completed, Some("FAIL_TIMEOUT_TTL".into())))
    );
    assert!(rig.engine.is_empty());

    // Purged after the grace.
    rig.clock.set(expiration + 10 * MIN);
    assert_eq!(rig.run_due().await, 1);
    assert_eq!(rig.state(&id).await, None);
    assert!(rig.callbacks.timers().is_empty());
}

#[tokio::test]
async fn cancelled_callback_is_purged_at_expiration_plus_grace() {
    let rig = rig(Arc::new(NoHistory));
    let desired = rig.clock.now_ms() + 60 * MIN;
    let id = rig.create(desired).await;
    rig.callbacks.cancel("s", &id, false).await.unwrap();
    let purge_at = desired + 120 * MIN + 10 * MIN;
    assert_eq!(
        rig.callbacks.timers().get(&id),
        Some((purge_at, TimerKind::Purge))
    );
    rig.clock.set(purge_at - 1);
    assert_eq!(rig.run_due().await, 0);
    rig.clock.set(purge_at);
    assert_eq!(rig.run_due().await, 1);
    assert_eq!(rig.state(&id).await, None);
}

/// An estimator with a fixed EWT for one queue and a larger maximum elsewhere.
struct FixedEwt {
    vq_secs: i64,
    max_secs: i64,
}

impl WaitEstimator for FixedEwt {
    fn ewt_secs(&self, source: &EwtSource) -> Option<i64> {
        match source {
            EwtSource::VirtualQueue(q) if q == "VQ" => Some(self.vq_secs),
            _ => Some(0),
        }
    }

    fn max_ewt_secs(&self) -> i64 {
        self.max_secs
    }
}

#[tokio::test]
async fn ewt_brings_the_wake_forward() {
    // EWT 10 min: due once desired < now + 300 s + 600 s.
    let rig = rig(Arc::new(FixedEwt {
        vq_secs: 600,
        max_secs: 600,
    }));
    let desired = rig.clock.now_ms() + 60 * MIN;
    let id = rig.create(desired).await;
    rig.clock.set(desired - 15 * MIN);
    assert_eq!(rig.run_due().await, 0);
    rig.clock.advance(1);
    assert_eq!(rig.run_due().await, 1);
    assert_eq!(rig.state(&id).await, Some((State::Queued, None)));
}

#[tokio::test]
async fn early_wake_is_rechecked_every_ten_seconds_until_due() {
    // Some queue has a 30 min EWT, so wakes are taken 30 min early; this queue's EWT is 1 min.
    let rig = rig(Arc::new(FixedEwt {
        vq_secs: 60,
        max_secs: 1800,
    }));
    let desired = rig.clock.now_ms() + 60 * MIN;
    let id = rig.create(desired).await;
    rig.clock.set(desired - 35 * MIN + 1);
    assert_eq!(rig.run_due().await, 1);
    assert_eq!(rig.state(&id).await, Some((State::Scheduled, None)));
    let (at, kind) = rig.callbacks.timers().get(&id).unwrap();
    assert_eq!((at, kind), (rig.clock.now_ms() + 10_000, TimerKind::Recheck));
    // Re-checked every 10 s; due once desired < now + 300 s + 60 s.
    let due_after = desired - 6 * MIN;
    let mut checks = 0;
    while rig.state(&id).await == Some((State::Scheduled, None)) {
        let (at, _) = rig.callbacks.timers().get(&id).unwrap();
        rig.clock.set(at);
        rig.run_due().await;
        checks += 1;
        assert!(checks < 400, "never became due");
    }
    assert!(rig.clock.now_ms() > due_after && rig.clock.now_ms() <= due_after + 10_000);
    assert_eq!(rig.state(&id).await, Some((State::Queued, None)));
}

#[tokio::test]
async fn recovery_rearms_timers_and_restores_sessions() {
    let rig = rig(Arc::new(NoHistory));
    let now = rig.clock.now_ms();
    let scheduled = rig.create(now + 60 * MIN).await;
    let queued = rig.create(now).await;
    let position = rig.callbacks.queue_position(&queued).await.unwrap().position;

    // A second service instance over the same store, as after a restart.
    let engine = Arc::new(SessionTable::new());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&rig._dir.path().join("db.sqlite")).unwrap());
    let config = rig.callbacks.config().clone();
    let again = Callbacks::new(
        config,
        store,
        engine.clone() as Arc<dyn Engine>,
        Arc::new(rig.clock.clone()),
        Arc::new(NoHistory),
    );
    let recovery = again.recover().await.unwrap();
    assert_eq!((recovery.records, recovery.sessions), (2, 1));
    assert_eq!(
        again.timers().get(&scheduled),
        Some((now + 55 * MIN, TimerKind::Wake))
    );
    assert_eq!(
        again.timers().get(&queued),
        Some((now + 120 * MIN, TimerKind::Expire))
    );
    assert_eq!(again.queue_position(&queued).await.unwrap().position, position);
}
