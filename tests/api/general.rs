//! §10.12 routing and response conventions (#138-#140), and bad input beyond the checklist.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::common::*;

const R1_TEST: &str = "/genesys/1/service/callback/cb-test";

#[tokio::test]
async fn t138_unknown_path_and_method() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            "/genesys/2/service/callback/cb-test",
            &json!({"_customer_number": "5115"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_ne!(
        r.header("content-type").as_deref(),
        Some("application/json;charset=UTF-8"),
        "404 carries no envelope"
    );
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s
        .request(
            reqwest::Method::PATCH,
            &format!("/genesys/1/service/callback/cb-test/{id}"),
        )
        .await;
    assert_eq!(r.status, 405, "{}", r.text());
    let allow = r.header("allow").expect("405 carries an Allow header");
    for method in ["GET", "PUT", "DELETE"] {
        assert!(allow.contains(method), "Allow {allow:?} lists {method}");
    }
    assert_ne!(
        r.header("content-type").as_deref(),
        Some("application/json;charset=UTF-8"),
        "405 carries no envelope"
    );
    // Paths outside /genesys are not served.
    let r = s
        .post_json(
            "/1/service/callback/cb-test",
            &json!({"_customer_number": "5115"}),
        )
        .await;
    assert_eq!(r.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn t139_json_headers_everywhere() {
    let s = TestServer::start().await;
    let scheduled = s.create_scheduled("cb-test", "5115").await;
    let immediate = s.create_immediate("cb-test", "5116").await;
    let checks = vec![
        s.post_json(
            R1_TEST,
            &json!({"_customer_number": "5117", "_desired_time": iso(t_plus_days(2))}),
        )
        .await,
        s.post_json(R1_TEST, &json!({})).await,
        s.post_json(
            "/genesys/1/service/callback/nosuch",
            &json!({"_customer_number": "1"}),
        )
        .await,
        s.get(&format!("/genesys/2/service/callback/cb-test/{scheduled}"))
            .await,
        s.get(&format!("/genesys/1/service/callback/cb-test/{scheduled}"))
            .await,
        s.get("/genesys/2/service/callback/cb-test/unknown-id").await,
        s.get("/genesys/1/service/callback/cb-test?_customer_number=5115")
            .await,
        s.get("/genesys/1/service/callback?_customer_number=5115").await,
        s.get("/genesys/1/service/callback/cb-test").await,
        s.put_json(
            &format!("/genesys/1/service/callback/cb-test/{scheduled}"),
            &json!({"usr_account": "X"}),
        )
        .await,
        s.put_json(
            "/genesys/1/service/callback/cb-test/unknown-id",
            &json!({"usr_account": "X"}),
        )
        .await,
        s.delete("/genesys/1/service/callback/cb-test/unknown-id").await,
        s.get(&format!("/genesys/1/service/{immediate}/check-queue-position"))
            .await,
        s.get("/genesys/1/service/unknown-id/check-queue-position").await,
        s.get("/genesys/1/ors/scxml/session/x/event/foo").await,
    ];
    for r in &checks {
        assert_json_headers(r);
    }
    // Non-JSON answers carry Cache-Control too (§2.9: all responses).
    let empty = s
        .delete(&format!("/genesys/1/service/callback/cb-test/{scheduled}"))
        .await;
    assert_eq!(empty.status, 200);
    assert_cache_control(&empty);
    s.stop().await;
}

#[tokio::test]
async fn t140_error_envelopes_complete() {
    let s = TestServer::start().await;
    let cases: Vec<(Resp, u64)> = vec![
        (s.post_json(R1_TEST, &json!({})).await, 40010),
        (
            s.post_json(R1_TEST, &json!({"_customer_number": "1", "_callback_state": "X"}))
                .await,
            40010,
        ),
        (
            s.post_json(R1_TEST, &json!({"_copy_from_id": "nope"})).await,
            40030,
        ),
        (
            s.post_json(
                "/genesys/1/service/callback/cb-weird",
                &json!({"_customer_number": "1"}),
            )
            .await,
            50020,
        ),
        (s.delete("/genesys/1/service/callback/cb-test/nope").await, 40030),
        (
            s.put_json("/genesys/1/service/callback/cb-test/nope", &json!({}))
                .await,
            40030,
        ),
        (s.get("/genesys/2/service/callback/cb-test/nope").await, 40030),
        (
            s.get("/genesys/1/service/callback/cb-test?usr_unknown=1").await,
            40010,
        ),
        (
            s.get("/genesys/1/service/callback/cb-test?_customer_number=1&_callback_state=X")
                .await,
            40020,
        ),
        (
            s.get("/genesys/1/service/callback/nosuch?_customer_number=1")
                .await,
            50020,
        ),
        (s.get("/genesys/1/service/nope/check-queue-position").await, 40030),
    ];
    for (r, code) in &cases {
        let body = assert_error(r, *code, "");
        for key in ["code", "phrase", "message", "exception", "properties"] {
            assert!(body.contains_key(key), "{key} in {body:?}");
        }
        assert!(str_field(&body, "exception").starts_with(EXCEPTION_PREFIX));
        for (k, v) in body.get("properties").and_then(Value::as_object).unwrap() {
            assert!(!v.is_null(), "no null padding in properties ({k}): {body:?}");
        }
    }
    s.stop().await;
}

// ------------------------------------------------------------------------- bad input

#[tokio::test]
async fn x01_oversized_body() {
    let s = TestServer::start().await;
    let big = "x".repeat(70 * 1024);
    let r = s
        .post_json(R1_TEST, &json!({"_customer_number": "5115", "usr_note": big}))
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = s
        .put_json(
            "/genesys/1/service/callback/cb-test/any",
            &json!({"usr_note": "y".repeat(70 * 1024)}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    // The server keeps serving.
    s.create_scheduled("cb-test", "5115").await;
    s.stop().await;
}

#[tokio::test]
async fn x02_json_top_level_array() {
    let s = TestServer::start().await;
    let r = s
        .post_raw(
            R1_TEST,
            Some("application/json"),
            br#"[{"_customer_number":"5115"}]"#.to_vec(),
        )
        .await;
    assert_error(&r, 40010, "");
    let r = s
        .post_raw(R1_TEST, Some("application/json"), b"\"5115\"".to_vec())
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

#[tokio::test]
async fn x03_invalid_utf8_in_form_body() {
    let s = TestServer::start().await;
    let mut body = b"_customer_number=5115&usr_name=".to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    let r = s
        .post_raw(R1_TEST, Some("application/x-www-form-urlencoded"), body)
        .await;
    // Must be answered cleanly: either accepted or refused as a bad parameter, never a 5xx.
    match r.status {
        200 => {
            let id = str_field(&r.ok_object(), "_id");
            assert_eq!(
                str_field(&s.record("cb-test", &id).await, "_customer_number"),
                "5115"
            );
        }
        _ => {
            assert_error(&r, 40010, "");
        }
    }
    // Percent-encoded invalid UTF-8 in a key.
    let r = s
        .post_raw(
            R1_TEST,
            Some("application/x-www-form-urlencoded"),
            b"_customer_number=5115&%FF%FE=1".to_vec(),
        )
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

#[tokio::test]
async fn x04_ten_thousand_keys() {
    let s = TestServer::start().await;
    let mut body = String::from("{\"_customer_number\":\"5115\"");
    for i in 0..10_000 {
        write!(body, ",\"k{i}\":{i}").unwrap();
    }
    body.push('}');
    let r = s
        .post_raw(R1_TEST, Some("application/json"), body.into_bytes())
        .await;
    // Answered (no hang, no panic): accepted, refused, or too large for the body limit.
    assert!(
        matches!(r.status, 200 | 400 | 413),
        "status {}: {}",
        r.status,
        r.text()
    );
    if r.status == 400 {
        assert_error(&r, 40010, "");
    }
    // A JSON object cannot hold 10,000 members within 64 KiB; a form body can: 10,000
    // distinct keys without values.
    let mut form = String::from("_customer_number=5115");
    for i in 0..10_000 {
        write!(form, "&k{i}").unwrap();
    }
    assert!(form.len() < 64 * 1024);
    let r = s
        .post_raw(
            R1_TEST,
            Some("application/x-www-form-urlencoded"),
            form.into_bytes(),
        )
        .await;
    assert!(matches!(r.status, 200 | 400), "status {}: {}", r.status, r.text());
    if r.status == 200 {
        let id = str_field(&r.ok_object(), "_id");
        assert_eq!(s.state("cb-test", &id).await, "QUEUED");
    } else {
        assert_error(&r, 40010, "");
    }
    // 5,000 lookup properties in a query string (no body limit applies; the client refuses
    // URIs beyond 64 KiB).
    let mut query = String::from("/genesys/1/service/callback/cb-test?_customer_number=5115");
    for i in 0..5_000 {
        write!(query, "&k{i}=1").unwrap();
    }
    let r = s.get(&query).await;
    assert_error(&r, 40010, "No such lookup possible for");
    s.stop().await;
}

#[tokio::test]
async fn x05_empty_body_without_content_type() {
    let s = TestServer::start().await;
    let r = s.post_raw(R1_TEST, None, Vec::new()).await;
    let body = assert_error(
        &r,
        40010,
        "Cannot create service, missing mandatory callback option",
    );
    assert_eq!(prop(&body, "option"), Some(&json!("_customer_number")));
    // Query-string parameters are merged into an empty body.
    let r = s
        .post_raw(&format!("{R1_TEST}?_customer_number=5115"), None, Vec::new())
        .await;
    let id = str_field(&r.ok_object(), "_id");
    assert_eq!(
        str_field(&s.record("cb-test", &id).await, "_customer_number"),
        "5115"
    );
    s.stop().await;
}

#[tokio::test]
async fn x06_percent_encoded_path_segments() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let direct = s.get(&format!("/genesys/2/service/callback/cb-test/{id}")).await;
    let encoded_service = s
        .get(&format!("/genesys/2/service/callback/cb%2Dtest/{id}"))
        .await;
    assert_eq!(encoded_service.status, 200, "{}", encoded_service.text());
    assert_eq!(encoded_service.body, direct.body);
    let encoded_id = id.replace('-', "%2D");
    let encoded = s
        .get(&format!("/genesys/2/service/callback/cb-test/{encoded_id}"))
        .await;
    assert_eq!(encoded.status, 200, "{}", encoded.text());
    assert_eq!(encoded.body, direct.body);
    // A decoded space is part of the service name.
    let r = s
        .post_json(
            "/genesys/1/service/callback/cb%20test",
            &json!({"_customer_number": "5115"}),
        )
        .await;
    let body = assert_error(&r, 50020, "Service undefined: cb test");
    assert_eq!(prop(&body, "service"), Some(&json!("cb test")));
    s.stop().await;
}

#[tokio::test]
async fn x07_trailing_slash_on_get_by_id() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let direct = s.get(&format!("/genesys/2/service/callback/cb-test/{id}")).await;
    let slash = s.get(&format!("/genesys/2/service/callback/cb-test/{id}/")).await;
    assert_eq!(slash.status, 200, "{}", slash.text());
    assert_json_headers(&slash);
    assert_eq!(slash.body, direct.body);
    // Trailing slash on R1 as well.
    let r = s
        .post_json(
            &format!("{R1_TEST}/"),
            &json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2))}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn x08_json_scalars_become_text_and_null_is_absent() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": 5115, "_desired_time": iso(t_plus_days(2)), "usr_account": true, "usr_customer_name": null}),
        )
        .await;
    let id = str_field(&r.ok_object(), "_id");
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_customer_number"), "5115");
    assert_eq!(str_field(&rec, "usr_account"), "true");
    assert!(
        !rec.contains_key("usr_customer_name"),
        "null means absent: {rec:?}"
    );
    // null for the mandatory number means it is missing.
    let r = s.post_json(R1_TEST, &json!({"_customer_number": null})).await;
    assert_error(
        &r,
        40010,
        "Cannot create service, missing mandatory callback option",
    );
    s.stop().await;
}

#[tokio::test]
async fn x09_body_wins_over_query_string() {
    let s = TestServer::start().await;
    let r = s
        .send(
            s.client
                .post(s.url(&format!("{R1_TEST}?_customer_number=1111&usr_account=Q")))
                .json(&json!({"_customer_number": "2222", "_desired_time": iso(t_plus_days(2))})),
        )
        .await;
    let id = str_field(&r.ok_object(), "_id");
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_customer_number"), "2222");
    assert_eq!(str_field(&rec, "usr_account"), "Q");
    // A key repeated inside one encoding keeps its last value.
    let r = s
        .post_raw(
            R1_TEST,
            Some("application/x-www-form-urlencoded"),
            b"_customer_number=1111&_customer_number=3333".to_vec(),
        )
        .await;
    let id = str_field(&r.ok_object(), "_id");
    assert_eq!(
        str_field(&s.record("cb-test", &id).await, "_customer_number"),
        "3333"
    );
    s.stop().await;
}

#[tokio::test]
async fn x10_system_keys_ignored_on_create() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_id": "mine", "_ors_session_id": "S1",
                    "_service_name": "cb-other", "_callback_reason": "AGENT_CONNECTED"}),
        )
        .await;
    let id = str_field(&r.ok_object(), "_id");
    assert_ne!(id, "mine");
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_service_name"), "cb-test");
    assert!(!rec.contains_key("_ors_session_id"), "{rec:?}");
    assert!(!rec.contains_key("_callback_reason"), "{rec:?}");
    s.stop().await;
}

#[tokio::test]
async fn x11_unsupported_content_type_on_update() {
    let s = TestServer::start().await;
    let id = s.create_scheduled("cb-test", "5115").await;
    let r = s
        .send(
            s.client
                .put(s.url(&format!("/genesys/1/service/callback/cb-test/{id}")))
                .header("content-type", "text/xml")
                .body("<a/>"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    // charset parameter allowed on a supported type.
    let r = s
        .send(
            s.client
                .post(s.url(R1_TEST))
                .header("content-type", "application/json; charset=UTF-8")
                .body(r#"{"_customer_number":"5115"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn x12_service_checked_before_body() {
    let s = TestServer::start().await;
    // §6.1 order: service validation (50020) comes before body decoding (415 / 40010).
    let r = s
        .post_raw(
            "/genesys/1/service/callback/nosuch",
            Some("text/plain"),
            b"x".to_vec(),
        )
        .await;
    assert_error(&r, 50020, "Service undefined: nosuch");
    let r = s
        .post_raw(
            "/genesys/1/service/callback/cb-builtin",
            Some("application/json"),
            b"{bad".to_vec(),
        )
        .await;
    assert_error(&r, 50020, "Service cb-builtin has option _type != ors");
    // Read routes apply §5.1 steps 1-4 too.
    let r = s.get("/genesys/2/service/callback/cb-builtin/some-id").await;
    assert_error(&r, 50020, "Service cb-builtin has option _type != ors");
    let r = s
        .get("/genesys/1/service/callback/cb-notcb?_customer_number=1")
        .await;
    assert_error(&r, 50020, "Service cb-notcb has option _service != callback");
    // ...but not step 5: reading a chat service without chat endpoint is allowed.
    let r = s
        .get("/genesys/1/service/callback/cb-chat?_customer_number=1")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn x13_update_mode_b_desired_time_and_rescheduling_states() {
    let engine = FaultEngine::new();
    let s = TestServer::with_engine(engine.clone()).await;
    let path = |id: &str| format!("/genesys/1/service/callback/cb-test/{id}");
    // Mode B: _desired_time must parse.
    let id = s.create_forced("cb-test", "5115", "QUEUED").await;
    let r = s.put_json(&path(&id), &json!({"_desired_time": "garbage"})).await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("_desired_time")));
    // Mode B: _desired_time stored as given (no office-hours/capacity checks).
    let t5 = t_plus_days(5);
    let r = s.put_json(&path(&id), &json!({"_desired_time": iso(t5)})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        str_field(&s.record("cb-test", &id).await, "_desired_time"),
        iso(t5)
    );
    // SCHEDULED on an in-session record ends the session.
    let live = s.create_immediate("cb-test", "5116").await;
    let session = str_field(&s.record("cb-test", &live).await, "_ors_session_id");
    let r = s
        .put_json(
            &path(&live),
            &json!({"_callback_state": "SCHEDULED", "_desired_time": iso(t_plus_days(2))}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = s.record("cb-test", &live).await;
    assert_eq!(str_field(&rec, "_callback_state"), "SCHEDULED");
    assert!(!rec.contains_key("_ors_session_id"), "{rec:?}");
    assert!(!engine.has_session(&session), "the session ended");
    // Reschedule of a COMPLETED record: 40020 "is no longer scheduled" (§4.3 [D]).
    let done = s.create_forced("cb-test", "5117", "COMPLETED").await;
    let r = s
        .put_json(&path(&done), &json!({"_new_desired_time": iso(t_plus_days(3))}))
        .await;
    assert_error(
        &r,
        40020,
        &format!("Callback {done} is no longer scheduled. State=COMPLETED"),
    );
    s.stop().await;
}

#[tokio::test]
async fn x14_cancel_in_session_states() {
    let engine = FaultEngine::new();
    let s = TestServer::with_engine(engine.clone()).await;
    // PROCESSING and PAUSED records with a live session cancel through the session (§9 #13).
    for state in ["PROCESSING", "PAUSED", "ROUTING"] {
        let id = s.create_immediate("cb-test", "5115").await;
        let session = str_field(&s.record("cb-test", &id).await, "_ors_session_id");
        let path = format!("/genesys/1/service/callback/cb-test/{id}");
        let r = s.put_json(&path, &json!({"_callback_state": state})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(s.state("cb-test", &id).await, state);
        let r = s.delete(&path).await;
        assert_eq!(r.status, 200, "{state}: {}", r.text());
        let rec = s.record("cb-test", &id).await;
        assert_eq!(str_field(&rec, "_callback_state"), "COMPLETED");
        assert_eq!(str_field(&rec, "_callback_reason"), "CANCELLED");
        assert!(!engine.has_session(&session), "{state}: the session ended");
    }
    s.stop().await;
}
