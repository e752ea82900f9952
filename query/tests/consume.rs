//! Pop consumption end to end through the coordinator and the object store (no gRPC).
#![allow(clippy::unwrap_used)] // test helpers: a failed step is a failed test

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_meta::model::Roles;
use strata_meta::model::{
    AppendBatch, BlockLocation, FlushCommit, GroupSpec, MessageType, QueueRef, StartFrom, Subscription, TopicSpec,
};
use strata_meta::{AutoCreate, Catalog, ManualClock, Membership, SqlCoordinator};
use strata_proto::wal::WalRecord;
use strata_query::{Error, Filter, Query, QueryConfig, ReceiveRequest};
use strata_storage::object_store::memory::InMemory;
use strata_storage::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_storage::wal::WalWriter;
use strata_storage::{BlockCache, CacheConfig, Path};

struct Env {
    query: Query,
    catalog: Catalog,
    clock: ManualClock,
    store: Arc<dyn ObjectStore>,
    writer: Arc<Membership>,
    flushes: std::sync::atomic::AtomicUsize,
    _dir: tempfile::TempDir,
}

const TOPIC: &str = "orders";

async fn env(queues: i32) -> Env {
    env_with(queues, MessageType::Normal, QueryConfig::default()).await
}

async fn env_with(queues: i32, message_type: MessageType, config: QueryConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let catalog = Catalog::new(Arc::new(coordinator), Arc::new(clock.clone()), AutoCreate::default());
    let spec = TopicSpec {
        tenant: String::new(),
        name: TOPIC.into(),
        message_type,
        queue_count: queues,
        lite_ttl_ms: 0,
    };
    catalog.coordinator().create_topic(&spec, 0).await.unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let blocks = BlockCache::open(Arc::clone(&store), &CacheConfig::default())
        .await
        .unwrap();
    let query = Query::new(catalog.clone(), blocks, config).await.unwrap();
    let writer = Membership::join(
        Arc::clone(catalog.coordinator()),
        Arc::new(clock.clone()),
        "writer",
        Roles::INGEST,
        "h:1",
        None,
    )
    .await
    .unwrap();
    Env {
        query,
        catalog,
        clock,
        store,
        writer,
        flushes: Default::default(),
        _dir: dir,
    }
}

impl Env {
    /// Stores messages `(body, message group)` in queue 0, as one flush.
    async fn produce_grouped(&self, messages: &[(&str, &str)]) {
        let flush_no = self.flushes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = Path::from(format!("wal/00/{flush_no}.wal"));
        let records: Vec<WalRecord> = messages
            .iter()
            .map(|(body, group)| WalRecord {
                message_id: format!("id-{body}"),
                message_group: Some(group.to_string()),
                body: Bytes::from(body.to_string()),
                body_md5: "X".into(),
                ..Default::default()
            })
            .collect();
        let mut writer = WalWriter::new();
        let span = writer.add_block("", TOPIC, 0, &records);
        let object = writer.finish("test", 0);
        self.store.put(&path, PutPayload::from(object.clone())).await.unwrap();
        let commit = FlushCommit {
            object: path.to_string(),
            object_size: object.len() as u64,
            writer: self.writer.id().into(),
            writer_epoch: self.writer.epoch(),
            batches: vec![AppendBatch {
                queue: QueueRef {
                    tenant: String::new(),
                    topic: TOPIC.into(),
                    queue: 0,
                },
                count: records.len() as u32,
                location: BlockLocation::wal(path.as_ref(), &span),
                min_timestamp_ms: 0,
                max_timestamp_ms: 0,
                held: vec![],
                indexed: vec![],
            }],
        };
        self.catalog.coordinator().commit_flush(&commit, 0).await.unwrap();
    }

    /// Stores messages (body = `m{i}`, tag from `tags`) spread over queues, as one flush.
    async fn produce(&self, first: usize, n: usize, tags: &[&str], queues: i32) {
        let flush_no = self.flushes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = Path::from(format!("wal/00/{flush_no}.wal"));
        let mut writer = WalWriter::new();
        let mut batches = Vec::new();
        for q in 0..queues {
            let records: Vec<WalRecord> = (first..first + n)
                .filter(|i| (*i as i32) % queues == q)
                .map(|i| WalRecord {
                    message_id: format!("id-{i}"),
                    tag: Some(tags[i % tags.len()].to_string()),
                    body: Bytes::from(format!("m{i}")),
                    body_md5: "X".into(),
                    ..Default::default()
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            let span = writer.add_block("", TOPIC, q, &records);
            batches.push(AppendBatch {
                queue: QueueRef {
                    tenant: String::new(),
                    topic: TOPIC.into(),
                    queue: q,
                },
                count: records.len() as u32,
                location: BlockLocation::wal(path.as_ref(), &span),
                min_timestamp_ms: 0,
                max_timestamp_ms: 0,
                held: vec![],
                indexed: vec![],
            });
        }
        let object = writer.finish("test", 0);
        self.store.put(&path, PutPayload::from(object.clone())).await.unwrap();
        let commit = FlushCommit {
            object: path.to_string(),
            object_size: object.len() as u64,
            writer: self.writer.id().into(),
            writer_epoch: self.writer.epoch(),
            batches,
        };
        self.catalog.coordinator().commit_flush(&commit, 0).await.unwrap();
    }

    fn request(&self, group: &str, filter: Filter, batch: usize, poll: Duration) -> ReceiveRequest {
        ReceiveRequest {
            tenant: String::new(),
            group: group.into(),
            topic: TOPIC.into(),
            filter,
            batch_size: batch,
            invisible: Some(Duration::from_secs(30)),
            long_polling: poll,
            client_id: None,
        }
    }

    /// Receives until nothing is left, as client `client`.
    async fn drain_as(&self, group: &str, client: &str) -> Vec<strata_query::Delivered> {
        let mut all = Vec::new();
        loop {
            let req = ReceiveRequest {
                client_id: Some(client.into()),
                ..self.request(group, Filter::All, 16, Duration::ZERO)
            };
            let got = self.query.receive(&req).await.unwrap();
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }

    async fn drain(&self, group: &str, filter: Filter) -> Vec<strata_query::Delivered> {
        let mut all = Vec::new();
        loop {
            let got = self
                .query
                .receive(&self.request(group, filter.clone(), 16, Duration::ZERO))
                .await
                .unwrap();
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }
}

fn sub(group: &str) -> Subscription {
    Subscription {
        tenant: String::new(),
        group: group.into(),
        topic: TOPIC.into(),
    }
}

fn bodies(ds: &[strata_query::Delivered]) -> Vec<String> {
    let mut b: Vec<_> = ds
        .iter()
        .map(|d| String::from_utf8(d.record.body.to_vec()).unwrap())
        .collect();
    b.sort();
    b
}

#[tokio::test]
async fn every_message_once_and_acked_ones_never_again() {
    let e = env(4).await;
    e.produce(0, 50, &["A"], 4).await;
    let got = e.drain("g", Filter::All).await;
    let mut expected: Vec<_> = (0..50).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(bodies(&got), expected);
    assert!(got.iter().all(|d| d.attempt == 1));

    let handles: Vec<String> = got.iter().map(|d| d.receipt_handle.clone()).collect();
    assert!(e.query.ack(&sub("g"), &handles).await.iter().all(Result::is_ok));
    assert!(
        e.query.ack(&sub("g"), &handles[..1]).await[0].is_ok(),
        "acking twice is fine"
    );
    e.clock.advance(Duration::from_secs(3600));
    assert!(
        e.drain("g", Filter::All).await.is_empty(),
        "acked messages never come back"
    );

    // A second group has its own progress.
    assert_eq!(e.drain("other", Filter::All).await.len(), 50);
}

#[tokio::test]
async fn unacked_messages_return_after_the_invisible_time_with_the_next_attempt() {
    let e = env(2).await;
    e.produce(0, 10, &["A"], 2).await;
    let got = e.drain("g", Filter::All).await;
    assert_eq!(got.len(), 10);
    let (acked, kept) = got.split_at(6);
    let handles: Vec<String> = acked.iter().map(|d| d.receipt_handle.clone()).collect();
    assert!(e.query.ack(&sub("g"), &handles).await.iter().all(Result::is_ok));

    e.clock.advance(Duration::from_secs(29));
    assert!(e.drain("g", Filter::All).await.is_empty(), "still invisible");
    e.clock.advance(Duration::from_secs(2));
    let again = e.drain("g", Filter::All).await;
    assert_eq!(bodies(&again), bodies(kept));
    assert!(again.iter().all(|d| d.attempt == 2));

    let stale = e.query.ack(&sub("g"), &[kept[0].receipt_handle.clone()]).await;
    assert!(matches!(stale[0], Err(Error::InvalidReceipt(_))), "{stale:?}");
    let fresh: Vec<String> = again.iter().map(|d| d.receipt_handle.clone()).collect();
    assert!(e.query.ack(&sub("g"), &fresh).await.iter().all(Result::is_ok));
}

#[tokio::test]
async fn tag_filters_deliver_only_matching_messages() {
    let e = env(3).await;
    e.produce(0, 30, &["A", "B", "C"], 3).await;
    let got = e.drain("g", Filter::parse_tags("A || C").unwrap()).await;
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|d| d.record.tag.as_deref() != Some("B")));
}

#[tokio::test]
async fn change_invisible_issues_a_new_handle() {
    let e = env(1).await;
    e.produce(0, 1, &["A"], 1).await;
    let got = e.drain("g", Filter::All).await;
    let old = got[0].receipt_handle.clone();
    let new = e
        .query
        .change_invisible(&sub("g"), &old, Duration::from_secs(120))
        .await
        .unwrap();
    e.clock.advance(Duration::from_secs(60));
    assert!(
        e.drain("g", Filter::All).await.is_empty(),
        "the longer invisible time holds"
    );
    assert!(matches!(
        e.query.ack(&sub("g"), &[old]).await[0],
        Err(Error::InvalidReceipt(_))
    ));
    assert!(e.query.ack(&sub("g"), std::slice::from_ref(&new)).await[0].is_ok());
    // Handles are bound to their group.
    assert!(matches!(
        e.query.ack(&sub("other"), &[new]).await[0],
        Err(Error::InvalidReceipt(_))
    ));
    assert!(matches!(
        e.query.ack(&sub("g"), &["forged".into()]).await[0],
        Err(Error::InvalidReceipt(_))
    ));
}

#[tokio::test]
async fn a_long_poll_wakes_on_commit() {
    let e = Arc::new(env(2).await);
    let waiter = {
        let e = Arc::clone(&e);
        tokio::spawn(async move {
            e.query
                .receive(&e.request("g", Filter::All, 8, Duration::from_secs(20)))
                .await
        })
    };
    // Synchronised on the receive being parked, so the commit below must wake it.
    while e.query.long_polls() == 0 {
        assert!(!waiter.is_finished(), "nothing to deliver yet");
        tokio::task::yield_now().await;
    }
    e.produce(0, 3, &["A"], 2).await;
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken by the commit")
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 3);
}

#[tokio::test]
async fn out_of_range_invisible_times_are_refused() {
    let e = env(1).await;
    let mut req = e.request("g", Filter::All, 1, Duration::ZERO);
    req.invisible = Some(Duration::from_millis(10));
    assert!(matches!(
        e.query.receive(&req).await,
        Err(Error::IllegalInvisibleTime(_))
    ));
    req.invisible = Some(Duration::from_secs(13 * 3600));
    assert!(matches!(
        e.query.receive(&req).await,
        Err(Error::IllegalInvisibleTime(_))
    ));
}

/// Acks that arrive while none is being committed travel in ONE coordinator transaction,
/// and each caller still gets its own outcomes. (A current-thread runtime: every ack below
/// is submitted before the committer task first runs.)
#[tokio::test]
async fn concurrent_acks_are_group_committed() {
    let e = env(2).await;
    e.produce(0, 40, &["A"], 2).await;
    let got = e.drain("g", Filter::All).await;
    assert_eq!(got.len(), 40);
    let s = sub("g");
    let before = e.catalog.coordinator().transactions();
    let acks = got.iter().map(|d| {
        let handle = [d.receipt_handle.clone()];
        let (query, s) = (&e.query, &s);
        async move { query.ack(s, &handle).await }
    });
    let mut results = futures::future::join_all(acks).await;
    results.push(e.query.ack(&s, &["forged".into()]).await);
    let after = e.catalog.coordinator().transactions();
    assert!(results[..40].iter().all(|r| r.len() == 1 && r[0].is_ok()));
    assert!(
        matches!(results[40][0], Err(Error::InvalidReceipt(_))),
        "a bad handle fails alone"
    );
    assert_eq!(after.writes - before.writes, 1, "40 ack RPCs, one transaction");
    e.clock.advance(Duration::from_secs(3600));
    assert!(e.drain("g", Filter::All).await.is_empty(), "every ack took effect");
}

/// Defect: a read error of any queue failed every receive of the topic, forever. Now the
/// other queues and the messages after the bad batch keep flowing; after a few incurable
/// failures the batch is quarantined (listed, never skipped silently) and an operator's
/// retry brings its messages back once the object is restored.
#[tokio::test]
async fn one_unreadable_object_stalls_nothing_and_is_quarantined() {
    let e = env(2).await;
    for flush in 0..3 {
        e.produce(flush * 10, 10, &["A"], 2).await;
    }
    let lost = Path::from("wal/00/1.wal");
    let saved = e.store.get(&lost).await.unwrap().bytes().await.unwrap();
    e.store.delete(&lost).await.unwrap();

    let (mut got, mut failures) = (Vec::new(), 0);
    loop {
        match e.query.receive(&e.request("g", Filter::All, 16, Duration::ZERO)).await {
            Ok(d) if d.is_empty() => break,
            Ok(d) => got.extend(d),
            Err(err) => {
                assert!(matches!(err, Error::Missing(_)), "{err}");
                failures += 1;
                assert!(failures <= 6, "quarantined after 3 failures per batch");
            }
        }
    }
    let mut expected: Vec<_> = (0..10).chain(20..30).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(bodies(&got), expected, "everything but the lost object's messages");
    let quarantined = e.catalog.coordinator().quarantined().await.unwrap();
    assert_eq!(quarantined.len(), 2, "its block in each queue");
    assert!(quarantined.iter().all(|q| q.reason.contains("wal/00/1.wal")));
    assert_eq!(e.query.unreadable().quarantined(), 2);
    assert_eq!(
        e.drain("other", Filter::All).await.len(),
        20,
        "another group is not held up"
    );

    // Restored from a backup, then retried by the operator: every group receives them.
    e.store.put(&lost, PutPayload::from(saved)).await.unwrap();
    for q in &quarantined {
        let retried = e
            .catalog
            .coordinator()
            .release_quarantined(&q.batch.queue, q.batch.base_offset, true, 0)
            .await
            .unwrap();
        assert!(retried.is_some());
    }
    let back = e.drain("g", Filter::All).await;
    let mut expected: Vec<_> = (10..20).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(bodies(&back), expected);
    assert_eq!(e.drain("other", Filter::All).await.len(), 10);
}

/// Defect: while a FIFO group's head is stuck, every later message of that group became a
/// waiting row examined by every receive, without bound. At `max_waiting` the queue's
/// cursor stops instead; once the head is acknowledged everything flows, in order.
#[tokio::test]
async fn a_stuck_fifo_group_parks_a_bounded_number_of_messages() {
    let config = QueryConfig {
        max_waiting: 4,
        ..Default::default()
    };
    let e = env_with(1, MessageType::Fifo, config).await;
    let spec = GroupSpec {
        tenant: String::new(),
        name: "g".into(),
        fifo: true,
        max_attempts: 16,
        broadcast: false,
        start: StartFrom::Earliest,
    };
    e.catalog.coordinator().create_group(&spec, 0).await.unwrap();
    // The stuck group's head, then 10 more of it interleaved with 10 of a free group.
    let mut messages = vec![("s0".to_string(), "stuck")];
    for i in 1..=10 {
        messages.push((format!("s{i}"), "stuck"));
        messages.push((format!("f{i}"), "free"));
    }
    let refs: Vec<(&str, &str)> = messages.iter().map(|(b, g)| (b.as_str(), *g)).collect();
    e.produce_grouped(&refs).await;

    let head = e
        .query
        .receive(&e.request("g", Filter::All, 1, Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(bodies(&head), ["s0"]);
    // Not acked: "stuck" is busy. The free group flows until 4 messages wait behind s0.
    let mut free = Vec::new();
    loop {
        let got = e
            .query
            .receive(&e.request("g", Filter::All, 1, Duration::ZERO))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        let handles: Vec<String> = got.iter().map(|d| d.receipt_handle.clone()).collect();
        assert!(e.query.ack(&sub("g"), &handles).await.iter().all(Result::is_ok));
        free.extend(got);
    }
    let waiting = e
        .catalog
        .coordinator()
        .pop_state(&sub("g"), &[0], 0, 1, true)
        .await
        .unwrap()[0]
        .waiting;
    assert_eq!(waiting, 4, "bounded");
    assert_eq!(
        bodies(&free),
        ["f1", "f2", "f3", "f4"],
        "the queue stopped at the 5th waiting message"
    );

    // The head is acknowledged: the rest of both groups comes, the stuck group in order.
    assert!(e.query.ack(&sub("g"), &[head[0].receipt_handle.clone()]).await[0].is_ok());
    let mut order = Vec::new();
    loop {
        let got = e
            .query
            .receive(&e.request("g", Filter::All, 8, Duration::ZERO))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        let handles: Vec<String> = got.iter().map(|d| d.receipt_handle.clone()).collect();
        assert!(e.query.ack(&sub("g"), &handles).await.iter().all(Result::is_ok));
        order.extend(got.iter().map(|d| String::from_utf8(d.record.body.to_vec()).unwrap()));
    }
    let stuck: Vec<&String> = order.iter().filter(|b| b.starts_with('s')).collect();
    assert_eq!(
        stuck,
        (1..=10)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(order.len(), 16, "s1..s10 and f5..f10");
}

/// Every client of a broadcast group receives every message sent since it first received,
/// with progress of its own: acks, redeliveries and attempts of one client never touch
/// another's; out of attempts, a message is dropped for that client (no dead-letter topic).
#[tokio::test]
async fn a_broadcast_group_gives_every_client_every_message_from_when_it_joined() {
    let e = env(2).await;
    let spec = GroupSpec {
        tenant: String::new(),
        name: "everyone".into(),
        fifo: false,
        max_attempts: 2,
        broadcast: true,
        start: StartFrom::default_for(true),
    };
    e.catalog.coordinator().create_group(&spec, 0).await.unwrap();
    e.produce(0, 10, &["A"], 2).await;
    assert!(
        e.drain_as("everyone", "c1").await.is_empty(),
        "starts at the latest offset"
    );
    assert!(e.drain_as("everyone", "c2").await.is_empty());
    e.produce(10, 20, &["A"], 2).await;
    let expected: Vec<String> = {
        let mut v: Vec<_> = (10..30).map(|i| format!("m{i}")).collect();
        v.sort();
        v
    };
    let one = e.drain_as("everyone", "c1").await;
    let two = e.drain_as("everyone", "c2").await;
    assert_eq!(bodies(&one), expected);
    assert_eq!(bodies(&two), expected);

    // Client 1 acknowledges (through the group's subscription, as the front asks); client
    // 2 does not, so only its messages come back.
    let handles: Vec<String> = one.iter().map(|d| d.receipt_handle.clone()).collect();
    assert!(e.query.ack(&sub("everyone"), &handles).await.iter().all(Result::is_ok));
    assert!(
        e.query.ack(&sub("other"), &handles[..1]).await[0].is_err(),
        "another group's handle"
    );
    e.clock.advance(Duration::from_secs(31));
    assert!(e.drain_as("everyone", "c1").await.is_empty());
    let again = e.drain_as("everyone", "c2").await;
    assert_eq!(bodies(&again), expected);
    assert!(again.iter().all(|d| d.attempt == 2));
    // Out of attempts: dropped for client 2 only; no dead-letter topic appears.
    e.clock.advance(Duration::from_secs(31));
    assert!(e.drain_as("everyone", "c2").await.is_empty());
    assert!(
        e.catalog
            .coordinator()
            .topic("", "%DLQ%everyone")
            .await
            .unwrap()
            .is_none()
    );

    // A late joiner starts at the end; then all three receive what follows.
    assert!(e.drain_as("everyone", "c3").await.is_empty());
    e.produce(30, 4, &["A"], 2).await;
    for client in ["c1", "c2", "c3"] {
        assert_eq!(e.drain_as("everyone", client).await.len(), 4, "{client}");
    }
    let no_client = e.request("everyone", Filter::All, 16, Duration::ZERO);
    assert!(matches!(
        e.query.receive(&no_client).await,
        Err(Error::ClientIdRequired(_))
    ));
}
