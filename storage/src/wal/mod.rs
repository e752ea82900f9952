//! WAL objects (DESIGN §4): one object per ingest flush, holding one block per queue.
//!
//! ```text
//! header  : magic "SWAL" · version u8 · 3 reserved bytes
//! blocks  : one queue's records, each a length-delimited `WalRecord`, compressed as a unit
//! footer  : `WalFooter` protobuf (block index: tenant, topic, queue, count, range, crc32c …)
//! trailer : footer length u32 LE · footer crc32c u32 LE · magic "SWAL"
//! ```
//! A reader that knows a block's [`BlockSpan`] (from the coordinator's batch index) fetches
//! just that range; the footer serves compaction, GC and recovery.

mod decode;
mod encode;

pub use decode::{decode_block, decode_object, read_footer};
pub use encode::WalWriter;
pub use strata_proto::wal::{BlockIndex, Compression, WalFooter, WalRecord};

pub const MAGIC: [u8; 4] = *b"SWAL";
/// Persisted: bump only with a decoder for the old version kept.
pub const VERSION: u8 = 1;
pub const HEADER_LEN: u64 = 8;
pub const TRAILER_LEN: u64 = 12;
/// Largest block a decoder accepts (uncompressed): guards against decompression bombs.
pub const MAX_BLOCK_BYTES: u64 = 256 * 1024 * 1024;

/// Where a block sits in its object, and what is needed to verify and decode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSpan {
    pub offset: u64,
    pub length: u64,
    pub uncompressed_length: u64,
    pub crc32c: u32,
    pub compression: Compression,
    pub record_count: u32,
}

impl From<&BlockIndex> for BlockSpan {
    fn from(b: &BlockIndex) -> Self {
        BlockSpan {
            offset: b.offset,
            length: b.length,
            uncompressed_length: b.uncompressed_length,
            crc32c: b.crc32c,
            compression: b.compression(),
            record_count: b.record_count,
        }
    }
}

#[cfg(test)]
mod tests;
