//! SQL of `Lanes`: the lanes of consumer groups per topic and when each was last heard of.

use super::*;
use crate::lane::{self, Lane};

#[async_trait]
impl Lanes for SqlCoordinator {
    #[instrument(skip_all, fields(tenant = %group.tenant, group = %group.group, topic = %group.topic, lane), err)]
    async fn lane_seen(&self, group: &Subscription, lane: &str, now_ms: i64) -> Result<()> {
        let (group, lane) = (group.clone(), lane.to_string());
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let Subscription { tenant, group, topic } = &group;
                let updated = sqlx::query(
                    "UPDATE lanes SET last_seen_ms = $5
                     WHERE tenant = $1 AND grp = $2 AND topic = $3 AND lane = $4 AND last_seen_ms < $5",
                )
                .bind(tenant)
                .bind(group)
                .bind(topic)
                .bind(&lane)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if updated > 0 {
                    return Ok(((), Announce::default()));
                }
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT lane) FROM lanes WHERE tenant = $1 AND grp = $2 AND lane <> $3",
                )
                .bind(tenant)
                .bind(group)
                .bind(&lane)
                .fetch_one(&mut **tx)
                .await?;
                let known: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM lanes WHERE tenant = $1 AND grp = $2 AND lane = $3")
                        .bind(tenant)
                        .bind(group)
                        .bind(&lane)
                        .fetch_one(&mut **tx)
                        .await?;
                if known == 0 && others >= lane::MAX_PER_GROUP as i64 {
                    return Err(Error::LaneQuota {
                        tenant: tenant.clone(),
                        group: group.clone(),
                        lane: lane.clone(),
                        max: lane::MAX_PER_GROUP,
                    });
                }
                let new = sqlx::query(
                    "INSERT INTO lanes (tenant, grp, topic, lane, last_seen_ms) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant, grp, topic, lane) DO NOTHING",
                )
                .bind(tenant)
                .bind(group)
                .bind(topic)
                .bind(&lane)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1;
                if new {
                    // The lane's progress starts where the group's is.
                    sqlx::query(
                        "INSERT INTO cursors (tenant, grp, topic, queue_id, next_offset)
                         SELECT tenant, $4, topic, queue_id, next_offset FROM cursors
                         WHERE tenant = $1 AND grp = $2 AND topic = $3
                         ON CONFLICT (tenant, grp, topic, queue_id) DO NOTHING",
                    )
                    .bind(tenant)
                    .bind(group)
                    .bind(topic)
                    .bind(lane::progress(group, &lane))
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(((), Announce::default()))
            })
        }))
        .await
    }

    async fn lanes(&self, tenant: &str, group: &str) -> Result<Vec<Lane>> {
        let rows = sqlx::query(
            "SELECT topic, lane, last_seen_ms FROM lanes WHERE tenant = $1 AND grp = $2 ORDER BY topic, lane",
        )
        .bind(tenant)
        .bind(group)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Lane {
                    topic: r.try_get("topic")?,
                    name: r.try_get("lane")?,
                    last_seen_ms: int(r, "last_seen_ms")?,
                })
            })
            .collect()
    }

    async fn expire_lanes(&self, idle_before_ms: i64, limit: u32) -> Result<u32> {
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let idle = sqlx::query(
                    "SELECT tenant, grp, topic, lane FROM lanes WHERE last_seen_ms < $1
                     ORDER BY last_seen_ms LIMIT $2",
                )
                .bind(idle_before_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut **tx)
                .await?;
                for row in &idle {
                    let (tenant, group, topic, name): (String, String, String, String) = (
                        row.try_get("tenant")?,
                        row.try_get("grp")?,
                        row.try_get("topic")?,
                        row.try_get("lane")?,
                    );
                    for table in ["cursors", "inflight"] {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DELETE FROM {table} WHERE tenant = $1 AND grp = $2 AND topic = $3"
                        )))
                        .bind(&tenant)
                        .bind(lane::progress(&group, &name))
                        .bind(&topic)
                        .execute(&mut **tx)
                        .await?;
                    }
                    sqlx::query("DELETE FROM lanes WHERE tenant = $1 AND grp = $2 AND topic = $3 AND lane = $4")
                        .bind(&tenant)
                        .bind(&group)
                        .bind(&topic)
                        .bind(&name)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok((idle.len() as u32, Announce::default()))
            })
        }))
        .await
    }
}
