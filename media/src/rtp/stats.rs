//! Receiver statistics of RFC 3550: sequence validation (appendix A.1), loss (A.3) and
//! interarrival jitter (A.8).

use crate::Time;

const RTP_SEQ_MOD: u32 = 1 << 16;
/// A jump forward of at least this many sequence numbers is not believed at once.
const MAX_DROPOUT: u32 = 3000;
/// A packet this many sequence numbers behind is still a late packet, not a restart.
const MAX_MISORDER: u32 = 100;
/// Sequential packets a new source must send before it is accepted.
pub(crate) const MIN_SEQUENTIAL: u32 = 2;

/// What the sequence check of RFC 3550 A.1 made of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqVerdict {
    /// In sequence, late, duplicate or after a small gap: counted and delivered.
    Valid,
    /// The source is still on probation.
    Probation,
    /// A large jump; dropped unless the next packet confirms it (then the source restarts).
    BadJump,
}

/// Receiver-side statistics for one synchronisation source.
#[derive(Clone, Debug)]
pub struct ReceiverStats {
    ssrc: u32,
    clock_rate: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<u32>,
    jitter_q4: u32,
    last_arrival: Option<Time>,
    awaiting_first: bool,
}

/// A snapshot of the reception statistics, in RFC 3550 terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceptionSnapshot {
    /// The source.
    pub ssrc: u32,
    /// Extended highest sequence number received (cycles in the upper 16 bits).
    pub extended_highest_seq: u32,
    /// Packets expected from the first to the highest sequence number.
    pub expected: u32,
    /// Packets received, duplicates and late ones included (as the RFC counts them).
    pub received: u32,
    /// Cumulative number of packets lost (negative when duplicates outnumber losses).
    pub cumulative_lost: i64,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

impl ReceptionSnapshot {
    /// Interarrival jitter in milliseconds for a `clock_rate` Hz clock.
    pub fn jitter_ms(&self, clock_rate: u32) -> f64 {
        if clock_rate == 0 {
            return 0.0;
        }
        f64::from(self.jitter) * 1000.0 / f64::from(clock_rate)
    }
}

impl ReceiverStats {
    /// Start statistics for `ssrc` with its first sequence number. `probation` is the number of
    /// sequential packets still needed before the source counts as valid (0 to trust it now).
    pub fn new(ssrc: u32, first_seq: u16, clock_rate: u32, probation: u32) -> ReceiverStats {
        let mut s = ReceiverStats {
            ssrc,
            clock_rate,
            max_seq: first_seq.wrapping_sub(1),
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            last_arrival: None,
            awaiting_first: false,
        };
        if probation == 0 {
            // Trusted source: the first packet (counted by the `update_seq` that follows)
            // starts the sequence space.
            s.init_seq(first_seq);
            s.awaiting_first = true;
        }
        s
    }

    /// The source these statistics describe.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 A.1 `update_seq`.
    pub(crate) fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        if self.awaiting_first {
            self.awaiting_first = false;
            if seq == self.max_seq {
                self.received = self.received.wrapping_add(1);
                return SeqVerdict::Valid;
            }
        }
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::BadJump;
            }
        } else {
            // Duplicate or reordered packet.
        }
        self.received = self.received.wrapping_add(1);
        SeqVerdict::Valid
    }

    /// RFC 3550 A.8: update the interarrival jitter with a packet's timestamp and arrival time.
    pub(crate) fn update_jitter(&mut self, rtp_timestamp: u32, arrival: Time) {
        if self.clock_rate == 0 {
            return;
        }
        let arrival_ts = (u128::from(arrival.as_micros()) * u128::from(self.clock_rate) / 1_000_000) as u32;
        let transit = arrival_ts.wrapping_sub(rtp_timestamp);
        if let Some(prev) = self.transit {
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            // J += (|D| - J) / 16, in Q4 fixed point as in A.8.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d.min(1 << 27))
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
        self.last_arrival = Some(arrival);
    }

    /// Time the last valid packet arrived.
    pub fn last_arrival(&self) -> Option<Time> {
        self.last_arrival
    }

    /// Current statistics.
    pub fn snapshot(&self) -> ReceptionSnapshot {
        let extended = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = extended.wrapping_sub(self.base_seq).wrapping_add(1);
        ReceptionSnapshot {
            ssrc: self.ssrc,
            extended_highest_seq: extended,
            expected,
            received: self.received,
            cumulative_lost: i64::from(expected) - i64::from(self.received),
            jitter: self.jitter_q4 >> 4,
        }
    }

    /// Loss since the previous call, as the 8-bit fraction of an RTCP report block (A.3),
    /// together with the clamped 24-bit cumulative loss. Advances the interval.
    pub fn take_interval_loss(&mut self) -> (u8, i32) {
        let snap = self.snapshot();
        let expected_interval = snap.expected.wrapping_sub(self.expected_prior);
        self.expected_prior = snap.expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let cumulative = snap.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as i32;
        (fraction, cumulative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stats: &mut ReceiverStats, seqs: impl IntoIterator<Item = u16>) -> Vec<SeqVerdict> {
        seqs.into_iter().map(|s| stats.update_seq(s)).collect()
    }

    #[test]
    fn counts_in_order_packets_across_the_wrap() {
        let mut s = ReceiverStats::new(1, 65530, 8000, 0);
        let v = feed(&mut s, (0..12u16).map(|i| 65530u16.wrapping_add(i)));
        assert!(v.iter().all(|v| *v == SeqVerdict::Valid));
        let snap = s.snapshot();
        assert_eq!(snap.extended_highest_seq, 65536 + 5);
        assert_eq!(snap.expected, 12);
        assert_eq!(snap.received, 12);
        assert_eq!(snap.cumulative_lost, 0);
    }

    #[test]
    fn first_sequence_zero_is_not_a_wrap() {
        let mut s = ReceiverStats::new(1, 0, 8000, 0);
        feed(&mut s, 0..3u16);
        assert_eq!(s.snapshot().extended_highest_seq, 2);
        assert_eq!(s.snapshot().expected, 3);
    }

    #[test]
    fn loss_and_fraction() {
        let mut s = ReceiverStats::new(1, 100, 8000, 0);
        // 100..=199 with every 4th missing: 25 lost of 100.
        feed(&mut s, (100..200u16).filter(|x| x % 4 != 1));
        let snap = s.snapshot();
        assert_eq!(snap.expected, 100);
        assert_eq!(snap.cumulative_lost, 25);
        let (fraction, cum) = s.take_interval_loss();
        assert_eq!(fraction, 64); // 25 % of 256
        assert_eq!(cum, 25);
        // Next interval without loss.
        feed(&mut s, 200..210u16);
        assert_eq!(s.take_interval_loss(), (0, 25));
    }

    #[test]
    fn duplicates_and_late_packets_are_valid_but_counted() {
        let mut s = ReceiverStats::new(1, 10, 8000, 0);
        feed(&mut s, [10, 11, 13, 12, 12]);
        let snap = s.snapshot();
        assert_eq!(snap.extended_highest_seq, 13);
        assert_eq!(snap.received, 5);
        assert_eq!(snap.cumulative_lost, -1);
    }

    #[test]
    fn large_jump_needs_confirmation_then_restarts() {
        let mut s = ReceiverStats::new(1, 1000, 8000, 0);
        feed(&mut s, 1000..1010u16);
        assert_eq!(s.update_seq(30000), SeqVerdict::BadJump);
        assert_eq!(s.update_seq(30001), SeqVerdict::Valid);
        let snap = s.snapshot();
        assert_eq!(snap.extended_highest_seq, 30001);
        assert_eq!(snap.expected, 1);
        // A single stray jump does not restart.
        assert_eq!(s.update_seq(5), SeqVerdict::BadJump);
        assert_eq!(s.update_seq(30002), SeqVerdict::Valid);
    }

    #[test]
    fn probation_needs_sequential_packets() {
        let mut s = ReceiverStats::new(9, 500, 8000, MIN_SEQUENTIAL);
        assert_eq!(s.update_seq(500), SeqVerdict::Probation);
        assert_eq!(s.update_seq(501), SeqVerdict::Valid);
        assert_eq!(s.snapshot().received, 1);
        let mut s = ReceiverStats::new(9, 500, 8000, MIN_SEQUENTIAL);
        assert_eq!(s.update_seq(500), SeqVerdict::Probation);
        assert_eq!(s.update_seq(700), SeqVerdict::Probation);
        assert_eq!(s.update_seq(701), SeqVerdict::Valid);
    }

    #[test]
    fn jitter_is_zero_for_perfect_pacing_and_grows_with_variation() {
        let mut s = ReceiverStats::new(1, 0, 8000, 0);
        for i in 0..100u32 {
            s.update_jitter(i * 160, Time::from_millis(u64::from(i) * 20));
        }
        assert_eq!(s.snapshot().jitter, 0);
        // Every other packet 10 ms late: |D| = 80 units each time, J tends to 80.
        for i in 100..600u32 {
            let wobble = if i % 2 == 0 { 10 } else { 0 };
            s.update_jitter(i * 160, Time::from_millis(u64::from(i) * 20 + wobble));
        }
        let j = s.snapshot().jitter;
        assert!((75..=81).contains(&j), "jitter {j}");
        assert!((s.snapshot().jitter_ms(8000) - 10.0).abs() < 0.7);
    }
}
