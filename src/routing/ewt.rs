//! The two EWT methods of the seed (spec 20 §8.4): `EWT = T × (N_waiting + 1)` where `T` is
//! the average queue time of recently distributed calls (`urs`) or the inverse of the combined
//! handling rate of the agents serving the queue, an agent shared by `k` queues counting with
//! `AHT × k` (`urs2`). `T` is taken in whole seconds, as the seed's examples do ("about 33
//! seconds" → 231 s).

use std::collections::VecDeque;

/// Which method (`aqt=urs` or `aqt=urs2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Method {
    #[default]
    Urs,
    Urs2,
}

impl Method {
    pub fn parse(text: &str) -> Option<Method> {
        match text.trim() {
            t if t.eq_ignore_ascii_case("urs") => Some(Method::Urs),
            t if t.eq_ignore_ascii_case("urs2") => Some(Method::Urs2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Urs => "urs",
            Method::Urs2 => "urs2",
        }
    }
}

/// `urs`: `average(queue_times) × (waiting + 1)`; `None` without history.
pub fn urs(average_queue_secs: Option<f64>, waiting: u32) -> Option<i64> {
    let t = average_queue_secs?.round();
    Some(t as i64 * (i64::from(waiting) + 1))
}

/// `urs2`: agents given as `(average handle time in seconds, number of queues served)`.
/// Agents without a positive handle time are left out; `None` if none is left.
pub fn urs2(agents: impl IntoIterator<Item = (f64, u32)>, waiting: u32) -> Option<i64> {
    urs2_from(per_call_secs(agents), waiting)
}

/// `urs2` from the precomputed time per call ([`per_call_secs`]).
pub fn urs2_from(per_call_secs: Option<f64>, waiting: u32) -> Option<i64> {
    let t = per_call_secs?.round();
    Some(t as i64 * (i64::from(waiting) + 1))
}

/// Time per call of agents working in parallel: `1 / Σ 1/(AHT × k)`.
pub fn per_call_secs(agents: impl IntoIterator<Item = (f64, u32)>) -> Option<f64> {
    let rate: f64 = agents
        .into_iter()
        .filter(|(aht, _)| aht.is_finite() && *aht > 0.0)
        .map(|(aht, k)| 1.0 / (aht * f64::from(k.max(1))))
        .sum();
    if rate <= 0.0 || !rate.is_finite() {
        return None;
    }
    Some(1.0 / rate)
}

/// Sliding window of the last `capacity` values with an O(1) average.
#[derive(Debug, Clone)]
pub struct Window {
    values: VecDeque<f64>,
    capacity: usize,
    sum: f64,
}

impl Window {
    pub fn new(capacity: usize) -> Self {
        Self {
            values: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
            sum: 0.0,
        }
    }

    pub fn push(&mut self, v: f64) {
        if self.values.len() == self.capacity
            && let Some(old) = self.values.pop_front()
        {
            self.sum -= old;
        }
        self.values.push_back(v);
        self.sum += v;
    }

    pub fn average(&self) -> Option<f64> {
        if self.values.is_empty() {
            None
        } else {
            Some(self.sum / self.values.len() as f64)
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_worked_examples() {
        let mut w = Window::new(10);
        for t in [60.0, 120.0, 60.0] {
            w.push(t);
        }
        assert_eq!(urs(w.average(), 6), Some(560));
        assert_eq!(urs2([(60.0, 1), (120.0, 1), (60.0, 1)], 6), Some(168));
        assert_eq!(urs2([(60.0, 3), (120.0, 1), (60.0, 1)], 6), Some(231));
    }

    #[test]
    fn no_history_is_unknown_and_window_slides() {
        assert_eq!(urs(None, 3), None);
        assert_eq!(urs2([], 3), None);
        assert_eq!(urs2([(0.0, 1)], 3), None);
        let mut w = Window::new(2);
        for t in [100.0, 10.0, 20.0] {
            w.push(t);
        }
        assert_eq!(w.average(), Some(15.0));
        assert_eq!(urs(w.average(), 0), Some(15));
    }
}
