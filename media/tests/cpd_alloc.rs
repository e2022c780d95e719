//! The CPD frame path does not allocate: a counting global allocator watches 30 s of frames
//! (speech-like noise, tones, a beep, concealment) pushed through decode + engine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use boomerang_media::cpd::{Cpd, CpdParams};
use boomerang_media::g711::Law;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn frame_path_does_not_allocate() {
    // Prepare 30 s of µ-law frames before counting.
    let mut payloads = vec![[0u8; 160]; 1500];
    let mut x: u32 = 12345;
    for (i, p) in payloads.iter_mut().enumerate() {
        for (j, b) in p.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let t = (i * 160 + j) as f32 / 8000.0;
            let s = match i / 100 {
                0 | 1 => (x % 4000) as f32 - 2000.0,
                2..=5 => 6000.0 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin(),
                _ => ((x % 16000) as f32 - 8000.0) * if j < 100 { 1.0 } else { 0.1 },
            };
            *b = Law::Ulaw.encode(s as i16);
        }
    }
    let mut cpd = Cpd::new(CpdParams::default());
    let mut pcm = [0i16; 160];
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut events = 0;
    for (i, p) in payloads.iter().enumerate() {
        if i % 37 == 0 {
            cpd.push_concealment(160);
        } else {
            Law::Ulaw.decode_slice(p, &mut pcm);
            cpd.push(&pcm);
        }
        while cpd.poll_event().is_some() {
            events += 1;
        }
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations on the frame path");
    assert!(events >= 1);
}
