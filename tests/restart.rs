//! A crash and a restart of the real `boomerang` binary: every accepted callback is still there
//! with its state, live sessions come back, and the timers armed before the crash still fire.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CONFIG: &str = r#"
[http]
listen = "127.0.0.1:0"
[storage]
path = "DB_PATH"
[callback]
returned-keys = "_callback_reason,_ors_session_id"
purge_grace = 3
[service.rs]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 1
[service.short]
_type = "ors"
_service = "callback"
_ttl = 4
_request_execution_time_buffer = 1
"#;

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start boomerang");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let base = line
        .trim()
        .strip_prefix("boomerang listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Running { child, base }
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn create(client: &reqwest::Client, base: &str, service: &str, body: Value) -> String {
    let r = client
        .post(format!("{base}/genesys/1/service/callback/{service}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls R5 until `pred` holds (at most 15 s).
async fn wait_for(client: &reqwest::Client, url: &str, pred: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(client, url.to_string()).await;
        if pred(status, &body) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached; last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_survive_a_crash_and_their_timers_still_fire() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("boomerang.db");
    let config = dir.path().join("boomerang.toml");
    std::fs::write(&config, CONFIG.replace("DB_PATH", db.to_str().unwrap())).unwrap();
    let client = reqwest::Client::new();

    let server = start(&config);
    let base = server.base.clone();
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let wakes = create(
        &client,
        &base,
        "rs",
        json!({"_customer_number": "100", "_desired_time": soon}),
    )
    .await;
    let waits = create(
        &client,
        &base,
        "rs",
        json!({"_customer_number": "101", "_desired_time": later, "usr_note": "keep me"}),
    )
    .await;
    let queued = create(&client, &base, "rs", json!({"_customer_number": "102"})).await;
    let done = create(&client, &base, "rs", json!({"_customer_number": "103", "_callback_state": "COMPLETED", "_callback_reason": "AGENT_CONNECTED"})).await;
    let expires = create(&client, &base, "short", json!({"_customer_number": "104"})).await;
    let url = |service: &str, id: &str| format!("{base}/genesys/1/service/callback/{service}/{id}");
    let (_, before) = get(&client, url("rs", &queued)).await;
    let session = before["_ors_session_id"].as_str().unwrap().to_string();

    // Crash: SIGKILL, no shutdown.
    drop(server);

    let server = start(&config);
    let base = server.base.clone();
    let url = |service: &str, id: &str| format!("{base}/genesys/1/service/callback/{service}/{id}");
    let (status, body) = get(&client, url("rs", &waits)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["_callback_state"], "SCHEDULED");
    let (_, body) = get(&client, url("rs", &done)).await;
    assert_eq!(
        (
            body["_callback_state"].as_str(),
            body["_callback_reason"].as_str()
        ),
        (Some("COMPLETED"), Some("AGENT_CONNECTED"))
    );
    let (_, body) = get(&client, url("rs", &queued)).await;
    assert_eq!(body["_callback_state"], "QUEUED");
    assert_eq!(body["_ors_session_id"], session.as_str());
    // The live session is back in its queue.
    let r = client
        .post(format!("{base}/genesys/1/service/{queued}/check-queue-position"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let position: Value = r.json().await.unwrap();
    assert_eq!(position["_position"], 1);
    assert_eq!(position["ors_session_id"], session.as_str());

    // The wake timer armed before the crash fires.
    wait_for(&client, &url("rs", &wakes), |_, b| {
        b["_callback_state"] == "QUEUED"
    })
    .await;
    // The short-lived callback expires unfinished, then is purged after the grace.
    let (_, body) = wait_for(&client, &url("short", &expires), |_, b| {
        b["_callback_state"] == "COMPLETED"
    })
    .await;
    assert_eq!(body["_callback_reason"], "FAIL_TIMEOUT_TTL");
    wait_for(&client, &url("short", &expires), |s, b| {
        s == 400 && b["code"] == 40030
    })
    .await;
    // Nothing else was lost.
    let (status, _) = get(&client, url("rs", &waits)).await;
    assert_eq!(status, 200);
}
