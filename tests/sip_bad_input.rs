//! Hostile SIP over UDP against a running telephony task: each malformed datagram is dropped or
//! answered with the right 4xx/5xx, counted in the endpoint counters, and the endpoint keeps
//! serving (a valid OPTIONS after each is answered, and it is the next thing that comes back).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use boomerang::call::driver::{DriverConfig, Telephony};
use boomerang::sip::endpoint::Counters;
use boomerang::sip::msg;
use boomerang::sip::transaction::Timers;
use tokio::net::UdpSocket;

const DEADLINE: Duration = Duration::from_secs(30);

struct Peer {
    sock: UdpSocket,
    to: SocketAddr,
    t: Telephony,
    n: u32,
}

impl Peer {
    async fn new() -> Peer {
        let mut cfg = DriverConfig::loopback();
        cfg.timers = Timers {
            t1: Duration::from_millis(50),
            t2: Duration::from_millis(400),
            t4: Duration::from_millis(500),
        };
        let (t, _task) = Telephony::start(cfg).await.expect("telephony");
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        Peer {
            sock,
            to: t.local_addr(),
            t,
            n: 0,
        }
    }

    fn me(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    /// A well-formed request; `edit` may break it.
    fn request(&mut self, method: &str, edit: impl Fn(String) -> String) -> Vec<u8> {
        self.n += 1;
        let text = format!(
            "{method} sip:cb@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbad{n}\r\nMax-Forwards: 70\r\n\
             From: <sip:x@127.0.0.1>;tag=f{n}\r\nTo: <sip:cb@127.0.0.1>\r\nCall-ID: bad-{n}\r\nCSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n",
            to = self.to,
            me = self.me(),
            n = self.n
        );
        edit(text).into_bytes()
    }

    async fn send(&self, b: &[u8]) {
        self.sock.send_to(b, self.to).await.expect("send");
    }

    async fn recv(&self) -> msg::Msg {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = tokio::time::timeout(DEADLINE, self.sock.recv_from(&mut buf))
            .await
            .expect("a response in time")
            .expect("recv");
        msg::parse(&buf[..n]).expect("our response parses")
    }

    /// Sends `b`, then a valid OPTIONS; returns what came back before the OPTIONS' 200.
    async fn probe(&mut self, b: &[u8]) -> Vec<msg::Msg> {
        self.send(b).await;
        let opts = self.request("OPTIONS", |s| s);
        let call_id = format!("bad-{}", self.n);
        self.send(&opts).await;
        let mut before = Vec::new();
        loop {
            let m = self.recv().await;
            if m.call_id == call_id {
                assert_eq!(m.code(), Some(200));
                return before;
            }
            before.push(m);
        }
    }

    async fn counters(&self) -> Counters {
        self.t.counters().await.expect("counters").0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_dropped_or_refused_and_counted() {
    let mut p = Peer::new().await;
    // Missing mandatory header (Call-ID): dropped, counted.
    let b = p.request("INVITE", |s| s.replace(&format!("Call-ID: bad-{}\r\n", 1), ""));
    let got = p.probe(&b).await;
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(p.counters().await.parse_errors, 1);
    // Content-Length beyond the datagram.
    let b = p.request("INVITE", |s| {
        s.replace("Content-Length: 0", "Content-Length: 500")
    });
    let got = p.probe(&b).await;
    assert!(got.is_empty(), "{got:?}");
    // Huge headers: more header lines than we accept.
    let filler: String = (0..300).map(|i| format!("X-F{i}: y\r\n")).collect();
    let b = p.request("INVITE", |s| {
        s.replacen("Max-Forwards", &format!("{filler}Max-Forwards"), 1)
    });
    let got = p.probe(&b).await;
    assert!(got.is_empty(), "{got:?}");
    // CSeq method that is not the request's method, and a CSeq that is not a number.
    let b = p.request("INVITE", |s| s.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"));
    let got = p.probe(&b).await;
    assert!(got.is_empty(), "{got:?}");
    let b = p.request("OPTIONS", |s| s.replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS"));
    let got = p.probe(&b).await;
    assert!(got.is_empty(), "{got:?}");
    let c = p.counters().await;
    assert_eq!(c.parse_errors, 5, "{c:?}");

    // Unknown method: 501.
    let b = p.request("FROB", |s| s);
    let got = p.probe(&b).await;
    assert_eq!(got.iter().map(|m| m.code()).collect::<Vec<_>>(), vec![Some(501)]);
    // Max-Forwards 0: 483 (a BYE: a rejected INVITE would want an ACK).
    let b = p.request("BYE", |s| s.replace("Max-Forwards: 70", "Max-Forwards: 0"));
    let got = p.probe(&b).await;
    assert_eq!(got.iter().map(|m| m.code()).collect::<Vec<_>>(), vec![Some(483)]);
    // BYE for a dialog that does not exist (forged or stale tags): 481.
    let b = p.request("BYE", |s| {
        s.replace("To: <sip:cb@127.0.0.1>", "To: <sip:cb@127.0.0.1>;tag=forged")
    });
    let got = p.probe(&b).await;
    assert_eq!(got.iter().map(|m| m.code()).collect::<Vec<_>>(), vec![Some(481)]);
    let c = p.counters().await;
    assert_eq!(c.unknown_methods, 1, "{c:?}");
    assert_eq!(c.too_many_hops, 1, "{c:?}");
    assert_eq!(c.no_dialog, 1, "{c:?}");
    assert_eq!(c.parse_errors, 5, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invites_gets_a_final_answer_each_and_leaks_nothing() {
    let mut p = Peer::new().await;
    const N: usize = 500;
    let mut invites = Vec::new();
    for _ in 0..N {
        let b = p.request("INVITE", |s| s);
        invites.push((format!("z9hG4bKbad{}", p.n), b));
    }
    let branches: HashSet<String> = invites.iter().map(|(br, _)| br.clone()).collect();
    for (_, b) in &invites {
        p.send(b).await;
    }
    // Every INVITE gets a final response (no route point answers here: 480). Like a real UAC we
    // retransmit what got no answer, since the flood may overflow a socket buffer.
    let mut answered = HashSet::new();
    let start = std::time::Instant::now();
    while answered.len() < N {
        assert!(start.elapsed() < DEADLINE, "{} of {N} answered", answered.len());
        let mut buf = vec![0u8; 65_536];
        let Ok(r) = tokio::time::timeout(Duration::from_millis(500), p.sock.recv_from(&mut buf)).await else {
            for (br, b) in &invites {
                if !answered.contains(br) {
                    p.send(b).await;
                }
            }
            continue;
        };
        let (n, _) = r.expect("recv");
        let m = msg::parse(&buf[..n]).expect("our response parses");
        if m.code().is_some_and(|c| c >= 300) {
            answered.insert(m.top_via.branch.clone());
            // ACK the final response (same branch: it belongs to the INVITE transaction).
            let ack = format!(
                "ACK sip:cb@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nMax-Forwards: 70\r\nFrom: {}\r\n\
                 To: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
                p.to,
                p.me(),
                m.top_via.branch,
                m.from.raw,
                m.to.raw,
                m.call_id,
                m.cseq
            );
            p.send(ack.as_bytes()).await;
        }
    }
    assert_eq!(answered, branches);
    // Still serving; no leg, no port held.
    let b = p.request("OPTIONS", |s| s);
    let call_id = format!("bad-{}", p.n);
    p.send(&b).await;
    loop {
        let m = p.recv().await;
        if m.call_id == call_id {
            assert_eq!(m.code(), Some(200));
            break;
        }
    }
    let (c, legs, ports) = p.t.counters().await.expect("counters");
    assert_eq!((legs, ports), (0, 0));
    assert_eq!(c.parse_errors, 0);
}
