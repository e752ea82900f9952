//! SQL of `HeldRecords`: delay timers and half messages.

use super::*;

#[async_trait]
impl HeldRecords for SqlCoordinator {
    async fn fire_due_timers(&self, now_ms: i64, limit: u32) -> Result<Vec<HeldRecord>> {
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
        let topics = release_held(&mut tx, due.clone()).await?;
        self.notify_in(&mut tx, &topics, false).await?;
        tx.commit().await?;
        self.notify_after(&topics, false);
        Ok(due)
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

    async fn expire_transactions(&self, now_ms: i64, max_checks: i64, max_age_ms: i64) -> Result<u32> {
        let gone = sqlx::query(
            "DELETE FROM held WHERE kind = 2 AND ((checks >= $1 AND due_ms <= $2) OR created_ms <= $2 - $3)",
        )
        .bind(max_checks)
        .bind(now_ms)
        .bind(max_age_ms)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(gone as u32)
    }
}
