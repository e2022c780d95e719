//! The sans-IO routing core: agents and their states, virtual queues, target lists,
//! reservations and statistics. Every method takes the current time; nothing here sleeps,
//! spawns or locks. What the outside must act on comes out as [`RoutingEvent`]s.
//!
//! Invariant (exactly-once): an agent is `Reserved` for session S with reservation R if and
//! only if S is waiting in a queue holding reservation R on that agent; a `Busy` agent is on
//! exactly one call. Every transition keeps both sides in step.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

impl RoutingEvent {
    /// The handle of the agent call a `Reserved` event asks for: what the call layer passes
    /// back to [`Router::on_agent_call`] with each outcome of that call.
    pub fn agent_call(&self) -> Option<AgentCall> {
        match self {
            RoutingEvent::Reserved {
                session_id,
                agent_id,
                reservation,
            } => Some(AgentCall {
                session_id: session_id.clone(),
                agent_id: agent_id.clone(),
                reservation: *reservation,
            }),
            _ => None,
        }
    }
}

/// One reservation's call to an agent, as announced by [`RoutingEvent::Reserved`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentCall {
    pub session_id: String,
    pub agent_id: String,
    pub reservation: u64,
}

/// What the call layer saw on a reservation's call (spec 30 §3.2 I7-I15, spec 20 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCallEvent {
    /// The agent leg was answered (200 OK): the reservation is confirmed, the agent is busy
    /// and the callback leaves its queue (one distributed call for the statistics).
    Answered,
    /// Agent and customer legs are bridged. Confirms the reservation if `Answered` was not
    /// reported; otherwise nothing changes (the agent is already busy).
    Bridged,
    /// The agent leg failed with a final response: 486 Busy Here, 603 Decline, 480, 408, a
    /// 3xx (redirects are not followed) ... An attempt for the callback; the agent is set not
    /// ready if `not_ready_on_reject` (else ready again, but not offered this callback again)
    /// and the callback waits for the next agent, or gives up after its attempt limit.
    Rejected { code: u16 },
    /// The agent did not answer in time (the call layer's ring timer). Counts as a reject.
    /// The router's own reservation timer (`_agent_transfer_confirm_timeout` or
    /// `reservation_timeout_secs`) produces the same release by itself.
    NoAnswer,
    /// The customer went away before the bridge (hung up while holding, or the customer leg
    /// failed): the agent is freed without blame and the callback leaves its queue. After
    /// the bridge it is the end of the call, as `HungUp`.
    CustomerGone,
    /// The bridged call ended (either side hung up): the agent goes to after-call work for
    /// `wrap_up_secs` (ready at once when 0), and its handled count and handle time grow.
    HungUp,
}

/// What [`Router::on_agent_call`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCallOutcome {
    /// The reservation was confirmed: the agent is busy with the callback.
    Connected,
    /// Nothing to do (for example `Bridged` after `Answered`).
    Unchanged,
    /// The reservation was released; `retrying` is false when the callback used its last
    /// attempt and left the queue ([`RoutingEvent::AttemptsExhausted`] was emitted too).
    Released { retrying: bool },
    /// The customer is gone: the callback left the queue, the agent is free.
    Abandoned,
    /// The call ended; the agent is in after-call work (or ready when wrap-up is 0).
    Ended,
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
    /// `_agent_transfer_confirm_timeout` in seconds: how long a reserved agent has to answer.
    /// `None`, 0 or less: the configured `reservation_timeout_secs` (spec 20 §7: 0 = no
    /// separate confirmation step, the ring timeout alone applies).
    pub confirm_timeout_secs: Option<i64>,
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
    /// urs2's handling rate of this agent, `1 / (AHT × k)`, in units of 1/[`RATE_SCALE`] per
    /// second (0 without a handled call). Integers, so the per-queue sums never drift.
    rate: i128,
    claim_pass: u64,
}

/// Fixed-point scale of the urs2 rates.
const RATE_SCALE: f64 = 1e12;

/// `1 / (AHT × k)` of an agent in 1/[`RATE_SCALE`] per second; 0 without a handled call.
fn rate_of(handled: u64, handle_ms: i64, served: usize) -> i128 {
    if handled == 0 || handle_ms <= 0 {
        return 0;
    }
    let aht = handle_ms as f64 / 1000.0 / handled as f64;
    let k = served.max(1) as f64;
    let r = (RATE_SCALE / (aht * k)).round();
    if r.is_finite() { r as i128 } else { 0 }
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
    /// `_agent_transfer_confirm_timeout` (ms), when the callback has its own.
    confirm_timeout_ms: Option<i64>,
    /// Agents that rejected or missed this callback: not offered it again (spec 30 §3.5).
    excluded: Vec<usize>,
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

#[derive(Debug, Clone)]
struct Queue {
    order: BTreeSet<Key>,
    distributed: Window,
    distributed_count: u64,
    answer_ms_total: i64,
    /// Distinct target lists of waiting entries (by text), with counts: urs2's agent set.
    targets: HashMap<String, (Arc<TargetList>, usize)>,
    /// urs2's agent sets, built at the first urs2 query of the queue and kept up to date
    /// from then on (a queue only ever asked with `urs` pays nothing for them).
    urs2: RefCell<Option<Urs2Sets>>,
}

/// The agents serving a queue for urs2, with the sums of their rates.
#[derive(Debug, Clone, Default)]
struct Urs2Sets {
    /// While calls with targets wait: agent → number of the distinct waiting target lists it
    /// matches.
    waiting: HashMap<usize, u32>,
    waiting_rate: i128,
    /// Otherwise: agents that served the queue or match its configured target.
    idle: HashSet<usize>,
    idle_rate: i128,
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
    /// Every group name some agent belongs to (a bare target name is a group if listed).
    group_names: HashSet<String>,
    /// The agents each target list (by text) matches: agents' skills and groups do not
    /// change, so a list that comes back costs no matching.
    matching: HashMap<String, Arc<[usize]>>,
}

/// Target lists whose matching agents are remembered (the memory is dropped when full).
const MAX_MATCHING_CACHED: usize = 4096;

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
                rate: 0,
                claim_pass: 0,
            })
            .collect();
        let by_id = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.cfg.id.clone(), i))
            .collect();
        let group_names = cfg
            .groups
            .keys()
            .cloned()
            .chain(agents.iter().flat_map(|a: &AgentRt| a.cfg.groups.iter().cloned()))
            .collect();
        let mut r = Router {
            cfg,
            agents,
            by_id,
            ready: BTreeSet::new(),
            queues: BTreeMap::new(),
            entries: HashMap::new(),
            events: Vec::new(),
            next_reservation: 1,
            pass: 0,
            group_names,
            matching: HashMap::new(),
        };
        // Configured queues exist from the start: statistics and EWT know them.
        let names: Vec<String> = r.cfg.queues.keys().cloned().collect();
        for name in names {
            let q = r.new_queue();
            r.queues.insert(name, q);
        }
        r
    }

    fn new_queue(&self) -> Queue {
        Queue {
            order: BTreeSet::new(),
            distributed: Window::new(self.cfg.ewt_window),
            distributed_count: 0,
            answer_ms_total: 0,
            targets: HashMap::new(),
            urs2: RefCell::new(None),
        }
    }

    /// urs2's agent sets of `queue` built from scratch: O(agents × distinct target lists).
    fn build_urs2(&self, name: &str, q: &Queue) -> Urs2Sets {
        let configured = self.cfg.queues.get(name).and_then(|c| c.target.as_ref());
        let mut sets = Urs2Sets::default();
        for (i, a) in self.agents.iter().enumerate() {
            let n = q
                .targets
                .values()
                .filter(|(t, _)| self.list_matches(a, t))
                .count() as u32;
            if n > 0 {
                sets.waiting.insert(i, n);
                sets.waiting_rate += a.rate;
            }
            if a.served.contains(name) || configured.is_some_and(|t| self.list_matches(a, t)) {
                sets.idle.insert(i);
                sets.idle_rate += a.rate;
            }
        }
        sets
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
            confirm_timeout_ms: e
                .confirm_timeout_secs
                .filter(|s| *s > 0)
                .map(|s| s.saturating_mul(1000)),
            excluded: Vec::new(),
        };
        entry.priority = entry.priority_at(now);
        if let Some(t) = entry.targets.clone() {
            let first = self.next_step(&t, 0);
            entry.step = first;
            entry.active = vec![first];
        }
        if !self.queues.contains_key(&entry.queue) {
            let q = self.new_queue();
            self.queues.insert(entry.queue.clone(), q);
        }
        let mut appeared = None;
        if let Some(queue) = self.queues.get_mut(&entry.queue) {
            queue.order.insert(entry.key());
            if let Some(t) = &entry.targets {
                let text = format!("{:?}", t.steps);
                let slot = queue
                    .targets
                    .entry(text.clone())
                    .or_insert_with(|| (t.clone(), 0));
                slot.1 += 1;
                if slot.1 == 1 {
                    appeared = Some((text, t.clone()));
                }
            }
        }
        if let Some((text, t)) = appeared {
            self.urs2_target_changed(&entry.queue, &text, &t, true);
        }
        self.entries.insert(entry.session_id.clone(), entry);
        self.dispatch(now);
    }

    /// A distinct target list appeared in (`added`) or left the waiting calls of `queue`:
    /// the agents matching it join or leave the queue's urs2 set. O(agents), on the write
    /// path only, so that an EWT query is O(1).
    fn urs2_target_changed(&mut self, queue: &str, text: &str, t: &TargetList, added: bool) {
        if self.queues.get(queue).is_none_or(|q| q.urs2.borrow().is_none()) {
            return;
        }
        let matching = match self.matching.get(text) {
            Some(m) => m.clone(),
            None => {
                let m: Arc<[usize]> = self
                    .agents
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| self.list_matches(a, t))
                    .map(|(i, _)| i)
                    .collect();
                if self.matching.len() >= MAX_MATCHING_CACHED {
                    self.matching.clear();
                }
                self.matching.insert(text.to_string(), m.clone());
                m
            }
        };
        let agents = &self.agents;
        let Some(u) = self.queues.get_mut(queue).and_then(|q| q.urs2.get_mut().as_mut()) else {
            return;
        };
        for &i in matching.iter() {
            let rate = agents.get(i).map_or(0, |a| a.rate);
            if added {
                let n = u.waiting.entry(i).or_insert(0);
                *n += 1;
                if *n == 1 {
                    u.waiting_rate += rate;
                }
            } else if let Some(n) = u.waiting.get_mut(&i) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    u.waiting.remove(&i);
                    u.waiting_rate -= rate;
                }
            }
        }
    }

    /// An agent's handle time or served queues changed: its rate is recomputed and the sums
    /// of the queues it counts in move by the difference. O(queues).
    fn refresh_rate(&mut self, i: usize) {
        let Some(a) = self.agents.get_mut(i) else { return };
        let new = rate_of(a.handled, a.handle_ms, a.served.len());
        let delta = new - a.rate;
        a.rate = new;
        if delta == 0 {
            return;
        }
        for u in self.queues.values_mut().filter_map(|q| q.urs2.get_mut().as_mut()) {
            if u.waiting.contains_key(&i) {
                u.waiting_rate += delta;
            }
            if u.idle.contains(&i) {
                u.idle_rate += delta;
            }
        }
    }

    fn list_matches(&self, a: &AgentRt, t: &TargetList) -> bool {
        t.steps.iter().any(|s| self.matches(a, &s.target))
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
        let mut gone = None;
        if let Some(q) = self.queues.get_mut(&entry.queue) {
            q.order.remove(&entry.key());
            if let Some(t) = &entry.targets {
                let text = format!("{:?}", t.steps);
                if let Some(c) = q.targets.get_mut(&text) {
                    c.1 = c.1.saturating_sub(1);
                    if c.1 == 0 {
                        gone = q.targets.remove(&text).map(|(t, _)| (text, t));
                    }
                }
            }
        }
        if let Some((text, t)) = gone {
            self.urs2_target_changed(&entry.queue, &text, &t, false);
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
            self.free_agent(r.agent, None, now);
        }
        self.dispatch(now);
        true
    }

    /// Frees a reserved agent; `blame` is the not-ready reason when the agent is at fault.
    fn free_agent(&mut self, i: usize, blame: Option<String>, now: Millis) {
        if let Some(a) = self.agents.get_mut(i) {
            a.session = None;
            a.queue = None;
        }
        if let Some(why) = blame.filter(|_| self.cfg.not_ready_on_reject) {
            self.set_state(i, AgentState::NotReady, Some(why), now);
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
        let (id, first_time) = match self.agents.get_mut(agent) {
            Some(a) => {
                a.session = Some((session_id.to_string(), reservation));
                a.queue = Some(entry.queue.clone());
                (a.cfg.id.clone(), a.served.insert(entry.queue.clone()))
            }
            None => (String::new(), false),
        };
        if first_time {
            // The agent now serves this queue (urs2's idle set) and one more queue (its k).
            let rate = self.agents.get(agent).map_or(0, |a| a.rate);
            if let Some(u) = self
                .queues
                .get_mut(&entry.queue)
                .and_then(|q| q.urs2.get_mut().as_mut())
                && u.idle.insert(agent)
            {
                u.idle_rate += rate;
            }
            self.refresh_rate(agent);
        }
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
        let why = match reason {
            ReleaseReason::Rejected => "rejected",
            ReleaseReason::NoAnswer => "no answer",
            ReleaseReason::CustomerGone => "",
        };
        self.release_why(session_id, reservation, reason, why.to_string(), now)
    }

    fn release_why(
        &mut self,
        session_id: &str,
        reservation: u64,
        reason: ReleaseReason,
        why: String,
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
            entry.excluded.push(r.agent);
        }
        let exhausted = entry.attempts >= entry.max_attempts;
        let agent_id = self
            .agents
            .get(r.agent)
            .map(|a| a.cfg.id.clone())
            .unwrap_or_default();
        self.free_agent(r.agent, blame.then_some(why), now);
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
        self.refresh_rate(i);
        if wrap > 0 {
            self.set_state(i, AgentState::AfterCallWork, None, now);
        } else {
            self.set_state(i, AgentState::Ready, None, now);
            self.dispatch(now);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ call events

    /// The one entry point of the call layer: an outcome of the call a
    /// [`RoutingEvent::Reserved`] asked for (`call` is that event's
    /// [`RoutingEvent::agent_call`]). The agent's state, the reservation, the callback's place
    /// in its queue and the statistics follow (see [`AgentCallEvent`] for each rule); events
    /// to act on (a release, the next reservation, attempts exhausted) come out as usual.
    ///
    /// An outcome that does not fit (a stale reservation, an unknown agent, `HungUp` before
    /// the call was connected) is an error and changes nothing, so a late or repeated report
    /// is harmless.
    pub fn on_agent_call(
        &mut self,
        call: &AgentCall,
        event: AgentCallEvent,
        now: Millis,
    ) -> Result<AgentCallOutcome, RoutingError> {
        let i = self.agent_index(&call.agent_id)?;
        let holds = self.agents.get(i).is_some_and(|a| {
            a.session
                .as_ref()
                .is_some_and(|(s, r)| *s == call.session_id && *r == call.reservation)
        });
        if !holds {
            return Err(RoutingError::NoSuchReservation {
                session: call.session_id.clone(),
                reservation: call.reservation,
            });
        }
        let (s, r) = (call.session_id.as_str(), call.reservation);
        match (self.state_of(i), event) {
            (AgentState::Reserved, AgentCallEvent::Answered | AgentCallEvent::Bridged) => {
                self.confirm(s, r, now)?;
                Ok(AgentCallOutcome::Connected)
            }
            (AgentState::Busy, AgentCallEvent::Answered | AgentCallEvent::Bridged) => {
                Ok(AgentCallOutcome::Unchanged)
            }
            (AgentState::Reserved, AgentCallEvent::Rejected { code }) => {
                self.release_why(s, r, ReleaseReason::Rejected, format!("rejected {code}"), now)?;
                Ok(AgentCallOutcome::Released {
                    retrying: self.entries.contains_key(s),
                })
            }
            (AgentState::Reserved, AgentCallEvent::NoAnswer) => {
                self.release(s, r, ReleaseReason::NoAnswer, now)?;
                Ok(AgentCallOutcome::Released {
                    retrying: self.entries.contains_key(s),
                })
            }
            (AgentState::Reserved, AgentCallEvent::CustomerGone) => {
                self.remove(s, now);
                Ok(AgentCallOutcome::Abandoned)
            }
            (AgentState::Busy, AgentCallEvent::HungUp | AgentCallEvent::CustomerGone) => {
                self.hangup(&call.agent_id, now)?;
                Ok(AgentCallOutcome::Ended)
            }
            (_, AgentCallEvent::HungUp) => Err(self.illegal(i, "hang up")),
            (_, AgentCallEvent::Answered | AgentCallEvent::Bridged) => Err(self.illegal(i, "take the call")),
            (_, _) => Err(self.illegal(i, "be released")),
        }
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
                if self.group_names.contains(n) {
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
                    self.agents.get(i).is_some_and(|a| {
                        a.claim_pass != pass && !entry.excluded.contains(&i) && self.entry_accepts(entry, a)
                    })
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
        if q.order.is_empty() {
            return false;
        }
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
        let Some(e) = self.entries.get_mut(sid) else {
            return;
        };
        let timeout = e
            .confirm_timeout_ms
            .unwrap_or(self.cfg.reservation_timeout_secs.saturating_mul(1000))
            .max(1000);
        let until = now.saturating_add(timeout);
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

    /// urs2's time per call of `queue`, `1 / Σ 1/(AHT × k)` over the agents serving it: the
    /// agents the waiting calls' targets name, or (no call with a target waiting) the agents
    /// that served the queue before and those of its configured target. O(1): the sets are
    /// built at the queue's first urs2 query, then their sums kept up to date as agents'
    /// statistics and the waiting target lists change.
    fn per_call_secs(&self, queue: &str) -> Option<f64> {
        let q = self.queues.get(queue)?;
        let waiting = !q.order.is_empty() && !q.targets.is_empty();
        if let Some(u) = q.urs2.borrow().as_ref() {
            let rate = if waiting { u.waiting_rate } else { u.idle_rate };
            return (rate > 0).then(|| RATE_SCALE / rate as f64);
        }
        let sets = self.build_urs2(queue, q);
        let rate = if waiting {
            sets.waiting_rate
        } else {
            sets.idle_rate
        };
        *q.urs2.borrow_mut() = Some(sets);
        (rate > 0).then(|| RATE_SCALE / rate as f64)
    }

    /// urs2's time per call recomputed from scratch over every agent (what the kept sums
    /// must equal; for the invariant check).
    fn per_call_secs_scan(&self, queue: &str) -> Option<f64> {
        let q = self.queues.get(queue)?;
        let configured = self.cfg.queues.get(queue).and_then(|c| c.target.as_ref());
        let waiting = !q.order.is_empty() && !q.targets.is_empty();
        let rate: i128 = self
            .agents
            .iter()
            .filter(|a| {
                if waiting {
                    q.targets.values().any(|(t, _)| self.list_matches(a, t))
                } else {
                    a.served.contains(queue) || configured.is_some_and(|t| self.list_matches(a, t))
                }
            })
            .map(|a| rate_of(a.handled, a.handle_ms, a.served.len()))
            .sum();
        (rate > 0).then(|| RATE_SCALE / rate as f64)
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
        for name in self.queues.keys() {
            let (kept, scanned) = (self.per_call_secs(name), self.per_call_secs_scan(name));
            if kept != scanned {
                return Err(format!(
                    "queue {name}: urs2 time per call {kept:?} kept, {scanned:?} recomputed"
                ));
            }
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
