//! The domain model shared by every role. Numbers marked "persisted" are stored: never renumber.

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// Message (and topic) types. Persisted; the numbers equal apache.rocketmq.v2.MessageType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Normal = 1,
    Fifo = 2,
    Delay = 3,
    Transaction = 4,
    Lite = 5,
    Priority = 6,
}

impl MessageType {
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            1 => Self::Normal,
            2 => Self::Fifo,
            3 => Self::Delay,
            4 => Self::Transaction,
            5 => Self::Lite,
            6 => Self::Priority,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Fifo => "FIFO",
            Self::Delay => "DELAY",
            Self::Transaction => "TRANSACTION",
            Self::Lite => "LITE",
            Self::Priority => "PRIORITY",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Normal,
            Self::Fifo,
            Self::Delay,
            Self::Transaction,
            Self::Lite,
            Self::Priority,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest topic name Apache RocketMQ accepts.
pub const MAX_TOPIC_LEN: usize = 127;
/// Longest consumer group name Apache RocketMQ 5.x accepts.
pub const MAX_GROUP_LEN: usize = 255;
/// Longest namespace (tenant) name.
pub const MAX_TENANT_LEN: usize = 64;
/// Most queues one topic may have.
pub const MAX_QUEUES: i32 = 1024;

/// Checks a name against RocketMQ's rule `^[%|a-zA-Z0-9_-]+$` and a length limit.
fn check_name(what: &'static str, name: &str, max: usize, allow_empty: bool) -> Result<()> {
    if name.is_empty() {
        if allow_empty {
            return Ok(());
        }
        return Err(Error::invalid(what, "must not be empty"));
    }
    if name.len() > max {
        return Err(Error::invalid(
            what,
            format!("{name:?} is longer than {max} characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(Error::invalid(
            what,
            format!("{name:?} contains {c:?}; allowed are letters, digits, '%', '|', '_' and '-'"),
        ));
    }
    Ok(())
}

pub fn validate_topic_name(name: &str) -> Result<()> {
    // Dead-letter and retry topics are named after their group, which may be longer than a topic.
    let max = if name.starts_with(DLQ_PREFIX) || name.starts_with(RETRY_PREFIX) {
        RETRY_PREFIX.len() + MAX_GROUP_LEN
    } else {
        MAX_TOPIC_LEN
    };
    check_name("topic name", name, max, false)
}

/// Dead-letter topics are `%DLQ%{group}`, as in Apache RocketMQ.
pub const DLQ_PREFIX: &str = "%DLQ%";

pub fn dead_letter_topic(group: &str) -> String {
    format!("{DLQ_PREFIX}{group}")
}

/// Retry topics of 4.x consumers are `%RETRY%{group}`, as in Apache RocketMQ.
pub const RETRY_PREFIX: &str = "%RETRY%";

pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_PREFIX}{group}")
}

pub fn validate_group_name(name: &str) -> Result<()> {
    check_name("consumer group name", name, MAX_GROUP_LEN, false)
}

/// The empty namespace is the default tenant.
pub fn validate_tenant(name: &str) -> Result<()> {
    check_name("namespace", name, MAX_TENANT_LEN, true)
}

/// What an admin (or auto-creation) asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub tenant: String,
    pub name: String,
    pub message_type: MessageType,
    pub queue_count: i32,
    /// LITE parents: a lite topic with no new message for this long is deleted (0: never).
    pub lite_ttl_ms: i64,
}

impl TopicSpec {
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.tenant)?;
        validate_topic_name(&self.name)?;
        if self.lite_ttl_ms != 0 && (self.message_type != MessageType::Lite || self.lite_ttl_ms < 0) {
            return Err(Error::invalid(
                "lite TTL",
                format!("{} ms: only a LITE topic has one, 0 or more", self.lite_ttl_ms),
            ));
        }
        if !(1..=MAX_QUEUES).contains(&self.queue_count) {
            return Err(Error::invalid(
                "queue count",
                format!("{} is not within 1..={MAX_QUEUES}", self.queue_count),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub tenant: String,
    pub name: String,
    pub message_type: MessageType,
    pub queue_count: i32,
    pub created_ms: i64,
    /// How long messages stay readable (default 72 h).
    pub retention_ms: i64,
    /// LITE parents: idle lite topics are deleted after this (0: never).
    pub lite_ttl_ms: i64,
    /// The broker records its messages' lifecycle in the tenant's trace topic (default on).
    pub trace: bool,
}

/// Default topic retention: 72 hours, as Apache RocketMQ.
pub const DEFAULT_RETENTION_MS: i64 = 72 * 3_600_000;

/// Default delivery attempts before a message goes to the dead-letter queue (Apache's 16).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 16;

/// Where new progress on a topic starts: a new group's (or a new broadcast client's) first
/// receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// The first retained message (clustering groups' default).
    Earliest,
    /// The queues' ends when the progress starts: only messages sent from then on
    /// (broadcast groups' default).
    Latest,
}

impl StartFrom {
    /// What a group gets when its creator names no start.
    pub fn default_for(broadcast: bool) -> Self {
        if broadcast {
            StartFrom::Latest
        } else {
            StartFrom::Earliest
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub tenant: String,
    pub name: String,
    /// Ordered consumption per message group on FIFO topics.
    pub fifo: bool,
    pub max_attempts: i32,
    /// Every live client receives every message, each with its own progress
    /// ([`broadcast_progress`]).
    pub broadcast: bool,
    pub start: StartFrom,
}

impl GroupSpec {
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.tenant)?;
        validate_group_name(&self.name)?;
        if let (group, Some(lane)) = crate::lane::split(&self.name) {
            return Err(Error::invalid(
                "consumer group name",
                format!(
                    "{:?}: '%' inside a group name separates a lane (the consumers of lane {lane:?} of group \
                     {group:?} use this name); create group {group:?} instead",
                    self.name
                ),
            ));
        }
        if !(1..=1000).contains(&self.max_attempts) {
            return Err(Error::invalid(
                "max attempts",
                format!("{} is not within 1..=1000", self.max_attempts),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub tenant: String,
    pub name: String,
    pub fifo: bool,
    pub max_attempts: i32,
    pub broadcast: bool,
    pub start: StartFrom,
    pub created_ms: i64,
    /// How long a failed message waits before its next attempt.
    pub retry_policy: RetryPolicy,
    /// When the group's own consumers take the messages of a lane with no consumer.
    pub lane_fallback: crate::lane::Fallback,
}

impl Group {
    pub fn new(spec: &GroupSpec, created_ms: i64) -> Self {
        Self {
            tenant: spec.tenant.clone(),
            name: spec.name.clone(),
            fifo: spec.fifo,
            max_attempts: spec.max_attempts,
            broadcast: spec.broadcast,
            start: spec.start,
            created_ms,
            retry_policy: RetryPolicy::default(),
            lane_fallback: crate::lane::Fallback::default(),
        }
    }

    /// The attributes a create names.
    pub fn spec(&self) -> GroupSpec {
        GroupSpec {
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            fifo: self.fifo,
            max_attempts: self.max_attempts,
            broadcast: self.broadcast,
            start: self.start,
        }
    }
}

/// The progress key of one client of a broadcast group: it stands where a group name does in
/// cursors and in-flight rows, so each client pops with progress of its own. `/` never
/// occurs in group names, so [`Subscription::group_name`] recovers the group.
pub fn broadcast_progress(group: &str, client_id: &str) -> String {
    format!("{group}{BROADCAST_SEPARATOR}{client_id}")
}

const BROADCAST_SEPARATOR: char = '/';

/// One queue of a topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueRef {
    pub tenant: String,
    pub topic: String,
    pub queue: i32,
}

/// Where a batch's records sit: a WAL block or a Parquet row group (storage's type).
pub use strata_storage::location::{BlockFormat, BlockLocation};

/// A compaction: a queue's WAL batches `from..to` become the row groups of one Parquet file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionSwap {
    pub queue: QueueRef,
    pub from: i64,
    pub to: i64,
    /// How many WAL batches the file replaces (checked: they must still be there).
    pub replaced_batches: u32,
    pub file: String,
    pub file_size: u64,
    /// Rows of each row group, in order, and their min/max store timestamps.
    pub row_groups: Vec<RowGroup>,
    /// The lease under which the job ran: the swap is refused if it was lost.
    pub lease: String,
    pub holder: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowGroup {
    pub rows: u32,
    pub min_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
}

/// One queue's records of a flush (a whole block), to be appended — or, when `held` is
/// not empty, to be held (one entry per record) until a timer fires or a transaction commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendBatch {
    pub queue: QueueRef,
    pub count: u32,
    pub location: BlockLocation,
    pub min_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub held: Vec<Hold>,
    /// Records of the batch the message index is to name (appended batches only).
    pub indexed: Vec<Indexed>,
}

/// A record the message index names: its position in its batch, its id and keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indexed {
    pub position: u32,
    pub message_id: String,
    pub keys: Vec<String>,
    pub store_ms: i64,
}

/// Where the message index says a message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedMessage {
    pub message_id: String,
    pub topic: String,
    pub queue: i32,
    pub offset: i64,
    pub store_ms: i64,
}

/// Why a record is held back from its queue. Persisted tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoldKind {
    /// A delay message, due at `due_ms`.
    Timer = 1,
    /// A half message of a transaction; `due_ms` is its first orphan check.
    Transaction = 2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub kind: HoldKind,
    pub message_id: String,
    pub due_ms: i64,
}

/// The id of a held record: where it lies, which is unique.
pub fn held_id(object: &str, block_offset: u64, record_index: u32) -> String {
    format!("{object}#{block_offset}#{record_index}")
}

/// A record held back from its queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRecord {
    pub id: String,
    pub kind: HoldKind,
    pub queue: QueueRef,
    pub location: BlockLocation,
    pub record_index: u32,
    pub message_id: String,
    pub due_ms: i64,
    /// Orphan checks sent so far (transactions).
    pub checks: i64,
}

/// Held records copied into a new WAL object of their own (`object`, written by `writer`):
/// each record as it was read, and its copy's block and index there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldMove {
    pub object: String,
    pub object_size: u64,
    pub writer: String,
    pub records: Vec<(HeldRecord, BlockLocation, u32)>,
}

/// A flush to commit: one object, batches for many queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushCommit {
    pub object: String,
    pub object_size: u64,
    /// The ingest node that wrote the object, and the epoch it registered with: a commit
    /// from an epoch that is not the node's live one is refused (fencing).
    pub writer: String,
    pub writer_epoch: i64,
    pub batches: Vec<AppendBatch>,
}

/// A committed batch: records `base_offset .. base_offset + count` of a queue, which are
/// records `first_record ..` of the block at `location`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub queue: QueueRef,
    pub base_offset: i64,
    pub count: u32,
    pub location: BlockLocation,
    pub first_record: u32,
    /// The newest store timestamp of its records (retention, time lookups).
    pub max_timestamp_ms: i64,
}

impl Batch {
    pub fn end_offset(&self) -> i64 {
        self.base_offset + i64::from(self.count)
    }
}

/// A batch no reader could read (its object missing or corrupt), taken out of its queue: its
/// offsets are passed over by consumers until an operator retries it (appends its records
/// again, at new offsets) or drops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub batch: Batch,
    /// The read error that quarantined it.
    pub reason: String,
    pub quarantined_ms: i64,
}

/// Sent after every commit: consumers long-polling that topic wake up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitEvent {
    pub tenant: String,
    /// `None`: notifications may have been missed (a reconnect); every waiter should look.
    pub topic: Option<String>,
    /// The commit held records back (delay timers, half messages) instead of appending
    /// them: nothing for consumers to read yet, only the timer loop cares.
    pub held: bool,
}

impl CommitEvent {
    /// Notifications may have been missed: everyone should look.
    pub fn missed() -> Self {
        Self {
            tenant: String::new(),
            topic: None,
            held: false,
        }
    }

    /// Whether consumers of `tenant/topic` may have something new to read.
    pub fn concerns(&self, tenant: &str, topic: &str) -> bool {
        match &self.topic {
            None => true,
            Some(t) => !self.held && t == topic && self.tenant == tenant,
        }
    }

    /// Whether delay timers may have been added (or notifications missed).
    pub fn may_hold(&self) -> bool {
        self.held || self.topic.is_none()
    }
}

/// What a node does. Persisted as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Roles(pub i64);

impl Roles {
    pub const INGEST: Roles = Roles(1);
    pub const QUERY: Roles = Roles(2);
    pub const COMPACTOR: Roles = Roles(4);
    pub const ALL: Roles = Roles(7);

    pub fn contains(self, other: Roles) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    /// The roles' names: "ingest", "query", "compactor".
    pub fn names(self) -> Vec<&'static str> {
        [
            (Roles::INGEST, "ingest"),
            (Roles::QUERY, "query"),
            (Roles::COMPACTOR, "compactor"),
        ]
        .into_iter()
        .filter(|(r, _)| self.contains(*r))
        .map(|(_, n)| n)
        .collect()
    }
}

/// A registered node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub roles: Roles,
    /// `host:port` clients reach it at.
    pub advertise: String,
    /// Grows on every registration: a restarted node is a new incarnation.
    pub epoch: i64,
    pub heartbeat_ms: i64,
    pub alive: bool,
    /// `host:port` 4.x clients reach it at (Remoting), if it serves them.
    pub remoting: Option<String>,
    pub departure: Departure,
}

impl Node {
    /// What `strata node list` shows: alive, draining, left or dead.
    pub fn state(&self) -> &'static str {
        match (self.alive, self.departure) {
            (true, Departure::Staying) => "alive",
            (true, _) => "draining",
            (false, Departure::Left) => "left",
            (false, _) => "dead",
        }
    }
}

/// Where a node is in a graceful departure (SIGTERM: drain, then leave).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Departure {
    #[default]
    Staying,
    /// Still serving, but out of every route: clients move to the other nodes.
    Draining,
    /// Deregistered: its epoch is fenced like a dead node's.
    Left,
}

impl Departure {
    pub fn code(self) -> i64 {
        match self {
            Departure::Staying => 0,
            Departure::Draining => 1,
            Departure::Left => 2,
        }
    }

    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Departure::Draining,
            2 => Departure::Left,
            _ => Departure::Staying,
        }
    }
}

/// A consumer group's view of one topic (pop consumption).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subscription {
    pub tenant: String,
    /// The group, or a broadcast client's progress key ([`broadcast_progress`]).
    pub group: String,
    pub topic: String,
}

impl Subscription {
    /// The consumer group (without a broadcast client's id or a lane).
    pub fn group_name(&self) -> &str {
        let progress = self.group.split(BROADCAST_SEPARATOR).next().unwrap_or(&self.group);
        crate::lane::group_of(progress)
    }

    /// Whether this is one broadcast client's progress.
    pub fn is_broadcast(&self) -> bool {
        self.group.contains(BROADCAST_SEPARATOR)
    }
}

/// A message handed to a consumer and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub queue: i32,
    pub offset: i64,
    /// 1 on first delivery, +1 on each redelivery.
    pub attempt: i32,
    /// Changes on every (re)delivery and invisible-duration change: receipts carry it, so a
    /// receipt from an earlier delivery is recognised as stale.
    pub seq: i64,
    pub invisible_until_ms: i64,
    /// The message group, for FIFO consumer groups.
    pub group: Option<String>,
}

/// A message of a FIFO consumer group passed by the cursor while its message group was busy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub offset: i64,
    pub group: String,
}

/// The state a pop needs for one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuePopState {
    pub queue: i32,
    /// Next offset never examined for the group.
    pub cursor: i64,
    /// Next offset to be written to the queue.
    pub end: i64,
    /// Delivered, unacknowledged and visible again, lowest offset first.
    pub expired: Vec<InFlight>,
    /// FIFO only: the first waiting message of each message group with nothing in flight,
    /// lowest offset first.
    pub ready: Vec<Waiting>,
    /// FIFO only: message groups with a message in flight or waiting; new messages of these
    /// groups must wait behind them.
    pub busy: Vec<String>,
    /// FIFO only: messages waiting behind their group (one row each).
    pub waiting: i64,
}

/// A message newly taken from the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub offset: i64,
    /// Its message group (FIFO consumer groups only).
    pub group: Option<String>,
}

/// What a pop claims for one queue: checked against the state it was planned on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueClaim {
    pub queue: i32,
    /// The cursor the plan started from; the claim fails if it moved meanwhile.
    pub cursor_from: i64,
    /// The new cursor: every offset below it was delivered, parked or filtered out.
    pub cursor_to: i64,
    /// New offsets in `cursor_from..cursor_to` delivered now.
    pub deliver: Vec<Taken>,
    /// New offsets in `cursor_from..cursor_to` whose message group is busy: they wait.
    pub park: Vec<Taken>,
    /// Waiting messages delivered now (still waiting, their group idle).
    pub release: Vec<i64>,
    /// Expired in-flight messages delivered again: `(offset, seq they were seen with)`.
    pub redeliver: Vec<(i64, i64)>,
    /// Expired in-flight messages out of attempts, moved to the dead-letter queue.
    pub dead_letter: Vec<(i64, i64)>,
    /// The queue is consumed in order as a whole (a lite topic): new messages are delivered
    /// only while none of the queue is in flight for the group; otherwise the claim of this
    /// queue fails as a conflict.
    pub in_order: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopClaim {
    pub subscription: Subscription,
    pub now_ms: i64,
    pub invisible_until_ms: i64,
    /// The dead-letter topic (same tenant, one queue) for `dead_letter` claims. A broadcast
    /// client's progress has none: its messages out of attempts are dropped for that client.
    pub dead_letter_topic: Option<String>,
    pub queues: Vec<QueueClaim>,
}

/// The part of a claim that succeeded: these messages are now the caller's to deliver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    pub delivered: Vec<InFlight>,
    /// `(queue, offset)` of messages moved to the dead-letter queue.
    pub dead_lettered: Vec<(i32, i64)>,
    /// Queues whose cursor moved under the claim (planned again by the caller).
    pub conflicts: Vec<i32>,
}

/// Identifies one delivery of a message to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub subscription: Subscription,
    pub queue: i32,
    pub offset: i64,
    pub seq: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    Acked,
    /// Not in flight any more and below the cursor: acknowledged before.
    AlreadyAcked,
    /// In flight under a newer delivery: this receipt is stale.
    Stale,
    /// Never delivered to this group.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rocketmq_rules() {
        assert!(validate_topic_name("orders_EU-1%x|y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"a".repeat(128)).is_err());
        assert!(validate_group_name(&"g".repeat(255)).is_ok());
        assert!(validate_tenant("").is_ok());
        assert!(validate_tenant("ns/1").is_err());
    }

    #[test]
    fn message_type_numbers_match_the_protocol() {
        for n in 1..=6 {
            let t = MessageType::from_i32(n).unwrap();
            assert_eq!(t as i32, n);
            assert_eq!(MessageType::parse(&t.as_str().to_lowercase()), Some(t));
        }
        assert_eq!(MessageType::from_i32(0), None);
    }
}
