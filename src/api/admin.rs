//! Admin routes (spec 40 §6.4, §6.9, §6.10, §6.12; spec 50 §7, §17), behind HTTP Basic
//! authentication against the configured users. Administrators and Supervisors may change
//! callbacks; CallbackReadOnly users may only read.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::AppState;
use super::params::{query_pairs, read_body};
use super::response::{error, json, plain};
use super::views::queue_item;
use crate::callback::admin::QueueQuery;
use crate::callback::numbers::{evaluate_rule, screen};
use crate::callback::options::normalize_number;
use crate::callback::{CallbackError, ErrorCode};
use crate::config::{Role, User};

/// What a route needs from the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Change,
    /// Developer tools (API key validation): Administrators only (spec 50 §5.1).
    Administer,
}

fn unauthorized() -> Response {
    let mut r = plain(StatusCode::UNAUTHORIZED, "Authentication required");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"callback-admin\""),
    );
    r
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// For the operator routes outside the seed's admin API (test calls, telephony status):
/// open while no users are configured (a development set-up), else as [`authorize`].
#[allow(clippy::result_large_err)]
pub(crate) fn authorize_if_users(app: &AppState, headers: &HeaderMap, need: Need) -> Result<(), Response> {
    if app.callbacks.config().users.is_empty() {
        return Ok(());
    }
    authorize(app, headers, need).map(|_| ())
}

/// The authenticated user, or the 401/403 response.
#[allow(clippy::result_large_err)]
pub(crate) fn authorize<'a>(
    app: &'a AppState,
    headers: &HeaderMap,
    need: Need,
) -> Result<&'a User, Response> {
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some((name, password)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return Err(unauthorized());
    };
    let user = app
        .callbacks
        .config()
        .users
        .iter()
        .find(|u| u.name == name && constant_time_eq(u.password.as_bytes(), password.as_bytes()))
        .ok_or_else(unauthorized)?;
    let allowed = match need {
        Need::Read => true,
        Need::Change => user
            .roles
            .iter()
            .any(|r| matches!(r, Role::Administrator | Role::Supervisor)),
        Need::Administer => user.roles.contains(&Role::Administrator),
    };
    if !allowed {
        return Err(plain(
            StatusCode::FORBIDDEN,
            format!("User {} does not have a role that allows this", user.name),
        ));
    }
    Ok(user)
}

#[allow(clippy::result_large_err)]
fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "This route takes application/json",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(error(&CallbackError::new(
            ErrorCode::BadParameter,
            "The JSON body must be an object",
        ))),
        Err(e) => Err(error(&CallbackError::new(
            ErrorCode::BadParameter,
            format!("Malformed JSON body: {e}"),
        ))),
    }
}

/// A JSON-object request body, size-limited.
#[allow(clippy::result_large_err)]
async fn json_body(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, Response> {
    let body = read_body(body, app.body_limit()).await?;
    json_object(headers, &body)
}

/// A key that must hold an array of strings (or be absent).
fn string_array(map: &Map<String, Value>, key: &str) -> Result<Vec<String>, CallbackError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(CallbackError::bad_parameter(
                    key,
                    format!("{key} must be an array of strings"),
                )),
            })
            .collect(),
        Some(_) => Err(CallbackError::bad_parameter(
            key,
            format!("{key} must be an array of strings"),
        )),
    }
}

/// R4: `POST /genesys/1/admin/callback/ops/delete`.
pub async fn bulk_delete(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let user = match authorize(&app, &headers, Need::Change) {
        Ok(u) => u.name.clone(),
        Err(r) => return r,
    };
    let map = match json_body(&app, &headers, body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (ids, numbers) = match (string_array(&map, "_id"), string_array(&map, "_customer_number")) {
        (Ok(i), Ok(n)) => (i, n),
        (Err(e), _) | (_, Err(e)) => return error(&e),
    };
    tracing::info!(target: "report", event = "bulk_delete", user, ids = ids.len(), numbers = numbers.len());
    match app.callbacks.bulk_delete(&ids, &numbers).await {
        Ok(report) => json(
            StatusCode::OK,
            &json!({"success": report.success, "errors": report.errors}),
        ),
        Err(e) => error(&e),
    }
}

/// R10: `GET /genesys/1/admin/callback/queues`.
pub async fn queues(State(app): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = authorize(&app, &headers, Need::Read) {
        return r;
    }
    let mut q = QueueQuery::default();
    for (key, value) in query_pairs(query.as_deref()) {
        match key.as_str() {
            "target" => q.target = Some(value),
            "start_time" => q.start_time = Some(value),
            "end_time" => q.end_time = Some(value),
            "states" => q.states = Some(value),
            "max" => q.max = Some(value),
            _ => q.others.push((key, value)),
        }
    }
    match app.callbacks.queues(&q).await {
        Ok(per_service) => {
            let body: Map<String, Value> = per_service
                .into_iter()
                .map(|(service, records)| {
                    let items = records
                        .iter()
                        .map(|r| queue_item(r, app.returned_keys()))
                        .collect();
                    (service, Value::Array(items))
                })
                .collect();
            json(StatusCode::OK, &Value::Object(body))
        }
        Err(e) => error(&e),
    }
}

/// R11: `GET /genesys/1/admin/callback/watermarks[?service_name=...]`.
pub async fn watermarks(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = authorize(&app, &headers, Need::Read) {
        return r;
    }
    let services: Vec<String> = query_pairs(query.as_deref())
        .into_iter()
        .filter(|(k, _)| k == "service_name")
        .map(|(_, v)| v)
        .collect();
    match app.callbacks.watermarks(&services).await {
        Ok((total, counts)) => json(StatusCode::OK, &json!({"total": total, "services": counts})),
        Err(e) => error(&e),
    }
}

/// R13: `POST /genesys/1/admin/callback/reportcancelled`.
pub async fn report_cancelled(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = authorize(&app, &headers, Need::Read) {
        return r;
    }
    let map = match json_body(&app, &headers, body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let reason = map
        .get("callback_reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if reason.is_empty() {
        return plain(StatusCode::BAD_REQUEST, "Callback reason is missing.");
    }
    let columns = match string_array(&map, "exported_properties") {
        Ok(c) => c,
        Err(e) => return error(&e),
    };
    match app.callbacks.cancelled_report(reason, &columns).await {
        Ok(None) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Ok(Some(csv)) => {
            let mut r = Response::new(Body::from(csv));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv;charset=UTF-8"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"report.csv\""),
            );
            r
        }
        Err(e) => error(&e),
    }
}

/// `POST /genesys/1/admin/callback/number-check` `{"service": S, "_customer_number": N}`:
/// which of the service's number rules, if any, refuses N.
pub async fn number_check(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = authorize(&app, &headers, Need::Read) {
        return r;
    }
    let map = match json_body(&app, &headers, body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let text = |k: &str| {
        map.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(service_name), Some(number)) = (text("service"), text("_customer_number")) else {
        return error(&CallbackError::new(
            ErrorCode::BadParameter,
            "Give service and _customer_number",
        ));
    };
    let Some(service) = app.callbacks.config().service(service_name) else {
        return error(&CallbackError::bad_configuration(
            service_name,
            format!("Service undefined: {service_name}"),
        ));
    };
    let options = crate::callback::options::service_options(service, &Default::default());
    let normalized = normalize_number(number, service.fix_plus);
    let s = screen(app.callbacks.config(), service_name, &options, &normalized);
    let mut body = json!({
        "service": service_name,
        "_customer_number": normalized,
        "result": if s.error.is_none() { "accepted" } else { "rejected" },
        "rule": s.rule,
    });
    if let Some(detail) = s.detail {
        body["detail"] = detail.into();
    }
    if let Some(e) = s.error {
        body["code"] = e.code.code().into();
        body["message"] = e.message.into();
    }
    json(StatusCode::OK, &body)
}

/// `POST /genesys/1/admin/number-rules/{name}/test` `{"number": N, "default_country": "US"}`
/// (spec 50 §7.1 AD-063).
pub async fn number_rule_test(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = authorize(&app, &headers, Need::Read) {
        return r;
    }
    let map = match json_body(&app, &headers, body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(rule) = app.callbacks.config().number_rules.get(&name) else {
        return plain(StatusCode::NOT_FOUND, format!("No number rule {name}"));
    };
    let Some(number) = map
        .get("number")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return error(&CallbackError::bad_parameter("number", "Give the number to test"));
    };
    let country = map.get("default_country").and_then(Value::as_str);
    let (result, detail) = evaluate_rule(rule, number.trim(), country);
    let mut body = json!({"rule": name, "number": number, "result": result});
    match (result, detail) {
        ("blocked_pattern", Some(p)) => body["pattern"] = p.into(),
        (_, Some(c)) => body["country"] = c.into(),
        _ => {}
    }
    json(StatusCode::OK, &body)
}

/// `POST /genesys/1/admin/api-keys/validate` `{"key": K}` → `{"valid": bool}` (spec 50 §17).
pub async fn api_key_validate(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = authorize(&app, &headers, Need::Administer) {
        return r;
    }
    let map = match json_body(&app, &headers, body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let key = map.get("key").and_then(Value::as_str).unwrap_or("");
    let valid = app.callbacks.config().api_keys.iter().any(|k| k.accepts(key));
    json(StatusCode::OK, &json!({"valid": valid}))
}
