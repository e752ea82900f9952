//! Reads a queue's records by offset: batch index lookups (cached per queue, batches are
//! immutable) then blocks through the block cache.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use moka::future::Cache;
use strata_meta::Coordinator;
use strata_meta::model::{Batch, BlockLocation, QueueRef};
use strata_proto::wal::WalRecord;
use strata_storage::BlockCache;

use crate::error::{Error, Result};

/// Batches fetched per index miss.
const INDEX_FETCH: u32 = 64;
/// Batches remembered per queue; the memory is cleared when it would grow beyond this.
const INDEX_PER_QUEUE: usize = 4096;

type QueueIndex = Arc<RwLock<BTreeMap<i64, Batch>>>;

/// How long a queue's cached batch locations are trusted.
const INDEX_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// One record of a block (a held record: a timer or a half message).
pub async fn record_at(blocks: &BlockCache, l: &BlockLocation, index: u32) -> Result<WalRecord> {
    let mut records = blocks.slice(l, index, 1).await?;
    records
        .pop()
        .ok_or_else(|| Error::Corrupt(format!("{} block at {} has no record {index}", l.object, l.offset)))
}

/// What a read found: the records, up to the first batch that could not be read.
#[derive(Debug, Default)]
pub struct Read {
    pub records: Vec<(i64, WalRecord)>,
    pub unreadable: Option<(Batch, Error)>,
}

impl Read {
    /// The records, or the error of the batch that stopped the read.
    pub fn all(self) -> Result<Vec<(i64, WalRecord)>> {
        match self.unreadable {
            Some((_, e)) => Err(e),
            None => Ok(self.records),
        }
    }
}

#[derive(Clone)]
pub struct Reader {
    coordinator: Arc<dyn Coordinator>,
    blocks: BlockCache,
    index: Cache<QueueRef, QueueIndex>,
}

impl Reader {
    pub fn new(coordinator: Arc<dyn Coordinator>, blocks: BlockCache) -> Self {
        Self {
            coordinator,
            blocks,
            // Compaction replaces locations: forget them well within the GC grace period
            // (10 min), after which old WAL objects may be deleted.
            index: Cache::builder().max_capacity(100_000).time_to_live(INDEX_TTL).build(),
        }
    }

    pub fn coordinator(&self) -> &Arc<dyn Coordinator> {
        &self.coordinator
    }

    /// Forgets the cached locations of `queue` (a batch of it was quarantined).
    pub async fn forget(&self, queue: &QueueRef) {
        self.index.invalidate(queue).await;
    }

    /// The batch holding `offset` if there is one, else the first batch after it (offsets
    /// of a quarantined batch are a gap), if any.
    async fn locate(&self, queue: &QueueRef, offset: i64) -> Result<Option<Batch>> {
        let index = self
            .index
            .get_with(queue.clone(), async { Arc::new(RwLock::new(BTreeMap::new())) })
            .await;
        let find = |map: &BTreeMap<i64, Batch>| {
            map.range(..=offset)
                .next_back()
                .map(|(_, b)| b)
                .filter(|b| b.end_offset() > offset)
                .cloned()
        };
        if let Some(b) = find(&index.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(Some(b));
        }
        // The coordinator's first batch holds `offset` or, past a gap, is the next one (the
        // cache cannot tell a gap from batches it never fetched).
        let fetched = self.coordinator.batches(queue, offset, INDEX_FETCH).await?;
        let first = fetched.first().cloned();
        let mut map = index.write().unwrap_or_else(|p| p.into_inner());
        if map.len() + fetched.len() > INDEX_PER_QUEUE {
            map.clear();
        }
        for b in fetched {
            map.insert(b.base_offset, b);
        }
        Ok(first)
    }

    /// The offset of the first message of `queue` stored at or after `ts_ms`; the queue's end
    /// if there is none.
    pub async fn offset_at_time(&self, queue: &QueueRef, ts_ms: i64) -> Result<i64> {
        let (first, end) = self.coordinator.queue_bounds(queue).await?;
        let Some(b) = self.coordinator.batch_at_time(queue, ts_ms).await? else {
            return Ok(end);
        };
        let records = self
            .read(queue, b.base_offset.max(first), b.end_offset())
            .await?
            .all()?;
        Ok(records
            .iter()
            .find(|(_, r)| r.store_timestamp_ms >= ts_ms)
            .map_or(b.end_offset(), |(o, _)| *o))
    }

    /// Records at offsets `from..to` that are committed, in order, passing over quarantined
    /// offsets; stops at a batch that cannot be read, and says which.
    pub async fn read(&self, queue: &QueueRef, from: i64, to: i64) -> Result<Read> {
        let mut read = Read::default();
        let mut at = from;
        while at < to {
            let Some(batch) = self.locate(queue, at).await? else {
                break;
            };
            let records = match self
                .blocks
                .slice(&batch.location, batch.first_record, batch.count)
                .await
            {
                Ok(records) => records,
                Err(e) => {
                    read.unreadable = Some((batch, e.into()));
                    break;
                }
            };
            let first = (at.max(batch.base_offset) - batch.base_offset) as usize;
            let last = (to.min(batch.end_offset()) - batch.base_offset).max(0) as usize;
            for (i, r) in records.into_iter().enumerate().take(last).skip(first) {
                read.records.push((batch.base_offset + i as i64, r));
            }
            at = batch.end_offset();
        }
        Ok(read)
    }
}
