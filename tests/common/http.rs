//! Shared by the HTTP suites (tests/api, tests/admin): an in-process server on a free loopback
//! port with its own SQLite file, an HTTP client, the error catalogue of spec 40 §2.11.1 and the
//! assertions every test uses (JSON headers, the error envelope of spec 40 §2.10-2.11). Each
//! suite adds its fixture configuration and shortcuts in its own `common.rs`.
#![allow(dead_code)]

use std::time::Duration;

use boomerang::config::{Config, StorageConfig};
use boomerang::server::{Builder, Server};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

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

/// Wall-clock "now" in epoch milliseconds (what the server's system clock reads).
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

/// `ms` rounded down to a 5-minute bucket boundary.
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

// ------------------------------------------------------------------------- server + client

/// One test server: fresh store in its own temp directory, loopback port 0.
pub struct TestServer {
    server: Option<Server>,
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on configuration `toml` (listen and storage replaced by a loopback port
    /// and a fresh SQLite file); `customise` may add an engine, a clock...
    pub async fn launch(toml: &str, customise: impl FnOnce(Builder) -> Builder) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::parse(toml, "fixture.toml").expect("fixture configuration");
        config.http.listen = "127.0.0.1:0".parse().expect("loopback address");
        config.storage = StorageConfig::Sqlite {
            path: dir.path().join("db.sqlite"),
        };
        let server = customise(Server::builder(config))
            .start()
            .await
            .expect("server start");
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
