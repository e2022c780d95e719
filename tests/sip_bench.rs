//! Load harness (ignored by default; run in release):
//!
//! ```text
//! CALLS=2000 CONCURRENCY=200 cargo test --release -p boomerang --test sip_bench -- --ignored --nocapture
//! ```
//!
//! Outbound call setup rate: Boomerang dials `CALLS` calls (INVITE with SDP, an RTP port bound
//! per leg), SIPp answers each with SDP, Boomerang ACKs and hangs up with BYE, `CONCURRENCY`
//! calls in flight. Prints calls per second and setup latency percentiles (INVITE -> 200).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boomerang::call::driver::{Dial, DriverConfig, Telephony};

#[path = "common/setup_rate.rs"]
mod setup_rate;
use setup_rate::dial_and_hang_up;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load harness; run in release with --ignored"]
async fn outbound_call_setup_rate() {
    let calls = env_or("CALLS", 2000);
    let concurrency = env_or("CONCURRENCY", 200);
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    };
    let mport = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port() & !1
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-fixtures/uas_answer.xml");
    let mut sipp = Command::new("sipp")
        .current_dir(dir.path())
        .arg("-sf")
        .arg(&scenario)
        .args([
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-bind_local",
            "-nostdin",
            "-timeout",
            "300s",
        ])
        .args([
            "-p",
            &port.to_string(),
            "-mp",
            &mport.to_string(),
            "-m",
            &calls.to_string(),
        ])
        .args([
            "-key",
            "codec_pt",
            "0",
            "-key",
            "codec_name",
            "PCMU",
            "-max_recv_loops",
            "10000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    let start = Instant::now();
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "sipp did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (t, _task) = Telephony::start(DriverConfig::loopback())
        .await
        .expect("telephony");
    let dest = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let run = dial_and_hang_up(&t, calls, concurrency, || Dial {
        number: "0600".into(),
        dest,
        domain: dest.to_string(),
        caller: "bench".into(),
        p_asserted_identity: None,
        ring_timeout: Duration::from_secs(30),
        auth: None,
    })
    .await;
    println!(
        "calls={calls} ok={} concurrency={concurrency} elapsed={:.2}s rate={:.0} calls/s setup p50={:?} p99={:?} max={:?}",
        run.latencies.len(),
        run.elapsed.as_secs_f64(),
        run.rate(),
        run.pct(0.5),
        run.pct(0.99),
        run.latencies.last()
    );
    let (counters, legs, ports) = t.counters().await.expect("counters");
    println!("endpoint counters after the run: {counters:?}; live legs {legs}, RTP ports {ports}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Ok(Some(st)) = sipp.try_wait() {
            break st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = sipp.kill();
            let _ = sipp.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("sipp exit code {code}");
    assert_eq!(run.latencies.len(), calls, "every call set up and torn down");
}
