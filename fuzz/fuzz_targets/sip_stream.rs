//! Arbitrary bytes as a TCP stream through the SIP framer (RFC 3261 §18.3), cut at every split
//! point the input chooses, and each framed message through the parser and the endpoint as a
//! TCP message: nothing may panic, and a framed message is never longer than the limits allow.
#![no_main]

use std::time::{Duration, Instant};

use boomerang::sip::endpoint::Endpoint;
use boomerang::sip::transaction::Timers;
use boomerang::sip::transport::{FrameLimits, Framer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let limits = FrameLimits {
        max_headers: 2048,
        max_body: 4096,
    };
    let mut f = Framer::new(limits);
    let now = Instant::now();
    let mut ep = Endpoint::new(Timers::default());
    let src = "127.0.0.1:5062".parse().expect("static address");
    let chunk = usize::from(split).max(1);
    'stream: for c in stream.chunks(chunk) {
        f.push(c);
        loop {
            match f.next_message() {
                Ok(Some(m)) => {
                    assert!(m.len() <= limits.max_headers + limits.max_body);
                    ep.handle_datagram(now, src, &m);
                }
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
    ep.handle_timeout(now + Duration::from_secs(64));
    while ep.poll_transmit().is_some() {}
    while ep.poll_event().is_some() {}
});
