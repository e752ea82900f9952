//! The coordinator on SQL: embedded SQLite (standalone) or PostgreSQL (cluster), one
//! implementation through sqlx's `Any` driver. The SQL is the subset both engines share, with
//! `$N` placeholders (sqlx-sqlite reads them as positions too).
//!
//! SQLite: writes go through a one-connection pool, so they are serialized without lock
//! contention; reads use their own pool and see the last committed state (WAL journal);
//! `synchronous = FULL`, so a commit is on disk before a producer is acknowledged.
//! PostgreSQL: one pool; every compare-and-set is a single conditional UPDATE, so concurrent
//! nodes cannot both win; commit notifications travel by LISTEN/NOTIFY.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{instrument, warn};

use crate::coordinator::TransactionCounts;
use crate::error::{Error, Result};
use crate::model::*;
use crate::prelude::*;
use crate::schema::MIGRATIONS;

mod accounts;
mod catalog;
mod checkpoint;
mod consume;
#[cfg(test)]
mod contention;
mod held;
mod index;
mod lanes;
mod lite;
mod log;
mod maintain;
mod members;
mod operations;
mod writes;

use writes::{Announce, GroupCommit, Tx, Work};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The LISTEN/NOTIFY channel commits are announced on.
const CHANNEL: &str = "strata_commits";
/// Marks the notification of a commit that held records back (names never contain ':').
const HELD_PREFIX: &str = "held:";
/// The `writer` of an objects row that claims an orphan for deletion (node ids are never
/// empty).
const ORPHAN_COLLECTOR: &str = "";

#[derive(Debug)]
pub struct SqlCoordinator {
    dialect: Dialect,
    writer: AnyPool,
    reader: AnyPool,
    events: broadcast::Sender<CommitEvent>,
    listener: Option<JoinHandle<()>>,
    /// Connections returned to the writer and reader pools: one per transaction (or
    /// statement outside one). On PostgreSQL both name the one pool's counter.
    writes: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
    /// SQLite: the hot writes are group-committed (see `writes`); PostgreSQL: none.
    group: Option<GroupCommit>,
}

/// Every PostgreSQL session's bounds. A statement (a flush commit: a handful of rows per
/// queue) takes milliseconds; 15 s means the server is in trouble, and a commit must end,
/// one way or the other, well within the ingest commit deadline (30 s) that orphan
/// collection's grace is set against. A lock wait over 5 s is a stuck transaction; a
/// session idle inside a transaction for 60 s (a client that died mid-write) gives its row
/// locks back instead of blocking every writer behind them.
const POSTGRES_SESSION: &str = "SET statement_timeout = '15s'; SET lock_timeout = '5s';
     SET idle_in_transaction_session_timeout = '60s';";

/// A pool of up to `max` SQLite connections to `url`, each set up with `pragmas`, counted in
/// `counter`.
async fn sqlite_pool(url: &str, pragmas: &'static str, max: u32, counter: &Arc<AtomicU64>) -> Result<AnyPool> {
    let pool = counting(AnyPoolOptions::new(), counter, pragmas)
        .max_connections(max)
        .connect(url)
        .await?;
    Ok(pool)
}

/// Counts every connection handed out by a pool, new (set up with `setup`) or idle: each
/// starts one transaction or one statement run outside a transaction. Counted before the
/// caller gets it, so a finished call is always counted (a release runs in the background).
fn counting(options: AnyPoolOptions, counter: &Arc<AtomicU64>, setup: &'static str) -> AnyPoolOptions {
    let (connected, acquired) = (Arc::clone(counter), Arc::clone(counter));
    options
        .after_connect(move |conn, _| {
            connected.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move { sqlx::raw_sql(setup).execute(conn).await.map(|_| ()) })
        })
        .before_acquire(move |_, _| {
            acquired.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(true) })
        })
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

impl SqlCoordinator {
    /// `postgres://…` opens PostgreSQL; anything else is a SQLite database file path.
    pub async fn open(target: &str) -> Result<Self> {
        if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            Self::open_postgres(target).await
        } else {
            Self::open_sqlite(Path::new(target)).await
        }
    }

    /// Opens (creating if needed) a SQLite database file and applies pending migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        install_drivers();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::invalid("coordinator path", format!("{}: {e}", dir.display())))?;
        }
        let abs = std::path::absolute(path)
            .map_err(|e| Error::invalid("coordinator path", format!("{}: {e}", path.display())))?;
        let url = |mode: &str| format!("sqlite://{}?mode={mode}", abs.display());
        let (writes, reads) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let writer = sqlite_pool(
            &url("rwc"),
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
            1,
            &writes,
        )
        .await?;
        migrate(&writer, Dialect::Sqlite).await?;
        let reader = sqlite_pool(&url("ro"), "PRAGMA busy_timeout = 10000;", 4, &reads).await?;
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            dialect: Dialect::Sqlite,
            group: Some(GroupCommit::start(writer.clone(), events.clone())),
            writer,
            reader,
            events,
            listener: None,
            writes,
            reads,
        })
    }

    /// Connects to PostgreSQL, applies pending migrations (one node at a time) and listens
    /// for commit notifications.
    pub async fn open_postgres(url: &str) -> Result<Self> {
        install_drivers();
        let writes = Arc::new(AtomicU64::new(0));
        let pool = counting(AnyPoolOptions::new(), &writes, POSTGRES_SESSION)
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        migrate(&pool, Dialect::Postgres).await?;
        let (events, _) = broadcast::channel(1024);
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        let tx = events.clone();
        let listener = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(n) => {
                        let (held, payload) = match n.payload().strip_prefix(HELD_PREFIX) {
                            Some(rest) => (true, rest),
                            None => (false, n.payload()),
                        };
                        if let Some((tenant, topic)) = payload.split_once('/') {
                            let _ = tx.send(CommitEvent {
                                tenant: tenant.to_string(),
                                topic: Some(topic.to_string()),
                                held,
                            });
                        }
                    }
                    Err(e) => {
                        // Notifications may be lost while reconnecting: wake every waiter.
                        warn!(error = %e, "commit notification listener lost its connection; reconnecting");
                        let _ = tx.send(CommitEvent::missed());
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Self {
            dialect: Dialect::Postgres,
            writer: pool.clone(),
            reader: pool,
            events,
            listener: Some(listener),
            reads: Arc::new(AtomicU64::new(0)),
            writes,
            group: None,
        })
    }

    /// Closes the pools (checkpointing SQLite's journal) and the listener.
    pub async fn close(&self) {
        if let Some(l) = &self.listener {
            l.abort();
        }
        self.reader.close().await;
        self.writer.close().await;
    }
}

async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<()> {
    let mut tx = pool.begin().await?;
    if dialect == Dialect::Postgres {
        // Nodes starting together migrate one at a time; a migration (an index on a big
        // table) may take longer than a hot write is allowed to.
        sqlx::raw_sql(
            "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; SELECT pg_advisory_xact_lock(7354)",
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS strata_schema (version BIGINT PRIMARY KEY)")
        .execute(&mut *tx)
        .await?;
    let applied: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM strata_schema")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO strata_schema (version) VALUES ($1)")
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn int(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

fn topic_from_row(row: &AnyRow) -> Result<Topic> {
    let t = int(row, "message_type")?;
    Ok(Topic {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        message_type: MessageType::from_i32(t as i32)
            .ok_or_else(|| Error::Inconsistent(format!("unknown message type {t}")))?,
        queue_count: int(row, "queue_count")? as i32,
        created_ms: int(row, "created_ms")?,
        retention_ms: int(row, "retention_ms")?,
        lite_ttl_ms: int(row, "lite_ttl_ms")?,
        trace: int(row, "trace")? != 0,
    })
}

fn group_from_row(row: &AnyRow) -> Result<Group> {
    Ok(Group {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        fifo: int(row, "fifo")? != 0,
        max_attempts: int(row, "max_attempts")? as i32,
        broadcast: int(row, "broadcast")? != 0,
        start: if int(row, "start_latest")? != 0 {
            StartFrom::Latest
        } else {
            StartFrom::Earliest
        },
        created_ms: int(row, "created_ms")?,
        retry_policy: crate::retry::RetryPolicy::from_stored(&row.try_get::<String, _>("retry_policy")?)?,
        lane_fallback: crate::lane::Fallback::from_stored(int(row, "lane_fallback_ms")?),
    })
}

/// A block location from the columns batches and held records share.
fn location_from_row(row: &AnyRow, block_records: u32, format: BlockFormat) -> Result<BlockLocation> {
    Ok(BlockLocation {
        format,
        object: row.try_get("object")?,
        offset: int(row, "block_offset")? as u64,
        length: int(row, "block_length")? as u64,
        uncompressed_length: int(row, "uncompressed_length")? as u64,
        crc32c: int(row, "crc32c")? as u32,
        compression: int(row, "compression")? as i32,
        block_records,
    })
}

fn batch_from_row(queue: &QueueRef, row: &AnyRow) -> Result<Batch> {
    let count = int(row, "record_count")? as u32;
    // Rows from before migration 3 cover their whole block.
    let block_records = match int(row, "block_records")? as u32 {
        0 => count,
        n => n,
    };
    let format = match int(row, "format")? {
        0 => BlockFormat::Wal,
        1 => BlockFormat::Parquet,
        f => return Err(Error::Inconsistent(format!("unknown block format {f}"))),
    };
    Ok(Batch {
        queue: queue.clone(),
        base_offset: int(row, "base_offset")?,
        count,
        location: location_from_row(row, block_records, format)?,
        first_record: int(row, "first_record")? as u32,
        max_timestamp_ms: int(row, "max_ts")?,
    })
}

fn held_from_row(row: &AnyRow) -> Result<HeldRecord> {
    let kind = match int(row, "kind")? {
        1 => HoldKind::Timer,
        2 => HoldKind::Transaction,
        k => return Err(Error::Inconsistent(format!("unknown held kind {k}"))),
    };
    Ok(HeldRecord {
        id: row.try_get("id")?,
        kind,
        queue: QueueRef {
            tenant: row.try_get("tenant")?,
            topic: row.try_get("topic")?,
            queue: int(row, "queue_id")? as i32,
        },
        // Held records lie in WAL blocks.
        location: location_from_row(row, int(row, "block_records")? as u32, BlockFormat::Wal)?,
        record_index: int(row, "record_index")? as u32,
        message_id: row.try_get("message_id")?,
        due_ms: int(row, "due_ms")?,
        checks: int(row, "checks")?,
    })
}

fn node_from_row(row: &AnyRow) -> Result<Node> {
    Ok(Node {
        id: row.try_get("id")?,
        roles: Roles(int(row, "roles")?),
        advertise: row.try_get("advertise")?,
        epoch: int(row, "epoch")?,
        heartbeat_ms: int(row, "heartbeat_ms")?,
        alive: int(row, "alive")? != 0,
        remoting: Some(row.try_get::<String, _>("remoting")?).filter(|r| !r.is_empty()),
        departure: Departure::from_code(int(row, "departure")?),
    })
}

fn in_flight_from_row(queue: i32, row: &AnyRow) -> Result<InFlight> {
    Ok(InFlight {
        queue,
        offset: int(row, "msg_offset")?,
        attempt: int(row, "attempt")? as i32,
        seq: int(row, "seq")?,
        invisible_until_ms: int(row, "invisible_until_ms")?,
        group: row.try_get("msg_group")?,
    })
}

/// Appends a batch of `count` records of the block at `l`, from its record `first_record`,
/// to `q`; returns the batch's base offset. Zero copy: the batch points at bytes already
/// stored.
async fn append(
    tx: &mut Tx,
    q: &QueueRef,
    count: u32,
    l: &BlockLocation,
    first_record: u32,
    (min_ts, max_ts): (i64, i64),
) -> Result<i64> {
    let base: Option<i64> = sqlx::query(
        "UPDATE queues SET next_offset = next_offset + $1 WHERE tenant = $2 AND topic = $3 AND queue_id = $4
         RETURNING next_offset - $1 AS base",
    )
    .bind(i64::from(count))
    .bind(&q.tenant)
    .bind(&q.topic)
    .bind(q.queue)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| int(&r, "base"))
    .transpose()?;
    let base = match base {
        Some(base) => base,
        // A lite topic expired since the ingest node last saw it: it starts again.
        None if crate::lite::split(&q.topic).is_some() => revive_lite_queue(tx, q, count, max_ts).await?,
        None => return Err(queue_not_found(q)),
    };
    sqlx::query(
        "INSERT INTO batches (tenant, topic, queue_id, base_offset, record_count, object, block_offset,
           block_length, uncompressed_length, crc32c, compression, min_ts, max_ts, first_record, block_records, format)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&q.tenant)
    .bind(&q.topic)
    .bind(q.queue)
    .bind(base)
    .bind(i64::from(count))
    .bind(&l.object)
    .bind(l.offset as i64)
    .bind(l.length as i64)
    .bind(l.uncompressed_length as i64)
    .bind(i64::from(l.crc32c))
    .bind(l.compression)
    .bind(min_ts)
    .bind(max_ts)
    .bind(i64::from(first_record))
    .bind(i64::from(l.block_records))
    .bind(l.format as i64)
    .execute(&mut **tx)
    .await?;
    Ok(base)
}

/// The batch holding `offset` of `q`.
async fn locate(tx: &mut Tx, q: &QueueRef, offset: i64) -> Result<Batch> {
    let row = sqlx::query(
        "SELECT * FROM batches WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND base_offset <= $4
         ORDER BY base_offset DESC LIMIT 1",
    )
    .bind(&q.tenant)
    .bind(&q.topic)
    .bind(q.queue)
    .bind(offset)
    .fetch_optional(&mut **tx)
    .await?;
    let batch = row.as_ref().map(|r| batch_from_row(q, r)).transpose()?;
    batch.filter(|b| offset < b.end_offset()).ok_or_else(|| {
        Error::Inconsistent(format!(
            "no batch holds {}/{}/{} offset {offset}",
            q.tenant, q.topic, q.queue
        ))
    })
}

/// Creates a dead-letter topic (NORMAL, one queue) if missing.
async fn ensure_dead_letter_topic(tx: &mut Tx, tenant: &str, topic: &str, now_ms: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO topics (tenant, name, message_type, queue_count, created_ms) VALUES ($1, $2, $3, 1, $4)
         ON CONFLICT (tenant, name) DO NOTHING",
    )
    .bind(tenant)
    .bind(topic)
    .bind(MessageType::Normal as i64)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO queues (tenant, topic, queue_id, next_offset, min_offset) VALUES ($1, $2, 0, 0, 0)
         ON CONFLICT (tenant, topic, queue_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(topic)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends the record at `offset` of `from` to queue 0 of `topic` (a dead-letter move) and
/// records where it came from.
async fn append_dead_letter(tx: &mut Tx, from: &QueueRef, offset: i64, topic: &str, now_ms: i64) -> Result<i64> {
    let b = locate(tx, from, offset).await?;
    let to = QueueRef {
        tenant: from.tenant.clone(),
        topic: topic.to_string(),
        queue: 0,
    };
    let index = b.first_record + (offset - b.base_offset) as u32;
    let at = append(tx, &to, 1, &b.location, index, (now_ms, now_ms)).await?;
    sqlx::query(
        "INSERT INTO dead_letters (tenant, topic, msg_offset, origin_topic, origin_queue, origin_offset)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&to.tenant)
    .bind(&to.topic)
    .bind(at)
    .bind(&from.topic)
    .bind(from.queue)
    .bind(offset)
    .execute(&mut **tx)
    .await?;
    Ok(at)
}

/// Appends held records to their queues (zero copy): queues in one global order, so this
/// cannot deadlock with a concurrent commit; each queue's records in due order.
async fn release_held(tx: &mut Tx, mut held: Vec<HeldRecord>) -> Result<HashSet<(String, String)>> {
    held.sort_by(|a, b| (&a.queue, a.due_ms, &a.id).cmp(&(&b.queue, b.due_ms, &b.id)));
    let mut topics = HashSet::new();
    for h in &held {
        match append(tx, &h.queue, 1, &h.location, h.record_index, (h.due_ms, h.due_ms)).await {
            Ok(_) => {
                topics.insert((h.queue.tenant.clone(), h.queue.topic.clone()));
            }
            // Its topic was deleted after the record was held: it goes with it.
            Err(Error::QueueNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(topics)
}

/// Paths per `IN (…)` query: far below the bind limits (SQLite 32,766, PostgreSQL 65,535).
const PATHS_PER_QUERY: usize = 500;

/// `SELECT path FROM objects WHERE {writer} AND path IN (…)` for `paths`, with the orphan
/// collector bound as `$1` for `writer` to compare with.
fn objects_among<'q>(
    writer: &str,
    paths: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments> {
    let placeholders: Vec<String> = (2..paths.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT path FROM objects WHERE {writer} AND path IN ({})",
        placeholders.join(", ")
    );
    paths
        .iter()
        .fold(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ORPHAN_COLLECTOR), |q, p| {
            q.bind(p)
        })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn queue_not_found(q: &QueueRef) -> Error {
    Error::QueueNotFound {
        tenant: q.tenant.clone(),
        topic: q.topic.clone(),
        queue: q.queue,
    }
}

/// Creates a lite topic's queue again, holding the `count` records being appended (counted on
/// its parent without its quota: the ingest node checked it when the lite topic was new).
/// Returns their first offset.
async fn revive_lite_queue(tx: &mut Tx, q: &QueueRef, count: u32, now_ms: i64) -> Result<i64> {
    let parent = sqlx::query("UPDATE topics SET lite_count = lite_count + 1 WHERE tenant = $1 AND name = $2")
        .bind(&q.tenant)
        .bind(crate::lite::parent_of(&q.topic))
        .execute(&mut **tx)
        .await?;
    if parent.rows_affected() == 0 {
        // Its parent was deleted: nothing comes back.
        return Err(queue_not_found(q));
    }
    let base = crate::lite::first_offset(now_ms);
    sqlx::query(
        "INSERT INTO queues (tenant, topic, queue_id, next_offset, min_offset, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&q.tenant)
    .bind(&q.topic)
    .bind(q.queue)
    .bind(base + i64::from(count))
    .bind(base)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(base)
}

/// The cursor of a group on a queue (stored, or the queue's first retained offset) and the
/// queue's end; `None` if the queue does not exist.
async fn cursor(tx: &mut Tx, sub: &Subscription, queue: i32) -> Result<Option<(i64, i64)>> {
    let row = sqlx::query(
        "SELECT q.next_offset AS end_offset, COALESCE(c.next_offset, q.min_offset) AS cursor
         FROM queues q LEFT JOIN cursors c
           ON c.tenant = q.tenant AND c.topic = q.topic AND c.queue_id = q.queue_id AND c.grp = $1
         WHERE q.tenant = $2 AND q.topic = $3 AND q.queue_id = $4",
    )
    .bind(&sub.group)
    .bind(&sub.tenant)
    .bind(&sub.topic)
    .bind(queue)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((int(&r, "cursor")?, int(&r, "end_offset")?)))
        .transpose()
}

/// Moves a group's cursor from `from` to `to` if it is still at `from` and `to` does not pass
/// the queue's end. One conditional UPDATE: of two racing claims exactly one wins.
async fn move_cursor(tx: &mut Tx, sub: &Subscription, queue: i32, from: i64, to: i64) -> Result<bool> {
    ensure_cursor(tx, sub, queue).await?;
    let moved = sqlx::query(
        "UPDATE cursors SET next_offset = $5
         WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND next_offset = $6
           AND $5 <= (SELECT next_offset FROM queues WHERE tenant = $1 AND topic = $3 AND queue_id = $4)",
    )
    .bind(&sub.tenant)
    .bind(&sub.group)
    .bind(&sub.topic)
    .bind(queue)
    .bind(to)
    .bind(from)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Creates a group's cursor on a queue at the queue's first retained offset, if missing.
async fn ensure_cursor(tx: &mut Tx, sub: &Subscription, queue: i32) -> Result<()> {
    sqlx::query(
        "INSERT INTO cursors (tenant, grp, topic, queue_id, next_offset)
         SELECT $1, $2, $3, $4, min_offset FROM queues WHERE tenant = $1 AND topic = $3 AND queue_id = $4
         ON CONFLICT (tenant, grp, topic, queue_id) DO NOTHING",
    )
    .bind(&sub.tenant)
    .bind(&sub.group)
    .bind(&sub.topic)
    .bind(queue)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes the row lock of a group's cursor on a queue (creating the cursor if needed).
async fn lock_cursor(tx: &mut Tx, sub: &Subscription, queue: i32) -> Result<()> {
    ensure_cursor(tx, sub, queue).await?;
    sqlx::query(
        "UPDATE cursors SET next_offset = next_offset WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4",
    )
    .bind(&sub.tenant)
    .bind(&sub.group)
    .bind(&sub.topic)
    .bind(queue)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether a FIFO message group has a message in flight or waiting.
async fn group_busy(tx: &mut Tx, sub: &Subscription, queue: i32, group: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS busy FROM inflight
         WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_group = $5 LIMIT 1",
    )
    .bind(&sub.tenant)
    .bind(&sub.group)
    .bind(&sub.topic)
    .bind(queue)
    .bind(group)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

impl SqlCoordinator {
    /// Announces commits on `topics` (`held`: of records held back, see [`CommitEvent`]): on
    /// PostgreSQL within the transaction (delivered at commit, to every node); on SQLite the
    /// caller broadcasts after commit.
    async fn notify_in(&self, tx: &mut Tx, topics: &HashSet<(String, String)>, held: bool) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            let prefix = if held { HELD_PREFIX } else { "" };
            for (tenant, topic) in topics {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(format!("{prefix}{tenant}/{topic}"))
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs a hot write: in the next group commit on SQLite, in its own transaction on
    /// PostgreSQL (announced within it).
    async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        if let Some(group) = &self.group {
            return group.write(work).await;
        }
        let mut tx = self.writer.begin().await?;
        let (value, announce) = work(&mut tx).await?;
        self.notify_in(&mut tx, &announce.appended, false).await?;
        self.notify_in(&mut tx, &announce.held, true).await?;
        tx.commit().await?;
        Ok(value)
    }

    fn notify_after(&self, topics: &HashSet<(String, String)>, held: bool) {
        if self.dialect == Dialect::Sqlite {
            writes::publish(&self.events, topics, held);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sqlx::Connection;

    /// A fresh PostgreSQL database on the server `STRATA_TEST_POSTGRES_URL` names. Without
    /// one the test fails (a test that passes without running hides a broken backend),
    /// unless `STRATA_SKIP_SERVICES=1` says to skip it: then `None`.
    pub(crate) async fn fresh_postgres() -> Option<String> {
        let Ok(base) = std::env::var("STRATA_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("STRATA_SKIP_SERVICES").is_ok(),
                "STRATA_TEST_POSTGRES_URL is not set: run the tests through infra/test.sh (which starts \
                 PostgreSQL), or set STRATA_SKIP_SERVICES=1 to skip the PostgreSQL backend"
            );
            eprintln!("SKIPPED (STRATA_SKIP_SERVICES): the PostgreSQL backend");
            return None;
        };
        let name = format!("strata_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin = sqlx::postgres::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let (server, _) = base.rsplit_once('/').unwrap();
        Some(format!("{server}/{name}"))
    }

    /// Each part of the conformance suite, on each backend.
    macro_rules! conformance {
        ($($part:ident),*) => {$(
            mod $part {
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    let dir = tempfile::tempdir().unwrap();
                    let c = SqlCoordinator::open_sqlite(&dir.path().join("meta.db")).await.unwrap();
                    crate::conformance::register_writer(&c).await;
                    crate::conformance::$part::run(&c).await;
                }

                #[tokio::test]
                async fn postgres() {
                    let Some(url) = fresh_postgres().await else { return };
                    let c = SqlCoordinator::open_postgres(&url).await.unwrap();
                    crate::conformance::register_writer(&c).await;
                    crate::conformance::$part::run(&c).await;
                    c.close().await;
                }
            }
        )*};
    }
    conformance!(
        catalog, log, consume, held, maintain, members, accounts, lite, lanes, operations, index
    );

    #[tokio::test]
    async fn postgres_migrations_are_idempotent() {
        let Some(url) = fresh_postgres().await else { return };
        let c = SqlCoordinator::open_postgres(&url).await.unwrap();
        // A second node opening the same database is fine.
        let again = SqlCoordinator::open_postgres(&url).await.unwrap();
        again.close().await;
        c.close().await;
    }

    #[tokio::test]
    async fn postgres_many_concurrent_committers_keep_offsets_dense() {
        let Some(url) = fresh_postgres().await else { return };
        let nodes: Vec<SqlCoordinator> = futures::future::join_all((0..8).map(|_| SqlCoordinator::open_postgres(&url)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        crate::conformance::concurrent_committers(&nodes.iter().map(|n| n as &dyn Coordinator).collect::<Vec<_>>())
            .await;
    }

    /// DESIGN §5: a receive is one checkpoint row, not one row per message.
    #[tokio::test]
    async fn a_claim_is_one_row_whatever_its_size() {
        use crate::conformance::{T0, claim_new, fill, register_writer, sub};
        let dir = tempfile::tempdir().unwrap();
        let c = SqlCoordinator::open_sqlite(&dir.path().join("meta.db")).await.unwrap();
        register_writer(&c).await;
        fill(&c, "rows", "a", 32).await;
        let s = sub("rows", "g", "a");
        let rows = || async {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM inflight")
                .fetch_one(&c.reader)
                .await
                .unwrap();
            int(&row, "n").unwrap()
        };
        let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
        let got = c.pop_claim(&claim_new(&s, &st[0], 32, T0, T0 + 1000)).await.unwrap();
        assert_eq!((got.delivered.len(), rows().await), (32, 1));
        let receipts: Vec<Receipt> = got
            .delivered
            .iter()
            .map(|f| Receipt {
                subscription: s.clone(),
                queue: f.queue,
                offset: f.offset,
                seq: f.seq,
            })
            .collect();
        let before = c.transactions().writes;
        c.ack(&receipts[..31]).await.unwrap();
        assert_eq!(rows().await, 1);
        c.ack(&receipts[31..]).await.unwrap();
        assert_eq!(rows().await, 0);
        assert_eq!(c.transactions().writes - before, 2);
    }

    #[tokio::test]
    async fn sqlite_concurrent_committers_keep_offsets_dense() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqlCoordinator::open_sqlite(&dir.path().join("meta.db")).await.unwrap();
        crate::conformance::concurrent_committers(&[&c, &c, &c, &c]).await;
    }

    #[tokio::test]
    async fn sqlite_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        {
            let c = SqlCoordinator::open_sqlite(&path).await.unwrap();
            crate::conformance::write_then_reopen_part1(&c).await;
            c.close().await;
        }
        let c = SqlCoordinator::open_sqlite(&path).await.unwrap();
        crate::conformance::write_then_reopen_part2(&c).await;
    }
}
