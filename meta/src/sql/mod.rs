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

use crate::coordinator::{Coordinator, TransactionCounts};
use crate::error::{Error, Result};
use crate::model::*;
use crate::schema::MIGRATIONS;

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

/// Counts every connection released to a pool: each release ends one transaction or one
/// statement run outside a transaction.
fn counting(options: AnyPoolOptions, counter: &Arc<AtomicU64>) -> AnyPoolOptions {
    let counter = Arc::clone(counter);
    options.after_release(move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
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
        let writer = counting(AnyPoolOptions::new(), &writes)
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;")
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            })
            .connect(&url("rwc"))
            .await?;
        migrate(&writer, Dialect::Sqlite).await?;
        let reader = counting(AnyPoolOptions::new(), &reads)
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("PRAGMA busy_timeout = 10000;")
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            })
            .connect(&url("ro"))
            .await?;
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
        let pool = counting(AnyPoolOptions::new(), &writes)
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
        // Nodes starting together migrate one at a time.
        sqlx::query("SELECT pg_advisory_xact_lock(7354)")
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
    })
}

fn group_from_row(row: &AnyRow) -> Result<Group> {
    Ok(Group {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        fifo: int(row, "fifo")? != 0,
        max_attempts: int(row, "max_attempts")? as i32,
        created_ms: int(row, "created_ms")?,
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
    let base = base.ok_or_else(|| queue_not_found(q))?;
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

/// Appends the record at `offset` of `from` to queue 0 of `topic` (a dead-letter move).
async fn append_copy_of(tx: &mut Tx, from: &QueueRef, offset: i64, topic: &str, now_ms: i64) -> Result<i64> {
    let b = locate(tx, from, offset).await?;
    let to = QueueRef {
        tenant: from.tenant.clone(),
        topic: topic.to_string(),
        queue: 0,
    };
    let index = b.first_record + (offset - b.base_offset) as u32;
    append(tx, &to, 1, &b.location, index, (now_ms, now_ms)).await
}

/// Appends held records to their queues (zero copy): queues in one global order, so this
/// cannot deadlock with a concurrent commit; each queue's records in due order.
async fn release_held(tx: &mut Tx, mut held: Vec<HeldRecord>) -> Result<HashSet<(String, String)>> {
    held.sort_by(|a, b| (&a.queue, a.due_ms, &a.id).cmp(&(&b.queue, b.due_ms, &b.id)));
    let mut topics = HashSet::new();
    for h in &held {
        append(tx, &h.queue, 1, &h.location, h.record_index, (h.due_ms, h.due_ms)).await?;
        topics.insert((h.queue.tenant.clone(), h.queue.topic.clone()));
    }
    Ok(topics)
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

/// Records a taken message: in flight until `invisible_until_ms`, or waiting (`None`).
async fn insert_inflight(
    tx: &mut Tx,
    sub: &Subscription,
    queue: i32,
    t: &Taken,
    invisible_until_ms: Option<i64>,
) -> Result<()> {
    let (attempt, seq, until, waiting) = match invisible_until_ms {
        Some(until) => (1i64, 1i64, until, 0i64),
        None => (0, 0, 0, 1),
    };
    sqlx::query(
        "INSERT INTO inflight (tenant, grp, topic, queue_id, msg_offset, attempt, seq, invisible_until_ms,
           msg_group, waiting)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&sub.tenant)
    .bind(&sub.group)
    .bind(&sub.topic)
    .bind(queue)
    .bind(t.offset)
    .bind(attempt)
    .bind(seq)
    .bind(until)
    .bind(t.group.as_deref())
    .bind(waiting)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Wall-clock milliseconds, for timestamps of records moved without a caller's clock.
fn now_wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

const INFLIGHT_KEY: &str = "tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_offset = $5";

/// Binds the key of the in-flight row a receipt names to `$1..$5`.
fn inflight_query<'q>(sql: &'q str, r: &'q Receipt) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&r.subscription.tenant)
        .bind(&r.subscription.group)
        .bind(&r.subscription.topic)
        .bind(r.queue)
        .bind(r.offset)
}

/// The order in-flight rows are locked in, across subscriptions: one global order, so
/// concurrent transactions cannot deadlock.
fn lock_order(r: &Receipt) -> (&str, &str, &str, i32, i64) {
    let s = &r.subscription;
    (&s.tenant, &s.group, &s.topic, r.queue, r.offset)
}

/// Why a receipt matched no in-flight row.
async fn why_not_in_flight(tx: &mut Tx, r: &Receipt) -> Result<AckOutcome> {
    let sql = format!("SELECT seq FROM inflight WHERE {INFLIGHT_KEY}");
    if inflight_query(&sql, r).fetch_optional(&mut **tx).await?.is_some() {
        return Ok(AckOutcome::Stale);
    }
    let delivered = matches!(cursor(tx, &r.subscription, r.queue).await?, Some((c, _)) if r.offset < c);
    Ok(if delivered {
        AckOutcome::AlreadyAcked
    } else {
        AckOutcome::Unknown
    })
}

// --- the hot writes, run inside a (group) transaction -----------------------------------

async fn commit_flush_in(tx: &mut Tx, flush: &FlushCommit, now_ms: i64) -> Result<(Vec<Option<i64>>, Announce)> {
    // Fencing: only the writer's live epoch may commit. The row lock also orders this
    // commit against a concurrent declaration of the node's death.
    let live = sqlx::query("UPDATE nodes SET alive = alive WHERE id = $1 AND epoch = $2 AND alive = 1")
        .bind(&flush.writer)
        .bind(flush.writer_epoch)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if live != 1 {
        return Err(Error::Fenced {
            node: flush.writer.clone(),
            epoch: flush.writer_epoch,
        });
    }
    sqlx::query("INSERT INTO objects (path, size, writer, created_ms) VALUES ($1, $2, $3, $4)")
        .bind(&flush.object)
        .bind(flush.object_size as i64)
        .bind(&flush.writer)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    // Queue rows are locked in one global order, so concurrent flushes cannot deadlock.
    let mut order: Vec<usize> = (0..flush.batches.len()).collect();
    order.sort_by(|&a, &b| flush.batches[a].queue.cmp(&flush.batches[b].queue));
    let mut bases = vec![None; flush.batches.len()];
    for i in order {
        let b = &flush.batches[i];
        if b.held.is_empty() {
            let base = append(
                tx,
                &b.queue,
                b.count,
                &b.location,
                0,
                (b.min_timestamp_ms, b.max_timestamp_ms),
            )
            .await?;
            bases[i] = Some(base);
            continue;
        }
        if b.held.len() != b.count as usize {
            return Err(Error::invalid(
                "flush",
                format!("{} holds for {} records", b.held.len(), b.count),
            ));
        }
        for (index, h) in b.held.iter().enumerate() {
            sqlx::query(
                "INSERT INTO held (id, kind, tenant, topic, queue_id, object, block_offset, block_length,
                       uncompressed_length, crc32c, compression, block_records, record_index, message_id, due_ms,
                       checks, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16)",
            )
            .bind(held_id(&b.location.object, b.location.offset, index as u32))
            .bind(h.kind as i64)
            .bind(&b.queue.tenant)
            .bind(&b.queue.topic)
            .bind(b.queue.queue)
            .bind(&b.location.object)
            .bind(b.location.offset as i64)
            .bind(b.location.length as i64)
            .bind(b.location.uncompressed_length as i64)
            .bind(i64::from(b.location.crc32c))
            .bind(b.location.compression)
            .bind(i64::from(b.location.block_records))
            .bind(index as i64)
            .bind(&h.message_id)
            .bind(h.due_ms)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
    }
    // Consumers hear of appended batches, the timer loop of held ones.
    let (mut appended, mut held) = (HashSet::new(), HashSet::new());
    for b in &flush.batches {
        let topics = if b.held.is_empty() { &mut appended } else { &mut held };
        topics.insert((b.queue.tenant.clone(), b.queue.topic.clone()));
    }
    Ok((bases, Announce { appended, held }))
}

async fn pop_claim_in(tx: &mut Tx, claim: &PopClaim) -> Result<(Claimed, Announce)> {
    let sub = &claim.subscription;
    let mut claimed = Claimed::default();
    let mut dead_letters = false;
    // Rows are locked in one global order (queue id), so concurrent claims, whose
    // plans rotate over the queues, cannot deadlock.
    let mut queues: Vec<&QueueClaim> = claim.queues.iter().collect();
    queues.sort_by_key(|q| q.queue);
    for q in queues {
        let in_range = |o: &i64| (q.cursor_from..q.cursor_to).contains(o);
        if q.cursor_to < q.cursor_from || !q.deliver.iter().chain(&q.park).all(|t| in_range(&t.offset)) {
            return Err(Error::invalid(
                "pop claim",
                format!("offsets outside {}..{}", q.cursor_from, q.cursor_to),
            ));
        }
        let queue = QueueRef {
            tenant: sub.tenant.clone(),
            topic: sub.topic.clone(),
            queue: q.queue,
        };
        let fifo = !q.release.is_empty() || q.deliver.iter().chain(&q.park).any(|t| t.group.is_some());
        if fifo {
            // FIFO claims of one queue run one at a time: their group checks hold.
            lock_cursor(tx, sub, q.queue).await?;
        }
        let moved = q.cursor_to == q.cursor_from || move_cursor(tx, sub, q.queue, q.cursor_from, q.cursor_to).await?;
        if moved {
            for t in &q.deliver {
                let busy = match &t.group {
                    Some(g) => group_busy(tx, sub, q.queue, g).await?,
                    None => false,
                };
                if busy {
                    // Another claim made the group busy since the plan: this one waits.
                    insert_inflight(tx, sub, q.queue, t, None).await?;
                } else {
                    insert_inflight(tx, sub, q.queue, t, Some(claim.invisible_until_ms)).await?;
                    claimed.delivered.push(InFlight {
                        queue: q.queue,
                        offset: t.offset,
                        attempt: 1,
                        seq: 1,
                        invisible_until_ms: claim.invisible_until_ms,
                        group: t.group.clone(),
                    });
                }
            }
            for t in &q.park {
                insert_inflight(tx, sub, q.queue, t, None).await?;
            }
        } else {
            claimed.conflicts.push(q.queue);
        }
        for &offset in &q.release {
            let row = sqlx::query(
                    "UPDATE inflight SET waiting = 0, attempt = 1, seq = 1, invisible_until_ms = $6
                     WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_offset = $5 AND waiting = 1
                       AND NOT EXISTS (SELECT 1 FROM inflight a WHERE a.tenant = $1 AND a.grp = $2 AND a.topic = $3
                             AND a.queue_id = $4 AND a.msg_group = inflight.msg_group AND a.waiting = 0)
                       AND msg_offset = (SELECT MIN(m.msg_offset) FROM inflight m WHERE m.tenant = $1 AND m.grp = $2
                             AND m.topic = $3 AND m.queue_id = $4 AND m.msg_group = inflight.msg_group AND m.waiting = 1)
                     RETURNING msg_offset, attempt, seq, invisible_until_ms, msg_group",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(q.queue)
                .bind(offset)
                .bind(claim.invisible_until_ms)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(r) = row {
                claimed.delivered.push(in_flight_from_row(q.queue, &r)?);
            }
        }
        for &(offset, seq) in &q.redeliver {
            let sql = format!(
                "UPDATE inflight SET attempt = attempt + 1, seq = seq + 1, invisible_until_ms = $6
                     WHERE {INFLIGHT_KEY} AND seq = $7 AND waiting = 0 AND invisible_until_ms <= $8
                     RETURNING msg_offset, attempt, seq, invisible_until_ms, msg_group"
            );
            let receipt = Receipt {
                subscription: sub.clone(),
                queue: q.queue,
                offset,
                seq,
            };
            let row = inflight_query(&sql, &receipt)
                .bind(claim.invisible_until_ms)
                .bind(seq)
                .bind(claim.now_ms)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(r) = row {
                claimed.delivered.push(in_flight_from_row(q.queue, &r)?);
            }
        }
        for &(offset, seq) in &q.dead_letter {
            let Some(dlq) = &claim.dead_letter_topic else {
                return Err(Error::invalid("pop claim", "dead letters without a dead-letter topic"));
            };
            let sql = format!(
                "DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6 AND waiting = 0 AND invisible_until_ms <= $7"
            );
            let receipt = Receipt {
                subscription: sub.clone(),
                queue: q.queue,
                offset,
                seq,
            };
            let gone = inflight_query(&sql, &receipt)
                .bind(seq)
                .bind(claim.now_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if gone == 1 {
                append_copy_of(tx, &queue, offset, dlq, claim.now_ms).await?;
                claimed.dead_lettered.push((q.queue, offset));
                dead_letters = true;
            }
        }
    }
    let topics: HashSet<(String, String)> = claim
        .dead_letter_topic
        .iter()
        .filter(|_| dead_letters)
        .map(|t| (sub.tenant.clone(), t.clone()))
        .collect();
    Ok((claimed, Announce::appended(topics)))
}

async fn dead_letter_in(
    tx: &mut Tx,
    r: &Receipt,
    dead_letter_topic: &str,
) -> Result<(std::result::Result<(), AckOutcome>, Announce)> {
    let sql = format!("DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6");
    let gone = inflight_query(&sql, r)
        .bind(r.seq)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if gone != 1 {
        let why = why_not_in_flight(tx, r).await?;
        return Ok((Err(why), Announce::default()));
    }
    let queue = QueueRef {
        tenant: r.subscription.tenant.clone(),
        topic: r.subscription.topic.clone(),
        queue: r.queue,
    };
    append_copy_of(tx, &queue, r.offset, dead_letter_topic, now_wall_ms()).await?;
    // The dead-letter topic has news; a FIFO message group behind this message is free.
    let topics: HashSet<(String, String)> = [
        (r.subscription.tenant.clone(), dead_letter_topic.to_string()),
        (r.subscription.tenant.clone(), r.subscription.topic.clone()),
    ]
    .into();
    Ok((Ok(()), Announce::appended(topics)))
}

async fn ack_in(tx: &mut Tx, receipts: &[Receipt]) -> Result<(Vec<AckOutcome>, Announce)> {
    // Acking a FIFO message frees its message group: receivers waiting for it wake up.
    let mut freed = HashSet::new();
    let sql = format!("DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6 RETURNING msg_group");
    // Rows are deleted in one global order, so concurrent acks cannot deadlock.
    let mut order: Vec<usize> = (0..receipts.len()).collect();
    order.sort_by(|&a, &b| lock_order(&receipts[a]).cmp(&lock_order(&receipts[b])));
    let mut outcomes = vec![AckOutcome::Unknown; receipts.len()];
    for i in order {
        let r = &receipts[i];
        let deleted = inflight_query(&sql, r).bind(r.seq).fetch_optional(&mut **tx).await?;
        outcomes[i] = match deleted {
            Some(row) => {
                if row.try_get::<Option<String>, _>("msg_group")?.is_some() {
                    freed.insert((r.subscription.tenant.clone(), r.subscription.topic.clone()));
                }
                AckOutcome::Acked
            }
            None => why_not_in_flight(tx, r).await?,
        };
    }
    Ok((outcomes, Announce::appended(freed)))
}

async fn change_invisible_in(
    tx: &mut Tx,
    r: &Receipt,
    invisible_until_ms: i64,
) -> Result<(std::result::Result<InFlight, AckOutcome>, Announce)> {
    let sql = format!(
        "UPDATE inflight SET seq = seq + 1, invisible_until_ms = $6 WHERE {INFLIGHT_KEY} AND seq = $7
             RETURNING msg_offset, attempt, seq, invisible_until_ms, msg_group"
    );
    let row = inflight_query(&sql, r)
        .bind(invisible_until_ms)
        .bind(r.seq)
        .fetch_optional(&mut **tx)
        .await?;
    let result = match row {
        Some(row) => Ok(in_flight_from_row(r.queue, &row)?),
        None => Err(why_not_in_flight(tx, r).await?),
    };
    Ok((result, Announce::default()))
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
            for (tenant, topic) in topics {
                let _ = self.events.send(CommitEvent {
                    tenant: tenant.clone(),
                    topic: Some(topic.clone()),
                    held,
                });
            }
        }
    }
}

#[async_trait]
impl Coordinator for SqlCoordinator {
    #[instrument(skip_all, fields(tenant = %spec.tenant, topic = %spec.name), err)]
    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<Topic> {
        spec.validate()?;
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO topics (tenant, name, message_type, queue_count, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&spec.tenant)
        .bind(&spec.name)
        .bind(spec.message_type as i64)
        .bind(i64::from(spec.queue_count))
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    kind: "topic",
                    tenant: spec.tenant.clone(),
                    name: spec.name.clone(),
                });
            }
            other => other?,
        };
        for q in 0..spec.queue_count {
            sqlx::query(
                "INSERT INTO queues (tenant, topic, queue_id, next_offset, min_offset) VALUES ($1, $2, $3, 0, 0)
                 ON CONFLICT (tenant, topic, queue_id) DO NOTHING",
            )
            .bind(&spec.tenant)
            .bind(&spec.name)
            .bind(i64::from(q))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Topic {
            tenant: spec.tenant.clone(),
            name: spec.name.clone(),
            message_type: spec.message_type,
            queue_count: spec.queue_count,
            created_ms: now_ms,
            retention_ms: DEFAULT_RETENTION_MS,
        })
    }

    async fn topic(&self, tenant: &str, name: &str) -> Result<Option<Topic>> {
        sqlx::query("SELECT * FROM topics WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(topic_from_row)
            .transpose()
    }

    async fn update_topic_type(&self, tenant: &str, name: &str, message_type: MessageType) -> Result<Topic> {
        sqlx::query("UPDATE topics SET message_type = $3 WHERE tenant = $1 AND name = $2 RETURNING *")
            .bind(tenant)
            .bind(name)
            .bind(message_type as i64)
            .fetch_optional(&self.writer)
            .await?
            .as_ref()
            .map(topic_from_row)
            .transpose()?
            .ok_or_else(|| Error::TopicNotFound {
                tenant: tenant.into(),
                topic: name.into(),
            })
    }

    async fn list_topics(&self, tenant: &str) -> Result<Vec<Topic>> {
        sqlx::query("SELECT * FROM topics WHERE tenant = $1 ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(topic_from_row)
            .collect()
    }

    #[instrument(skip_all, fields(tenant = %spec.tenant, group = %spec.name), err)]
    async fn create_group(&self, spec: &GroupSpec, now_ms: i64) -> Result<Group> {
        spec.validate()?;
        let inserted = sqlx::query(
            "INSERT INTO consumer_groups (tenant, name, fifo, max_attempts, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&spec.tenant)
        .bind(&spec.name)
        .bind(i64::from(spec.fifo))
        .bind(i64::from(spec.max_attempts))
        .bind(now_ms)
        .execute(&self.writer)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                kind: "consumer group",
                tenant: spec.tenant.clone(),
                name: spec.name.clone(),
            }),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(Group {
                tenant: spec.tenant.clone(),
                name: spec.name.clone(),
                fifo: spec.fifo,
                max_attempts: spec.max_attempts,
                created_ms: now_ms,
            }),
        }
    }

    async fn group(&self, tenant: &str, name: &str) -> Result<Option<Group>> {
        sqlx::query("SELECT * FROM consumer_groups WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(group_from_row)
            .transpose()
    }

    async fn list_groups(&self, tenant: &str) -> Result<Vec<Group>> {
        sqlx::query("SELECT * FROM consumer_groups WHERE tenant = $1 ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(group_from_row)
            .collect()
    }

    #[instrument(skip_all, fields(object = %flush.object, batches = flush.batches.len()), err)]
    async fn commit_flush(&self, flush: &FlushCommit, now_ms: i64) -> Result<Vec<Option<i64>>> {
        let (flush, now_ms) = (flush.clone(), now_ms);
        self.write(Box::new(move |tx| {
            Box::pin(async move { commit_flush_in(tx, &flush, now_ms).await })
        }))
        .await
    }

    async fn batches(&self, queue: &QueueRef, from: i64, limit: u32) -> Result<Vec<Batch>> {
        sqlx::query(
            "SELECT * FROM batches WHERE tenant = $1 AND topic = $2 AND queue_id = $3
               AND base_offset >= COALESCE((SELECT MAX(base_offset) FROM batches
                   WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND base_offset <= $4), 0)
               AND base_offset + record_count > $4
             ORDER BY base_offset LIMIT $5",
        )
        .bind(&queue.tenant)
        .bind(&queue.topic)
        .bind(queue.queue)
        .bind(from)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| batch_from_row(queue, r))
        .collect()
    }

    async fn committed_objects(&self, objects: &[String]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in objects.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT path FROM objects WHERE path IN ({})", placeholders.join(", "));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for o in chunk {
                q = q.bind(o);
            }
            for row in q.fetch_all(&self.reader).await? {
                found.insert(row.try_get::<String, _>("path")?);
            }
        }
        Ok(found)
    }

    async fn queue_end(&self, queue: &QueueRef) -> Result<i64> {
        let row = sqlx::query("SELECT next_offset FROM queues WHERE tenant = $1 AND topic = $2 AND queue_id = $3")
            .bind(&queue.tenant)
            .bind(&queue.topic)
            .bind(queue.queue)
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(r) => int(&r, "next_offset"),
            None => Err(queue_not_found(queue)),
        }
    }

    async fn pop_state(
        &self,
        sub: &Subscription,
        queues: &[i32],
        now_ms: i64,
        max_expired: u32,
        fifo: bool,
    ) -> Result<Vec<QueuePopState>> {
        let mut tx = self.reader.begin().await?;
        // Two statements for every queue of the topic: cursors and ends, then up to
        // `max_expired` expired in-flight messages per queue.
        let mut bounds = std::collections::HashMap::new();
        for r in sqlx::query(
            "SELECT q.queue_id, q.next_offset AS end_offset, COALESCE(c.next_offset, q.min_offset) AS cursor
             FROM queues q LEFT JOIN cursors c
               ON c.tenant = q.tenant AND c.topic = q.topic AND c.queue_id = q.queue_id AND c.grp = $1
             WHERE q.tenant = $2 AND q.topic = $3",
        )
        .bind(&sub.group)
        .bind(&sub.tenant)
        .bind(&sub.topic)
        .fetch_all(&mut *tx)
        .await?
        {
            bounds.insert(
                int(&r, "queue_id")? as i32,
                (int(&r, "cursor")?, int(&r, "end_offset")?),
            );
        }
        let mut expired_by_queue: std::collections::HashMap<i32, Vec<InFlight>> = std::collections::HashMap::new();
        for r in sqlx::query(
            "SELECT queue_id, msg_offset, attempt, seq, invisible_until_ms, msg_group FROM
               (SELECT queue_id, msg_offset, attempt, seq, invisible_until_ms, msg_group,
                       ROW_NUMBER() OVER (PARTITION BY queue_id ORDER BY msg_offset) AS nth
                FROM inflight
                WHERE tenant = $1 AND grp = $2 AND topic = $3 AND waiting = 0 AND invisible_until_ms <= $4) e
             WHERE nth <= $5 ORDER BY queue_id, msg_offset",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .bind(now_ms)
        .bind(i64::from(max_expired))
        .fetch_all(&mut *tx)
        .await?
        {
            let queue = int(&r, "queue_id")? as i32;
            expired_by_queue
                .entry(queue)
                .or_default()
                .push(in_flight_from_row(queue, &r)?);
        }
        let mut states = Vec::with_capacity(queues.len());
        for &queue in queues {
            let Some(&(cursor, end)) = bounds.get(&queue) else {
                continue;
            };
            let expired = expired_by_queue.remove(&queue).unwrap_or_default();
            let (ready, busy) = if fifo {
                let ready = sqlx::query(
                    "SELECT w.msg_offset, w.msg_group FROM inflight w
                     WHERE w.tenant = $1 AND w.grp = $2 AND w.topic = $3 AND w.queue_id = $4 AND w.waiting = 1
                       AND NOT EXISTS (SELECT 1 FROM inflight a WHERE a.tenant = $1 AND a.grp = $2 AND a.topic = $3
                             AND a.queue_id = $4 AND a.msg_group = w.msg_group AND a.waiting = 0)
                       AND w.msg_offset = (SELECT MIN(m.msg_offset) FROM inflight m WHERE m.tenant = $1 AND m.grp = $2
                             AND m.topic = $3 AND m.queue_id = $4 AND m.msg_group = w.msg_group AND m.waiting = 1)
                     ORDER BY w.msg_offset LIMIT $5",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(queue)
                .bind(i64::from(max_expired))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok(Waiting {
                        offset: int(r, "msg_offset")?,
                        group: r.try_get("msg_group")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                let busy = sqlx::query(
                    "SELECT DISTINCT msg_group FROM inflight
                     WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_group IS NOT NULL",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(queue)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok(r.try_get::<String, _>("msg_group")?))
                .collect::<Result<Vec<_>>>()?;
                (ready, busy)
            } else {
                (Vec::new(), Vec::new())
            };
            states.push(QueuePopState {
                queue,
                cursor,
                end,
                expired,
                ready,
                busy,
            });
        }
        tx.commit().await?;
        Ok(states)
    }

    #[instrument(skip_all, fields(group = %claim.subscription.group, topic = %claim.subscription.topic), err)]
    async fn pop_claim(&self, claim: &PopClaim) -> Result<Claimed> {
        let claim = claim.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move { pop_claim_in(tx, &claim).await })
        }))
        .await
    }

    async fn dead_letter(&self, r: &Receipt, dead_letter_topic: &str) -> Result<std::result::Result<(), AckOutcome>> {
        let (r, dlq) = (r.clone(), dead_letter_topic.to_string());
        self.write(Box::new(move |tx| {
            Box::pin(async move { dead_letter_in(tx, &r, &dlq).await })
        }))
        .await
    }

    async fn dead_letter_expired(&self, now_ms: i64, limit: u32) -> Result<u32> {
        let candidates = sqlx::query(
            "SELECT i.tenant, i.grp, i.topic, i.queue_id, i.msg_offset, i.seq FROM inflight i
             JOIN consumer_groups g ON g.tenant = i.tenant AND g.name = i.grp
             WHERE i.waiting = 0 AND i.invisible_until_ms <= $1 AND i.attempt >= g.max_attempts
             LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut moved = 0;
        // One small transaction per message: an in-flight row, then a dead-letter queue row,
        // the order pop claims lock them in.
        for row in &candidates {
            let receipt = Receipt {
                subscription: Subscription {
                    tenant: row.try_get("tenant")?,
                    group: row.try_get("grp")?,
                    topic: row.try_get("topic")?,
                },
                queue: int(row, "queue_id")? as i32,
                offset: int(row, "msg_offset")?,
                seq: int(row, "seq")?,
            };
            let dlq = dead_letter_topic(&receipt.subscription.group);
            let mut tx = self.writer.begin().await?;
            let sql = format!(
                "DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6 AND waiting = 0 AND invisible_until_ms <= $7"
            );
            let gone = inflight_query(&sql, &receipt)
                .bind(receipt.seq)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone != 1 {
                continue; // acked or redelivered meanwhile
            }
            ensure_dead_letter_topic(&mut tx, &receipt.subscription.tenant, &dlq, now_ms).await?;
            let from = QueueRef {
                tenant: receipt.subscription.tenant.clone(),
                topic: receipt.subscription.topic.clone(),
                queue: receipt.queue,
            };
            append_copy_of(&mut tx, &from, receipt.offset, &dlq, now_ms).await?;
            let topics: HashSet<(String, String)> =
                [(from.tenant.clone(), dlq), (from.tenant.clone(), from.topic.clone())].into();
            self.notify_in(&mut tx, &topics, false).await?;
            tx.commit().await?;
            self.notify_after(&topics, false);
            moved += 1;
        }
        Ok(moved)
    }

    async fn fire_due_timers(&self, now_ms: i64, limit: u32) -> Result<u32> {
        let mut tx = self.writer.begin().await?;
        let due: Vec<HeldRecord> = sqlx::query(
            "DELETE FROM held WHERE id IN
               (SELECT id FROM held WHERE kind = 1 AND due_ms <= $1 ORDER BY due_ms LIMIT $2)
             RETURNING *",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(held_from_row)
        .collect::<Result<_>>()?;
        let fired = due.len() as u32;
        let topics = release_held(&mut tx, due).await?;
        self.notify_in(&mut tx, &topics, false).await?;
        tx.commit().await?;
        self.notify_after(&topics, false);
        Ok(fired)
    }

    async fn next_timer_at(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MIN(due_ms) AS next FROM held WHERE kind = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("next")?)
    }

    async fn recall_timer(&self, tenant: &str, topic: &str, id: &str) -> Result<Option<String>> {
        let gone = sqlx::query(
            "DELETE FROM held WHERE id = $1 AND kind = 1 AND tenant = $2 AND topic = $3 RETURNING message_id",
        )
        .bind(id)
        .bind(tenant)
        .bind(topic)
        .fetch_optional(&self.writer)
        .await?;
        gone.map(|r| Ok(r.try_get::<String, _>("message_id")?)).transpose()
    }

    async fn end_transaction(&self, tenant: &str, topic: &str, id: &str, commit: bool) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let half: Vec<HeldRecord> =
            sqlx::query("DELETE FROM held WHERE id = $1 AND kind = 2 AND tenant = $2 AND topic = $3 RETURNING *")
                .bind(id)
                .bind(tenant)
                .bind(topic)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(held_from_row)
                .collect::<Result<_>>()?;
        let found = !half.is_empty();
        let topics = if commit {
            release_held(&mut tx, half).await?
        } else {
            HashSet::new()
        };
        self.notify_in(&mut tx, &topics, false).await?;
        tx.commit().await?;
        self.notify_after(&topics, false);
        Ok(found)
    }

    async fn claim_transaction_checks(
        &self,
        topics: &[(String, String)],
        now_ms: i64,
        interval_ms: i64,
        limit: u32,
    ) -> Result<Vec<HeldRecord>> {
        let mut claimed = Vec::new();
        for (tenant, topic) in topics {
            let left = limit.saturating_sub(claimed.len() as u32);
            if left == 0 {
                break;
            }
            let rows = sqlx::query(
                "UPDATE held SET checks = checks + 1, due_ms = $3 + $4 *
                   CASE checks WHEN 0 THEN 1 WHEN 1 THEN 2 WHEN 2 THEN 4 WHEN 3 THEN 8 WHEN 4 THEN 16 ELSE 32 END
                 WHERE id IN
                   (SELECT id FROM held WHERE kind = 2 AND tenant = $1 AND topic = $2 AND due_ms <= $3
                    ORDER BY due_ms LIMIT $5)
                 RETURNING *",
            )
            .bind(tenant)
            .bind(topic)
            .bind(now_ms)
            .bind(interval_ms)
            .bind(i64::from(left))
            .fetch_all(&self.writer)
            .await?;
            for r in &rows {
                claimed.push(held_from_row(r)?);
            }
        }
        Ok(claimed)
    }

    async fn expire_transactions(&self, now_ms: i64, max_checks: i64) -> Result<u32> {
        let gone = sqlx::query("DELETE FROM held WHERE kind = 2 AND checks >= $1 AND due_ms <= $2")
            .bind(max_checks)
            .bind(now_ms)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(gone as u32)
    }

    #[instrument(skip_all, fields(receipts = receipts.len()), err)]
    async fn ack(&self, receipts: &[Receipt]) -> Result<Vec<AckOutcome>> {
        let receipts = receipts.to_vec();
        self.write(Box::new(move |tx| Box::pin(async move { ack_in(tx, &receipts).await })))
            .await
    }

    async fn change_invisible(
        &self,
        r: &Receipt,
        invisible_until_ms: i64,
    ) -> Result<std::result::Result<InFlight, AckOutcome>> {
        let r = r.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move { change_invisible_in(tx, &r, invisible_until_ms).await })
        }))
        .await
    }

    async fn next_visible_at(&self, sub: &Subscription) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(invisible_until_ms) AS next FROM inflight
             WHERE tenant = $1 AND grp = $2 AND topic = $3 AND waiting = 0",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .fetch_one(&self.reader)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("next")?)
    }

    async fn compaction_candidates(&self, before_ms: i64, limit: u32) -> Result<Vec<QueueRef>> {
        sqlx::query(
            "SELECT DISTINCT tenant, topic, queue_id FROM batches WHERE format = 0 AND max_ts < $1
             ORDER BY tenant, topic, queue_id LIMIT $2",
        )
        .bind(before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| {
            Ok(QueueRef {
                tenant: r.try_get("tenant")?,
                topic: r.try_get("topic")?,
                queue: int(r, "queue_id")? as i32,
            })
        })
        .collect()
    }

    async fn acquire_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
               WHERE leases.holder = excluded.holder OR leases.expires_ms <= $4
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now_ms + ttl_ms)
        .bind(now_ms)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    #[instrument(skip_all, fields(queue = ?swap.queue, from = swap.from, to = swap.to), err)]
    async fn swap_compacted(&self, swap: &CompactionSwap, now_ms: i64) -> Result<bool> {
        let q = &swap.queue;
        let mut tx = self.writer.begin().await?;
        // Fencing: the job's lease must still be ours (a compactor that stalled past its
        // lease must not swap over a newer job).
        let held = sqlx::query(
            "UPDATE leases SET expires_ms = expires_ms WHERE name = $1 AND holder = $2 AND expires_ms > $3",
        )
        .bind(&swap.lease)
        .bind(&swap.holder)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if held != 1 {
            return Ok(false);
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(record_count), 0) AS BIGINT) AS records, COALESCE(MIN(format), 0) AS lo,
                    COALESCE(MAX(format), 0) AS hi
             FROM batches WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND base_offset >= $4 AND base_offset < $5",
        )
        .bind(&q.tenant)
        .bind(&q.topic)
        .bind(q.queue)
        .bind(swap.from)
        .bind(swap.to)
        .fetch_one(&mut *tx)
        .await?;
        let expected = int(&row, "n")? == i64::from(swap.replaced_batches)
            && int(&row, "records")? == swap.to - swap.from
            && int(&row, "lo")? == 0
            && int(&row, "hi")? == 0;
        if !expected {
            return Ok(false);
        }
        sqlx::query("DELETE FROM batches WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND base_offset >= $4 AND base_offset < $5")
            .bind(&q.tenant)
            .bind(&q.topic)
            .bind(q.queue)
            .bind(swap.from)
            .bind(swap.to)
            .execute(&mut *tx)
            .await?;
        let mut base = swap.from;
        for (index, g) in swap.row_groups.iter().enumerate() {
            sqlx::query(
                "INSERT INTO batches (tenant, topic, queue_id, base_offset, record_count, object, block_offset,
                   block_length, uncompressed_length, crc32c, compression, min_ts, max_ts, first_record, block_records,
                   format)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, 0, $9, $10, 0, $5, 1)",
            )
            .bind(&q.tenant)
            .bind(&q.topic)
            .bind(q.queue)
            .bind(base)
            .bind(i64::from(g.rows))
            .bind(&swap.file)
            .bind(index as i64)
            .bind(swap.file_size as i64)
            .bind(g.min_timestamp_ms)
            .bind(g.max_timestamp_ms)
            .execute(&mut *tx)
            .await?;
            base += i64::from(g.rows);
        }
        if base != swap.to {
            return Err(Error::invalid(
                "compaction",
                format!(
                    "row groups hold {} records, not {}",
                    base - swap.from,
                    swap.to - swap.from
                ),
            ));
        }
        sqlx::query("INSERT INTO objects (path, size, writer, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(&swap.file)
            .bind(swap.file_size as i64)
            .bind(&swap.holder)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn apply_retention(&self, now_ms: i64, archive_ms: i64, limit: u32) -> Result<u32> {
        // Queues whose first batch is past its topic's retention.
        let queues = sqlx::query(
            "SELECT q.tenant, q.topic, q.queue_id, t.retention_ms FROM queues q
             JOIN topics t ON t.tenant = q.tenant AND t.name = q.topic
             JOIN batches b ON b.tenant = q.tenant AND b.topic = q.topic AND b.queue_id = q.queue_id
               AND b.base_offset = q.min_offset
             WHERE b.max_ts < $1 - t.retention_ms
             LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut removed = 0u32;
        for row in &queues {
            let q = QueueRef {
                tenant: row.try_get("tenant")?,
                topic: row.try_get("topic")?,
                queue: int(row, "queue_id")? as i32,
            };
            let cutoff = now_ms - int(row, "retention_ms")?;
            let mut tx = self.writer.begin().await?;
            let batches: Vec<Batch> = sqlx::query(
                "SELECT * FROM batches WHERE tenant = $1 AND topic = $2 AND queue_id = $3 ORDER BY base_offset LIMIT $4",
            )
            .bind(&q.tenant)
            .bind(&q.topic)
            .bind(q.queue)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| batch_from_row(&q, r))
            .collect::<Result<_>>()?;
            let mut first = None;
            for b in batches.iter().take_while(|b| b.max_timestamp_ms < cutoff) {
                first = Some(b.end_offset());
                sqlx::query(
                    "DELETE FROM batches WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND base_offset = $4",
                )
                .bind(&q.tenant)
                .bind(&q.topic)
                .bind(q.queue)
                .bind(b.base_offset)
                .execute(&mut *tx)
                .await?;
                if b.location.format == BlockFormat::Parquet {
                    // The archive outlives the consumers' view of it.
                    sqlx::query("UPDATE objects SET keep_until_ms = $2 WHERE path = $1 AND keep_until_ms < $2")
                        .bind(&b.location.object)
                        .bind(b.max_timestamp_ms + archive_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                removed += 1;
            }
            if let Some(min) = first {
                sqlx::query("UPDATE queues SET min_offset = $4 WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND min_offset < $4")
                    .bind(&q.tenant)
                    .bind(&q.topic)
                    .bind(q.queue)
                    .bind(min)
                    .execute(&mut *tx)
                    .await?;
                for table in ["cursors", "stream_offsets"] {
                    let column = if table == "cursors" { "next_offset" } else { "committed" };
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {table} SET {column} = $4 WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND {column} < $4"
                    )))
                    .bind(&q.tenant)
                    .bind(&q.topic)
                    .bind(q.queue)
                    .bind(min)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "DELETE FROM inflight WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND msg_offset < $4",
                )
                .bind(&q.tenant)
                .bind(&q.topic)
                .bind(q.queue)
                .bind(min)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        Ok(removed)
    }

    async fn unreferenced_objects(&self, now_ms: i64, grace_ms: i64, limit: u32) -> Result<Vec<String>> {
        const REFERENCED: &str = "(EXISTS (SELECT 1 FROM batches b WHERE b.object = objects.path)
             OR EXISTS (SELECT 1 FROM held h WHERE h.object = objects.path))";
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE objects SET unreferenced_ms = NULL WHERE unreferenced_ms IS NOT NULL AND {REFERENCED}"
        )))
        .execute(&self.writer)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE objects SET unreferenced_ms = $1
             WHERE unreferenced_ms IS NULL AND keep_until_ms <= $1 AND NOT {REFERENCED}"
        )))
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        sqlx::query("SELECT path FROM objects WHERE unreferenced_ms IS NOT NULL AND unreferenced_ms <= $1 ORDER BY path LIMIT $2")
            .bind(now_ms - grace_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<String, _>("path")?))
            .collect()
    }

    async fn forget_object(&self, path: &str) -> Result<()> {
        sqlx::query("DELETE FROM objects WHERE path = $1 AND unreferenced_ms IS NOT NULL")
            .bind(path)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn queue_bounds(&self, queue: &QueueRef) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT min_offset, next_offset FROM queues WHERE tenant = $1 AND topic = $2 AND queue_id = $3",
        )
        .bind(&queue.tenant)
        .bind(&queue.topic)
        .bind(queue.queue)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| queue_not_found(queue))?;
        Ok((int(&row, "min_offset")?, int(&row, "next_offset")?))
    }

    async fn batch_at_time(&self, queue: &QueueRef, ts_ms: i64) -> Result<Option<Batch>> {
        sqlx::query(
            "SELECT * FROM batches WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND max_ts >= $4
             ORDER BY base_offset LIMIT 1",
        )
        .bind(&queue.tenant)
        .bind(&queue.topic)
        .bind(queue.queue)
        .bind(ts_ms)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(|r| batch_from_row(queue, r))
        .transpose()
    }

    async fn commit_offset(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO stream_offsets (tenant, grp, topic, queue_id, committed) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant, grp, topic, queue_id) DO UPDATE SET committed = excluded.committed",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .bind(queue)
        .bind(offset)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn committed_offset(&self, sub: &Subscription, queue: i32) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT committed FROM stream_offsets WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .bind(queue)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| int(&r, "committed")).transpose()
    }

    async fn register_node(&self, id: &str, roles: Roles, advertise: &str, now_ms: i64) -> Result<Node> {
        let row = sqlx::query(
            "INSERT INTO nodes (id, roles, advertise, epoch, heartbeat_ms, alive) VALUES ($1, $2, $3, 1, $4, 1)
             ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, advertise = excluded.advertise,
               epoch = nodes.epoch + 1, heartbeat_ms = excluded.heartbeat_ms, alive = 1
             RETURNING *",
        )
        .bind(id)
        .bind(roles.0)
        .bind(advertise)
        .bind(now_ms)
        .fetch_one(&self.writer)
        .await?;
        node_from_row(&row)
    }

    async fn heartbeat_node(&self, id: &str, epoch: i64, now_ms: i64) -> Result<()> {
        let id = id.to_string();
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let updated =
                    sqlx::query("UPDATE nodes SET heartbeat_ms = $3 WHERE id = $1 AND epoch = $2 AND alive = 1")
                        .bind(&id)
                        .bind(epoch)
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected();
                if updated == 1 {
                    Ok(((), Announce::default()))
                } else {
                    Err(Error::Fenced { node: id, epoch })
                }
            })
        }))
        .await
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        sqlx::query("SELECT * FROM nodes ORDER BY id")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(node_from_row)
            .collect()
    }

    async fn live_nodes(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<Node>> {
        sqlx::query("SELECT * FROM nodes WHERE alive = 1 AND heartbeat_ms >= $1 ORDER BY id")
            .bind(now_ms - ttl_ms)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(node_from_row)
            .collect()
    }

    async fn expire_nodes(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("UPDATE nodes SET alive = 0 WHERE alive = 1 AND heartbeat_ms < $1 RETURNING id")
            .bind(now_ms - ttl_ms)
            .fetch_all(&self.writer)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>("id")?)).collect()
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query("INSERT INTO secrets (name, value_hex) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(hex::encode(fresh))
            .execute(&self.writer)
            .await?;
        let stored: String = sqlx::query("SELECT value_hex FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await?
            .try_get(0)?;
        hex::decode(&stored).map_err(|_| Error::Inconsistent(format!("secret {name} is not hex")))
    }

    fn subscribe(&self) -> broadcast::Receiver<CommitEvent> {
        self.events.subscribe()
    }

    async fn probe_commit(&self) -> Result<()> {
        sqlx::query("INSERT INTO probe (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = probe.n + 1")
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    fn transactions(&self) -> TransactionCounts {
        let writes = self.writes.load(Ordering::Relaxed);
        TransactionCounts {
            all: writes + self.reads.load(Ordering::Relaxed),
            writes,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sqlx::Connection;

    /// A fresh PostgreSQL database on the server `STRATA_TEST_POSTGRES_URL` names, or `None`
    /// when no server is configured (CI always configures one: `STRATA_REQUIRE_SERVICES=1`
    /// turns a missing server into a failure).
    pub(crate) async fn fresh_postgres() -> Option<String> {
        let Ok(base) = std::env::var("STRATA_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("STRATA_REQUIRE_SERVICES").is_err(),
                "STRATA_REQUIRE_SERVICES is set but STRATA_TEST_POSTGRES_URL is not"
            );
            eprintln!("STRATA_TEST_POSTGRES_URL unset: skipping the PostgreSQL backend");
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

    #[tokio::test]
    async fn postgres_conformance() {
        let Some(url) = fresh_postgres().await else { return };
        let c = SqlCoordinator::open_postgres(&url).await.unwrap();
        crate::conformance::run_all(&c).await;
        // Migrations are idempotent: a second node opening the same database is fine.
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

    #[tokio::test]
    async fn sqlite_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqlCoordinator::open_sqlite(&dir.path().join("meta.db")).await.unwrap();
        crate::conformance::run_all(&c).await;
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
