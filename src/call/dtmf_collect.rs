//! DTMF on a leg, sans-IO: the digit collector behind `collect_dtmf` (max digits, terminator,
//! first-digit and inter-digit timeouts) and an in-band detector (Goertzel on the eight DTMF
//! frequencies, ITU-T Q.24 style checks) for peers that send tones in the audio instead of
//! RFC 4733 events.

use std::time::{Duration, Instant};

use serde::Serialize;

/// What `collect_dtmf` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectSpec {
    /// Stop after this many digits (the terminator is not counted). 0: no limit.
    pub max_digits: usize,
    /// A digit that ends the collection (not included in the result), e.g. `#`.
    pub terminator: Option<char>,
    /// Longest wait between two digits.
    pub inter_digit_timeout: Duration,
    /// Longest wait for the first digit.
    pub first_digit_timeout: Duration,
}

/// Why a collection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectEnd {
    MaxDigits,
    Terminator,
    /// First-digit or inter-digit timeout.
    Timeout,
    /// The leg ended first.
    Hangup,
}

/// The result of `collect_dtmf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collected {
    pub digits: String,
    pub end: CollectEnd,
}

/// One collection in progress.
#[derive(Debug, Clone)]
pub struct Collector {
    spec: CollectSpec,
    digits: String,
    deadline: Instant,
}

impl Collector {
    pub fn new(now: Instant, spec: CollectSpec) -> Collector {
        Collector {
            spec,
            digits: String::new(),
            deadline: now + spec.first_digit_timeout,
        }
    }

    /// A digit arrived; `Some` when the collection is complete.
    pub fn on_digit(&mut self, now: Instant, d: char) -> Option<Collected> {
        if self.spec.terminator == Some(d) {
            return Some(self.take(CollectEnd::Terminator));
        }
        if self.digits.len() < 64 {
            self.digits.push(d);
        }
        if self.spec.max_digits > 0 && self.digits.len() >= self.spec.max_digits {
            return Some(self.take(CollectEnd::MaxDigits));
        }
        self.deadline = now + self.spec.inter_digit_timeout;
        None
    }

    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Collected> {
        (now >= self.deadline).then(|| self.take(CollectEnd::Timeout))
    }

    /// The leg ended: what was collected so far.
    pub fn hangup(&mut self) -> Collected {
        self.take(CollectEnd::Hangup)
    }

    fn take(&mut self, end: CollectEnd) -> Collected {
        Collected {
            digits: std::mem::take(&mut self.digits),
            end,
        }
    }
}

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Samples per analysis block (20 ms at 8 kHz).
const BLOCK: usize = 160;

/// In-band DTMF detector for 8 kHz audio. A digit is reported once, when it has been present
/// for two consecutive 20 ms blocks; it may repeat after two blocks without it.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coeffs: [f32; 8],
    buf: [f32; BLOCK],
    fill: usize,
    candidate: Option<char>,
    run: u32,
    reported: Option<char>,
    gap: u32,
    out: Option<char>,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> InbandDetector {
        let mut coeffs = [0.0; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos();
        }
        InbandDetector {
            coeffs,
            buf: [0.0; BLOCK],
            fill: 0,
            candidate: None,
            run: 0,
            reported: None,
            gap: 0,
            out: None,
        }
    }

    /// Pushes samples; returns a digit when one is detected (at most one per call: push one
    /// 20 ms frame at a time).
    pub fn push(&mut self, samples: &[i16]) -> Option<char> {
        for &s in samples {
            if let Some(slot) = self.buf.get_mut(self.fill) {
                *slot = f32::from(s) / 32768.0;
            }
            self.fill += 1;
            if self.fill >= BLOCK {
                self.fill = 0;
                let key = self.analyse();
                self.track(key);
            }
        }
        self.out.take()
    }

    fn analyse(&self) -> Option<char> {
        let mut power = [0.0f32; 8];
        for (p, c) in power.iter_mut().zip(self.coeffs) {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for &x in &self.buf {
                let s0 = x + c * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            *p = s1 * s1 + s2 * s2 - c * s1 * s2;
        }
        let energy: f32 = self.buf.iter().map(|x| x * x).sum::<f32>() * BLOCK as f32 / 2.0;
        let (rows, cols) = power.split_at(4);
        let best = |v: &[f32]| -> Option<(usize, f32, f32)> {
            let (i, &m) = v
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.partial_cmp(b.1).unwrap_or(std::cmp::Ordering::Equal))?;
            let second = v
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .fold(0.0f32, f32::max);
            Some((i, m, second))
        };
        let (ri, rp, r2) = best(rows)?;
        let (ci, cp, c2) = best(cols)?;
        // Level: each tone at least about -35 dBFS.
        let min_power = 2.0e-4 * (BLOCK * BLOCK) as f32 / 4.0;
        if rp < min_power || cp < min_power {
            return None;
        }
        // Each tone clearly above the others of its group, twist within 8 dB.
        if rp < 6.0 * r2 || cp < 6.0 * c2 || rp > 6.3 * cp || cp > 6.3 * rp {
            return None;
        }
        // The two tones carry most of the block's energy (not speech or music).
        if rp + cp < 0.6 * energy {
            return None;
        }
        KEYS.get(ri).and_then(|r| r.get(ci)).copied()
    }

    fn track(&mut self, key: Option<char>) {
        match key {
            Some(k) if Some(k) == self.candidate => self.run += 1,
            Some(k) => {
                self.candidate = Some(k);
                self.run = 1;
            }
            None => {
                self.candidate = None;
                self.run = 0;
            }
        }
        if let Some(k) = self.candidate.filter(|_| self.run >= 2) {
            self.gap = 0;
            if self.reported != Some(k) {
                self.reported = Some(k);
                self.out = Some(k);
            }
        } else if self.candidate.is_none() {
            self.gap += 1;
            if self.gap >= 2 {
                self.reported = None;
            }
        }
    }
}

/// 8 kHz linear PCM of `digits` as DTMF tones (`on_ms` tone, `off_ms` silence each), for tests
/// and fixtures.
pub fn synthesize(digits: &str, on_ms: u32, off_ms: u32) -> Vec<i16> {
    let mut out = Vec::new();
    for d in digits.chars() {
        let Some((r, c)) = KEYS
            .iter()
            .enumerate()
            .find_map(|(r, row)| row.iter().position(|k| *k == d).map(|c| (r, c)))
        else {
            continue;
        };
        let (Some(fr), Some(fc)) = (ROWS.get(r), COLS.get(c)) else {
            continue;
        };
        let n = (on_ms * 8) as usize;
        for i in 0..n {
            let t = i as f32 / 8000.0;
            let v = 0.25 * (2.0 * std::f32::consts::PI * fr * t).sin()
                + 0.25 * (2.0 * std::f32::consts::PI * fc * t).sin();
            out.push((v * 32767.0) as i16);
        }
        out.extend(std::iter::repeat_n(0i16, (off_ms * 8) as usize));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(pcm: &[i16]) -> String {
        let mut d = InbandDetector::new();
        pcm.chunks(160).filter_map(|c| d.push(c)).collect()
    }

    #[test]
    fn detects_every_key_once() {
        let keys = "123A456B789C*0#D";
        assert_eq!(detect(&synthesize(keys, 80, 60)), keys);
        assert_eq!(detect(&synthesize("55", 100, 100)), "55");
    }

    #[test]
    fn ignores_single_tones_noise_and_short_blips() {
        let tone: Vec<i16> = (0..8000)
            .map(|i| ((2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 8000.0).sin() * 8000.0) as i16)
            .collect();
        assert_eq!(detect(&tone), "");
        let mut rng = fastrand::Rng::with_seed(7);
        let noise: Vec<i16> = (0..16000).map(|_| rng.i16(-8000..8000)).collect();
        assert_eq!(detect(&noise), "");
        assert_eq!(detect(&synthesize("1", 20, 100)), "");
    }

    #[test]
    fn collector_stops_on_terminator_max_digits_and_timeouts() {
        let t0 = Instant::now();
        let spec = CollectSpec {
            max_digits: 4,
            terminator: Some('#'),
            inter_digit_timeout: Duration::from_secs(3),
            first_digit_timeout: Duration::from_secs(10),
        };
        let mut c = Collector::new(t0, spec);
        assert_eq!(c.poll_timeout(), t0 + Duration::from_secs(10));
        assert_eq!(c.on_digit(t0, '1'), None);
        assert_eq!(c.poll_timeout(), t0 + Duration::from_secs(3));
        let r = c.on_digit(t0, '#').expect("terminated");
        assert_eq!((r.digits.as_str(), r.end), ("1", CollectEnd::Terminator));
        let mut c = Collector::new(t0, spec);
        for d in "123".chars() {
            assert_eq!(c.on_digit(t0, d), None);
        }
        assert_eq!(c.on_digit(t0, '4').map(|r| r.end), Some(CollectEnd::MaxDigits));
        let mut c = Collector::new(t0, spec);
        c.on_digit(t0, '9');
        assert_eq!(c.handle_timeout(t0 + Duration::from_secs(2)), None);
        let r = c.handle_timeout(t0 + Duration::from_secs(3)).expect("timeout");
        assert_eq!((r.digits.as_str(), r.end), ("9", CollectEnd::Timeout));
    }
}
