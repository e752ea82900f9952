//! PostgreSQL under contention: many nodes' transactions on the same rows at once. SQLite
//! has one writer, so only PostgreSQL can deadlock or interleave.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::tests::fresh_postgres;
use super::*;
use crate::conformance::{T0, batch, epoch, flush, queue, register_writer, sub, topic_spec};

/// Receivers whose claims take new messages and dead-letter expired ones on every queue of
/// a topic, beside the compactor's dead-lettering of expired checkpoints: every claim and
/// every move succeeds or conflicts cleanly, none dies in a deadlock.
#[tokio::test]
async fn postgres_receivers_and_dead_lettering_do_not_deadlock() {
    let Some(url) = fresh_postgres().await else { return };
    let c = Arc::new(SqlCoordinator::open_postgres(&url).await.unwrap());
    register_writer(&*c).await;
    let (t, queues) = ("contend", 4);
    c.create_topic(&topic_spec(t, "a", queues), T0).await.unwrap();
    let spec = GroupSpec {
        tenant: t.into(),
        name: "g".into(),
        fifo: false,
        max_attempts: 1,
        broadcast: false,
        start: StartFrom::Earliest,
    };
    c.create_group(&spec, T0).await.unwrap();
    let e = epoch(&*c).await;
    let batches = (0..queues).map(|q| batch(queue(t, "a", q), 4000)).collect();
    c.commit_flush(&flush(e, "wal/00/contend.wal", batches), T0)
        .await
        .unwrap();
    let s = sub(t, "g", "a");
    let dlq = dead_letter_topic("g");
    c.create_topic(&topic_spec(t, &dlq, 1), T0).await.unwrap();
    let clock = Arc::new(AtomicU64::new(0));
    let now = move |clock: &AtomicU64| T0 + 2 * clock.fetch_add(1, Ordering::Relaxed) as i64;

    let receivers = (0..8).map(|worker| {
        let (c, s, dlq, clock) = (Arc::clone(&c), s.clone(), dlq.clone(), Arc::clone(&clock));
        tokio::spawn(async move {
            for round in 0..60 {
                // Each claim covers two neighbouring queues, as a receive that found enough
                // messages in its first queues does.
                let first = (worker + round) % queues;
                let two = [first, (first + 1) % queues];
                let at = now(&clock);
                let states = c.pop_state(&s, &two, at, 8, false).await?;
                // Every delivery expires at once (invisible for 1 ms) and, out of attempts,
                // is dead-lettered by the next claim that sees it.
                let claim = PopClaim {
                    subscription: s.clone(),
                    now_ms: at,
                    invisible_until_ms: at + 1,
                    dead_letter_topic: Some(dlq.clone()),
                    queues: states
                        .iter()
                        .map(|st| {
                            let to = (st.cursor + 3).min(st.end);
                            QueueClaim {
                                queue: st.queue,
                                cursor_from: st.cursor,
                                cursor_to: to,
                                deliver: crate::conformance::new(st.cursor..to),
                                dead_letter: st.expired.iter().map(|f| (f.offset, f.seq)).collect(),
                                ..Default::default()
                            }
                        })
                        .collect(),
                };
                c.pop_claim(&claim).await?;
            }
            Ok::<_, Error>(())
        })
    });
    let receivers: Vec<_> = receivers.collect();
    let compactor = {
        let (c, clock) = (Arc::clone(&c), Arc::clone(&clock));
        tokio::spawn(async move {
            for _ in 0..120 {
                c.dead_letter_expired(now(&clock), 16).await?;
            }
            Ok::<_, Error>(())
        })
    };
    let mut failures = Vec::new();
    for task in receivers.into_iter().chain([compactor]) {
        if let Err(e) = task.await.unwrap() {
            failures.push(e.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} transactions failed: {failures:?}",
        failures.len()
    );
    // A message is dead-lettered at most once.
    let moved = c.queue_end(&queue(t, &dlq, 0)).await.unwrap();
    let taken: i64 = {
        let st = c
            .pop_state(&s, &(0..queues).collect::<Vec<_>>(), 0, 0, false)
            .await
            .unwrap();
        st.iter().map(|q| q.cursor).sum()
    };
    assert!(moved > 0, "nothing was dead-lettered: the test did not contend");
    assert!(moved <= taken, "{moved} dead letters of {taken} messages taken");
    c.close().await;
}
