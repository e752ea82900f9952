//! Operations: admin changes, deletes, reports and redelivery of dead letters.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::operations::{DeliveryState, GroupChange, QueueProgress, Redelivery, TopicChange};
use crate::retry::RetryPolicy;

/// Every operations check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    topics_change_within_limits(c).await;
    groups_change_their_retry_policy(c).await;
    a_deleted_topic_takes_its_data_and_refuses_late_sends(c).await;
    a_deleted_group_takes_its_progress(c).await;
    progress_and_stats_count_per_queue(c).await;
    dead_letters_go_back_to_their_group_only(c).await;
}

pub async fn topics_change_within_limits(c: &dyn Coordinator) {
    let t = "conf-ops-topics";
    c.create_topic(&topic_spec(t, "a", 2), T0).await.unwrap();
    let more = TopicChange {
        queue_count: Some(4),
        retention_ms: Some(3_600_000),
        message_type: Some(MessageType::Fifo),
        ..Default::default()
    };
    let changed = c.update_topic(t, "a", &more).await.unwrap();
    assert_eq!(
        (changed.queue_count, changed.retention_ms, changed.message_type),
        (4, 3_600_000, MessageType::Fifo)
    );
    assert_eq!(c.topic(t, "a").await.unwrap(), Some(changed));
    assert_eq!(
        c.queue_end(&queue(t, "a", 3)).await.unwrap(),
        0,
        "new queues start empty"
    );
    for refused in [
        TopicChange {
            queue_count: Some(3),
            ..Default::default()
        },
        TopicChange {
            retention_ms: Some(1),
            ..Default::default()
        },
        TopicChange {
            lite_ttl_ms: Some(60_000),
            ..Default::default()
        },
    ] {
        assert!(
            matches!(c.update_topic(t, "a", &refused).await, Err(Error::Invalid { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(
        c.topic(t, "a").await.unwrap().unwrap().queue_count,
        4,
        "a refused change changes nothing"
    );
    assert!(matches!(
        c.update_topic(t, "missing", &TopicChange::default()).await,
        Err(Error::TopicNotFound { .. })
    ));
}

pub async fn groups_change_their_retry_policy(c: &dyn Coordinator) {
    let t = "conf-ops-groups";
    let created = c.create_group(&group_spec(t, "g"), T0).await.unwrap();
    assert_eq!(created.retry_policy, RetryPolicy::Levels);
    let policy = RetryPolicy::parse("exponential:1s,1m,2").unwrap();
    let change = GroupChange {
        max_attempts: Some(7),
        retry_policy: Some(policy.clone()),
        fifo: Some(true),
        ..Default::default()
    };
    let changed = c.update_group(t, "g", &change).await.unwrap();
    assert_eq!((changed.max_attempts, changed.fifo), (7, true));
    assert_eq!(c.group(t, "g").await.unwrap().unwrap().retry_policy, policy);
    let zero = GroupChange {
        max_attempts: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        c.update_group(t, "g", &zero).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        c.update_group(t, "missing", &change).await,
        Err(Error::GroupNotFound { .. })
    ));
}

pub async fn a_deleted_topic_takes_its_data_and_refuses_late_sends(c: &dyn Coordinator) {
    let t = "conf-ops-delete";
    let e = epoch(c).await;
    let q = fill(c, t, "gone", 5).await;
    c.create_topic(&topic_spec(t, "kept", 1), T0).await.unwrap();
    let s = sub(t, "g", "gone");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    c.pop_claim(&claim_new(&s, &st[0], 2, T0, T0 + 10)).await.unwrap();
    c.commit_offset(&s, 0, 3).await.unwrap();
    c.commit_flush(
        &held_flush(
            e,
            "wal/conf-ops-timer",
            q.clone(),
            vec![hold(HoldKind::Timer, "t1", T0 + 50)],
        ),
        T0,
    )
    .await
    .unwrap();

    assert!(c.delete_topic(t, "gone").await.unwrap());
    assert!(!c.delete_topic(t, "gone").await.unwrap(), "deleted once");
    assert_eq!(c.topic(t, "gone").await.unwrap(), None);
    assert!(matches!(c.queue_end(&q).await, Err(Error::QueueNotFound { .. })));
    assert!(
        c.group_progress(t, "g").await.unwrap().is_empty(),
        "progress on it is gone"
    );
    let object = format!("wal/03/{t}-gone.wal");
    assert!(
        c.unreferenced_objects(T0 + 100, 0, 1000)
            .await
            .unwrap()
            .contains(&object),
        "its objects are left to garbage collection"
    );
    // The held timer went with it (or, had it raced the delete, fires into nothing).
    assert_eq!(c.fire_due_timers(T0 + 100, 10).await.unwrap().len(), 0);

    // A send that looked the topic up before the delete: its batch alone is refused.
    let late = flush(
        e,
        "wal/conf-ops-late",
        vec![batch(q.clone(), 1), batch(queue(t, "kept", 0), 2)],
    );
    let bases = c.commit_flush(&late, T0).await.unwrap();
    assert_eq!(bases.len(), 2);
    let at = |b: &Option<i64>| *b;
    assert_eq!((at(&bases[0]), at(&bases[1])), (None, Some(0)));

    // Created again, it starts empty.
    c.create_topic(&topic_spec(t, "gone", 1), T0).await.unwrap();
    assert_eq!(c.queue_bounds(&q).await.unwrap(), (0, 0));
}

pub async fn a_deleted_group_takes_its_progress(c: &dyn Coordinator) {
    let t = "conf-ops-delete-group";
    fill(c, t, "a", 3).await;
    c.create_group(&group_spec(t, "g"), T0).await.unwrap();
    c.create_topic(&topic_spec(t, &retry_topic("g"), 1), T0).await.unwrap();
    c.create_topic(&topic_spec(t, &dead_letter_topic("g"), 1), T0)
        .await
        .unwrap();
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    c.pop_claim(&claim_new(&s, &st[0], 2, T0, T0 + 10)).await.unwrap();
    let client = sub(t, &broadcast_progress("g", "client-1"), "a");
    c.commit_offset(&client, 0, 1).await.unwrap();
    assert_eq!(c.group_progress(t, "g").await.unwrap().len(), 1);

    assert!(c.delete_group(t, "g", false).await.unwrap());
    assert!(!c.delete_group(t, "g", false).await.unwrap());
    assert_eq!(c.group(t, "g").await.unwrap(), None);
    assert!(c.group_progress(t, "g").await.unwrap().is_empty());
    assert_eq!(
        c.committed_offset(&client, 0).await.unwrap(),
        None,
        "broadcast clients' too"
    );
    assert_eq!(
        c.topic(t, &retry_topic("g")).await.unwrap(),
        None,
        "its retry topic goes"
    );
    assert!(
        c.topic(t, &dead_letter_topic("g")).await.unwrap().is_some(),
        "its dead letters stay"
    );

    // Created again, it starts from the beginning.
    c.create_group(&group_spec(t, "g"), T0).await.unwrap();
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    assert_eq!((st[0].cursor, st[0].expired.len()), (0, 0));
    assert!(c.delete_group(t, "g", true).await.unwrap());
    assert_eq!(c.topic(t, &dead_letter_topic("g")).await.unwrap(), None);
}

pub async fn progress_and_stats_count_per_queue(c: &dyn Coordinator) {
    let t = "conf-ops-progress";
    let q = fill(c, t, "a", 10).await;
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let got = c.pop_claim(&claim_new(&s, &st[0], 4, T0, T0 + 10)).await.unwrap();
    c.ack(&[receipt(&s, &got.delivered[0])]).await.unwrap();
    c.commit_offset(&s, 0, 2).await.unwrap();
    let progress = c.group_progress(t, "g").await.unwrap();
    assert_eq!(progress.len(), 1);
    let p = &progress[0];
    assert_eq!(
        (
            p.topic.as_str(),
            p.queue,
            p.min_offset,
            p.max_offset,
            p.cursor,
            p.in_flight,
            p.committed
        ),
        ("a", 0, 0, 10, Some(4), 3, Some(2))
    );
    assert_eq!(p.lag(), 8, "the stream is 8 behind, pop 6 not delivered + 3 in flight");
    let pop_only = QueueProgress {
        committed: None,
        ..p.clone()
    };
    assert_eq!(pop_only.lag(), 9);

    let stats = c.topic_stats(t, "a").await.unwrap();
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(
        (s.queue, s.min_offset, s.max_offset, s.batches, s.bytes, s.objects),
        (0, 0, 10, 1, 100, 1)
    );
    assert_eq!((s.oldest_ms, s.newest_ms), (Some(T0), Some(T0 + 5)));
    assert_eq!(q.queue, 0);
    assert!(c.topic_stats(t, "missing").await.unwrap().is_empty());
}

pub async fn dead_letters_go_back_to_their_group_only(c: &dyn Coordinator) {
    let t = "conf-ops-resend";
    fill(c, t, "a", 3).await;
    let dlq = dead_letter_topic("g");
    c.create_topic(&topic_spec(t, &dlq, 1), T0).await.unwrap();
    let s = sub(t, "g", "a");
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let got = c.pop_claim(&claim_new(&s, &st[0], 3, T0, T0 + 10)).await.unwrap();
    c.dead_letter(&receipt(&s, &got.delivered[1]), &dlq, T0)
        .await
        .unwrap()
        .unwrap();
    let other = sub(t, "other", "a");
    let st = c.pop_state(&other, &[0], T0, 10, false).await.unwrap();
    let theirs = c.pop_claim(&claim_new(&other, &st[0], 3, T0, T0 + 10)).await.unwrap();
    let acks: Vec<Receipt> = theirs.delivered.iter().map(|f| receipt(&other, f)).collect();
    c.ack(&acks).await.unwrap();

    let dead = c.dead_letters(t, "g", 0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].offset,
            dead[0].topic.as_str(),
            dead[0].queue,
            dead[0].origin_offset
        ),
        (0, "a", 0, 1)
    );
    assert!(
        c.dead_letters(t, "g", 1, 10).await.unwrap().is_empty(),
        "listed from an offset on"
    );

    let states = |offset| async move {
        c.delivery_states(t, "a", 0, offset)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.group, d.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(1).await,
        [
            ("g".into(), DeliveryState::DeadLettered),
            ("other".into(), DeliveryState::Acked)
        ]
    );
    assert_eq!(states(0).await[0], ("g".into(), DeliveryState::InFlight { attempt: 1 }));
    let back = Redelivery {
        topic: "a".into(),
        queue: 0,
        offset: 1,
        message_group: None,
    };
    assert_eq!(
        c.redeliver(t, "g", std::slice::from_ref(&back), T0 + 1).await.unwrap(),
        1
    );
    assert_eq!(
        c.redeliver(t, "g", std::slice::from_ref(&back), T0 + 1).await.unwrap(),
        0,
        "in flight already"
    );
    let ahead = Redelivery {
        offset: 7,
        ..back.clone()
    };
    assert_eq!(
        c.redeliver(t, "g", &[ahead], T0 + 1).await.unwrap(),
        0,
        "not behind the cursor"
    );
    let st = c.pop_state(&s, &[0], T0 + 1, 10, false).await.unwrap();
    let again: Vec<(i64, i32)> = st[0].expired.iter().map(|f| (f.offset, f.attempt)).collect();
    assert!(again.contains(&(1, 0)), "visible now, attempt 0: {again:?}");
    let st = c.pop_state(&other, &[0], T0 + 1, 10, false).await.unwrap();
    assert!(st[0].expired.is_empty(), "other groups are not affected");
    assert_eq!(states(1).await[0], ("g".into(), DeliveryState::InFlight { attempt: 0 }));
}
