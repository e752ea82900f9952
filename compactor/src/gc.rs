//! Orphan collection: WAL objects that were PUT but whose commit failed are referenced by
//! nothing; once older than the grace period they are claimed in the coordinator, then
//! deleted. The claim, not the clock, keeps a late commit from referencing a deleted object:
//! a commit after the claim fails. The grace only spares objects whose commit is under way.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_meta::Coordinator;
use tracing::instrument;

use crate::Error;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub deleted: usize,
    pub kept: usize,
}

/// Deletes every `wal/` and `data/` object older than `grace` (at `now_ms`) that no commit
/// recorded (a WAL object whose commit failed, a Parquet file whose compactor died before its
/// swap), after claiming it so that no commit can record it any more.
#[instrument(skip_all, err)]
pub async fn collect_orphans(
    store: &dyn ObjectStore,
    coordinator: &dyn Coordinator,
    now_ms: i64,
    grace: Duration,
) -> Result<GcReport, Error> {
    let cutoff = now_ms - grace.as_millis() as i64;
    let mut old: Vec<Path> = Vec::new();
    for prefix in ["wal", "data"] {
        let listed: Vec<Path> = store
            .list(Some(&Path::from(prefix)))
            .try_filter(|m| futures::future::ready(m.last_modified.timestamp_millis() < cutoff))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        old.extend(listed);
    }
    let mut report = GcReport::default();
    for chunk in old.chunks(1000) {
        let names: Vec<String> = chunk.iter().map(|p| p.to_string()).collect();
        let claimed: HashSet<String> = coordinator.claim_orphans(&names, now_ms).await?.into_iter().collect();
        for (path, name) in chunk.iter().zip(&names) {
            if !claimed.contains(name) {
                report.kept += 1;
                continue;
            }
            match store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => report.deleted += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use strata_meta::SqlCoordinator;
    use strata_meta::model::{
        AppendBatch, BlockFormat, BlockLocation, FlushCommit, MessageType, QueueRef, Roles, TopicSpec,
    };
    use strata_meta::prelude::*;

    use super::*;

    #[tokio::test]
    async fn deletes_old_orphans_only() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap();
        let store = InMemory::new();
        let spec = TopicSpec {
            tenant: String::new(),
            name: "t".into(),
            message_type: MessageType::Normal,
            queue_count: 1,
            lite_ttl_ms: 0,
        };
        c.create_topic(&spec, 0).await.unwrap();
        let node = c.register_node("n", Roles::INGEST, "h:1", None, 0).await.unwrap();
        for name in [
            "wal/00/committed.wal",
            "wal/00/orphan.wal",
            "data/x.parquet",
            "other/kept",
        ] {
            store
                .put(&Path::from(name), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        let commit = FlushCommit {
            object: "wal/00/committed.wal".into(),
            object_size: 1,
            writer: "n".into(),
            writer_epoch: node.epoch,
            batches: vec![AppendBatch {
                queue: QueueRef {
                    tenant: String::new(),
                    topic: "t".into(),
                    queue: 0,
                },
                count: 1,
                location: BlockLocation {
                    object: "wal/00/committed.wal".into(),
                    offset: 0,
                    length: 1,
                    uncompressed_length: 1,
                    crc32c: 0,
                    compression: 0,
                    block_records: 1,
                    format: BlockFormat::Wal,
                },
                min_timestamp_ms: 0,
                max_timestamp_ms: 0,
                held: vec![],
                indexed: vec![],
            }],
        };
        c.commit_flush(&commit, 0).await.unwrap();
        let now = wall_ms();
        let grace = Duration::from_secs(3600);

        // Within the grace period nothing is touched: its commit may still be coming.
        let young = collect_orphans(&store, &c, now, grace).await.unwrap();
        assert_eq!(young, GcReport { deleted: 0, kept: 0 });

        let later = now + 2 * 3_600_000;
        let report = collect_orphans(&store, &c, later, grace).await.unwrap();
        assert_eq!(report, GcReport { deleted: 2, kept: 1 });
        let left: Vec<String> = store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        let mut left = left;
        left.sort();
        assert_eq!(
            left,
            ["other/kept", "wal/00/committed.wal"],
            "only the orphans are gone"
        );
    }

    fn wall_ms() -> i64 {
        strata_meta::Clock::now_ms(&strata_meta::clock::SystemClock)
    }
}
