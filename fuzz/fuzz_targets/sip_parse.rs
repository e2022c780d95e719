//! Arbitrary datagrams through the SIP parse path (rsip directly, so its panics are visible,
//! then our wrapper), the accessors, response generation, SDP and digest parameter parsing,
//! and the transaction endpoint: nothing may panic.
#![no_main]

use std::time::{Duration, Instant};

use boomerang::call::registrar::parse_auth;
use boomerang::sip::endpoint::Endpoint;
use boomerang::sip::msg;
use boomerang::sip::sdp;
use boomerang::sip::transaction::Timers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rsip::SipMessage::try_from(data);
    if let Ok(mut m) = msg::parse(data) {
        let _ = m.contact_uri();
        let _ = m.record_route();
        let _ = m.header_list("route");
        if let Some(a) = m.header("authorization") {
            let _ = parse_auth(a);
        }
        m.stamp_received("127.0.0.1:5060".parse().expect("static address"));
        let r = msg::response_to(&m, 200, "OK", Some("t"), &[], None);
        assert!(
            msg::parse(&r).is_ok(),
            "our response to a parsed message must parse"
        );
        let _ = sdp::parse(&m.body);
    }
    let _ = sdp::parse(data);
    let now = Instant::now();
    let mut ep = Endpoint::new(Timers::default());
    let src = "127.0.0.1:5062".parse().expect("static address");
    ep.handle_datagram(now, src, data);
    ep.handle_datagram(now, src, data);
    ep.handle_timeout(now + Duration::from_secs(64));
    while ep.poll_transmit().is_some() {}
    while ep.poll_event().is_some() {}
});
