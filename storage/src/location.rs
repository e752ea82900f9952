//! Where a block of records lies: what the coordinator's batch index stores and readers
//! resolve through the block cache.

use crate::error::{Error, Result};
use crate::wal::{BlockSpan, Compression};

/// What a block is. Persisted tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BlockFormat {
    /// A block of a WAL object.
    #[default]
    Wal = 0,
    /// A row group of a Parquet file: `offset` is the row group's index, `length` the file's
    /// size.
    Parquet = 1,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockLocation {
    pub object: String,
    pub offset: u64,
    pub length: u64,
    pub uncompressed_length: u64,
    pub crc32c: u32,
    /// `wal::Compression` number (persisted).
    pub compression: i32,
    /// Records in the whole block (what decoding verifies).
    pub block_records: u32,
    pub format: BlockFormat,
}

impl BlockLocation {
    /// The span of a WAL block.
    pub fn span(&self) -> Result<BlockSpan> {
        Ok(BlockSpan {
            offset: self.offset,
            length: self.length,
            uncompressed_length: self.uncompressed_length,
            crc32c: self.crc32c,
            compression: Compression::try_from(self.compression).map_err(|_| Error::Corrupt {
                path: self.object.clone(),
                offset: self.offset,
                reason: format!("unknown compression {}", self.compression),
            })?,
            record_count: self.block_records,
        })
    }

    /// The location of a WAL block just written.
    pub fn wal(object: &str, span: &BlockSpan) -> Self {
        Self {
            object: object.to_string(),
            offset: span.offset,
            length: span.length,
            uncompressed_length: span.uncompressed_length,
            crc32c: span.crc32c,
            compression: span.compression as i32,
            block_records: span.record_count,
            format: BlockFormat::Wal,
        }
    }
}
