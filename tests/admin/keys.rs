//! API keys for the service routes, their validation endpoint, and CORS allowed origins
//! (spec 50 §17 AD-142, AD-143); admin routes keep Basic auth (spec 40 §2.8).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const WEB_KEY: &str = "web-key-0123456789abcdef";
/// Configured by its SHA-256 only.
const KIOSK_KEY: &str = "kiosk-key-fedcba9876543210";
const ORIGIN: &str = "https://app.example";

fn sha256_hex(text: &str) -> String {
    boomerang::config::ApiKey::hash(text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn keyed_toml() -> String {
    format!(
        r#"
[http]
allowed_origins = ["{ORIGIN}"]

[[user]]
name = "admin"
password = "secret"
roles = ["Administrator"]

[[user]]
name = "reader"
password = "read-only-pw"
roles = ["CallbackReadOnly"]

[[api_key]]
name = "web"
key = "{WEB_KEY}"

[[api_key]]
name = "kiosk"
sha256 = "{}"

[service.cb-test]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
"#,
        sha256_hex(KIOSK_KEY)
    )
}

const R1: &str = "/genesys/1/service/callback/cb-test";

fn create_body() -> Value {
    json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2))})
}

fn assert_key_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
}

#[tokio::test]
async fn k01_service_routes_need_a_valid_key() {
    let s = TestServer::with_toml(&keyed_toml()).await;
    assert_key_refused(&s.post_json(R1, &create_body()).await, "R1 without key");
    let r = s
        .send(
            s.client
                .post(s.url(R1))
                .header("x-api-key", "wrong-key-0123456789")
                .json(&create_body()),
        )
        .await;
    assert_key_refused(&r, "R1 with a wrong key");
    let r = s
        .send(
            s.client
                .post(s.url(R1))
                .header("x-api-key", &WEB_KEY[..WEB_KEY.len() - 1])
                .json(&create_body()),
        )
        .await;
    assert_key_refused(&r, "R1 with a truncated key");
    // Basic credentials are no substitute for a key.
    let r = s
        .send(s.admin_request(Method::POST, R1, ADMIN).json(&create_body()))
        .await;
    assert_key_refused(&r, "R1 with Basic auth");

    let mut ids = Vec::new();
    for key in [WEB_KEY, KIOSK_KEY] {
        let r = s
            .send(
                s.client
                    .post(s.url(R1))
                    .header("x-api-key", key)
                    .json(&create_body()),
            )
            .await;
        let body = r.ok_object();
        ids.push(str_field(&body, "_id"));
    }
    // Reads too: R5 v1 and v2, R6, R7, R12, R14.
    let id = &ids[0];
    for path in [
        format!("/genesys/1/service/callback/cb-test/{id}"),
        format!("/genesys/2/service/callback/cb-test/{id}"),
        "/genesys/1/service/callback/cb-test?_customer_number=5115".to_string(),
        "/genesys/1/service/callback?_customer_number=5115".to_string(),
        format!("/genesys/1/service/{id}/check-queue-position"),
        "/genesys/1/ors/scxml/session/some-session/event/resume".to_string(),
    ] {
        assert_key_refused(&s.get(&path).await, &path);
        let r = s
            .send(s.client.get(s.url(&path)).header("x-api-key", WEB_KEY))
            .await;
        assert_ne!(r.status, 401, "{path} with the key: {}", r.text());
    }
    let r = s
        .send(
            s.client
                .get(s.url(&format!("/genesys/1/service/callback/cb-test/{id}")))
                .header("x-api-key", WEB_KEY),
        )
        .await;
    assert_eq!(str_field(&r.ok_object(), "_customer_number"), "5115");
    // Cancel without a key is refused and changes nothing.
    let path = format!("/genesys/1/service/callback/cb-test/{id}");
    assert_key_refused(&s.delete(&path).await, "R2 without key");
    let r = s
        .send(s.client.get(s.url(&path)).header("x-api-key", WEB_KEY))
        .await;
    assert_eq!(str_field(&r.ok_object(), "_callback_state"), "SCHEDULED");
    s.stop().await;
}

#[tokio::test]
async fn k02_admin_routes_use_basic_auth_not_keys() {
    let s = TestServer::with_toml(&keyed_toml()).await;
    let path = "/genesys/1/admin/callback/watermarks";
    let r = s
        .send(s.client.get(s.url(path)).header("x-api-key", WEB_KEY))
        .await;
    assert_unauthorized(&r, "R11 with a key only");
    let r = s.admin_get(path).await;
    let body = r.ok_object();
    assert_eq!(body.get("total").and_then(Value::as_u64), Some(0), "{body:?}");
    s.stop().await;
}

#[tokio::test]
async fn k03_no_keys_configured_no_key_needed() {
    let s = TestServer::start().await;
    s.create_scheduled("cb-test", "5115").await;
    let r = s
        .admin_post("/genesys/1/admin/api-keys/validate", &json!({"key": WEB_KEY}))
        .await;
    assert_eq!(r.ok_object().get("valid"), Some(&json!(false)));
    s.stop().await;
}

#[tokio::test]
async fn k04_validate_endpoint() {
    let s = TestServer::with_toml(&keyed_toml()).await;
    let path = "/genesys/1/admin/api-keys/validate";
    let cases = [
        (WEB_KEY, true),
        (KIOSK_KEY, true),
        ("web-key-0123456789abcdeF", false),
        ("", false),
    ];
    for (key, valid) in cases {
        let r = s.admin_post(path, &json!({"key": key})).await;
        assert_eq!(r.ok_object().get("valid"), Some(&json!(valid)), "{key:?}");
    }
    // The SHA-256 text itself is not a key.
    let r = s.admin_post(path, &json!({"key": sha256_hex(KIOSK_KEY)})).await;
    assert_eq!(r.ok_object().get("valid"), Some(&json!(false)));
    let r = s.post_json(path, &json!({"key": WEB_KEY})).await;
    assert_unauthorized(&r, "validate without credentials");
    s.stop().await;
}

#[test]
fn k05_short_or_ambiguous_keys_refused_at_configuration_check() {
    for bad in [
        "[[api_key]]\nname = 'w'\nkey = 'short'\n",
        "[[api_key]]\nname = 'w'\nsha256 = 'abc'\n",
        "[[api_key]]\nname = 'w'\n",
    ] {
        let e = match boomerang::config::Config::parse(bad, "k.toml") {
            Ok(_) => panic!("accepted: {bad}"),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with("k.toml: [api_key #1]"), "{e}");
    }
}

#[tokio::test]
async fn k06_cors_preflight_for_allowed_origin_only() {
    let s = TestServer::with_toml(&keyed_toml()).await;
    let preflight = |origin: &str| {
        s.client
            .request(Method::OPTIONS, s.url(R1))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-api-key")
    };
    // The preflight carries no key: it must still be answered.
    let r = s.send(preflight(ORIGIN)).await;
    assert!(
        r.status < 300,
        "preflight from the allowed origin: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(r.header("access-control-allow-origin").as_deref(), Some(ORIGIN));
    let allowed_headers = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("x-api-key"), "{allowed_headers:?}");
    let r = s.send(preflight("https://evil.example")).await;
    assert_eq!(r.header("access-control-allow-origin"), None, "another origin");
    // An actual request from the allowed origin carries the header too.
    let r = s
        .send(
            s.client
                .post(s.url(R1))
                .header("origin", ORIGIN)
                .header("x-api-key", WEB_KEY)
                .json(&create_body()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin").as_deref(), Some(ORIGIN));
    s.stop().await;
}

#[tokio::test]
async fn k07_no_origins_configured_no_cors() {
    let s = TestServer::start().await;
    let r = s
        .send(
            s.client
                .request(Method::OPTIONS, s.url(R1))
                .header("origin", ORIGIN)
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    s.stop().await;
}

#[tokio::test]
async fn k08_agent_api_needs_a_key_or_a_user_once_either_is_configured() {
    let s = TestServer::with_toml(&keyed_toml()).await;
    let list = "/api/v1/agents";
    let change = "/api/v1/agents/nobody/login";
    assert_eq!(s.get(list).await.status, 401, "no credentials");
    assert_eq!(
        s.post_json(change, &json!({})).await.status,
        401,
        "no credentials"
    );
    let r = s
        .send(
            s.client
                .get(s.url(list))
                .header("x-api-key", "wrong-key-0123456789"),
        )
        .await;
    assert_eq!(r.status, 401, "a wrong key");
    // An agent desktop with a key reads and changes states (unknown agent: the handler's 404).
    let r = s
        .send(s.client.get(s.url(list)).header("x-api-key", WEB_KEY))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .send(s.client.post(s.url(change)).header("x-api-key", KIOSK_KEY))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Users: any role reads, a read-only user may not change states, an administrator may.
    assert_eq!(
        s.send(s.admin_request(Method::GET, list, READER)).await.status,
        200
    );
    assert_eq!(
        s.send(s.admin_request(Method::POST, change, READER)).await.status,
        403
    );
    assert_eq!(
        s.send(s.admin_request(Method::POST, change, ADMIN)).await.status,
        404
    );
    assert_eq!(
        s.send(s.admin_request(Method::GET, "/api/v1/routing/stats", ("admin", "wrong")))
            .await
            .status,
        401
    );
    s.stop().await;
}
