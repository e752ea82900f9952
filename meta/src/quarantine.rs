//! Unreadable batches: a node counts failed reads per batch and, after a bounded number of
//! failures that a retry cannot cure (the object is missing, its bytes are corrupt), takes the
//! batch out of its queue into quarantine, so one bad object stalls no queue, group or topic.
//! A quarantined batch is counted, listed by `strata quarantine list`, and released only by an
//! operator (`strata quarantine retry|drop`): nothing is skipped silently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{error, warn};

use crate::Clock;
use crate::coordinator::Coordinator;
use crate::error::Result;
use crate::model::{Batch, QueueRef};

/// Batches whose failures are remembered at once; beyond, the counts start over (a node
/// seeing this many broken batches has bigger problems than counting them exactly).
const REMEMBERED: usize = 10_000;

pub struct Unreadable {
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    after: u32,
    failures: Mutex<HashMap<(QueueRef, i64), u32>>,
    failed_reads: AtomicU64,
    quarantined: AtomicU64,
}

impl Unreadable {
    /// Quarantines a batch at its `after`-th incurable failure on this node.
    pub fn new(coordinator: Arc<dyn Coordinator>, clock: Arc<dyn Clock>, after: u32) -> Self {
        Self {
            coordinator,
            clock,
            after: after.max(1),
            failures: Mutex::new(HashMap::new()),
            failed_reads: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
        }
    }

    /// Records a failed read of `batch`. `incurable`: a retry would read the same (the object
    /// is missing or corrupt), as opposed to an unavailable store. True if the batch is
    /// quarantined now: readers must forget its location.
    pub async fn failed(&self, batch: &Batch, reason: &str, incurable: bool) -> Result<bool> {
        self.failed_reads.fetch_add(1, Ordering::Relaxed);
        let q = &batch.queue;
        if !incurable {
            warn!(tenant = %q.tenant, topic = %q.topic, queue = q.queue, offset = batch.base_offset, %reason,
                "read failed; the queue's other messages and queues go on");
            return Ok(false);
        }
        let count = {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if failures.len() >= REMEMBERED {
                failures.clear();
            }
            let n = failures.entry((q.clone(), batch.base_offset)).or_default();
            *n += 1;
            *n
        };
        warn!(tenant = %q.tenant, topic = %q.topic, queue = q.queue, offset = batch.base_offset, failures = count,
            %reason, "batch unreadable");
        if count < self.after {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        let quarantined = self.coordinator.quarantine_batch(batch, reason, now).await?;
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&(q.clone(), batch.base_offset));
        if quarantined {
            self.quarantined.fetch_add(1, Ordering::Relaxed);
            error!(tenant = %q.tenant, topic = %q.topic, queue = q.queue, offset = batch.base_offset,
                records = batch.count, object = %batch.location.object, %reason,
                "batch quarantined: consumers pass over it until `strata quarantine retry` or `drop`");
        }
        Ok(quarantined)
    }

    /// Failed reads this node saw.
    pub fn failed_reads(&self) -> u64 {
        self.failed_reads.load(Ordering::Relaxed)
    }

    /// Batches this node quarantined.
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unreadable")
            .field("after", &self.after)
            .field("failed_reads", &self.failed_reads())
            .field("quarantined", &self.quarantined())
            .finish()
    }
}
