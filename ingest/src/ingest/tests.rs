use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_meta::faults::{CoordinatorFaults, FaultyCoordinator};
use strata_meta::model::Roles;
use strata_meta::{AutoCreate, Catalog, ManualClock, Membership, SqlCoordinator};
use strata_proto::v2;
use strata_storage::counting::{RequestCounts, counting};
use strata_storage::faults::{Faults, with_faults};
use strata_storage::hooked::Op;
use strata_storage::object_store::memory::InMemory;
use strata_storage::object_store::{ObjectStore, ObjectStoreExt};

use super::*;

struct Fixture {
    ingest: Arc<Ingest>,
    counts: Arc<RequestCounts>,
    faults: Arc<Faults>,
    coordinator_faults: Arc<CoordinatorFaults>,
    catalog: Catalog,
    store: Arc<dyn ObjectStore>,
    _dir: tempfile::TempDir,
}

async fn fixture(config: IngestConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sql = SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap();
    let (coordinator, coordinator_faults) = FaultyCoordinator::wrap(Arc::new(sql));
    let clock = Arc::new(ManualClock::new(1_000));
    let catalog = Catalog::new(coordinator.clone(), clock.clone(), AutoCreate::default());
    let membership = Membership::join(coordinator, clock, "node-test", Roles::INGEST, "h:1", None)
        .await
        .unwrap();
    let (store, faults) = with_faults(Arc::new(InMemory::new()));
    let (store, counts) = counting(store);
    let ingest = Arc::new(
        Ingest::new(catalog.clone(), store.clone(), None, config, membership, None)
            .await
            .unwrap(),
    );
    Fixture {
        ingest,
        counts,
        faults,
        coordinator_faults,
        catalog,
        store,
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
    assert_eq!(offsets.iter().filter(|o| **o == Some(0)).count(), 8);
    assert_eq!(offsets.iter().filter(|o| **o == Some(1)).count(), 2);
}

#[tokio::test]
async fn a_retried_send_returns_the_original_receipt_and_stores_nothing_again() {
    let f = fixture(IngestConfig::default()).await;
    let mut first = message("orders", "once");
    first.system_properties.as_mut().unwrap().message_id = "01AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    let original = f.ingest.send("", std::slice::from_ref(&first)).await.remove(0).unwrap();
    // The reply was lost; the producer sends the same message (same id) again, twice at once.
    let again = f.ingest.send("", &[first.clone(), first.clone()]).await;
    for r in again {
        let r = r.unwrap();
        assert_eq!(
            (r.message_id.as_str(), r.offset),
            (original.message_id.as_str(), original.offset)
        );
    }
    assert_eq!(stored(&f.catalog, "orders").await, 1, "stored once");
    // Another id is stored as usual; twice in one flush, once.
    let mut other = first.clone();
    other.system_properties.as_mut().unwrap().message_id = "01BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB".into();
    let both = f.ingest.send("", &[other.clone(), other]).await;
    assert_eq!(both[0].as_ref().unwrap().offset, both[1].as_ref().unwrap().offset);
    assert_eq!(stored(&f.catalog, "orders").await, 2);
}

#[tokio::test]
async fn without_an_index_window_every_send_is_stored() {
    let f = fixture(IngestConfig {
        index_window: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let mut m = message("orders", "twice");
    m.system_properties.as_mut().unwrap().message_id = "01CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC".into();
    f.ingest.send("", std::slice::from_ref(&m)).await.remove(0).unwrap();
    f.ingest.send("", &[m]).await.remove(0).unwrap();
    assert_eq!(stored(&f.catalog, "orders").await, 2);
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
    assert_eq!(receipt.offset, Some(0), "nothing of the failed flush was committed");
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
    // Synchronised on the send being accepted (it lingers 200 ms before its flush).
    while f.ingest.inflight_bytes() == 0 {
        tokio::task::yield_now().await;
    }
    f.ingest.shutdown().await;
    assert!(
        pending.await.unwrap().is_ok(),
        "an accepted send is flushed on shutdown"
    );
    let after = f.ingest.send("", &[message("t", "late")]).await;
    assert!(matches!(after[0], Err(Error::ShuttingDown)));
}

#[tokio::test]
async fn a_failed_commit_fails_the_flush_and_leaves_an_orphan() {
    let f = fixture(IngestConfig::default()).await;
    f.coordinator_faults.fail_commits(1);
    let failed = f.ingest.send("", &[message("t", "uncommitted")]).await;
    assert!(matches!(failed[0], Err(Error::Commit(_))), "{:?}", failed[0]);
    assert_eq!(f.counts.get(Op::Put), 1, "the object was stored");
    assert_eq!(stored(&f.catalog, "t").await, 0, "but nothing was committed");
    let objects: Vec<String> = futures::TryStreamExt::try_collect::<Vec<_>>(f.store.list(None))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    assert_eq!(objects.len(), 1);
    let committed = f.catalog.coordinator().committed_objects(&objects).await.unwrap();
    assert!(committed.is_empty(), "the object is an orphan, for GC");
    assert!(f.ingest.send("", &[message("t", "next")]).await[0].is_ok());
}

/// Defect: a COMMIT whose connection dropped may have succeeded; answering "not stored" made
/// the producer's retry a duplicate. The same flush is committed again and answered once.
#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_retried_not_duplicated() {
    let f = fixture(IngestConfig::default()).await;
    f.coordinator_faults.lose_commit_replies(1);
    let sent = f.ingest.send("", &[message("t", "once")]).await;
    assert!(sent[0].is_ok(), "{:?}", sent[0]);
    assert_eq!(f.counts.get(Op::Put), 1);
    assert_eq!(stored(&f.catalog, "t").await, 1, "stored once, not twice");
}

/// Defect: orphan collection checked "committed?" then deleted, so a commit landing in
/// between referenced a deleted object. Collection claims the object first; the late
/// commit fails and the producer hears it.
#[tokio::test]
async fn a_commit_later_than_orphan_collection_fails_and_stores_nothing() {
    let f = fixture(IngestConfig::default()).await;
    f.catalog.topic("", "t").await.unwrap();
    f.coordinator_faults.pause_commits();
    let send = {
        let ingest = Arc::clone(&f.ingest);
        tokio::spawn(async move { ingest.send("", &[message("t", "late")]).await.remove(0) })
    };
    f.coordinator_faults.commit_held_back().await;
    // The compactor's orphan collection runs while the commit is held back.
    let objects: Vec<String> = futures::TryStreamExt::try_collect::<Vec<_>>(f.store.list(None))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    let claimed = f.catalog.coordinator().claim_orphans(&objects, 1_000).await.unwrap();
    assert_eq!(claimed, objects, "the uploaded, uncommitted object is an orphan");
    f.store.delete(&objects[0].as_str().into()).await.unwrap();
    f.coordinator_faults.resume_commits();
    let late = send.await.unwrap();
    assert!(
        matches!(&late, Err(Error::Commit(m)) if m.contains("collected")),
        "{late:?}"
    );
    assert_eq!(stored(&f.catalog, "t").await, 0, "nothing points at the deleted object");
    assert!(f.ingest.send("", &[message("t", "next")]).await[0].is_ok());
}

#[tokio::test]
async fn a_slow_store_pushes_back_instead_of_buffering() {
    const BODY: usize = 16 * 1024;
    const BUDGET: usize = 64 * 1024;
    let f = fixture(IngestConfig {
        max_inflight_bytes: BUDGET,
        ..Default::default()
    })
    .await;
    f.catalog.topic("", "slow").await.unwrap();
    f.faults.delay(Op::Put, Duration::from_millis(150));
    // Bodies that do not compress, so object sizes show what a flush carried.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let body: String = (0..BODY)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'!' + (seed % 90) as u8)
        })
        .collect();
    let sends: Vec<_> = (0..40)
        .map(|_| {
            let (ingest, body) = (Arc::clone(&f.ingest), body.clone());
            tokio::spawn(async move { ingest.send("", &[message("slow", &body)]).await.remove(0) })
        })
        .collect();
    for s in sends {
        s.await.unwrap().unwrap();
    }
    assert_eq!(stored(&f.catalog, "slow").await, 40);
    assert_eq!(
        f.ingest.inflight_bytes(),
        0,
        "every accepted byte was answered and released"
    );
    // Seen from the store: while PUTs were slow, the 40 sends did not pile into a few big
    // flushes (2 slots of up to 8 MiB would take them all): no flush carried more than the
    // budget admits at once.
    let sizes: Vec<u64> = futures::TryStreamExt::try_collect::<Vec<_>>(f.store.list(None))
        .await
        .unwrap()
        .iter()
        .map(|m| m.size)
        .collect();
    let largest = sizes.iter().copied().max().unwrap_or_default();
    assert!(
        largest <= (BUDGET + 4096) as u64,
        "a WAL object of {largest} bytes: more than the budget was accepted at once"
    );
    assert!(sizes.len() >= 40 * BODY / BUDGET, "{} PUTs", sizes.len());
}

#[tokio::test]
async fn priority_p_goes_to_queue_min_p_and_the_last() {
    let f = fixture(IngestConfig::default()).await;
    let spec = strata_meta::model::TopicSpec {
        tenant: String::new(),
        name: "prio".into(),
        message_type: strata_meta::model::MessageType::Priority,
        queue_count: 4,
        lite_ttl_ms: 0,
    };
    f.catalog.coordinator().create_topic(&spec, 1_000).await.unwrap();
    let with = |p: Option<i32>| {
        let mut m = message("prio", "x");
        let sp = m.system_properties.as_mut().unwrap();
        sp.message_type = v2::MessageType::Priority as i32;
        sp.priority = p;
        m
    };
    let sent = [
        with(Some(0)),
        with(Some(2)),
        with(Some(3)),
        with(Some(9)),
        with(None),
        with(Some(-1)),
    ];
    let results = f.ingest.send("", &sent).await;
    let queues: Vec<i32> = results[..4].iter().map(|r| r.as_ref().unwrap().queue).collect();
    assert_eq!(queues, vec![0, 2, 3, 3]);
    assert!(
        matches!(results[4], Err(Error::IllegalPriority(_))),
        "a priority message needs one"
    );
    assert!(matches!(results[5], Err(Error::IllegalPriority(_))), "negative");
    let mut normal = message("t", "x");
    normal.system_properties.as_mut().unwrap().message_type = 0;
    normal.system_properties.as_mut().unwrap().priority = Some(1);
    let results = f.ingest.send("", &[normal]).await;
    assert!(
        matches!(results[0], Err(Error::TypeMismatch { .. })),
        "a priority on a NORMAL topic: {:?}",
        results[0]
    );
}
