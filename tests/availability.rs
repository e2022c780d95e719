//! Availability R8 / R9 on the real server (spec 40 §10.7, items 101-115), plus office hours on
//! DST change days and cancelled bookings freeing their slot.

use std::time::Duration;

use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use serde_json::{Map, Value};

const FIXTURE: &str = r#"
[http]
listen = "127.0.0.1:0"

[calendar.always]
timezone = "UTC"
[calendar.always.weekly]
mon = "00:00-24:00"
tue = "00:00-24:00"
wed = "00:00-24:00"
thu = "00:00-24:00"
fri = "00:00-24:00"
sat = "00:00-24:00"
sun = "00:00-24:00"

[calendar.never]
timezone = "UTC"

[calendar.ny]
timezone = "America/New_York"
[calendar.ny.weekly]
sun = "09:00-17:00"
sat = "09:00-17:00"

[calendar.paris]
timezone = "Europe/Paris"
holidays = ["2030-04-01"]
[calendar.paris.weekly]
sat = "08:00-10:00"
sun = "08:00-10:00"
mon = "08:00-10:00"
[calendar.paris.exceptions]
"2030-04-01" = "09:00-10:00"

[capacity.paris]
timezone = "Europe/Paris"
[capacity.paris.weekly]
sat = { "0800" = 3, "0900" = 4 }
sun = { "0800" = 3, "0900" = 4, "0930" = 6 }
mon = { "0800" = 3, "0900" = 4 }

[service.cb-paris]
_type = "ors"
_service = "callback"
_business_hours_service = "paris"
_capacity_service = "paris"
_request_time_bucket = 30

[service.cb-test]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300

[service.cb-avail]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "always"
_request_time_bucket = 5
_max_request_by_time_bucket = 5

[service.cb-avail-builtin]
_type = "builtin"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "always"
_request_time_bucket = 5
_max_request_by_time_bucket = 5

[service.cb-cap]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "always"
_request_time_bucket = 5
_max_request_by_time_bucket = 1

[service.cb-closed]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "never"

[service.cb-badcal]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "no-such-calendar"

[service.cb-ny]
_type = "ors"
_service = "callback"
_business_hours_service = "ny"
_request_time_bucket = 60
"#;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// NOW + `days`, on a 5-minute boundary (spec 40 §10.0 `T+Nd`).
fn t_plus_days(days: i64) -> i64 {
    let t = now_ms() + days * DAY_MS;
    t - t.rem_euclid(5 * MINUTE_MS)
}

fn iso(ms: i64) -> String {
    boomerang::time::format_iso(ms)
}

struct Harness {
    server: Option<Server>,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: u16,
    body: Value,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::parse(FIXTURE, "availability.toml").expect("fixture configuration");
        config.http.listen = "127.0.0.1:0".parse().expect("address");
        config.storage = StorageConfig::Sqlite {
            path: dir.path().join("db.sqlite"),
        };
        let server = Server::builder(config).start().await.expect("server start");
        let base = format!("http://{}", server.local_addr());
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        Harness {
            server: Some(server),
            base,
            client,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    async fn read(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = r.bytes().await.expect("body");
        assert_eq!(content_type, "application/json;charset=UTF-8", "status {status}");
        let body = serde_json::from_slice(&bytes).expect("JSON body");
        Resp { status, body }
    }

    async fn get(&self, path: &str) -> Resp {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("answer");
        Self::read(r).await
    }

    async fn v1(&self, service: &str, query: &str) -> Resp {
        self.get(&format!(
            "/genesys/1/service/callback/{service}/availability?{query}"
        ))
        .await
    }

    async fn v2(&self, service: &str, query: &str) -> Resp {
        self.get(&format!(
            "/genesys/2/service/callback/{service}/availability?{query}"
        ))
        .await
    }

    /// R1 at a desired time; returns the new ID.
    async fn book(&self, service: &str, desired: i64, number: &str) -> String {
        let body = serde_json::json!({ "_customer_number": number, "_desired_time": iso(desired) });
        let r = self
            .client
            .post(format!("{}/genesys/1/service/callback/{service}", self.base))
            .json(&body)
            .send()
            .await
            .expect("answer");
        let r = Self::read(r).await;
        assert_eq!(r.status, 200, "booking refused: {}", r.body);
        r.body["_id"].as_str().expect("_id").to_string()
    }

    async fn post(&self, service: &str) -> Resp {
        let body = serde_json::json!({ "_customer_number": "5551234" });
        let r = self
            .client
            .post(format!("{}/genesys/1/service/callback/{service}", self.base))
            .json(&body)
            .send()
            .await
            .expect("answer");
        Self::read(r).await
    }

    async fn cancel(&self, service: &str, id: &str) {
        let r = self
            .client
            .delete(format!("{}/genesys/1/service/callback/{service}/{id}", self.base))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), 200);
    }
}

fn object(r: &Resp) -> &Map<String, Value> {
    assert_eq!(r.status, 200, "expected 200: {}", r.body);
    r.body.as_object().expect("a JSON object")
}

/// Checks the error envelope and returns the message.
fn error(r: &Resp, status: u16, code: u64, phrase: &str, message_prefix: &str) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["code"].as_u64(), Some(code), "{}", r.body);
    assert_eq!(r.body["phrase"].as_str(), Some(phrase), "{}", r.body);
    assert!(
        r.body["exception"]
            .as_str()
            .is_some_and(|e| e.starts_with("com.genesyslab.gsg.services.callback."))
    );
    assert!(r.body["properties"].is_object());
    let message = r.body["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.starts_with(message_prefix),
        "{message:?} should start with {message_prefix:?}"
    );
    message
}

fn slots(r: &Resp) -> &Vec<Value> {
    object(r)["slots"].as_array().expect("slots array")
}

#[tokio::test]
async fn v1_single_slot_day_and_caps() {
    let h = Harness::start().await;
    let t = t_plus_days(2);
    let start = iso(t);

    // 101: exactly one key, T+2d, integer 5.
    let r = h.v1("cb-avail", &format!("start={start}")).await;
    let o = object(&r);
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o.get(&start).and_then(Value::as_i64), Some(5));
    assert!(o[&start].is_i64());

    // 102: one day = 288 keys, strictly ascending.
    let r = h.v1("cb-avail", &format!("start={start}&number-of-days=1")).await;
    let keys: Vec<&String> = object(&r).keys().collect();
    assert_eq!(keys.len(), 288);
    assert!(keys.windows(2).all(|p| p[0] < p[1]));
    assert_eq!(keys.first().map(|k| k.as_str()), Some(start.as_str()));

    // 104: timestamp is an alias of start.
    let r1 = h.v1("cb-avail", &format!("start={start}")).await;
    let r2 = h.v1("cb-avail", &format!("timestamp={start}")).await;
    assert_eq!(r1.body, r2.body);

    // 105: max-time-slots.
    let r = h
        .v1(
            "cb-avail",
            &format!("start={start}&number-of-days=1&max-time-slots=3"),
        )
        .await;
    assert_eq!(object(&r).len(), 3);
    let r = h.v1("cb-avail", &format!("start={start}&max-time-slots=0")).await;
    error(
        &r,
        400,
        40010,
        "BAD_PARAMETER",
        "Invalid value for max-time-slots",
    );
    h.stop().await;
}

#[tokio::test]
async fn v1_bookings_reduce_capacity_and_cancellations_free_it() {
    let h = Harness::start().await;
    let s = t_plus_days(2);
    let start = iso(s);
    // 103: one booking at S → 4.
    let id = h.book("cb-avail", s + 90_000, "5550001").await;
    let r = h.v1("cb-avail", &format!("start={start}")).await;
    assert_eq!(object(&r).get(&start).and_then(Value::as_i64), Some(4));
    // A cancelled booking no longer counts.
    h.cancel("cb-avail", &id).await;
    let r = h.v1("cb-avail", &format!("start={start}")).await;
    assert_eq!(object(&r).get(&start).and_then(Value::as_i64), Some(5));
    // Completed records count, except those cancelled (by the customer or an administrator).
    for (reason, expected) in [
        ("CANCELLED_BY_ADMIN", 5),
        ("CANCELLED", 5),
        ("FAIL_USER_UNREACHABLE", 4),
    ] {
        let body = serde_json::json!({
            "_customer_number": "5550009",
            "_desired_time": iso(s + 1000),
            "_callback_state": "COMPLETED",
            "_callback_reason": reason,
        });
        let r = h
            .client
            .post(format!("{}/genesys/1/service/callback/cb-avail", h.base))
            .json(&body)
            .send()
            .await
            .expect("answer");
        let r = Harness::read(r).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = h.v1("cb-avail", &format!("start={start}")).await;
        assert_eq!(
            object(&r).get(&start).and_then(Value::as_i64),
            Some(expected),
            "{reason}"
        );
    }
    // Bookings of another service do not count.
    h.book("cb-cap", s, "5550002").await;
    let r = h.v1("cb-avail", &format!("start={start}")).await;
    assert_eq!(object(&r).get(&start).and_then(Value::as_i64), Some(4));
    // 103: capacity exhausted (cb-cap, capacity 1, slot booked) → S absent.
    let r = h.v1("cb-cap", &format!("start={start}")).await;
    assert!(object(&r).is_empty(), "{}", r.body);
    let r = h
        .v1(
            "cb-cap",
            &format!("start={start}&end={}", iso(s + 15 * MINUTE_MS)),
        )
        .await;
    let keys: Vec<&String> = object(&r).keys().collect();
    assert_eq!(keys, [&iso(s + 5 * MINUTE_MS), &iso(s + 10 * MINUTE_MS)]);
    h.stop().await;
}

#[tokio::test]
async fn v1_errors() {
    let h = Harness::start().await;
    let now = now_ms();
    // 106: window entirely in the past.
    let r = h
        .v1(
            "cb-avail",
            &format!("start={}&end={}", iso(now - 3 * DAY_MS), iso(now - 2 * DAY_MS)),
        )
        .await;
    let m = error(
        &r,
        400,
        40010,
        "BAD_PARAMETER",
        "No time slots available. The requested time period is in the past.",
    );
    assert_eq!(
        m,
        "No time slots available. The requested time period is in the past."
    );
    // 107: number-of-days out of range.
    let r = h.v1("cb-avail", "number-of-days=8").await;
    let m = error(
        &r,
        400,
        40010,
        "BAD_PARAMETER",
        "day parameter must be between 1 and 7",
    );
    assert_eq!(
        m,
        "day parameter must be between 1 and 7, inclusively. Actual value is: 8"
    );
    assert_eq!(r.body["properties"]["day"].as_i64(), Some(8));
    let r = h.v1("cb-avail", "number-of-days=0").await;
    error(
        &r,
        400,
        40010,
        "BAD_PARAMETER",
        "day parameter must be between 1 and 7",
    );
    let r = h.v1("cb-avail", "number-of-days=many").await;
    error(
        &r,
        400,
        40010,
        "BAD_PARAMETER",
        "Invalid value for number-of-days",
    );
    let r = h.v1("cb-avail", "start=yesterday").await;
    error(&r, 400, 40010, "BAD_PARAMETER", "Invalid value for start");
    // 108: no calendar / unknown calendar.
    let r = h.v1("cb-test", "").await;
    let m = error(&r, 500, 50020, "BAD_CONFIGURATION", "Option service.cb-test");
    assert_eq!(
        m,
        "Option service.cb-test / _business_hours_service not configured."
    );
    let r = h.v1("cb-badcal", "").await;
    error(
        &r,
        500,
        50020,
        "BAD_CONFIGURATION",
        "Option _business_hours_service is invalid:",
    );
    let r = h.v1("cb-nosuch", "").await;
    error(&r, 500, 50020, "BAD_CONFIGURATION", "Service undefined");
    // 109: closed all day → {}.
    let r = h
        .v1(
            "cb-closed",
            &format!("start={}&number-of-days=1", iso(t_plus_days(1))),
        )
        .await;
    assert!(object(&r).is_empty());
    h.stop().await;
}

#[tokio::test]
async fn v2_local_times_and_epoch_ms() {
    let h = Harness::start().await;
    // 110.
    let r = h
        .v2(
            "cb-avail",
            "start=2030-04-13T09:00:00.000&end=2030-04-13T10:00:00.000&timezone=America/Toronto",
        )
        .await;
    let list = slots(&r);
    assert_eq!(list.len(), 12);
    assert_eq!(list[0]["utcTime"], "2030-04-13T13:00:00.000Z");
    assert_eq!(list[0]["localTime"], "2030-04-13T09:00:00.000");
    assert_eq!(list[11]["localTime"], "2030-04-13T09:55:00.000");
    for s in list {
        assert!(s["capacity"].is_i64() && s["total"].is_i64(), "{s}");
        assert_eq!(s["capacity"], 5);
        assert_eq!(s["total"], 5);
    }
    assert_eq!(r.body["durationMin"], 5);
    assert_eq!(r.body["timezone"], "America/Toronto");
    // 111: the same instants in epoch milliseconds.
    let from = boomerang::time::parse_iso("2030-04-13T13:00:00Z").expect("instant");
    let r2 = h
        .v2(
            "cb-avail",
            &format!(
                "start-ms={from}&end-ms={}&timezone=America/Toronto",
                from + 3_600_000
            ),
        )
        .await;
    assert_eq!(slots(&r2), list);
    // Without timezone: the calendar's zone (UTC here).
    let r3 = h.v2("cb-avail", &format!("start-ms={from}")).await;
    assert_eq!(r3.body["timezone"], "UTC");
    assert_eq!(slots(&r3)[0]["localTime"], "2030-04-13T13:00:00.000");
    // 113 / 114.
    let r = h.v2("cb-avail", "timezone=Mars/Olympus").await;
    error(&r, 400, 40010, "BAD_PARAMETER", "unknown time zone");
    assert_eq!(r.body["properties"]["option"], "timezone");
    let r = h.v2("cb-avail", "start=notadate").await;
    error(&r, 400, 40010, "BAD_PARAMETER", "Invalid value for start");
    let r = h.v2("cb-avail", "start-ms=soon").await;
    error(&r, 400, 40010, "BAD_PARAMETER", "Invalid value for start-ms");
    let r = h.v2("cb-avail", "report-busy=maybe").await;
    error(&r, 400, 40010, "BAD_PARAMETER", "Invalid value for report-busy");
    h.stop().await;
}

#[tokio::test]
async fn v2_report_busy_and_builtin() {
    let h = Harness::start().await;
    let s = t_plus_days(2);
    h.book("cb-cap", s, "5550003").await;
    let q = format!("start={}&end={}", iso(s), iso(s + 10 * MINUTE_MS));
    // 112: the full slot is omitted by default...
    let r = h.v2("cb-cap", &q).await;
    let list = slots(&r);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["utcTime"], iso(s + 5 * MINUTE_MS));
    // ...and listed with capacity 0 with report-busy=true (case-insensitive).
    let r = h.v2("cb-cap", &format!("{q}&report-busy=TRUE")).await;
    let list = slots(&r);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["utcTime"], iso(s));
    assert_eq!(list[0]["capacity"], 0);
    assert_eq!(list[0]["total"], 1);
    assert_eq!(list[1]["capacity"], 1);
    // 115: _type=builtin serves availability, not R1.
    let r = h.v2("cb-avail-builtin", &q).await;
    assert_eq!(slots(&r).len(), 2);
    let r = h.post("cb-avail-builtin").await;
    error(
        &r,
        500,
        50020,
        "BAD_CONFIGURATION",
        "Service cb-avail-builtin has option _type != ors",
    );
    // Unlimited capacity is reported as 2147483647 (cb-closed has no slots; use R9 on cb-ny).
    h.stop().await;
}

#[tokio::test]
async fn v2_office_hours_follow_new_york_dst() {
    let h = Harness::start().await;
    // 2030-03-10 is the spring-forward Sunday in New York; 2030-03-09 (Saturday) is EST.
    for (day, first_utc) in [
        ("2030-03-09", "2030-03-09T14:00:00.000Z"),
        ("2030-03-10", "2030-03-10T13:00:00.000Z"),
    ] {
        let r = h
            .v2(
                "cb-ny",
                &format!("start={day}T00:00:00&number-of-days=1&timezone=America/New_York"),
            )
            .await;
        let list = slots(&r);
        assert_eq!(list.len(), 8, "{day}: {}", r.body);
        assert_eq!(list[0]["utcTime"], first_utc);
        assert_eq!(list[0]["localTime"], format!("{day}T09:00:00.000"));
        assert_eq!(list[7]["localTime"], format!("{day}T16:00:00.000"));
        assert_eq!(list[0]["total"], 2_147_483_647_i64);
        assert_eq!(r.body["durationMin"], 60);
    }
    h.stop().await;
}

#[tokio::test]
async fn booking_into_a_full_or_closed_slot_is_refused_with_proposals() {
    let h = Harness::start().await;
    let s = t_plus_days(2);
    h.book("cb-cap", s, "5550004").await;
    let body = serde_json::json!({ "_customer_number": "5550005", "_desired_time": iso(s + 1000) });
    let r = h
        .client
        .post(format!("{}/genesys/1/service/callback/cb-cap", h.base))
        .json(&body)
        .send()
        .await
        .expect("answer");
    let r = Harness::read(r).await;
    let slot = format!("[{}, {}]", iso(s), iso(s + 5 * MINUTE_MS));
    let m = error(
        &r,
        400,
        40051,
        "SLOT_UNAVAILABLE_PROPOSAL",
        "Too many requests at desired time slot",
    );
    assert_eq!(
        m,
        format!("Too many requests at desired time slot {slot}. Proposing time slots.")
    );
    assert_eq!(r.body["properties"]["slot"], slot.as_str());
    let proposals = r.body["availability"].as_object().expect("availability");
    let expected: Vec<String> = [-4i64, -3, -2, -1, 1, 2, 3, 4]
        .iter()
        .map(|k| iso(s + k * 5 * MINUTE_MS))
        .collect();
    assert_eq!(proposals.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(proposals.values().all(|v| v.as_i64() == Some(1)));
    // A scheduled booking where the office never opens: nothing to propose.
    let body = serde_json::json!({ "_customer_number": "5550006", "_desired_time": iso(s) });
    let r = h
        .client
        .post(format!("{}/genesys/1/service/callback/cb-closed", h.base))
        .json(&body)
        .send()
        .await
        .expect("answer");
    let r = Harness::read(r).await;
    let m = error(&r, 400, 40050, "SLOT_UNAVAILABLE", "No time slots available.");
    assert_eq!(m, "No time slots available.");
    h.stop().await;
}

#[tokio::test]
async fn v2_paris_dst_capacity_grid_holiday_and_exception() {
    let h = Harness::start().await;
    // 2030-03-31 is the spring-forward Sunday in Paris (CET → CEST); 2030-03-30 is CET.
    let expect = [
        ("2030-03-30", "2030-03-30T07:00:00.000Z", [3, 3, 4, 4]),
        ("2030-03-31", "2030-03-31T06:00:00.000Z", [3, 3, 4, 6]),
    ];
    for (day, first_utc, totals) in expect {
        let r = h
            .v2(
                "cb-paris",
                &format!("start={day}T00:00:00&number-of-days=1&timezone=Europe/Paris"),
            )
            .await;
        let list = slots(&r);
        assert_eq!(list.len(), 4, "{day}: {}", r.body);
        assert_eq!(list[0]["utcTime"], first_utc);
        assert_eq!(list[0]["localTime"], format!("{day}T08:00:00.000"));
        let got: Vec<i64> = list.iter().filter_map(|s| s["total"].as_i64()).collect();
        assert_eq!(got, totals, "{day}");
        assert_eq!(r.body["durationMin"], 30);
    }
    // Monday 2030-04-01 is a holiday with an exception: open 09:00-10:00 only.
    let r = h
        .v2(
            "cb-paris",
            "start=2030-04-01T00:00:00&number-of-days=1&timezone=Europe/Paris",
        )
        .await;
    let local: Vec<&str> = slots(&r).iter().filter_map(|s| s["localTime"].as_str()).collect();
    assert_eq!(local, ["2030-04-01T09:00:00.000", "2030-04-01T09:30:00.000"]);
    h.stop().await;
}
