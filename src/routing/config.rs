//! Routing configuration: `[[agent]]`, `[agent_group.<name>]` and `[routing]` (with
//! `[routing.queue.<name>]` and `[routing.ewt_service.<name>]`), read from a `toml::Table`.
//!
//! ```toml
//! [routing]
//! wrap_up_secs = 10               # after-call work before an agent is ready again
//! reservation_timeout_secs = 30   # agent must answer within this (after-routing-timeout)
//! not_ready_on_reject = true      # a rejecting or silent agent goes not ready
//! max_transfer_attempts = 3       # default of _max_transfer_to_agent_attempts
//! ewt_window = 20                 # distributed calls averaged by `urs`
//! ewt_method = "urs"              # or "urs2"
//!
//! [routing.queue.GMS_VQ]
//! target = "Billing@StatServer.GA"
//! priority_increment = 10
//! priority_increment_interval = 60
//! ewt_method = "urs2"
//!
//! [routing.ewt_service.ewt-billing]   # the urs-stat service of spec 20 §8.3
//! queue = "GMS_VQ"
//! aqt = "urs"
//! caching_policy = 30
//!
//! [[agent]]
//! id = "a1"
//! name = "Alice"
//! sip_account = "alice"        # or uri = "sip:alice@127.0.0.1:5070"
//! skills = { Billing = 6, English = 1 }
//! groups = ["Billing"]
//!
//! [agent_group.Billing]
//! agents = ["a2"]              # members besides the agents that name the group
//! ```

use std::collections::{BTreeMap, BTreeSet};

use toml::{Table, Value};

use super::ewt::Method;
use super::target::TargetList;

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub id: String,
    pub name: String,
    /// SIP account the agent's phone registers with.
    pub sip_account: Option<String>,
    /// Static contact URI (an agent phone that does not register).
    pub uri: Option<String>,
    pub skills: BTreeMap<String, i64>,
    pub groups: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub target: Option<TargetList>,
    /// `(increment, interval seconds)`.
    pub priority_increment: Option<(i64, i64)>,
    pub ewt_method: Option<Method>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EwtServiceConfig {
    pub queue: Option<String>,
    pub method: Method,
    pub caching_policy_secs: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoutingConfig {
    pub agents: Vec<AgentConfig>,
    /// Group → extra members listed under `[agent_group.<name>]`.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    pub wrap_up_secs: i64,
    pub reservation_timeout_secs: i64,
    pub not_ready_on_reject: bool,
    pub max_transfer_attempts: u32,
    pub ewt_window: usize,
    pub ewt_method: Method,
    pub queues: BTreeMap<String, QueueConfig>,
    pub ewt_services: BTreeMap<String, EwtServiceConfig>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            agents: Vec::new(),
            groups: BTreeMap::new(),
            wrap_up_secs: 0,
            reservation_timeout_secs: 30,
            not_ready_on_reject: true,
            max_transfer_attempts: 3,
            ewt_window: 20,
            ewt_method: Method::Urs,
            queues: BTreeMap::new(),
            ewt_services: BTreeMap::new(),
        }
    }
}

fn string(v: &Value, at: &str) -> Result<String, String> {
    v.as_str()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{at} must be a non-empty string"))
}

fn non_negative(v: &Value, at: &str) -> Result<i64, String> {
    match v.as_integer() {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(format!("{at} must not be negative, got {n}")),
        None => Err(format!("{at} must be an integer")),
    }
}

fn table<'a>(v: &'a Value, at: &str) -> Result<&'a Table, String> {
    v.as_table().ok_or_else(|| format!("{at} must be a table"))
}

fn check_keys(t: &Table, at: &str, allowed: &[&str]) -> Result<(), String> {
    match t.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{at}: unknown key '{k}' (expected one of {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn method(v: &Value, at: &str) -> Result<Method, String> {
    let s = string(v, at)?;
    Method::parse(&s).ok_or_else(|| format!("{at} must be \"urs\" or \"urs2\", got '{s}'"))
}

impl RoutingConfig {
    /// Reads the routing parts of a configuration file's table (other keys are ignored). The
    /// error names the key and the problem.
    pub fn from_table(root: &Table) -> Result<RoutingConfig, String> {
        let mut cfg = RoutingConfig::default();
        if let Some(r) = root.get("routing") {
            let r = table(r, "[routing]")?;
            check_keys(
                r,
                "[routing]",
                &[
                    "wrap_up_secs",
                    "reservation_timeout_secs",
                    "not_ready_on_reject",
                    "max_transfer_attempts",
                    "ewt_window",
                    "ewt_method",
                    "queue",
                    "ewt_service",
                ],
            )?;
            if let Some(v) = r.get("wrap_up_secs") {
                cfg.wrap_up_secs = non_negative(v, "routing.wrap_up_secs")?;
            }
            if let Some(v) = r.get("reservation_timeout_secs") {
                cfg.reservation_timeout_secs = non_negative(v, "routing.reservation_timeout_secs")?;
            }
            if let Some(v) = r.get("not_ready_on_reject") {
                cfg.not_ready_on_reject = v
                    .as_bool()
                    .ok_or("routing.not_ready_on_reject must be true or false")?;
            }
            if let Some(v) = r.get("max_transfer_attempts") {
                let n = non_negative(v, "routing.max_transfer_attempts")?;
                cfg.max_transfer_attempts = u32::try_from(n.clamp(1, 1000)).unwrap_or(1);
            }
            if let Some(v) = r.get("ewt_window") {
                let n = non_negative(v, "routing.ewt_window")?;
                cfg.ewt_window = usize::try_from(n.clamp(1, 10_000)).unwrap_or(1);
            }
            if let Some(v) = r.get("ewt_method") {
                cfg.ewt_method = method(v, "routing.ewt_method")?;
            }
            if let Some(q) = r.get("queue") {
                for (name, v) in table(q, "[routing.queue]")? {
                    let at = format!("[routing.queue.{name}]");
                    let t = table(v, &at)?;
                    check_keys(
                        t,
                        &at,
                        &[
                            "target",
                            "priority_increment",
                            "priority_increment_interval",
                            "ewt_method",
                        ],
                    )?;
                    let target = match t.get("target") {
                        Some(v) => Some(
                            TargetList::parse(&string(v, &format!("{at} target"))?)
                                .map_err(|e| format!("{at} target: {e}"))?,
                        ),
                        None => None,
                    };
                    let inc = t.get("priority_increment").map(|v| v.as_integer());
                    let interval = t
                        .get("priority_increment_interval")
                        .map(|v| non_negative(v, &format!("{at} priority_increment_interval")))
                        .transpose()?;
                    let priority_increment = match (inc, interval) {
                        (None, None) => None,
                        (Some(Some(i)), Some(s)) if s > 0 => Some((i, s)),
                        _ => {
                            return Err(format!(
                                "{at}: priority_increment (integer) and priority_increment_interval (seconds > 0) go together"
                            ));
                        }
                    };
                    let ewt_method = t
                        .get("ewt_method")
                        .map(|v| method(v, &format!("{at} ewt_method")))
                        .transpose()?;
                    cfg.queues.insert(
                        name.clone(),
                        QueueConfig {
                            target,
                            priority_increment,
                            ewt_method,
                        },
                    );
                }
            }
            if let Some(s) = r.get("ewt_service") {
                for (name, v) in table(s, "[routing.ewt_service]")? {
                    let at = format!("[routing.ewt_service.{name}]");
                    let t = table(v, &at)?;
                    check_keys(t, &at, &["queue", "aqt", "caching_policy"])?;
                    cfg.ewt_services.insert(
                        name.clone(),
                        EwtServiceConfig {
                            queue: t
                                .get("queue")
                                .map(|v| string(v, &format!("{at} queue")))
                                .transpose()?,
                            method: t
                                .get("aqt")
                                .map(|v| method(v, &format!("{at} aqt")))
                                .transpose()?
                                .unwrap_or(cfg.ewt_method),
                            caching_policy_secs: t
                                .get("caching_policy")
                                .map(|v| non_negative(v, &format!("{at} caching_policy")))
                                .transpose()?
                                .unwrap_or(30),
                        },
                    );
                }
            }
        }
        if let Some(groups) = root.get("agent_group") {
            for (name, v) in table(groups, "[agent_group]")? {
                let at = format!("[agent_group.{name}]");
                let t = table(v, &at)?;
                check_keys(t, &at, &["agents"])?;
                let mut members = BTreeSet::new();
                if let Some(list) = t.get("agents") {
                    let list = list.as_array().ok_or(format!("{at} agents must be an array"))?;
                    for m in list {
                        members.insert(string(m, &format!("{at} agents[]"))?);
                    }
                }
                cfg.groups.insert(name.clone(), members);
            }
        }
        if let Some(agents) = root.get("agent") {
            let list = agents.as_array().ok_or("[[agent]] must be an array of tables")?;
            let mut seen = BTreeSet::new();
            for (i, v) in list.iter().enumerate() {
                let at = format!("agent[{i}]");
                let t = table(v, &at)?;
                check_keys(t, &at, &["id", "name", "sip_account", "uri", "skills", "groups"])?;
                let id = string(
                    t.get("id").ok_or(format!("{at}: 'id' is missing"))?,
                    &format!("{at}.id"),
                )?;
                if !seen.insert(id.clone()) {
                    return Err(format!("{at}: agent id '{id}' is defined twice"));
                }
                let mut skills = BTreeMap::new();
                if let Some(s) = t.get("skills") {
                    for (skill, level) in table(s, &format!("{at}.skills"))? {
                        skills.insert(
                            skill.clone(),
                            non_negative(level, &format!("{at}.skills.{skill}"))?,
                        );
                    }
                }
                let mut groups = BTreeSet::new();
                if let Some(g) = t.get("groups") {
                    for m in g.as_array().ok_or(format!("{at}.groups must be an array"))? {
                        groups.insert(string(m, &format!("{at}.groups[]"))?);
                    }
                }
                cfg.agents.push(AgentConfig {
                    name: t
                        .get("name")
                        .map(|v| string(v, &format!("{at}.name")))
                        .transpose()?
                        .unwrap_or_else(|| id.clone()),
                    sip_account: t
                        .get("sip_account")
                        .map(|v| string(v, &format!("{at}.sip_account")))
                        .transpose()?,
                    uri: t
                        .get("uri")
                        .map(|v| string(v, &format!("{at}.uri")))
                        .transpose()?,
                    id,
                    skills,
                    groups,
                });
            }
        }
        for (group, members) in &cfg.groups {
            if let Some(m) = members.iter().find(|m| !cfg.agents.iter().any(|a| &a.id == *m)) {
                return Err(format!("[agent_group.{group}]: agent '{m}' is not defined"));
            }
        }
        let groups = cfg.groups.clone();
        for (group, members) in groups {
            for a in cfg.agents.iter_mut().filter(|a| members.contains(&a.id)) {
                a.groups.insert(group.clone());
            }
        }
        Ok(cfg)
    }
}
