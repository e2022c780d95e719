//! Availability latency harness (not a pass/fail test; ignored by default). Figures go to
//! BENCHMARKS.md (section "Availability latency"). Run with:
//!
//! ```text
//! cargo test --release -p boomerang --test availability_bench -- --ignored --nocapture
//! ```
//!
//! Measures, for 7 days of 15-minute slots (672 slots) on a calendar with weekly hours, a
//! holiday, an exception and a capacity grid: the sans-IO computation alone, the store's
//! `booked_per_slot` query, and R8 / R9 end to end over loopback HTTP with bookings stored.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use boomerang::calendar::{SlotRules, Window};
use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;

const FIXTURE: &str = r#"
[http]
listen = "127.0.0.1:0"

[calendar.paris]
timezone = "Europe/Paris"
holidays = ["12-25"]
[calendar.paris.weekly]
mon = "08:00-12:00,13:00-20:00"
tue = "08:00-12:00,13:00-20:00"
wed = "08:00-12:00,13:00-20:00"
thu = "08:00-12:00,13:00-20:00"
fri = "08:00-12:00,13:00-20:00"
sat = "09:00-13:00"
sun = "00:00-24:00"
[calendar.paris.exceptions]
"12-24" = "20:00-22:00"

[capacity.agents]
timezone = "Europe/Paris"
[capacity.agents.weekly]
mon = { "0800" = 40, "0900" = 40, "1000" = 40, "1100" = 40, "1300" = 40, "1400" = 40, "1500" = 40, "1600" = 40, "1700" = 40, "1800" = 40, "1900" = 40 }
tue = { "0800" = 40, "0900" = 40, "1000" = 40, "1100" = 40, "1300" = 40, "1400" = 40, "1500" = 40, "1600" = 40, "1700" = 40, "1800" = 40, "1900" = 40 }
wed = { "0800" = 40, "0900" = 40, "1000" = 40, "1100" = 40, "1300" = 40, "1400" = 40, "1500" = 40, "1600" = 40, "1700" = 40, "1800" = 40, "1900" = 40 }
thu = { "0800" = 40, "0900" = 40, "1000" = 40, "1100" = 40, "1300" = 40, "1400" = 40, "1500" = 40, "1600" = 40, "1700" = 40, "1800" = 40, "1900" = 40 }
fri = { "0800" = 40, "0900" = 40, "1000" = 40, "1100" = 40, "1300" = 40, "1400" = 40, "1500" = 40, "1600" = 40, "1700" = 40, "1800" = 40, "1900" = 40 }
sat = { "0900" = 10, "1000" = 10, "1100" = 10, "1200" = 10 }
sun = { "0000" = 5, "0100" = 5, "0200" = 5, "0300" = 5, "0400" = 5, "0500" = 5, "0600" = 5, "0700" = 5, "0800" = 5, "0900" = 5, "1000" = 5, "1100" = 5, "1200" = 5, "1300" = 5, "1400" = 5, "1500" = 5, "1600" = 5, "1700" = 5, "1800" = 5, "1900" = 5, "2000" = 5, "2100" = 5, "2200" = 5, "2300" = 5 }

[service.cb-bench]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 300
_business_hours_service = "paris"
_capacity_service = "agents"
_request_time_bucket = 15
"#;

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<48} n={:<5} p50={:>9.1?} p90={:>9.1?} p99={:>9.1?} max={:>9.1?}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark harness; run with --ignored --nocapture (release build)"]
async fn availability_latency_7_days_of_15_minute_slots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::parse(FIXTURE, "bench.toml").expect("fixture");
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.storage = StorageConfig::Sqlite {
        path: dir.path().join("db.sqlite"),
    };

    // 1. The computation alone (booked map with one booking in every slot).
    let options: BTreeMap<String, String> = config.services["cb-bench"]
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rules = SlotRules::for_service(&config, "cb-bench", &options).expect("rules");
    let now = now_ms();
    let start = now + DAY_MS;
    let window = Window {
        start,
        end: start + 7 * DAY_MS,
        max_slots: None,
        report_busy: false,
    };
    let (from, to) = rules.check_window(&window, now).expect("window");
    let booked: BTreeMap<i64, u32> = (0..(to - from) / rules.bucket_ms())
        .map(|k| (from + k * rules.bucket_ms(), 1))
        .collect();
    let mut samples = Vec::new();
    let mut listed = 0;
    for _ in 0..2000 {
        let t = Instant::now();
        let slots = rules.availability(&window, now, &booked).expect("availability");
        samples.push(t.elapsed());
        listed = slots.len();
    }
    println!(
        "7 days x 15 min = {} slots evaluated, {listed} open slots listed",
        booked.len()
    );
    report("compute (sans-IO, 672 slots)", samples);

    // 2. The store query and R8/R9 over HTTP, with bookings stored.
    let server = Server::builder(config.clone()).start().await.expect("server");
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let bookings = 2000;
    for i in 0..bookings {
        // Spread over the 7 days, every 5 minutes; bookings at closed or full slots are refused
        // by the create path (40050/40051), so about half of them are stored.
        let desired = start + (i as i64 * 5 * 60_000) % (7 * DAY_MS);
        let body = serde_json::json!({
            "_customer_number": format!("555{i:06}"),
            "_desired_time": boomerang::time::format_iso(desired),
        });
        let r = client
            .post(format!("{base}/genesys/1/service/callback/cb-bench"))
            .json(&body)
            .send()
            .await
            .expect("booking");
        // Refused bookings (closed or full slot) are expected: the status is not checked.
        drop(r);
    }
    let store = server.callbacks().store().clone();
    let stored = store.count().await.expect("count");
    println!("{stored} callbacks stored");
    let mut samples = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let counts = store
            .booked_per_slot("cb-bench", from, to, rules.bucket_ms())
            .await
            .expect("counts");
        samples.push(t.elapsed());
        assert!(!counts.is_empty());
    }
    report("Store::booked_per_slot (SQLite, 7 days)", samples);

    let q = format!("start={}&number-of-days=7", boomerang::time::format_iso(start));
    for (name, path) in [
        (
            "R8 v1 HTTP (7 days, 15 min)",
            format!("/genesys/1/service/callback/cb-bench/availability?{q}"),
        ),
        (
            "R9 v2 HTTP (7 days, 15 min, report-busy)",
            format!(
                "/genesys/2/service/callback/cb-bench/availability?{q}&report-busy=true&timezone=Europe/Paris"
            ),
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            let r = client.get(format!("{base}{path}")).send().await.expect("answer");
            let status = r.status().as_u16();
            let body = r.bytes().await.expect("body");
            samples.push(t.elapsed());
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        }
        report(name, samples);
    }
    server.shutdown().await;
}
