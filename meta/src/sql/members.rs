//! SQL of `Members`: node registration, heartbeats, epochs and expiry.

use super::*;

#[async_trait]
impl Members for SqlCoordinator {
    async fn register_node(
        &self,
        id: &str,
        roles: Roles,
        advertise: &str,
        remoting: Option<&str>,
        now_ms: i64,
    ) -> Result<Node> {
        let row = sqlx::query(
            "INSERT INTO nodes (id, roles, advertise, epoch, heartbeat_ms, alive, remoting)
             VALUES ($1, $2, $3, 1, $4, 1, $5)
             ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, advertise = excluded.advertise,
               epoch = nodes.epoch + 1, heartbeat_ms = excluded.heartbeat_ms, alive = 1,
               remoting = excluded.remoting, departure = 0
             RETURNING *",
        )
        .bind(id)
        .bind(roles.0)
        .bind(advertise)
        .bind(now_ms)
        .bind(remoting.unwrap_or_default())
        .fetch_one(&self.writer)
        .await?;
        node_from_row(&row)
    }

    async fn heartbeat_node(&self, id: &str, epoch: i64, now_ms: i64) -> Result<()> {
        let sql = "UPDATE nodes SET heartbeat_ms = $3 WHERE id = $1 AND epoch = $2 AND alive = 1";
        self.update_live_node(id, epoch, sql, now_ms).await
    }

    async fn drain_node(&self, id: &str, epoch: i64) -> Result<()> {
        let sql = "UPDATE nodes SET departure = $3 WHERE id = $1 AND epoch = $2 AND alive = 1";
        self.update_live_node(id, epoch, sql, Departure::Draining.code()).await
    }

    async fn leave_node(&self, id: &str, epoch: i64) -> Result<()> {
        let sql = "UPDATE nodes SET alive = 0, departure = $3 WHERE id = $1 AND epoch = $2 AND alive = 1";
        self.update_live_node(id, epoch, sql, Departure::Left.code()).await
    }

    async fn time_ms(&self) -> Result<i64> {
        if self.dialect == Dialect::Sqlite {
            return Ok(crate::Clock::now_ms(&crate::SystemClock));
        }
        let row = sqlx::query("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS now")
            .fetch_one(&self.reader)
            .await?;
        int(&row, "now")
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        sqlx::query("SELECT * FROM nodes ORDER BY id")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(node_from_row)
            .collect()
    }

    async fn purge_left_nodes(&self, before_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM nodes WHERE alive = 0 AND departure = $1 AND heartbeat_ms < $2")
                .bind(Departure::Left.code())
                .bind(before_ms)
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    async fn live_nodes(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<Node>> {
        sqlx::query("SELECT * FROM nodes WHERE alive = 1 AND departure = 0 AND heartbeat_ms >= $1 ORDER BY id")
            .bind(now_ms - ttl_ms)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(node_from_row)
            .collect()
    }

    async fn expire_nodes(&self, now_ms: i64, ttl_ms: i64, deciding: &str) -> Result<Vec<String>> {
        let rows =
            sqlx::query("UPDATE nodes SET alive = 0 WHERE alive = 1 AND heartbeat_ms < $1 AND id <> $2 RETURNING id")
                .bind(now_ms - ttl_ms)
                .bind(deciding)
                .fetch_all(&self.writer)
                .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>("id")?)).collect()
    }
}

impl SqlCoordinator {
    /// Runs `sql` (`$1` id, `$2` epoch, `$3` value; it must update only a live node of that
    /// epoch): `Fenced` when it updated nothing.
    async fn update_live_node(&self, id: &str, epoch: i64, sql: &'static str, value: i64) -> Result<()> {
        let id = id.to_string();
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let updated = sqlx::query(sql)
                    .bind(&id)
                    .bind(epoch)
                    .bind(value)
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
}
