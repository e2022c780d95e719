//! Arbitrary datagrams through RTP parsing, the session's receive path (RTP and RTCP), the
//! jitter buffer and the DTMF receiver: nothing may panic.
#![no_main]

use std::time::Duration;

use boomerang_media::Time;
use boomerang_media::dtmf::DtmfReceiver;
use boomerang_media::g711::Law;
use boomerang_media::jitter::{JitterBuffer, JitterConfig};
use boomerang_media::rtp::{self, MediaKind, RtpSession, SessionConfig, rtcp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rtp::parse(data);
    let _ = rtcp::parse_compound(data);
    let mut session = RtpSession::new(SessionConfig::g711(Law::Ulaw, 1, 0, 0), Time::ZERO);
    let mut jb = JitterBuffer::new(JitterConfig::adaptive(20));
    let mut dtmf = DtmfReceiver::new(8000, Duration::from_millis(300));
    // Treat the input as a sequence of length-prefixed datagrams, arriving 7 ms apart.
    let mut rest = data;
    let mut now = Time::ZERO;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (dgram, tail) = tail.split_at(n);
        rest = tail;
        now = now + Duration::from_millis(7);
        if rtp::looks_like_rtcp(dgram) {
            let _ = session.handle_rtcp(now, dgram);
        } else if let Ok(inc) = session.handle_rtp(now, dgram) {
            let h = inc.packet.header;
            match inc.kind {
                MediaKind::Audio => {
                    jb.push(now, h.sequence, h.timestamp, h.marker, inc.packet.payload);
                }
                MediaKind::TelephoneEvent => {
                    let _ = dtmf.push(now, &h, inc.packet.payload);
                }
                MediaKind::ComfortNoise => {}
            }
        }
        while jb.pop(now).is_some() {}
        dtmf.handle_timeout(now);
        while session.poll_event().is_some() {}
        while dtmf.poll_event().is_some() {}
    }
});
