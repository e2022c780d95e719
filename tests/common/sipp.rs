//! The SIPp harness shared by the SIP integration tests: a SIPp process playing one scenario of
//! `sip-fixtures/` on a free loopback port, ended (by its PID) when dropped.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sip-fixtures")
}

/// A free UDP port pair base on loopback (even, with the next port also free).
pub fn free_port() -> u16 {
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
pub struct Sipp {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// How SIPp talks: over UDP or TCP (`-t t1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Sipp {
    /// SIPp listening on a free port and playing `scenario` (a UAS), over UDP.
    pub fn uas(scenario: &str, extra: &[&str]) -> Sipp {
        Sipp::start(scenario, Transport::Udp, None, extra)
    }

    /// SIPp playing `scenario` over `transport`: listening on a free port, and calling `remote`
    /// when given (a UAC). A listening SIPp is ready when it holds its port.
    pub fn start(scenario: &str, transport: Transport, remote: Option<SocketAddr>, extra: &[&str]) -> Sipp {
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let mport = free_port();
            let mut cmd = Command::new("sipp");
            cmd.current_dir(dir.path());
            if let Some(r) = remote {
                cmd.arg(r.to_string());
            }
            if transport == Transport::Tcp {
                cmd.args(["-t", "t1"]);
            }
            cmd.arg("-sf")
                .arg(fixtures().join(scenario))
                .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-bind_local"])
                .args(["-m", "1", "-timeout", "30s", "-nostdin"])
                .args(["-p", &port.to_string(), "-mp", &mport.to_string()])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("sipp runs (apt-get install sip-tester)");
            if remote.is_some() {
                return Sipp {
                    child,
                    port,
                    _dir: dir,
                };
            }
            // Ready when it holds its port (or gone if the port was taken meanwhile).
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                let held = match transport {
                    Transport::Udp => UdpSocket::bind(("127.0.0.1", port)).is_err(),
                    Transport::Tcp => TcpListener::bind(("127.0.0.1", port)).is_err(),
                };
                if held {
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

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for SIPp to end; returns its exit code.
    pub fn wait(&mut self) -> i32 {
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

pub fn codec_keys(pcma: bool) -> Vec<&'static str> {
    if pcma {
        vec!["-key", "codec_pt", "8", "-key", "codec_name", "PCMA"]
    } else {
        vec!["-key", "codec_pt", "0", "-key", "codec_name", "PCMU"]
    }
}
