//! Lite topics: creation counted on the parent, subscriptions, readiness.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::lite::{Change, Ready, Subscriber, SubscriptionQuota, TopicQuota, first_offset, queue_topic};

/// Every lite check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    lite_topics_are_created_once_within_the_parents_quota(c).await;
    subscriptions_change_by_action_within_the_quota(c).await;
    a_lite_topic_is_ready_when_it_has_a_message_and_none_in_flight(c).await;
    idle_lite_topics_expire_unless_a_subscribed_group_has_not_consumed_them(c).await;
    the_runs_of_several_lite_topics_are_claimed_at_once(c).await;
}

fn lite_parent(t: &str, name: &str) -> TopicSpec {
    TopicSpec {
        message_type: MessageType::Lite,
        ..topic_spec(t, name, 1)
    }
}

fn subscriber(t: &str, client: &str) -> Subscriber {
    Subscriber {
        tenant: t.into(),
        group: "g".into(),
        parent: "chat".into(),
        client_id: client.into(),
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub async fn lite_topics_are_created_once_within_the_parents_quota(c: &dyn Coordinator) {
    let t = "conf-lite-create";
    c.create_topic(&lite_parent(t, "chat"), T0).await.unwrap();
    c.create_lite_topics(t, "chat", &names(&["s1", "s2"]), TopicQuota::per_parent(3), T0)
        .await
        .unwrap();
    c.create_lite_topics(t, "chat", &names(&["s1", "s2"]), TopicQuota::per_parent(3), T0)
        .await
        .unwrap();
    let s1 = queue(t, &queue_topic("chat", "s1"), 0);
    assert_eq!(
        c.queue_end(&s1).await.unwrap(),
        first_offset(T0),
        "offsets start at the creation time in µs"
    );
    // s3 fits, s4 not: the call creates nothing.
    assert!(matches!(
        c.create_lite_topics(t, "chat", &names(&["s3", "s4"]), TopicQuota::per_parent(3), T0)
            .await,
        Err(Error::LiteTopicQuota { max: 3, .. })
    ));
    assert!(c.queue_end(&queue(t, &queue_topic("chat", "s3"), 0)).await.is_err());
    c.create_lite_topics(t, "chat", &names(&["s3"]), TopicQuota::per_parent(3), T0)
        .await
        .unwrap();
    c.create_lite_topics(t, "chat", &names(&["s1", "s3"]), TopicQuota::per_parent(3), T0)
        .await
        .unwrap();
    // The tenant's parents together: "chat" holds 3, so "mail" gets 1 under a tenant quota of 4.
    c.create_topic(&lite_parent(t, "mail"), T0).await.unwrap();
    let tenant_quota = TopicQuota {
        per_parent: 10,
        per_tenant: 4,
    };
    assert!(matches!(
        c.create_lite_topics(t, "mail", &names(&["m1", "m2"]), tenant_quota, T0).await,
        Err(Error::LiteTopicQuota { max: 4, holder }) if holder.starts_with("tenant")
    ));
    c.create_lite_topics(t, "mail", &names(&["m1"]), tenant_quota, T0)
        .await
        .unwrap();
    assert!(c.queue_end(&queue(t, &queue_topic("mail", "m2"), 0)).await.is_err());
}

pub async fn subscriptions_change_by_action_within_the_quota(c: &dyn Coordinator) {
    let t = "conf-lite-subs";
    let (one, two) = (subscriber(t, "c1"), subscriber(t, "c2"));
    c.sync_lite_subscriptions(
        &one,
        Change::Add,
        &names(&["a", "b"]),
        SubscriptionQuota::per_client(3),
        T0,
    )
    .await
    .unwrap();
    c.sync_lite_subscriptions(&one, Change::Add, &names(&["b"]), SubscriptionQuota::per_client(3), T0)
        .await
        .unwrap();
    c.sync_lite_subscriptions(&two, Change::Add, &names(&["a"]), SubscriptionQuota::per_client(3), T0)
        .await
        .unwrap();
    assert_eq!(c.lite_subscriptions(&one).await.unwrap(), ["a", "b"]);
    assert!(matches!(
        c.sync_lite_subscriptions(
            &one,
            Change::Add,
            &names(&["c", "d"]),
            SubscriptionQuota::per_client(3),
            T0
        )
        .await,
        Err(Error::LiteSubscriptionQuota { max: 3, .. })
    ));
    assert_eq!(c.lite_subscriptions(&one).await.unwrap(), ["a", "b"], "nothing changed");
    c.sync_lite_subscriptions(
        &one,
        Change::Remove,
        &names(&["a", "x"]),
        SubscriptionQuota::per_client(3),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(c.lite_subscriptions(&one).await.unwrap(), ["b"]);
    // A complete set keeps what was added just before it arrived (its snapshot may be older).
    c.sync_lite_subscriptions(
        &one,
        Change::Replace,
        &names(&["c"]),
        SubscriptionQuota::per_client(3),
        T0 + 1000,
    )
    .await
    .unwrap();
    assert_eq!(c.lite_subscriptions(&one).await.unwrap(), ["b", "c"]);
    c.sync_lite_subscriptions(
        &one,
        Change::Replace,
        &names(&["c", "d"]),
        SubscriptionQuota::per_client(3),
        T0 + 60_000,
    )
    .await
    .unwrap();
    assert_eq!(c.lite_subscriptions(&one).await.unwrap(), ["c", "d"]);
    c.sync_lite_subscriptions(&one, Change::Clear, &[], SubscriptionQuota::per_client(3), T0)
        .await
        .unwrap();
    assert!(c.lite_subscriptions(&one).await.unwrap().is_empty());
    c.sync_lite_subscriptions(&one, Change::Add, &names(&["e"]), SubscriptionQuota::per_client(3), T0)
        .await
        .unwrap();
    // The same client id in another tenant is another client.
    let namesake = subscriber("conf-lite-subs-other", "c1");
    c.sync_lite_subscriptions(
        &namesake,
        Change::Add,
        &names(&["e"]),
        SubscriptionQuota::per_client(3),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(c.drop_lite_client(t, "c1").await.unwrap(), 1);
    assert!(c.lite_subscriptions(&one).await.unwrap().is_empty());
    assert_eq!(
        c.lite_subscriptions(&namesake).await.unwrap(),
        ["e"],
        "another tenant's c1 keeps its own"
    );
    assert_eq!(c.drop_lite_client("conf-lite-subs-other", "c1").await.unwrap(), 1);
    assert_eq!(
        c.lite_subscriptions(&two).await.unwrap(),
        ["a"],
        "other clients keep theirs"
    );
    // The group's clients together: "c2" holds 1, so "c1" gets 2 under a group quota of 3.
    let group_quota = SubscriptionQuota {
        per_client: 10,
        per_group: 3,
    };
    c.sync_lite_subscriptions(&one, Change::Add, &names(&["x", "y"]), group_quota, T0)
        .await
        .unwrap();
    assert!(matches!(
        c.sync_lite_subscriptions(&one, Change::Add, &names(&["z"]), group_quota, T0).await,
        Err(Error::LiteSubscriptionQuota { max: 3, holder }) if holder.starts_with("consumer group")
    ));
}

pub async fn a_lite_topic_is_ready_when_it_has_a_message_and_none_in_flight(c: &dyn Coordinator) {
    let t = "conf-lite-ready";
    c.create_topic(&lite_parent(t, "chat"), T0).await.unwrap();
    c.create_lite_topics(
        t,
        "chat",
        &names(&["busy", "idle", "empty"]),
        TopicQuota::per_parent(100),
        T0,
    )
    .await
    .unwrap();
    let e = epoch(c).await;
    let batches = ["busy", "idle"]
        .iter()
        .map(|l| batch(queue(t, &queue_topic("chat", l), 0), 2))
        .collect();
    c.commit_flush(&flush(e, &format!("wal/03/{t}.wal"), batches), T0)
        .await
        .unwrap();
    let who = subscriber(t, "c1");
    c.sync_lite_subscriptions(
        &who,
        Change::Add,
        &names(&["busy", "idle", "empty"]),
        SubscriptionQuota::per_client(100),
        T0,
    )
    .await
    .unwrap();
    let (mut ready, next) = c.ready_lite_topics(&who, T0, 10).await.unwrap();
    ready.sort_by(|a, b| a.name.cmp(&b.name));
    let fresh = |name: &str| Ready {
        name: name.into(),
        cursor: first_offset(T0),
        end: first_offset(T0) + 2,
        expired: false,
    };
    assert_eq!((ready, next), (vec![fresh("busy"), fresh("idle")], None));
    assert_eq!(c.ready_lite_topics(&who, T0, 1).await.unwrap().0.len(), 1, "limited");

    // One message of "busy" in flight: it waits until that one expires.
    let s = sub(t, "g", &queue_topic("chat", "busy"));
    let st = c.pop_state(&s, &[0], T0, 10, true).await.unwrap();
    let first = c.pop_claim(&claim_new(&s, &st[0], 1, T0, T0 + 100)).await.unwrap();
    assert_eq!(
        c.ready_lite_topics(&who, T0, 10).await.unwrap(),
        (vec![fresh("idle")], Some(T0 + 100))
    );
    // A claim in order of the next message while the first is in flight conflicts.
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let mut next = claim_new(&s, &st[0], 1, T0, T0 + 100);
    next.queues[0].in_order = true;
    assert_eq!(c.pop_claim(&next).await.unwrap().conflicts, [0]);
    next.queues[0].in_order = false;
    assert_eq!(
        c.pop_claim(&next).await.unwrap().delivered.len(),
        1,
        "only in order waits"
    );
    assert_eq!(
        c.ack(&[receipt(&s, &first.delivered[0])]).await.unwrap(),
        [AckOutcome::Acked]
    );
    let (mut ready, _) = c.ready_lite_topics(&who, T0 + 100, 10).await.unwrap();
    ready.sort_by(|a, b| a.name.cmp(&b.name));
    let again = Ready {
        name: "busy".into(),
        cursor: first_offset(T0) + 2,
        end: first_offset(T0) + 2,
        expired: true,
    };
    assert_eq!(ready, [again, fresh("idle")], "expired: ready again");
    // Another group's progress is its own.
    let other = Subscriber {
        group: "other".into(),
        ..who.clone()
    };
    assert!(
        c.ready_lite_topics(&other, T0, 10).await.unwrap().0.is_empty(),
        "not subscribed"
    );
}

pub async fn idle_lite_topics_expire_unless_a_subscribed_group_has_not_consumed_them(c: &dyn Coordinator) {
    let t = "conf-lite-expiry";
    let ttl = 1000;
    let parent = TopicSpec {
        lite_ttl_ms: ttl,
        ..lite_parent(t, "chat")
    };
    c.create_topic(&parent, T0).await.unwrap();
    // "forever" lives under a parent without a TTL.
    c.create_topic(&lite_parent(t, "keep"), T0).await.unwrap();
    c.create_lite_topics(t, "keep", &names(&["forever"]), TopicQuota::per_parent(10), T0)
        .await
        .unwrap();
    c.create_lite_topics(
        t,
        "chat",
        &names(&["read", "unread", "empty"]),
        TopicQuota::per_parent(3),
        T0,
    )
    .await
    .unwrap();
    let e = epoch(c).await;
    let q = |l: &str| queue(t, &queue_topic("chat", l), 0);
    c.commit_flush(
        &flush(
            e,
            &format!("wal/03/{t}.wal"),
            vec![batch(q("read"), 2), batch(q("unread"), 2)],
        ),
        T0,
    )
    .await
    .unwrap();
    // Group g subscribes to both and consumes "read" only.
    let who = subscriber(t, "c1");
    c.sync_lite_subscriptions(
        &who,
        Change::Add,
        &names(&["read", "unread"]),
        SubscriptionQuota::per_client(10),
        T0,
    )
    .await
    .unwrap();
    let s = sub(t, "g", &queue_topic("chat", "read"));
    let st = c.pop_state(&s, &[0], T0, 10, false).await.unwrap();
    let got = c.pop_claim(&claim_new(&s, &st[0], 2, T0, T0 + 100)).await.unwrap();
    let receipts: Vec<Receipt> = got.delivered.iter().map(|f| receipt(&s, f)).collect();
    c.ack(&receipts).await.unwrap();

    assert!(
        c.expire_lite_topics(T0 + 500, 10).await.unwrap().is_empty(),
        "within the TTL"
    );
    let mut gone = c.expire_lite_topics(T0 + 2 * ttl, 10).await.unwrap();
    gone.sort();
    let stored = |l: &str| (t.to_string(), queue_topic("chat", l));
    assert_eq!(
        gone,
        [stored("empty"), stored("read")],
        "\"unread\" waits for its group"
    );
    assert!(c.queue_end(&q("read")).await.is_err());
    assert_eq!(
        c.lite_subscriptions(&who).await.unwrap(),
        ["unread"],
        "the expired one's subscription went"
    );
    assert!(c.queue_end(&queue(t, &queue_topic("keep", "forever"), 0)).await.is_ok());
    // The client's next complete set still names it: not subscribed again, and reported.
    let both = names(&["read", "unread"]);
    let later = T0 + 2 * ttl + 60_000;
    let dropped = c
        .sync_lite_subscriptions(&who, Change::Replace, &both, SubscriptionQuota::per_client(10), later)
        .await
        .unwrap();
    assert_eq!(dropped, ["read"]);
    assert_eq!(c.lite_subscriptions(&who).await.unwrap(), ["unread"]);
    // Asked for explicitly, it is a subscription again.
    let dropped = c
        .sync_lite_subscriptions(
            &who,
            Change::Add,
            &names(&["read"]),
            SubscriptionQuota::per_client(10),
            later,
        )
        .await
        .unwrap();
    assert!(dropped.is_empty());
    assert_eq!(c.lite_subscriptions(&who).await.unwrap(), both);
    c.sync_lite_subscriptions(
        &who,
        Change::Remove,
        &names(&["read"]),
        SubscriptionQuota::per_client(10),
        later,
    )
    .await
    .unwrap();
    // Past the parent's retention as well, the unread one goes too.
    let late = T0 + DEFAULT_RETENTION_MS + 10;
    assert_eq!(c.expire_lite_topics(late, 10).await.unwrap(), [stored("unread")]);
    // Uncounted: three new ones fit the quota of three; a send to an expired one revives it.
    c.create_lite_topics(t, "chat", &names(&["x", "y"]), TopicQuota::per_parent(3), late)
        .await
        .unwrap();
    let offsets = c
        .commit_flush(
            &flush(e, &format!("wal/03/{t}-again.wal"), vec![batch(q("read"), 3)]),
            late,
        )
        .await
        .unwrap();
    // Its new offsets start past any of its first life (readers may cache those locations).
    let base = first_offset(T0 + 5);
    assert!(base > first_offset(T0) + 2);
    assert_eq!(offsets, [Some(base)]);
    assert_eq!(c.queue_end(&q("read")).await.unwrap(), base + 3);
    assert!(matches!(
        c.create_lite_topics(t, "chat", &names(&["z"]), TopicQuota::per_parent(3), late)
            .await,
        Err(Error::LiteTopicQuota { .. })
    ));
}

pub async fn the_runs_of_several_lite_topics_are_claimed_at_once(c: &dyn Coordinator) {
    let t = "conf-lite-claims";
    c.create_topic(&lite_parent(t, "chat"), T0).await.unwrap();
    c.create_lite_topics(t, "chat", &names(&["a", "b"]), TopicQuota::per_parent(10), T0)
        .await
        .unwrap();
    let e = epoch(c).await;
    let q = |l: &str| queue(t, &queue_topic("chat", l), 0);
    c.commit_flush(
        &flush(e, &format!("wal/03/{t}.wal"), vec![batch(q("a"), 2), batch(q("b"), 3)]),
        T0,
    )
    .await
    .unwrap();
    let claims: Vec<PopClaim> = ["b", "a"]
        .iter()
        .map(|l| {
            let s = sub(t, "g", &queue_topic("chat", l));
            let state = QueuePopState {
                queue: 0,
                cursor: first_offset(T0),
                end: first_offset(T0) + 5,
                expired: vec![],
                ready: vec![],
                busy: vec![],
                waiting: 0,
            };
            let mut claim = claim_new(&s, &state, 2, T0, T0 + 100);
            claim.queues[0].in_order = true;
            claim
        })
        .collect();
    let got = c.pop_claims(&claims).await.unwrap();
    let delivered: Vec<usize> = got.iter().map(|g| g.delivered.len()).collect();
    assert_eq!(delivered, [2, 2], "one result per claim, in order");
    let again = c.pop_claims(&claims).await.unwrap();
    assert!(again.iter().all(|g| g.delivered.is_empty() && g.conflicts == [0]));
    let mut dead = claims[0].clone();
    dead.queues[0].dead_letter = vec![(first_offset(T0), 1)];
    assert!(matches!(c.pop_claims(&[dead]).await, Err(Error::Invalid { .. })));
}
