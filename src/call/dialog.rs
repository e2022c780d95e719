//! A leg's dialog, outbound (UAC, [`OutboundLeg`]) or inbound (UAS, [`InboundLeg`]): one type
//! for the driver, so both kinds of leg get the same operations and events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::inbound_leg::InboundLeg;
use super::leg::{Cause, LegEvent, LegState, OutboundLeg};
use crate::sip::endpoint::{ClientId, Endpoint, ServerId};
use crate::sip::msg::Msg;
use crate::sip::sdp::{Codec, RemoteMedia};

/// Where a dialog's in-dialog requests go (RFC 3261 §12.2.1.1): the first route of the route
/// set, else the remote target, else `fallback` (the trunk, or where the INVITE came from).
pub(crate) fn next_hop(route_set: &[String], remote_target: &str, fallback: SocketAddr) -> SocketAddr {
    let uri = match route_set.first() {
        Some(r) => crate::sip::msg::addr_uri(r),
        None => remote_target.to_string(),
    };
    super::leg::uri_socket_addr(&uri).unwrap_or(fallback)
}

/// Ends a leg once: its state becomes `Ended` and its hangup event is queued, with the cause
/// forced earlier (`forced`, e.g. a ring timeout) over the one given now.
pub(crate) fn end_leg(
    state: &mut LegState,
    forced: Option<Cause>,
    events: &mut VecDeque<LegEvent>,
    cause: Cause,
    code: Option<u16>,
    reason: &str,
) {
    if *state == LegState::Ended {
        return;
    }
    *state = LegState::Ended;
    events.push_back(LegEvent::Hangup {
        cause: forced.unwrap_or(cause),
        code,
        reason: reason.to_string(),
    });
}

#[derive(Debug)]
pub enum Dialog {
    Out(Box<OutboundLeg>),
    In(Box<InboundLeg>),
}

impl Dialog {
    pub fn call_id(&self) -> &str {
        match self {
            Dialog::Out(l) => l.call_id(),
            Dialog::In(l) => l.call_id(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Dialog::Out(l) => l.poll_timeout(),
            Dialog::In(l) => l.poll_timeout(),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, ep: &mut Endpoint) {
        match self {
            Dialog::Out(l) => l.handle_timeout(now, ep),
            Dialog::In(l) => l.handle_timeout(now, ep),
        }
    }

    pub fn hangup(&mut self, now: Instant, ep: &mut Endpoint) {
        match self {
            Dialog::Out(l) => l.hangup(now, ep),
            Dialog::In(l) => l.hangup(now, ep),
        }
    }

    pub fn hangup_for(&mut self, now: Instant, ep: &mut Endpoint, cause: Cause) {
        match self {
            Dialog::Out(l) => l.hangup_for(now, ep, cause),
            Dialog::In(l) => l.hangup_for(now, ep, cause),
        }
    }

    /// Answers an inbound leg (no-op for an outbound one).
    pub fn answer(&mut self, now: Instant, ep: &mut Endpoint) {
        if let Dialog::In(l) = self {
            l.answer(now, ep);
        }
    }

    pub fn on_response(&mut self, now: Instant, ep: &mut Endpoint, tx: ClientId, m: &Msg) {
        match self {
            Dialog::Out(l) => l.on_response(now, ep, tx, m),
            Dialog::In(l) => l.on_response(tx, m),
        }
    }

    pub fn on_stray_2xx(&mut self, now: Instant, ep: &mut Endpoint, m: &Msg) {
        if let Dialog::Out(l) = self {
            l.on_stray_2xx(now, ep, m);
        }
    }

    pub fn owns_client_tx(&self, tx: ClientId) -> bool {
        match self {
            Dialog::Out(l) => l.owns_client_tx(tx),
            Dialog::In(l) => l.owns_client_tx(tx),
        }
    }

    pub fn on_timeout(&mut self, tx: ClientId) {
        match self {
            Dialog::Out(l) => l.on_timeout(tx),
            Dialog::In(l) => l.on_timeout(tx),
        }
    }

    pub fn on_request(&mut self, now: Instant, ep: &mut Endpoint, tx: ServerId, m: &Msg) {
        match self {
            Dialog::Out(l) => l.on_request(now, ep, tx, m),
            Dialog::In(l) => l.on_request(now, ep, tx, m),
        }
    }

    pub fn on_ack(&mut self, m: &Msg) {
        if let Dialog::In(l) = self {
            l.on_ack(m);
        }
    }

    pub fn on_no_ack(&mut self, now: Instant, ep: &mut Endpoint, tx: ServerId) {
        if let Dialog::In(l) = self {
            l.on_no_ack(now, ep, tx);
        }
    }

    pub fn poll_event(&mut self) -> Option<LegEvent> {
        match self {
            Dialog::Out(l) => l.poll_event(),
            Dialog::In(l) => l.poll_event(),
        }
    }

    pub fn is_ended(&self) -> bool {
        match self {
            Dialog::Out(l) => l.is_ended(),
            Dialog::In(l) => l.is_ended(),
        }
    }

    pub fn codec(&self) -> Option<Codec> {
        match self {
            Dialog::Out(l) => l.codec(),
            Dialog::In(l) => l.codec(),
        }
    }

    pub fn remote_media(&self) -> Option<&RemoteMedia> {
        match self {
            Dialog::Out(l) => l.remote_media(),
            Dialog::In(l) => l.remote_media(),
        }
    }
}
