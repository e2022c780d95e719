//! The parts of the server are wired together: agents configured in the server's TOML file
//! are served by the agent-state API of the running server, and a waiting callback's queue
//! position counts the agents logged in.

use boomerang::config::{Config, StorageConfig};
use boomerang::server::Server;
use serde_json::{Value, json};

const CONFIG: &str = r#"
[routing]
wrap_up_secs = 5

[[agent]]
id = "a1"
name = "Alice"
groups = ["Callback_Agents"]

[[agent]]
id = "a2"
name = "Bob"
groups = ["Callback_Agents"]

[service.now]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 120
_urs_virtual_queue = "VQ_Callback"
"#;

#[tokio::test]
async fn configured_agents_are_served_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::parse(CONFIG, "wiring.toml").unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.storage = StorageConfig::Sqlite {
        path: dir.path().join("db.sqlite"),
    };
    let server = Server::builder(config).start().await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();

    let agents: Value = client
        .get(format!("{base}/api/v1/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["a1", "a2"], "{agents}");

    let r = client
        .post(format!("{base}/api/v1/agents/a1/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "NOT_READY");

    let r = client
        .post(format!("{base}/genesys/1/service/callback/now"))
        .json(&json!({"_customer_number": "5115"}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let position: Value = client
        .post(format!("{base}/genesys/1/service/{id}/check-queue-position"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(position["_position"], 1, "{position}");
    assert_eq!(position["agents_logged_in"], 1, "{position}");
    server.shutdown().await;
}

#[test]
fn a_bad_agent_section_stops_the_configuration() {
    let e = Config::parse("[[agent]]\nname = \"no id\"\n", "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bad.toml: [routing]"), "{e}");
}
