//! Handlers of the session routes: R12 check-queue-position and R14 session events.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::response::{error, json, plain};
use super::views;

/// R12: `POST|GET /genesys/1/service/{id}/check-queue-position` (any body is ignored).
pub async fn queue_position(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match app.callbacks.queue_position(&id).await {
        Ok(info) => json(StatusCode::OK, &views::queue_position(&info)),
        Err(e) => error(&e),
    }
}

/// R14: `GET|POST /genesys/1/ors/scxml/session/{session}/event/{event}`.
pub async fn event(State(app): State<AppState>, Path((session, event)): Path<(String, String)>) -> Response {
    match app.callbacks.session_event(&session, &event).await {
        Ok(true) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::OK;
            r
        }
        Ok(false) => plain(StatusCode::NOT_FOUND, format!("No session {session}")),
        Err(e) => error(&e),
    }
}
