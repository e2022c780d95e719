//! Trunk signalling extras against SIPp: REGISTER with a 401 challenge and refresh, the OPTIONS
//! keepalive marking a trunk down when SIPp stops answering (and failover skipping it), a
//! reliable 183 that must be PRACKed (RFC 3262), and session timers (RFC 4028: 422 retry with
//! the larger Min-SE, refresh by UPDATE).

use std::time::{Duration, Instant};

use boomerang::call::driver::{DriverConfig, LegId, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use boomerang::call::trunks::RegState;
use boomerang::sip::config::{self, TelephonyConfig};
use boomerang::sip::transaction::Timers;
use tokio::sync::mpsc::UnboundedReceiver;

#[path = "common/sipp.rs"]
mod sipp;
use sipp::*;

fn trunks(toml_text: &str) -> TelephonyConfig {
    config::parse(&toml::from_str(toml_text).expect("toml")).expect("valid trunks")
}

async fn telephony(cfg: &TelephonyConfig) -> Telephony {
    let mut d = DriverConfig::loopback();
    // Short timers so that an unanswered OPTIONS gives up quickly (F = 64*T1 = 3.2 s).
    d.timers = Timers {
        t1: Duration::from_millis(50),
        t2: Duration::from_millis(400),
        t4: Duration::from_millis(500),
    };
    d.trunks = cfg.trunks.clone();
    Telephony::start(d).await.expect("telephony").0
}

async fn next(rx: &mut UnboundedReceiver<LegEvent>) -> LegEvent {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("event in time")
        .expect("open")
}

/// Events up to and including the first that matches `stop`.
async fn until(rx: &mut UnboundedReceiver<LegEvent>, stop: impl Fn(&LegEvent) -> bool) -> Vec<LegEvent> {
    let mut v = Vec::new();
    loop {
        let e = next(rx).await;
        let done = stop(&e) || matches!(e, LegEvent::Hangup { .. });
        v.push(e);
        if done {
            return v;
        }
    }
}

fn leg_of(ev: &[LegEvent]) -> LegId {
    ev.iter()
        .find_map(|e| match e {
            LegEvent::Dialing { leg, .. } => Some(LegId(*leg)),
            _ => None,
        })
        .expect("dialing event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_registers_with_digest_and_refreshes() {
    let mut sipp = Sipp::uas(
        "uas_register_401.xml",
        &["-key", "user", "acct", "-key", "pass", "pw1"],
    );
    let cfg = trunks(&format!(
        "[[trunks]]\nname = \"reg\"\naddress = \"{}\"\nusername = \"acct\"\npassword = \"pw1\"\n\
         register = true\nregister_expires_s = 60\n",
        sipp.addr()
    ));
    let t = telephony(&cfg).await;
    let _upkeep = t.start_trunk_upkeep(&cfg);
    // SIPp grants 2 s, so the refresh comes about 1 s later; SIPp then grants 3600 s and ends.
    assert_eq!(sipp.wait(), 0, "SIPp verified both digests and saw the refresh");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let st = t.trunk_states();
        let reg = st.get("reg").map(|s| s.registration.clone());
        if reg == Some(RegState::Registered { expires_s: 3600 }) {
            break;
        }
        assert!(Instant::now() < deadline, "registration state: {reg:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_marks_a_silent_trunk_down_and_failover_skips_it() {
    // SIPp answers two OPTIONS, then exits: later keepalives time out.
    let mut main = Sipp::uas("uas_options.xml", &["-m", "2"]);
    let mut backup = Sipp::uas("uas_answer.xml", &codec_keys(false));
    let cfg = trunks(&format!(
        "[[trunks]]\nname = \"main\"\naddress = \"{}\"\noptions_interval_s = 1\noptions_failures = 2\n\
         failover = \"backup\"\n[[trunks]]\nname = \"backup\"\naddress = \"{}\"\n",
        main.addr(),
        backup.addr()
    ));
    let t = telephony(&cfg).await;
    let _upkeep = t.start_trunk_upkeep(&cfg);
    let deadline = Instant::now() + DEADLINE;
    let mut saw_up = false;
    loop {
        let st = t.trunk_states().get("main").cloned().expect("main monitored");
        if st.up && st.last_code == Some(200) {
            saw_up = true;
        }
        if !st.up {
            assert!(st.consecutive_failures >= 2, "{st:?}");
            assert_eq!(st.last_code, None);
            break;
        }
        assert!(Instant::now() < deadline, "never down: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_up, "up while SIPp answered");
    assert_eq!(main.wait(), 0);
    // A call through "main" goes straight to the backup trunk.
    let mut rx = t.dial_with_failover(&cfg, "main", "0600").await.expect("dial");
    let ev = until(&mut rx, |e| matches!(e, LegEvent::Answered { .. })).await;
    assert!(
        matches!(ev.first(), Some(LegEvent::Dialing { trunk, .. }) if trunk == "backup"),
        "{ev:?}"
    );
    assert!(matches!(ev.last(), Some(LegEvent::Answered { .. })), "{ev:?}");
    t.hangup(leg_of(&ev)).await.expect("hangup");
    until(&mut rx, |_| false).await;
    assert_eq!(backup.wait(), 0);
    // A trunk answering again on the same address is up again after one answered OPTIONS.
    let mut again = SippOnPort::start("uas_options.xml", main.addr().port());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let st = t.trunk_states().get("main").cloned().expect("main monitored");
        if st.up {
            assert_eq!((st.consecutive_failures, st.last_code), (0, Some(200)));
            break;
        }
        assert!(Instant::now() < deadline, "never up again: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(again.wait(), 0);
    // Silent again: SIPp answered its one OPTIONS and exited; down after two failures.
    let deadline = Instant::now() + DEADLINE;
    while t.trunk_states().get("main").is_some_and(|s| s.up) {
        assert!(Instant::now() < deadline, "never down again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_183_is_pracked() {
    let mut sipp = Sipp::uas("uas_100rel.xml", &codec_keys(false));
    let cfg = trunks(&format!(
        "[[trunks]]\nname = \"t\"\naddress = \"{}\"\noffer_100rel = true\n",
        sipp.addr()
    ));
    let t = telephony(&cfg).await;
    let mut rx = t.dial_with_failover(&cfg, "t", "0600").await.expect("dial");
    let ev = until(&mut rx, |e| matches!(e, LegEvent::Answered { .. })).await;
    assert!(
        ev.iter().any(|e| matches!(e, LegEvent::EarlyMedia { .. })),
        "{ev:?}"
    );
    assert!(matches!(ev.last(), Some(LegEvent::Answered { .. })), "{ev:?}");
    t.hangup(leg_of(&ev)).await.expect("hangup");
    let end = until(&mut rx, |_| false).await;
    assert!(
        matches!(
            end.last(),
            Some(LegEvent::Hangup {
                cause: Cause::LocalHangup,
                code: Some(200),
                ..
            })
        ),
        "{end:?}"
    );
    assert_eq!(sipp.wait(), 0, "SIPp got a PRACK with RAck: 1 <cseq> INVITE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timer_422_then_refresh_by_update() {
    let mut sipp = Sipp::uas("uas_session_timer.xml", &codec_keys(false));
    let cfg = trunks(&format!(
        "[[trunks]]\nname = \"t\"\naddress = \"{}\"\nsession_expires_s = 90\nmin_se_s = 90\n",
        sipp.addr()
    ));
    let t = telephony(&cfg).await;
    let mut rx = t.dial_with_failover(&cfg, "t", "0600").await.expect("dial");
    let ev = until(&mut rx, |e| matches!(e, LegEvent::Answered { .. })).await;
    assert!(
        matches!(ev.last(), Some(LegEvent::Answered { .. })),
        "422 was retried: {ev:?}"
    );
    // SIPp answers with a 2 s interval, waits for our UPDATE (due after 1 s), then hangs up.
    let end = until(&mut rx, |_| false).await;
    assert!(
        matches!(
            end.last(),
            Some(LegEvent::Hangup {
                cause: Cause::RemoteHangup,
                ..
            })
        ),
        "{end:?}"
    );
    assert_eq!(
        sipp.wait(),
        0,
        "SIPp saw Session-Expires: 120 after its 422, and the UPDATE"
    );
}

/// SIPp on a given UDP port (the shared harness picks its own): ended by its PID when dropped.
struct SippOnPort(std::process::Child);

impl SippOnPort {
    fn start(scenario: &str, port: u16) -> SippOnPort {
        let child = std::process::Command::new("sipp")
            .arg("-sf")
            .arg(fixtures().join(scenario))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-bind_local"])
            .args(["-m", "1", "-timeout", "30s", "-nostdin"])
            .args(["-p", &port.to_string(), "-mp", &free_port().to_string()])
            .current_dir(std::env::temp_dir())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sipp runs");
        SippOnPort(child)
    }

    fn wait(&mut self) -> i32 {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(st)) = self.0.try_wait() {
                return st.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sipp did not finish");
    }
}

impl Drop for SippOnPort {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
