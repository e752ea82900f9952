use bytes::{Buf, Bytes};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use prost::Message;

use super::{BlockSpan, Compression, HEADER_LEN, MAGIC, MAX_BLOCK_BYTES, TRAILER_LEN, VERSION, WalFooter, WalRecord};
use crate::error::{Error, Result};

/// Verifies and decodes one block. `data` is exactly the block's bytes.
pub fn decode_block(path: &Path, span: &BlockSpan, data: Bytes) -> Result<Vec<WalRecord>> {
    let at = span.offset;
    if data.len() as u64 != span.length {
        return Err(Error::corrupt(
            path,
            at,
            format!("block is {} bytes, index says {}", data.len(), span.length),
        ));
    }
    let crc = crc32c::crc32c(&data);
    if crc != span.crc32c {
        return Err(Error::corrupt(
            path,
            at,
            format!("block crc32c {crc:08x} != {:08x}", span.crc32c),
        ));
    }
    if span.uncompressed_length > MAX_BLOCK_BYTES {
        return Err(Error::corrupt(path, at, "block larger than the decoder accepts"));
    }
    let mut raw = match span.compression {
        Compression::None => data,
        Compression::Zstd => zstd::bulk::decompress(&data, span.uncompressed_length as usize)
            .map(Bytes::from)
            .map_err(|e| Error::corrupt(path, at, format!("zstd: {e}")))?,
    };
    if raw.len() as u64 != span.uncompressed_length {
        return Err(Error::corrupt(path, at, "uncompressed length mismatch"));
    }
    let mut records = Vec::with_capacity(span.record_count as usize);
    while raw.has_remaining() {
        let pos = span.uncompressed_length - raw.remaining() as u64;
        let record = WalRecord::decode_length_delimited(&mut raw)
            .map_err(|e| Error::corrupt(path, at, format!("record at block byte {pos}: {e}")))?;
        records.push(record);
    }
    if records.len() != span.record_count as usize {
        return Err(Error::corrupt(
            path,
            at,
            format!("{} records, index says {}", records.len(), span.record_count),
        ));
    }
    Ok(records)
}

/// Decodes the footer from the object's last bytes (`tail` ends where the object ends;
/// `object_len` is the whole object's size).
fn decode_footer(path: &Path, tail: &[u8], object_len: u64) -> Result<std::result::Result<WalFooter, u64>> {
    let n = tail.len();
    if (n as u64) < TRAILER_LEN || object_len < HEADER_LEN + TRAILER_LEN {
        return Err(Error::corrupt(path, 0, "object too short for a WAL trailer"));
    }
    let trailer = &tail[n - TRAILER_LEN as usize..];
    let trailer_at = object_len - TRAILER_LEN;
    if trailer[8..12] != MAGIC {
        return Err(Error::corrupt(path, trailer_at, "bad trailer magic"));
    }
    let footer_len = u64::from(u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]));
    let footer_crc = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if footer_len + TRAILER_LEN + HEADER_LEN > object_len {
        return Err(Error::corrupt(path, trailer_at, "footer length exceeds the object"));
    }
    if footer_len + TRAILER_LEN > n as u64 {
        // The caller fetched too little: tell it how much the footer needs.
        return Ok(Err(footer_len + TRAILER_LEN));
    }
    let footer_at = object_len - TRAILER_LEN - footer_len;
    let footer = &tail[n - (TRAILER_LEN + footer_len) as usize..n - TRAILER_LEN as usize];
    if crc32c::crc32c(footer) != footer_crc {
        return Err(Error::corrupt(path, footer_at, "footer crc32c mismatch"));
    }
    let footer = WalFooter::decode(footer).map_err(|e| Error::corrupt(path, footer_at, format!("footer: {e}")))?;
    if footer.version != u32::from(VERSION) {
        return Err(Error::corrupt(
            path,
            footer_at,
            format!("unknown WAL version {}", footer.version),
        ));
    }
    for b in &footer.blocks {
        if b.offset < HEADER_LEN || b.offset.saturating_add(b.length) > footer_at {
            return Err(Error::corrupt(path, footer_at, "block index points outside the blocks"));
        }
    }
    Ok(Ok(footer))
}

/// Decodes a whole WAL object: its footer and every block's records.
pub fn decode_object(path: &Path, object: &Bytes) -> Result<(WalFooter, Vec<Vec<WalRecord>>)> {
    if object.len() < (HEADER_LEN + TRAILER_LEN) as usize || object[..4] != MAGIC {
        return Err(Error::corrupt(path, 0, "bad header magic"));
    }
    if object[4] != VERSION {
        return Err(Error::corrupt(path, 4, format!("unknown WAL version {}", object[4])));
    }
    if object[5..8] != [0; 3] {
        return Err(Error::corrupt(path, 5, "reserved header bytes are not zero"));
    }
    let footer = decode_footer(path, object, object.len() as u64)?
        .map_err(|_| Error::corrupt(path, 0, "footer length exceeds the object"))?;
    let blocks = footer
        .blocks
        .iter()
        .map(|b| {
            let span = BlockSpan::from(b);
            let data = object.slice(b.offset as usize..(b.offset + b.length) as usize);
            decode_block(path, &span, data)
        })
        .collect::<Result<_>>()?;
    Ok((footer, blocks))
}

/// Reads just the footer of a stored WAL object (one suffix GET, two if the footer is large).
pub async fn read_footer(store: &dyn ObjectStore, path: &Path) -> Result<WalFooter> {
    const GUESS: u64 = 64 * 1024;
    let mut want = GUESS;
    loop {
        let opts = GetOptions::new().with_range(Some(GetRange::Suffix(want)));
        let got = store.get_opts(path, opts).await.map_err(|e| Error::store(path, e))?;
        let object_len = got.meta.size;
        let tail = got.bytes().await.map_err(|e| Error::store(path, e))?;
        match decode_footer(path, &tail, object_len)? {
            Ok(footer) => return Ok(footer),
            Err(needed) if needed > want => want = needed,
            Err(_) => return Err(Error::corrupt(path, 0, "footer does not fit the object")),
        }
    }
}
