//! §10.2 Cancel (R2).

use serde_json::json;

use crate::common::*;

fn path(service: &str, id: &str) -> String {
    format!("/genesys/1/service/callback/{service}/{id}")
}

async fn assert_cancelled(s: &TestServer, service: &str, id: &str) {
    let rec = s.record(service, id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "COMPLETED", "{rec:?}");
    assert_eq!(str_field(&rec, "_callback_reason"), "CANCELLED", "{rec:?}");
}

#[tokio::test]
async fn t53_cancel_scheduled() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s.delete(&path("cb-test", &id)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.body.is_empty(),
        "DELETE answers an empty body, got {:?}",
        r.text()
    );
    assert_cache_control(&r);
    assert_cancelled(&s, "cb-test", &id).await;
    s.stop().await;
}

#[tokio::test]
async fn t54_cancel_twice() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    assert_eq!(s.delete(&path("cb-test", &id)).await.status, 200);
    let r = s.delete(&path("cb-test", &id)).await;
    let body = assert_error(
        &r,
        40020,
        &format!("Callback {id} cannot be cancelled or completed"),
    );
    assert!(message(&body).ends_with("_callback_state=COMPLETED"), "{body:?}");
    assert_eq!(prop(&body, "id"), Some(&json!(id)));
    assert_eq!(prop(&body, "state"), Some(&json!("COMPLETED")));
    s.stop().await;
}

#[tokio::test]
async fn t55_cancel_unknown() {
    let s = TestServer::start().await;
    let id = "7-00000000-0000-4000-8000-000000000000";
    let r = s.delete(&path("cb-test", id)).await;
    let body = assert_error(&r, 40030, &format!("Callback {id} cannot be found"));
    assert_eq!(message(&body), format!("Callback {id} cannot be found"));
    assert_eq!(prop(&body, "id"), Some(&json!(id)));
    s.stop().await;
}

#[tokio::test]
async fn t56_cancel_queued_without_session() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "QUEUED").await;
    let r = s.delete(&path("cb-test", &id)).await;
    let body = assert_error(
        &r,
        40020,
        &format!("Callback {id} cannot be cancelled - No ORS session found."),
    );
    assert!(message(&body).contains("No ORS session found"), "{body:?}");
    assert_eq!(
        s.state("cb-test", &id).await,
        "QUEUED",
        "a refused cancel changes nothing"
    );
    s.stop().await;
}

#[tokio::test]
async fn t57_cancel_queued_without_session_discarding_failure() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "QUEUED").await;
    let r = s
        .delete(&format!("{}?discard_ors_failure=true", path("cb-test", &id)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_cancelled(&s, "cb-test", &id).await;
    s.stop().await;
}

#[tokio::test]
async fn t58_cancel_live_session() {
    let engine = FaultEngine::new();
    let s = TestServer::with_engine(engine.clone()).await;
    let id = s.create_immediate("cb-test", "5115").await;
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "QUEUED");
    let session = str_field(&rec, "_ors_session_id");
    assert!(
        engine.has_session(&session),
        "the immediate callback has a live session"
    );
    let r = s.delete(&path("cb-test", &id)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    assert!(!engine.has_session(&session), "the session ended");
    assert_cancelled(&s, "cb-test", &id).await;
    let rec = s.record("cb-test", &id).await;
    assert!(
        !rec.contains_key("_ors_session_id"),
        "no session id after cancel: {rec:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn t59_engine_refuses_cancel() {
    let engine = FaultEngine::new();
    let s = TestServer::with_engine(engine.clone()).await;
    let id = s.create_immediate("cb-test", "5115").await;
    engine.set_refuse_cancel(true);
    let r = s.delete(&path("cb-test", &id)).await;
    let body = assert_error(
        &r,
        40020,
        &format!("Callback {id} cannot be cancelled - unable to process ORS cancel request : "),
    );
    assert!(
        message(&body).contains("unable to process ORS cancel request"),
        "{body:?}"
    );
    assert!(
        prop(&body, "message").is_some(),
        "properties.message carries the engine text: {body:?}"
    );
    assert_eq!(s.state("cb-test", &id).await, "QUEUED");
    let r = s
        .delete(&format!("{}?discard_ors_failure=true", path("cb-test", &id)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_cancelled(&s, "cb-test", &id).await;
    s.stop().await;
}

#[tokio::test]
async fn t60_bad_discard_flag() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s
        .delete(&format!("{}?discard_ors_failure=maybe", path("cb-test", &id)))
        .await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("discard_ors_failure")));
    assert_eq!(s.state("cb-test", &id).await, "SCHEDULED");
    // Case-insensitive true is accepted.
    let r = s
        .delete(&format!("{}?discard_ors_failure=TRUE", path("cb-test", &id)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn t61_cancel_through_wrong_service() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-other", "5115").await;
    let r = s.delete(&path("cb-test", &id)).await;
    assert_error(&r, 40030, &format!("Callback {id} cannot be found"));
    assert_eq!(s.state("cb-other", &id).await, "SCHEDULED");
    s.stop().await;
}

#[tokio::test]
async fn t62_cancel_on_unknown_service() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s.delete(&path("nosuch", &id)).await;
    let body = assert_error(&r, 50020, "Service undefined: nosuch");
    assert_eq!(prop(&body, "service"), Some(&json!("nosuch")));
    s.stop().await;
}
