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
    let plain: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| flush.batches[i].held.is_empty())
        .collect();
    let plain_bases = append_all(tx, dialect, plain.iter().map(|&i| &flush.batches[i])).await?;
    for (i, base) in plain.into_iter().zip(plain_bases) {
        bases[i] = Some(base);
    }
    for i in order {
        let b = &flush.batches[i];
        if b.held.is_empty() {
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

/// Rows per multi-row statement of [`append_all`] (16 parameters each for batches: 8,000 per
/// statement, within SQLite's 32,766 and PostgreSQL's 65,535).
const APPEND_ROWS: usize = 500;

/// Appends plain batches (no held records), sorted by queue, in a few statements whatever
/// their number: per chunk of queues one UPDATE moves the queues' ends, and per chunk of
/// batches one INSERT records them (a flush to 170 lite topics was 340 statements). On
/// PostgreSQL the queue rows are first locked in key order, as every path locks them, so
/// concurrent flushes cannot deadlock. A queue that is missing is an expired lite topic
/// (revived) or an error. Returns each batch's base offset, in order.
async fn append_all<'a>(
    tx: &mut Tx,
    dialect: Dialect,
    batches: impl Iterator<Item = &'a AppendBatch>,
) -> Result<Vec<i64>> {
    let batches: Vec<&AppendBatch> = batches.collect();
    let mut totals: Vec<(&QueueRef, i64)> = Vec::new();
    for b in &batches {
        match totals.last_mut() {
            Some((q, n)) if *q == &b.queue => *n += i64::from(b.count),
            _ => totals.push((&b.queue, i64::from(b.count))),
        }
    }
    // Where each queue's batches start: its old end.
    let mut next: std::collections::HashMap<&QueueRef, i64> = Default::default();
    for chunk in totals.chunks(APPEND_ROWS) {
        if dialect == Dialect::Postgres {
            let mut lock = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT 1 FROM queues WHERE (tenant, topic, queue_id) IN (VALUES {})
                 ORDER BY tenant COLLATE \"C\", topic COLLATE \"C\", queue_id FOR UPDATE",
                value_rows(chunk.len(), &["TEXT", "TEXT", "BIGINT"])
            )));
            for (q, _) in chunk {
                lock = lock.bind(&q.tenant).bind(&q.topic).bind(i64::from(q.queue));
            }
            lock.fetch_all(&mut **tx).await?;
        }
        // SQLite's RETURNING sees only the updated table: the new end, the base follows.
        let mut update = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE queues SET next_offset = queues.next_offset + v.column4 FROM (VALUES {}) AS v
             WHERE queues.tenant = v.column1 AND queues.topic = v.column2 AND queues.queue_id = v.column3
             RETURNING queues.tenant, queues.topic, queues.queue_id, queues.next_offset",
            value_rows(chunk.len(), &["TEXT", "TEXT", "BIGINT", "BIGINT"])
        )));
        for (q, n) in chunk {
            update = update.bind(&q.tenant).bind(&q.topic).bind(i64::from(q.queue)).bind(*n);
        }
        let mut moved = std::collections::HashMap::new();
        for r in update.fetch_all(&mut **tx).await? {
            let key: (String, String, i64) = (r.try_get("tenant")?, r.try_get("topic")?, int(&r, "queue_id")?);
            moved.insert(key, int(&r, "next_offset")?);
        }
        for &(q, n) in chunk {
            let end = match moved.get(&(q.tenant.clone(), q.topic.clone(), i64::from(q.queue))) {
                Some(&end) => end,
                // A lite topic expired since the ingest node last saw it: it starts again.
                None if crate::lite::split(&q.topic).is_some() => {
                    let max_ts = batches
                        .iter()
                        .filter(|b| &b.queue == q)
                        .map(|b| b.max_timestamp_ms)
                        .max();
                    revive_lite_queue(tx, q, n, max_ts.unwrap_or_default()).await? + n
                }
                None => return Err(queue_not_found(q)),
            };
            next.insert(q, end - n);
        }
    }
    // Each queue's batches take consecutive offsets.
    let mut bases = Vec::with_capacity(batches.len());
    for b in &batches {
        let at = next
            .get_mut(&b.queue)
            .ok_or_else(|| Error::Inconsistent("queue of a batch not moved".into()))?;
        bases.push(*at);
        *at += i64::from(b.count);
    }
    for chunk in batches.iter().zip(&bases).collect::<Vec<_>>().chunks(APPEND_ROWS) {
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO batches (tenant, topic, queue_id, base_offset, record_count, object, block_offset,
               block_length, uncompressed_length, crc32c, compression, min_ts, max_ts, first_record, block_records, format)
             VALUES {}",
            value_rows(chunk.len(), &[""; 16])
        )));
        for &(b, &base) in chunk {
            let l = &b.location;
            insert = insert
                .bind(&b.queue.tenant)
                .bind(&b.queue.topic)
                .bind(b.queue.queue)
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
                .bind(0_i64)
                .bind(i64::from(l.block_records))
                .bind(l.format as i64);
        }
        insert.execute(&mut **tx).await?;
    }
    Ok(bases)
}

/// `rows` parenthesized rows of numbered parameters (`$1`…), one per entry of `types`:
/// `CAST($n AS TYPE)` (PostgreSQL cannot infer the types of a bare VALUES list), or `$n`
/// where the type is empty.
fn value_rows(rows: usize, types: &[&str]) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(k, ty)| {
                    let n = r * types.len() + k + 1;
                    if ty.is_empty() {
                        format!("${n}")
                    } else {
                        format!("CAST(${n} AS {ty})")
                    }
                })
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
