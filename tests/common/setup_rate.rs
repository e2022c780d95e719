//! Call setup through the driver, for the setup-rate harnesses (UDP and TCP): `calls` dials with
//! at most `concurrency` in flight, each hung up as soon as it is answered. A call counts when it
//! was answered and ended by our hangup; its setup time runs from the dial to the answer.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use boomerang::call::driver::{Dial, Telephony};
use boomerang::call::leg::{Cause, LegEvent};
use tokio::sync::Semaphore;

pub struct SetupRun {
    /// Setup times of the calls that counted, sorted.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl SetupRun {
    /// Calls per second that counted.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile (0..=1) of the setup times.
    pub fn pct(&self, p: f64) -> Option<Duration> {
        let l = &self.latencies;
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
    }
}

pub async fn dial_and_hang_up(
    t: &Telephony,
    calls: usize,
    concurrency: usize,
    dial: impl Fn() -> Dial,
) -> SetupRun {
    let sem = Arc::new(Semaphore::new(concurrency));
    let begin = Instant::now();
    let mut tasks = Vec::with_capacity(calls);
    for _ in 0..calls {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let t = t.clone();
        let dial = dial();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let (leg, mut rx) = t.dial(dial).await.ok()?;
            let mut setup = None;
            while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                match ev {
                    LegEvent::Answered { .. } => {
                        setup = Some(sent.elapsed());
                        let _ = t.hangup(leg).await;
                    }
                    LegEvent::Hangup { cause, .. } => return setup.filter(|_| cause == Cause::LocalHangup),
                    _ => {}
                }
            }
            None
        }));
    }
    let mut latencies = Vec::with_capacity(calls);
    for task in tasks {
        if let Ok(Some(d)) = task.await {
            latencies.push(d);
        }
    }
    let elapsed = begin.elapsed();
    latencies.sort();
    SetupRun { latencies, elapsed }
}
