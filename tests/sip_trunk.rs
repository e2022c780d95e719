//! Trunks against SIPp: digest authentication on a 401 challenge, failover to the second trunk
//! on 503, OPTIONS keepalive (up, and down when nobody answers).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boomerang::call::driver::{DriverConfig, LegId, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use boomerang::sip::config::{self, TelephonyConfig};
use boomerang::sip::transaction::Timers;
use tokio::sync::mpsc::UnboundedReceiver;

const DEADLINE: Duration = Duration::from_secs(60);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-fixtures")
}

/// A free UDP port pair base on loopback (even, with the next port also free).
fn free_port() -> u16 {
    for _ in 0..200 {
        let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(a) = s.local_addr() else { continue };
        let p = a.port() & !1;
        drop(s);
        if p > 1024
            && UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port");
}

/// One SIPp process; killed (by its own PID) when dropped.
struct Sipp {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Sipp {
    fn uas(scenario: &str, extra: &[&str]) -> Sipp {
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let mport = free_port();
            let mut cmd = Command::new("sipp");
            cmd.current_dir(dir.path())
                .arg("-sf")
                .arg(fixtures().join(scenario))
                .args([
                    "-i",
                    "127.0.0.1",
                    "-mi",
                    "127.0.0.1",
                    "-bind_local",
                    "-m",
                    "1",
                    "-timeout",
                    "30s",
                    "-nostdin",
                ])
                .args(["-p", &port.to_string(), "-mp", &mport.to_string()])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("sipp runs (apt-get install sip-tester)");
            // Ready when it holds its port (or gone if the port was taken meanwhile).
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                    return Sipp {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sipp did not start");
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for SIPp to end; returns its exit code.
    fn wait(&mut self) -> i32 {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sipp did not finish");
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn codec_keys(pcma: bool) -> Vec<&'static str> {
    if pcma {
        vec!["-key", "codec_pt", "8", "-key", "codec_name", "PCMA"]
    } else {
        vec!["-key", "codec_pt", "0", "-key", "codec_name", "PCMU"]
    }
}

fn trunks(toml_text: &str) -> TelephonyConfig {
    config::parse(&toml::from_str(toml_text).expect("toml")).expect("valid trunks")
}

async fn telephony() -> Telephony {
    let mut cfg = DriverConfig::loopback();
    // Short timers so that an unanswered OPTIONS gives up quickly (F = 64*T1 = 3.2 s).
    cfg.timers = Timers {
        t1: Duration::from_millis(50),
        t2: Duration::from_millis(400),
        t4: Duration::from_millis(500),
    };
    Telephony::start(cfg).await.expect("telephony").0
}

async fn until_hangup(rx: &mut UnboundedReceiver<LegEvent>) -> Vec<LegEvent> {
    let mut v = Vec::new();
    loop {
        let e = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("event in time")
            .expect("open");
        let done = matches!(e, LegEvent::Hangup { .. });
        v.push(e);
        if done {
            return v;
        }
    }
}

async fn until_answered(rx: &mut UnboundedReceiver<LegEvent>) -> (Vec<LegEvent>, LegId) {
    let mut v = Vec::new();
    let mut leg = None;
    loop {
        let e = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("event in time")
            .expect("open");
        if let LegEvent::Dialing { leg: l, .. } = e {
            leg = Some(LegId(l));
        }
        let done = matches!(e, LegEvent::Answered { .. } | LegEvent::Hangup { .. });
        v.push(e);
        if done {
            return (v, leg.expect("dialing event first"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_digest_401_is_answered_with_credentials() {
    let mut keys = codec_keys(false);
    keys.extend(["-key", "user", "acct", "-key", "pass", "pw1"]);
    let mut sipp = Sipp::uas("uas_401_answer.xml", &keys);
    let cfg = trunks(&format!(
        "[[trunks]]\nname = \"main\"\naddress = \"{}\"\nusername = \"acct\"\npassword = \"pw1\"\nprefix = \"9\"\n",
        sipp.addr()
    ));
    let t = telephony().await;
    let mut rx = t.dial_with_failover(&cfg, "main", "0600").await.expect("dial");
    let (ev, leg) = until_answered(&mut rx).await;
    assert!(
        matches!(ev.last(), Some(LegEvent::Answered { .. })),
        "SIPp verified our digest: {ev:?}"
    );
    t.hangup(leg).await.expect("hangup");
    let ev = until_hangup(&mut rx).await;
    assert!(matches!(
        ev.last(),
        Some(LegEvent::Hangup {
            cause: Cause::LocalHangup,
            ..
        })
    ));
    assert_eq!(sipp.wait(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_503_fails_over_to_the_backup_trunk() {
    let mut first = Sipp::uas("uas_503.xml", &codec_keys(false));
    let mut backup = Sipp::uas("uas_answer.xml", &codec_keys(true));
    let cfg = trunks(&format!(
        "[[trunks]]\nname = \"main\"\naddress = \"{}\"\nfailover = \"backup\"\n\
[[trunks]]\nname = \"backup\"\naddress = \"{}\"\n",
        first.addr(),
        backup.addr()
    ));
    let t = telephony().await;
    let mut rx = t.dial_with_failover(&cfg, "main", "0600").await.expect("dial");
    let ev = until_hangup(&mut rx).await;
    assert_eq!(
        ev.first(),
        Some(&LegEvent::Dialing {
            leg: 1,
            trunk: "main".into()
        }),
        "{ev:?}"
    );
    assert!(matches!(
        ev.last(),
        Some(LegEvent::Hangup {
            cause: Cause::Failover,
            code: Some(503),
            ..
        })
    ));
    let (ev, leg) = until_answered(&mut rx).await;
    assert!(
        matches!(ev.first(), Some(LegEvent::Dialing { trunk, .. }) if trunk == "backup"),
        "{ev:?}"
    );
    assert!(matches!(
        ev.last(),
        Some(LegEvent::Answered {
            codec: Some("PCMA"),
            ..
        })
    ));
    t.hangup(leg).await.expect("hangup");
    until_hangup(&mut rx).await;
    assert_eq!(first.wait(), 0);
    assert_eq!(backup.wait(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_keepalive_sees_a_trunk_up_and_a_silent_one_down() {
    let mut sipp = Sipp::uas("uas_options.xml", &codec_keys(false));
    let t = telephony().await;
    assert_eq!(
        t.options(sipp.addr()).await.expect("options"),
        Some(200),
        "trunk up"
    );
    assert_eq!(sipp.wait(), 0);
    // Nobody listens on this port: timer F ends the OPTIONS without a response.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    assert_eq!(t.options(addr).await.expect("options"), None, "trunk down");
}
