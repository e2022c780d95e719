//! §10.11 items 130-134: R13 cancelled-callbacks CSV report (spec 40 §6.12).

use reqwest::Method;
use serde_json::json;

use crate::common::*;

const R13: &str = "/genesys/1/admin/callback/reportcancelled";
const DEFAULT_HEADER: &str =
    "_desired_time,_service_name,_customer_number,_target,_vq_for_outbound_calls,_urs_virtual_queue";

fn assert_csv(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/csv;charset=UTF-8")
    );
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some("attachment; filename=\"report.csv\"")
    );
    assert_cache_control(r);
    let text = r.text();
    assert!(text.ends_with('\n'), "lines end with \\n: {text:?}");
    assert!(!text.contains('\r'), "no CR: {text:?}");
    text.lines().map(str::to_string).collect()
}

/// A SCHEDULED callback at `desired` on cb-test, cancelled through R2.
async fn cancelled(s: &TestServer, number: &str, desired: i64) -> String {
    let id = s.create_at("cb-test", number, desired).await;
    let r = s
        .delete(&format!("/genesys/1/service/callback/cb-test/{id}"))
        .await;
    assert_eq!(r.status, 200, "cancel: {}", r.text());
    id
}

#[tokio::test]
async fn t130_credentials_required() {
    let s = TestServer::start().await;
    let body = json!({"callback_reason": "CANCELLED"});
    assert_unauthorized(&s.post_json(R13, &body).await, "R13 without credentials");
    let r = s.admin_post_as(R13, ("admin", "nope"), &body).await;
    assert_unauthorized(&r, "R13 wrong password");
    // Read-only users may export.
    let r = s.admin_post_as(R13, READER, &body).await;
    assert_eq!(r.status, 204, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn t131_reason_missing() {
    let s = TestServer::start().await;
    for body in [
        json!({}),
        json!({"callback_reason": ""}),
        json!({"exported_properties": ["_id"]}),
    ] {
        let r = s.admin_post(R13, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.text(), "Callback reason is missing.", "{body}");
    }
    s.stop().await;
}

#[tokio::test]
async fn t132_nothing_selected() {
    let s = TestServer::start().await;
    // A cancelled callback exists, but with another reason.
    cancelled(&s, "5115", t_plus_days(2)).await;
    let r = s
        .admin_post(R13, &json!({"callback_reason": "CANCELLED_BY_ADMIN"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty(), "204 has no body: {:?}", r.text());
    assert_cache_control(&r);
    s.stop().await;
}

#[tokio::test]
async fn t133_default_columns() {
    let s = TestServer::start().await;
    let desired = t_plus_days(2);
    cancelled(&s, "5115", desired).await;
    // Not selected: live, scheduled, completed with another reason.
    s.create_scheduled("cb-test", "6000").await;
    s.create_immediate("cb-test", "6001").await;
    s.create_forced("cb-test", "6002", "COMPLETED").await;
    let r = s
        .admin_post(
            R13,
            &json!({"callback_reason": "CANCELLED", "exported_properties": []}),
        )
        .await;
    let lines = assert_csv(&r);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], DEFAULT_HEADER);
    assert_eq!(lines[1], format!("{},cb-test,5115,,,", iso(desired)));
    // Missing exported_properties: the defaults too.
    let lines = assert_csv(&s.admin_post(R13, &json!({"callback_reason": "CANCELLED"})).await);
    assert_eq!(lines[0], DEFAULT_HEADER);
    s.stop().await;
}

#[tokio::test]
async fn t134_exported_properties() {
    let s = TestServer::start().await;
    let id = cancelled(&s, "5115", t_plus_days(2)).await;
    let r = s
        .admin_post(
            R13,
            &json!({"callback_reason": "CANCELLED", "exported_properties": ["_id,_customer_number"]}),
        )
        .await;
    let lines = assert_csv(&r);
    assert_eq!(
        lines,
        vec!["_id,_customer_number".to_string(), format!("{id},5115")]
    );
    // Split, trimmed, duplicates removed, order kept.
    let r = s
        .admin_post(
            R13,
            &json!({"callback_reason": "CANCELLED", "exported_properties": [" _customer_number , _id", "_customer_number"]}),
        )
        .await;
    let lines = assert_csv(&r);
    assert_eq!(
        lines,
        vec!["_customer_number,_id".to_string(), format!("5115,{id}")]
    );
    s.stop().await;
}

#[tokio::test]
async fn x130_rows_newest_desired_time_first_and_window() {
    let s = TestServer::start().await;
    let now = now_ms();
    let early = cancelled(&s, "1", bucket(now + DAY_MS)).await;
    let late = cancelled(&s, "2", bucket(now + 3 * DAY_MS)).await;
    // Beyond 15 days ahead: outside the export window.
    cancelled(&s, "3", bucket(now + 20 * DAY_MS)).await;
    let r = s
        .admin_post(
            R13,
            &json!({"callback_reason": "CANCELLED", "exported_properties": ["_id"]}),
        )
        .await;
    let lines = assert_csv(&r);
    assert_eq!(lines, vec!["_id".to_string(), late, early]);
    s.stop().await;
}

#[tokio::test]
async fn x131_csv_quoting() {
    let s = TestServer::start().await;
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(2)), "usr_note": "a, \"b\""}),
        )
        .await;
    let r = s
        .delete(&format!("/genesys/1/service/callback/cb-test/{id}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .admin_post(
            R13,
            &json!({"callback_reason": "CANCELLED", "exported_properties": ["_customer_number,usr_note"]}),
        )
        .await;
    let lines = assert_csv(&r);
    assert_eq!(lines[1], "5115,\"a, \"\"b\"\"\"");
    s.stop().await;
}

#[tokio::test]
async fn x132_form_body_and_bad_columns() {
    let s = TestServer::start().await;
    let r = s
        .send(
            s.admin_request(Method::POST, R13, ADMIN)
                .form(&[("callback_reason", "CANCELLED")]),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    let r = s
        .admin_post(
            R13,
            &json!({"callback_reason": "CANCELLED", "exported_properties": "_id"}),
        )
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

#[tokio::test]
async fn x133_cancelled_by_admin() {
    let s = TestServer::start().await;
    let id = s
        .create(
            "cb-other",
            json!({"_customer_number": "5115", "_desired_time": iso(t_plus_days(1)),
                   "_callback_state": "COMPLETED", "_callback_reason": "CANCELLED_BY_ADMIN"}),
        )
        .await;
    let r = s
        .admin_post(
            R13,
            &json!({"callback_reason": "CANCELLED_BY_ADMIN", "exported_properties": ["_id,_service_name"]}),
        )
        .await;
    assert_eq!(
        assert_csv(&r),
        vec!["_id,_service_name".to_string(), format!("{id},cb-other")]
    );
    // Not reported under CANCELLED.
    let r = s.admin_post(R13, &json!({"callback_reason": "CANCELLED"})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    s.stop().await;
}
