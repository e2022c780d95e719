//! Inbound calls on route points against a SIPp UAC (the customer's phone) on loopback: the
//! call is answered and handed to the handler as a leg with the same operations and events as
//! an outbound one. Both sides are asserted: SIPp's exit code (its scenario checks every
//! response) and Boomerang's incoming leg, events and audio.

use std::sync::Arc;
use std::time::Duration;

use boomerang::call::driver::{DriverConfig, Telephony};
use boomerang::call::dtmf_collect::{CollectEnd, synthesize};
use boomerang::call::inbound::IncomingCall;
use boomerang::call::leg::{Cause, LegEvent};
use boomerang_media::g711::Law;
use boomerang_media::treatment::{PlayMode, Treatment};
use tokio::sync::mpsc::Receiver;

#[path = "common/legs.rs"]
mod legs;
#[path = "common/sipp.rs"]
mod sipp;
use legs::*;
#[path = "common/uac.rs"]
mod uac;
use sipp::*;
use uac::Uac;

async fn telephony() -> (Telephony, Receiver<IncomingCall>) {
    let mut cfg = DriverConfig::loopback();
    cfg.route_points = vec!["3000".into(), "3001".into()];
    let (t, _task) = Telephony::start(cfg).await.expect("telephony starts");
    let incoming = t.incoming().expect("first taker gets the incoming calls");
    assert!(t.incoming().is_none(), "taken once");
    (t, incoming)
}

async fn next_call(rx: &mut Receiver<IncomingCall>) -> IncomingCall {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("an incoming call in time")
        .expect("incoming stream open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_point_call_is_answered_our_treatment_reaches_sipp_and_the_caller_hangs_up() {
    let (t, mut incoming) = telephony().await;
    let mut keys = codec_keys(true);
    keys.extend(["-rtp_echo", "-d", "5000"]);
    let uac = Uac::call("uac_call.xml", t.local_addr(), "3000", &keys);
    let mut call = next_call(&mut incoming).await;
    assert_eq!(call.number, "3000");
    assert_eq!(call.caller, "customer");
    t.answer(call.leg).await.expect("answer");
    let ev = events_until(&mut call.events, |e| matches!(e, LegEvent::Answered { .. })).await;
    assert!(
        matches!(
            ev.last(),
            Some(LegEvent::Answered {
                codec: Some("PCMA"),
                remote_rtp: Some(_)
            })
        ),
        "{ev:?}"
    );
    // SIPp echoes what it receives: our treatment's bytes coming back prove it got them.
    let pcm: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * (0.05 + i as f32 * 1e-5)).sin() * 8000.0) as i16)
        .collect();
    let tr = Arc::new(Treatment::from_pcm("sweep", pcm));
    t.play(call.leg, tr.clone(), PlayMode::Once).await.expect("play");
    let got = received_at_least(&t, call.leg, 4000).await;
    assert_eq!(
        got.get(..4000),
        tr.encoded(Law::Alaw).get(..4000),
        "the treatment reached SIPp intact (A-law, as negotiated) and came back"
    );
    let stats = t.media_stats(call.leg).await.expect("stats");
    assert!(
        stats.latched.is_some(),
        "symmetric RTP latched to SIPp's media port"
    );
    let ev = events_until(&mut call.events, is_hangup).await;
    assert!(
        matches!(
            ev.last(),
            Some(LegEvent::Hangup {
                cause: Cause::RemoteHangup,
                ..
            })
        ),
        "{ev:?}"
    );
    assert_eq!(uac.wait().await, 0, "SIPp: 180/200 with SDP, our 200 to its BYE");
    let (_, legs, ports) = t.counters().await.expect("counters");
    assert_eq!((legs, ports), (0, 0), "no leaked leg or port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_audio_on_an_inbound_leg_arrives() {
    let (t, mut incoming) = telephony().await;
    let hello = fixtures().join("audio/hello.ul");
    let audio = format!("{},-1,0", hello.display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str(), "-d", "3000"]);
    let uac = Uac::call("uac_call_speak.xml", t.local_addr(), "3001", &keys);
    let mut call = next_call(&mut incoming).await;
    assert_eq!(call.number, "3001");
    t.answer(call.leg).await.expect("answer");
    let got = received_at_least(&t, call.leg, 3200).await;
    let want = std::fs::read(&hello).expect("hello.ul");
    assert!(
        contains(&got, want.get(1600..3200).expect("long enough")),
        "SIPp's audio arrived byte for byte"
    );
    let ev = events_until(&mut call.events, is_hangup).await;
    assert!(ev.iter().any(|e| matches!(
        e,
        LegEvent::Answered {
            codec: Some("PCMU"),
            ..
        }
    )));
    assert_eq!(uac.wait().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_gets_404() {
    let (t, mut incoming) = telephony().await;
    let uac = Uac::call("uac_unknown_404.xml", t.local_addr(), "9999", &codec_keys(false));
    assert_eq!(
        uac.wait().await,
        0,
        "SIPp got 404 for a number that is not a route point"
    );
    assert!(incoming.try_recv().is_err(), "nothing handed to the handler");
    let (_, legs, ports) = t.counters().await.expect("counters");
    assert_eq!((legs, ports), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing_gets_487_and_ends_the_leg() {
    let (t, mut incoming) = telephony().await;
    let uac = Uac::call("uac_cancel.xml", t.local_addr(), "3000", &codec_keys(false));
    let mut call = next_call(&mut incoming).await;
    // Not answered: the caller gives up.
    let ev = events_until(&mut call.events, is_hangup).await;
    assert_eq!(
        ev.last(),
        Some(&LegEvent::Hangup {
            cause: Cause::RemoteHangup,
            code: Some(487),
            reason: "CANCEL".into()
        })
    );
    assert_eq!(uac.wait().await, 0, "SIPp: 180, then 200 to CANCEL and 487");
    let (_, legs, ports) = t.counters().await.expect("counters");
    assert_eq!((legs, ports), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_dtmf_from_the_caller_is_collected() {
    let (t, mut incoming) = telephony().await;
    // Real DTMF tones in the audio (PCMU, 160-byte frames): 1 2 3 #, after 0.5 s of silence.
    let mut pcm = vec![0i16; 4000];
    pcm.extend(synthesize("123#", 100, 100));
    pcm.resize(pcm.len().div_ceil(160) * 160 + 8000, 0);
    let mut ul = vec![0u8; pcm.len()];
    Law::Ulaw.encode_slice(&pcm, &mut ul);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dtmf.ul");
    std::fs::write(&file, &ul).expect("write");
    let audio = format!("{},1,0", file.display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str(), "-d", "4000"]);
    let uac = Uac::call("uac_call_speak.xml", t.local_addr(), "3000", &keys);
    let mut call = next_call(&mut incoming).await;
    t.answer(call.leg).await.expect("answer");
    let got = t
        .collect_dtmf(
            call.leg,
            8,
            Some('#'),
            Duration::from_secs(10),
            Duration::from_secs(20),
        )
        .await
        .expect("collected");
    assert_eq!(got.digits, "123");
    assert_eq!(got.end, CollectEnd::Terminator);
    let ev = events_until(&mut call.events, is_hangup).await;
    let digits: String = ev
        .iter()
        .filter_map(|e| match e {
            LegEvent::Dtmf {
                digit,
                source: "inband",
            } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "123#", "one dtmf event per key: {ev:?}");
    assert_eq!(uac.wait().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_puts_us_on_hold_then_we_hang_up_with_bye() {
    let (t, mut incoming) = telephony().await;
    let uac = Uac::call(
        "uac_hold_wait_bye.xml",
        t.local_addr(),
        "3000",
        &codec_keys(false),
    );
    let mut call = next_call(&mut incoming).await;
    t.answer(call.leg).await.expect("answer");
    let ev = events_until(&mut call.events, |e| matches!(e, LegEvent::Hold { .. })).await;
    assert_eq!(ev.last(), Some(&LegEvent::Hold { held: true }), "{ev:?}");
    t.hangup(call.leg).await.expect("hangup");
    let ev = events_until(&mut call.events, is_hangup).await;
    assert_eq!(
        ev.last(),
        Some(&LegEvent::Hangup {
            cause: Cause::LocalHangup,
            code: Some(200),
            reason: "OK".into()
        })
    );
    assert_eq!(
        uac.wait().await,
        0,
        "SIPp: re-INVITE answered 200, our BYE received"
    );
    let (_, legs, ports) = t.counters().await.expect("counters");
    assert_eq!((legs, ports), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_customer_bridged_to_an_outbound_agent_is_relayed_transcoded() {
    let (t, mut incoming) = telephony().await;
    // The agent's phone (PCMA) echoes what it receives: the agent leg hears what we relayed.
    let mut agent_keys = codec_keys(true);
    agent_keys.push("-rtp_echo");
    let mut agent = Sipp::uas("uas_answer.xml", &agent_keys);
    let hello = fixtures().join("audio/hello.ul");
    let audio = format!("{},-1,0", hello.display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str(), "-d", "4000"]);
    let uac = Uac::call("uac_call_speak.xml", t.local_addr(), "3000", &keys);
    let mut call = next_call(&mut incoming).await;
    t.answer(call.leg).await.expect("answer");
    events_until(&mut call.events, |e| matches!(e, LegEvent::Answered { .. })).await;
    let dial = boomerang::call::driver::Dial {
        number: "agent".into(),
        dest: agent.addr(),
        domain: agent.addr().to_string(),
        caller: "3000".into(),
        p_asserted_identity: None,
        ring_timeout: Duration::from_secs(10),
        auth: None,
    };
    let (b, mut rx_b) = t.dial(dial).await.expect("dial the agent");
    events_until(&mut rx_b, |e| matches!(e, LegEvent::Answered { .. })).await;
    t.bridge(call.leg, b).await.expect("bridge");
    // A bridged leg records from the first look at its stats on: whatever stretch of the
    // customer's looping file that was, it comes back from the agent as A-law, byte-exact.
    let got = received_at_least(&t, b, 4800).await;
    let once = std::fs::read(&hello).expect("hello.ul");
    let mut looped: Vec<u8> = once.iter().chain(once.iter()).copied().collect();
    Law::Ulaw.transcode_in_place(Law::Alaw, &mut looped);
    assert!(
        contains(&looped, got.get(..1600).expect("bytes")),
        "the customer's PCMU reached the agent as PCMA, byte-exact"
    );
    // The customer hangs up; we end the agent leg.
    events_until(&mut call.events, is_hangup).await;
    t.hangup(b).await.expect("hangup agent");
    events_until(&mut rx_b, is_hangup).await;
    assert_eq!(uac.wait().await, 0);
    assert_eq!(agent.wait(), 0);
}
