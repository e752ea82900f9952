use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_meta::{AutoCreate, Catalog, ManualClock, SqliteCoordinator};
use strata_proto::v2;
use strata_storage::counting::{RequestCounts, counting};
use strata_storage::faults::{Faults, with_faults};
use strata_storage::hooked::Op;
use strata_storage::object_store::memory::InMemory;

use super::*;

struct Fixture {
    ingest: Arc<Ingest>,
    counts: Arc<RequestCounts>,
    faults: Arc<Faults>,
    catalog: Catalog,
    _dir: tempfile::TempDir,
}

async fn fixture(config: IngestConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = SqliteCoordinator::open(&dir.path().join("m.db")).await.unwrap();
    let catalog = Catalog::new(
        Arc::new(coordinator),
        Arc::new(ManualClock::new(1_000)),
        AutoCreate::default(),
    );
    let (store, faults) = with_faults(Arc::new(InMemory::new()));
    let (store, counts) = counting(store);
    let ingest = Arc::new(Ingest::new(catalog.clone(), store, None, config, "node-test"));
    Fixture {
        ingest,
        counts,
        faults,
        catalog,
        _dir: dir,
    }
}

/// Messages committed to all 8 queues of `topic`.
async fn stored(catalog: &Catalog, topic: &str) -> i64 {
    let mut sum = 0;
    for queue in 0..8 {
        let q = strata_meta::model::QueueRef {
            tenant: String::new(),
            topic: topic.into(),
            queue,
        };
        sum += catalog.coordinator().queue_end(&q).await.unwrap();
    }
    sum
}

fn message(topic: &str, body: &str) -> v2::Message {
    v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: String::new(),
            name: topic.into(),
        }),
        system_properties: Some(v2::SystemProperties {
            message_type: v2::MessageType::Normal as i32,
            ..Default::default()
        }),
        body: Bytes::copy_from_slice(body.as_bytes()),
        ..Default::default()
    }
}

#[tokio::test]
async fn messages_within_one_linger_window_become_one_put() {
    let f = fixture(IngestConfig {
        linger: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    // Create the 20 topics first, so the sends themselves arrive within the window.
    for t in 0..20 {
        f.catalog.topic("", &format!("topic-{t}")).await.unwrap();
    }
    let sends = (0..500).map(|i| {
        let ingest = Arc::clone(&f.ingest);
        tokio::spawn(async move {
            let msg = message(&format!("topic-{}", i % 20), &format!("body-{i}"));
            ingest.send("", &[msg]).await.remove(0)
        })
    });
    let receipts: Vec<_> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(
        f.counts.get(Op::Put),
        1,
        "500 messages to 20 topics in one linger window: one PUT"
    );
    let mut total = 0;
    for t in 0..20 {
        total += stored(&f.catalog, &format!("topic-{t}")).await;
    }
    assert_eq!(total, 500);
    assert!(receipts.iter().all(|r| r.message_id.len() == 34));
}

#[tokio::test]
async fn an_idle_send_does_not_wait_and_batch_sends_share_a_flush() {
    let f = fixture(IngestConfig::default()).await;
    let batch: Vec<_> = (0..10).map(|i| message("batch", &format!("m{i}"))).collect();
    let results = f.ingest.send("", &batch).await;
    let offsets: Vec<_> = results.iter().map(|r| r.as_ref().unwrap().offset).collect();
    assert_eq!(f.counts.get(Op::Put), 1);
    // Round-robin over 8 queues: each queue's offsets start at 0.
    assert_eq!(offsets.iter().filter(|o| **o == 0).count(), 8);
    assert_eq!(offsets.iter().filter(|o| **o == 1).count(), 2);
}

#[tokio::test]
async fn a_failed_put_fails_exactly_that_flush() {
    let f = fixture(IngestConfig::default()).await;
    f.faults.fail(Op::Put, 1);
    let failed = f.ingest.send("", &[message("t", "lost"), message("t", "lost2")]).await;
    for r in &failed {
        assert!(matches!(r, Err(Error::Store(_))), "{r:?}");
    }
    let ok = f.ingest.send("", &[message("t", "kept")]).await;
    let receipt = ok[0].as_ref().unwrap();
    assert_eq!(receipt.offset, 0, "nothing of the failed flush was committed");
    assert_eq!(stored(&f.catalog, "t").await, 1);
}

#[tokio::test]
async fn invalid_messages_fail_alone() {
    let f = fixture(IngestConfig {
        max_body_bytes: 10,
        ..Default::default()
    })
    .await;
    let mut fifo = message("t", "x");
    fifo.system_properties.as_mut().unwrap().message_type = v2::MessageType::Fifo as i32;
    let results = f
        .ingest
        .send(
            "",
            &[
                message("t", "ok"),
                message("t", "much too large"),
                message("", "x"),
                fifo,
            ],
        )
        .await;
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::BodyTooLarge { size: 14, max: 10 })));
    assert!(matches!(results[2], Err(Error::IllegalTopic(_))));
    assert!(
        matches!(results[3], Err(Error::TypeMismatch { .. })),
        "{:?}",
        results[3]
    );
}

#[tokio::test]
async fn shutdown_flushes_accepted_sends_then_refuses() {
    let f = fixture(IngestConfig {
        linger: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let ingest = Arc::clone(&f.ingest);
    let pending = tokio::spawn(async move { ingest.send("", &[message("t", "in flight")]).await.remove(0) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.ingest.shutdown().await;
    assert!(
        pending.await.unwrap().is_ok(),
        "an accepted send is flushed on shutdown"
    );
    let after = f.ingest.send("", &[message("t", "late")]).await;
    assert!(matches!(after[0], Err(Error::ShuttingDown)));
}
