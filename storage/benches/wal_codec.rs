//! WAL codec throughput: encoding a flush (one block per queue, zstd level 1) and decoding
//! one block, as ingest and the query cache do. `cargo bench -p strata-storage`.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_storage::Path;
use strata_storage::wal::{WalRecord, WalWriter, decode_block};

/// A flush as `strata bench` makes them: 1 KiB bodies of text-like bytes, 8 queues.
const QUEUES: i32 = 8;
const RECORDS_PER_QUEUE: usize = 32;
const BODY: usize = 1024;

fn records(queue: i32) -> Vec<WalRecord> {
    (0..RECORDS_PER_QUEUE)
        .map(|i| WalRecord {
            message_id: format!("01JB{queue:04}{i:026}"),
            tag: Some("TagA".into()),
            keys: vec![format!("key-{i}")],
            body: Bytes::from(
                format!("{{\"order\":{i},\"queue\":{queue},\"note\":\"{}\"}}", "x".repeat(BODY))
                    .into_bytes()
                    .into_iter()
                    .take(BODY)
                    .collect::<Vec<u8>>(),
            ),
            born_timestamp_ms: 1_700_000_000_000 + i as i64,
            store_timestamp_ms: 1_700_000_000_001 + i as i64,
            ..Default::default()
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let blocks: Vec<Vec<WalRecord>> = (0..QUEUES).map(records).collect();
    let messages = (QUEUES as usize * RECORDS_PER_QUEUE) as u64;
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(messages));
    group.bench_function("encode flush (8 queues x 32 x 1 KiB)", |b| {
        b.iter(|| {
            let mut w = WalWriter::new();
            for (q, recs) in blocks.iter().enumerate() {
                w.add_block("tenant", "topic", q as i32, recs);
            }
            black_box(w.finish("node-1", 7))
        })
    });

    let mut w = WalWriter::new();
    let spans: Vec<_> = blocks
        .iter()
        .enumerate()
        .map(|(q, recs)| w.add_block("tenant", "topic", q as i32, recs))
        .collect();
    let object = w.finish("node-1", 7);
    let path = Path::from("wal/00/bench.wal");
    let span = &spans[0];
    let block = object.slice(span.offset as usize..(span.offset + span.length) as usize);
    group.throughput(Throughput::Elements(RECORDS_PER_QUEUE as u64));
    group.bench_function("decode block (32 x 1 KiB)", |b| {
        b.iter(|| black_box(decode_block(&path, span, block.clone()).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
