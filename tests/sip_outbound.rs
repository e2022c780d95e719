//! Outbound call legs against SIPp (sip-tester) on loopback: every scenario of `sip-fixtures/`
//! is run, and both sides are asserted: SIPp's exit code and Boomerang's leg events and the
//! audio that arrived.

use std::sync::Arc;
use std::time::Duration;

use boomerang::call::driver::{Dial, DriverConfig, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use boomerang_media::g711::Law;
use boomerang_media::treatment::{PlayMode, Treatment};

#[path = "common/legs.rs"]
mod legs;
#[path = "common/sipp.rs"]
mod sipp;
use legs::*;
use sipp::*;

async fn telephony(no_rtp: Duration) -> Telephony {
    let mut cfg = DriverConfig::loopback();
    cfg.no_rtp_timeout = no_rtp;
    let (t, _task) = Telephony::start(cfg).await.expect("telephony starts");
    t
}

/// The shared dial, with a P-Asserted-Identity.
fn dial_pai(sipp: &Sipp, ring: Duration) -> Dial {
    Dial {
        p_asserted_identity: Some("<sip:8999@127.0.0.1>".into()),
        ..legs::dial_to(sipp, ring)
    }
}

fn hangup_of(v: &[LegEvent]) -> (Cause, Option<u16>) {
    match v.last() {
        Some(LegEvent::Hangup { cause, code, .. }) => (*cause, *code),
        other => panic!("no hangup: {other:?}"),
    }
}

async fn final_error(scenario: &str, expect: Cause, code: u16) {
    let mut sipp = Sipp::uas(scenario, &codec_keys(false));
    let t = telephony(Duration::from_secs(60)).await;
    let (_leg, mut rx) = t
        .dial(dial_pai(&sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    let ev = events_until(&mut rx, is_hangup).await;
    assert_eq!(ev.first(), Some(&LegEvent::Trying), "{ev:?}");
    assert_eq!(hangup_of(&ev), (expect, Some(code)), "{ev:?}");
    assert_eq!(
        sipp.wait(),
        0,
        "SIPp saw the scenario through (ACK of the {code})"
    );
    let (_, legs, ports) = t.counters().await.expect("counters");
    assert_eq!((legs, ports), (0, 0), "leg and RTP port released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_486_is_busy() {
    final_error("uas_busy.xml", Cause::Busy, 486).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_404_is_invalid_number() {
    final_error("uas_404.xml", Cause::InvalidNumber, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_480_is_no_answer() {
    final_error("uas_480.xml", Cause::NoAnswer, 480).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_unavailable_503_is_failover() {
    final_error("uas_503.xml", Cause::Failover, 503).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_403_is_error_and_decline_603_is_error() {
    final_error("uas_403.xml", Cause::Error, 403).await;
    final_error("uas_603.xml", Cause::Error, 603).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_timeout_sends_cancel_and_is_no_answer() {
    let mut sipp = Sipp::uas("uas_noanswer.xml", &codec_keys(false));
    let t = telephony(Duration::from_secs(60)).await;
    let (_leg, mut rx) = t
        .dial(dial_pai(&sipp, Duration::from_secs(1)))
        .await
        .expect("dial");
    let ev = events_until(&mut rx, is_hangup).await;
    assert!(ev.contains(&LegEvent::Ringing { code: 180 }), "{ev:?}");
    assert_eq!(hangup_of(&ev), (Cause::NoAnswer, Some(487)));
    assert_eq!(sipp.wait(), 0, "SIPp got CANCEL and the ACK of its 487");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_sit_then_404_delivers_audio_and_is_invalid_number() {
    let sit = fixtures().join("audio/sit.ul");
    let audio = format!("{},-1,0", sit.display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str()]);
    let mut sipp = Sipp::uas("uas_early_sit_404.xml", &keys);
    let t = telephony(Duration::from_secs(60)).await;
    let (leg, mut rx) = t
        .dial(dial_pai(&sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    let ev = events_until(&mut rx, |e| matches!(e, LegEvent::EarlyMedia { .. })).await;
    assert!(
        matches!(
            ev.last(),
            Some(LegEvent::EarlyMedia {
                codec: Some("PCMU"),
                ..
            })
        ),
        "{ev:?}"
    );
    // The SIT arrives as early media (what CPD in early mode listens to).
    let got = received_at_least(&t, leg, 1600).await;
    let sent = std::fs::read(&sit).expect("sit.ul");
    assert!(
        contains(&sent, got.get(..800).expect("800 bytes")),
        "early media is the SIT file"
    );
    let ev = events_until(&mut rx, is_hangup).await;
    assert_eq!(hangup_of(&ev), (Cause::InvalidNumber, Some(404)));
    assert_eq!(sipp.wait(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_plays_a_treatment_that_arrives_intact_then_bye() {
    let mut keys = codec_keys(false);
    keys.push("-rtp_echo");
    let mut sipp = Sipp::uas("uas_answer.xml", &keys);
    let t = telephony(Duration::from_secs(60)).await;
    let (leg, mut rx) = t
        .dial(dial_pai(&sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    let ev = events_until(&mut rx, |e| matches!(e, LegEvent::Answered { .. })).await;
    assert!(ev.contains(&LegEvent::Ringing { code: 180 }), "{ev:?}");
    assert!(matches!(
        ev.last(),
        Some(LegEvent::Answered {
            codec: Some("PCMU"),
            remote_rtp: Some(_)
        })
    ));
    // A 1 s sweep-like treatment; SIPp echoes what it receives, so we hear our own bytes back.
    let pcm: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * (0.05 + i as f32 * 1e-5)).sin() * 8000.0) as i16)
        .collect();
    let tr = Arc::new(Treatment::from_pcm("sweep", pcm));
    t.play(leg, tr.clone(), PlayMode::Once).await.expect("play");
    let got = received_at_least(&t, leg, 4000).await;
    let sent = tr.encoded(Law::Ulaw);
    assert_eq!(
        got.get(..4000),
        sent.get(..4000),
        "the treatment's bytes came back intact and in order"
    );
    t.hangup(leg).await.expect("hangup");
    let ev = events_until(&mut rx, is_hangup).await;
    assert_eq!(hangup_of(&ev), (Cause::LocalHangup, Some(200)));
    assert_eq!(sipp.wait(), 0, "SIPp got our BYE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_speaks_and_hangs_up_first() {
    let hello = fixtures().join("audio/hello.ul");
    let audio = format!("{},-1,0", hello.display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str()]);
    let mut sipp = Sipp::uas("uas_answer_hangup.xml", &keys);
    let t = telephony(Duration::from_secs(60)).await;
    let (leg, mut rx) = t
        .dial(dial_pai(&sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    events_until(&mut rx, |e| matches!(e, LegEvent::Answered { .. })).await;
    let got = received_at_least(&t, leg, 3200).await;
    let sent = std::fs::read(&hello).expect("hello.ul");
    assert!(
        contains(&sent, got.get(..3200).expect("bytes")),
        "the customer's speech arrived"
    );
    let ev = events_until(&mut rx, is_hangup).await;
    assert_eq!(hangup_of(&ev), (Cause::RemoteHangup, None));
    assert_eq!(sipp.wait(), 0, "SIPp's BYE got our 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_puts_the_call_on_hold_and_resumes() {
    let mut sipp = Sipp::uas("uas_hold.xml", &codec_keys(true));
    let t = telephony(Duration::from_secs(60)).await;
    let (leg, mut rx) = t
        .dial(dial_pai(&sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    let ev = events_until(&mut rx, |e| matches!(e, LegEvent::Hold { held: false })).await;
    assert!(matches!(
        ev.iter().find(|e| matches!(e, LegEvent::Answered { .. })),
        Some(LegEvent::Answered {
            codec: Some("PCMA"),
            ..
        })
    ));
    assert!(ev.contains(&LegEvent::Hold { held: true }), "{ev:?}");
    t.hangup(leg).await.expect("hangup");
    let ev = events_until(&mut rx, is_hangup).await;
    assert_eq!(hangup_of(&ev), (Cause::LocalHangup, Some(200)));
    assert_eq!(sipp.wait(), 0, "both re-INVITEs answered 200, BYE received");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_leg_without_rtp_is_torn_down() {
    let mut sipp = Sipp::uas("uas_answer.xml", &codec_keys(false));
    let t = telephony(Duration::from_secs(2)).await;
    let (_leg, mut rx) = t
        .dial(dial_pai(&sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    let ev = events_until(&mut rx, is_hangup).await;
    assert!(ev.iter().any(|e| matches!(e, LegEvent::Answered { .. })));
    assert_eq!(hangup_of(&ev).0, Cause::Timeout);
    assert_eq!(sipp.wait(), 0, "SIPp got our BYE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_relays_pcmu_customer_to_pcma_agent_transcoded() {
    let hello = fixtures().join("audio/hello.ul");
    let audio = format!("{},-1,0", hello.display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str()]);
    let mut customer = Sipp::uas("uas_answer_speak.xml", &keys);
    let mut agent_keys = codec_keys(true);
    agent_keys.push("-rtp_echo");
    let mut agent = Sipp::uas("uas_answer.xml", &agent_keys);
    let t = telephony(Duration::from_secs(60)).await;
    let (a, mut arx) = t
        .dial(dial_pai(&customer, Duration::from_secs(30)))
        .await
        .expect("dial customer");
    let (b, mut brx) = t
        .dial(dial_pai(&agent, Duration::from_secs(30)))
        .await
        .expect("dial agent");
    events_until(&mut arx, |e| matches!(e, LegEvent::Answered { .. })).await;
    events_until(&mut brx, |e| matches!(e, LegEvent::Answered { .. })).await;
    t.bridge(a, b).await.expect("bridge");
    // The agent (PCMA, echoing) sends back what the bridge relayed: the customer's PCMU speech
    // transcoded to A-law.
    let got = received_at_least(&t, b, 4000).await;
    let mut expected = std::fs::read(&hello).expect("hello.ul");
    let looped: Vec<u8> = expected.iter().chain(expected.iter()).copied().collect();
    expected = looped;
    Law::Ulaw.transcode_in_place(Law::Alaw, &mut expected);
    assert!(
        contains(&expected, got.get(..1600).expect("bytes")),
        "agent heard the customer, in A-law"
    );
    let stats = t.media_stats(a).await.expect("stats");
    assert!(stats.relayed_packets > 0);
    t.hangup(a).await.expect("hangup a");
    t.hangup(b).await.expect("hangup b");
    assert_eq!(
        hangup_of(&events_until(&mut arx, is_hangup).await).0,
        Cause::LocalHangup
    );
    assert_eq!(
        hangup_of(&events_until(&mut brx, is_hangup).await).0,
        Cause::LocalHangup
    );
    assert_eq!(customer.wait(), 0);
    assert_eq!(agent.wait(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_datagrams_never_stop_the_endpoint() {
    let t = telephony(Duration::from_secs(60)).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let dest = t.local_addr();
    let junk: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\x00\x01\x02".to_vec(),
        b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(),
        b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nContent-Length: 99999\r\n\r\n".to_vec(),
        format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nX: {}\r\n\r\n", "a".repeat(60_000)).into_bytes(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnone\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n".to_vec(),
    ];
    for j in &junk {
        sock.send_to(j, dest).await.expect("send");
    }
    // Max-Forwards 0 gets 483 and a well-formed OPTIONS 200. (Unknown methods are dropped by the
    // parser, counted as parse errors.)
    let req = |method: &str, mf: u32, branch: &str| {
        format!(
            "{method} sip:cb@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: {mf}\r\n\
From: <sip:t@127.0.0.1>;tag=t1\r\nTo: <sip:cb@127.0.0.1>\r\nCall-ID: {branch}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n",
            sock.local_addr().expect("addr")
        )
    };
    let mut buf = vec![0u8; 65536];
    for (method, mf, branch, code) in [
        ("INVITE", 0, "z9hG4bKmf0", 483),
        ("OPTIONS", 70, "z9hG4bKok", 200),
    ] {
        sock.send_to(req(method, mf, branch).as_bytes(), dest)
            .await
            .expect("send");
        let (n, _) = tokio::time::timeout(DEADLINE, sock.recv_from(&mut buf))
            .await
            .expect("reply")
            .expect("recv");
        let m = boomerang::sip::msg::parse(&buf[..n]).expect("reply parses");
        assert_eq!(m.code(), Some(code), "{method}");
    }
    let (counters, _, _) = t.counters().await.expect("counters");
    assert!(counters.parse_errors >= 4, "{counters:?}");
}
