//! The RTP relay engine: a few OS threads (two by default) that take over the receiving side of
//! bridged legs, so that relaying a packet costs one `recvfrom` and one `sendto` and nothing
//! else: no task wake-up, no `EAGAIN` read to re-arm readiness, no timer.
//!
//! A leg's media task hands its RTP socket to the engine while the leg is bridged and nothing
//! needs its received audio in the task (no CPD listening, no digits being collected). A worker
//! waits on a level-triggered epoll set of its legs' sockets, reads one datagram per ready
//! socket and per turn, and does with it exactly what the task would do
//! ([`LegTx::receive`]: RTP statistics, symmetric-RTP latching, recording when asked, relay to
//! the bridged leg, PCMU<->PCMA transcoded). Telephone events are relayed too, and a copy goes
//! back to the task, which reports the DTMF. The task takes its socket back (and waits until the
//! worker let go of it) when it needs the audio again, when the bridge changes or when the leg
//! ends. Each leg goes to one worker (by leg number), so its packets are handled in order.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boomerang_media::rtp::RtpHeader;
use rustix::event::epoll;
use tokio::sync::{mpsc, oneshot};

use super::media_task::{LegTx, Received, RelayBufs, media_time};

/// A telephone-event packet a worker relayed, for the leg's task (DTMF reporting).
pub(crate) struct RelayedEvent {
    pub at: boomerang_media::Time,
    pub header: RtpHeader,
    pub payload: Vec<u8>,
}

/// What a worker needs to receive and relay for one leg.
pub(crate) struct Handoff {
    pub sock: Arc<UdpSocket>,
    pub me: Arc<LegTx>,
    pub peer: Arc<LegTx>,
    pub origin: Instant,
    pub events: mpsc::UnboundedSender<RelayedEvent>,
}

enum Cmd {
    Add(u64, Box<Handoff>, oneshot::Sender<bool>),
    Remove(u64, oneshot::Sender<()>),
    Stop,
}

struct Worker {
    cmds: std_mpsc::Sender<Cmd>,
    wake: Arc<OwnedFd>,
    /// Datagrams this worker received (its own counter: no cache line shared between workers).
    received: Arc<AtomicU64>,
}

/// The engine: started lazily on the first hand-off, stopped when dropped.
pub(crate) struct RelayEngine {
    threads: usize,
    tick: Duration,
    workers: Mutex<Option<Vec<Worker>>>,
}

impl RelayEngine {
    /// An engine of `threads` workers (at least one) that look at their sockets every `tick`
    /// while they have legs (zero: they sleep in `epoll_wait` and wake for every datagram).
    pub fn new(threads: usize, tick: Duration) -> Self {
        RelayEngine {
            threads: threads.max(1),
            tick,
            workers: Mutex::new(None),
        }
    }

    fn with_worker<R>(&self, leg: u64, f: impl FnOnce(&Worker) -> R) -> std::io::Result<R> {
        let mut guard = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            let mut workers = Vec::with_capacity(self.threads);
            for i in 0..self.threads {
                workers.push(spawn_worker(i, self.tick)?);
            }
            *guard = Some(workers);
        }
        let workers = guard
            .as_ref()
            .ok_or_else(|| std::io::Error::other("relay engine stopped"))?;
        let w = workers
            .get(leg as usize % workers.len().max(1))
            .ok_or_else(|| std::io::Error::other("relay engine has no worker"))?;
        Ok(f(w))
    }

    /// Datagrams the workers received so far.
    pub fn received(&self) -> u64 {
        let guard = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard
            .iter()
            .flatten()
            .map(|w| w.received.load(Ordering::Relaxed))
            .sum()
    }

    /// Hands leg `leg`'s socket to its worker: true once the worker watches it. On false the
    /// caller keeps reading it itself.
    pub async fn add(&self, leg: u64, h: Handoff) -> bool {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .with_worker(leg, |w| {
                let ok = w.cmds.send(Cmd::Add(leg, Box::new(h), tx)).is_ok();
                poke(&w.wake);
                ok
            })
            .unwrap_or(false);
        sent && rx.await.unwrap_or(false)
    }

    /// Takes leg `leg`'s socket back: resolves once its worker no longer reads it.
    pub async fn remove(&self, leg: u64) {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .with_worker(leg, |w| {
                let ok = w.cmds.send(Cmd::Remove(leg, tx)).is_ok();
                poke(&w.wake);
                ok
            })
            .unwrap_or(false);
        if sent {
            // A worker that stopped dropped its legs (and this reply) already.
            let _ = rx.await;
        }
    }
}

impl Drop for RelayEngine {
    fn drop(&mut self) {
        let workers = self.workers.get_mut().map(Option::take).unwrap_or_default();
        for w in workers.into_iter().flatten() {
            let _ = w.cmds.send(Cmd::Stop);
            poke(&w.wake);
        }
    }
}

fn poke(fd: &OwnedFd) {
    // An eventfd counter: a failed write means it is already non-zero, so the worker wakes.
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// The epoll token of the wake-up eventfd; legs use their leg number.
const WAKE: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const MAX_EVENTS: usize = 256;

fn spawn_worker(i: usize, tick: Duration) -> std::io::Result<Worker> {
    let wake = Arc::new(rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )?);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        &*wake,
        epoll::EventData::new_u64(WAKE),
        epoll::EventFlags::IN,
    )?;
    let (tx, rx) = std_mpsc::channel();
    let w = wake.clone();
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    std::thread::Builder::new()
        .name(format!("boom-relay{i}"))
        .spawn(move || run_worker(ep, w, rx, &r, tick))?;
    Ok(Worker {
        cmds: tx,
        wake,
        received,
    })
}

/// A worker's legs by leg number, which is also their epoll token.
#[derive(Default)]
struct Legs(HashMap<u64, Handoff>);

impl Legs {
    /// Watches `h`'s socket for leg `key` (instead of any earlier hand-off of that leg).
    fn add(&mut self, ep: &OwnedFd, key: u64, h: Handoff) -> bool {
        self.remove(ep, key);
        let watched = epoll::add(
            ep,
            h.sock.as_fd(),
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN,
        );
        if watched.is_ok() {
            self.0.insert(key, h);
        }
        watched.is_ok()
    }

    fn remove(&mut self, ep: &OwnedFd, key: u64) {
        if let Some(h) = self.0.remove(&key) {
            let _ = epoll::delete(ep, h.sock.as_fd());
        }
    }
}

fn run_worker(
    ep: OwnedFd,
    wake: Arc<OwnedFd>,
    cmds: std_mpsc::Receiver<Cmd>,
    received: &AtomicU64,
    tick: Duration,
) {
    let mut legs = Legs::default();
    let mut events: Vec<epoll::Event> = Vec::with_capacity(MAX_EVENTS);
    let mut buf = vec![0u8; 2048];
    let mut bufs = RelayBufs::new();
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut next_tick = Instant::now();
    loop {
        events.clear();
        // Ticking: a look every `tick` (no sleep while the last look filled the buffer), so a
        // sender's datagram seldom has to wake this thread; idle: sleep until woken.
        let ticking = !tick.is_zero() && !legs.0.is_empty();
        if ticking {
            let now = Instant::now();
            if now < next_tick {
                std::thread::sleep(next_tick - now);
            }
            next_tick = Instant::now().max(next_tick) + tick;
        }
        let timeout = ticking.then_some(&zero);
        match epoll::wait(&ep, rustix::buffer::spare_capacity(&mut events), timeout) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let now_i = Instant::now();
        let mut n_received = 0;
        for ev in &events {
            let token = ev.data.u64();
            if token == WAKE {
                let mut b = [0u8; 8];
                let _ = rustix::io::read(&*wake, &mut b);
                continue;
            }
            let Some(h) = legs.0.get(&token) else {
                continue;
            };
            // Level-triggered: one datagram per ready socket and turn, no EAGAIN read.
            let Ok((n, src)) = h.sock.recv_from(&mut buf) else {
                continue;
            };
            let Some(data) = buf.get(..n) else { continue };
            n_received += 1;
            let now_m = media_time(h.origin, now_i);
            if let Received::Event { header, payload } =
                h.me.receive(now_i, now_m, src, data, Some(&h.peer), &mut bufs)
            {
                let _ = h.events.send(RelayedEvent {
                    at: now_m,
                    header,
                    payload: payload.to_vec(),
                });
            }
        }
        received.fetch_add(n_received, Ordering::Relaxed);
        // Commands after the datagrams: a removal acknowledged here is final for this turn.
        loop {
            match cmds.try_recv() {
                Ok(Cmd::Add(key, h, reply)) => {
                    let ok = legs.add(&ep, key, *h);
                    let _ = reply.send(ok);
                }
                Ok(Cmd::Remove(key, reply)) => {
                    legs.remove(&ep, key);
                    let _ = reply.send(());
                }
                Ok(Cmd::Stop) | Err(std_mpsc::TryRecvError::Disconnected) => return,
                Err(std_mpsc::TryRecvError::Empty) => break,
            }
        }
    }
}
