//! `POST /api/v1/test-calls` and `GET /api/v1/test-calls/{id}`: the operator's test call of
//! `boomerang call`, through the server's own SIP transport (`[telephony]`).
//!
//! POST takes `{"number": "0612345678", "trunk": "main", "play": "customer_connect.wav",
//! "timeout_s": 30}` (only `number` is required; the trunk defaults to the first one) and
//! answers `202 {"id", "status": "running", "location"}` at once; the call runs in the
//! background. GET answers `{"id", "number", "trunk", "status": "running"|"done", "ok",
//! "events": [...]}` where `events` are the leg events as `boomerang call` prints them
//! (`dialing`, `trying`, `ringing`, `early_media`, `answered`, `cpd`, `dtmf`, `hangup`) and `ok`
//! (once done) says whether the call was answered and torn down cleanly. With `[[users]]`
//! configured, both need HTTP Basic credentials of an Administrator or Supervisor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use super::params::read_body;
use super::response::{json as json_response, plain};
use crate::call::driver::LegId;
use crate::call::leg::{Cause, LegEvent};
use boomerang_media::cpd::CpdParams;
use boomerang_media::treatment::{self, PlayMode, TreatmentCache, TreatmentSource};

/// Test calls at the same time, and results kept.
const MAX_RUNNING: usize = 8;
const MAX_KEPT: usize = 100;
const MAX_TIMEOUT_S: u64 = 300;

#[derive(Debug, Clone)]
struct TestCall {
    number: String,
    trunk: String,
    done: bool,
    ok: Option<bool>,
    events: Vec<Value>,
}

/// The test calls of one server (running and finished, the last [`MAX_KEPT`]).
#[derive(Default)]
pub struct TestCalls {
    inner: Mutex<(u64, BTreeMap<u64, TestCall>)>,
}

impl TestCalls {
    fn update(&self, id: u64, f: impl FnOnce(&mut TestCall)) {
        if let Ok(mut g) = self.inner.lock()
            && let Some(c) = g.1.get_mut(&id)
        {
            f(c);
        }
    }
}

/// With users configured: an Administrator or Supervisor (HTTP Basic), as the admin routes.
#[allow(clippy::result_large_err)]
fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    super::admin::authorize_if_users(app, headers, super::admin::Need::Change)
}

fn reply(status: StatusCode, v: Value) -> Response {
    json_response(status, &v)
}

fn bad(message: impl Into<String>) -> Response {
    reply(StatusCode::BAD_REQUEST, json!({"error": message.into()}))
}

pub async fn start(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if let Err(r) = authorize(&app, &headers) {
        return r;
    }
    let Some(tel) = app.telephony.clone() else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "telephony is not configured ([telephony] section)"}),
        );
    };
    let bytes = match read_body(body, 64 * 1024).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&bytes) else {
        return bad("the body must be a JSON object");
    };
    let number = match req.get("number") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 64 => n.trim().to_string(),
        _ => return bad("number: required, a non-empty string"),
    };
    let cfg = app.callbacks.config().telephony.clone();
    let trunk = match req.get("trunk") {
        None | Some(Value::Null) => match cfg.trunks.first() {
            Some(t) => t.name.clone(),
            None => return bad("no [[trunks]] configured"),
        },
        Some(Value::String(t)) => t.clone(),
        Some(_) => return bad("trunk: must be a string"),
    };
    if cfg.trunk(&trunk).is_none() {
        return bad(format!("trunk: no trunk named '{trunk}'"));
    }
    let timeout = match req.get("timeout_s") {
        None | Some(Value::Null) => 30,
        Some(v) => match v.as_u64() {
            Some(s) if (1..=MAX_TIMEOUT_S).contains(&s) => s,
            _ => return bad(format!("timeout_s: an integer from 1 to {MAX_TIMEOUT_S}")),
        },
    };
    let play = match req.get("play") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => {
            // A name in the treatments folder only: an HTTP client never names a server path.
            let cache = TreatmentCache::new(cfg.treatments_dir.clone());
            let path = match cache.resolve(&TreatmentSource::Name(name.trim().to_string())) {
                Ok(path) => path,
                Err(e) => return bad(format!("play: {e}")),
            };
            match tokio::task::spawn_blocking(move || treatment::load(&path)).await {
                Ok(Ok(t)) => Some(Arc::new(t)),
                Ok(Err(e)) => return bad(format!("play: {e}")),
                Err(_) => return bad("play: could not be loaded"),
            }
        }
        Some(_) => return bad("play: must be a treatment name (a file in the treatments folder)"),
    };
    let id = {
        let Ok(mut g) = app.test_calls.inner.lock() else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "test calls unavailable");
        };
        if g.1.values().filter(|c| !c.done).count() >= MAX_RUNNING {
            return reply(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": format!("at most {MAX_RUNNING} test calls at a time")}),
            );
        }
        g.0 += 1;
        let id = g.0;
        g.1.insert(
            id,
            TestCall {
                number: number.clone(),
                trunk: trunk.clone(),
                done: false,
                ok: None,
                events: Vec::new(),
            },
        );
        while g.1.len() > MAX_KEPT {
            let Some(oldest) = g.1.iter().find(|(_, c)| c.done).map(|(k, _)| *k) else {
                break;
            };
            g.1.remove(&oldest);
        }
        id
    };
    let calls = app.test_calls.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let mut events = match tel.dial_with_failover(&cfg, &trunk, &number).await {
            Ok(rx) => rx,
            Err(e) => {
                calls.update(id, |c| {
                    c.events.push(json!({"event": "error", "reason": e.to_string()}));
                    c.done = true;
                    c.ok = Some(false);
                });
                return;
            }
        };
        let mut leg: Option<LegId> = None;
        let mut answered = false;
        let mut hung_up = false;
        let mut clean = false;
        // The stream ends after the last attempt's hangup (failover included); bounded by
        // the deadline plus a grace period for the hangup itself.
        let hard_stop = deadline + Duration::from_secs(40);
        loop {
            let ev = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(_) => {
                    if let Some(l) = leg
                        && !hung_up
                    {
                        let play_done = answered
                            && play.is_some()
                            && tel.media_stats(l).await.map(|s| !s.playing).unwrap_or(true);
                        if play_done || Instant::now() >= deadline {
                            hung_up = true;
                            let _ = tel.hangup(l).await;
                        }
                    }
                    if Instant::now() >= hard_stop {
                        break;
                    }
                    continue;
                }
            };
            match &ev {
                LegEvent::Dialing { leg: l, .. } => {
                    leg = Some(LegId(*l));
                    let _ = tel.start_cpd(LegId(*l), CpdParams::default(), false).await;
                }
                LegEvent::Answered { .. } => {
                    answered = true;
                    if let (Some(l), Some(t)) = (leg, &play) {
                        let _ = tel.play(l, t.clone(), PlayMode::Once).await;
                    }
                }
                LegEvent::Hangup { cause, .. } => {
                    clean = answered && matches!(cause, Cause::LocalHangup | Cause::RemoteHangup);
                }
                _ => {}
            }
            let v = serde_json::to_value(&ev).unwrap_or(Value::Null);
            calls.update(id, |c| c.events.push(v));
        }
        calls.update(id, |c| {
            c.done = true;
            c.ok = Some(clean);
        });
    });
    let location = format!("/api/v1/test-calls/{id}");
    let mut r = reply(
        StatusCode::ACCEPTED,
        json!({"id": id.to_string(), "status": "running", "location": location}),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub async fn get_one(State(app): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorize(&app, &headers) {
        return r;
    }
    let call = id
        .parse::<u64>()
        .ok()
        .and_then(|n| app.test_calls.inner.lock().ok()?.1.get(&n).cloned());
    match call {
        Some(c) => reply(
            StatusCode::OK,
            json!({
                "id": id,
                "number": c.number,
                "trunk": c.trunk,
                "status": if c.done { "done" } else { "running" },
                "ok": c.ok,
                "events": c.events,
            }),
        ),
        None => reply(StatusCode::NOT_FOUND, json!({"error": "no such test call"})),
    }
}
