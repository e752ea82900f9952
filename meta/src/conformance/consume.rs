//! Consumption: pop claims and checkpoints, acks, invisible time, dead letters, FIFO, stream offsets.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every consume check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    pop_lifecycle(c).await;
    pop_claims_conflict(c).await;
    change_invisible_issues_new_seq(c).await;
    one_claim_keeps_per_message_rules(c).await;
    messages_out_of_attempts_go_to_the_dead_letter_topic(c).await;
    broadcast_progress_starts_at_the_end_and_expires(c).await;
    a_cursor_reset_is_clamped_to_the_retained_range(c).await;
    fifo_groups_have_one_message_in_flight(c).await;
    stream_offsets_bounds_and_time_lookup(c).await;
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
        c.dead_letter(&receipt(&s, &got.delivered[1]), &dlq, T0).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        c.dead_letter(&receipt(&s, &got.delivered[1]), &dlq, T0).await.unwrap(),
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

/// A broadcast client's progress: it starts at the queues' ends, drops what runs out of
/// attempts (no dead-letter topic), and goes with its cursors and in-flight rows once no
/// node has seen the client for long.
pub async fn broadcast_progress_starts_at_the_end_and_expires(c: &dyn Coordinator) {
    let t = "conf-broadcast";
    fill(c, t, "a", 5).await;
    let one = sub(t, &broadcast_progress("g", "client-1"), "a");
    let two = sub(t, &broadcast_progress("g", "client-2"), "a");
    assert_eq!(one.group_name(), "g");
    assert!(one.is_broadcast() && !sub(t, "g", "a").is_broadcast());
    c.start_progress(&one, true, T0).await.unwrap();
    let st = c.pop_state(&one, &[0], T0, 10, false).await.unwrap();
    assert_eq!((st[0].cursor, st[0].end), (5, 5), "starts at the end");
    // Messages arrive; starting again (another node, a minute later) keeps the cursor.
    let e = epoch(c).await;
    let q = queue(t, "a", 0);
    c.commit_flush(&flush(e, &format!("wal/03/{t}-more.wal"), vec![batch(q, 3)]), T0)
        .await
        .unwrap();
    c.start_progress(&one, true, T0 + 60_000).await.unwrap();
    c.start_progress(&two, false, T0 + 60_000).await.unwrap();
    let st = c.pop_state(&one, &[0], T0, 10, false).await.unwrap();
    assert_eq!((st[0].cursor, st[0].end), (5, 8));
    assert_eq!(
        c.pop_state(&two, &[0], T0, 10, false).await.unwrap()[0].cursor,
        0,
        "earliest"
    );
    let got = c.pop_claim(&claim_new(&one, &st[0], 3, T0, T0 + 10)).await.unwrap();
    assert_eq!(got.delivered.len(), 3);
    // Out of attempts: dropped for this client, without a dead-letter topic.
    let drop = PopClaim {
        subscription: one.clone(),
        now_ms: T0 + 10,
        invisible_until_ms: T0 + 20,
        dead_letter_topic: None,
        queues: vec![QueueClaim {
            queue: 0,
            cursor_from: 8,
            cursor_to: 8,
            dead_letter: vec![(5, got.delivered[0].seq)],
            ..Default::default()
        }],
    };
    assert_eq!(c.pop_claim(&drop).await.unwrap().dead_lettered, [(0, 5)]);
    assert_eq!(
        c.next_visible_at(&one).await.unwrap(),
        Some(T0 + 10),
        "6 and 7 in flight"
    );

    // Client 2 was seen later than client 1: only client 1's progress expires.
    assert_eq!(c.expire_broadcast_progress(T0 + 30_000, 10).await.unwrap(), 0);
    assert_eq!(c.expire_broadcast_progress(T0 + 60_001, 10).await.unwrap(), 2);
    assert_eq!(c.next_visible_at(&one).await.unwrap(), None, "in-flight rows gone");
    assert_eq!(
        c.pop_state(&one, &[0], T0, 10, false).await.unwrap()[0].cursor,
        0,
        "cursor gone"
    );
    assert_eq!(c.expire_broadcast_progress(i64::MAX, 10).await.unwrap(), 0);
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

pub async fn a_cursor_reset_is_clamped_to_the_retained_range(c: &dyn Coordinator) {
    let t = "conf-reset";
    fill(c, t, "a", 5).await;
    let s = sub(t, "g", "a");
    // Within the range; past the end; before the first retained offset.
    for (to, expected) in [(3, 3), (99, 5), (-7, 0)] {
        c.reset_cursor(&s, 0, to).await.unwrap();
        let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
        assert_eq!(st[0].cursor, expected, "reset to {to}");
    }
    assert!(matches!(
        c.reset_cursor(&sub(t, "g", "missing"), 0, 1).await,
        Err(Error::QueueNotFound { .. })
    ));
}
