use bytes::Bytes;
use prost::Message;

use super::{BlockIndex, BlockSpan, Compression, HEADER_LEN, MAGIC, VERSION, WalFooter, WalRecord};

/// Blocks smaller than this are stored uncompressed: zstd's frame overhead would eat the gain.
const MIN_COMPRESS_BYTES: usize = 256;
/// zstd level 1: ~400 MB/s per core on text-like bodies; higher levels cost CPU on the hot path.
const ZSTD_LEVEL: i32 = 1;

/// Builds one WAL object in memory.
#[derive(Debug)]
pub struct WalWriter {
    buf: Vec<u8>,
    blocks: Vec<BlockIndex>,
}

impl Default for WalWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl WalWriter {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(&MAGIC);
        buf.push(VERSION);
        buf.extend_from_slice(&[0; 3]);
        debug_assert_eq!(buf.len() as u64, HEADER_LEN);
        Self {
            buf,
            blocks: Vec::new(),
        }
    }

    /// Appends one queue's records as a block and returns where it lies.
    pub fn add_block(&mut self, tenant: &str, topic: &str, queue_id: i32, records: &[WalRecord]) -> BlockSpan {
        let mut raw = Vec::with_capacity(records.iter().map(|r| r.encoded_len() + 5).sum());
        let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
        for r in records {
            // Encoding into a Vec cannot fail: it grows as needed.
            let _ = r.encode_length_delimited(&mut raw);
            min_ts = min_ts.min(r.store_timestamp_ms);
            max_ts = max_ts.max(r.store_timestamp_ms);
        }
        let (stored, compression) = compress(&raw);
        let stored: &[u8] = stored.as_deref().unwrap_or(&raw);
        let index = BlockIndex {
            tenant: tenant.to_string(),
            topic: topic.to_string(),
            queue_id,
            record_count: records.len() as u32,
            offset: self.buf.len() as u64,
            length: stored.len() as u64,
            uncompressed_length: raw.len() as u64,
            min_timestamp_ms: if records.is_empty() { 0 } else { min_ts },
            max_timestamp_ms: if records.is_empty() { 0 } else { max_ts },
            crc32c: crc32c::crc32c(stored),
            compression: compression as i32,
        };
        self.buf.extend_from_slice(stored);
        let span = BlockSpan::from(&index);
        self.blocks.push(index);
        span
    }

    /// Bytes written so far (blocks and header).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Appends the footer and trailer; returns the object's bytes.
    pub fn finish(mut self, writer: &str, created_ms: i64) -> Bytes {
        let footer = WalFooter {
            version: u32::from(VERSION),
            blocks: self.blocks,
            writer: writer.to_string(),
            created_ms,
        }
        .encode_to_vec();
        self.buf.extend_from_slice(&footer);
        self.buf.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&crc32c::crc32c(&footer).to_le_bytes());
        self.buf.extend_from_slice(&MAGIC);
        Bytes::from(self.buf)
    }
}

/// zstd when it pays; `None` means store `raw` as is.
fn compress(raw: &[u8]) -> (Option<Vec<u8>>, Compression) {
    if raw.len() < MIN_COMPRESS_BYTES {
        return (None, Compression::None);
    }
    match zstd::bulk::compress(raw, ZSTD_LEVEL) {
        Ok(c) if c.len() < raw.len() => (Some(c), Compression::Zstd),
        _ => (None, Compression::None),
    }
}
