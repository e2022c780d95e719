//! The floor of RTP relaying on this machine: a bare relay (no RTP parsing, no statistics, no
//! transcoding, no locks) with the same shape as Boomerang's relay engine, driven by a generator
//! like the bridge benchmark's. It is the peer the engine's CPU per relayed packet is compared
//! with in `BENCHMARKS.md`.
//!
//! `PAIRS` pairs of relay sockets (A, B); the generator sends a 172-byte packet every 20 ms to
//! each A and each B (1 ms slots), the relay (`THREADS` threads, level-triggered epoll, a look
//! every `TICK_US` µs, 0 = wake per datagram) sends what A receives from B's socket and the
//! reverse, to the generator's receiving sockets. Prints CPU per relayed packet of the relay
//! threads and of the generator, and the relay delay.
//!
//! ```text
//! PAIRS=1000 SECS=10 cargo run --release --example relay_floor
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::event::epoll;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of the calling thread, seconds.
fn thread_cpu() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn bind() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

/// Waits on `socks` (level-triggered), calling `f(index, datagram, arrival)` for one datagram per
/// ready socket and turn, until `stop`.
fn poll_loop(socks: &[UdpSocket], tick: Duration, stop: &AtomicBool, mut f: impl FnMut(usize, &[u8])) {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll");
    for (i, s) in socks.iter().enumerate() {
        epoll::add(&ep, s, epoll::EventData::new_u64(i as u64), epoll::EventFlags::IN).expect("add");
    }
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    let mut buf = [0u8; 1500];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let tenth = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    while !stop.load(Ordering::Relaxed) {
        if !tick.is_zero() {
            std::thread::sleep(tick);
        }
        events.clear();
        let timeout = if tick.is_zero() { &tenth } else { &zero };
        if epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), Some(timeout)).is_err() {
            continue;
        }
        for ev in &events {
            let i = ev.data.u64() as usize;
            if let Ok(n) = socks[i].recv(&mut buf) {
                f(i, &buf[..n]);
            }
        }
    }
}

fn main() {
    let pairs = env_or("PAIRS", 1000) as usize;
    let secs = env_or("SECS", 10);
    let threads = env_or("THREADS", 2).max(1) as usize;
    let tick = Duration::from_micros(env_or("TICK_US", 500));
    let gen_socks = 16;
    let a: Vec<UdpSocket> = (0..pairs).map(|_| bind()).collect();
    let b: Vec<UdpSocket> = (0..pairs).map(|_| bind()).collect();
    let gtx: Vec<UdpSocket> = (0..gen_socks).map(|_| bind()).collect();
    let grx: Vec<UdpSocket> = (0..gen_socks).map(|_| bind()).collect();
    let grx_addr: Vec<SocketAddr> = grx.iter().map(|s| s.local_addr().expect("addr")).collect();
    // Stream s < pairs goes to A[s], s >= pairs to B[s - pairs].
    let dests: Vec<SocketAddr> = a
        .iter()
        .chain(b.iter())
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();

    // Relay threads: each owns a share of the pairs, both sockets of a pair.
    let mut pairs_of: Vec<Vec<UdpSocket>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, (sa, sb)) in a.into_iter().zip(b).enumerate() {
        pairs_of[i % threads].push(sa);
        pairs_of[i % threads].push(sb);
    }
    let mut relays = Vec::new();
    for (t, socks) in pairs_of.into_iter().enumerate() {
        let stop = stop.clone();
        let grx_addr = grx_addr.clone();
        relays.push(
            std::thread::Builder::new()
                .name(format!("relay{t}"))
                .spawn(move || {
                    let c0 = thread_cpu();
                    let mut n = 0u64;
                    poll_loop(&socks, tick, &stop, |i, data| {
                        // A's datagram leaves from B's socket and the reverse.
                        let out = &socks[i ^ 1];
                        let _ = out.send_to(data, grx_addr[(i / 2) % grx_addr.len()]);
                        n += 1;
                    });
                    (n, thread_cpu() - c0)
                })
                .expect("relay thread"),
        );
    }

    // Receiver: relay delay from the send time in the first 8 bytes.
    let stop_rx = stop.clone();
    let rx = std::thread::spawn(move || {
        let c0 = thread_cpu();
        let mut delays: Vec<u32> = Vec::new();
        poll_loop(&grx, Duration::ZERO, &stop_rx, |_, data| {
            let now = epoch.elapsed().as_micros() as u64;
            let sent = data
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(now);
            delays.push(now.saturating_sub(sent) as u32);
        });
        (delays, thread_cpu() - c0)
    });

    // Generator: stream s is due at k·20 ms + s·20 ms/S, sent in 1 ms slots.
    let streams = pairs * 2;
    let c0 = thread_cpu();
    let mut sent = 0u64;
    let mut pkt = [0u8; 172];
    for slot in 0..secs * 1000 {
        let due = Duration::from_millis(slot);
        let now = epoch.elapsed();
        if now < due {
            std::thread::sleep(due - now);
        }
        let phase = (slot % 20) as usize;
        let (lo, hi) = (phase * streams / 20, (phase + 1) * streams / 20);
        for s in lo..hi {
            let ts = epoch.elapsed().as_micros() as u64;
            pkt[..8].copy_from_slice(&ts.to_le_bytes());
            if gtx[s % gen_socks].send_to(&pkt, dests[s]).is_ok() {
                sent += 1;
            }
        }
    }
    let gen_cpu = thread_cpu() - c0;
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (mut relayed, mut relay_cpu) = (0u64, 0.0);
    for r in relays {
        let (n, c) = r.join().expect("relay");
        relayed += n;
        relay_cpu += c;
    }
    let (mut delays, rx_cpu) = rx.join().expect("receiver");
    delays.sort_unstable();
    let pct = |q: f64| {
        delays
            .get(((delays.len().max(1) - 1) as f64 * q) as usize)
            .map_or(0.0, |&d| f64::from(d) / 1000.0)
    };
    let per = |c: f64| c * 1e6 / relayed.max(1) as f64;
    println!(
        "pairs {pairs}, {secs} s, {threads} relay threads, tick {} µs: sent {sent}, relayed {relayed}, received {}",
        tick.as_micros(),
        delays.len()
    );
    println!(
        "CPU per relayed packet: relay {:.2} µs, generator send {:.2} µs, generator receive {:.2} µs",
        per(relay_cpu),
        per(gen_cpu),
        per(rx_cpu)
    );
    println!(
        "relay delay p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
