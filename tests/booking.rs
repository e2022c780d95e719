//! Booking into office hours and capacity on the real server (spec 40 §5.5-5.6, §10.1 items
//! 31-33, §10.3 item 69): full and closed slots refused with proposals, the last place of a
//! slot taken by exactly one of many concurrent requests, and a reschedule whose own booking
//! does not count against its new slot.

use std::sync::Arc;

use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use serde_json::{Value, json};

const FIXTURE: &str = r#"
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

[service.cb-cap]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "always"
_request_time_bucket = 5
_max_request_by_time_bucket = 1

[service.cb-cap3]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "always"
_request_time_bucket = 5
_max_request_by_time_bucket = 3

[service.cb-closed]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "never"

[service.cb-closed-reject]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "never"
_enable_reject_out_of_office_hours = true
"#;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// NOW + `days` on a 5-minute boundary.
fn t_plus_days(days: i64) -> i64 {
    let t = now_ms() + days * DAY_MS;
    t - t.rem_euclid(5 * MINUTE_MS)
}

fn iso(ms: i64) -> String {
    boomerang::time::format_iso(ms)
}

struct Harness {
    server: Server,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::parse(FIXTURE, "booking.toml").unwrap();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.storage = StorageConfig::Sqlite {
            path: dir.path().join("db.sqlite"),
        };
        let server = Server::builder(config).start().await.unwrap();
        let base = format!("http://{}", server.local_addr());
        Harness {
            server,
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn post(&self, service: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/genesys/1/service/callback/{service}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn put(&self, service: &str, id: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .put(format!("{}/genesys/1/service/callback/{service}/{id}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, service: &str, id: &str) -> Value {
        let url = format!("{}/genesys/1/service/callback/{service}/{id}", self.base);
        self.client.get(url).send().await.unwrap().json().await.unwrap()
    }

    async fn book(&self, service: &str, at: i64, number: &str) -> String {
        let (status, body) = self
            .post(
                service,
                json!({"_customer_number": number, "_desired_time": iso(at)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["_id"].as_str().unwrap().to_string()
    }
}

fn assert_proposal(status: u16, body: &Value, prefix: &str, slot: i64) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 40051, "{body}");
    assert_eq!(body["phrase"], "SLOT_UNAVAILABLE_PROPOSAL");
    assert_eq!(
        body["exception"],
        "com.genesyslab.gsg.services.callback.CallbackExceptionAvailability"
    );
    assert!(body["message"].as_str().unwrap().starts_with(prefix), "{body}");
    let rendered = format!("[{}, {}]", iso(slot), iso(slot + 5 * MINUTE_MS));
    assert_eq!(body["properties"]["slot"], rendered.as_str());
    let proposals = body["availability"].as_object().expect("availability");
    assert!(!proposals.is_empty());
    let keys: Vec<&String> = proposals.keys().collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "ascending: {keys:?}");
    assert!(
        !proposals.contains_key(&iso(slot)),
        "the refused slot is not proposed"
    );
}

#[tokio::test]
async fn t31_full_slot_is_refused_with_neighbouring_proposals() {
    let h = Harness::start().await;
    let s = t_plus_days(2);
    h.book("cb-cap", s, "100").await;
    let (status, body) = h
        .post(
            "cb-cap",
            json!({"_customer_number": "101", "_desired_time": iso(s)}),
        )
        .await;
    assert_proposal(status, &body, "Too many requests at desired time slot [", s);
    assert_eq!(body["properties"]["service"], "cb-cap");
    // The 4 slots before and after, each with its one place.
    assert_eq!(body["availability"].as_object().unwrap().len(), 8);
    assert_eq!(body["availability"][iso(s + 5 * MINUTE_MS)], 1);
    h.server.shutdown().await;
}

#[tokio::test]
async fn t32_t33_closed_office() {
    let h = Harness::start().await;
    // Scheduled into a calendar that is never open: nothing to propose within 7 days.
    let (status, body) = h
        .post(
            "cb-closed",
            json!({"_customer_number": "1", "_desired_time": iso(t_plus_days(2))}),
        )
        .await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(40050)), "{body}");
    assert_eq!(body["message"], "No time slots available.");
    // Immediate: refused only with _enable_reject_out_of_office_hours.
    let (status, body) = h.post("cb-closed-reject", json!({"_customer_number": "2"})).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(40050)), "{body}");
    let (status, body) = h.post("cb-closed", json!({"_customer_number": "3"})).await;
    assert_eq!(status, 200, "{body}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bookings_for_the_last_places_exactly_capacity_win() {
    let h = Arc::new(Harness::start().await);
    let s = t_plus_days(3);
    for (service, capacity) in [("cb-cap", 1), ("cb-cap3", 3)] {
        let mut tasks = Vec::new();
        for i in 0..20 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                h.post(
                    service,
                    json!({"_customer_number": format!("55{i:03}"), "_desired_time": iso(s)}),
                )
                .await
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                200 => accepted += 1,
                _ => assert_eq!(body["code"], 40051, "{body}"),
            }
        }
        assert_eq!(accepted, capacity, "{service}");
        let url = format!(
            "{}/genesys/2/service/callback/{service}/availability?start={}",
            h.base,
            iso(s)
        );
        let slots: Value = h.client.get(url).send().await.unwrap().json().await.unwrap();
        assert!(slots.get(iso(s)).is_none(), "slot full: {slots}");
    }
}

#[tokio::test]
async fn t69_reschedule_into_a_full_slot_and_within_its_own() {
    let h = Harness::start().await;
    let s1 = t_plus_days(2);
    let s2 = s1 + 30 * MINUTE_MS;
    h.book("cb-cap", s1, "200").await;
    let second = h.book("cb-cap", s2, "201").await;
    let (status, body) = h
        .put("cb-cap", &second, json!({"_new_desired_time": iso(s1)}))
        .await;
    assert_proposal(status, &body, "Too many requests at desired time slot [", s1);
    assert_eq!(h.get("cb-cap", &second).await["_desired_time"], iso(s2).as_str());
    // Moving within its own (full) slot: its own booking does not count.
    let (status, body) = h
        .put(
            "cb-cap",
            &second,
            json!({"_new_desired_time": iso(s2 + 2 * MINUTE_MS)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Moving to a free slot frees the old one.
    let (status, _) = h
        .put(
            "cb-cap",
            &second,
            json!({"_new_desired_time": iso(s2 + 10 * MINUTE_MS)}),
        )
        .await;
    assert_eq!(status, 200);
    h.book("cb-cap", s2, "202").await;
    h.server.shutdown().await;
}
