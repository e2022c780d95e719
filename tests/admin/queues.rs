//! §10.8 items 116-122: R10 outstanding callbacks per queue (spec 40 §6.9).

use serde_json::{Map, Value};

use crate::common::*;

const R10: &str = "/genesys/1/admin/callback/queues";

/// Item keys of R10 (no GMS-level returned-keys in this fixture).
const ITEM_KEYS: [&str; 5] = [
    "_callback_state",
    "_customer_number",
    "_desired_time",
    "_id",
    "url",
];

fn items<'a>(body: &'a Map<String, Value>, service: &str) -> &'a Vec<Value> {
    body.get(service)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no array for {service} in {body:?}"))
}

fn states_of(list: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|i| {
            i.get("_callback_state")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn t116_credentials_required() {
    let s = TestServer::start().await;
    assert_unauthorized(&s.get(R10).await, "R10 without credentials");
    let r = s
        .send(s.client.get(s.url(R10)).basic_auth("admin", Some("wrong")))
        .await;
    assert_unauthorized(&r, "R10 wrong password");
    // Read-only users may read.
    let r = s
        .send(s.client.get(s.url(R10)).basic_auth(READER.0, Some(READER.1)))
        .await;
    r.ok_object();
    s.stop().await;
}

#[tokio::test]
async fn t117_default_window_is_the_next_24_hours() {
    let s = TestServer::start().await;
    let now = now_ms();
    let soon = s.create_at("cb-test", "5115", bucket(now + 65 * MINUTE_MS)).await;
    let later = s.create_scheduled("cb-test", "5116").await;
    let other = s.create_at("cb-other", "5117", bucket(now + 3 * HOUR_MS)).await;
    let body = s.admin_get(R10).await.ok_object();
    assert_eq!(keys(&body), sorted(&["cb-other", "cb-test"]), "{body:?}");
    let test_items = items(&body, "cb-test");
    assert_eq!(
        ids_of(&Value::Array(test_items.clone())),
        vec![soon.clone()],
        "{body:?}"
    );
    assert!(
        !Value::Object(body.clone()).to_string().contains(&later),
        "the T+2d callback is outside the default window: {body:?}"
    );
    let item = test_items[0].as_object().expect("item object");
    assert_eq!(keys(item), sorted(&ITEM_KEYS), "{item:?}");
    assert_eq!(str_field(item, "_customer_number"), "5115");
    assert_eq!(str_field(item, "_callback_state"), "SCHEDULED");
    assert_eq!(
        str_field(item, "_desired_time"),
        iso(bucket(now + 65 * MINUTE_MS))
    );
    assert_eq!(
        str_field(item, "url"),
        format!("/1/service/callback/cb-test/{soon}")
    );
    assert_eq!(
        ids_of(&Value::Array(items(&body, "cb-other").clone())),
        vec![other]
    );
    s.stop().await;
}

#[tokio::test]
async fn t118_target() {
    let s = TestServer::start().await;
    s.create_immediate("cb-test", "5115").await;
    s.create_immediate("cb-other", "5116").await;
    let body = s.admin_get(&format!("{R10}?target=cb-test")).await.ok_object();
    assert_eq!(keys(&body), vec!["cb-test".to_string()], "{body:?}");
    let body = s.admin_get(&format!("{R10}?target=cb-strict")).await.ok_object();
    assert!(body.is_empty(), "a service without callbacks: {{}}, got {body:?}");
    let body = s
        .admin_get(&format!("{R10}?target=no-such-service"))
        .await
        .ok_object();
    assert!(body.is_empty(), "an unknown target: {{}}, got {body:?}");
    s.stop().await;
}

#[tokio::test]
async fn t119_states() {
    let s = TestServer::start().await;
    let now = now_ms();
    let at = |h: i64| iso(bucket(now + h * HOUR_MS));
    s.create_at("cb-test", "1", bucket(now + HOUR_MS)).await;
    for (state, h) in [("QUEUED", 2), ("PROCESSING", 3), ("COMPLETED", 4)] {
        s.create(
            "cb-test",
            serde_json::json!({"_customer_number": "1", "_desired_time": at(h), "_callback_state": state}),
        )
        .await;
    }
    let body = s
        .admin_get(&format!("{R10}?states=SCHEDULED,%20QUEUED"))
        .await
        .ok_object();
    assert_eq!(
        states_of(items(&body, "cb-test")),
        sorted(&["QUEUED", "SCHEDULED"])
    );
    let body = s.admin_get(&format!("{R10}?states=COMPLETED")).await.ok_object();
    assert_eq!(states_of(items(&body, "cb-test")), sorted(&["COMPLETED"]));
    // Without states: every state.
    let body = s.admin_get(R10).await.ok_object();
    assert_eq!(
        states_of(items(&body, "cb-test")),
        sorted(&["COMPLETED", "PROCESSING", "QUEUED", "SCHEDULED"])
    );
    s.stop().await;
}

#[tokio::test]
async fn t120_max_per_queue_keeps_the_earliest() {
    let s = TestServer::start().await;
    let now = now_ms();
    let mut test_ids = Vec::new();
    for h in [3, 1, 2] {
        test_ids.push((h, s.create_at("cb-test", "1", bucket(now + h * HOUR_MS)).await));
    }
    s.create_at("cb-other", "1", bucket(now + HOUR_MS)).await;
    s.create_at("cb-other", "2", bucket(now + 2 * HOUR_MS)).await;
    let body = s.admin_get(&format!("{R10}?max=1")).await.ok_object();
    assert_eq!(keys(&body), sorted(&["cb-other", "cb-test"]));
    for service in ["cb-test", "cb-other"] {
        assert_eq!(items(&body, service).len(), 1, "{service}: {body:?}");
    }
    let earliest = &test_ids.iter().find(|(h, _)| *h == 1).expect("1 h").1;
    assert_eq!(
        str_field(items(&body, "cb-test")[0].as_object().expect("item"), "_id"),
        *earliest
    );
    // Without max: ascending desired time.
    let body = s.admin_get(R10).await.ok_object();
    let times: Vec<String> = items(&body, "cb-test")
        .iter()
        .map(|i| {
            i.get("_desired_time")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let mut ascending = times.clone();
    ascending.sort();
    assert_eq!(times, ascending);
    assert_eq!(times.len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn t121_range_too_wide() {
    let s = TestServer::start().await;
    let now = now_ms();
    let r = s
        .admin_get(&format!(
            "{R10}?start_time={}&end_time={}",
            iso(now),
            iso(now + 60 * DAY_MS)
        ))
        .await;
    let body = assert_error(&r, 40020, "Query range spans too wide time range");
    assert_eq!(
        message(&body),
        "Query range spans too wide time range (5184000 / 2678400). Adjust query parameters for time range."
    );
    // Ten years: the same error.
    let r = s
        .admin_get(&format!(
            "{R10}?start_time={}&end_time={}",
            iso(now),
            iso(now + 3650 * DAY_MS)
        ))
        .await;
    assert_error(
        &r,
        40020,
        "Query range spans too wide time range (315360000 / 2678400)",
    );
    // 31 days exactly is allowed, and finds a callback at T+2d.
    let id = s.create_scheduled("cb-test", "5115").await;
    let body = s
        .admin_get(&format!(
            "{R10}?start_time={}&end_time={}",
            iso(now),
            iso(now + 31 * DAY_MS)
        ))
        .await
        .ok_object();
    assert_eq!(
        ids_of(&Value::Array(items(&body, "cb-test").clone())),
        vec![id.clone()]
    );
    // Only an end bound: no span limit (the check needs both bounds).
    let body = s
        .admin_get(&format!("{R10}?end_time={}", iso(now + 60 * DAY_MS)))
        .await
        .ok_object();
    assert_eq!(ids_of(&Value::Array(items(&body, "cb-test").clone())), vec![id]);
    s.stop().await;
}

#[tokio::test]
async fn t122_bad_parameters() {
    let s = TestServer::start().await;
    for query in [
        "end_time=garbage",
        "start_time=garbage",
        "max=0",
        "max=-3",
        "max=abc",
        "states=BOGUS",
        "states=SCHEDULED,NOPE",
    ] {
        let r = s.admin_get(&format!("{R10}?{query}")).await;
        let body = assert_error(&r, 40010, "");
        assert!(!message(&body).is_empty(), "{query}: {body:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn x116_returned_keys_and_filter_keys() {
    // GMS-level returned-keys add item keys; a query parameter listed in filter-keys filters
    // by equality; other unknown parameters are ignored (spec 40 §6.9 [D]).
    let toml = r#"
[callback]
returned-keys = "usr_account"
filter-keys = "usr_account"

[[user]]
name = "admin"
password = "secret"
roles = ["Administrator"]

[service.cb-test]
_type = "ors"
_service = "callback"
_ttl = 86400
_customer_lookup_keys = "_customer_number,usr_account"
"#;
    let s = TestServer::with_toml(toml).await;
    let a1 = s
        .create(
            "cb-test",
            serde_json::json!({"_customer_number": "1", "usr_account": "A1"}),
        )
        .await;
    s.create(
        "cb-test",
        serde_json::json!({"_customer_number": "2", "usr_account": "A2"}),
    )
    .await;
    let body = s
        .admin_get(&format!("{R10}?usr_account=A1&whatever=1"))
        .await
        .ok_object();
    let list = items(&body, "cb-test");
    assert_eq!(ids_of(&Value::Array(list.clone())), vec![a1]);
    let item = list[0].as_object().expect("item");
    assert_eq!(str_field(item, "usr_account"), "A1");
    let body = s.admin_get(&format!("{R10}?whatever=1")).await.ok_object();
    assert_eq!(items(&body, "cb-test").len(), 2);
    s.stop().await;
}
