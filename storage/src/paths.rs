//! Every object path the broker writes is built here (DESIGN §3).

use object_store::path::Path;
use ulid::Ulid;

/// `wal/{hh}/{ulid}.wal`: `hh` is two hex chars of a hash of the id, spreading objects over
/// S3 prefix partitions (each takes ~3,500 PUT/s).
pub fn wal_object(id: Ulid) -> Path {
    let hh = (fnv1a(&id.to_bytes()) & 0xff) as u8;
    Path::from(format!("wal/{hh:02x}/{id}.wal"))
}

/// `data/{tenant}/{topic}/{queue}/{base_offset:020}-{ulid}.parquet` (compacted and archive
/// files; listing a queue's folder lists its files in offset order). The ULID makes every
/// compaction attempt's file distinct, so a stalled attempt can never overwrite the file of
/// one that won.
pub fn data_object(tenant: &str, topic: &str, queue: i32, base_offset: i64, id: Ulid) -> Path {
    Path::from(format!(
        "{}/{base_offset:020}-{id}.parquet",
        data_queue_prefix(tenant, topic, queue)
    ))
}

/// The folder of a queue's Parquet files (the empty tenant is `_default`).
pub fn data_queue_prefix(tenant: &str, topic: &str, queue: i32) -> String {
    let tenant = if tenant.is_empty() { "_default" } else { tenant };
    format!("data/{tenant}/{topic}/{queue}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_paths_spread_and_parse() {
        let p = wal_object(Ulid::from_parts(1, 2));
        let s = p.to_string();
        assert!(s.starts_with("wal/"), "{s}");
        assert!(s.ends_with(".wal"), "{s}");
        assert_eq!(s.split('/').nth(1).map(str::len), Some(2));
        let prefixes: std::collections::HashSet<_> = (0..200u128)
            .map(|i| wal_object(Ulid::from(i)).to_string()[4..6].to_string())
            .collect();
        assert!(prefixes.len() > 50, "hash spreads ids over prefixes");
    }

    #[test]
    fn data_paths_are_zero_padded() {
        let id = Ulid::from_parts(7, 9);
        assert_eq!(
            data_object("", "orders", 3, 42, id).to_string(),
            format!("data/_default/orders/3/00000000000000000042-{id}.parquet")
        );
    }
}
