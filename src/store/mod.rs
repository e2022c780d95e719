//! Persistence of callback records behind a trait.
//!
//! The store is the source of truth: the API answers only after the record is committed.
//! Updates are compare-and-swap on the record's `version`, so two writers never overwrite each
//! other silently (a loser re-reads and re-decides); that contract maps onto SQLite (one writer)
//! and onto PostgreSQL (`UPDATE ... WHERE version = $n`) alike.

mod sqlite;

use async_trait::async_trait;

pub use sqlite::SqliteStore;

use crate::callback::admission::{Admission, Refusal};
use crate::callback::record::CallbackRecord;
use crate::callback::state::State;
use crate::clock::Millis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage error: cannot open {path}: {message}")]
    Open { path: String, message: String },
    #[error("storage error: record {id} is unreadable: {message}")]
    Corrupt { id: String, message: String },
    #[error("storage error: the store is shut down")]
    Closed,
    #[error("storage error: a record with id {0} exists already")]
    Duplicate(String),
    #[error("storage error: {0}")]
    Write(String),
}

/// A (key, value) pair of the lookup index: the record's lookup key had this value at some
/// point ("is or was", spec 40 §6.6).
pub type LookupEntry = (String, String);

/// A lookup by properties (R6/R7).
#[derive(Debug, Clone, Default)]
pub struct LookupQuery {
    /// Restrict to one service (R6), or search all (R7).
    pub service: Option<String>,
    /// Property terms, each matching when the key is or was equal to the value.
    pub terms: Vec<LookupEntry>,
    /// `true`: a record matching any term (OR); `false`: every term (AND).
    pub any: bool,
}

/// A filter over stored records (admin listings and reports).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub service: Option<String>,
    /// Desired time bounds, inclusive.
    pub desired_from: Option<Millis>,
    pub desired_to: Option<Millis>,
    /// Keep only these states (all when empty).
    pub states: Vec<State>,
    /// Keep only COMPLETED records with one of these reasons (all when empty).
    pub reasons: Vec<String>,
    /// Newest desired time first.
    pub descending: bool,
    pub limit: usize,
}

/// What the scheduler needs to re-arm a record's timers after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerSeed {
    pub id: String,
    pub service: String,
    pub state: State,
    pub desired_time: Millis,
    pub expiration_time: Millis,
    /// The record's own `_request_execution_time_buffer`, when it has one.
    pub buffer_secs: Option<i64>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits a new record and its lookup entries.
    async fn insert(&self, record: &CallbackRecord, lookups: &[LookupEntry]) -> Result<(), StoreError>;

    /// Replaces the stored record if its version still equals `record.version`; the stored
    /// version becomes `record.version + 1`. Adds the lookup entries (history is kept).
    /// `Ok(false)` when another write came first (or the record is gone).
    async fn update(&self, record: &CallbackRecord, lookups: &[LookupEntry]) -> Result<bool, StoreError>;

    /// Deletes a record and its lookup history; with `version`, only if it still matches.
    async fn delete(&self, id: &str, version: Option<u64>) -> Result<bool, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<CallbackRecord>, StoreError>;

    async fn get_by_session(&self, session_id: &str) -> Result<Option<CallbackRecord>, StoreError>;

    /// Records matching a lookup, ordered by desired time then ID.
    async fn lookup(&self, query: &LookupQuery) -> Result<Vec<CallbackRecord>, StoreError>;

    /// Every record with a live session (to hand back to the engine after a restart).
    async fn in_session(&self) -> Result<Vec<CallbackRecord>, StoreError>;

    /// What every stored record's timers need.
    async fn timer_seeds(&self) -> Result<Vec<TimerSeed>, StoreError>;

    /// Number of stored records.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Commits a new record if, in the same transaction, every admission holds; otherwise
    /// stores nothing and says which admission failed.
    async fn insert_admitted(
        &self,
        record: &CallbackRecord,
        lookups: &[LookupEntry],
        admissions: &[Admission],
    ) -> Result<Option<Refusal>, StoreError>;

    /// Like [`Store::update`], if every admission holds in the same transaction; otherwise
    /// nothing is written and the refusal says which admission failed.
    async fn update_admitted(
        &self,
        record: &CallbackRecord,
        lookups: &[LookupEntry],
        admissions: &[Admission],
    ) -> Result<Result<bool, Refusal>, StoreError>;

    /// Records matching a listing filter, by desired time (then ID), at most `limit`.
    async fn list(&self, query: &ListQuery) -> Result<Vec<CallbackRecord>, StoreError>;

    /// Number of the service's records per slot of `bucket_ms` (aligned from the epoch), keyed by
    /// slot start, over desired times in `[from, to)`. COMPLETED records whose reason is
    /// `CANCELLED` or `CANCELLED_BY_ADMIN` are not counted (spec 40 §5.6).
    async fn booked_per_slot(
        &self,
        service: &str,
        from: Millis,
        to: Millis,
        bucket_ms: i64,
    ) -> Result<std::collections::BTreeMap<Millis, u32>, StoreError>;
}
