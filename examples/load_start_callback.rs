//! Load harness for POST start-callback with durable commit (the BENCHMARKS.md figures).
//!
//! Starts a Boomerang server in this process on 127.0.0.1 (real HTTP, real SQLite file with
//! `synchronous=FULL`), drives it with N concurrent keep-alive clients for S seconds, then
//! reports accepted callbacks per second and latency percentiles, and checks that every
//! accepted callback is in the database.
//!
//! cargo run --release --example load_start_callback -- [--clients 64] [--seconds 10]
//!     [--mode scheduled|immediate] [--db DIR]

use std::sync::Arc;
use std::time::{Duration, Instant};

use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use boomerang::store::{SqliteStore, Store};

const CONFIG: &str = r#"
[service.bench]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 60
_urs_virtual_queue = "VQ_Bench"
_customer_lookup_keys = "_customer_number,usr_account"
"#;

struct Args {
    clients: usize,
    seconds: u64,
    immediate: bool,
    db_dir: Option<std::path::PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        clients: 64,
        seconds: 10,
        immediate: false,
        db_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--clients" => a.clients = value.parse().expect("--clients N"),
            "--seconds" => a.seconds = value.parse().expect("--seconds S"),
            "--mode" => a.immediate = value == "immediate",
            "--db" => a.db_dir = Some(value.into()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = args();
    let tmp = tempfile::tempdir().unwrap();
    let dir = args.db_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let db = dir.join(format!("bench-{}.db", std::process::id()));
    let mut config = Config::parse(CONFIG, "bench").unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.storage = StorageConfig::Sqlite { path: db.clone() };
    let server = Server::builder(config).start().await.unwrap();
    let url = format!("http://{}/genesys/1/service/callback/bench", server.local_addr());
    let desired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let body = if args.immediate {
        r#"{"_customer_number":"5115","usr_customer_name":"Bob Markel","usr_account":"A1"}"#.to_string()
    } else {
        format!(
            r#"{{"_customer_number":"5115","_desired_time":"{desired}","usr_customer_name":"Bob Markel","usr_account":"A1"}}"#
        )
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();
    let body = Arc::new(body);

    // Warm-up: one second, not counted.
    let run = |duration: Duration| {
        let mut tasks = Vec::new();
        for _ in 0..args.clients {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let end = Instant::now() + duration;
                let (mut latencies, mut failed) = (Vec::with_capacity(16384), 0u64);
                while Instant::now() < end {
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.as_str().to_owned())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            latencies.push(t.elapsed().as_micros() as u64);
                        }
                        _ => failed += 1,
                    }
                }
                (latencies, failed)
            }));
        }
        tasks
    };
    for t in run(Duration::from_secs(1)) {
        t.await.unwrap();
    }
    let before = server
        .callbacks()
        .reporter()
        .accepted_scheduled
        .load(std::sync::atomic::Ordering::Relaxed)
        + server
            .callbacks()
            .reporter()
            .accepted_immediate
            .load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in run(Duration::from_secs(args.seconds)) {
        let (l, f) = t.await.unwrap();
        latencies.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    server.shutdown().await;
    let stored = SqliteStore::open(&db).unwrap().count().await.unwrap();
    let accepted = latencies.len() as u64;
    println!(
        "mode: {}",
        if args.immediate {
            "immediate (QUEUED + session)"
        } else {
            "scheduled"
        }
    );
    println!("clients: {}, seconds: {:.1}", args.clients, elapsed);
    println!(
        "accepted: {accepted} ({:.0}/s), failed: {failed}",
        accepted as f64 / elapsed
    );
    println!(
        "latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0)
    );
    println!("records in the database after shutdown: {stored} (warm-up included: {before} before the run)");
    assert_eq!(
        stored,
        before + accepted,
        "every accepted callback must be durable"
    );
}
