//! `GET /api/v1/telephony`: what an operator checks first when calls fail: the SIP transport,
//! the trunks (keepalive up/down, registration) and the counters of refused or dropped input.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::AppState;
use super::response::{json as json_response, plain};

/// `GET /api/v1/telephony`: the SIP transport's state for operators: its address, each
/// trunk's keepalive and registration state, the live legs and RTP ports, and the counters of
/// what was dropped or refused (malformed SIP, unknown methods, 481s, framing faults...).
pub async fn status(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = super::admin::authorize_if_users(&app, &headers, super::admin::Need::Read) {
        return refused;
    }
    let Some(tel) = app.telephony.clone() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "telephony is not configured ([telephony] section)"}),
        );
    };
    match tel.counters().await {
        Ok((counters, legs, rtp_ports)) => json_response(
            StatusCode::OK,
            &json!({
                "sip": tel.local_addr().to_string(),
                "trunks": tel.trunk_states(),
                "legs": legs,
                "rtp_ports": rtp_ports,
                "counters": counters,
            }),
        ),
        Err(e) => plain(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
