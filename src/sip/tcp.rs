//! SIP over TCP (RFC 3261 §18): the tokio side of the stream transport. The telephony task owns
//! a [`TcpTransport`]: it accepts connections on the SIP listen port, opens connections to
//! peers on demand (the first message to a peer whose top Via says TCP), sends responses back
//! on the connection their request came on (connections are keyed by the peer's address), and
//! hands complete messages up, cut by the sans-IO [`Framer`].
//!
//! Each connection is one task owning its socket and framer. A framing fault (bad or missing
//! Content-Length, headers or body beyond the limits) closes the connection; so does silence in
//! both directions for `idle_timeout`. Connections beyond `max_connections` (incoming and
//! outgoing together) are refused. Every close is reported with its reason so the endpoint can
//! count it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::transport::{FrameLimits, Framer};

/// Messages queued for one connection before further ones are dropped.
const WRITE_QUEUE: usize = 256;
/// Messages and closes queued from the connections to the telephony task.
const EVENT_QUEUE: usize = 1024;

/// Limits of the TCP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// Most open connections (accepted and opened together).
    pub max_connections: usize,
    /// A connection with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// Giving up on an outgoing connection.
    pub connect_timeout: Duration,
    pub limits: FrameLimits,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            limits: FrameLimits::default(),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed it.
    Eof,
    /// A framing fault: the stream could not be cut into messages.
    BadFraming,
    /// Nothing sent or received for `idle_timeout`.
    Idle,
    /// Over `max_connections`: refused (incoming) or not opened (outgoing).
    Refused,
    /// A read or write error.
    Io,
    /// An outgoing connection could not be opened (what was queued for it is lost).
    ConnectFailed,
}

/// What the transport hands up.
#[derive(Debug)]
pub enum TcpEvent {
    /// One complete message from `peer` (not parsed yet).
    Message {
        peer: SocketAddr,
        data: Vec<u8>,
    },
    Closed {
        peer: SocketAddr,
        reason: CloseReason,
    },
}

enum Internal {
    Opened {
        peer: SocketAddr,
        id: u64,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Message {
        peer: SocketAddr,
        data: Vec<u8>,
    },
    Closed {
        peer: SocketAddr,
        id: u64,
        reason: CloseReason,
    },
}

/// The TCP side of the SIP transport, owned by the telephony task.
pub struct TcpTransport {
    cfg: TcpConfig,
    conns: HashMap<SocketAddr, (u64, mpsc::Sender<Vec<u8>>)>,
    tx: mpsc::Sender<Internal>,
    rx: mpsc::Receiver<Internal>,
    permits: Arc<Semaphore>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
    listening: Option<SocketAddr>,
    accept_task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        if let Some(t) = self.accept_task.take() {
            t.abort();
        }
    }
}

impl TcpTransport {
    /// Listens on `addr` (the SIP listen address, same port as UDP). If the port cannot be
    /// bound for TCP the transport still opens outgoing connections; [`Self::listening`] says.
    pub async fn listen(addr: SocketAddr, cfg: TcpConfig) -> TcpTransport {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let mut t = TcpTransport {
            cfg,
            conns: HashMap::new(),
            tx,
            rx,
            permits: Arc::new(Semaphore::new(cfg.max_connections)),
            next_id: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            listening: None,
            accept_task: None,
        };
        if let Ok(l) = TcpListener::bind(addr).await {
            t.listening = l.local_addr().ok();
            t.accept_task = Some(tokio::spawn(accept_loop(
                l,
                cfg,
                t.tx.clone(),
                t.permits.clone(),
                t.next_id.clone(),
            )));
        }
        t
    }

    pub fn listening(&self) -> Option<SocketAddr> {
        self.listening
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Sends `bytes` to `peer` on its connection, opening one if there is none. Nothing is
    /// retransmitted over TCP: a lost connection shows up as a transaction timeout.
    pub fn send(&mut self, peer: SocketAddr, bytes: Vec<u8>) {
        let bytes = match self.conns.get(&peer) {
            Some((_, w)) => match w.try_send(bytes) {
                Ok(()) => return,
                // A peer that does not read: the message is lost like a datagram would be, and
                // the transaction timers deal with it. Memory stays bounded.
                Err(mpsc::error::TrySendError::Full(_)) => return,
                Err(mpsc::error::TrySendError::Closed(b)) => {
                    self.conns.remove(&peer);
                    b
                }
            },
            None => bytes,
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let _ = self.tx.try_send(Internal::Closed {
                peer,
                id: 0,
                reason: CloseReason::Refused,
            });
            return;
        };
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
        let _ = wtx.try_send(bytes);
        self.conns.insert(peer, (id, wtx));
        let tx = self.tx.clone();
        let cfg = self.cfg;
        tokio::spawn(async move {
            match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(peer)).await {
                Ok(Ok(s)) => connection(s, peer, id, wrx, tx, cfg, permit).await,
                _ => {
                    let _ = tx
                        .send(Internal::Closed {
                            peer,
                            id,
                            reason: CloseReason::ConnectFailed,
                        })
                        .await;
                }
            }
        });
    }

    /// The next message or close. Connection bookkeeping happens here.
    pub async fn next_event(&mut self) -> Option<TcpEvent> {
        loop {
            match self.rx.recv().await? {
                Internal::Opened { peer, id, writer } => {
                    self.conns.insert(peer, (id, writer));
                }
                Internal::Message { peer, data } => return Some(TcpEvent::Message { peer, data }),
                Internal::Closed { peer, id, reason } => {
                    if self.conns.get(&peer).is_some_and(|(cid, _)| *cid == id) {
                        self.conns.remove(&peer);
                    }
                    return Some(TcpEvent::Closed { peer, reason });
                }
            }
        }
    }
}

/// Hands a transport event to the endpoint: a message as if it were a datagram (the Via says
/// TCP, so its transactions run without retransmissions), a fault as a counter.
pub fn deliver(ep: &mut super::endpoint::Endpoint, ev: TcpEvent) {
    use super::endpoint::TransportFault;
    match ev {
        TcpEvent::Message { peer, data } => ep.handle_datagram(Instant::now(), peer, &data),
        TcpEvent::Closed { peer, reason } => match reason {
            CloseReason::ConnectFailed => ep.transport_error(peer),
            CloseReason::BadFraming => ep.note_transport_fault(TransportFault::BadFraming),
            CloseReason::Refused => {
                ep.note_transport_fault(TransportFault::Refused);
                ep.transport_error(peer);
            }
            CloseReason::Idle => ep.note_transport_fault(TransportFault::IdleClosed),
            CloseReason::Eof | CloseReason::Io => {}
        },
    }
}

async fn accept_loop(
    l: TcpListener,
    cfg: TcpConfig,
    tx: mpsc::Sender<Internal>,
    permits: Arc<Semaphore>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let Ok((stream, peer)) = l.accept().await else {
            // Out of descriptors and the like: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            let _ = tx.try_send(Internal::Closed {
                peer,
                id: 0,
                reason: CloseReason::Refused,
            });
            continue;
        };
        let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
        if tx
            .send(Internal::Opened {
                peer,
                id,
                writer: wtx,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::spawn(connection(stream, peer, id, wrx, tx.clone(), cfg, permit));
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    mut writes: mpsc::Receiver<Vec<u8>>,
    tx: mpsc::Sender<Internal>,
    cfg: TcpConfig,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let (mut r, mut w) = stream.into_split();
    let mut framer = Framer::new(cfg.limits);
    let mut buf = vec![0u8; 8192];
    let mut last = Instant::now();
    let reason = 'conn: loop {
        let idle_at = last + cfg.idle_timeout;
        tokio::select! {
            n = r.read(&mut buf) => {
                let n = match n {
                    Ok(0) => break 'conn CloseReason::Eof,
                    Ok(n) => n,
                    Err(_) => break 'conn CloseReason::Io,
                };
                last = Instant::now();
                framer.push(buf.get(..n).unwrap_or(&[]));
                loop {
                    match framer.next_message() {
                        Ok(Some(data)) => {
                            // Awaited: a peer sending faster than the telephony task reads is
                            // slowed down by TCP flow control instead of filling memory.
                            if tx.send(Internal::Message { peer, data }).await.is_err() {
                                break 'conn CloseReason::Eof;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => break 'conn CloseReason::BadFraming,
                    }
                }
            }
            m = writes.recv() => {
                let Some(bytes) = m else { break 'conn CloseReason::Eof };
                if w.write_all(&bytes).await.is_err() {
                    break 'conn CloseReason::Io;
                }
                last = Instant::now();
            }
            _ = tokio::time::sleep_until(idle_at.into()) => break 'conn CloseReason::Idle,
        }
    };
    let _ = w.shutdown().await;
    let _ = tx.send(Internal::Closed { peer, id, reason }).await;
}
