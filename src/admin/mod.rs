//! The StrataAdmin gRPC service: topics, groups, accounts, nodes and the node's counters.

mod accounts;
mod groups;
mod messages;
mod rocketmq;
mod topics;
mod usage;

use std::sync::Arc;
use std::time::Instant;

use strata_storage::counting::RequestCounts;
use strata_storage::hooked::Op;
use strata_storage::object_store::{ObjectStoreExt, PutPayload};
use strata_storage::{ObjectStore, Path};

use strata_meta::model::QueueRef;
use strata_meta::quarantine::Unreadable;
use strata_meta::{Catalog, Clock, Error as MetaError, OffsetClock};
use strata_proto::admin::{self, strata_admin_server::StrataAdmin};
use strata_query::reader::Reader;
use strata_tenancy::{Guard, Quotas};
use tonic::{Request, Response, Status};

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
    /// Reads messages (queries, reset to a time, resending dead letters of FIFO groups).
    pub reader: Reader,
    /// How long the message index names messages (`ingest.index_window`): older ones are
    /// found by scanning.
    pub index_window: std::time::Duration,
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

fn to_status(e: MetaError) -> Status {
    match e {
        MetaError::AlreadyExists { .. } => Status::already_exists(e.to_string()),
        MetaError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        MetaError::TopicNotFound { .. } | MetaError::GroupNotFound { .. } => Status::not_found(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

#[tonic::async_trait]
impl StrataAdmin for Admin {
    async fn create_topic(
        &self,
        request: Request<admin::CreateTopicRequest>,
    ) -> Result<Response<admin::CreateTopicResponse>, Status> {
        let topic = Some(self.add_topic(request).await?);
        Ok(Response::new(admin::CreateTopicResponse { topic }))
    }

    async fn update_topic(
        &self,
        request: Request<admin::UpdateTopicRequest>,
    ) -> Result<Response<admin::UpdateTopicResponse>, Status> {
        let topic = Some(self.change_topic(request).await?);
        Ok(Response::new(admin::UpdateTopicResponse { topic }))
    }

    async fn delete_topic(
        &self,
        request: Request<admin::DeleteTopicRequest>,
    ) -> Result<Response<admin::DeleteTopicResponse>, Status> {
        self.remove_topic(request).await?;
        Ok(Response::new(admin::DeleteTopicResponse {}))
    }

    async fn list_topics(
        &self,
        request: Request<admin::ListTopicsRequest>,
    ) -> Result<Response<admin::ListTopicsResponse>, Status> {
        let topics = self.topics(request).await?;
        Ok(Response::new(admin::ListTopicsResponse { topics }))
    }

    async fn describe_topic(
        &self,
        request: Request<admin::DescribeTopicRequest>,
    ) -> Result<Response<admin::DescribeTopicResponse>, Status> {
        Ok(Response::new(self.describe(request).await?))
    }

    async fn create_group(
        &self,
        request: Request<admin::CreateGroupRequest>,
    ) -> Result<Response<admin::CreateGroupResponse>, Status> {
        let group = Some(self.add_group(request).await?);
        Ok(Response::new(admin::CreateGroupResponse { group }))
    }

    async fn update_group(
        &self,
        request: Request<admin::UpdateGroupRequest>,
    ) -> Result<Response<admin::UpdateGroupResponse>, Status> {
        let group = Some(self.change_group(request).await?);
        Ok(Response::new(admin::UpdateGroupResponse { group }))
    }

    async fn delete_group(
        &self,
        request: Request<admin::DeleteGroupRequest>,
    ) -> Result<Response<admin::DeleteGroupResponse>, Status> {
        self.remove_group(request).await?;
        Ok(Response::new(admin::DeleteGroupResponse {}))
    }

    async fn list_groups(
        &self,
        request: Request<admin::ListGroupsRequest>,
    ) -> Result<Response<admin::ListGroupsResponse>, Status> {
        let groups = self.groups(request).await?;
        Ok(Response::new(admin::ListGroupsResponse { groups }))
    }

    async fn group_progress(
        &self,
        request: Request<admin::GroupProgressRequest>,
    ) -> Result<Response<admin::GroupProgressResponse>, Status> {
        Ok(Response::new(self.progress(request).await?))
    }

    async fn reset_offset(
        &self,
        request: Request<admin::ResetOffsetRequest>,
    ) -> Result<Response<admin::ResetOffsetResponse>, Status> {
        Ok(Response::new(self.reset_offsets(request).await?))
    }

    async fn resend_dead_letters(
        &self,
        request: Request<admin::ResendDeadLettersRequest>,
    ) -> Result<Response<admin::ResendDeadLettersResponse>, Status> {
        Ok(Response::new(self.resend(request).await?))
    }

    async fn get_message(
        &self,
        request: Request<admin::GetMessageRequest>,
    ) -> Result<Response<admin::GetMessageResponse>, Status> {
        let message = Some(self.message(request).await?);
        Ok(Response::new(admin::GetMessageResponse { message }))
    }

    async fn find_messages(
        &self,
        request: Request<admin::FindMessagesRequest>,
    ) -> Result<Response<admin::FindMessagesResponse>, Status> {
        Ok(Response::new(self.messages(request).await?))
    }

    async fn trace_message(
        &self,
        request: Request<admin::TraceMessageRequest>,
    ) -> Result<Response<admin::TraceMessageResponse>, Status> {
        Ok(Response::new(self.trace(request).await?))
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
                    state: n.state().into(),
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
