//! Receipt handles: sealing one per delivered message and opening one per ack, and the
//! refusal of a tampered handle. `cargo bench -p strata-query --bench receipts`.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use strata_meta::model::{Receipt, Subscription};
use strata_query::ReceiptCodec;

fn receipts(c: &mut Criterion) {
    let codec = ReceiptCodec::new(vec![7; 32]);
    let receipt = Receipt {
        subscription: Subscription {
            tenant: "tenant-a".into(),
            group: "order-processors".into(),
            topic: "orders".into(),
        },
        queue: 3,
        offset: 1_234_567,
        seq: 2,
    };
    let handle = codec.encode(&receipt);
    let mut tampered = handle.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let mut group = c.benchmark_group("receipt");
    group.bench_function("encode", |b| b.iter(|| black_box(codec.encode(black_box(&receipt)))));
    group.bench_function("decode", |b| {
        b.iter(|| black_box(codec.decode(black_box(&handle)).unwrap()))
    });
    group.bench_function("reject tampered", |b| {
        b.iter(|| black_box(codec.decode(black_box(&tampered)).unwrap_err()))
    });
    group.finish();
}

criterion_group!(benches, receipts);
criterion_main!(benches);
