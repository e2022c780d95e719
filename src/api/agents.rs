//! The agent-state REST API and the routing read endpoints:
//!
//! - `GET  /api/v1/agents`: every agent with state, reason and time in state;
//! - `GET  /api/v1/agents/{id}`;
//! - `POST /api/v1/agents/{id}/login | ready | not-ready | logout` (`not-ready` takes a reason
//!   as `?reason=` or a JSON body `{"reason": "..."}`);
//! - `GET  /api/v1/routing/queues`: per-queue statistics (waiting, oldest age, distributed,
//!   average time to answer);
//! - `GET  /api/v1/routing/stats`: the admin view of routing statistics in one answer: the
//!   per-queue statistics and, per agent, state, handled count and average handle time;
//! - `GET  /api/v1/routing/ewt/{service}?name=<queue>&aqt=urs|urs2`: the cached urs-stat
//!   answer of a configured EWT service (spec 20 §8.3), also served at the seed's address
//!   `GET /genesys/1/service/{service}?name=<queue>&aqt=...` (plain 404 for a name that is no
//!   EWT service, as for any unknown path).
//!
//! Errors are JSON `{"error": <kind>, "message": <text>}`: 404 for an unknown agent or
//! service, 409 for a state change the agent's state forbids, 400 for a bad request.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::response::json as json_response;
use crate::routing::Routing;
use crate::routing::ewt::Method;
use crate::routing::router::RoutingError;

/// The routes, with their state applied: merge them into any router.
pub fn routes<S: Clone + Send + Sync + 'static>(routing: Arc<Routing>) -> Router<S> {
    Router::new()
        .route("/api/v1/agents", get(list))
        .route("/api/v1/agents/{id}", get(one))
        .route("/api/v1/agents/{id}/{action}", post(change))
        .route("/api/v1/routing/queues", get(queues))
        .route("/api/v1/routing/stats", get(stats))
        .route("/api/v1/routing/ewt/{service}", get(ewt_service))
        .route("/genesys/1/service/{service}", get(seed_ewt_service))
        .with_state(routing)
}

fn problem(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    json_response(status, &json!({ "error": kind, "message": message.into() }))
}

fn routing_error(e: &RoutingError) -> Response {
    let (status, kind) = match e {
        RoutingError::UnknownAgent(_) => (StatusCode::NOT_FOUND, "unknown_agent"),
        RoutingError::IllegalTransition { .. } => (StatusCode::CONFLICT, "illegal_state_change"),
        RoutingError::PhoneNotRegistered(_) => (StatusCode::CONFLICT, "phone_not_registered"),
        RoutingError::UnknownSession(_) | RoutingError::NoSuchReservation { .. } => {
            (StatusCode::NOT_FOUND, "unknown_session")
        }
        RoutingError::BadTarget(_) => (StatusCode::BAD_REQUEST, "bad_target"),
    };
    problem(status, kind, e.to_string())
}

async fn list(State(routing): State<Arc<Routing>>) -> Response {
    let now = routing.now();
    let agents = routing.core().agents(now);
    json_response(StatusCode::OK, &json!({ "agents": agents }))
}

async fn one(State(routing): State<Arc<Routing>>, Path(id): Path<String>) -> Response {
    let now = routing.now();
    let agent = routing.core().agent(&id, now);
    match agent {
        Ok(a) => json_response(StatusCode::OK, &json!(a)),
        Err(e) => routing_error(&e),
    }
}

/// Longest not-ready reason accepted.
const MAX_REASON: usize = 256;

async fn change(
    State(routing): State<Arc<Routing>>,
    Path((id, action)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut reason = query.get("reason").cloned();
    if action == "not-ready" && !body.is_empty() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => match m.get("reason") {
                Some(Value::String(s)) => reason = Some(s.clone()),
                Some(Value::Number(n)) => reason = Some(n.to_string()),
                None | Some(Value::Null) => {}
                Some(other) => {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("'reason' must be a string or a number, got {other}"),
                    );
                }
            },
            _ => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the body must be a JSON object such as {\"reason\": \"lunch\"}",
                );
            }
        }
    }
    if reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the reason is longer than {MAX_REASON} bytes"),
        );
    }
    let (result, _) = routing.with(|core, now| match action.as_str() {
        "login" => Some(core.login(&id, now)),
        "ready" => Some(core.ready(&id, routing.phones(), now)),
        "not-ready" => Some(core.not_ready(&id, reason.as_deref(), now)),
        "logout" => Some(core.logout(&id, now)),
        _ => None,
    });
    match result {
        None => problem(
            StatusCode::NOT_FOUND,
            "unknown_action",
            format!("unknown action '{action}' (login, ready, not-ready, logout)"),
        ),
        Some(Err(e)) => routing_error(&e),
        Some(Ok(())) => one(State(routing), Path(id)).await,
    }
}

async fn queues(State(routing): State<Arc<Routing>>) -> Response {
    let now = routing.now();
    let stats = routing.core().queue_stats(now);
    json_response(StatusCode::OK, &json!({ "queues": stats }))
}

async fn stats(State(routing): State<Arc<Routing>>) -> Response {
    let now = routing.now();
    let (queues, agents) = {
        let core = routing.core();
        (core.queue_stats(now), core.agents(now))
    };
    let agents: Vec<Value> = agents
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "state": a.state,
                "time_in_state_secs": a.time_in_state_secs,
                "handled": a.handled,
                "average_handle_secs": a.average_handle_secs,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "queues": queues, "agents": agents }))
}

async fn seed_ewt_service(
    State(routing): State<Arc<Routing>>,
    Path(service): Path<String>,
    query: Query<HashMap<String, String>>,
) -> Response {
    if !routing.core().config().ewt_services.contains_key(&service) {
        return super::response::plain(StatusCode::NOT_FOUND, "Not Found");
    }
    ewt_service(State(routing), Path(service), query).await
}

async fn ewt_service(
    State(routing): State<Arc<Routing>>,
    Path(service): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(cfg) = routing.core().config().ewt_services.get(&service).cloned() else {
        return problem(
            StatusCode::NOT_FOUND,
            "unknown_service",
            format!("no EWT service '{service}' is configured"),
        );
    };
    let method = match query.get("aqt") {
        None => cfg.method,
        Some(a) => match Method::parse(a) {
            Some(m) => m,
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("aqt must be urs or urs2, got '{a}'"),
                );
            }
        },
    };
    let Some(queue) = query.get("name").cloned().or(cfg.queue) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("EWT service '{service}' has no queue: give one with ?name=<queue>"),
        );
    };
    json_response(
        StatusCode::OK,
        &routing.stat_service(&queue, Some(method), cfg.caching_policy_secs),
    )
}
