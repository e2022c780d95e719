//! Leg helpers shared by the SIP integration tests: a leg's next event (within the deadline),
//! its events up to one a test waits for, and the dial of a call to a SIPp UAS.
#![allow(dead_code)]

use std::time::Duration;

use boomerang::call::driver::Dial;
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
