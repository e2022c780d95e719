//! CPD on the received audio of a leg, against SIPp playing the scenario pack's audio: a person
//! answering, a voicemail greeting with its beep, a fax answer tone, and (in early-media mode,
//! from the 183) a special information tone and a busy tone. Asserted: the class (and beep or
//! SIT code) the leg reports in its `cpd` event, SIPp's exit code.

use std::time::Duration;

use boomerang::call::driver::{DriverConfig, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use boomerang_media::cpd::CpdParams;
use serde_json::{Map, Value};

#[path = "common/legs.rs"]
mod legs;
#[path = "common/sipp.rs"]
mod sipp;
use legs::*;
use sipp::*;

/// `file` followed by `silence_s` of µ-law silence, in a temp dir (SIPp plays it once).
fn with_silence(dir: &tempfile::TempDir, file: &str, silence_s: usize) -> String {
    let mut audio = std::fs::read(fixtures().join("audio").join(file)).expect("audio file");
    audio.extend(std::iter::repeat_n(0xffu8, 8000 * silence_s));
    let path = dir.path().join(file);
    std::fs::write(&path, audio).expect("write");
    format!("{},1,0", path.display())
}

/// Dials the scenario, runs CPD, returns the `cpd` result and every event up to the hangup.
async fn cpd_of(scenario: &str, audio: &str, early: bool) -> (Map<String, Value>, Vec<LegEvent>) {
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio]);
    let mut sipp = Sipp::uas(scenario, &keys);
    let (t, _task) = Telephony::start(DriverConfig::loopback())
        .await
        .expect("telephony starts");
    let (leg, mut rx) = t
        .dial(dial_to(&sipp, Duration::from_secs(30)))
        .await
        .expect("dial");
    t.start_cpd(leg, CpdParams::default(), early).await.expect("cpd");
    let mut events = Vec::new();
    let mut result = None;
    loop {
        let ev = next_event(&mut rx).await;
        events.push(ev.clone());
        match ev {
            LegEvent::Cpd { result: r } => {
                assert!(result.is_none(), "one cpd event per leg");
                result = Some(r);
                if !early {
                    // Answered: we end the call. Early media: the scenario's final error does.
                    t.hangup(leg).await.expect("hangup");
                }
            }
            LegEvent::Hangup { .. } => break,
            _ => {}
        }
    }
    assert_eq!(sipp.wait(), 0, "SIPp's scenario completed");
    (result.expect("a cpd event before the hangup"), events)
}

fn class(r: &Map<String, Value>) -> &str {
    r.get("class").and_then(Value::as_str).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_answers_and_speaks_is_human() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = with_silence(&dir, "hello.ul", 3);
    let (r, ev) = cpd_of("uas_answer_speak.xml", &audio, false).await;
    assert_eq!(class(&r), "human", "{r:?}");
    assert!(
        r.get("decision_ms")
            .and_then(Value::as_u64)
            .is_some_and(|ms| ms > 0)
    );
    assert!(r.get("evidence").is_some_and(Value::is_object));
    assert!(matches!(
        ev.last(),
        Some(LegEvent::Hangup {
            cause: Cause::LocalHangup,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_greeting_with_beep_is_machine_with_the_beep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = with_silence(&dir, "voicemail.ul", 1);
    let (r, _) = cpd_of("uas_answer_speak.xml", &audio, false).await;
    assert_eq!(class(&r), "machine", "{r:?}");
    let beep = r.get("beep_ms").and_then(Value::as_u64).expect("beep heard");
    assert!(beep > 3000, "the beep comes after the greeting: {beep} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fax_answer_tone_is_fax() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = with_silence(&dir, "fax-ced.ul", 1);
    let (r, _) = cpd_of("uas_answer_speak.xml", &audio, false).await;
    assert_eq!(class(&r), "fax", "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_sit_is_sit_with_its_code_then_404() {
    let audio = format!("{},-1,0", fixtures().join("audio/sit.ul").display());
    let (r, ev) = cpd_of("uas_early_sit_404.xml", &audio, true).await;
    assert_eq!(class(&r), "sit", "{r:?}");
    assert_eq!(r.get("sit_code").and_then(Value::as_str), Some("IC"));
    let cpd_at = ev.iter().position(|e| matches!(e, LegEvent::Cpd { .. }));
    let early_at = ev.iter().position(|e| matches!(e, LegEvent::EarlyMedia { .. }));
    assert!(early_at < cpd_at, "decided on the 183's media: {ev:?}");
    assert!(!ev.iter().any(|e| matches!(e, LegEvent::Answered { .. })));
    assert!(matches!(
        ev.last(),
        Some(LegEvent::Hangup { code: Some(404), .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_busy_tone_is_busy() {
    let audio = format!("{},-1,0", fixtures().join("audio/busy.ul").display());
    let (r, ev) = cpd_of("uas_early_busy_486.xml", &audio, true).await;
    assert_eq!(class(&r), "busy", "{r:?}");
    assert!(!ev.iter().any(|e| matches!(e, LegEvent::Answered { .. })));
    assert!(matches!(
        ev.last(),
        Some(LegEvent::Hangup {
            cause: Cause::Busy,
            code: Some(486),
            ..
        })
    ));
}
