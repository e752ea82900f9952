//! Records held back from their queues: delay timers and half messages.

use crate::error::Result;
use crate::model::HeldRecord;
use async_trait::async_trait;

/// Records held back from their queues: delay timers and half messages.
#[async_trait]
pub trait HeldRecords: Send + Sync {
    /// Appends every timer due at `now_ms` to its queue (zero copy), at most `limit`;
    /// returns those that fired.
    async fn fire_due_timers(&self, now_ms: i64, limit: u32) -> Result<Vec<HeldRecord>>;

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
    /// (due again), and those sent `max_age_ms` ago or earlier whatever their checks (no
    /// producer of the topic was left to ask); returns how many.
    async fn expire_transactions(&self, now_ms: i64, max_checks: i64, max_age_ms: i64) -> Result<u32>;
}
