use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use strata_storage::parquet::ParquetFiles;
use strata_storage::paths;
use strata_storage::wal::WalRecord;

use crate::{Error, Result};

/// A message read from the archive.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchivedRecord {
    pub queue: i32,
    pub offset: i64,
    pub record: WalRecord,
}

/// The messages of a topic stored within `from_ms..to_ms`, read from the topic's Parquet
/// files in the bucket (no broker involved), per queue in offset order. Only compacted data
/// is in the archive: the freshest messages are still in WAL objects.
pub async fn read_archive(
    store: Arc<dyn ObjectStore>,
    tenant: &str,
    topic: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ArchivedRecord>> {
    let fail = |e: &dyn std::fmt::Display| Error::Archive(e.to_string());
    let folder = paths::data_queue_prefix(tenant, topic, 0);
    let topic_folder = Path::from(folder.rsplit_once('/').map_or(folder.as_str(), |(t, _)| t));
    let files: Vec<object_store::ObjectMeta> = store
        .list(Some(&topic_folder))
        .try_collect()
        .await
        .map_err(|e| fail(&e))?;
    let reader = ParquetFiles::new(Arc::clone(&store));
    // queue → offset → record: a file left by a compactor that died before its swap holds
    // the same offsets as the file that replaced it; each offset is kept once.
    let mut by_queue: BTreeMap<i32, BTreeMap<i64, WalRecord>> = BTreeMap::new();
    for file in files.iter().filter(|f| f.location.as_ref().ends_with(".parquet")) {
        let queue: i32 = file
            .location
            .parts()
            .nth_back(1)
            .and_then(|p| p.as_ref().parse().ok())
            .ok_or_else(|| Error::Archive(format!("{}: not in a queue folder", file.location)))?;
        for group in 0.. {
            let rows = match reader.row_group(&file.location, file.size, group).await {
                Ok(rows) => rows,
                Err(e) if e.to_string().contains("no row group") => break,
                Err(e) => return Err(fail(&e)),
            };
            for (offset, record) in rows {
                if (from_ms..to_ms).contains(&record.store_timestamp_ms) {
                    by_queue.entry(queue).or_default().insert(offset, record);
                }
            }
        }
    }
    Ok(by_queue
        .into_iter()
        .flat_map(|(queue, records)| {
            records
                .into_iter()
                .map(move |(offset, record)| ArchivedRecord { queue, offset, record })
        })
        .collect())
}
