//! RTCP (RFC 3550 §6): sender and receiver reports, SDES CNAME and BYE, and the transmission
//! interval of §6.3 / appendix A.7 as a sans-IO timer ([`RtcpTimer`]).

use std::time::Duration;

use crate::Time;

/// RTCP packet type of a sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type of a source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type of a goodbye.
pub const PT_BYE: u8 = 203;

/// Bytes of IPv4 + UDP headers counted in the average RTCP packet size (§6.2).
const IP_UDP_OVERHEAD: usize = 28;

/// Sender information of a sender report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wallclock time as a 64-bit NTP timestamp (seconds since 1900 in the upper 32 bits).
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to `ntp_timestamp`.
    pub rtp_timestamp: u32,
    /// Packets sent since the session started.
    pub packet_count: u32,
    /// Payload octets sent since the session started.
    pub octet_count: u32,
}

/// One reception report block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from the source (0: none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// One packet of a compound RTCP datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report.
    SenderReport {
        /// Sender.
        ssrc: u32,
        /// Sender information.
        info: SenderInfo,
        /// Reception report blocks.
        blocks: Vec<ReportBlock>,
    },
    /// Receiver report.
    ReceiverReport {
        /// Reporter.
        ssrc: u32,
        /// Reception report blocks.
        blocks: Vec<ReportBlock>,
    },
    /// Source description; only CNAME items are kept.
    SourceDescription {
        /// (source, CNAME if present) per chunk.
        chunks: Vec<(u32, Option<String>)>,
    },
    /// Goodbye.
    Goodbye {
        /// Sources leaving.
        sources: Vec<u32>,
        /// Reason, if given.
        reason: Option<String>,
    },
    /// Any other packet type (APP, feedback, XR...), skipped.
    Other {
        /// Its packet type.
        packet_type: u8,
    },
}

/// Why a datagram is not a valid RTCP compound packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRtcp {
    /// Fewer than 4 bytes left for a packet header.
    #[error("RTCP packet too short at offset {offset}")]
    TooShort {
        /// Offset in the datagram.
        offset: usize,
    },
    /// Version is not 2.
    #[error("RTCP version {0}, only version 2 is supported")]
    BadVersion(u8),
    /// The length field runs past the datagram.
    #[error("RTCP packet at offset {offset} claims {len} bytes, past the end")]
    LengthPastEnd {
        /// Offset in the datagram.
        offset: usize,
        /// Claimed length in bytes.
        len: usize,
    },
    /// A report or item count runs past the packet.
    #[error("RTCP packet type {packet_type} has more items than bytes")]
    CountPastEnd {
        /// Packet type.
        packet_type: u8,
    },
    /// A compound packet must start with SR or RR (RFC 3550 §6.1).
    #[error("RTCP compound packet starts with type {0}, not SR/RR")]
    NotAReport(u8),
}

/// Why an RTCP packet could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtcpWriteError {
    /// The output buffer is too small.
    #[error("RTCP output buffer too small")]
    BufferTooSmall,
    /// More than 31 report blocks, or an item longer than 255 bytes.
    #[error("RTCP item too large")]
    TooLarge,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn parse_block(b: &[u8], at: usize) -> Option<ReportBlock> {
    let lost = be32(b, at + 4)?;
    let mut cumulative = (lost & 0x00FF_FFFF) as i32;
    if cumulative & 0x0080_0000 != 0 {
        cumulative -= 0x0100_0000;
    }
    Some(ReportBlock {
        ssrc: be32(b, at)?,
        fraction_lost: (lost >> 24) as u8,
        cumulative_lost: cumulative,
        extended_highest_seq: be32(b, at + 8)?,
        jitter: be32(b, at + 12)?,
        last_sr: be32(b, at + 16)?,
        delay_since_last_sr: be32(b, at + 20)?,
    })
}

fn parse_blocks(body: &[u8], at: usize, count: usize, pt: u8) -> Result<Vec<ReportBlock>, MalformedRtcp> {
    (0..count)
        .map(|i| parse_block(body, at + i * 24).ok_or(MalformedRtcp::CountPastEnd { packet_type: pt }))
        .collect()
}

/// Parse a compound RTCP datagram. Never panics, whatever the bytes.
pub fn parse_compound(datagram: &[u8]) -> Result<Vec<RtcpPacket>, MalformedRtcp> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < datagram.len() {
        let head = datagram
            .get(offset..offset + 4)
            .ok_or(MalformedRtcp::TooShort { offset })?;
        let version = head[0] >> 6;
        if version != 2 {
            return Err(MalformedRtcp::BadVersion(version));
        }
        let count = usize::from(head[0] & 0x1F);
        let pt = head[1];
        let len = (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1) * 4;
        let pkt = datagram
            .get(offset..offset + len)
            .ok_or(MalformedRtcp::LengthPastEnd { offset, len })?;
        if offset == 0 && pt != PT_SR && pt != PT_RR {
            return Err(MalformedRtcp::NotAReport(pt));
        }
        let short = MalformedRtcp::CountPastEnd { packet_type: pt };
        let parsed = match pt {
            PT_SR => {
                let ssrc = be32(pkt, 4).ok_or(short)?;
                let ntp_hi = be32(pkt, 8).ok_or(short)?;
                let ntp_lo = be32(pkt, 12).ok_or(short)?;
                let info = SenderInfo {
                    ntp_timestamp: (u64::from(ntp_hi) << 32) | u64::from(ntp_lo),
                    rtp_timestamp: be32(pkt, 16).ok_or(short)?,
                    packet_count: be32(pkt, 20).ok_or(short)?,
                    octet_count: be32(pkt, 24).ok_or(short)?,
                };
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    blocks: parse_blocks(pkt, 28, count, pt)?,
                }
            }
            PT_RR => RtcpPacket::ReceiverReport {
                ssrc: be32(pkt, 4).ok_or(short)?,
                blocks: parse_blocks(pkt, 8, count, pt)?,
            },
            PT_SDES => {
                let mut chunks = Vec::with_capacity(count);
                let mut at = 4;
                for _ in 0..count {
                    let ssrc = be32(pkt, at).ok_or(short)?;
                    at += 4;
                    let mut cname = None;
                    loop {
                        let item = *pkt.get(at).ok_or(short)?;
                        if item == 0 {
                            // End of items; the chunk is padded to a 32-bit boundary.
                            at = (at + 4) & !3;
                            break;
                        }
                        let ilen = usize::from(*pkt.get(at + 1).ok_or(short)?);
                        let text = pkt.get(at + 2..at + 2 + ilen).ok_or(short)?;
                        if item == 1 {
                            cname = Some(String::from_utf8_lossy(text).into_owned());
                        }
                        at += 2 + ilen;
                    }
                    chunks.push((ssrc, cname));
                }
                RtcpPacket::SourceDescription { chunks }
            }
            PT_BYE => {
                let mut sources = Vec::with_capacity(count);
                for i in 0..count {
                    sources.push(be32(pkt, 4 + i * 4).ok_or(short)?);
                }
                let at = 4 + count * 4;
                let reason = match pkt.get(at) {
                    Some(&rlen) if at + 1 < pkt.len() => {
                        let text = pkt.get(at + 1..at + 1 + usize::from(rlen)).ok_or(short)?;
                        Some(String::from_utf8_lossy(text).into_owned())
                    }
                    _ => None,
                };
                RtcpPacket::Goodbye { sources, reason }
            }
            other => RtcpPacket::Other { packet_type: other },
        };
        out.push(parsed);
        offset += len;
    }
    if out.is_empty() {
        return Err(MalformedRtcp::TooShort { offset: 0 });
    }
    Ok(out)
}

/// Writes a compound RTCP packet into a caller buffer, without allocating.
pub struct RtcpWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> RtcpWriter<'a> {
    /// Start writing into `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        RtcpWriter { buf, len: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), RtcpWriteError> {
        let dst = self
            .buf
            .get_mut(self.len..self.len + bytes.len())
            .ok_or(RtcpWriteError::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    fn header(&mut self, count: usize, pt: u8, words_after_header: usize) -> Result<(), RtcpWriteError> {
        if count > 31 || words_after_header > usize::from(u16::MAX) {
            return Err(RtcpWriteError::TooLarge);
        }
        let len = words_after_header as u16;
        self.put(&[0x80 | count as u8, pt])?;
        self.put(&len.to_be_bytes())
    }

    fn blocks(&mut self, blocks: &[ReportBlock]) -> Result<(), RtcpWriteError> {
        for b in blocks {
            self.put(&b.ssrc.to_be_bytes())?;
            let lost = (u32::from(b.fraction_lost) << 24)
                | ((b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF);
            self.put(&lost.to_be_bytes())?;
            self.put(&b.extended_highest_seq.to_be_bytes())?;
            self.put(&b.jitter.to_be_bytes())?;
            self.put(&b.last_sr.to_be_bytes())?;
            self.put(&b.delay_since_last_sr.to_be_bytes())?;
        }
        Ok(())
    }

    /// Append a sender report.
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        info: &SenderInfo,
        blocks: &[ReportBlock],
    ) -> Result<(), RtcpWriteError> {
        self.header(blocks.len(), PT_SR, 6 + 6 * blocks.len())?;
        self.put(&ssrc.to_be_bytes())?;
        self.put(&info.ntp_timestamp.to_be_bytes())?;
        self.put(&info.rtp_timestamp.to_be_bytes())?;
        self.put(&info.packet_count.to_be_bytes())?;
        self.put(&info.octet_count.to_be_bytes())?;
        self.blocks(blocks)
    }

    /// Append a receiver report.
    pub fn receiver_report(&mut self, ssrc: u32, blocks: &[ReportBlock]) -> Result<(), RtcpWriteError> {
        self.header(blocks.len(), PT_RR, 1 + 6 * blocks.len())?;
        self.put(&ssrc.to_be_bytes())?;
        self.blocks(blocks)
    }

    /// Append an SDES packet with one chunk carrying a CNAME.
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &str) -> Result<(), RtcpWriteError> {
        let text = cname.as_bytes();
        if text.len() > 255 {
            return Err(RtcpWriteError::TooLarge);
        }
        // ssrc + type + len + text + at least one null, padded to 32 bits.
        let chunk = 4 + 2 + text.len();
        let padded = (chunk + 1).div_ceil(4) * 4;
        self.header(1, PT_SDES, padded / 4)?;
        self.put(&ssrc.to_be_bytes())?;
        self.put(&[1, text.len() as u8])?;
        self.put(text)?;
        for _ in chunk..padded {
            self.put(&[0])?;
        }
        Ok(())
    }

    /// Append a BYE for `ssrc`.
    pub fn bye(&mut self, ssrc: u32, reason: Option<&str>) -> Result<(), RtcpWriteError> {
        let reason = reason.map(str::as_bytes).unwrap_or_default();
        if reason.len() > 255 {
            return Err(RtcpWriteError::TooLarge);
        }
        let body = if reason.is_empty() {
            4
        } else {
            4 + 1 + reason.len()
        };
        let padded = body.div_ceil(4) * 4;
        self.header(1, PT_BYE, padded / 4)?;
        self.put(&ssrc.to_be_bytes())?;
        if !reason.is_empty() {
            self.put(&[reason.len() as u8])?;
            self.put(reason)?;
        }
        for _ in body..padded {
            self.put(&[0])?;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn finish(self) -> usize {
        self.len
    }
}

/// Parameters of the RTCP interval computation of RFC 3550 §6.3.1 / A.7.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalInputs {
    /// Members of the session, including us.
    pub members: u32,
    /// Members that sent RTP recently, including us if we did.
    pub senders: u32,
    /// RTCP bandwidth in octets per second (5 % of the session bandwidth).
    pub rtcp_bandwidth: f64,
    /// Whether we sent RTP since the last two reports.
    pub we_sent: bool,
    /// Average compound RTCP packet size in octets, lower-layer headers included.
    pub avg_rtcp_size: f64,
    /// True before the first report: the minimum interval is halved.
    pub initial: bool,
}

/// The deterministic part of the RTCP interval (RFC 3550 A.7 `rtcp_interval` before the
/// randomisation), in seconds.
pub fn deterministic_interval(p: &IntervalInputs) -> f64 {
    const RTCP_MIN_TIME: f64 = 5.0;
    const RTCP_SENDER_BW_FRACTION: f64 = 0.25;
    const RTCP_RCVR_BW_FRACTION: f64 = 0.75;
    let min_time = if p.initial {
        RTCP_MIN_TIME / 2.0
    } else {
        RTCP_MIN_TIME
    };
    let mut n = f64::from(p.members.max(1));
    let mut bw = p.rtcp_bandwidth.max(1.0);
    if f64::from(p.senders) <= f64::from(p.members) * RTCP_SENDER_BW_FRACTION {
        if p.we_sent {
            bw *= RTCP_SENDER_BW_FRACTION;
            n = f64::from(p.senders.max(1));
        } else {
            bw *= RTCP_RCVR_BW_FRACTION;
            n = f64::from(p.members.saturating_sub(p.senders).max(1));
        }
    }
    let t = p.avg_rtcp_size * n / bw;
    t.max(min_time)
}

/// The randomised interval: `deterministic_interval * factor / (e - 3/2)` where `factor` is
/// uniform in [0.5, 1.5] (the caller's or the timer's random draw).
pub fn randomised_interval(p: &IntervalInputs, factor: f64) -> Duration {
    const COMPENSATION: f64 = std::f64::consts::E - 1.5;
    let secs = deterministic_interval(p) * factor.clamp(0.5, 1.5) / COMPENSATION;
    Duration::from_secs_f64(secs)
}

/// Sans-IO RTCP transmission timer (RFC 3550 §6.3 with timer reconsideration, A.7).
///
/// Drive it with [`poll_timeout`](Self::poll_timeout) and
/// [`handle_timeout`](Self::handle_timeout); when the latter returns true, send a report and
/// call [`on_sent`](Self::on_sent).
#[derive(Clone, Debug)]
pub struct RtcpTimer {
    tp: Time,
    tn: Time,
    members: u32,
    senders: u32,
    rtcp_bandwidth: f64,
    we_sent: bool,
    avg_rtcp_size: f64,
    initial: bool,
    rng: u64,
}

impl RtcpTimer {
    /// A timer for a session of `session_bandwidth_bps` bits per second (RTCP gets 5 %),
    /// started at `now`. `seed` feeds the interval randomisation (give each session its own).
    pub fn new(now: Time, session_bandwidth_bps: u32, seed: u64) -> Self {
        let mut t = RtcpTimer {
            tp: now,
            tn: now,
            members: 2,
            senders: 0,
            rtcp_bandwidth: f64::from(session_bandwidth_bps) * 0.05 / 8.0,
            we_sent: false,
            avg_rtcp_size: 100.0,
            initial: true,
            rng: seed | 1,
        };
        t.tn = now + t.next_interval();
        t
    }

    fn random_factor(&mut self) -> f64 {
        // xorshift64*: deterministic per seed; quality is ample for spreading report times.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        0.5 + (r as f64) / ((1u64 << 53) as f64)
    }

    fn inputs(&self) -> IntervalInputs {
        IntervalInputs {
            members: self.members,
            senders: self.senders,
            rtcp_bandwidth: self.rtcp_bandwidth,
            we_sent: self.we_sent,
            avg_rtcp_size: self.avg_rtcp_size,
            initial: self.initial,
        }
    }

    fn next_interval(&mut self) -> Duration {
        let f = self.random_factor();
        randomised_interval(&self.inputs(), f)
    }

    /// Update membership: `members` (us included), `senders` (us included if `we_sent`).
    pub fn set_membership(&mut self, members: u32, senders: u32, we_sent: bool) {
        self.members = members.max(1);
        self.senders = senders.min(self.members);
        self.we_sent = we_sent;
    }

    /// When the timer next wants [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Time {
        self.tn
    }

    /// A.7 `OnExpire`: true if a report should be sent now; otherwise the timer was
    /// reconsidered and rescheduled.
    pub fn handle_timeout(&mut self, now: Time) -> bool {
        if now < self.tn {
            return false;
        }
        let t = self.next_interval();
        if self.tp + t <= now {
            true
        } else {
            self.tn = self.tp + t;
            false
        }
    }

    /// A report of `size` bytes (RTCP payload) was sent at `now`.
    pub fn on_sent(&mut self, now: Time, size: usize) {
        self.update_avg(size);
        self.tp = now;
        self.initial = false;
        self.tn = now + self.next_interval();
    }

    /// A report of `size` bytes was received.
    pub fn on_received(&mut self, size: usize) {
        self.update_avg(size);
    }

    fn update_avg(&mut self, size: usize) {
        let s = (size + IP_UDP_OVERHEAD) as f64;
        self.avg_rtcp_size = s / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 64,
            cumulative_lost: -3,
            extended_highest_seq: 70000,
            jitter: 42,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    #[test]
    fn compound_sr_sdes_bye_round_trips() {
        let mut buf = [0u8; 512];
        let mut w = RtcpWriter::new(&mut buf);
        let info = SenderInfo {
            ntp_timestamp: 0xE000_0000_8000_0000,
            rtp_timestamp: 16000,
            packet_count: 100,
            octet_count: 16000,
        };
        w.sender_report(7, &info, &[block(9)]).unwrap();
        w.sdes_cname(7, "boomerang@host").unwrap();
        w.bye(7, Some("hangup")).unwrap();
        let n = w.finish();
        assert_eq!(n % 4, 0);
        let pkts = parse_compound(&buf[..n]).unwrap();
        assert_eq!(
            pkts,
            vec![
                RtcpPacket::SenderReport {
                    ssrc: 7,
                    info,
                    blocks: vec![block(9)]
                },
                RtcpPacket::SourceDescription {
                    chunks: vec![(7, Some("boomerang@host".into()))]
                },
                RtcpPacket::Goodbye {
                    sources: vec![7],
                    reason: Some("hangup".into())
                },
            ]
        );
    }

    #[test]
    fn rr_round_trips_and_sizes_are_exact() {
        let mut buf = [0u8; 64];
        let mut w = RtcpWriter::new(&mut buf);
        w.receiver_report(5, &[block(6)]).unwrap();
        let n = w.finish();
        assert_eq!(n, 32);
        assert_eq!(
            parse_compound(&buf[..n]).unwrap(),
            vec![RtcpPacket::ReceiverReport {
                ssrc: 5,
                blocks: vec![block(6)]
            }]
        );
        let mut tiny = [0u8; 10];
        let mut w = RtcpWriter::new(&mut tiny);
        assert_eq!(
            w.receiver_report(5, &[block(6)]),
            Err(RtcpWriteError::BufferTooSmall)
        );
    }

    #[test]
    fn malformed_rtcp_is_rejected() {
        assert!(parse_compound(&[]).is_err());
        assert_eq!(
            parse_compound(&[0x40, 201, 0, 1, 0, 0, 0, 0]),
            Err(MalformedRtcp::BadVersion(1))
        );
        assert!(matches!(
            parse_compound(&[0x80, 201, 0, 9, 0, 0, 0, 0]),
            Err(MalformedRtcp::LengthPastEnd { .. })
        ));
        // RR claiming 3 blocks in 8 bytes.
        assert_eq!(
            parse_compound(&[0x83, 201, 0, 1, 0, 0, 0, 0]),
            Err(MalformedRtcp::CountPastEnd { packet_type: 201 })
        );
        assert_eq!(
            parse_compound(&[0x80, 202, 0, 0]),
            Err(MalformedRtcp::NotAReport(202))
        );
    }

    #[test]
    fn interval_follows_rfc_3550() {
        // Two-party call at 64 kbit/s: the 5 s minimum (2.5 s at first) applies.
        let mut p = IntervalInputs {
            members: 2,
            senders: 2,
            rtcp_bandwidth: 80_000.0 * 0.05 / 8.0,
            we_sent: true,
            avg_rtcp_size: 120.0,
            initial: false,
        };
        assert_eq!(deterministic_interval(&p), 5.0);
        p.initial = true;
        assert_eq!(deterministic_interval(&p), 2.5);
        // A large conference: the bandwidth share dominates.
        let big = IntervalInputs {
            members: 1000,
            senders: 1,
            we_sent: false,
            initial: false,
            ..p
        };
        let t = deterministic_interval(&big);
        assert!((t - 120.0 * 999.0 / (500.0 * 0.75)).abs() < 1e-9, "{t}");
        // Randomisation stays in [0.5, 1.5] / (e - 1.5).
        let lo = randomised_interval(&IntervalInputs { initial: false, ..p }, 0.5).as_secs_f64();
        let hi = randomised_interval(&IntervalInputs { initial: false, ..p }, 1.5).as_secs_f64();
        assert!((lo - 2.5 / 1.218_281_828).abs() < 1e-6);
        assert!((hi - 7.5 / 1.218_281_828).abs() < 1e-6);
    }

    #[test]
    fn timer_schedules_reports_within_the_rfc_bounds() {
        let mut t = RtcpTimer::new(Time::ZERO, 80_000, 42);
        let first = t.poll_timeout().as_micros() as f64 / 1e6;
        assert!((1.0..=3.1).contains(&first), "first report at {first} s");
        let mut now = t.poll_timeout();
        let mut sent = 0;
        for _ in 0..100 {
            if t.handle_timeout(now) {
                t.on_sent(now, 80);
                sent += 1;
                let gap = t.poll_timeout().saturating_since(now).as_secs_f64();
                assert!((2.05..=6.16).contains(&gap), "gap {gap}");
            }
            // Nothing happens before the timeout.
            assert!(!t.handle_timeout(t.poll_timeout() - Duration::from_millis(1)));
            now = t.poll_timeout();
        }
        assert!(sent > 30, "sent {sent}");
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_rtcp_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_compound(&bytes);
        }
    }
}
