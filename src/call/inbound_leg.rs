//! One inbound call leg's signalling, sans-IO: the UAS side of an INVITE dialog (RFC 3261 §12.1.1,
//! §13.3): 100 and 180 at once, 200 with the SDP answer when the handler answers, the ACK that
//! confirms it, CANCEL before the answer (200 + 487), BYE from either side, re-INVITE from the
//! peer (hold/unhold), and a BYE when our 2xx is never ACKed (timer H). Session timers
//! (RFC 4028) when the UAC asks for them: 422 below our Min-SE, the UAC refreshes, a session
//! it stops refreshing is ended with BYE.
//!
//! It reports the same [`LegEvent`]s as an outbound leg: `answered`, `hold`, `hangup`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::leg::{Cause, LegEvent, LegState};
use crate::sip::endpoint::{ClientId, Endpoint, ServerId};
use crate::sip::msg::{self, Method, Msg, RequestBuilder};
use crate::sip::sdp::{self, Codec, Direction, LocalMedia, RemoteMedia};
use crate::sip::session_timer::{SessionAction, SessionTimer, parse_session_expires};

/// The smallest session interval we accept (RFC 4028 §5: at least 90 s).
pub const MIN_SE: Duration = Duration::from_secs(90);

/// How long an inbound call may ring unanswered before it is refused with 480.
pub const INBOUND_RING_LIMIT: Duration = Duration::from_secs(120);

/// The user part of a SIP URI (`sip:1234@host;params` -> `1234`).
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))?;
    let user = match rest.split_once('@') {
        Some((u, _)) => u,
        None if uri.starts_with("tel:") => rest,
        None => return None,
    };
    let user = user.split(';').next()?;
    (!user.is_empty()).then_some(user)
}

/// The signalling of one inbound leg.
#[derive(Debug)]
pub struct InboundLeg {
    state: LegState,
    local: SocketAddr,
    src: SocketAddr,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our side as the peer's To header, with our tag (the From of our requests).
    local_addr_hdr: String,
    /// The peer's From header (the To of our requests).
    remote_addr_hdr: String,
    remote_target: String,
    route_set: Vec<String>,
    cseq: u32,
    invite: Msg,
    invite_tx: ServerId,
    bye_tx: Option<ClientId>,
    local_media: LocalMedia,
    remote_media: Option<RemoteMedia>,
    /// The INVITE had no SDP: we offer in the 200 and the answer comes in the ACK.
    offer_in_2xx: bool,
    answered: bool,
    acked: bool,
    held: bool,
    forced_cause: Option<Cause>,
    ring_deadline: Option<Instant>,
    /// RFC 4028: the interval a UAC that supports session timers asked for; the UAC refreshes.
    session_expires: Option<Duration>,
    session: Option<SessionTimer>,
    number: String,
    caller: String,
    events: VecDeque<LegEvent>,
}

impl InboundLeg {
    /// Takes an INVITE for a route point: sends 100 and 180 (with our tag). On an SDP offer we
    /// cannot answer, sends 488 and returns the code.
    pub fn accept(
        now: Instant,
        ep: &mut Endpoint,
        local: SocketAddr,
        tx: ServerId,
        invite: &Msg,
        src: SocketAddr,
        rtp: SocketAddr,
    ) -> Result<InboundLeg, u16> {
        let local_tag = msg::token(10);
        // RFC 4028 §9: a UAC that supports session timers and asks for an interval below our
        // minimum gets 422 with ours; one that does not support them gets no timer (§7.1).
        let supports_timer = invite
            .header_list("supported")
            .iter()
            .chain(invite.header_list("require").iter())
            .any(|o| o.eq_ignore_ascii_case("timer"));
        let session_expires = invite
            .header("session-expires")
            .and_then(parse_session_expires)
            .map(|(d, _)| d)
            .filter(|_| supports_timer);
        if session_expires.is_some_and(|d| d < MIN_SE) {
            let bytes = msg::response_to(
                invite,
                422,
                "Session Interval Too Small",
                Some(&local_tag),
                &[("Min-SE", MIN_SE.as_secs().to_string())],
                None,
            );
            ep.respond(now, tx, 422, bytes);
            return Err(422);
        }
        let (remote_media, local_media, offer_in_2xx) = if invite.body.is_empty() {
            (None, LocalMedia::offer(rtp.ip(), rtp.port()), true)
        } else {
            let offer = sdp::parse(&invite.body).ok();
            let answer = offer
                .as_ref()
                .and_then(|o| LocalMedia::answer(rtp.ip(), rtp.port(), o).ok());
            match (offer, answer) {
                (Some(o), Some(a)) => (Some(o), a, false),
                _ => {
                    let bytes =
                        msg::response_to(invite, 488, msg::default_reason(488), Some(&local_tag), &[], None);
                    ep.respond(now, tx, 488, bytes);
                    return Err(488);
                }
            }
        };
        let mut rr = invite.record_route();
        if rr.len() > 32 {
            rr.truncate(32);
        }
        let leg = InboundLeg {
            state: LegState::Early,
            local,
            src,
            call_id: invite.call_id.clone(),
            local_addr_hdr: format!("{};tag={local_tag}", invite.to.raw),
            local_tag,
            remote_tag: invite.from.tag.clone(),
            remote_addr_hdr: invite.from.raw.clone(),
            remote_target: invite.contact_uri().unwrap_or_else(|| format!("sip:{src}")),
            route_set: rr,
            cseq: 1,
            invite: invite.clone(),
            invite_tx: tx,
            bye_tx: None,
            local_media,
            remote_media,
            offer_in_2xx,
            answered: false,
            acked: false,
            held: false,
            forced_cause: None,
            ring_deadline: Some(now + INBOUND_RING_LIMIT),
            session_expires,
            session: None,
            number: uri_user(invite.request_uri()).unwrap_or("").to_string(),
            caller: uri_user(&invite.from.uri).unwrap_or("").to_string(),
            events: VecDeque::new(),
        };
        let trying = msg::response_to(invite, 100, "Trying", None, &[], None);
        ep.respond(now, tx, 100, trying);
        let ringing = msg::response_to(
            invite,
            180,
            "Ringing",
            Some(&leg.local_tag),
            &[("Contact", leg.contact())],
            None,
        );
        ep.respond(now, tx, 180, ringing);
        Ok(leg)
    }

    fn contact(&self) -> String {
        format!("<sip:boomerang@{}>", self.local)
    }

    /// The dialled route point (Request-URI user).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The caller (From user).
    pub fn caller(&self) -> &str {
        &self.caller
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn state(&self) -> LegState {
        self.state
    }

    pub fn remote_media(&self) -> Option<&RemoteMedia> {
        self.remote_media.as_ref()
    }

    /// The codec of the call (the one our answer chose, or the first of the ACK's answer).
    pub fn codec(&self) -> Option<Codec> {
        if self.offer_in_2xx {
            self.remote_media.as_ref().and_then(sdp::negotiated)
        } else {
            self.local_media.codecs.first().copied()
        }
    }

    pub fn owns_client_tx(&self, tx: ClientId) -> bool {
        self.bye_tx == Some(tx)
    }

    pub fn owns_server_tx(&self, tx: ServerId) -> bool {
        self.invite_tx == tx
    }

    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    pub fn is_ended(&self) -> bool {
        self.state == LegState::Ended
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.answered {
            self.session.as_ref().and_then(SessionTimer::poll_timeout)
        } else {
            self.ring_deadline
        }
    }

    /// `Session-Expires` and `Require: timer` of our 2xx when the session has a timer.
    fn session_headers(&self) -> Vec<(&'static str, String)> {
        match self.session_expires {
            Some(d) => vec![
                ("Session-Expires", format!("{};refresher=uac", d.as_secs())),
                ("Require", "timer".into()),
            ],
            None => Vec::new(),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, ep: &mut Endpoint) {
        if self.state == LegState::Confirmed
            && let Some(SessionAction::Expire) = self.session.as_mut().and_then(|s| s.handle_timeout(now))
        {
            // The UAC did not refresh the session in time (RFC 4028 §10).
            self.session = None;
            self.hangup_for(now, ep, Cause::Timeout);
            return;
        }
        if let Some(t) = self.ring_deadline
            && now >= t
            && !self.answered
            && self.state == LegState::Early
        {
            self.ring_deadline = None;
            self.reject(now, ep, 480);
            self.end(Cause::NoAnswer, Some(480), "not answered");
        }
    }

    /// Answers with 200 and our SDP (answer, or offer when the INVITE had none).
    pub fn answer(&mut self, now: Instant, ep: &mut Endpoint) {
        if self.answered || self.state != LegState::Early {
            return;
        }
        self.answered = true;
        self.state = LegState::Confirmed;
        let body = self.local_media.to_bytes();
        let mut headers = vec![
            ("Contact", self.contact()),
            ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE".into()),
        ];
        headers.extend(self.session_headers());
        self.session = self.session_expires.map(|d| SessionTimer::peer_refreshes(now, d));
        let bytes = msg::response_to(
            &self.invite,
            200,
            "OK",
            Some(&self.local_tag),
            &headers,
            Some(("application/sdp", &body)),
        );
        ep.respond(now, self.invite_tx, 200, bytes);
        if !self.offer_in_2xx {
            let remote_rtp = self.remote_media.as_ref().map(|r| r.rtp);
            let codec = self.codec().map(Codec::name);
            self.events.push_back(LegEvent::Answered { remote_rtp, codec });
        }
    }

    fn reject(&mut self, now: Instant, ep: &mut Endpoint, code: u16) {
        let bytes = msg::response_to(
            &self.invite,
            code,
            msg::default_reason(code),
            Some(&self.local_tag),
            &[],
            None,
        );
        ep.respond(now, self.invite_tx, code, bytes);
    }

    /// Refuses a ringing call (480), or sends BYE on an answered one.
    pub fn hangup(&mut self, now: Instant, ep: &mut Endpoint) {
        match self.state {
            LegState::Early | LegState::Calling => {
                self.reject(now, ep, 480);
                self.end(Cause::LocalHangup, Some(480), "refused");
            }
            LegState::Confirmed => self.send_bye(now, ep),
            LegState::Terminating | LegState::Ended => {}
        }
    }

    pub fn hangup_for(&mut self, now: Instant, ep: &mut Endpoint, cause: Cause) {
        if self.forced_cause.is_none() {
            self.forced_cause = Some(cause);
        }
        self.hangup(now, ep);
    }

    fn send_bye(&mut self, now: Instant, ep: &mut Endpoint) {
        self.cseq += 1;
        let mut b = RequestBuilder::new(&Method::Bye, &self.remote_target)
            .header(
                "Via",
                format!("SIP/2.0/UDP {};branch={};rport", self.local, msg::new_branch()),
            )
            .header("Max-Forwards", 70)
            .header("From", &self.local_addr_hdr)
            .header("To", &self.remote_addr_hdr)
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{} BYE", self.cseq));
        for r in &self.route_set {
            b = b.header("Route", r);
        }
        let dest = self.next_hop();
        self.bye_tx = ep.send_request(now, dest, b.finish()).ok();
        self.state = LegState::Terminating;
        if self.bye_tx.is_none() {
            self.end(Cause::LocalHangup, None, "BYE");
        }
    }

    /// Where in-dialog requests go: the first route, else the remote target, else the source.
    fn next_hop(&self) -> SocketAddr {
        super::dialog::next_hop(&self.route_set, &self.remote_target, self.src)
    }

    fn end(&mut self, cause: Cause, code: Option<u16>, reason: &str) {
        super::dialog::end_leg(
            &mut self.state,
            self.forced_cause,
            &mut self.events,
            cause,
            code,
            reason,
        );
    }

    /// A re-INVITE or UPDATE from the UAC refreshes the session (RFC 4028 §10), with the
    /// interval it gives.
    fn peer_refreshed(&mut self, now: Instant, m: &Msg) {
        let value = m.header("session-expires");
        if let Some((d, _)) = value.and_then(parse_session_expires)
            && d >= MIN_SE
        {
            self.session_expires = Some(d);
        }
        if let Some(s) = self.session.as_mut() {
            s.peer_refreshed(now, value);
        }
    }

    /// The ACK of our 2xx (passed up by the endpoint: it has its own branch).
    pub fn on_ack(&mut self, m: &Msg) {
        if !self.answered || self.acked || m.cseq != self.invite.cseq {
            return;
        }
        self.acked = true;
        if self.offer_in_2xx {
            if let Ok(r) = sdp::parse(&m.body) {
                self.remote_media = Some(r);
            }
            let remote_rtp = self.remote_media.as_ref().map(|r| r.rtp);
            let codec = self.codec().map(Codec::name);
            self.events.push_back(LegEvent::Answered { remote_rtp, codec });
        }
    }

    /// Timer H: our 2xx was never ACKed; the call is ended with BYE (RFC 3261 §13.3.1.4).
    pub fn on_no_ack(&mut self, now: Instant, ep: &mut Endpoint, tx: ServerId) {
        if tx == self.invite_tx && self.answered && !self.acked {
            self.hangup_for(now, ep, Cause::Timeout);
        }
    }

    pub fn on_response(&mut self, tx: ClientId, m: &Msg) {
        if Some(tx) == self.bye_tx
            && let Some(code) = m.code().filter(|c| *c >= 200)
        {
            self.end(Cause::LocalHangup, Some(code), m.reason());
        }
    }

    pub fn on_timeout(&mut self, tx: ClientId) {
        if Some(tx) == self.bye_tx {
            self.end(Cause::LocalHangup, Some(408), "BYE timed out");
        }
    }

    /// A request with this leg's Call-ID (CANCEL, BYE, re-INVITE, ...).
    pub fn on_request(&mut self, now: Instant, ep: &mut Endpoint, tx: ServerId, m: &Msg) {
        let local_tag = self.local_tag.clone();
        let tag = Some(local_tag.as_str());
        let reply = |ep: &mut Endpoint, code: u16, extra: &[(&str, String)], body: Option<(&str, &[u8])>| {
            let bytes = msg::response_to(m, code, msg::default_reason(code), tag, extra, body);
            ep.respond(now, tx, code, bytes);
        };
        if m.method() == Some(&Method::Cancel) {
            // §9.2: CANCEL matches the INVITE's transaction (branch and sent-by).
            if ep.invite_for_cancel(m) != Some(self.invite_tx) {
                reply(ep, 481, &[], None);
                return;
            }
            reply(ep, 200, &[], None);
            if !self.answered && self.state == LegState::Early {
                self.reject(now, ep, 487);
                self.end(Cause::RemoteHangup, Some(487), "CANCEL");
            }
            return;
        }
        if m.to.tag.as_deref() != Some(self.local_tag.as_str()) || m.from.tag != self.remote_tag {
            if m.method() == Some(&Method::Invite) && m.to.tag.is_none() {
                // The same INVITE again with a new branch (a forked or looped request).
                reply(ep, 482, &[], None);
            } else {
                reply(ep, 481, &[], None);
            }
            return;
        }
        match m.method() {
            Some(Method::Bye) => {
                reply(ep, 200, &[], None);
                if !self.answered {
                    self.reject(now, ep, 487);
                }
                self.end(Cause::RemoteHangup, None, "BYE");
            }
            Some(Method::Invite) if self.state == LegState::Confirmed => {
                if let Some(c) = m.contact_uri() {
                    self.remote_target = c;
                }
                let offer = match sdp::parse(&m.body) {
                    Ok(o) => o,
                    Err(_) => {
                        reply(ep, 488, &[], None);
                        return;
                    }
                };
                let Ok(mut answer) = LocalMedia::answer(self.local_media.addr, self.local_media.port, &offer)
                else {
                    reply(ep, 488, &[], None);
                    return;
                };
                self.local_media.version += 1;
                answer.session_id = self.local_media.session_id;
                answer.version = self.local_media.version;
                let held = matches!(offer.direction, Direction::SendOnly | Direction::Inactive);
                self.remote_media = Some(offer);
                self.peer_refreshed(now, m);
                let mut headers = vec![("Contact", self.contact())];
                headers.extend(self.session_headers());
                reply(ep, 200, &headers, Some(("application/sdp", &answer.to_bytes())));
                if held != self.held {
                    self.held = held;
                    self.events.push_back(LegEvent::Hold { held });
                }
            }
            Some(Method::Invite) => reply(ep, 491, &[], None),
            Some(Method::Update) => {
                self.peer_refreshed(now, m);
                reply(ep, 200, &self.session_headers(), None);
            }
            Some(Method::Options) | Some(Method::Info) => reply(ep, 200, &[], None),
            _ => reply(
                ep,
                405,
                &[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS".into())],
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::endpoint::EndpointEvent;
    use crate::sip::transaction::Timers;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn invite(branch: &str) -> Vec<u8> {
        RequestBuilder::new(&Method::Invite, "sip:3000@127.0.0.1:5060")
            .header("Via", format!("SIP/2.0/UDP 127.0.0.1:5070;branch={branch}"))
            .header("Max-Forwards", 70)
            .header("From", "<sip:caller@127.0.0.1:5070>;tag=c1")
            .header("To", "<sip:3000@127.0.0.1:5060>")
            .header("Call-ID", "in1")
            .header("CSeq", "1 INVITE")
            .header("Contact", "<sip:caller@127.0.0.1:5070>")
            .body(Some("application/sdp"), OFFER.as_bytes())
    }

    fn start() -> (Endpoint, InboundLeg, Instant) {
        let now = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        let leg = accept_invite(&mut ep, now, &invite("z9hG4bKi1")).expect("accepted");
        (ep, leg, now)
    }

    fn sent(ep: &mut Endpoint) -> Vec<Msg> {
        let mut v = Vec::new();
        while let Some((_, b)) = ep.poll_transmit() {
            v.push(msg::parse(&b).expect("parses"));
        }
        v
    }

    #[test]
    fn rings_answers_with_sdp_and_sends_bye_to_the_contact() {
        let (mut ep, mut leg, now) = start();
        let codes: Vec<_> = sent(&mut ep).iter().filter_map(Msg::code).collect();
        assert_eq!(codes, vec![100, 180]);
        assert_eq!(leg.number(), "3000");
        assert_eq!(leg.caller(), "caller");
        leg.answer(now, &mut ep);
        let ok = sent(&mut ep).pop().expect("200");
        assert_eq!(ok.code(), Some(200));
        let ans = sdp::parse(&ok.body).expect("SDP answer");
        assert_eq!(ans.codecs, vec![Codec::Pcma]);
        assert_eq!(ans.telephone_event, Some(101));
        assert_eq!(
            leg.poll_event(),
            Some(LegEvent::Answered {
                remote_rtp: "127.0.0.1:6000".parse().ok(),
                codec: Some("PCMA")
            })
        );
        leg.hangup(now, &mut ep);
        let bye = sent(&mut ep).pop().expect("BYE");
        assert_eq!(bye.method(), Some(&Method::Bye));
        assert_eq!(bye.request_uri(), "sip:caller@127.0.0.1:5070");
        assert_eq!(bye.from.tag.as_deref(), Some(leg.local_tag.as_str()));
        assert_eq!(bye.to.tag.as_deref(), Some("c1"));
    }

    /// An INVITE asking for session timers (`Supported: timer`, `Session-Expires: secs`).
    fn timer_invite(secs: u64) -> Vec<u8> {
        RequestBuilder::new(&Method::Invite, "sip:3000@127.0.0.1:5060")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKst")
            .header("Max-Forwards", 70)
            .header("From", "<sip:caller@127.0.0.1:5070>;tag=c1")
            .header("To", "<sip:3000@127.0.0.1:5060>")
            .header("Call-ID", "in-st")
            .header("CSeq", "1 INVITE")
            .header("Contact", "<sip:caller@127.0.0.1:5070>")
            .header("Supported", "timer, 100rel")
            .header("Session-Expires", secs)
            .body(Some("application/sdp"), OFFER.as_bytes())
    }

    fn accept_invite(ep: &mut Endpoint, now: Instant, bytes: &[u8]) -> Result<InboundLeg, u16> {
        ep.handle_datagram(now, "127.0.0.1:5070".parse().expect("addr"), bytes);
        let Some(EndpointEvent::Request { tx, msg, src }) = ep.poll_event() else {
            panic!("INVITE event")
        };
        InboundLeg::accept(
            now,
            ep,
            "127.0.0.1:5060".parse().expect("addr"),
            tx,
            &msg,
            src,
            "127.0.0.1:20000".parse().expect("addr"),
        )
    }

    /// An in-dialog request from the caller to the leg.
    fn from_caller(
        ep: &mut Endpoint,
        leg: &mut InboundLeg,
        now: Instant,
        method: Method,
        cseq: u32,
        se: u64,
    ) {
        let req = RequestBuilder::new(&method, "sip:boomerang@127.0.0.1:5060")
            .header("Via", format!("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr{cseq}"))
            .header("Max-Forwards", 70)
            .header("From", "<sip:caller@127.0.0.1:5070>;tag=c1")
            .header("To", format!("<sip:3000@127.0.0.1:5060>;tag={}", leg.local_tag))
            .header("Call-ID", "in-st")
            .header("CSeq", format!("{cseq} {method}"))
            .header("Session-Expires", format!("{se};refresher=uac"))
            .finish();
        ep.handle_datagram(now, "127.0.0.1:5070".parse().expect("addr"), &req);
        let Some(EndpointEvent::Request { tx, msg, .. }) = ep.poll_event() else {
            panic!("request event")
        };
        leg.on_request(now, ep, tx, &msg);
    }

    #[test]
    fn session_timer_below_our_min_se_gets_422() {
        let now = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        assert_eq!(accept_invite(&mut ep, now, &timer_invite(30)).err(), Some(422));
        let resp = sent(&mut ep).pop().expect("422");
        assert_eq!(resp.code(), Some(422));
        assert_eq!(resp.header("min-se"), Some("90"));
    }

    #[test]
    fn session_timer_the_caller_refreshes_and_a_silent_caller_gets_bye() {
        let now = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        let mut leg = accept_invite(&mut ep, now, &timer_invite(120)).expect("accepted");
        sent(&mut ep);
        leg.answer(now, &mut ep);
        let ok = sent(&mut ep).pop().expect("200");
        assert_eq!(ok.header("session-expires"), Some("120;refresher=uac"));
        assert!(ok.header_list("require").iter().any(|o| o == "timer"), "{ok:?}");
        // Expiry minus the §10 margin (min(32 s, 120/3)): 88 s without a refresh.
        assert_eq!(leg.poll_timeout(), Some(now + Duration::from_secs(88)));
        // The caller refreshes with UPDATE at 60 s: the session runs to 148 s.
        let t1 = now + Duration::from_secs(60);
        from_caller(&mut ep, &mut leg, t1, Method::Update, 2, 120);
        let ok = sent(&mut ep).pop().expect("200 to UPDATE");
        assert_eq!(ok.code(), Some(200));
        assert_eq!(ok.header("session-expires"), Some("120;refresher=uac"));
        leg.handle_timeout(now + Duration::from_secs(89), &mut ep);
        assert!(sent(&mut ep).is_empty(), "refreshed: no BYE at 89 s");
        assert_eq!(leg.poll_timeout(), Some(t1 + Duration::from_secs(88)));
        // Then silence: BYE, the leg ends as a timeout.
        leg.handle_timeout(t1 + Duration::from_secs(88), &mut ep);
        let bye = sent(&mut ep).pop().expect("BYE");
        assert_eq!(bye.method(), Some(&Method::Bye));
        assert_eq!(leg.poll_timeout(), None);
    }

    #[test]
    fn no_session_timer_for_a_caller_that_does_not_support_it() {
        let (mut ep, mut leg, now) = start();
        sent(&mut ep);
        leg.answer(now, &mut ep);
        let ok = sent(&mut ep).pop().expect("200");
        assert_eq!(ok.header("session-expires"), None);
        assert_eq!(leg.poll_timeout(), None);
    }

    #[test]
    fn cancel_before_answer_gives_200_and_487() {
        let (mut ep, mut leg, now) = start();
        sent(&mut ep);
        let cancel = RequestBuilder::new(&Method::Cancel, "sip:3000@127.0.0.1:5060")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKi1")
            .header("Max-Forwards", 70)
            .header("From", "<sip:caller@127.0.0.1:5070>;tag=c1")
            .header("To", "<sip:3000@127.0.0.1:5060>")
            .header("Call-ID", "in1")
            .header("CSeq", "1 CANCEL")
            .finish();
        ep.handle_datagram(now, "127.0.0.1:5070".parse().expect("addr"), &cancel);
        let Some(EndpointEvent::Request { tx, msg, .. }) = ep.poll_event() else {
            panic!("CANCEL event")
        };
        leg.on_request(now, &mut ep, tx, &msg);
        let codes: Vec<_> = sent(&mut ep).iter().filter_map(Msg::code).collect();
        assert_eq!(codes, vec![200, 487]);
        assert!(leg.is_ended());
        assert!(matches!(
            leg.poll_event(),
            Some(LegEvent::Hangup { code: Some(487), .. })
        ));
    }

    #[test]
    fn invite_without_sdp_gets_our_offer_in_the_200_and_the_answer_comes_in_the_ack() {
        let now = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        let src: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
        let inv = RequestBuilder::new(&Method::Invite, "sip:3000@127.0.0.1:5060")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKi2")
            .header("From", "<sip:caller@127.0.0.1:5070>;tag=c2")
            .header("To", "<sip:3000@127.0.0.1:5060>")
            .header("Call-ID", "in2")
            .header("CSeq", "1 INVITE")
            .finish();
        ep.handle_datagram(now, src, &inv);
        let Some(EndpointEvent::Request { tx, msg, src }) = ep.poll_event() else {
            panic!("INVITE event")
        };
        let rtp: SocketAddr = "127.0.0.1:20002".parse().expect("addr");
        let mut leg = InboundLeg::accept(
            now,
            &mut ep,
            "127.0.0.1:5060".parse().expect("addr"),
            tx,
            &msg,
            src,
            rtp,
        )
        .expect("accepted");
        leg.answer(now, &mut ep);
        let ok = sent(&mut ep).pop().expect("200");
        let offer = sdp::parse(&ok.body).expect("our offer");
        assert_eq!(offer.rtp, rtp);
        assert_eq!(offer.codecs, vec![Codec::Pcmu, Codec::Pcma]);
        assert_eq!(
            leg.poll_event(),
            None,
            "answered only once the ACK brings the answer"
        );
        let ack = RequestBuilder::new(&Method::Ack, "sip:boomerang@127.0.0.1:5060")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack2")
            .header("From", "<sip:caller@127.0.0.1:5070>;tag=c2")
            .header("To", format!("<sip:3000@127.0.0.1:5060>;tag={}", leg.local_tag))
            .header("Call-ID", "in2")
            .header("CSeq", "1 ACK")
            .body(Some("application/sdp"), OFFER.as_bytes());
        ep.handle_datagram(now, src, &ack);
        let Some(EndpointEvent::Ack { msg, .. }) = ep.poll_event() else {
            panic!("ACK event")
        };
        leg.on_ack(&msg);
        assert_eq!(
            leg.poll_event(),
            Some(LegEvent::Answered {
                remote_rtp: "127.0.0.1:6000".parse().ok(),
                codec: Some("PCMA")
            })
        );
    }

    #[test]
    fn uri_users() {
        assert_eq!(uri_user("sip:3000@127.0.0.1:5060;user=phone"), Some("3000"));
        assert_eq!(uri_user("sip:127.0.0.1"), None);
        assert_eq!(uri_user("tel:+3312"), Some("+3312"));
        assert_eq!(uri_user("mailto:x"), None);
    }
}
