//! Compaction, GC and their failure modes against the SQL coordinator and an in-memory store.
#![allow(clippy::unwrap_used)] // test helpers: a failed step is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use proptest::prelude::*;
use strata_compactor::{Compaction, CompactorConfig, collect_orphans};
use strata_meta::faults::{CoordinatorFaults, FaultyCoordinator};
use strata_meta::model::{
    AppendBatch, BlockFormat, BlockLocation, FlushCommit, Hold, HoldKind, MessageType, QueueRef, Roles, TopicSpec,
};
use strata_meta::quarantine::Unreadable;
use strata_meta::{Clock, Coordinator, ManualClock, Membership, SqlCoordinator};
use strata_storage::counting::{RequestCounts, counting};
use strata_storage::hooked::{HookedStore, Op, RequestHook};
use strata_storage::wal::{WalRecord, WalWriter};
use strata_storage::{BlockCache, CacheConfig, Path, paths};

const T0: i64 = 1_700_000_000_000;

struct Env {
    coordinator: Arc<dyn Coordinator>,
    faults: Arc<CoordinatorFaults>,
    store: Arc<dyn ObjectStore>,
    counts: Arc<RequestCounts>,
    clock: ManualClock,
    writer: Arc<Membership>,
    compaction: Compaction,
    /// What was sent: queue → offset → body.
    sent: BTreeMap<i32, BTreeMap<i64, Bytes>>,
    flushes: usize,
    _dir: tempfile::TempDir,
}

fn config() -> CompactorConfig {
    CompactorConfig {
        compact_after: Duration::from_secs(60),
        gc_grace: Duration::from_secs(600),
        orphan_grace: Duration::from_secs(3600),
        max_file_records: 50,
        ..Default::default()
    }
}

async fn env(queues: i32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sql: Arc<dyn Coordinator> = Arc::new(SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap());
    let (coordinator, faults) = FaultyCoordinator::wrap(sql);
    let (store, counts) = counting(Arc::new(InMemory::new()));
    let clock = ManualClock::new(T0);
    let spec = TopicSpec {
        tenant: String::new(),
        name: "t".into(),
        message_type: MessageType::Normal,
        queue_count: queues,
        lite_ttl_ms: 0,
    };
    coordinator.create_topic(&spec, T0).await.unwrap();
    let writer = Membership::join(
        Arc::clone(&coordinator),
        Arc::new(clock.clone()),
        "w",
        Roles::INGEST,
        "h:1",
        None,
    )
    .await
    .unwrap();
    // A small memory tier and no disk tier: reads after compaction go to the store.
    let blocks = BlockCache::open(
        Arc::clone(&store),
        &CacheConfig {
            memory_bytes: 1 << 20,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let compaction = Compaction {
        coordinator: Arc::clone(&coordinator),
        store: Arc::clone(&store),
        blocks,
        clock: Arc::new(clock.clone()),
        config: config(),
        node: "compactor-1".into(),
        unreadable: Arc::new(Unreadable::new(Arc::clone(&coordinator), Arc::new(clock.clone()), 3)),
    };
    Env {
        coordinator,
        faults,
        store,
        counts,
        clock,
        writer,
        compaction,
        sent: BTreeMap::new(),
        flushes: 0,
        _dir: dir,
    }
}

fn queue(q: i32) -> QueueRef {
    QueueRef {
        tenant: String::new(),
        topic: "t".into(),
        queue: q,
    }
}

impl Env {
    /// One flush: `n` messages to each of `queues`, stored now.
    async fn produce(&mut self, queues: &[i32], n: usize) {
        let path = paths::wal_object(ulid::Ulid::new());
        let now = self.clock.now_ms();
        let mut writer = WalWriter::new();
        let mut batches = Vec::new();
        let mut bodies = Vec::new();
        for &q in queues {
            let records: Vec<WalRecord> = (0..n)
                .map(|i| WalRecord {
                    message_id: format!("f{}-q{q}-{i}", self.flushes),
                    body: Bytes::from(format!("flush {} queue {q} message {i}", self.flushes)),
                    store_timestamp_ms: now,
                    tag: Some(format!("T{}", i % 3)),
                    ..Default::default()
                })
                .collect();
            let span = writer.add_block("", "t", q, &records);
            bodies.push(records.iter().map(|r| r.body.clone()).collect::<Vec<_>>());
            batches.push(AppendBatch {
                queue: queue(q),
                count: n as u32,
                location: BlockLocation::wal(path.as_ref(), &span),
                min_timestamp_ms: now,
                max_timestamp_ms: now,
                held: vec![],
                indexed: vec![],
            });
        }
        let object = writer.finish("w", now);
        self.store.put(&path, PutPayload::from(object.clone())).await.unwrap();
        let commit = FlushCommit {
            object: path.to_string(),
            object_size: object.len() as u64,
            writer: self.writer.id().into(),
            writer_epoch: self.writer.epoch(),
            batches,
        };
        let bases = self.coordinator.commit_flush(&commit, now).await.unwrap();
        for ((q, base), bodies) in queues.iter().zip(bases).zip(bodies) {
            let base = base.unwrap();
            for (i, b) in bodies.into_iter().enumerate() {
                self.sent.entry(*q).or_default().insert(base + i as i64, b);
            }
        }
        self.flushes += 1;
    }

    /// Reads every offset of every queue through the batch index and the block cache.
    async fn read_all(&self) -> BTreeMap<i32, BTreeMap<i64, Bytes>> {
        let mut out = BTreeMap::new();
        for &q in self.sent.keys() {
            let (first, _) = self.coordinator.queue_bounds(&queue(q)).await.unwrap();
            let mut got = BTreeMap::new();
            for b in self.coordinator.batches(&queue(q), first, 100_000).await.unwrap() {
                let block = self.compaction.blocks.block(&b.location).await.unwrap();
                for (i, r) in block
                    .iter()
                    .skip(b.first_record as usize)
                    .take(b.count as usize)
                    .enumerate()
                {
                    got.insert(b.base_offset + i as i64, r.body.clone());
                }
            }
            out.insert(q, got);
        }
        out
    }

    async fn objects(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        v.sort();
        v
    }

    async fn formats(&self, q: i32) -> Vec<BlockFormat> {
        self.coordinator
            .batches(&queue(q), 0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|b| b.location.format)
            .collect()
    }
}

#[tokio::test]
async fn compaction_keeps_every_offset_and_gc_removes_the_wal_objects() {
    let mut e = env(2).await;
    for _ in 0..12 {
        e.produce(&[0, 1], 10).await;
    }
    let before = e.read_all().await;
    assert_eq!(before, e.sent);
    let wal_before = e.objects("wal").await.len();
    assert_eq!(wal_before, 12);

    assert!(e.compaction.round().await.unwrap().is_empty(), "too fresh to compact");
    e.clock.advance(Duration::from_secs(61));
    let done = e.compaction.round().await.unwrap();
    // 120 records per queue, at most 50 per file: rounds continue where they stopped.
    assert_eq!(done.len(), 2);
    while !e.compaction.round().await.unwrap().is_empty() {}
    assert!(e.formats(0).await.iter().all(|f| *f == BlockFormat::Parquet));
    assert_eq!(
        e.read_all().await,
        e.sent,
        "same offsets, same messages, no gap, no duplicate"
    );
    assert_eq!(
        e.objects("data").await.len(),
        6,
        "3 files per queue (50 + 50 + 20 records)"
    );

    // Nothing is deleted within the grace period (reads in flight may use old locations).
    assert_eq!(e.compaction.collect_unreferenced().await.unwrap(), 0);
    assert_eq!(e.objects("wal").await.len(), 12);
    e.clock.advance(Duration::from_secs(601));
    assert_eq!(e.compaction.collect_unreferenced().await.unwrap(), 12);
    assert!(e.objects("wal").await.is_empty());
    assert_eq!(e.read_all().await, e.sent, "everything still readable from Parquet");
}

/// A store whose every GET takes `step` of the compactor's clock: a slow store, on a clock
/// the test controls.
#[derive(Debug)]
struct SlowGets {
    clock: ManualClock,
    step: Duration,
}

#[async_trait::async_trait]
impl RequestHook for SlowGets {
    async fn before(&self, op: Op, _path: &object_store::path::Path) -> object_store::Result<()> {
        if op == Op::Get {
            self.clock.advance(self.step);
        }
        Ok(())
    }
}

/// Defect: the lease was never renewed while a job read its blocks, so a job whose reads
/// took longer than one lease lost its swap, and was planned again the same way: forever.
#[tokio::test]
async fn a_job_longer_than_its_lease_renews_it_and_finishes() {
    let mut e = env(1).await;
    for _ in 0..30 {
        e.produce(&[0], 5).await;
    }
    e.clock.advance(Duration::from_secs(61));
    // Each of the 30 GETs takes 10 s: 300 s of reads against a 60 s lease.
    let slow: Arc<dyn ObjectStore> = Arc::new(HookedStore::new(
        Arc::clone(&e.store),
        Arc::new(SlowGets {
            clock: e.clock.clone(),
            step: Duration::from_secs(10),
        }),
    ));
    let compaction = Compaction {
        blocks: BlockCache::open(slow, &CacheConfig::default()).await.unwrap(),
        config: CompactorConfig {
            max_file_records: 1000,
            ..config()
        },
        ..e.compaction.clone()
    };
    let done = compaction.compact_queue(&queue(0)).await.unwrap();
    let done = done.expect("the job finished within its renewed lease");
    assert_eq!((done.records, done.wal_batches), (150, 30));
    assert!(
        e.clock.now_ms() - T0 > 5 * 60_000,
        "the reads took several leases' time"
    );
    assert_eq!(e.formats(0).await, [BlockFormat::Parquet]);
    assert_eq!(e.read_all().await, e.sent, "every offset kept");
}

#[tokio::test]
async fn a_compactor_dying_before_its_swap_leaves_nothing_visible() {
    let mut e = env(1).await;
    for _ in 0..3 {
        e.produce(&[0], 5).await;
    }
    e.clock.advance(Duration::from_secs(61));
    // The file is written, then the swap never happens (the process died, or lost the
    // coordinator): an error, and the index unchanged.
    e.faults.fail_commits(1);
    assert!(e.compaction.round().await.is_err());
    assert_eq!(e.formats(0).await, [BlockFormat::Wal; 3], "nothing half-visible");
    assert_eq!(e.read_all().await, e.sent);
    let orphan = e.objects("data").await;
    assert_eq!(orphan.len(), 1, "the dead job's file is left behind");
    // Another round (or another compactor) redoes the job.
    e.compaction
        .coordinator
        .release_lease(&strata_compactor::lease_name(&queue(0)), "compactor-1")
        .await
        .unwrap();
    assert_eq!(e.compaction.round().await.unwrap().len(), 1);
    assert_eq!(e.formats(0).await, [BlockFormat::Parquet]);
    assert_eq!(e.read_all().await, e.sent);
    // The dead job's file is an orphan: collected after the orphan grace period (measured
    // against the objects' real modification times).
    let wall = strata_meta::Clock::now_ms(&strata_meta::clock::SystemClock);
    let now = wall + 2 * 3_600_000;
    collect_orphans(e.store.as_ref(), e.coordinator.as_ref(), now, Duration::from_secs(3600))
        .await
        .unwrap();
    let left = e.objects("data").await;
    assert_eq!(left.len(), 1);
    assert_ne!(left, orphan);
}

#[tokio::test]
async fn report_objects_bytes_and_gets_before_and_after_compaction() {
    // Not a benchmark: the numbers are printed for docs/operations.md and checked only
    // for sanity (fewer objects after compaction).
    let mut e = env(4).await;
    for _ in 0..250 {
        e.produce(&[0, 1, 2, 3], 1).await; // 1,000 messages, one per queue per flush
    }
    let size = |objects: Vec<String>| {
        let store = Arc::clone(&e.store);
        async move {
            let mut total = 0;
            for o in &objects {
                total += store.head(&Path::from(o.as_str())).await.unwrap().size;
            }
            (objects.len(), total)
        }
    };
    let (wal_objects, wal_bytes) = size(e.objects("wal").await).await;
    let gets = |e: &Env| e.counts.get(Op::Get);
    let cold = Compaction {
        blocks: BlockCache::open(Arc::clone(&e.store), &CacheConfig::default())
            .await
            .unwrap(),
        ..e.compaction.clone()
    };
    let read = |c: Compaction| async move {
        let mut n = 0;
        for q in 0..4 {
            for b in c.coordinator.batches(&queue(q), 0, 100_000).await.unwrap() {
                n += c.blocks.block(&b.location).await.unwrap().len();
            }
        }
        n
    };
    let g0 = gets(&e);
    assert_eq!(read(cold).await, 1000);
    let wal_gets = gets(&e) - g0;
    e.clock.advance(Duration::from_secs(61));
    e.compaction.config.max_file_records = 1_000_000;
    while !e.compaction.round().await.unwrap().is_empty() {}
    e.compaction.collect_unreferenced().await.unwrap(); // notes the WAL objects unreferenced
    e.clock.advance(Duration::from_secs(601));
    e.compaction.collect_unreferenced().await.unwrap();
    let (data_objects, data_bytes) = size(e.objects("data").await).await;
    let cold = Compaction {
        blocks: BlockCache::open(Arc::clone(&e.store), &CacheConfig::default())
            .await
            .unwrap(),
        ..e.compaction.clone()
    };
    let g1 = gets(&e);
    assert_eq!(read(cold).await, 1000);
    let parquet_gets = gets(&e) - g1;
    println!(
        "compaction report, 1,000 messages in 250 flushes over 4 queues:\n  \
         before: {wal_objects} WAL objects, {wal_bytes} bytes; reading all cold: {wal_gets} GETs per 1,000 messages\n  \
         after:  {data_objects} Parquet files, {data_bytes} bytes; reading all cold: {parquet_gets} GETs per 1,000 messages"
    );
    assert!(e.objects("wal").await.is_empty());
    assert!(data_objects < wal_objects && parquet_gets < wal_gets);
}

#[derive(Clone, Debug)]
enum Step {
    Produce(u8),
    Advance(u16),
    Compact,
    Gc,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u8..4).prop_map(Step::Produce),
        2 => (1u16..900).prop_map(Step::Advance),
        2 => Just(Step::Compact),
        2 => Just(Step::Gc),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the interleaving of produce, compaction, GC and time: every committed
    /// message stays readable (GC never deletes a referenced object), and after the grace
    /// period no unreferenced object is left.
    #[test]
    fn gc_never_deletes_what_is_referenced(steps in proptest::collection::vec(step(), 1..25)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut e = env(2).await;
            for s in steps {
                match s {
                    Step::Produce(n) => e.produce(&[0, 1], n as usize).await,
                    Step::Advance(secs) => e.clock.advance(Duration::from_secs(u64::from(secs))),
                    Step::Compact => { e.compaction.round().await.unwrap(); }
                    Step::Gc => { e.compaction.collect_unreferenced().await.unwrap(); }
                }
                assert_eq!(e.read_all().await, e.sent);
            }
            // Eventually: compact everything, wait out the grace period, collect.
            e.clock.advance(Duration::from_secs(61));
            while !e.compaction.round().await.unwrap().is_empty() {}
            e.compaction.collect_unreferenced().await.unwrap();
            e.clock.advance(Duration::from_secs(601));
            e.compaction.collect_unreferenced().await.unwrap();
            assert_eq!(e.read_all().await, e.sent);
            assert!(e.objects("wal").await.is_empty(), "compacted WAL objects are gone");
            let files = e.objects("data").await;
            let referenced = e.coordinator.committed_objects(&files).await.unwrap();
            let unreferenced = e.coordinator.unreferenced_objects(e.clock.now_ms(), 0, 10_000).await.unwrap();
            for f in &files {
                assert!(referenced.contains(f) && !unreferenced.contains(f), "{f} left behind");
            }
        });
    }
}

/// Defect: a delay timer pinned its whole flush object (up to 8 MiB) until it fired, up to
/// `max_delay` later. Compaction moves held records into an object of their own; the flush
/// object is then deleted, and the timer still fires with its message.
#[tokio::test]
async fn held_records_move_out_so_their_flush_object_can_be_deleted() {
    let mut e = env(2).await;
    let now = e.clock.now_ms();
    let path = paths::wal_object(ulid::Ulid::new());
    let mut writer = WalWriter::new();
    let bulk: Vec<WalRecord> = (0..50)
        .map(|i| WalRecord {
            message_id: format!("bulk-{i}"),
            body: Bytes::from(vec![b'x'; 1024]),
            store_timestamp_ms: now,
            ..Default::default()
        })
        .collect();
    let timer = WalRecord {
        message_id: "in-a-year".into(),
        body: Bytes::from_static(b"happy new year"),
        store_timestamp_ms: now,
        ..Default::default()
    };
    let bulk_span = writer.add_block("", "t", 0, &bulk);
    let timer_span = writer.add_block("", "t", 1, std::slice::from_ref(&timer));
    let object = writer.finish("w", now);
    e.store.put(&path, PutPayload::from(object.clone())).await.unwrap();
    let year = 365 * 24 * 3_600_000;
    let commit = FlushCommit {
        object: path.to_string(),
        object_size: object.len() as u64,
        writer: e.writer.id().into(),
        writer_epoch: e.writer.epoch(),
        batches: vec![
            AppendBatch {
                queue: queue(0),
                count: 50,
                location: BlockLocation::wal(path.as_ref(), &bulk_span),
                min_timestamp_ms: now,
                max_timestamp_ms: now,
                held: vec![],
                indexed: vec![],
            },
            AppendBatch {
                queue: queue(1),
                count: 1,
                location: BlockLocation::wal(path.as_ref(), &timer_span),
                min_timestamp_ms: now,
                max_timestamp_ms: now,
                held: vec![Hold {
                    kind: HoldKind::Timer,
                    message_id: "in-a-year".into(),
                    due_ms: now + year,
                }],
                indexed: vec![],
            },
        ],
    };
    e.coordinator.commit_flush(&commit, now).await.unwrap();
    e.clock.advance(Duration::from_secs(61));
    e.compaction.config.max_file_records = 1000;
    assert_eq!(e.compaction.round().await.unwrap().len(), 1, "the bulk went to Parquet");
    assert_eq!(e.compaction.move_held().await.unwrap(), 1);
    assert_eq!(
        e.compaction.move_held().await.unwrap(),
        0,
        "its new object holds only it"
    );
    e.compaction.collect_unreferenced().await.unwrap();
    e.clock.advance(Duration::from_secs(601));
    e.compaction.collect_unreferenced().await.unwrap();
    assert!(
        !e.objects("wal").await.contains(&path.to_string()),
        "the flush object is deleted, a year early"
    );
    e.clock.advance(Duration::from_millis(year as u64));
    assert_eq!(
        e.coordinator.fire_due_timers(e.clock.now_ms(), 10).await.unwrap().len(),
        1
    );
    let fired = e.coordinator.batches(&queue(1), 0, 10).await.unwrap();
    let block = e.compaction.blocks.block(&fired[0].location).await.unwrap();
    assert_eq!(
        block[fired[0].first_record as usize], timer,
        "the timer's message, from its new object"
    );
}
