//! The per-leg RTP session: sends with our SSRC, sequence numbers and timestamps, receives
//! and validates the peer's packets, keeps the receiver statistics and runs RTCP.

use std::collections::VecDeque;
use std::time::Duration;

use super::packet::{self, MalformedRtp, RtpBuildError, RtpHeader, RtpPacket};
use super::rtcp::{self, MalformedRtcp, ReportBlock, RtcpPacket, RtcpTimer, RtcpWriter, SenderInfo};
use super::stats::{MIN_SEQUENTIAL, ReceiverStats, ReceptionSnapshot, SeqVerdict};
use crate::Time;

/// Events are dropped past this many unpolled ones, so a stalled caller cannot grow memory.
const MAX_PENDING_EVENTS: usize = 64;

/// Configuration of one RTP session (one call leg), normally filled from the SDP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our synchronisation source (random, chosen by the caller).
    pub ssrc: u32,
    /// First sequence number we send (random, chosen by the caller).
    pub initial_sequence: u16,
    /// First timestamp we send (random, chosen by the caller).
    pub initial_timestamp: u32,
    /// Media clock rate (8000 for G.711).
    pub clock_rate: u32,
    /// Negotiated audio payload type (0 PCMU, 8 PCMA).
    pub audio_payload_type: u8,
    /// Negotiated `telephone-event` payload type, if any (RFC 4733).
    pub telephone_event_payload_type: Option<u8>,
    /// Negotiated comfort-noise payload type, if any (13 when offered).
    pub comfort_noise_payload_type: Option<u8>,
    /// Our RTCP CNAME.
    pub cname: String,
    /// Session bandwidth in bit/s used for the RTCP interval (80 000 for G.711 with headers).
    pub session_bandwidth_bps: u32,
    /// Seed for the RTCP interval randomisation.
    pub rtcp_seed: u64,
}

impl SessionConfig {
    /// A G.711 session with the usual defaults; `ssrc`, sequence and timestamp should be random.
    pub fn g711(law: crate::g711::Law, ssrc: u32, initial_sequence: u16, initial_timestamp: u32) -> Self {
        SessionConfig {
            ssrc,
            initial_sequence,
            initial_timestamp,
            clock_rate: 8000,
            audio_payload_type: law.payload_type(),
            telephone_event_payload_type: Some(101),
            comfort_noise_payload_type: None,
            cname: format!("boomerang-{ssrc:08x}"),
            session_bandwidth_bps: 80_000,
            rtcp_seed: u64::from(ssrc) ^ (u64::from(initial_timestamp) << 32),
        }
    }
}

/// What kind of media an accepted packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// Audio in the negotiated codec.
    Audio,
    /// RFC 4733 telephone-event.
    TelephoneEvent,
    /// RFC 3389 comfort noise.
    ComfortNoise,
}

/// An accepted RTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming<'a> {
    /// Its kind by payload type.
    pub kind: MediaKind,
    /// The packet.
    pub packet: RtpPacket<'a>,
}

/// Why a received datagram was dropped. Every drop is also counted in [`SessionCounters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Not a valid RTP packet.
    #[error("malformed RTP: {0}")]
    Malformed(#[from] MalformedRtp),
    /// A payload type that was not negotiated.
    #[error("payload type {0} was not negotiated")]
    UnknownPayloadType(u8),
    /// From a synchronisation source other than the current one (a new source is accepted
    /// after it sent two packets in sequence).
    #[error("packet from SSRC {0:#010x}, not the current source")]
    ForeignSsrc(u32),
    /// A sequence jump not yet confirmed by a following packet (RFC 3550 A.1).
    #[error("sequence number {0} jumps too far")]
    SequenceJump(u16),
}

/// Why a packet could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The packet could not be built.
    #[error(transparent)]
    Build(#[from] RtpBuildError),
    /// No telephone-event payload type was negotiated.
    #[error("no telephone-event payload type was negotiated")]
    NoTelephoneEvent,
}

/// Counters of everything the session saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Datagrams handed to [`RtpSession::handle_rtp`].
    pub received: u64,
    /// Packets accepted.
    pub accepted: u64,
    /// Malformed RTP datagrams dropped.
    pub malformed: u64,
    /// Packets with a payload type that was not negotiated.
    pub unknown_payload_type: u64,
    /// Packets from a foreign SSRC.
    pub foreign_ssrc: u64,
    /// Packets dropped as unconfirmed sequence jumps.
    pub sequence_jumps: u64,
    /// Times the remote source changed.
    pub source_changes: u64,
    /// RTCP datagrams accepted.
    pub rtcp_received: u64,
    /// Malformed RTCP datagrams dropped.
    pub rtcp_malformed: u64,
    /// RTP packets sent.
    pub sent_packets: u64,
    /// RTP payload octets sent.
    pub sent_octets: u64,
    /// RTCP reports sent.
    pub rtcp_sent: u64,
}

/// Something the caller may want to act on.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// The first packet from the remote source arrived.
    SourceStarted {
        /// The source.
        ssrc: u32,
    },
    /// The remote source changed (for example after a transfer); reset the jitter buffer.
    SourceChanged {
        /// Previous source.
        old: u32,
        /// New source.
        new: u32,
    },
    /// The peer reported on our stream.
    RemoteReport {
        /// Reporter.
        from: u32,
        /// Fraction lost, 0.0..=1.0.
        fraction_lost: f32,
        /// Cumulative packets lost.
        cumulative_lost: i32,
        /// Jitter the peer measured, in milliseconds.
        jitter_ms: f32,
        /// Round-trip time, when the report refers to one of our sender reports.
        round_trip: Option<Duration>,
    },
    /// The peer said goodbye.
    Goodbye {
        /// The source leaving.
        ssrc: u32,
        /// Its reason, if any.
        reason: Option<String>,
    },
}

/// One RTP session (one call leg): RFC 3550 sender and receiver.
#[derive(Debug)]
pub struct RtpSession {
    cfg: SessionConfig,
    // Sending.
    next_seq: u16,
    next_ts: u32,
    marker_pending: bool,
    last_sent: Option<(u32, Time)>,
    sent_since_report: bool,
    sent_before_last_report: bool,
    sent_srs: [(u32, Time); 4],
    sent_sr_index: usize,
    // Receiving.
    source: Option<ReceiverStats>,
    candidate: Option<ReceiverStats>,
    remote_sent_since_report: bool,
    last_remote_sr: Option<(u32, Time)>,
    // RTCP.
    timer: RtcpTimer,
    counters: SessionCounters,
    events: VecDeque<SessionEvent>,
}

impl RtpSession {
    /// A session starting at `now`.
    pub fn new(cfg: SessionConfig, now: Time) -> Self {
        let timer = RtcpTimer::new(now, cfg.session_bandwidth_bps, cfg.rtcp_seed);
        RtpSession {
            next_seq: cfg.initial_sequence,
            next_ts: cfg.initial_timestamp,
            marker_pending: true,
            last_sent: None,
            sent_since_report: false,
            sent_before_last_report: false,
            sent_srs: [(0, Time::ZERO); 4],
            sent_sr_index: 0,
            source: None,
            candidate: None,
            remote_sent_since_report: false,
            last_remote_sr: None,
            timer,
            counters: SessionCounters::default(),
            events: VecDeque::with_capacity(8),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Counters of received, dropped and sent packets.
    pub fn counters(&self) -> SessionCounters {
        self.counters
    }

    /// Reception statistics of the current remote source.
    pub fn reception(&self) -> Option<ReceptionSnapshot> {
        self.source.as_ref().map(ReceiverStats::snapshot)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn push_event(&mut self, e: SessionEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push_back(e);
        }
    }

    // ---- sending -------------------------------------------------------------------------

    /// Timestamp the next audio packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.next_ts
    }

    /// Sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_seq
    }

    /// Set the marker bit on the next audio packet (start of a talkspurt, e.g. after a pause
    /// or when a new treatment starts).
    pub fn mark_talkspurt(&mut self) {
        self.marker_pending = true;
    }

    /// Advance the media clock by `samples` without sending (silence that is not sent).
    pub fn skip_samples(&mut self, samples: u32) {
        self.next_ts = self.next_ts.wrapping_add(samples);
        self.marker_pending = true;
    }

    fn stamp(
        &mut self,
        now: Time,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        let header = RtpHeader {
            marker,
            payload_type,
            sequence: self.next_seq,
            timestamp,
            ssrc: self.cfg.ssrc,
        };
        let n = packet::write(&header, payload, out)?;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.counters.sent_packets += 1;
        self.counters.sent_octets += payload.len() as u64;
        self.sent_since_report = true;
        self.last_sent = Some((timestamp, now));
        Ok(n)
    }

    /// Write an audio packet carrying `payload` (`samples` samples of media) into `out`;
    /// returns its length. Stamps sequence number, timestamp, SSRC and the marker bit.
    /// Does not allocate.
    pub fn write_audio(
        &mut self,
        now: Time,
        payload: &[u8],
        samples: u32,
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        let marker = self.marker_pending;
        let ts = self.next_ts;
        let n = self.stamp(now, self.cfg.audio_payload_type, marker, ts, payload, out)?;
        self.marker_pending = false;
        self.next_ts = self.next_ts.wrapping_add(samples);
        Ok(n)
    }

    /// Write a telephone-event packet (RFC 4733) with the event's own `timestamp` (the media
    /// time the event started), which does not advance the audio clock.
    pub fn write_telephone_event(
        &mut self,
        now: Time,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        let pt = self
            .cfg
            .telephone_event_payload_type
            .ok_or(SendError::NoTelephoneEvent)?;
        self.stamp(now, pt, marker, timestamp, payload, out)
    }

    // ---- receiving -----------------------------------------------------------------------

    /// Handle one RTP datagram from the peer. Accepted packets are returned for the jitter
    /// buffer or the DTMF receiver; everything else is counted and returned as a
    /// [`DropReason`]. Never panics, whatever the bytes.
    pub fn handle_rtp<'a>(&mut self, now: Time, datagram: &'a [u8]) -> Result<Incoming<'a>, DropReason> {
        self.counters.received += 1;
        let pkt = match packet::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.counters.malformed += 1;
                return Err(e.into());
            }
        };
        let pt = pkt.header.payload_type;
        let kind = if pt == self.cfg.audio_payload_type {
            MediaKind::Audio
        } else if Some(pt) == self.cfg.telephone_event_payload_type {
            MediaKind::TelephoneEvent
        } else if Some(pt) == self.cfg.comfort_noise_payload_type {
            MediaKind::ComfortNoise
        } else {
            self.counters.unknown_payload_type += 1;
            return Err(DropReason::UnknownPayloadType(pt));
        };
        let ssrc = pkt.header.ssrc;
        let seq = pkt.header.sequence;
        match &mut self.source {
            None => {
                self.source = Some(ReceiverStats::new(ssrc, seq, self.cfg.clock_rate, 0));
                self.push_event(SessionEvent::SourceStarted { ssrc });
            }
            Some(src) if src.ssrc() != ssrc => {
                let candidate = match &mut self.candidate {
                    Some(c) if c.ssrc() == ssrc => c,
                    slot => slot.insert(ReceiverStats::new(ssrc, seq, self.cfg.clock_rate, MIN_SEQUENTIAL)),
                };
                if candidate.update_seq(seq) != SeqVerdict::Valid {
                    self.counters.foreign_ssrc += 1;
                    return Err(DropReason::ForeignSsrc(ssrc));
                }
                let old = src.ssrc();
                if let Some(mut c) = self.candidate.take() {
                    if kind == MediaKind::Audio {
                        c.update_jitter(pkt.header.timestamp, now);
                    }
                    self.source = Some(c);
                }
                self.last_remote_sr = None;
                self.counters.source_changes += 1;
                self.counters.accepted += 1;
                self.remote_sent_since_report = true;
                self.push_event(SessionEvent::SourceChanged { old, new: ssrc });
                return Ok(Incoming { kind, packet: pkt });
            }
            Some(_) => {}
        }
        let Some(src) = self.source.as_mut() else {
            return Err(DropReason::ForeignSsrc(ssrc));
        };
        match src.update_seq(seq) {
            SeqVerdict::Valid => {}
            SeqVerdict::Probation | SeqVerdict::BadJump => {
                self.counters.sequence_jumps += 1;
                return Err(DropReason::SequenceJump(seq));
            }
        }
        // Jitter is measured on audio only: RFC 4733 packets repeat their timestamp.
        if kind == MediaKind::Audio {
            src.update_jitter(pkt.header.timestamp, now);
        }
        self.counters.accepted += 1;
        self.remote_sent_since_report = true;
        Ok(Incoming { kind, packet: pkt })
    }

    // ---- RTCP ----------------------------------------------------------------------------

    /// Handle one RTCP datagram from the peer.
    pub fn handle_rtcp(&mut self, now: Time, datagram: &[u8]) -> Result<(), MalformedRtcp> {
        let packets = match rtcp::parse_compound(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.counters.rtcp_malformed += 1;
                return Err(e);
            }
        };
        self.counters.rtcp_received += 1;
        self.timer.on_received(datagram.len());
        for p in packets {
            match p {
                RtcpPacket::SenderReport { ssrc, info, blocks } => {
                    if self.source.as_ref().is_some_and(|s| s.ssrc() == ssrc) {
                        self.last_remote_sr = Some(((info.ntp_timestamp >> 16) as u32, now));
                    }
                    self.on_report_blocks(now, ssrc, &blocks);
                }
                RtcpPacket::ReceiverReport { ssrc, blocks } => self.on_report_blocks(now, ssrc, &blocks),
                RtcpPacket::Goodbye { sources, reason } => {
                    for ssrc in sources {
                        self.push_event(SessionEvent::Goodbye {
                            ssrc,
                            reason: reason.clone(),
                        });
                    }
                }
                RtcpPacket::SourceDescription { .. } | RtcpPacket::Other { .. } => {}
            }
        }
        Ok(())
    }

    fn on_report_blocks(&mut self, now: Time, from: u32, blocks: &[ReportBlock]) {
        let own = self.cfg.ssrc;
        for b in blocks.iter().filter(|b| b.ssrc == own) {
            let round_trip = (b.last_sr != 0)
                .then(|| self.sent_srs.iter().find(|(lsr, _)| *lsr == b.last_sr))
                .flatten()
                .map(|&(_, sent)| {
                    let dlsr = Duration::from_micros(u64::from(b.delay_since_last_sr) * 1_000_000 / 65536);
                    now.saturating_since(sent).saturating_sub(dlsr)
                });
            let event = SessionEvent::RemoteReport {
                from,
                fraction_lost: f32::from(b.fraction_lost) / 256.0,
                cumulative_lost: b.cumulative_lost,
                jitter_ms: (f64::from(b.jitter) * 1000.0 / f64::from(self.cfg.clock_rate.max(1))) as f32,
                round_trip,
            };
            self.push_event(event);
        }
    }

    /// When [`poll_rtcp`](Self::poll_rtcp) next wants to be called.
    pub fn poll_timeout(&self) -> Time {
        self.timer.poll_timeout()
    }

    /// If a report is due at `now`, write a compound RTCP packet (SR if we sent media
    /// recently, RR otherwise, plus SDES CNAME) into `out` and return its length.
    /// `ntp_now` is the wallclock as a 64-bit NTP timestamp, used in sender reports.
    pub fn poll_rtcp(&mut self, now: Time, ntp_now: u64, out: &mut [u8]) -> Option<usize> {
        let we_sent = self.sent_since_report || self.sent_before_last_report;
        let remote = u32::from(self.source.is_some());
        let remote_sender = u32::from(self.remote_sent_since_report);
        self.timer
            .set_membership(1 + remote, u32::from(we_sent) + remote_sender, we_sent);
        if !self.timer.handle_timeout(now) {
            return None;
        }
        let n = self.write_report(now, ntp_now, None, out).ok()?;
        self.timer.on_sent(now, n);
        Some(n)
    }

    /// Write a final report with a BYE (when the leg ends) into `out`; returns its length.
    pub fn write_bye(
        &mut self,
        now: Time,
        ntp_now: u64,
        reason: Option<&str>,
        out: &mut [u8],
    ) -> Result<usize, rtcp::RtcpWriteError> {
        self.write_report(now, ntp_now, Some(reason), out)
    }

    fn write_report(
        &mut self,
        now: Time,
        ntp_now: u64,
        bye: Option<Option<&str>>,
        out: &mut [u8],
    ) -> Result<usize, rtcp::RtcpWriteError> {
        let mut blocks = [ReportBlock::default(); 1];
        let nblocks = match self.source.as_mut() {
            Some(src) => {
                let (fraction_lost, cumulative_lost) = src.take_interval_loss();
                let snap = src.snapshot();
                let (last_sr, delay_since_last_sr) = match self.last_remote_sr {
                    Some((lsr, at)) => {
                        let d = now.saturating_since(at).as_micros() * 65536 / 1_000_000;
                        (lsr, u32::try_from(d).unwrap_or(u32::MAX))
                    }
                    None => (0, 0),
                };
                blocks[0] = ReportBlock {
                    ssrc: snap.ssrc,
                    fraction_lost,
                    cumulative_lost,
                    extended_highest_seq: snap.extended_highest_seq,
                    jitter: snap.jitter,
                    last_sr,
                    delay_since_last_sr,
                };
                1
            }
            None => 0,
        };
        let blocks = &blocks[..nblocks];
        let we_sent = self.sent_since_report || self.sent_before_last_report;
        let mut w = RtcpWriter::new(out);
        if we_sent {
            let rtp_timestamp = match self.last_sent {
                Some((ts, at)) => {
                    let elapsed =
                        now.saturating_since(at).as_micros() * u128::from(self.cfg.clock_rate) / 1_000_000;
                    ts.wrapping_add(elapsed as u32)
                }
                None => self.next_ts,
            };
            let info = SenderInfo {
                ntp_timestamp: ntp_now,
                rtp_timestamp,
                packet_count: self.counters.sent_packets as u32,
                octet_count: self.counters.sent_octets as u32,
            };
            w.sender_report(self.cfg.ssrc, &info, blocks)?;
            self.sent_srs[self.sent_sr_index % self.sent_srs.len()] = ((ntp_now >> 16) as u32, now);
            self.sent_sr_index += 1;
        } else {
            w.receiver_report(self.cfg.ssrc, blocks)?;
        }
        w.sdes_cname(self.cfg.ssrc, &self.cfg.cname)?;
        if let Some(reason) = bye {
            w.bye(self.cfg.ssrc, reason)?;
        }
        self.sent_before_last_report = self.sent_since_report;
        self.sent_since_report = false;
        self.remote_sent_since_report = false;
        self.counters.rtcp_sent += 1;
        Ok(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::Law;

    fn cfg(ssrc: u32) -> SessionConfig {
        SessionConfig::g711(Law::Ulaw, ssrc, 65534, 1000)
    }

    fn remote_packet(seq: u16, ts: u32, ssrc: u32, pt: u8) -> Vec<u8> {
        let mut buf = vec![0u8; 200];
        let h = RtpHeader {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc,
        };
        let n = packet::write(&h, &[0xFF; 160], &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn sender_stamps_sequence_timestamp_ssrc_and_marker() {
        let mut s = RtpSession::new(cfg(0xAABB), Time::ZERO);
        let mut buf = [0u8; 200];
        let mut seen = Vec::new();
        for i in 0..4u64 {
            let n = s
                .write_audio(Time::from_millis(i * 20), &[0xFF; 160], 160, &mut buf)
                .unwrap();
            seen.push(packet::parse(&buf[..n]).unwrap().header);
        }
        assert_eq!(
            seen.iter().map(|h| h.sequence).collect::<Vec<_>>(),
            vec![65534, 65535, 0, 1]
        );
        assert_eq!(
            seen.iter().map(|h| h.timestamp).collect::<Vec<_>>(),
            vec![1000, 1160, 1320, 1480]
        );
        assert_eq!(
            seen.iter().map(|h| h.marker).collect::<Vec<_>>(),
            vec![true, false, false, false]
        );
        assert!(seen.iter().all(|h| h.ssrc == 0xAABB && h.payload_type == 0));
        s.skip_samples(800);
        let n = s
            .write_audio(Time::from_millis(200), &[0xFF; 160], 160, &mut buf)
            .unwrap();
        let h = packet::parse(&buf[..n]).unwrap().header;
        assert!(h.marker);
        assert_eq!(h.timestamp, 1640 + 800);
        assert_eq!(s.counters().sent_packets, 5);
        assert_eq!(s.counters().sent_octets, 800);
        // Events share sequence numbers but keep their own timestamp.
        let n = s
            .write_telephone_event(Time::from_millis(220), 2440, true, &[1, 0x8A, 0, 160], &mut buf)
            .unwrap();
        let p = packet::parse(&buf[..n]).unwrap();
        assert_eq!(p.header.payload_type, 101);
        assert_eq!(p.header.sequence, 3);
        assert_eq!(s.next_timestamp(), 2600);
    }

    #[test]
    fn receiver_validates_and_counts() {
        let mut s = RtpSession::new(cfg(1), Time::ZERO);
        let p = remote_packet(10, 0, 77, 0);
        assert_eq!(s.handle_rtp(Time::ZERO, &p).unwrap().kind, MediaKind::Audio);
        assert_eq!(s.poll_event(), Some(SessionEvent::SourceStarted { ssrc: 77 }));
        assert!(matches!(
            s.handle_rtp(Time::ZERO, &[0x80, 0, 1]),
            Err(DropReason::Malformed(_))
        ));
        assert_eq!(
            s.handle_rtp(Time::ZERO, &remote_packet(11, 160, 77, 96)),
            Err(DropReason::UnknownPayloadType(96))
        );
        let te = remote_packet(11, 160, 77, 101);
        assert_eq!(
            s.handle_rtp(Time::from_millis(20), &te).unwrap().kind,
            MediaKind::TelephoneEvent
        );
        let c = s.counters();
        assert_eq!(
            (c.received, c.accepted, c.malformed, c.unknown_payload_type),
            (4, 2, 1, 1)
        );
    }

    #[test]
    fn new_ssrc_is_accepted_after_two_sequential_packets() {
        let mut s = RtpSession::new(cfg(1), Time::ZERO);
        for i in 0..5u16 {
            s.handle_rtp(
                Time::from_millis(u64::from(i) * 20),
                &remote_packet(i, u32::from(i) * 160, 77, 0),
            )
            .unwrap();
        }
        let _ = s.poll_event();
        assert_eq!(
            s.handle_rtp(Time::ZERO, &remote_packet(900, 0, 88, 0)),
            Err(DropReason::ForeignSsrc(88))
        );
        // The old source still flows.
        assert!(s.handle_rtp(Time::ZERO, &remote_packet(5, 800, 77, 0)).is_ok());
        assert!(s.handle_rtp(Time::ZERO, &remote_packet(901, 160, 88, 0)).is_ok());
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::SourceChanged { old: 77, new: 88 })
        );
        assert_eq!(s.reception().unwrap().ssrc, 88);
        assert_eq!(
            s.handle_rtp(Time::ZERO, &remote_packet(6, 960, 77, 0)),
            Err(DropReason::ForeignSsrc(77))
        );
        assert_eq!(s.counters().source_changes, 1);
    }

    #[test]
    fn sequence_wrap_and_jumps() {
        let mut s = RtpSession::new(cfg(1), Time::ZERO);
        for i in 0..10u16 {
            s.handle_rtp(Time::ZERO, &remote_packet(65530u16.wrapping_add(i), 0, 5, 0))
                .unwrap();
        }
        assert_eq!(s.reception().unwrap().extended_highest_seq, 65536 + 3);
        assert_eq!(
            s.handle_rtp(Time::ZERO, &remote_packet(20000, 0, 5, 0)),
            Err(DropReason::SequenceJump(20000))
        );
        assert!(s.handle_rtp(Time::ZERO, &remote_packet(20001, 0, 5, 0)).is_ok());
        assert_eq!(s.counters().sequence_jumps, 1);
    }

    #[test]
    fn rtcp_sender_and_receiver_reports_give_round_trip_time() {
        let mut a = RtpSession::new(cfg(0xA), Time::ZERO);
        let mut b = RtpSession::new(cfg(0xB), Time::ZERO);
        let mut buf = [0u8; 200];
        let mut rtcp_buf = [0u8; 300];
        let mut now = Time::ZERO;
        let mut rtt = None;
        let ntp = |t: Time| (3_900_000_000u64 << 32) + (t.as_micros() << 32) / 1_000_000;
        let delay = Duration::from_millis(30);
        let mut to_b: Vec<(Time, Vec<u8>)> = Vec::new();
        let mut to_a: Vec<(Time, Vec<u8>)> = Vec::new();
        // 30 s of a call where both sides send; RTCP is delayed by 30 ms each way.
        for _ in 0..3000 {
            now = now + Duration::from_millis(10);
            let n = a.write_audio(now, &[0xFF; 80], 80, &mut buf).unwrap();
            b.handle_rtp(now, &buf[..n]).unwrap();
            let n = b.write_audio(now, &[0xFF; 80], 80, &mut buf).unwrap();
            a.handle_rtp(now, &buf[..n]).unwrap();
            if let Some(n) = a.poll_rtcp(now, ntp(now), &mut rtcp_buf) {
                assert!(matches!(
                    rtcp::parse_compound(&rtcp_buf[..n]).unwrap()[0],
                    RtcpPacket::SenderReport { .. }
                ));
                to_b.push((now + delay, rtcp_buf[..n].to_vec()));
            }
            if let Some(n) = b.poll_rtcp(now, ntp(now), &mut rtcp_buf) {
                to_a.push((now + delay, rtcp_buf[..n].to_vec()));
            }
            for (at, d) in to_b.iter().filter(|(at, _)| *at == now) {
                b.handle_rtcp(*at, d).unwrap();
            }
            for (at, d) in to_a.iter().filter(|(at, _)| *at == now) {
                a.handle_rtcp(*at, d).unwrap();
            }
            while let Some(e) = a.poll_event() {
                if let SessionEvent::RemoteReport {
                    round_trip: Some(r),
                    fraction_lost,
                    ..
                } = e
                {
                    assert_eq!(fraction_lost, 0.0);
                    rtt = Some(r);
                }
            }
        }
        assert!(a.counters().rtcp_sent >= 4, "{:?}", a.counters());
        let rtt = rtt.expect("a round trip was measured");
        // 30 ms each way, give or take the 1/65536 s units of LSR and DLSR.
        assert!(
            rtt >= Duration::from_micros(59_800) && rtt <= Duration::from_micros(60_200),
            "{rtt:?}"
        );
        assert!(b.handle_rtcp(now, &[0x80, 201, 0, 20]).is_err());
        assert_eq!(b.counters().rtcp_malformed, 1);
    }

    #[test]
    fn bye_is_reported() {
        let mut a = RtpSession::new(cfg(0xA), Time::ZERO);
        let mut b = RtpSession::new(cfg(0xB), Time::ZERO);
        let mut out = [0u8; 200];
        let n = a.write_bye(Time::ZERO, 0, Some("done"), &mut out).unwrap();
        b.handle_rtcp(Time::ZERO, &out[..n]).unwrap();
        assert_eq!(
            b.poll_event(),
            Some(SessionEvent::Goodbye {
                ssrc: 0xA,
                reason: Some("done".into())
            })
        );
    }
}
