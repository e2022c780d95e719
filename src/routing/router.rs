//! The sans-IO routing core: agents and their states, virtual queues, target lists,
//! reservations and statistics. Every method takes the current time; nothing here sleeps,
//! spawns or locks. What the outside must act on comes out as [`RoutingEvent`]s.
//!
//! Invariant (exactly-once): an agent is `Reserved` for session S with reservation R if and
//! only if S is waiting in a queue holding reservation R on that agent; a `Busy` agent is on
//! exactly one call. Every transition keeps both sides in step.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::Arc;

use serde::Serialize;

use super::config::{AgentConfig, RoutingConfig};
use super::ewt::{self, Method, Window};
use super::target::{Stat, Target, TargetList};
use crate::clock::Millis;

/// Whether an agent's phone can take calls (registered, or a static URI that is reachable).
/// The SIP side implements it; tests use an in-memory set.
pub trait PhoneRegistry: Send + Sync + 'static {
    fn is_registered(&self, agent: &AgentConfig) -> bool;
}

/// Every phone counts as registered (agents on static URIs, or no SIP side).
#[derive(Debug, Default, Clone, Copy)]
pub struct AlwaysRegistered;

impl PhoneRegistry for AlwaysRegistered {
    fn is_registered(&self, _agent: &AgentConfig) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentState {
    LoggedOut,
    Ready,
    NotReady,
    Reserved,
    Busy,
    AfterCallWork,
}

impl AgentState {
    pub fn as_str(&self) -> &'static str {
        match self {
            AgentState::LoggedOut => "LOGGED_OUT",
            AgentState::Ready => "READY",
            AgentState::NotReady => "NOT_READY",
            AgentState::Reserved => "RESERVED",
            AgentState::Busy => "BUSY",
            AgentState::AfterCallWork => "AFTER_CALL_WORK",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("unknown agent '{0}'")]
    UnknownAgent(String),
    #[error("agent '{agent}' cannot {action} while {state}")]
    IllegalTransition {
        agent: String,
        action: &'static str,
        state: &'static str,
    },
    #[error("agent '{0}' cannot be ready: its phone is not registered")]
    PhoneNotRegistered(String),
    #[error("session '{0}' is not waiting in a queue")]
    UnknownSession(String),
    #[error("session '{session}' holds no reservation {reservation}")]
    NoSuchReservation { session: String, reservation: u64 },
    #[error("{0}")]
    BadTarget(String),
}

/// Why a reservation ended without the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The agent declined (486/603/480/3xx...).
    Rejected,
    /// The agent did not answer within the reservation timeout.
    NoAnswer,
    /// The customer went away (cancel, hang-up): the agent is not at fault.
    CustomerGone,
}

/// What the outside must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingEvent {
    /// An agent was reserved for a waiting session: dial the agent (agent first) or bridge.
    Reserved {
        session_id: String,
        agent_id: String,
        reservation: u64,
    },
    /// Customer-first mode: a matching agent is ready, dial the customer now.
    DialCustomer { session_id: String },
    /// A reservation ended without a call; the session stays queued for the next agent.
    Released {
        session_id: String,
        agent_id: String,
        reservation: u64,
    },
    /// `_max_transfer_to_agent_attempts` reached: the session left the queue.
    AttemptsExhausted { session_id: String },
}

/// How a session meets its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Reserve the agent first, then dial.
    #[default]
    ReserveFirst,
    /// Tell the session to dial the customer; reserve once the customer is on the line.
    CustomerFirst,
}

/// A session entering a queue.
#[derive(Debug, Clone)]
pub struct Enqueue {
    pub session_id: String,
    pub callback_id: String,
    pub queue: String,
    /// `_urs_vq_priority`.
    pub priority: i64,
    /// `(_urs_vq_priority_increment, _urs_vq_priority_increment_interval seconds)`; the
    /// queue's configured increment when `None`.
    pub priority_increment: Option<(i64, i64)>,
    /// Origin of the interaction age (`_urs_call_interaction_age` or the start time).
    pub age_origin: Millis,
    /// `_target`; the queue's configured target when `None`.
    pub target: Option<Arc<TargetList>>,
    pub mode: Mode,
    /// `_max_transfer_to_agent_attempts`; the configured default when `None`.
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Clone)]
struct AgentRt {
    cfg: AgentConfig,
    state: AgentState,
    since: Millis,
    reason: Option<String>,
    /// Session (and reservation) when reserved or busy.
    session: Option<(String, u64)>,
    queue: Option<String>,
    acw_until: Millis,
    handled: u64,
    handle_ms: i64,
    /// Queues this agent took calls from (urs2's `k`).
    served: BTreeSet<String>,
    claim_pass: u64,
}

#[derive(Debug, Clone)]
struct Reservation {
    agent: usize,
    id: u64,
    until: Millis,
}

#[derive(Debug, Clone)]
struct Entry {
    session_id: String,
    callback_id: String,
    queue: String,
    base_priority: i64,
    increment: Option<(i64, i64)>,
    age_origin: Millis,
    enqueued_at: Millis,
    priority: i64,
    targets: Option<Arc<TargetList>>,
    active: Vec<usize>,
    step: usize,
    step_started: Millis,
    mode: Mode,
    notified: bool,
    customer_ready: bool,
    reservation: Option<Reservation>,
    attempts: u32,
    max_attempts: u32,
}

impl Entry {
    fn key(&self) -> Key {
        (
            Reverse(self.priority),
            self.age_origin,
            self.callback_id.clone(),
            self.session_id.clone(),
        )
    }

    fn priority_at(&self, now: Millis) -> i64 {
        match self.increment {
            Some((inc, interval)) if interval > 0 => {
                let steps = (now - self.age_origin).max(0) / (interval * 1000);
                self.base_priority.saturating_add(inc.saturating_mul(steps))
            }
            _ => self.base_priority,
        }
    }
}

type Key = (Reverse<i64>, Millis, String, String);

/// `(agents_version, targets_version, queue empty)`.
type Urs2Key = (u64, u64, bool);

#[derive(Debug, Clone)]
struct Queue {
    order: BTreeSet<Key>,
    distributed: Window,
    distributed_count: u64,
    answer_ms_total: i64,
    /// Distinct target lists of waiting entries (by text), with counts: urs2's agent set.
    targets: HashMap<String, (Arc<TargetList>, usize)>,
    /// Bumped when a distinct target list appears or goes.
    targets_version: u64,
}

/// Per-queue statistics (admin view and EWT).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStats {
    pub queue: String,
    pub waiting: u32,
    pub oldest_age_secs: i64,
    pub distributed: u64,
    pub average_answer_secs: Option<f64>,
}

/// Per-agent view (REST list and statistics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub time_in_state_secs: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub skills: BTreeMap<String, i64>,
    pub groups: Vec<String>,
    pub handled: u64,
    pub average_handle_secs: Option<f64>,
}

/// A waiting session's place (R12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub position: u32,
    pub total_waiting: u32,
    pub priority: i64,
    pub queue: String,
    pub age_origin: Millis,
    pub ewt_secs: Option<i64>,
    pub agents_logged_in: u32,
}

pub struct Router {
    cfg: RoutingConfig,
    agents: Vec<AgentRt>,
    by_id: HashMap<String, usize>,
    /// Ready agents, longest ready first.
    ready: BTreeSet<(Millis, usize)>,
    queues: BTreeMap<String, Queue>,
    entries: HashMap<String, Entry>,
    events: Vec<RoutingEvent>,
    next_reservation: u64,
    pass: u64,
    /// Bumped when an agent's handle time or served queues change.
    agents_version: u64,
    /// urs2's time per call per queue, valid for `(agents_version, targets_version, empty)`.
    urs2_cache: RefCell<HashMap<String, (Urs2Key, Option<f64>)>>,
}

impl Router {
    pub fn new(cfg: RoutingConfig) -> Router {
        let agents: Vec<AgentRt> = cfg
            .agents
            .iter()
            .map(|a| AgentRt {
                cfg: a.clone(),
                state: AgentState::LoggedOut,
                since: 0,
                reason: None,
                session: None,
                queue: None,
                acw_until: 0,
                handled: 0,
                handle_ms: 0,
                served: BTreeSet::new(),
                claim_pass: 0,
            })
            .collect();
        let by_id = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.cfg.id.clone(), i))
            .collect();
        Router {
            cfg,
            agents,
            by_id,
            ready: BTreeSet::new(),
            queues: BTreeMap::new(),
            entries: HashMap::new(),
            events: Vec::new(),
            next_reservation: 1,
            pass: 0,
            agents_version: 0,
            urs2_cache: RefCell::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &RoutingConfig {
        &self.cfg
    }

    /// Takes the events produced since the last call.
    pub fn take_events(&mut self) -> Vec<RoutingEvent> {
        std::mem::take(&mut self.events)
    }

    fn agent_index(&self, id: &str) -> Result<usize, RoutingError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| RoutingError::UnknownAgent(id.to_string()))
    }

    fn set_state(&mut self, i: usize, state: AgentState, reason: Option<String>, now: Millis) {
        let Some(a) = self.agents.get_mut(i) else { return };
        if a.state == AgentState::Ready {
            self.ready.remove(&(a.since, i));
        }
        a.state = state;
        a.since = now;
        a.reason = reason;
        if a.state == AgentState::Ready {
            self.ready.insert((now, i));
        }
    }

    fn illegal(&self, i: usize, action: &'static str) -> RoutingError {
        let (agent, state) = match self.agents.get(i) {
            Some(a) => (a.cfg.id.clone(), a.state.as_str()),
            None => (String::new(), "unknown"),
        };
        RoutingError::IllegalTransition { agent, action, state }
    }

    fn state_of(&self, i: usize) -> AgentState {
        self.agents
            .get(i)
            .map_or(AgentState::LoggedOut, |a| a.state.clone())
    }

    // ------------------------------------------------------------------ agent state (REST)

    /// Logged out → not ready (`login`); logging in again is a no-op.
    pub fn login(&mut self, id: &str, now: Millis) -> Result<(), RoutingError> {
        let i = self.agent_index(id)?;
        if self.state_of(i) == AgentState::LoggedOut {
            self.set_state(i, AgentState::NotReady, Some("login".into()), now);
        }
        Ok(())
    }

    pub fn ready(&mut self, id: &str, phones: &dyn PhoneRegistry, now: Millis) -> Result<(), RoutingError> {
        let i = self.agent_index(id)?;
        match self.state_of(i) {
            AgentState::Ready => Ok(()),
            AgentState::NotReady | AgentState::AfterCallWork => {
                let registered = self.agents.get(i).is_some_and(|a| phones.is_registered(&a.cfg));
                if !registered {
                    return Err(RoutingError::PhoneNotRegistered(id.to_string()));
                }
                self.set_state(i, AgentState::Ready, None, now);
                self.dispatch(now);
                Ok(())
            }
            _ => Err(self.illegal(i, "become ready")),
        }
    }

    pub fn not_ready(&mut self, id: &str, reason: Option<&str>, now: Millis) -> Result<(), RoutingError> {
        let i = self.agent_index(id)?;
        match self.state_of(i) {
            AgentState::Ready | AgentState::NotReady | AgentState::AfterCallWork => {
                self.set_state(i, AgentState::NotReady, reason.map(str::to_string), now);
                Ok(())
            }
            _ => Err(self.illegal(i, "become not ready")),
        }
    }

    pub fn logout(&mut self, id: &str, now: Millis) -> Result<(), RoutingError> {
        let i = self.agent_index(id)?;
        match self.state_of(i) {
            AgentState::LoggedOut => Ok(()),
            AgentState::Ready | AgentState::NotReady | AgentState::AfterCallWork => {
                self.set_state(i, AgentState::LoggedOut, None, now);
                Ok(())
            }
            _ => Err(self.illegal(i, "log out")),
        }
    }

    /// The agent's phone went away: a ready agent becomes not ready.
    pub fn phone_unregistered(&mut self, id: &str, now: Millis) -> Result<(), RoutingError> {
        let i = self.agent_index(id)?;
        if self.state_of(i) == AgentState::Ready {
            self.set_state(i, AgentState::NotReady, Some("phone unregistered".into()), now);
        }
        Ok(())
    }

    pub fn agent(&self, id: &str, now: Millis) -> Result<AgentView, RoutingError> {
        let i = self.agent_index(id)?;
        self.agents
            .get(i)
            .map(|a| view(a, now))
            .ok_or_else(|| RoutingError::UnknownAgent(id.to_string()))
    }

    pub fn agents(&self, now: Millis) -> Vec<AgentView> {
        self.agents.iter().map(|a| view(a, now)).collect()
    }

    pub fn agent_state(&self, id: &str) -> Option<AgentState> {
        self.by_id.get(id).map(|&i| self.state_of(i))
    }

    // ------------------------------------------------------------------ queues

    /// Puts a session in its queue (a session already queued is re-queued with the new data,
    /// releasing a reservation it held).
    pub fn enqueue(&mut self, e: Enqueue, now: Millis) {
        if self.entries.contains_key(&e.session_id) {
            self.remove(&e.session_id, now);
        }
        let qcfg = self.cfg.queues.get(&e.queue);
        let increment = e.priority_increment.or(qcfg.and_then(|q| q.priority_increment));
        let targets = e
            .target
            .or_else(|| qcfg.and_then(|q| q.target.clone()).map(Arc::new));
        let mut entry = Entry {
            session_id: e.session_id,
            callback_id: e.callback_id,
            queue: e.queue,
            base_priority: e.priority,
            increment,
            age_origin: e.age_origin,
            enqueued_at: now,
            priority: e.priority,
            targets,
            active: Vec::new(),
            step: 0,
            step_started: now,
            mode: e.mode,
            notified: false,
            customer_ready: false,
            reservation: None,
            attempts: 0,
            max_attempts: e.max_attempts.unwrap_or(self.cfg.max_transfer_attempts).max(1),
        };
        entry.priority = entry.priority_at(now);
        if let Some(t) = entry.targets.clone() {
            let first = self.next_step(&t, 0);
            entry.step = first;
            entry.active = vec![first];
        }
        let window = self.cfg.ewt_window;
        let queue = self.queues.entry(entry.queue.clone()).or_insert_with(|| Queue {
            order: BTreeSet::new(),
            distributed: Window::new(window),
            distributed_count: 0,
            answer_ms_total: 0,
            targets: HashMap::new(),
            targets_version: 0,
        });
        queue.order.insert(entry.key());
        if let Some(t) = &entry.targets {
            let text = format!("{:?}", t.steps);
            let slot = queue.targets.entry(text).or_insert_with(|| (t.clone(), 0));
            slot.1 += 1;
            if slot.1 == 1 {
                queue.targets_version += 1;
            }
        }
        self.entries.insert(entry.session_id.clone(), entry);
        self.dispatch(now);
    }

    /// First step at or after `from` whose condition does not say "skip" (never the last).
    fn next_step(&self, t: &TargetList, from: usize) -> usize {
        let last = t.steps.len().saturating_sub(1);
        (from..last)
            .find(|&j| {
                t.steps
                    .get(j)
                    .is_some_and(|s| !s.condition.skip(self.stat(&s.target, s.condition.stat)))
            })
            .unwrap_or(last)
    }

    fn unlink(&mut self, entry: &Entry) {
        if let Some(q) = self.queues.get_mut(&entry.queue) {
            q.order.remove(&entry.key());
            if let Some(t) = &entry.targets {
                let text = format!("{:?}", t.steps);
                if let Some(c) = q.targets.get_mut(&text) {
                    c.1 = c.1.saturating_sub(1);
                    if c.1 == 0 {
                        q.targets.remove(&text);
                        q.targets_version += 1;
                    }
                }
            }
        }
    }

    /// The session left (cancelled, ended, customer gone): its reservation is released
    /// without blaming the agent. `false` if it was not queued.
    pub fn remove(&mut self, session_id: &str, now: Millis) -> bool {
        let Some(entry) = self.entries.remove(session_id) else {
            return false;
        };
        self.unlink(&entry);
        if let Some(r) = &entry.reservation {
            self.free_agent(r.agent, false, now);
        }
        self.dispatch(now);
        true
    }

    fn free_agent(&mut self, i: usize, blame: bool, now: Millis) {
        if let Some(a) = self.agents.get_mut(i) {
            a.session = None;
            a.queue = None;
        }
        if blame && self.cfg.not_ready_on_reject {
            self.set_state(i, AgentState::NotReady, Some("no answer or rejected".into()), now);
        } else {
            self.set_state(i, AgentState::Ready, None, now);
        }
    }

    /// Customer-first: the customer is on the line; the session may now reserve an agent.
    pub fn customer_ready(&mut self, session_id: &str, now: Millis) -> Result<(), RoutingError> {
        let e = self
            .entries
            .get_mut(session_id)
            .ok_or_else(|| RoutingError::UnknownSession(session_id.to_string()))?;
        e.customer_ready = true;
        self.dispatch(now);
        Ok(())
    }

    /// The reserved agent answered: the agent is busy and the session leaves the queue.
    pub fn confirm(
        &mut self,
        session_id: &str,
        reservation: u64,
        now: Millis,
    ) -> Result<String, RoutingError> {
        let held = self
            .entries
            .get(session_id)
            .and_then(|e| e.reservation.as_ref())
            .map(|r| (r.id, r.agent));
        let agent = match held {
            Some((id, agent)) if id == reservation => agent,
            _ => {
                return Err(RoutingError::NoSuchReservation {
                    session: session_id.to_string(),
                    reservation,
                });
            }
        };
        let Some(entry) = self.entries.remove(session_id) else {
            return Err(RoutingError::UnknownSession(session_id.to_string()));
        };
        self.unlink(&entry);
        let waited = (now - entry.enqueued_at).max(0);
        if let Some(q) = self.queues.get_mut(&entry.queue) {
            q.distributed.push(waited as f64 / 1000.0);
            q.distributed_count += 1;
            q.answer_ms_total = q.answer_ms_total.saturating_add(waited);
        }
        self.set_state(agent, AgentState::Busy, None, now);
        self.agents_version += 1;
        let id = match self.agents.get_mut(agent) {
            Some(a) => {
                a.session = Some((session_id.to_string(), reservation));
                a.queue = Some(entry.queue.clone());
                a.served.insert(entry.queue);
                a.cfg.id.clone()
            }
            None => String::new(),
        };
        Ok(id)
    }

    /// The reserved agent declined or did not answer: released, set not ready (if so
    /// configured), and the session tries the next agent, up to its attempt limit.
    pub fn release(
        &mut self,
        session_id: &str,
        reservation: u64,
        reason: ReleaseReason,
        now: Millis,
    ) -> Result<(), RoutingError> {
        let Some(entry) = self.entries.get_mut(session_id) else {
            return Err(RoutingError::UnknownSession(session_id.to_string()));
        };
        let r = match entry.reservation.take() {
            Some(r) if r.id == reservation => r,
            other => {
                entry.reservation = other;
                return Err(RoutingError::NoSuchReservation {
                    session: session_id.to_string(),
                    reservation,
                });
            }
        };
        let blame = reason != ReleaseReason::CustomerGone;
        if blame {
            entry.attempts += 1;
        }
        let exhausted = entry.attempts >= entry.max_attempts;
        let agent_id = self
            .agents
            .get(r.agent)
            .map(|a| a.cfg.id.clone())
            .unwrap_or_default();
        self.free_agent(r.agent, blame, now);
        self.events.push(RoutingEvent::Released {
            session_id: session_id.to_string(),
            agent_id,
            reservation,
        });
        if exhausted {
            if let Some(e) = self.entries.remove(session_id) {
                self.unlink(&e);
            }
            self.events.push(RoutingEvent::AttemptsExhausted {
                session_id: session_id.to_string(),
            });
        }
        self.dispatch(now);
        Ok(())
    }

    /// The agent's call ended: after-call work for the configured wrap-up time, then ready.
    pub fn hangup(&mut self, agent_id: &str, now: Millis) -> Result<(), RoutingError> {
        let i = self.agent_index(agent_id)?;
        if self.state_of(i) != AgentState::Busy {
            return Err(self.illegal(i, "hang up"));
        }
        let wrap = self.cfg.wrap_up_secs * 1000;
        if let Some(a) = self.agents.get_mut(i) {
            a.handled += 1;
            a.handle_ms = a.handle_ms.saturating_add((now - a.since).max(0));
            a.session = None;
            a.queue = None;
            a.acw_until = now + wrap;
        }
        self.agents_version += 1;
        if wrap > 0 {
            self.set_state(i, AgentState::AfterCallWork, None, now);
        } else {
            self.set_state(i, AgentState::Ready, None, now);
            self.dispatch(now);
        }
        Ok(())
    }

    /// Timers: wrap-up ends, reservation timeouts, per-target timeouts, priority steps.
    pub fn tick(&mut self, now: Millis) {
        let acw_done: Vec<usize> = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.state == AgentState::AfterCallWork && a.acw_until <= now)
            .map(|(i, _)| i)
            .collect();
        for i in acw_done {
            self.set_state(i, AgentState::Ready, None, now);
        }
        let expired: Vec<(String, u64)> = self
            .entries
            .values()
            .filter_map(|e| {
                e.reservation
                    .as_ref()
                    .filter(|r| r.until <= now)
                    .map(|r| (e.session_id.clone(), r.id))
            })
            .collect();
        for (s, r) in expired {
            let _ = self.release(&s, r, ReleaseReason::NoAnswer, now);
        }
        let sessions: Vec<String> = self.entries.keys().cloned().collect();
        for s in sessions {
            self.advance(&s, now);
        }
        self.dispatch(now);
    }

    fn advance(&mut self, session_id: &str, now: Millis) {
        let Some(mut entry) = self.entries.remove(session_id) else {
            return;
        };
        let new_priority = entry.priority_at(now);
        if new_priority != entry.priority {
            if let Some(q) = self.queues.get_mut(&entry.queue) {
                q.order.remove(&entry.key());
                entry.priority = new_priority;
                q.order.insert(entry.key());
            }
        }
        if let Some(t) = entry.targets.clone() {
            // Bounded by the number of steps: each round moves at least one step on.
            for _ in 0..t.steps.len() {
                let Some(step) = t.steps.get(entry.step) else {
                    break;
                };
                let Some(timeout) = step.timeout_secs else { break };
                let due = entry.step_started + i64::from(timeout) * 1000;
                if due > now || entry.step + 1 >= t.steps.len() {
                    break;
                }
                let next = self.next_step(&t, entry.step + 1);
                if step.clear {
                    entry.active.clear();
                }
                entry.active.push(next);
                entry.step = next;
                entry.step_started = due;
            }
        }
        self.entries.insert(session_id.to_string(), entry);
    }

    fn matches(&self, a: &AgentRt, target: &Target) -> bool {
        match target {
            Target::Group(g) => a.cfg.groups.contains(g),
            Target::Agent(id) => &a.cfg.id == id,
            Target::Name(n) => {
                if self.cfg.groups.contains_key(n) || self.agents.iter().any(|x| x.cfg.groups.contains(n)) {
                    a.cfg.groups.contains(n)
                } else {
                    &a.cfg.id == n
                }
            }
            Target::Skills(e) => e.matches(&a.cfg.skills),
        }
    }

    fn entry_accepts(&self, e: &Entry, a: &AgentRt) -> bool {
        match &e.targets {
            None => true,
            Some(t) => e
                .active
                .iter()
                .filter_map(|&j| t.steps.get(j))
                .any(|s| self.matches(a, &s.target)),
        }
    }

    /// A statistic of a target from the registry.
    pub fn stat(&self, target: &Target, stat: Stat) -> u32 {
        let count = |f: &dyn Fn(&AgentState) -> bool| {
            self.agents
                .iter()
                .filter(|a| f(&a.state) && self.matches(a, target))
                .count() as u32
        };
        match stat {
            Stat::AgentsAvailable | Stat::RAgentsReady => count(&|s| *s == AgentState::Ready),
            Stat::AgentsTotal | Stat::RAgentsTotal => count(&|s| *s != AgentState::LoggedOut),
            Stat::AgentsBusy => count(&|s| matches!(s, AgentState::Busy | AgentState::Reserved)),
        }
    }

    /// Matches waiting sessions, in queue order, with ready agents (longest ready first).
    pub fn dispatch(&mut self, now: Millis) {
        if self.ready.is_empty() {
            return;
        }
        self.pass += 1;
        let pass = self.pass;
        let mut claimed = 0usize;
        let queue_names: Vec<String> = self.queues.keys().cloned().collect();
        for qn in queue_names {
            if !self.queue_may_match(&qn, pass) {
                continue;
            }
            let mut cursor: Option<Key> = None;
            loop {
                if self.ready.len() <= claimed {
                    return;
                }
                let next = match self.queues.get(&qn) {
                    Some(q) => match &cursor {
                        None => q.order.iter().next().cloned(),
                        Some(k) => q.order.range((Excluded(k), Unbounded)).next().cloned(),
                    },
                    None => None,
                };
                let Some(key) = next else { break };
                let sid = key.3.clone();
                cursor = Some(key);
                let Some(entry) = self.entries.get(&sid) else {
                    continue;
                };
                if entry.reservation.is_some() {
                    continue;
                }
                let found = self.ready.iter().map(|&(_, i)| i).find(|&i| {
                    self.agents
                        .get(i)
                        .is_some_and(|a| a.claim_pass != pass && self.entry_accepts(entry, a))
                });
                let Some(agent) = found else { continue };
                if entry.mode == Mode::CustomerFirst && !entry.customer_ready {
                    // The agent is kept for this session during this pass only; the customer
                    // is dialled once.
                    let notify = !entry.notified;
                    if let Some(a) = self.agents.get_mut(agent) {
                        a.claim_pass = pass;
                    }
                    claimed += 1;
                    if notify {
                        if let Some(e) = self.entries.get_mut(&sid) {
                            e.notified = true;
                        }
                        self.events.push(RoutingEvent::DialCustomer { session_id: sid });
                    }
                    continue;
                }
                self.reserve(&sid, agent, now);
            }
        }
    }

    /// Whether some unclaimed ready agent matches some step of some target list waiting in
    /// `queue` (or the queue has sessions without a target): saves scanning a queue nobody
    /// ready can serve.
    fn queue_may_match(&self, queue: &str, pass: u64) -> bool {
        let Some(q) = self.queues.get(queue) else {
            return false;
        };
        let with_target: usize = q.targets.values().map(|(_, n)| n).sum();
        if with_target < q.order.len() {
            return true;
        }
        self.ready.iter().any(|&(_, i)| {
            self.agents.get(i).is_some_and(|a| {
                a.claim_pass != pass
                    && q.targets
                        .values()
                        .any(|(t, _)| t.steps.iter().any(|s| self.matches(a, &s.target)))
            })
        })
    }

    fn reserve(&mut self, sid: &str, agent: usize, now: Millis) {
        let id = self.next_reservation;
        self.next_reservation += 1;
        let until = now + self.cfg.reservation_timeout_secs.max(1) * 1000;
        let Some(e) = self.entries.get_mut(sid) else {
            return;
        };
        e.reservation = Some(Reservation { agent, id, until });
        let queue = e.queue.clone();
        self.set_state(agent, AgentState::Reserved, None, now);
        let agent_id = match self.agents.get_mut(agent) {
            Some(a) => {
                a.session = Some((sid.to_string(), id));
                a.queue = Some(queue);
                a.cfg.id.clone()
            }
            None => String::new(),
        };
        self.events.push(RoutingEvent::Reserved {
            session_id: sid.to_string(),
            agent_id,
            reservation: id,
        });
    }

    // ------------------------------------------------------------------ positions, EWT, stats

    pub fn place(&self, session_id: &str) -> Option<Place> {
        let e = self.entries.get(session_id)?;
        let q = self.queues.get(&e.queue)?;
        let key = e.key();
        let position = q.order.range(..&key).count() as u32 + 1;
        let method = self.method_of(&e.queue);
        Some(Place {
            position,
            total_waiting: q.order.len() as u32,
            priority: e.priority,
            queue: e.queue.clone(),
            age_origin: e.age_origin,
            ewt_secs: self.ewt_with(&e.queue, method, position.saturating_sub(1)),
            agents_logged_in: self.logged_in_for(e),
        })
    }

    fn logged_in_for(&self, e: &Entry) -> u32 {
        self.agents
            .iter()
            .filter(|a| a.state != AgentState::LoggedOut && self.entry_accepts(e, a))
            .count() as u32
    }

    pub fn method_of(&self, queue: &str) -> Method {
        self.cfg
            .queues
            .get(queue)
            .and_then(|q| q.ewt_method)
            .unwrap_or(self.cfg.ewt_method)
    }

    pub fn waiting(&self, queue: &str) -> u32 {
        self.queues.get(queue).map_or(0, |q| q.order.len() as u32)
    }

    /// EWT of a new call in `queue` with the queue's method.
    pub fn ewt(&self, queue: &str) -> Option<i64> {
        self.ewt_with(queue, self.method_of(queue), self.waiting(queue))
    }

    /// EWT with `waiting` calls ahead.
    pub fn ewt_with(&self, queue: &str, method: Method, waiting: u32) -> Option<i64> {
        match method {
            Method::Urs => ewt::urs(self.queues.get(queue)?.distributed.average(), waiting),
            Method::Urs2 => ewt::urs2_from(self.per_call_secs(queue), waiting),
        }
    }

    /// urs2's time per call of `queue`, cached until agents or the queue's targets change.
    fn per_call_secs(&self, queue: &str) -> Option<f64> {
        let q = self.queues.get(queue);
        let key = (
            self.agents_version,
            q.map_or(0, |q| q.targets_version),
            q.is_none_or(|q| q.order.is_empty()),
        );
        if let Some((k, t)) = self.urs2_cache.borrow().get(queue)
            && *k == key
        {
            return *t;
        }
        let t = ewt::per_call_secs(self.serving_agents(queue));
        self.urs2_cache.borrow_mut().insert(queue.to_string(), (key, t));
        t
    }

    /// `(AHT seconds, queues served)` of the agents serving `queue`: the agents the waiting
    /// calls wait for, or (queue empty) the agents of its configured target and those that
    /// served it before.
    fn serving_agents(&self, queue: &str) -> Vec<(f64, u32)> {
        let q = self.queues.get(queue);
        let waiting_targets: Vec<&Arc<TargetList>> = q
            .filter(|q| !q.order.is_empty())
            .map(|q| q.targets.values().map(|(t, _)| t).collect())
            .unwrap_or_default();
        let configured = self.cfg.queues.get(queue).and_then(|c| c.target.as_ref());
        self.agents
            .iter()
            .filter(|a| a.handled > 0)
            .filter(|a| {
                if !waiting_targets.is_empty() {
                    waiting_targets
                        .iter()
                        .any(|t| t.steps.iter().any(|s| self.matches(a, &s.target)))
                } else {
                    a.served.contains(queue)
                        || configured.is_some_and(|t| t.steps.iter().any(|s| self.matches(a, &s.target)))
                }
            })
            .map(|a| {
                let aht = a.handle_ms as f64 / 1000.0 / a.handled as f64;
                (aht, a.served.len().max(1) as u32)
            })
            .collect()
    }

    /// The largest EWT of any known queue.
    pub fn max_ewt(&self) -> i64 {
        self.queues
            .keys()
            .filter_map(|q| self.ewt(q))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    pub fn queue_stats(&self, now: Millis) -> Vec<QueueStats> {
        self.queues
            .iter()
            .map(|(name, q)| QueueStats {
                queue: name.clone(),
                waiting: q.order.len() as u32,
                oldest_age_secs: q
                    .order
                    .iter()
                    .map(|k| k.1)
                    .min()
                    .map_or(0, |t| (now - t).max(0) / 1000),
                distributed: q.distributed_count,
                average_answer_secs: (q.distributed_count > 0)
                    .then(|| q.answer_ms_total as f64 / 1000.0 / q.distributed_count as f64),
            })
            .collect()
    }

    /// Number of queued sessions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the exactly-once invariant; `Err` describes the first violation. For tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut reserved_by: HashMap<usize, &str> = HashMap::new();
        for e in self.entries.values() {
            if let Some(r) = &e.reservation {
                if let Some(other) = reserved_by.insert(r.agent, &e.session_id) {
                    return Err(format!(
                        "agent {} reserved by {other} and {}",
                        r.agent, e.session_id
                    ));
                }
                let a = self.agents.get(r.agent).ok_or("reservation on a missing agent")?;
                if a.state != AgentState::Reserved
                    || a.session.as_ref() != Some(&(e.session_id.clone(), r.id))
                {
                    return Err(format!(
                        "entry {} holds agent {} in state {:?}",
                        e.session_id, a.cfg.id, a.state
                    ));
                }
            }
            let in_queue = self
                .queues
                .get(&e.queue)
                .is_some_and(|q| q.order.contains(&e.key()));
            if !in_queue {
                return Err(format!("entry {} missing from its queue order", e.session_id));
            }
        }
        let ordered: usize = self.queues.values().map(|q| q.order.len()).sum();
        if ordered != self.entries.len() {
            return Err(format!(
                "{ordered} ordered keys for {} entries",
                self.entries.len()
            ));
        }
        for (i, a) in self.agents.iter().enumerate() {
            let in_ready = self.ready.contains(&(a.since, i));
            if in_ready != (a.state == AgentState::Ready) {
                return Err(format!(
                    "agent {} ready set out of step ({:?})",
                    a.cfg.id, a.state
                ));
            }
            match a.state {
                AgentState::Reserved if !reserved_by.contains_key(&i) => {
                    return Err(format!("agent {} reserved for nobody", a.cfg.id));
                }
                AgentState::Busy if a.session.is_none() => {
                    return Err(format!("agent {} busy without a call", a.cfg.id));
                }
                AgentState::Ready
                | AgentState::NotReady
                | AgentState::LoggedOut
                | AgentState::AfterCallWork
                    if a.session.is_some() =>
                {
                    return Err(format!("agent {} idle but holds a session", a.cfg.id));
                }
                _ => {}
            }
        }
        if self.ready.len()
            != self
                .agents
                .iter()
                .filter(|a| a.state == AgentState::Ready)
                .count()
        {
            return Err("ready set has stale members".into());
        }
        Ok(())
    }
}

fn view(a: &AgentRt, now: Millis) -> AgentView {
    AgentView {
        id: a.cfg.id.clone(),
        name: a.cfg.name.clone(),
        state: a.state.as_str(),
        reason: a.reason.clone(),
        time_in_state_secs: (now - a.since).max(0) / 1000,
        session_id: a.session.as_ref().map(|s| s.0.clone()),
        skills: a.cfg.skills.clone(),
        groups: a.cfg.groups.iter().cloned().collect(),
        handled: a.handled,
        average_handle_secs: (a.handled > 0).then(|| a.handle_ms as f64 / 1000.0 / a.handled as f64),
    }
}
