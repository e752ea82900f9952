//! SQL of `Log`: flush commits, the batch index, queue bounds, commit notifications.

use super::*;

#[async_trait]
impl Log for SqlCoordinator {
    #[instrument(skip_all, fields(object = %flush.object, batches = flush.batches.len()), err)]
    async fn commit_flush(&self, flush: &FlushCommit, now_ms: i64) -> Result<Vec<Option<i64>>> {
        let flush = flush.clone();
        let dialect = self.dialect;
        self.write(Box::new(move |tx| {
            Box::pin(async move { commit_flush_in(tx, dialect, &flush, now_ms).await })
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
        for chunk in objects.chunks(PATHS_PER_QUERY) {
            for row in objects_among("writer <> $1", chunk).fetch_all(&self.reader).await? {
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

/// Why a flush's object is not new: committed before by its writer (a retry: the offsets
/// that commit returned), claimed by orphan collection, or neither (the writer is fenced).
async fn already_recorded(tx: &mut Tx, flush: &FlushCommit) -> Result<Vec<Option<i64>>> {
    let writer: Option<String> = sqlx::query("SELECT writer FROM objects WHERE path = $1")
        .bind(&flush.object)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get("writer"))
        .transpose()?;
    match writer {
        Some(w) if w == flush.writer => {}
        Some(w) if w == ORPHAN_COLLECTOR => {
            return Err(Error::ObjectCollected {
                object: flush.object.clone(),
            });
        }
        _ => {
            return Err(Error::Fenced {
                node: flush.writer.clone(),
                epoch: flush.writer_epoch,
            });
        }
    }
    // The batches that commit appended: each starts at its block's first record.
    let mut bases = std::collections::HashMap::new();
    for r in sqlx::query(
        "SELECT tenant, topic, queue_id, block_offset, base_offset FROM batches WHERE object = $1 AND first_record = 0",
    )
    .bind(&flush.object)
    .fetch_all(&mut **tx)
    .await?
    {
        let queue = QueueRef {
            tenant: r.try_get("tenant")?,
            topic: r.try_get("topic")?,
            queue: int(&r, "queue_id")? as i32,
        };
        bases.insert((queue, int(&r, "block_offset")?), int(&r, "base_offset")?);
    }
    flush
        .batches
        .iter()
        .map(|b| match bases.get(&(b.queue.clone(), b.location.offset as i64)) {
            _ if !b.held.is_empty() => Ok(None),
            Some(&base) => Ok(Some(base)),
            None => Err(Error::Inconsistent(format!(
                "{} was committed before, but its batch of {}/{}/{} is gone (compacted or past retention)",
                flush.object, b.queue.tenant, b.queue.topic, b.queue.queue
            ))),
        })
        .collect()
}

async fn commit_flush_in(
    tx: &mut Tx,
    dialect: Dialect,
    flush: &FlushCommit,
    now_ms: i64,
) -> Result<(Vec<Option<i64>>, Announce)> {
    // Fencing: only the writer's live epoch may commit, checked by the statement that records
    // the object (one round trip instead of two). On PostgreSQL the node row's share lock
    // orders this commit against a concurrent declaration of the node's death; SQLite has
    // one writer.
    // The object's path is the row's key: a commit of an object already recorded (committed
    // before, or claimed by orphan collection) records nothing.
    let lock = if dialect == Dialect::Postgres { " FOR SHARE" } else { "" };
    let recorded = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO objects (path, size, writer, created_ms)
         SELECT $1, $2, $3, $4 FROM nodes WHERE id = $3 AND epoch = $5 AND alive = 1{lock}
         ON CONFLICT (path) DO NOTHING"
    )))
    .bind(&flush.object)
    .bind(flush.object_size as i64)
    .bind(&flush.writer)
    .bind(now_ms)
    .bind(flush.writer_epoch)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if recorded != 1 {
        return Ok((already_recorded(tx, flush).await?, Announce::default()));
    }
    // Queue rows are locked in one global order, so concurrent flushes cannot deadlock.
    let mut order: Vec<usize> = (0..flush.batches.len()).collect();
    order.sort_by(|&a, &b| flush.batches[a].queue.cmp(&flush.batches[b].queue));
    let mut bases = vec![None; flush.batches.len()];
    for i in order {
        let b = &flush.batches[i];
        if b.held.is_empty() {
            let appended = append(
                tx,
                &b.queue,
                b.count,
                &b.location,
                0,
                (b.min_timestamp_ms, b.max_timestamp_ms),
            )
            .await;
            bases[i] = match appended {
                Ok(base) => {
                    super::index::index_batch(tx, b, base).await?;
                    Some(base)
                }
                // Deleted since the ingest node looked it up: this batch alone is refused.
                Err(Error::QueueNotFound { .. }) if !topic_exists(tx, &b.queue).await? => None,
                Err(e) => return Err(e),
            };
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

/// Whether the topic of `queue` (or, for a lite topic, its parent) exists.
async fn topic_exists(tx: &mut Tx, queue: &QueueRef) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM topics WHERE tenant = $1 AND name = $2")
        .bind(&queue.tenant)
        .bind(crate::lite::parent_of(&queue.topic))
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}
