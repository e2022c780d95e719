//! §10.9 items 123-126: R11 counter watermarks (spec 40 §6.10).

use boomerang::clock::ManualClock;
use serde_json::{Map, Value, json};

use crate::common::*;

const R11: &str = "/genesys/1/admin/callback/watermarks";

/// `(total, services)` of a 200 answer, checking `total` = sum of the counts.
fn counts(body: &Map<String, Value>) -> (u64, Map<String, Value>) {
    assert_eq!(keys(body), sorted(&["services", "total"]), "{body:?}");
    let total = body.get("total").and_then(Value::as_u64).expect("integer total");
    let services = body
        .get("services")
        .and_then(Value::as_object)
        .cloned()
        .expect("services object");
    let sum: u64 = services
        .values()
        .map(|v| {
            v.as_u64()
                .unwrap_or_else(|| panic!("count must be an integer: {body:?}"))
        })
        .sum();
    assert_eq!(total, sum, "total = sum of the counts: {body:?}");
    (total, services)
}

#[tokio::test]
async fn t123_credentials_required() {
    let s = TestServer::start().await;
    assert_unauthorized(&s.get(R11).await, "R11 without credentials");
    let r = s
        .send(s.client.get(s.url(R11)).basic_auth("reader", Some("secret")))
        .await;
    assert_unauthorized(&r, "R11 wrong password");
    let r = s
        .send(s.client.get(s.url(R11)).basic_auth(READER.0, Some(READER.1)))
        .await;
    counts(&r.ok_object());
    s.stop().await;
}

#[tokio::test]
async fn t124_live_callbacks_per_service() {
    let s = TestServer::start().await;
    s.create_forced("cb-test", "1", "QUEUED").await;
    s.create_scheduled("cb-test", "2").await;
    s.create_forced("cb-test", "3", "COMPLETED").await;
    s.create_immediate("cb-other", "4").await;
    s.create_forced("cb-other", "5", "PROCESSING").await;
    s.create_forced("cb-other", "6", "ROUTING").await;
    s.create_forced("cb-other", "7", "PAUSED").await;
    let (total, services) = counts(&s.admin_get(R11).await.ok_object());
    assert_eq!(
        keys(&services),
        sorted(&FIXTURE_SERVICES),
        "every configured service"
    );
    assert_eq!(services.get("cb-test"), Some(&json!(1)));
    assert_eq!(services.get("cb-other"), Some(&json!(4)));
    assert_eq!(services.get("cb-strict"), Some(&json!(0)));
    assert_eq!(total, 5);
    s.stop().await;
}

#[tokio::test]
async fn t125_selected_services() {
    let s = TestServer::start().await;
    s.create_forced("cb-test", "1", "QUEUED").await;
    s.create_immediate("cb-other", "2").await;
    s.create_immediate("cb-strict", "3").await;
    let (total, services) = counts(
        &s.admin_get(&format!("{R11}?service_name=cb-test&service_name=cb-other"))
            .await
            .ok_object(),
    );
    assert_eq!(keys(&services), sorted(&["cb-other", "cb-test"]));
    assert_eq!(total, 2);
    // An unknown name is reported with count 0.
    let (total, services) = counts(
        &s.admin_get(&format!("{R11}?service_name=cb-test&service_name=no-such"))
            .await
            .ok_object(),
    );
    assert_eq!(services.get("no-such"), Some(&json!(0)));
    assert_eq!(total, 1);
    s.stop().await;
}

/// 2030-01-01T10:00:00Z.
const T0: i64 = 1_893_492_000_000;

#[tokio::test]
async fn t126_stale_live_records_are_not_counted() {
    // FI: the server runs on a manual clock, so that a record's last state change can be made
    // 4 hours old without waiting.
    let clock = ManualClock::new(T0);
    let s = TestServer::with_clock(clock.clone()).await;
    let desired = iso(T0 + 2 * DAY_MS);
    s.create(
        "cb-test",
        json!({"_customer_number": "1", "_desired_time": desired, "_callback_state": "QUEUED"}),
    )
    .await;
    clock.advance(2 * HOUR_MS);
    s.create(
        "cb-test",
        json!({"_customer_number": "2", "_desired_time": desired, "_callback_state": "QUEUED"}),
    )
    .await;
    let (total, _) = counts(
        &s.admin_get(&format!("{R11}?service_name=cb-test"))
            .await
            .ok_object(),
    );
    assert_eq!(total, 2, "both fresh at T0 + 2 h");
    clock.advance(2 * HOUR_MS);
    // T0 + 4 h: the first record's state is 4 h old, the second's 2 h.
    let (total, services) = counts(
        &s.admin_get(&format!("{R11}?service_name=cb-test"))
            .await
            .ok_object(),
    );
    assert_eq!(services.get("cb-test"), Some(&json!(1)), "{services:?}");
    assert_eq!(total, 1);
    s.stop().await;
}

#[tokio::test]
async fn v126b_staleness_is_measured_from_the_last_state_change() {
    let clock = ManualClock::new(T0);
    let s = TestServer::with_clock(clock.clone()).await;
    let id = s
        .create(
            "cb-test",
            json!({"_customer_number": "1", "_desired_time": iso(T0 + 2 * DAY_MS), "_callback_state": "QUEUED"}),
        )
        .await;
    clock.advance(3 * HOUR_MS + 30 * MINUTE_MS);
    let r = s
        .put_json(
            &format!("/genesys/1/service/callback/cb-test/{id}"),
            &json!({"_callback_state": "PROCESSING"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    clock.advance(HOUR_MS);
    // Created 4.5 h ago, but its state changed 1 h ago: counted.
    let (total, _) = counts(
        &s.admin_get(&format!("{R11}?service_name=cb-test"))
            .await
            .ok_object(),
    );
    assert_eq!(total, 1);
    clock.advance(2 * HOUR_MS + MINUTE_MS);
    let (total, _) = counts(
        &s.admin_get(&format!("{R11}?service_name=cb-test"))
            .await
            .ok_object(),
    );
    assert_eq!(total, 0, "state unchanged for over 3 h");
    s.stop().await;
}
