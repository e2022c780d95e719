//! The tokio driver of the telephony layer: one task owns the SIP UDP socket, the transaction
//! [`Endpoint`] and every leg's dialog; one task per leg owns its RTP socket and session (media
//! crate), plays treatments, records what arrives and relays audio to a bridged leg
//! (PCMU<->PCMA transcoded when the legs differ).
//!
//! The cores stay sans-IO; this file only reads sockets and the clock and moves bytes.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boomerang_media::cpd::CpdParams;
use boomerang_media::g711::Law;
use boomerang_media::treatment::{PlayMode, Treatment};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::dialog::Dialog;
use super::dtmf_collect::{CollectSpec, Collected};
use super::inbound::{self, IncomingCall};
use super::leg::{Cause, DialSpec, LegEvent, OutboundLeg};
pub use super::media_task::MediaStats;
use super::media_task::{Internal, MediaEnv, MediaTask, RtpCmd, rtp_task};
use super::registrar::Registrar;
use crate::sip::endpoint::{Counters, Endpoint, EndpointEvent};
use crate::sip::msg::{self, Method};
use crate::sip::sdp::Codec;
use crate::sip::transaction::Timers;

/// Identifies a leg inside one driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LegId(pub u64);

/// Configuration of the telephony driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// SIP UDP listen address (port 0 picks one).
    pub listen: SocketAddr,
    /// RTP ports (even numbers used, inclusive); `None`: the OS picks.
    pub rtp_ports: Option<(u16, u16)>,
    pub timers: Timers,
    /// An answered leg that receives no RTP for this long is hung up (cause `timeout`).
    pub no_rtp_timeout: Duration,
    /// Registrar realm and accounts (user, password); empty: REGISTER is refused with 403.
    pub realm: String,
    pub accounts: Vec<(String, String)>,
    /// Where the registrar publishes agents' registrations (shared with routing's phone
    /// registry, [`super::phones::SipPhones`]).
    pub registrations: super::phones::Registrations,
    /// Route points: an INVITE whose Request-URI user is one of these becomes an inbound leg
    /// handed to [`Telephony::incoming`]; any other number gets 404.
    pub route_points: Vec<String>,
    /// TCP transport limits (TCP listens on the SIP port too).
    pub tcp: crate::sip::tcp::TcpConfig,
    /// Trunks, for the per-trunk signalling options of calls to their next hop (transport,
    /// 100rel, session timers).
    pub trunks: Vec<crate::sip::config::Trunk>,
    /// Threads of the RTP relay engine that relays bridged legs' audio ([`super::relay`]);
    /// 0: each leg's task relays what it receives.
    pub relay_threads: usize,
    /// How often a relay thread looks at its sockets while it relays (zero: it wakes for every
    /// datagram). Adds up to this much delay, saves wake-ups and context switches.
    pub relay_tick: Duration,
}

impl DriverConfig {
    pub fn loopback() -> Self {
        DriverConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rtp_ports: None,
            timers: Timers::default(),
            no_rtp_timeout: Duration::from_secs(60),
            realm: "boomerang".into(),
            accounts: Vec::new(),
            registrations: Default::default(),
            route_points: Vec::new(),
            tcp: crate::sip::tcp::TcpConfig::default(),
            trunks: Vec::new(),
            relay_threads: 2,
            relay_tick: Duration::from_micros(500),
        }
    }
}

/// What to dial.
#[derive(Debug, Clone)]
pub struct Dial {
    pub number: String,
    pub dest: SocketAddr,
    pub domain: String,
    pub caller: String,
    pub p_asserted_identity: Option<String>,
    pub ring_timeout: Duration,
    /// Digest credentials for 401/407 (user, password).
    pub auth: Option<(String, String)>,
}

impl Dial {
    /// A call to `number` through `trunk` (prefix, caller id, PAI, credentials, ring timeout).
    pub fn via_trunk(trunk: &crate::sip::config::Trunk, number: &str) -> Dial {
        Dial {
            number: trunk.dial_string(number),
            dest: trunk.next_hop(),
            domain: trunk.domain.clone(),
            caller: trunk.caller_id.clone(),
            p_asserted_identity: trunk.p_asserted_identity.clone(),
            ring_timeout: trunk.ring_timeout,
            auth: trunk.username.clone().zip(trunk.password.clone()),
        }
    }
}

/// Errors of the driver interface.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("the telephony task has stopped")]
    Stopped,
    #[error("no such leg")]
    NoLeg,
    #[error("no RTP port free")]
    NoPort,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not build the request: {0}")]
    Build(String),
}

enum Command {
    Dial(
        Dial,
        oneshot::Sender<Result<(LegId, mpsc::UnboundedReceiver<LegEvent>), DriverError>>,
    ),
    Hangup(LegId),
    Answer(LegId),
    Media(LegId, MediaCmd),
    Bridge(LegId, LegId, oneshot::Sender<Result<(), DriverError>>),
    Counters(oneshot::Sender<(Counters, usize, usize)>),
    Contacts(String, oneshot::Sender<Vec<String>>),
    Options(SocketAddr, oneshot::Sender<Option<u16>>),
    /// Any non-INVITE request outside a dialog (REGISTER, OPTIONS to a trunk): its final
    /// response, `None` on timeout.
    Request(SocketAddr, Vec<u8>, oneshot::Sender<Option<Box<msg::Msg>>>),
}

enum MediaCmd {
    Play(Arc<Treatment>, PlayMode),
    Stop,
    Stats(oneshot::Sender<MediaStats>),
    Collect(CollectSpec, oneshot::Sender<Collected>),
    Cpd(CpdParams, bool),
}

/// Handle to the telephony task. Cheap to clone.
#[derive(Clone)]
pub struct Telephony {
    tx: mpsc::Sender<Command>,
    local: SocketAddr,
    incoming: Arc<std::sync::Mutex<Option<mpsc::Receiver<IncomingCall>>>>,
    /// Trunk states, written by the trunk upkeep task ([`super::trunks`]).
    trunk_states: Arc<tokio::sync::watch::Sender<super::trunks::TrunkStates>>,
    relay: Option<Arc<super::relay::RelayEngine>>,
}

impl Telephony {
    /// Binds the SIP socket and starts the task.
    pub async fn start(cfg: DriverConfig) -> Result<(Telephony, tokio::task::JoinHandle<()>), DriverError> {
        let sock = UdpSocket::bind(cfg.listen).await?;
        let local = sock.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        let tcp = crate::sip::tcp::TcpTransport::listen(local, cfg.tcp).await;
        let (in_tx, in_rx) = mpsc::channel(inbound::QUEUE);
        let relay = (cfg.relay_threads > 0)
            .then(|| Arc::new(super::relay::RelayEngine::new(cfg.relay_threads, cfg.relay_tick)));
        let task = tokio::spawn(run(cfg, sock, local, rx, in_tx, tcp, relay.clone()));
        let incoming = Arc::new(std::sync::Mutex::new(Some(in_rx)));
        let trunk_states = Arc::new(tokio::sync::watch::Sender::new(Default::default()));
        Ok((
            Telephony {
                tx,
                local,
                incoming,
                trunk_states,
                relay,
            },
            task,
        ))
    }

    /// RTP datagrams the relay engine's threads received (bridged legs' audio they relayed).
    pub fn relay_engine_received(&self) -> u64 {
        self.relay.as_ref().map_or(0, |r| r.received())
    }

    /// The stream of inbound calls on route points (taken once; later calls get `None`).
    /// Each call rings until [`Telephony::answer`] (or [`Telephony::hangup`], which refuses it).
    pub fn incoming(&self) -> Option<mpsc::Receiver<IncomingCall>> {
        self.incoming.lock().ok().and_then(|mut g| g.take())
    }

    /// Answers an inbound leg (200 with our SDP answer).
    pub async fn answer(&self, leg: LegId) -> Result<(), DriverError> {
        self.tx
            .send(Command::Answer(leg))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// Collects DTMF digits (RFC 4733 and in-band) until `max_digits`, the terminator, or a
    /// timeout; digits that arrived since the last collection count first (type-ahead).
    pub async fn collect_dtmf(
        &self,
        leg: LegId,
        max_digits: usize,
        terminator: Option<char>,
        inter_digit_timeout: Duration,
        first_digit_timeout: Duration,
    ) -> Result<Collected, DriverError> {
        let spec = CollectSpec {
            max_digits,
            terminator,
            inter_digit_timeout,
            first_digit_timeout,
        };
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Media(leg, MediaCmd::Collect(spec, tx)))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::NoLeg)
    }

    /// Runs CPD on the leg's decoded received audio, from the answer (and from early media
    /// when `early`); the result comes as one `cpd` event on the leg's stream, when decided
    /// (a machine: when its beep is heard or no longer waited for) or at the latest at hangup.
    pub async fn start_cpd(&self, leg: LegId, params: CpdParams, early: bool) -> Result<(), DriverError> {
        self.tx
            .send(Command::Media(leg, MediaCmd::Cpd(params, early)))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Places an outbound call; events arrive on the returned receiver, ending with `hangup`.
    pub async fn dial(&self, d: Dial) -> Result<(LegId, mpsc::UnboundedReceiver<LegEvent>), DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Dial(d, tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// CANCEL (unanswered) or BYE (answered).
    pub async fn hangup(&self, leg: LegId) -> Result<(), DriverError> {
        self.tx
            .send(Command::Hangup(leg))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// Plays a treatment to the leg (replacing what plays).
    pub async fn play(&self, leg: LegId, t: Arc<Treatment>, mode: PlayMode) -> Result<(), DriverError> {
        self.tx
            .send(Command::Media(leg, MediaCmd::Play(t, mode)))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    pub async fn stop(&self, leg: LegId) -> Result<(), DriverError> {
        self.tx
            .send(Command::Media(leg, MediaCmd::Stop))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    pub async fn media_stats(&self, leg: LegId) -> Result<MediaStats, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Media(leg, MediaCmd::Stats(tx)))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::NoLeg)
    }

    /// Relays RTP between two legs (each leg's audio is sent to the other).
    pub async fn bridge(&self, a: LegId, b: LegId) -> Result<(), DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Bridge(a, b, tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// Endpoint counters, live legs, live RTP ports.
    pub async fn counters(&self) -> Result<(Counters, usize, usize), DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Counters(tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Sends an OPTIONS (keepalive) to `dest`: the final response code, `None` on timeout.
    pub async fn options(&self, dest: SocketAddr) -> Result<Option<u16>, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Options(dest, tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Sends a non-INVITE request outside any dialog (our own bytes; the top Via decides UDP or
    /// TCP) and returns its final response, `None` when it timed out.
    pub async fn request(
        &self,
        dest: SocketAddr,
        bytes: Vec<u8>,
    ) -> Result<Option<Box<msg::Msg>>, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Request(dest, bytes, tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Starts REGISTER and OPTIONS keepalive for the trunks that ask for them; their states
    /// show in [`Self::trunk_states`] and failover skips trunks that are down.
    pub fn start_trunk_upkeep(
        &self,
        cfg: &crate::sip::config::TelephonyConfig,
    ) -> tokio::task::JoinHandle<()> {
        super::trunks::spawn(self.clone(), cfg)
    }

    /// Up/down and registration state of every monitored trunk.
    pub fn trunk_states(&self) -> super::trunks::TrunkStates {
        self.trunk_states.borrow().clone()
    }

    pub(crate) fn update_trunk_states(&self, f: impl FnOnce(&mut super::trunks::TrunkStates)) {
        self.trunk_states.send_modify(f);
    }

    /// Dials `number` through trunk `first`; on 503 or a timeout the call is placed again
    /// through the trunk's `failover` trunk (each trunk at most once). Every attempt starts with
    /// a `dialing` event carrying its leg id; the stream ends after the last attempt's hangup.
    pub async fn dial_with_failover(
        &self,
        cfg: &crate::sip::config::TelephonyConfig,
        first: &str,
        number: &str,
    ) -> Result<mpsc::UnboundedReceiver<LegEvent>, DriverError> {
        let mut trunk = cfg.trunk(first).cloned().ok_or(DriverError::NoLeg)?;
        // A trunk marked down by its keepalive is skipped (if no trunk is up, the first is tried).
        let states = self.trunk_states();
        if let Some(t) = super::trunks::first_up(cfg, &trunk, &[], &states) {
            trunk = t;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (leg, mut events) = self.dial(Dial::via_trunk(&trunk, number)).await?;
        let _ = tx.send(LegEvent::Dialing {
            leg: leg.0,
            trunk: trunk.name.clone(),
        });
        let this = self.clone();
        let cfg = cfg.clone();
        let number = number.to_string();
        tokio::spawn(async move {
            let mut tried = vec![trunk.name.clone()];
            loop {
                let Some(ev) = events.recv().await else { return };
                let failover = matches!(
                    &ev,
                    LegEvent::Hangup {
                        cause: Cause::Failover,
                        ..
                    } | LegEvent::Hangup {
                        cause: Cause::NoAnswer,
                        code: Some(408),
                        ..
                    }
                );
                let is_hangup = matches!(ev, LegEvent::Hangup { .. });
                let _ = tx.send(ev);
                if !is_hangup {
                    continue;
                }
                let next = trunk
                    .failover
                    .as_ref()
                    .and_then(|n| cfg.trunk(n))
                    .and_then(|t| super::trunks::first_up(&cfg, t, &tried, &this.trunk_states()));
                match next {
                    Some(n) if failover => {
                        trunk = n.clone();
                        tried.push(trunk.name.clone());
                        match this.dial(Dial::via_trunk(&trunk, &number)).await {
                            Ok((leg, ev)) => {
                                let _ = tx.send(LegEvent::Dialing {
                                    leg: leg.0,
                                    trunk: trunk.name.clone(),
                                });
                                events = ev;
                            }
                            Err(_) => return,
                        }
                    }
                    _ => return,
                }
            }
        });
        Ok(rx)
    }

    /// Registered contact URIs of an agent account.
    pub async fn contacts(&self, user: &str) -> Result<Vec<String>, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Contacts(user.to_string(), tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }
}

pub(crate) struct LegSlot {
    pub(crate) leg: Dialog,
    pub(crate) events: mpsc::UnboundedSender<LegEvent>,
    pub(crate) rtp: mpsc::UnboundedSender<RtpCmd>,
    pub(crate) rtp_port: u16,
}

/// Hands out RTP ports from the configured range (even ports, RTCP on the next one).
pub(crate) struct Ports {
    range: Option<(u16, u16)>,
    used: BTreeSet<u16>,
    next: u16,
}

impl Ports {
    /// An RTP socket and, when the next port is free, its RTCP socket.
    pub(crate) fn bind_pair(
        &mut self,
        ip: IpAddr,
    ) -> Option<(std::net::UdpSocket, Option<std::net::UdpSocket>)> {
        if self.range.is_none() {
            for _ in 0..16 {
                let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).ok()?;
                let port = s.local_addr().ok()?.port();
                if port % 2 == 1 || port == u16::MAX {
                    continue;
                }
                if let Ok(r) = std::net::UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
                    self.used.insert(port);
                    return Some((s, Some(r)));
                }
            }
        }
        let s = self.bind(ip)?;
        let rtcp = s
            .local_addr()
            .ok()
            .and_then(|a| std::net::UdpSocket::bind(SocketAddr::new(ip, a.port().checked_add(1)?)).ok());
        Some((s, rtcp))
    }

    fn bind(&mut self, ip: IpAddr) -> Option<std::net::UdpSocket> {
        let Some((lo, hi)) = self.range else {
            let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).ok()?;
            let port = s.local_addr().ok()?.port();
            self.used.insert(port);
            return Some(s);
        };
        let lo = lo + (lo % 2);
        let count = (hi.saturating_sub(lo) / 2).saturating_add(1);
        for _ in 0..count {
            let p = if self.next < lo || self.next > hi {
                lo
            } else {
                self.next
            };
            self.next = p.saturating_add(2);
            if self.used.contains(&p) {
                continue;
            }
            if let Ok(s) = std::net::UdpSocket::bind(SocketAddr::new(ip, p)) {
                self.used.insert(p);
                return Some(s);
            }
        }
        None
    }

    pub(crate) fn release(&mut self, p: u16) {
        self.used.remove(&p);
    }
}

async fn run(
    cfg: DriverConfig,
    sock: UdpSocket,
    local: SocketAddr,
    mut rx: mpsc::Receiver<Command>,
    incoming: mpsc::Sender<IncomingCall>,
    mut tcp: crate::sip::tcp::TcpTransport,
    relay: Option<Arc<super::relay::RelayEngine>>,
) {
    let mut ep = Endpoint::new(cfg.timers);
    let mut legs: HashMap<LegId, LegSlot> = HashMap::new();
    let mut by_call_id: HashMap<String, LegId> = HashMap::new();
    let mut next_leg = 1u64;
    let mut ports = Ports {
        range: cfg.rtp_ports,
        used: BTreeSet::new(),
        next: 0,
    };
    let (int_tx, mut int_rx) = mpsc::unbounded_channel::<Internal>();
    let mut registrar = Registrar::new(cfg.realm.clone(), cfg.accounts.clone());
    let registrations = cfg.registrations.clone();
    let mut buf = vec![0u8; 65_536];
    let origin = Instant::now();
    let media = MediaEnv {
        int_tx: int_tx.clone(),
        origin,
        no_rtp_timeout: cfg.no_rtp_timeout,
        relay,
    };
    let mut pending_options: HashMap<crate::sip::endpoint::ClientId, oneshot::Sender<Option<u16>>> =
        HashMap::new();
    let mut pending_requests: HashMap<
        crate::sip::endpoint::ClientId,
        oneshot::Sender<Option<Box<msg::Msg>>>,
    > = HashMap::new();
    loop {
        let now = Instant::now();
        let deadline = [
            ep.poll_timeout(),
            legs.values().filter_map(|s| s.leg.poll_timeout()).min(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, src)) = r {
                    ep.handle_datagram(Instant::now(), src, buf.get(..n).unwrap_or(&[]));
                }
            }
            Some(ev) = tcp.next_event() => crate::sip::tcp::deliver(&mut ep, ev),
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let now = Instant::now();
                match cmd {
                    Command::Dial(d, reply) => {
                        let r = dial(now, &mut ep, local, &cfg, &mut ports, &media, next_leg, d);
                        match r {
                            Ok((slot, erx)) => {
                                let id = LegId(next_leg);
                                next_leg += 1;
                                by_call_id.insert(slot.leg.call_id().to_string(), id);
                                legs.insert(id, slot);
                                let _ = reply.send(Ok((id, erx)));
                            }
                            Err(e) => { let _ = reply.send(Err(e)); }
                        }
                    }
                    Command::Hangup(id) => {
                        if let Some(s) = legs.get_mut(&id) { s.leg.hangup(now, &mut ep); }
                    }
                    Command::Answer(id) => {
                        if let Some(s) = legs.get_mut(&id) { s.leg.answer(now, &mut ep); }
                    }
                    Command::Media(id, m) => {
                        if let Some(s) = legs.get(&id) {
                            let _ = s.rtp.send(match m {
                                MediaCmd::Play(t, mode) => RtpCmd::Play(t, mode),
                                MediaCmd::Stop => RtpCmd::Stop,
                                MediaCmd::Stats(tx) => RtpCmd::Stats(tx),
                                MediaCmd::Collect(spec, tx) => RtpCmd::Collect(spec, tx),
                                MediaCmd::Cpd(p, early) => RtpCmd::Cpd(p, early),
                            });
                        }
                    }
                    Command::Bridge(a, b, reply) => {
                        let r = match (legs.get(&a), legs.get(&b)) {
                            (Some(sa), Some(sb)) => {
                                let _ = sa.rtp.send(RtpCmd::BridgeTo(sb.rtp.clone()));
                                let _ = sb.rtp.send(RtpCmd::BridgeTo(sa.rtp.clone()));
                                Ok(())
                            }
                            _ => Err(DriverError::NoLeg),
                        };
                        let _ = reply.send(r);
                    }
                    Command::Counters(reply) => {
                        let _ = reply.send((ep.counters(), legs.len(), ports.used.len()));
                    }
                    Command::Options(dest, reply) => {
                        let bytes = options_request(local, dest);
                        match ep.send_request(now, dest, bytes) {
                            Ok(id) => { pending_options.insert(id, reply); }
                            Err(_) => { let _ = reply.send(None); }
                        }
                    }
                    Command::Request(dest, bytes, reply) => match ep.send_request(now, dest, bytes) {
                        Ok(id) => { pending_requests.insert(id, reply); }
                        Err(_) => { let _ = reply.send(None); }
                    },
                    Command::Contacts(user, reply) => {
                        let _ = reply.send(registrar.contacts(&user, now));
                    }
                }
            }
            Some(i) = int_rx.recv() => {
                match i {
                    Internal::MediaTimeout(id) => {
                        if let Some(s) = legs.get_mut(&id) {
                            s.leg.hangup_for(Instant::now(), &mut ep, Cause::Timeout);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                ep.handle_timeout(now);
                for s in legs.values_mut() { s.leg.handle_timeout(now, &mut ep); }
            }
        }
        let now = Instant::now();
        while let Some(ev) = ep.poll_event() {
            match ev {
                EndpointEvent::Response { tx, msg } if pending_options.contains_key(&tx) => {
                    if let Some(code) = msg.code().filter(|c| *c >= 200)
                        && let Some(reply) = pending_options.remove(&tx)
                    {
                        let _ = reply.send(Some(code));
                    }
                }
                EndpointEvent::Response { tx, msg } if pending_requests.contains_key(&tx) => {
                    if msg.code().is_some_and(|c| c >= 200)
                        && let Some(reply) = pending_requests.remove(&tx)
                    {
                        let _ = reply.send(Some(msg));
                    }
                }
                EndpointEvent::Timeout { tx } if pending_requests.contains_key(&tx) => {
                    if let Some(reply) = pending_requests.remove(&tx) {
                        let _ = reply.send(None);
                    }
                }
                EndpointEvent::Timeout { tx } if pending_options.contains_key(&tx) => {
                    if let Some(reply) = pending_options.remove(&tx) {
                        let _ = reply.send(None);
                    }
                }
                EndpointEvent::Response { tx, msg } => {
                    if let Some(s) = by_call_id.get(&msg.call_id).and_then(|id| legs.get_mut(id)) {
                        s.leg.on_response(now, &mut ep, tx, &msg);
                    }
                }
                EndpointEvent::StrayResponse { msg, .. } => {
                    if let Some(s) = by_call_id.get(&msg.call_id).and_then(|id| legs.get_mut(id)) {
                        s.leg.on_stray_2xx(now, &mut ep, &msg);
                    }
                }
                EndpointEvent::Timeout { tx } => {
                    for s in legs.values_mut() {
                        if s.leg.owns_client_tx(tx) {
                            s.leg.on_timeout(tx);
                        }
                    }
                }
                EndpointEvent::Request { tx, msg, src } => {
                    if let Some(s) = by_call_id.get(&msg.call_id).and_then(|id| legs.get_mut(id)) {
                        s.leg.on_request(now, &mut ep, tx, &msg);
                        continue;
                    }
                    if msg.method() == Some(&Method::Invite) && msg.to.tag.is_none() {
                        let ctx = inbound::Ctx {
                            now,
                            local,
                            route_points: &cfg.route_points,
                            ports: &mut ports,
                            media: &media,
                            incoming: &incoming,
                        };
                        if let Some((id, slot)) = inbound::on_invite(ctx, &mut ep, tx, &msg, src, next_leg) {
                            next_leg += 1;
                            by_call_id.insert(slot.leg.call_id().to_string(), id);
                            legs.insert(id, slot);
                        }
                        continue;
                    }
                    let reply = match msg.method() {
                        Some(Method::Register) => {
                            let reply = registrar.handle(now, &msg, src);
                            let user = super::registrar::user_of(&msg.to.uri);
                            registrations.publish(&user, registrar.expiry(&user, now));
                            reply
                        }
                        Some(Method::Options) => msg::response_to(
                            &msg,
                            200,
                            "OK",
                            Some(&msg::token(8)),
                            &[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER".into())],
                            None,
                        ),
                        Some(Method::Invite) => msg::response_to(
                            &msg,
                            480,
                            "Temporarily Unavailable",
                            Some(&msg::token(8)),
                            &[],
                            None,
                        ),
                        Some(Method::Other(_)) => {
                            msg::response_to(&msg, 501, "Not Implemented", Some(&msg::token(8)), &[], None)
                        }
                        _ => msg::response_to(
                            &msg,
                            481,
                            msg::default_reason(481),
                            Some(&msg::token(8)),
                            &[],
                            None,
                        ),
                    };
                    let code = msg::parse(&reply).ok().and_then(|m| m.code()).unwrap_or(500);
                    ep.respond(now, tx, code, reply);
                }
                EndpointEvent::Ack { msg, .. } => {
                    if let Some(s) = by_call_id.get(&msg.call_id).and_then(|id| legs.get_mut(id)) {
                        s.leg.on_ack(&msg);
                    }
                }
                EndpointEvent::NoAck { tx } => {
                    for s in legs.values_mut() {
                        s.leg.on_no_ack(now, &mut ep, tx);
                    }
                }
            }
        }
        // Leg events: to the subscriber and to the leg's RTP task.
        let mut ended = Vec::new();
        for (id, s) in legs.iter_mut() {
            let mut last = None;
            while let Some(ev) = s.leg.poll_event() {
                match &ev {
                    LegEvent::EarlyMedia { remote_rtp, .. }
                    | LegEvent::Answered {
                        remote_rtp: Some(remote_rtp),
                        ..
                    } => {
                        let law = match s.leg.codec() {
                            Some(Codec::Pcma) => Law::Alaw,
                            _ => Law::Ulaw,
                        };
                        let te = s.leg.remote_media().and_then(|r| r.telephone_event);
                        let answered = matches!(ev, LegEvent::Answered { .. });
                        let _ = s.rtp.send(RtpCmd::Remote {
                            addr: *remote_rtp,
                            law,
                            te,
                            answered,
                        });
                    }
                    // RFC 3264 §8.4: a peer that holds the call (sendonly/inactive) gets no media.
                    LegEvent::Hold { held } => {
                        let _ = s.rtp.send(RtpCmd::Hold(*held));
                    }
                    _ => {}
                }
                if matches!(ev, LegEvent::Hangup { .. }) {
                    // Sent by the media task after what it still has to report (CPD).
                    last = Some(ev);
                    continue;
                }
                let _ = s.events.send(ev);
            }
            if s.leg.is_ended() {
                ended.push((*id, last));
            } else if let Some(ev) = last {
                let _ = s.events.send(ev);
            }
        }
        for (id, last) in ended {
            if let Some(s) = legs.remove(&id) {
                by_call_id.remove(s.leg.call_id());
                if let Err(mpsc::error::SendError(RtpCmd::Close(Some(ev)))) = s.rtp.send(RtpCmd::Close(last))
                {
                    let _ = s.events.send(ev);
                }
                ports.release(s.rtp_port);
            }
        }
        while let Some((dest, bytes)) = ep.poll_transmit() {
            if crate::sip::transport::top_via_transport(&bytes) == crate::sip::transport::Transport::Tcp {
                tcp.send(dest, bytes);
                continue;
            }
            let _ = sock.send_to(&bytes, dest).await;
        }
    }
}

fn options_request(local: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    msg::RequestBuilder::new(&Method::Options, &format!("sip:{dest}"))
        .header(
            "Via",
            format!("SIP/2.0/UDP {local};branch={};rport", msg::new_branch()),
        )
        .header("Max-Forwards", 70)
        .header("From", format!("<sip:boomerang@{local}>;tag={}", msg::token(10)))
        .header("To", format!("<sip:{dest}>"))
        .header("Call-ID", format!("{}@boomerang", msg::token(20)))
        .header("CSeq", "1 OPTIONS")
        .finish()
}

#[allow(clippy::too_many_arguments)]
fn dial(
    now: Instant,
    ep: &mut Endpoint,
    local: SocketAddr,
    _cfg: &DriverConfig,
    ports: &mut Ports,
    media: &MediaEnv,
    id: u64,
    d: Dial,
) -> Result<(LegSlot, mpsc::UnboundedReceiver<LegEvent>), DriverError> {
    let (std_sock, rtcp_sock) = ports.bind_pair(local.ip()).ok_or(DriverError::NoPort)?;
    let rtp_addr = std_sock.local_addr()?;
    let spec = DialSpec {
        number: d.number,
        dest: d.dest,
        domain: d.domain,
        caller: d.caller,
        p_asserted_identity: d.p_asserted_identity,
        ring_timeout: d.ring_timeout,
        rtp: rtp_addr,
        auth: d.auth,
    };
    let opts = _cfg
        .trunks
        .iter()
        .find(|t| t.next_hop() == spec.dest)
        .map(super::leg::LegOptions::for_trunk)
        .unwrap_or_default();
    let leg = match OutboundLeg::dial_with(now, ep, local, &spec, opts) {
        Ok(l) => l,
        Err(e) => {
            ports.release(rtp_addr.port());
            return Err(DriverError::Build(e.to_string()));
        }
    };
    let (etx, erx) = mpsc::unbounded_channel();
    let rtx = match spawn_media(LegId(id), std_sock, rtcp_sock, etx.clone(), media) {
        Ok(r) => r,
        Err(e) => {
            ports.release(rtp_addr.port());
            return Err(e.into());
        }
    };
    Ok((
        LegSlot {
            leg: Dialog::Out(Box::new(leg)),
            events: etx,
            rtp: rtx,
            rtp_port: rtp_addr.port(),
        },
        erx,
    ))
}

/// Starts a leg's media task on its RTP (and RTCP) socket.
pub(crate) fn spawn_media(
    id: LegId,
    rtp: std::net::UdpSocket,
    rtcp: Option<std::net::UdpSocket>,
    events: mpsc::UnboundedSender<LegEvent>,
    media: &MediaEnv,
) -> std::io::Result<mpsc::UnboundedSender<RtpCmd>> {
    rtp.set_nonblocking(true)?;
    let rtcp = rtcp.and_then(|r| {
        r.set_nonblocking(true).ok()?;
        UdpSocket::from_std(r).ok()
    });
    let (rtx, rrx) = mpsc::unbounded_channel();
    tokio::spawn(rtp_task(MediaTask {
        id,
        sock: rtp,
        rtcp,
        rx: rrx,
        int_tx: media.int_tx.clone(),
        events,
        origin: media.origin,
        no_rtp_timeout: media.no_rtp_timeout,
        relay: media.relay.clone(),
    }));
    Ok(rtx)
}
