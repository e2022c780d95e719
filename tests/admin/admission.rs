//! §10.1 items 25-30: in-queue checking and the three throttles (spec 40 §5.8), and the same
//! limits under concurrency (decided inside the store's write transaction) and across time
//! (sliding interval, UTC day) on a manual clock.

use boomerang::clock::ManualClock;
use serde_json::{Value, json};

use crate::common::*;

const MSG_40001_STRICT: &str = "There is already 1 or more Callbacks QUEUED for this number, please refer to _enable_in_queue_checking for detail.";
const MSG_40001_TRUE: &str = "There is already 2 or more Callbacks QUEUED for this number, please refer to _enable_in_queue_checking for detail.";

/// Checks a 40001 refusal with `max_queued`.
fn assert_already_booked(r: &Resp, max: u64) {
    let expected = if max == 1 {
        MSG_40001_STRICT
    } else {
        MSG_40001_TRUE
    };
    let body = assert_error(r, 40001, "There is already ");
    assert_eq!(message(&body), expected);
    assert_eq!(
        prop(&body, "max_queued").and_then(Value::as_u64),
        Some(max),
        "{body:?}"
    );
}

fn assert_service_limit(r: &Resp, service: &str) {
    let body = assert_error(r, 40002, "Limit of queued callbacks for ");
    assert_eq!(
        message(&body),
        format!("Limit of queued callbacks for {service} is reached.")
    );
    assert_eq!(
        prop(&body, "service").and_then(Value::as_str),
        Some(service),
        "{body:?}"
    );
}

fn assert_interval_limit(r: &Resp, service: &str, interval: u64) {
    let body = assert_error(r, 40003, "Limit of queued callbacks for ");
    assert_eq!(
        message(&body),
        format!("Limit of queued callbacks for {service} is reached for interval {interval}s.")
    );
    assert_eq!(
        prop(&body, "service").and_then(Value::as_str),
        Some(service),
        "{body:?}"
    );
    assert_eq!(
        prop(&body, "interval").and_then(Value::as_u64),
        Some(interval),
        "{body:?}"
    );
}

fn assert_parameter_limit(r: &Resp, service: &str, attempts: u64) {
    let body = assert_error(r, 40004, "Limit of queued callbacks for ");
    assert_eq!(
        message(&body),
        format!(
            "Limit of queued callbacks for {service} is reached for parameter _customer_number. Reached {attempts} times today."
        )
    );
    assert_eq!(
        prop(&body, "service").and_then(Value::as_str),
        Some(service),
        "{body:?}"
    );
    assert_eq!(
        prop(&body, "parameter").and_then(Value::as_str),
        Some("_customer_number"),
        "{body:?}"
    );
    assert_eq!(
        prop(&body, "attempts").and_then(Value::as_u64),
        Some(attempts),
        "{body:?}"
    );
}

#[tokio::test]
async fn t25_strict_refuses_a_second_live_callback() {
    let s = TestServer::start().await;
    let first = s.create_forced("cb-strict", "777", "QUEUED").await;
    let r = s
        .try_create("cb-strict", &json!({"_customer_number": "777"}))
        .await;
    assert_already_booked(&r, 1);
    // A refused request creates no record (§5.8 [D]).
    assert_eq!(s.lookup("cb-strict", "777").await, vec![first]);
    // Another number, and the same number on another service, are not affected.
    s.create_immediate("cb-strict", "7770").await;
    s.create_immediate("cb-test", "777").await;
    s.stop().await;
}

#[tokio::test]
async fn t25b_strict_counts_every_live_state() {
    let s = TestServer::start().await;
    for (i, state) in ["ROUTING", "PROCESSING", "PAUSED"].iter().enumerate() {
        let number = format!("77{i}1");
        s.create_forced("cb-strict", &number, state).await;
        let r = s
            .try_create("cb-strict", &json!({"_customer_number": number}))
            .await;
        assert_already_booked(&r, 1);
    }
    // A live immediate callback counts too.
    s.create_immediate("cb-strict", "7799").await;
    let r = s
        .try_create("cb-strict", &json!({"_customer_number": "7799"}))
        .await;
    assert_already_booked(&r, 1);
    s.stop().await;
}

#[tokio::test]
async fn t26_strict_ignores_scheduled_and_completed() {
    let s = TestServer::start().await;
    s.create_scheduled("cb-strict", "778").await;
    s.create_forced("cb-strict", "778", "COMPLETED").await;
    let id = s.create_immediate("cb-strict", "778").await;
    assert_eq!(
        str_field(&s.record("cb-strict", &id).await, "_callback_state"),
        "QUEUED"
    );
    s.stop().await;
}

#[tokio::test]
async fn t27_true_refuses_the_third() {
    let s = TestServer::start().await;
    s.create_forced("cb-true", "779", "QUEUED").await;
    // One live: the second POST is accepted.
    s.create_immediate("cb-true", "779").await;
    // Two live: refused with max_queued = 2.
    let r = s.try_create("cb-true", &json!({"_customer_number": "779"})).await;
    assert_already_booked(&r, 2);
    assert_eq!(s.lookup("cb-true", "779").await.len(), 2);

    // Same with two forced QUEUED records.
    s.create_forced("cb-true", "780", "QUEUED").await;
    s.create_forced("cb-true", "780", "QUEUED").await;
    let r = s.try_create("cb-true", &json!({"_customer_number": "780"})).await;
    assert_already_booked(&r, 2);
    s.stop().await;
}

#[tokio::test]
async fn t27b_cancelled_callback_frees_the_number() {
    let s = TestServer::start().await;
    let id = s.create_immediate("cb-strict", "781").await;
    let r = s
        .try_create("cb-strict", &json!({"_customer_number": "781"}))
        .await;
    assert_already_booked(&r, 1);
    let r = s
        .delete(&format!("/genesys/1/service/callback/cb-strict/{id}"))
        .await;
    assert_eq!(r.status, 200, "cancel: {}", r.text());
    s.create_immediate("cb-strict", "781").await;
    s.stop().await;
}

#[tokio::test]
async fn t28_service_queued_limit() {
    let s = TestServer::start().await;
    let first = s.create_immediate("cb-thr", "5115").await;
    assert_eq!(
        str_field(&s.record("cb-thr", &first).await, "_callback_state"),
        "QUEUED"
    );
    // Another number: the limit is service-wide.
    let r = s.try_create("cb-thr", &json!({"_customer_number": "5116"})).await;
    assert_service_limit(&r, "cb-thr");
    assert!(
        s.lookup("cb-thr", "5116").await.is_empty(),
        "refused request left a record"
    );
    // Once the live callback is cancelled, a new one is accepted.
    let r = s
        .delete(&format!("/genesys/1/service/callback/cb-thr/{first}"))
        .await;
    assert_eq!(r.status, 200, "cancel: {}", r.text());
    s.create_immediate("cb-thr", "5116").await;
    s.stop().await;
}

#[tokio::test]
async fn t29_interval_limit() {
    let s = TestServer::start().await;
    s.create_scheduled("cb-thr-int", "5115").await;
    // Every accepted callback counts, scheduled or not, whatever the number.
    let r = s
        .try_create("cb-thr-int", &json!({"_customer_number": "5116"}))
        .await;
    assert_interval_limit(&r, "cb-thr-int", 3600);
    let r = s
        .try_create(
            "cb-thr-int",
            &json!({"_customer_number": "5117", "_desired_time": iso(t_plus_days(3))}),
        )
        .await;
    assert_interval_limit(&r, "cb-thr-int", 3600);
    assert!(s.lookup("cb-thr-int", "5116").await.is_empty());
    // Other services are not throttled.
    s.create_immediate("cb-test", "5116").await;
    s.stop().await;
}

#[tokio::test]
async fn t30_parameter_daily_limit() {
    let s = TestServer::start().await;
    s.create_scheduled("cb-thr-par", "5115").await;
    let r = s
        .try_create("cb-thr-par", &json!({"_customer_number": "5115"}))
        .await;
    assert_parameter_limit(&r, "cb-thr-par", 1);
    // Cancelling does not give the attempt back: it was made today.
    let ids = s.lookup("cb-thr-par", "5115").await;
    assert_eq!(ids.len(), 1);
    let r = s
        .delete(&format!("/genesys/1/service/callback/cb-thr-par/{}", ids[0]))
        .await;
    assert_eq!(r.status, 200, "cancel: {}", r.text());
    let r = s
        .try_create("cb-thr-par", &json!({"_customer_number": "5115"}))
        .await;
    assert_parameter_limit(&r, "cb-thr-par", 1);
    // Another number is accepted.
    s.create_immediate("cb-thr-par", "5116").await;
    s.stop().await;
}

// ------------------------------------------------------------------------- concurrency

/// Sends one R1 per body, all at once; returns the responses.
async fn concurrent(s: &TestServer, service: &str, bodies: Vec<Value>) -> Vec<Resp> {
    let mut set = tokio::task::JoinSet::new();
    for body in bodies {
        let req = s
            .client
            .post(s.url(&format!("/genesys/1/service/callback/{service}")))
            .json(&body);
        set.spawn(async move {
            let r = req.send().await.expect("request sent and answered");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await.expect("response body").to_vec();
            Resp {
                status,
                headers,
                body,
            }
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        out.push(joined.expect("request task"));
    }
    out
}

/// Sends `n` concurrent R1 for the same number; returns the responses.
async fn burst(s: &TestServer, service: &str, number: &str, n: usize) -> Vec<Resp> {
    concurrent(s, service, vec![json!({"_customer_number": number}); n]).await
}

/// Checks that exactly `winners` answered 200 and every other one is the refusal `check`.
fn tally(responses: &[Resp], winners: usize, check: impl Fn(&Resp)) {
    let ok = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        winners,
        "exactly {winners} accepted; statuses {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in responses.iter().filter(|r| r.status != 200) {
        check(r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c01_concurrent_service_limit_exactly_one_wins() {
    let s = TestServer::start().await;
    let responses = burst(&s, "cb-thr", "6001", 20).await;
    tally(&responses, 1, |r| assert_service_limit(r, "cb-thr"));
    assert_eq!(
        s.lookup("cb-thr", "6001").await.len(),
        1,
        "the store holds exactly one record"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c02_concurrent_interval_limit_exactly_one_wins() {
    let s = TestServer::start().await;
    let responses = burst(&s, "cb-thr-int", "6002", 20).await;
    tally(&responses, 1, |r| assert_interval_limit(r, "cb-thr-int", 3600));
    assert_eq!(s.lookup("cb-thr-int", "6002").await.len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c03_concurrent_strict_exactly_one_wins() {
    let s = TestServer::start().await;
    let responses = burst(&s, "cb-strict", "6003", 20).await;
    tally(&responses, 1, |r| assert_already_booked(r, 1));
    assert_eq!(s.lookup("cb-strict", "6003").await.len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c04_concurrent_true_exactly_two_win() {
    let s = TestServer::start().await;
    let responses = burst(&s, "cb-true", "6004", 20).await;
    tally(&responses, 2, |r| assert_already_booked(r, 2));
    assert_eq!(s.lookup("cb-true", "6004").await.len(), 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c05_concurrent_parameter_limit_exactly_one_wins() {
    let s = TestServer::start().await;
    let responses = burst(&s, "cb-thr-par", "6005", 20).await;
    tally(&responses, 1, |r| assert_parameter_limit(r, "cb-thr-par", 1));
    assert_eq!(s.lookup("cb-thr-par", "6005").await.len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c06_concurrent_service_limit_across_numbers() {
    let s = TestServer::start().await;
    let bodies = (0..20)
        .map(|i| json!({"_customer_number": format!("61{i:02}")}))
        .collect();
    let responses = concurrent(&s, "cb-thr", bodies).await;
    tally(&responses, 1, |r| assert_service_limit(r, "cb-thr"));
    // Exactly one live record in the service (R11 counts live callbacks).
    let w = s
        .admin_get("/genesys/1/admin/callback/watermarks?service_name=cb-thr")
        .await
        .ok_object();
    assert_eq!(w.get("total").and_then(Value::as_u64), Some(1), "{w:?}");
    s.stop().await;
}

// ------------------------------------------------------------------------- time

/// 2030-01-01T22:00:00Z.
const T0: i64 = 1_893_535_200_000;

#[tokio::test]
async fn v01_interval_slides() {
    let clock = ManualClock::new(T0);
    let s = TestServer::with_clock(clock.clone()).await;
    s.create_immediate("cb-thr-int", "5115").await;
    clock.advance(59 * MINUTE_MS);
    let r = s
        .try_create("cb-thr-int", &json!({"_customer_number": "5116"}))
        .await;
    assert_interval_limit(&r, "cb-thr-int", 3600);
    // One hour and a second after the first: it has left the interval.
    clock.advance(MINUTE_MS + 1000);
    s.create_immediate("cb-thr-int", "5116").await;
    let r = s
        .try_create("cb-thr-int", &json!({"_customer_number": "5117"}))
        .await;
    assert_interval_limit(&r, "cb-thr-int", 3600);
    s.stop().await;
}

#[tokio::test]
async fn v02_parameter_limit_resets_on_the_next_utc_day() {
    let clock = ManualClock::new(T0);
    let s = TestServer::with_clock(clock.clone()).await;
    s.create_immediate("cb-thr-par", "5115").await;
    clock.advance(HOUR_MS + 59 * MINUTE_MS); // 23:59 UTC
    let r = s
        .try_create("cb-thr-par", &json!({"_customer_number": "5115"}))
        .await;
    assert_parameter_limit(&r, "cb-thr-par", 1);
    clock.advance(2 * MINUTE_MS); // 00:01 UTC the next day
    s.create_immediate("cb-thr-par", "5115").await;
    let r = s
        .try_create("cb-thr-par", &json!({"_customer_number": "5115"}))
        .await;
    assert_parameter_limit(&r, "cb-thr-par", 1);
    s.stop().await;
}

// ------------------------------------------------------------------------- options and order

const EXTRA_TOML: &str = r#"
[patterns.cb_errors]
premium = '^\+1900'

[service.cb-acct]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_throttle_request_parameters = "usr_account"
_throttle_request_parameters_limit = 2

[service.cb-two]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_throttle_callbacks_per_service_1 = 5
_throttle_ttl_1 = 60
_throttle_callbacks_per_service_2 = 2
_throttle_ttl_2 = 7200

[service.cb-full]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number,usr_account"
_throttle_max_queued_callbacks = 1
_exceptions = "cb_errors"
"#;

#[tokio::test]
async fn t30b_throttle_on_another_request_parameter() {
    let s = TestServer::with_toml(EXTRA_TOML).await;
    for number in ["1", "2"] {
        s.create_immediate_with("cb-acct", number, "A1").await;
    }
    let r = s
        .try_create("cb-acct", &json!({"_customer_number": "3", "usr_account": "A1"}))
        .await;
    let body = assert_error(
        &r,
        40004,
        "Limit of queued callbacks for cb-acct is reached for parameter usr_account.",
    );
    assert_eq!(
        message(&body),
        "Limit of queued callbacks for cb-acct is reached for parameter usr_account. Reached 2 times today."
    );
    assert_eq!(
        prop(&body, "parameter").and_then(Value::as_str),
        Some("usr_account")
    );
    assert_eq!(prop(&body, "attempts").and_then(Value::as_u64), Some(2));
    // Another account, or none, is not limited.
    s.create_immediate_with("cb-acct", "3", "A2").await;
    s.create_immediate("cb-acct", "4").await;
    s.stop().await;
}

#[tokio::test]
async fn t29b_second_interval() {
    let s = TestServer::with_toml(EXTRA_TOML).await;
    s.create_immediate("cb-two", "1").await;
    s.create_immediate("cb-two", "2").await;
    let r = s.try_create("cb-two", &json!({"_customer_number": "3"})).await;
    assert_interval_limit(&r, "cb-two", 7200);
    s.stop().await;
}

#[tokio::test]
async fn t30c_admission_runs_after_validation() {
    // Spec 40 §5.8 [D] / §6.1 steps 5-9: parameter and number validation come first.
    let s = TestServer::with_toml(EXTRA_TOML).await;
    s.create_immediate("cb-full", "5115").await;
    let r = s
        .try_create("cb-full", &json!({"_customer_number": "5116"}))
        .await;
    assert_service_limit(&r, "cb-full");
    let r = s
        .try_create("cb-full", &json!({"_customer_number": "1900123456"}))
        .await;
    assert_error(
        &r,
        40040,
        "Customer Number is not allowed. Check option _exceptions",
    );
    let r = s.try_create("cb-full", &json!({"usr_account": "A1"})).await;
    assert_error(
        &r,
        40010,
        "Cannot create service, missing mandatory callback option",
    );
    let r = s
        .try_create(
            "cb-full",
            &json!({"_customer_number": "5117", "_desired_time": "garbage"}),
        )
        .await;
    assert_error(&r, 40010, "");
    s.stop().await;
}

#[tokio::test]
async fn t25c_in_queue_check_uses_the_normalised_number() {
    // Spec 40 §5.8 [D]: the same normalised `_customer_number`; with
    // `_fix_plus_on_int_phone_numbers`, 33612345678 and +33612345678 are one number.
    let toml = r#"
[service.cb-plus]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_customer_lookup_keys = "_customer_number"
_enable_in_queue_checking = "strict"
_fix_plus_on_int_phone_numbers = true
"#;
    let s = TestServer::with_toml(toml).await;
    s.create_immediate("cb-plus", "33612345678").await;
    for same in ["+33612345678", " 33612345678 "] {
        let r = s.try_create("cb-plus", &json!({"_customer_number": same})).await;
        assert_already_booked(&r, 1);
    }
    s.stop().await;
}
