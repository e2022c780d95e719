//! Routing: agents, virtual queues, targets, agent reservation and estimated wait time.
//!
//! [`router::Router`] is the sans-IO core (every method takes the time); [`Routing`] is its
//! shared, locked owner that the callback engine, the agents API and the EWT callers use.
//!
//! # For the call layer
//!
//! 1. [`Routing::subscribe`] and act on each [`RoutingEvent`]:
//!    - `Reserved { session_id, agent_id, reservation }`: dial the agent (agent first: the
//!      customer is dialled once the agent answered; customer first: the customer is already
//!      on the line). Keep `event.agent_call()`: it is the handle of every report below.
//!    - `DialCustomer { session_id }` (customer-first mode): dial the customer; when the
//!      customer is on the line call [`Routing::customer_ready`], which reserves an agent.
//!    - `Released { .. }`: the reservation ended without a call (the router's own timer, or
//!      the report below): cancel the agent leg if it still rings; the callback stays queued.
//!    - `AttemptsExhausted { session_id }`: no more agents for this callback
//!      (`_max_transfer_to_agent_attempts`): play the find-agent-failure treatment and end it.
//! 2. Report every outcome of an agent call with [`Routing::on_agent_call`]`(&call, event)`:
//!    `Answered` (200 on the agent leg), `Rejected { code }` (486, 603, 480, 408, 3xx...),
//!    `NoAnswer` (ring timeout), `CustomerGone` (the customer hung up or the customer leg
//!    failed), `Bridged`, `HungUp` (the bridged call ended). See [`router::AgentCallEvent`].
//! 3. Tell routing when an agent's phone registers or goes away through the
//!    [`PhoneRegistry`] given to [`Routing::new`] (an agent whose phone is not registered
//!    cannot become ready) and [`Routing::phone_unregistered`] when a registration ends (a
//!    ready agent becomes not ready).

pub mod config;
pub mod ewt;
pub mod router;
pub mod skill;
pub mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::clock::{Clock, Millis, SystemClock};
use crate::config::EwtSource;

pub use config::RoutingConfig;
pub use router::{
    AgentCall, AgentCallEvent, AgentCallOutcome, AlwaysRegistered, PhoneRegistry, RoutingEvent,
};

/// Estimated wait time of a queue, as the immediate-vs-scheduled rule and R12 use it.
pub trait WaitEstimator: Send + Sync + 'static {
    /// EWT in seconds for a callback whose EWT source is `source`; `None` when the statistic
    /// cannot be obtained (the rule then uses 0, spec 40 §5.5).
    fn ewt_secs(&self, source: &EwtSource) -> Option<i64>;
    /// The largest EWT of any queue, in seconds: how early the scheduler must look at
    /// scheduled callbacks.
    fn max_ewt_secs(&self) -> i64;
}

/// The estimator of a node whose queues have no served callbacks yet: every estimate is 0
/// seconds, which is what an empty history gives.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHistory;

impl WaitEstimator for NoHistory {
    fn ewt_secs(&self, _source: &EwtSource) -> Option<i64> {
        Some(0)
    }

    fn max_ewt_secs(&self) -> i64 {
        0
    }
}

/// One cached answer of the urs-stat endpoint.
#[derive(Debug, Clone)]
struct Cached {
    at: Millis,
    body: Value,
}

/// The shared routing state: the core behind a lock, the clock, the phone registry, and the
/// urs-stat cache.
pub struct Routing {
    core: Mutex<router::Router>,
    clock: Arc<dyn Clock>,
    phones: Arc<dyn PhoneRegistry>,
    cache: Mutex<HashMap<(String, ewt::Method), Cached>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<RoutingEvent>>>,
}

impl Routing {
    pub fn new(cfg: RoutingConfig, clock: Arc<dyn Clock>, phones: Arc<dyn PhoneRegistry>) -> Arc<Routing> {
        Arc::new(Routing {
            core: Mutex::new(router::Router::new(cfg)),
            clock,
            phones,
            cache: Mutex::new(HashMap::new()),
            subscribers: Mutex::new(Vec::new()),
        })
    }

    /// No agents, system clock, every phone registered: the default of a server whose
    /// configuration has no routing sections.
    pub fn unconfigured() -> Arc<Routing> {
        Routing::new(
            RoutingConfig::default(),
            Arc::new(SystemClock),
            Arc::new(AlwaysRegistered),
        )
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    pub fn phones(&self) -> &dyn PhoneRegistry {
        self.phones.as_ref()
    }

    /// Locks the core. Keep the guard short: no awaiting while holding it.
    pub fn core(&self) -> MutexGuard<'_, router::Router> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The urs-stat answer for `queue` (spec 20 §8.3): `{}` when the queue has had no
    /// activity, else `wcalls`, `wpos`, `time`, `hit`, `calls`, `wt`, `ewt`, `pos`, `aqt`;
    /// cached for `caching_secs` per (queue, method).
    pub fn stat_service(&self, queue: &str, method: Option<ewt::Method>, caching_secs: i64) -> Value {
        let now = self.now();
        let core = self.core();
        let method = method.unwrap_or_else(|| core.method_of(queue));
        let key = (queue.to_string(), method);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get_mut(&key)
                && now - c.at < caching_secs.max(0) * 1000
            {
                if let Some(Value::Number(h)) = c.body.get("hit").cloned()
                    && let (Some(h), Value::Object(m)) = (h.as_u64(), &mut c.body)
                {
                    m.insert("hit".into(), (h + 1).into());
                }
                return c.body.clone();
            }
        }
        let waiting = core.waiting(queue);
        let stats = core.queue_stats(now);
        let qs = stats.iter().find(|s| s.queue == queue);
        let body = match (core.ewt_with(queue, method, waiting), qs) {
            (Some(ewt), Some(qs)) => {
                let mut m = Map::new();
                m.insert("wcalls".into(), waiting.into());
                m.insert("wpos".into(), (waiting + 1).into());
                m.insert("time".into(), (now / 1000).into());
                m.insert("hit".into(), 0.into());
                m.insert("calls".into(), waiting.into());
                m.insert("wt".into(), qs.oldest_age_secs.into());
                m.insert("ewt".into(), ewt.into());
                m.insert("pos".into(), (waiting + 1).into());
                m.insert("aqt".into(), method.as_str().into());
                Value::Object(m)
            }
            _ => Value::Object(Map::new()),
        };
        drop(core);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            key,
            Cached {
                at: now,
                body: body.clone(),
            },
        );
        body
    }

    /// Events (reservations, dial-customer, releases) are sent to every subscriber: the
    /// session logic that dials agents and customers.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<RoutingEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// Runs `f` on the core at the current time, then hands the events it produced to the
    /// subscribers (and returns them).
    pub fn with<T>(&self, f: impl FnOnce(&mut router::Router, Millis) -> T) -> (T, Vec<RoutingEvent>) {
        let now = self.now();
        let (out, events) = {
            let mut core = self.core();
            let out = f(&mut core, now);
            (out, core.take_events())
        };
        if !events.is_empty() {
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            subs.retain(|tx| events.iter().all(|e| tx.send(e.clone()).is_ok()));
        }
        (out, events)
    }

    /// Runs the timers (wrap-up, reservation timeouts, target steps, priority steps) and
    /// returns the events to act on.
    pub fn tick(&self) -> Vec<RoutingEvent> {
        self.with(|core, now| core.tick(now)).1
    }

    /// Calls [`Routing::tick`] every `period` until the task is dropped or aborted.
    pub async fn run_timers(self: Arc<Self>, period: std::time::Duration) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.tick();
        }
    }

    pub fn enqueue(&self, e: router::Enqueue) {
        self.with(|core, now| core.enqueue(e, now));
    }

    pub fn remove(&self, session_id: &str) -> bool {
        self.with(|core, now| core.remove(session_id, now)).0
    }

    /// The call layer's report of an agent call's outcome (see [`router::Router::on_agent_call`]);
    /// the events it produced go to the subscribers too.
    pub fn on_agent_call(
        &self,
        call: &AgentCall,
        event: AgentCallEvent,
    ) -> Result<AgentCallOutcome, router::RoutingError> {
        self.with(|core, now| core.on_agent_call(call, event, now)).0
    }

    /// Customer-first mode: the customer of `session_id` is on the line; reserve an agent.
    pub fn customer_ready(&self, session_id: &str) -> Result<(), router::RoutingError> {
        self.with(|core, now| core.customer_ready(session_id, now)).0
    }

    /// The phone of agent `agent_id` went away (unregistered): a ready agent becomes not
    /// ready.
    pub fn phone_unregistered(&self, agent_id: &str) -> Result<(), router::RoutingError> {
        self.with(|core, now| core.phone_unregistered(agent_id, now)).0
    }

    /// Position, priority (aged to now) and EWT of a waiting session.
    pub fn place(&self, session_id: &str) -> Option<router::Place> {
        self.with(|core, now| {
            core.tick(now);
            core.place(session_id)
        })
        .0
    }
}

impl WaitEstimator for Routing {
    fn ewt_secs(&self, source: &EwtSource) -> Option<i64> {
        let core = self.core();
        match source {
            EwtSource::VirtualQueue(q) => core.ewt(q),
            EwtSource::Service(name) => match core.config().ewt_services.get(name) {
                Some(s) => {
                    let q = s.queue.clone().unwrap_or_else(|| name.clone());
                    core.ewt_with(&q, s.method, core.waiting(&q))
                }
                None => core.ewt(name),
            },
            // `_request_queue_time_stat` is accepted and ignored (spec 20 §8.2).
            EwtSource::Statistic { .. } => None,
        }
    }

    fn max_ewt_secs(&self) -> i64 {
        self.core().max_ewt()
    }
}
