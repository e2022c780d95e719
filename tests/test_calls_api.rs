//! `POST /api/v1/test-calls` through the real server: `[telephony]` starts the SIP transport on
//! an ephemeral port, the test call goes through the configured trunk to a SIPp UAS, and
//! `GET /api/v1/test-calls/{id}` gives the leg events once it is done. Admin credentials are
//! needed when users are configured; without `[telephony]` the route answers 503 and no SIP
//! socket is opened.

use std::time::{Duration, Instant};

use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use serde_json::{Value, json};

#[path = "common/sipp.rs"]
mod sipp;
#[path = "common/uac.rs"]
mod uac;
use sipp::*;

async fn server(toml_text: &str, dir: &tempfile::TempDir) -> Server {
    let mut config = Config::parse(toml_text, "test-calls.toml").expect("valid config");
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.storage = StorageConfig::Sqlite {
        path: dir.path().join("db.sqlite"),
    };
    Server::builder(config).start().await.expect("server starts")
}

fn telephony_config(trunk: std::net::SocketAddr) -> String {
    let treatments = concat!(env!("CARGO_MANIFEST_DIR"), "/treatments");
    format!(
        r#"
[telephony]
listen = "127.0.0.1:0"
route_points = ["3000"]
treatments_dir = "{treatments}"

[[trunks]]
name = "sipp"
address = "{trunk}"
prefix = "0"
ring_timeout_s = 10

[[user]]
name = "admin"
password = "secret"
roles = ["Administrator"]

[[user]]
name = "reader"
password = "r"
roles = ["CallbackReadOnly"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_call_through_the_server_reports_its_events() {
    // SIPp answers and plays the fax tone: the events carry answered, the cpd result, hangup.
    let audio = format!("{},-1,0", fixtures().join("audio/fax-ced.ul").display());
    let mut keys = codec_keys(false);
    keys.extend(["-key", "audio", audio.as_str()]);
    let mut sipp = Sipp::uas("uas_answer_speak.xml", &keys);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&telephony_config(sipp.addr()), &dir).await;
    let sip = server
        .telephony()
        .expect("[telephony] starts the SIP transport")
        .local_addr();
    assert_ne!(sip.port(), 0);
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();
    let body = json!({"number": "600", "trunk": "sipp", "timeout_s": 3, "play": "customer_connect"});

    let r = client
        .post(format!("{base}/api/v1/test-calls"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401, "admin credentials needed");
    let r = client
        .post(format!("{base}/api/v1/test-calls"))
        .basic_auth("reader", Some("r"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403, "read-only users may not place calls");
    let r = client
        .post(format!("{base}/api/v1/test-calls"))
        .basic_auth("admin", Some("secret"))
        .json(&json!({"number": "600", "trunk": "nope"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    // `play` names a treatment in the treatments folder, never a path of the server.
    for outside in ["../Cargo.toml", "/etc/passwd", "treatments/../../x"] {
        let r = client
            .post(format!("{base}/api/v1/test-calls"))
            .basic_auth("admin", Some("secret"))
            .json(&json!({"number": "600", "trunk": "sipp", "play": outside}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 400, "play {outside}");
    }

    let r = client
        .post(format!("{base}/api/v1/test-calls"))
        .basic_auth("admin", Some("secret"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 202);
    let started: Value = r.json().await.expect("json");
    let location = started["location"].as_str().expect("location").to_string();
    assert_eq!(started["status"], "running");

    let start = Instant::now();
    let done = loop {
        assert!(start.elapsed() < DEADLINE, "the test call did not finish");
        let v: Value = client
            .get(format!("{base}{location}"))
            .basic_auth("admin", Some("secret"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        if v["status"] == "done" {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["number"], "600");
    let events = done["events"].as_array().expect("events");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"dialing"), "{kinds:?}");
    assert!(kinds.contains(&"answered"), "{kinds:?}");
    let cpd = events.iter().find(|e| e["event"] == "cpd").expect("cpd result");
    assert_eq!(cpd["class"], "fax");
    let last = events.last().expect("events");
    assert_eq!(last["event"], "hangup");
    assert_eq!(last["cause"], "local_hangup");
    assert_eq!(last["code"], 200);
    assert_eq!(sipp.wait(), 0, "SIPp: INVITE answered, our BYE received");

    // The operator's view of the SIP side: readable by any user, counters of the traffic.
    let r = client
        .get(format!("{base}/api/v1/telephony"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    let status: Value = client
        .get(format!("{base}/api/v1/telephony"))
        .basic_auth("reader", Some("r"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(status["sip"], sip.to_string(), "{status}");
    assert!(status["counters"]["datagrams"].as_u64() > Some(0), "{status}");
    assert_eq!(status["counters"]["parse_errors"], 0, "{status}");
    assert!(status["trunks"].is_object(), "{status}");

    let r = client
        .get(format!("{base}/api/v1/test-calls/999"))
        .basic_auth("admin", Some("secret"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    server.shutdown().await;
    // The SIP socket is closed with the server.
    let start = Instant::now();
    while std::net::UdpSocket::bind(sip).is_err() {
        assert!(start.elapsed() < DEADLINE, "SIP port still held after shutdown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_telephony_there_is_no_sip_transport() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server("", &dir).await;
    assert!(server.telephony().is_none());
    let base = format!("http://{}", server.local_addr());
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/test-calls"))
        .json(&json!({"number": "600"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 503);
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/telephony"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 503);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_points_of_the_configuration_reach_the_servers_sip_transport() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trunk: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let server = server(&telephony_config(trunk), &dir).await;
    let sip = server.telephony().expect("SIP transport").local_addr();
    // 3000 is a route point: nothing in the server takes inbound calls yet (the scenario
    // engine will), so it is refused at once with 480; 9999 is no route point: 404.
    let refused = uac::Uac::call("uac_route_point_480.xml", sip, "3000", &codec_keys(false));
    assert_eq!(refused.wait().await, 0, "SIPp: 480 for the route point");
    let unknown = uac::Uac::call("uac_unknown_404.xml", sip, "9999", &codec_keys(false));
    assert_eq!(unknown.wait().await, 0, "SIPp: 404 for another number");
    server.shutdown().await;
}
