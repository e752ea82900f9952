//! Subscription filters, evaluated once per message a receive examines: tag sets and SQL92
//! on properties, plus parsing an expression. `cargo bench -p strata-query --bench filters`.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use strata_proto::wal::WalRecord;
use strata_query::{Filter, sql92};

const SQL: &str = "(region = 'eu' OR region = 'us') AND amount > 100 AND TAGS IN ('paid', 'refund') \
                   AND customer IS NOT NULL AND sku STARTSWITH 'SKU-'";

fn record(tag: &str, amount: u32) -> WalRecord {
    WalRecord {
        tag: Some(tag.into()),
        user_properties: [
            ("region", "eu".to_string()),
            ("amount", amount.to_string()),
            ("customer", "c-42".to_string()),
            ("sku", "SKU-0001".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..Default::default()
    }
}

fn filters(c: &mut Criterion) {
    let tags = Filter::parse_tags("paid || refund || cancelled").unwrap();
    let sql = Filter::Sql(sql92::parse(SQL).unwrap());
    let (hit, miss) = (record("paid", 250), record("created", 50));

    let mut group = c.benchmark_group("filter");
    group.bench_function("tags match", |b| b.iter(|| black_box(tags.matches(black_box(&hit)))));
    group.bench_function("tags miss", |b| b.iter(|| black_box(tags.matches(black_box(&miss)))));
    group.bench_function("sql92 match", |b| b.iter(|| black_box(sql.matches(black_box(&hit)))));
    group.bench_function("sql92 miss", |b| b.iter(|| black_box(sql.matches(black_box(&miss)))));
    group.bench_function("sql92 parse", |b| {
        b.iter(|| black_box(sql92::parse(black_box(SQL)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, filters);
criterion_main!(benches);
