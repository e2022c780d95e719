//! Inbound calls on route points, inside the telephony task: an INVITE whose Request-URI user
//! is a configured route point becomes a ringing inbound leg (its own RTP/RTCP ports and media
//! task, like an outbound leg) and is handed to the handler of [`super::driver::Telephony::incoming`];
//! any other number gets 404, and 480 when nobody takes calls or the queue is full.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::mpsc;

use super::dialog::Dialog;
use super::driver::{LegId, LegSlot, Ports, spawn_media};
use super::inbound_leg::{InboundLeg, uri_user};
use super::leg::LegEvent;
use super::media_task::MediaEnv;
use crate::sip::endpoint::{Endpoint, ServerId};
use crate::sip::msg::{self, Msg};

/// Inbound calls waiting for the handler.
pub const QUEUE: usize = 256;

/// An inbound call handed to the handler: the leg (answer it with `Telephony::answer`, then use
/// it like any leg) and its events (`answered`, `dtmf`, `hold`, ..., `hangup`).
#[derive(Debug)]
pub struct IncomingCall {
    pub leg: LegId,
    /// The route point dialled.
    pub number: String,
    /// The caller's user part (From).
    pub caller: String,
    pub events: mpsc::UnboundedReceiver<LegEvent>,
}

pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub local: SocketAddr,
    pub route_points: &'a [String],
    pub ports: &'a mut Ports,
    pub media: &'a MediaEnv,
    pub incoming: &'a mpsc::Sender<IncomingCall>,
}

fn refuse(ep: &mut Endpoint, now: Instant, tx: ServerId, m: &Msg, code: u16) {
    let bytes = msg::response_to(
        m,
        code,
        msg::default_reason(code),
        Some(&msg::token(8)),
        &[],
        None,
    );
    ep.respond(now, tx, code, bytes);
}

/// A dialog-creating INVITE that matched no leg.
pub(crate) fn on_invite(
    c: Ctx<'_>,
    ep: &mut Endpoint,
    tx: ServerId,
    m: &Msg,
    src: SocketAddr,
    id: u64,
) -> Option<(LegId, LegSlot)> {
    let now = c.now;
    let number = uri_user(m.request_uri()).unwrap_or("");
    if !c.route_points.iter().any(|r| r == number) {
        refuse(ep, now, tx, m, 404);
        return None;
    }
    if c.incoming.is_closed() {
        refuse(ep, now, tx, m, 480);
        return None;
    }
    let permit = match c.incoming.try_reserve() {
        Ok(p) => p,
        Err(_) => {
            refuse(ep, now, tx, m, 480);
            return None;
        }
    };
    let Some((rtp, rtcp)) = c.ports.bind_pair(c.local.ip()) else {
        refuse(ep, now, tx, m, 503);
        return None;
    };
    let rtp_addr = match rtp.local_addr() {
        Ok(a) => a,
        Err(_) => {
            refuse(ep, now, tx, m, 500);
            return None;
        }
    };
    let leg = match InboundLeg::accept(now, ep, c.local, tx, m, src, rtp_addr) {
        Ok(l) => l,
        Err(_) => {
            c.ports.release(rtp_addr.port());
            return None;
        }
    };
    let (etx, erx) = mpsc::unbounded_channel();
    let id = LegId(id);
    let rtx = match spawn_media(id, rtp, rtcp, etx.clone(), c.media) {
        Ok(r) => r,
        Err(_) => {
            let mut leg = leg;
            leg.hangup(now, ep);
            c.ports.release(rtp_addr.port());
            return None;
        }
    };
    permit.send(IncomingCall {
        leg: id,
        number: leg.number().to_string(),
        caller: leg.caller().to_string(),
        events: erx,
    });
    Some((
        id,
        LegSlot {
            leg: Dialog::In(Box::new(leg)),
            events: etx,
            rtp: rtx,
            rtp_port: rtp_addr.port(),
        },
    ))
}
