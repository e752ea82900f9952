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
}
