//! Hot-path benchmarks of the media core.
//!
//! `cargo bench -p boomerang-media --bench media -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use boomerang_media::Time;
use boomerang_media::g711::Law;
use boomerang_media::jitter::{JitterBuffer, JitterConfig};
use boomerang_media::rtp::{self, RtpHeader, RtpSession, SessionConfig};
use boomerang_media::treatment::{self, PlayMode, Player, Treatment};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn g711(c: &mut Criterion) {
    let pcm: Vec<i16> = (0..160).map(|i| ((i * 7919) % 65536 - 32768) as i16).collect();
    let codes: Vec<u8> = (0..160).map(|i| (i * 37 % 256) as u8).collect();
    let mut g = c.benchmark_group("g711");
    g.throughput(Throughput::Elements(160));
    for law in [Law::Ulaw, Law::Alaw] {
        let mut out = [0u8; 160];
        g.bench_function(format!("encode_{law:?}_160"), |b| {
            b.iter(|| law.encode_slice(black_box(&pcm), &mut out));
        });
        let mut out = [0i16; 160];
        g.bench_function(format!("decode_{law:?}_160"), |b| {
            b.iter(|| law.decode_slice(black_box(&codes), &mut out));
        });
    }
    g.finish();
}

fn rtp_packets(c: &mut Criterion) {
    let payload = [0xFFu8; 160];
    let mut buf = [0u8; 256];
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));
    let mut seq = 0u16;
    g.bench_function("build_parse_packet", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let h = RtpHeader {
                marker: false,
                payload_type: 0,
                sequence: seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 42,
            };
            let n = rtp::write(&h, black_box(&payload), &mut buf).unwrap_or(0);
            black_box(rtp::parse(&buf[..n]).map(|p| p.payload.len()).unwrap_or(0))
        });
    });
    let mut tx = RtpSession::new(SessionConfig::g711(Law::Ulaw, 1, 0, 0), Time::ZERO);
    let mut rx = RtpSession::new(SessionConfig::g711(Law::Ulaw, 2, 0, 0), Time::ZERO);
    let mut now = Time::ZERO;
    g.bench_function("session_send_receive_packet", |b| {
        b.iter(|| {
            now = now + Duration::from_millis(20);
            let n = tx
                .write_audio(now, black_box(&payload), 160, &mut buf)
                .unwrap_or(0);
            black_box(rx.handle_rtp(now, &buf[..n]).is_ok())
        });
    });
    g.finish();
}

fn jitter(c: &mut Criterion) {
    let payload = [0xFFu8; 160];
    let mut g = c.benchmark_group("jitter");
    g.throughput(Throughput::Elements(1));
    let mut jb = JitterBuffer::new(JitterConfig::adaptive(20));
    let mut i: u64 = 0;
    g.bench_function("push_pop_packet", |b| {
        b.iter(|| {
            i += 1;
            // Mild reordering: swap every other pair.
            let seq = if i % 4 == 1 {
                i + 1
            } else if i % 4 == 2 {
                i - 1
            } else {
                i
            };
            let now = Time::from_millis(i * 20);
            jb.push(now, seq as u16, (seq * 160) as u32, false, black_box(&payload));
            while let Some(f) = jb.pop(now) {
                black_box(f.payload.len());
            }
        });
    });
    g.finish();
}

fn playback(c: &mut Criterion) {
    const STREAMS: usize = 1000;
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../treatments/waiting_for_agent.wav");
    let t: Arc<Treatment> = match treatment::load(&shipped) {
        Ok(t) => Arc::new(t),
        Err(_) => Arc::new(Treatment::from_pcm(
            "synthetic",
            (0..240_000).map(|i| ((i % 200) * 100) as i16).collect(),
        )),
    };
    let mut legs: Vec<(Player, RtpSession)> = (0..STREAMS)
        .map(|i| {
            let mut p = Player::new(
                Arc::clone(&t),
                Law::Ulaw,
                PlayMode::Loop,
                Duration::from_millis(20),
            );
            p.start(Time::ZERO);
            (
                p,
                RtpSession::new(SessionConfig::g711(Law::Ulaw, i as u32, 0, 0), Time::ZERO),
            )
        })
        .collect();
    let mut buf = [0u8; 256];
    let mut now = Time::ZERO;
    let mut g = c.benchmark_group("playback");
    // One iteration = one 20 ms frame for each of STREAMS calls, written as RTP packets.
    g.throughput(Throughput::Elements(STREAMS as u64));
    g.bench_function("frames_1000_streams", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for (p, s) in legs.iter_mut() {
                if let Some(Ok(n)) = p.poll_packet(now, s, &mut buf) {
                    bytes += n;
                }
            }
            now = now + Duration::from_millis(20);
            black_box(bytes)
        });
    });
    g.finish();
}

criterion_group!(benches, g711, rtp_packets, jitter, playback);
criterion_main!(benches);
