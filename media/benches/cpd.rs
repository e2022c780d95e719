//! CPD full pipeline: G.711 µ-law decode + the CPD engine (tone bank, VAD, cadence, SIT, fax,
//! beep, classifier, evidence) for one 20 ms frame of each of 1,000 calls.
//! Real-time channels per core = frames per second / 50.

use boomerang_media::cpd::{Cpd, CpdParams};
use boomerang_media::g711::Law;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

const CALLS: usize = 1000;
const FRAMES: usize = 500; // 10 s of audio per call, cycled

fn signal() -> Vec<[u8; 160]> {
    // a mix the engine works hard on: noisy speech-like bursts, a dual tone cadence, a beep
    let mut x: u32 = 7;
    let mut out = vec![[0u8; 160]; FRAMES];
    for (i, f) in out.iter_mut().enumerate() {
        for (j, b) in f.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let t = (i * 160 + j) as f32 / 8000.0;
            let tau = 2.0 * std::f32::consts::PI;
            let s = match i / 50 {
                0 | 5 => ((x % 2000) as f32 - 1000.0) * 0.1,
                1..=3 => {
                    let f0 = 120.0 + 20.0 * (tau * 3.0 * t).sin();
                    (1..8)
                        .map(|h| (tau * f0 * h as f32 * t).sin() / h as f32)
                        .sum::<f32>()
                        * 5000.0
                        + (x % 2000) as f32
                        - 1000.0
                }
                4 => 4000.0 * ((tau * 480.0 * t).sin() + (tau * 620.0 * t).sin()),
                6 => 8000.0 * (tau * 1000.0 * t).sin(),
                _ => ((x % 8000) as f32 - 4000.0) * if (i / 10) % 2 == 0 { 1.0 } else { 0.05 },
            };
            *b = Law::Ulaw.encode(s as i16);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let frames = signal();
    let mut calls: Vec<Cpd> = (0..CALLS).map(|_| Cpd::new(CpdParams::default())).collect();
    let mut pos = 0usize;
    let mut pcm = [0i16; 160];
    let mut g = c.benchmark_group("cpd");
    g.throughput(Throughput::Elements(CALLS as u64));
    g.bench_function("frames_1000_calls", |b| {
        b.iter(|| {
            for (k, cpd) in calls.iter_mut().enumerate() {
                let f = &frames[(pos + k) % FRAMES];
                Law::Ulaw.decode_slice(f, &mut pcm);
                cpd.push(&pcm);
                while let Some(ev) = cpd.poll_event() {
                    black_box(ev);
                }
            }
            pos = (pos + 1) % FRAMES;
        })
    });
    let bank = boomerang_media::cpd::tones::Bank::new();
    let mut block = [0i16; 160];
    Law::Ulaw.decode_slice(&frames[120], &mut block);
    g.throughput(Throughput::Elements(1));
    g.bench_function("tone_bank_one_block", |b| {
        b.iter(|| black_box(bank.analyse(black_box(&block))))
    });
    g.finish();
    println!("CPD state per channel: {} bytes", Cpd::STATE_BYTES);
}

criterion_group!(benches, bench);
criterion_main!(benches);
