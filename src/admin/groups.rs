//! The admin API's consumer groups: create, change, delete, list; progress and lag; resetting
//! offsets; resending dead letters.

use std::collections::HashMap;

use strata_meta::Error as MetaError;
use strata_meta::accounts::Actions;
use strata_meta::lane::Fallback;
use strata_meta::model::{Group, GroupSpec, QueueRef, StartFrom, Subscription, dead_letter_topic};
use strata_meta::operations::{GroupChange, Redelivery};
use strata_meta::retry::RetryPolicy;
use strata_proto::admin::{self, reset_offset_request::Position};
use strata_tenancy::Need;
use tonic::{Request, Status};

use super::accounts::auth_status;
use super::{Admin, to_status};

/// Most dead letters one ResendDeadLetters call resends.
const RESEND_MAX: u32 = 1000;

pub(super) fn group_out(g: Group) -> admin::Group {
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
        retry_policy: g.retry_policy.to_string(),
        created_ms: g.created_ms,
        lane_fallback: g.lane_fallback.to_string(),
    }
}

fn start_in(start: i32, broadcast: bool) -> Result<StartFrom, Status> {
    match admin::StartFrom::try_from(start) {
        Ok(admin::StartFrom::StartDefault) => Ok(StartFrom::default_for(broadcast)),
        Ok(admin::StartFrom::StartEarliest) => Ok(StartFrom::Earliest),
        Ok(admin::StartFrom::StartLatest) => Ok(StartFrom::Latest),
        Err(_) => Err(Status::invalid_argument(format!("unknown start position {start}"))),
    }
}

fn policy_in(text: &str) -> Result<RetryPolicy, Status> {
    RetryPolicy::parse(text).map_err(to_status)
}

fn fallback_in(text: &str) -> Result<Fallback, Status> {
    Fallback::parse_setting(text).map_err(Status::invalid_argument)
}

impl Admin {
    /// Authenticates, then requires ADMIN on the group.
    async fn group_admin<T>(&self, request: &Request<T>, tenant: &str, group: &str) -> Result<(), Status> {
        self.principal(request)
            .await?
            .authorize(tenant, &[Need::group(group, Actions::ADMIN)])
            .map_err(auth_status)
    }

    /// The group, or NOT_FOUND.
    async fn existing_group(&self, tenant: &str, name: &str) -> Result<Group, Status> {
        self.catalog
            .coordinator()
            .group(tenant, name)
            .await
            .map_err(to_status)?
            .ok_or_else(|| {
                to_status(MetaError::GroupNotFound {
                    tenant: tenant.into(),
                    group: name.into(),
                })
            })
    }

    pub(super) async fn add_group(&self, request: Request<admin::CreateGroupRequest>) -> Result<admin::Group, Status> {
        let g = request.get_ref().group.clone().unwrap_or_default();
        self.group_admin(&request, &g.namespace, &g.name).await?;
        let policy = policy_in(&g.retry_policy)?;
        let lane_fallback = fallback_in(&g.lane_fallback)?;
        let spec = GroupSpec {
            start: start_in(g.start, g.broadcast)?,
            tenant: g.namespace,
            name: g.name,
            fifo: g.fifo,
            max_attempts: g.max_attempts,
            broadcast: g.broadcast,
        };
        let coordinator = self.catalog.coordinator();
        let now = self.catalog.clock().now_ms();
        let mut group = coordinator.create_group(&spec, now).await.map_err(to_status)?;
        if policy != group.retry_policy || lane_fallback != group.lane_fallback {
            let change = GroupChange {
                retry_policy: Some(policy),
                lane_fallback: Some(lane_fallback),
                ..Default::default()
            };
            group = coordinator
                .update_group(&spec.tenant, &spec.name, &change)
                .await
                .map_err(to_status)?;
        }
        tracing::info!(tenant = %group.tenant, group = %group.name, "consumer group created");
        Ok(group_out(group))
    }

    pub(super) async fn change_group(
        &self,
        request: Request<admin::UpdateGroupRequest>,
    ) -> Result<admin::Group, Status> {
        let r = request.get_ref().clone();
        self.group_admin(&request, &r.namespace, &r.name).await?;
        let existing = self.existing_group(&r.namespace, &r.name).await?;
        let change = GroupChange {
            fifo: r.fifo,
            max_attempts: r.max_attempts,
            retry_policy: r.retry_policy.as_deref().map(policy_in).transpose()?,
            start_latest: r
                .start
                .map(|s| start_in(s, existing.broadcast).map(|s| s == StartFrom::Latest))
                .transpose()?,
            lane_fallback: r.lane_fallback.as_deref().map(fallback_in).transpose()?,
        };
        let group = self
            .catalog
            .coordinator()
            .update_group(&r.namespace, &r.name, &change)
            .await
            .map_err(to_status)?;
        self.catalog.forget_group(&r.namespace, &r.name).await;
        tracing::info!(tenant = %group.tenant, group = %group.name, ?change, "consumer group changed");
        Ok(group_out(group))
    }

    pub(super) async fn remove_group(&self, request: Request<admin::DeleteGroupRequest>) -> Result<(), Status> {
        let r = request.get_ref().clone();
        self.group_admin(&request, &r.namespace, &r.name).await?;
        let deleted = self
            .catalog
            .coordinator()
            .delete_group(&r.namespace, &r.name, r.dead_letters)
            .await
            .map_err(to_status)?;
        if !deleted {
            self.existing_group(&r.namespace, &r.name).await?;
        }
        self.catalog.forget_group(&r.namespace, &r.name).await;
        tracing::warn!(tenant = %r.namespace, group = %r.name, dead_letters = r.dead_letters, "consumer group deleted");
        Ok(())
    }

    pub(super) async fn groups(&self, request: Request<admin::ListGroupsRequest>) -> Result<Vec<admin::Group>, Status> {
        let ns = request.get_ref().namespace.clone();
        self.tenant_admin(&request, &ns).await?;
        let groups = self.catalog.coordinator().list_groups(&ns).await.map_err(to_status)?;
        Ok(groups.into_iter().map(group_out).collect())
    }

    pub(super) async fn progress(
        &self,
        request: Request<admin::GroupProgressRequest>,
    ) -> Result<admin::GroupProgressResponse, Status> {
        let r = request.get_ref().clone();
        self.group_admin(&request, &r.namespace, &r.name).await?;
        let group = self.existing_group(&r.namespace, &r.name).await?;
        let coordinator = self.catalog.coordinator();
        let mut progress = coordinator
            .group_progress(&r.namespace, &r.name)
            .await
            .map_err(to_status)?;
        // Queues of the same topics the group has not touched yet: where its progress would
        // start, so the lag counts their messages too.
        let mut topics: Vec<String> = progress.iter().map(|p| p.topic.clone()).collect();
        topics.dedup();
        for topic in topics {
            for q in coordinator.topic_stats(&r.namespace, &topic).await.map_err(to_status)? {
                if progress.iter().any(|p| p.topic == topic && p.queue == q.queue) {
                    continue;
                }
                let start = match group.start {
                    StartFrom::Earliest => None,
                    StartFrom::Latest => Some(q.max_offset),
                };
                progress.push(strata_meta::operations::QueueProgress {
                    topic: topic.clone(),
                    queue: q.queue,
                    min_offset: q.min_offset,
                    max_offset: q.max_offset,
                    cursor: start,
                    in_flight: 0,
                    committed: None,
                });
            }
        }
        progress.sort_by(|a, b| (&a.topic, a.queue).cmp(&(&b.topic, b.queue)));
        let queues = progress
            .into_iter()
            .map(|p| admin::QueueProgress {
                lag: p.lag(),
                topic: p.topic,
                queue: p.queue,
                min_offset: p.min_offset,
                max_offset: p.max_offset,
                cursor: p.cursor,
                in_flight: p.in_flight,
                committed: p.committed,
            })
            .collect();
        let now = self.catalog.clock().now_ms();
        let lanes = coordinator
            .lanes(&r.namespace, &r.name)
            .await
            .map_err(to_status)?
            .into_iter()
            .map(|l| admin::GroupLane {
                taken_over: group.lane_fallback.taken_over(&l, now),
                topic: l.topic,
                name: l.name,
                last_seen_ms: l.last_seen_ms,
            })
            .collect();
        Ok(admin::GroupProgressResponse {
            group: Some(group_out(group)),
            queues,
            lanes,
        })
    }

    pub(super) async fn reset_offsets(
        &self,
        request: Request<admin::ResetOffsetRequest>,
    ) -> Result<admin::ResetOffsetResponse, Status> {
        let r = request.get_ref().clone();
        self.group_admin(&request, &r.namespace, &r.group).await?;
        let position = r
            .position
            .ok_or_else(|| Status::invalid_argument("name a time or an offset to reset to"))?;
        self.existing_group(&r.namespace, &r.group).await?;
        let topic = self.existing_topic(&r.namespace, &r.topic).await?;
        let coordinator = self.catalog.coordinator();
        let queues: Vec<i32> = match r.queue {
            Some(q) if !(0..topic.queue_count).contains(&q) => {
                return Err(Status::invalid_argument(format!(
                    "topic {} has queues 0..{}, not {q}",
                    topic.name, topic.queue_count
                )));
            }
            Some(q) => vec![q],
            None => (0..topic.queue_count).collect(),
        };
        // Which progress the group keeps on each queue: pop cursors, committed offsets
        // (stream consumers), or neither yet (then both start at the new position).
        let kept: HashMap<i32, (bool, bool)> = coordinator
            .group_progress(&r.namespace, &r.group)
            .await
            .map_err(to_status)?
            .into_iter()
            .filter(|p| p.topic == r.topic)
            .map(|p| (p.queue, (p.cursor.is_some(), p.committed.is_some())))
            .collect();
        let sub = Subscription {
            tenant: r.namespace.clone(),
            group: r.group.clone(),
            topic: r.topic.clone(),
        };
        let mut out = Vec::with_capacity(queues.len());
        for q in queues {
            let queue = QueueRef {
                tenant: r.namespace.clone(),
                topic: r.topic.clone(),
                queue: q,
            };
            let (first, end) = coordinator.queue_bounds(&queue).await.map_err(to_status)?;
            let offset =
                match position {
                    Position::TimestampMs(ts) => self.reader.offset_at_time(&queue, ts).await.map_err(|e| {
                        Status::unavailable(format!("reading {}/{} queue {q}: {e}", r.namespace, r.topic))
                    })?,
                    Position::Offset(o) => o.clamp(first, end),
                };
            let (pop, stream) = kept.get(&q).copied().unwrap_or((false, false));
            if pop || !stream {
                coordinator.reset_cursor(&sub, q, offset).await.map_err(to_status)?;
            }
            if stream || !pop {
                coordinator.commit_offset(&sub, q, offset).await.map_err(to_status)?;
            }
            out.push(admin::QueueOffset { queue: q, offset });
        }
        tracing::warn!(tenant = %r.namespace, group = %r.group, topic = %r.topic, ?position, "group offsets reset");
        Ok(admin::ResetOffsetResponse { queues: out })
    }

    pub(super) async fn resend(
        &self,
        request: Request<admin::ResendDeadLettersRequest>,
    ) -> Result<admin::ResendDeadLettersResponse, Status> {
        let r = request.get_ref().clone();
        self.group_admin(&request, &r.namespace, &r.group).await?;
        let group = self.existing_group(&r.namespace, &r.group).await?;
        let coordinator = self.catalog.coordinator();
        let dlq = QueueRef {
            tenant: r.namespace.clone(),
            topic: dead_letter_topic(&r.group),
            queue: 0,
        };
        let (first, end) = match coordinator.queue_bounds(&dlq).await {
            Ok(bounds) => bounds,
            // Nothing was ever dead-lettered.
            Err(MetaError::QueueNotFound { .. }) => (0, 0),
            Err(e) => return Err(to_status(e)),
        };
        let from = r.from_offset.max(first);
        let limit = if r.limit == 0 {
            RESEND_MAX
        } else {
            r.limit.min(RESEND_MAX)
        };
        let dead = if from < end {
            coordinator
                .dead_letters(&r.namespace, &r.group, from, limit)
                .await
                .map_err(to_status)?
        } else {
            Vec::new()
        };
        let next = match dead.last() {
            Some(last) if dead.len() as u32 == limit => last.offset + 1,
            _ => end.max(from),
        };
        // FIFO groups: each message goes back under its message group, read from the record.
        let mut message_groups = HashMap::new();
        if let (true, Some(first_dead), Some(last)) = (group.fifo, dead.first(), dead.last()) {
            let records = self
                .reader
                .read(&dlq, first_dead.offset, last.offset + 1)
                .await
                .and_then(|read| read.all())
                .map_err(|e| Status::unavailable(format!("reading {}: {e}", dlq.topic)))?;
            message_groups.extend(records.into_iter().map(|(o, rec)| (o, rec.message_group)));
        }
        let messages: Vec<Redelivery> = dead
            .iter()
            .map(|d| Redelivery {
                topic: d.topic.clone(),
                queue: d.queue,
                offset: d.origin_offset,
                message_group: message_groups.get(&d.offset).cloned().flatten(),
            })
            .collect();
        let now = self.catalog.clock().now_ms();
        let resent = coordinator
            .redeliver(&r.namespace, &r.group, &messages, now)
            .await
            .map_err(to_status)?;
        let passed = u32::try_from(next - from).unwrap_or(u32::MAX);
        tracing::info!(tenant = %r.namespace, group = %r.group, from, next, resent, "dead letters resent");
        Ok(admin::ResendDeadLettersResponse {
            resent,
            skipped: passed.saturating_sub(resent),
            next_offset: next,
            end_offset: end,
        })
    }
}
