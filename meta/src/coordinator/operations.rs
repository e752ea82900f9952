//! Admin operations: changing and deleting topics and groups, progress and storage reports,
//! resending dead letters.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Group, Topic};
use crate::operations::{DeadLetter, Delivery, GroupChange, QueueProgress, QueueStats, Redelivery, TopicChange};

/// Admin operations: changing and deleting topics and groups, progress and storage reports,
/// resending dead letters. Rare calls: none is on a message path.
#[async_trait]
pub trait Operations: Send + Sync {
    /// Changes a topic's attributes; `TopicNotFound` if there is none, `Invalid` for a change
    /// it cannot take (fewer queues, a lite TTL on a topic that is not LITE).
    async fn update_topic(&self, tenant: &str, name: &str, change: &TopicChange) -> Result<Topic>;

    /// Changes a group's attributes; `GroupNotFound` if there is none.
    async fn update_group(&self, tenant: &str, name: &str, change: &GroupChange) -> Result<Group>;

    /// Deletes a topic: its queues, batch index, timers and half messages, quarantined
    /// batches and every group's progress on it; a LITE parent's lite topics too. The objects
    /// nothing references any more are deleted by garbage collection. A send racing the
    /// delete is refused (its batch is not appended). False if there was no such topic.
    async fn delete_topic(&self, tenant: &str, name: &str) -> Result<bool>;

    /// Deletes a group: its progress on every topic (cursors, in-flight messages, committed
    /// offsets, lite subscriptions) and its retry topic; with `dead_letters` its dead-letter
    /// topic too. False if there was no such group.
    async fn delete_group(&self, tenant: &str, name: &str, dead_letters: bool) -> Result<bool>;

    /// The group's progress on each queue it has progress on, by topic and queue.
    async fn group_progress(&self, tenant: &str, group: &str) -> Result<Vec<QueueProgress>>;

    /// What each queue of a topic holds.
    async fn topic_stats(&self, tenant: &str, topic: &str) -> Result<Vec<QueueStats>>;

    /// Dead-lettered messages of a group from `from` (an offset of its dead-letter topic) on,
    /// with where they were, at most `limit`. Messages dead-lettered before this was recorded
    /// (or by a broadcast client) have no origin and are not listed.
    async fn dead_letters(&self, tenant: &str, group: &str, from: i64, limit: u32) -> Result<Vec<DeadLetter>>;

    /// Where the message at `offset` of a queue stands for each group with progress on it.
    async fn delivery_states(&self, tenant: &str, topic: &str, queue: i32, offset: i64) -> Result<Vec<Delivery>>;

    /// Delivers messages to a group again: each one still retained, behind the group's cursor
    /// and not in flight becomes in flight with attempt 0, visible at `now_ms`, so the next
    /// receive delivers it (attempt 1). Other groups are not affected. Returns how many.
    async fn redeliver(&self, tenant: &str, group: &str, messages: &[Redelivery], now_ms: i64) -> Result<u32>;
}
