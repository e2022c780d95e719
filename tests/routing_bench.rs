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

    for method in [Method::Urs, Method::Urs2] {
        let n = 100_000;
        let start = Instant::now();
        let mut sum = 0i64;
        for k in 0..n {
            sum += r
                .ewt_with(&format!("VQ{}", k % QUEUES), method, 1000)
                .unwrap_or(0);
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        assert!(sum > 0);
        println!("EWT query ({}): {per:.3} us", method.as_str());
    }
}
