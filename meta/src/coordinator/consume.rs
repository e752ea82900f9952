//! Pop consumption (claims, acks, invisible time, FIFO, dead letters) and stream offsets.

use crate::error::Result;
use crate::model::{AckOutcome, Claimed, InFlight, PopClaim, QueuePopState, Receipt, Subscription};
use async_trait::async_trait;

/// Pop consumption (claims, acks, invisible time, FIFO, dead letters) and stream offsets.
#[async_trait]
pub trait Consumption: Send + Sync {
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

    /// Where a group's or broadcast client's progress on a topic begins: gives `sub` a
    /// cursor at each queue's end where it has none if `latest` (otherwise cursors start at
    /// the first retained offset anyway). For a broadcast client's progress, also records
    /// that it was seen at `now_ms` (see [`Maintenance::expire_broadcast_progress`]).
    /// Idempotent; nodes call it once per client and topic every minute or so.
    ///
    /// [`Maintenance::expire_broadcast_progress`]: crate::coordinator::Maintenance::expire_broadcast_progress
    async fn start_progress(&self, sub: &Subscription, latest: bool, now_ms: i64) -> Result<()>;

    /// Applies a planned pop atomically per queue: moves cursors that did not move meanwhile,
    /// marks new deliveries, released waiting messages and still-expired redeliveries in
    /// flight until `invisible_until_ms`, parks messages of busy FIFO groups, and moves
    /// still-expired messages out of attempts to the dead-letter topic (zero copy). A FIFO
    /// message group never has two messages in flight. Returns what was claimed.
    async fn pop_claim(&self, claim: &PopClaim) -> Result<Claimed>;

    /// Applies several pop claims (of different queues, none moving dead letters) in one
    /// transaction, in a fixed lock order: a lite consumer's receive claims the runs of all
    /// its ready lite topics at once. One result per claim, in order.
    async fn pop_claims(&self, claims: &[PopClaim]) -> Result<Vec<Claimed>>;

    /// Moves a delivered message to `dead_letter_topic` (queue 0) by its receipt, as a
    /// client does after its own last attempt, at `now_ms`. Zero copy.
    async fn dead_letter(
        &self,
        receipt: &Receipt,
        dead_letter_topic: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<(), AckOutcome>>;

    /// Moves expired in-flight messages that are out of attempts (attempt ≥ their group's
    /// max attempts) to their group's dead-letter topic, created if needed, at most `limit`:
    /// the background half of retries, for groups nobody is receiving from. Returns how many.
    async fn dead_letter_expired(&self, now_ms: i64, limit: u32) -> Result<u32>;

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

    /// Moves a group's cursor on a queue to `offset` (clamped to the retained range):
    /// messages before it are not delivered to the group (unless in flight already), those
    /// from it on are, again if need be.
    async fn reset_cursor(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()>;

    async fn commit_offset(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()>;

    async fn committed_offset(&self, sub: &Subscription, queue: i32) -> Result<Option<i64>>;
}
