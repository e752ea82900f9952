//! The admin API's topics: create, change, delete, list, describe.

use strata_meta::accounts::Actions;
use strata_meta::model::{MessageType, Topic, TopicSpec};
use strata_meta::operations::{MAX_RETENTION_MS, MIN_RETENTION_MS, TopicChange};
use strata_proto::admin;
use strata_tenancy::Need;
use tonic::{Request, Status};

use super::accounts::auth_status;
use super::{Admin, to_status};

fn topic_type(n: i32) -> Result<MessageType, Status> {
    MessageType::from_i32(n).ok_or_else(|| Status::invalid_argument(format!("message type {n} is not a topic type")))
}

pub(super) fn topic_out(t: Topic) -> admin::Topic {
    admin::Topic {
        namespace: t.tenant,
        name: t.name,
        message_type: t.message_type as i32,
        queue_count: t.queue_count,
        lite_ttl_ms: t.lite_ttl_ms,
        retention_ms: t.retention_ms,
        created_ms: t.created_ms,
        trace_off: !t.trace,
    }
}

impl Admin {
    /// Authenticates, then requires ADMIN on the topic.
    async fn topic_admin<T>(&self, request: &Request<T>, tenant: &str, topic: &str) -> Result<(), Status> {
        self.principal(request)
            .await?
            .authorize(tenant, &[Need::topic(topic, Actions::ADMIN)])
            .map_err(auth_status)
    }

    /// The topic, or NOT_FOUND.
    pub(super) async fn existing_topic(&self, tenant: &str, name: &str) -> Result<Topic, Status> {
        self.catalog
            .coordinator()
            .topic(tenant, name)
            .await
            .map_err(to_status)?
            .ok_or_else(|| Status::not_found(format!("topic {tenant}/{name} not found")))
    }

    pub(super) async fn add_topic(&self, request: Request<admin::CreateTopicRequest>) -> Result<admin::Topic, Status> {
        let t = request.get_ref().topic.clone().unwrap_or_default();
        self.topic_admin(&request, &t.namespace, &t.name).await?;
        let spec = TopicSpec {
            tenant: t.namespace,
            name: t.name,
            message_type: topic_type(t.message_type)?,
            queue_count: t.queue_count,
            lite_ttl_ms: t.lite_ttl_ms,
        };
        if t.retention_ms != 0 && !(MIN_RETENTION_MS..=MAX_RETENTION_MS).contains(&t.retention_ms) {
            return Err(Status::invalid_argument(format!(
                "retention {} ms is not within 1 minute..=3650 days",
                t.retention_ms
            )));
        }
        let coordinator = self.catalog.coordinator();
        let now = self.catalog.clock().now_ms();
        let mut topic = coordinator.create_topic(&spec, now).await.map_err(to_status)?;
        if (t.retention_ms != 0 && t.retention_ms != topic.retention_ms) || t.trace_off {
            let change = TopicChange {
                retention_ms: Some(t.retention_ms).filter(|r| *r != 0),
                trace: Some(!t.trace_off),
                ..Default::default()
            };
            topic = coordinator
                .update_topic(&spec.tenant, &spec.name, &change)
                .await
                .map_err(to_status)?;
        }
        tracing::info!(tenant = %topic.tenant, topic = %topic.name, r#type = %topic.message_type, "topic created");
        Ok(topic_out(topic))
    }

    pub(super) async fn change_topic(
        &self,
        request: Request<admin::UpdateTopicRequest>,
    ) -> Result<admin::Topic, Status> {
        let r = request.get_ref().clone();
        self.topic_admin(&request, &r.namespace, &r.name).await?;
        let change = TopicChange {
            message_type: r.message_type.map(topic_type).transpose()?,
            queue_count: r.queue_count,
            retention_ms: r.retention_ms,
            lite_ttl_ms: r.lite_ttl_ms,
            trace: r.trace,
        };
        let topic = self
            .catalog
            .coordinator()
            .update_topic(&r.namespace, &r.name, &change)
            .await
            .map_err(to_status)?;
        self.catalog.forget_topic(&r.namespace, &r.name).await;
        tracing::info!(tenant = %topic.tenant, topic = %topic.name, ?change, "topic changed");
        Ok(topic_out(topic))
    }

    pub(super) async fn remove_topic(&self, request: Request<admin::DeleteTopicRequest>) -> Result<(), Status> {
        let r = request.get_ref().clone();
        self.topic_admin(&request, &r.namespace, &r.name).await?;
        let deleted = self
            .catalog
            .coordinator()
            .delete_topic(&r.namespace, &r.name)
            .await
            .map_err(to_status)?;
        if !deleted {
            return Err(Status::not_found(format!("topic {}/{} not found", r.namespace, r.name)));
        }
        self.catalog.forget_topic(&r.namespace, &r.name).await;
        tracing::warn!(tenant = %r.namespace, topic = %r.name, "topic deleted with its messages");
        Ok(())
    }

    pub(super) async fn topics(&self, request: Request<admin::ListTopicsRequest>) -> Result<Vec<admin::Topic>, Status> {
        let ns = request.get_ref().namespace.clone();
        self.tenant_admin(&request, &ns).await?;
        let topics = self.catalog.coordinator().list_topics(&ns).await.map_err(to_status)?;
        Ok(topics.into_iter().map(topic_out).collect())
    }

    pub(super) async fn describe(
        &self,
        request: Request<admin::DescribeTopicRequest>,
    ) -> Result<admin::DescribeTopicResponse, Status> {
        let r = request.get_ref().clone();
        self.topic_admin(&request, &r.namespace, &r.name).await?;
        let topic = self.existing_topic(&r.namespace, &r.name).await?;
        let queues = self
            .catalog
            .coordinator()
            .topic_stats(&r.namespace, &r.name)
            .await
            .map_err(to_status)?
            .into_iter()
            .map(|q| admin::QueueStats {
                queue: q.queue,
                min_offset: q.min_offset,
                max_offset: q.max_offset,
                batches: q.batches,
                bytes: q.bytes,
                objects: q.objects,
                oldest_ms: q.oldest_ms.unwrap_or(0),
                newest_ms: q.newest_ms.unwrap_or(0),
            })
            .collect();
        Ok(admin::DescribeTopicResponse {
            topic: Some(topic_out(topic)),
            queues,
        })
    }
}
