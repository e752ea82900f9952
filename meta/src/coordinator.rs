//! The coordinator seam: one trait, a SQLite backend (embedded) and a PostgreSQL backend
//! (cluster), both held to the same conformance suite.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::model::{
    AckOutcome, Batch, Claimed, CommitEvent, CompactionSwap, FlushCommit, Group, GroupSpec, HeldRecord, InFlight,
    MessageType, Node, PopClaim, QueuePopState, QueueRef, Receipt, Roles, Subscription, Topic, TopicSpec,
};

#[async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    // --- topics and groups -------------------------------------------------------------
    /// Creates a topic and its queues; `AlreadyExists` if the name is taken.
    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<Topic>;
    async fn topic(&self, tenant: &str, name: &str) -> Result<Option<Topic>>;
    /// Changes a topic's message type (an admin action); `TopicNotFound` if there is none.
    async fn update_topic_type(&self, tenant: &str, name: &str, message_type: MessageType) -> Result<Topic>;
    async fn list_topics(&self, tenant: &str) -> Result<Vec<Topic>>;
    /// Creates a consumer group; `AlreadyExists` if the name is taken.
    async fn create_group(&self, spec: &GroupSpec, now_ms: i64) -> Result<Group>;
    async fn group(&self, tenant: &str, name: &str) -> Result<Option<Group>>;
    async fn list_groups(&self, tenant: &str) -> Result<Vec<Group>>;

    // --- the write path ------------------------------------------------------------------
    /// Appends every batch of a flush atomically and returns each batch's base offset, in
    /// order (`None` for held batches, which become timers or half messages). Offsets of a
    /// queue are dense and strictly increasing. All or nothing: if any queue is unknown, or
    /// the writer's epoch is fenced, nothing is appended.
    async fn commit_flush(&self, flush: &FlushCommit, now_ms: i64) -> Result<Vec<Option<i64>>>;

    /// Batches of `queue` that hold offsets `>= from`, lowest first, at most `limit`.
    async fn batches(&self, queue: &QueueRef, from: i64, limit: u32) -> Result<Vec<Batch>>;

    /// Which of `objects` are committed (referenced by the coordinator). Objects in the store
    /// that are not, and older than the commit deadline, are orphans of failed commits.
    async fn committed_objects(&self, objects: &[String]) -> Result<std::collections::HashSet<String>>;

    /// The next offset to be written to `queue`.
    async fn queue_end(&self, queue: &QueueRef) -> Result<i64>;

    // --- pop consumption -----------------------------------------------------------------
    /// Cursor, end and up to `max_expired` expired in-flight messages of each queue; for a
    /// FIFO consumer group (`fifo`) also its ready waiting messages and busy message groups.
    /// A group's cursor starts at the queue's first retained offset.
    async fn pop_state(
        &self,
        sub: &Subscription,
        queues: &[i32],
        now_ms: i64,
        max_expired: u32,
        fifo: bool,
    ) -> Result<Vec<QueuePopState>>;

    /// Applies a planned pop atomically per queue: moves cursors that did not move meanwhile,
    /// marks new deliveries, released waiting messages and still-expired redeliveries in
    /// flight until `invisible_until_ms`, parks messages of busy FIFO groups, and moves
    /// still-expired messages out of attempts to the dead-letter topic (zero copy). A FIFO
    /// message group never has two messages in flight. Returns what was claimed.
    async fn pop_claim(&self, claim: &PopClaim) -> Result<Claimed>;

    /// Moves a delivered message to `dead_letter_topic` (queue 0) by its receipt, as a
    /// client does after its own last attempt. Zero copy.
    async fn dead_letter(
        &self,
        receipt: &Receipt,
        dead_letter_topic: &str,
    ) -> Result<std::result::Result<(), AckOutcome>>;

    /// Moves expired in-flight messages that are out of attempts (attempt ≥ their group's
    /// max attempts) to their group's dead-letter topic, created if needed, at most `limit`:
    /// the background half of retries, for groups nobody is receiving from. Returns how many.
    async fn dead_letter_expired(&self, now_ms: i64, limit: u32) -> Result<u32>;

    // --- held records: timers and transactions --------------------------------------------
    /// Appends every timer due at `now_ms` to its queue (zero copy), at most `limit`;
    /// returns how many fired.
    async fn fire_due_timers(&self, now_ms: i64, limit: u32) -> Result<u32>;

    /// When the earliest timer is due.
    async fn next_timer_at(&self) -> Result<Option<i64>>;

    /// Cancels a timer that has not fired and returns its message id; `None` if there is none
    /// (fired, recalled, unknown).
    async fn recall_timer(&self, tenant: &str, topic: &str, id: &str) -> Result<Option<String>>;

    /// Resolves a half message: commit appends it to its queue (zero copy), rollback drops
    /// it. False if there is none (already resolved, unknown).
    async fn end_transaction(&self, tenant: &str, topic: &str, id: &str, commit: bool) -> Result<bool>;

    /// Claims half messages of `topics` whose orphan check is due: each claimed one's check
    /// count grows and its next check moves `interval_ms` × 2^checks (at most 32×) ahead, so
    /// exactly one node sends each check, with backoff. At most `limit`.
    async fn claim_transaction_checks(
        &self,
        topics: &[(String, String)],
        now_ms: i64,
        interval_ms: i64,
        limit: u32,
    ) -> Result<Vec<HeldRecord>>;

    /// Rolls back half messages checked `max_checks` times whose last check went unanswered
    /// (due again); returns how many.
    async fn expire_transactions(&self, now_ms: i64, max_checks: i64) -> Result<u32>;

    /// Acknowledges deliveries; one outcome per receipt, in order.
    async fn ack(&self, receipts: &[Receipt]) -> Result<Vec<AckOutcome>>;

    /// Moves a delivery's invisible deadline. Returns the message's new in-flight state (new
    /// `seq`), or the outcome explaining why the receipt no longer applies.
    async fn change_invisible(
        &self,
        receipt: &Receipt,
        invisible_until_ms: i64,
    ) -> Result<std::result::Result<InFlight, AckOutcome>>;

    /// The earliest time an in-flight message of the subscription becomes visible again.
    async fn next_visible_at(&self, sub: &Subscription) -> Result<Option<i64>>;

    // --- compaction, retention, GC ---------------------------------------------------------
    /// Queues with WAL batches whose newest record is older than `before_ms`, at most `limit`.
    async fn compaction_candidates(&self, before_ms: i64, limit: u32) -> Result<Vec<QueueRef>>;

    /// Takes (or renews) the lease `name` for `holder` until `now_ms + ttl_ms`; false if
    /// another holder has it.
    async fn acquire_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool>;

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;

    /// Atomically replaces a queue's WAL batches `from..to` with the row groups of a Parquet
    /// file: offsets stay the same, readers see either the old or the new locations. False
    /// (nothing changed) if the lease was lost or the batches are not exactly those
    /// expected any more.
    async fn swap_compacted(&self, swap: &CompactionSwap, now_ms: i64) -> Result<bool>;

    /// Removes the batches of each topic older than its retention (whole batches, from the
    /// front of each queue); moves queues' first offsets, consumers' cursors and stream
    /// readers past them. Parquet files removed this way are kept for `archive_ms` after
    /// their newest record (archive retention). Returns how many batches were removed.
    async fn apply_retention(&self, now_ms: i64, archive_ms: i64, limit: u32) -> Result<u32>;

    /// Objects nothing references (no batch, no held record, past their archive horizon)
    /// for at least `grace_ms`: safe to delete. Notes newly unreferenced ones as of now.
    async fn unreferenced_objects(&self, now_ms: i64, grace_ms: i64, limit: u32) -> Result<Vec<String>>;

    /// Drops the record of an object deleted from the store.
    async fn forget_object(&self, path: &str) -> Result<()>;

    /// The first retained offset and the next offset to be written.
    async fn queue_bounds(&self, queue: &QueueRef) -> Result<(i64, i64)>;

    /// The first batch of `queue` holding a record stored at or after `ts_ms`.
    async fn batch_at_time(&self, queue: &QueueRef, ts_ms: i64) -> Result<Option<Batch>>;

    // --- stream consumption (PullMessage) ---------------------------------------------------
    async fn commit_offset(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()>;

    async fn committed_offset(&self, sub: &Subscription, queue: i32) -> Result<Option<i64>>;

    // --- nodes ---------------------------------------------------------------------------
    /// Registers (or re-registers) a node and returns it with a new epoch.
    async fn register_node(&self, id: &str, roles: Roles, advertise: &str, now_ms: i64) -> Result<Node>;

    /// Records that the node is alive. `Fenced` if `epoch` is not its live epoch.
    async fn heartbeat_node(&self, id: &str, epoch: i64, now_ms: i64) -> Result<()>;

    /// Every registered node, dead ones included.
    async fn list_nodes(&self) -> Result<Vec<Node>>;

    /// Nodes alive and heard from within `ttl_ms`.
    async fn live_nodes(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<Node>>;

    /// Declares dead every node not heard from within `ttl_ms` (their epochs are fenced);
    /// returns their ids.
    async fn expire_nodes(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<String>>;

    // --- cluster-wide state --------------------------------------------------------------
    /// A random secret shared by every node, created on first use (e.g. the receipt MAC key).
    async fn secret(&self, name: &str) -> Result<Vec<u8>>;

    /// Commit notifications (one per committed flush and topic).
    fn subscribe(&self) -> broadcast::Receiver<CommitEvent>;

    // --- measurement -------------------------------------------------------------------
    /// One minimal write transaction (a one-row upsert): the floor every commit is compared
    /// against by `strata bench --floor`.
    async fn probe_commit(&self) -> Result<()>;

    /// Transactions run since the coordinator was opened.
    fn transactions(&self) -> TransactionCounts;
}

/// How many transactions a coordinator ran (a statement outside a transaction counts as one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransactionCounts {
    pub all: u64,
    /// Of those, on the write path (SQLite: each one an fsync of its journal). PostgreSQL
    /// serves reads and writes from one pool: there every transaction counts as a write.
    pub writes: u64,
}
