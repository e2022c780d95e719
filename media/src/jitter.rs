//! Jitter buffer: puts received audio packets back in order and releases them at a steady
//! pace, one frame per packet time.
//!
//! - **Reordering and duplicates**: packets are kept in a ring of fixed slots indexed by the
//!   extended sequence number and released strictly in sequence order; a duplicate, or a packet
//!   whose turn has passed, is counted and dropped, so no frame ever comes out twice.
//! - **Loss**: when a packet is still missing at its playout time and a later packet is
//!   already waiting, a [`FrameKind::Concealment`] frame is released in its place, flagged, so
//!   CPD can tell a gap in the network from silence on the line. When nothing later has
//!   arrived yet (the peer paused, or the call is ending) nothing is released.
//! - **Delay**: each packet's playout time comes from its RTP timestamp through an anchor
//!   (timestamp ↔ local time) set when a talkspurt starts, after an underrun or after a
//!   timestamp jump, at `arrival + target delay`. In [`JitterMode::Adaptive`] the target is
//!   `packet time + 4 × measured jitter`, clamped to the configured range (20..200 ms by
//!   default), and the buffer also drains one frame early when packets keep waiting more than
//!   two frames longer than the target. [`JitterMode::Fixed`] keeps a constant target, for tests.
//! - **Timestamp and sequence jumps**: a timestamp far from the anchor re-anchors the stream;
//!   a sequence number further ahead than the ring holds resets the buffer.
//!
//! Slots are allocated once in [`JitterBuffer::new`]; pushing and popping do not allocate.

use std::time::Duration;

use crate::Time;

/// How the playout delay is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitterMode {
    /// Constant delay (deterministic; for tests and for peers known to be local).
    Fixed(Duration),
    /// Delay follows measured jitter, within `min..=max`.
    Adaptive {
        /// Lowest target delay.
        min: Duration,
        /// Highest target delay.
        max: Duration,
    },
}

/// Jitter buffer configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// Delay policy.
    pub mode: JitterMode,
    /// Media clock rate (8000 for G.711).
    pub clock_rate: u32,
    /// Samples per packet (ptime × clock rate; 160 for 20 ms at 8 kHz).
    pub frame_samples: u32,
    /// Largest payload kept; longer payloads are dropped and counted.
    pub max_payload: usize,
    /// Number of slots (packets the buffer can hold ahead of playout).
    pub capacity: usize,
}

impl JitterConfig {
    /// Adaptive 20..200 ms buffer for G.711 at `ptime_ms`.
    pub fn adaptive(ptime_ms: u32) -> Self {
        JitterConfig {
            mode: JitterMode::Adaptive {
                min: Duration::from_millis(20),
                max: Duration::from_millis(200),
            },
            ..Self::fixed(ptime_ms, Duration::from_millis(60))
        }
    }

    /// Fixed-delay buffer for G.711 at `ptime_ms`.
    pub fn fixed(ptime_ms: u32, delay: Duration) -> Self {
        let ptime_ms = ptime_ms.clamp(5, 120);
        JitterConfig {
            mode: JitterMode::Fixed(delay),
            clock_rate: 8000,
            frame_samples: 8 * ptime_ms,
            max_payload: 8 * ptime_ms as usize * 2,
            capacity: 64,
        }
    }
}

/// Whether a released frame carries received audio or stands in for a lost packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A packet that arrived.
    Audio,
    /// A lost packet: the payload is empty; conceal `samples` samples.
    Concealment,
}

/// A frame released for playout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Audio or concealment.
    pub kind: FrameKind,
    /// RTP sequence number (of the lost packet, for concealment).
    pub sequence: u16,
    /// RTP timestamp (estimated, for concealment).
    pub timestamp: u32,
    /// Samples this frame covers.
    pub samples: u32,
    /// Payload (empty for concealment).
    pub payload: &'a [u8],
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored for playout.
    Stored,
    /// Its turn has passed (or it was played already): dropped.
    Late,
    /// Already waiting: dropped.
    Duplicate,
    /// Payload longer than `max_payload`: dropped.
    Oversize,
    /// Sequence jump beyond the ring: the buffer was reset and the packet stored.
    Reset,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub pushed: u64,
    /// Audio frames released.
    pub released: u64,
    /// Concealment frames released.
    pub concealed: u64,
    /// Late packets dropped.
    pub late: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Oversize payloads dropped.
    pub oversize: u64,
    /// Buffer resets (sequence jumps, explicit resets).
    pub resets: u64,
    /// Re-anchorings (talkspurts, underruns, timestamp jumps).
    pub reanchors: u64,
    /// Frames released early to shrink the delay.
    pub drained: u64,
}

#[derive(Clone, Debug)]
struct Slot {
    ext_seq: u64,
    filled: bool,
    timestamp: u32,
    due: Time,
    len: usize,
    data: Box<[u8]>,
}

/// The jitter buffer of one received stream.
#[derive(Clone, Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    slots: Vec<Slot>,
    /// Next extended sequence number to release.
    next: Option<u64>,
    /// Highest extended sequence number stored.
    highest: u64,
    pending: usize,
    anchor: Option<(u32, Time)>,
    last_released: Option<(u32, Time)>,
    last_released_ext: Option<u64>,
    prev_transit_us: Option<i64>,
    jitter_us: f64,
    over_target_streak: u32,
    stats: JitterStats,
}

const SEQ_BASE: u64 = 1 << 32;
/// A timestamp putting a packet this far beyond the largest delay re-anchors the stream.
const TIMESTAMP_JUMP: Duration = Duration::from_millis(1000);
/// Consecutive packets waiting > target + 2 frames before a frame is drained.
const DRAIN_STREAK: u32 = 50;

impl JitterBuffer {
    /// A buffer with `cfg`; allocates all slots now.
    pub fn new(cfg: JitterConfig) -> Self {
        let mut cfg = cfg;
        cfg.capacity = cfg.capacity.clamp(4, 4096);
        cfg.clock_rate = cfg.clock_rate.max(1);
        cfg.frame_samples = cfg.frame_samples.max(1);
        let slots = (0..cfg.capacity)
            .map(|_| Slot {
                ext_seq: 0,
                filled: false,
                timestamp: 0,
                due: Time::ZERO,
                len: 0,
                data: vec![0u8; cfg.max_payload].into_boxed_slice(),
            })
            .collect();
        JitterBuffer {
            cfg,
            slots,
            next: None,
            highest: 0,
            pending: 0,
            anchor: None,
            last_released: None,
            last_released_ext: None,
            prev_transit_us: None,
            jitter_us: 0.0,
            over_target_streak: 0,
            stats: JitterStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.pending
    }

    /// True when no packet is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Measured interarrival jitter.
    pub fn jitter(&self) -> Duration {
        Duration::from_micros(self.jitter_us as u64)
    }

    /// The delay new talkspurts are given.
    pub fn target_delay(&self) -> Duration {
        match self.cfg.mode {
            JitterMode::Fixed(d) => d,
            JitterMode::Adaptive { min, max } => {
                let want = self.frame_duration() + Duration::from_micros((4.0 * self.jitter_us) as u64);
                want.clamp(min, max.max(min))
            }
        }
    }

    fn frame_duration(&self) -> Duration {
        self.samples_to_duration(self.cfg.frame_samples)
    }

    fn samples_to_duration(&self, samples: u32) -> Duration {
        Duration::from_micros(u64::from(samples) * 1_000_000 / u64::from(self.cfg.clock_rate))
    }

    /// Forget everything (for example when the remote source changes).
    pub fn reset(&mut self) {
        for s in &mut self.slots {
            s.filled = false;
        }
        self.next = None;
        self.pending = 0;
        self.anchor = None;
        self.last_released = None;
        self.last_released_ext = None;
        self.prev_transit_us = None;
        self.over_target_streak = 0;
        self.stats.resets += 1;
    }

    fn extend(&self, seq: u16) -> u64 {
        match self.next {
            None => SEQ_BASE + u64::from(seq),
            Some(_) => {
                let delta = seq.wrapping_sub(self.highest as u16) as i16;
                self.highest.wrapping_add_signed(i64::from(delta))
            }
        }
    }

    fn due_for(&self, anchor: (u32, Time), timestamp: u32) -> Option<Time> {
        let offset = timestamp.wrapping_sub(anchor.0) as i32;
        let us = i64::from(offset) * 1_000_000 / i64::from(self.cfg.clock_rate);
        let t = anchor.1.as_micros() as i64 + us;
        (t >= 0).then(|| Time::from_micros(t as u64))
    }

    fn update_jitter(&mut self, now: Time, timestamp: u32) {
        let media_us = (i64::from(timestamp) * 1_000_000) / i64::from(self.cfg.clock_rate);
        let transit = now.as_micros() as i64 - media_us;
        if let Some(prev) = self.prev_transit_us {
            let mut d = (transit - prev).abs();
            // A wrapped or jumped timestamp is not jitter.
            if d > 1_000_000 {
                d = 0;
            }
            self.jitter_us += (d as f64 - self.jitter_us) / 16.0;
        }
        self.prev_transit_us = Some(transit);
    }

    /// Push a received audio packet at `now`.
    pub fn push(
        &mut self,
        now: Time,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> PushOutcome {
        self.stats.pushed += 1;
        if payload.len() > self.cfg.max_payload {
            self.stats.oversize += 1;
            return PushOutcome::Oversize;
        }
        let mut outcome = PushOutcome::Stored;
        let mut ext = self.extend(sequence);
        if let Some(next) = self.next {
            if ext < next {
                let released_past = self.last_released_ext.is_some_and(|r| ext <= r);
                if released_past || self.highest.saturating_sub(ext) >= self.cfg.capacity as u64 {
                    self.stats.late += 1;
                    return PushOutcome::Late;
                }
                // Earlier than anything waiting and nothing after it released yet: it
                // becomes the next to play.
                self.next = Some(ext);
            } else if ext - next >= self.cfg.capacity as u64 {
                self.reset();
                ext = self.extend(sequence);
                outcome = PushOutcome::Reset;
            }
        }
        self.update_jitter(now, timestamp);
        let cap = self.cfg.capacity as u64;
        let idx = (ext % cap) as usize;
        if let Some(slot) = self.slots.get(idx) {
            if slot.filled && slot.ext_seq == ext {
                self.stats.duplicates += 1;
                return PushOutcome::Duplicate;
            }
        }
        let target = self.target_delay();
        // Decide the playout time.
        let mut due = self.anchor.and_then(|a| self.due_for(a, timestamp));
        let reanchor = match due {
            None => true,
            Some(d) => {
                let talkspurt = marker && self.pending == 0;
                let underrun = self.pending == 0 && d < now;
                let jump = d > now + target + TIMESTAMP_JUMP || d + TIMESTAMP_JUMP < now;
                talkspurt || underrun || jump
            }
        };
        if reanchor {
            if self.anchor.is_some() {
                self.stats.reanchors += 1;
            }
            self.anchor = Some((timestamp, now + target));
            due = Some(now + target);
            self.over_target_streak = 0;
        } else if let (JitterMode::Adaptive { .. }, Some(d)) = (self.cfg.mode, due) {
            // Packets keep waiting well beyond the target: release one frame early.
            if d.saturating_since(now) > target + 2 * self.frame_duration() {
                self.over_target_streak += 1;
                if self.over_target_streak >= DRAIN_STREAK {
                    self.over_target_streak = 0;
                    let step = self.frame_duration();
                    if let Some(a) = self.anchor.as_mut() {
                        a.1 = a.1 - step;
                    }
                    due = Some(d - step);
                    self.stats.drained += 1;
                }
            } else {
                self.over_target_streak = 0;
            }
        }
        let Some(slot) = self.slots.get_mut(idx) else {
            return PushOutcome::Late;
        };
        let Some(dst) = slot.data.get_mut(..payload.len()) else {
            self.stats.oversize += 1;
            return PushOutcome::Oversize;
        };
        dst.copy_from_slice(payload);
        slot.len = payload.len();
        slot.ext_seq = ext;
        slot.timestamp = timestamp;
        slot.due = due.unwrap_or(now);
        slot.filled = true;
        self.pending += 1;
        match self.next {
            None => {
                self.next = Some(ext);
                self.highest = ext;
            }
            Some(_) => {
                if ext > self.highest {
                    self.highest = ext;
                }
            }
        }
        outcome
    }

    fn slot_for(&self, ext: u64) -> Option<&Slot> {
        let s = self.slots.get((ext % self.cfg.capacity as u64) as usize)?;
        (s.filled && s.ext_seq == ext).then_some(s)
    }

    /// The first packet waiting after the missing `next`, if any.
    fn first_waiting_after(&self, next: u64) -> Option<(u64, &Slot)> {
        if self.pending == 0 {
            return None;
        }
        (next + 1..=self.highest).find_map(|e| self.slot_for(e).map(|s| (e, s)))
    }

    /// Playout time of a missing `next` and the timestamp it would have had.
    fn missing_due(&self, next: u64) -> Option<(Time, u32)> {
        let (later_ext, later) = self.first_waiting_after(next)?;
        match self.last_released {
            Some((ts, at)) => Some((
                at + self.frame_duration(),
                ts.wrapping_add(self.cfg.frame_samples),
            )),
            None => {
                let back = (later_ext - next) as u32;
                let samples = back.saturating_mul(self.cfg.frame_samples);
                Some((
                    later.due - self.samples_to_duration(samples),
                    later.timestamp.wrapping_sub(samples),
                ))
            }
        }
    }

    /// When the next frame is due, if one is known.
    pub fn poll_timeout(&self) -> Option<Time> {
        let next = self.next?;
        match self.slot_for(next) {
            Some(s) => Some(s.due),
            None => self.missing_due(next).map(|(t, _)| t),
        }
    }

    /// Release the next frame if it is due at `now`. Call repeatedly until `None`.
    pub fn pop(&mut self, now: Time) -> Option<Frame<'_>> {
        let next = self.next?;
        let cap = self.cfg.capacity as u64;
        let idx = (next % cap) as usize;
        let present = self.slot_for(next).map(|s| (s.due, s.timestamp));
        match present {
            Some((due, timestamp)) => {
                if due > now {
                    return None;
                }
                self.next = Some(next + 1);
                self.pending = self.pending.saturating_sub(1);
                self.stats.released += 1;
                let samples = match self.slot_for(next + 1) {
                    Some(n) => n
                        .timestamp
                        .wrapping_sub(timestamp)
                        .clamp(1, 8 * self.cfg.frame_samples),
                    None => self.cfg.frame_samples,
                };
                self.last_released = Some((timestamp, due));
                self.last_released_ext = Some(next);
                let slot = self.slots.get_mut(idx)?;
                slot.filled = false;
                Some(Frame {
                    kind: FrameKind::Audio,
                    sequence: next as u16,
                    timestamp,
                    samples,
                    payload: slot.data.get(..slot.len).unwrap_or_default(),
                })
            }
            None => {
                let (due, timestamp) = self.missing_due(next)?;
                if due > now {
                    return None;
                }
                self.next = Some(next + 1);
                self.stats.concealed += 1;
                self.last_released = Some((timestamp, due));
                self.last_released_ext = Some(next);
                Some(Frame {
                    kind: FrameKind::Concealment,
                    sequence: next as u16,
                    timestamp,
                    samples: self.cfg.frame_samples,
                    payload: &[],
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(m: u64) -> Time {
        Time::from_millis(m)
    }

    fn fixed(delay_ms: u64) -> JitterBuffer {
        JitterBuffer::new(JitterConfig::fixed(20, Duration::from_millis(delay_ms)))
    }

    fn payload(seq: u16) -> [u8; 160] {
        [seq as u8; 160]
    }

    /// Pop everything due up to `until`, ticking every 5 ms; (kind, seq, time) per frame.
    fn drain(jb: &mut JitterBuffer, from: u64, until: u64) -> Vec<(FrameKind, u16, u64)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= until {
            while let Some(f) = jb.pop(ms(t)) {
                if f.kind == FrameKind::Audio {
                    assert_eq!(f.payload, &payload(f.sequence)[..]);
                }
                out.push((f.kind, f.sequence, t));
            }
            t += 5;
        }
        out
    }

    #[test]
    fn in_order_stream_is_delayed_by_the_fixed_target() {
        let mut jb = fixed(60);
        for i in 0..10u16 {
            assert_eq!(
                jb.push(ms(u64::from(i) * 20), i, u32::from(i) * 160, i == 0, &payload(i)),
                PushOutcome::Stored
            );
        }
        let out = drain(&mut jb, 0, 1000);
        assert_eq!(out.len(), 10);
        for (i, (kind, seq, t)) in out.iter().enumerate() {
            assert_eq!(*kind, FrameKind::Audio);
            assert_eq!(*seq, i as u16);
            assert_eq!(*t, 60 + 20 * i as u64);
        }
        assert!(jb.is_empty());
        assert_eq!(jb.poll_timeout(), None);
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let mut jb = fixed(60);
        let order = [0u16, 2, 1, 4, 3, 5];
        for (k, &s) in order.iter().enumerate() {
            jb.push(ms(k as u64 * 20), s, u32::from(s) * 160, false, &payload(s));
        }
        let seqs: Vec<u16> = drain(&mut jb, 0, 500).iter().map(|f| f.1).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let mut jb = fixed(40);
        jb.push(ms(0), 0, 0, false, &payload(0));
        assert_eq!(jb.push(ms(1), 0, 0, false, &payload(0)), PushOutcome::Duplicate);
        jb.push(ms(20), 1, 160, false, &payload(1));
        let out = drain(&mut jb, 0, 100);
        assert_eq!(out.len(), 2);
        assert_eq!(jb.push(ms(100), 0, 0, false, &payload(0)), PushOutcome::Late);
        let s = jb.stats();
        assert_eq!((s.duplicates, s.late, s.released), (1, 1, 2));
    }

    #[test]
    fn loss_gives_a_flagged_concealment_frame() {
        let mut jb = fixed(40);
        for i in [0u16, 1, 3, 4] {
            jb.push(ms(u64::from(i) * 20), i, u32::from(i) * 160, false, &payload(i));
        }
        let out = drain(&mut jb, 0, 300);
        let kinds: Vec<(FrameKind, u16, u64)> = out;
        assert_eq!(
            kinds,
            vec![
                (FrameKind::Audio, 0, 40),
                (FrameKind::Audio, 1, 60),
                (FrameKind::Concealment, 2, 80),
                (FrameKind::Audio, 3, 100),
                (FrameKind::Audio, 4, 120),
            ]
        );
        assert_eq!(jb.stats().concealed, 1);
    }

    #[test]
    fn a_late_packet_still_in_time_is_played_not_concealed() {
        let mut jb = fixed(60);
        jb.push(ms(0), 0, 0, false, &payload(0));
        jb.push(ms(20), 1, 160, false, &payload(1));
        jb.push(ms(40), 3, 480, false, &payload(3));
        // Seq 2 is due at 100 ms and arrives at 95 ms.
        let mut out = drain(&mut jb, 0, 90);
        jb.push(ms(95), 2, 320, false, &payload(2));
        out.extend(drain(&mut jb, 95, 300));
        assert!(out.iter().all(|f| f.0 == FrameKind::Audio));
        assert_eq!(out.iter().map(|f| f.1).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn nothing_is_invented_when_the_peer_stops() {
        let mut jb = fixed(40);
        jb.push(ms(0), 0, 0, false, &payload(0));
        let out = drain(&mut jb, 0, 2000);
        assert_eq!(out.len(), 1);
        assert_eq!(jb.stats().concealed, 0);
    }

    #[test]
    fn sequence_wraps_cleanly() {
        let mut jb = fixed(40);
        for i in 0..6u16 {
            let s = 65533u16.wrapping_add(i);
            jb.push(ms(u64::from(i) * 20), s, u32::from(i) * 160, false, &payload(s));
        }
        let seqs: Vec<u16> = drain(&mut jb, 0, 500).iter().map(|f| f.1).collect();
        assert_eq!(seqs, vec![65533, 65534, 65535, 0, 1, 2]);
    }

    #[test]
    fn timestamp_jump_reanchors_instead_of_stalling() {
        let mut jb = fixed(40);
        jb.push(ms(0), 0, 0, false, &payload(0));
        jb.push(ms(20), 1, 160, false, &payload(1));
        // The peer's timestamp leaps by an hour.
        jb.push(ms(40), 2, 8000 * 3600, false, &payload(2));
        jb.push(ms(60), 3, 8000 * 3600 + 160, false, &payload(3));
        let out = drain(&mut jb, 0, 300);
        assert_eq!(out.iter().map(|f| f.1).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert!(out.iter().all(|f| f.2 <= 120), "{out:?}");
        assert_eq!(jb.stats().reanchors, 1);
    }

    #[test]
    fn sequence_jump_resets() {
        let mut jb = fixed(40);
        jb.push(ms(0), 0, 0, false, &payload(0));
        assert_eq!(
            jb.push(ms(20), 30000, 160, false, &payload(30000)),
            PushOutcome::Reset
        );
        let seqs: Vec<u16> = drain(&mut jb, 20, 300).iter().map(|f| f.1).collect();
        assert_eq!(seqs, vec![30000]);
    }

    #[test]
    fn oversize_payload_is_dropped() {
        let mut jb = fixed(40);
        assert_eq!(jb.push(ms(0), 0, 0, false, &[0u8; 1000]), PushOutcome::Oversize);
        assert!(jb.is_empty());
    }

    #[test]
    fn adaptive_target_follows_jitter_within_bounds() {
        let mut jb = JitterBuffer::new(JitterConfig::adaptive(20));
        // Perfect pacing: the minimum.
        for i in 0..50u16 {
            jb.push(ms(u64::from(i) * 20), i, u32::from(i) * 160, false, &payload(i));
            drain(&mut jb, u64::from(i) * 20, u64::from(i) * 20 + 19);
        }
        assert_eq!(jb.target_delay(), Duration::from_millis(20));
        // ±30 ms of jitter: the target grows, but never past 200 ms.
        for i in 50..400u16 {
            let wobble = if i % 2 == 0 { 30 } else { 0 };
            jb.push(
                ms(u64::from(i) * 20 + wobble),
                i,
                u32::from(i) * 160,
                false,
                &payload(i),
            );
        }
        let t = jb.target_delay();
        assert!(
            t >= Duration::from_millis(100) && t <= Duration::from_millis(200),
            "{t:?}"
        );
        let mut huge = JitterBuffer::new(JitterConfig::adaptive(20));
        for i in 0..200u16 {
            let wobble = if i % 2 == 0 { 900 } else { 0 };
            huge.push(
                ms(u64::from(i) * 20 + wobble),
                i,
                u32::from(i) * 160,
                false,
                &payload(i),
            );
        }
        assert_eq!(huge.target_delay(), Duration::from_millis(200));
    }

    /// Runs a time-stepped simulation: arrivals (time ms, seq) pushed when due, frames
    /// popped every 5 ms. Returns released (kind, seq, time).
    fn simulate(
        jb: &mut JitterBuffer,
        mut arrivals: Vec<(u64, u16)>,
        end: u64,
    ) -> Vec<(FrameKind, u16, u64)> {
        arrivals.sort();
        let mut out = Vec::new();
        let mut a = 0;
        let mut t = 0;
        while t <= end {
            while a < arrivals.len() && arrivals[a].0 <= t {
                let s = arrivals[a].1;
                jb.push(ms(t), s, u32::from(s) * 160, false, &payload(s));
                a += 1;
            }
            while let Some(f) = jb.pop(ms(t)) {
                out.push((f.kind, f.sequence, t));
            }
            t += 5;
        }
        out
    }

    #[test]
    fn adaptive_buffer_grows_after_underrun_and_drains_when_calm() {
        let mut jb = JitterBuffer::new(JitterConfig::adaptive(20));
        // 10 s: a 150 ms network stall at 2 s (packets 100..107 arrive together), then calm.
        let arrivals = (0..500u64)
            .map(|i| (if (100..108).contains(&i) { 2160 } else { i * 20 }, i as u16))
            .collect();
        let out = simulate(&mut jb, arrivals, 12_000);
        let seqs: Vec<u16> = out.iter().map(|f| f.1).collect();
        assert_eq!(
            seqs,
            (0..500).collect::<Vec<u16>>(),
            "in order, none twice, none lost"
        );
        assert!(out.iter().all(|f| f.0 == FrameKind::Audio));
        let s = jb.stats();
        assert!(s.reanchors >= 1, "{s:?}");
        // The stall raised the delay; calm afterwards drains it back.
        assert!(s.drained >= 1, "{s:?}");
        let last = out.last().unwrap();
        assert!(last.2 < 499 * 20 + 200, "{last:?}");
    }

    proptest! {
        /// Any arrival order, duplicates included: frames come out in order, none twice, and
        /// with a delay that covers the shuffling, every packet comes out as audio.
        #[test]
        fn any_arrival_order_comes_out_in_order(
            n in 1usize..48,
            keys in proptest::collection::vec(any::<u32>(), 48),
            dups in proptest::collection::vec(0usize..48, 0..10),
            start in any::<u16>(),
        ) {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| keys[i]);
            for d in dups { if d < n { order.push(d); } }
            let mut jb = JitterBuffer::new(JitterConfig { capacity: 64, ..JitterConfig::fixed(20, Duration::from_millis(2000)) });
            for (k, &i) in order.iter().enumerate() {
                let seq = start.wrapping_add(i as u16);
                jb.push(ms(k as u64), seq, (i as u32) * 160, false, &payload(seq));
            }
            let out = drain(&mut jb, 0, 5000);
            let seqs: Vec<u16> = out.iter().map(|f| f.1).collect();
            let expected: Vec<u16> = (0..n).map(|i| start.wrapping_add(i as u16)).collect();
            prop_assert_eq!(seqs, expected);
            prop_assert!(out.iter().all(|f| f.0 == FrameKind::Audio));
        }

        /// Arrivals spread over time with random lateness and loss: never out of order, never
        /// twice, whatever is late or lost.
        #[test]
        fn random_lateness_never_reorders_or_repeats(
            delays in proptest::collection::vec(0u64..300, 1..120),
            lost in proptest::collection::vec(any::<bool>(), 120),
            adaptive in any::<bool>(),
        ) {
            let cfg = if adaptive { JitterConfig::adaptive(20) } else { JitterConfig::fixed(20, Duration::from_millis(60)) };
            let mut jb = JitterBuffer::new(cfg);
            let arrivals: Vec<(u64, u16)> = delays.iter().enumerate()
                .filter(|(i, _)| !lost[*i % lost.len()])
                .map(|(i, d)| (i as u64 * 20 + d, i as u16)).collect();
            let end = delays.len() as u64 * 20 + 2000;
            let released: Vec<u16> = simulate(&mut jb, arrivals, end).iter().map(|f| f.1).collect();
            prop_assert!(released.windows(2).all(|w| w[0] < w[1]), "{:?}", released);
        }
    }
}
