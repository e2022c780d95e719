//! Response helpers: JSON bodies with the exact content type clients expect, and the error
//! envelope of spec 40 §2.10.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::callback::CallbackError;

pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// A JSON response with `Content-Type: application/json;charset=UTF-8`.
pub fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    response
}

/// The error envelope: `code`, `phrase`, `message`, `exception`, `properties`
/// (and `availability` with 40051).
pub fn error(e: &CallbackError) -> Response {
    let mut body = Map::new();
    body.insert("code".into(), e.code.code().into());
    body.insert("phrase".into(), e.code.phrase().into());
    body.insert("message".into(), e.message.clone().into());
    body.insert("exception".into(), e.code.exception().into());
    body.insert("properties".into(), Value::Object((*e.properties).clone()));
    if let Some(availability) = &e.availability {
        body.insert("availability".into(), Value::Object((**availability).clone()));
    }
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &Value::Object(body))
}

/// A plain-text response for the statuses produced before the callback controller
/// (415, 413, 404...), which carry no envelope.
pub fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        text.into(),
    )
        .into_response()
}

/// Turns a panic inside a handler into the 50050 envelope.
pub fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let cause = if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "internal failure".to_string()
    };
    tracing::error!("handler panicked: {cause}");
    error(&CallbackError::unknown(cause))
}
