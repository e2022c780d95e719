//! Routing throughput (ignored by default; run in release):
//! `cargo test --release -p boomerang --test routing_bench -- --ignored --nocapture`.
//! Reservation decisions per second with 10,000 waiting callbacks and 1,000 agents, and the
//! cost of an EWT query (both methods).

use std::sync::Arc;
use std::time::Instant;

use boomerang::routing::RoutingConfig;
use boomerang::routing::config::AgentConfig;
use boomerang::routing::ewt::Method;
use boomerang::routing::router::{AlwaysRegistered, Enqueue, Mode, Router, RoutingEvent};
use boomerang::routing::target::TargetList;

const QUEUES: usize = 10;
const AGENTS: usize = 1000;
const WAITING: usize = 10_000;

fn enqueue(r: &mut Router, targets: &[Arc<TargetList>], n: usize, now: i64) {
    let q = n % QUEUES;
    r.enqueue(
        Enqueue {
            session_id: format!("s{n}"),
            callback_id: format!("c{n}"),
            queue: format!("VQ{q}"),
            priority: (n % 3) as i64,
            priority_increment: None,
            age_origin: now,
            target: targets.get(q).cloned(),
            mode: Mode::ReserveFirst,
            max_attempts: None,
            confirm_timeout_secs: None,
        },
        now,
    );
}

fn reservations(r: &mut Router) -> Vec<(String, String, u64)> {
    r.take_events()
        .into_iter()
        .filter_map(|e| match e {
            RoutingEvent::Reserved {
                session_id,
                agent_id,
                reservation,
            } => Some((session_id, agent_id, reservation)),
            _ => None,
        })
        .collect()
}

#[test]
#[ignore]
fn reservations_per_second_and_ewt_query_cost() {
    let mut cfg = RoutingConfig::default();
    for i in 0..AGENTS {
        cfg.agents.push(AgentConfig {
            id: format!("a{i}"),
            name: format!("Agent {i}"),
            sip_account: None,
            uri: None,
            skills: [("Billing".to_string(), (i % 10) as i64)].into_iter().collect(),
            groups: [format!("G{}", i % QUEUES)].into_iter().collect(),
        });
    }
    let targets: Vec<Arc<TargetList>> = (0..QUEUES)
        .map(|q| Arc::new(TargetList::parse(&format!("G{q}@Stat.GA")).unwrap()))
        .collect();
    let mut r = Router::new(cfg);
    let mut now = 1_000;
    for n in 0..WAITING {
        enqueue(&mut r, &targets, n, now);
    }
    // Every agent takes a first call: they are all busy, 10,000 still wait.
    let phones = AlwaysRegistered;
    for i in 0..AGENTS {
        let id = format!("a{i}");
        r.login(&id, now).unwrap();
        r.ready(&id, &phones, now).unwrap();
    }
    let mut next = WAITING;
    for (s, _, res) in reservations(&mut r) {
        r.confirm(&s, res, now).unwrap();
        enqueue(&mut r, &targets, next, now);
        next += 1;
    }
    assert_eq!(r.len(), WAITING);

    // Each round: an agent hangs up -> ready -> one reservation decision -> confirmed, and a
    // new callback arrives so 10,000 keep waiting.
    let rounds = 100_000;
    // One hang-up a second: every agent handles a call every 1,000 s.
    let start = Instant::now();
    let mut decided = 0u64;
    for k in 0..rounds {
        now += 1000;
        let agent = format!("a{}", k % AGENTS);
        r.hangup(&agent, now).unwrap();
        for (s, a, res) in reservations(&mut r) {
            assert_eq!(a, agent);
            r.confirm(&s, res, now).unwrap();
            decided += 1;
        }
        enqueue(&mut r, &targets, next, now);
        next += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(decided, rounds as u64);
    assert_eq!(r.len(), WAITING);
    r.check_invariants().unwrap();
    println!(
        "reservation rounds (hang-up + decision + confirm + new callback): {:.0}/s ({:.2} us each), {WAITING} waiting, {AGENTS} agents",
        rounds as f64 / secs,
        secs * 1e6 / rounds as f64
    );

    let names: Vec<String> = (0..QUEUES).map(|q| format!("VQ{q}")).collect();
    for method in [Method::Urs, Method::Urs2] {
        // Five repetitions (the machine is shared): the best and the median are reported.
        let mut runs = Vec::new();
        for _ in 0..5 {
            let n = 100_000;
            let start = Instant::now();
            let mut sum = 0i64;
            for k in 0..n {
                sum += r.ewt_with(&names[k % QUEUES], method, 1000).unwrap_or(0);
            }
            runs.push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
            assert!(sum > 0);
        }
        report(&format!("EWT query ({}), repeated", method.as_str()), runs);
    }

    // The query right after an agent's statistics changed (a hang-up adds a handled call, a
    // confirm may add a served queue): only the query is timed, one per queue per change.
    for method in [Method::Urs, Method::Urs2] {
        let mut runs = Vec::new();
        for _ in 0..5 {
            let changes = 2_000;
            let mut timed = std::time::Duration::ZERO;
            let mut sum = 0i64;
            for k in 0..changes {
                now += 1000;
                let agent = format!("a{}", k % AGENTS);
                r.hangup(&agent, now).unwrap();
                for (s, _, res) in reservations(&mut r) {
                    r.confirm(&s, res, now).unwrap();
                }
                enqueue(&mut r, &targets, next, now);
                next += 1;
                let start = Instant::now();
                for q in &names {
                    sum += r.ewt_with(q, method, 1000).unwrap_or(0);
                }
                timed += start.elapsed();
            }
            runs.push(timed.as_secs_f64() * 1e6 / (changes * QUEUES) as f64);
            assert!(sum > 0);
        }
        report(
            &format!("EWT query ({}), first after an agent change", method.as_str()),
            runs,
        );
    }
    // The price of the O(1) urs2 query, paid on the write path: a callback whose target list
    // no other waiting callback has (a new distinct list: the matching agents join the
    // queue's urs2 set, O(agents)) enters and leaves the queue. Agents are all busy, so no
    // reservation is decided here.
    let lists: Vec<Arc<TargetList>> = (0..1000)
        .map(|n| Arc::new(TargetList::parse(&format!("Billing>{} | Loans>{n}", n % 10)).unwrap()))
        .collect();
    // VQ0 has been asked for urs2 (its urs2 sets are kept); VQ_urs_only never was.
    for queue in ["VQ0", "VQ_urs_only"] {
        let mut runs = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            for (n, t) in lists.iter().enumerate() {
                r.enqueue(
                    Enqueue {
                        session_id: format!("distinct{n}"),
                        callback_id: format!("distinct{n}"),
                        queue: queue.into(),
                        priority: 0,
                        priority_increment: None,
                        age_origin: now,
                        target: Some(t.clone()),
                        mode: Mode::ReserveFirst,
                        max_attempts: None,
                        confirm_timeout_secs: None,
                    },
                    now,
                );
                r.remove(&format!("distinct{n}"), now);
            }
            runs.push(start.elapsed().as_secs_f64() * 1e6 / lists.len() as f64);
        }
        // The first pass meets each list for the first time; later passes meet lists whose
        // matching agents are remembered.
        println!(
            "enqueue + remove, new distinct target list, {queue} ({AGENTS} agents): first pass {:.3} us",
            runs.first().copied().unwrap_or(0.0)
        );
        report(
            &format!("enqueue + remove, target list seen before, {queue} ({AGENTS} agents)"),
            runs.split_off(1),
        );
    }
    r.check_invariants().unwrap();
}

fn report(what: &str, mut runs_us: Vec<f64>) {
    runs_us.sort_by(f64::total_cmp);
    let best = runs_us.first().copied().unwrap_or(0.0);
    let median = runs_us.get(runs_us.len() / 2).copied().unwrap_or(0.0);
    println!("{what}: best {best:.3} us, median {median:.3} us");
}
