//! One call leg's signalling, sans-IO: the INVITE dialog of an outbound call (RFC 3261 §12,
//! §13, §15) on top of the transaction [`Endpoint`]: early and confirmed dialog, route set,
//! remote target refresh, ACK of 2xx, CANCEL on ring timeout, BYE from either side, re-INVITE
//! from the peer (hold/unhold), and the mapping of every final response to a dial result.
//!
//! Per trunk ([`LegOptions`]): the transport named in Via and Contact (UDP or TCP), reliable
//! provisional responses (RFC 3262: a 18x with `Require: 100rel` is PRACKed with its RAck;
//! `Supported: 100rel` offered when configured) and session timers (RFC 4028: Session-Expires
//! and Min-SE offered, a 422 retried once or twice with the larger Min-SE, refresh by UPDATE, or
//! re-INVITE when the peer does not allow UPDATE, at half the interval when we refresh, BYE when
//! the session expires unrefreshed).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sip::endpoint::{ClientId, Endpoint, ServerId};
use crate::sip::msg::{self, Method, Msg, RequestBuilder};
use crate::sip::sdp::{self, Codec, Direction, LocalMedia, RemoteMedia};
use crate::sip::session_timer::{SessionAction, SessionTimer, SessionTimerConfig, parse_min_se};
use crate::sip::transport::Transport;

/// Per-trunk signalling options of a leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegOptions {
    /// Transport of the INVITE dialog (named in Via and Contact).
    pub transport: Transport,
    /// Offer `Supported: 100rel`. A reliable provisional response is PRACKed either way.
    pub offer_100rel: bool,
    /// Offer session timers (RFC 4028); `None`: not offered (a 2xx's timer is then ignored).
    pub session_timer: Option<SessionTimerConfig>,
}

impl LegOptions {
    /// The options a trunk's configuration asks for.
    pub fn for_trunk(t: &crate::sip::config::Trunk) -> LegOptions {
        LegOptions {
            transport: t.transport,
            offer_100rel: t.offer_100rel,
            session_timer: t.session_timer,
        }
    }
}

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK";

/// Why a leg ended (the "dial result" for a leg that was never answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// 486, 600.
    Busy,
    /// 404, 410, 484, 604.
    InvalidNumber,
    /// 480, 408, 487 after our ring timeout, timer B, or ring timeout before any response.
    NoAnswer,
    /// 503: try the next trunk.
    Failover,
    /// Other 5xx: retry later.
    ErrorRetry,
    /// 403 and other 4xx/6xx: do not retry.
    Error,
    /// Answered, then the peer sent BYE.
    RemoteHangup,
    /// Answered, then we sent BYE (or CANCEL before an answer on request).
    LocalHangup,
    /// The peer stopped answering in an established dialog (BYE/ACK timers) or sent no RTP.
    Timeout,
}

/// Dial result of a final response (RFC 3261 §21). `ring_timeout` is true when the response
/// came after we CANCELled the call because it rang too long.
pub fn dial_result(code: u16, ring_timeout: bool) -> Cause {
    match code {
        486 | 600 => Cause::Busy,
        404 | 410 | 484 | 604 => Cause::InvalidNumber,
        480 | 408 => Cause::NoAnswer,
        487 if ring_timeout => Cause::NoAnswer,
        487 => Cause::LocalHangup,
        503 => Cause::Failover,
        500..=599 => Cause::ErrorRetry,
        _ => Cause::Error,
    }
}

/// What a leg reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LegEvent {
    /// A dial attempt started (first event; another follows on trunk failover).
    Dialing {
        leg: u64,
        trunk: String,
    },
    Trying,
    Ringing {
        code: u16,
    },
    EarlyMedia {
        remote_rtp: SocketAddr,
        codec: Option<&'static str>,
    },
    Answered {
        remote_rtp: Option<SocketAddr>,
        codec: Option<&'static str>,
    },
    /// The peer put us on hold (`sendonly`/`inactive`) or took us off it.
    Hold {
        held: bool,
    },
    /// A DTMF digit from the peer: `rfc4733` (telephone-event) or `inband` (tones in the audio).
    Dtmf {
        digit: char,
        source: &'static str,
    },
    /// Call-progress detection on the received audio: the result object of
    /// `boomerang cpd analyze` (class, decision_ms, beep_ms, sit_code, evidence).
    Cpd {
        #[serde(flatten)]
        result: serde_json::Map<String, serde_json::Value>,
    },
    Hangup {
        cause: Cause,
        code: Option<u16>,
        reason: String,
    },
}

/// State of the leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    Calling,
    Early,
    Confirmed,
    Terminating,
    Ended,
}

/// What a dial needs.
#[derive(Debug, Clone)]
pub struct DialSpec {
    /// The dialled user part (prefix already applied).
    pub number: String,
    /// Where the INVITE goes (trunk or outbound proxy).
    pub dest: SocketAddr,
    /// Host part of the Request-URI and To (the trunk's domain or address).
    pub domain: String,
    /// From user part (caller id).
    pub caller: String,
    pub p_asserted_identity: Option<String>,
    pub ring_timeout: Duration,
    /// Our RTP address offered in the SDP.
    pub rtp: SocketAddr,
    /// Digest credentials for a 401/407 challenge (user, password).
    pub auth: Option<(String, String)>,
}

/// The signalling of one outbound leg.
#[derive(Debug)]
pub struct OutboundLeg {
    state: LegState,
    local: SocketAddr,
    dest: SocketAddr,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    from: String,
    to: String,
    request_uri: String,
    remote_target: String,
    route_set: Vec<String>,
    cseq: u32,
    invite: Option<Msg>,
    invite_tx: Option<ClientId>,
    got_provisional: bool,
    cancel_wanted: bool,
    ring_timed_out: bool,
    cancel_sent: bool,
    ring_deadline: Option<Instant>,
    bye_tx: Option<ClientId>,
    local_media: LocalMedia,
    remote_media: Option<RemoteMedia>,
    held: bool,
    forced_cause: Option<Cause>,
    pai: Option<String>,
    auth: Option<(String, String)>,
    auth_tried: bool,
    events: VecDeque<LegEvent>,
    opts: LegOptions,
    /// Authorization header of the last INVITE (kept for a 422 retry).
    last_auth: Option<(&'static str, String)>,
    /// Highest RSeq PRACKed (RFC 3262 §4).
    last_rseq: Option<u32>,
    prack_tx: Option<ClientId>,
    /// Session-Expires and Min-SE we ask for now (raised by a 422).
    st_expires: Option<Duration>,
    st_min_se: Option<Duration>,
    retries_422: u8,
    session: Option<SessionTimer>,
    refresh_tx: Option<(ClientId, bool)>,
    peer_allows_update: bool,
    /// CSeq of the peer's last request in the dialog (§12.2.2).
    remote_cseq: Option<u32>,
}

impl OutboundLeg {
    /// Builds and sends the INVITE with an SDP offer.
    pub fn dial(
        now: Instant,
        ep: &mut Endpoint,
        local: SocketAddr,
        spec: &DialSpec,
    ) -> Result<Self, msg::ParseError> {
        Self::dial_with(now, ep, local, spec, LegOptions::default())
    }

    /// [`Self::dial`] with a trunk's signalling options.
    pub fn dial_with(
        now: Instant,
        ep: &mut Endpoint,
        local: SocketAddr,
        spec: &DialSpec,
        opts: LegOptions,
    ) -> Result<Self, msg::ParseError> {
        let call_id = format!("{}@boomerang", msg::token(20));
        let local_tag = msg::token(10);
        let request_uri = format!("sip:{}@{}", spec.number, spec.domain);
        let from = format!("<sip:{}@{}>;tag={}", spec.caller, host_of(local), local_tag);
        let to = format!("<{request_uri}>");
        let local_media = LocalMedia::offer(spec.rtp.ip(), spec.rtp.port());
        let mut leg = OutboundLeg {
            state: LegState::Calling,
            local,
            dest: spec.dest,
            call_id,
            local_tag,
            remote_tag: None,
            from,
            to,
            request_uri: request_uri.clone(),
            remote_target: request_uri,
            route_set: Vec::new(),
            cseq: 1,
            invite: None,
            invite_tx: None,
            got_provisional: false,
            cancel_wanted: false,
            ring_timed_out: false,
            cancel_sent: false,
            ring_deadline: Some(now + spec.ring_timeout),
            bye_tx: None,
            local_media,
            remote_media: None,
            held: false,
            forced_cause: None,
            pai: spec.p_asserted_identity.clone(),
            auth: spec.auth.clone(),
            auth_tried: false,
            events: VecDeque::new(),
            opts,
            last_auth: None,
            last_rseq: None,
            prack_tx: None,
            st_expires: opts.session_timer.map(|c| c.session_expires),
            st_min_se: opts.session_timer.map(|c| c.min_se),
            retries_422: 0,
            session: None,
            refresh_tx: None,
            peer_allows_update: false,
            remote_cseq: None,
        };
        leg.send_invite(now, ep, None)?;
        Ok(leg)
    }

    fn send_invite(
        &mut self,
        now: Instant,
        ep: &mut Endpoint,
        authorization: Option<(&'static str, String)>,
    ) -> Result<(), msg::ParseError> {
        let uri = self.request_uri.clone();
        let mut b = self.base(&Method::Invite, &uri, self.cseq, &msg::new_branch());
        if let Some(pai) = &self.pai {
            b = b.header("P-Asserted-Identity", pai);
        }
        let supported: Vec<&str> = [
            self.opts.offer_100rel.then_some("100rel"),
            self.opts.session_timer.map(|_| "timer"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !supported.is_empty() {
            b = b.header("Supported", supported.join(", "));
        }
        if let (Some(se), Some(min)) = (self.st_expires, self.st_min_se) {
            b = b
                .header("Session-Expires", se.as_secs())
                .header("Min-SE", min.as_secs());
        }
        if let Some((name, value)) = &authorization {
            b = b.header(name, value);
        }
        self.last_auth = authorization;
        let body = self.local_media.to_bytes();
        let bytes = b.body(Some("application/sdp"), &body);
        self.invite = Some(msg::parse(&bytes)?);
        self.invite_tx = Some(ep.send_request(now, self.dest, bytes)?);
        Ok(())
    }

    /// Answers a 401/407 to our INVITE once, with the trunk's credentials (RFC 3261 §22.2).
    fn retry_with_auth(&mut self, now: Instant, ep: &mut Endpoint, m: &Msg) -> bool {
        let Some((user, pass)) = self.auth.clone() else {
            return false;
        };
        if self.auth_tried || self.cancel_wanted {
            return false;
        }
        let (challenge_name, answer_name) = match m.code() {
            Some(401) => ("www-authenticate", "Authorization"),
            Some(407) => ("proxy-authenticate", "Proxy-Authorization"),
            _ => return false,
        };
        let uri = self.request_uri.clone();
        let Some(value) = m
            .headers
            .iter()
            .filter(|(n, _)| n == challenge_name)
            .find_map(|(_, v)| {
                crate::call::registrar::answer_challenge(v, &Method::Invite, &uri, &user, &pass)
            })
        else {
            return false;
        };
        self.auth_tried = true;
        self.cseq += 1;
        self.got_provisional = false;
        self.state = LegState::Calling;
        self.remote_tag = None;
        self.send_invite(now, ep, Some((answer_name, value))).is_ok()
    }

    /// A 422 (Session Interval Too Small): retry with the Min-SE it asks for (§7.4), twice at most.
    fn retry_422(&mut self, now: Instant, ep: &mut Endpoint, m: &Msg) -> bool {
        if self.opts.session_timer.is_none() || self.retries_422 >= 2 || self.cancel_wanted {
            return false;
        }
        let Some(min) = parse_min_se(m) else {
            return false;
        };
        let cur = self.st_expires.unwrap_or(min);
        self.st_expires = Some(cur.max(min));
        self.st_min_se = Some(min);
        self.retries_422 += 1;
        self.cseq += 1;
        self.got_provisional = false;
        self.state = LegState::Calling;
        self.remote_tag = None;
        self.last_rseq = None;
        let auth = self.last_auth.clone();
        self.send_invite(now, ep, auth).is_ok()
    }

    fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.opts.transport.via_token(),
            self.local
        )
    }

    fn contact(&self) -> String {
        match self.opts.transport {
            Transport::Udp => format!("<sip:boomerang@{}>", self.local),
            t => format!("<sip:boomerang@{};transport={}>", self.local, t.uri_param()),
        }
    }

    fn base(&self, method: &Method, uri: &str, cseq: u32, branch: &str) -> RequestBuilder {
        let mut b = RequestBuilder::new(method, uri)
            .header("Via", self.via(branch))
            .header("Max-Forwards", 70)
            .header("From", &self.from)
            .header("To", self.to_header())
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{cseq} {method}"));
        for r in &self.route_set {
            b = b.header("Route", r);
        }
        if matches!(method, Method::Invite | Method::Update) {
            b = b.header("Contact", self.contact()).header("Allow", ALLOW);
        }
        b
    }

    fn to_header(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("{};tag={t}", self.to),
            None => self.to.clone(),
        }
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn state(&self) -> LegState {
        self.state
    }

    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    pub fn remote_media(&self) -> Option<&RemoteMedia> {
        self.remote_media.as_ref()
    }

    /// The codec the answer chose (first common codec in the answer's m-line).
    pub fn codec(&self) -> Option<Codec> {
        self.remote_media.as_ref().and_then(sdp::negotiated)
    }

    pub fn owns_client_tx(&self, tx: ClientId) -> bool {
        self.invite_tx == Some(tx)
            || self.bye_tx == Some(tx)
            || self.prack_tx == Some(tx)
            || self.refresh_tx.map(|r| r.0) == Some(tx)
    }

    /// The session timer of the confirmed dialog, if the 2xx started one.
    pub fn session_timer(&self) -> Option<&SessionTimer> {
        self.session.as_ref()
    }

    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    pub fn is_ended(&self) -> bool {
        self.state == LegState::Ended
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            LegState::Calling | LegState::Early if !self.cancel_wanted => self.ring_deadline,
            LegState::Confirmed => self.session.as_ref().and_then(SessionTimer::poll_timeout),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, ep: &mut Endpoint) {
        if let Some(t) = self.ring_deadline
            && now >= t
            && matches!(self.state, LegState::Calling | LegState::Early)
        {
            self.ring_deadline = None;
            self.ring_timed_out = true;
            self.cancel(now, ep);
        }
        if self.state == LegState::Confirmed {
            match self.session.as_mut().and_then(|s| s.handle_timeout(now)) {
                Some(SessionAction::Refresh) => self.send_refresh(now, ep),
                Some(SessionAction::Expire) => self.hangup_for(now, ep, Cause::Timeout),
                None => {}
            }
        }
    }

    /// A session refresh (RFC 4028 §7.4 / §9): UPDATE if the peer allows it, else a re-INVITE
    /// with our unchanged SDP.
    fn send_refresh(&mut self, now: Instant, ep: &mut Endpoint) {
        let Some(interval) = self.session.as_ref().map(SessionTimer::interval) else {
            return;
        };
        self.cseq += 1;
        let invite = !self.peer_allows_update;
        let method = if invite { Method::Invite } else { Method::Update };
        let uri = self.remote_target.clone();
        let b = self
            .base(&method, &uri, self.cseq, &msg::new_branch())
            .header("Supported", "timer")
            .header("Session-Expires", format!("{};refresher=uac", interval.as_secs()));
        let bytes = if invite {
            b.body(Some("application/sdp"), &self.local_media.to_bytes())
        } else {
            b.finish()
        };
        let dest = self.next_hop();
        if let Ok(id) = ep.send_request(now, dest, bytes) {
            self.refresh_tx = Some((id, invite));
        }
    }

    /// PRACK for a reliable provisional response (RFC 3262 §7.2), inside its early dialog.
    fn send_prack(&mut self, now: Instant, ep: &mut Endpoint, m: &Msg, rseq: u32) {
        let target = m.contact_uri().unwrap_or_else(|| self.remote_target.clone());
        let mut routes = m.record_route();
        routes.reverse();
        self.cseq += 1;
        let invite_cseq = self.invite.as_ref().map_or(1, |i| i.cseq);
        let mut b = RequestBuilder::new(&Method::Prack, &target)
            .header("Via", self.via(&msg::new_branch()))
            .header("Max-Forwards", 70)
            .header("From", &self.from)
            .header("To", &m.to.raw)
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{} PRACK", self.cseq))
            .header("RAck", format!("{rseq} {invite_cseq} INVITE"));
        for r in &routes {
            b = b.header("Route", r);
        }
        let hop = routes.first().map(|r| msg::addr_uri(r)).unwrap_or(target);
        let dest = uri_socket_addr(&hop).unwrap_or(self.dest);
        self.prack_tx = ep.send_request(now, dest, b.finish()).ok();
    }

    /// CANCEL a call that is not answered yet (§9.1: only after a provisional response; before
    /// one, the CANCEL waits for it), or BYE an answered one.
    pub fn hangup(&mut self, now: Instant, ep: &mut Endpoint) {
        match self.state {
            LegState::Calling | LegState::Early => self.cancel(now, ep),
            LegState::Confirmed => self.send_bye(now, ep),
            LegState::Terminating | LegState::Ended => {}
        }
    }

    /// Hang up and report `cause` (e.g. `Timeout` when RTP stopped) instead of the cause the
    /// signalling would give.
    pub fn hangup_for(&mut self, now: Instant, ep: &mut Endpoint, cause: Cause) {
        if self.forced_cause.is_none() {
            self.forced_cause = Some(cause);
        }
        self.hangup(now, ep);
    }

    fn cancel(&mut self, now: Instant, ep: &mut Endpoint) {
        self.cancel_wanted = true;
        if !self.got_provisional || self.cancel_sent {
            return;
        }
        let Some(inv) = &self.invite else { return };
        let mut b = RequestBuilder::new(&Method::Cancel, inv.request_uri());
        if let Some(v) = inv.vias().first() {
            b = b.header("Via", v);
        }
        b = b
            .header("Max-Forwards", 70)
            .header("From", &inv.from.raw)
            .header("To", &inv.to.raw)
            .header("Call-ID", &inv.call_id)
            .header("CSeq", format!("{} CANCEL", inv.cseq));
        for r in inv.header_list("route") {
            b = b.header("Route", r);
        }
        self.cancel_sent = true;
        // The CANCEL's own response is not interesting: the INVITE's 487 (or 200) decides.
        let _ = ep.send_request(now, self.dest, b.finish());
    }

    fn send_bye(&mut self, now: Instant, ep: &mut Endpoint) {
        self.cseq += 1;
        let uri = self.remote_target.clone();
        let bytes = self
            .base(&Method::Bye, &uri, self.cseq, &msg::new_branch())
            .finish();
        let dest = self.next_hop();
        self.bye_tx = ep.send_request(now, dest, bytes).ok();
        self.state = LegState::Terminating;
        if self.bye_tx.is_none() {
            self.end(Cause::LocalHangup, None, "BYE");
        }
    }

    /// Where in-dialog requests go: the first route, else the remote target, else the trunk.
    fn next_hop(&self) -> SocketAddr {
        super::dialog::next_hop(&self.route_set, &self.remote_target, self.dest)
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

    /// A response on one of this leg's client transactions.
    pub fn on_response(&mut self, now: Instant, ep: &mut Endpoint, tx: ClientId, m: &Msg) {
        let Some(code) = m.code() else { return };
        if Some(tx) == self.bye_tx {
            if code >= 200 {
                self.end(Cause::LocalHangup, Some(code), m.reason());
            }
            return;
        }
        if Some(tx) == self.prack_tx {
            return; // PRACK's answer: nothing to do (a lost PRACK is retransmitted by its tx)
        }
        if let Some((rtx, invite)) = self.refresh_tx
            && rtx == tx
        {
            if code >= 200 {
                self.refresh_tx = None;
                self.on_refresh_answer(now, ep, m, code, invite);
            }
            return;
        }
        if Some(tx) != self.invite_tx {
            return;
        }
        let reliable_rseq = if (101..200).contains(&code)
            && m.header_list("require")
                .iter()
                .any(|o| o.eq_ignore_ascii_case("100rel"))
        {
            match m.header("rseq").and_then(|v| v.trim().parse::<u32>().ok()) {
                // A retransmission, or one out of order (§4): not PRACKed, not passed up.
                Some(r) if self.last_rseq.is_some_and(|last| r <= last) => return,
                r => r,
            }
        } else {
            None
        };
        if code < 200 {
            if code == 100 {
                self.events.push_back(LegEvent::Trying);
                // A 100 allows CANCEL (§9.1 speaks of any provisional response).
            }
            self.got_provisional = true;
            if code > 100 {
                if self.state == LegState::Calling && m.to.tag.is_some() {
                    self.state = LegState::Early;
                    self.remote_tag = m.to.tag.clone();
                }
                self.events.push_back(LegEvent::Ringing { code });
                if !m.body.is_empty()
                    && let Ok(r) = sdp::parse(&m.body)
                {
                    let codec = sdp::negotiated(&r).map(Codec::name);
                    self.events.push_back(LegEvent::EarlyMedia {
                        remote_rtp: r.rtp,
                        codec,
                    });
                    self.remote_media = Some(r);
                }
            }
            if let Some(rseq) = reliable_rseq
                && self.state != LegState::Confirmed
            {
                self.last_rseq = Some(rseq);
                self.send_prack(now, ep, m, rseq);
            }
            if self.cancel_wanted && !self.cancel_sent {
                self.cancel(now, ep);
            }
            return;
        }
        if code < 300 {
            self.on_2xx(now, ep, m);
            return;
        }
        if self.state == LegState::Confirmed {
            return;
        }
        if matches!(code, 401 | 407) && self.retry_with_auth(now, ep, m) {
            return;
        }
        if code == 422 && self.retry_422(now, ep, m) {
            return;
        }
        let cause = dial_result(code, self.ring_timed_out);
        self.end(cause, Some(code), m.reason());
    }

    fn on_2xx(&mut self, now: Instant, ep: &mut Endpoint, m: &Msg) {
        if self.state == LegState::Calling || self.state == LegState::Early {
            self.remote_tag = m.to.tag.clone();
            // Route set: Record-Route in reverse order (UAC side, §12.1.2).
            let mut rr = m.record_route();
            rr.reverse();
            self.route_set = rr;
            if let Some(c) = m.contact_uri() {
                self.remote_target = c;
            }
            if let Ok(r) = sdp::parse(&m.body) {
                self.remote_media = Some(r);
            }
            self.state = LegState::Confirmed;
            self.send_ack(now, ep, m.cseq);
            if self.cancel_wanted {
                // 2xx crossed our CANCEL: ACK and end the call with BYE.
                let cause = if self.ring_timed_out {
                    Cause::NoAnswer
                } else {
                    Cause::LocalHangup
                };
                self.send_bye(now, ep);
                self.state = LegState::Terminating;
                self.end(cause, Some(200), "answered after cancel");
                return;
            }
            if self.opts.session_timer.is_some() {
                self.session = SessionTimer::from_2xx(now, m);
            }
            self.peer_allows_update = m
                .header_list("allow")
                .iter()
                .any(|a| a.eq_ignore_ascii_case("UPDATE"));
            let remote_rtp = self.remote_media.as_ref().map(|r| r.rtp);
            let codec = self.codec().map(Codec::name);
            self.events.push_back(LegEvent::Answered { remote_rtp, codec });
        } else if m.to.tag == self.remote_tag {
            // Retransmitted 2xx: the ACK was lost, send it again.
            self.send_ack(now, ep, m.cseq);
        }
    }

    fn on_refresh_answer(&mut self, now: Instant, ep: &mut Endpoint, m: &Msg, code: u16, invite: bool) {
        if (200..300).contains(&code) {
            if invite {
                self.send_ack(now, ep, m.cseq);
            }
            if let Some(s) = self.session.as_mut() {
                s.refreshed(now, m);
            }
        } else if matches!(code, 408 | 481) {
            // §10: the dialog is gone.
            self.hangup_for(now, ep, Cause::Timeout);
        }
        // Other errors: the session runs until it expires (the timer's backstop sends BYE).
    }

    /// A 2xx retransmission arriving after the INVITE transaction ended.
    pub fn on_stray_2xx(&mut self, now: Instant, ep: &mut Endpoint, m: &Msg) {
        if m.to.tag == self.remote_tag && self.remote_tag.is_some() {
            self.send_ack(now, ep, m.cseq);
        }
    }

    fn send_ack(&mut self, _now: Instant, ep: &mut Endpoint, cseq: u32) {
        let uri = self.remote_target.clone();
        let mut b = RequestBuilder::new(&Method::Ack, &uri)
            .header("Via", self.via(&msg::new_branch()))
            .header("Max-Forwards", 70)
            .header("From", &self.from)
            .header("To", self.to_header())
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{cseq} ACK"));
        for r in &self.route_set {
            b = b.header("Route", r);
        }
        let dest = self.next_hop();
        ep.send_stateless(dest, b.finish());
    }

    /// A request inside this dialog (BYE, re-INVITE, ...).
    pub fn on_request(&mut self, now: Instant, ep: &mut Endpoint, tx: ServerId, m: &Msg) {
        let local_tag = self.local_tag.clone();
        let tag = Some(local_tag.as_str());
        let reply = |ep: &mut Endpoint, code: u16, extra: &[(&str, String)], body: Option<(&str, &[u8])>| {
            let bytes = msg::response_to(m, code, msg::default_reason(code), tag, extra, body);
            ep.respond(now, tx, code, bytes);
        };
        if m.to.tag.as_deref() != Some(self.local_tag.as_str()) || m.from.tag != self.remote_tag {
            reply(ep, 481, &[], None);
            return;
        }
        if self.remote_cseq.is_some_and(|last| m.cseq <= last) {
            // §12.2.2: a request whose CSeq is not above the last one is out of order.
            ep.note_bad_cseq();
            let bytes = msg::response_to(m, 500, "CSeq Out of Order", tag, &[], None);
            ep.respond(now, tx, 500, bytes);
            return;
        }
        self.remote_cseq = Some(m.cseq);
        match m.method() {
            Some(Method::Bye) => {
                reply(ep, 200, &[], None);
                self.end(Cause::RemoteHangup, None, "BYE");
            }
            Some(Method::Invite) if self.state == LegState::Confirmed => {
                if let Some(c) = m.contact_uri() {
                    self.remote_target = c; // target refresh
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
                let mut extra = vec![("Contact", self.contact())];
                extra.extend(self.peer_refresh(now, m));
                reply(ep, 200, &extra, Some(("application/sdp", &answer.to_bytes())));
                if held != self.held {
                    self.held = held;
                    self.events.push_back(LegEvent::Hold { held });
                }
            }
            Some(Method::Update) => {
                let extra = self.peer_refresh(now, m);
                reply(ep, 200, &extra, None)
            }
            Some(Method::Options) | Some(Method::Info) => reply(ep, 200, &[], None),
            _ => reply(ep, 405, &[("Allow", ALLOW.into())], None),
        }
    }

    /// A re-INVITE or UPDATE from the peer refreshes the session (RFC 4028 §9); the headers
    /// our 2xx carries then.
    fn peer_refresh(&mut self, now: Instant, m: &Msg) -> Vec<(&'static str, String)> {
        let se = m.header("session-expires");
        if let Some(s) = self.session.as_mut() {
            s.peer_refreshed(now, se);
        }
        match se.and_then(crate::sip::session_timer::parse_session_expires) {
            Some((d, _)) if self.opts.session_timer.is_some() => vec![
                ("Require", "timer".to_string()),
                ("Session-Expires", format!("{};refresher=uac", d.as_secs())),
            ],
            _ => Vec::new(),
        }
    }

    /// A client transaction of this leg timed out (timer B or F).
    pub fn on_timeout(&mut self, tx: ClientId) {
        if let Some((rtx, _)) = self.refresh_tx
            && rtx == tx
        {
            // §10: no answer to our refresh. The session timer's expiry (still armed while the
            // refresh was pending) sends the BYE.
            self.refresh_tx = None;
            return;
        }
        if Some(tx) == self.invite_tx && matches!(self.state, LegState::Calling | LegState::Early) {
            self.end(Cause::NoAnswer, Some(408), "Request Timeout");
        } else if Some(tx) == self.bye_tx {
            self.end(Cause::LocalHangup, Some(408), "BYE timed out");
        }
    }
}

fn host_of(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(v) => v.to_string(),
        IpAddr::V6(v) => format!("[{v}]"),
    }
}

/// `sip:user@1.2.3.4:5060;params` -> socket address (IP literals only; no DNS here).
pub fn uri_socket_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:"))?;
    let hostport = rest.rsplit('@').next()?.split(';').next()?.split('?').next()?;
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Some(a);
    }
    hostport
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 5060))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::response_to;
    use crate::sip::transaction::Timers;

    #[test]
    fn final_responses_map_to_dial_results() {
        assert_eq!(dial_result(486, false), Cause::Busy);
        assert_eq!(dial_result(600, false), Cause::Busy);
        for c in [404, 410, 484, 604] {
            assert_eq!(dial_result(c, false), Cause::InvalidNumber);
        }
        assert_eq!(dial_result(480, false), Cause::NoAnswer);
        assert_eq!(dial_result(408, false), Cause::NoAnswer);
        assert_eq!(dial_result(487, true), Cause::NoAnswer);
        assert_eq!(dial_result(487, false), Cause::LocalHangup);
        assert_eq!(dial_result(503, false), Cause::Failover);
        assert_eq!(dial_result(500, false), Cause::ErrorRetry);
        assert_eq!(dial_result(403, false), Cause::Error);
    }

    #[test]
    fn uri_addresses() {
        assert_eq!(
            uri_socket_addr("sip:a@127.0.0.1:5070;transport=udp"),
            "127.0.0.1:5070".parse().ok()
        );
        assert_eq!(uri_socket_addr("sip:127.0.0.2"), "127.0.0.2:5060".parse().ok());
        assert_eq!(uri_socket_addr("sip:a@example.com"), None);
        assert_eq!(uri_socket_addr("tel:123"), None);
    }

    struct Peer {
        ep: Endpoint,
        leg: OutboundLeg,
        now: Instant,
    }

    fn spec() -> DialSpec {
        DialSpec {
            number: "0600".into(),
            dest: "127.0.0.1:5062".parse().expect("addr"),
            domain: "127.0.0.1:5062".into(),
            caller: "8999".into(),
            p_asserted_identity: None,
            ring_timeout: Duration::from_secs(10),
            rtp: "127.0.0.1:20000".parse().expect("addr"),
            auth: None,
        }
    }

    fn start() -> (Peer, Msg) {
        start_with(LegOptions::default())
    }

    fn start_with(opts: LegOptions) -> (Peer, Msg) {
        let now = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        let leg = OutboundLeg::dial_with(
            now,
            &mut ep,
            "127.0.0.1:5060".parse().expect("addr"),
            &spec(),
            opts,
        )
        .expect("dial");
        let (_, inv) = ep.poll_transmit().expect("INVITE sent");
        let inv = msg::parse(&inv).expect("INVITE parses");
        (Peer { ep, leg, now }, inv)
    }

    impl Peer {
        /// The far end answers `inv`: 200 with its tag `r1`, `headers` and the SDP answer.
        fn answer(&mut self, inv: &Msg, headers: &[(&str, String)]) {
            self.deliver(&response_to(
                inv,
                200,
                "OK",
                Some("r1"),
                headers,
                Some(("application/sdp", ANSWER_SDP)),
            ));
        }

        /// Feed a response from the far end through the endpoint into the leg.
        fn deliver(&mut self, bytes: &[u8]) {
            self.ep
                .handle_datagram(self.now, "127.0.0.1:5062".parse().expect("addr"), bytes);
            while let Some(ev) = self.ep.poll_event() {
                match ev {
                    crate::sip::endpoint::EndpointEvent::Response { tx, msg } => {
                        self.leg.on_response(self.now, &mut self.ep, tx, &msg)
                    }
                    crate::sip::endpoint::EndpointEvent::Request { tx, msg, .. } => {
                        self.leg.on_request(self.now, &mut self.ep, tx, &msg)
                    }
                    crate::sip::endpoint::EndpointEvent::Timeout { tx } => self.leg.on_timeout(tx),
                    _ => {}
                }
            }
        }
        fn sent(&mut self) -> Vec<Msg> {
            let mut v = Vec::new();
            while let Some((_, b)) = self.ep.poll_transmit() {
                v.push(msg::parse(&b).expect("our message parses"));
            }
            v
        }
        fn events(&mut self) -> Vec<LegEvent> {
            let mut v = Vec::new();
            while let Some(e) = self.leg.poll_event() {
                v.push(e);
            }
            v
        }
    }

    const ANSWER_SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

    #[test]
    fn answered_call_acks_2xx_to_contact_and_bye_ends_it() {
        let (mut p, inv) = start();
        assert_eq!(inv.method(), Some(&Method::Invite));
        assert!(sdp::parse(&inv.body).is_ok());
        p.deliver(&response_to(&inv, 180, "Ringing", Some("r1"), &[], None));
        let ok = response_to(
            &inv,
            200,
            "OK",
            Some("r1"),
            &[
                ("Contact", "<sip:peer@127.0.0.1:5099>".into()),
                ("Record-Route", "<sip:p1@127.0.0.1:5098;lr>".into()),
            ],
            Some(("application/sdp", ANSWER_SDP)),
        );
        p.deliver(&ok);
        let ev = p.events();
        assert_eq!(ev[0], LegEvent::Ringing { code: 180 });
        assert_eq!(
            ev[1],
            LegEvent::Answered {
                remote_rtp: "127.0.0.1:6000".parse().ok(),
                codec: Some("PCMA")
            }
        );
        let sent = p.sent();
        let ack = sent
            .iter()
            .find(|m| m.method() == Some(&Method::Ack))
            .expect("ACK");
        assert_eq!(ack.request_uri(), "sip:peer@127.0.0.1:5099");
        assert_eq!(ack.to.tag.as_deref(), Some("r1"));
        assert_ne!(
            ack.top_via.branch, inv.top_via.branch,
            "2xx ACK is a new transaction"
        );
        assert_eq!(ack.header("route"), Some("<sip:p1@127.0.0.1:5098;lr>"));
        // Retransmitted 200: ACKed again.
        p.deliver(&ok);
        assert_eq!(
            p.sent()
                .iter()
                .filter(|m| m.method() == Some(&Method::Ack))
                .count(),
            1
        );
        // The peer's BYE.
        let bye = RequestBuilder::new(&Method::Bye, "sip:boomerang@127.0.0.1:5060")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKbye1")
            .header("From", "<sip:0600@127.0.0.1>;tag=r1")
            .header(
                "To",
                format!("{};tag={}", "<sip:8999@127.0.0.1>", p.leg.local_tag()),
            )
            .header("Call-ID", p.leg.call_id())
            .header("CSeq", "1 BYE")
            .finish();
        p.deliver(&bye);
        assert_eq!(p.sent().first().and_then(Msg::code), Some(200));
        assert_eq!(
            p.events(),
            vec![LegEvent::Hangup {
                cause: Cause::RemoteHangup,
                code: None,
                reason: "BYE".into()
            }]
        );
        assert!(p.leg.is_ended());
    }

    #[test]
    fn ring_timeout_cancels_and_487_is_no_answer() {
        let (mut p, inv) = start();
        p.deliver(&response_to(&inv, 180, "Ringing", Some("r1"), &[], None));
        p.sent();
        let t = p.leg.poll_timeout().expect("ring timer");
        p.now = t;
        p.leg.handle_timeout(t, &mut p.ep);
        let cancel = p.sent().into_iter().next().expect("CANCEL");
        assert_eq!(cancel.method(), Some(&Method::Cancel));
        assert_eq!(cancel.top_via.branch, inv.top_via.branch);
        assert_eq!(cancel.cseq, inv.cseq);
        assert_eq!(cancel.to.tag, None);
        p.deliver(&response_to(
            &inv,
            487,
            "Request Terminated",
            Some("r1"),
            &[],
            None,
        ));
        let ack = p.sent().into_iter().next().expect("ACK of 487");
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.top_via.branch, inv.top_via.branch);
        let ev = p.events();
        assert_eq!(
            ev.last(),
            Some(&LegEvent::Hangup {
                cause: Cause::NoAnswer,
                code: Some(487),
                reason: "Request Terminated".into()
            })
        );
    }

    #[test]
    fn cancel_waits_for_a_provisional_response() {
        let (mut p, inv) = start();
        p.leg.hangup(p.now, &mut p.ep);
        assert!(p.sent().is_empty(), "no CANCEL before a provisional response");
        p.deliver(&response_to(&inv, 100, "Trying", None, &[], None));
        assert_eq!(
            p.sent().first().and_then(|m| m.method().cloned()),
            Some(Method::Cancel)
        );
    }

    #[test]
    fn early_media_then_404_is_invalid_number() {
        let (mut p, inv) = start();
        p.deliver(&response_to(
            &inv,
            183,
            "Session Progress",
            Some("r1"),
            &[],
            Some(("application/sdp", ANSWER_SDP)),
        ));
        p.deliver(&response_to(&inv, 404, "Not Found", Some("r1"), &[], None));
        let ev = p.events();
        assert!(ev.contains(&LegEvent::EarlyMedia {
            remote_rtp: "127.0.0.1:6000".parse().expect("addr"),
            codec: Some("PCMA")
        }));
        assert_eq!(
            ev.last(),
            Some(&LegEvent::Hangup {
                cause: Cause::InvalidNumber,
                code: Some(404),
                reason: "Not Found".into()
            })
        );
    }

    #[test]
    fn forged_tags_get_481() {
        let (mut p, inv) = start();
        p.answer(&inv, &[]);
        p.sent();
        let bye = RequestBuilder::new(&Method::Bye, "sip:boomerang@127.0.0.1:5060")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKbye2")
            .header("From", "<sip:0600@127.0.0.1>;tag=forged")
            .header("To", format!("<sip:8999@127.0.0.1>;tag={}", p.leg.local_tag()))
            .header("Call-ID", p.leg.call_id())
            .header("CSeq", "1 BYE")
            .finish();
        p.deliver(&bye);
        assert_eq!(p.sent().first().and_then(Msg::code), Some(481));
        assert!(!p.leg.is_ended());
    }

    fn method_count(sent: &[Msg], m: &Method) -> usize {
        sent.iter().filter(|x| x.method() == Some(m)).count()
    }

    #[test]
    fn reliable_provisional_is_pracked_once_within_the_early_dialog() {
        let (mut p, inv) = start_with(LegOptions {
            offer_100rel: true,
            ..LegOptions::default()
        });
        assert_eq!(inv.header("supported"), Some("100rel"));
        let r183 = response_to(
            &inv,
            183,
            "Session Progress",
            Some("r1"),
            &[
                ("Require", "100rel".into()),
                ("RSeq", "7".into()),
                ("Contact", "<sip:peer@127.0.0.1:5099>".into()),
            ],
            Some(("application/sdp", ANSWER_SDP)),
        );
        p.deliver(&r183);
        let sent = p.sent();
        let prack = sent
            .iter()
            .find(|m| m.method() == Some(&Method::Prack))
            .expect("PRACK sent");
        assert_eq!(prack.header("rack"), Some("7 1 INVITE"));
        assert_eq!(prack.request_uri(), "sip:peer@127.0.0.1:5099");
        assert_eq!(prack.to.tag.as_deref(), Some("r1"));
        assert!(prack.cseq > inv.cseq);
        assert_eq!(
            p.events()
                .iter()
                .filter(|e| matches!(e, LegEvent::EarlyMedia { .. }))
                .count(),
            1
        );
        // The 183 retransmitted (our PRACK crossed it): neither PRACKed again nor passed up.
        p.deliver(&r183);
        assert_eq!(method_count(&p.sent(), &Method::Prack), 0);
        assert!(p.events().is_empty());
        // The PRACK's 200 changes nothing; the call is answered as usual.
        p.deliver(&response_to(prack, 200, "OK", Some("r1"), &[], None));
        assert!(!p.leg.is_ended());
        p.answer(&inv, &[]);
        assert!(p.events().iter().any(|e| matches!(e, LegEvent::Answered { .. })));
        // A non-reliable 180 gets no PRACK.
        let (mut q, inv) = start();
        q.deliver(&response_to(
            &inv,
            180,
            "Ringing",
            Some("r2"),
            &[("RSeq", "1".into())],
            None,
        ));
        assert_eq!(method_count(&q.sent(), &Method::Prack), 0);
    }

    fn timer_opts() -> LegOptions {
        LegOptions {
            session_timer: Some(SessionTimerConfig {
                session_expires: Duration::from_secs(1800),
                min_se: Duration::from_secs(90),
            }),
            ..LegOptions::default()
        }
    }

    #[test]
    fn session_timer_422_retry_then_refresh_by_update_at_half_interval() {
        let (mut p, inv) = start_with(timer_opts());
        assert_eq!(inv.header("session-expires"), Some("1800"));
        assert_eq!(inv.header("min-se"), Some("90"));
        assert_eq!(inv.header("supported"), Some("timer"));
        p.deliver(&response_to(
            &inv,
            422,
            "Session Interval Too Small",
            Some("r1"),
            &[("Min-SE", "3600".into())],
            None,
        ));
        let sent = p.sent();
        assert_eq!(
            method_count(&sent, &Method::Ack),
            1,
            "422 ACKed by the transaction"
        );
        let inv2 = sent
            .iter()
            .find(|m| m.method() == Some(&Method::Invite))
            .expect("INVITE again")
            .clone();
        assert_eq!(inv2.header("session-expires"), Some("3600"));
        assert_eq!(inv2.header("min-se"), Some("3600"));
        assert_eq!(inv2.cseq, inv.cseq + 1);
        assert!(p.events().is_empty(), "no hangup for a 422 that is retried");
        p.deliver(&response_to(
            &inv2,
            200,
            "OK",
            Some("r1"),
            &[
                ("Contact", "<sip:peer@127.0.0.1:5099>".into()),
                ("Require", "timer".into()),
                ("Session-Expires", "3600;refresher=uac".into()),
                ("Allow", "INVITE, ACK, BYE, UPDATE".into()),
            ],
            Some(("application/sdp", ANSWER_SDP)),
        ));
        p.sent();
        assert!(p.events().iter().any(|e| matches!(e, LegEvent::Answered { .. })));
        let t0 = p.now;
        assert_eq!(p.leg.poll_timeout(), Some(t0 + Duration::from_secs(1800)));
        p.leg.handle_timeout(t0 + Duration::from_secs(1799), &mut p.ep);
        assert!(p.sent().is_empty());
        p.now = t0 + Duration::from_secs(1800);
        p.leg.handle_timeout(p.now, &mut p.ep);
        let update = p.sent().into_iter().next().expect("refresh sent");
        assert_eq!(update.method(), Some(&Method::Update));
        assert_eq!(update.header("session-expires"), Some("3600;refresher=uac"));
        assert_eq!(update.request_uri(), "sip:peer@127.0.0.1:5099");
        p.deliver(&response_to(
            &update,
            200,
            "OK",
            Some("r1"),
            &[("Session-Expires", "3600;refresher=uac".into())],
            None,
        ));
        assert_eq!(p.leg.poll_timeout(), Some(p.now + Duration::from_secs(1800)));
        assert!(!p.leg.is_ended());
    }

    #[test]
    fn session_timer_refresh_by_reinvite_when_update_is_not_allowed_and_bye_on_expiry() {
        // We refresh; the peer does not allow UPDATE: re-INVITE, and its 2xx is ACKed.
        let (mut p, inv) = start_with(timer_opts());
        p.answer(&inv, &[("Session-Expires", "120".into())]);
        p.sent();
        p.now += Duration::from_secs(60);
        p.leg.handle_timeout(p.now, &mut p.ep);
        let reinvite = p.sent().into_iter().next().expect("refresh");
        assert_eq!(reinvite.method(), Some(&Method::Invite));
        assert!(sdp::parse(&reinvite.body).is_ok(), "same offer again");
        p.deliver(&response_to(
            &reinvite,
            200,
            "OK",
            Some("r1"),
            &[],
            Some(("application/sdp", ANSWER_SDP)),
        ));
        let acks: Vec<Msg> = p
            .sent()
            .into_iter()
            .filter(|m| m.method() == Some(&Method::Ack))
            .collect();
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].cseq, reinvite.cseq);
        // The peer refreshes and goes silent: BYE a third of the interval before expiry.
        let (mut q, inv) = start_with(timer_opts());
        q.deliver(&response_to(
            &inv,
            200,
            "OK",
            Some("r2"),
            &[
                ("Require", "timer".into()),
                ("Session-Expires", "90;refresher=uas".into()),
            ],
            Some(("application/sdp", ANSWER_SDP)),
        ));
        q.sent();
        q.events();
        let due = q.leg.poll_timeout().expect("expiry timer");
        assert_eq!(due, q.now + Duration::from_secs(60));
        q.now = due;
        q.leg.handle_timeout(due, &mut q.ep);
        let bye = q.sent().into_iter().next().expect("BYE");
        assert_eq!(bye.method(), Some(&Method::Bye));
        q.deliver(&response_to(&bye, 200, "OK", Some("r2"), &[], None));
        assert_eq!(
            q.events().last(),
            Some(&LegEvent::Hangup {
                cause: Cause::Timeout,
                code: Some(200),
                reason: "OK".into()
            })
        );
    }

    #[test]
    fn in_dialog_request_with_an_old_cseq_gets_500_and_is_counted() {
        let (mut p, inv) = start();
        p.answer(&inv, &[]);
        p.sent();
        let (tag, call_id) = (p.leg.local_tag().to_string(), p.leg.call_id().to_string());
        let req = |method: &Method, cseq: u32, branch: &str| {
            RequestBuilder::new(method, "sip:boomerang@127.0.0.1:5060")
                .header("Via", format!("SIP/2.0/UDP 127.0.0.1:5062;branch={branch}"))
                .header("From", "<sip:0600@127.0.0.1>;tag=r1")
                .header("To", format!("<sip:8999@127.0.0.1>;tag={tag}"))
                .header("Call-ID", &call_id)
                .header("CSeq", format!("{cseq} {method}"))
                .finish()
        };
        let opts = req(&Method::Options, 5, "z9hG4bKc5");
        p.deliver(&opts);
        assert_eq!(p.sent().first().and_then(Msg::code), Some(200));
        let old_bye = req(&Method::Bye, 3, "z9hG4bKc3");
        p.deliver(&old_bye);
        assert_eq!(p.sent().first().and_then(Msg::code), Some(500));
        assert_eq!(p.ep.counters().bad_cseq, 1);
        assert!(!p.leg.is_ended());
        let bye = req(&Method::Bye, 6, "z9hG4bKc6");
        p.deliver(&bye);
        assert_eq!(p.sent().first().and_then(Msg::code), Some(200));
        assert!(p.leg.is_ended());
    }
}
