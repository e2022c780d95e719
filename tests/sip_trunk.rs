//! Trunks against SIPp: digest authentication on a 401 challenge, failover to the second trunk
//! on 503, OPTIONS keepalive (up, and down when nobody answers).

use std::net::UdpSocket;
use std::time::Duration;

use boomerang::call::driver::{DriverConfig, LegId, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use boomerang::sip::config::{self, TelephonyConfig};
use boomerang::sip::transaction::Timers;
use tokio::sync::mpsc::UnboundedReceiver;

#[path = "common/sipp.rs"]
mod sipp;
use sipp::*;

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
