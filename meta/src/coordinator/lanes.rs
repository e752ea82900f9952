//! The grayscale lanes of consumer groups ([`crate::lane`]), per topic.

use async_trait::async_trait;

use crate::error::Result;
use crate::lane::Lane;
use crate::model::Subscription;

/// The lanes consumer groups' consumers have used on each topic, and when each was last
/// heard of.
#[async_trait]
pub trait Lanes: Send + Sync {
    /// Records that a consumer of lane `lane` of `group.group` received from `group.topic` at
    /// `now_ms`. The first time, the lane's progress on the topic starts where the group's is
    /// (so what the group already took is not delivered to the lane again). Nodes call it
    /// at most once per lane and topic every [`crate::lane::SEEN_REFRESH`].
    /// A lane new to a group that has [`crate::lane::MAX_PER_GROUP`] lanes already is refused
    /// with [`crate::Error::LaneQuota`].
    async fn lane_seen(&self, group: &Subscription, lane: &str, now_ms: i64) -> Result<()>;

    /// The lanes of `group` on every topic, by topic and name.
    async fn lanes(&self, tenant: &str, group: &str) -> Result<Vec<Lane>>;

    /// Forgets up to `limit` lanes (per topic) last heard of before `idle_before_ms`, with
    /// their progress on that topic. Returns how many.
    async fn expire_lanes(&self, idle_before_ms: i64, limit: u32) -> Result<u32>;
}
