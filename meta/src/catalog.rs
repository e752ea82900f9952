//! Cached topic and group lookups with the auto-create policy, shared by every role.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::clock::Clock;
use crate::coordinator::Coordinator;
use crate::error::{Error, Result};
use crate::lane::{self, Lane};
use crate::model::{
    DEFAULT_MAX_ATTEMPTS, Group, GroupSpec, MessageType, StartFrom, Subscription, Topic, TopicSpec,
    validate_group_name, validate_tenant, validate_topic_name,
};

/// What happens when a client names a topic or group that does not exist.
#[derive(Clone, Debug)]
pub struct AutoCreate {
    /// On in standalone: unknown topics (NORMAL) and groups are created on first use.
    pub enabled: bool,
    /// Queues of an auto-created topic.
    pub queue_count: i32,
}

impl Default for AutoCreate {
    fn default() -> Self {
        Self {
            enabled: true,
            queue_count: 8,
        }
    }
}

/// How long a looked-up topic or group is trusted before it is read again: a type change
/// by an admin reaches every node within this time.
const TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Catalog {
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    auto_create: AutoCreate,
    topics: Cache<(String, String), Topic>,
    groups: Cache<(String, String), Group>,
    /// Each group's lanes, trusted for [`LANES_TTL`].
    lanes: Cache<(String, String), Arc<Vec<Lane>>>,
    /// Lanes told to the coordinator within [`lane::SEEN_REFRESH`], by group subscription.
    lanes_seen: Cache<(Subscription, String), ()>,
}

/// How long a node trusts its copy of a group's lanes: a new lane's messages may still go to
/// the group's own consumers for this long (delivered twice, at most once to each).
const LANES_TTL: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("auto_create", &self.auto_create)
            .finish()
    }
}

impl Catalog {
    pub fn new(coordinator: Arc<dyn Coordinator>, clock: Arc<dyn Clock>, auto_create: AutoCreate) -> Self {
        Self {
            coordinator,
            clock,
            auto_create,
            topics: Cache::builder().max_capacity(100_000).time_to_live(TTL).build(),
            groups: Cache::builder().max_capacity(100_000).time_to_live(TTL).build(),
            lanes: Cache::builder().max_capacity(100_000).time_to_live(LANES_TTL).build(),
            lanes_seen: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(lane::SEEN_REFRESH)
                .build(),
        }
    }

    pub fn coordinator(&self) -> &Arc<dyn Coordinator> {
        &self.coordinator
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Forgets a cached topic (changed or deleted here; other nodes follow within the TTL).
    pub async fn forget_topic(&self, tenant: &str, name: &str) {
        self.topics.invalidate(&(tenant.to_string(), name.to_string())).await;
    }

    /// Forgets a cached group (changed or deleted here; other nodes follow within the TTL).
    pub async fn forget_group(&self, tenant: &str, name: &str) {
        self.groups.invalidate(&(tenant.to_string(), name.to_string())).await;
    }

    /// The topic, created as NORMAL if auto-creation is on; else `TopicNotFound`.
    pub async fn topic(&self, tenant: &str, name: &str) -> Result<Topic> {
        let key = (tenant.to_string(), name.to_string());
        if let Some(t) = self.topics.get(&key).await {
            return Ok(t);
        }
        validate_tenant(tenant)?;
        validate_topic_name(name)?;
        let topic = match self.coordinator.topic(tenant, name).await? {
            Some(t) => t,
            None if self.auto_create.enabled => {
                let spec = TopicSpec {
                    tenant: tenant.into(),
                    name: name.into(),
                    message_type: MessageType::Normal,
                    queue_count: self.auto_create.queue_count,
                    lite_ttl_ms: 0,
                };
                self.create_topic(&spec, "auto-created topic").await?
            }
            None => {
                return Err(Error::TopicNotFound {
                    tenant: tenant.into(),
                    topic: name.into(),
                });
            }
        };
        self.topics.insert(key, topic.clone()).await;
        Ok(topic)
    }

    /// The dead-letter topic of a group (`%DLQ%{group}`, NORMAL, one queue), created on first
    /// use whatever the auto-create setting: it is the broker's, not the user's.
    pub async fn dead_letter_topic(&self, tenant: &str, group: &str) -> Result<Topic> {
        crate::model::validate_group_name(group)?;
        let name = crate::model::dead_letter_topic(group);
        self.broker_topic(tenant, name, MessageType::Normal, "created dead-letter topic")
            .await
    }

    /// The retry topic of a group that 4.x clients consume (`%RETRY%{group}`, one queue):
    /// DELAY, as every message in it waits out a back-off. Created on first use.
    pub async fn retry_topic(&self, tenant: &str, group: &str) -> Result<Topic> {
        crate::model::validate_group_name(group)?;
        let name = crate::model::retry_topic(group);
        self.broker_topic(tenant, name, MessageType::Delay, "created retry topic")
            .await
    }

    /// A topic the broker keeps for a group, with one queue.
    async fn broker_topic(&self, tenant: &str, name: String, message_type: MessageType, what: &str) -> Result<Topic> {
        let key = (tenant.to_string(), name.clone());
        if let Some(t) = self.topics.get(&key).await {
            return Ok(t);
        }
        let topic = match self.coordinator.topic(tenant, &name).await? {
            Some(t) => t,
            None => {
                let spec = TopicSpec {
                    tenant: tenant.into(),
                    name,
                    message_type,
                    queue_count: 1,
                    lite_ttl_ms: 0,
                };
                self.create_topic(&spec, what).await?
            }
        };
        self.topics.insert(key, topic.clone()).await;
        Ok(topic)
    }

    /// Creates a topic; if another node or request won the race, the topic it created.
    async fn create_topic(&self, spec: &TopicSpec, what: &str) -> Result<Topic> {
        let (tenant, name) = (spec.tenant.as_str(), spec.name.as_str());
        match self.coordinator.create_topic(spec, self.clock.now_ms()).await {
            Ok(t) => {
                tracing::info!(tenant, topic = name, "{what}");
                Ok(t)
            }
            Err(Error::AlreadyExists { .. }) => self
                .coordinator
                .topic(tenant, name)
                .await?
                .ok_or_else(|| Error::Inconsistent(format!("topic {tenant}/{name} exists and does not"))),
            Err(e) => Err(e),
        }
    }

    /// The group, created (non-FIFO, default attempts) if auto-creation is on; else
    /// `GroupNotFound`. A lane's name (`G%L`) gives its group `G`.
    pub async fn group(&self, tenant: &str, name: &str) -> Result<Group> {
        let name = lane_group(name)?;
        let key = (tenant.to_string(), name.to_string());
        if let Some(g) = self.groups.get(&key).await {
            return Ok(g);
        }
        validate_tenant(tenant)?;
        validate_group_name(name)?;
        let group = match self.coordinator.group(tenant, name).await? {
            Some(g) => g,
            None if self.auto_create.enabled => {
                let spec = GroupSpec {
                    tenant: tenant.into(),
                    name: name.into(),
                    fifo: false,
                    max_attempts: DEFAULT_MAX_ATTEMPTS,
                    broadcast: false,
                    start: StartFrom::Earliest,
                };
                match self.coordinator.create_group(&spec, self.clock.now_ms()).await {
                    Ok(g) => {
                        tracing::info!(tenant, group = name, "auto-created consumer group");
                        g
                    }
                    Err(Error::AlreadyExists { .. }) => self
                        .coordinator
                        .group(tenant, name)
                        .await?
                        .ok_or_else(|| Error::Inconsistent(format!("group {tenant}/{name} exists and does not")))?,
                    Err(e) => return Err(e),
                }
            }
            None => {
                return Err(Error::GroupNotFound {
                    tenant: tenant.into(),
                    group: name.into(),
                });
            }
        };
        self.groups.insert(key, group.clone()).await;
        Ok(group)
    }

    /// The lanes of `group` (on every topic), as of up to [`LANES_TTL`] ago.
    pub async fn lanes(&self, tenant: &str, group: &str) -> Result<Arc<Vec<Lane>>> {
        let key = (tenant.to_string(), group.to_string());
        if let Some(lanes) = self.lanes.get(&key).await {
            return Ok(lanes);
        }
        let lanes = Arc::new(self.coordinator.lanes(tenant, group).await?);
        self.lanes.insert(key, Arc::clone(&lanes)).await;
        Ok(lanes)
    }

    /// Tells the coordinator a consumer of lane `lane` of `group.group` receives from
    /// `group.topic` (at most once per [`lane::SEEN_REFRESH`] from this node). The first
    /// time ever, that starts the lane's progress on the topic.
    pub async fn lane_seen(&self, group: &Subscription, lane: &str) -> Result<()> {
        let key = (group.clone(), lane.to_string());
        if self.lanes_seen.contains_key(&key) {
            return Ok(());
        }
        let now = self.clock.now_ms();
        self.coordinator.lane_seen(group, lane, now).await?;
        self.lanes_seen.insert(key, ()).await;
        Ok(())
    }
}

/// The group a consumer group name as clients write it belongs to (see [`lane::split`]).
fn lane_group(name: &str) -> Result<&str> {
    match lane::split(name) {
        (group, Some(lane)) if lane.is_empty() || lane.contains(lane::SEPARATOR) || group.is_empty() => {
            Err(Error::invalid(
                "consumer group name",
                format!("{name:?}: a lane is named GROUP%LANE, with one '%' and neither part empty"),
            ))
        }
        (group, _) => Ok(group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sql::SqlCoordinator;

    async fn catalog(enabled: bool) -> (Catalog, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let c = SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap();
        let auto = AutoCreate {
            enabled,
            queue_count: 3,
        };
        (Catalog::new(Arc::new(c), Arc::new(ManualClock::new(5)), auto), dir)
    }

    #[tokio::test]
    async fn auto_creates_when_enabled() {
        let (cat, _dir) = catalog(true).await;
        let t = cat.topic("", "fresh").await.unwrap();
        assert_eq!(
            (t.message_type, t.queue_count, t.created_ms),
            (MessageType::Normal, 3, 5)
        );
        assert_eq!(cat.topic("", "fresh").await.unwrap(), t);
        let g = cat.group("ns", "g1").await.unwrap();
        assert_eq!(g.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert!(matches!(cat.topic("", "bad topic").await, Err(Error::Invalid { .. })));
    }

    #[tokio::test]
    async fn refuses_unknown_names_when_disabled() {
        let (cat, _dir) = catalog(false).await;
        assert!(matches!(cat.topic("", "t").await, Err(Error::TopicNotFound { .. })));
        assert!(matches!(cat.group("", "g").await, Err(Error::GroupNotFound { .. })));
        let spec = TopicSpec {
            tenant: "".into(),
            name: "t".into(),
            message_type: MessageType::Fifo,
            queue_count: 1,
            lite_ttl_ms: 0,
        };
        cat.coordinator().create_topic(&spec, 1).await.unwrap();
        assert_eq!(cat.topic("", "t").await.unwrap().message_type, MessageType::Fifo);
    }
}
