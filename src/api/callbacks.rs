//! Handlers of the callback routes: R1 start, R2 cancel, R3 reschedule/update, R5 get,
//! R6/R7 lookup.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::AppState;
use super::params::{decode, query_pairs, read_body};
use super::response::{error, json};
use super::views;
use crate::callback::CallbackError;
use crate::callback::validate::{Access, check_service};

/// The parameters of a start or update request, after the service check that comes first
/// (spec 40 §6.1 steps 1-2): the refusal is the finished response.
#[allow(clippy::result_large_err)]
async fn write_params(
    app: &AppState,
    service: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<crate::callback::Params, Response> {
    check_service(app.callbacks.config(), service, Access::Write).map_err(|e| error(&e))?;
    let body = read_body(body, app.body_limit()).await?;
    decode(headers, query, body).await
}

/// R1: `POST /genesys/1/service/callback/{service}`.
pub async fn start(
    State(app): State<AppState>,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match write_params(&app, &service, query.as_deref(), &headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match app.callbacks.create(&service, params).await {
        Ok(created) => json(
            StatusCode::OK,
            &views::created(&created.id, created.dialog.as_ref()),
        ),
        Err(e) => error(&e),
    }
}

/// R2: `DELETE /genesys/1/service/callback/{service}/{id}[?discard_ors_failure=true]`.
pub async fn cancel(
    State(app): State<AppState>,
    Path((service, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = check_service(app.callbacks.config(), &service, Access::Read) {
        return error(&e);
    }
    let mut discard = false;
    for (key, value) in query_pairs(query.as_deref()) {
        if key == "discard_ors_failure" {
            discard = match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return error(&CallbackError::bad_parameter(
                        "discard_ors_failure",
                        format!("Invalid value for discard_ors_failure: '{value}' (expected true or false)"),
                    ));
                }
            };
        }
    }
    match app.callbacks.cancel(&service, &id, discard).await {
        Ok(()) => plain_ok(),
        Err(e) => error(&e),
    }
}

fn plain_ok() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::OK;
    r
}

/// R3: `PUT /genesys/1/service/callback/{service}/{id}`.
pub async fn update(
    State(app): State<AppState>,
    Path((service, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match write_params(&app, &service, query.as_deref(), &headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match app.callbacks.update(&service, &id, params).await {
        Ok(()) => json(StatusCode::OK, &Value::Object(Default::default())),
        Err(e) => error(&e),
    }
}

/// R5 / R5a: `GET /genesys/{2,1}/service/callback/{service}/{id}`.
pub async fn get_one(State(app): State<AppState>, Path((service, id)): Path<(String, String)>) -> Response {
    match app.callbacks.get(&service, &id).await {
        Ok(record) => json(StatusCode::OK, &views::record(&record, app.returned_keys())),
        Err(e) => error(&e),
    }
}

async fn lookup(app: AppState, service: Option<String>, query: Option<String>) -> Response {
    let pairs = query_pairs(query.as_deref());
    match app.callbacks.lookup(service.as_deref(), &pairs).await {
        Ok(records) => {
            let items = records
                .iter()
                .map(|r| views::lookup_item(r, app.returned_keys()))
                .collect();
            json(StatusCode::OK, &Value::Array(items))
        }
        Err(e) => error(&e),
    }
}

/// R6: `GET /genesys/1/service/callback/{service}?{property}={value}...`.
pub async fn lookup_service(
    State(app): State<AppState>,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    lookup(app, Some(service), query).await
}

/// R7: `GET /genesys/1/service/callback?{property}={value}...`.
pub async fn lookup_all(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    lookup(app, None, query).await
}
