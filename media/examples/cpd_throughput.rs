//! CPD throughput on a busy machine: criterion measures wall time, which other processes on a
//! shared machine inflate; this also reads the process's own CPU time (Linux /proc/self/stat,
//! 100 Hz ticks) so the per-core figure is not the scheduler's. Full pipeline per frame:
//! µ-law decode + engine push + event poll, for 1,000 calls × 30 s.
//!
//! `cargo run --release -p boomerang-media --example cpd_throughput`

use std::time::Instant;

use boomerang_media::cpd::{Cpd, CpdParams};
use boomerang_media::g711::Law;

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn main() {
    const CALLS: usize = 1000;
    const FRAMES: usize = 1500;
    let mut x: u32 = 7;
    let tau = 2.0 * std::f32::consts::PI;
    let frames: Vec<[u8; 160]> = (0..FRAMES)
        .map(|i| {
            let mut f = [0u8; 160];
            for (j, b) in f.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let t = (i * 160 + j) as f32 / 8000.0;
                let s = match (i / 50) % 8 {
                    0 | 5 => ((x % 2000) as f32 - 1000.0) * 0.1,
                    1..=3 => {
                        let f0 = 120.0 + 20.0 * (tau * 3.0 * t).sin();
                        (1..8)
                            .map(|h| (tau * f0 * h as f32 * t).sin() / h as f32)
                            .sum::<f32>()
                            * 5000.0
                    }
                    4 => 4000.0 * ((tau * 480.0 * t).sin() + (tau * 620.0 * t).sin()),
                    6 => 8000.0 * (tau * 1000.0 * t).sin(),
                    _ => (x % 8000) as f32 - 4000.0,
                };
                *b = Law::Ulaw.encode(s as i16);
            }
            f
        })
        .collect();
    let mut calls: Vec<Cpd> = (0..CALLS).map(|_| Cpd::new(CpdParams::default())).collect();
    let mut pcm = [0i16; 160];
    let mut events = 0usize;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for f in &frames {
        for cpd in calls.iter_mut() {
            Law::Ulaw.decode_slice(f, &mut pcm);
            cpd.push(&pcm);
            while cpd.poll_event().is_some() {
                events += 1;
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let n = (CALLS * FRAMES) as f64;
    println!(
        "frames: {n}, events: {events}, state: {} bytes per channel",
        Cpd::STATE_BYTES
    );
    println!(
        "wall: {wall:.2} s, {:.2} µs/frame, {:.0} real-time channels (wall)",
        wall / n * 1e6,
        n / wall / 50.0
    );
    if let (Some(a), Some(b)) = (cpu0, cpu_seconds()) {
        let cpu = (b - a).max(0.01);
        println!(
            "cpu:  {cpu:.2} s, {:.2} µs/frame, {:.0} real-time channels per core (cpu)",
            cpu / n * 1e6,
            n / cpu / 50.0
        );
    }
}
