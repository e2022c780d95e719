//! The HTTP surface: the GMS-compatible callback API (spec 40), served by axum.

mod admin;
pub mod agents;
mod availability;
mod callbacks;
pub mod params;
pub mod response;
mod sessions;
mod telephony;
pub mod test_calls;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::callback::Callbacks;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub callbacks: Arc<Callbacks>,
    /// The SIP transport, when `[telephony]` is configured (test calls).
    pub telephony: Option<crate::call::driver::Telephony>,
    pub test_calls: Arc<test_calls::TestCalls>,
}

impl AppState {
    fn returned_keys(&self) -> &[String] {
        &self.callbacks.config().callback.returned_keys
    }

    fn body_limit(&self) -> usize {
        self.callbacks.config().http.max_body_bytes
    }
}

/// The whole application: routes, panic catching, `Cache-Control`, and one trailing `/`
/// ignored (it is trimmed before routing).
pub fn app(callbacks: Arc<Callbacks>) -> NormalizePath<Router> {
    app_with_telephony(callbacks, None)
}

/// [`app`] with the server's SIP transport for `POST /api/v1/test-calls`.
pub fn app_with_telephony(
    callbacks: Arc<Callbacks>,
    telephony: Option<crate::call::driver::Telephony>,
) -> NormalizePath<Router> {
    let state = AppState {
        callbacks,
        telephony,
        test_calls: Arc::default(),
    };
    let origins = state.callbacks.config().http.allowed_origins.clone();
    let service_routes = Router::new()
        .route("/genesys/1/service/callback", get(callbacks::lookup_all))
        .route(
            "/genesys/1/service/callback/{service}",
            get(callbacks::lookup_service).post(callbacks::start),
        )
        .route(
            "/genesys/1/service/callback/{service}/availability",
            get(availability::v1),
        )
        .route(
            "/genesys/2/service/callback/{service}/availability",
            get(availability::v2),
        )
        .route(
            "/genesys/1/service/callback/{service}/{id}",
            get(callbacks::get_one)
                .put(callbacks::update)
                .delete(callbacks::cancel),
        )
        .route(
            "/genesys/2/service/callback/{service}/{id}",
            get(callbacks::get_one),
        )
        .route(
            "/genesys/1/service/{id}/check-queue-position",
            get(sessions::queue_position).post(sessions::queue_position),
        )
        .route(
            "/genesys/1/ors/scxml/session/{session}/event/{event}",
            get(sessions::event).post(sessions::event),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), api_key_guard));
    let admin_routes = Router::new()
        .route("/genesys/1/admin/callback/ops/delete", post(admin::bulk_delete))
        .route("/genesys/1/admin/callback/queues", get(admin::queues))
        .route("/genesys/1/admin/callback/watermarks", get(admin::watermarks))
        .route(
            "/genesys/1/admin/callback/reportcancelled",
            post(admin::report_cancelled),
        )
        .route(
            "/genesys/1/admin/callback/number-check",
            post(admin::number_check),
        )
        .route(
            "/genesys/1/admin/number-rules/{name}/test",
            post(admin::number_rule_test),
        )
        .route(
            "/genesys/1/admin/api-keys/validate",
            post(admin::api_key_validate),
        )
        .route("/api/v1/test-calls", post(test_calls::start))
        .route("/api/v1/test-calls/{id}", get(test_calls::get_one))
        .route("/api/v1/telephony", get(telephony::status));
    let agent_routes = state
        .callbacks
        .engine()
        .routing()
        .map(|routing| {
            agents::routes(routing).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                agent_api_guard,
            ))
        })
        .unwrap_or_default();
    let router = Router::new()
        .merge(service_routes)
        .merge(admin_routes)
        .merge(agent_routes)
        .fallback(|| async { response::plain(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(state)
        .layer(CatchPanicLayer::custom(response::panic_response))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        ));
    let router = if origins.is_empty() {
        router
    } else {
        router.layer(cors(&origins))
    };
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// With API keys configured, the service routes need a valid `x-api-key` (spec 50 §17).
async fn api_key_guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let keys = &app.callbacks.config().api_keys;
    if keys.is_empty() {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if keys.iter().any(|k| k.accepts(given)) {
        next.run(request).await
    } else {
        response::plain(StatusCode::UNAUTHORIZED, "Missing or invalid x-api-key")
    }
}

/// The agent-state and routing routes: open while the server has neither API keys nor users
/// (a development set-up); otherwise a valid `x-api-key` (an agent desktop) or the Basic
/// credentials of a user: any role may read, Administrators and Supervisors change states.
async fn agent_api_guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let config = app.callbacks.config();
    if config.api_keys.is_empty() && config.users.is_empty() {
        return next.run(request).await;
    }
    let key = request.headers().get("x-api-key").and_then(|v| v.to_str().ok());
    if key.is_some_and(|k| config.api_keys.iter().any(|c| c.accepts(k))) {
        return next.run(request).await;
    }
    let need = if request.method() == Method::GET {
        admin::Need::Read
    } else {
        admin::Need::Change
    };
    match admin::authorize(&app, request.headers(), need) {
        Ok(_) => next.run(request).await,
        Err(refused) => refused,
    }
}

/// CORS for the configured browser origins (spec 50 §17 AD-142).
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
