//! §10.1 Start / schedule (R1).

use serde_json::{Value, json};

use crate::common::*;

const R1_TEST: &str = "/genesys/1/service/callback/cb-test";

#[tokio::test]
async fn t01_json_start_scheduled() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2))}),
        )
        .await;
    let body = r.ok_object();
    let id = body.get("_id").and_then(Value::as_str).expect("_id string");
    assert!(!id.is_empty());
    assert!(
        !body.contains_key("Action"),
        "a scheduled callback has no dialog: {body:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn t02_get_scheduled_record() {
    let s = TestServer::start().await;
    let t = t_plus_days(2);
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": iso(t)}),
        )
        .await;
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "SCHEDULED");
    assert_eq!(str_field(&rec, "_desired_time"), iso(t));
    assert_eq!(str_field(&rec, "_service_name"), "cb-test");
    assert_eq!(str_field(&rec, "_customer_number"), "5115");
    assert_eq!(str_field(&rec, "_id"), id);
    assert_eq!(
        str_field(&rec, "_url"),
        format!("/genesys/1/service/callback/cb-test/{id}")
    );
    s.stop().await;
}

#[tokio::test]
async fn t03_urlencoded_start_immediate() {
    let s = TestServer::start().await;
    let r = s.post_form(R1_TEST, &[("_customer_number", "5116")]).await;
    let id = str_field(&r.ok_object(), "_id");
    assert_eq!(s.state("cb-test", &id).await, "QUEUED");
    s.stop().await;
}

#[tokio::test]
async fn t04_multipart_start() {
    let s = TestServer::start().await;
    let form = reqwest::multipart::Form::new()
        .text("_customer_number", "5117")
        .text("usr_customer_name", "Bob Markel");
    let r = s.send(s.client.post(s.url(R1_TEST)).multipart(form)).await;
    let id = str_field(&r.ok_object(), "_id");
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "usr_customer_name"), "Bob Markel");
    assert_eq!(str_field(&rec, "_customer_number"), "5117");
    assert!(!rec.contains_key("usr_file"), "{rec:?}");
    s.stop().await;
}

#[tokio::test]
async fn t05_desired_within_buffer_is_immediate() {
    let s = TestServer::start().await;
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5118", "_desired_time": iso(now_ms() + 4 * MINUTE_MS)}),
        )
        .await;
    assert_eq!(s.state("cb-test", &id).await, "QUEUED");
    s.stop().await;
}

#[tokio::test]
async fn t06_desired_beyond_buffer_is_scheduled() {
    let s = TestServer::start().await;
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5119", "_desired_time": iso(now_ms() + 6 * MINUTE_MS)}),
        )
        .await;
    assert_eq!(s.state("cb-test", &id).await, "SCHEDULED");
    s.stop().await;
}

#[tokio::test]
async fn t09_missing_customer_number() {
    let s = TestServer::start().await;
    let r = s.post_json(R1_TEST, &json!({"usr_customer_name": "Bob"})).await;
    let body = assert_error(
        &r,
        40010,
        "Cannot create service, missing mandatory callback option",
    );
    assert_eq!(prop(&body, "option"), Some(&json!("_customer_number")));
    s.stop().await;
}

#[tokio::test]
async fn t10_empty_customer_number() {
    let s = TestServer::start().await;
    let r = s.post_json(R1_TEST, &json!({"_customer_number": ""})).await;
    assert_error(
        &r,
        40010,
        "Cannot create service, empty mandatory callback option",
    );
    s.stop().await;
}

#[tokio::test]
async fn t11_mandatory_lookup_key_replaces_number() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            "/genesys/1/service/callback/cb-mand",
            &json!({"usr_account": "A1"}),
        )
        .await;
    let id = str_field(&r.ok_object(), "_id");
    let rec = s.record("cb-mand", &id).await;
    assert_eq!(str_field(&rec, "usr_account"), "A1");
    s.stop().await;
}

#[tokio::test]
async fn t12_mandatory_lookup_keys_missing() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            "/genesys/1/service/callback/cb-mand",
            &json!({"usr_customer_name": "Bob"}),
        )
        .await;
    let body = assert_error(&r, 40010, "Callback ");
    assert!(
        message(&body).contains("does not contain the mandatory customer lookup keys"),
        "{body:?}"
    );
    assert!(prop(&body, "keys").is_some(), "properties.keys: {body:?}");
    s.stop().await;
}

#[tokio::test]
async fn t13_key_with_dot_rejected() {
    let s = TestServer::start().await;
    let r = s
        .post_json(R1_TEST, &json!({"_customer_number": "5115", "foo.bar": "x"}))
        .await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("foo.bar")));
    s.stop().await;
}

#[tokio::test]
async fn t14_key_with_hyphen_rejected() {
    let s = TestServer::start().await;
    let r = s
        .post_json(R1_TEST, &json!({"_customer_number": "5115", "foo-bar": "x"}))
        .await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("foo-bar")));
    s.stop().await;
}

#[tokio::test]
async fn t15_unparseable_desired_time() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": "5115", "_desired_time": "tomorrow"}),
        )
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

#[tokio::test]
async fn t16_desired_time_too_far_in_past() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": "5115", "_desired_time": iso(now_ms() - 2 * DAY_MS)}),
        )
        .await;
    let body = assert_error(&r, 40010, "Callback ");
    assert!(
        message(&body).contains("contains _desired_time property in the past"),
        "{body:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn t17_desired_time_too_far_in_future() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": "5115", "_desired_time": iso(now_ms() + 400 * DAY_MS)}),
        )
        .await;
    let body = assert_error(
        &r,
        40010,
        "Callback request contains _desired_time property too far in future",
    );
    // desired - now in whole seconds: 400 days, minus the request's time in flight.
    let text = message(&body);
    let offset: i64 = text
        .split("(-86400s < ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {text}"));
    assert!((400 * 86_400 - 60..=400 * 86_400).contains(&offset), "{body:?}");
    assert!(message(&body).contains("s < 2592000s) - epoch "), "{body:?}");
    s.stop().await;
}

#[tokio::test]
async fn t18_desired_time_with_offset_is_converted_to_utc() {
    let s = TestServer::start().await;
    let t = t_plus_days(2);
    // The same instant written in +02:00: local wall time is two hours later.
    let local = iso(t + 2 * 3_600_000);
    let with_offset = format!("{}+02:00", local.strip_suffix('Z').unwrap());
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": with_offset}),
        )
        .await;
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_desired_time"), iso(t));
    assert!(str_field(&rec, "_desired_time").ends_with(".000Z"));
    // Without milliseconds, and without zone designator (UTC), are accepted too (§2.6 [D]).
    let t3 = t_plus_days(3);
    let no_millis = iso(t3).replace(".000Z", "Z");
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": no_millis}),
        )
        .await;
    assert_eq!(
        str_field(&s.record("cb-test", &id).await, "_desired_time"),
        iso(t3)
    );
    let no_zone = iso(t3).replace(".000Z", "");
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": no_zone}),
        )
        .await;
    assert_eq!(
        str_field(&s.record("cb-test", &id).await, "_desired_time"),
        iso(t3)
    );
    s.stop().await;
}

#[tokio::test]
async fn t19_unknown_service() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            "/genesys/1/service/callback/nosuch",
            &json!({"_customer_number": "5115"}),
        )
        .await;
    let body = assert_error(&r, 50020, "Service undefined: nosuch");
    assert_eq!(message(&body), "Service undefined: nosuch");
    assert_eq!(prop(&body, "service"), Some(&json!("nosuch")));
    s.stop().await;
}

#[tokio::test]
async fn t20_service_type_and_service_checks() {
    let s = TestServer::start().await;
    for (service, text) in [
        ("cb-builtin", "Service cb-builtin has option _type != ors"),
        ("cb-weird", "Service cb-weird has unknown value for option _type"),
        ("cb-notcb", "Service cb-notcb has option _service != callback"),
    ] {
        let r = s
            .post_json(
                &format!("/genesys/1/service/callback/{service}"),
                &json!({"_customer_number": "5115"}),
            )
            .await;
        let body = assert_error(&r, 50020, text);
        assert_eq!(message(&body), text);
        assert_eq!(prop(&body, "service"), Some(&json!(service)));
    }
    s.stop().await;
}

#[tokio::test]
async fn t21_unparseable_queue_time_stat() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            "/genesys/1/service/callback/cb-badstat",
            &json!({"_customer_number": "5115"}),
        )
        .await;
    let body = assert_error(&r, 50020, "Unable to parse option: _request_queue_time_stat=");
    assert_eq!(
        message(&body),
        "Unable to parse option: _request_queue_time_stat=garbage"
    );
    s.stop().await;
}

#[tokio::test]
async fn t22_premium_check_without_default_country() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            "/genesys/1/service/callback/cb-prem",
            &json!({"_customer_number": "5115"}),
        )
        .await;
    let body = assert_error(
        &r,
        50020,
        "Service option cb-prem / _default_country is not configured.",
    );
    assert!(
        message(&body).contains("_default_country is not configured"),
        "{body:?}"
    );
    assert!(
        message(&body).contains("_disallow_premium_phone_numbers"),
        "{body:?}"
    );
    assert_eq!(prop(&body, "service"), Some(&json!("cb-prem")));
    s.stop().await;
}

#[tokio::test]
async fn t23_chat_service_without_endpoint() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            "/genesys/1/service/callback/cb-chat",
            &json!({"_customer_number": "5115"}),
        )
        .await;
    let body = assert_error(&r, 50020, "Missing default_chat_endpoint option in chat section");
    assert_eq!(prop(&body, "service"), Some(&json!("cb-chat")));
    s.stop().await;
}

#[tokio::test]
async fn t34_overwritable_option_replaced() {
    let s = TestServer::start().await;
    let id = s
        .create("cb-ovr", json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_target": "Other@SS.GA"}))
        .await;
    let rec = s.record("cb-ovr", &id).await;
    assert_eq!(str_field(&rec, "_target"), "Other@SS.GA");
    assert_eq!(str_field(&rec, "_ors"), "http://ors-a:4421");
    s.stop().await;
}

#[tokio::test]
async fn t35_configured_option_not_overwritable() {
    let s = TestServer::start().await;
    let id = s
        .create("cb-ovr", json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_wait_for_agent": "true"}))
        .await;
    let rec = s.record("cb-ovr", &id).await;
    assert_eq!(str_field(&rec, "_wait_for_agent"), "false");
    assert_eq!(str_field(&rec, "_target"), "Default@SS.GA");
    s.stop().await;
}

#[tokio::test]
async fn t36_unconfigured_option_taken_from_request() {
    let s = TestServer::start().await;
    let id = s
        .create("cb-test", json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_urs_virtual_queue": "VQ2"}))
        .await;
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_urs_virtual_queue"), "VQ2");
    s.stop().await;
}

#[tokio::test]
async fn t37_token_substituted() {
    let s = TestServer::start().await;
    let r = s
        .post_form(
            "/genesys/1/service/callback/cb-token",
            &[("_customer_number", "01822256"), ("my_token", "Stat_Server1")],
        )
        .await;
    let id = str_field(&r.ok_object(), "_id");
    let rec = s.record("cb-token", &id).await;
    assert_eq!(str_field(&rec, "_target"), "Billing@Stat_Server1.GA");
    s.stop().await;
}

#[tokio::test]
async fn t38_token_without_value_stays_literal() {
    let s = TestServer::start().await;
    let r = s
        .post_form(
            "/genesys/1/service/callback/cb-token",
            &[("_customer_number", "01822256")],
        )
        .await;
    let id = str_field(&r.ok_object(), "_id");
    let rec = s.record("cb-token", &id).await;
    assert_eq!(str_field(&rec, "_target"), "Billing@$my_token$.GA");
    s.stop().await;
}

#[tokio::test]
async fn t39_copy_from_completed() {
    let s = TestServer::start().await;
    let src = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_callback_state": "COMPLETED", "usr_account": "A9"}),
        )
        .await;
    let id = s.create("cb-test", json!({"_copy_from_id": src})).await;
    assert_ne!(id, src);
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "usr_account"), "A9");
    assert_eq!(str_field(&rec, "_customer_number"), "5115");
    assert_eq!(str_field(&rec, "_callback_state"), "QUEUED");
    s.stop().await;
}

#[tokio::test]
async fn t40_copy_from_with_override() {
    let s = TestServer::start().await;
    let src = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_callback_state": "COMPLETED", "usr_account": "A9"}),
        )
        .await;
    let before = s.record("cb-test", &src).await;
    let id = s
        .create("cb-test", json!({"_copy_from_id": src, "usr_account": "B1"}))
        .await;
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "usr_account"), "B1");
    let after = s.record("cb-test", &src).await;
    assert_eq!(before, after, "the source record is unchanged");
    assert_eq!(str_field(&after, "usr_account"), "A9");
    s.stop().await;
}

#[tokio::test]
async fn t41_copy_from_not_completed() {
    let s = TestServer::start().await;
    let src = s.create_scheduled("cb-test", "5115").await;
    let r = s.post_json(R1_TEST, &json!({"_copy_from_id": src})).await;
    let body = assert_error(&r, 40020, "Request cannot be processed because callback");
    assert!(
        message(&body).ends_with("Check parameter _copy_from_id"),
        "{body:?}"
    );
    assert_eq!(prop(&body, "id"), Some(&json!(src)));
    assert_eq!(prop(&body, "state"), Some(&json!("SCHEDULED")));
    assert_eq!(prop(&body, "service"), Some(&json!("cb-test")));
    s.stop().await;
}

#[tokio::test]
async fn t42_copy_from_unknown() {
    let s = TestServer::start().await;
    let r = s
        .post_json(R1_TEST, &json!({"_copy_from_id": "does-not-exist"}))
        .await;
    let body = assert_error(&r, 40030, "Callback does-not-exist to copy from cannot be found");
    assert_eq!(
        message(&body),
        "Callback does-not-exist to copy from cannot be found"
    );
    assert_eq!(prop(&body, "id"), Some(&json!("does-not-exist")));
    s.stop().await;
}

#[tokio::test]
async fn t43_forced_processing() {
    let s = TestServer::start().await;
    let id = s.create_forced("cb-test", "5115", "PROCESSING").await;
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "PROCESSING");
    assert!(
        !rec.contains_key("_ors_session_id"),
        "forced states start no session: {rec:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn t44_bad_forced_state() {
    let s = TestServer::start().await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": "5115", "_callback_state": "FOO"}),
        )
        .await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("_callback_state")));
    s.stop().await;
}

#[tokio::test]
async fn t45_unsupported_content_type() {
    let s = TestServer::start().await;
    let r = s
        .post_raw(R1_TEST, Some("text/plain"), b"_customer_number=5115".to_vec())
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    assert_ne!(
        r.header("content-type").as_deref(),
        Some("application/json;charset=UTF-8"),
        "415 carries no envelope"
    );
    s.stop().await;
}

#[tokio::test]
async fn t46_malformed_json() {
    let s = TestServer::start().await;
    let r = s
        .post_raw(
            R1_TEST,
            Some("application/json"),
            br#"{"_customer_number": "5115""#.to_vec(),
        )
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

#[tokio::test]
async fn t47_json_array_value_rejected() {
    let s = TestServer::start().await;
    let r = s
        .post_json(R1_TEST, &json!({"_customer_number": "5115", "usr_list": [1, 2]}))
        .await;
    let body = assert_error(&r, 40010, "");
    assert_eq!(prop(&body, "option"), Some(&json!("usr_list")));
    s.stop().await;
}

#[tokio::test]
async fn t48_immediate_returns_dialog() {
    let s = TestServer::start().await;
    let r = s.post_json(R1_TEST, &json!({"_customer_number": "5115"})).await;
    let body = r.ok_object();
    for key in ["_id", "ID", "Action", "Text", "OkTitle"] {
        assert!(
            body.get(key).is_some_and(Value::is_string),
            "{key} must be a string: {body:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn t49_submission_retries_exhausted() {
    let engine = FaultEngine::new();
    engine.set_start_fault(StartFault::Unavailable);
    let s = TestServer::with_engine(engine.clone()).await;
    let r = s
        .post_json(
            R1_TEST,
            &json!({"_customer_number": "5115", "_max_ors_submit_attempts": "2"}),
        )
        .await;
    let body = assert_error(&r, 50006, "Callback ");
    assert!(
        message(&body).contains("reached maximum attempts to submit to ORS reached (2)"),
        "{body:?}"
    );
    assert_eq!(prop(&body, "max-attempts"), Some(&json!(2)));
    let id = prop(&body, "id")
        .and_then(Value::as_str)
        .expect("properties.id")
        .to_string();
    assert_eq!(engine.starts(), 2, "two submission attempts");
    // [D] §5.9: the record is kept as COMPLETED / SUBMIT_ERROR.
    let rec = s.record("cb-test", &id).await;
    assert_eq!(str_field(&rec, "_callback_state"), "COMPLETED");
    assert_eq!(str_field(&rec, "_callback_reason"), "SUBMIT_ERROR");
    s.stop().await;
}

#[tokio::test]
async fn t50_engine_garbage_answer() {
    let engine = FaultEngine::new();
    engine.set_start_fault(StartFault::InvalidResponse);
    let s = TestServer::with_engine(engine.clone()).await;
    let r = s.post_json(R1_TEST, &json!({"_customer_number": "5115"})).await;
    let body = assert_error(&r, 50030, "Invalid ORS response");
    assert_eq!(message(&body), "Invalid ORS response");
    s.stop().await;
}

#[tokio::test]
async fn t52_internal_panic_is_unknown_error() {
    let engine = FaultEngine::new();
    engine.set_start_fault(StartFault::Panic);
    let s = TestServer::with_engine(engine.clone()).await;
    let r = s.post_json(R1_TEST, &json!({"_customer_number": "5115"})).await;
    let body = assert_error(&r, 50050, "Error processing callback");
    assert!(prop(&body, "message").is_some(), "properties.message: {body:?}");
    assert!(
        message(&body).ends_with(' '),
        "the 50050 template ends with a space: {body:?}"
    );
    // The server keeps serving after the panic.
    let id = s.create_scheduled("cb-test", "5115").await;
    assert_eq!(s.state("cb-test", &id).await, "SCHEDULED");
    s.stop().await;
}

#[tokio::test]
async fn x_target_that_routing_cannot_read_is_rejected() {
    let s = TestServer::start().await;
    let sixteen: Vec<_> = (0..16)
        .map(|i| json!({"target": format!("G{i}@SS.GA")}))
        .collect();
    let bad_targets = [
        ("?:Billing>", "skill expression"),
        (
            "[{\"target\": \"Billing@SS.GA\", \"timeout\": -5}]",
            "negative timeout",
        ),
        ("[{\"target\": \"Billing@SS.GA\"", "malformed JSON"),
        ("Billing@SS.XX", "unknown target type"),
    ];
    for (target, what) in bad_targets {
        let r = s
            .post_json(
                "/genesys/1/service/callback/cb-ovr",
                &json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_target": target}),
            )
            .await;
        let body = assert_error(&r, 40010, "Invalid value for option _target: ");
        assert_eq!(prop(&body, "option"), Some(&json!("_target")), "{what}");
    }
    let r = s
        .post_json(
            "/genesys/1/service/callback/cb-ovr",
            &json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)),
                    "_target": serde_json::to_string(&sixteen).expect("JSON")}),
        )
        .await;
    let body = assert_error(&r, 40010, "Invalid value for option _target: ");
    assert!(message(&body).contains("at most 15"), "{body:?}");
    // Nothing was stored by the refused requests.
    let r = s
        .get("/genesys/1/service/callback/cb-ovr?_customer_number=5115")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(ids_of(&r.json()).is_empty());
    // A good JSON list is accepted.
    let good = json!([{"target": "Billing@SS.GA", "timeout": 30}, {"target": "?:Billing>5 & English"}]);
    s.create(
        "cb-ovr",
        json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "_target": good.to_string()}),
    )
    .await;
    s.stop().await;
}
