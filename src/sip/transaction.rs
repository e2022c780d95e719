//! RFC 3261 §17 transactions over an unreliable transport, sans-IO.
//!
//! A transaction takes input (`on_response`, `on_request`, `respond`, `handle_timeout(now)`) and
//! gives output (`poll_transmit`, `poll_event`, `poll_timeout`). It never reads the clock and
//! never touches a socket, so tests drive it in virtual time.
//!
//! - INVITE client (§17.1.1, with the Accepted state of RFC 6026): timer A retransmits the INVITE
//!   (T1, doubling), B gives up after 64*T1, a non-2xx final is ACKed here and absorbed for D
//!   (32 s), 2xx finals are passed up (the dialog layer ACKs them) for M (64*T1).
//! - non-INVITE client (§17.1.2): E retransmits (doubling up to T2), F gives up, K absorbs.
//! - INVITE server (§17.2.1 + RFC 6026): a retransmitted INVITE gets the last response again,
//!   2xx and non-2xx finals are retransmitted by G until an ACK (H gives up), I absorbs ACKs.
//! - non-INVITE server (§17.2.2): retransmitted requests get the last response, J absorbs.
//!
//! Over a reliable transport (TCP, TLS: the top Via of the request says which) timers A, E and G
//! never fire and the absorbing timers D, K, I and J are zero (§17.1.1.2, §17.1.2.2, §17.2.1,
//! §17.2.2); B, F and H still bound the wait for a response or an ACK.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::msg::{Method, Msg, RequestBuilder};
use super::transport::Transport;

/// Timer base values (RFC 3261 §17.1.1.1 defaults: 500 ms, 4 s, 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    fn b(&self) -> Duration {
        self.t1 * 64
    }
    fn d(&self) -> Duration {
        Duration::from_secs(32).max(self.t1 * 64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// What a client transaction reports to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response to pass up (provisional, final, or a retransmitted 2xx in Accepted).
    Response(Box<Msg>),
    /// Timer B or F fired: no final response (treat as 408).
    Timeout,
}

/// A client transaction (INVITE or non-INVITE).
#[derive(Debug)]
pub struct ClientTx {
    timers: Timers,
    invite: bool,
    reliable: bool,
    state: ClientState,
    request: Vec<u8>,
    /// Parsed copy of our own request, for building the non-2xx ACK.
    req: Msg,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
    ack: Option<Vec<u8>>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
}

impl ClientTx {
    /// Starts a transaction for `request` (our own bytes, parsed once) and queues its first send.
    pub fn new(timers: Timers, now: Instant, request: Vec<u8>, req: Msg) -> Self {
        let invite = req.method() == Some(&Method::Invite);
        let reliable = Transport::from_via(&req.top_via.transport).is_reliable();
        let mut tx = ClientTx {
            timers,
            invite,
            reliable,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Proceeding
            },
            request,
            req,
            interval: timers.t1,
            retransmit_at: (!reliable).then_some(now + timers.t1),
            timeout_at: Some(now + timers.b()),
            end_at: None,
            ack: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
        };
        if !invite {
            // Non-INVITE starts in Trying; we reuse Proceeding's timer logic but remember that
            // no provisional arrived yet through `interval` (E doubles in both).
            tx.state = ClientState::Calling;
        }
        tx.out.push_back(tx.request.clone());
        tx
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn is_invite(&self) -> bool {
        self.invite
    }

    pub fn request(&self) -> &Msg {
        &self.req
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// A response whose branch and CSeq method matched this transaction.
    pub fn on_response(&mut self, now: Instant, msg: Msg) {
        let Some(code) = msg.code() else { return };
        match self.state {
            ClientState::Calling | ClientState::Proceeding => {
                if code < 200 {
                    if self.state == ClientState::Calling {
                        self.state = ClientState::Proceeding;
                        if self.invite {
                            self.retransmit_at = None; // A stops on a provisional
                        } else if !self.reliable {
                            self.interval = self.timers.t2; // E fires at T2 in Proceeding
                            self.retransmit_at = Some(now + self.interval);
                        }
                    }
                    self.events.push_back(ClientEvent::Response(Box::new(msg)));
                } else if self.invite && code < 300 {
                    self.state = ClientState::Accepted;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    self.end_at = Some(now + self.timers.b());
                    self.events.push_back(ClientEvent::Response(Box::new(msg)));
                } else {
                    self.state = ClientState::Completed;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    if self.invite {
                        let ack = self.build_ack(&msg);
                        self.out.push_back(ack.clone());
                        self.ack = Some(ack);
                        self.end_at = Some(if self.reliable { now } else { now + self.timers.d() });
                    } else {
                        self.end_at = Some(if self.reliable { now } else { now + self.timers.t4 });
                    }
                    self.events.push_back(ClientEvent::Response(Box::new(msg)));
                }
            }
            ClientState::Completed => {
                // Retransmitted final: ACK again (INVITE), otherwise absorb.
                if let Some(ack) = &self.ack
                    && code >= 300
                {
                    self.out.push_back(ack.clone());
                }
            }
            ClientState::Accepted => {
                if (200..300).contains(&code) {
                    self.events.push_back(ClientEvent::Response(Box::new(msg)));
                }
            }
            ClientState::Terminated => {}
        }
    }

    /// RFC 3261 §17.1.1.3: the ACK for a non-2xx final response.
    fn build_ack(&self, resp: &Msg) -> Vec<u8> {
        let mut b = RequestBuilder::new(&Method::Ack, self.req.request_uri());
        if let Some(v) = self.req.vias().first() {
            b = b.header("Via", v);
        }
        b = b
            .header("Max-Forwards", 70)
            .header("From", &self.req.from.raw)
            .header("To", &resp.to.raw);
        b = b
            .header("Call-ID", &self.req.call_id)
            .header("CSeq", format!("{} ACK", self.req.cseq));
        for r in self.req.header_list("route") {
            b = b.header("Route", r);
        }
        b.finish()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.end_at
            && now >= t
        {
            self.state = ClientState::Terminated;
            self.end_at = None;
            return;
        }
        if let Some(t) = self.timeout_at
            && now >= t
        {
            self.state = ClientState::Terminated;
            self.timeout_at = None;
            self.retransmit_at = None;
            self.events.push_back(ClientEvent::Timeout);
            return;
        }
        if let Some(t) = self.retransmit_at
            && now >= t
        {
            self.out.push_back(self.request.clone());
            self.interval = if self.invite {
                self.interval * 2
            } else {
                (self.interval * 2).min(self.timers.t2)
            };
            self.retransmit_at = Some(now + self.interval);
        }
    }

    /// The transport could not deliver the request (a TCP connection that could not be
    /// opened): tell the user as a timeout and end (§17.1.1.2, §17.1.2.2, §8.1.3.1).
    pub fn on_transport_error(&mut self) {
        if matches!(self.state, ClientState::Calling | ClientState::Proceeding) {
            self.state = ClientState::Terminated;
            self.retransmit_at = None;
            self.timeout_at = None;
            self.end_at = None;
            self.events.push_back(ClientEvent::Timeout);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.end_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Trying,
    Proceeding,
    Completed,
    Accepted,
    Confirmed,
    Terminated,
}

/// What a server transaction reports to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Timer H fired (no ACK for our final response), or an INVITE 2xx was never ACKed.
    NoAck,
}

/// A server transaction (INVITE or non-INVITE).
#[derive(Debug)]
pub struct ServerTx {
    timers: Timers,
    invite: bool,
    reliable: bool,
    state: ServerState,
    last_response: Option<Vec<u8>>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<ServerEvent>,
}

impl ServerTx {
    pub fn new(timers: Timers, invite: bool) -> Self {
        ServerTx {
            timers,
            invite,
            reliable: false,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            last_response: None,
            interval: timers.t1,
            retransmit_at: None,
            timeout_at: None,
            end_at: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Marks the transaction as running over a reliable transport (no retransmissions, no
    /// absorbing waits).
    pub fn reliable(mut self, reliable: bool) -> Self {
        self.reliable = reliable;
        self
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// A retransmission of the request arrived: resend the last response, if any.
    pub fn on_retransmission(&mut self) {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => {
                if let Some(r) = &self.last_response {
                    self.out.push_back(r.clone());
                }
            }
            ServerState::Trying
            | ServerState::Accepted
            | ServerState::Confirmed
            | ServerState::Terminated => {}
        }
    }

    /// The ACK for our final response (non-2xx: same branch; 2xx: matched by the endpoint).
    pub fn on_ack(&mut self, now: Instant) {
        match self.state {
            ServerState::Completed => {
                self.state = ServerState::Confirmed;
                self.retransmit_at = None;
                self.timeout_at = None;
                self.end_at = Some(if self.reliable { now } else { now + self.timers.t4 });
            }
            ServerState::Accepted => {
                self.state = ServerState::Terminated;
                self.retransmit_at = None;
                self.timeout_at = None;
                self.end_at = None;
            }
            _ => {}
        }
    }

    /// Our response. Ignored once a final response was sent.
    pub fn respond(&mut self, now: Instant, code: u16, bytes: Vec<u8>) {
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            return;
        }
        self.out.push_back(bytes.clone());
        self.last_response = Some(bytes);
        if code < 200 {
            self.state = ServerState::Proceeding;
            return;
        }
        if self.invite {
            self.state = if code < 300 {
                ServerState::Accepted
            } else {
                ServerState::Completed
            };
            self.interval = self.timers.t1;
            self.retransmit_at = (!self.reliable).then_some(now + self.interval);
            self.timeout_at = Some(now + self.timers.b());
        } else {
            self.state = ServerState::Completed;
            self.end_at = Some(if self.reliable { now } else { now + self.timers.b() });
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.end_at
            && now >= t
        {
            self.state = ServerState::Terminated;
            self.end_at = None;
            return;
        }
        if let Some(t) = self.timeout_at
            && now >= t
        {
            self.state = ServerState::Terminated;
            self.timeout_at = None;
            self.retransmit_at = None;
            self.events.push_back(ServerEvent::NoAck);
            return;
        }
        if let Some(t) = self.retransmit_at
            && now >= t
        {
            if let Some(r) = &self.last_response {
                self.out.push_back(r.clone());
            }
            self.interval = (self.interval * 2).min(self.timers.t2);
            self.retransmit_at = Some(now + self.interval);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.end_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::{parse, response_to};

    fn invite() -> (Vec<u8>, Msg) {
        let b = RequestBuilder::new(&Method::Invite, "sip:bob@127.0.0.1:5062")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest1;rport")
            .header("Max-Forwards", 70)
            .header("From", "<sip:cb@127.0.0.1>;tag=a1")
            .header("To", "<sip:bob@127.0.0.1>")
            .header("Call-ID", "c1")
            .header("CSeq", "1 INVITE")
            .finish();
        let m = parse(&b).expect("parses");
        (b, m)
    }

    fn options() -> (Vec<u8>, Msg) {
        let b = RequestBuilder::new(&Method::Options, "sip:127.0.0.1:5062")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKopt;rport")
            .header("From", "<sip:cb@127.0.0.1>;tag=a1")
            .header("To", "<sip:127.0.0.1>")
            .header("Call-ID", "c2")
            .header("CSeq", "1 OPTIONS")
            .finish();
        let m = parse(&b).expect("parses");
        (b, m)
    }

    fn resp(req: &Msg, code: u16) -> Msg {
        parse(&response_to(req, code, "X", Some("bt"), &[], None)).expect("parses")
    }

    fn drain(tx: &mut ClientTx) -> usize {
        let mut n = 0;
        while tx.poll_transmit().is_some() {
            n += 1;
        }
        n
    }

    /// Runs a client transaction to `until` by jumping from timeout to timeout; returns sends.
    fn run(tx: &mut ClientTx, mut now: Instant, until: Instant) -> (usize, Instant) {
        let mut sends = drain(tx);
        for _ in 0..1000 {
            let Some(t) = tx.poll_timeout() else { break };
            if t > until {
                break;
            }
            now = t;
            tx.handle_timeout(now);
            sends += drain(tx);
        }
        (sends, now)
    }

    #[test]
    fn invite_client_retransmits_with_timer_a_and_times_out_with_b() {
        let t0 = Instant::now();
        let (b, m) = invite();
        let mut tx = ClientTx::new(Timers::default(), t0, b, m);
        let (sends, now) = run(&mut tx, t0, t0 + Duration::from_secs(40));
        // Sends at 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
        assert_eq!(sends, 7);
        assert_eq!(now, t0 + Duration::from_secs(32));
        assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_client_stops_retransmitting_on_provisional_and_acks_non_2xx() {
        let t0 = Instant::now();
        let (b, m) = invite();
        let mut tx = ClientTx::new(Timers::default(), t0, b, m.clone());
        assert_eq!(drain(&mut tx), 1);
        tx.on_response(t0 + Duration::from_millis(100), resp(&m, 180));
        assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.code() == Some(180)));
        // No retransmission while proceeding, even after a long time (up to B).
        let (sends, _) = run(&mut tx, t0, t0 + Duration::from_secs(20));
        assert_eq!(sends, 0);
        let now = t0 + Duration::from_secs(21);
        tx.on_response(now, resp(&m, 486));
        assert_eq!(tx.state(), ClientState::Completed);
        let ack = tx.poll_transmit().expect("ACK sent");
        let ack = parse(&ack).expect("ACK parses");
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.cseq, 1);
        assert_eq!(ack.cseq_method, Method::Ack);
        assert_eq!(ack.top_via.branch, "z9hG4bKtest1");
        assert_eq!(ack.to.tag.as_deref(), Some("bt"));
        assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.code() == Some(486)));
        // Retransmitted 486: ACKed again, not passed up.
        tx.on_response(now, resp(&m, 486));
        assert!(tx.poll_transmit().is_some());
        assert_eq!(tx.poll_event(), None);
        // Timer D ends it (32 s).
        tx.handle_timeout(now + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_client_passes_every_2xx_up_in_accepted() {
        let t0 = Instant::now();
        let (b, m) = invite();
        let mut tx = ClientTx::new(Timers::default(), t0, b, m.clone());
        drain(&mut tx);
        tx.on_response(t0, resp(&m, 200));
        tx.on_response(t0, resp(&m, 200));
        assert_eq!(tx.state(), ClientState::Accepted);
        assert!(tx.poll_event().is_some());
        assert!(tx.poll_event().is_some());
        assert_eq!(drain(&mut tx), 0, "the transaction never ACKs a 2xx");
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_client_timer_e_caps_at_t2_and_f_times_out() {
        let t0 = Instant::now();
        let (b, m) = options();
        let mut tx = ClientTx::new(Timers::default(), t0, b, m);
        let (sends, now) = run(&mut tx, t0, t0 + Duration::from_secs(40));
        // 0, .5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5 then F at 32.
        assert_eq!(sends, 11);
        assert_eq!(now, t0 + Duration::from_secs(32));
        assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
    }

    #[test]
    fn non_invite_client_completes_and_absorbs_with_k() {
        let t0 = Instant::now();
        let (b, m) = options();
        let mut tx = ClientTx::new(Timers::default(), t0, b, m.clone());
        drain(&mut tx);
        tx.on_response(t0, resp(&m, 200));
        assert!(tx.poll_event().is_some());
        tx.on_response(t0, resp(&m, 200));
        assert_eq!(tx.poll_event(), None);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        tx.handle_timeout(t0 + Duration::from_secs(5));
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_retransmits_final_until_ack_then_absorbs() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(Timers::default(), true);
        tx.respond(t0, 180, b"180".to_vec());
        tx.on_retransmission();
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"180"[..]));
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"180"[..]));
        tx.respond(t0, 486, b"486".to_vec());
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"486"[..]));
        tx.handle_timeout(t0 + Duration::from_millis(500));
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"486"[..]));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
        tx.on_ack(t0 + Duration::from_secs(1));
        assert_eq!(tx.state(), ServerState::Confirmed);
        tx.handle_timeout(t0 + Duration::from_secs(6));
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_event(), None);
    }

    #[test]
    fn invite_server_timer_h_reports_missing_ack() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(Timers::default(), true);
        tx.respond(t0, 200, b"200".to_vec());
        let mut now = t0;
        let mut sends = 0;
        while tx.poll_transmit().is_some() {
            sends += 1;
        }
        for _ in 0..100 {
            let Some(t) = tx.poll_timeout() else { break };
            now = t;
            tx.handle_timeout(now);
            while tx.poll_transmit().is_some() {
                sends += 1;
            }
        }
        assert_eq!(now, t0 + Duration::from_secs(32));
        assert_eq!(tx.poll_event(), Some(ServerEvent::NoAck));
        // 0, .5, 1.5, 3.5, 7.5, 11.5, ... 31.5: 11 sends.
        assert_eq!(sends, 11);
    }

    #[test]
    fn non_invite_server_answers_retransmissions_with_last_response() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(Timers::default(), false);
        tx.on_retransmission();
        assert_eq!(tx.poll_transmit(), None, "nothing to resend in Trying");
        tx.respond(t0, 200, b"200".to_vec());
        tx.respond(t0, 500, b"500".to_vec());
        tx.on_retransmission();
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"200"[..]));
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"200"[..]));
        assert_eq!(tx.poll_transmit(), None);
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_transport_sends_once_and_still_times_out() {
        let t0 = Instant::now();
        let (b, _) = invite();
        let b = String::from_utf8(b)
            .expect("utf8")
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        let m = parse(b.as_bytes()).expect("parses");
        let mut tx = ClientTx::new(Timers::default(), t0, b.into_bytes(), m.clone());
        assert_eq!(drain(&mut tx), 1);
        // Only timer B is armed: no retransmission in between.
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(drain(&mut tx), 0);
        assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
        // A non-2xx final: ACK once, and the transaction ends at once (timer D = 0).
        let mut tx = ClientTx::new(Timers::default(), t0, Vec::new(), m.clone());
        drain(&mut tx);
        tx.on_response(t0, resp(&m, 486));
        assert_eq!(drain(&mut tx), 1, "ACK");
        tx.handle_timeout(t0);
        assert!(tx.is_terminated());
        // Server side: a 2xx is not retransmitted (no timer G), H still bounds the wait.
        let mut s = ServerTx::new(Timers::default(), true).reliable(true);
        s.respond(t0, 200, b"ok".to_vec());
        assert_eq!(s.poll_transmit(), Some(b"ok".to_vec()));
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        s.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(s.poll_transmit(), None);
        assert_eq!(s.poll_event(), Some(ServerEvent::NoAck));
    }
}
