//! An agent whose phone registers (a `sip_account`) can be ready only while the phone is
//! registered with the server's own registrar, and becomes not ready when the registration
//! goes away: the real server with `[telephony]`, REGISTER with digest authentication over
//! UDP loopback, the agents API over HTTP.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use boomerang::call::registrar::answer_challenge;
use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use boomerang::sip::msg::{self, Method, RequestBuilder};
use serde_json::Value;

const CONFIG: &str = r#"
[telephony]
listen = "127.0.0.1:0"
realm = "boomerang"

[[sip_accounts]]
user = "agent1"
password = "s3cret"

[[agent]]
id = "bill"
name = "Billy"
sip_account = "agent1"
groups = ["Billing"]

[[agent]]
id = "desk"
name = "Desk phone"
uri = "sip:desk@127.0.0.1:5999"
groups = ["Billing"]
"#;

const DEADLINE: Duration = Duration::from_secs(20);

/// REGISTER for agent1 (with `auth` when answering a challenge); the response's code and, for
/// a 401, its MD5 challenge.
fn register(
    sock: &UdpSocket,
    server: SocketAddr,
    cseq: u32,
    expires: u32,
    auth: Option<&str>,
) -> (u16, String) {
    let local = sock.local_addr().expect("local addr");
    let mut b = RequestBuilder::new(&Method::Register, &format!("sip:{server}"))
        .header(
            "Via",
            format!("SIP/2.0/UDP {local};branch=z9hG4bK{}", msg::token(10)),
        )
        .header("Max-Forwards", 70)
        .header("From", format!("<sip:agent1@{server}>;tag=phone"))
        .header("To", format!("<sip:agent1@{server}>"))
        .header("Call-ID", "phone-registration")
        .header("CSeq", format!("{cseq} REGISTER"))
        .header("Contact", format!("<sip:agent1@{local}>"))
        .header("Expires", expires);
    if let Some(a) = auth {
        b = b.header("Authorization", a);
    }
    sock.send_to(&b.body(None, b""), server).expect("send");
    let mut buf = vec![0u8; 65_536];
    let (n, _) = sock.recv_from(&mut buf).expect("a response to REGISTER");
    let resp = msg::parse(&buf[..n]).expect("the response parses");
    let challenge = resp
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| v.clone())
        .find(|v| v.contains("MD5"))
        .unwrap_or_default();
    (resp.code().unwrap_or(0), challenge)
}

/// A full registration (401 challenge, then the digest); `expires` 0 unregisters.
fn registered(sock: &UdpSocket, server: SocketAddr, cseq: u32, expires: u32) -> u16 {
    let (code, challenge) = register(sock, server, cseq, expires, None);
    assert_eq!(code, 401, "challenged first");
    let auth = answer_challenge(
        &challenge,
        &Method::Register,
        &format!("sip:{server}"),
        "agent1",
        "s3cret",
    )
    .expect("an answer to the challenge");
    register(sock, server, cseq + 1, expires, Some(&auth)).0
}

async fn action(http: &reqwest::Client, base: &str, agent: &str, what: &str) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/v1/agents/{agent}/{what}"))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn state(http: &reqwest::Client, base: &str, agent: &str) -> Value {
    http.get(format!("{base}/api/v1/agents/{agent}"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_ready_only_while_the_phone_is_registered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::parse(CONFIG, "phones.toml").expect("valid config");
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.storage = StorageConfig::Sqlite {
        path: dir.path().join("db.sqlite"),
    };
    let server = Server::builder(config).start().await.expect("server starts");
    let sip = server.telephony().expect("telephony").local_addr();
    let base = format!("http://{}", server.local_addr());
    let http = reqwest::Client::new();

    // Not registered yet: the agent may log in but not become ready; no state change.
    assert_eq!(action(&http, &base, "bill", "login").await.0, 200);
    let (code, body) = action(&http, &base, "bill", "ready").await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"], "phone_not_registered", "{body}");
    assert_eq!(state(&http, &base, "bill").await["state"], "NOT_READY");
    // An agent on a static URI has nothing to register.
    assert_eq!(action(&http, &base, "desk", "login").await.0, 200);
    assert_eq!(action(&http, &base, "desk", "ready").await.0, 200);

    let phone = UdpSocket::bind("127.0.0.1:0").expect("bind");
    phone
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let code = tokio::task::spawn_blocking({
        let phone = phone.try_clone().expect("clone");
        move || registered(&phone, sip, 1, 300)
    })
    .await
    .expect("register");
    assert_eq!(code, 200, "registered with the digest");
    let (code, body) = action(&http, &base, "bill", "ready").await;
    assert_eq!((code, body["state"].as_str()), (200, Some("READY")), "{body}");

    // The phone unregisters: the agent is set not ready (within the watch period).
    let code = tokio::task::spawn_blocking(move || registered(&phone, sip, 3, 0))
        .await
        .expect("unregister");
    assert_eq!(code, 200, "unregistered");
    let start = Instant::now();
    let bill = loop {
        let s = state(&http, &base, "bill").await;
        if s["state"] != "READY" {
            break s;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "still ready after the registration ended: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (bill["state"].as_str(), bill["reason"].as_str()),
        (Some("NOT_READY"), Some("phone unregistered")),
        "{bill}"
    );
    assert_eq!(state(&http, &base, "desk").await["state"], "READY");
    server.shutdown().await;
}

#[test]
fn an_agent_on_an_unknown_sip_account_is_a_configuration_error() {
    let text = CONFIG.replace("sip_account = \"agent1\"", "sip_account = \"ghost\"");
    let e = Config::parse(&text, "phones.toml")
        .expect_err("refused")
        .to_string();
    assert!(e.contains("agent[0].sip_account") && e.contains("ghost"), "{e}");
}
