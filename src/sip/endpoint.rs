//! The transaction layer of one SIP endpoint, sans-IO: matches datagrams to transactions
//! (RFC 3261 §17.1.3 and §17.2.3), absorbs retransmissions, answers what can be answered without
//! a user (bad requests, Max-Forwards 0), and hands the rest up as [`EndpointEvent`]s.
//!
//! Input: `handle_datagram(now, src, bytes)`, `send_request`, `respond`, `send_stateless`,
//! `handle_timeout(now)`. Output: `poll_transmit`, `poll_event`, `poll_timeout`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::msg::{self, Method, Msg, ParseError};
use super::transaction::{ClientEvent, ClientTx, ServerEvent, ServerTx, Timers};
use super::transport::Transport;

/// Identifies a client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// Identifies a server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub u64);

/// What the endpoint hands up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// A new request (not a retransmission). ACKs for 2xx come as [`EndpointEvent::Ack`].
    Request {
        tx: ServerId,
        msg: Box<Msg>,
        src: SocketAddr,
    },
    /// An ACK that matched no transaction: the ACK of a 2xx, for the dialog layer.
    Ack { msg: Box<Msg>, src: SocketAddr },
    /// A response for one of our client transactions.
    Response { tx: ClientId, msg: Box<Msg> },
    /// A 2xx for an INVITE whose transaction is gone: the dialog must ACK it again.
    StrayResponse { msg: Box<Msg>, src: SocketAddr },
    /// Timer B or F: the request got no final response.
    Timeout { tx: ClientId },
    /// Timer H: our final response to an INVITE was never ACKed.
    NoAck { tx: ServerId },
}

/// Counters of what was dropped or refused (exposed as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub datagrams: u64,
    pub parse_errors: u64,
    pub bad_requests_answered: u64,
    pub too_many_hops: u64,
    pub unmatched_responses: u64,
    pub retransmissions_absorbed: u64,
    /// Stream connections closed for a framing fault (bad Content-Length, huge headers).
    pub framing_errors: u64,
    /// Stream connections refused or not opened (connection limit).
    pub connections_refused: u64,
    /// Stream connections closed after the idle timeout.
    pub connections_idle_closed: u64,
    /// Requests with a method we do not know, answered 501 here.
    pub unknown_methods: u64,
    /// 481 sent: a request for a dialog or transaction that does not exist (unknown Call-ID,
    /// forged tags).
    pub no_dialog: u64,
    /// In-dialog requests whose CSeq is not above the last one (answered 500 by the dialog).
    pub bad_cseq: u64,
}

/// A transport fault the endpoint counts (the transport itself reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFault {
    BadFraming,
    Refused,
    IdleClosed,
}

type ServerKey = (String, String, Method);

struct Client {
    tx: ClientTx,
    dest: SocketAddr,
    key: (String, Method),
}

struct Server {
    tx: ServerTx,
    src: SocketAddr,
    key: ServerKey,
    call_id: String,
    cseq: u32,
}

/// The transaction layer of one endpoint.
pub struct Endpoint {
    timers: Timers,
    next_id: u64,
    clients: HashMap<ClientId, Client>,
    client_keys: HashMap<(String, Method), ClientId>,
    servers: HashMap<ServerId, Server>,
    server_keys: HashMap<ServerKey, ServerId>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<EndpointEvent>,
    counters: Counters,
    /// Most live server transactions; beyond it new requests get 503 (flood protection).
    max_server_tx: usize,
}

impl Endpoint {
    pub fn new(timers: Timers) -> Self {
        Endpoint {
            timers,
            next_id: 1,
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            max_server_tx: 20_000,
        }
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    pub fn set_max_server_transactions(&mut self, n: usize) {
        self.max_server_tx = n;
    }

    /// Counts an in-dialog request refused for its CSeq (RFC 3261 §12.2.2).
    pub fn note_bad_cseq(&mut self) {
        self.counters.bad_cseq += 1;
    }

    /// No connection could be opened to `dest`: every client transaction waiting on it ends now
    /// with a timeout instead of waiting for timer B or F.
    pub fn transport_error(&mut self, dest: SocketAddr) {
        let ids: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.dest == dest)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(c) = self.clients.get_mut(&id) {
                c.tx.on_transport_error();
            }
            self.flush_client(id);
        }
    }

    /// Counts a fault of the stream transport.
    pub fn note_transport_fault(&mut self, f: TransportFault) {
        match f {
            TransportFault::BadFraming => self.counters.framing_errors += 1,
            TransportFault::Refused => self.counters.connections_refused += 1,
            TransportFault::IdleClosed => self.counters.connections_idle_closed += 1,
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Live transactions (client, server): used by tests to prove nothing leaks.
    pub fn live(&self) -> (usize, usize) {
        (self.clients.len(), self.servers.len())
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Starts a client transaction for `request` (bytes we built; its top Via carries a fresh
    /// branch). Returns `None` if our own bytes do not parse (a bug, reported not panicked).
    pub fn send_request(
        &mut self,
        now: Instant,
        dest: SocketAddr,
        request: Vec<u8>,
    ) -> Result<ClientId, ParseError> {
        let req = msg::parse(&request)?;
        let key = (req.top_via.branch.clone(), req.cseq_method.clone());
        let id = ClientId(self.id());
        let tx = ClientTx::new(self.timers, now, request, req);
        self.client_keys.insert(key.clone(), id);
        self.clients.insert(id, Client { tx, dest, key });
        self.flush_client(id);
        Ok(id)
    }

    /// Sends bytes outside any transaction (the ACK of a 2xx, a stateless reply).
    pub fn send_stateless(&mut self, dest: SocketAddr, bytes: Vec<u8>) {
        self.out.push_back((dest, bytes));
    }

    /// Our response on a server transaction. `code` must match the status line in `bytes`.
    pub fn respond(&mut self, now: Instant, tx: ServerId, code: u16, bytes: Vec<u8>) {
        if code == 481 {
            self.counters.no_dialog += 1;
        }
        if let Some(s) = self.servers.get_mut(&tx) {
            s.tx.respond(now, code, bytes);
        }
        self.flush_server(tx);
    }

    /// The request a server transaction was created for is needed by users to build responses;
    /// they keep the `Msg` from the event. This tells where the response goes.
    pub fn server_source(&self, tx: ServerId) -> Option<SocketAddr> {
        self.servers.get(&tx).map(|s| s.src)
    }

    /// Finds the INVITE server transaction a CANCEL refers to (same branch and sent-by).
    pub fn invite_for_cancel(&self, cancel: &Msg) -> Option<ServerId> {
        let key = (cancel.top_via.branch.clone(), sent_by(cancel), Method::Invite);
        self.server_keys.get(&key).copied()
    }

    /// One datagram from the transport.
    pub fn handle_datagram(&mut self, now: Instant, src: SocketAddr, data: &[u8]) {
        self.counters.datagrams += 1;
        let mut m = match msg::parse(data) {
            Ok(m) => m,
            Err(_) => {
                self.counters.parse_errors += 1;
                return;
            }
        };
        if m.is_request() {
            m.stamp_received(src);
            self.on_request(now, src, m);
        } else {
            self.on_response(now, src, m);
        }
    }

    fn on_response(&mut self, now: Instant, src: SocketAddr, m: Msg) {
        let key = (m.top_via.branch.clone(), m.cseq_method.clone());
        match self.client_keys.get(&key).copied() {
            Some(id) => {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.tx.on_response(now, m);
                }
                self.flush_client(id);
            }
            None => {
                let code = m.code().unwrap_or(0);
                if m.cseq_method == Method::Invite && (200..300).contains(&code) {
                    self.events.push_back(EndpointEvent::StrayResponse {
                        msg: Box::new(m),
                        src,
                    });
                } else {
                    self.counters.unmatched_responses += 1;
                }
            }
        }
    }

    fn on_request(&mut self, now: Instant, src: SocketAddr, m: Msg) {
        let Some(method) = m.method().cloned() else { return };
        let tx_method = if method == Method::Ack {
            Method::Invite
        } else {
            method.clone()
        };
        let key: ServerKey = (m.top_via.branch.clone(), sent_by(&m), tx_method);
        if let Some(id) = self.server_keys.get(&key).copied() {
            if let Some(s) = self.servers.get_mut(&id) {
                if method == Method::Ack {
                    s.tx.on_ack(now);
                } else {
                    self.counters.retransmissions_absorbed += 1;
                    s.tx.on_retransmission();
                }
            }
            self.flush_server(id);
            return;
        }
        if method == Method::Ack {
            // ACK of a 2xx (new branch): end the INVITE server transaction that retransmits
            // that 2xx, and pass the ACK up.
            let found = self
                .servers
                .iter()
                .find(|(_, s)| s.call_id == m.call_id && s.cseq == m.cseq && s.key.2 == Method::Invite)
                .map(|(id, _)| *id);
            if let Some(id) = found {
                if let Some(s) = self.servers.get_mut(&id) {
                    s.tx.on_ack(now);
                }
                self.flush_server(id);
            }
            self.events.push_back(EndpointEvent::Ack {
                msg: Box::new(m),
                src,
            });
            return;
        }
        if !m.top_via.branch.starts_with("z9hG4bK") || m.top_via.branch.len() <= 7 {
            // RFC 2543 peers are not supported; without a usable branch we cannot match.
            self.reject(now, src, key, &m, 400, "Bad Request");
            return;
        }
        if m.max_forwards == Some(0) && method != Method::Options {
            self.counters.too_many_hops += 1;
            self.reject(now, src, key, &m, 483, "Too Many Hops");
            return;
        }
        if matches!(method, Method::Other(_)) {
            self.counters.unknown_methods += 1;
            self.reject(now, src, key, &m, 501, "Not Implemented");
            return;
        }
        if self.servers.len() >= self.max_server_tx {
            self.reject(now, src, key, &m, 503, "Service Unavailable");
            return;
        }
        let id = ServerId(self.id());
        let reliable = Transport::from_via(&m.top_via.transport).is_reliable();
        let tx = ServerTx::new(self.timers, method == Method::Invite).reliable(reliable);
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            Server {
                tx,
                src,
                key,
                call_id: m.call_id.clone(),
                cseq: m.cseq,
            },
        );
        self.events.push_back(EndpointEvent::Request {
            tx: id,
            msg: Box::new(m),
            src,
        });
    }

    /// Answers `m` with a final error inside a fresh server transaction, so retransmissions of
    /// the bad request are absorbed instead of answered again by the user.
    fn reject(&mut self, now: Instant, src: SocketAddr, key: ServerKey, m: &Msg, code: u16, reason: &str) {
        self.counters.bad_requests_answered += 1;
        let bytes = msg::response_to(m, code, reason, Some(&msg::token(8)), &[], None);
        if self.servers.len() >= self.max_server_tx {
            self.out.push_back((src, bytes));
            return;
        }
        let id = ServerId(self.id());
        let reliable = Transport::from_via(&m.top_via.transport).is_reliable();
        let mut tx = ServerTx::new(self.timers, m.method() == Some(&Method::Invite)).reliable(reliable);
        tx.respond(now, code, bytes);
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            Server {
                tx,
                src,
                key,
                call_id: m.call_id.clone(),
                cseq: m.cseq,
            },
        );
        self.flush_server(id);
    }

    fn flush_client(&mut self, id: ClientId) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        while let Some(b) = c.tx.poll_transmit() {
            self.out.push_back((c.dest, b));
        }
        while let Some(ev) = c.tx.poll_event() {
            self.events.push_back(match ev {
                ClientEvent::Response(msg) => EndpointEvent::Response { tx: id, msg },
                ClientEvent::Timeout => EndpointEvent::Timeout { tx: id },
            });
        }
        if c.tx.is_terminated() {
            let key = c.key.clone();
            self.clients.remove(&id);
            self.client_keys.remove(&key);
        }
    }

    fn flush_server(&mut self, id: ServerId) {
        let Some(s) = self.servers.get_mut(&id) else {
            return;
        };
        while let Some(b) = s.tx.poll_transmit() {
            self.out.push_back((s.src, b));
        }
        while let Some(ev) = s.tx.poll_event() {
            match ev {
                ServerEvent::NoAck => self.events.push_back(EndpointEvent::NoAck { tx: id }),
            }
        }
        if s.tx.is_terminated() {
            let key = s.key.clone();
            self.servers.remove(&id);
            self.server_keys.remove(&key);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.tx.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(c) = self.clients.get_mut(&id) {
                c.tx.handle_timeout(now);
            }
            self.flush_client(id);
        }
        let due: Vec<ServerId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.tx.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(s) = self.servers.get_mut(&id) {
                s.tx.handle_timeout(now);
            }
            self.flush_server(id);
        }
    }

    /// Earliest timer of any transaction. (A linear scan: fine for thousands of transactions;
    /// a timer wheel can replace it without changing the interface.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = self.clients.values().filter_map(|c| c.tx.poll_timeout()).min();
        let s = self.servers.values().filter_map(|s| s.tx.poll_timeout()).min();
        [c, s].into_iter().flatten().min()
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }
}

fn sent_by(m: &Msg) -> String {
    match m.top_via.port {
        Some(p) => format!("{}:{}", m.top_via.host.to_ascii_lowercase(), p),
        None => m.top_via.host.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::{RequestBuilder, response_to};
    use std::time::Duration;

    fn peer() -> SocketAddr {
        "127.0.0.1:5062".parse().expect("addr")
    }

    fn request(method: Method, branch: &str, max_forwards: u32) -> Vec<u8> {
        RequestBuilder::new(&method, "sip:cb@127.0.0.1:5060")
            .header("Via", format!("SIP/2.0/UDP 127.0.0.1:5062;branch={branch};rport"))
            .header("Max-Forwards", max_forwards)
            .header("From", "<sip:alice@127.0.0.1>;tag=f1")
            .header("To", "<sip:cb@127.0.0.1>")
            .header("Call-ID", "call-1")
            .header("CSeq", format!("7 {method}"))
            .finish()
    }

    #[test]
    fn retransmitted_request_is_absorbed_and_gets_the_last_response() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        let inv = request(Method::Invite, "z9hG4bKin1", 70);
        ep.handle_datagram(t0, peer(), &inv);
        let Some(EndpointEvent::Request { tx, msg, .. }) = ep.poll_event() else {
            panic!("request expected")
        };
        ep.respond(
            t0,
            tx,
            180,
            response_to(&msg, 180, "Ringing", Some("tt"), &[], None),
        );
        assert!(ep.poll_transmit().is_some());
        ep.handle_datagram(t0, peer(), &inv);
        assert_eq!(ep.poll_event(), None, "retransmission not passed up");
        let (dest, again) = ep.poll_transmit().expect("180 resent");
        assert_eq!(dest, peer());
        assert_eq!(msg::parse(&again).expect("parses").code(), Some(180));
        assert_eq!(ep.counters().retransmissions_absorbed, 1);
    }

    #[test]
    fn max_forwards_zero_gets_483_and_garbage_is_counted() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        ep.handle_datagram(t0, peer(), &request(Method::Invite, "z9hG4bKmf0", 0));
        assert_eq!(ep.poll_event(), None);
        let (_, r) = ep.poll_transmit().expect("483 sent");
        assert_eq!(msg::parse(&r).expect("parses").code(), Some(483));
        ep.handle_datagram(t0, peer(), b"INVITE garbage\r\n\r\n");
        assert_eq!(ep.counters().parse_errors, 1);
        // The rejected INVITE's transaction ends (no ACK: timer H) and nothing leaks.
        for _ in 0..100 {
            let Some(t) = ep.poll_timeout() else { break };
            ep.handle_timeout(t);
            while ep.poll_transmit().is_some() {}
            while ep.poll_event().is_some() {}
        }
        assert_eq!(ep.live(), (0, 0));
    }

    #[test]
    fn flood_beyond_the_limit_gets_503_without_new_transactions() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        ep.set_max_server_transactions(10);
        for i in 0..50 {
            ep.handle_datagram(t0, peer(), &request(Method::Invite, &format!("z9hG4bKf{i}"), 70));
        }
        let mut requests = 0;
        while let Some(ev) = ep.poll_event() {
            if matches!(ev, EndpointEvent::Request { .. }) {
                requests += 1;
            }
        }
        assert_eq!(requests, 10);
        let mut refused = 0;
        while let Some((_, b)) = ep.poll_transmit() {
            if msg::parse(&b).ok().and_then(|m| m.code()) == Some(503) {
                refused += 1;
            }
        }
        assert_eq!(refused, 40);
        assert_eq!(ep.live().1, 10);
    }

    #[test]
    fn client_transaction_receives_its_responses_and_stray_2xx_is_reported() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        let inv = request(Method::Invite, "z9hG4bKout1", 70);
        let id = ep.send_request(t0, peer(), inv.clone()).expect("sent");
        assert!(ep.poll_transmit().is_some());
        let req = msg::parse(&inv).expect("parses");
        let ok = response_to(&req, 200, "OK", Some("rt"), &[], None);
        ep.handle_datagram(t0, peer(), &ok);
        assert!(matches!(ep.poll_event(), Some(EndpointEvent::Response { tx, .. }) if tx == id));
        // After timer M the transaction is gone; a late 2xx retransmission is still reported.
        ep.handle_timeout(t0 + Duration::from_secs(33));
        assert_eq!(ep.live(), (0, 0));
        ep.handle_datagram(t0, peer(), &ok);
        assert!(matches!(
            ep.poll_event(),
            Some(EndpointEvent::StrayResponse { .. })
        ));
    }

    #[test]
    fn ack_for_2xx_ends_the_server_transaction_and_goes_up() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        ep.handle_datagram(t0, peer(), &request(Method::Invite, "z9hG4bKin2", 70));
        let Some(EndpointEvent::Request { tx, msg, .. }) = ep.poll_event() else {
            panic!("request expected")
        };
        ep.respond(t0, tx, 200, response_to(&msg, 200, "OK", Some("tt"), &[], None));
        ep.handle_datagram(t0, peer(), &request(Method::Ack, "z9hG4bKack2", 70));
        assert!(matches!(ep.poll_event(), Some(EndpointEvent::Ack { .. })));
        assert_eq!(ep.live(), (0, 0));
    }

    #[test]
    fn transport_error_ends_the_transactions_to_that_peer_at_once() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Timers::default());
        let inv = String::from_utf8(request(Method::Invite, "z9hG4bKte1", 70))
            .expect("utf8")
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        let id = ep.send_request(t0, peer(), inv.into_bytes()).expect("sent");
        let other: SocketAddr = "127.0.0.1:5999".parse().expect("addr");
        let opt = request(Method::Options, "z9hG4bKte2", 70);
        let kept = ep.send_request(t0, other, opt).expect("sent");
        ep.transport_error(peer());
        assert_eq!(ep.poll_event(), Some(EndpointEvent::Timeout { tx: id }));
        assert_eq!(ep.poll_event(), None);
        assert_eq!(
            ep.live().0,
            1,
            "only the transaction to the unreachable peer ended"
        );
        ep.transport_error(other);
        assert_eq!(ep.poll_event(), Some(EndpointEvent::Timeout { tx: kept }));
    }
}
