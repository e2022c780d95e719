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

use boomerang_media::Time;
use boomerang_media::g711::Law;
use boomerang_media::rtp::{MediaKind, RtpSession, SessionConfig, looks_like_rtcp};
use boomerang_media::treatment::{PlayMode, Player, Treatment};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::leg::{Cause, DialSpec, LegEvent, OutboundLeg};
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

/// Media counters and received audio of a leg.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub relayed_packets: u64,
    /// Source the RTP latched to (symmetric RTP).
    pub latched: Option<SocketAddr>,
    /// Received audio payload bytes, in arrival order, in the leg's law (capped).
    #[serde(skip)]
    pub received: Vec<u8>,
    pub law: Option<&'static str>,
    /// Whether a `play` has finished (Once mode).
    pub playing: bool,
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
    Media(LegId, MediaCmd),
    Bridge(LegId, LegId, oneshot::Sender<Result<(), DriverError>>),
    Counters(oneshot::Sender<(Counters, usize, usize)>),
    Contacts(String, oneshot::Sender<Vec<String>>),
    Options(SocketAddr, oneshot::Sender<Option<u16>>),
}

enum MediaCmd {
    Play(Arc<Treatment>, PlayMode),
    Stop,
    Stats(oneshot::Sender<MediaStats>),
}

/// Handle to the telephony task. Cheap to clone.
#[derive(Clone)]
pub struct Telephony {
    tx: mpsc::Sender<Command>,
    local: SocketAddr,
}

impl Telephony {
    /// Binds the SIP socket and starts the task.
    pub async fn start(cfg: DriverConfig) -> Result<(Telephony, tokio::task::JoinHandle<()>), DriverError> {
        let sock = UdpSocket::bind(cfg.listen).await?;
        let local = sock.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run(cfg, sock, local, rx));
        Ok((Telephony { tx, local }, task))
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
                    .filter(|t| !tried.contains(&t.name));
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

struct LegSlot {
    leg: OutboundLeg,
    events: mpsc::UnboundedSender<LegEvent>,
    rtp: mpsc::UnboundedSender<RtpCmd>,
    rtp_port: u16,
}

/// Hands out RTP ports from the configured range (even ports; RTCP would be +1).
struct Ports {
    range: Option<(u16, u16)>,
    used: BTreeSet<u16>,
    next: u16,
}

impl Ports {
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

    fn release(&mut self, p: u16) {
        self.used.remove(&p);
    }
}

enum Internal {
    MediaTimeout(LegId),
}

async fn run(cfg: DriverConfig, sock: UdpSocket, local: SocketAddr, mut rx: mpsc::Receiver<Command>) {
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
    let mut buf = vec![0u8; 65_536];
    let origin = Instant::now();
    let mut pending_options: HashMap<crate::sip::endpoint::ClientId, oneshot::Sender<Option<u16>>> =
        HashMap::new();
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
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let now = Instant::now();
                match cmd {
                    Command::Dial(d, reply) => {
                        let r = dial(now, &mut ep, local, &cfg, &mut ports, &int_tx, origin, next_leg, d);
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
                    Command::Media(id, m) => {
                        if let Some(s) = legs.get(&id) {
                            let _ = s.rtp.send(match m {
                                MediaCmd::Play(t, mode) => RtpCmd::Play(t, mode),
                                MediaCmd::Stop => RtpCmd::Stop,
                                MediaCmd::Stats(tx) => RtpCmd::Stats(tx),
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
                    let reply = match msg.method() {
                        Some(Method::Register) => registrar.handle(now, &msg, src),
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
                EndpointEvent::Ack { .. } | EndpointEvent::NoAck { .. } => {}
            }
        }
        // Leg events: to the subscriber and to the leg's RTP task.
        let mut ended = Vec::new();
        for (id, s) in legs.iter_mut() {
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
                    _ => {}
                }
                let _ = s.events.send(ev);
            }
            if s.leg.is_ended() {
                ended.push(*id);
            }
        }
        for id in ended {
            if let Some(s) = legs.remove(&id) {
                by_call_id.remove(s.leg.call_id());
                let _ = s.rtp.send(RtpCmd::Close);
                ports.release(s.rtp_port);
            }
        }
        while let Some((dest, bytes)) = ep.poll_transmit() {
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
    int_tx: &mpsc::UnboundedSender<Internal>,
    origin: Instant,
    id: u64,
    d: Dial,
) -> Result<(LegSlot, mpsc::UnboundedReceiver<LegEvent>), DriverError> {
    let std_sock = ports.bind(local.ip()).ok_or(DriverError::NoPort)?;
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
    let leg = match OutboundLeg::dial(now, ep, local, &spec) {
        Ok(l) => l,
        Err(e) => {
            ports.release(rtp_addr.port());
            return Err(DriverError::Build(e.to_string()));
        }
    };
    std_sock.set_nonblocking(true)?;
    let sock = match UdpSocket::from_std(std_sock) {
        Ok(s) => s,
        Err(e) => {
            ports.release(rtp_addr.port());
            return Err(e.into());
        }
    };
    let (etx, erx) = mpsc::unbounded_channel();
    let (rtx, rrx) = mpsc::unbounded_channel();
    tokio::spawn(rtp_task(
        LegId(id),
        sock,
        rrx,
        int_tx.clone(),
        origin,
        _cfg.no_rtp_timeout,
    ));
    Ok((
        LegSlot {
            leg,
            events: etx,
            rtp: rtx,
            rtp_port: rtp_addr.port(),
        },
        erx,
    ))
}

enum RtpCmd {
    Remote {
        addr: SocketAddr,
        law: Law,
        te: Option<u8>,
        answered: bool,
    },
    Play(Arc<Treatment>, PlayMode),
    Stop,
    Stats(oneshot::Sender<MediaStats>),
    BridgeTo(mpsc::UnboundedSender<RtpCmd>),
    /// Audio from the bridged leg: payload and its law.
    Relay(Vec<u8>, Law),
    Close,
}

/// Most received audio kept per leg for inspection (60 s of G.711).
const MAX_RECORDED: usize = 480_000;

fn media_now(origin: Instant) -> Time {
    Time::from_micros(origin.elapsed().as_micros() as u64)
}

async fn rtp_task(
    id: LegId,
    sock: UdpSocket,
    mut rx: mpsc::UnboundedReceiver<RtpCmd>,
    int_tx: mpsc::UnboundedSender<Internal>,
    origin: Instant,
    no_rtp_timeout: Duration,
) {
    let mut session: Option<RtpSession> = None;
    let mut law = Law::Ulaw;
    let mut remote: Option<SocketAddr> = None;
    let mut latched = false;
    let mut player: Option<Player> = None;
    let mut peer: Option<mpsc::UnboundedSender<RtpCmd>> = None;
    let mut stats = MediaStats::default();
    let mut last_rx = Instant::now();
    let mut answered = false;
    let mut buf = vec![0u8; 2048];
    let mut out = vec![0u8; 1500];
    // Relay path (tests/bridge_bench.rs): one timer, re-armed only when it fired or a treatment
    // plays, instead of a new `sleep_until` per loop turn, so a relayed packet does not insert
    // and remove a timer-wheel entry on each of the two legs' tasks (about 10% less CPU per
    // relayed packet at 500-1,000 bridged pairs).
    let tick = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(tick);
    loop {
        let now_m = media_now(origin);
        let play_due = player.as_ref().and_then(|p| p.poll_timeout());
        if play_due.is_some() || tick.is_elapsed() {
            let wake = match play_due {
                Some(t) => {
                    let us = t.as_micros().saturating_sub(now_m.as_micros());
                    Instant::now() + Duration::from_micros(us)
                }
                None => Instant::now() + Duration::from_millis(500),
            };
            tick.as_mut().reset(wake.into());
        }
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, src)) = r else { continue };
                let Some(data) = buf.get(..n) else { continue };
                if looks_like_rtcp(data) { continue; }
                let Some(sess) = session.as_mut() else { continue };
                let now_m = media_now(origin);
                if let Ok(inc) = sess.handle_rtp(now_m, data) {
                    last_rx = Instant::now();
                    stats.rx_packets += 1;
                    if !latched || remote != Some(src) {
                        // Symmetric RTP: send where the peer's packets really come from.
                        remote = Some(src);
                        latched = true;
                        stats.latched = Some(src);
                    }
                    if inc.kind == MediaKind::Audio {
                        let payload = inc.packet.payload;
                        let room = MAX_RECORDED.saturating_sub(stats.received.len());
                        stats.received.extend_from_slice(payload.get(..payload.len().min(room)).unwrap_or(&[]));
                        if let Some(p) = &peer {
                            let _ = p.send(RtpCmd::Relay(payload.to_vec(), law));
                            stats.relayed_packets += 1;
                        }
                    }
                }
                while sess.poll_event().is_some() {}
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                match cmd {
                    RtpCmd::Remote { addr, law: l, te, answered: a } => {
                        if !latched { remote = Some(addr); }
                        if session.is_none() || l != law {
                            law = l;
                            let mut cfg = SessionConfig::g711(law, fastrand::u32(..), fastrand::u16(..), fastrand::u32(..));
                            cfg.telephone_event_payload_type = te;
                            session = Some(RtpSession::new(cfg, media_now(origin)));
                        }
                        stats.law = Some(match law { Law::Ulaw => "PCMU", Law::Alaw => "PCMA" });
                        if a && !answered {
                            answered = true;
                            last_rx = Instant::now();
                        }
                    }
                    RtpCmd::Play(t, mode) => {
                        let mut p = Player::new(t, law, mode, Duration::from_millis(20));
                        p.start(media_now(origin));
                        player = Some(p);
                    }
                    RtpCmd::Stop => player = None,
                    RtpCmd::Stats(tx) => {
                        stats.playing = player.as_ref().is_some_and(|p| p.is_playing());
                        let _ = tx.send(stats.clone());
                    }
                    RtpCmd::BridgeTo(p) => peer = Some(p),
                    RtpCmd::Relay(mut payload, from_law) => {
                        if let (Some(sess), Some(dest)) = (session.as_mut(), remote) {
                            if from_law != law {
                                from_law.transcode_in_place(law, &mut payload);
                            }
                            if let Ok(n) = sess.write_audio(media_now(origin), &payload, payload.len() as u32, &mut out)
                                && let Some(b) = out.get(..n)
                            {
                                let _ = sock.send_to(b, dest).await;
                                stats.tx_packets += 1;
                            }
                        }
                    }
                    RtpCmd::Close => break,
                }
            }
            _ = &mut tick => {}
        }
        if let (Some(p), Some(sess), Some(dest)) = (player.as_mut(), session.as_mut(), remote) {
            let now_m = media_now(origin);
            for _ in 0..8 {
                match p.poll_packet(now_m, sess, &mut out) {
                    Some(Ok(n)) => {
                        if let Some(b) = out.get(..n) {
                            let _ = sock.send_to(b, dest).await;
                            stats.tx_packets += 1;
                        }
                    }
                    _ => break,
                }
            }
        }
        if answered && last_rx.elapsed() > no_rtp_timeout {
            let _ = int_tx.send(Internal::MediaTimeout(id));
            answered = false;
        }
    }
}
