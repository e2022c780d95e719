//! The embedded default store: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that commits them in groups: every write waiting when a
//! transaction starts joins it, and all are answered after the one `COMMIT` (and its fsync,
//! `synchronous=FULL`). A request is answered only after its record is durable, and under load
//! one fsync serves many requests. Reads use a small pool of read connections, and checkpoints
//! their own thread; WAL lets both run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params, params_from_iter,
};
use tokio::sync::{mpsc, oneshot};

use super::{ListQuery, LookupEntry, LookupQuery, Store, StoreError, TimerSeed};
use crate::callback::admission::{Admission, Refusal};
use crate::callback::record::CallbackRecord;
use crate::callback::state::State;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE callbacks (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    service          TEXT NOT NULL,
    state            TEXT NOT NULL,
    reason           TEXT,
    customer_number  TEXT,
    desired_time     INTEGER NOT NULL,
    time_scheduled   INTEGER NOT NULL,
    expiration_time  INTEGER NOT NULL,
    state_changed_at INTEGER NOT NULL,
    session_id       TEXT,
    paused_from      TEXT,
    properties       TEXT NOT NULL,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX callbacks_service_created ON callbacks(service, created_at);
-- Covers the slot counts (capacity admission, booked_per_slot) without reading the rows.
CREATE INDEX callbacks_service_desired ON callbacks(service, desired_time, state, reason);
CREATE INDEX callbacks_session ON callbacks(session_id) WHERE session_id IS NOT NULL;
-- Live callbacks only (sessions to restore, live-callback throttles, watermarks): a
-- scheduled callback, the bulk of the inserts, never touches it.
CREATE INDEX callbacks_live ON callbacks(service, state)
    WHERE state IN ('QUEUED', 'ROUTING', 'PROCESSING', 'PAUSED');
CREATE TABLE lookups (
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (key, value, seq)
) WITHOUT ROWID;
CREATE INDEX lookups_seq ON lookups(seq);
";

const COLUMNS: &str = "id, service, state, reason, customer_number, desired_time, time_scheduled, \
                       expiration_time, state_changed_at, session_id, paused_from, properties, version, created_at";

/// Most writes committed in one transaction.
const MAX_GROUP: usize = 1024;
/// Writes waiting for the writer before senders wait too (back-pressure).
const WRITE_QUEUE: usize = 8192;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// Page cache of each connection, KiB.
const CACHE_KIB: i64 = 65536;
/// WAL size (frames) at which the writer completes a checkpoint so the WAL restarts.
const WAL_RESTART_FRAMES: i64 = 1000;
/// How often committed WAL frames are checkpointed.
const CHECKPOINT_PERIOD: std::time::Duration = std::time::Duration::from_millis(10);
/// Most records a lookup returns.
pub const MAX_LOOKUP_RESULTS: usize = 10_000;

pub struct SqliteStore {
    writer: mpsc::Sender<WriteJob>,
    readers: Arc<ReaderPool>,
}

enum WriteOp {
    Insert {
        record: CallbackRecord,
        lookups: Vec<LookupEntry>,
        admissions: Vec<Admission>,
    },
    Update {
        record: CallbackRecord,
        lookups: Vec<LookupEntry>,
        admissions: Vec<Admission>,
    },
    Delete {
        id: String,
        version: Option<u64>,
    },
}

/// What a write did.
enum Outcome {
    /// Applied (`true`) or not, because the expected version or record was not there.
    Done(bool),
    /// An insert refused by an admission.
    Refused(Refusal),
}

struct WriteJob {
    op: WriteOp,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and starts its writer thread.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_error = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        configure(&conn).map_err(|e| open_error(e.to_string()))?;
        migrate(&mut conn).map_err(|e| match e {
            StoreError::Sqlite(e) => open_error(e.to_string()),
            other => other,
        })?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| open_error(format!("cannot start the writer thread: {e}")))?;
        let readers = Arc::new(ReaderPool {
            idle: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
        });
        let (checkpoint_path, alive) = (path.to_path_buf(), Arc::downgrade(&readers));
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_path, alive))
            .map_err(|e| open_error(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(SqliteStore { writer: tx, readers })
    }

    async fn write(&self, op: WriteOp) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteJob { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|_| StoreError::Closed)?
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A background thread copies WAL frames into the database file as they come (see
    // `checkpoint_loop`), but under continuous writes it never catches up with the last
    // frame, and the WAL only restarts (reusing its file) after a checkpoint that did. So the
    // writer finishes the job itself every WAL_RESTART_FRAMES frames: cheap, because the
    // background thread has already copied most of them.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_RESTART_FRAMES)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// Copies committed WAL frames back into the database file, on its own connection and
/// thread, so the writer never stops to do it. PASSIVE checkpoints never block the writer or
/// readers. Ends when the store is dropped.
fn checkpoint_loop(path: PathBuf, alive: std::sync::Weak<ReaderPool>) {
    let Ok(conn) = Connection::open(&path) else {
        tracing::error!("checkpointer cannot open {}", path.display());
        return;
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(1));
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_PERIOD);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!("checkpoint of {} failed: {e}", path.display());
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        0 => {
            let tx = conn.transaction()?;
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            Ok(())
        }
        SCHEMA_VERSION => Ok(()),
        newer => Err(StoreError::Open {
            path: conn.path().unwrap_or("?").to_string(),
            message: format!(
                "schema version {newer} was written by a newer Boomerang (this one knows {SCHEMA_VERSION})"
            ),
        }),
    }
}

struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    path: PathBuf,
}

impl ReaderPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c
            }
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteJob>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(job) = rx.blocking_recv() {
        group.push(job);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let results = commit_group(&mut conn, &group);
        for (job, result) in group.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// Runs a group of writes in one transaction. Each write's statements are atomic on their own
/// (SQLite undoes a failing statement), so a write refused by a constraint (a duplicate ID)
/// leaves the others of the group intact; any other failure rolls the whole group back and
/// fails every write of it.
fn commit_group(conn: &mut Connection, group: &[WriteJob]) -> Vec<Result<Outcome, StoreError>> {
    let fail_all = |e: &dyn std::fmt::Display| {
        group
            .iter()
            .map(|_| Err(StoreError::Write(e.to_string())))
            .collect()
    };
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(&e),
    };
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        match apply(&tx, &job.op) {
            Err(StoreError::Sqlite(e)) => return fail_all(&e),
            outcome => results.push(outcome),
        }
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(&e),
    }
}

fn apply(conn: &Connection, op: &WriteOp) -> Result<Outcome, StoreError> {
    match op {
        WriteOp::Insert {
            record,
            lookups,
            admissions,
        } => {
            if let Some(refusal) = first_refusal(conn, &record.service, admissions)? {
                return Ok(Outcome::Refused(refusal));
            }
            let mut stmt = conn.prepare_cached(&format!(
                "INSERT INTO callbacks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ))?;
            let row = RowValues::of(record)?;
            let created_at: &dyn ToSql = &record.created_at;
            let inserted = stmt.execute(params_from_iter(row.params().into_iter().chain([created_at])));
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                    return Err(StoreError::Duplicate(record.id.clone()));
                }
                Err(e) => return Err(e.into()),
            }
            add_lookups(conn, conn.last_insert_rowid(), lookups)?;
            Ok(Outcome::Done(true))
        }
        WriteOp::Update {
            record,
            lookups,
            admissions,
        } => {
            if let Some(refusal) = first_refusal(conn, &record.service, admissions)? {
                return Ok(Outcome::Refused(refusal));
            }
            let mut stmt = conn.prepare_cached(
                "UPDATE callbacks SET service = ?2, state = ?3, reason = ?4, customer_number = ?5, desired_time = ?6, \
                 time_scheduled = ?7, expiration_time = ?8, state_changed_at = ?9, session_id = ?10, paused_from = ?11, \
                 properties = ?12, version = version + 1 WHERE id = ?1 AND version = ?13 RETURNING seq",
            )?;
            let row = RowValues::of(record)?;
            let seq: Option<i64> = stmt
                .query_row(params_from_iter(row.params()), |r| r.get(0))
                .optional()?;
            if let Some(seq) = seq {
                add_lookups(conn, seq, lookups)?;
            }
            Ok(Outcome::Done(seq.is_some()))
        }
        WriteOp::Delete { id, version } => {
            let seq: Option<i64> = match version {
                Some(v) => conn
                    .prepare_cached("DELETE FROM callbacks WHERE id = ?1 AND version = ?2 RETURNING seq")?
                    .query_row(params![id, *v as i64], |r| r.get(0))
                    .optional()?,
                None => conn
                    .prepare_cached("DELETE FROM callbacks WHERE id = ?1 RETURNING seq")?
                    .query_row(params![id], |r| r.get(0))
                    .optional()?,
            };
            if let Some(seq) = seq {
                conn.prepare_cached("DELETE FROM lookups WHERE seq = ?1")?
                    .execute(params![seq])?;
            }
            Ok(Outcome::Done(seq.is_some()))
        }
    }
}

/// Live states: a session exists.
const LIVE_STATES: &str = "'QUEUED', 'ROUTING', 'PROCESSING', 'PAUSED'";

/// How many stored records count against an admission.
/// The first of `admissions` the stored callbacks of `service` refuse, with the count seen.
fn first_refusal(
    conn: &Connection,
    service: &str,
    admissions: &[Admission],
) -> Result<Option<Refusal>, StoreError> {
    for admission in admissions {
        let count = admission_count(conn, service, admission)?;
        if !admits(admission, count) {
            return Ok(Some(Refusal {
                admission: admission.clone(),
                count,
            }));
        }
    }
    Ok(None)
}

/// A record's values for `?1`..`?13`: the [`COLUMNS`] but `created_at`, in that order (the
/// INSERT binds `created_at` as `?14`; the UPDATE matches the version in `?13`).
struct RowValues<'a> {
    record: &'a CallbackRecord,
    state: &'static str,
    paused_from: Option<&'static str>,
    properties: String,
    version: i64,
}

impl<'a> RowValues<'a> {
    fn of(record: &'a CallbackRecord) -> Result<Self, StoreError> {
        Ok(RowValues {
            record,
            state: record.state.as_str(),
            paused_from: record.paused_from.map(State::as_str),
            properties: properties_json(record)?,
            version: record.version as i64,
        })
    }

    fn params(&self) -> [&dyn ToSql; 13] {
        let r = self.record;
        [
            &r.id,
            &r.service,
            &self.state,
            &r.reason,
            &r.customer_number,
            &r.desired_time,
            &r.time_scheduled,
            &r.expiration_time,
            &r.state_changed_at,
            &r.session_id,
            &self.paused_from,
            &self.properties,
            &self.version,
        ]
    }
}

fn admission_count(conn: &Connection, service: &str, admission: &Admission) -> Result<u32, StoreError> {
    let count: i64 = match admission {
        Admission::InQueue { number, .. } => conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM lookups l JOIN callbacks c ON c.seq = l.seq \
                 WHERE l.key = '_customer_number' AND l.value = ?1 AND c.customer_number = ?1 \
                 AND c.service = ?2 AND c.state IN ({LIVE_STATES})"
            ))?
            .query_row(params![number, service], |r| r.get(0))?,
        Admission::ServiceQueued { .. } => conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM callbacks WHERE state IN ({LIVE_STATES}) AND service = ?1"
            ))?
            .query_row(params![service], |r| r.get(0))?,
        Admission::Interval { since, .. } => conn
            .prepare_cached("SELECT COUNT(*) FROM callbacks WHERE service = ?1 AND created_at >= ?2")?
            .query_row(params![service, since], |r| r.get(0))?,
        Admission::Parameter {
            key, value, since, ..
        } if key == "_customer_number" => conn
            .prepare_cached(
                "SELECT COUNT(*) FROM lookups l JOIN callbacks c ON c.seq = l.seq \
                 WHERE l.key = '_customer_number' AND l.value = ?1 AND c.service = ?2 AND c.created_at >= ?3",
            )?
            .query_row(params![value, service, since], |r| r.get(0))?,
        Admission::Parameter {
            key, value, since, ..
        } => conn
            .prepare_cached(
                "SELECT COUNT(*) FROM callbacks WHERE service = ?1 AND created_at >= ?2 \
                 AND json_extract(properties, '$.\"' || ?3 || '\"') = ?4",
            )?
            .query_row(params![service, since, key, value], |r| r.get(0))?,
        Admission::Capacity {
            from, to, exclude, ..
        } => {
            let booked: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM callbacks WHERE service = ?1 AND desired_time >= ?2 AND desired_time < ?3 \
                     AND NOT (state = 'COMPLETED' AND reason IN ('CANCELLED', 'CANCELLED_BY_ADMIN'))",
                )?
                .query_row(params![service, from, to], |r| r.get(0))?;
            // A reschedule's own booking does not count against its new slot.
            let own: i64 = match exclude {
                Some(id) => conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM callbacks WHERE id = ?1 AND service = ?2 AND desired_time >= ?3 \
                         AND desired_time < ?4 AND NOT (state = 'COMPLETED' AND reason IN ('CANCELLED', 'CANCELLED_BY_ADMIN'))",
                    )?
                    .query_row(params![id, service, from, to], |r| r.get(0))?,
                None => 0,
            };
            booked - own
        }
    };
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

fn admits(admission: &Admission, count: u32) -> bool {
    match admission {
        Admission::InQueue { max, .. } => count < *max,
        Admission::ServiceQueued { limit }
        | Admission::Interval { limit, .. }
        | Admission::Parameter { limit, .. } => count < *limit,
        Admission::Capacity { capacity, .. } => count < *capacity,
    }
}

fn add_lookups(conn: &Connection, seq: i64, lookups: &[LookupEntry]) -> Result<(), StoreError> {
    if lookups.is_empty() {
        return Ok(());
    }
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO lookups (key, value, seq) VALUES (?1, ?2, ?3)")?;
    for (key, value) in lookups {
        stmt.execute(params![key, value, seq])?;
    }
    Ok(())
}

fn properties_json(record: &CallbackRecord) -> Result<String, StoreError> {
    serde_json::to_string(&record.properties).map_err(|e| StoreError::Corrupt {
        id: record.id.clone(),
        message: e.to_string(),
    })
}

fn record_from_row(row: &Row<'_>) -> Result<CallbackRecord, StoreError> {
    let id: String = row.get(0)?;
    let corrupt = |message: String| StoreError::Corrupt {
        id: id.clone(),
        message,
    };
    let state_text: String = row.get(2)?;
    let state = State::parse(&state_text).ok_or_else(|| corrupt(format!("unknown state '{state_text}'")))?;
    let paused_from = match row.get::<_, Option<String>>(10)? {
        None => None,
        Some(s) => Some(State::parse(&s).ok_or_else(|| corrupt(format!("unknown paused state '{s}'")))?),
    };
    let properties_text: String = row.get(11)?;
    let properties =
        serde_json::from_str(&properties_text).map_err(|e| corrupt(format!("properties: {e}")))?;
    let version: i64 = row.get(12)?;
    let created_at = row.get(13)?;
    Ok(CallbackRecord {
        service: row.get(1)?,
        state,
        reason: row.get(3)?,
        customer_number: row.get(4)?,
        desired_time: row.get(5)?,
        time_scheduled: row.get(6)?,
        expiration_time: row.get(7)?,
        state_changed_at: row.get(8)?,
        session_id: row.get(9)?,
        paused_from,
        properties,
        version: version as u64,
        created_at,
        id,
    })
}

fn query_records(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<CallbackRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(record_from_row(row)?);
    }
    Ok(out)
}

fn get_one(conn: &Connection, id: &str) -> Result<Option<CallbackRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM callbacks WHERE id = ?1"))?;
    let row = stmt
        .query_row(params![id], |row| Ok(record_from_row(row)))
        .optional()?;
    row.transpose()
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, record: &CallbackRecord, lookups: &[LookupEntry]) -> Result<(), StoreError> {
        self.insert_admitted(record, lookups, &[]).await.map(|_| ())
    }

    async fn update(&self, record: &CallbackRecord, lookups: &[LookupEntry]) -> Result<bool, StoreError> {
        match self.update_admitted(record, lookups, &[]).await? {
            Ok(applied) => Ok(applied),
            Err(_) => Ok(false),
        }
    }

    async fn update_admitted(
        &self,
        record: &CallbackRecord,
        lookups: &[LookupEntry],
        admissions: &[Admission],
    ) -> Result<Result<bool, Refusal>, StoreError> {
        let op = WriteOp::Update {
            record: record.clone(),
            lookups: lookups.to_vec(),
            admissions: admissions.to_vec(),
        };
        match self.write(op).await? {
            Outcome::Done(applied) => Ok(Ok(applied)),
            Outcome::Refused(refusal) => Ok(Err(refusal)),
        }
    }

    async fn delete(&self, id: &str, version: Option<u64>) -> Result<bool, StoreError> {
        match self
            .write(WriteOp::Delete {
                id: id.to_string(),
                version,
            })
            .await?
        {
            Outcome::Done(applied) => Ok(applied),
            Outcome::Refused(_) => Ok(false),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<CallbackRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| get_one(conn, &id)).await
    }

    async fn get_by_session(&self, session_id: &str) -> Result<Option<CallbackRecord>, StoreError> {
        let session_id = session_id.to_string();
        self.read(move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM callbacks WHERE session_id = ?1 LIMIT 1");
            Ok(query_records(conn, &sql, params![session_id])?.into_iter().next())
        })
        .await
    }

    async fn lookup(&self, query: &LookupQuery) -> Result<Vec<CallbackRecord>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT seq FROM lookups WHERE key = ?1 AND value = ?2")?;
            let mut selected: Option<std::collections::BTreeSet<i64>> = None;
            for (key, value) in &query.terms {
                let ids = stmt
                    .query_map(params![key, value], |r| r.get::<_, i64>(0))?
                    .collect::<Result<std::collections::BTreeSet<i64>, _>>()?;
                selected = Some(match selected {
                    None => ids,
                    Some(acc) if query.any => acc.union(&ids).cloned().collect(),
                    Some(acc) => acc.intersection(&ids).cloned().collect(),
                });
            }
            let mut out = Vec::new();
            let mut by_seq =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM callbacks WHERE seq = ?1"))?;
            for seq in selected.unwrap_or_default() {
                let row = by_seq
                    .query_row(params![seq], |row| Ok(record_from_row(row)))
                    .optional()?;
                if let Some(record) = row.transpose()?
                    && query.service.as_deref().is_none_or(|s| s == record.service)
                {
                    out.push(record);
                    if out.len() >= MAX_LOOKUP_RESULTS {
                        break;
                    }
                }
            }
            out.sort_by(|a, b| a.desired_time.cmp(&b.desired_time).then_with(|| a.id.cmp(&b.id)));
            Ok(out)
        })
        .await
    }

    async fn in_session(&self) -> Result<Vec<CallbackRecord>, StoreError> {
        self.read(|conn| {
            let sql = format!("SELECT {COLUMNS} FROM callbacks WHERE state IN ({LIVE_STATES})");
            query_records(conn, &sql, [])
        })
        .await
    }

    async fn timer_seeds(&self) -> Result<Vec<TimerSeed>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT id, service, state, desired_time, expiration_time, \
                 CAST(json_extract(properties, '$._request_execution_time_buffer') AS INTEGER) FROM callbacks")?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                let state_text: String = row.get(2)?;
                let state = State::parse(&state_text)
                    .ok_or_else(|| StoreError::Corrupt { id: id.clone(), message: format!("unknown state '{state_text}'") })?;
                out.push(TimerSeed {
                    id,
                    service: row.get(1)?,
                    state,
                    desired_time: row.get(3)?,
                    expiration_time: row.get(4)?,
                    buffer_secs: row.get(5)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn insert_admitted(
        &self,
        record: &CallbackRecord,
        lookups: &[LookupEntry],
        admissions: &[Admission],
    ) -> Result<Option<Refusal>, StoreError> {
        let op = WriteOp::Insert {
            record: record.clone(),
            lookups: lookups.to_vec(),
            admissions: admissions.to_vec(),
        };
        match self.write(op).await? {
            Outcome::Done(_) => Ok(None),
            Outcome::Refused(refusal) => Ok(Some(refusal)),
        }
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<CallbackRecord>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {COLUMNS} FROM callbacks WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(service) = &query.service {
                args.push(service.clone().into());
                sql.push_str(&format!(" AND service = ?{}", args.len()));
            }
            if let Some(from) = query.desired_from {
                args.push(from.into());
                sql.push_str(&format!(" AND desired_time >= ?{}", args.len()));
            }
            if let Some(to) = query.desired_to {
                args.push(to.into());
                sql.push_str(&format!(" AND desired_time <= ?{}", args.len()));
            }
            if !query.states.is_empty() {
                let names: Vec<String> = query.states.iter().map(|s| format!("'{}'", s.as_str())).collect();
                sql.push_str(&format!(" AND state IN ({})", names.join(", ")));
            }
            if !query.reasons.is_empty() {
                let mut marks = Vec::new();
                for reason in &query.reasons {
                    args.push(reason.clone().into());
                    marks.push(format!("?{}", args.len()));
                }
                sql.push_str(&format!(
                    " AND state = 'COMPLETED' AND reason IN ({})",
                    marks.join(", ")
                ));
            }
            let order = if query.descending { "DESC" } else { "ASC" };
            sql.push_str(&format!(
                " ORDER BY desired_time {order}, id {order} LIMIT {}",
                query.limit.min(1_000_000)
            ));
            query_records(conn, &sql, rusqlite::params_from_iter(args))
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM callbacks", [], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    async fn booked_per_slot(
        &self,
        service: &str,
        from: crate::clock::Millis,
        to: crate::clock::Millis,
        bucket_ms: i64,
    ) -> Result<std::collections::BTreeMap<crate::clock::Millis, u32>, StoreError> {
        let service = service.to_string();
        let bucket = bucket_ms.max(1);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT desired_time - (((desired_time % ?4) + ?4) % ?4) AS slot, COUNT(*) FROM callbacks \
                 WHERE service = ?1 AND desired_time >= ?2 AND desired_time < ?3 \
                 AND NOT (state = 'COMPLETED' AND reason IN ('CANCELLED', 'CANCELLED_BY_ADMIN')) \
                 GROUP BY slot",
            )?;
            let mut rows = stmt.query(params![service, from, to, bucket])?;
            let mut out = std::collections::BTreeMap::new();
            while let Some(row) = rows.next()? {
                let slot: i64 = row.get(0)?;
                let count: i64 = row.get(1)?;
                out.insert(slot, u32::try_from(count).unwrap_or(u32::MAX));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn record(id: &str, number: &str) -> CallbackRecord {
        CallbackRecord {
            id: id.into(),
            service: "svc".into(),
            state: State::Scheduled,
            reason: None,
            customer_number: Some(number.into()),
            desired_time: 1_000,
            time_scheduled: 500,
            created_at: 500,
            expiration_time: 2_000,
            state_changed_at: 500,
            session_id: None,
            paused_from: None,
            properties: BTreeMap::from([("usr_account".to_string(), "A1".to_string())]),
            version: 0,
        }
    }

    fn entries(pairs: &[(&str, &str)]) -> Vec<LookupEntry> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn query(pairs: &[(&str, &str)], any: bool) -> LookupQuery {
        LookupQuery {
            service: None,
            terms: entries(pairs),
            any,
        }
    }

    #[tokio::test]
    async fn insert_update_lookup_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("sub").join("t.db")).unwrap();
        let mut r = record("1-a", "5115");
        store
            .insert(
                &r,
                &entries(&[("_customer_number", "5115"), ("usr_account", "A1")]),
            )
            .await
            .unwrap();
        assert!(matches!(
            store.insert(&r, &[]).await,
            Err(StoreError::Duplicate(id)) if id == "1-a"
        ));
        assert_eq!(store.get("1-a").await.unwrap(), Some(r.clone()));

        // Compare-and-swap: the first update wins, a second one from the same version loses.
        r.state = State::Queued;
        r.session_id = Some("S1".into());
        assert!(
            store
                .update(&r, &entries(&[("usr_account", "B2")]))
                .await
                .unwrap()
        );
        assert!(!store.update(&r, &[]).await.unwrap());
        let stored = store.get("1-a").await.unwrap().unwrap();
        assert_eq!((stored.version, stored.state), (1, State::Queued));
        assert_eq!(
            store.get_by_session("S1").await.unwrap().map(|r| r.id),
            Some("1-a".into())
        );
        assert_eq!(store.in_session().await.unwrap().len(), 1);

        // "Is or was": both the old and the new account find the record.
        assert_eq!(
            store
                .lookup(&query(&[("usr_account", "A1")], false))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .lookup(&query(&[("usr_account", "B2")], false))
                .await
                .unwrap()
                .len(),
            1
        );
        let other = record("1-b", "777");
        store
            .insert(&other, &entries(&[("_customer_number", "777")]))
            .await
            .unwrap();
        let both = query(&[("usr_account", "A1"), ("_customer_number", "777")], true);
        assert_eq!(store.lookup(&both).await.unwrap().len(), 2);
        let neither = query(&[("usr_account", "A1"), ("_customer_number", "777")], false);
        assert!(store.lookup(&neither).await.unwrap().is_empty());

        // Delete: only at the expected version; the lookup history goes with the record.
        assert!(!store.delete("1-a", Some(0)).await.unwrap());
        assert!(store.delete("1-a", Some(1)).await.unwrap());
        assert_eq!(store.get("1-a").await.unwrap(), None);
        assert!(
            store
                .lookup(&query(&[("usr_account", "A1")], false))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(!store.delete("1-a", None).await.unwrap());
        assert_eq!(store.count().await.unwrap(), 1);
        let seeds = store.timer_seeds().await.unwrap();
        assert_eq!(seeds.len(), 1);
        assert_eq!(seeds[0].id, "1-b");
    }

    #[tokio::test]
    async fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
}
