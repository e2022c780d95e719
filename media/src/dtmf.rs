//! RFC 4733 telephone-events (DTMF): receive and send.
//!
//! The payload is four bytes: event code, end bit + volume, and a 16-bit duration in timestamp
//! units. Every packet of one event carries the event's start timestamp; the final packet is
//! sent three times. [`DtmfReceiver`] turns the packet stream into one `Started` and one
//! `Ended` per digit, de-duplicating the repeated end packets and ending an event whose end
//! packets were all lost after a timeout. [`DtmfSender`] produces the packets through the leg's
//! [`crate::rtp::RtpSession`]; the payload type comes from the SDP.

use std::collections::VecDeque;
use std::time::Duration;

use crate::Time;
use crate::rtp::{RtpHeader, RtpSession, SendError};

/// Event code of a DTMF digit (`0-9 * # A-D`), per RFC 4733 §3.2.
pub fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The digit of an event code 0..=15.
pub fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// A telephone-event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code.
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Parse the first four bytes (RFC 4733 §2.3). Extra bytes (redundancy) are ignored.
    pub fn parse(payload: &[u8]) -> Option<EventPayload> {
        let b = payload.get(..4)?;
        Some(EventPayload {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The four payload bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// A digit heard from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A key went down.
    Started {
        /// The digit.
        digit: char,
        /// RTP timestamp of the event start.
        timestamp: u32,
    },
    /// A key came up (or its end packets were lost and the timeout ended it).
    Ended {
        /// The digit.
        digit: char,
        /// RTP timestamp of the event start.
        timestamp: u32,
        /// How long the key was down.
        duration: Duration,
        /// False when no end packet arrived and the timeout ended the event.
        confirmed: bool,
    },
}

/// Why a telephone-event packet was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// Payload shorter than 4 bytes.
    #[error("telephone-event payload of {0} bytes, needs 4")]
    ShortPayload(usize),
    /// Event code that is not a DTMF digit.
    #[error("telephone-event code {0} is not a DTMF digit")]
    NotADigit(u8),
    /// A character that is not a DTMF digit was asked to be sent.
    #[error("{0:?} is not a DTMF digit (0-9 * # A-D)")]
    InvalidDigit(char),
    /// The send queue is full.
    #[error("DTMF send queue is full")]
    QueueFull,
}

#[derive(Clone, Copy, Debug)]
struct Current {
    timestamp: u32,
    event: u8,
    duration: u16,
    last_seen: Time,
}

/// Receives telephone-events of one stream.
#[derive(Debug)]
pub struct DtmfReceiver {
    clock_rate: u32,
    end_timeout: Duration,
    current: Option<Current>,
    last_ended: Option<(u32, u8)>,
    events: VecDeque<DtmfEvent>,
}

const MAX_PENDING_EVENTS: usize = 64;

impl DtmfReceiver {
    /// A receiver for a `clock_rate` Hz stream; an event with no packet for `end_timeout`
    /// is ended (300 ms is a good value).
    pub fn new(clock_rate: u32, end_timeout: Duration) -> Self {
        DtmfReceiver {
            clock_rate: clock_rate.max(1),
            end_timeout,
            current: None,
            last_ended: None,
            events: VecDeque::with_capacity(8),
        }
    }

    fn samples(&self, d: u16) -> Duration {
        Duration::from_micros(u64::from(d) * 1_000_000 / u64::from(self.clock_rate))
    }

    fn emit(&mut self, e: DtmfEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push_back(e);
        }
    }

    fn end_current(&mut self, confirmed: bool) {
        if let Some(c) = self.current.take() {
            self.last_ended = Some((c.timestamp, c.event));
            if let Some(digit) = digit(c.event) {
                let duration = self.samples(c.duration);
                self.emit(DtmfEvent::Ended {
                    digit,
                    timestamp: c.timestamp,
                    duration,
                    confirmed,
                });
            }
        }
    }

    /// Handle a telephone-event packet (already accepted by the session).
    pub fn push(&mut self, now: Time, header: &RtpHeader, payload: &[u8]) -> Result<(), DtmfError> {
        let p = EventPayload::parse(payload).ok_or(DtmfError::ShortPayload(payload.len()))?;
        if digit(p.event).is_none() {
            return Err(DtmfError::NotADigit(p.event));
        }
        let ts = header.timestamp;
        if self.last_ended == Some((ts, p.event)) {
            // A repeated end packet, or a late update of an event already ended.
            return Ok(());
        }
        if let Some(c) = self.current {
            if c.timestamp != ts || c.event != p.event {
                // A new event began before the previous one's end arrived.
                self.end_current(false);
            }
        }
        match &mut self.current {
            Some(c) => {
                c.duration = c.duration.max(p.duration);
                c.last_seen = now;
            }
            None => {
                self.current = Some(Current {
                    timestamp: ts,
                    event: p.event,
                    duration: p.duration,
                    last_seen: now,
                });
                if let Some(d) = digit(p.event) {
                    self.emit(DtmfEvent::Started {
                        digit: d,
                        timestamp: ts,
                    });
                }
            }
        }
        if p.end {
            self.end_current(true);
        }
        Ok(())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.current.map(|c| c.last_seen + self.end_timeout)
    }

    /// End an event whose end packets never came.
    pub fn handle_timeout(&mut self, now: Time) {
        if self
            .current
            .is_some_and(|c| now >= c.last_seen + self.end_timeout)
        {
            self.end_current(false);
        }
    }

    /// The next digit event.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }
}

/// Timing of sent digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfSendConfig {
    /// How long each key is held (RFC 4733 suggests ≥ 40 ms; 100 ms is common).
    pub digit_duration: Duration,
    /// Pause between digits.
    pub gap: Duration,
    /// Packet interval (the ptime).
    pub packet_interval: Duration,
    /// Volume in -dBm0.
    pub volume: u8,
    /// Media clock rate.
    pub clock_rate: u32,
}

impl Default for DtmfSendConfig {
    fn default() -> Self {
        DtmfSendConfig {
            digit_duration: Duration::from_millis(100),
            gap: Duration::from_millis(60),
            packet_interval: Duration::from_millis(20),
            volume: 10,
            clock_rate: 8000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Sending {
    event: u8,
    timestamp: u32,
    sent: u32,
    total: u32,
    ends_sent: u8,
}

/// Sends digits as RFC 4733 events. While [`is_sending`](Self::is_sending) is true the caller
/// sends no audio; the sender keeps the audio clock moving.
#[derive(Debug)]
pub struct DtmfSender {
    cfg: DtmfSendConfig,
    queue: [u8; 32],
    head: usize,
    len: usize,
    current: Option<Sending>,
    next_due: Option<Time>,
}

impl DtmfSender {
    /// A sender with `cfg`.
    pub fn new(cfg: DtmfSendConfig) -> Self {
        DtmfSender {
            cfg,
            queue: [0; 32],
            head: 0,
            len: 0,
            current: None,
            next_due: None,
        }
    }

    fn step_samples(&self) -> u32 {
        (self.cfg.packet_interval.as_micros() * u128::from(self.cfg.clock_rate) / 1_000_000).max(1) as u32
    }

    /// Queue `digits` to be sent from `now` on. All or nothing: an invalid digit or a full
    /// queue rejects the whole string.
    pub fn send(&mut self, now: Time, digits: &str) -> Result<(), DtmfError> {
        let mut codes = [0u8; 32];
        let mut n = 0;
        for c in digits.chars() {
            let code = event_code(c).ok_or(DtmfError::InvalidDigit(c))?;
            *codes.get_mut(n).ok_or(DtmfError::QueueFull)? = code;
            n += 1;
        }
        if self.len + n > self.queue.len() {
            return Err(DtmfError::QueueFull);
        }
        for &code in codes.iter().take(n) {
            let at = (self.head + self.len) % self.queue.len();
            if let Some(slot) = self.queue.get_mut(at) {
                *slot = code;
            }
            self.len += 1;
        }
        if self.next_due.is_none() {
            self.next_due = Some(now);
        }
        Ok(())
    }

    /// True while a digit (including its end packets) is being sent.
    pub fn is_sending(&self) -> bool {
        self.current.is_some()
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.next_due
    }

    /// Write the next event packet into `out` if one is due at `now`.
    pub fn poll_packet(
        &mut self,
        now: Time,
        session: &mut RtpSession,
        out: &mut [u8],
    ) -> Option<Result<usize, SendError>> {
        let due = self.next_due?;
        if now < due {
            return None;
        }
        let step = self.step_samples();
        if self.current.is_none() {
            if self.len == 0 {
                self.next_due = None;
                return None;
            }
            let event = *self.queue.get(self.head)?;
            self.head = (self.head + 1) % self.queue.len();
            self.len -= 1;
            let total = (self.cfg.digit_duration.as_micros() * u128::from(self.cfg.clock_rate) / 1_000_000)
                .clamp(u128::from(step), 0xFFFF) as u32;
            self.current = Some(Sending {
                event,
                timestamp: session.next_timestamp(),
                sent: 0,
                total,
                ends_sent: 0,
            });
        }
        let mut s = self.current?;
        let first = s.sent == 0 && s.ends_sent == 0;
        let end = s.sent + step >= s.total;
        if s.ends_sent == 0 {
            s.sent = (s.sent + step).min(s.total);
        }
        let payload = EventPayload {
            event: s.event,
            end,
            volume: self.cfg.volume,
            duration: s.sent as u16,
        };
        let result = session.write_telephone_event(now, s.timestamp, first, &payload.to_bytes(), out);
        // The audio clock runs on while the event replaces audio.
        session.skip_samples(step);
        if end {
            s.ends_sent += 1;
        }
        if s.ends_sent >= 3 {
            self.current = None;
            self.next_due = if self.len > 0 {
                Some(due + self.cfg.packet_interval + self.cfg.gap)
            } else {
                None
            };
        } else {
            self.current = Some(s);
            self.next_due = Some(due + self.cfg.packet_interval);
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::Law;
    use crate::rtp::{MediaKind, SessionConfig};

    #[test]
    fn digit_codes() {
        let all = "0123456789*#ABCD";
        for (i, c) in all.chars().enumerate() {
            assert_eq!(event_code(c), Some(i as u8));
            assert_eq!(digit(i as u8), Some(c));
        }
        assert_eq!(event_code('a'), Some(12));
        assert_eq!(event_code('x'), None);
        assert_eq!(digit(16), None);
        let p = EventPayload {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(EventPayload::parse(&p.to_bytes()), Some(p));
        assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
    }

    fn header(ts: u32) -> RtpHeader {
        RtpHeader {
            marker: false,
            payload_type: 101,
            sequence: 0,
            timestamp: ts,
            ssrc: 1,
        }
    }

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        EventPayload {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn receiver_reports_start_and_one_end_despite_three_end_packets() {
        let mut r = DtmfReceiver::new(8000, Duration::from_millis(300));
        let h = header(1000);
        for (i, d) in [0u16, 160, 320, 480, 640].iter().enumerate() {
            r.push(Time::from_millis(i as u64 * 20), &h, &pkt(5, false, *d))
                .unwrap();
        }
        for i in 0..3 {
            r.push(Time::from_millis(100 + i * 20), &h, &pkt(5, true, 800))
                .unwrap();
        }
        assert_eq!(
            r.poll_event(),
            Some(DtmfEvent::Started {
                digit: '5',
                timestamp: 1000
            })
        );
        assert_eq!(
            r.poll_event(),
            Some(DtmfEvent::Ended {
                digit: '5',
                timestamp: 1000,
                duration: Duration::from_millis(100),
                confirmed: true
            })
        );
        assert_eq!(r.poll_event(), None);
        // The same digit pressed again is a new event (new timestamp).
        r.push(Time::from_millis(500), &header(5000), &pkt(5, true, 400))
            .unwrap();
        assert!(matches!(
            r.poll_event(),
            Some(DtmfEvent::Started {
                digit: '5',
                timestamp: 5000
            })
        ));
        assert!(
            matches!(r.poll_event(), Some(DtmfEvent::Ended { duration, .. }) if duration == Duration::from_millis(50))
        );
    }

    #[test]
    fn lost_end_packets_are_covered_by_the_timeout_or_the_next_event() {
        let mut r = DtmfReceiver::new(8000, Duration::from_millis(300));
        r.push(Time::from_millis(0), &header(0), &pkt(1, false, 160))
            .unwrap();
        r.push(Time::from_millis(20), &header(0), &pkt(1, false, 320))
            .unwrap();
        assert_eq!(r.poll_timeout(), Some(Time::from_millis(320)));
        r.handle_timeout(Time::from_millis(319));
        assert!(matches!(
            r.poll_event(),
            Some(DtmfEvent::Started { digit: '1', .. })
        ));
        assert_eq!(r.poll_event(), None);
        r.handle_timeout(Time::from_millis(320));
        assert!(matches!(
            r.poll_event(),
            Some(DtmfEvent::Ended {
                digit: '1',
                confirmed: false,
                ..
            })
        ));
        // A late end packet of that event is ignored.
        r.push(Time::from_millis(330), &header(0), &pkt(1, true, 800))
            .unwrap();
        assert_eq!(r.poll_event(), None);
        // Next digit starts before the previous ended.
        r.push(Time::from_millis(400), &header(8000), &pkt(2, false, 160))
            .unwrap();
        r.push(Time::from_millis(420), &header(8800), &pkt(3, false, 160))
            .unwrap();
        let evs: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
        assert_eq!(evs.len(), 3);
        assert!(matches!(
            evs[1],
            DtmfEvent::Ended {
                digit: '2',
                confirmed: false,
                ..
            }
        ));
        assert!(matches!(evs[2], DtmfEvent::Started { digit: '3', .. }));
    }

    #[test]
    fn receiver_rejects_bad_payloads() {
        let mut r = DtmfReceiver::new(8000, Duration::from_millis(300));
        assert_eq!(
            r.push(Time::ZERO, &header(0), &[1, 2]),
            Err(DtmfError::ShortPayload(2))
        );
        assert_eq!(
            r.push(Time::ZERO, &header(0), &pkt(40, false, 0)),
            Err(DtmfError::NotADigit(40))
        );
        assert_eq!(r.poll_event(), None);
    }

    #[test]
    fn sender_and_receiver_agree_end_to_end() {
        let mut tx_session = RtpSession::new(SessionConfig::g711(Law::Ulaw, 7, 100, 50_000), Time::ZERO);
        let mut rx_session = RtpSession::new(SessionConfig::g711(Law::Ulaw, 8, 1, 1), Time::ZERO);
        let mut tx = DtmfSender::new(DtmfSendConfig::default());
        let mut rx = DtmfReceiver::new(8000, Duration::from_millis(300));
        tx.send(Time::ZERO, "12#").unwrap();
        assert_eq!(tx.send(Time::ZERO, "9x"), Err(DtmfError::InvalidDigit('x')));
        let mut buf = [0u8; 64];
        let mut packets = 0;
        let mut markers = 0;
        let mut t = Time::ZERO;
        for _ in 0..200 {
            while let Some(r) = tx.poll_packet(t, &mut tx_session, &mut buf) {
                let n = r.unwrap();
                let inc = rx_session.handle_rtp(t, &buf[..n]).unwrap();
                assert_eq!(inc.kind, MediaKind::TelephoneEvent);
                markers += usize::from(inc.packet.header.marker);
                rx.push(t, &inc.packet.header, inc.packet.payload).unwrap();
                packets += 1;
            }
            t = t + Duration::from_millis(5);
        }
        assert!(!tx.is_sending());
        // 100 ms at 20 ms: 5 packets (the 5th with E), plus 2 more end packets, per digit.
        assert_eq!(packets, 3 * 7);
        assert_eq!(markers, 3);
        let evs: Vec<_> = std::iter::from_fn(|| rx.poll_event()).collect();
        let ended: Vec<(char, Duration)> = evs
            .iter()
            .filter_map(|e| match e {
                DtmfEvent::Ended {
                    digit,
                    duration,
                    confirmed: true,
                    ..
                } => Some((*digit, *duration)),
                _ => None,
            })
            .collect();
        let d = Duration::from_millis(100);
        assert_eq!(ended, vec![('1', d), ('2', d), ('#', d)]);
        assert_eq!(evs.len(), 6);
        // The audio clock moved on by the time the events took.
        assert_eq!(tx_session.next_timestamp(), 50_000 + 3 * 7 * 160);
    }
}
