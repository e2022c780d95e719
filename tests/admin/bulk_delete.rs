//! §10.4 items 78-86: R4 "Forget Me" bulk delete (spec 40 §6.4), with Basic auth and roles.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const R4: &str = "/genesys/1/admin/callback/ops/delete";
const NO_CALLBACKS: &str = "no callback(s) to delete";

/// The `success` and `errors` arrays of a 200 answer.
fn report(r: &Resp) -> (Vec<Value>, Vec<Value>) {
    let body = r.ok_object();
    assert_eq!(keys(&body), sorted(&["errors", "success"]), "{body:?}");
    let list = |k: &str| {
        body.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| panic!("{k} must be an array: {body:?}"))
    };
    (list("success"), list("errors"))
}

/// Sorted compact JSON texts, for order-independent comparison.
fn canon(items: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(Value::to_string).collect();
    v.sort();
    v
}

#[tokio::test]
async fn t78_credentials_required() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let body = json!({"_id": [id]});
    let r = s.post_json(R4, &body).await;
    assert_unauthorized(&r, "no Authorization");
    let r = s.admin_post_as(R4, ("admin", "wrong"), &body).await;
    assert_unauthorized(&r, "wrong password");
    let r = s.admin_post_as(R4, ("nobody", "secret"), &body).await;
    assert_unauthorized(&r, "unknown user");
    // The `Authentication: Basic=...` spelling of one source example is not honoured (§2.8).
    let r = s
        .send(
            s.client
                .post(s.url(R4))
                .header("Authentication", "Basic=YWRtaW46c2VjcmV0")
                .json(&body),
        )
        .await;
    assert_unauthorized(&r, "Authentication header");
    for bad in [
        "Basic",
        "Basic !!!notbase64!!!",
        "Basic YWRtaW4=",
        "Bearer YWRtaW46c2VjcmV0",
    ] {
        let r = s
            .send(s.client.post(s.url(R4)).header("Authorization", bad).json(&body))
            .await;
        assert_unauthorized(&r, bad);
    }
    // Nothing was deleted.
    s.record("cb-test", &id).await;
    s.stop().await;
}

#[tokio::test]
async fn t78b_read_only_role_may_not_delete() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s.admin_post_as(R4, READER, &json!({"_id": [id]})).await;
    assert_eq!(r.status, 403, "CallbackReadOnly on R4: {}", r.text());
    s.record("cb-test", &id).await;
    // A Supervisor may.
    let r = s.admin_post_as(R4, SUPERVISOR, &json!({"_id": [id]})).await;
    let (success, errors) = report(&r);
    assert_eq!(success, vec![json!({"_id": id})]);
    assert!(errors.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn t79_delete_scheduled_by_id() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s.admin_post(R4, &json!({"_id": [id]})).await;
    let (success, errors) = report(&r);
    assert_eq!(success, vec![json!({"_id": id})]);
    assert_eq!(errors, Vec::<Value>::new());
    let r = s.get_record("cb-test", &id).await;
    let body = assert_error(&r, 40030, &format!("Callback {id} cannot be found"));
    assert_eq!(prop(&body, "id").and_then(Value::as_str), Some(id.as_str()));
    s.stop().await;
}

/// Item 80's store: for 888 one SCHEDULED, one COMPLETED, one forced PROCESSING.
async fn seed_888(s: &TestServer) -> (String, String, String) {
    let scheduled = s.create_scheduled("cb-test", "888").await;
    let completed = s.create_forced("cb-other", "888", "COMPLETED").await;
    let processing = s.create_forced("cb-test", "888", "PROCESSING").await;
    (scheduled, completed, processing)
}

#[tokio::test]
async fn t80_delete_by_number_and_85_history_gone() {
    let s = TestServer::start().await;
    let (scheduled, completed, processing) = seed_888(&s).await;
    let r = s.admin_post(R4, &json!({"_customer_number": ["888"]})).await;
    let (success, errors) = report(&r);
    assert_eq!(
        canon(&success),
        canon(&[json!({"_id": scheduled}), json!({"_id": completed})])
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors[0].as_object().expect("error entry object");
    assert_eq!(e.get("code").and_then(Value::as_u64), Some(40020), "{e:?}");
    assert_eq!(
        e.get("phrase").and_then(Value::as_str),
        Some("INVALID_OPERATION"),
        "{e:?}"
    );
    assert_eq!(
        e.get("_id").and_then(Value::as_str),
        Some(processing.as_str()),
        "{e:?}"
    );
    assert_eq!(
        e.get("message").and_then(Value::as_str),
        Some(format!("Callback {processing} cannot be deleted - _callback_state=PROCESSING").as_str()),
        "{e:?}"
    );
    // #85: lookups by 888 return only the PROCESSING callback.
    assert_eq!(s.lookup("cb-test", "888").await, vec![processing.clone()]);
    assert!(s.lookup("cb-other", "888").await.is_empty());
    assert_eq!(s.lookup_all("888").await, vec![processing.clone()]);
    for (service, id) in [("cb-test", &scheduled), ("cb-other", &completed)] {
        assert_error(&s.get_record(service, id).await, 40030, "Callback ");
    }
    s.stop().await;
}

#[tokio::test]
async fn t85b_lookup_history_of_a_deleted_record_is_gone() {
    let s = TestServer::start().await;
    // The record was 4242 before it became 4343: lookups find it under both (is-or-was).
    let id = s.create_scheduled("cb-test", "4242").await;
    let r = s
        .put_json(
            &format!("/genesys/1/service/callback/cb-test/{id}"),
            &json!({"_customer_number": "4343"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.admin_post(R4, &json!({"_customer_number": ["4343"]})).await;
    let (success, _) = report(&r);
    assert_eq!(success, vec![json!({"_id": id})]);
    assert!(
        s.lookup("cb-test", "4242").await.is_empty(),
        "old number still finds it"
    );
    assert!(s.lookup("cb-test", "4343").await.is_empty());
    // A new callback for the old number is found alone.
    let fresh = s.create_scheduled("cb-test", "4242").await;
    assert_eq!(s.lookup("cb-test", "4242").await, vec![fresh]);
    s.stop().await;
}

#[tokio::test]
async fn t81_number_without_callbacks() {
    let s = TestServer::start().await;
    let r = s.admin_post(R4, &json!({"_customer_number": ["132456"]})).await;
    let (success, errors) = report(&r);
    assert_eq!(
        success,
        vec![json!({"reason": NO_CALLBACKS, "_customer_number": "132456"})]
    );
    assert!(errors.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn t82_no_properties() {
    let s = TestServer::start().await;
    for body in [json!({}), json!({"_id": [], "_customer_number": []})] {
        let r = s.admin_post(R4, &body).await;
        let e = assert_error(&r, 40010, "No lookup possible. No properties to look for.");
        assert_eq!(message(&e), "No lookup possible. No properties to look for.");
    }
    s.stop().await;
}

#[tokio::test]
async fn t83_not_an_array() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    for body in [
        json!({"_id": "abc"}),
        json!({"_id": id}),
        json!({"_customer_number": "5115"}),
        json!({"_id": [1, 2]}),
    ] {
        let r = s.admin_post(R4, &body).await;
        assert_error(&r, 40010, "");
    }
    // A malformed body and a non-object body are bad parameters too.
    let r = s
        .send(
            s.admin_request(Method::POST, R4, ADMIN)
                .header("content-type", "application/json")
                .body("{\"_id\": ["),
        )
        .await;
    assert_error(&r, 40010, "");
    let r = s.admin_post(R4, &json!([id])).await;
    assert_error(&r, 40010, "");
    s.record("cb-test", &id).await;
    s.stop().await;
}

#[tokio::test]
async fn t84_unknown_id() {
    let s = TestServer::start().await;
    let r = s.admin_post(R4, &json!({"_id": ["unknown"]})).await;
    let (success, errors) = report(&r);
    assert_eq!(success, vec![json!({"reason": NO_CALLBACKS, "_id": "unknown"})]);
    assert!(errors.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn t86_form_body_is_unsupported() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s
        .send(
            s.admin_request(Method::POST, R4, ADMIN)
                .form(&[("_id", id.as_str())]),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    s.record("cb-test", &id).await;
    s.stop().await;
}

#[tokio::test]
async fn x80_live_states_are_refused_and_each_record_reported_once() {
    let s = TestServer::start().await;
    let queued = s.create_immediate("cb-test", "990").await;
    let scheduled = s.create_scheduled("cb-test", "990").await;
    // The same record reached by ID twice and by number: reported once.
    let r = s
        .admin_post(
            R4,
            &json!({"_id": [scheduled, scheduled, queued], "_customer_number": ["990"]}),
        )
        .await;
    let (success, errors) = report(&r);
    assert_eq!(success, vec![json!({"_id": scheduled})]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].get("message").and_then(Value::as_str),
        Some(format!("Callback {queued} cannot be deleted - _callback_state=QUEUED").as_str())
    );
    assert_eq!(
        str_field(&s.record("cb-test", &queued).await, "_callback_state"),
        "QUEUED"
    );
    // Cancelled first (R2), it can then be deleted.
    let r = s
        .delete(&format!("/genesys/1/service/callback/cb-test/{queued}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (success, errors) = report(&s.admin_post(R4, &json!({"_id": [queued]})).await);
    assert_eq!(success, vec![json!({"_id": queued})]);
    assert!(errors.is_empty());
    s.stop().await;
}
