//! Compaction: a queue's older WAL batches become one Parquet file, its row groups swapped
//! into the batch index in place of the WAL batches (same offsets) in one coordinator
//! transaction, under a lease that splits jobs among compactors.

use std::sync::Arc;

use futures::StreamExt;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_meta::model::{Batch, BlockFormat, CompactionSwap, QueueRef, RowGroup};
use strata_meta::quarantine::Unreadable;
use strata_meta::{Clock, Coordinator};
use strata_storage::wal::WalRecord;
use strata_storage::{BlockCache, parquet, paths};
use tracing::{info, instrument, warn};

use crate::{CompactorConfig, Error};

/// What one compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub file: String,
    pub records: u64,
    pub wal_batches: u32,
    pub row_groups: usize,
    pub file_bytes: u64,
}

/// The shared parts a compaction needs.
#[derive(Clone)]
pub struct Compaction {
    pub coordinator: Arc<dyn Coordinator>,
    pub store: Arc<dyn ObjectStore>,
    pub blocks: BlockCache,
    pub clock: Arc<dyn Clock>,
    pub config: CompactorConfig,
    /// This compactor's name (lease holder).
    pub node: String,
    /// Counts failed block reads and quarantines incurable ones (shared with the node's
    /// consumers: `query.quarantine_after`).
    pub unreadable: Arc<Unreadable>,
}

/// Blocks a job fetches at once: a cold job reads at eight GETs' latency instead of one
/// GET's per block, holding at most eight blocks beyond the job's rows.
const CONCURRENT_READS: usize = 8;

/// Batch index rows read per page while planning a job.
const PLAN_PAGE: u32 = 2048;

pub fn lease_name(q: &QueueRef) -> String {
    format!("compact/{}/{}/{}", q.tenant, q.topic, q.queue)
}

impl Compaction {
    /// Compacts the oldest WAL batches of `queue`, if any are old enough and no other
    /// compactor holds the queue. `None`: nothing done.
    #[instrument(skip_all, fields(tenant = %queue.tenant, topic = %queue.topic, queue = queue.queue), err)]
    pub async fn compact_queue(&self, queue: &QueueRef) -> Result<Option<Compacted>, Error> {
        let lease = lease_name(queue);
        let ttl = self.config.lease_ttl.as_millis() as i64;
        if !self
            .coordinator
            .acquire_lease(&lease, &self.node, self.clock.now_ms(), ttl)
            .await?
        {
            return Ok(None);
        }
        let result = self.compact_leased(queue, &lease).await;
        if let Err(e) = self.coordinator.release_lease(&lease, &self.node).await {
            warn!(error = %e, "releasing the compaction lease failed; it expires by itself");
        }
        result
    }

    /// The WAL batches to compact: the contiguous run of WAL batches old enough, after the
    /// queue's Parquet files, within the file limits. Reads the batch index a page at a
    /// time: a job needs a few thousand rows, a queue may hold millions.
    async fn plan(&self, queue: &QueueRef, now_ms: i64) -> Result<Vec<Batch>, Error> {
        let cutoff = now_ms - self.config.compact_after.as_millis() as i64;
        let mut job: Vec<Batch> = Vec::new();
        let (mut records, mut bytes) = (0u64, 0u64);
        let (mut at, _) = self.coordinator.queue_bounds(queue).await?;
        loop {
            let page = self.coordinator.batches(queue, at, PLAN_PAGE).await?;
            let last_page = page.len() < PLAN_PAGE as usize;
            for b in page {
                at = b.end_offset();
                if b.location.format == BlockFormat::Parquet {
                    if job.is_empty() {
                        continue;
                    }
                    return Ok(job);
                }
                let contiguous = job.last().is_none_or(|last| last.end_offset() == b.base_offset);
                let full = !job.is_empty()
                    && (records + u64::from(b.count) > self.config.max_file_records
                        || bytes + b.location.uncompressed_length > self.config.max_file_bytes);
                if b.max_timestamp_ms >= cutoff || !contiguous || full {
                    return Ok(job);
                }
                records += u64::from(b.count);
                bytes += b.location.uncompressed_length;
                job.push(b);
            }
            if last_page {
                return Ok(job);
            }
        }
    }

    async fn compact_leased(&self, queue: &QueueRef, lease: &str) -> Result<Option<Compacted>, Error> {
        let job = self.plan(queue, self.clock.now_ms()).await?;
        let (Some(head), Some(tail)) = (job.first(), job.last()) else {
            return Ok(None);
        };
        let (from, to) = (head.base_offset, tail.end_offset());
        let mut rows: Vec<(i64, WalRecord)> = Vec::with_capacity((to - from) as usize);
        // Blocks are fetched CONCURRENT_READS at a time, in order; the lease is renewed as
        // they arrive, so a job longer than one lease still finishes.
        let mut lease_renewed = self.clock.now_ms();
        let mut reads = futures::stream::iter(job.iter().cloned())
            .map(|b| {
                let blocks = self.blocks.clone();
                async move {
                    let read = blocks.slice(&b.location, b.first_record, b.count).await;
                    (b, read)
                }
            })
            .buffered(CONCURRENT_READS);
        while let Some((b, read)) = reads.next().await {
            let records = match read {
                Ok(records) => records,
                Err(e) => {
                    // After a few incurable failures the batch leaves the queue and the next
                    // job plans around it; until then this queue's compaction waits.
                    let incurable = e.is_corrupt() || e.is_missing();
                    self.unreadable.failed(&b, &e.to_string(), incurable).await?;
                    return Err(e.into());
                }
            };
            rows.extend(
                records
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| (b.base_offset + i as i64, r)),
            );
            if !self.renew_lease(lease, &mut lease_renewed).await? {
                return Ok(None);
            }
        }
        let labels = [
            ("tenant", queue.tenant.clone()),
            ("topic", queue.topic.clone()),
            ("queue", queue.queue.to_string()),
            ("base_offset", from.to_string()),
        ];
        let written = parquet::write_file(&rows, &labels)?;
        let mut row_groups = Vec::with_capacity(written.row_groups.len());
        let mut start = 0usize;
        for &n in &written.row_groups {
            let group = &rows[start..start + n as usize];
            let ts = group.iter().map(|(_, r)| r.store_timestamp_ms);
            row_groups.push(RowGroup {
                rows: n,
                min_timestamp_ms: ts.clone().min().unwrap_or_default(),
                max_timestamp_ms: ts.max().unwrap_or_default(),
            });
            start += n as usize;
        }
        let path = paths::data_object(&queue.tenant, &queue.topic, queue.queue, from, ulid::Ulid::new());
        let file_bytes = written.bytes.len() as u64;
        if !self.renew_lease(lease, &mut lease_renewed).await? {
            return Ok(None);
        }
        self.store
            .put(&path, PutPayload::from(written.bytes))
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        let swap = CompactionSwap {
            queue: queue.clone(),
            from,
            to,
            replaced_batches: job.len() as u32,
            file: path.to_string(),
            file_size: file_bytes,
            row_groups,
            lease: lease.to_string(),
            holder: self.node.clone(),
        };
        if !self.coordinator.swap_compacted(&swap, self.clock.now_ms()).await? {
            // Lost the lease or the batches changed: the file was never visible.
            warn!(file = %path, "compaction superseded; removing its file");
            let _ = self.store.delete(&path).await;
            return Ok(None);
        }
        let done = Compacted {
            file: path.to_string(),
            records: (to - from) as u64,
            wal_batches: job.len() as u32,
            row_groups: swap.row_groups.len(),
            file_bytes,
        };
        info!(file = %done.file, records = done.records, wal_batches = done.wal_batches, bytes = done.file_bytes, "compacted");
        Ok(Some(done))
    }

    /// Renews the job's lease once a third of its TTL has passed since `renewed` (by this
    /// compactor's clock); false if another compactor holds it now (the job is given up).
    async fn renew_lease(&self, lease: &str, renewed: &mut i64) -> Result<bool, Error> {
        let ttl = self.config.lease_ttl.as_millis() as i64;
        let now = self.clock.now_ms();
        if now - *renewed < ttl / 3 {
            return Ok(true);
        }
        if !self.coordinator.acquire_lease(lease, &self.node, now, ttl).await? {
            warn!(lease, "compaction lease lost to another compactor; giving the job up");
            return Ok(false);
        }
        *renewed = now;
        Ok(true)
    }

    /// One round: every queue with WAL data old enough, in random order (so compactors
    /// spread over queues).
    pub async fn round(&self) -> Result<Vec<Compacted>, Error> {
        let before = self.clock.now_ms() - self.config.compact_after.as_millis() as i64;
        let mut queues = self.coordinator.compaction_candidates(before, 1000).await?;
        use rand::seq::SliceRandom;
        queues.shuffle(&mut rand::rng());
        let mut done = Vec::new();
        for q in queues {
            if let Some(c) = self.compact_queue(&q).await? {
                done.push(c);
            }
        }
        Ok(done)
    }

    /// Deletes objects nothing has referenced for the grace period.
    pub async fn collect_unreferenced(&self) -> Result<usize, Error> {
        let grace = self.config.gc_grace.as_millis() as i64;
        let due = self
            .coordinator
            .unreferenced_objects(self.clock.now_ms(), grace, 1000)
            .await?;
        for path in &due {
            match self.store.delete(&object_store::path::Path::from(path.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => self.coordinator.forget_object(path).await?,
                Err(e) => return Err(Error::Store(e.to_string())),
            }
        }
        Ok(due.len())
    }
}
