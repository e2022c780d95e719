//! How records look on the wire: each read endpoint has its own fixed keys (spec 40 §6.5,
//! §6.6), followed by the configured `returned-keys` the record has a value for.

use serde_json::{Map, Value};

use crate::callback::CallbackRecord;
use crate::callback::engine::Dialog;
use crate::callback::service::QueueInfo;
use crate::time::{epoch_seconds, format_iso};

fn with_returned_keys(
    mut item: Map<String, Value>,
    record: &CallbackRecord,
    returned_keys: &[String],
) -> Value {
    for key in returned_keys {
        if item.contains_key(key) {
            continue;
        }
        if let Some(value) = record.field(key) {
            item.insert(key.clone(), value.into());
        }
    }
    Value::Object(item)
}

/// R10: one item of the outstanding callbacks of a queue.
pub fn queue_item(record: &CallbackRecord, returned_keys: &[String]) -> Value {
    let mut item = Map::new();
    insert_opt(&mut item, "_customer_number", record.customer_number.as_ref());
    item.insert("_callback_state".into(), record.state.as_str().into());
    item.insert("_desired_time".into(), format_iso(record.desired_time).into());
    item.insert("_id".into(), record.id.clone().into());
    item.insert(
        "url".into(),
        format!("/1/service/callback/{}/{}", record.service, record.id).into(),
    );
    with_returned_keys(item, record, returned_keys)
}

fn insert_opt(item: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(v) = value {
        item.insert(key.into(), v.clone().into());
    }
}

/// R5: one callback.
pub fn record(record: &CallbackRecord, returned_keys: &[String]) -> Value {
    let mut item = Map::new();
    item.insert("_id".into(), record.id.clone().into());
    item.insert("_service_name".into(), record.service.clone().into());
    insert_opt(&mut item, "_customer_number", record.customer_number.as_ref());
    item.insert("_callback_state".into(), record.state.as_str().into());
    item.insert("_desired_time".into(), format_iso(record.desired_time).into());
    item.insert("_time_scheduled".into(), format_iso(record.time_scheduled).into());
    item.insert(
        "_expiration_time".into(),
        format_iso(record.expiration_time).into(),
    );
    item.insert(
        "_url".into(),
        format!("/genesys/1/service/callback/{}/{}", record.service, record.id).into(),
    );
    with_returned_keys(item, record, returned_keys)
}

/// R6/R7: one item of a lookup result.
pub fn lookup_item(record: &CallbackRecord, returned_keys: &[String]) -> Value {
    let mut item = Map::new();
    item.insert("_id".into(), record.id.clone().into());
    item.insert("desired_time".into(), format_iso(record.desired_time).into());
    item.insert("_callback_state".into(), record.state.as_str().into());
    item.insert(
        "_expiration_time".into(),
        format_iso(record.expiration_time).into(),
    );
    insert_opt(&mut item, "_customer_number", record.customer_number.as_ref());
    item.insert(
        "url".into(),
        format!("/1/service/callback/{}/{}", record.service, record.id).into(),
    );
    with_returned_keys(item, record, returned_keys)
}

/// R1's answer: `_id`, and the dialog's four keys for an immediate callback.
pub fn created(id: &str, dialog: Option<&Dialog>) -> Value {
    let mut body = Map::new();
    if let Some(d) = dialog {
        body.insert("ID".into(), d.id.clone().into());
        body.insert("Action".into(), d.action.clone().into());
        body.insert("Text".into(), d.text.clone().into());
        body.insert("OkTitle".into(), d.ok_title.clone().into());
    }
    body.insert("_id".into(), id.into());
    Value::Object(body)
}

/// R12: queue position of a waiting callback. Keys whose value is not known yet (dial data
/// before the first dial, the interaction ID before a call exists) are left out.
pub fn queue_position(info: &QueueInfo) -> Value {
    let r = &info.record;
    let p = &info.position;
    let mut body = Map::new();
    body.insert(
        "app_version".into(),
        concat!("boomerang-", env!("CARGO_PKG_VERSION")).into(),
    );
    // Routing's EWT for this session (callbacks ahead of it) when it has history, else the
    // service's EWT rule.
    let ewt = p.ewt_secs.unwrap_or(info.ewt_secs).max(0);
    body.insert("wt".into(), ((info.now - p.accepted_at).max(0) / 1000).into());
    body.insert("ewt".into(), ewt.into());
    body.insert("positioninqueue".into(), p.position.saturating_sub(1).into());
    body.insert("_position".into(), p.position.into());
    body.insert("_eta".into(), ewt.into());
    body.insert("_total_waiting".into(), p.total_waiting.into());
    body.insert("priority".into(), p.priority.into());
    if let Some(n) = p.agents_logged_in {
        body.insert("agents_logged_in".into(), n.into());
    }
    insert_opt(&mut body, "ors_session_id", r.session_id.as_ref());
    let wait_for_agent = r
        .property("_wait_for_agent")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let callback_type = if r.time_scheduled < r.desired_time {
        "SCHEDULED"
    } else if wait_for_agent {
        "WAIT_FOR_AGENT"
    } else {
        "IMMEDIATE"
    };
    body.insert("callback_type".into(), callback_type.into());
    body.insert(
        "time_callback_accepted".into(),
        epoch_seconds(r.time_scheduled).into(),
    );
    if let Some(channel) = r.property("_cb_dim_channel").or(r.property("_CB_DIM_CHANNEL")) {
        body.insert("channel".into(), channel.into());
    }
    if let Some(target) = r.property("_target") {
        body.insert("skill_expression".into(), target.into());
    }
    body.insert("is_snoozed".into(), false.into());
    Value::Object(body)
}
