//! Compaction swaps under leases, retention and garbage collection.

use crate::error::Result;
use crate::model::{Batch, CompactionSwap, HeldMove, HeldRecord, Quarantined, QueueRef};
use async_trait::async_trait;

/// Compaction swaps under leases, retention and garbage collection.
#[async_trait]
pub trait Maintenance: Send + Sync {
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

    /// Claims the objects of `objects` that no commit recorded, for deletion as orphans:
    /// from now on a commit of any of them fails (so a late commit cannot reference a
    /// deleted object). Returns the claimed ones, including those claimed before; the caller
    /// deletes them from the store. Their claims are then ordinary unreferenced objects
    /// (see [`unreferenced_objects`](Self::unreferenced_objects)), forgotten after its grace.
    async fn claim_orphans(&self, objects: &[String], now_ms: i64) -> Result<Vec<String>>;

    /// Takes `batch` out of its queue into quarantine (readers pass over its offsets; no
    /// group has them in flight any more), recording why. False if the queue's batch at that
    /// offset is not `batch` any more (compacted meanwhile, or quarantined already).
    async fn quarantine_batch(&self, batch: &Batch, reason: &str, now_ms: i64) -> Result<bool>;

    /// Every quarantined batch, oldest first.
    async fn quarantined(&self) -> Result<Vec<Quarantined>>;

    /// Ends the quarantine of the batch at `base_offset` of `queue`: `retry` appends its
    /// records to the queue again (zero copy, at new offsets; every group receives them) and
    /// returns their first offset; otherwise it is dropped (its messages are gone) and `None`
    /// returned. An error if no such batch is quarantined.
    async fn release_quarantined(
        &self,
        queue: &QueueRef,
        base_offset: i64,
        retry: bool,
        now_ms: i64,
    ) -> Result<Option<i64>>;

    /// Held records (timers, half messages) of up to `limit` WAL objects created before
    /// `before_ms` that nothing else references and that are at least twice the size of the
    /// held records in them: each such object (up to 8 MiB) stays only for them, for up to
    /// `ingest.max_delay`. Ordered by object, block, record.
    async fn held_to_move(&self, before_ms: i64, limit: u32) -> Result<Vec<HeldRecord>>;

    /// Points held records at their copies in a new object, recorded as committed in the
    /// same transaction. A record fired, resolved or moved meanwhile is left alone (its copy
    /// is just unreferenced). Returns how many moved.
    async fn move_held(&self, moved: &HeldMove, now_ms: i64) -> Result<u32>;

    /// Drops the record of an object deleted from the store.
    async fn forget_object(&self, path: &str) -> Result<()>;

    /// Deletes the progress (cursors and in-flight messages) of up to `limit` broadcast
    /// clients no node has seen since `before_ms`. Returns how many clients.
    async fn expire_broadcast_progress(&self, before_ms: i64, limit: u32) -> Result<u32>;

    /// Bytes each tenant stores: the blocks its batches reference (a full scan of the index;
    /// the metering task calls it every few minutes).
    async fn stored_bytes(&self) -> Result<Vec<(String, i64)>>;
}
