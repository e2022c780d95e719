//! SIP over TCP (RFC 3261 §18) against SIPp in TCP mode (`-t t1`): an outbound call to a trunk
//! configured with `transport = "tcp"` (SIPp answers, Boomerang hangs up), a request SIPp sends
//! to Boomerang's listen port over TCP, and hostile streams (bad Content-Length, huge headers,
//! too many connections, idle connections): each closed and counted, never a panic.

use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::time::{Duration, Instant};

use boomerang::call::driver::{DriverConfig, LegId, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use boomerang::sip::config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;

#[path = "common/setup_rate.rs"]
mod setup_rate;
#[path = "common/sipp.rs"]
mod sipp;
use sipp::{DEADLINE, Sipp, Transport, codec_keys, free_port};

/// A listen address whose port is free for both UDP and TCP.
fn listen_addr() -> SocketAddr {
    for _ in 0..100 {
        let p = free_port();
        if StdTcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return SocketAddr::from(([127, 0, 0, 1], p));
        }
    }
    panic!("no free port");
}

async fn next(rx: &mut UnboundedReceiver<LegEvent>) -> LegEvent {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("event in time")
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_to_a_tcp_trunk() {
    let mut sipp = Sipp::start("uas_answer.xml", Transport::Tcp, None, &codec_keys(false));
    let tc = config::parse(
        &toml::from_str(&format!(
            "[[trunks]]\nname = \"tcp\"\naddress = \"{}\"\ntransport = \"tcp\"\n",
            sipp.addr()
        ))
        .expect("toml"),
    )
    .expect("valid");
    let mut cfg = DriverConfig::loopback();
    cfg.listen = listen_addr();
    cfg.trunks = tc.trunks.clone();
    let (t, _task) = Telephony::start(cfg).await.expect("telephony");
    let mut rx = t.dial_with_failover(&tc, "tcp", "0600").await.expect("dial");
    let leg = match next(&mut rx).await {
        LegEvent::Dialing { leg, .. } => LegId(leg),
        e => panic!("dialing first: {e:?}"),
    };
    let mut seen = Vec::new();
    loop {
        let e = next(&mut rx).await;
        let done = matches!(e, LegEvent::Answered { .. } | LegEvent::Hangup { .. });
        seen.push(e);
        if done {
            break;
        }
    }
    assert!(
        matches!(
            seen.last(),
            Some(LegEvent::Answered {
                codec: Some("PCMU"),
                ..
            })
        ),
        "answered over TCP: {seen:?}"
    );
    t.hangup(leg).await.expect("hangup");
    let end = loop {
        let e = next(&mut rx).await;
        if matches!(e, LegEvent::Hangup { .. }) {
            break e;
        }
    };
    assert_eq!(
        end,
        LegEvent::Hangup {
            cause: Cause::LocalHangup,
            code: Some(200),
            reason: "OK".into()
        }
    );
    assert_eq!(
        sipp.wait(),
        0,
        "SIPp saw INVITE, ACK and BYE on its TCP connection"
    );
    let (c, legs, _) = t.counters().await.expect("counters");
    assert_eq!(legs, 0);
    assert_eq!(c.parse_errors, 0);
    assert_eq!(c.framing_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_sends_options_over_tcp_and_gets_200_on_its_connection() {
    let mut cfg = DriverConfig::loopback();
    cfg.listen = listen_addr();
    let (t, _task) = Telephony::start(cfg).await.expect("telephony");
    let mut sipp = Sipp::start("uac_options.xml", Transport::Tcp, Some(t.local_addr()), &[]);
    assert_eq!(sipp.wait(), 0, "200 came back on SIPp's TCP connection");
    let (c, _, _) = t.counters().await.expect("counters");
    assert!(c.datagrams >= 1);
}

async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        match tokio::time::timeout(DEADLINE, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_streams_are_closed_and_counted() {
    let mut cfg = DriverConfig::loopback();
    cfg.listen = listen_addr();
    cfg.tcp.max_connections = 3;
    cfg.tcp.idle_timeout = Duration::from_millis(1500);
    let (t, _task) = Telephony::start(cfg).await.expect("telephony");
    let addr = t.local_addr();

    // Bad Content-Length.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: abc\r\n\r\n")
        .await
        .expect("write");
    assert!(closed_by_server(&mut s).await, "bad Content-Length closes");
    // Huge headers (no blank line within the limit).
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut huge = b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n".to_vec();
    for i in 0..2000 {
        huge.extend(format!("X-Filler-{i}: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n").as_bytes());
    }
    let _ = s.write_all(&huge).await;
    assert!(closed_by_server(&mut s).await, "huge headers close");

    // Idle: a silent connection is closed after the idle timeout.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    assert!(closed_by_server(&mut idle).await, "idle connection closed");

    // Limit: three connections served (each answers an OPTIONS, so each holds a permit; the
    // closed ones above release theirs a moment after closing), then a fourth is refused.
    let mut held = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while held.len() < 3 {
        assert!(Instant::now() < deadline, "could not hold 3 connections");
        if let Ok(mut s) = TcpStream::connect(addr).await
            && options_ok(&mut s, addr, held.len()).await
        {
            held.push(s);
            continue;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (A reset while connecting is a refusal just the same.)
    if let Ok(mut extra) = TcpStream::connect(addr).await {
        assert!(closed_by_server(&mut extra).await, "over the limit");
    }

    let deadline = Instant::now() + DEADLINE;
    let c = loop {
        let (c, _, _) = t.counters().await.expect("counters");
        if c.framing_errors >= 2 && c.connections_refused >= 1 && c.connections_idle_closed >= 1 {
            break c;
        }
        assert!(Instant::now() < deadline, "counters: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(c.framing_errors, 2, "{c:?}");
    assert_eq!(c.parse_errors, 0);
    drop(held);
    // Once the held connections are gone (their tasks see the close a moment later), the
    // endpoint serves over TCP again.
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "never served again");
        if let Ok(mut s) = TcpStream::connect(addr).await
            && options_ok(&mut s, addr, 99).await
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends a well-framed OPTIONS on `s`; true when a 200 comes back on it.
async fn options_ok(s: &mut TcpStream, addr: SocketAddr, n: usize) -> bool {
    let opts = format!(
        "OPTIONS sip:x@{addr} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKtcp{n}\r\n\
         From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: tcp{n}\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    if s.write_all(opts.as_bytes()).await.is_err() {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(DEADLINE, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            Ok(_) => return false, // closed: refused
            Err(_) => panic!("no response in time"),
        }
    }
    got.starts_with(b"SIP/2.0 200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_tcp_trunk_fails_over_at_once_not_after_timer_b() {
    // Nobody listens on the TCP trunk's port: the connection is refused and the INVITE's
    // transaction ends at once. T1 is 2 s here, so timer B (128 s) would outlast the deadline.
    let dead = {
        let l = StdTcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut backup = sipp::Sipp::uas("uas_answer.xml", &codec_keys(false));
    let tc = config::parse(
        &toml::from_str(&format!(
            "[[trunks]]\nname = \"tcp\"\naddress = \"{dead}\"\ntransport = \"tcp\"\nfailover = \"backup\"\n\
             [[trunks]]\nname = \"backup\"\naddress = \"{}\"\n",
            backup.addr()
        ))
        .expect("toml"),
    )
    .expect("valid");
    let mut cfg = DriverConfig::loopback();
    cfg.listen = listen_addr();
    cfg.trunks = tc.trunks.clone();
    cfg.timers.t1 = Duration::from_secs(2);
    let (t, _task) = Telephony::start(cfg).await.expect("telephony");
    let mut rx = t.dial_with_failover(&tc, "tcp", "0600").await.expect("dial");
    let mut seen = Vec::new();
    loop {
        let e = next(&mut rx).await;
        let done = matches!(e, LegEvent::Answered { .. });
        seen.push(e);
        if done {
            break;
        }
    }
    assert!(
        seen.contains(&LegEvent::Hangup {
            cause: Cause::NoAnswer,
            code: Some(408),
            reason: "Request Timeout".into()
        }),
        "{seen:?}"
    );
    let leg = seen
        .iter()
        .rev()
        .find_map(|e| match e {
            LegEvent::Dialing { leg, trunk } if trunk == "backup" => Some(LegId(*leg)),
            _ => None,
        })
        .expect("failed over to the backup trunk");
    t.hangup(leg).await.expect("hangup");
    loop {
        if matches!(next(&mut rx).await, LegEvent::Hangup { .. }) {
            break;
        }
    }
    assert_eq!(backup.wait(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_re_invites_arrive_over_tcp() {
    // SIPp sends its re-INVITEs (hold, resume) on the TCP connection: our server transactions
    // run over TCP and answer on that connection.
    let mut sipp = Sipp::start("uas_hold.xml", Transport::Tcp, None, &codec_keys(true));
    let tc = config::parse(
        &toml::from_str(&format!(
            "[[trunks]]\nname = \"tcp\"\naddress = \"{}\"\ntransport = \"tcp\"\n",
            sipp.addr()
        ))
        .expect("toml"),
    )
    .expect("valid");
    let mut cfg = DriverConfig::loopback();
    cfg.listen = listen_addr();
    cfg.trunks = tc.trunks.clone();
    let (t, _task) = Telephony::start(cfg).await.expect("telephony");
    let mut rx = t.dial_with_failover(&tc, "tcp", "0600").await.expect("dial");
    let mut seen = Vec::new();
    loop {
        let e = next(&mut rx).await;
        let done = matches!(e, LegEvent::Hold { held: false } | LegEvent::Hangup { .. });
        seen.push(e);
        if done {
            break;
        }
    }
    assert!(seen.contains(&LegEvent::Hold { held: true }), "{seen:?}");
    assert_eq!(seen.last(), Some(&LegEvent::Hold { held: false }), "{seen:?}");
    let leg = seen
        .iter()
        .find_map(|e| match e {
            LegEvent::Dialing { leg, .. } => Some(LegId(*leg)),
            _ => None,
        })
        .expect("dialing");
    // SIPp wants the ACK of the resume before our BYE: wait until its 7th message (100, 180,
    // 200, INVITE, ACK, INVITE, ACK) has arrived.
    let deadline = Instant::now() + DEADLINE;
    while t.counters().await.expect("counters").0.datagrams < 7 {
        assert!(Instant::now() < deadline, "SIPp's ACK never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.hangup(leg).await.expect("hangup");
    loop {
        if matches!(next(&mut rx).await, LegEvent::Hangup { .. }) {
            break;
        }
    }
    assert_eq!(
        sipp.wait(),
        0,
        "both re-INVITEs answered 200 over TCP, BYE received"
    );
}

/// Outbound call setup rate over TCP (ignored by default; run in release):
///
/// ```text
/// CALLS=2000 CONCURRENCY=200 cargo test --release -p boomerang --test sip_tcp -- --ignored --nocapture
/// ```
///
/// SIPp (`-t t1`, one TCP connection) answers every call with SDP; Boomerang ACKs and hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load harness; run in release with --ignored"]
async fn tcp_call_setup_rate() {
    let env = |n: &str, d: usize| std::env::var(n).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let calls = env("CALLS", 2000);
    let concurrency = env("CONCURRENCY", 200);
    let calls_s = calls.to_string();
    let mut keys = codec_keys(false);
    keys.extend(["-m", &calls_s, "-timeout", "300s", "-max_recv_loops", "10000"]);
    let mut sipp = Sipp::start("uas_answer.xml", Transport::Tcp, None, &keys);
    let tc = config::parse(
        &toml::from_str(&format!(
            "[[trunks]]\nname = \"tcp\"\naddress = \"{}\"\ntransport = \"tcp\"\n",
            sipp.addr()
        ))
        .expect("toml"),
    )
    .expect("valid");
    let trunk = tc.trunks[0].clone();
    let mut cfg = DriverConfig::loopback();
    cfg.listen = listen_addr();
    cfg.trunks = tc.trunks.clone();
    let (t, _task) = Telephony::start(cfg).await.expect("telephony");
    let run = setup_rate::dial_and_hang_up(&t, calls, concurrency, || {
        boomerang::call::driver::Dial::via_trunk(&trunk, "0600")
    })
    .await;
    println!(
        "tcp calls={calls} ok={} concurrency={concurrency} elapsed={:.2}s rate={:.0} calls/s setup p50={:?} p99={:?}",
        run.latencies.len(),
        run.elapsed.as_secs_f64(),
        run.rate(),
        run.pct(0.5),
        run.pct(0.99)
    );
    let (c, legs, ports) = t.counters().await.expect("counters");
    println!("endpoint counters: {c:?}; live legs {legs}, RTP ports {ports}");
    assert_eq!(run.latencies.len(), calls, "every call set up and torn down");
    assert_eq!(sipp.wait(), 0);
}
