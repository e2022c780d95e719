//! The execution engine interface: what runs a callback's live session once it is due (the
//! seed's ORS). The callback service submits sessions, cancels them, ends them and asks where
//! they stand in their virtual queue; it never assumes how a session dials or routes.
//!
//! [`SessionTable`] is the in-process engine this issue ships: it keeps every live session in
//! its virtual queue, ordered by priority then age, answers queue positions, and accepts the
//! cancel, end and resume requests. The dialling scenarios drive these sessions once the
//! SIP and scenario parts exist.
//!
//! Built [`SessionTable::with_routing`], every live session also waits in routing's virtual
//! queue: positions, priority aging and EWT then come from routing, and agents are reserved for
//! sessions as they reach the head of their queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::clock::Millis;
use crate::routing::Routing;
use crate::routing::router::{Enqueue, Mode};
use crate::routing::target::TargetList;

/// What the engine needs to run one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// `_ors_session_id`.
    pub id: String,
    pub callback_id: String,
    pub service: String,
    /// Virtual queue: `_urs_virtual_queue`, else the service name.
    pub queue: String,
    /// `_urs_vq_priority` (higher first).
    pub priority: i64,
    /// When the callback was accepted; keeps its place in the queue across restarts.
    pub accepted_at: Millis,
    /// `_wait_for_agent`.
    pub wait_for_agent: bool,
    /// `_agent_preview`.
    pub agent_preview: bool,
    /// The callback's own routing options.
    pub routing: RoutingOptions,
}

/// A callback's routing options, from its record (absent: the virtual queue's configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingOptions {
    /// `_target`: one target or the seed's JSON list.
    pub target: Option<String>,
    /// `(_urs_vq_priority_increment, _urs_vq_priority_increment_interval)`.
    pub priority_increment: Option<(i64, i64)>,
    /// `_max_transfer_to_agent_attempts`.
    pub max_transfer_attempts: Option<u32>,
    /// `_agent_transfer_confirm_timeout` in seconds (0 or absent: the routing configuration's
    /// reservation timeout).
    pub confirm_timeout_secs: Option<i64>,
    /// Dial the customer first and reserve an agent once the customer is on the line
    /// (`_wait_for_agent=false`, customer first); otherwise reserve the agent first.
    pub customer_first: bool,
}

/// The dialog an engine may return for an immediate start (R1's `ID`, `Action`, `Text`, `OkTitle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub id: String,
    pub action: String,
    pub text: String,
    pub ok_title: String,
}

impl Dialog {
    pub fn confirmation(text: &str) -> Dialog {
        Dialog {
            id: "0".into(),
            action: "ConfirmationDialog".into(),
            text: text.into(),
            ok_title: "Ok".into(),
        }
    }
}

/// A session's place in its virtual queue (R12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    /// 1 = next to be served.
    pub position: u32,
    pub total_waiting: u32,
    pub priority: i64,
    pub queue: String,
    pub accepted_at: Millis,
    /// EWT of this session with the callbacks ahead of it (routing only; `None` = unknown).
    pub ewt_secs: Option<i64>,
    /// Logged-in agents able to take this session (routing only).
    pub agents_logged_in: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The engine cannot take the request now; submission may be retried.
    #[error("engine unavailable: {0}")]
    Unavailable(String),
    /// The engine refused the request (for example a cancel it cannot honour).
    #[error("{0}")]
    Refused(String),
    /// The engine does not know this session.
    #[error("session {0} is unknown to the engine")]
    UnknownSession(String),
    /// The engine answered something unusable.
    #[error("Invalid ORS response")]
    InvalidResponse(String),
}

#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Starts the session of a callback that became due.
    async fn start(&self, session: Session) -> Result<Option<Dialog>, EngineError>;
    /// Takes back a session that was live before a restart, keeping its queue position.
    async fn restore(&self, session: Session);
    /// Stops a session because its callback was cancelled.
    async fn cancel(&self, session_id: &str) -> Result<(), EngineError>;
    /// Forgets a session whose record left it (completed, rescheduled, expired or failed).
    async fn end(&self, session_id: &str);
    /// Resumes a paused session, ignoring `_do_not_call_items` for it from now on.
    async fn resume(&self, session_id: &str) -> Result<(), EngineError>;
    /// Where a session stands in its virtual queue.
    fn position(&self, session_id: &str) -> Option<QueuePosition>;
    /// The routing state this engine queues sessions in, if any (for the agents API).
    fn routing(&self) -> Option<Arc<Routing>> {
        None
    }
}

#[derive(Debug, Clone)]
struct Entry {
    session: Session,
    /// Set by `resume`: this session ignores do-not-call rules.
    ignore_do_not_call: bool,
}

/// The in-process engine: live sessions held in their virtual queues.
#[derive(Default)]
pub struct SessionTable {
    sessions: Mutex<HashMap<String, Entry>>,
    routing: Option<Arc<Routing>>,
}

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTable")
            .field("sessions", &self.len())
            .field("routing", &self.routing.is_some())
            .finish()
    }
}

impl SessionTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine whose sessions wait in routing's virtual queues.
    pub fn with_routing(routing: Arc<Routing>) -> Self {
        Self {
            sessions: Mutex::default(),
            routing: Some(routing),
        }
    }

    pub fn routing(&self) -> Option<&Arc<Routing>> {
        self.routing.as_ref()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a session was told to ignore do-not-call rules.
    pub fn ignores_do_not_call(&self, session_id: &str) -> bool {
        self.sessions()
            .get(session_id)
            .is_some_and(|e| e.ignore_do_not_call)
    }

    fn insert(&self, session: Session) {
        if let Some(routing) = &self.routing {
            routing.enqueue(Enqueue {
                session_id: session.id.clone(),
                callback_id: session.callback_id.clone(),
                queue: session.queue.clone(),
                priority: session.priority,
                priority_increment: session.routing.priority_increment,
                age_origin: session.accepted_at,
                target: session
                    .routing
                    .target
                    .as_deref()
                    .and_then(|t| match TargetList::parse(t) {
                        Ok(list) => Some(Arc::new(list)),
                        Err(e) => {
                            tracing::warn!(callback = session.callback_id, "_target '{t}' ignored: {e}");
                            None
                        }
                    }),
                mode: if session.routing.customer_first {
                    Mode::CustomerFirst
                } else {
                    Mode::ReserveFirst
                },
                max_attempts: session.routing.max_transfer_attempts,
                confirm_timeout_secs: session.routing.confirm_timeout_secs,
            });
        }
        self.sessions().insert(
            session.id.clone(),
            Entry {
                session,
                ignore_do_not_call: false,
            },
        );
    }
}

/// Queue order: higher priority first, then earlier acceptance, then ID for a total order.
fn ahead(a: &Session, b: &Session) -> bool {
    (std::cmp::Reverse(a.priority), a.accepted_at, &a.callback_id)
        < (std::cmp::Reverse(b.priority), b.accepted_at, &b.callback_id)
}

#[async_trait]
impl Engine for SessionTable {
    async fn start(&self, session: Session) -> Result<Option<Dialog>, EngineError> {
        let dialog = if session.agent_preview {
            Some(Dialog::confirmation("You will receive a call from the agent"))
        } else if !session.wait_for_agent {
            Some(Dialog::confirmation("You will receive the call shortly"))
        } else {
            None
        };
        self.insert(session);
        Ok(dialog)
    }

    async fn restore(&self, session: Session) {
        self.insert(session);
    }

    async fn cancel(&self, session_id: &str) -> Result<(), EngineError> {
        let removed = self.sessions().remove(session_id);
        if let Some(routing) = &self.routing {
            routing.remove(session_id);
        }
        match removed {
            Some(_) => Ok(()),
            None => Err(EngineError::UnknownSession(session_id.to_string())),
        }
    }

    async fn end(&self, session_id: &str) {
        self.sessions().remove(session_id);
        if let Some(routing) = &self.routing {
            routing.remove(session_id);
        }
    }

    async fn resume(&self, session_id: &str) -> Result<(), EngineError> {
        match self.sessions().get_mut(session_id) {
            Some(entry) => {
                entry.ignore_do_not_call = true;
                Ok(())
            }
            None => Err(EngineError::UnknownSession(session_id.to_string())),
        }
    }

    fn routing(&self) -> Option<Arc<Routing>> {
        self.routing.clone()
    }

    fn position(&self, session_id: &str) -> Option<QueuePosition> {
        let sessions = self.sessions();
        let me = &sessions.get(session_id)?.session;
        if let Some(place) = self.routing.as_ref().and_then(|r| r.place(session_id)) {
            return Some(QueuePosition {
                position: place.position,
                total_waiting: place.total_waiting,
                priority: place.priority,
                queue: place.queue,
                accepted_at: me.accepted_at,
                ewt_secs: place.ewt_secs,
                agents_logged_in: Some(place.agents_logged_in),
            });
        }
        let mut position = 1;
        let mut total = 0;
        for entry in sessions.values().filter(|e| e.session.queue == me.queue) {
            total += 1;
            if ahead(&entry.session, me) {
                position += 1;
            }
        }
        Some(QueuePosition {
            position,
            total_waiting: total,
            priority: me.priority,
            queue: me.queue.clone(),
            accepted_at: me.accepted_at,
            ewt_secs: None,
            agents_logged_in: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, queue: &str, priority: i64, accepted_at: Millis) -> Session {
        Session {
            id: format!("s-{id}"),
            callback_id: id.into(),
            service: "svc".into(),
            queue: queue.into(),
            priority,
            accepted_at,
            wait_for_agent: false,
            agent_preview: false,
            routing: Default::default(),
        }
    }

    #[tokio::test]
    async fn positions_follow_priority_then_age_per_queue() {
        let t = SessionTable::new();
        t.start(session("a", "vq", 0, 100)).await.unwrap();
        t.start(session("b", "vq", 0, 50)).await.unwrap();
        t.start(session("c", "vq", 5, 200)).await.unwrap();
        t.start(session("d", "other", 0, 10)).await.unwrap();
        assert_eq!(t.position("s-c").unwrap().position, 1);
        assert_eq!(t.position("s-b").unwrap().position, 2);
        let a = t.position("s-a").unwrap();
        assert_eq!((a.position, a.total_waiting), (3, 3));
        assert_eq!(t.position("s-d").unwrap().total_waiting, 1);
        t.cancel("s-c").await.unwrap();
        assert_eq!(t.position("s-a").unwrap().position, 2);
        assert_eq!(
            t.cancel("s-c").await,
            Err(EngineError::UnknownSession("s-c".into()))
        );
    }

    #[tokio::test]
    async fn immediate_sessions_get_a_confirmation_dialog() {
        let t = SessionTable::new();
        let d = t.start(session("a", "vq", 0, 0)).await.unwrap().unwrap();
        assert_eq!(d.action, "ConfirmationDialog");
        assert_eq!(d.text, "You will receive the call shortly");
        let mut waiting = session("b", "vq", 0, 0);
        waiting.wait_for_agent = true;
        assert_eq!(t.start(waiting).await.unwrap(), None);
    }
}
