use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use proptest::prelude::*;

use super::*;

fn record_strategy() -> impl Strategy<Value = WalRecord> {
    (
        "[A-F0-9]{0,34}",
        proptest::option::of("[a-zA-Z0-9_]{0,12}"),
        proptest::collection::vec("[a-z]{0,8}", 0..3),
        proptest::collection::hash_map("[a-z]{1,6}", "[ -~]{0,10}", 0..4),
        proptest::collection::vec(any::<u8>(), 0..600),
        any::<i64>(),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(id, tag, keys, props, body, ts, delay)| WalRecord {
            message_id: id,
            tag,
            keys,
            user_properties: props,
            body: Bytes::from(body),
            born_timestamp_ms: ts / 2,
            store_timestamp_ms: ts,
            delivery_timestamp_ms: delay,
            ..Default::default()
        })
}

fn blocks_strategy() -> impl Strategy<Value = Vec<Vec<WalRecord>>> {
    proptest::collection::vec(proptest::collection::vec(record_strategy(), 0..6), 0..5)
}

fn build(blocks: &[Vec<WalRecord>]) -> (Bytes, Vec<BlockSpan>) {
    let mut w = WalWriter::new();
    let spans = blocks
        .iter()
        .enumerate()
        .map(|(q, recs)| w.add_block("t", "topic", q as i32, recs))
        .collect();
    (w.finish("node-1", 7), spans)
}

proptest! {
    #[test]
    fn round_trip(blocks in blocks_strategy()) {
        let (object, spans) = build(&blocks);
        let path = Path::from("wal/00/x.wal");
        let (footer, decoded) = decode_object(&path, &object).unwrap();
        prop_assert_eq!(&decoded, &blocks);
        prop_assert_eq!(footer.blocks.len(), blocks.len());
        prop_assert_eq!(footer.writer.as_str(), "node-1");
        for (span, recs) in spans.iter().zip(&blocks) {
            let data = object.slice(span.offset as usize..(span.offset + span.length) as usize);
            prop_assert_eq!(&decode_block(&path, span, data).unwrap(), recs);
        }
    }

    #[test]
    fn any_bit_flip_is_an_error_naming_the_object(blocks in blocks_strategy(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (object, _) = build(&blocks);
        let mut bad = object.to_vec();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        let path = Path::from("wal/ab/flipped.wal");
        let err = decode_object(&path, &Bytes::from(bad)).unwrap_err();
        prop_assert!(err.to_string().contains("wal/ab/flipped.wal"), "{}", err);
        prop_assert!(err.is_corrupt());
    }

    #[test]
    fn any_truncation_is_an_error(blocks in blocks_strategy(), cut in any::<prop::sample::Index>()) {
        let (object, _) = build(&blocks);
        let keep = cut.index(object.len());
        let path = Path::from("wal/cd/short.wal");
        let err = decode_object(&path, &object.slice(..keep)).unwrap_err();
        prop_assert!(err.to_string().contains("wal/cd/short.wal"), "{}", err);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let path = Path::from("wal/ef/garbage.wal");
        let _ = decode_object(&path, &Bytes::from(bytes.clone()));
        let span = BlockSpan { offset: 8, length: bytes.len() as u64, uncompressed_length: 4096,
            crc32c: crc32c::crc32c(&bytes), compression: Compression::Zstd, record_count: 3 };
        let _ = decode_block(&path, &span, Bytes::from(bytes));
    }
}

#[test]
fn block_with_wrong_length_or_count_is_rejected() {
    let recs = vec![WalRecord {
        message_id: "A".into(),
        ..Default::default()
    }];
    let (object, spans) = build(&[recs]);
    let path = Path::from("p");
    let span = spans[0];
    let data = object.slice(span.offset as usize..(span.offset + span.length) as usize);
    let wrong_count = BlockSpan {
        record_count: 2,
        ..span
    };
    assert!(decode_block(&path, &wrong_count, data.clone()).is_err());
    assert!(decode_block(&path, &span, data.slice(1..)).is_err());
}

#[test]
fn large_compressible_blocks_use_zstd() {
    let recs: Vec<_> = (0..100)
        .map(|i| WalRecord {
            message_id: format!("{i}"),
            body: Bytes::from(vec![b'a'; 1000]),
            ..Default::default()
        })
        .collect();
    let mut w = WalWriter::new();
    let span = w.add_block("", "t", 0, &recs);
    assert_eq!(span.compression, Compression::Zstd);
    assert!(span.length < span.uncompressed_length / 10);
}

#[tokio::test]
async fn footer_is_read_with_a_suffix_get() {
    let big: Vec<_> = (0..3000)
        .map(|i| {
            vec![WalRecord {
                message_id: format!("{i:040}"),
                ..Default::default()
            }]
        })
        .collect();
    let (object, _) = build(&big);
    let store = InMemory::new();
    let path = Path::from("wal/00/big.wal");
    store.put(&path, PutPayload::from(object)).await.unwrap();
    let footer = read_footer(&store, &path).await.unwrap();
    assert_eq!(footer.blocks.len(), 3000);

    store
        .put(&path, PutPayload::from_static(b"not a wal object"))
        .await
        .unwrap();
    let err = read_footer(&store, &path).await.unwrap_err();
    assert!(err.to_string().contains("wal/00/big.wal"), "{err}");
}
