//! The media task of one leg: owns its RTP and RTCP sockets (RTP port + 1) and its RTP session
//! (media crate); plays treatments, records what arrives, relays audio and RFC 4733 events to a
//! bridged leg (PCMU<->PCMA transcoded, telephone-event payload type mapped), reports DTMF
//! (RFC 4733 and in-band), runs CPD on the decoded received audio, collects digits, sends
//! SR/RR at the RFC 3550 interval, reads the peer's reports and says BYE when the leg ends.
//!
//! Relay: a leg's sending side ([`LegTx`]: its socket, peer address and RTP session) is shared
//! with the task of the leg bridged to it. When leg A receives audio and is bridged to B, A's
//! task stamps the packet with B's SSRC, sequence number and timestamp (transcoded to B's law)
//! and sends it on B's socket itself: no channel message, no wake-up of B's task, no allocation.
//! B's own task sends its treatments and RTCP through the same session, so sequence numbers and
//! sender-report counts stay consistent.
//!
//! While a leg is bridged and nothing needs its received audio here (no CPD listening, no
//! digits being collected), its task hands the receiving side of its RTP socket to the relay
//! engine ([`super::relay`]), whose threads do the same per-datagram work
//! ([`LegTx::receive`]) at the cost of one `recvfrom` and one `sendto` per packet.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boomerang_media::Time;
use boomerang_media::cpd::{Cpd, CpdParams};
use boomerang_media::dtmf::{DtmfEvent, DtmfReceiver};
use boomerang_media::g711::Law;
use boomerang_media::rtp::{MediaKind, RtpHeader, RtpSession, SessionConfig, SessionEvent, looks_like_rtcp};
use boomerang_media::treatment::{PlayMode, Player, Treatment};
use serde::Serialize;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

use super::driver::LegId;
use super::dtmf_collect::{CollectSpec, Collected, Collector, InbandDetector};
use super::leg::LegEvent;
use super::relay::{Handoff, RelayEngine, RelayedEvent};

/// Media counters, RTCP figures and received audio of a leg.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub relayed_packets: u64,
    /// RFC 4733 packets received, and relayed to the bridged leg.
    pub rx_events: u64,
    pub relayed_events: u64,
    /// Packets the bridged leg's task could not send on this leg's socket (buffer full).
    pub relay_send_errors: u64,
    /// Source the RTP latched to (symmetric RTP).
    pub latched: Option<SocketAddr>,
    /// Received audio payload bytes, in arrival order, in the leg's law (capped). A bridged leg
    /// records only once its stats have been read while bridged (tests read this; a relay does
    /// not pay for a copy and up to 480 KB per leg that nothing reads).
    #[serde(skip)]
    pub received: Vec<u8>,
    pub law: Option<&'static str>,
    /// Whether a `play` is still playing.
    pub playing: bool,
    /// Our SSRC.
    pub ssrc: u32,
    /// Interarrival jitter we measure on the peer's stream (ms) and its lost packets.
    pub jitter_ms: Option<f64>,
    pub lost: Option<i64>,
    /// RTCP compound packets sent and received.
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    /// What the peer's last report said about our stream.
    pub remote_jitter_ms: Option<f32>,
    pub remote_fraction_lost: Option<f32>,
    pub remote_cumulative_lost: Option<i32>,
    /// Round-trip time from the peer's report on one of our sender reports.
    pub rtt_ms: Option<f64>,
}

pub(crate) enum RtpCmd {
    Remote {
        addr: SocketAddr,
        law: Law,
        te: Option<u8>,
        answered: bool,
    },
    Play(Arc<Treatment>, PlayMode),
    Stop,
    Stats(oneshot::Sender<MediaStats>),
    /// Bridge to the leg whose task takes these commands: this task answers with its
    /// [`LegTx`] (`Peer`), the other does the same, and each then relays to the other.
    BridgeTo(mpsc::UnboundedSender<RtpCmd>),
    /// The sending side of the bridged leg: received audio and events are relayed onto it.
    Peer(Arc<LegTx>),
    Collect(CollectSpec, oneshot::Sender<Collected>),
    Cpd(CpdParams, bool),
    /// The peer put the call on hold (`sendonly`/`inactive`: we send nothing, neither
    /// treatments nor relayed audio, and do not expect its RTP) or took it off hold.
    Hold(bool),
    /// The leg ended: report what is pending, then this event (the hangup), then stop.
    Close(Option<LegEvent>),
}

pub(crate) enum Internal {
    MediaTimeout(LegId),
}

/// Most received audio kept per leg for inspection (60 s of G.711).
const MAX_RECORDED: usize = 480_000;
/// Digits kept for a `collect_dtmf` that starts after they arrived (type-ahead).
const MAX_TYPE_AHEAD: usize = 32;

/// Datagrams read per wake-up of the task before it looks at its commands and timers again.
const MAX_DRAIN: usize = 16;

pub(crate) fn media_time(origin: Instant, now: Instant) -> Time {
    Time::from_micros(now.saturating_duration_since(origin).as_micros() as u64)
}

fn media_now(origin: Instant) -> Time {
    media_time(origin, Instant::now())
}

/// Wallclock as a 64-bit NTP timestamp (RFC 3550 §4).
fn ntp_now() -> u64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(2_208_988_800);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

struct CpdRun {
    cpd: Cpd,
    early: bool,
    reported: bool,
}

fn cpd_result(cpd: &Cpd) -> serde_json::Map<String, serde_json::Value> {
    match boomerang_media::cpd::report::result_json("rtp", cpd) {
        serde_json::Value::Object(mut m) => {
            m.shift_remove("file");
            m
        }
        _ => serde_json::Map::new(),
    }
}

/// What every leg's media task shares: the telephony task's channel, the media clock's origin,
/// the no-RTP timeout and the relay engine (`None`: bridged legs relay in their own tasks).
pub(crate) struct MediaEnv {
    pub int_tx: mpsc::UnboundedSender<Internal>,
    pub origin: Instant,
    pub no_rtp_timeout: Duration,
    pub relay: Option<Arc<RelayEngine>>,
}

pub(crate) struct MediaTask {
    pub id: LegId,
    /// Non-blocking.
    pub sock: UdpSocket,
    pub rtcp: Option<tokio::net::UdpSocket>,
    pub rx: mpsc::UnboundedReceiver<RtpCmd>,
    pub int_tx: mpsc::UnboundedSender<Internal>,
    pub events: mpsc::UnboundedSender<LegEvent>,
    pub origin: Instant,
    pub no_rtp_timeout: Duration,
    pub relay: Option<Arc<RelayEngine>>,
}

/// The RTP socket as the task's reactor sees it (registered only while the task reads it).
struct RtpFd(Arc<UdpSocket>);

impl AsRawFd for RtpFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Buffers for relaying one packet: a transcoding scratch and the outgoing packet.
pub(crate) struct RelayBufs {
    scratch: Vec<u8>,
    out: Vec<u8>,
}

impl RelayBufs {
    pub(crate) fn new() -> Self {
        RelayBufs {
            scratch: vec![0u8; 2048],
            out: vec![0u8; 1500],
        }
    }
}

/// What a received datagram leaves for the leg's own task, once [`LegTx::receive`] did the
/// statistics, latching, recording and relaying.
pub(crate) enum Received<'a> {
    /// Dropped by the RTP session, comfort noise, or no session yet.
    Nothing,
    /// RTCP on the RTP port (rtcp-mux), already handled.
    Rtcp,
    /// Audio in the leg's law.
    Audio(&'a [u8], Law),
    /// An RFC 4733 packet.
    Event { header: RtpHeader, payload: &'a [u8] },
}

/// The sending side of a leg, shared by its own task (treatments, RTCP, and the reception side
/// of the same RTP session) and the task of the leg bridged to it, which writes relayed packets
/// straight onto this leg's socket. The lock is held for one packet's stamping and send.
pub(crate) struct LegTx {
    state: Mutex<TxState>,
    /// Received audio packets relayed to the bridged leg.
    relayed_rx: AtomicU64,
}

struct TxState {
    /// The leg's RTP socket; taken out when the leg ends, so a bridged peer holds no port.
    sock: Option<Arc<UdpSocket>>,
    session: Option<RtpSession>,
    law: Law,
    /// Where RTP goes (latched to where the peer's packets really come from).
    remote: Option<SocketAddr>,
    /// Relayed events: (source event timestamp, our timestamp for it).
    relay_ts: Option<(u32, u32)>,
    /// Audio and event packets the bridged leg's task sent on this leg, and failed sends.
    relayed_tx: u64,
    relayed_events: u64,
    relay_send_errors: u64,
    /// The peer holds the call: nothing is sent to it.
    held: bool,
    /// The receiving side (written by whoever reads the socket: the task or a relay worker).
    latched: Option<SocketAddr>,
    last_rx: Instant,
    rx_packets: u64,
    rx_events: u64,
    rtcp_received: u64,
    /// Record received audio even while bridged (set once stats are read while bridged).
    record: bool,
    received: Vec<u8>,
}

impl LegTx {
    fn new(sock: Arc<UdpSocket>) -> Self {
        LegTx {
            state: Mutex::new(TxState {
                sock: Some(sock),
                session: None,
                law: Law::Ulaw,
                remote: None,
                relay_ts: None,
                relayed_tx: 0,
                relayed_events: 0,
                relay_send_errors: 0,
                held: false,
                latched: None,
                last_rx: Instant::now(),
                rx_packets: 0,
                rx_events: 0,
                rtcp_received: 0,
                record: false,
                received: Vec::new(),
            }),
            relayed_rx: AtomicU64::new(0),
        }
    }

    /// One datagram received on this leg's socket from `src`: RTCP (rtcp-mux) or RTP through
    /// the session (validation, statistics), symmetric-RTP latching, recording (unless bridged
    /// and nobody asked), and relay of audio and telephone events to the bridged `peer`.
    pub(crate) fn receive<'a>(
        &self,
        now_i: Instant,
        now_m: Time,
        src: SocketAddr,
        data: &'a [u8],
        peer: Option<&LegTx>,
        bufs: &mut RelayBufs,
    ) -> Received<'a> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(sess) = st.session.as_mut() else {
            return Received::Nothing;
        };
        if looks_like_rtcp(data) {
            if sess.handle_rtcp(now_m, data).is_ok() {
                st.rtcp_received += 1;
            }
            return Received::Rtcp;
        }
        let Ok(inc) = sess.handle_rtp(now_m, data) else {
            return Received::Nothing;
        };
        if st.latched != Some(src) {
            // Symmetric RTP: send where the peer's packets really come from.
            st.remote = Some(src);
            st.latched = Some(src);
        }
        let law = st.law;
        st.last_rx = now_i;
        st.rx_packets += 1;
        let payload = inc.packet.payload;
        match inc.kind {
            MediaKind::Audio => {
                if peer.is_none() || st.record {
                    let room = MAX_RECORDED.saturating_sub(st.received.len());
                    st.received
                        .extend_from_slice(payload.get(..payload.len().min(room)).unwrap_or(&[]));
                }
                // Never hold our lock while taking the peer's (it may be relaying to us).
                drop(guard);
                if let Some(p) = peer
                    && p.relay_audio(now_m, payload, law, bufs)
                {
                    self.relayed_rx.fetch_add(1, Ordering::Relaxed);
                }
                Received::Audio(payload, law)
            }
            MediaKind::TelephoneEvent => {
                st.rx_events += 1;
                drop(guard);
                let header = inc.packet.header;
                if let Some(p) = peer {
                    p.relay_event(now_m, header.timestamp, header.marker, payload, &mut bufs.out);
                }
                Received::Event { header, payload }
            }
            MediaKind::ComfortNoise => Received::Nothing,
        }
    }

    fn lock(&self) -> MutexGuard<'_, TxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends audio received on the bridged leg (in its law `from`) to this leg's peer, stamped
    /// by this leg's session and transcoded when the laws differ, in the caller's buffers (no
    /// allocation). True when the packet was sent.
    fn relay_audio(&self, now: Time, payload: &[u8], from: Law, bufs: &mut RelayBufs) -> bool {
        let RelayBufs { scratch, out } = bufs;
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.held {
            return false;
        }
        let (Some(sess), Some(dest), Some(sock)) = (st.session.as_mut(), st.remote, st.sock.as_ref()) else {
            return false;
        };
        let payload = if from == st.law {
            payload
        } else {
            let Some(s) = scratch.get_mut(..payload.len()) else {
                return false;
            };
            s.copy_from_slice(payload);
            from.transcode_in_place(st.law, s);
            &*s
        };
        let Ok(n) = sess.write_audio(now, payload, payload.len() as u32, out) else {
            return false;
        };
        let Some(b) = out.get(..n) else { return false };
        if sock.send_to(b, dest).is_ok() {
            st.relayed_tx += 1;
            true
        } else {
            st.relay_send_errors += 1;
            false
        }
    }

    /// Sends a telephone-event received on the bridged leg (its RTP timestamp `src_ts`, marker
    /// and payload) to this leg's peer, with this leg's event payload type. One event keeps
    /// one timestamp: the source's is mapped to ours.
    fn relay_event(&self, now: Time, src_ts: u32, marker: bool, payload: &[u8], out: &mut [u8]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.held {
            return;
        }
        let (Some(sess), Some(dest), Some(sock)) = (st.session.as_mut(), st.remote, st.sock.as_ref()) else {
            return;
        };
        let ts = match st.relay_ts {
            Some((s, ours)) if s == src_ts => ours,
            _ => {
                let ours = sess.next_timestamp();
                st.relay_ts = Some((src_ts, ours));
                ours
            }
        };
        if let Ok(n) = sess.write_telephone_event(now, ts, marker, payload, out)
            && let Some(b) = out.get(..n)
        {
            if sock.send_to(b, dest).is_ok() {
                st.relayed_events += 1;
            } else {
                st.relay_send_errors += 1;
            }
        }
    }
}

pub(crate) async fn rtp_task(t: MediaTask) {
    let MediaTask {
        id,
        sock,
        rtcp,
        mut rx,
        int_tx,
        events,
        origin,
        no_rtp_timeout,
        relay,
    } = t;
    let sock = Arc::new(sock);
    let me = Arc::new(LegTx::new(sock.clone()));
    // The task reads the socket while `afd` is set; otherwise a relay worker does.
    let mut afd = match watch(&sock) {
        Ok(a) => Some(a),
        Err(_) => {
            let _ = int_tx.send(Internal::MediaTimeout(id));
            return;
        }
    };
    let (relayed_tx, mut relayed_rx) = mpsc::unbounded_channel::<RelayedEvent>();
    let mut law = Law::Ulaw;
    let mut rtcp_remote: Option<SocketAddr> = None;
    let mut player: Option<Player> = None;
    let mut peer: Option<Arc<LegTx>> = None;
    let mut stats = MediaStats::default();
    let mut answered = false;
    let mut held = false;
    let mut dtmf_rx = DtmfReceiver::new(8000, Duration::from_millis(300));
    let mut inband = InbandDetector::new();
    let mut type_ahead = String::new();
    let mut collect: Option<(Collector, oneshot::Sender<Collected>)> = None;
    let mut cpd: Option<CpdRun> = None;
    let mut pcm = vec![0i16; 1024];
    let mut buf = vec![0u8; 2048];
    let mut rbuf = vec![0u8; 2048];
    let mut relay_bufs = RelayBufs::new();
    let mut out = vec![0u8; 1500];
    let mut digits: Vec<(char, &'static str)> = Vec::new();
    // One timer, re-armed only when something may have changed a deadline (a command, a timer
    // expiry, a digit, CPD input, RTCP) instead of a new `sleep_until` per loop turn. Relayed
    // audio changes no deadline: such a turn skips the deadline and housekeeping work. A
    // deadline later than the armed one just wakes the loop early.
    let tick = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(tick);
    let mut dirty = true;
    loop {
        if dirty {
            dirty = false;
            let now_i = Instant::now();
            let now_m = media_time(origin, now_i);
            let to_instant =
                |t: Time| now_i + Duration::from_micros(t.as_micros().saturating_sub(now_m.as_micros()));
            let mut wake = now_i + Duration::from_millis(500);
            // A held call plays nothing; the player skips ahead when the hold ends.
            if let Some(t) = player.as_ref().filter(|_| !held).and_then(|p| p.poll_timeout()) {
                wake = wake.min(to_instant(t));
            }
            if rtcp.is_some()
                && let Some(s) = me.lock().session.as_ref()
            {
                wake = wake.min(to_instant(s.poll_timeout()));
            }
            if let Some(t) = dtmf_rx.poll_timeout() {
                wake = wake.min(to_instant(t));
            }
            if let Some((c, _)) = &collect {
                wake = wake.min(c.poll_timeout());
            }
            let wake = tokio::time::Instant::from_std(wake);
            if tick.is_elapsed() || wake < tick.deadline() {
                tick.as_mut().reset(wake);
            }
        }
        let rtcp_recv = async {
            match rtcp.as_ref() {
                Some(s) => s.recv_from(&mut rbuf).await,
                None => std::future::pending().await,
            }
        };
        let rtp_ready = async {
            match afd.as_ref() {
                Some(a) => a.readable().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut tick => dirty = true,
            cmd = rx.recv() => {
                dirty = true;
                let Some(cmd) = cmd else { break };
                match cmd {
                    RtpCmd::Remote { addr, law: l, te, answered: a } => {
                        let mut st = me.lock();
                        let latched = st.latched.is_some();
                        if !latched { st.remote = Some(addr); }
                        if rtcp_remote.is_none() || !latched {
                            rtcp_remote = Some(SocketAddr::new(addr.ip(), addr.port().saturating_add(1)));
                        }
                        let te_changed = st.session.as_ref().is_some_and(|s| s.config().telephone_event_payload_type != te);
                        if st.session.is_none() || l != law || te_changed {
                            law = l;
                            st.law = l;
                            let mut cfg = SessionConfig::g711(law, fastrand::u32(..), fastrand::u16(..), fastrand::u32(..));
                            cfg.telephone_event_payload_type = te;
                            cfg.rtcp_seed = fastrand::u64(..);
                            let s = RtpSession::new(cfg, media_now(origin));
                            stats.ssrc = s.config().ssrc;
                            st.session = Some(s);
                            st.relay_ts = None;
                        }
                        if a && !answered {
                            answered = true;
                            st.last_rx = Instant::now();
                        }
                        drop(st);
                        stats.law = Some(match law { Law::Ulaw => "PCMU", Law::Alaw => "PCMA" });
                    }
                    RtpCmd::Play(t, mode) => {
                        let mut p = Player::new(t, law, mode, Duration::from_millis(20));
                        p.start(media_now(origin));
                        player = Some(p);
                    }
                    RtpCmd::Stop => player = None,
                    RtpCmd::Hold(h) => {
                        held = h;
                        let mut st = me.lock();
                        st.held = h;
                        // The no-RTP timer starts again when the hold ends.
                        st.last_rx = Instant::now();
                    }
                    RtpCmd::Stats(tx) => {
                        let mut s = stats.clone();
                        s.playing = player.as_ref().is_some_and(|p| p.is_playing());
                        let mut st = me.lock();
                        if peer.is_some() {
                            st.record = true;
                        }
                        if let Some(r) = st.session.as_ref().and_then(|s| s.reception()) {
                            s.jitter_ms = Some(r.jitter_ms(8000));
                            s.lost = Some(r.cumulative_lost);
                        }
                        s.rx_packets = st.rx_packets;
                        s.rx_events = st.rx_events;
                        s.rtcp_received = st.rtcp_received;
                        s.latched = st.latched;
                        s.received = st.received.clone();
                        s.tx_packets += st.relayed_tx;
                        s.relayed_events = st.relayed_events;
                        s.relay_send_errors = st.relay_send_errors;
                        drop(st);
                        s.relayed_packets = me.relayed_rx.load(Ordering::Relaxed);
                        let _ = tx.send(s);
                    }
                    RtpCmd::BridgeTo(p) => {
                        let _ = p.send(RtpCmd::Peer(me.clone()));
                    }
                    RtpCmd::Peer(p) => {
                        // A worker relaying to the old peer lets go first; the hand-off below
                        // starts again with the new one.
                        reclaim(id, &relay, &sock, &mut afd).await;
                        peer = Some(p);
                    }
                    RtpCmd::Collect(spec, reply) => {
                        let mut c = Collector::new(Instant::now(), spec);
                        let mut done = None;
                        for d in std::mem::take(&mut type_ahead).chars() {
                            if done.is_none() {
                                done = c.on_digit(Instant::now(), d);
                            } else if type_ahead.len() < MAX_TYPE_AHEAD {
                                type_ahead.push(d);
                            }
                        }
                        match done {
                            Some(r) => { let _ = reply.send(r); }
                            None => collect = Some((c, reply)),
                        }
                    }
                    RtpCmd::Cpd(params, early) => {
                        cpd = Some(CpdRun { cpd: Cpd::new(params), early, reported: false });
                    }
                    RtpCmd::Close(last) => {
                        if let Some(run) = cpd.as_mut().filter(|r| !r.reported) {
                            run.cpd.finish();
                            run.reported = true;
                            let _ = events.send(LegEvent::Cpd { result: cpd_result(&run.cpd) });
                        }
                        if let Some((mut c, reply)) = collect.take() {
                            let _ = reply.send(c.hangup());
                        }
                        let bye = {
                            let mut st = me.lock();
                            st.sock = None;
                            match (st.session.as_mut(), rtcp_remote) {
                                (Some(sess), Some(dest)) => sess
                                    .write_bye(media_now(origin), ntp_now(), Some("hangup"), &mut out)
                                    .ok()
                                    .map(|n| (n, dest)),
                                _ => None,
                            }
                        };
                        if let (Some((n, dest)), Some(s)) = (bye, rtcp.as_ref())
                            && let Some(b) = out.get(..n)
                        {
                            let _ = s.send_to(b, dest).await;
                        }
                        if let Some(ev) = last {
                            let _ = events.send(ev);
                        }
                        break;
                    }
                }
            }
            Some(ev) = relayed_rx.recv() => {
                // A telephone event a relay worker received (and relayed): DTMF is ours to report.
                // A malformed event is the receiver's to drop.
                let _ = dtmf_rx.push(ev.at, &ev.header, &ev.payload);
                dirty = true;
            }
            r = rtcp_recv => {
                dirty = true;
                if let Ok((n, src)) = r
                    && let Some(data) = rbuf.get(..n)
                {
                    let mut st = me.lock();
                    if let Some(sess) = st.session.as_mut()
                        && sess.handle_rtcp(media_now(origin), data).is_ok()
                    {
                        st.rtcp_received += 1;
                        rtcp_remote = Some(src);
                    }
                }
            }
            r = rtp_ready => {
                let Ok(mut ready) = r else { continue };
                // One clock reading per wake-up, for every datagram drained in it.
                let now_i = Instant::now();
                let now_m = media_time(origin, now_i);
                for _ in 0..MAX_DRAIN {
                    let (n, src) = match ready.try_io(|a| a.get_ref().0.recv_from(&mut buf)) {
                        Ok(Ok(r)) => r,
                        // An error (an ICMP report, say) is consumed by the read: go on.
                        Ok(Err(_)) => continue,
                        // Nothing more: readiness cleared.
                        Err(_) => break,
                    };
                    let Some(data) = buf.get(..n) else { continue };
                    match me.receive(now_i, now_m, src, data, peer.as_deref(), &mut relay_bufs) {
                        Received::Nothing => {}
                        Received::Rtcp => dirty = true,
                        Received::Event { header, payload } => {
                            let _ = dtmf_rx.push(now_m, &header, payload);
                            dirty = true;
                        }
                        Received::Audio(payload, from_law) => {
                            // Decoding costs: only for in-band DTMF (a leg that is not bridged,
                            // or one collecting digits) and a CPD still listening.
                            let detect = peer.is_none() || collect.is_some();
                            let feed_cpd = cpd.as_ref().is_some_and(|r| !r.reported && (answered || r.early));
                            if detect || feed_cpd {
                                let n = from_law.decode_slice(payload.get(..payload.len().min(pcm.len())).unwrap_or(&[]), &mut pcm);
                                let samples = pcm.get(..n).unwrap_or(&[]);
                                if detect && let Some(d) = inband.push(samples) {
                                    digits.push((d, "inband"));
                                    dirty = true;
                                }
                                if feed_cpd && let Some(run) = cpd.as_mut() {
                                    run.cpd.push(samples);
                                    dirty = true;
                                }
                            }
                        }
                    }
                }
            }
        }
        if !dirty {
            // Only relayed or recorded audio: no deadline moved, nothing to report or send.
            continue;
        }
        let now_m = media_now(origin);
        // DTMF: RFC 4733 digits end (or time out), in-band digits were noted above.
        dtmf_rx.handle_timeout(now_m);
        while let Some(ev) = dtmf_rx.poll_event() {
            if let DtmfEvent::Ended { digit, .. } = ev {
                digits.push((digit, "rfc4733"));
            }
        }
        for (digit, source) in digits.drain(..) {
            let _ = events.send(LegEvent::Dtmf { digit, source });
            match collect.as_mut() {
                Some((c, _)) => {
                    if let Some(r) = c.on_digit(Instant::now(), digit)
                        && let Some((_, reply)) = collect.take()
                    {
                        let _ = reply.send(r);
                    }
                }
                None if type_ahead.len() < MAX_TYPE_AHEAD => type_ahead.push(digit),
                None => {}
            }
        }
        if let Some((c, _)) = collect.as_mut()
            && let Some(r) = c.handle_timeout(Instant::now())
            && let Some((_, reply)) = collect.take()
        {
            let _ = reply.send(r);
        }
        // CPD: report once, when nothing more will come (a machine waits for its beep).
        if let Some(run) = cpd.as_mut().filter(|r| !r.reported) {
            // The result object carries the decision and the beep: the events themselves are
            // only drained.
            while run.cpd.poll_event().is_some() {}
            if run.cpd.is_done() {
                run.reported = true;
                let _ = events.send(LegEvent::Cpd {
                    result: cpd_result(&run.cpd),
                });
            }
        }
        if let Some(p) = player.as_mut().filter(|_| !held) {
            for _ in 0..8 {
                // Stamp under the lock, send after it (the bridged leg's task may be relaying).
                let packet = {
                    let mut guard = me.lock();
                    let st = &mut *guard;
                    match (st.session.as_mut(), st.remote) {
                        (Some(sess), Some(dest)) => match p.poll_packet(now_m, sess, &mut out) {
                            Some(Ok(n)) => Some((n, dest)),
                            _ => None,
                        },
                        _ => None,
                    }
                };
                let Some((n, dest)) = packet else { break };
                if let Some(b) = out.get(..n) {
                    // Non-blocking: a full socket buffer drops this frame, as the network could.
                    if sock.send_to(b, dest).is_ok() {
                        stats.tx_packets += 1;
                    }
                }
            }
        }
        // RTCP: SR/RR when due; the peer's reports fill the stats.
        let report = {
            let mut guard = me.lock();
            match (guard.session.as_mut(), rtcp.as_ref(), rtcp_remote) {
                (Some(sess), Some(_), Some(dest)) if now_m >= sess.poll_timeout() => {
                    sess.poll_rtcp(now_m, ntp_now(), &mut out).map(|n| (n, dest))
                }
                _ => None,
            }
        };
        if let (Some((n, dest)), Some(s)) = (report, rtcp.as_ref())
            && let Some(b) = out.get(..n)
        {
            let _ = s.send_to(b, dest).await;
            stats.rtcp_sent += 1;
        }
        let last_rx = {
            let mut st = me.lock();
            if let Some(sess) = st.session.as_mut() {
                while let Some(ev) = sess.poll_event() {
                    if let SessionEvent::RemoteReport {
                        fraction_lost,
                        cumulative_lost,
                        jitter_ms,
                        round_trip,
                        ..
                    } = ev
                    {
                        stats.remote_fraction_lost = Some(fraction_lost);
                        stats.remote_cumulative_lost = Some(cumulative_lost);
                        stats.remote_jitter_ms = Some(jitter_ms);
                        if let Some(rtt) = round_trip {
                            stats.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                        }
                    }
                }
            }
            st.last_rx
        };
        if answered && !held && last_rx.elapsed() > no_rtp_timeout {
            let _ = int_tx.send(Internal::MediaTimeout(id));
            answered = false;
        }
        // Hand the socket to the relay engine while only relaying is left to do here; take it
        // back when the audio is needed again.
        let relay_only = peer.is_some() && collect.is_none() && cpd.as_ref().is_none_or(|r| r.reported);
        match (&relay, &peer) {
            (Some(engine), Some(p)) if relay_only && afd.is_some() => {
                // Deregister from the task's reactor first: nothing may read it twice.
                afd = None;
                let h = Handoff {
                    sock: sock.clone(),
                    me: me.clone(),
                    peer: p.clone(),
                    origin,
                    events: relayed_tx.clone(),
                };
                if !engine.add(id.0, h).await {
                    afd = watch(&sock).ok();
                }
            }
            _ if !relay_only => reclaim(id, &relay, &sock, &mut afd).await,
            _ => {}
        }
    }
    if afd.is_none()
        && let Some(engine) = &relay
    {
        engine.remove(id.0).await;
    }
    // A bridged peer keeps our `LegTx`, not our port.
    me.lock().sock = None;
}

/// Takes the RTP socket back from the relay engine (when a worker has it), and registers it
/// with the task's reactor again.
async fn reclaim(
    id: LegId,
    relay: &Option<Arc<RelayEngine>>,
    sock: &Arc<UdpSocket>,
    afd: &mut Option<AsyncFd<RtpFd>>,
) {
    if afd.is_some() {
        return;
    }
    if let Some(engine) = relay {
        engine.remove(id.0).await;
    }
    *afd = watch(sock).ok();
}

/// Registers the RTP socket with the task's reactor.
fn watch(sock: &Arc<UdpSocket>) -> std::io::Result<AsyncFd<RtpFd>> {
    // SAFETY: `RtpFd` owns a reference to the socket, so its descriptor stays open and refers to
    // the same socket for as long as the `AsyncFd` (which holds the `RtpFd`) lives, and
    // `as_raw_fd` always returns that descriptor.
    unsafe { AsyncFd::register(RtpFd(sock.clone())) }.map_err(std::io::Error::from)
}
