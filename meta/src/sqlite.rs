//! The embedded coordinator: SQLite in the data folder (standalone mode).
//!
//! Writes go through a pool of one connection, so they are serialized without lock
//! contention; reads use their own pool and see the last committed state (WAL journal).
//! `synchronous = FULL`: a commit is on disk before a producer is acknowledged.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};
use tokio::sync::broadcast;
use tracing::instrument;

use crate::coordinator::Coordinator;
use crate::error::{Error, Result};
use crate::model::*;
use crate::schema::MIGRATIONS;

#[derive(Debug)]
pub struct SqliteCoordinator {
    writer: SqlitePool,
    reader: SqlitePool,
    events: broadcast::Sender<CommitEvent>,
}

impl SqliteCoordinator {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::invalid("coordinator path", format!("{}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        migrate(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let (events, _) = broadcast::channel(1024);
        Ok(Self { writer, reader, events })
    }

    /// Closes both pools (checkpointing the journal).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS strata_schema (version INTEGER PRIMARY KEY)")
        .execute(&mut *tx)
        .await?;
    let applied: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM strata_schema")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO strata_schema (version) VALUES (?)")
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn topic_from_row(row: &SqliteRow) -> Result<Topic> {
    let t: i64 = row.try_get("message_type")?;
    Ok(Topic {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        message_type: MessageType::from_i32(t as i32)
            .ok_or_else(|| Error::Inconsistent(format!("unknown message type {t}")))?,
        queue_count: row.try_get("queue_count")?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn group_from_row(row: &SqliteRow) -> Result<Group> {
    Ok(Group {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        fifo: row.try_get("fifo")?,
        max_attempts: row.try_get("max_attempts")?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn batch_from_row(queue: &QueueRef, row: &SqliteRow) -> Result<Batch> {
    let count: i64 = row.try_get("record_count")?;
    let crc: i64 = row.try_get("crc32c")?;
    Ok(Batch {
        queue: queue.clone(),
        base_offset: row.try_get("base_offset")?,
        count: count as u32,
        location: BlockLocation {
            object: row.try_get("object")?,
            offset: row.try_get::<i64, _>("block_offset")? as u64,
            length: row.try_get::<i64, _>("block_length")? as u64,
            uncompressed_length: row.try_get::<i64, _>("uncompressed_length")? as u64,
            crc32c: crc as u32,
            compression: row.try_get("compression")?,
        },
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The cursor of a group on a queue: stored, or the queue's first retained offset.
async fn cursor(tx: &mut Transaction<'_, Sqlite>, sub: &Subscription, queue: i32) -> Result<Option<(i64, i64)>> {
    let row = sqlx::query(
        "SELECT q.next_offset AS end_offset, COALESCE(c.next_offset, q.min_offset) AS cursor
         FROM queues q LEFT JOIN cursors c
           ON c.tenant = q.tenant AND c.topic = q.topic AND c.queue_id = q.queue_id AND c.grp = ?
         WHERE q.tenant = ? AND q.topic = ? AND q.queue_id = ?",
    )
    .bind(&sub.group)
    .bind(&sub.tenant)
    .bind(&sub.topic)
    .bind(queue)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((r.try_get("cursor")?, r.try_get("end_offset")?)))
        .transpose()
}

const INFLIGHT_KEY: &str = "tenant = ? AND grp = ? AND topic = ? AND queue_id = ? AND msg_offset = ?";

#[async_trait]
impl Coordinator for SqliteCoordinator {
    #[instrument(skip_all, fields(tenant = %spec.tenant, topic = %spec.name), err)]
    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<Topic> {
        spec.validate()?;
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO topics (tenant, name, message_type, queue_count, created_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&spec.tenant)
        .bind(&spec.name)
        .bind(spec.message_type as i32)
        .bind(spec.queue_count)
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
                "INSERT INTO queues (tenant, topic, queue_id, next_offset, min_offset) VALUES (?, ?, ?, 0, 0)
                 ON CONFLICT (tenant, topic, queue_id) DO NOTHING",
            )
            .bind(&spec.tenant)
            .bind(&spec.name)
            .bind(q)
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
        })
    }

    async fn topic(&self, tenant: &str, name: &str) -> Result<Option<Topic>> {
        sqlx::query("SELECT * FROM topics WHERE tenant = ? AND name = ?")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(topic_from_row)
            .transpose()
    }

    async fn list_topics(&self, tenant: &str) -> Result<Vec<Topic>> {
        sqlx::query("SELECT * FROM topics WHERE tenant = ? ORDER BY name")
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
            "INSERT INTO consumer_groups (tenant, name, fifo, max_attempts, created_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&spec.tenant)
        .bind(&spec.name)
        .bind(spec.fifo)
        .bind(spec.max_attempts)
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
        sqlx::query("SELECT * FROM consumer_groups WHERE tenant = ? AND name = ?")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(group_from_row)
            .transpose()
    }

    async fn list_groups(&self, tenant: &str) -> Result<Vec<Group>> {
        sqlx::query("SELECT * FROM consumer_groups WHERE tenant = ? ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(group_from_row)
            .collect()
    }

    #[instrument(skip_all, fields(object = %flush.object, batches = flush.batches.len()), err)]
    async fn commit_flush(&self, flush: &FlushCommit, now_ms: i64) -> Result<Vec<i64>> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO objects (path, size, writer, created_ms) VALUES (?, ?, ?, ?)")
            .bind(&flush.object)
            .bind(flush.object_size as i64)
            .bind(&flush.writer)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let mut bases = Vec::with_capacity(flush.batches.len());
        for b in &flush.batches {
            let q = &b.queue;
            let base: Option<i64> = sqlx::query(
                "UPDATE queues SET next_offset = next_offset + ? WHERE tenant = ? AND topic = ? AND queue_id = ?
                 RETURNING next_offset - ?",
            )
            .bind(i64::from(b.count))
            .bind(&q.tenant)
            .bind(&q.topic)
            .bind(q.queue)
            .bind(i64::from(b.count))
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
            let Some(base) = base else {
                // Dropping `tx` rolls the whole flush back.
                return Err(Error::QueueNotFound {
                    tenant: q.tenant.clone(),
                    topic: q.topic.clone(),
                    queue: q.queue,
                });
            };
            let l = &b.location;
            sqlx::query(
                "INSERT INTO batches (tenant, topic, queue_id, base_offset, record_count, object, block_offset,
                   block_length, uncompressed_length, crc32c, compression, min_ts, max_ts)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&q.tenant)
            .bind(&q.topic)
            .bind(q.queue)
            .bind(base)
            .bind(i64::from(b.count))
            .bind(&l.object)
            .bind(l.offset as i64)
            .bind(l.length as i64)
            .bind(l.uncompressed_length as i64)
            .bind(i64::from(l.crc32c))
            .bind(l.compression)
            .bind(b.min_timestamp_ms)
            .bind(b.max_timestamp_ms)
            .execute(&mut *tx)
            .await?;
            bases.push(base);
        }
        tx.commit().await?;
        let mut notified = std::collections::HashSet::new();
        for b in &flush.batches {
            if notified.insert((&b.queue.tenant, &b.queue.topic)) {
                let _ = self.events.send(CommitEvent {
                    tenant: b.queue.tenant.clone(),
                    topic: b.queue.topic.clone(),
                });
            }
        }
        Ok(bases)
    }

    async fn batches(&self, queue: &QueueRef, from: i64, limit: u32) -> Result<Vec<Batch>> {
        sqlx::query(
            "SELECT * FROM batches WHERE tenant = ?1 AND topic = ?2 AND queue_id = ?3
               AND base_offset >= COALESCE((SELECT MAX(base_offset) FROM batches
                   WHERE tenant = ?1 AND topic = ?2 AND queue_id = ?3 AND base_offset <= ?4), 0)
               AND base_offset + record_count > ?4
             ORDER BY base_offset LIMIT ?5",
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

    async fn queue_end(&self, queue: &QueueRef) -> Result<i64> {
        let row = sqlx::query("SELECT next_offset FROM queues WHERE tenant = ? AND topic = ? AND queue_id = ?")
            .bind(&queue.tenant)
            .bind(&queue.topic)
            .bind(queue.queue)
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(Error::QueueNotFound {
                tenant: queue.tenant.clone(),
                topic: queue.topic.clone(),
                queue: queue.queue,
            }),
        }
    }

    async fn pop_state(
        &self,
        sub: &Subscription,
        queues: &[i32],
        now_ms: i64,
        max_expired: u32,
    ) -> Result<Vec<QueuePopState>> {
        let mut tx = self.reader.begin().await?;
        let mut states = Vec::with_capacity(queues.len());
        for &queue in queues {
            let Some((cursor, end)) = cursor(&mut tx, sub, queue).await? else {
                continue;
            };
            let expired = sqlx::query(
                "SELECT msg_offset, attempt, seq, invisible_until_ms FROM inflight
                 WHERE tenant = ? AND grp = ? AND topic = ? AND queue_id = ? AND invisible_until_ms <= ?
                 ORDER BY msg_offset LIMIT ?",
            )
            .bind(&sub.tenant)
            .bind(&sub.group)
            .bind(&sub.topic)
            .bind(queue)
            .bind(now_ms)
            .bind(i64::from(max_expired))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok(InFlight {
                    queue,
                    offset: r.try_get("msg_offset")?,
                    attempt: r.try_get("attempt")?,
                    seq: r.try_get("seq")?,
                    invisible_until_ms: r.try_get("invisible_until_ms")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            states.push(QueuePopState {
                queue,
                cursor,
                end,
                expired,
            });
        }
        tx.commit().await?;
        Ok(states)
    }

    #[instrument(skip_all, fields(group = %claim.subscription.group, topic = %claim.subscription.topic), err)]
    async fn pop_claim(&self, claim: &PopClaim) -> Result<Claimed> {
        let sub = &claim.subscription;
        let mut tx = self.writer.begin().await?;
        let mut claimed = Claimed::default();
        for q in &claim.queues {
            if q.cursor_to < q.cursor_from || q.deliver.iter().any(|o| !(q.cursor_from..q.cursor_to).contains(o)) {
                return Err(Error::invalid(
                    "pop claim",
                    format!("offsets outside {}..{}", q.cursor_from, q.cursor_to),
                ));
            }
            let current = cursor(&mut tx, sub, q.queue).await?;
            match current {
                Some((cur, end)) if cur == q.cursor_from && q.cursor_to <= end => {
                    if q.cursor_to > q.cursor_from {
                        sqlx::query(
                            "INSERT INTO cursors (tenant, grp, topic, queue_id, next_offset) VALUES (?, ?, ?, ?, ?)
                             ON CONFLICT (tenant, grp, topic, queue_id) DO UPDATE SET next_offset = excluded.next_offset",
                        )
                        .bind(&sub.tenant)
                        .bind(&sub.group)
                        .bind(&sub.topic)
                        .bind(q.queue)
                        .bind(q.cursor_to)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for &offset in &q.deliver {
                        sqlx::query(
                            "INSERT INTO inflight (tenant, grp, topic, queue_id, msg_offset, attempt, seq, invisible_until_ms)
                             VALUES (?, ?, ?, ?, ?, 1, 1, ?)",
                        )
                        .bind(&sub.tenant)
                        .bind(&sub.group)
                        .bind(&sub.topic)
                        .bind(q.queue)
                        .bind(offset)
                        .bind(claim.invisible_until_ms)
                        .execute(&mut *tx)
                        .await?;
                        claimed.delivered.push(InFlight {
                            queue: q.queue,
                            offset,
                            attempt: 1,
                            seq: 1,
                            invisible_until_ms: claim.invisible_until_ms,
                        });
                    }
                }
                _ => claimed.conflicts.push(q.queue),
            }
            for &(offset, seq) in &q.redeliver {
                let row = sqlx::query(AssertSqlSafe(format!(
                    "UPDATE inflight SET attempt = attempt + 1, seq = seq + 1, invisible_until_ms = ?
                     WHERE {INFLIGHT_KEY} AND seq = ? AND invisible_until_ms <= ?
                     RETURNING attempt, seq"
                )))
                .bind(claim.invisible_until_ms)
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(q.queue)
                .bind(offset)
                .bind(seq)
                .bind(claim.now_ms)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(r) = row {
                    claimed.delivered.push(InFlight {
                        queue: q.queue,
                        offset,
                        attempt: r.try_get("attempt")?,
                        seq: r.try_get("seq")?,
                        invisible_until_ms: claim.invisible_until_ms,
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    #[instrument(skip_all, fields(receipts = receipts.len()), err)]
    async fn ack(&self, receipts: &[Receipt]) -> Result<Vec<AckOutcome>> {
        let mut tx = self.writer.begin().await?;
        let mut outcomes = Vec::with_capacity(receipts.len());
        for r in receipts {
            let deleted = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = ?"
            )))
            .bind(&r.subscription.tenant)
            .bind(&r.subscription.group)
            .bind(&r.subscription.topic)
            .bind(r.queue)
            .bind(r.offset)
            .bind(r.seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            outcomes.push(if deleted == 1 {
                AckOutcome::Acked
            } else {
                why_not_in_flight(&mut tx, r).await?
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn change_invisible(
        &self,
        r: &Receipt,
        invisible_until_ms: i64,
    ) -> Result<std::result::Result<InFlight, AckOutcome>> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE inflight SET seq = seq + 1, invisible_until_ms = ? WHERE {INFLIGHT_KEY} AND seq = ?
             RETURNING attempt, seq"
        )))
        .bind(invisible_until_ms)
        .bind(&r.subscription.tenant)
        .bind(&r.subscription.group)
        .bind(&r.subscription.topic)
        .bind(r.queue)
        .bind(r.offset)
        .bind(r.seq)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match row {
            Some(row) => Ok(InFlight {
                queue: r.queue,
                offset: r.offset,
                attempt: row.try_get("attempt")?,
                seq: row.try_get("seq")?,
                invisible_until_ms,
            }),
            None => Err(why_not_in_flight(&mut tx, r).await?),
        };
        tx.commit().await?;
        Ok(result)
    }

    async fn next_visible_at(&self, sub: &Subscription) -> Result<Option<i64>> {
        let row =
            sqlx::query("SELECT MIN(invisible_until_ms) FROM inflight WHERE tenant = ? AND grp = ? AND topic = ?")
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .fetch_one(&self.reader)
                .await?;
        Ok(row.try_get(0)?)
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query("INSERT INTO secrets (name, value_hex) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(hex::encode(fresh))
            .execute(&self.writer)
            .await?;
        let stored: String = sqlx::query("SELECT value_hex FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.writer)
            .await?
            .try_get(0)?;
        hex::decode(&stored).map_err(|_| Error::Inconsistent(format!("secret {name} is not hex")))
    }

    fn subscribe(&self) -> broadcast::Receiver<CommitEvent> {
        self.events.subscribe()
    }
}

/// Why a receipt matched no in-flight row.
async fn why_not_in_flight(tx: &mut Transaction<'_, Sqlite>, r: &Receipt) -> Result<AckOutcome> {
    let in_flight = sqlx::query(AssertSqlSafe(format!("SELECT seq FROM inflight WHERE {INFLIGHT_KEY}")))
        .bind(&r.subscription.tenant)
        .bind(&r.subscription.group)
        .bind(&r.subscription.topic)
        .bind(r.queue)
        .bind(r.offset)
        .fetch_optional(&mut **tx)
        .await?;
    if in_flight.is_some() {
        return Ok(AckOutcome::Stale);
    }
    let delivered = matches!(cursor(tx, &r.subscription, r.queue).await?, Some((c, _)) if r.offset < c);
    Ok(if delivered {
        AckOutcome::AlreadyAcked
    } else {
        AckOutcome::Unknown
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCoordinator::open(&dir.path().join("meta.db")).await.unwrap();
        crate::conformance::run_all(&c).await;
    }

    #[tokio::test]
    async fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        {
            let c = SqliteCoordinator::open(&path).await.unwrap();
            crate::conformance::write_then_reopen_part1(&c).await;
            c.close().await;
        }
        let c = SqliteCoordinator::open(&path).await.unwrap();
        crate::conformance::write_then_reopen_part2(&c).await;
    }
}
