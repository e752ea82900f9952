//! What operators change and read through admin calls: topic and group changes, per-queue
//! reports, where dead-lettered messages came from.

use crate::model::MessageType;
use crate::retry::RetryPolicy;

/// Changes to a topic; `None` leaves an attribute as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicChange {
    /// Producers of the old type are refused from then on.
    pub message_type: Option<MessageType>,
    /// Only more: new queues start empty. (Fewer would strand the messages of the queues
    /// taken away.) FIFO topics: adding queues moves some message groups to other queues,
    /// whose order restarts there.
    pub queue_count: Option<i32>,
    /// How long messages stay readable: 1 minute to 10 years.
    pub retention_ms: Option<i64>,
    /// LITE parents only; 0: never.
    pub lite_ttl_ms: Option<i64>,
    /// Record its messages' lifecycle in the trace topic.
    pub trace: Option<bool>,
}

/// Changes to a consumer group; `None` leaves an attribute as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupChange {
    pub fifo: Option<bool>,
    pub max_attempts: Option<i32>,
    pub retry_policy: Option<RetryPolicy>,
    /// Where new progress starts (a new broadcast client's, a topic the group did not consume).
    pub start_latest: Option<bool>,
    pub lane_fallback: Option<crate::lane::Fallback>,
}

/// Shortest and longest retention a topic may have.
pub const MIN_RETENTION_MS: i64 = 60_000;
pub const MAX_RETENTION_MS: i64 = 3650 * 86_400_000;

/// A consumer group's progress on one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueProgress {
    pub topic: String,
    pub queue: i32,
    /// First retained offset and next offset to be written.
    pub min_offset: i64,
    pub max_offset: i64,
    /// Pop consumption: next offset never delivered to the group (`None`: never popped).
    pub cursor: Option<i64>,
    /// Delivered and not acknowledged (or waiting behind their FIFO message group).
    pub in_flight: i64,
    /// Stream consumption (PullMessage, 4.x): the committed offset, if any.
    pub committed: Option<i64>,
}

impl QueueProgress {
    /// Messages the group has not finished: not yet delivered plus in flight (pop), or not
    /// yet committed (stream). A group keeping both (reset before it consumed, or consumed
    /// both ways) counts the one further ahead: the one its consumers use.
    pub fn lag(&self) -> i64 {
        let from = |o: i64| self.max_offset - o.clamp(self.min_offset, self.max_offset);
        let pop = self.cursor.map(|c| from(c) + self.in_flight);
        let stream = self.committed.map(from);
        pop.into_iter()
            .chain(stream)
            .min()
            .unwrap_or(self.max_offset - self.min_offset)
    }
}

/// What one queue of a topic holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queue: i32,
    pub min_offset: i64,
    pub max_offset: i64,
    /// Index entries (a WAL block or a Parquet row group each).
    pub batches: i64,
    /// Stored bytes of the blocks referenced (compressed; a block shared with another queue
    /// counts in full for each).
    pub bytes: i64,
    /// Distinct objects holding the queue's messages.
    pub objects: i64,
    /// Store time of the oldest retained message (`None`: empty).
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
}

/// A dead-lettered message and where it was before (recorded when it moved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Offset in the dead-letter topic (one queue).
    pub offset: i64,
    pub topic: String,
    pub queue: i32,
    pub origin_offset: i64,
}

/// A message to deliver to a group again (resent from its dead-letter queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redelivery {
    pub topic: String,
    pub queue: i32,
    pub offset: i64,
    /// Its message group, for FIFO groups.
    pub message_group: Option<String>,
}

/// Where a message stands for one group (or broadcast client) with progress on its queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The group, or a broadcast client's progress key (`group/client`).
    pub group: String,
    pub state: DeliveryState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered to the group yet.
    Pending,
    /// Delivered, not acknowledged: this attempt (0: resent, visible again).
    InFlight { attempt: i64 },
    /// A FIFO message waiting behind its message group.
    Waiting,
    /// Delivered and acknowledged (or filtered out).
    Acked,
    /// Moved to the group's dead-letter topic.
    DeadLettered,
    /// Stream consumption: the group's committed offset is past it.
    Committed,
    /// Stream consumption: not committed yet.
    NotCommitted,
}

impl DeliveryState {
    pub fn as_str(&self) -> String {
        match self {
            DeliveryState::Pending => "pending".into(),
            DeliveryState::InFlight { attempt } => format!("in flight (attempt {attempt})"),
            DeliveryState::Waiting => "waiting (FIFO)".into(),
            DeliveryState::Acked => "acked".into(),
            DeliveryState::DeadLettered => "dead-lettered".into(),
            DeliveryState::Committed => "committed".into(),
            DeliveryState::NotCommitted => "not committed".into(),
        }
    }
}
