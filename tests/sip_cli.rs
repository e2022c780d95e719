//! `boomerang call NUMBER --config FILE`: the real binary places a call through a trunk (SIPp),
//! prints the leg events as JSON lines and exits 0 on a clean call, 1 on a failed one.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn run_call(sipp: &Sipp, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("boomerang.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[trunks]]\nname = \"test\"\naddress = \"{}\"\nprefix = \"0\"\nring_timeout_s = 10\n",
            sipp.addr()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .arg("call")
        .arg("600")
        .arg("--config")
        .arg(&cfg)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("boomerang runs");
    let start = Instant::now();
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code().unwrap_or(-1);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("boomerang call did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        use std::io::Read;
        let _ = so.read_to_string(&mut out);
    }
    let events = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (code, events)
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn call_command_answered_call_exits_0_with_json_events() {
    let mut sipp = Sipp::uas("uas_answer.xml", &codec_keys(false));
    let treatment = Path::new(env!("CARGO_MANIFEST_DIR")).join("treatments");
    let wav = std::fs::read_dir(&treatment).ok().and_then(|mut d| {
        d.find_map(|e| {
            e.ok()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        })
    });
    let play: Vec<String> = match &wav {
        Some(p) => vec!["--play".into(), p.display().to_string()],
        None => Vec::new(),
    };
    let mut args: Vec<&str> = play.iter().map(String::as_str).collect();
    args.extend(["--timeout", "3"]);
    let (code, events) = run_call(&sipp, &args);
    let k = kinds(&events);
    assert_eq!(code, 0, "{events:?}");
    assert_eq!(k.first().map(String::as_str), Some("dialing"));
    assert!(
        k.contains(&"ringing".to_string()) && k.contains(&"answered".to_string()),
        "{k:?}"
    );
    let last = events.last().expect("events");
    assert_eq!(last["event"], "hangup");
    assert_eq!(last["cause"], "local_hangup");
    assert_eq!(last["code"], 200);
    assert_eq!(sipp.wait(), 0);
}

#[test]
fn call_command_busy_exits_1_with_the_sip_code() {
    let mut sipp = Sipp::uas("uas_busy.xml", &codec_keys(false));
    let (code, events) = run_call(&sipp, &[]);
    assert_eq!(code, 1);
    let last = events.last().expect("events");
    assert_eq!(last["event"], "hangup");
    assert_eq!(last["cause"], "busy");
    assert_eq!(last["code"], 486);
    assert_eq!(last["reason"], "Busy Here");
    assert_eq!(sipp.wait(), 0);
}
