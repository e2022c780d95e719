//! §10.10 Queue position (R12) and §10.12 session events (R14).

use serde_json::{Map, Value, json};

use crate::common::*;

fn assert_position_keys(body: &Map<String, Value>) {
    for key in ["_position", "_eta", "_total_waiting"] {
        assert!(
            body.get(key).is_some_and(|v| v.is_i64() || v.is_u64()),
            "{key} must be an integer: {body:?}"
        );
    }
    assert!(
        body.get("ors_session_id").is_some_and(Value::is_string),
        "ors_session_id: {body:?}"
    );
}

#[tokio::test]
async fn t127_queue_position_post() {
    let s = TestServer::start().await;
    let id = s.create_immediate("cb-test", "5115").await;
    let session = str_field(&s.record("cb-test", &id).await, "_ors_session_id");
    let r = s
        .send(
            s.client
                .post(s.url(&format!("/genesys/1/service/{id}/check-queue-position")))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(""),
        )
        .await;
    let body = r.ok_object();
    assert_position_keys(&body);
    assert_eq!(str_field(&body, "ors_session_id"), session);
    assert_eq!(body["_position"], json!(1));
    assert_eq!(body["_total_waiting"], json!(1));
    s.stop().await;
}

#[tokio::test]
async fn t128_queue_position_get() {
    let s = TestServer::start().await;
    let first = s.create_immediate("cb-test", "5115").await;
    let id = s.create_immediate("cb-test", "5116").await;
    let post = s
        .request(
            reqwest::Method::POST,
            &format!("/genesys/1/service/{id}/check-queue-position"),
        )
        .await
        .ok_object();
    let get = s
        .get(&format!("/genesys/1/service/{id}/check-queue-position"))
        .await
        .ok_object();
    assert_position_keys(&get);
    assert_eq!(keys(&post), keys(&get), "same keys for GET and POST");
    assert_eq!(get["_position"], json!(2), "queued behind {first}");
    assert_eq!(get["_total_waiting"], json!(2));
    s.stop().await;
}

#[tokio::test]
async fn t129_queue_position_errors() {
    let s = TestServer::start().await;
    let unknown = "7-33333333-3333-4333-8333-333333333333";
    let r = s
        .request(
            reqwest::Method::POST,
            &format!("/genesys/1/service/{unknown}/check-queue-position"),
        )
        .await;
    let body = assert_error(&r, 40030, &format!("Callback {unknown} cannot be found"));
    assert_eq!(prop(&body, "id"), Some(&json!(unknown)));
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s
        .request(
            reqwest::Method::POST,
            &format!("/genesys/1/service/{id}/check-queue-position"),
        )
        .await;
    let body = assert_error(
        &r,
        40020,
        &format!("Callback {id} has no active session - _callback_state=SCHEDULED"),
    );
    assert_eq!(
        message(&body),
        format!("Callback {id} has no active session - _callback_state=SCHEDULED")
    );
    s.stop().await;
}

/// An immediate callback put into PAUSED through R3; returns (id, session id).
async fn paused_callback(s: &TestServer) -> (String, String) {
    let id = s.create_immediate("cb-test", "5115").await;
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "QUEUED");
    let session = str_field(&rec, "_ors_session_id");
    let r = s
        .put_json(
            &format!("/genesys/1/service/callback/cb-test/{id}"),
            &json!({"_callback_state": "PAUSED"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = s.wait_for_state("cb-test", &id, "PAUSED").await;
    assert_eq!(
        str_field(&rec, "_ors_session_id"),
        session,
        "pausing keeps the session"
    );
    (id, session)
}

#[tokio::test]
async fn t135_resume_session() {
    let engine = FaultEngine::new();
    let s = TestServer::with_engine(engine.clone()).await;
    let (id, session) = paused_callback(&s).await;
    let r = s
        .get(&format!(
            "/genesys/1/ors/scxml/session/{session}/event/resume_session"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty(), "empty body: {}", r.text());
    let rec = s.record("cb-test", &id).await;
    assert_ne!(str_field(&rec, "_callback_state"), "PAUSED");
    // [D] §6.13: back to the state held before pausing.
    assert_eq!(str_field(&rec, "_callback_state"), "QUEUED");
    assert!(
        engine.table.ignores_do_not_call(&session),
        "resume switches off do-not-call for this session"
    );
    // POST is accepted as well.
    let r = s
        .request(
            reqwest::Method::POST,
            &format!("/genesys/1/ors/scxml/session/{session}/event/resume_session"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn t136_fail_session() {
    let engine = FaultEngine::new();
    let s = TestServer::with_engine(engine.clone()).await;
    let (id, session) = paused_callback(&s).await;
    let r = s
        .request(
            reqwest::Method::POST,
            &format!("/genesys/1/ors/scxml/session/{session}/event/fail_session"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "COMPLETED");
    assert_eq!(str_field(&rec, "_callback_reason"), "NOT_AVAILABLE");
    assert!(!engine.has_session(&session), "the session exited");
    s.stop().await;
}

#[tokio::test]
async fn t137_unknown_session_and_event() {
    let s = TestServer::start().await;
    let r = s
        .get("/genesys/1/ors/scxml/session/NOSUCHSESSION/event/resume_session")
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_ne!(
        r.header("content-type").as_deref(),
        Some("application/json;charset=UTF-8"),
        "404 carries no envelope"
    );
    let (_, session) = paused_callback(&s).await;
    let r = s
        .get(&format!("/genesys/1/ors/scxml/session/{session}/event/foo"))
        .await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("event-name")));
    s.stop().await;
}
