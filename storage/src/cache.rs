//! The read cache tier: decoded WAL blocks in a foyer hybrid cache (memory, then local disk,
//! then one range GET of the object store). Ingest inserts the blocks it just wrote, so fresh
//! reads on the same node never touch the bucket.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use foyer::{
    BlockEngineConfig, Code, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder, PsyncIoEngineConfig,
};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use prost::Message;
use serde::Deserialize;
use tracing::instrument;

use crate::error::{Error, Result};
use crate::location::{BlockFormat, BlockLocation};
use crate::parquet::ParquetFiles;
use crate::wal::{BlockSpan, WalRecord, decode_block};

/// Cache sizes. The memory tier holds decoded records; the disk tier their encoded form.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Memory tier in bytes (default 256 MiB). Each hit here saves one GET (~$0.0004/1,000 on
    /// S3 Standard) and its latency (~10–30 ms on S3, ~1 ms on a loopback server).
    pub memory_bytes: usize,
    /// Disk tier folder; `None` keeps the cache in memory only.
    pub disk_dir: Option<PathBuf>,
    /// Disk tier in bytes (default 1 GiB).
    pub disk_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            disk_dir: None,
            disk_bytes: 1 << 30,
        }
    }
}

/// Blocks of at least this many (compressed) bytes are decoded on a blocking thread
/// (~1 ms of zstd and protobuf work per 256 KiB); smaller ones cost less than the hand-off.
const BLOCKING_DECODE_BYTES: usize = 256 << 10;

/// Largest entry the disk tier stores (one foyer block): bigger blocks stay in memory only.
const DISK_BLOCK_BYTES: usize = 16 << 20;

/// Identifies a block: its object and byte offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey {
    pub object: String,
    pub offset: u64,
}

impl Code for BlockKey {
    fn encode(&self, writer: &mut impl Write) -> foyer::Result<()> {
        Code::encode(&self.object, writer)?;
        Code::encode(&self.offset, writer)
    }

    fn decode(reader: &mut impl Read) -> foyer::Result<Self> {
        Ok(Self {
            object: <String as Code>::decode(reader)?,
            offset: <u64 as Code>::decode(reader)?,
        })
    }

    fn estimated_size(&self) -> usize {
        self.object.len() + 16
    }
}

/// A decoded block: the records of one queue from one flush, shared by every reader (a hit
/// copies no record; bodies are slices of the block's decompressed bytes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    pub records: Arc<Vec<WalRecord>>,
}

/// Memory a decoded record holds beyond its encoded bytes (strings, the property map).
const RECORD_OVERHEAD: usize = 192;

impl Block {
    fn new(records: Vec<WalRecord>) -> Self {
        Self {
            records: Arc::new(records),
        }
    }

    fn weight(&self) -> usize {
        self.records.iter().map(|r| r.encoded_len() + RECORD_OVERHEAD).sum()
    }
}

impl Code for Block {
    fn encode(&self, writer: &mut impl Write) -> foyer::Result<()> {
        let mut buf = Vec::with_capacity(self.estimated_size());
        for r in self.records.iter() {
            let _ = r.encode_length_delimited(&mut buf);
        }
        Code::encode(&Bytes::from(buf), writer)
    }

    fn decode(reader: &mut impl Read) -> foyer::Result<Self> {
        let mut buf = <Bytes as Code>::decode(reader)?;
        let mut records = Vec::new();
        while !buf.is_empty() {
            let r = WalRecord::decode_length_delimited(&mut buf)
                .map_err(|e| foyer::Error::new(foyer::ErrorKind::Parse, e.to_string()))?;
            records.push(r);
        }
        Ok(Self::new(records))
    }

    fn estimated_size(&self) -> usize {
        self.records.iter().map(|r| r.encoded_len() + 5).sum::<usize>() + 8
    }
}

/// Reads WAL blocks and Parquet row groups through the cache.
#[derive(Clone)]
pub struct BlockCache {
    store: Arc<dyn ObjectStore>,
    cache: HybridCache<BlockKey, Block>,
    parquet: ParquetFiles,
    counts: Arc<CacheCounts>,
}

/// Lookups of the cache and the misses among them (each miss one GET), since the start.
#[derive(Debug, Default)]
pub struct CacheCounts {
    pub lookups: AtomicU64,
    pub misses: AtomicU64,
}

impl CacheCounts {
    /// Hits over lookups (1 before the first lookup).
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.lookups.load(Ordering::Relaxed);
        if lookups == 0 {
            return 1.0;
        }
        1.0 - self.misses.load(Ordering::Relaxed).min(lookups) as f64 / lookups as f64
    }
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("store", &self.store.to_string())
            .finish()
    }
}

impl BlockCache {
    pub async fn open(store: Arc<dyn ObjectStore>, config: &CacheConfig) -> Result<Self> {
        let builder = HybridCacheBuilder::new()
            .with_name("strata-blocks")
            .memory(config.memory_bytes)
            .with_weighter(|_k: &BlockKey, v: &Block| v.weight())
            .storage();
        let cache = match &config.disk_dir {
            None => builder.build().await,
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Cache(format!("cannot create {}: {e}", dir.display())))?;
                let device = FsDeviceBuilder::new(dir)
                    .with_capacity(config.disk_bytes.max(DISK_BLOCK_BYTES * 2))
                    .build()
                    .map_err(|e| Error::Cache(e.to_string()))?;
                // Entries evicted to disk wait in write buffers: 1/16 of the memory tier (6 MiB
                // for 96 MiB), and as much again queued, instead of foyer's fixed 16 + 32 MiB.
                let buffers = (config.memory_bytes / 16).clamp(1 << 20, 16 << 20);
                builder
                    .with_io_engine_config(PsyncIoEngineConfig::new())
                    .with_engine_config(
                        BlockEngineConfig::new(device)
                            .with_block_size(DISK_BLOCK_BYTES)
                            .with_buffer_pool_size(buffers)
                            .with_submit_queue_size_threshold(buffers),
                    )
                    .build()
                    .await
            }
        }
        .map_err(|e| Error::Cache(e.to_string()))?;
        let parquet = ParquetFiles::new(Arc::clone(&store));
        Ok(Self {
            store,
            cache,
            parquet,
            counts: Arc::default(),
        })
    }

    pub fn counts(&self) -> &Arc<CacheCounts> {
        &self.counts
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Flushes the disk tier and stops its tasks.
    pub async fn close(&self) {
        if let Err(e) = self.cache.close().await {
            tracing::warn!(error = %e, "closing the block cache");
        }
    }

    /// Puts a block just written into the cache.
    pub fn insert(&self, object: &Path, span: &BlockSpan, records: Vec<WalRecord>) {
        self.cache.insert(key(object, span), Block::new(records));
    }

    /// The records of a block: from the cache, or one range GET (concurrent misses of the
    /// same block share one GET). Decompression and decoding run off the async runtime.
    #[instrument(skip_all, fields(object = %object, offset = span.offset, bytes = span.length))]
    pub async fn records(&self, object: &Path, span: &BlockSpan) -> Result<Arc<Vec<WalRecord>>> {
        let store = Arc::clone(&self.store);
        let (path, span_copy) = (object.clone(), *span);
        self.counts.lookups.fetch_add(1, Ordering::Relaxed);
        let counts = Arc::clone(&self.counts);
        let entry = self
            .cache
            .get_or_fetch(&key(object, span), move || async move {
                counts.misses.fetch_add(1, Ordering::Relaxed);
                let range = GetRange::Bounded(span_copy.offset..span_copy.offset + span_copy.length);
                let got = store
                    .get_opts(&path, GetOptions::new().with_range(Some(range)))
                    .await
                    .map_err(|e| Error::store(&path, e))?;
                let data = got.bytes().await.map_err(|e| Error::store(&path, e))?;
                if data.len() < BLOCKING_DECODE_BYTES {
                    return decode_block(&path, &span_copy, data).map(Block::new);
                }
                tokio::task::spawn_blocking(move || decode_block(&path, &span_copy, data).map(Block::new))
                    .await
                    .map_err(|e| Error::Cache(format!("block decoding stopped: {e}")))?
            })
            .await
            .map_err(from_foyer)?;
        Ok(Arc::clone(&entry.value().records))
    }
}

impl BlockCache {
    /// Every record of the block at `l` (a WAL block or a Parquet row group).
    pub async fn block(&self, l: &BlockLocation) -> Result<Arc<Vec<WalRecord>>> {
        let path = Path::from(l.object.as_str());
        let records = match l.format {
            BlockFormat::Wal => self.records(&path, &l.span()?).await?,
            BlockFormat::Parquet => self.row_group(&path, l.length, l.offset as u32).await?,
        };
        if records.len() != l.block_records as usize {
            return Err(Error::corrupt(
                &path,
                l.offset,
                format!("{} records, the index says {}", records.len(), l.block_records),
            ));
        }
        Ok(records)
    }

    /// Records `first..first + count` of the block at `l`: a batch may reference part of a
    /// block (a fired timer, a dead letter). An index pointing past the block is corruption.
    /// Only the records asked for are copied.
    pub async fn slice(&self, l: &BlockLocation, first: u32, count: u32) -> Result<Vec<WalRecord>> {
        let records = self.block(l).await?;
        let (first, last) = (first as usize, first as usize + count as usize);
        match records.get(first..last) {
            Some(part) => Ok(part.to_vec()),
            None => Err(Error::corrupt(
                &Path::from(l.object.as_str()),
                l.offset,
                format!("{} records, the index references {first}..{last}", records.len()),
            )),
        }
    }

    /// The records of one row group of a Parquet file (`file_size` bytes): from the cache,
    /// or its column chunks fetched with range GETs.
    #[instrument(skip_all, fields(object = %object, row_group))]
    pub async fn row_group(&self, object: &Path, file_size: u64, row_group: u32) -> Result<Arc<Vec<WalRecord>>> {
        let files = self.parquet.clone();
        let path = object.clone();
        let key = BlockKey {
            object: object.to_string(),
            offset: u64::from(row_group),
        };
        self.counts.lookups.fetch_add(1, Ordering::Relaxed);
        let counts = Arc::clone(&self.counts);
        let entry = self
            .cache
            .get_or_fetch(&key, move || async move {
                counts.misses.fetch_add(1, Ordering::Relaxed);
                let rows = files.row_group(&path, file_size, row_group as usize).await?;
                Ok::<_, Error>(Block::new(rows.into_iter().map(|(_, r)| r).collect()))
            })
            .await
            .map_err(from_foyer)?;
        Ok(Arc::clone(&entry.value().records))
    }
}

fn key(object: &Path, span: &BlockSpan) -> BlockKey {
    BlockKey {
        object: object.to_string(),
        offset: span.offset,
    }
}

fn from_foyer(e: foyer::Error) -> Error {
    match e.downcast_ref::<Error>() {
        Some(Error::Corrupt { path, offset, reason }) => Error::Corrupt {
            path: path.clone(),
            offset: *offset,
            reason: reason.clone(),
        },
        Some(Error::Missing { path }) => Error::Missing { path: path.clone() },
        Some(other) => Error::Cache(other.to_string()),
        None => Error::Cache(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting::counting;
    use crate::hooked::Op;
    use crate::wal::WalWriter;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    fn records(n: usize) -> Vec<WalRecord> {
        (0..n)
            .map(|i| WalRecord {
                message_id: format!("m{i}"),
                body: Bytes::from(vec![i as u8; 100]),
                ..Default::default()
            })
            .collect()
    }

    #[tokio::test]
    async fn misses_fetch_once_then_hit() {
        let (store, counts) = counting(Arc::new(InMemory::new()));
        let mut w = WalWriter::new();
        let span = w.add_block("", "t", 0, &records(10));
        let path = Path::from("wal/00/a.wal");
        store.put(&path, PutPayload::from(w.finish("n", 0))).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let config = CacheConfig {
            memory_bytes: 1 << 20,
            disk_dir: Some(dir.path().to_path_buf()),
            disk_bytes: 64 << 20,
        };
        let cache = BlockCache::open(store, &config).await.unwrap();
        for _ in 0..3 {
            assert_eq!(*cache.records(&path, &span).await.unwrap(), records(10));
        }
        assert_eq!(counts.get(Op::Get), 1);
    }

    #[tokio::test]
    async fn inserted_blocks_need_no_get_and_corrupt_blocks_are_errors() {
        let (store, counts) = counting(Arc::new(InMemory::new()));
        let cache = BlockCache::open(Arc::clone(&store), &CacheConfig::default())
            .await
            .unwrap();
        let mut w = WalWriter::new();
        let span = w.add_block("", "t", 0, &records(3));
        let path = Path::from("wal/00/b.wal");
        let mut object = w.finish("n", 0).to_vec();
        cache.insert(&path, &span, records(3));
        assert_eq!(*cache.records(&path, &span).await.unwrap(), records(3));
        assert_eq!(counts.get(Op::Get), 0);

        object[span.offset as usize + 3] ^= 0xff;
        store.put(&path, PutPayload::from(object)).await.unwrap();
        let other = BlockSpan {
            offset: span.offset,
            ..span
        };
        let fresh = BlockCache::open(store, &CacheConfig::default()).await.unwrap();
        let err = fresh.records(&path, &other).await.unwrap_err();
        assert!(err.is_corrupt(), "{err}");
        assert!(err.to_string().contains("wal/00/b.wal"), "{err}");
    }

    #[test]
    fn block_code_round_trips() {
        let block = Block::new(records(4));
        let mut buf = Vec::new();
        Code::encode(&block, &mut buf).unwrap();
        assert_eq!(<Block as Code>::decode(&mut buf.as_slice()).unwrap(), block);
    }
}
