//! The write path: flush commits, the batch index, queue bounds, commit notifications.

use async_trait::async_trait;
use std::collections::HashSet;

use tokio::sync::broadcast;

use super::TransactionCounts;
use crate::error::Result;
use crate::model::{Batch, CommitEvent, FlushCommit, QueueRef};

/// The write path: flush commits, the batch index, queue bounds, commit notifications.
#[async_trait]
pub trait Log: Send + Sync {
    /// Appends every batch of a flush atomically and returns each batch's base offset, in
    /// order (`None` for held batches, which become timers or half messages, and for batches
    /// of a topic deleted since: those alone are refused). Offsets of a queue are dense and
    /// strictly increasing. All or nothing: if a queue of an existing topic is unknown, the
    /// writer's epoch is fenced or orphan collection claimed the object first
    /// ([`Error::ObjectCollected`](crate::Error)), nothing is appended. Idempotent per
    /// object: committing a flush its writer committed before returns the same offsets and
    /// appends nothing (a retry after a commit whose outcome was unknown).
    async fn commit_flush(&self, flush: &FlushCommit, now_ms: i64) -> Result<Vec<Option<i64>>>;

    /// Batches of `queue` that hold offsets `>= from`, lowest first, at most `limit`.
    async fn batches(&self, queue: &QueueRef, from: i64, limit: u32) -> Result<Vec<Batch>>;

    /// Which of `objects` are committed (referenced by the coordinator). Objects in the store
    /// that are not, and older than the commit deadline, are orphans of failed commits.
    async fn committed_objects(&self, objects: &[String]) -> Result<HashSet<String>>;

    /// The next offset to be written to `queue`.
    async fn queue_end(&self, queue: &QueueRef) -> Result<i64>;

    /// The first retained offset and the next offset to be written.
    async fn queue_bounds(&self, queue: &QueueRef) -> Result<(i64, i64)>;

    /// The first batch of `queue` holding a record stored at or after `ts_ms`.
    async fn batch_at_time(&self, queue: &QueueRef, ts_ms: i64) -> Result<Option<Batch>>;

    /// Commit notifications (one per committed flush and topic).
    fn subscribe(&self) -> broadcast::Receiver<CommitEvent>;

    /// One minimal write transaction (a one-row upsert): the floor every commit is compared
    /// against by `strata bench --floor`.
    async fn probe_commit(&self) -> Result<()>;

    /// Transactions run since the coordinator was opened.
    fn transactions(&self) -> TransactionCounts;
}
