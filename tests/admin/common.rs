//! Shared fixtures of the admin suite: the §10.0 services this suite needs (admission control,
//! number screening), admin users of the three roles, servers on a manual clock and admin
//! shortcuts; the server, client and assertions are in `tests/common/http.rs`.

use std::sync::Arc;

use boomerang::clock::ManualClock;
use reqwest::Method;
use serde_json::{Map, Value, json};

#[path = "../common/http.rs"]
mod http;
pub use http::*;

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

// ------------------------------------------------------------------------- server + client

/// How a test server is built.
#[derive(Default)]
pub struct Options {
    /// Configuration text (default [`FIXTURE_TOML`]).
    pub toml: Option<String>,
    /// A manual clock instead of the system clock.
    pub clock: Option<ManualClock>,
}

impl TestServer {
    /// A server on [`FIXTURE_TOML`].
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
        let toml = options.toml.as_deref().unwrap_or(FIXTURE_TOML);
        Self::launch(toml, |b| match options.clock {
            Some(clock) => b.clock(Arc::new(clock)),
            None => b,
        })
        .await
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
        let mut ids = ids_of(&r.json());
        ids.sort();
        ids
    }

    /// R7 across services by `_customer_number`: the sorted IDs found.
    pub async fn lookup_all(&self, number: &str) -> Vec<String> {
        let r = self
            .get(&format!("/genesys/1/service/callback?_customer_number={number}"))
            .await;
        assert_eq!(r.status, 200, "lookup all/{number}: {}", r.text());
        let mut ids = ids_of(&r.json());
        ids.sort();
        ids
    }
}
