//! Moving held records (delay timers, half messages) out of the WAL objects they were sent
//! in. A flush object (up to 8 MiB) with one timer due in a year would otherwise stay for a
//! year after everything else in it was compacted; the records are copied, once, into an
//! object of their own and the old object becomes unreferenced (deleted by GC).

use std::collections::BTreeMap;

use object_store::{ObjectStoreExt, PutPayload};
use strata_meta::model::{BlockLocation, HeldMove, HeldRecord, QueueRef};
use strata_storage::paths;
use strata_storage::wal::{WalRecord, WalWriter};
use tracing::{info, instrument};

use crate::{Compaction, Error};

/// Objects whose held records one pass moves (one new object per pass).
const OBJECTS_PER_PASS: u32 = 64;

impl Compaction {
    /// Copies the held records pinning old WAL objects into one new object and points them
    /// at it. Returns how many moved.
    #[instrument(skip_all, err)]
    pub async fn move_held(&self) -> Result<u32, Error> {
        let before = self.clock.now_ms() - self.config.compact_after.as_millis() as i64;
        let held = self.coordinator.held_to_move(before, OBJECTS_PER_PASS).await?;
        if held.is_empty() {
            return Ok(0);
        }
        // One block per queue in the new object, records in their old order.
        let mut by_queue: BTreeMap<QueueRef, Vec<(HeldRecord, WalRecord)>> = BTreeMap::new();
        for h in held {
            let record = self
                .blocks
                .slice(&h.location, h.record_index, 1)
                .await?
                .pop()
                .ok_or_else(|| Error::Store(format!("{} has no record {}", h.location.object, h.record_index)))?;
            by_queue.entry(h.queue.clone()).or_default().push((h, record));
        }
        let path = paths::wal_object(ulid::Ulid::new());
        let mut writer = WalWriter::new();
        let mut records = Vec::new();
        for (queue, held) in by_queue {
            let block: Vec<WalRecord> = held.iter().map(|(_, r)| r.clone()).collect();
            let span = writer.add_block(&queue.tenant, &queue.topic, queue.queue, &block);
            let location = BlockLocation::wal(path.as_ref(), &span);
            records.extend(
                held.into_iter()
                    .enumerate()
                    .map(|(i, (h, _))| (h, location.clone(), i as u32)),
            );
        }
        let object = writer.finish(&self.node, self.clock.now_ms());
        let moved = HeldMove {
            object: path.to_string(),
            object_size: object.len() as u64,
            writer: self.node.clone(),
            records,
        };
        self.store
            .put(&path, PutPayload::from(object))
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        let count = self.coordinator.move_held(&moved, self.clock.now_ms()).await?;
        info!(object = %moved.object, held = count, "moved held records out of their flush objects");
        Ok(count)
    }
}
