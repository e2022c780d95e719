//! Leg helpers shared by the SIP integration tests: a leg's next event (within the deadline),
//! its events up to one a test waits for, and the dial of a call to a SIPp UAS.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use boomerang::call::driver::{Dial, LegId, Telephony};
use boomerang::call::leg::LegEvent;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::sipp::{DEADLINE, Sipp};

pub async fn next_event(rx: &mut UnboundedReceiver<LegEvent>) -> LegEvent {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("event in time")
        .expect("event stream open")
}

/// Events until (and including) the first that `stop` accepts.
pub async fn events_until(
    rx: &mut UnboundedReceiver<LegEvent>,
    stop: impl Fn(&LegEvent) -> bool,
) -> Vec<LegEvent> {
    let mut v = Vec::new();
    loop {
        let e = next_event(rx).await;
        let done = stop(&e);
        v.push(e);
        if done {
            return v;
        }
    }
}

pub fn is_hangup(e: &LegEvent) -> bool {
    matches!(e, LegEvent::Hangup { .. })
}

/// Waits until the leg has received at least `n` audio bytes; returns them.
pub async fn received_at_least(t: &Telephony, leg: LegId, n: usize) -> Vec<u8> {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        let s = t.media_stats(leg).await.expect("stats");
        if s.received.len() >= n {
            return s.received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("leg {leg:?} did not receive {n} bytes");
}

/// Whether `needle` (not empty) occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A call to the SIPp UAS `sipp`, ringing for at most `ring`.
pub fn dial_to(sipp: &Sipp, ring: Duration) -> Dial {
    Dial {
        number: "0600".into(),
        dest: sipp.addr(),
        domain: sipp.addr().to_string(),
        caller: "8999".into(),
        p_asserted_identity: None,
        ring_timeout: ring,
        auth: None,
    }
}
