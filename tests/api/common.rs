//! Shared fixtures of the API suite: the §10.0 configuration, a fault-injecting engine and
//! shortcuts for R1-R14; the server, client and assertions are in `tests/common/http.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use boomerang::callback::engine::{Dialog, Engine, EngineError, QueuePosition, Session, SessionTable};
use serde_json::{Map, Value};

#[path = "../common/http.rs"]
mod http;
pub use http::*;

/// The §10.0 fixture services relevant to R1-R3, R5-R7, R12 and R14.
pub const FIXTURE_TOML: &str = r#"
[http]
listen = "127.0.0.1:0"

[storage]
backend = "sqlite"
path = "unused.sqlite"

[node]
id = 7

[callback]
returned-keys = "_callback_reason,_target,_ors,_wait_for_agent,_urs_virtual_queue,_ors_session_id,usr_customer_name,usr_account"

# Global chat section without default_chat_endpoint (cb-chat).
[chat]
default_client_timeout = 30

[[user]]
name = "admin"
password = "secret"
roles = ["Administrator"]

[service.cb-test]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"

[service.cb-other]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"

[service.cb-mand]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_mandatory_customer_lookup_keys = "usr_account"

[service.cb-ovr]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_overwritable_options = "_ors,_target"
_target = "Default@SS.GA"
_ors = "http://ors-a:4421"
_wait_for_agent = false

[service.cb-token]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
my_token_name = "$my_token$"
_target = "Billing@$my_token$.GA"

[service.cb-builtin]
_type = "builtin"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"

[service.cb-weird]
_type = "foo"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"

[service.cb-notcb]
_type = "ors"
_service = "chat"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"

[service.cb-badstat]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_request_queue_time_stat = "garbage"

[service.cb-chat]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_media_type = "chat"

[service.cb-prem]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_disallow_premium_phone_numbers = true
"#;

// ------------------------------------------------------------------------- engine

/// What [`FaultEngine::start`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFault {
    /// Pass through to the in-process engine.
    None,
    /// Always `EngineError::Unavailable` (retryable).
    Unavailable,
    /// Always `EngineError::InvalidResponse`.
    InvalidResponse,
    /// Panics inside the engine call (an unexpected internal failure).
    Panic,
}

/// The in-process [`SessionTable`] with injectable faults.
pub struct FaultEngine {
    pub table: SessionTable,
    start_fault: Mutex<StartFault>,
    refuse_cancel: AtomicBool,
    pub start_calls: AtomicUsize,
    pub cancel_calls: AtomicUsize,
}

impl FaultEngine {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            table: SessionTable::new(),
            start_fault: Mutex::new(StartFault::None),
            refuse_cancel: AtomicBool::new(false),
            start_calls: AtomicUsize::new(0),
            cancel_calls: AtomicUsize::new(0),
        })
    }

    pub fn set_start_fault(&self, fault: StartFault) {
        *self.start_fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    pub fn set_refuse_cancel(&self, refuse: bool) {
        self.refuse_cancel.store(refuse, Ordering::SeqCst);
    }

    pub fn starts(&self) -> usize {
        self.start_calls.load(Ordering::SeqCst)
    }

    /// Whether the engine holds a live session with this ID.
    pub fn has_session(&self, session_id: &str) -> bool {
        self.table.position(session_id).is_some()
    }
}

#[async_trait]
impl Engine for FaultEngine {
    async fn start(&self, session: Session) -> Result<Option<Dialog>, EngineError> {
        self.start_calls.fetch_add(1, Ordering::SeqCst);
        let fault = *self.start_fault.lock().unwrap_or_else(|p| p.into_inner());
        match fault {
            StartFault::None => self.table.start(session).await,
            StartFault::Unavailable => Err(EngineError::Unavailable("injected: engine down".into())),
            StartFault::InvalidResponse => Err(EngineError::InvalidResponse("injected: <garbage/>".into())),
            StartFault::Panic => panic!("injected engine panic"),
        }
    }

    async fn restore(&self, session: Session) {
        self.table.restore(session).await
    }

    async fn cancel(&self, session_id: &str) -> Result<(), EngineError> {
        self.cancel_calls.fetch_add(1, Ordering::SeqCst);
        if self.refuse_cancel.load(Ordering::SeqCst) {
            return Err(EngineError::Refused("injected: session refuses to cancel".into()));
        }
        self.table.cancel(session_id).await
    }

    async fn end(&self, session_id: &str) {
        self.table.end(session_id).await
    }

    async fn resume(&self, session_id: &str) -> Result<(), EngineError> {
        self.table.resume(session_id).await
    }

    fn position(&self, session_id: &str) -> Option<QueuePosition> {
        self.table.position(session_id)
    }
}

// ------------------------------------------------------------------------- server + shortcuts

impl TestServer {
    /// A server on [`FIXTURE_TOML`].
    pub async fn start() -> TestServer {
        Self::launch(FIXTURE_TOML, |b| b).await
    }

    /// A server on [`FIXTURE_TOML`] with a fault-injecting engine.
    pub async fn with_engine(engine: Arc<FaultEngine>) -> TestServer {
        Self::launch(FIXTURE_TOML, |b| b.engine(engine)).await
    }

    // ---------------------------------------------------------------- API shortcuts

    /// R1 with a JSON body; expects 200 and returns the new `_id`.
    pub async fn create(&self, service: &str, body: Value) -> String {
        let r = self
            .post_json(&format!("/genesys/1/service/callback/{service}"), &body)
            .await;
        let obj = r.ok_object();
        let id = obj
            .get("_id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no _id in {obj:?}"));
        assert!(!id.is_empty());
        id.to_string()
    }

    /// A SCHEDULED callback at T+2d on `service`.
    pub async fn create_scheduled(&self, service: &str, number: &str) -> String {
        self.create(
            service,
            serde_json::json!({"_customer_number": number, "_desired_time": iso(t_plus_days(2))}),
        )
        .await
    }

    /// An immediate callback (live session) on `service`.
    pub async fn create_immediate(&self, service: &str, number: &str) -> String {
        self.create(service, serde_json::json!({"_customer_number": number}))
            .await
    }

    /// A callback created with a forced `_callback_state` (no session).
    pub async fn create_forced(&self, service: &str, number: &str, state: &str) -> String {
        self.create(
            service,
            serde_json::json!({"_customer_number": number, "_desired_time": iso(t_plus_days(2)), "_callback_state": state}),
        )
        .await
    }

    /// R5 (`/genesys/2/...`); expects 200.
    pub async fn record(&self, service: &str, id: &str) -> Map<String, Value> {
        self.get(&format!("/genesys/2/service/callback/{service}/{id}"))
            .await
            .ok_object()
    }

    /// `_callback_state` as R5 shows it.
    pub async fn state(&self, service: &str, id: &str) -> String {
        str_field(&self.record(service, id).await, "_callback_state")
    }

    /// Polls R5 until the state is `want` (50 × 100 ms); returns the last record.
    pub async fn wait_for_state(&self, service: &str, id: &str, want: &str) -> Map<String, Value> {
        let mut last = Map::new();
        for _ in 0..50 {
            last = self.record(service, id).await;
            if last.get("_callback_state").and_then(Value::as_str) == Some(want) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("callback {id} did not reach {want}: {last:?}");
    }
}
