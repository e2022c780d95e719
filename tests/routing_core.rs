//! The routing core in virtual time: agent states, targets, virtual queues, reservation
//! exactly-once, and both EWT methods reproducing the seed's worked examples.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use boomerang::routing::config::{AgentConfig, RoutingConfig};
use boomerang::routing::ewt::Method;
use boomerang::routing::router::{
    AgentState, Enqueue, Mode, PhoneRegistry, ReleaseReason, Router, RoutingError, RoutingEvent,
};
use boomerang::routing::target::TargetList;

const S: i64 = 1000;

/// In-memory phone registrations.
#[derive(Default)]
struct Phones(Mutex<BTreeSet<String>>);

impl Phones {
    fn all(ids: &[&str]) -> Phones {
        Phones(Mutex::new(ids.iter().map(|s| s.to_string()).collect()))
    }
}

impl PhoneRegistry for Phones {
    fn is_registered(&self, agent: &AgentConfig) -> bool {
        self.0.lock().unwrap().contains(&agent.id)
    }
}

fn config(text: &str) -> RoutingConfig {
    RoutingConfig::from_table(&text.parse::<toml::Table>().unwrap()).unwrap()
}

const AGENTS: &str = r#"
[routing]
reservation_timeout_secs = 20
max_transfer_attempts = 2
[[agent]]
id = "a1"
skills = { Billing = 6, English = 1 }
groups = ["Billing"]
[[agent]]
id = "a2"
skills = { Billing = 3, English = 1 }
groups = ["Billing"]
[[agent]]
id = "a3"
skills = { Loans = 2 }
[agent_group.Loans]
agents = ["a3"]
"#;

fn enq(session: &str, queue: &str, priority: i64, age: i64) -> Enqueue {
    Enqueue {
        session_id: session.into(),
        callback_id: format!("cb-{session}"),
        queue: queue.into(),
        priority,
        priority_increment: None,
        age_origin: age,
        target: None,
        mode: Mode::ReserveFirst,
        max_attempts: None,
        confirm_timeout_secs: None,
    }
}

fn with_target(mut e: Enqueue, target: &str) -> Enqueue {
    e.target = Some(Arc::new(TargetList::parse(target).unwrap()));
    e
}

fn ready(r: &mut Router, ids: &[&str], now: i64) {
    let phones = Phones::all(ids);
    for id in ids {
        r.login(id, now).unwrap();
        r.ready(id, &phones, now).unwrap();
    }
}

fn reserved(events: &[RoutingEvent]) -> Vec<(String, String, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            RoutingEvent::Reserved {
                session_id,
                agent_id,
                reservation,
            } => Some((session_id.clone(), agent_id.clone(), *reservation)),
            _ => None,
        })
        .collect()
}

#[test]
fn agent_state_machine_and_bad_requests_leave_state_unchanged() {
    let mut r = Router::new(config(AGENTS));
    let phones = Phones::all(&["a1"]);
    assert_eq!(
        r.ready("zz", &phones, 0),
        Err(RoutingError::UnknownAgent("zz".into()))
    );
    let e = r.ready("a1", &phones, 0).unwrap_err();
    assert!(e.to_string().contains("while LOGGED_OUT"), "{e}");
    assert_eq!(r.agent_state("a1"), Some(AgentState::LoggedOut));
    r.login("a1", 0).unwrap();
    assert_eq!(r.agent_state("a1"), Some(AgentState::NotReady));
    r.login("a2", 0).unwrap();
    assert_eq!(
        r.ready("a2", &phones, 0),
        Err(RoutingError::PhoneNotRegistered("a2".into()))
    );
    assert_eq!(r.agent_state("a2"), Some(AgentState::NotReady));
    r.ready("a1", &phones, 5 * S).unwrap();
    r.not_ready("a1", Some("lunch"), 7 * S).unwrap();
    let v = r.agent("a1", 19 * S).unwrap();
    assert_eq!(
        (v.state, v.reason.as_deref(), v.time_in_state_secs),
        ("NOT_READY", Some("lunch"), 12)
    );
    r.logout("a1", 20 * S).unwrap();
    assert_eq!(r.agent_state("a1"), Some(AgentState::LoggedOut));
    assert!(r.hangup("a1", 20 * S).is_err());
    r.check_invariants().unwrap();
}

#[test]
fn busy_when_confirmed_then_wrap_up_then_ready() {
    let mut cfg = config(AGENTS);
    cfg.wrap_up_secs = 10;
    let mut r = Router::new(cfg);
    ready(&mut r, &["a1"], 0);
    r.enqueue(enq("s1", "vq", 0, 0), S);
    let res = reserved(&r.take_events());
    assert_eq!(res.len(), 1);
    assert_eq!(r.agent_state("a1"), Some(AgentState::Reserved));
    assert!(r.logout("a1", S).is_err(), "a reserved agent cannot log out");
    assert_eq!(r.confirm("s1", res[0].2, 2 * S).unwrap(), "a1");
    assert_eq!(r.agent_state("a1"), Some(AgentState::Busy));
    r.hangup("a1", 62 * S).unwrap();
    assert_eq!(r.agent_state("a1"), Some(AgentState::AfterCallWork));
    r.tick(71 * S);
    assert_eq!(r.agent_state("a1"), Some(AgentState::AfterCallWork));
    r.tick(72 * S);
    assert_eq!(r.agent_state("a1"), Some(AgentState::Ready));
    let v = r.agent("a1", 72 * S).unwrap();
    assert_eq!((v.handled, v.average_handle_secs), (1, Some(60.0)));
    r.check_invariants().unwrap();
}

#[test]
fn order_is_priority_then_age_and_priority_grows_by_the_formula() {
    let mut r = Router::new(config(AGENTS));
    r.enqueue(enq("old", "vq", 0, 0), 0);
    r.enqueue(enq("young", "vq", 0, 50 * S), 50 * S);
    let mut boosted = enq("boost", "vq", 5, 100 * S);
    boosted.priority_increment = Some((10, 60));
    r.enqueue(boosted, 100 * S);
    assert_eq!(r.place("boost").unwrap().position, 1);
    assert_eq!(r.place("old").unwrap().position, 2);
    assert_eq!(r.place("young").unwrap().position, 3);
    // priority = 5 + 10 * floor((now - start) / 60 s)
    r.tick(159 * S);
    assert_eq!(r.place("boost").unwrap().priority, 5);
    r.tick(160 * S);
    assert_eq!(r.place("boost").unwrap().priority, 15);
    r.tick(100 * S + 185 * S);
    assert_eq!(r.place("boost").unwrap().priority, 35);
    let p = r.place("young").unwrap();
    assert_eq!((p.position, p.total_waiting), (3, 3));
    assert!(r.remove("old", 300 * S));
    assert_eq!(r.place("young").unwrap().position, 2);
    r.check_invariants().unwrap();
}

#[test]
fn group_agent_and_skill_targets_pick_matching_agents() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a3", "a2", "a1"], 0);
    r.enqueue(with_target(enq("loan", "vq", 0, 0), "Loans@StatServer.GA"), S);
    r.enqueue(with_target(enq("bill", "vq", 0, 0), "Billing>5 & English"), S);
    r.enqueue(with_target(enq("one", "vq", 0, 0), "a2@StatServer.A"), S);
    let got: BTreeSet<(String, String)> = reserved(&r.take_events())
        .into_iter()
        .map(|(s, a, _)| (s, a))
        .collect();
    let want: BTreeSet<(String, String)> = [("loan", "a3"), ("bill", "a1"), ("one", "a2")]
        .iter()
        .map(|(s, a)| (s.to_string(), a.to_string()))
        .collect();
    assert_eq!(got, want);
    r.check_invariants().unwrap();
}

#[test]
fn target_list_skips_by_statistic_and_expands_after_timeouts() {
    let mut r = Router::new(config(AGENTS));
    let list = r#"[
      {"target":"Loans@S.GA","timeout":"15","clear":false,"stat_to_check":"StatAgentsAvailable","stat_operator":"<","stat_value":"1"},
      {"target":"a2@S.A","timeout":"10","clear":true},
      {"target":"a1@S.A","timeout":"10","clear":false}
    ]"#;
    // Nobody is logged in: step 0 is skipped (no agent available), step 1 is skipped
    // (default condition: no agent logged in), the last is never skipped.
    r.enqueue(with_target(enq("s", "vq", 0, 0), list), 0);
    ready(&mut r, &["a2"], S);
    assert!(
        reserved(&r.take_events()).is_empty(),
        "a2 is not in the active step"
    );
    r.logout("a2", S).unwrap();

    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a3"], 0);
    r.not_ready("a3", None, 0).unwrap();
    // Loans has nobody available -> skipped; a2 is logged in -> queued on a2.
    r.login("a2", 0).unwrap();
    r.login("a1", 0).unwrap();
    r.enqueue(with_target(enq("s", "vq", 0, 0), list), 0);
    let phones = Phones::all(&["a1", "a2", "a3"]);
    r.ready("a3", &phones, S).unwrap();
    assert!(reserved(&r.take_events()).is_empty(), "Loans was skipped");
    r.not_ready("a3", None, S).unwrap();
    // After 10 s on a2 (clear: true) the list moves to a1, replacing a2.
    r.tick(10 * S);
    r.ready("a2", &phones, 11 * S).unwrap();
    assert!(reserved(&r.take_events()).is_empty(), "a2 was cleared");
    r.ready("a1", &phones, 12 * S).unwrap();
    let res = reserved(&r.take_events());
    assert_eq!(res.first().map(|x| x.1.as_str()), Some("a1"));
    r.check_invariants().unwrap();
}

#[test]
fn release_tries_the_next_agent_then_gives_up_after_max_attempts() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1", "a2"], 0);
    r.enqueue(enq("s", "vq", 0, 0), S);
    let (_, first, id1) = reserved(&r.take_events()).remove(0);
    assert_eq!(first, "a1", "longest ready first");
    r.release("s", id1, ReleaseReason::Rejected, 2 * S).unwrap();
    assert_eq!(
        r.agent_state("a1"),
        Some(AgentState::NotReady),
        "rejecting agent set not ready"
    );
    let (_, second, _) = reserved(&r.take_events()).remove(0);
    assert_eq!(second, "a2");
    assert_eq!(
        r.release("s", id1, ReleaseReason::Rejected, 3 * S)
            .unwrap_err()
            .to_string(),
        "session 's' holds no reservation 1"
    );
    // No answer within the 20 s reservation timeout (reserved at 2 s): second attempt, limit 2 reached.
    r.tick(22 * S);
    let ev = r.take_events();
    assert!(
        ev.contains(&RoutingEvent::AttemptsExhausted {
            session_id: "s".into()
        }),
        "{ev:?}"
    );
    assert!(r.place("s").is_none());
    assert_eq!(r.agent_state("a2"), Some(AgentState::NotReady));
    r.check_invariants().unwrap();
}

#[test]
fn customer_gone_frees_the_agent_without_blame() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1"], 0);
    r.enqueue(enq("s", "vq", 0, 0), S);
    assert_eq!(reserved(&r.take_events()).len(), 1);
    assert!(r.remove("s", 2 * S));
    assert_eq!(r.agent_state("a1"), Some(AgentState::Ready));
    r.enqueue(enq("t", "vq", 0, 0), 3 * S);
    assert_eq!(reserved(&r.take_events())[0].1, "a1");
    r.check_invariants().unwrap();
}

#[test]
fn customer_first_mode_dials_the_customer_then_reserves() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1"], 0);
    let mut e = enq("c1", "vq", 0, 0);
    e.mode = Mode::CustomerFirst;
    let mut e2 = enq("c2", "vq", 0, 1);
    e2.mode = Mode::CustomerFirst;
    r.enqueue(e, S);
    r.enqueue(e2, S);
    let ev = r.take_events();
    assert_eq!(
        ev,
        vec![RoutingEvent::DialCustomer {
            session_id: "c1".into()
        }],
        "one agent, one dial"
    );
    assert_eq!(r.agent_state("a1"), Some(AgentState::Ready));
    r.customer_ready("c1", 5 * S).unwrap();
    let res = reserved(&r.take_events());
    assert_eq!((res[0].0.as_str(), res[0].1.as_str()), ("c1", "a1"));
    r.check_invariants().unwrap();
}

/// Agents handle one call each of the given durations from queue `vq`; a second and third
/// queue are served by `a1` (60 s calls) when `shared`.
fn handled_history(method: Method, times: [i64; 3], shared: bool) -> Router {
    let mut cfg = config(AGENTS);
    cfg.ewt_method = method;
    let mut r = Router::new(cfg);
    ready(&mut r, &["a1", "a2", "a3"], 0);
    let mut now = S;
    for (i, (agent, secs)) in ["a1", "a2", "a3"].iter().zip(times).enumerate() {
        let s = format!("h{i}");
        r.enqueue(with_target(enq(&s, "vq", 0, now), &format!("{agent}@S.A")), now);
        let res = reserved(&r.take_events());
        assert_eq!(res.len(), 1);
        // Queue time of the distributed call = handle time here, to share one table.
        r.confirm(&s, res[0].2, now + secs * S).unwrap();
        now += secs * S;
        r.hangup(agent, now + secs * S).unwrap();
        now += secs * S;
    }
    if shared {
        for q in ["vq2", "vq3"] {
            r.enqueue(with_target(enq(q, q, 0, now), "a1@S.A"), now);
            let res = reserved(&r.take_events());
            r.confirm(q, res[0].2, now).unwrap();
            now += 60 * S;
            r.hangup("a1", now).unwrap();
        }
    }
    for a in ["a1", "a2", "a3"] {
        r.not_ready(a, None, now).unwrap();
    }
    for w in 0..6 {
        r.enqueue(with_target(enq(&format!("w{w}"), "vq", 0, now), "a1@S.A"), now);
    }
    r
}

#[test]
fn ewt_urs_seed_example_560() {
    let r = handled_history(Method::Urs, [60, 120, 60], false);
    assert_eq!(r.waiting("vq"), 6);
    assert_eq!(r.ewt("vq"), Some(560));
    assert_eq!(r.ewt("empty-queue"), None);
}

#[test]
fn ewt_urs2_seed_examples_168_and_231() {
    // The six waiting calls may go to any of the three agents (a target list expanding at
    // once), so all three serve the queue.
    let mut r = handled_history(Method::Urs2, [60, 120, 60], false);
    for w in 0..6 {
        r.remove(&format!("w{w}"), 0);
    }
    let all = r#"[{"target":"a1@S.A","timeout":"0"},{"target":"a2@S.A","timeout":"0"},{"target":"a3@S.A"}]"#;
    for w in 0..6 {
        r.enqueue(with_target(enq(&format!("x{w}"), "vq", 0, 0), all), 0);
    }
    assert_eq!(r.waiting("vq"), 6);
    assert_eq!(r.ewt_with("vq", Method::Urs2, 6), Some(168));

    let mut r = handled_history(Method::Urs2, [60, 120, 60], true);
    for w in 0..6 {
        r.remove(&format!("w{w}"), 0);
    }
    for w in 0..6 {
        r.enqueue(with_target(enq(&format!("x{w}"), "vq", 0, 0), all), 0);
    }
    assert_eq!(r.ewt_with("vq", Method::Urs2, 6), Some(231));
    // urs keeps its own history: vq's distributed calls waited 60, 120, 60 s.
    assert_eq!(r.ewt_with("vq", Method::Urs, 6), Some(560));
}

/// xorshift: deterministic pseudo-random operations for the interleaving property.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn no_interleaving_double_books_or_loses_an_agent() {
    let ids: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let mut text = String::from("[routing]\nwrap_up_secs = 3\nreservation_timeout_secs = 5\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("[[agent]]\nid = \"{id}\"\ngroups = [\"G{}\"]\n", i % 2));
    }
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let phones = Phones::all(&id_refs);
    // Outcomes the call reports produced over all seeds (the property must exercise them).
    let mut outcomes: BTreeSet<String> = BTreeSet::new();
    for seed in 1..=200u64 {
        let mut r = Router::new(config(&text));
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut now = 0;
        let mut reservations: Vec<(String, u64)> = Vec::new();
        // The call layer's view: every agent call announced, reported on at random (stale,
        // repeated and out-of-order reports included).
        let mut agent_calls: Vec<boomerang::routing::router::AgentCall> = Vec::new();
        for step in 0..300 {
            now += rng.next(3) as i64 * S;
            let agent = &ids[rng.next(ids.len() as u64) as usize];
            let session = format!("s{}", rng.next(12));
            match rng.next(14) {
                0 => drop(r.login(agent, now)),
                1 => drop(r.ready(agent, &phones, now)),
                2 => drop(r.not_ready(agent, Some("x"), now)),
                3 => drop(r.logout(agent, now)),
                4 | 5 => {
                    let mut e = enq(
                        &session,
                        ["q0", "q1"][rng.next(2) as usize],
                        rng.next(3) as i64,
                        now,
                    );
                    if rng.next(2) == 0 {
                        e = with_target(e, &format!("G{}@S.GA", rng.next(2)));
                    }
                    r.enqueue(e, now);
                }
                6 => drop(r.remove(&session, now)),
                7 if !reservations.is_empty() => {
                    let (s, id) = reservations.swap_remove(rng.next(reservations.len() as u64) as usize);
                    drop(r.confirm(&s, id, now));
                }
                8 if !reservations.is_empty() => {
                    let (s, id) = reservations.swap_remove(rng.next(reservations.len() as u64) as usize);
                    let reason = [
                        ReleaseReason::Rejected,
                        ReleaseReason::NoAnswer,
                        ReleaseReason::CustomerGone,
                    ][rng.next(3) as usize];
                    drop(r.release(&s, id, reason, now));
                }
                9 => drop(r.hangup(agent, now)),
                11..=13 if !agent_calls.is_empty() => {
                    use boomerang::routing::router::AgentCallEvent as E;
                    let k = rng.next(agent_calls.len() as u64) as usize;
                    let event = [
                        E::Answered,
                        E::Bridged,
                        E::Rejected { code: 486 },
                        E::Rejected { code: 603 },
                        E::NoAnswer,
                        E::CustomerGone,
                        E::HungUp,
                    ][rng.next(7) as usize];
                    if let Some(call) = agent_calls.get(k) {
                        let before = r.agent(&call.agent_id, now).map(|v| (v.state, v.session_id));
                        let got = r.on_agent_call(call, event, now);
                        if let Ok(o) = &got {
                            outcomes.insert(format!("{o:?}"));
                        }
                        if got.is_err() {
                            let after = r.agent(&call.agent_id, now).map(|v| (v.state, v.session_id));
                            assert_eq!(
                                before, after,
                                "seed {seed} step {step}: a refused report changed state"
                            );
                            if rng.next(2) == 0 {
                                agent_calls.swap_remove(k);
                            }
                        }
                    }
                }
                _ => r.tick(now),
            }
            let events = r.take_events();
            for (s, _, id) in reserved(&events) {
                reservations.push((s, id));
            }
            agent_calls.extend(events.iter().filter_map(RoutingEvent::agent_call));
            if let Err(e) = r.check_invariants() {
                panic!("seed {seed} step {step}: {e}");
            }
        }
        // Drain: every call ends, every session leaves; no agent stays reserved or busy.
        for s in 0..12 {
            r.remove(&format!("s{s}"), now);
        }
        for a in &ids {
            let _ = r.hangup(a, now);
        }
        r.tick(now + 10 * S);
        for a in &ids {
            let st = r.agent_state(a).unwrap();
            assert!(
                !matches!(
                    st,
                    AgentState::Reserved | AgentState::Busy | AgentState::AfterCallWork
                ),
                "seed {seed}: agent {a} lost in {st:?}"
            );
        }
        r.check_invariants().unwrap();
    }
    for want in [
        "Connected",
        "Unchanged",
        "Released { retrying: true }",
        "Abandoned",
        "Ended",
    ] {
        assert!(outcomes.contains(want), "{want} never happened: {outcomes:?}");
    }
}

#[test]
fn configuration_errors_name_the_problem() {
    let cases = [
        (
            "[routing]\nwrap_up_secs = -5\n",
            "routing.wrap_up_secs must not be negative",
        ),
        (
            "[routing]\nreservation_timeout_secs = \"x\"\n",
            "must be an integer",
        ),
        ("[routing]\nflavour = 1\n", "unknown key 'flavour'"),
        ("[routing]\newt_method = \"urs3\"\n", "\"urs\" or \"urs2\""),
        ("[[agent]]\nname = \"x\"\n", "'id' is missing"),
        ("[[agent]]\nid = \"a\"\n[[agent]]\nid = \"a\"\n", "defined twice"),
        (
            "[[agent]]\nid = \"a\"\nskills = { B = -1 }\n",
            "agent[0].skills.B must not be negative",
        ),
        (
            "[agent_group.G]\nagents = [\"ghost\"]\n",
            "agent 'ghost' is not defined",
        ),
        (
            "[routing.queue.VQ]\ntarget = \"Billing>\"\n",
            "[routing.queue.VQ] target",
        ),
        ("[routing.queue.VQ]\npriority_increment = 10\n", "go together"),
        (
            "[routing]\nreservation_timeout_secs = -1\n",
            "routing.reservation_timeout_secs must not be negative, got -1",
        ),
        (
            "[routing.ewt_service.e]\ncaching_policy = -30\n",
            "[routing.ewt_service.e] caching_policy must not be negative",
        ),
        (
            "[routing.queue.VQ]\ntarget = '[{\"target\":\"G@S.GA\",\"timeout\":\"-5\"}]'\n",
            "[routing.queue.VQ] target: _target[0]: 'timeout' must not be negative",
        ),
        (
            "[routing.queue.VQ]\ntarget = '[{\"target\":\"G@S.GA\"'\n",
            "[routing.queue.VQ] target",
        ),
        (
            "[routing.queue.VQ]\ntarget = \"Billing>5 & \"\n",
            "[routing.queue.VQ] target",
        ),
        (
            "[routing.queue.VQ]\npriority_increment = 10\npriority_increment_interval = 0\n",
            "go together",
        ),
    ];
    for (text, want) in cases {
        let table: toml::Table = text.parse().unwrap();
        let e = RoutingConfig::from_table(&table).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
    }
    let one = r#"{"target":"G@S.GA","timeout":"5"}"#;
    let sixteen = format!("[routing.queue.VQ]\ntarget = '[{}]'\n", vec![one; 16].join(","));
    let e = RoutingConfig::from_table(&sixteen.parse::<toml::Table>().unwrap()).unwrap_err();
    assert!(
        e.contains("[routing.queue.VQ] target") && e.contains("at most 15"),
        "{e}"
    );
    let cfg = config("[agent_group.Loans]\nagents = [\"a\"]\n[[agent]]\nid = \"a\"\n");
    assert!(
        cfg.agents[0].groups.contains("Loans"),
        "group members get the group"
    );
}

// ---------------------------------------------------------------------- call events

use boomerang::routing::router::{AgentCall, AgentCallEvent, AgentCallOutcome};

/// The agent calls the last events asked for (what the call layer keeps).
fn calls(events: &[RoutingEvent]) -> Vec<AgentCall> {
    events.iter().filter_map(RoutingEvent::agent_call).collect()
}

fn one_call(r: &mut Router) -> AgentCall {
    let mut c = calls(&r.take_events());
    assert_eq!(c.len(), 1, "{c:?}");
    c.remove(0)
}

#[test]
fn answered_then_bridged_then_hung_up_goes_through_wrap_up() {
    let mut cfg = config(AGENTS);
    cfg.wrap_up_secs = 10;
    let mut r = Router::new(cfg);
    ready(&mut r, &["a1"], 0);
    r.enqueue(enq("s", "vq", 0, 0), 0);
    let call = one_call(&mut r);
    assert_eq!((call.session_id.as_str(), call.agent_id.as_str()), ("s", "a1"));
    assert_eq!(
        r.on_agent_call(&call, AgentCallEvent::HungUp, S),
        Err(RoutingError::IllegalTransition {
            agent: "a1".into(),
            action: "hang up",
            state: "RESERVED"
        }),
        "no hang-up before the call was connected"
    );
    assert_eq!(r.agent_state("a1"), Some(AgentState::Reserved));
    // The agent answers 15 s after the callback was queued.
    assert_eq!(
        r.on_agent_call(&call, AgentCallEvent::Answered, 15 * S),
        Ok(AgentCallOutcome::Connected)
    );
    assert_eq!(r.agent_state("a1"), Some(AgentState::Busy));
    assert!(r.place("s").is_none(), "the callback left its queue");
    assert_eq!(
        r.on_agent_call(&call, AgentCallEvent::Bridged, 16 * S),
        Ok(AgentCallOutcome::Unchanged)
    );
    assert_eq!(r.agent("a1", 16 * S).unwrap().session_id.as_deref(), Some("s"));
    // A 90 s call (busy from the answer at 15 s), then 10 s of wrap-up.
    assert_eq!(
        r.on_agent_call(&call, AgentCallEvent::HungUp, 105 * S),
        Ok(AgentCallOutcome::Ended)
    );
    assert_eq!(r.agent_state("a1"), Some(AgentState::AfterCallWork));
    assert!(
        r.on_agent_call(&call, AgentCallEvent::HungUp, 106 * S).is_err(),
        "a repeated report changes nothing"
    );
    r.tick(114 * S);
    assert_eq!(r.agent_state("a1"), Some(AgentState::AfterCallWork));
    r.tick(115 * S);
    assert_eq!(r.agent_state("a1"), Some(AgentState::Ready));
    let v = r.agent("a1", 115 * S).unwrap();
    assert_eq!((v.handled, v.average_handle_secs), (1, Some(90.0)));
    let q = r.queue_stats(115 * S);
    assert_eq!(
        (q[0].queue.as_str(), q[0].distributed, q[0].average_answer_secs),
        ("vq", 1, Some(15.0))
    );
    r.check_invariants().unwrap();
}

#[test]
fn without_wrap_up_the_agent_is_ready_at_hang_up_and_takes_the_next_callback() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1"], 0);
    r.enqueue(enq("s1", "vq", 0, 0), 0);
    r.enqueue(enq("s2", "vq", 0, 1), 0);
    let call = one_call(&mut r);
    assert_eq!(call.session_id, "s1");
    r.on_agent_call(&call, AgentCallEvent::Bridged, S).unwrap();
    assert_eq!(r.agent_state("a1"), Some(AgentState::Busy), "busy when bridged");
    r.on_agent_call(&call, AgentCallEvent::CustomerGone, 30 * S)
        .unwrap();
    let next = one_call(&mut r);
    assert_eq!((next.session_id.as_str(), next.agent_id.as_str()), ("s2", "a1"));
    r.check_invariants().unwrap();
}

#[test]
fn a_rejecting_agent_is_set_not_ready_and_the_next_agent_is_tried() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1", "a2"], 0);
    r.enqueue(enq("s", "vq", 0, 0), S);
    let first = one_call(&mut r);
    assert_eq!(first.agent_id, "a1");
    assert_eq!(
        r.on_agent_call(&first, AgentCallEvent::Rejected { code: 486 }, 2 * S),
        Ok(AgentCallOutcome::Released { retrying: true })
    );
    let v = r.agent("a1", 2 * S).unwrap();
    assert_eq!(
        (v.state, v.reason.as_deref()),
        ("NOT_READY", Some("rejected 486"))
    );
    let ev = r.take_events();
    assert!(
        ev.contains(&RoutingEvent::Released {
            session_id: "s".into(),
            agent_id: "a1".into(),
            reservation: first.reservation
        }),
        "{ev:?}"
    );
    let second = calls(&ev);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].agent_id, "a2");
    // A stale report about the first reservation changes nothing.
    assert!(r.on_agent_call(&first, AgentCallEvent::Answered, 3 * S).is_err());
    assert_eq!(r.agent_state("a1"), Some(AgentState::NotReady));
    // 603 from the second agent: the limit of 2 attempts is reached, the callback leaves.
    assert_eq!(
        r.on_agent_call(&second[0], AgentCallEvent::Rejected { code: 603 }, 4 * S),
        Ok(AgentCallOutcome::Released { retrying: false })
    );
    assert!(r.take_events().contains(&RoutingEvent::AttemptsExhausted {
        session_id: "s".into()
    }));
    assert!(r.place("s").is_none());
    assert_eq!(
        r.agent("a2", 4 * S).unwrap().reason.as_deref(),
        Some("rejected 603")
    );
    r.check_invariants().unwrap();
}

#[test]
fn when_not_ready_on_reject_is_off_the_agent_stays_ready_but_is_not_offered_the_same_callback() {
    let mut cfg = config(AGENTS);
    cfg.not_ready_on_reject = false;
    cfg.max_transfer_attempts = 5;
    let mut r = Router::new(cfg);
    ready(&mut r, &["a1"], 0);
    r.enqueue(enq("s", "vq", 0, 0), S);
    let call = one_call(&mut r);
    r.on_agent_call(&call, AgentCallEvent::NoAnswer, 5 * S).unwrap();
    assert_eq!(r.agent_state("a1"), Some(AgentState::Ready));
    assert!(calls(&r.take_events()).is_empty(), "not offered s again");
    r.enqueue(enq("t", "vq", 0, 10 * S), 10 * S);
    let next = one_call(&mut r);
    assert_eq!((next.session_id.as_str(), next.agent_id.as_str()), ("t", "a1"));
    assert_eq!(r.place("s").unwrap().position, 1, "s still waits");
    r.check_invariants().unwrap();
}

#[test]
fn a_silent_agent_is_released_after_the_callbacks_confirm_timeout() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1", "a2"], 0);
    let mut e = enq("s", "vq", 0, 0);
    e.confirm_timeout_secs = Some(8);
    r.enqueue(e, S);
    let first = one_call(&mut r);
    r.tick(8 * S);
    assert_eq!(
        r.agent_state("a1"),
        Some(AgentState::Reserved),
        "7 s: still ringing"
    );
    r.tick(9 * S);
    let ev = r.take_events();
    assert!(ev.contains(&RoutingEvent::Released {
        session_id: "s".into(),
        agent_id: "a1".into(),
        reservation: first.reservation
    }));
    let v = r.agent("a1", 9 * S).unwrap();
    assert_eq!((v.state, v.reason.as_deref()), ("NOT_READY", Some("no answer")));
    assert_eq!(calls(&ev)[0].agent_id, "a2", "the next agent is tried");
    // A late answer from the released agent is refused and changes nothing.
    assert!(r.on_agent_call(&first, AgentCallEvent::Answered, 10 * S).is_err());
    assert_eq!(r.agent_state("a1"), Some(AgentState::NotReady));
    // Without a callback timeout the configured reservation timeout (20 s) applies.
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1"], 0);
    let mut e = enq("s", "vq", 0, 0);
    e.confirm_timeout_secs = Some(0);
    r.enqueue(e, 0);
    one_call(&mut r);
    r.tick(19 * S);
    assert_eq!(r.agent_state("a1"), Some(AgentState::Reserved));
    r.tick(20 * S);
    assert_eq!(r.agent_state("a1"), Some(AgentState::NotReady));
    r.check_invariants().unwrap();
}

#[test]
fn the_customer_going_away_frees_the_agent_without_an_attempt() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1"], 0);
    r.enqueue(enq("s", "vq", 0, 0), 0);
    let call = one_call(&mut r);
    assert_eq!(
        r.on_agent_call(&call, AgentCallEvent::CustomerGone, S),
        Ok(AgentCallOutcome::Abandoned)
    );
    let v = r.agent("a1", S).unwrap();
    assert_eq!((v.state, v.reason, v.handled), ("READY", None, 0));
    assert!(r.place("s").is_none());
    assert_eq!(r.queue_stats(S)[0].distributed, 0);
    let ghost = AgentCall {
        agent_id: "nobody".into(),
        ..call.clone()
    };
    assert_eq!(
        r.on_agent_call(&ghost, AgentCallEvent::Answered, S),
        Err(RoutingError::UnknownAgent("nobody".into()))
    );
    r.check_invariants().unwrap();
}

#[test]
fn customer_first_reserves_once_the_customer_is_on_the_line_then_bridges() {
    let mut r = Router::new(config(AGENTS));
    ready(&mut r, &["a1"], 0);
    let mut e = enq("c", "vq", 0, 0);
    e.mode = Mode::CustomerFirst;
    r.enqueue(e, 0);
    assert_eq!(
        r.take_events(),
        vec![RoutingEvent::DialCustomer {
            session_id: "c".into()
        }]
    );
    r.customer_ready("c", 20 * S).unwrap();
    let call = one_call(&mut r);
    assert_eq!(
        r.on_agent_call(&call, AgentCallEvent::Bridged, 25 * S),
        Ok(AgentCallOutcome::Connected)
    );
    assert_eq!(r.agent_state("a1"), Some(AgentState::Busy));
    r.on_agent_call(&call, AgentCallEvent::HungUp, 85 * S).unwrap();
    assert_eq!(r.agent("a1", 85 * S).unwrap().average_handle_secs, Some(60.0));
    r.check_invariants().unwrap();
}

#[test]
fn urs2_follows_agent_statistics_as_they_change() {
    // The urs2 estimate is kept up to date incrementally: every change of an agent's handle
    // time, of the queues it serves and of the waiting targets shows at the next query.
    let mut cfg = config(AGENTS);
    cfg.ewt_method = Method::Urs2;
    let mut r = Router::new(cfg);
    ready(&mut r, &["a1", "a2"], 0);
    r.enqueue(with_target(enq("h1", "vq", 0, 0), "a1@S.A"), 0);
    let c1 = one_call(&mut r);
    r.on_agent_call(&c1, AgentCallEvent::Answered, 0).unwrap();
    r.on_agent_call(&c1, AgentCallEvent::HungUp, 60 * S).unwrap();
    assert_eq!(
        r.ewt("vq"),
        Some(60),
        "a1 served vq: 60 s per call, nobody waiting"
    );
    r.not_ready("a1", None, 60 * S).unwrap();
    r.not_ready("a2", None, 60 * S).unwrap();
    r.enqueue(with_target(enq("w", "vq", 0, 0), "Billing@S.GA"), 60 * S);
    assert_eq!(r.ewt("vq"), Some(120), "one waiting: 60 x 2");
    // a2 takes a 30 s call from another queue: a1 (60 s) and a2 (30 s) both match Billing.
    r.enqueue(with_target(enq("o", "other", 0, 0), "a2@S.A"), 60 * S);
    r.ready("a2", &Phones::all(&["a2"]), 60 * S).unwrap();
    let c2 = calls(&r.take_events()).remove(0);
    assert_eq!(c2.session_id, "o");
    r.on_agent_call(&c2, AgentCallEvent::Answered, 60 * S).unwrap();
    assert_eq!(r.ewt("vq"), Some(120), "a2 has no handle time yet");
    r.on_agent_call(&c2, AgentCallEvent::HungUp, 90 * S).unwrap();
    // 1 / (1/60 + 1/30) = 20 s per call, x 2.
    assert_eq!(r.ewt("vq"), Some(40));
    r.check_invariants().unwrap();
    // The waiting call (a2, ready again, is reserved for it) leaves: nobody waits, vq is
    // served by a1 alone again.
    r.remove("w", 90 * S);
    assert_eq!(r.ewt("vq"), Some(60));
    r.check_invariants().unwrap();
}

#[test]
fn an_agent_whose_phone_goes_away_is_not_ready_and_cannot_be_ready_again() {
    let mut r = Router::new(config(AGENTS));
    let phones = Phones::all(&["a1"]);
    r.login("a1", 0).unwrap();
    r.ready("a1", &phones, 0).unwrap();
    phones.0.lock().unwrap().remove("a1");
    r.phone_unregistered("a1", S).unwrap();
    let v = r.agent("a1", S).unwrap();
    assert_eq!(
        (v.state, v.reason.as_deref()),
        ("NOT_READY", Some("phone unregistered"))
    );
    assert_eq!(
        r.ready("a1", &phones, 2 * S),
        Err(RoutingError::PhoneNotRegistered("a1".into()))
    );
    r.enqueue(enq("s", "vq", 0, 0), 3 * S);
    assert!(calls(&r.take_events()).is_empty(), "nobody to reserve");
    phones.0.lock().unwrap().insert("a1".into());
    r.ready("a1", &phones, 4 * S).unwrap();
    assert_eq!(one_call(&mut r).agent_id, "a1");
    assert_eq!(
        r.phone_unregistered("zz", 5 * S),
        Err(RoutingError::UnknownAgent("zz".into()))
    );
    r.check_invariants().unwrap();
}
