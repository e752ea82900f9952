//! SQL of `CatalogStore`: topics, consumer groups and cluster-wide secrets.

use super::*;

#[async_trait]
impl CatalogStore for SqlCoordinator {
    #[instrument(skip_all, fields(tenant = %spec.tenant, topic = %spec.name), err)]
    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<Topic> {
        spec.validate()?;
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO topics (tenant, name, message_type, queue_count, created_ms, lite_ttl_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&spec.tenant)
        .bind(&spec.name)
        .bind(spec.message_type as i64)
        .bind(i64::from(spec.queue_count))
        .bind(now_ms)
        .bind(spec.lite_ttl_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    kind: "topic",
                    tenant: spec.tenant.clone(),
                    name: spec.name.clone(),
                });
            }
            other => other?,
        };
        for q in 0..spec.queue_count {
            sqlx::query(
                "INSERT INTO queues (tenant, topic, queue_id, next_offset, min_offset) VALUES ($1, $2, $3, 0, 0)
                 ON CONFLICT (tenant, topic, queue_id) DO NOTHING",
            )
            .bind(&spec.tenant)
            .bind(&spec.name)
            .bind(i64::from(q))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Topic {
            tenant: spec.tenant.clone(),
            name: spec.name.clone(),
            message_type: spec.message_type,
            queue_count: spec.queue_count,
            created_ms: now_ms,
            retention_ms: DEFAULT_RETENTION_MS,
            lite_ttl_ms: spec.lite_ttl_ms,
            trace: true,
        })
    }

    async fn topic(&self, tenant: &str, name: &str) -> Result<Option<Topic>> {
        sqlx::query("SELECT * FROM topics WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(topic_from_row)
            .transpose()
    }

    async fn list_topics(&self, tenant: &str) -> Result<Vec<Topic>> {
        sqlx::query("SELECT * FROM topics WHERE tenant = $1 ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(topic_from_row)
            .collect()
    }

    #[instrument(skip_all, fields(tenant = %spec.tenant, group = %spec.name), err)]
    async fn create_group(&self, spec: &GroupSpec, now_ms: i64) -> Result<Group> {
        spec.validate()?;
        let inserted = sqlx::query(
            "INSERT INTO consumer_groups (tenant, name, fifo, max_attempts, broadcast, start_latest, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&spec.tenant)
        .bind(&spec.name)
        .bind(i64::from(spec.fifo))
        .bind(i64::from(spec.max_attempts))
        .bind(i64::from(spec.broadcast))
        .bind(i64::from(spec.start == StartFrom::Latest))
        .bind(now_ms)
        .execute(&self.writer)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                kind: "consumer group",
                tenant: spec.tenant.clone(),
                name: spec.name.clone(),
            }),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(Group::new(spec, now_ms)),
        }
    }

    async fn group(&self, tenant: &str, name: &str) -> Result<Option<Group>> {
        sqlx::query("SELECT * FROM consumer_groups WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(group_from_row)
            .transpose()
    }

    async fn list_groups(&self, tenant: &str) -> Result<Vec<Group>> {
        sqlx::query("SELECT * FROM consumer_groups WHERE tenant = $1 ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(group_from_row)
            .collect()
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query("INSERT INTO secrets (name, value_hex) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(hex::encode(fresh))
            .execute(&self.writer)
            .await?;
        let stored: String = sqlx::query("SELECT value_hex FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await?
            .try_get(0)?;
        hex::decode(&stored).map_err(|_| Error::Inconsistent(format!("secret {name} is not hex")))
    }
}
