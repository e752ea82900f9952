//! Held records: delay timers and transaction half messages.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every held check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    timers_fire_when_due_and_can_be_recalled(c).await;
    transactions_commit_roll_back_and_get_checked(c).await;
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

    assert_eq!(c.fire_due_timers(T0 + 999, 100).await.unwrap().len(), 0);
    assert_eq!(c.fire_due_timers(T0 + 5_000, 100).await.unwrap().len(), 2);
    // Zero copy: the queue references records 0 and 2 of the original block, in due order.
    assert_eq!(
        records_of(c, &q).await,
        [("wal/07/t.wal".into(), 8, 0), ("wal/07/t.wal".into(), 8, 2)]
    );
    assert_eq!(
        c.fire_due_timers(T0 + 5_000, 100).await.unwrap().len(),
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
        c.fire_due_timers(T0 + 2 * year, 100).await.unwrap().len(),
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
    assert_eq!(c.fire_due_timers(T0 + 100_000, 100).await.unwrap().len(), 0);

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
        c.expire_transactions(T0 + 19_999, 1, i64::MAX / 4).await.unwrap(),
        0,
        "its check may still be answered"
    );
    assert_eq!(
        c.expire_transactions(T0 + 20_000, 2, i64::MAX / 4).await.unwrap(),
        0,
        "checks left"
    );
    // The second check of h3 comes twice as late (backoff).
    let second = c
        .claim_transaction_checks(&topics, T0 + 20_000, 15_000, 10)
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|h| (h.checks, h.due_ms)).collect::<Vec<_>>(),
        [(2, T0 + 50_000)]
    );
    assert_eq!(c.expire_transactions(T0 + 49_999, 2, i64::MAX / 4).await.unwrap(), 0);
    assert_eq!(c.expire_transactions(T0 + 50_000, 2, i64::MAX / 4).await.unwrap(), 1);
    assert!(!c.end_transaction(t, "x", &id(3), true).await.unwrap(), "rolled back");
    assert_eq!(c.queue_end(&q).await.unwrap(), 2);

    // No producer of the topic connected: never checked, rolled back at the age bound.
    c.commit_flush(
        &held_flush(
            e,
            "wal/07/abandoned.wal",
            q.clone(),
            vec![hold(HoldKind::Transaction, "abandoned", T0)],
        ),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(c.expire_transactions(T0 + 3_599_999, 15, 3_600_000).await.unwrap(), 0);
    assert_eq!(c.expire_transactions(T0 + 3_600_000, 15, 3_600_000).await.unwrap(), 1);
}
