//! The StrataAdmin gRPC service (topics, groups, accounts) and the CLI's lines for it.

mod accounts;
mod usage;

pub use accounts::{grant_line, tenant_line, user_line};
pub use usage::hour_label;

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_meta::model::{GroupSpec, MessageType, StartFrom, TopicSpec};
use strata_storage::counting::RequestCounts;
use strata_storage::hooked::Op;
use strata_storage::object_store::{ObjectStoreExt, PutPayload};
use strata_storage::{ObjectStore, Path};

use strata_meta::accounts::Actions;
use strata_meta::model::QueueRef;
use strata_meta::quarantine::Unreadable;
use strata_meta::{Catalog, Clock, Error as MetaError, OffsetClock};
use strata_proto::admin::{self, strata_admin_server::StrataAdmin};
use strata_proto::v2;
use strata_tenancy::{Guard, Need, Quotas};
use tonic::{Request, Response, Status};

use accounts::auth_status;

pub struct Admin {
    pub catalog: Catalog,
    /// Present only with `testing.clock_control`.
    pub clock_control: Option<Arc<OffsetClock>>,
    /// The node's object store, counted (Stats) and timed raw (Floor).
    pub store: Arc<dyn ObjectStore>,
    pub store_requests: Arc<RequestCounts>,
    /// The node's failed reads and quarantined batches.
    pub unreadable: Arc<Unreadable>,
    /// Who may call: topics and groups need ADMIN on them, accounts a tenant admin, the
    /// node-wide calls the operator.
    pub guard: Arc<Guard>,
    /// Forgets a tenant's cached quota when it changes here.
    pub quotas: Arc<Quotas>,
    /// This node's metering (written before a report is read).
    pub metering: Arc<crate::metering::Metering>,
}

/// Most samples one Floor request may take, and the largest object it may write.
const FLOOR_MAX_SAMPLES: u32 = 1000;
const FLOOR_MAX_OBJECT: u64 = 64 << 20;

/// The process's resident set size, from /proc (0 where there is none).
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

fn topic_type(n: i32) -> Result<MessageType, Status> {
    MessageType::from_i32(n).ok_or_else(|| Status::invalid_argument(format!("message type {n} is not a topic type")))
}

fn to_status(e: MetaError) -> Status {
    match e {
        MetaError::AlreadyExists { .. } => Status::already_exists(e.to_string()),
        MetaError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        MetaError::TopicNotFound { .. } | MetaError::GroupNotFound { .. } => Status::not_found(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

fn topic_out(t: strata_meta::model::Topic) -> admin::Topic {
    admin::Topic {
        namespace: t.tenant,
        name: t.name,
        message_type: t.message_type as i32,
        queue_count: t.queue_count,
        lite_ttl_ms: t.lite_ttl_ms,
    }
}

fn group_out(g: strata_meta::model::Group) -> admin::Group {
    let start = match g.start {
        StartFrom::Earliest => admin::StartFrom::StartEarliest,
        StartFrom::Latest => admin::StartFrom::StartLatest,
    };
    admin::Group {
        namespace: g.tenant,
        name: g.name,
        fifo: g.fifo,
        max_attempts: g.max_attempts,
        broadcast: g.broadcast,
        start: start as i32,
    }
}

#[tonic::async_trait]
impl StrataAdmin for Admin {
    async fn create_topic(
        &self,
        request: Request<admin::CreateTopicRequest>,
    ) -> Result<Response<admin::CreateTopicResponse>, Status> {
        let principal = self.principal(&request).await?;
        let t = request.into_inner().topic.unwrap_or_default();
        principal
            .authorize(&t.namespace, &[Need::topic(&t.name, Actions::ADMIN)])
            .map_err(auth_status)?;
        let message_type = topic_type(t.message_type)?;
        let spec = TopicSpec {
            tenant: t.namespace,
            name: t.name,
            message_type,
            queue_count: t.queue_count,
            lite_ttl_ms: t.lite_ttl_ms,
        };
        let now = self.catalog.clock().now_ms();
        let topic = self
            .catalog
            .coordinator()
            .create_topic(&spec, now)
            .await
            .map_err(to_status)?;
        tracing::info!(tenant = %topic.tenant, topic = %topic.name, r#type = %topic.message_type, "topic created");
        Ok(Response::new(admin::CreateTopicResponse {
            topic: Some(topic_out(topic)),
        }))
    }

    async fn list_topics(
        &self,
        request: Request<admin::ListTopicsRequest>,
    ) -> Result<Response<admin::ListTopicsResponse>, Status> {
        let ns = request.get_ref().namespace.clone();
        self.tenant_admin(&request, &ns).await?;
        let topics = self.catalog.coordinator().list_topics(&ns).await.map_err(to_status)?;
        Ok(Response::new(admin::ListTopicsResponse {
            topics: topics.into_iter().map(topic_out).collect(),
        }))
    }

    async fn create_group(
        &self,
        request: Request<admin::CreateGroupRequest>,
    ) -> Result<Response<admin::CreateGroupResponse>, Status> {
        let principal = self.principal(&request).await?;
        let g = request.into_inner().group.unwrap_or_default();
        principal
            .authorize(&g.namespace, &[Need::group(&g.name, Actions::ADMIN)])
            .map_err(auth_status)?;
        let start = match admin::StartFrom::try_from(g.start) {
            Ok(admin::StartFrom::StartDefault) => StartFrom::default_for(g.broadcast),
            Ok(admin::StartFrom::StartEarliest) => StartFrom::Earliest,
            Ok(admin::StartFrom::StartLatest) => StartFrom::Latest,
            Err(_) => return Err(Status::invalid_argument(format!("unknown start position {}", g.start))),
        };
        let spec = GroupSpec {
            tenant: g.namespace,
            name: g.name,
            fifo: g.fifo,
            max_attempts: g.max_attempts,
            broadcast: g.broadcast,
            start,
        };
        let now = self.catalog.clock().now_ms();
        let group = self
            .catalog
            .coordinator()
            .create_group(&spec, now)
            .await
            .map_err(to_status)?;
        tracing::info!(tenant = %group.tenant, group = %group.name, "consumer group created");
        Ok(Response::new(admin::CreateGroupResponse {
            group: Some(group_out(group)),
        }))
    }

    async fn update_topic(
        &self,
        request: Request<admin::UpdateTopicRequest>,
    ) -> Result<Response<admin::UpdateTopicResponse>, Status> {
        let principal = self.principal(&request).await?;
        let t = request.into_inner().topic.unwrap_or_default();
        principal
            .authorize(&t.namespace, &[Need::topic(&t.name, Actions::ADMIN)])
            .map_err(auth_status)?;
        let message_type = topic_type(t.message_type)?;
        let topic = self
            .catalog
            .coordinator()
            .update_topic_type(&t.namespace, &t.name, message_type)
            .await
            .map_err(to_status)?;
        tracing::info!(tenant = %topic.tenant, topic = %topic.name, r#type = %topic.message_type, "topic type changed");
        Ok(Response::new(admin::UpdateTopicResponse {
            topic: Some(topic_out(topic)),
        }))
    }

    async fn advance_clock(
        &self,
        request: Request<admin::AdvanceClockRequest>,
    ) -> Result<Response<admin::AdvanceClockResponse>, Status> {
        let Some(clock) = &self.clock_control else {
            return Err(Status::permission_denied(
                "clock control is off (testing.clock_control)",
            ));
        };
        self.root(&request).await?;
        let millis = request.into_inner().millis;
        if millis < 0 {
            return Err(Status::invalid_argument("the clock only moves forward"));
        }
        clock.advance(std::time::Duration::from_millis(millis as u64));
        tracing::warn!(millis, "test clock moved forward");
        Ok(Response::new(admin::AdvanceClockResponse { now_ms: clock.now_ms() }))
    }

    async fn list_nodes(
        &self,
        request: Request<admin::ListNodesRequest>,
    ) -> Result<Response<admin::ListNodesResponse>, Status> {
        self.root(&request).await?;
        let nodes = self.catalog.coordinator().list_nodes().await.map_err(to_status)?;
        Ok(Response::new(admin::ListNodesResponse {
            nodes: nodes
                .into_iter()
                .map(|n| admin::Node {
                    id: n.id,
                    roles: n.roles.names().into_iter().map(str::to_string).collect(),
                    advertise: n.advertise,
                    epoch: n.epoch,
                    heartbeat_ms: n.heartbeat_ms,
                    alive: n.alive,
                })
                .collect(),
        }))
    }

    async fn stats(&self, request: Request<admin::StatsRequest>) -> Result<Response<admin::StatsResponse>, Status> {
        self.root(&request).await?;
        let tx = self.catalog.coordinator().transactions();
        Ok(Response::new(admin::StatsResponse {
            rss_bytes: rss_bytes(),
            store_requests: Op::ALL
                .iter()
                .map(|op| (op.as_str().to_string(), self.store_requests.get(*op)))
                .collect(),
            coordinator_transactions: tx.all,
            coordinator_writes: tx.writes,
            failed_reads: self.unreadable.failed_reads(),
            quarantined_batches: self.unreadable.quarantined(),
        }))
    }

    async fn list_quarantined(
        &self,
        request: Request<admin::ListQuarantinedRequest>,
    ) -> Result<Response<admin::ListQuarantinedResponse>, Status> {
        self.root(&request).await?;
        let listed = self.catalog.coordinator().quarantined().await.map_err(to_status)?;
        Ok(Response::new(admin::ListQuarantinedResponse {
            batches: listed
                .into_iter()
                .map(|q| admin::QuarantinedBatch {
                    namespace: q.batch.queue.tenant,
                    topic: q.batch.queue.topic,
                    queue: q.batch.queue.queue,
                    base_offset: q.batch.base_offset,
                    records: q.batch.count,
                    object: q.batch.location.object,
                    reason: q.reason,
                    quarantined_ms: q.quarantined_ms,
                })
                .collect(),
        }))
    }

    async fn release_quarantined(
        &self,
        request: Request<admin::ReleaseQuarantinedRequest>,
    ) -> Result<Response<admin::ReleaseQuarantinedResponse>, Status> {
        self.root(&request).await?;
        let req = request.into_inner();
        let queue = QueueRef {
            tenant: req.namespace,
            topic: req.topic,
            queue: req.queue,
        };
        let now = self.catalog.clock().now_ms();
        let base = self
            .catalog
            .coordinator()
            .release_quarantined(&queue, req.base_offset, req.retry, now)
            .await
            .map_err(to_status)?;
        tracing::warn!(topic = %queue.topic, queue = queue.queue, offset = req.base_offset, retry = req.retry,
            "quarantined batch released by an operator");
        Ok(Response::new(admin::ReleaseQuarantinedResponse {
            new_base_offset: base.unwrap_or(-1),
        }))
    }

    async fn floor(&self, request: Request<admin::FloorRequest>) -> Result<Response<admin::FloorResponse>, Status> {
        self.root(&request).await?;
        let req = request.into_inner();
        if req.samples == 0 || req.samples > FLOOR_MAX_SAMPLES || req.object_bytes > FLOOR_MAX_OBJECT {
            return Err(Status::invalid_argument(format!(
                "samples must be within 1..={FLOOR_MAX_SAMPLES} and objects at most {FLOOR_MAX_OBJECT} bytes"
            )));
        }
        let store_error = |e: strata_storage::object_store::Error| Status::unavailable(format!("object store: {e}"));
        let body = bytes::Bytes::from(vec![0x5a; req.object_bytes as usize]);
        let mut out = admin::FloorResponse::default();
        for _ in 0..req.samples {
            let path = Path::from(format!("bench/floor/{}", ulid::Ulid::new()));
            let t = Instant::now();
            self.store
                .put(&path, PutPayload::from(body.clone()))
                .await
                .map_err(store_error)?;
            out.put_micros.push(micros(t));
            let t = Instant::now();
            self.store
                .get(&path)
                .await
                .map_err(store_error)?
                .bytes()
                .await
                .map_err(store_error)?;
            out.get_micros.push(micros(t));
            self.store.delete(&path).await.map_err(store_error)?;
            let t = Instant::now();
            self.catalog.coordinator().probe_commit().await.map_err(to_status)?;
            out.commit_micros.push(micros(t));
        }
        Ok(Response::new(out))
    }

    async fn list_groups(
        &self,
        request: Request<admin::ListGroupsRequest>,
    ) -> Result<Response<admin::ListGroupsResponse>, Status> {
        let ns = request.get_ref().namespace.clone();
        self.tenant_admin(&request, &ns).await?;
        let groups = self.catalog.coordinator().list_groups(&ns).await.map_err(to_status)?;
        Ok(Response::new(admin::ListGroupsResponse {
            groups: groups.into_iter().map(group_out).collect(),
        }))
    }

    async fn create_tenant(
        &self,
        request: Request<admin::CreateTenantRequest>,
    ) -> Result<Response<admin::CreateTenantResponse>, Status> {
        let tenant = Some(self.add_tenant(request).await?);
        Ok(Response::new(admin::CreateTenantResponse { tenant }))
    }

    async fn update_tenant(
        &self,
        request: Request<admin::UpdateTenantRequest>,
    ) -> Result<Response<admin::UpdateTenantResponse>, Status> {
        let tenant = Some(self.set_quota(request).await?);
        Ok(Response::new(admin::UpdateTenantResponse { tenant }))
    }

    async fn list_tenants(
        &self,
        request: Request<admin::ListTenantsRequest>,
    ) -> Result<Response<admin::ListTenantsResponse>, Status> {
        let tenants = self.tenants(request).await?;
        Ok(Response::new(admin::ListTenantsResponse { tenants }))
    }

    async fn create_user(
        &self,
        request: Request<admin::CreateUserRequest>,
    ) -> Result<Response<admin::CreateUserResponse>, Status> {
        Ok(Response::new(self.add_user(request).await?))
    }

    async fn list_users(
        &self,
        request: Request<admin::ListUsersRequest>,
    ) -> Result<Response<admin::ListUsersResponse>, Status> {
        let users = self.users(request).await?;
        Ok(Response::new(admin::ListUsersResponse { users }))
    }

    async fn delete_user(
        &self,
        request: Request<admin::DeleteUserRequest>,
    ) -> Result<Response<admin::DeleteUserResponse>, Status> {
        let deleted = self.remove_user(request).await?;
        Ok(Response::new(admin::DeleteUserResponse { deleted }))
    }

    async fn grant(&self, request: Request<admin::GrantRequest>) -> Result<Response<admin::GrantResponse>, Status> {
        let grant = Some(self.add_grant(request).await?);
        Ok(Response::new(admin::GrantResponse { grant }))
    }

    async fn revoke(&self, request: Request<admin::RevokeRequest>) -> Result<Response<admin::RevokeResponse>, Status> {
        let remaining = self.remove_grant(request).await?;
        Ok(Response::new(admin::RevokeResponse { remaining }))
    }

    async fn metering(
        &self,
        request: Request<admin::MeteringRequest>,
    ) -> Result<Response<admin::MeteringResponse>, Status> {
        let records = self.usage(request).await?;
        Ok(Response::new(admin::MeteringResponse { records }))
    }

    async fn list_grants(
        &self,
        request: Request<admin::ListGrantsRequest>,
    ) -> Result<Response<admin::ListGrantsResponse>, Status> {
        let grants = self.grants(request).await?;
        Ok(Response::new(admin::ListGrantsResponse { grants }))
    }
}

/// Prints a topic as the CLI shows it.
pub fn topic_line(t: &admin::Topic) -> String {
    let kind = v2::MessageType::try_from(t.message_type)
        .map(|m| m.as_str_name().to_string())
        .unwrap_or_else(|_| t.message_type.to_string());
    let ns = if t.namespace.is_empty() { "-" } else { &t.namespace };
    let line = format!("{ns}\t{}\t{kind}\t{} queues", t.name, t.queue_count);
    match t.lite_ttl_ms {
        0 => line,
        ms => format!(
            "{line}\tlite ttl {}",
            humantime::format_duration(Duration::from_millis(ms as u64))
        ),
    }
}

pub fn node_line(n: &admin::Node) -> String {
    let state = if n.alive { "alive" } else { "dead" };
    format!(
        "{}\t{}\t{}\tepoch {}\t{state}",
        n.id,
        n.roles.join("+"),
        n.advertise,
        n.epoch
    )
}

pub fn quarantined_line(b: &admin::QuarantinedBatch) -> String {
    let ns = if b.namespace.is_empty() { "-" } else { &b.namespace };
    format!(
        "{ns}\t{}\tqueue {}\toffsets {}..{}\t{}\t{}",
        b.topic,
        b.queue,
        b.base_offset,
        b.base_offset + i64::from(b.records),
        b.object,
        b.reason
    )
}

pub fn group_line(g: &admin::Group) -> String {
    let ns = if g.namespace.is_empty() { "-" } else { &g.namespace };
    let order = if g.fifo { "fifo" } else { "concurrent" };
    let model = if g.broadcast { "broadcast" } else { "clustering" };
    let start = if g.start == admin::StartFrom::StartLatest as i32 {
        "latest"
    } else {
        "earliest"
    };
    format!(
        "{ns}\t{}\t{order}\t{model}\tfrom {start}\tmax attempts {}",
        g.name, g.max_attempts
    )
}
