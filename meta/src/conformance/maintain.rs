//! Maintenance: compaction swaps and retention.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every maintain check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    compaction_swaps_batches_atomically(c).await;
    retention_moves_everyone_past_expired_batches(c).await;
    orphan_claims_fence_late_commits(c).await;
    unreadable_batches_are_quarantined_then_retried_or_dropped(c).await;
    held_records_move_to_an_object_of_their_own(c).await;
    stored_bytes_count_each_block_once(c).await;
}

pub async fn stored_bytes_count_each_block_once(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-stored";
    c.create_topic(&topic_spec(t, "a", 2), T0).await.unwrap();
    let mut second = batch(queue(t, "a", 1), 2);
    second.location.offset = 108;
    c.commit_flush(
        &flush(e, "wal/conf-stored-1", vec![batch(queue(t, "a", 0), 3), second]),
        T0,
    )
    .await
    .unwrap();
    c.commit_flush(&flush(e, "wal/conf-stored-2", vec![batch(queue(t, "a", 0), 1)]), T0)
        .await
        .unwrap();
    let stored = c.stored_bytes().await.unwrap();
    let mine = stored.iter().find(|(tenant, _)| tenant == t).map(|(_, b)| *b);
    assert_eq!(mine, Some(300), "three blocks of 100 bytes: {stored:?}");
}

pub async fn held_records_move_to_an_object_of_their_own(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-held-move";
    let q = queue(t, "a", 0);
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    let mut f = held_flush(
        e,
        "wal/00/pinned.wal",
        q.clone(),
        vec![hold(HoldKind::Timer, "late", T0 + 1_000_000)],
    );
    f.object_size = 8 << 20;
    c.commit_flush(&f, T0).await.unwrap();
    assert!(c.held_to_move(T0, 10).await.unwrap().is_empty(), "not old enough");
    let held = c.held_to_move(T0 + 1, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    let mut to = held[0].location.clone();
    to.object = "wal/00/moved.wal".into();
    to.block_records = 1;
    let moved = HeldMove {
        object: to.object.clone(),
        object_size: 150,
        writer: "conf-compactor".into(),
        records: vec![(held[0].clone(), to.clone(), 0)],
    };
    assert_eq!(c.move_held(&moved, T0 + 2).await.unwrap(), 1);
    assert!(
        c.move_held(&moved, T0 + 2).await.is_err(),
        "the new object is recorded once"
    );
    assert!(
        c.held_to_move(T0 + 10, 10).await.unwrap().is_empty(),
        "an object of held records only stays"
    );
    assert!(
        c.unreferenced_objects(T0 + 20, 0, 100)
            .await
            .unwrap()
            .contains(&"wal/00/pinned.wal".to_string())
    );
    assert_eq!(c.fire_due_timers(T0 + 1_000_000, 10).await.unwrap().len(), 1);
    assert_eq!(
        c.batches(&q, 0, 1).await.unwrap()[0].location.object,
        "wal/00/moved.wal"
    );
}

pub async fn unreadable_batches_are_quarantined_then_retried_or_dropped(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-quarantine";
    let q = queue(t, "a", 0);
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    for (object, n) in [("wal/00/q-a.wal", 2), ("wal/00/q-b.wal", 3), ("wal/00/q-c.wal", 2)] {
        c.commit_flush(&flush(e, object, vec![batch(q.clone(), n)]), T0)
            .await
            .unwrap();
    }
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    c.pop_claim(&claim_new(&s, &st[0], 4, T0, T0 + 10)).await.unwrap();
    let bad = c.batches(&q, 2, 1).await.unwrap().remove(0);
    assert_eq!((bad.base_offset, bad.count), (2, 3));

    assert!(c.quarantine_batch(&bad, "object missing", T0 + 1).await.unwrap());
    assert!(!c.quarantine_batch(&bad, "again", T0 + 2).await.unwrap(), "once");
    let left: Vec<i64> = c
        .batches(&q, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|b| b.base_offset)
        .collect();
    assert_eq!(left, [0, 5], "readers pass over the quarantined offsets");
    let st = c.pop_state(&s, &[0], T0 + 10, 10, false).await.unwrap();
    let expired: Vec<i64> = st[0].expired.iter().map(|f| f.offset).collect();
    assert_eq!(expired, [0, 1], "its offsets are in flight no more");
    let listed = c.quarantined().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].batch.base_offset, listed[0].reason.as_str()),
        (2, "object missing")
    );
    let unreferenced = c.unreferenced_objects(T0 + 100, 0, 100).await.unwrap();
    assert!(
        !unreferenced.contains(&bad.location.object),
        "its object is kept for the operator"
    );

    // Retry: the records come back at the end of the queue, pointing at the same block.
    assert_eq!(c.release_quarantined(&q, 2, true, T0 + 20).await.unwrap(), Some(7));
    let back = c.batches(&q, 7, 1).await.unwrap().remove(0);
    assert_eq!((back.count, &back.location), (3, &bad.location));
    assert!(c.quarantined().await.unwrap().is_empty());
    let err = c.release_quarantined(&q, 2, true, T0 + 20).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    // Drop: gone for good.
    assert!(c.quarantine_batch(&back, "corrupt", T0 + 30).await.unwrap());
    assert_eq!(c.release_quarantined(&q, 7, false, T0 + 31).await.unwrap(), None);
    assert!(c.quarantined().await.unwrap().is_empty());
    assert_eq!(c.queue_end(&q).await.unwrap(), 10);
}

/// Orphan collection claims uncommitted objects before deleting them, atomically against
/// commits: a commit that lands first keeps its object; one that comes after the claim
/// fails, whatever the clocks say.
pub async fn orphan_claims_fence_late_commits(c: &dyn Coordinator) {
    let e = epoch(c).await;
    let t = "conf-orphans";
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    let (early, late) = ("wal/00/orphan-early.wal", "wal/00/orphan-late.wal");
    c.commit_flush(&flush(e, early, vec![batch(queue(t, "a", 0), 2)]), T0)
        .await
        .unwrap();
    let both = [early.to_string(), late.to_string()];
    assert_eq!(
        c.claim_orphans(&both, T0).await.unwrap(),
        [late],
        "committed objects are not orphans"
    );
    let err = c
        .commit_flush(&flush(e, late, vec![batch(queue(t, "a", 0), 3)]), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ObjectCollected { .. }), "{err}");
    assert_eq!(
        c.queue_end(&queue(t, "a", 0)).await.unwrap(),
        2,
        "the late commit stored nothing"
    );
    assert_eq!(
        c.claim_orphans(&both, T0 + 1).await.unwrap(),
        [late],
        "a claim holds until forgotten"
    );
    assert_eq!(
        c.committed_objects(&both)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [early],
        "a claim is not a commit"
    );
    // Claims are unreferenced objects: deleted and forgotten after the grace.
    let due = c.unreferenced_objects(T0 + 10, 5, 100).await.unwrap();
    assert!(due.contains(&late.to_string()), "{due:?}");
    c.forget_object(late).await.unwrap();
    assert!(c.claim_orphans(&[early.to_string()], T0 + 20).await.unwrap().is_empty());
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
