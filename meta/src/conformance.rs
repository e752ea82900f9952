//! The coordinator conformance suite: every backend runs these against a fresh database
//! (each function uses its own tenant, so they may share one).
#![allow(clippy::unwrap_used)] // a test suite: a failed step is a failed test

use crate::error::Error;
use crate::model::*;
use crate::prelude::*;

pub const T0: i64 = 1_700_000_000_000;

pub async fn run_all(c: &dyn Coordinator) {
    register_writer(c).await;
    topics_and_groups(c).await;
    commit_assigns_dense_offsets(c).await;
    commit_is_all_or_nothing(c).await;
    concurrent_commits_stay_dense(c).await;
    batch_lookup(c).await;
    pop_lifecycle(c).await;
    pop_claims_conflict(c).await;
    change_invisible_issues_new_seq(c).await;
    one_claim_keeps_per_message_rules(c).await;
    secrets_are_stable(c).await;
    probe_commits_are_counted(c).await;
    commits_notify(c).await;
    nodes_register_heartbeat_and_expire(c).await;
    dead_writers_are_fenced(c).await;
    timers_fire_when_due_and_can_be_recalled(c).await;
    transactions_commit_roll_back_and_get_checked(c).await;
    messages_out_of_attempts_go_to_the_dead_letter_topic(c).await;
    fifo_groups_have_one_message_in_flight(c).await;
    compaction_swaps_batches_atomically(c).await;
    retention_moves_everyone_past_expired_batches(c).await;
    stream_offsets_bounds_and_time_lookup(c).await;
}

/// A probe commit is one write transaction, and the counters see it.
pub async fn probe_commits_are_counted(c: &dyn Coordinator) {
    let before = c.transactions();
    for _ in 0..3 {
        c.probe_commit().await.unwrap();
    }
    let after = c.transactions();
    assert_eq!(after.writes, before.writes + 3, "{before:?} -> {after:?}");
    assert!(after.all >= after.writes, "{after:?}");
}

/// The node every flush of this suite claims to come from.
const WRITER: &str = "conf-writer";

/// Registers [`WRITER`] (heard from far in the future, so no expiry catches it). Call first.
pub async fn register_writer(c: &dyn Coordinator) {
    let node = c.register_node(WRITER, Roles::INGEST, "127.0.0.1:1", T0).await.unwrap();
    c.heartbeat_node(WRITER, node.epoch, i64::MAX / 2).await.unwrap();
}

/// The live epoch of [`WRITER`] on this coordinator.
async fn epoch(c: &dyn Coordinator) -> i64 {
    let nodes = c.live_nodes(i64::MAX / 2, 1).await.unwrap();
    nodes
        .into_iter()
        .find(|n| n.id == WRITER)
        .expect("register_writer ran first")
        .epoch
}

fn topic_spec(tenant: &str, name: &str, queues: i32) -> TopicSpec {
    TopicSpec {
        tenant: tenant.into(),
        name: name.into(),
        message_type: MessageType::Normal,
        queue_count: queues,
    }
}

fn queue(tenant: &str, topic: &str, q: i32) -> QueueRef {
    QueueRef {
        tenant: tenant.into(),
        topic: topic.into(),
        queue: q,
    }
}

fn batch(q: QueueRef, count: u32) -> AppendBatch {
    AppendBatch {
        queue: q,
        count,
        location: BlockLocation {
            object: String::new(),
            offset: 8,
            length: 100,
            uncompressed_length: 200,
            crc32c: 0xdead_beef,
            compression: 1,
            block_records: count,
            format: BlockFormat::Wal,
        },
        min_timestamp_ms: T0,
        max_timestamp_ms: T0 + 5,
        held: vec![],
    }
}

fn new(offsets: std::ops::Range<i64>) -> Vec<Taken> {
    offsets.map(|offset| Taken { offset, group: None }).collect()
}

/// A flush of `batches` by [`WRITER`] at `epoch`, all located in `object`.
fn flush(epoch: i64, object: &str, mut batches: Vec<AppendBatch>) -> FlushCommit {
    for b in &mut batches {
        b.location.object = object.into();
    }
    FlushCommit {
        object: object.into(),
        object_size: 1234,
        writer: WRITER.into(),
        writer_epoch: epoch,
        batches,
    }
}

pub fn sub(tenant: &str, group: &str, topic: &str) -> Subscription {
    Subscription {
        tenant: tenant.into(),
        group: group.into(),
        topic: topic.into(),
    }
}

pub async fn topics_and_groups(c: &dyn Coordinator) {
    let t = "conf-topics";
    let created = c.create_topic(&topic_spec(t, "orders", 4), T0).await.unwrap();
    assert_eq!(created.queue_count, 4);
    assert_eq!(c.topic(t, "orders").await.unwrap(), Some(created.clone()));
    assert_eq!(c.topic(t, "missing").await.unwrap(), None);
    assert_eq!(
        c.topic("other-tenant", "orders").await.unwrap(),
        None,
        "topics are per tenant"
    );
    assert!(matches!(
        c.create_topic(&topic_spec(t, "orders", 2), T0).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        c.create_topic(&topic_spec(t, "bad name", 2), T0).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        c.create_topic(&topic_spec(t, "zero", 0), T0).await,
        Err(Error::Invalid { .. })
    ));
    let fifo = TopicSpec {
        message_type: MessageType::Fifo,
        ..topic_spec(t, "fifo", 1)
    };
    c.create_topic(&fifo, T0).await.unwrap();
    let names: Vec<_> = c.list_topics(t).await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["fifo", "orders"]);
    assert_eq!(
        c.topic(t, "fifo").await.unwrap().unwrap().message_type,
        MessageType::Fifo
    );
    for q in 0..4 {
        assert_eq!(c.queue_end(&queue(t, "orders", q)).await.unwrap(), 0);
    }
    assert!(matches!(
        c.queue_end(&queue(t, "orders", 4)).await,
        Err(Error::QueueNotFound { .. })
    ));

    let g = GroupSpec {
        tenant: t.into(),
        name: "billing".into(),
        fifo: true,
        max_attempts: 5,
    };
    let group = c.create_group(&g, T0).await.unwrap();
    assert!(group.fifo);
    assert_eq!(c.group(t, "billing").await.unwrap(), Some(group));
    assert!(matches!(c.create_group(&g, T0).await, Err(Error::AlreadyExists { .. })));
    assert_eq!(c.list_groups(t).await.unwrap().len(), 1);
    assert_eq!(c.group(t, "nope").await.unwrap(), None);
}

pub async fn commit_assigns_dense_offsets(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-dense";
    c.create_topic(&topic_spec(t, "a", 2), T0).await.unwrap();
    c.create_topic(&topic_spec(t, "b", 1), T0).await.unwrap();
    let bases = c
        .commit_flush(
            &flush(
                e,
                "wal/00/1.wal",
                vec![
                    batch(queue(t, "a", 0), 3),
                    batch(queue(t, "a", 1), 2),
                    batch(queue(t, "b", 0), 7),
                ],
            ),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(bases, [Some(0), Some(0), Some(0)]);
    let before = c.transactions();
    let bases = c
        .commit_flush(
            &flush(
                e,
                "wal/00/2.wal",
                vec![batch(queue(t, "a", 0), 4), batch(queue(t, "b", 0), 1)],
            ),
            T0,
        )
        .await
        .inspect(|_| {
            let after = c.transactions();
            assert_eq!(
                (after.all - before.all, after.writes - before.writes),
                (1, 1),
                "one flush, one transaction"
            );
        })
        .unwrap();
    assert_eq!(bases, [Some(3), Some(7)]);
    assert_eq!(c.queue_end(&queue(t, "a", 0)).await.unwrap(), 7);
    let many: Vec<String> = (0..1200)
        .map(|i| format!("wal/zz/{i}.wal"))
        .chain(["wal/00/2.wal".into()])
        .collect();
    let committed = c.committed_objects(&many).await.unwrap();
    assert_eq!(committed.into_iter().collect::<Vec<_>>(), ["wal/00/2.wal"]);
    assert_eq!(c.queue_end(&queue(t, "a", 1)).await.unwrap(), 2);
    assert_eq!(c.queue_end(&queue(t, "b", 0)).await.unwrap(), 8);
}

pub async fn commit_is_all_or_nothing(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-atomic";
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    let err = c
        .commit_flush(
            &flush(
                e,
                "wal/00/x.wal",
                vec![batch(queue(t, "a", 0), 5), batch(queue(t, "ghost", 0), 1)],
            ),
            T0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QueueNotFound { .. }), "{err}");
    assert_eq!(c.queue_end(&queue(t, "a", 0)).await.unwrap(), 0, "nothing appended");
    assert!(
        c.committed_objects(&["wal/00/x.wal".into()]).await.unwrap().is_empty(),
        "nor the object"
    );
    assert!(c.batches(&queue(t, "a", 0), 0, 10).await.unwrap().is_empty());
    // The same object may be committed once the flush is valid.
    let ok = c
        .commit_flush(&flush(e, "wal/00/x.wal", vec![batch(queue(t, "a", 0), 5)]), T0)
        .await
        .unwrap();
    assert_eq!(ok, [Some(0)]);
}

pub async fn concurrent_commits_stay_dense(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-concurrent";
    c.create_topic(&topic_spec(t, "a", 2), T0).await.unwrap();
    let flushes: Vec<_> = (0..40)
        .map(|i| {
            flush(
                e,
                &format!("wal/01/{i}.wal"),
                vec![batch(queue(t, "a", 0), 1 + i % 3), batch(queue(t, "a", 1), 2)],
            )
        })
        .collect();
    let results = futures::future::join_all(flushes.iter().map(|f| c.commit_flush(f, T0))).await;
    let mut ranges: Vec<(i64, i64)> = results
        .iter()
        .zip(&flushes)
        .map(|(r, f)| {
            let base = r.as_ref().unwrap()[0].unwrap();
            (base, base + i64::from(f.batches[0].count))
        })
        .collect();
    ranges.sort();
    let mut next = 0;
    for (start, end) in ranges {
        assert_eq!(start, next, "offsets are dense: no gap, no overlap");
        next = end;
    }
    assert_eq!(c.queue_end(&queue(t, "a", 0)).await.unwrap(), next);
    assert_eq!(c.queue_end(&queue(t, "a", 1)).await.unwrap(), 80);
}

pub async fn batch_lookup(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-lookup";
    let q = queue(t, "a", 0);
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    for (i, n) in [5u32, 1, 10].iter().enumerate() {
        c.commit_flush(&flush(e, &format!("wal/02/{i}.wal"), vec![batch(q.clone(), *n)]), T0)
            .await
            .unwrap();
    }
    let bases = |bs: Vec<Batch>| bs.iter().map(|b| b.base_offset).collect::<Vec<_>>();
    assert_eq!(bases(c.batches(&q, 0, 10).await.unwrap()), [0, 5, 6]);
    assert_eq!(bases(c.batches(&q, 4, 10).await.unwrap()), [0, 5, 6]);
    assert_eq!(bases(c.batches(&q, 5, 10).await.unwrap()), [5, 6]);
    assert_eq!(bases(c.batches(&q, 7, 1).await.unwrap()), [6]);
    assert!(c.batches(&q, 16, 10).await.unwrap().is_empty());
    let b = &c.batches(&q, 6, 1).await.unwrap()[0];
    assert_eq!(b.count, 10);
    assert_eq!(b.end_offset(), 16);
    assert_eq!(b.location.object, "wal/02/2.wal");
    assert_eq!(b.location.crc32c, 0xdead_beef);
    assert_eq!(b.location.compression, 1);
}

pub async fn fill(c: &dyn Coordinator, t: &str, topic: &str, n: u32) -> QueueRef {
    let e = epoch(c).await;
    let q = queue(t, topic, 0);
    c.create_topic(&topic_spec(t, topic, 1), T0).await.unwrap();
    c.commit_flush(
        &flush(e, &format!("wal/03/{t}-{topic}.wal"), vec![batch(q.clone(), n)]),
        T0,
    )
    .await
    .unwrap();
    q
}

pub fn claim_new(s: &Subscription, state: &QueuePopState, take: i64, now: i64, until: i64) -> PopClaim {
    let to = (state.cursor + take).min(state.end);
    PopClaim {
        subscription: s.clone(),
        now_ms: now,
        invisible_until_ms: until,
        dead_letter_topic: None,
        queues: vec![QueueClaim {
            queue: state.queue,
            cursor_from: state.cursor,
            cursor_to: to,
            deliver: new(state.cursor..to),
            ..Default::default()
        }],
    }
}

fn receipt(s: &Subscription, f: &InFlight) -> Receipt {
    Receipt {
        subscription: s.clone(),
        queue: f.queue,
        offset: f.offset,
        seq: f.seq,
    }
}

pub async fn pop_lifecycle(c: &dyn Coordinator) {
    let t = "conf-pop";
    fill(c, t, "a", 5).await;
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    assert_eq!(st[0].cursor, 0, "a new group starts at the first retained offset");
    assert_eq!(st[0].end, 5);
    assert!(st[0].expired.is_empty());

    let got = c.pop_claim(&claim_new(&s, &st[0], 3, T0, T0 + 1000)).await.unwrap();
    assert!(got.conflicts.is_empty());
    let offsets: Vec<_> = got.delivered.iter().map(|f| (f.offset, f.attempt)).collect();
    assert_eq!(offsets, [(0, 1), (1, 1), (2, 1)]);
    assert_eq!(c.next_visible_at(&s).await.unwrap(), Some(T0 + 1000));

    // Another group sees everything independently.
    let other = sub(t, "other", "a");
    assert_eq!(c.pop_state(&other, &[0], T0, 10, false).await.unwrap()[0].cursor, 0);

    // Before the deadline nothing is expired; after it all three are.
    let st = c.pop_state(&s, &[0], T0 + 999, 10, false).await.unwrap();
    assert_eq!(st[0].cursor, 3);
    assert!(st[0].expired.is_empty());
    assert_eq!(
        c.ack(&[receipt(&s, &got.delivered[0])]).await.unwrap(),
        [AckOutcome::Acked]
    );
    let st = c.pop_state(&s, &[0], T0 + 1000, 10, false).await.unwrap();
    let expired: Vec<_> = st[0].expired.iter().map(|f| f.offset).collect();
    assert_eq!(expired, [1, 2], "acked messages never come back");

    // Redeliver offset 1 (attempt 2); its first receipt is now stale.
    let redeliver = PopClaim {
        subscription: s.clone(),
        now_ms: T0 + 1000,
        invisible_until_ms: T0 + 5000,
        dead_letter_topic: None,
        queues: vec![QueueClaim {
            queue: 0,
            cursor_from: 3,
            cursor_to: 3,
            redeliver: vec![(1, st[0].expired[0].seq)],
            ..Default::default()
        }],
    };
    let again = c.pop_claim(&redeliver).await.unwrap();
    assert_eq!(again.delivered.len(), 1);
    assert_eq!(again.delivered[0].attempt, 2);
    let twice = c.pop_claim(&redeliver).await.unwrap();
    assert!(twice.delivered.is_empty(), "a redelivery is claimed once");

    let outcomes = c
        .ack(&[
            receipt(&s, &got.delivered[1]),
            receipt(&s, &again.delivered[0]),
            receipt(&s, &got.delivered[0]),
            Receipt {
                offset: 4,
                ..receipt(&s, &got.delivered[0])
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            AckOutcome::Stale,
            AckOutcome::Acked,
            AckOutcome::AlreadyAcked,
            AckOutcome::Unknown
        ]
    );
}

pub async fn pop_claims_conflict(c: &dyn Coordinator) {
    let t = "conf-conflict";
    fill(c, t, "a", 10).await;
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let first = c.pop_claim(&claim_new(&s, &st[0], 4, T0, T0 + 10)).await.unwrap();
    let second = c.pop_claim(&claim_new(&s, &st[0], 4, T0, T0 + 10)).await.unwrap();
    assert_eq!(first.delivered.len(), 4);
    assert!(second.delivered.is_empty());
    assert_eq!(second.conflicts, [0]);
    // Past the end of the queue is refused too.
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let mut too_far = claim_new(&s, &st[0], 4, T0, T0 + 10);
    too_far.queues[0].cursor_to = 11;
    too_far.queues[0].deliver = new(4..5);
    assert_eq!(c.pop_claim(&too_far).await.unwrap().conflicts, [0]);
    // A filtered-out range moves the cursor without delivering.
    let mut skip = claim_new(&s, &st[0], 6, T0, T0 + 10);
    skip.queues[0].deliver = new(9..10);
    let got = c.pop_claim(&skip).await.unwrap();
    assert_eq!(got.delivered.iter().map(|f| f.offset).collect::<Vec<_>>(), [9]);
    assert_eq!(c.pop_state(&s, &[0], T0, 10, false).await.unwrap()[0].cursor, 10);
    // Unknown queues are skipped in the state.
    assert!(c.pop_state(&s, &[7], T0, 10, false).await.unwrap().is_empty());
}

/// A claim of many messages is recorded as one checkpoint; each message in it is still
/// acknowledged, hidden longer, expired and redelivered on its own.
pub async fn one_claim_keeps_per_message_rules(c: &dyn Coordinator) {
    let t = "conf-checkpoint";
    fill(c, t, "a", 8).await;
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let got = c.pop_claim(&claim_new(&s, &st[0], 8, T0, T0 + 1000)).await.unwrap();
    let r: Vec<Receipt> = got.delivered.iter().map(|f| receipt(&s, f)).collect();
    assert_eq!(r.len(), 8);

    // Acks of part of it, one receipt twice in the same batch.
    assert_eq!(
        c.ack(&[r[2].clone(), r[0].clone(), r[2].clone()]).await.unwrap(),
        [AckOutcome::Acked, AckOutcome::Acked, AckOutcome::AlreadyAcked]
    );
    // One message hidden longer: its old receipt is stale, its neighbours' are not.
    let later = c.change_invisible(&r[5], T0 + 9000).await.unwrap().unwrap();
    assert_eq!((later.offset, later.attempt), (5, 1));
    assert_eq!(c.ack(std::slice::from_ref(&r[5])).await.unwrap(), [AckOutcome::Stale]);
    assert_eq!(c.ack(std::slice::from_ref(&r[3])).await.unwrap(), [AckOutcome::Acked]);

    // At the deadline the rest expires, except the one hidden longer.
    let st = c.pop_state(&s, &[0], T0 + 1000, 10, false).await.unwrap();
    let expired: Vec<i64> = st[0].expired.iter().map(|f| f.offset).collect();
    assert_eq!(expired, [1, 4, 6, 7]);
    assert_eq!(
        c.pop_state(&s, &[0], T0 + 1000, 2, false).await.unwrap()[0]
            .expired
            .len(),
        2
    );
    assert_eq!(c.next_visible_at(&s).await.unwrap(), Some(T0 + 1000));
    // Part of it is redelivered; the other part stays expired with its receipts.
    let redeliver = |offsets: &[i64]| PopClaim {
        subscription: s.clone(),
        now_ms: T0 + 1000,
        invisible_until_ms: T0 + 5000,
        dead_letter_topic: None,
        queues: vec![QueueClaim {
            queue: 0,
            cursor_from: 8,
            cursor_to: 8,
            redeliver: st[0]
                .expired
                .iter()
                .filter(|f| offsets.contains(&f.offset))
                .map(|f| (f.offset, f.seq))
                .collect(),
            ..Default::default()
        }],
    };
    let again = c.pop_claim(&redeliver(&[1, 4])).await.unwrap();
    let attempts: Vec<(i64, i32)> = again.delivered.iter().map(|f| (f.offset, f.attempt)).collect();
    assert_eq!(attempts, [(1, 2), (4, 2)]);
    let st2 = c.pop_state(&s, &[0], T0 + 1000, 10, false).await.unwrap();
    assert_eq!(st2[0].expired.iter().map(|f| f.offset).collect::<Vec<_>>(), [6, 7]);
    assert_eq!(c.ack(std::slice::from_ref(&r[1])).await.unwrap(), [AckOutcome::Stale]);
    assert_eq!(
        c.ack(&[receipt(&s, &again.delivered[0]), r[6].clone()]).await.unwrap(),
        [AckOutcome::Acked, AckOutcome::Acked]
    );
    // The rest of the first claim is redelivered whole; then everything is acknowledged.
    let last = c.pop_claim(&redeliver(&[7])).await.unwrap();
    assert_eq!(
        last.delivered.iter().map(|f| (f.offset, f.attempt)).collect::<Vec<_>>(),
        [(7, 2)]
    );
    let rest = [
        receipt(&s, &last.delivered[0]),
        receipt(&s, &again.delivered[1]),
        receipt(&s, &later),
    ];
    assert_eq!(c.ack(&rest).await.unwrap(), [AckOutcome::Acked; 3]);
    assert_eq!(c.next_visible_at(&s).await.unwrap(), None);
    assert_eq!(c.ack(&rest).await.unwrap(), [AckOutcome::AlreadyAcked; 3]);
}

pub async fn change_invisible_issues_new_seq(c: &dyn Coordinator) {
    let t = "conf-invisible";
    fill(c, t, "a", 1).await;
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let got = c.pop_claim(&claim_new(&s, &st[0], 1, T0, T0 + 100)).await.unwrap();
    let first = receipt(&s, &got.delivered[0]);
    let changed = c.change_invisible(&first, T0 + 60_000).await.unwrap().unwrap();
    assert_ne!(changed.seq, first.seq);
    assert_eq!(changed.attempt, 1);
    assert!(
        c.pop_state(&s, &[0], T0 + 30_000, 10, false).await.unwrap()[0]
            .expired
            .is_empty()
    );
    assert_eq!(c.change_invisible(&first, T0).await.unwrap(), Err(AckOutcome::Stale));
    let second = receipt(&s, &changed);
    assert_eq!(c.ack(std::slice::from_ref(&second)).await.unwrap(), [AckOutcome::Acked]);
    assert_eq!(
        c.change_invisible(&second, T0).await.unwrap(),
        Err(AckOutcome::AlreadyAcked)
    );
    assert_eq!(c.next_visible_at(&s).await.unwrap(), None);
}

pub async fn secrets_are_stable(c: &dyn Coordinator) {
    let a = c.secret("conf-receipt").await.unwrap();
    assert_eq!(a.len(), 32);
    assert_eq!(c.secret("conf-receipt").await.unwrap(), a);
    assert_ne!(c.secret("conf-other").await.unwrap(), a);
}

pub async fn commits_notify(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-notify";
    c.create_topic(&topic_spec(t, "a", 2), T0).await.unwrap();
    let mut rx = c.subscribe();
    c.commit_flush(
        &flush(
            e,
            "wal/04/n.wal",
            vec![batch(queue(t, "a", 0), 1), batch(queue(t, "a", 1), 1)],
        ),
        T0,
    )
    .await
    .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a commit is announced")
        .unwrap();
    assert_eq!(
        event,
        CommitEvent {
            tenant: t.into(),
            topic: Some("a".into()),
            held: false,
        }
    );
    assert!(event.concerns(t, "a") && !event.concerns(t, "b") && !event.concerns("x", "a"));
    assert!(!event.may_hold(), "nothing was held");
    assert!(CommitEvent::missed().concerns(t, "b"), "a wildcard concerns everyone");
    assert!(CommitEvent::missed().may_hold());
    let held = CommitEvent { held: true, ..event };
    assert!(
        held.may_hold() && !held.concerns(t, "a"),
        "held records are not for consumers yet"
    );
}

pub async fn nodes_register_heartbeat_and_expire(c: &dyn Coordinator) {
    let a = c
        .register_node("conf-node-a", Roles::INGEST, "10.0.0.1:8081", T0)
        .await
        .unwrap();
    let b = c
        .register_node("conf-node-b", Roles::QUERY.union(Roles::COMPACTOR), "10.0.0.2:8081", T0)
        .await
        .unwrap();
    assert!(a.alive && b.roles.contains(Roles::QUERY) && !b.roles.contains(Roles::INGEST));
    let again = c
        .register_node("conf-node-a", Roles::INGEST, "10.0.0.1:8082", T0)
        .await
        .unwrap();
    assert!(again.epoch > a.epoch, "a restart is a new epoch");
    assert!(matches!(
        c.heartbeat_node("conf-node-a", a.epoch, T0 + 1).await,
        Err(Error::Fenced { .. })
    ));
    c.heartbeat_node("conf-node-a", again.epoch, T0 + 5_000).await.unwrap();

    let ours = |nodes: Vec<Node>| {
        nodes
            .into_iter()
            .filter(|n| n.id.starts_with("conf-node-"))
            .map(|n| n.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ours(c.live_nodes(T0 + 6_000, 10_000).await.unwrap()),
        ["conf-node-a", "conf-node-b"]
    );
    assert_eq!(
        ours(c.live_nodes(T0 + 12_000, 10_000).await.unwrap()),
        ["conf-node-a"],
        "b missed heartbeats"
    );
    let expired = c.expire_nodes(T0 + 12_000, 10_000).await.unwrap();
    assert!(expired.contains(&"conf-node-b".to_string()) && !expired.contains(&"conf-node-a".to_string()));
    assert!(matches!(
        c.heartbeat_node("conf-node-b", b.epoch, T0 + 12_001).await,
        Err(Error::Fenced { .. })
    ));
    let back = c
        .register_node("conf-node-b", Roles::QUERY, "10.0.0.2:8081", T0 + 13_000)
        .await
        .unwrap();
    assert!(back.alive && back.epoch > b.epoch);
}

pub async fn dead_writers_are_fenced(c: &dyn Coordinator) {
    let t = "conf-fence";
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    let node = c
        .register_node("conf-zombie", Roles::INGEST, "10.0.0.3:8081", T0)
        .await
        .unwrap();
    let commit = |object: &str, epoch: i64| FlushCommit {
        writer: "conf-zombie".into(),
        writer_epoch: epoch,
        ..flush(epoch, object, vec![batch(queue(t, "a", 0), 2)])
    };
    assert_eq!(
        c.commit_flush(&commit("wal/05/a.wal", node.epoch), T0).await.unwrap(),
        [Some(0)]
    );
    // Declared dead: its commits are refused and nothing is appended.
    c.expire_nodes(T0 + 100_000, 10_000).await.unwrap();
    let err = c
        .commit_flush(&commit("wal/05/b.wal", node.epoch), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err}");
    assert_eq!(c.queue_end(&queue(t, "a", 0)).await.unwrap(), 2);
    // Registered again, the new epoch commits; the old one stays fenced.
    let new = c
        .register_node("conf-zombie", Roles::INGEST, "10.0.0.3:8081", T0 + 100_001)
        .await
        .unwrap();
    assert!(matches!(
        c.commit_flush(&commit("wal/05/c.wal", node.epoch), T0).await,
        Err(Error::Fenced { .. })
    ));
    assert_eq!(
        c.commit_flush(&commit("wal/05/d.wal", new.epoch), T0).await.unwrap(),
        [Some(2)]
    );
}

/// Writes state that [`write_then_reopen_part2`] checks after the backend is reopened.
pub async fn write_then_reopen_part1(c: &dyn Coordinator) {
    register_writer(c).await;
    let q = fill(c, "conf-reopen", "a", 3).await;
    let s = sub("conf-reopen", "g", "a");
    let st = c.pop_state(&s, &[q.queue], T0, 10, false).await.unwrap();
    c.pop_claim(&claim_new(&s, &st[0], 2, T0, T0 + 100)).await.unwrap();
    c.secret("conf-reopen").await.unwrap();
}

pub async fn write_then_reopen_part2(c: &dyn Coordinator) {
    let q = queue("conf-reopen", "a", 0);
    assert_eq!(c.queue_end(&q).await.unwrap(), 3);
    assert_eq!(c.batches(&q, 0, 10).await.unwrap().len(), 1);
    let s = sub("conf-reopen", "g", "a");
    let st = c.pop_state(&s, &[0], T0 + 100, 10, false).await.unwrap();
    assert_eq!(st[0].cursor, 2);
    assert_eq!(st[0].expired.len(), 2);
    assert_eq!(c.secret("conf-reopen").await.unwrap().len(), 32);
}

/// Several coordinator handles (as on several ingest nodes) commit flushes to the same queues
/// at once: every queue's offsets stay dense and strictly increasing, and every flush gets a
/// distinct range.
pub async fn concurrent_committers(nodes: &[&dyn Coordinator]) {
    let t = "conf-committers";
    let c = nodes[0];
    c.create_topic(&topic_spec(t, "a", 3), T0).await.unwrap();
    let mut epochs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let node = n
            .register_node(&format!("conf-committer-{i}"), Roles::INGEST, "h:1", T0)
            .await
            .unwrap();
        n.heartbeat_node(&node.id, node.epoch, i64::MAX / 2).await.unwrap();
        epochs.push((node.id, node.epoch));
    }
    const FLUSHES: usize = 25;
    let work = nodes.iter().zip(&epochs).map(|(n, (id, epoch))| async move {
        let mut ranges = Vec::new();
        for f in 0..FLUSHES {
            // Each flush touches the queues in a different order.
            let mut queues: Vec<i32> = vec![0, 1, 2];
            queues.rotate_left(f % 3);
            let count = 1 + (f % 4) as u32;
            let commit = FlushCommit {
                writer: id.clone(),
                writer_epoch: *epoch,
                ..flush(
                    *epoch,
                    &format!("wal/06/{id}-{f}.wal"),
                    queues.iter().map(|q| batch(queue(t, "a", *q), count)).collect(),
                )
            };
            let bases = n.commit_flush(&commit, T0).await.unwrap();
            for (q, base) in queues.iter().zip(bases.into_iter().flatten()) {
                ranges.push((*q, base, base + i64::from(count)));
            }
        }
        ranges
    });
    let mut all: Vec<(i32, i64, i64)> = futures::future::join_all(work).await.into_iter().flatten().collect();
    all.sort();
    for q in 0..3 {
        let mut next = 0;
        for (_, start, end) in all.iter().filter(|r| r.0 == q) {
            assert_eq!(*start, next, "queue {q}: offsets are dense, no gap and no overlap");
            next = *end;
        }
        assert_eq!(c.queue_end(&queue(t, "a", q)).await.unwrap(), next);
        assert_eq!(
            c.batches(&queue(t, "a", q), 0, 10_000).await.unwrap().len(),
            nodes.len() * FLUSHES
        );
    }
}

/// A flush whose one block is held: each record a timer or a half message.
fn held_flush(e: i64, object: &str, q: QueueRef, holds: Vec<Hold>) -> FlushCommit {
    let mut b = batch(q, holds.len() as u32);
    b.held = holds;
    flush(e, object, vec![b])
}

fn hold(kind: HoldKind, id: &str, due_ms: i64) -> Hold {
    Hold {
        kind,
        message_id: id.into(),
        due_ms,
    }
}

async fn records_of(c: &dyn Coordinator, q: &QueueRef) -> Vec<(String, u64, u32)> {
    c.batches(q, 0, 1000)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| (0..b.count).map(move |i| (b.location.object.clone(), b.location.offset, b.first_record + i)))
        .collect()
}

pub async fn timers_fire_when_due_and_can_be_recalled(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-timers";
    c.create_topic(
        &TopicSpec {
            message_type: MessageType::Delay,
            ..topic_spec(t, "d", 1)
        },
        T0,
    )
    .await
    .unwrap();
    let q = queue(t, "d", 0);
    // Three timers in one block: due in 1 s, in 365 days, and in 2 s.
    let year = 365 * 24 * 3_600_000;
    let holds = vec![
        hold(HoldKind::Timer, "m0", T0 + 1_000),
        hold(HoldKind::Timer, "m1", T0 + year),
        hold(HoldKind::Timer, "m2", T0 + 2_000),
    ];
    let bases = c
        .commit_flush(&held_flush(e, "wal/07/t.wal", q.clone(), holds), T0)
        .await
        .unwrap();
    assert_eq!(bases, [None], "held records get no offset");
    assert_eq!(c.queue_end(&q).await.unwrap(), 0, "nothing visible yet");
    assert!(
        c.committed_objects(&["wal/07/t.wal".into()])
            .await
            .unwrap()
            .contains("wal/07/t.wal")
    );
    assert_eq!(c.next_timer_at().await.unwrap().map(|d| d <= T0 + 1_000), Some(true));

    assert_eq!(c.fire_due_timers(T0 + 999, 100).await.unwrap(), 0);
    assert_eq!(c.fire_due_timers(T0 + 5_000, 100).await.unwrap(), 2);
    // Zero copy: the queue references records 0 and 2 of the original block, in due order.
    assert_eq!(
        records_of(c, &q).await,
        [("wal/07/t.wal".into(), 8, 0), ("wal/07/t.wal".into(), 8, 2)]
    );
    assert_eq!(
        c.fire_due_timers(T0 + 5_000, 100).await.unwrap(),
        0,
        "a timer fires once"
    );

    // The year-long timer can be recalled until it fires; afterwards recall finds nothing.
    let long = held_id("wal/07/t.wal", 8, 1);
    assert_eq!(
        c.recall_timer(t, "other", &long).await.unwrap(),
        None,
        "recall is bound to the topic"
    );
    assert_eq!(c.recall_timer(t, "d", &long).await.unwrap().as_deref(), Some("m1"));
    assert_eq!(c.recall_timer(t, "d", &long).await.unwrap(), None);
    assert_eq!(
        c.fire_due_timers(T0 + 2 * year, 100).await.unwrap(),
        0,
        "a recalled timer never fires"
    );
    let fired = held_id("wal/07/t.wal", 8, 0);
    assert_eq!(c.recall_timer(t, "d", &fired).await.unwrap(), None, "fired: too late");
}

pub async fn transactions_commit_roll_back_and_get_checked(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-tx";
    c.create_topic(
        &TopicSpec {
            message_type: MessageType::Transaction,
            ..topic_spec(t, "x", 1)
        },
        T0,
    )
    .await
    .unwrap();
    let q = queue(t, "x", 0);
    let holds = (0..4)
        .map(|i| hold(HoldKind::Transaction, &format!("h{i}"), T0 + 5_000))
        .collect();
    c.commit_flush(&held_flush(e, "wal/08/x.wal", q.clone(), holds), T0)
        .await
        .unwrap();
    let id = |i: u32| held_id("wal/08/x.wal", 8, i);
    assert_eq!(c.queue_end(&q).await.unwrap(), 0, "half messages are invisible");

    assert!(c.end_transaction(t, "x", &id(0), true).await.unwrap());
    assert!(!c.end_transaction(t, "x", &id(0), true).await.unwrap(), "resolved once");
    assert!(c.end_transaction(t, "x", &id(1), false).await.unwrap());
    assert_eq!(
        records_of(c, &q).await,
        [("wal/08/x.wal".into(), 8, 0)],
        "only the committed one"
    );
    // Not timers: firing leaves them alone.
    assert_eq!(c.fire_due_timers(T0 + 100_000, 100).await.unwrap(), 0);

    // Checks: nothing due before the first check time; then each due one is claimed once.
    let topics = [(t.to_string(), "x".to_string())];
    assert!(
        c.claim_transaction_checks(&topics, T0 + 4_999, 15_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let first = c
        .claim_transaction_checks(&topics, T0 + 5_000, 15_000, 10)
        .await
        .unwrap();
    let mut ids: Vec<_> = first.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, [id(2), id(3)]);
    assert!(
        first
            .iter()
            .all(|h| h.checks == 1 && h.due_ms == T0 + 20_000 && h.kind == HoldKind::Transaction)
    );
    assert!(
        c.claim_transaction_checks(&topics, T0 + 5_000, 15_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        c.claim_transaction_checks(&[(t.into(), "other".into())], T0 + 99_000, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // An answer to the check resolves it; an unanswered one rolls back after the last check.
    assert!(c.end_transaction(t, "x", &id(2), true).await.unwrap());
    assert_eq!(
        c.expire_transactions(T0 + 19_999, 1).await.unwrap(),
        0,
        "its check may still be answered"
    );
    assert_eq!(c.expire_transactions(T0 + 20_000, 2).await.unwrap(), 0, "checks left");
    // The second check of h3 comes twice as late (backoff).
    let second = c
        .claim_transaction_checks(&topics, T0 + 20_000, 15_000, 10)
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|h| (h.checks, h.due_ms)).collect::<Vec<_>>(),
        [(2, T0 + 50_000)]
    );
    assert_eq!(c.expire_transactions(T0 + 49_999, 2).await.unwrap(), 0);
    assert_eq!(c.expire_transactions(T0 + 50_000, 2).await.unwrap(), 1);
    assert!(!c.end_transaction(t, "x", &id(3), true).await.unwrap(), "rolled back");
    assert_eq!(c.queue_end(&q).await.unwrap(), 2);
}

pub async fn messages_out_of_attempts_go_to_the_dead_letter_topic(c: &dyn Coordinator) {
    let t = "conf-dlq";
    fill(c, t, "a", 3).await;
    let dlq = dead_letter_topic("g");
    c.create_topic(&topic_spec(t, &dlq, 1), T0).await.unwrap();
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let got = c.pop_claim(&claim_new(&s, &st[0], 3, T0, T0 + 10)).await.unwrap();
    assert_eq!(got.delivered.len(), 3);

    // Offset 0 is out of attempts: it moves to the DLQ once expired, not before.
    let out = |now: i64| PopClaim {
        subscription: s.clone(),
        now_ms: now,
        invisible_until_ms: now + 10,
        dead_letter_topic: Some(dlq.clone()),
        queues: vec![QueueClaim {
            queue: 0,
            cursor_from: 3,
            cursor_to: 3,
            dead_letter: vec![(0, got.delivered[0].seq)],
            ..Default::default()
        }],
    };
    assert!(
        c.pop_claim(&out(T0 + 5)).await.unwrap().dead_lettered.is_empty(),
        "not expired yet"
    );
    assert_eq!(c.pop_claim(&out(T0 + 10)).await.unwrap().dead_lettered, [(0, 0)]);
    assert!(
        c.pop_claim(&out(T0 + 10)).await.unwrap().dead_lettered.is_empty(),
        "moved once"
    );
    // The client forwards offset 1 itself after its last attempt.
    assert_eq!(
        c.dead_letter(&receipt(&s, &got.delivered[1]), &dlq).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        c.dead_letter(&receipt(&s, &got.delivered[1]), &dlq).await.unwrap(),
        Err(AckOutcome::AlreadyAcked)
    );
    // The DLQ references the original records (zero copy) and is consumed like any topic.
    let dq = queue(t, &dlq, 0);
    let object = format!("wal/03/{t}-a.wal");
    assert_eq!(records_of(c, &dq).await, [(object.clone(), 8, 0), (object, 8, 1)]);
    let dsub = sub(t, "dlq-reader", &dlq);
    let dst = c.pop_state(&dsub, &[0], T0, 10, false).await.unwrap();
    assert_eq!(
        c.pop_claim(&claim_new(&dsub, &dst[0], 10, T0, T0 + 10))
            .await
            .unwrap()
            .delivered
            .len(),
        2
    );
    // Nothing left in flight for the original group but offset 2.
    assert_eq!(
        c.pop_state(&s, &[0], T0 + 100, 10, false).await.unwrap()[0]
            .expired
            .len(),
        1
    );
}

pub async fn fifo_groups_have_one_message_in_flight(c: &dyn Coordinator) {
    let t = "conf-fifo";
    fill(c, t, "a", 5).await;
    let s = sub(t, "g", "a");
    let taken = |offset: i64, g: &str| Taken {
        offset,
        group: Some(g.into()),
    };
    let st = c.pop_state(&s, &[0], T0, 10, true).await.unwrap();
    assert!(st[0].ready.is_empty() && st[0].busy.is_empty());
    // Messages 0..5 belong to groups A A B A B: deliver the head of each group, park the rest.
    let claim = |q: QueueClaim| PopClaim {
        subscription: s.clone(),
        now_ms: T0,
        invisible_until_ms: T0 + 100,
        dead_letter_topic: None,
        queues: vec![q],
    };
    let got = c
        .pop_claim(&claim(QueueClaim {
            queue: 0,
            cursor_from: 0,
            cursor_to: 5,
            deliver: vec![taken(0, "A"), taken(2, "B")],
            park: vec![taken(1, "A"), taken(3, "A"), taken(4, "B")],
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(
        got.delivered
            .iter()
            .map(|f| (f.offset, f.group.clone()))
            .collect::<Vec<_>>(),
        [(0, Some("A".into())), (2, Some("B".into()))]
    );
    let st = c.pop_state(&s, &[0], T0, 10, true).await.unwrap();
    assert!(st[0].ready.is_empty(), "both groups have a message in flight");
    let mut busy = st[0].busy.clone();
    busy.sort();
    assert_eq!(busy, ["A", "B"]);
    assert!(st[0].expired.is_empty(), "waiting messages are not in flight");
    assert_eq!(
        c.next_visible_at(&s).await.unwrap(),
        Some(T0 + 100),
        "waiting messages have no deadline"
    );

    // Releasing A's next message while A's head is in flight is refused.
    let release = |offsets: Vec<i64>| QueueClaim {
        queue: 0,
        cursor_from: 5,
        cursor_to: 5,
        release: offsets,
        ..Default::default()
    };
    assert!(
        c.pop_claim(&claim(release(vec![1])))
            .await
            .unwrap()
            .delivered
            .is_empty()
    );
    // Acked, A's next message is ready (B still busy); released, it is in flight.
    assert_eq!(
        c.ack(&[receipt(&s, &got.delivered[0])]).await.unwrap(),
        [AckOutcome::Acked]
    );
    let st = c.pop_state(&s, &[0], T0, 10, true).await.unwrap();
    assert_eq!(
        st[0].ready,
        [Waiting {
            offset: 1,
            group: "A".into()
        }]
    );
    let next = c.pop_claim(&claim(release(vec![1, 3]))).await.unwrap();
    assert_eq!(
        next.delivered.iter().map(|f| f.offset).collect::<Vec<_>>(),
        [1],
        "only the head of A"
    );
    // A plan made before A became busy again cannot put a second A message in flight: it waits.
    c.commit_flush(
        &flush(epoch(c).await, "wal/09/f.wal", vec![batch(queue(t, "a", 0), 1)]),
        T0,
    )
    .await
    .unwrap();
    let late = c
        .pop_claim(&claim(QueueClaim {
            queue: 0,
            cursor_from: 5,
            cursor_to: 6,
            deliver: vec![taken(5, "A")],
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(late.delivered.is_empty());
    let st = c.pop_state(&s, &[0], T0, 10, true).await.unwrap();
    assert_eq!(st[0].cursor, 6);
    assert!(st[0].ready.is_empty());
    // A retry stays in place: the expired head of A is redelivered before anything after it.
    let st = c.pop_state(&s, &[0], T0 + 100, 10, true).await.unwrap();
    let expired: Vec<_> = st[0].expired.iter().map(|f| (f.offset, f.group.clone())).collect();
    assert_eq!(expired, [(1, Some("A".into())), (2, Some("B".into()))]);
}

fn swap(q: &QueueRef, from: i64, to: i64, replaced: u32, rows: &[u32], holder: &str) -> CompactionSwap {
    CompactionSwap {
        queue: q.clone(),
        from,
        to,
        replaced_batches: replaced,
        file: format!("data/{}/{}/{}/{from:020}.parquet", q.tenant, q.topic, q.queue),
        file_size: 4096,
        row_groups: rows
            .iter()
            .map(|&r| RowGroup {
                rows: r,
                min_timestamp_ms: T0,
                max_timestamp_ms: T0 + 5,
            })
            .collect(),
        lease: format!("compact/{}/{}/{}", q.tenant, q.topic, q.queue),
        holder: holder.into(),
    }
}

pub async fn compaction_swaps_batches_atomically(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-compact";
    let q = queue(t, "a", 0);
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    for (i, n) in [2u32, 3, 1].iter().enumerate() {
        c.commit_flush(&flush(e, &format!("wal/10/{i}.wal"), vec![batch(q.clone(), *n)]), T0)
            .await
            .unwrap();
    }
    assert!(
        !c.compaction_candidates(T0, 100).await.unwrap().contains(&q),
        "too fresh"
    );
    assert!(c.compaction_candidates(T0 + 10, 1000).await.unwrap().contains(&q));

    let lease = swap(&q, 0, 6, 3, &[4, 2], "c1").lease;
    assert!(c.acquire_lease(&lease, "c1", T0, 1_000).await.unwrap());
    assert!(
        c.acquire_lease(&lease, "c1", T0 + 10, 1_000).await.unwrap(),
        "renewed by its holder"
    );
    assert!(
        !c.acquire_lease(&lease, "c2", T0 + 500, 1_000).await.unwrap(),
        "held by another"
    );
    // Stale expectations change nothing.
    assert!(
        !c.swap_compacted(&swap(&q, 0, 6, 2, &[4, 2], "c1"), T0 + 20)
            .await
            .unwrap(),
        "batch count"
    );
    assert!(
        !c.swap_compacted(&swap(&q, 0, 5, 3, &[5], "c1"), T0 + 20).await.unwrap(),
        "range"
    );
    assert!(
        !c.swap_compacted(&swap(&q, 0, 6, 3, &[4, 2], "c2"), T0 + 20)
            .await
            .unwrap(),
        "not the lease holder"
    );
    // A holder whose lease expired and was taken over is fenced.
    assert!(c.acquire_lease(&lease, "c2", T0 + 2_000, 1_000).await.unwrap());
    assert!(
        !c.swap_compacted(&swap(&q, 0, 6, 3, &[4, 2], "c1"), T0 + 2_001)
            .await
            .unwrap()
    );
    assert_eq!(c.batches(&q, 0, 10).await.unwrap().len(), 3, "nothing changed");

    assert!(
        c.swap_compacted(&swap(&q, 0, 6, 3, &[4, 2], "c2"), T0 + 2_001)
            .await
            .unwrap()
    );
    c.release_lease(&lease, "c2").await.unwrap();
    let after = c.batches(&q, 0, 10).await.unwrap();
    let shape: Vec<_> = after
        .iter()
        .map(|b| (b.base_offset, b.count, b.location.format, b.location.offset))
        .collect();
    assert_eq!(
        shape,
        [(0, 4, BlockFormat::Parquet, 0), (4, 2, BlockFormat::Parquet, 1)],
        "row groups are batches"
    );
    assert_eq!(
        c.batches(&q, 5, 10).await.unwrap()[0].base_offset,
        4,
        "offsets unchanged"
    );
    assert_eq!(c.queue_end(&q).await.unwrap(), 6);
    assert!(
        !c.swap_compacted(&swap(&q, 0, 6, 3, &[4, 2], "c2"), T0 + 3_000)
            .await
            .unwrap(),
        "done once"
    );
    assert!(!c.compaction_candidates(T0 + 10_000, 1000).await.unwrap().contains(&q));

    // The WAL objects are now referenced by nothing: deletable after the grace period.
    let wal: Vec<String> = (0..3).map(|i| format!("wal/10/{i}.wal")).collect();
    let early = c.unreferenced_objects(T0 + 3_000, 60_000, 1000).await.unwrap();
    assert!(!early.iter().any(|o| wal.contains(o)), "not before the grace period");
    let due = c.unreferenced_objects(T0 + 63_000, 60_000, 1000).await.unwrap();
    for w in &wal {
        assert!(due.contains(w), "{w} in {due:?}");
    }
    assert!(!due.iter().any(|o| o.ends_with(".parquet")), "the file is referenced");
    c.forget_object(&wal[0]).await.unwrap();
    assert!(
        !c.unreferenced_objects(T0 + 63_000, 60_000, 1000)
            .await
            .unwrap()
            .contains(&wal[0])
    );
}

pub async fn retention_moves_everyone_past_expired_batches(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-retention";
    let q = queue(t, "a", 0);
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    let topic = c.topic(t, "a").await.unwrap().unwrap();
    assert_eq!(topic.retention_ms, DEFAULT_RETENTION_MS);
    let mut b1 = batch(q.clone(), 3);
    b1.max_timestamp_ms = T0;
    let mut b2 = batch(q.clone(), 2);
    b2.max_timestamp_ms = T0 + DEFAULT_RETENTION_MS;
    c.commit_flush(&flush(e, "wal/11/a.wal", vec![b1]), T0).await.unwrap();
    c.commit_flush(&flush(e, "wal/11/b.wal", vec![b2]), T0).await.unwrap();
    // A consumer at offset 1 with offset 1 in flight; a stream reader at 0.
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    c.pop_claim(&claim_new(&s, &st[0], 2, T0, T0 + 10)).await.unwrap();
    c.commit_offset(&s, 0, 0).await.unwrap();

    assert_eq!(
        c.apply_retention(T0 + DEFAULT_RETENTION_MS - 1, 0, 100).await.unwrap(),
        0
    );
    assert_eq!(
        c.apply_retention(T0 + DEFAULT_RETENTION_MS + 1, 0, 100).await.unwrap(),
        1,
        "only the old batch"
    );
    assert_eq!(c.queue_bounds(&q).await.unwrap(), (3, 5));
    assert_eq!(c.batches(&q, 0, 10).await.unwrap().len(), 1);
    let st = c.pop_state(&s, &[0], T0 + 100, 10, false).await.unwrap();
    assert_eq!(st[0].cursor, 3, "the group's cursor moved past the removed batch");
    assert!(
        st[0].expired.is_empty(),
        "in-flight messages of removed batches are gone"
    );
    assert_eq!(c.committed_offset(&s, 0).await.unwrap(), Some(3));
    let fresh = sub(t, "fresh", "a");
    assert_eq!(
        c.pop_state(&fresh, &[0], T0, 10, false).await.unwrap()[0].cursor,
        3,
        "new groups start at the first kept offset"
    );
    let gone = c
        .unreferenced_objects(T0 + DEFAULT_RETENTION_MS + 1, 0, 1000)
        .await
        .unwrap();
    assert!(gone.contains(&"wal/11/a.wal".to_string()) && !gone.contains(&"wal/11/b.wal".to_string()));
}

pub async fn stream_offsets_bounds_and_time_lookup(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-stream";
    let q = queue(t, "a", 0);
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    for i in 0..3i64 {
        let mut b = batch(q.clone(), 2);
        b.max_timestamp_ms = T0 + i * 1000;
        c.commit_flush(&flush(e, &format!("wal/12/{i}.wal"), vec![b]), T0)
            .await
            .unwrap();
    }
    assert_eq!(c.queue_bounds(&q).await.unwrap(), (0, 6));
    assert!(matches!(
        c.queue_bounds(&queue(t, "nope", 0)).await,
        Err(Error::QueueNotFound { .. })
    ));
    assert_eq!(
        c.batch_at_time(&q, T0 - 5).await.unwrap().map(|b| b.base_offset),
        Some(0)
    );
    assert_eq!(
        c.batch_at_time(&q, T0 + 1).await.unwrap().map(|b| b.base_offset),
        Some(2)
    );
    assert_eq!(
        c.batch_at_time(&q, T0 + 2000).await.unwrap().map(|b| b.base_offset),
        Some(4)
    );
    assert_eq!(c.batch_at_time(&q, T0 + 2001).await.unwrap(), None);
    let s = sub(t, "reader", "a");
    assert_eq!(c.committed_offset(&s, 0).await.unwrap(), None);
    c.commit_offset(&s, 0, 4).await.unwrap();
    c.commit_offset(&s, 0, 5).await.unwrap();
    assert_eq!(c.committed_offset(&s, 0).await.unwrap(), Some(5));
    assert_eq!(c.committed_offset(&sub(t, "other", "a"), 0).await.unwrap(), None);
}
