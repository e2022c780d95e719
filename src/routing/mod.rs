//! Routing: virtual queues, agents and estimated wait time. This part answers the question the
//! callback API asks of it today: how long will a callback wait in its queue (EWT)?

use crate::config::EwtSource;

/// Estimated wait time of a queue, as the immediate-vs-scheduled rule and R12 use it.
pub trait WaitEstimator: Send + Sync + 'static {
    /// EWT in seconds for a callback whose EWT source is `source`; `None` when the statistic
    /// cannot be obtained (the rule then uses 0, spec 40 §5.5).
    fn ewt_secs(&self, source: &EwtSource) -> Option<i64>;
    /// The largest EWT of any queue, in seconds: how early the scheduler must look at
    /// scheduled callbacks.
    fn max_ewt_secs(&self) -> i64;
}

/// The estimator of a node whose queues have no served callbacks yet: every estimate is 0
/// seconds, which is what an empty history gives. The routing layer replaces it with
/// estimates from measured handle and queue times.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHistory;

impl WaitEstimator for NoHistory {
    fn ewt_secs(&self, _source: &EwtSource) -> Option<i64> {
        Some(0)
    }

    fn max_ewt_secs(&self) -> i64 {
        0
    }
}
