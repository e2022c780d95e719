//! The agent-state REST API, the routing read endpoints (queue statistics, cached urs-stat
//! EWT service) and the engine whose sessions wait in routing's virtual queues.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use boomerang::callback::engine::{Engine, Session, SessionTable};
use boomerang::clock::ManualClock;
use boomerang::config::EwtSource;
use boomerang::routing::config::AgentConfig;
use boomerang::routing::router::PhoneRegistry;
use boomerang::routing::{Routing, RoutingConfig, RoutingEvent, WaitEstimator};
use serde_json::Value;

const S: i64 = 1000;
const T0: i64 = 1_700_000_000_000;

#[derive(Default)]
struct Phones(Mutex<BTreeSet<String>>);

impl PhoneRegistry for Phones {
    fn is_registered(&self, agent: &AgentConfig) -> bool {
        self.0.lock().unwrap().contains(&agent.id)
    }
}

const CONFIG: &str = r#"
[routing]
ewt_method = "urs"
[routing.ewt_service.ewt-vq]
queue = "VQ"
caching_policy = 30
[[agent]]
id = "a1"
name = "Alice"
groups = ["Billing"]
[[agent]]
id = "a2"
groups = ["Billing"]
"#;

fn routing(clock: &ManualClock, phones: Arc<Phones>) -> Arc<Routing> {
    let cfg = RoutingConfig::from_table(&CONFIG.parse::<toml::Table>().unwrap()).unwrap();
    Routing::new(cfg, Arc::new(clock.clone()), phones)
}

async fn serve(routing: Arc<Routing>) -> String {
    let app: axum::Router = boomerang::api::agents::routes(routing);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<&str>,
) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn agent_state_changes_over_rest() {
    let clock = ManualClock::new(T0);
    let phones = Arc::new(Phones::default());
    let base = serve(routing(&clock, phones.clone())).await;
    let c = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    let (st, body) = call(&c, post.clone(), format!("{base}/api/v1/agents/a1/ready"), None).await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"], "illegal_state_change");
    assert!(
        body["message"].as_str().unwrap().contains("while LOGGED_OUT"),
        "{body}"
    );

    let (st, body) = call(&c, post.clone(), format!("{base}/api/v1/agents/a1/login"), None).await;
    assert_eq!((st, body["state"].as_str()), (200, Some("NOT_READY")));
    let (st, body) = call(&c, post.clone(), format!("{base}/api/v1/agents/a1/ready"), None).await;
    assert_eq!((st, body["error"].as_str()), (409, Some("phone_not_registered")));
    phones.0.lock().unwrap().insert("a1".into());
    let (st, body) = call(&c, post.clone(), format!("{base}/api/v1/agents/a1/ready"), None).await;
    assert_eq!((st, body["state"].as_str()), (200, Some("READY")));

    clock.advance(5 * S);
    let (st, body) = call(
        &c,
        post.clone(),
        format!("{base}/api/v1/agents/a1/not-ready"),
        Some(r#"{"reason":"lunch"}"#),
    )
    .await;
    assert_eq!(
        (st, body["state"].as_str(), body["reason"].as_str()),
        (200, Some("NOT_READY"), Some("lunch"))
    );
    clock.advance(7 * S);
    let (st, body) = call(&c, get.clone(), format!("{base}/api/v1/agents"), None).await;
    assert_eq!(st, 200);
    let a1 = &body["agents"][0];
    assert_eq!(
        (a1["id"].as_str(), a1["name"].as_str()),
        (Some("a1"), Some("Alice"))
    );
    assert_eq!(a1["time_in_state_secs"], 7);
    assert_eq!(body["agents"][1]["state"], "LOGGED_OUT");

    for (url, body, status, kind) in [
        ("/api/v1/agents/nobody/login", None, 404, "unknown_agent"),
        ("/api/v1/agents/a1/dance", None, 404, "unknown_action"),
        ("/api/v1/agents/a1/not-ready", Some("[1,2"), 400, "bad_request"),
        (
            "/api/v1/agents/a1/not-ready",
            Some(r#"{"reason":[1]}"#),
            400,
            "bad_request",
        ),
    ] {
        let (st, b) = call(&c, post.clone(), format!("{base}{url}"), body).await;
        assert_eq!((st, b["error"].as_str()), (status, Some(kind)), "{url}: {b}");
    }
    let (_, body) = call(&c, get.clone(), format!("{base}/api/v1/agents/a1"), None).await;
    assert_eq!(
        (body["state"].as_str(), body["reason"].as_str()),
        (Some("NOT_READY"), Some("lunch"))
    );
    let (st, body) = call(&c, post, format!("{base}/api/v1/agents/a1/logout"), None).await;
    assert_eq!((st, body["state"].as_str()), (200, Some("LOGGED_OUT")));
}

fn session(id: &str, priority: i64, accepted_at: i64) -> Session {
    Session {
        id: format!("s-{id}"),
        callback_id: id.into(),
        service: "svc".into(),
        queue: "VQ".into(),
        priority,
        accepted_at,
        wait_for_agent: true,
        agent_preview: false,
        routing: Default::default(),
    }
}

#[tokio::test]
async fn engine_sessions_wait_in_routing_and_get_agents_reserved() {
    let clock = ManualClock::new(T0);
    let phones = Arc::new(Phones::default());
    phones.0.lock().unwrap().insert("a1".into());
    let routing = routing(&clock, phones);
    let mut events = routing.subscribe();
    let engine = SessionTable::with_routing(routing.clone());
    engine.start(session("x", 0, T0)).await.unwrap();
    engine.start(session("y", 3, T0 + S)).await.unwrap();
    let p = engine.position("s-y").unwrap();
    assert_eq!((p.position, p.total_waiting, p.agents_logged_in), (1, 2, Some(0)));
    assert_eq!(p.ewt_secs, None, "no history yet");
    assert_eq!(routing.ewt_secs(&EwtSource::VirtualQueue("VQ".into())), None);

    // An agent becomes ready: the head session (higher priority) gets it, exactly once.
    let ((), _) = routing.with(|core, now| {
        core.login("a1", now).unwrap();
        core.ready("a1", routing.phones(), now).unwrap();
    });
    let ev = events.try_recv().unwrap();
    let RoutingEvent::Reserved {
        session_id,
        agent_id,
        reservation,
    } = ev
    else {
        panic!("{ev:?}")
    };
    assert_eq!((session_id.as_str(), agent_id.as_str()), ("s-y", "a1"));
    assert!(events.try_recv().is_err());
    // The agent answers 40 s after the session was queued: one distributed call of 40 s.
    clock.advance(40 * S);
    routing.with(|core, now| core.confirm("s-y", reservation, now).unwrap());
    engine.end("s-y").await;
    let p = engine.position("s-x").unwrap();
    assert_eq!((p.position, p.total_waiting, p.agents_logged_in), (1, 1, Some(1)));
    assert_eq!(p.ewt_secs, Some(40), "urs: 40 s x (0 ahead + 1)");
    assert_eq!(routing.ewt_secs(&EwtSource::VirtualQueue("VQ".into())), Some(80));
    assert_eq!(routing.ewt_secs(&EwtSource::Service("ewt-vq".into())), Some(80));
    assert_eq!(routing.max_ewt_secs(), 80);

    // Cancelling the last session leaves the agent free and the queue empty.
    engine.cancel("s-x").await.unwrap();
    assert_eq!(routing.core().waiting("VQ"), 0);
    assert_eq!(routing.ewt_secs(&EwtSource::VirtualQueue("VQ".into())), Some(40));
}

#[tokio::test]
async fn queue_statistics_and_the_cached_ewt_service() {
    let clock = ManualClock::new(T0);
    let phones = Arc::new(Phones::default());
    phones.0.lock().unwrap().insert("a1".into());
    let routing = routing(&clock, phones);
    let base = serve(routing.clone()).await;
    let c = reqwest::Client::new();
    let get = reqwest::Method::GET;

    let (st, body) = call(&c, get.clone(), format!("{base}/api/v1/routing/ewt/ewt-vq"), None).await;
    assert_eq!(
        (st, body.clone()),
        (200, serde_json::json!({})),
        "no activity: empty object"
    );
    clock.advance(31 * S);

    let engine = SessionTable::with_routing(routing.clone());
    engine.start(session("a", 0, T0)).await.unwrap();
    let mut events = routing.subscribe();
    routing.with(|core, now| {
        core.login("a1", now).unwrap();
        core.ready("a1", routing.phones(), now).unwrap();
    });
    let Ok(RoutingEvent::Reserved { reservation, .. }) = events.try_recv() else {
        panic!("no reservation")
    };
    clock.advance(60 * S);
    routing.with(|core, now| core.confirm("s-a", reservation, now).unwrap());
    engine.start(session("b", 0, T0)).await.unwrap();
    engine.start(session("c", 0, T0)).await.unwrap();

    let (st, body) = call(&c, get.clone(), format!("{base}/api/v1/routing/ewt/ewt-vq"), None).await;
    assert_eq!(st, 200);
    assert_eq!(
        (body["ewt"].as_i64(), body["calls"].as_i64(), body["pos"].as_i64()),
        (Some(180), Some(2), Some(3))
    );
    assert_eq!(
        (body["aqt"].as_str(), body["hit"].as_i64()),
        (Some("urs"), Some(0))
    );
    // Within the caching period the same answer comes back, counted as a hit.
    engine.start(session("d", 0, T0)).await.unwrap();
    clock.advance(29 * S);
    let (_, body) = call(&c, get.clone(), format!("{base}/api/v1/routing/ewt/ewt-vq"), None).await;
    assert_eq!((body["ewt"].as_i64(), body["hit"].as_i64()), (Some(180), Some(1)));
    clock.advance(S);
    let (_, body) = call(&c, get.clone(), format!("{base}/api/v1/routing/ewt/ewt-vq"), None).await;
    assert_eq!(body["ewt"].as_i64(), Some(240), "refreshed: 60 s x (3 + 1)");
    let url = format!("{base}/genesys/1/service/ewt-vq?name=VQ&aqt=urs");
    let (st, seed) = call(&c, get.clone(), url, None).await;
    assert_eq!(
        (st, seed["ewt"].as_i64()),
        (200, Some(240)),
        "the seed's urs-stat address"
    );
    let (st, body) = call(&c, get.clone(), format!("{base}/genesys/1/service/not-ewt"), None).await;
    assert_eq!((st, body), (404, Value::String("Not Found".into())));

    let (st, body) = call(
        &c,
        get.clone(),
        format!("{base}/api/v1/routing/ewt/ewt-vq?aqt=urs3"),
        None,
    )
    .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("bad_request")));
    let (st, _) = call(&c, get.clone(), format!("{base}/api/v1/routing/ewt/nope"), None).await;
    assert_eq!(st, 404);

    let (st, body) = call(&c, get, format!("{base}/api/v1/routing/queues"), None).await;
    assert_eq!(st, 200);
    let q = &body["queues"][0];
    assert_eq!(
        (
            q["queue"].as_str(),
            q["waiting"].as_i64(),
            q["distributed"].as_i64()
        ),
        (Some("VQ"), Some(3), Some(1))
    );
    assert_eq!(q["average_answer_secs"].as_f64(), Some(60.0));
    assert_eq!(q["oldest_age_secs"].as_i64(), Some(121));
}

#[tokio::test]
async fn the_timer_driver_releases_an_unanswered_reservation() {
    let clock = ManualClock::new(T0);
    let phones = Arc::new(Phones::default());
    phones.0.lock().unwrap().insert("a1".into());
    let routing = routing(&clock, phones);
    let mut events = routing.subscribe();
    let engine = SessionTable::with_routing(routing.clone());
    engine.start(session("x", 0, T0)).await.unwrap();
    routing.with(|core, now| {
        core.login("a1", now).unwrap();
        core.ready("a1", routing.phones(), now).unwrap();
    });
    assert!(matches!(events.recv().await, Some(RoutingEvent::Reserved { .. })));
    let driver = tokio::spawn(routing.clone().run_timers(std::time::Duration::from_millis(10)));
    // Default reservation timeout: 30 s without an answer.
    clock.advance(30 * S);
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), events.recv()).await;
    driver.abort();
    match got {
        Ok(Some(RoutingEvent::Released {
            session_id, agent_id, ..
        })) => {
            assert_eq!((session_id.as_str(), agent_id.as_str()), ("s-x", "a1"));
        }
        other => panic!("expected a release, got {other:?}"),
    }
    let state = routing.core().agent_state("a1");
    assert_eq!(
        state,
        Some(boomerang::routing::router::AgentState::NotReady),
        "silent agent set not ready"
    );
    assert_eq!(
        engine.position("s-x").map(|p| p.position),
        Some(1),
        "the callback keeps waiting"
    );
}

#[tokio::test]
async fn agent_and_queue_statistics_follow_the_call_events() {
    use boomerang::clock::Clock;
    use boomerang::routing::{AgentCallEvent, AgentCallOutcome};
    let clock = ManualClock::new(T0);
    let phones = Arc::new(Phones::default());
    phones.0.lock().unwrap().insert("a1".into());
    let routing = routing(&clock, phones);
    let base = serve(routing.clone()).await;
    let c = reqwest::Client::new();
    let get = reqwest::Method::GET;
    let mut events = routing.subscribe();
    let engine = SessionTable::with_routing(routing.clone());
    routing.with(|core, now| {
        core.login("a1", now).unwrap();
        core.ready("a1", routing.phones(), now).unwrap();
    });
    // Two callbacks answered after 10 s and 30 s in the queue, handled for 60 s and 120 s.
    for (name, answer, talk) in [("p", 10, 60), ("q", 30, 120)] {
        engine.start(session(name, 0, clock.now_ms())).await.unwrap();
        let call = events
            .try_recv()
            .ok()
            .and_then(|e| e.agent_call())
            .expect("a reservation");
        clock.advance(answer * S);
        assert_eq!(
            routing.on_agent_call(&call, AgentCallEvent::Answered),
            Ok(AgentCallOutcome::Connected)
        );
        engine.end(&call.session_id).await;
        clock.advance(talk * S);
        assert_eq!(
            routing.on_agent_call(&call, AgentCallEvent::HungUp),
            Ok(AgentCallOutcome::Ended)
        );
    }
    routing.with(|core, now| core.not_ready("a1", Some("break"), now).unwrap());
    engine
        .start(session("waiting", 0, clock.now_ms() - 7 * S))
        .await
        .unwrap();

    let (st, a1) = call(&c, get.clone(), format!("{base}/api/v1/agents/a1"), None).await;
    assert_eq!(st, 200);
    assert_eq!(
        (a1["handled"].as_i64(), a1["average_handle_secs"].as_f64()),
        (Some(2), Some(90.0)),
        "{a1}"
    );
    let (_, list) = call(&c, get.clone(), format!("{base}/api/v1/agents"), None).await;
    assert_eq!(list["agents"][1]["handled"].as_i64(), Some(0), "{list}");
    assert_eq!(list["agents"][1]["average_handle_secs"], Value::Null, "{list}");

    let (st, stats) = call(&c, get, format!("{base}/api/v1/routing/stats"), None).await;
    assert_eq!(st, 200);
    let q = &stats["queues"][0];
    assert_eq!(
        (
            q["queue"].as_str(),
            q["waiting"].as_i64(),
            q["oldest_age_secs"].as_i64(),
            q["distributed"].as_i64(),
            q["average_answer_secs"].as_f64()
        ),
        (Some("VQ"), Some(1), Some(7), Some(2), Some(20.0)),
        "{stats}"
    );
    let a = &stats["agents"][0];
    assert_eq!(
        (
            a["id"].as_str(),
            a["state"].as_str(),
            a["handled"].as_i64(),
            a["average_handle_secs"].as_f64()
        ),
        (Some("a1"), Some("NOT_READY"), Some(2), Some(90.0)),
        "{stats}"
    );
}
