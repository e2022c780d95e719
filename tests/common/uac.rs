//! A SIPp UAC (the customer's phone calling Boomerang) for the inbound-call tests: one call of a
//! `sip-fixtures/uac_*.xml` scenario to `target`, ended (by its PID) when dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sipp::{DEADLINE, fixtures, free_port};

pub struct Uac {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Uac {
    /// Calls `service` (the Request-URI user) at `target`; `extra` adds `-key`s, `-d`, ...
    pub fn call(scenario: &str, target: SocketAddr, service: &str, extra: &[&str]) -> Uac {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mport = free_port();
        let child = Command::new("sipp")
            .current_dir(dir.path())
            .arg(target.to_string())
            .arg("-sf")
            .arg(fixtures().join(scenario))
            .args(["-s", service])
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-bind_local"])
            .args(["-m", "1", "-timeout", "30s", "-nostdin"])
            .args(["-p", &port.to_string(), "-mp", &mport.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp runs (apt-get install sip-tester)");
        Uac { child, _dir: dir }
    }

    /// Waits (off the async runtime's threads) for SIPp to end; returns its exit code.
    pub async fn wait(mut self) -> i32 {
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            while start.elapsed() < DEADLINE {
                if let Ok(Some(st)) = self.child.try_wait() {
                    return st.code().unwrap_or(-1);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("sipp did not finish");
        })
        .await
        .expect("wait task")
    }
}

impl Drop for Uac {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
