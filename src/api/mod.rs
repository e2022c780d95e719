//! The HTTP surface: the GMS-compatible callback API (spec 40), served by axum.

mod callbacks;
pub mod params;
pub mod response;
mod sessions;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::routing::get;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::callback::Callbacks;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub callbacks: Arc<Callbacks>,
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
    let state = AppState { callbacks };
    let router = Router::new()
        .route("/genesys/1/service/callback", get(callbacks::lookup_all))
        .route(
            "/genesys/1/service/callback/{service}",
            get(callbacks::lookup_service).post(callbacks::start),
        )
        .route(
            "/genesys/1/service/callback/{service}/availability",
            get(callbacks::availability_pending),
        )
        .route(
            "/genesys/2/service/callback/{service}/availability",
            get(callbacks::availability_pending),
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
        .fallback(|| async { response::plain(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(state)
        .layer(CatchPanicLayer::custom(response::panic_response))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        ));
    NormalizePathLayer::trim_trailing_slash().layer(router)
}
