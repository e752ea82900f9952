//! SQL of `MessageIndex`, and the index rows a flush commit writes.

use super::*;
use crate::coordinator::MessageIndex;

/// Rows per multi-row INSERT: 7 binds each, far below the bind limits (SQLite 32,766,
/// PostgreSQL 65,535).
const ROWS_PER_INSERT: usize = 500;

#[async_trait]
impl MessageIndex for SqlCoordinator {
    async fn find_messages(&self, tenant: &str, ids: &[String]) -> Result<Vec<IndexedMessage>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(PATHS_PER_QUERY) {
            let placeholders: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT message_id, topic, queue_id, msg_offset, store_ms FROM message_ids
                 WHERE tenant = $1 AND message_id IN ({})",
                placeholders.join(", ")
            );
            let query = chunk
                .iter()
                .fold(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant), |q, id| q.bind(id));
            for row in query.fetch_all(&self.reader).await? {
                found.push(indexed_from_row(&row)?);
            }
        }
        Ok(found)
    }

    async fn messages_by_key(
        &self,
        tenant: &str,
        topic: &str,
        key: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<IndexedMessage>> {
        sqlx::query(
            "SELECT message_id, topic, queue_id, msg_offset, store_ms FROM message_keys
             WHERE tenant = $1 AND topic = $2 AND msg_key = $3 AND store_ms >= $4 AND store_ms <= $5
             ORDER BY store_ms, queue_id, msg_offset LIMIT $6",
        )
        .bind(tenant)
        .bind(topic)
        .bind(key)
        .bind(from_ms)
        .bind(to_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(indexed_from_row)
        .collect()
    }

    async fn expire_index(&self, before_ms: i64, limit: u32) -> Result<u32> {
        let mut removed = 0;
        for table in ["message_ids", "message_keys"] {
            removed += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE store_ms IN
                   (SELECT store_ms FROM {table} WHERE store_ms < $1 ORDER BY store_ms LIMIT $2)
                 AND store_ms < $1"
            )))
            .bind(before_ms)
            .bind(i64::from(limit))
            .execute(&self.writer)
            .await?
            .rows_affected();
        }
        Ok(removed as u32)
    }
}

fn indexed_from_row(row: &AnyRow) -> Result<IndexedMessage> {
    Ok(IndexedMessage {
        message_id: row.try_get("message_id")?,
        topic: row.try_get("topic")?,
        queue: int(row, "queue_id")? as i32,
        offset: int(row, "msg_offset")?,
        store_ms: int(row, "store_ms")?,
    })
}

/// Records the index entries of a batch appended at `base` (a retried message id keeps its
/// first entry).
pub(super) async fn index_batch(tx: &mut Tx, batch: &AppendBatch, base: i64) -> Result<()> {
    let q = &batch.queue;
    for chunk in batch.indexed.chunks(ROWS_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let p = r * 6;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO message_ids (tenant, message_id, topic, queue_id, msg_offset, store_ms) VALUES {}
             ON CONFLICT (tenant, message_id) DO NOTHING",
            rows.join(", ")
        );
        let query = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, i| {
            query
                .bind(&q.tenant)
                .bind(&i.message_id)
                .bind(&q.topic)
                .bind(q.queue)
                .bind(base + i64::from(i.position))
                .bind(i.store_ms)
        });
        query.execute(&mut **tx).await?;
    }
    let keyed: Vec<(&crate::model::Indexed, &String)> = batch
        .indexed
        .iter()
        .flat_map(|i| i.keys.iter().map(move |k| (i, k)))
        .collect();
    for chunk in keyed.chunks(ROWS_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let p = r * 7;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO message_keys (tenant, topic, msg_key, queue_id, msg_offset, message_id, store_ms) VALUES {}
             ON CONFLICT DO NOTHING",
            rows.join(", ")
        );
        let query = chunk
            .iter()
            .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, (i, key)| {
                query
                    .bind(&q.tenant)
                    .bind(&q.topic)
                    .bind(*key)
                    .bind(q.queue)
                    .bind(base + i64::from(i.position))
                    .bind(&i.message_id)
                    .bind(i.store_ms)
            });
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
