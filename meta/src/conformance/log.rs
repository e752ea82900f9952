//! Log: flush commits, dense offsets, the batch index, commit notifications.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every log check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    commit_assigns_dense_offsets(c).await;
    commit_is_all_or_nothing(c).await;
    a_retried_commit_returns_its_first_offsets(c).await;
    concurrent_commits_stay_dense(c).await;
    batch_lookup(c).await;
    probe_commits_are_counted(c).await;
    commits_notify(c).await;
    a_flush_to_many_queues_keeps_each_dense(c).await;
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
                vec![batch(queue(t, "a", 0), 5), batch(queue(t, "a", 3), 1)],
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

/// A commit whose answer was lost (the connection dropped during COMMIT) is retried with the
/// same flush: the retry answers what the first commit did and appends nothing.
pub async fn a_retried_commit_returns_its_first_offsets(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-retry";
    c.create_topic(&topic_spec(t, "a", 2), T0).await.unwrap();
    c.commit_flush(&flush(e, "wal/00/r0.wal", vec![batch(queue(t, "a", 1), 4)]), T0)
        .await
        .unwrap();
    let mut timer = batch(queue(t, "a", 0), 1);
    timer.location.offset = 900;
    timer.held = vec![hold(HoldKind::Timer, "retry-timer", T0 + 60_000)];
    let f = flush(
        e,
        "wal/00/r1.wal",
        vec![batch(queue(t, "a", 0), 3), batch(queue(t, "a", 1), 2), timer],
    );
    let first = c.commit_flush(&f, T0).await.unwrap();
    assert_eq!(first, [Some(0), Some(4), None]);
    assert_eq!(c.commit_flush(&f, T0 + 5).await.unwrap(), first, "the retry's answer");
    assert_eq!(
        c.queue_end(&queue(t, "a", 0)).await.unwrap(),
        3,
        "nothing appended twice"
    );
    assert_eq!(c.queue_end(&queue(t, "a", 1)).await.unwrap(), 6);
    assert_eq!(
        c.next_timer_at().await.unwrap(),
        Some(T0 + 60_000),
        "the timer is held once"
    );
    // Another node's flush can never name this object; if it did, it would be refused.
    let mut other = f.clone();
    other.writer = "conf-other".into();
    let err = c.commit_flush(&other, T0).await.unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err}");
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
            .register_node(&format!("conf-committer-{i}"), Roles::INGEST, "h:1", None, T0)
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

/// More queues and batches than one multi-row statement takes, a queue twice, out of order.
pub async fn a_flush_to_many_queues_keeps_each_dense(c: &dyn Coordinator) {
    use crate::lite::{TopicQuota, first_offset, queue_topic};
    let e = epoch(c).await;
    let t = "conf-many";
    c.create_topic(
        &TopicSpec {
            message_type: MessageType::Lite,
            ..topic_spec(t, "chat", 1)
        },
        T0,
    )
    .await
    .unwrap();
    let names: Vec<String> = (0..700).map(|i| format!("s{i}")).collect();
    c.create_lite_topics(t, "chat", &names, TopicQuota::per_parent(1000), T0)
        .await
        .unwrap();
    let q = |i: usize| queue(t, &queue_topic("chat", &names[i]), 0);
    // Every lite topic once (3 records), in reverse, then s5 again (2 records).
    let batches: Vec<AppendBatch> = (0..700).rev().map(|i| batch(q(i), 3)).chain([batch(q(5), 2)]).collect();
    let bases = c.commit_flush(&flush(e, "wal/00/many.wal", batches), T0).await.unwrap();
    let start = first_offset(T0);
    assert!(
        bases[..700].iter().all(|b| *b == Some(start)),
        "each lite topic starts at its first offset"
    );
    assert_eq!(
        bases[700],
        Some(start + 3),
        "a second batch of a queue follows its first"
    );
    assert_eq!(c.queue_end(&q(5)).await.unwrap(), start + 5);
    assert_eq!(c.queue_end(&q(699)).await.unwrap(), start + 3);
    let found = c.batches(&q(5), start, 10).await.unwrap();
    assert_eq!(
        found.iter().map(|b| (b.base_offset, b.count)).collect::<Vec<_>>(),
        [(start, 3), (start + 3, 2)]
    );
}
