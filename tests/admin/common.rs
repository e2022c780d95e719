//! Shared fixtures of the admin suite: the §10.0 services this suite needs (admission control,
//! number screening), admin users of the three roles, an in-process server on a free loopback
//! port with its own SQLite file (optionally on a manual clock), an HTTP client and the
//! assertions every test uses (JSON headers, the error envelope of spec 40 §2.10-2.11).

use std::sync::Arc;
use std::time::Duration;

use boomerang::clock::ManualClock;
use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

/// Services and users of spec 40 §10.0 relevant to admission, number screening and the admin
/// API, plus users of the three roles (spec 50 §5.1).
pub const FIXTURE_TOML: &str = r#"
[http]
listen = "127.0.0.1:0"

[storage]
backend = "sqlite"
path = "unused.sqlite"

[node]
id = 7

[[user]]
name = "admin"
password = "secret"
roles = ["Administrator"]

[[user]]
name = "super"
password = "visor-pw"
roles = ["Supervisor"]

[[user]]
name = "reader"
password = "read-only-pw"
roles = ["CallbackReadOnly"]

[patterns.cb_errors]
premium = '^\+1900'

[number_rule.north_america]
allowed_countries = ["US", "CA"]
blocked_patterns = ['^1212555']

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

[service.cb-strict]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_enable_in_queue_checking = "strict"

[service.cb-true]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_enable_in_queue_checking = "true"

[service.cb-thr]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_throttle_max_queued_callbacks = 1

[service.cb-thr-int]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_throttle_callbacks_per_service_1 = 1
_throttle_ttl_1 = 3600

[service.cb-thr-par]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_throttle_customer_number_limit = 1

[service.cb-exc]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_exceptions = "cb_errors"

[service.cb-imp]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_disallow_impossible_phone_numbers = true
_default_country = "US"

[service.cb-prem]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_disallow_premium_phone_numbers = true

[service.cb-prem-us]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_disallow_premium_phone_numbers = true
_default_country = "US"

[service.cb-prem-fr]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_disallow_premium_phone_numbers = true
_default_country = "FR"

[service.cb-rule]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_number_rule = "north_america"
_default_country = "US"
"#;

/// Every service of [`FIXTURE_TOML`], sorted.
pub const FIXTURE_SERVICES: [&str; 13] = [
    "cb-exc",
    "cb-imp",
    "cb-other",
    "cb-prem",
    "cb-prem-fr",
    "cb-prem-us",
    "cb-rule",
    "cb-strict",
    "cb-test",
    "cb-thr",
    "cb-thr-int",
    "cb-thr-par",
    "cb-true",
];

/// `(user, password)` of each role.
pub const ADMIN: (&str, &str) = ("admin", "secret");
pub const SUPERVISOR: (&str, &str) = ("super", "visor-pw");
pub const READER: (&str, &str) = ("reader", "read-only-pw");

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
        50020 => (500, "BAD_CONFIGURATION", "CallbackExceptionConfiguration"),
        50050 => (500, "UNKNOWN_ERROR", "CallbackExceptionUnknown"),
        other => panic!("code {other} is not used by this suite"),
    }
}

// ------------------------------------------------------------------------- time helpers

/// Wall-clock "now" in epoch milliseconds.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock before 1970");
    d.as_millis() as i64
}

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Canonical wire form `yyyy-MM-ddTHH:mm:ss.SSSZ`.
pub fn iso(ms: i64) -> String {
    boomerang::time::format_iso(ms)
}

/// `base + days`, rounded down to a 5-minute bucket boundary.
pub fn bucket(ms: i64) -> i64 {
    ms - ms.rem_euclid(5 * MINUTE_MS)
}

/// NOW + `days`, rounded down to a 5-minute boundary (the §10.0 `T+Nd`).
pub fn t_plus_days(days: i64) -> i64 {
    bucket(now_ms() + days * DAY_MS)
}

// ------------------------------------------------------------------------- responses

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

/// A 401 of the admin routes (spec 40 §2.8): the Basic challenge, no JSON envelope.
pub fn assert_unauthorized(r: &Resp, what: &str) {
    assert_eq!(
        r.status,
        401,
        "{what}: expected 401, got {}: {}",
        r.status,
        r.text()
    );
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Basic realm=\"callback-admin\""),
        "{what}: WWW-Authenticate challenge"
    );
    let is_envelope = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get("code").cloned())
        .is_some();
    assert!(
        !is_envelope,
        "{what}: a 401 carries no JSON envelope, got {}",
        r.text()
    );
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

/// The `_id`s of an array of objects, sorted.
pub fn ids_of(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|item| {
            item.get("_id")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("item without _id: {item}"))
                .to_string()
        })
        .collect();
    ids.sort();
    ids
}

// ------------------------------------------------------------------------- server + client

/// How a test server is built.
#[derive(Default)]
pub struct Options {
    /// Configuration text (default [`FIXTURE_TOML`]).
    pub toml: Option<String>,
    /// A manual clock instead of the system clock.
    pub clock: Option<ManualClock>,
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
        Self::start_with(Options::default()).await
    }

    pub async fn with_clock(clock: ManualClock) -> TestServer {
        Self::start_with(Options {
            toml: None,
            clock: Some(clock),
        })
        .await
    }

    pub async fn with_toml(toml: &str) -> TestServer {
        Self::start_with(Options {
            toml: Some(toml.to_string()),
            clock: None,
        })
        .await
    }

    pub async fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = options.toml.as_deref().unwrap_or(FIXTURE_TOML);
        let mut config = Config::parse(text, "fixture.toml").expect("fixture configuration");
        config.http.listen = "127.0.0.1:0".parse().expect("loopback address");
        config.storage = StorageConfig::Sqlite {
            path: dir.path().join("db.sqlite"),
        };
        let mut builder = Server::builder(config);
        if let Some(clock) = options.clock {
            builder = builder.clock(Arc::new(clock));
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

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.client.delete(self.url(path))).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    /// An admin request with Basic credentials `(user, password)`.
    pub fn admin_request(&self, method: Method, path: &str, who: (&str, &str)) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .basic_auth(who.0, Some(who.1))
    }

    /// `GET` as `admin`.
    pub async fn admin_get(&self, path: &str) -> Resp {
        self.send(self.admin_request(Method::GET, path, ADMIN)).await
    }

    /// `POST` of a JSON body as `who`.
    pub async fn admin_post_as(&self, path: &str, who: (&str, &str), body: &Value) -> Resp {
        self.send(self.admin_request(Method::POST, path, who).json(body))
            .await
    }

    /// `POST` of a JSON body as `admin`.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Resp {
        self.admin_post_as(path, ADMIN, body).await
    }

    // ---------------------------------------------------------------- API shortcuts

    /// R1 with a JSON body, answered as is.
    pub async fn try_create(&self, service: &str, body: &Value) -> Resp {
        self.post_json(&format!("/genesys/1/service/callback/{service}"), body)
            .await
    }

    /// R1 with a JSON body; expects 200 and returns the new `_id`.
    pub async fn create(&self, service: &str, body: Value) -> String {
        let r = self.try_create(service, &body).await;
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
            json!({"_customer_number": number, "_desired_time": iso(t_plus_days(2))}),
        )
        .await
    }

    /// A SCHEDULED callback at `desired` (epoch ms).
    pub async fn create_at(&self, service: &str, number: &str, desired: i64) -> String {
        self.create(
            service,
            json!({"_customer_number": number, "_desired_time": iso(desired)}),
        )
        .await
    }

    /// An immediate callback (live session, QUEUED) on `service`.
    pub async fn create_immediate(&self, service: &str, number: &str) -> String {
        self.create(service, json!({"_customer_number": number})).await
    }

    /// An immediate callback with `usr_account`.
    pub async fn create_immediate_with(&self, service: &str, number: &str, account: &str) -> String {
        self.create(
            service,
            json!({"_customer_number": number, "usr_account": account}),
        )
        .await
    }

    /// A callback created with a forced `_callback_state` at T+2d (no session).
    pub async fn create_forced(&self, service: &str, number: &str, state: &str) -> String {
        self.create(
            service,
            json!({"_customer_number": number, "_desired_time": iso(t_plus_days(2)), "_callback_state": state}),
        )
        .await
    }

    /// R5 (`/genesys/2/...`), answered as is.
    pub async fn get_record(&self, service: &str, id: &str) -> Resp {
        self.get(&format!("/genesys/2/service/callback/{service}/{id}"))
            .await
    }

    /// R5; expects 200.
    pub async fn record(&self, service: &str, id: &str) -> Map<String, Value> {
        self.get_record(service, id).await.ok_object()
    }

    /// R6 on one service by `_customer_number`: the sorted IDs found.
    pub async fn lookup(&self, service: &str, number: &str) -> Vec<String> {
        let r = self
            .get(&format!(
                "/genesys/1/service/callback/{service}?_customer_number={number}"
            ))
            .await;
        assert_eq!(r.status, 200, "lookup {service}/{number}: {}", r.text());
        ids_of(&r.json())
    }

    /// R7 across services by `_customer_number`: the sorted IDs found.
    pub async fn lookup_all(&self, number: &str) -> Vec<String> {
        let r = self
            .get(&format!("/genesys/1/service/callback?_customer_number={number}"))
            .await;
        assert_eq!(r.status, 200, "lookup all/{number}: {}", r.text());
        ids_of(&r.json())
    }
}
