//! Media features of legs against SIPp (signalling) and a test media peer (a UDP socket pair the
//! SIPp scenario puts into its SDP, `-key rtp_port`): RFC 4733 DTMF received, reported and
//! collected; RFC 4733 passed through a bridge with the payload type mapped to the other leg's
//! negotiated one; RTCP sender reports to the peer (RTP port + 1), the peer's reports in the
//! leg's stats, and an RTCP BYE at hangup.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boomerang::call::driver::{DriverConfig, LegId, Telephony};
use boomerang::call::dtmf_collect::CollectEnd;
use boomerang::call::leg::LegEvent;
use boomerang_media::dtmf::EventPayload;
use boomerang_media::rtp::rtcp::{ReportBlock, RtcpPacket, RtcpWriter, parse_compound};
use boomerang_media::rtp::{RtpHeader, parse, write};
use boomerang_media::treatment::{PlayMode, Treatment};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;

#[path = "common/legs.rs"]
mod legs;
#[path = "common/sipp.rs"]
mod sipp;
use legs::*;
use sipp::*;

/// The far end's media: RTP on `port`, RTCP on `port + 1`.
struct Peer {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    port: u16,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

impl Peer {
    async fn bind() -> Peer {
        for _ in 0..20 {
            let port = free_port();
            if let (Ok(rtp), Ok(rtcp)) = (
                UdpSocket::bind(("127.0.0.1", port)).await,
                UdpSocket::bind(("127.0.0.1", port + 1)).await,
            ) {
                return Peer {
                    rtp,
                    rtcp,
                    port,
                    seq: 1000,
                    ts: 50_000,
                    ssrc: 0x1234_5678,
                };
            }
        }
        panic!("no port pair");
    }

    fn port_key(&self) -> String {
        self.port.to_string()
    }

    /// Next RTP packet from the leg (payload type, payload), and where it came from.
    async fn recv(&self) -> (RtpHeader, Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 2048];
        let (n, src) = tokio::time::timeout(DEADLINE, self.rtp.recv_from(&mut buf))
            .await
            .expect("RTP in time")
            .expect("recv");
        let p = parse(buf.get(..n).expect("len")).expect("valid RTP from the leg");
        (p.header, p.payload.to_vec(), src)
    }

    async fn send(&mut self, to: SocketAddr, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        let h = RtpHeader {
            marker,
            payload_type: pt,
            sequence: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut out = [0u8; 1500];
        let n = write(&h, payload, &mut out).expect("packet");
        self.rtp
            .send_to(out.get(..n).expect("len"), to)
            .await
            .expect("send");
    }

    /// 20 ms of µ-law silence.
    async fn audio(&mut self, to: SocketAddr, frames: usize) {
        for _ in 0..frames {
            let ts = self.ts;
            self.ts = self.ts.wrapping_add(160);
            self.send(to, 0, false, ts, &[0xff; 160]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One RFC 4733 key press: three updates and the end packet three times.
    async fn digit(&mut self, to: SocketAddr, pt: u8, event: u8) {
        let ts = self.ts;
        for (i, d) in [160u16, 320, 480].into_iter().enumerate() {
            let p = EventPayload {
                event,
                end: false,
                volume: 10,
                duration: d,
            };
            self.send(to, pt, i == 0, ts, &p.to_bytes()).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..3 {
            let p = EventPayload {
                event,
                end: true,
                volume: 10,
                duration: 640,
            };
            self.send(to, pt, false, ts, &p.to_bytes()).await;
        }
        self.ts = self.ts.wrapping_add(800);
    }
}

async fn telephony() -> Telephony {
    let mut cfg = DriverConfig::loopback();
    cfg.no_rtp_timeout = Duration::from_secs(60);
    Telephony::start(cfg).await.expect("telephony starts").0
}

fn uas(peer: &Peer, pcma: bool, te_pt: &str) -> Sipp {
    let mut keys = codec_keys(pcma);
    let port = peer.port_key();
    keys.extend(["-key", "rtp_port", port.as_str(), "-key", "te_pt", te_pt]);
    Sipp::uas("uas_answer_media_port.xml", &keys)
}

async fn answered(t: &Telephony, sipp: &Sipp) -> (LegId, UnboundedReceiver<LegEvent>) {
    let (leg, mut rx) = t
        .dial(dial_to(sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    events_until(&mut rx, |e| matches!(e, LegEvent::Answered { .. })).await;
    (leg, rx)
}

fn tone() -> Arc<Treatment> {
    let pcm: Vec<i16> = (0..16000)
        .map(|i| ((i as f32 * 0.3).sin() * 6000.0) as i16)
        .collect();
    Arc::new(Treatment::from_pcm("tone", pcm))
}

/// Plays a tone so the peer sees the leg's RTP address; checks the bytes are the treatment's.
async fn leg_address(t: &Telephony, leg: LegId, peer: &Peer, law: boomerang_media::g711::Law) -> SocketAddr {
    let tr = tone();
    t.play(leg, tr.clone(), PlayMode::Once).await.expect("play");
    let (h, payload, src) = peer.recv().await;
    assert_eq!(h.payload_type, law.payload_type());
    assert_eq!(
        Some(payload.as_slice()),
        tr.encoded(law).get(..160),
        "the peer got the treatment's first frame"
    );
    src
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_digits_are_reported_and_collected() {
    let mut peer = Peer::bind().await;
    let mut sipp = uas(&peer, false, "101");
    let t = telephony().await;
    let (leg, mut rx) = answered(&t, &sipp).await;
    let to = leg_address(&t, leg, &peer, boomerang_media::g711::Law::Ulaw).await;
    peer.audio(to, 5).await;
    let collect = {
        let t = t.clone();
        tokio::spawn(async move {
            t.collect_dtmf(
                leg,
                4,
                Some('#'),
                Duration::from_secs(10),
                Duration::from_secs(20),
            )
            .await
        })
    };
    for ev in [4u8, 2, 11] {
        peer.digit(to, 101, ev).await;
        peer.audio(to, 3).await;
    }
    let got = tokio::time::timeout(DEADLINE, collect)
        .await
        .expect("collect in time")
        .expect("task")
        .expect("collected");
    assert_eq!(got.digits, "42");
    assert_eq!(got.end, CollectEnd::Terminator);
    let ev = events_until(&mut rx, |e| matches!(e, LegEvent::Dtmf { digit: '#', .. })).await;
    let digits: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            LegEvent::Dtmf { digit, source } => Some((*digit, *source)),
            _ => None,
        })
        .collect();
    assert_eq!(
        digits,
        vec![('4', "rfc4733"), ('2', "rfc4733"), ('#', "rfc4733")],
        "one event per key, the repeated end packets de-duplicated"
    );
    t.hangup(leg).await.expect("hangup");
    events_until(&mut rx, |e| matches!(e, LegEvent::Hangup { .. })).await;
    assert_eq!(sipp.wait(), 0);
}

/// A customer leg (PCMU, telephone-event 101) bridged to an agent leg, both answered by SIPp
/// with the test peers' media ports; the customer's leg stopped its tone.
struct Bridged {
    customer: Peer,
    agent: Peer,
    t: Telephony,
    a: LegId,
    b: LegId,
    rx_a: UnboundedReceiver<LegEvent>,
    /// The customer leg's RTP address.
    to: SocketAddr,
    end: BridgeEnd,
}

/// What ends a [`Bridged`] call: the agent leg's events and both SIPp processes.
struct BridgeEnd {
    rx_b: UnboundedReceiver<LegEvent>,
    sipp_c: Sipp,
    sipp_a: Sipp,
}

impl BridgeEnd {
    /// Hangs up both legs, waits for both hangups and for SIPp to end cleanly.
    async fn hang_up(mut self, t: &Telephony, a: LegId, b: LegId, mut rx_a: UnboundedReceiver<LegEvent>) {
        t.hangup(a).await.expect("hangup");
        t.hangup(b).await.expect("hangup");
        events_until(&mut rx_a, |e| matches!(e, LegEvent::Hangup { .. })).await;
        events_until(&mut self.rx_b, |e| matches!(e, LegEvent::Hangup { .. })).await;
        assert_eq!(self.sipp_c.wait(), 0);
        assert_eq!(self.sipp_a.wait(), 0);
    }
}

async fn bridged(agent_pcma: bool, agent_te: &str) -> Bridged {
    let customer = Peer::bind().await;
    let agent = Peer::bind().await;
    let sipp_c = uas(&customer, false, "101");
    let sipp_a = uas(&agent, agent_pcma, agent_te);
    let t = telephony().await;
    let (a, rx_a) = answered(&t, &sipp_c).await;
    let (b, rx_b) = answered(&t, &sipp_a).await;
    let to = leg_address(&t, a, &customer, boomerang_media::g711::Law::Ulaw).await;
    t.stop(a).await.expect("stop");
    t.bridge(a, b).await.expect("bridge");
    Bridged {
        customer,
        agent,
        t,
        a,
        b,
        rx_a,
        to,
        end: BridgeEnd { rx_b, sipp_c, sipp_a },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_passes_through_a_bridge_with_the_payload_type_mapped() {
    let Bridged {
        mut customer,
        agent,
        t,
        a,
        b,
        mut rx_a,
        to,
        end,
    } = bridged(true, "96").await;
    customer.audio(to, 3).await;
    customer.digit(to, 101, 5).await;
    customer.audio(to, 3).await;
    // The agent's side: relayed audio as PCMA (8) and the event with its own type 96.
    let mut events = Vec::new();
    let mut audio = 0;
    let start = Instant::now();
    while events.len() < 4 && start.elapsed() < DEADLINE {
        let (h, payload, _) = agent.recv().await;
        match h.payload_type {
            8 => audio += 1,
            96 => events.push((h, EventPayload::parse(&payload).expect("event payload"))),
            other => panic!("payload type {other} reached the agent"),
        }
    }
    assert!(audio > 0, "audio relayed (transcoded to PCMA)");
    assert!(events.len() >= 4, "the event's packets relayed: {events:?}");
    assert!(events.iter().all(|(_, p)| p.event == 5));
    assert!(
        events.first().is_some_and(|(h, _)| h.marker),
        "marker on the first packet"
    );
    let ts = events.first().map(|(h, _)| h.timestamp);
    assert!(
        events.iter().all(|(h, _)| Some(h.timestamp) == ts),
        "one timestamp for the whole event"
    );
    assert!(events.iter().any(|(_, p)| p.end), "the end packet relayed");
    let ev = events_until(&mut rx_a, |e| matches!(e, LegEvent::Dtmf { .. })).await;
    assert!(ev.contains(&LegEvent::Dtmf {
        digit: '5',
        source: "rfc4733"
    }));
    let stats = t.media_stats(b).await.expect("stats");
    assert!(stats.relayed_events >= 4);
    end.hang_up(&t, a, b, rx_a).await;
}

/// Whether the relay engine receives what the customer sends to its leg at `to` (five more
/// datagrams within the deadline).
async fn engine_reads(t: &Telephony, customer: &mut Peer, to: SocketAddr) -> bool {
    let before = t.relay_engine_received();
    let start = Instant::now();
    while t.relay_engine_received() < before + 5 && start.elapsed() < DEADLINE {
        customer.audio(to, 5).await;
    }
    t.relay_engine_received() >= before + 5
}

/// A bridged leg's socket is read by the relay engine; collecting digits takes it back into
/// the leg's task (in-band DTMF needs the decoded audio), and it goes back to the engine after.
/// At hangup the RTP port is really closed (it can be bound again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_leg_hands_its_socket_to_the_relay_engine_and_takes_it_back_to_collect_digits() {
    let Bridged {
        mut customer,
        agent,
        t,
        a,
        b,
        rx_a,
        to,
        end,
    } = bridged(false, "101").await;
    // Relayed by the engine once the bridge is up.
    assert!(
        engine_reads(&t, &mut customer, to).await,
        "the relay engine reads the bridged leg"
    );
    // Hostile datagrams on the engine's socket are dropped; the leg goes on relaying.
    let before = t.media_stats(a).await.expect("stats").rx_packets;
    for junk in [&[][..], &[0x80][..], &[0xffu8; 1500][..], &[0x80, 0x00, 0, 1][..]] {
        customer.rtp.send_to(junk, to).await.expect("send junk");
    }
    customer.audio(to, 3).await;
    let start = Instant::now();
    while t.media_stats(a).await.expect("stats").rx_packets < before + 3 && start.elapsed() < DEADLINE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        t.media_stats(a).await.expect("stats").rx_packets,
        before + 3,
        "the audio after the junk is received, the junk is not counted as RTP"
    );
    // Collect in-band digits on the bridged customer leg: its task reads the audio again.
    let collect = {
        let t = t.clone();
        tokio::spawn(async move {
            t.collect_dtmf(a, 2, None, Duration::from_secs(10), Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pcm = boomerang::call::dtmf_collect::synthesize("73", 100, 100);
    let ulaw: Vec<u8> = pcm
        .iter()
        .map(|&x| boomerang_media::g711::Law::Ulaw.encode(x))
        .collect();
    for frame in ulaw.chunks(160) {
        let ts = customer.ts;
        customer.ts = customer.ts.wrapping_add(160);
        customer.send(to, 0, false, ts, frame).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    customer.audio(to, 5).await;
    let got = tokio::time::timeout(DEADLINE, collect)
        .await
        .expect("collect in time")
        .expect("task")
        .expect("collected");
    // The engine does not decode audio: the digits prove the task read the leg meanwhile.
    assert_eq!(got.digits, "73", "in-band digits heard on a bridged leg");
    // The agent still got the customer's audio while the task read it.
    let (h, _, _) = agent.recv().await;
    assert_eq!(h.payload_type, 0);
    // Collection over: back to the engine.
    assert!(
        engine_reads(&t, &mut customer, to).await,
        "the engine reads the leg again after the collection"
    );
    end.hang_up(&t, a, b, rx_a).await;
    // The port is closed once the engine let go of it.
    let start = Instant::now();
    let mut rebound = false;
    while start.elapsed() < DEADLINE {
        if std::net::UdpSocket::bind(to).is_ok() {
            rebound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rebound, "the leg's RTP port {to} was closed after hangup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_reports_reach_the_peer_and_the_peers_reports_fill_the_stats() {
    let mut peer = Peer::bind().await;
    let mut sipp = uas(&peer, false, "101");
    let t = telephony().await;
    let (leg, mut rx) = answered(&t, &sipp).await;
    let to = leg_address(&t, leg, &peer, boomerang_media::g711::Law::Ulaw).await;
    t.play(leg, tone(), PlayMode::Loop).await.expect("play");
    let ssrc = t.media_stats(leg).await.expect("stats").ssrc;
    // Our audio to the leg (so its reports carry a block on us), while waiting for its SR.
    let mut buf = [0u8; 1500];
    let start = Instant::now();
    let (sr_ntp, from) = loop {
        assert!(start.elapsed() < DEADLINE, "no sender report");
        peer.audio(to, 5).await;
        let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_millis(50), peer.rtcp.recv_from(&mut buf)).await
        else {
            continue;
        };
        let packets = parse_compound(buf.get(..n).expect("len")).expect("valid RTCP");
        let sr = packets.iter().find_map(|p| match p {
            RtcpPacket::SenderReport {
                ssrc: s,
                info,
                blocks,
            } if *s == ssrc => Some((info.ntp_timestamp, blocks.clone())),
            _ => None,
        });
        if let Some((ntp, blocks)) = sr {
            assert!(
                packets
                    .iter()
                    .any(|p| matches!(p, RtcpPacket::SourceDescription { .. })),
                "SDES CNAME in the compound"
            );
            assert!(
                blocks.iter().any(|b| b.ssrc == peer.ssrc),
                "a reception block on our stream"
            );
            break (ntp, from);
        }
    };
    assert_eq!(from.port(), to.port() + 1, "RTCP from the RTP port + 1");
    // The peer's receiver report on the leg's stream: 25 % lost, 7 packets, 10 ms jitter.
    let mut out = [0u8; 512];
    let mut w = RtcpWriter::new(&mut out);
    w.receiver_report(
        peer.ssrc,
        &[ReportBlock {
            ssrc,
            fraction_lost: 64,
            cumulative_lost: 7,
            extended_highest_seq: 100,
            jitter: 80,
            last_sr: (sr_ntp >> 16) as u32,
            delay_since_last_sr: 0,
        }],
    )
    .expect("RR");
    w.sdes_cname(peer.ssrc, "peer@test").expect("SDES");
    let n = w.finish();
    peer.rtcp
        .send_to(out.get(..n).expect("len"), from)
        .await
        .expect("send");
    let start = Instant::now();
    let stats = loop {
        let s = t.media_stats(leg).await.expect("stats");
        if s.remote_jitter_ms.is_some() {
            break s;
        }
        assert!(start.elapsed() < DEADLINE, "the peer's report never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stats.remote_jitter_ms, Some(10.0));
    assert_eq!(stats.remote_fraction_lost, Some(0.25));
    assert_eq!(stats.remote_cumulative_lost, Some(7));
    assert!(
        stats.rtt_ms.is_some_and(|r| r >= 0.0),
        "RTT from LSR/DLSR: {stats:?}"
    );
    assert!(stats.rtcp_sent >= 1 && stats.rtcp_received >= 1);
    assert!(
        stats.jitter_ms.is_some(),
        "our own jitter measure of the peer's stream"
    );
    // Hangup: an RTCP BYE for our source.
    t.hangup(leg).await.expect("hangup");
    events_until(&mut rx, |e| matches!(e, LegEvent::Hangup { .. })).await;
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "no RTCP BYE");
        let (n, _) = tokio::time::timeout(DEADLINE, peer.rtcp.recv_from(&mut buf))
            .await
            .expect("RTCP in time")
            .expect("recv");
        let packets = parse_compound(buf.get(..n).expect("len")).expect("valid RTCP");
        if packets
            .iter()
            .any(|p| matches!(p, RtcpPacket::Goodbye { sources, .. } if sources.contains(&ssrc)))
        {
            break;
        }
    }
    assert_eq!(sipp.wait(), 0);
}

/// RFC 3264 §8.4: while the peer holds the call (`sendonly`) it gets no media from us, not even
/// the treatment that plays; the treatment goes on once the hold ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_to_a_peer_that_holds_the_call() {
    let peer = Peer::bind().await;
    let mut keys = codec_keys(false);
    let port = peer.port_key();
    keys.extend(["-key", "rtp_port", port.as_str()]);
    let mut sipp = Sipp::uas("uas_hold_media_port.xml", &keys);
    let t = telephony().await;
    let (leg, mut rx) = answered(&t, &sipp).await;
    t.play(leg, tone(), PlayMode::Loop).await.expect("play");
    peer.recv().await;

    // Count what reaches the peer from the hold to the resume (a packet or two may already have
    // been on its way when the hold arrived; 1.5 s of treatment would be 75).
    let mut buf = [0u8; 2048];
    let mut held_at: Option<Instant> = None;
    let mut during_hold = 0usize;
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "no resume");
        tokio::select! {
            e = rx.recv() => match e.expect("event stream open") {
                LegEvent::Hold { held: true } => held_at = Some(Instant::now()),
                LegEvent::Hold { held: false } => break,
                _ => {}
            },
            r = peer.rtp.recv_from(&mut buf) => {
                r.expect("recv");
                if held_at.is_some() {
                    during_hold += 1;
                }
            }
        }
    }
    let held_for = held_at.expect("the hold was reported").elapsed();
    assert!(
        during_hold <= 2,
        "{during_hold} packets sent to the held peer in {held_for:?}"
    );
    // Off hold: the treatment reaches the peer again.
    let (h, _, _) = peer.recv().await;
    assert_eq!(h.payload_type, 0);
    t.hangup(leg).await.expect("hangup");
    events_until(&mut rx, |e| matches!(e, LegEvent::Hangup { .. })).await;
    assert_eq!(sipp.wait(), 0, "SIPp: both re-INVITEs answered, BYE received");
}
