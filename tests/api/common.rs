//! Shared fixtures of the API suite: the §10.0 configuration, an in-process server on a free
//! loopback port with its own SQLite file, a fault-injecting engine, an HTTP client and the
//! assertions every test uses (JSON headers, the error envelope of spec 40 §2.10-2.11).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use boomerang::callback::engine::{Dialog, Engine, EngineError, QueuePosition, Session, SessionTable};
use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

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

/// Prefix of every exception class name (spec 40 §2.11.1).
pub const EXCEPTION_PREFIX: &str = "com.genesyslab.gsg.services.callback.";

/// The catalogue of spec 40 §2.11.1: code → (HTTP status, phrase, exception class suffix).
pub fn catalogue(code: u64) -> (u16, &'static str, &'static str) {
    match code {
        40001 => (429, "NUMBER_ALREADY_BOOKED", "CallbackExceptionAlreadyBooked"),
        40002 => (429, "THROTTLE_SERVICE_LIMIT", "CallbackExceptionThrottled"),
        40003 => (
            429,
            "THROTTLE_SERVICE_INTERVAL_LIMIT",
            "CallbackExceptionThrottled",
        ),
        40004 => (
            429,
            "THROTTLE_SERVICE_PARAMETER_LIMIT",
            "CallbackExceptionThrottled",
        ),
        40010 => (400, "BAD_PARAMETER", "CallbackExceptionBadParameter"),
        40020 => (400, "INVALID_OPERATION", "CallbackExceptionInvalidOperation"),
        40030 => (400, "CALLBACK_NOT_FOUND", "CallbackExceptionNotFound"),
        40040 => (400, "NUMBER_REJECTED", "CallbackExceptionNumber"),
        40050 => (400, "SLOT_UNAVAILABLE", "CallbackExceptionAvailability"),
        40051 => (400, "SLOT_UNAVAILABLE_PROPOSAL", "CallbackExceptionAvailability"),
        50004 => (500, "CAPACITY_ERROR", "CallbackExceptionCapacityError"),
        50005 => (500, "CALENDAR_ERROR", "CallbackExceptionCalendarError"),
        50006 => (
            500,
            "ORS_MAX_SUBMIT_RETRIES",
            "CallbackExceptionMaxORSSubmitAttempts",
        ),
        50020 => (500, "BAD_CONFIGURATION", "CallbackExceptionConfiguration"),
        50030 => (500, "ORS_ERROR", "CallbackExceptionFromORS"),
        50040 => (500, "SERVICE_REDIRECT_FAILED", "CallbackExceptionServiceRedirect"),
        50050 => (500, "UNKNOWN_ERROR", "CallbackExceptionUnknown"),
        other => panic!("code {other} is not in the catalogue"),
    }
}

// ------------------------------------------------------------------------- time helpers

/// Server-comparable "now" in epoch milliseconds.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock before 1970");
    d.as_millis() as i64
}

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;

/// Canonical wire form `yyyy-MM-ddTHH:mm:ss.SSSZ`.
pub fn iso(ms: i64) -> String {
    boomerang::time::format_iso(ms)
}

/// NOW + `days`, rounded down to a 5-minute bucket boundary (the §10.0 `T+Nd`).
pub fn t_plus_days(days: i64) -> i64 {
    let t = now_ms() + days * DAY_MS;
    t - t.rem_euclid(5 * MINUTE_MS)
}

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

// ------------------------------------------------------------------------- server + client

/// A response read to the end.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("<non-ascii>").to_string())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, after checking the JSON response headers (spec 40 §2.9, §10 #139).
    pub fn json(&self) -> Value {
        assert_json_headers(self);
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// A 200 JSON object.
    pub fn ok_object(&self) -> Map<String, Value> {
        assert_eq!(
            self.status,
            200,
            "expected 200, got {}: {}",
            self.status,
            self.text()
        );
        match self.json() {
            Value::Object(m) => m,
            other => panic!("expected a JSON object, got {other}"),
        }
    }
}

/// `Content-Type: application/json;charset=UTF-8` and `Cache-Control` with `no-store`.
pub fn assert_json_headers(r: &Resp) {
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json;charset=UTF-8"),
        "JSON content type (status {}, body {})",
        r.status,
        r.text()
    );
    assert_cache_control(r);
}

pub fn assert_cache_control(r: &Resp) {
    let cc = r.header("cache-control").unwrap_or_default();
    assert!(
        cc.contains("no-store"),
        "Cache-Control must contain no-store, got {cc:?} (status {})",
        r.status
    );
}

/// Checks the full error envelope (spec 40 §2.10, §10 #140): status, code, phrase, exception
/// class, `properties` object, `message` string starting with `message_prefix`. Returns the body.
pub fn assert_error(r: &Resp, code: u64, message_prefix: &str) -> Map<String, Value> {
    let (status, phrase, suffix) = catalogue(code);
    let body = r.json();
    let Value::Object(body) = body else {
        panic!("error body is not an object: {body}")
    };
    assert_eq!(r.status, status, "HTTP status for {code}; body {body:?}");
    assert_eq!(
        body.get("code").and_then(Value::as_u64),
        Some(code),
        "code; body {body:?}"
    );
    assert_eq!(
        body.get("phrase").and_then(Value::as_str),
        Some(phrase),
        "phrase; body {body:?}"
    );
    let exception = format!("{EXCEPTION_PREFIX}{suffix}");
    assert_eq!(
        body.get("exception").and_then(Value::as_str),
        Some(exception.as_str()),
        "exception; body {body:?}"
    );
    assert!(
        body.get("properties").is_some_and(Value::is_object),
        "properties must be an object; body {body:?}"
    );
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("message must be a string; body {body:?}"));
    assert!(
        message.starts_with(message_prefix),
        "message {message:?} must start with {message_prefix:?}"
    );
    body
}

/// `properties.<key>` of an error body.
pub fn prop<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get("properties").and_then(|p| p.get(key))
}

pub fn message(body: &Map<String, Value>) -> &str {
    body.get("message").and_then(Value::as_str).unwrap_or("")
}

/// One test server: fresh store in its own temp directory, loopback port 0.
pub struct TestServer {
    server: Option<Server>,
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_inner(None).await
    }

    pub async fn with_engine(engine: Arc<FaultEngine>) -> TestServer {
        Self::start_inner(Some(engine)).await
    }

    async fn start_inner(engine: Option<Arc<FaultEngine>>) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::parse(FIXTURE_TOML, "fixture.toml").expect("fixture configuration");
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.storage = StorageConfig::Sqlite {
            path: dir.path().join("db.sqlite"),
        };
        let mut builder = Server::builder(config);
        if let Some(engine) = engine {
            builder = builder.engine(engine);
        }
        let server = builder.start().await.expect("server start");
        let base = format!("http://{}", server.local_addr());
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        TestServer {
            server: Some(server),
            base,
            client,
            _dir: dir,
        }
    }

    /// Stops the server (requests in flight finish first).
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request sent and answered");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.expect("response body").to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn request(&self, method: Method, path: &str) -> Resp {
        self.send(self.client.request(method, self.url(path))).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send(self.client.post(self.url(path)).form(pairs)).await
    }

    pub async fn put_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send(self.client.put(self.url(path)).form(pairs)).await
    }

    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Resp {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        self.send(req).await
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

/// A string field of a JSON object, or panic naming it.
pub fn str_field(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key} in {obj:?}"))
        .to_string()
}

/// The set of keys of a JSON object, sorted.
pub fn keys(obj: &Map<String, Value>) -> Vec<String> {
    let mut k: Vec<String> = obj.keys().cloned().collect();
    k.sort();
    k
}

/// Sorted owned strings.
pub fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The `_id`s of a lookup result array.
pub fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|item| {
            item.get("_id")
                .and_then(Value::as_str)
                .expect("item _id")
                .to_string()
        })
        .collect()
}
