//! §10.3 Reschedule / update (R3).

use serde_json::{Value, json};

use crate::common::*;

fn path(service: &str, id: &str) -> String {
    format!("/genesys/1/service/callback/{service}/{id}")
}

/// R3 success: 200 with `{}` (or, as clients must accept, an empty body).
fn assert_put_ok(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.text());
    if !r.body.is_empty() {
        assert_eq!(r.json(), json!({}));
    }
    assert_cache_control(r);
}

#[tokio::test]
async fn t63_reschedule_later() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let t3 = t_plus_days(3);
    let r = s
        .put_json(&path("cb-test", &id), &json!({"_new_desired_time": iso(t3)}))
        .await;
    assert_put_ok(&r);
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_desired_time"), iso(t3));
    assert_eq!(str_field(&rec, "_callback_state"), "SCHEDULED");
    s.stop().await;
}

#[tokio::test]
async fn t64_reschedule_to_now_becomes_queued() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s
        .put_json(
            &path("cb-test", &id),
            &json!({"_new_desired_time": iso(now_ms() + MINUTE_MS)}),
        )
        .await;
    assert_put_ok(&r);
    let rec = s.wait_for_state("cb-test", &id, "QUEUED").await;
    assert!(
        rec.get("_ors_session_id").is_some_and(Value::is_string),
        "a session was started: {rec:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn t65_reschedule_discards_state() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let t3 = t_plus_days(3);
    let r = s
        .put_json(
            &path("cb-test", &id),
            &json!({"_new_desired_time": iso(t3), "_callback_state": "COMPLETED"}),
        )
        .await;
    assert_put_ok(&r);
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "SCHEDULED");
    assert_eq!(str_field(&rec, "_desired_time"), iso(t3));
    s.stop().await;
}

#[tokio::test]
async fn t66_reschedule_not_scheduled() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "PROCESSING").await;
    let r = s
        .put_json(
            &path("cb-test", &id),
            &json!({"_new_desired_time": iso(t_plus_days(3))}),
        )
        .await;
    let body = assert_error(
        &r,
        40020,
        &format!("Callback {id} is no longer scheduled. State=PROCESSING"),
    );
    assert_eq!(
        message(&body),
        format!("Callback {id} is no longer scheduled. State=PROCESSING")
    );
    assert_eq!(prop(&body, "state"), Some(&json!("PROCESSING")));
    s.stop().await;
}

#[tokio::test]
async fn t67_reschedule_garbage_time() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s
        .put_json(&path("cb-test", &id), &json!({"_new_desired_time": "garbage"}))
        .await;
    assert_error(&r, 40010, "");
    assert_eq!(s.state("cb-test", &id).await, "SCHEDULED");
    s.stop().await;
}

#[tokio::test]
async fn t68_reschedule_into_the_past() {
    let s = TestServer::start().await;
    let t = t_plus_days(2);
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": iso(t)}),
        )
        .await;
    let r = s
        .put_json(
            &path("cb-test", &id),
            &json!({"_new_desired_time": iso(now_ms() - 2 * DAY_MS)}),
        )
        .await;
    let body = assert_error(
        &r,
        40010,
        &format!("Callback {id} contains _desired_time property in the past"),
    );
    assert!(message(&body).contains("in the past"));
    assert_eq!(
        str_field(&s.record("cb-test", &id).await, "_desired_time"),
        iso(t)
    );
    s.stop().await;
}

#[tokio::test]
async fn t70_urlencoded_update_of_lookup_key() {
    let s = TestServer::start().await;
    let id = s.create_immediate("cb-test", "5115").await;
    assert_eq!(s.state("cb-test", &id).await, "QUEUED");
    let r = s.put_form(&path("cb-test", &id), &[("usr_account", "Z9")]).await;
    assert_put_ok(&r);
    let found = s.get("/genesys/1/service/callback/cb-test?usr_account=Z9").await;
    assert_eq!(found.status, 200, "{}", found.text());
    assert_eq!(ids_of(&found.json()), vec![id.clone()]);
    assert_eq!(s.state("cb-test", &id).await, "QUEUED");
    s.stop().await;
}

#[tokio::test]
async fn t71_update_state_to_processing() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "QUEUED").await;
    let r = s
        .put_json(&path("cb-test", &id), &json!({"_callback_state": "PROCESSING"}))
        .await;
    assert_put_ok(&r);
    assert_eq!(s.state("cb-test", &id).await, "PROCESSING");
    s.stop().await;
}

#[tokio::test]
async fn t72_update_after_completed_rejected() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "QUEUED").await;
    let r = s
        .put_json(
            &path("cb-test", &id),
            &json!({"_callback_state": "COMPLETED", "_callback_reason": "AGENT_CONNECTED"}),
        )
        .await;
    assert_put_ok(&r);
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "COMPLETED");
    assert_eq!(str_field(&rec, "_callback_reason"), "AGENT_CONNECTED");
    let r = s
        .put_json(&path("cb-test", &id), &json!({"usr_account": "Q1"}))
        .await;
    let body = assert_error(&r, 40020, &format!("Rejecting update : cb-test=[{id} @ "));
    assert!(
        message(&body).ends_with("] - reached state COMPLETED"),
        "{body:?}"
    );
    assert_eq!(prop(&body, "id"), Some(&json!(id)));
    assert_eq!(prop(&body, "service"), Some(&json!("cb-test")));
    assert!(prop(&body, "time").is_some(), "{body:?}");
    s.stop().await;
}

#[tokio::test]
async fn t73_completed_without_reason() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "QUEUED").await;
    let r = s
        .put_json(&path("cb-test", &id), &json!({"_callback_state": "COMPLETED"}))
        .await;
    assert_put_ok(&r);
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "COMPLETED");
    assert_eq!(str_field(&rec, "_callback_reason"), "NOT_AVAILABLE");
    s.stop().await;
}

#[tokio::test]
async fn t74_update_bogus_state() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "QUEUED").await;
    let r = s
        .put_json(&path("cb-test", &id), &json!({"_callback_state": "BOGUS"}))
        .await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("_callback_state")));
    assert_eq!(s.state("cb-test", &id).await, "QUEUED");
    s.stop().await;
}

#[tokio::test]
async fn t75_update_unknown() {
    let s = TestServer::start().await;
    let id = "7-11111111-1111-4111-8111-111111111111";
    let r = s
        .put_json(&path("cb-test", id), &json!({"usr_account": "Q1"}))
        .await;
    let body = assert_error(&r, 40030, &format!("Callback {id} cannot be found"));
    assert_eq!(prop(&body, "id"), Some(&json!(id)));
    let r = s
        .put_json(
            &path("cb-test", id),
            &json!({"_new_desired_time": iso(t_plus_days(3))}),
        )
        .await;
    assert_error(&r, 40030, &format!("Callback {id} cannot be found"));
    s.stop().await;
}

#[tokio::test]
async fn t77_multipart_update() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let t3 = t_plus_days(3);
    let form = reqwest::multipart::Form::new()
        .text("_new_desired_time", iso(t3))
        .text("usr_customer_name", "Alice");
    let r = s
        .send(s.client.put(s.url(&path("cb-test", &id))).multipart(form))
        .await;
    assert_put_ok(&r);
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_desired_time"), iso(t3));
    assert_eq!(str_field(&rec, "usr_customer_name"), "Alice");
    s.stop().await;
}
