//! An agent phone (baresip) registers with digest authentication at Boomerang's registrar; a
//! call to its registered contact is answered automatically, RTP flows both ways, and the
//! call is torn down with BYE.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boomerang::call::driver::{Dial, DriverConfig, Telephony};
use boomerang::call::leg::{Cause, LegEvent, uri_socket_addr};
use boomerang::call::registrar::user_of;
use boomerang_media::treatment::{PlayMode, Treatment};

const DEADLINE: Duration = Duration::from_secs(60);

struct Baresip(Child);

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_agent_registers_with_digest_and_answers() {
    let mut cfg = DriverConfig::loopback();
    cfg.realm = "boomerang".into();
    cfg.accounts = vec![("agent1".into(), "s3cret".into())];
    let (t, _task) = Telephony::start(cfg).await.expect("telephony");
    let registrar = t.local_addr();

    let dir = tempfile::tempdir().expect("tempdir");
    let bport = free_port();
    let config = format!(
        "poll_method\t\tpoll\nsip_listen\t\t127.0.0.1:{bport}\nnet_interface\t\t127.0.0.1\n\
audio_player\t\tnull,null\naudio_alert\t\tnull,null\naudio_source\t\tausine,440\n\
ausrc_srate\t\t48000\nausrc_channels\t\t2\nmodule_path\t\t/usr/lib/baresip/modules\n\
module\t\t\tg711.so\nmodule\t\t\tausine.so\nmodule_app\t\taccount.so\nmodule_app\t\tmenu.so\n"
    );
    std::fs::write(dir.path().join("config"), config).expect("config");
    let account = format!(
        "<sip:agent1@{registrar}>;auth_pass=s3cret;regint=60;answermode=auto;audio_codecs=PCMA/8000/1\n"
    );
    std::fs::write(dir.path().join("accounts"), account).expect("accounts");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-t", "40"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("baresip runs (apt-get install baresip-core)");
    let _phone = Baresip(child);

    // The phone registers (after a 401 challenge): its contact appears.
    let start = Instant::now();
    let contact = loop {
        let c = t.contacts("agent1").await.expect("contacts");
        if let Some(c) = c.into_iter().next() {
            break c;
        }
        assert!(start.elapsed() < DEADLINE, "baresip did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (counters, _, _) = t.counters().await.expect("counters");
    assert!(counters.datagrams >= 2, "challenge round trip happened");
    let dest = uri_socket_addr(&contact).expect("contact is an IP URI");
    assert_eq!(dest.port(), bport);

    let (leg, mut rx) = t
        .dial(Dial {
            number: user_of(&contact),
            dest,
            domain: dest.to_string(),
            caller: "callback".into(),
            p_asserted_identity: None,
            ring_timeout: Duration::from_secs(20),
            auth: None,
        })
        .await
        .expect("dial agent");
    let answered = loop {
        let e = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("event")
            .expect("open");
        if matches!(e, LegEvent::Answered { .. } | LegEvent::Hangup { .. }) {
            break e;
        }
    };
    assert!(
        matches!(
            answered,
            LegEvent::Answered {
                codec: Some("PCMA"),
                ..
            }
        ),
        "{answered:?}"
    );
    let tr = Arc::new(Treatment::from_pcm("tone", vec![1000i16; 8000]));
    t.play(leg, tr, PlayMode::Loop).await.expect("play");
    // The phone's 440 Hz source arrives; our treatment goes out.
    let start = Instant::now();
    loop {
        let s = t.media_stats(leg).await.expect("stats");
        if s.rx_packets >= 25 && s.tx_packets >= 25 {
            assert!(s.latched.is_some());
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no RTP both ways: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.hangup(leg).await.expect("hangup");
    let end = loop {
        let e = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("event")
            .expect("open");
        if let LegEvent::Hangup { cause, code, .. } = e {
            break (cause, code);
        }
    };
    assert_eq!(end, (Cause::LocalHangup, Some(200)));
}
