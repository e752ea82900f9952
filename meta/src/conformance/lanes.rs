//! Lanes: a lane's progress on a topic starts where its group's is, is heard of forward
//! only, and goes with its group or topic; the group's fallback setting.

use super::*;
use crate::lane::{self, Fallback, Lane};
use crate::operations::GroupChange;

pub async fn run(c: &dyn Coordinator) {
    a_lane_starts_where_its_group_is(c).await;
    the_fallback_is_a_group_setting(c).await;
    a_deleted_group_or_topic_takes_its_lanes(c).await;
    lanes_dead_letter_to_their_group(c).await;
    a_group_has_at_most_its_lanes_and_idle_ones_expire(c).await;
}

pub async fn a_group_has_at_most_its_lanes_and_idle_ones_expire(c: &dyn Coordinator) {
    let t = "conf-lanes-bound";
    fill(c, t, "a", 1).await;
    fill(c, t, "b", 1).await;
    c.create_group(&group_spec(t, "g"), T0).await.unwrap();
    let (on_a, on_b) = (sub(t, "g", "a"), sub(t, "g", "b"));
    for i in 0..lane::MAX_PER_GROUP {
        c.lane_seen(&on_a, &format!("l{i}"), T0 + i as i64).await.unwrap();
    }
    assert!(matches!(
        c.lane_seen(&on_a, "one-too-many", T0).await,
        Err(Error::LaneQuota {
            max: lane::MAX_PER_GROUP,
            ..
        })
    ));
    c.lane_seen(&on_b, "l0", T0 + 100)
        .await
        .expect("a known lane on another topic counts once");
    c.lane_seen(&on_a, "l1", T0 + 100)
        .await
        .expect("a known lane is seen again");
    let l3 = sub(t, &lane::progress("g", "l3"), "a");
    take(c, &l3, 1).await;
    assert_eq!(cursor(c, &l3).await, 1);
    // l0 on a, l2.. on a are idle before T0 + 50; l0 on b and l1 on a are not.
    // (Lanes of the checks before this one, all older, go too.)
    let expired = c.expire_lanes(T0 + 50, 1000).await.unwrap();
    assert!(expired as usize >= lane::MAX_PER_GROUP - 1, "{expired}");
    let left: Vec<(String, String)> = c
        .lanes(t, "g")
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.topic, l.name))
        .collect();
    assert_eq!(left, [("a".into(), "l1".into()), ("b".into(), "l0".into())]);
    c.lane_seen(&on_a, "one-too-many", T0 + 101).await.expect("room again");
    assert_eq!(cursor(c, &l3).await, 0, "its progress went too");
}

async fn cursor(c: &dyn Coordinator, s: &Subscription) -> i64 {
    c.pop_state(s, &[0], T0, 10, false).await.unwrap()[0].cursor
}

/// Claims the next `n` messages of `s`'s queue 0.
async fn take(c: &dyn Coordinator, s: &Subscription, n: i64) {
    let st = c.pop_state(s, &[0], T0, 10, false).await.unwrap();
    c.pop_claim(&claim_new(s, &st[0], n, T0, T0 + 1000)).await.unwrap();
}

pub async fn a_lane_starts_where_its_group_is(c: &dyn Coordinator) {
    let t = "conf-lanes";
    fill(c, t, "a", 5).await;
    c.create_group(&group_spec(t, "g"), T0).await.unwrap();
    let g = sub(t, "g", "a");
    take(c, &g, 3).await;
    assert!(c.lanes(t, "g").await.unwrap().is_empty());

    c.lane_seen(&g, "canary", T0 + 5).await.unwrap();
    let canary = sub(t, &lane::progress("g", "canary"), "a");
    assert_eq!(cursor(c, &canary).await, 3, "the lane starts at the group's cursor");
    assert_eq!(canary.group_name(), "g");

    // The group moves on; the lane, seen again, stays where it is, and the other way round.
    take(c, &g, 1).await;
    c.lane_seen(&g, "canary", T0 + 10).await.unwrap();
    c.lane_seen(&g, "canary", T0 + 7).await.unwrap();
    assert_eq!(cursor(c, &canary).await, 3);
    take(c, &canary, 2).await;
    assert_eq!((cursor(c, &g).await, cursor(c, &canary).await), (4, 5));

    c.lane_seen(&g, "blue", T0 + 1).await.unwrap();
    assert_eq!(cursor(c, &sub(t, &lane::progress("g", "blue"), "a")).await, 4);
    assert_eq!(
        c.lanes(t, "g").await.unwrap(),
        vec![
            Lane {
                topic: "a".into(),
                name: "blue".into(),
                last_seen_ms: T0 + 1
            },
            Lane {
                topic: "a".into(),
                name: "canary".into(),
                last_seen_ms: T0 + 10
            },
        ],
        "by name; an older sighting does not move last_seen back"
    );
    assert!(c.lanes(t, "other").await.unwrap().is_empty());

    // On another topic the lane starts afresh (the group has no progress there yet).
    fill(c, t, "b", 2).await;
    c.lane_seen(&sub(t, "g", "b"), "canary", T0 + 11).await.unwrap();
    assert_eq!(cursor(c, &sub(t, &lane::progress("g", "canary"), "b")).await, 0);
    assert_eq!(c.lanes(t, "g").await.unwrap().len(), 3);
}

pub async fn the_fallback_is_a_group_setting(c: &dyn Coordinator) {
    let t = "conf-lanes-fallback";
    let created = c.create_group(&group_spec(t, "g"), T0).await.unwrap();
    assert_eq!(created.lane_fallback, Fallback::default());
    for fallback in [Fallback::Wait, Fallback::After(std::time::Duration::from_secs(5))] {
        let change = GroupChange {
            lane_fallback: Some(fallback),
            ..Default::default()
        };
        assert_eq!(c.update_group(t, "g", &change).await.unwrap().lane_fallback, fallback);
        assert_eq!(c.group(t, "g").await.unwrap().unwrap().lane_fallback, fallback);
    }
    assert!(
        matches!(
            c.create_group(&group_spec(t, "g%canary"), T0).await,
            Err(Error::Invalid { .. })
        ),
        "a name with a lane is not a group"
    );
}

pub async fn a_deleted_group_or_topic_takes_its_lanes(c: &dyn Coordinator) {
    let t = "conf-lanes-delete";
    fill(c, t, "a", 3).await;
    fill(c, t, "b", 3).await;
    c.create_group(&group_spec(t, "g"), T0).await.unwrap();
    c.create_group(&group_spec(t, "g2"), T0).await.unwrap();
    for g in ["g", "g2"] {
        c.lane_seen(&sub(t, g, "a"), "canary", T0).await.unwrap();
        take(c, &sub(t, &lane::progress(g, "canary"), "a"), 2).await;
    }
    c.lane_seen(&sub(t, "g2", "b"), "canary", T0).await.unwrap();
    assert!(c.delete_group(t, "g", false).await.unwrap());
    assert!(c.lanes(t, "g").await.unwrap().is_empty());
    let canary = sub(t, &lane::progress("g", "canary"), "a");
    assert_eq!(cursor(c, &canary).await, 0);
    assert_eq!(
        c.next_visible_at(&canary).await.unwrap(),
        None,
        "its lane's in-flight messages go too"
    );
    assert_eq!(c.lanes(t, "g2").await.unwrap().len(), 2, "another group's lanes stay");
    assert_eq!(cursor(c, &sub(t, &lane::progress("g2", "canary"), "a")).await, 2);

    assert!(c.delete_topic(t, "a").await.unwrap());
    let left: Vec<String> = c.lanes(t, "g2").await.unwrap().into_iter().map(|l| l.topic).collect();
    assert_eq!(left, ["b"], "a deleted topic takes its lanes");
}

pub async fn lanes_dead_letter_to_their_group(c: &dyn Coordinator) {
    let t = "conf-lanes-dlq";
    fill(c, t, "a", 4).await;
    let spec = GroupSpec {
        max_attempts: 1,
        ..group_spec(t, "g")
    };
    c.create_group(&spec, T0).await.unwrap();
    let g = sub(t, "g", "a");
    c.lane_seen(&g, "canary", T0).await.unwrap();
    take(c, &g, 1).await;
    take(c, &sub(t, &lane::progress("g", "canary"), "a"), 2).await;
    // Out of attempts once their invisible time is over, nobody receiving: moved in the background.
    assert_eq!(c.dead_letter_expired(T0 + 999, 10).await.unwrap(), 0);
    assert_eq!(c.dead_letter_expired(T0 + 1000, 10).await.unwrap(), 3);
    assert_eq!(
        c.queue_bounds(&queue(t, &dead_letter_topic("g"), 0)).await.unwrap(),
        (0, 3),
        "the lane's dead letters are its group's"
    );
    assert_eq!(c.topic(t, &dead_letter_topic("g%canary")).await.unwrap(), None);
}
