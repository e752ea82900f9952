//! SQL of `Operations`: admin changes, deletes, reports and redelivery of dead letters.

use std::collections::BTreeMap;

use super::checkpoint::Checkpoint;
use super::*;
use crate::coordinator::Operations;
use crate::operations::{
    DeadLetter, Delivery, DeliveryState, GroupChange, MAX_RETENTION_MS, MIN_RETENTION_MS, QueueProgress, QueueStats,
    Redelivery, TopicChange,
};

/// Tables whose rows belong to one topic (`topic` column), deleted with it.
const TOPIC_TABLES: [&str; 11] = [
    "queues",
    "message_ids",
    "message_keys",
    "batches",
    "cursors",
    "inflight",
    "stream_offsets",
    "held",
    "quarantine",
    "dead_letters",
    "lanes",
];

/// Tables whose rows hold one group's progress (`grp` column; a broadcast client's progress
/// key starts with the group's name and '/', a lane's with its name and '%').
const PROGRESS_TABLES: [&str; 3] = ["cursors", "inflight", "stream_offsets"];

#[async_trait]
impl Operations for SqlCoordinator {
    #[instrument(skip_all, fields(tenant, topic = name), err)]
    async fn update_topic(&self, tenant: &str, name: &str, change: &TopicChange) -> Result<Topic> {
        let mut tx = self.writer.begin().await?;
        let mut topic = sqlx::query("SELECT * FROM topics WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(topic_from_row)
            .transpose()?
            .ok_or_else(|| Error::TopicNotFound {
                tenant: tenant.into(),
                topic: name.into(),
            })?;
        let queues_before = topic.queue_count;
        topic.message_type = change.message_type.unwrap_or(topic.message_type);
        topic.queue_count = change.queue_count.unwrap_or(topic.queue_count);
        topic.retention_ms = change.retention_ms.unwrap_or(topic.retention_ms);
        topic.lite_ttl_ms = change.lite_ttl_ms.unwrap_or(topic.lite_ttl_ms);
        topic.trace = change.trace.unwrap_or(topic.trace);
        TopicSpec {
            tenant: topic.tenant.clone(),
            name: topic.name.clone(),
            message_type: topic.message_type,
            queue_count: topic.queue_count,
            lite_ttl_ms: topic.lite_ttl_ms,
        }
        .validate()?;
        if topic.queue_count < queues_before {
            return Err(Error::invalid(
                "queue count",
                format!(
                    "{} → {}: queues can only be added (the messages of queues taken away would be stranded)",
                    queues_before, topic.queue_count
                ),
            ));
        }
        if !(MIN_RETENTION_MS..=MAX_RETENTION_MS).contains(&topic.retention_ms) {
            return Err(Error::invalid(
                "retention",
                format!("{} ms is not within 1 minute..=3650 days", topic.retention_ms),
            ));
        }
        sqlx::query(
            "UPDATE topics SET message_type = $3, queue_count = $4, retention_ms = $5, lite_ttl_ms = $6, trace = $7
             WHERE tenant = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .bind(topic.message_type as i64)
        .bind(i64::from(topic.queue_count))
        .bind(topic.retention_ms)
        .bind(topic.lite_ttl_ms)
        .bind(i64::from(topic.trace))
        .execute(&mut *tx)
        .await?;
        for q in queues_before..topic.queue_count {
            sqlx::query(
                "INSERT INTO queues (tenant, topic, queue_id, next_offset, min_offset) VALUES ($1, $2, $3, 0, 0)
                 ON CONFLICT (tenant, topic, queue_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(name)
            .bind(i64::from(q))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(topic)
    }

    #[instrument(skip_all, fields(tenant, group = name), err)]
    async fn update_group(&self, tenant: &str, name: &str, change: &GroupChange) -> Result<Group> {
        let mut tx = self.writer.begin().await?;
        let mut group = sqlx::query("SELECT * FROM consumer_groups WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(group_from_row)
            .transpose()?
            .ok_or_else(|| Error::GroupNotFound {
                tenant: tenant.into(),
                group: name.into(),
            })?;
        group.fifo = change.fifo.unwrap_or(group.fifo);
        group.max_attempts = change.max_attempts.unwrap_or(group.max_attempts);
        if let Some(policy) = &change.retry_policy {
            group.retry_policy = policy.clone();
        }
        if let Some(latest) = change.start_latest {
            group.start = if latest { StartFrom::Latest } else { StartFrom::Earliest };
        }
        group.lane_fallback = change.lane_fallback.unwrap_or(group.lane_fallback);
        group.spec().validate()?;
        sqlx::query(
            "UPDATE consumer_groups SET fifo = $3, max_attempts = $4, retry_policy = $5, start_latest = $6,
             lane_fallback_ms = $7 WHERE tenant = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .bind(i64::from(group.fifo))
        .bind(i64::from(group.max_attempts))
        .bind(group.retry_policy.stored())
        .bind(i64::from(group.start == StartFrom::Latest))
        .bind(group.lane_fallback.stored())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(group)
    }

    #[instrument(skip_all, fields(tenant, topic = name), err)]
    async fn delete_topic(&self, tenant: &str, name: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let deleted = delete_topic_in(&mut tx, tenant, name).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    #[instrument(skip_all, fields(tenant, group = name), err)]
    async fn delete_group(&self, tenant: &str, name: &str, dead_letters: bool) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let deleted = sqlx::query("DELETE FROM consumer_groups WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !deleted {
            return Ok(false);
        }
        // Its progress: its own, its broadcast clients' (`name/…`) and its lanes' (`name%…`).
        let clients = format!("{}/", name);
        let lanes = crate::lane::progress(name, "");
        for table in PROGRESS_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant = $1
                 AND (grp = $2 OR substr(grp, 1, CAST($3 AS INTEGER)) IN ($4, $5))"
            )))
            .bind(tenant)
            .bind(name)
            .bind(clients.len() as i64)
            .bind(&clients)
            .bind(&lanes)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM broadcast_progress WHERE tenant = $1 AND substr(progress, 1, CAST($2 AS INTEGER)) = $3",
        )
        .bind(tenant)
        .bind(clients.len() as i64)
        .bind(&clients)
        .execute(&mut *tx)
        .await?;
        for table in ["lite_subscriptions", "lite_dropped", "lanes"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant = $1 AND grp = $2"
            )))
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        delete_topic_in(&mut tx, tenant, &retry_topic(name)).await?;
        if dead_letters {
            delete_topic_in(&mut tx, tenant, &dead_letter_topic(name)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn group_progress(&self, tenant: &str, group: &str) -> Result<Vec<QueueProgress>> {
        let mut tx = self.reader.begin().await?;
        let mut progress: BTreeMap<(String, i32), QueueProgress> = BTreeMap::new();
        for (table, column) in [("cursors", "next_offset"), ("stream_offsets", "committed")] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT p.topic, p.queue_id, p.{column} AS at, q.min_offset, q.next_offset FROM {table} p
                 JOIN queues q ON q.tenant = p.tenant AND q.topic = p.topic AND q.queue_id = p.queue_id
                 WHERE p.tenant = $1 AND p.grp = $2"
            )))
            .bind(tenant)
            .bind(group)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let key = (r.try_get::<String, _>("topic")?, int(r, "queue_id")? as i32);
                let entry = progress.entry(key.clone()).or_insert_with(|| QueueProgress {
                    topic: key.0,
                    queue: key.1,
                    min_offset: 0,
                    max_offset: 0,
                    cursor: None,
                    in_flight: 0,
                    committed: None,
                });
                entry.min_offset = int(r, "min_offset")?;
                entry.max_offset = int(r, "next_offset")?;
                let at = Some(int(r, "at")?);
                if table == "cursors" {
                    entry.cursor = at;
                } else {
                    entry.committed = at;
                }
            }
        }
        let pending = Checkpoint::select(&mut tx, "tenant = $1 AND grp = $2", |q| q.bind(tenant).bind(group)).await?;
        for cp in pending {
            if let Some(p) = progress.get_mut(&(cp.sub.topic.clone(), cp.queue)) {
                p.in_flight += cp.offsets.len() as i64;
            }
        }
        tx.commit().await?;
        Ok(progress.into_values().collect())
    }

    async fn topic_stats(&self, tenant: &str, topic: &str) -> Result<Vec<QueueStats>> {
        sqlx::query(
            "SELECT q.queue_id, q.min_offset, q.next_offset, COUNT(b.base_offset) AS batches,
                    CAST(COALESCE(SUM(b.block_length), 0) AS BIGINT) AS bytes, COUNT(DISTINCT b.object) AS objects,
                    MIN(b.min_ts) AS oldest, MAX(b.max_ts) AS newest
             FROM queues q LEFT JOIN batches b
               ON b.tenant = q.tenant AND b.topic = q.topic AND b.queue_id = q.queue_id
             WHERE q.tenant = $1 AND q.topic = $2
             GROUP BY q.queue_id, q.min_offset, q.next_offset ORDER BY q.queue_id",
        )
        .bind(tenant)
        .bind(topic)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| {
            Ok(QueueStats {
                queue: int(r, "queue_id")? as i32,
                min_offset: int(r, "min_offset")?,
                max_offset: int(r, "next_offset")?,
                batches: int(r, "batches")?,
                bytes: int(r, "bytes")?,
                objects: int(r, "objects")?,
                oldest_ms: r.try_get("oldest")?,
                newest_ms: r.try_get("newest")?,
            })
        })
        .collect()
    }

    async fn dead_letters(&self, tenant: &str, group: &str, from: i64, limit: u32) -> Result<Vec<DeadLetter>> {
        sqlx::query(
            "SELECT d.msg_offset, d.origin_topic, d.origin_queue, d.origin_offset FROM dead_letters d
             JOIN queues q ON q.tenant = d.tenant AND q.topic = d.topic AND q.queue_id = 0
             WHERE d.tenant = $1 AND d.topic = $2 AND d.msg_offset >= $3 AND d.msg_offset >= q.min_offset
             ORDER BY d.msg_offset LIMIT $4",
        )
        .bind(tenant)
        .bind(dead_letter_topic(group))
        .bind(from)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| {
            Ok(DeadLetter {
                offset: int(r, "msg_offset")?,
                topic: r.try_get("origin_topic")?,
                queue: int(r, "origin_queue")? as i32,
                origin_offset: int(r, "origin_offset")?,
            })
        })
        .collect()
    }

    async fn delivery_states(&self, tenant: &str, topic: &str, queue: i32, offset: i64) -> Result<Vec<Delivery>> {
        let mut tx = self.reader.begin().await?;
        let mut states: BTreeMap<String, DeliveryState> = BTreeMap::new();
        for (table, column) in [("cursors", "next_offset"), ("stream_offsets", "committed")] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT grp, {column} AS at FROM {table} WHERE tenant = $1 AND topic = $2 AND queue_id = $3"
            )))
            .bind(tenant)
            .bind(topic)
            .bind(queue)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let past = int(r, "at")? > offset;
                let state = match (table, past) {
                    ("cursors", true) => DeliveryState::Acked,
                    ("cursors", false) => DeliveryState::Pending,
                    (_, true) => DeliveryState::Committed,
                    (_, false) => DeliveryState::NotCommitted,
                };
                states.insert(r.try_get("grp")?, state);
            }
        }
        let holding = Checkpoint::select(
            &mut tx,
            "tenant = $1 AND topic = $2 AND queue_id = $3 AND msg_offset <= $4 AND last_offset >= $4",
            |q| q.bind(tenant).bind(topic).bind(queue).bind(offset),
        )
        .await?;
        for cp in holding.into_iter().filter(|cp| cp.pending(offset)) {
            let state = if cp.waiting {
                DeliveryState::Waiting
            } else {
                DeliveryState::InFlight { attempt: cp.attempt }
            };
            states.insert(cp.sub.group.clone(), state);
        }
        let dead = sqlx::query(
            "SELECT topic FROM dead_letters WHERE tenant = $1 AND origin_topic = $2 AND origin_queue = $3
               AND origin_offset = $4",
        )
        .bind(tenant)
        .bind(topic)
        .bind(queue)
        .bind(offset)
        .fetch_all(&mut *tx)
        .await?;
        for r in &dead {
            let dlq: String = r.try_get("topic")?;
            if let Some(group) = dlq.strip_prefix(DLQ_PREFIX) {
                // Resent since: in flight again, or acked after that.
                states
                    .entry(group.to_string())
                    .and_modify(|s| {
                        if *s == DeliveryState::Acked {
                            *s = DeliveryState::DeadLettered;
                        }
                    })
                    .or_insert(DeliveryState::DeadLettered);
            }
        }
        tx.commit().await?;
        Ok(states
            .into_iter()
            .map(|(group, state)| Delivery { group, state })
            .collect())
    }

    #[instrument(skip_all, fields(tenant, group, messages = messages.len()), err)]
    async fn redeliver(&self, tenant: &str, group: &str, messages: &[Redelivery], now_ms: i64) -> Result<u32> {
        let mut tx = self.writer.begin().await?;
        let mut sorted: Vec<&Redelivery> = messages.iter().collect();
        sorted.sort_by(|a, b| (&a.topic, a.queue, a.offset).cmp(&(&b.topic, b.queue, b.offset)));
        let mut redelivered = 0;
        let mut notify = HashSet::new();
        for m in sorted {
            let sub = Subscription {
                tenant: tenant.to_string(),
                group: group.to_string(),
                topic: m.topic.clone(),
            };
            let retained =
                sqlx::query("SELECT min_offset FROM queues WHERE tenant = $1 AND topic = $2 AND queue_id = $3")
                    .bind(tenant)
                    .bind(&m.topic)
                    .bind(m.queue)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| int(&r, "min_offset"))
                    .transpose()?
                    .is_some_and(|min| m.offset >= min);
            let behind = matches!(cursor(&mut tx, &sub, m.queue).await?, Some((c, _)) if m.offset < c);
            let probe = Receipt {
                subscription: sub.clone(),
                queue: m.queue,
                offset: m.offset,
                seq: 0,
            };
            if !retained || !behind || Checkpoint::holding(&mut tx, &probe, true).await?.is_some() {
                continue;
            }
            let mut again = Checkpoint::delivered(&sub, m.queue, vec![m.offset], now_ms, m.message_group.clone());
            again.attempt = 0;
            again.store(&mut tx).await?;
            redelivered += 1;
            notify.insert((tenant.to_string(), m.topic.clone()));
        }
        self.notify_in(&mut tx, &notify, false).await?;
        tx.commit().await?;
        self.notify_after(&notify, false);
        Ok(redelivered)
    }
}

/// Deletes a topic's row and everything that belongs to it (a LITE parent's lite topics, named
/// `parent+lite`, too). False if there was no such topic.
async fn delete_topic_in(tx: &mut Tx, tenant: &str, name: &str) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM topics WHERE tenant = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1;
    if !deleted {
        return Ok(false);
    }
    let lites = crate::lite::queue_topic(name, "");
    for table in TOPIC_TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant = $1 AND (topic = $2 OR substr(topic, 1, CAST($3 AS INTEGER)) = $4)"
        )))
        .bind(tenant)
        .bind(name)
        .bind(lites.len() as i64)
        .bind(&lites)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("DELETE FROM dead_letters WHERE tenant = $1 AND origin_topic = $2")
        .bind(tenant)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    for table in ["lite_subscriptions", "lite_dropped"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant = $1 AND parent = $2"
        )))
        .bind(tenant)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}
