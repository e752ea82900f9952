//! SQL of `LiteTopics`: lite topics' queues, counted on their parent, and subscriptions.

use super::*;
use crate::lite::{
    Change, Ready, SEPARATOR, Subscriber, SubscriptionQuota, TopicQuota, first_offset, queue_topic, split,
};

/// COMPLETE_ADD keeps subscriptions younger than this even when its set lacks them: the
/// Node client sends its periodic complete set without waiting, so a snapshot taken before
/// a PARTIAL_ADD may arrive after it.
const REPLACE_GRACE_MS: i64 = 10_000;

/// How long a subscription dropped by expiry is remembered.
const DROPPED_KEPT_MS: i64 = 3_600_000;

/// The stored name of a subscription's lite topic, in SQL (`s` is the subscriptions row).
fn lite_queue_sql() -> String {
    format!("s.parent || '{SEPARATOR}' || s.lite")
}

#[async_trait]
impl LiteTopics for SqlCoordinator {
    #[instrument(skip_all, fields(tenant, parent, n = lites.len()), err)]
    async fn create_lite_topics(
        &self,
        tenant: &str,
        parent: &str,
        lites: &[String],
        quota: TopicQuota,
        now_ms: i64,
    ) -> Result<()> {
        let (tenant, parent, lites) = (tenant.to_string(), parent.to_string(), lites.to_vec());
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let mut created_any = false;
                for lite in &lites {
                    let created = sqlx::query(
                        "INSERT INTO queues (tenant, topic, queue_id, next_offset, min_offset, created_ms)
                         VALUES ($1, $2, 0, $4, $4, $3)
                         ON CONFLICT (tenant, topic, queue_id) DO NOTHING",
                    )
                    .bind(&tenant)
                    .bind(queue_topic(&parent, lite))
                    .bind(now_ms)
                    .bind(first_offset(now_ms))
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                    if created == 0 {
                        continue;
                    }
                    let counted = sqlx::query(
                        "UPDATE topics SET lite_count = lite_count + 1 WHERE tenant = $1 AND name = $2 AND lite_count < $3",
                    )
                    .bind(&tenant)
                    .bind(&parent)
                    .bind(quota.per_parent)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                    if counted == 0 {
                        return Err(Error::LiteTopicQuota {
                            holder: format!("topic {tenant}/{parent}"),
                            max: quota.per_parent,
                        });
                    }
                    created_any = true;
                }
                if created_any {
                    // Over the tenant's parents (unlocked: concurrent creations under other
                    // parents may overshoot it by what they create at once).
                    let held = sqlx::query(
                        "SELECT CAST(COALESCE(SUM(lite_count), 0) AS BIGINT) AS n FROM topics WHERE tenant = $1",
                    )
                    .bind(&tenant)
                    .fetch_one(&mut **tx)
                    .await?;
                    if int(&held, "n")? > quota.per_tenant {
                        return Err(Error::LiteTopicQuota {
                            holder: format!("tenant {tenant}"),
                            max: quota.per_tenant,
                        });
                    }
                }
                Ok(((), Announce::default()))
            })
        }))
        .await
    }

    #[instrument(skip_all, fields(group = %who.group, parent = %who.parent, ?change, n = lites.len()), err)]
    async fn sync_lite_subscriptions(
        &self,
        who: &Subscriber,
        change: Change,
        lites: &[String],
        quota: SubscriptionQuota,
        now_ms: i64,
    ) -> Result<Vec<String>> {
        let (who, lites) = (who.clone(), lites.to_vec());
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let bind = |sql: &'static str| {
                    sqlx::query(sql)
                        .bind(who.tenant.clone())
                        .bind(who.group.clone())
                        .bind(who.parent.clone())
                        .bind(who.client_id.clone())
                };
                match change {
                    Change::Clear => {
                        bind("DELETE FROM lite_subscriptions WHERE tenant = $1 AND grp = $2 AND parent = $3 AND client_id = $4")
                            .execute(&mut **tx)
                            .await?;
                    }
                    Change::Replace => {
                        // The set is a snapshot the client took before sending it: a
                        // subscription added since (within the grace) is newer than it.
                        bind(
                            "DELETE FROM lite_subscriptions
                             WHERE tenant = $1 AND grp = $2 AND parent = $3 AND client_id = $4 AND created_ms < $5",
                        )
                        .bind(now_ms - REPLACE_GRACE_MS)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Change::Add | Change::Remove => {}
                }
                let mut dropped = Vec::new();
                for lite in &lites {
                    match change {
                        Change::Replace if was_dropped(tx, &who, lite).await? => dropped.push(lite.clone()),
                        Change::Add | Change::Replace => {
                            // Asked for again: no longer a dropped subscription.
                            bind(
                                "DELETE FROM lite_dropped
                                 WHERE tenant = $1 AND grp = $2 AND parent = $3 AND client_id = $4 AND lite = $5",
                            )
                            .bind(lite)
                            .execute(&mut **tx)
                            .await?;
                            bind(
                                "INSERT INTO lite_subscriptions (tenant, grp, parent, client_id, lite, created_ms)
                                 VALUES ($1, $2, $3, $4, $5, $6)
                                 ON CONFLICT (tenant, grp, parent, client_id, lite) DO NOTHING",
                            )
                            .bind(lite)
                            .bind(now_ms)
                            .execute(&mut **tx)
                            .await?;
                        }
                        Change::Remove => {
                            bind(
                                "DELETE FROM lite_subscriptions
                                 WHERE tenant = $1 AND grp = $2 AND parent = $3 AND client_id = $4 AND lite = $5",
                            )
                            .bind(lite)
                            .execute(&mut **tx)
                            .await?;
                        }
                        Change::Clear => {}
                    }
                }
                if matches!(change, Change::Add | Change::Replace) {
                    let held = bind(
                        "SELECT COUNT(*) AS n FROM lite_subscriptions
                         WHERE tenant = $1 AND grp = $2 AND parent = $3 AND client_id = $4",
                    )
                    .fetch_one(&mut **tx)
                    .await?;
                    if int(&held, "n")? > i64::from(quota.per_client) {
                        return Err(Error::LiteSubscriptionQuota {
                            holder: format!("client {}", who.client_id),
                            max: quota.per_client,
                        });
                    }
                    // An index range over the group's subscriptions under the parent.
                    let held = sqlx::query(
                        "SELECT COUNT(*) AS n FROM lite_subscriptions WHERE tenant = $1 AND grp = $2 AND parent = $3",
                    )
                    .bind(&who.tenant)
                    .bind(&who.group)
                    .bind(&who.parent)
                    .fetch_one(&mut **tx)
                    .await?;
                    if int(&held, "n")? > i64::from(quota.per_group) {
                        return Err(Error::LiteSubscriptionQuota {
                            holder: format!("consumer group {}", who.group),
                            max: quota.per_group,
                        });
                    }
                }
                Ok((dropped, Announce::default()))
            })
        }))
        .await
    }

    async fn lite_subscriptions(&self, who: &Subscriber) -> Result<Vec<String>> {
        sqlx::query(
            "SELECT lite FROM lite_subscriptions WHERE tenant = $1 AND grp = $2 AND parent = $3 AND client_id = $4
             ORDER BY lite",
        )
        .bind(&who.tenant)
        .bind(&who.group)
        .bind(&who.parent)
        .bind(&who.client_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("lite")?))
        .collect()
    }

    async fn ready_lite_topics(&self, who: &Subscriber, now_ms: i64, limit: u32) -> Result<(Vec<Ready>, Option<i64>)> {
        let lite_queue = lite_queue_sql();
        let mut tx = self.reader.begin().await?;
        // In flight and not expired: the lite topic waits for it (one at a time, in order).
        let in_flight = |expired: &str| {
            format!(
                "SELECT 1 FROM inflight i WHERE i.tenant = s.tenant AND i.grp = s.grp AND i.topic = q.topic
                   AND i.queue_id = 0 AND i.waiting = 0 AND i.invisible_until_ms {expired} $5"
            )
        };
        let ready = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT lite, cursor, end_offset, expired FROM
               (SELECT s.lite, COALESCE(c.next_offset, q.min_offset) AS cursor, q.next_offset AS end_offset,
                       CASE WHEN EXISTS ({expired}) THEN 1 ELSE 0 END AS expired,
                       CASE WHEN EXISTS ({busy}) THEN 1 ELSE 0 END AS busy
                FROM lite_subscriptions s
                JOIN queues q ON q.tenant = s.tenant AND q.topic = {lite_queue} AND q.queue_id = 0
                LEFT JOIN cursors c ON c.tenant = s.tenant AND c.grp = s.grp AND c.topic = q.topic AND c.queue_id = 0
                WHERE s.tenant = $1 AND s.grp = $2 AND s.parent = $3 AND s.client_id = $4) l
             WHERE expired = 1 OR (busy = 0 AND cursor < end_offset)
             ORDER BY random() LIMIT $6",
            expired = in_flight("<="),
            busy = in_flight(">"),
        )))
        .bind(&who.tenant)
        .bind(&who.group)
        .bind(&who.parent)
        .bind(&who.client_id)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(Ready {
                name: r.try_get("lite")?,
                cursor: int(r, "cursor")?,
                end: int(r, "end_offset")?,
                expired: int(r, "expired")? != 0,
            })
        })
        .collect::<Result<Vec<Ready>>>()?;
        let next = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(i.invisible_until_ms) AS next FROM lite_subscriptions s
             JOIN inflight i ON i.tenant = s.tenant AND i.grp = s.grp AND i.topic = {lite_queue} AND i.waiting = 0
             WHERE s.tenant = $1 AND s.grp = $2 AND s.parent = $3 AND s.client_id = $4"
        )))
        .bind(&who.tenant)
        .bind(&who.group)
        .bind(&who.parent)
        .bind(&who.client_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<Option<i64>, _>("next")?;
        tx.commit().await?;
        Ok((ready, next))
    }

    #[instrument(skip_all, err)]
    async fn expire_lite_topics(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, String)>> {
        let parents = sqlx::query(
            "SELECT tenant, name, lite_ttl_ms, retention_ms FROM topics WHERE message_type = $1 AND lite_ttl_ms > 0",
        )
        .bind(MessageType::Lite as i64)
        .fetch_all(&self.reader)
        .await?;
        // Dropped subscriptions are remembered for an hour: clients resend their sets every
        // 30 s, so each hears of a drop many times over by then.
        sqlx::query("DELETE FROM lite_dropped WHERE dropped_ms < $1")
            .bind(now_ms - DROPPED_KEPT_MS)
            .execute(&self.writer)
            .await?;
        let mut expired = Vec::new();
        for p in parents {
            let (tenant, parent): (String, String) = (p.try_get("tenant")?, p.try_get("name")?);
            let idle_since = now_ms - int(&p, "lite_ttl_ms")?;
            // Past the retention its messages are gone anyway: nobody can still consume them.
            let hard_since = idle_since.min(now_ms - int(&p, "retention_ms")?);
            let want = limit.saturating_sub(expired.len() as u32);
            if want == 0 {
                break;
            }
            for (topic, next, newest) in idle_lite_queues(&self.reader, &tenant, &parent, idle_since, want).await? {
                let Some((_, lite)) = split(&topic) else { continue };
                if newest >= hard_since && unconsumed_by_a_subscriber(&self.reader, &tenant, &parent, lite).await? {
                    continue;
                }
                if delete_lite_topic(&self.writer, &tenant, &parent, lite, next, now_ms).await? {
                    expired.push((tenant.clone(), topic));
                }
            }
        }
        Ok(expired)
    }

    async fn drop_lite_client(&self, tenant: &str, client_id: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM lite_subscriptions WHERE tenant = $1 AND client_id = $2")
                .bind(tenant)
                .bind(client_id)
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }
}

/// Lite queues of `parent` created before `idle_since` whose newest retained message is older
/// (or that have none): `(stored name, next offset, newest message time or 0)`, at most `limit`.
async fn idle_lite_queues(
    pool: &AnyPool,
    tenant: &str,
    parent: &str,
    idle_since: i64,
    limit: u32,
) -> Result<Vec<(String, i64, i64)>> {
    // The parent's lite queues are the names in [parent+, parent,): `,` follows `+`.
    let (from, to) = (format!("{parent}{SEPARATOR}"), format!("{parent},"));
    sqlx::query(
        "SELECT topic, next_offset, newest FROM
           (SELECT q.topic, q.next_offset, q.created_ms,
                   COALESCE((SELECT MAX(b.max_ts) FROM batches b
                             WHERE b.tenant = q.tenant AND b.topic = q.topic AND b.queue_id = 0), 0) AS newest
            FROM queues q WHERE q.tenant = $1 AND q.topic >= $2 AND q.topic < $3 AND q.queue_id = 0) l
         WHERE created_ms < $4 AND newest < $4
         LIMIT $5",
    )
    .bind(tenant)
    .bind(from)
    .bind(to)
    .bind(idle_since)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("topic")?, int(r, "next_offset")?, int(r, "newest")?)))
    .collect()
}

/// Whether a group with a subscription to the lite topic has messages of it not yet consumed
/// (its cursor short of the end, or some in flight).
async fn unconsumed_by_a_subscriber(pool: &AnyPool, tenant: &str, parent: &str, lite: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS unconsumed FROM lite_subscriptions s
         JOIN queues q ON q.tenant = s.tenant AND q.topic = $4 AND q.queue_id = 0
         LEFT JOIN cursors c ON c.tenant = s.tenant AND c.grp = s.grp AND c.topic = q.topic AND c.queue_id = 0
         WHERE s.tenant = $1 AND s.parent = $2 AND s.lite = $3
           AND (COALESCE(c.next_offset, q.min_offset) < q.next_offset
                OR EXISTS (SELECT 1 FROM inflight i WHERE i.tenant = s.tenant AND i.grp = s.grp AND i.topic = q.topic))
         LIMIT 1",
    )
    .bind(tenant)
    .bind(parent)
    .bind(lite)
    .bind(queue_topic(parent, lite))
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// Deletes a lite topic if its queue still ends at `next` (no send since it was found idle):
/// its queue, index rows, progress and subscriptions, and uncounts it on the parent.
async fn delete_lite_topic(
    pool: &AnyPool,
    tenant: &str,
    parent: &str,
    lite: &str,
    next: i64,
    now_ms: i64,
) -> Result<bool> {
    let topic = queue_topic(parent, lite);
    let mut tx = pool.begin().await?;
    let gone = sqlx::query("DELETE FROM queues WHERE tenant = $1 AND topic = $2 AND queue_id = 0 AND next_offset = $3")
        .bind(tenant)
        .bind(&topic)
        .bind(next)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Ok(false);
    }
    for table in ["batches", "cursors", "inflight", "stream_offsets"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant = $1 AND topic = $2"
        )))
        .bind(tenant)
        .bind(&topic)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO lite_dropped (tenant, grp, parent, client_id, lite, dropped_ms)
         SELECT tenant, grp, parent, client_id, lite, $4 FROM lite_subscriptions
         WHERE tenant = $1 AND parent = $2 AND lite = $3
         ON CONFLICT (tenant, grp, parent, client_id, lite) DO UPDATE SET dropped_ms = excluded.dropped_ms",
    )
    .bind(tenant)
    .bind(parent)
    .bind(lite)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM lite_subscriptions WHERE tenant = $1 AND parent = $2 AND lite = $3")
        .bind(tenant)
        .bind(parent)
        .bind(lite)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE topics SET lite_count = lite_count - 1 WHERE tenant = $1 AND name = $2 AND lite_count > 0")
        .bind(tenant)
        .bind(parent)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Whether expiry dropped the client's subscription to `lite` and the lite topic is still gone.
async fn was_dropped(tx: &mut Tx, who: &Subscriber, lite: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS dropped FROM lite_dropped d
         WHERE d.tenant = $1 AND d.grp = $2 AND d.parent = $3 AND d.client_id = $4 AND d.lite = $5
           AND NOT EXISTS (SELECT 1 FROM queues q WHERE q.tenant = d.tenant AND q.topic = $6 AND q.queue_id = 0)",
    )
    .bind(&who.tenant)
    .bind(&who.group)
    .bind(&who.parent)
    .bind(&who.client_id)
    .bind(lite)
    .bind(queue_topic(&who.parent, lite))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}
