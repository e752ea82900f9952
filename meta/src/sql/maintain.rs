//! SQL of `Maintenance`: compaction swaps under leases, retention and garbage collection.

use super::checkpoint::Checkpoint;
use super::*;

#[async_trait]
impl Maintenance for SqlCoordinator {
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
        let recorded = sqlx::query(
            "INSERT INTO objects (path, size, writer, created_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (path) DO NOTHING",
        )
        .bind(&swap.file)
        .bind(swap.file_size as i64)
        .bind(&swap.holder)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if recorded != 1 {
            // Orphan collection claimed the file (a compactor stalled for longer than the
            // orphan grace): it is being deleted, so it cannot be swapped in.
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn apply_retention(&self, now_ms: i64, archive_ms: i64, limit: u32) -> Result<u32> {
        // Queues whose first batch is past its topic's retention (the first at or after the
        // queue's start: a quarantined batch leaves a gap).
        let queues = sqlx::query(
            "SELECT q.tenant, q.topic, q.queue_id, t.retention_ms FROM queues q
             JOIN topics t ON t.tenant = q.tenant AND t.name = q.topic
             JOIN batches b ON b.tenant = q.tenant AND b.topic = q.topic AND b.queue_id = q.queue_id
               AND b.base_offset = (SELECT MIN(f.base_offset) FROM batches f WHERE f.tenant = q.tenant
                 AND f.topic = q.topic AND f.queue_id = q.queue_id AND f.base_offset >= q.min_offset)
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
                    "DELETE FROM inflight WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND last_offset < $4",
                )
                .bind(&q.tenant)
                .bind(&q.topic)
                .bind(q.queue)
                .bind(min)
                .execute(&mut *tx)
                .await?;
                // Checkpoints reaching past the new start keep their retained offsets.
                let straddling = Checkpoint::select(
                    &mut tx,
                    "tenant = $1 AND topic = $2 AND queue_id = $3 AND msg_offset < $4",
                    |s| s.bind(&q.tenant).bind(&q.topic).bind(q.queue).bind(min),
                )
                .await?;
                for mut cp in straddling {
                    cp.offsets.retain(|&o| o >= min);
                    cp.store(&mut tx).await?;
                }
                // A dead-letter queue's record of where its messages came from goes with them.
                sqlx::query("DELETE FROM dead_letters WHERE tenant = $1 AND topic = $2 AND msg_offset < $3")
                    .bind(&q.tenant)
                    .bind(&q.topic)
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
             OR EXISTS (SELECT 1 FROM held h WHERE h.object = objects.path)
             OR EXISTS (SELECT 1 FROM quarantine x WHERE x.object = objects.path))";
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

    async fn claim_orphans(&self, objects: &[String], now_ms: i64) -> Result<Vec<String>> {
        let mut claimed = Vec::new();
        for chunk in objects.chunks(PATHS_PER_QUERY) {
            let mut tx = self.writer.begin().await?;
            // A claim is an objects row no commit can insert again (the path is its key),
            // unreferenced since now.
            for path in chunk {
                sqlx::query(
                    "INSERT INTO objects (path, size, writer, created_ms, unreferenced_ms) VALUES ($1, 0, $2, $3, $3)
                     ON CONFLICT (path) DO NOTHING",
                )
                .bind(path)
                .bind(ORPHAN_COLLECTOR)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            for row in objects_among("writer = $1", chunk).fetch_all(&mut *tx).await? {
                claimed.push(row.try_get::<String, _>("path")?);
            }
            tx.commit().await?;
        }
        Ok(claimed)
    }

    async fn quarantine_batch(&self, batch: &Batch, reason: &str, now_ms: i64) -> Result<bool> {
        const COLUMNS: &str = "tenant, topic, queue_id, base_offset, record_count, object, block_offset, block_length,
             uncompressed_length, crc32c, compression, min_ts, max_ts, first_record, block_records, format";
        const KEY: &str = "tenant = $1 AND topic = $2 AND queue_id = $3 AND base_offset = $4 AND object = $5
             AND block_offset = $6";
        let q = &batch.queue;
        let keyed = |sql: String| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(q.tenant.clone())
                .bind(q.topic.clone())
                .bind(q.queue)
                .bind(batch.base_offset)
                .bind(batch.location.object.clone())
                .bind(batch.location.offset as i64)
        };
        let mut tx = self.writer.begin().await?;
        keyed(format!(
            "INSERT INTO quarantine ({COLUMNS}, reason, quarantined_ms)
             SELECT {COLUMNS}, $7, $8 FROM batches WHERE {KEY}"
        ))
        .bind(reason)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let moved = keyed(format!("DELETE FROM batches WHERE {KEY}"))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // No group keeps its offsets in flight or waiting: they would never be readable.
        let (from, to) = (batch.base_offset, batch.end_offset());
        let mut holding = Checkpoint::select(
            &mut tx,
            "tenant = $1 AND topic = $2 AND queue_id = $3 AND msg_offset < $5 AND last_offset >= $4",
            |s| s.bind(&q.tenant).bind(&q.topic).bind(q.queue).bind(from).bind(to),
        )
        .await?;
        holding.sort_by(|a, b| a.lock_order().cmp(&b.lock_order()));
        for mut cp in holding {
            cp.offsets.retain(|o| !(from..to).contains(o));
            cp.store(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>> {
        sqlx::query("SELECT * FROM quarantine ORDER BY quarantined_ms, tenant, topic, queue_id, base_offset")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|r| {
                let queue = QueueRef {
                    tenant: r.try_get("tenant")?,
                    topic: r.try_get("topic")?,
                    queue: int(r, "queue_id")? as i32,
                };
                Ok(Quarantined {
                    batch: batch_from_row(&queue, r)?,
                    reason: r.try_get("reason")?,
                    quarantined_ms: int(r, "quarantined_ms")?,
                })
            })
            .collect()
    }

    async fn release_quarantined(
        &self,
        queue: &QueueRef,
        base_offset: i64,
        retry: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(
            "DELETE FROM quarantine WHERE tenant = $1 AND topic = $2 AND queue_id = $3 AND base_offset = $4 RETURNING *",
        )
        .bind(&queue.tenant)
        .bind(&queue.topic)
        .bind(queue.queue)
        .bind(base_offset)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "quarantined batch",
                format!(
                    "no batch at offset {base_offset} of {}/{}/{} is quarantined",
                    queue.tenant, queue.topic, queue.queue
                ),
            )
        })?;
        let b = batch_from_row(queue, &row)?;
        let mut base = None;
        if retry {
            // Retention counts from the retry: the records are back in the queue now.
            base = Some(append(&mut tx, queue, b.count, &b.location, b.first_record, (now_ms, now_ms)).await?);
            let topics: HashSet<(String, String)> = [(queue.tenant.clone(), queue.topic.clone())].into();
            self.notify_in(&mut tx, &topics, false).await?;
            tx.commit().await?;
            self.notify_after(&topics, false);
        } else {
            tx.commit().await?;
        }
        Ok(base)
    }

    async fn held_to_move(&self, before_ms: i64, limit: u32) -> Result<Vec<HeldRecord>> {
        // A held row's share of its object: its block's bytes per record.
        sqlx::query(
            "SELECT h.* FROM held h WHERE h.object IN
               (SELECT o.path FROM objects o
                WHERE o.path IN (SELECT DISTINCT object FROM held) AND o.created_ms < $1
                  AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.object = o.path)
                  AND NOT EXISTS (SELECT 1 FROM quarantine x WHERE x.object = o.path)
                  AND o.size > 2 * (SELECT SUM(CASE WHEN y.block_records > 0 THEN y.block_length / y.block_records
                                                   ELSE y.block_length END)
                                    FROM held y WHERE y.object = o.path)
                ORDER BY o.path LIMIT $2)
             ORDER BY h.object, h.block_offset, h.record_index",
        )
        .bind(before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(held_from_row)
        .collect()
    }

    async fn move_held(&self, moved: &HeldMove, now_ms: i64) -> Result<u32> {
        let mut tx = self.writer.begin().await?;
        let recorded = sqlx::query(
            "INSERT INTO objects (path, size, writer, created_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (path) DO NOTHING",
        )
        .bind(&moved.object)
        .bind(moved.object_size as i64)
        .bind(&moved.writer)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if recorded != 1 {
            return Err(Error::ObjectCollected {
                object: moved.object.clone(),
            });
        }
        let mut count = 0;
        for (h, to, index) in &moved.records {
            count += sqlx::query(
                "UPDATE held SET object = $4, block_offset = $5, block_length = $6, uncompressed_length = $7,
                   crc32c = $8, compression = $9, block_records = $10, record_index = $11
                 WHERE id = $1 AND object = $2 AND block_offset = $3 AND record_index = $12",
            )
            .bind(&h.id)
            .bind(&h.location.object)
            .bind(h.location.offset as i64)
            .bind(&to.object)
            .bind(to.offset as i64)
            .bind(to.length as i64)
            .bind(to.uncompressed_length as i64)
            .bind(i64::from(to.crc32c))
            .bind(to.compression)
            .bind(i64::from(to.block_records))
            .bind(i64::from(*index))
            .bind(i64::from(h.record_index))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(count as u32)
    }

    async fn forget_object(&self, path: &str) -> Result<()> {
        sqlx::query("DELETE FROM objects WHERE path = $1 AND unreferenced_ms IS NOT NULL")
            .bind(path)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn expire_broadcast_progress(&self, before_ms: i64, limit: u32) -> Result<u32> {
        let gone = sqlx::query(
            "SELECT tenant, progress FROM broadcast_progress WHERE last_seen_ms < $1 ORDER BY last_seen_ms LIMIT $2",
        )
        .bind(before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut expired = 0;
        for row in gone {
            let (tenant, progress): (String, String) = (row.try_get("tenant")?, row.try_get("progress")?);
            let mut tx = self.writer.begin().await?;
            // Seen again meanwhile: it stays.
            let still_gone =
                sqlx::query("DELETE FROM broadcast_progress WHERE tenant = $1 AND progress = $2 AND last_seen_ms < $3")
                    .bind(&tenant)
                    .bind(&progress)
                    .bind(before_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if still_gone == 1 {
                for table in ["cursors", "inflight"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE tenant = $1 AND grp = $2"
                    )))
                    .bind(&tenant)
                    .bind(&progress)
                    .execute(&mut *tx)
                    .await?;
                }
                expired += 1;
            }
            tx.commit().await?;
        }
        Ok(expired)
    }

    async fn stored_bytes(&self) -> Result<Vec<(String, i64)>> {
        // Batches of one block share it: count each block once.
        sqlx::query(
            "SELECT tenant, CAST(SUM(block_length) AS BIGINT) AS bytes FROM
             (SELECT DISTINCT tenant, object, block_offset, block_length FROM batches) AS blocks
             GROUP BY tenant ORDER BY tenant",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("tenant")?, int(row, "bytes")?)))
        .collect()
    }
}
