//! Routing end to end through the real HTTP server: a callback started with the REST API with
//! its own `_target`, in a service whose `_urs_virtual_queue` is set, waits in that queue; an
//! agent matching the target who goes ready through `/api/v1/agents/...` is reserved for it
//! (and a ready agent who does not match is not), as the agents API and the callback's
//! check-queue-position show. Both modes: agent first (`_wait_for_agent=true`) and customer
//! first (`_wait_for_agent=false`), with the test playing the call layer's part through
//! `Routing::customer_ready` and `Routing::on_agent_call`.

use std::time::Duration;

use boomerang::config::{Config, StorageConfig};
use boomerang::routing::{AgentCallEvent, AgentCallOutcome, RoutingEvent};
use boomerang::server::Server;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const CONFIG: &str = r#"
[routing]
reservation_timeout_secs = 600

[[agent]]
id = "bill"
name = "Billy"
skills = { Billing = 8, English = 1 }
groups = ["Billing"]

[[agent]]
id = "loan"
name = "Lena"
skills = { Loans = 5, English = 1 }
groups = ["Loans"]

[service.agent-first]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 120
_urs_virtual_queue = "VQ_Billing"
_wait_for_agent = true

[service.confirm-timeout]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 120
_urs_virtual_queue = "VQ_Confirm"
_wait_for_agent = true
_agent_transfer_confirm_timeout = 1
_max_transfer_to_agent_attempts = 1

[service.customer-first]
_type = "ors"
_service = "callback"
_ttl = 86400
_request_execution_time_buffer = 120
_urs_virtual_queue = "VQ_Customer_First"
_wait_for_agent = false
"#;

struct Env {
    server: Server,
    base: String,
    http: reqwest::Client,
}

impl Env {
    async fn start(dir: &tempfile::TempDir) -> Env {
        let mut config = Config::parse(CONFIG, "routing-e2e.toml").unwrap();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.storage = StorageConfig::Sqlite {
            path: dir.path().join("db.sqlite"),
        };
        let server = Server::builder(config).start().await.unwrap();
        let base = format!("http://{}", server.local_addr());
        Env {
            server,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    async fn agent_action(&self, id: &str, action: &str) -> Value {
        let (st, body) = self.post(&format!("/api/v1/agents/{id}/{action}"), None).await;
        assert_eq!(st, 200, "{id} {action}: {body}");
        body
    }

    /// Starts an immediate callback; returns its ID.
    async fn callback(&self, service: &str, number: &str, target: &str) -> String {
        let (st, body) = self
            .post(
                &format!("/genesys/1/service/callback/{service}"),
                Some(json!({"_customer_number": number, "_target": target})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        body["_id"].as_str().unwrap().to_string()
    }

    async fn position(&self, id: &str) -> Value {
        let (st, body) = self
            .post(&format!("/genesys/1/service/{id}/check-queue-position"), None)
            .await;
        assert_eq!(st, 200, "{body}");
        body
    }

    async fn agent(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/agents/{id}")).await
    }
}

/// The next routing event, waited for with a generous bound.
async fn next_event(events: &mut UnboundedReceiver<RoutingEvent>) -> RoutingEvent {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("a routing event within 30 s")
        .expect("routing is running")
}

#[tokio::test]
async fn agent_first_a_matching_agent_going_ready_is_reserved_for_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&dir).await;
    let routing = env
        .server
        .callbacks()
        .engine()
        .routing()
        .expect("the server routes");
    let mut events = routing.subscribe();

    let id = env
        .callback("agent-first", "5550101", "Billing>5 & English")
        .await;
    let pos = env.position(&id).await;
    assert_eq!(
        (pos["_position"].as_i64(), pos["_total_waiting"].as_i64()),
        (Some(1), Some(1)),
        "{pos}"
    );
    assert_eq!(pos["skill_expression"], "Billing>5 & English", "{pos}");
    let session = pos["ors_session_id"].as_str().expect("a session").to_string();
    assert_eq!(
        routing.core().place(&session).map(|p| p.queue),
        Some("VQ_Billing".to_string()),
        "the service's virtual queue"
    );

    // The agent who does not match goes ready first: not reserved.
    env.agent_action("loan", "login").await;
    assert_eq!(env.agent_action("loan", "ready").await["state"], "READY");
    env.agent_action("bill", "login").await;
    let bill = env.agent_action("bill", "ready").await;
    assert_eq!(bill["state"], "RESERVED", "{bill}");
    assert_eq!(bill["session_id"].as_str(), Some(session.as_str()));
    let loan = env.agent("loan").await;
    assert_eq!(
        (loan["state"].as_str(), loan.get("session_id")),
        (Some("READY"), None),
        "{loan}"
    );
    let list = env.get("/api/v1/agents").await;
    let states: Vec<(String, String)> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or_default().to_string(),
                a["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("bill".to_string(), "RESERVED".to_string()),
            ("loan".to_string(), "READY".to_string())
        ]
    );
    // The callback still waits (at the head) until the agent answers.
    let pos = env.position(&id).await;
    assert_eq!(pos["_position"].as_i64(), Some(1), "{pos}");
    assert_eq!(pos["ors_session_id"].as_str(), Some(session.as_str()));

    // The call layer's side: the reservation event names the agent call to report on.
    let call = next_event(&mut events).await.agent_call().expect("a reservation");
    assert_eq!(
        (call.session_id.as_str(), call.agent_id.as_str()),
        (session.as_str(), "bill")
    );
    assert_eq!(
        routing.on_agent_call(&call, AgentCallEvent::Answered),
        Ok(AgentCallOutcome::Connected)
    );
    assert_eq!(env.agent("bill").await["state"], "BUSY");
    assert_eq!(
        routing.on_agent_call(&call, AgentCallEvent::HungUp),
        Ok(AgentCallOutcome::Ended)
    );
    let bill = env.agent("bill").await;
    assert_eq!(
        (bill["state"].as_str(), bill["handled"].as_i64()),
        (Some("READY"), Some(1)),
        "{bill}"
    );
    assert!(bill["average_handle_secs"].as_f64().is_some(), "{bill}");
    let queues = env.get("/api/v1/routing/queues").await;
    let vq = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "VQ_Billing")
        .cloned()
        .unwrap();
    assert_eq!(
        (vq["waiting"].as_i64(), vq["distributed"].as_i64()),
        (Some(0), Some(1)),
        "{vq}"
    );
    env.server.shutdown().await;
}

#[tokio::test]
async fn customer_first_the_customer_is_dialled_then_the_matching_agent_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&dir).await;
    let routing = env
        .server
        .callbacks()
        .engine()
        .routing()
        .expect("the server routes");
    let mut events = routing.subscribe();
    for a in ["bill", "loan"] {
        env.agent_action(a, "login").await;
        env.agent_action(a, "ready").await;
    }

    let id = env
        .callback("customer-first", "5550102", "Loans@Stat_Server.GA")
        .await;
    let pos = env.position(&id).await;
    let session = pos["ors_session_id"].as_str().expect("a session").to_string();
    assert_eq!(pos["_position"].as_i64(), Some(1), "{pos}");

    // A matching agent is ready: routing asks for the customer to be dialled, nobody is
    // reserved yet.
    assert_eq!(
        next_event(&mut events).await,
        RoutingEvent::DialCustomer {
            session_id: session.clone()
        }
    );
    assert_eq!(env.agent("loan").await["state"], "READY");
    assert_eq!(env.agent("bill").await["state"], "READY");

    // The customer is on the line: the matching agent (not the other ready one) is reserved.
    routing.customer_ready(&session).unwrap();
    let loan = env.agent("loan").await;
    assert_eq!(
        (loan["state"].as_str(), loan["session_id"].as_str()),
        (Some("RESERVED"), Some(session.as_str())),
        "{loan}"
    );
    assert_eq!(env.agent("bill").await["state"], "READY");
    let RoutingEvent::Reserved { agent_id, .. } = next_event(&mut events).await else {
        panic!("expected a reservation")
    };
    assert_eq!(agent_id, "loan");
    let pos = env.position(&id).await;
    assert_eq!(pos["_position"].as_i64(), Some(1), "{pos}");
    env.server.shutdown().await;
}

#[tokio::test]
async fn the_callbacks_own_confirm_timeout_releases_a_silent_agent_and_ends_the_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(&dir).await;
    let routing = env
        .server
        .callbacks()
        .engine()
        .routing()
        .expect("the server routes");
    let mut events = routing.subscribe();
    let id = env.callback("confirm-timeout", "5550103", "Billing@SS.GA").await;
    let session = env.position(&id).await["ors_session_id"]
        .as_str()
        .expect("a session")
        .to_string();
    env.agent_action("bill", "login").await;
    assert_eq!(env.agent_action("bill", "ready").await["state"], "RESERVED");
    let RoutingEvent::Reserved { agent_id, .. } = next_event(&mut events).await else {
        panic!("expected a reservation")
    };
    assert_eq!(agent_id, "bill");
    // Nobody reports an answer: the service's 1 s `_agent_transfer_confirm_timeout` (not the
    // routing configuration's 600 s) releases the agent, and with one attempt allowed the
    // callback leaves the queue.
    let released = next_event(&mut events).await;
    assert!(
        matches!(&released, RoutingEvent::Released { session_id, agent_id, .. }
            if *session_id == session && agent_id == "bill"),
        "{released:?}"
    );
    assert_eq!(
        next_event(&mut events).await,
        RoutingEvent::AttemptsExhausted {
            session_id: session.clone()
        }
    );
    let bill = env.agent("bill").await;
    assert_eq!(
        bill["state"], "NOT_READY",
        "a silent agent is set not ready: {bill}"
    );
    env.server.shutdown().await;
}
