//! Membership: node registry, heartbeats, fencing.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every members check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    nodes_register_heartbeat_and_expire(c).await;
    a_node_drains_then_leaves(c).await;
    dead_writers_are_fenced(c).await;
    a_clock_running_30s_fast_syncs_to_the_coordinators(c).await;
}

/// Every node keeps the coordinator's time: a machine whose clock runs 30 s fast reads the
/// coordinator's "now" after one sync: never ahead of it, behind by at most the round trip.
pub async fn a_clock_running_30s_fast_syncs_to_the_coordinators(c: &dyn Coordinator) {
    use crate::clock::{Clock, OffsetClock, SyncedClock};
    let fast = OffsetClock::default();
    fast.advance(std::time::Duration::from_secs(30));
    let clock = SyncedClock::new(std::sync::Arc::new(fast));
    let offset = clock.sync(c).await.unwrap();
    assert!((-31_000..=-29_000).contains(&offset), "offset {offset} ms");
    let ours = clock.now_ms();
    let theirs = c.time_ms().await.unwrap();
    assert!(ours <= theirs, "{ours} is ahead of the coordinator's later {theirs}");
    assert!(theirs - ours <= 2_000, "{ours} lags the coordinator's {theirs}");
}

pub async fn nodes_register_heartbeat_and_expire(c: &dyn Coordinator) {
    let a = c
        .register_node("conf-node-a", Roles::INGEST, "10.0.0.1:8081", None, T0)
        .await
        .unwrap();
    let b = c
        .register_node(
            "conf-node-b",
            Roles::QUERY.union(Roles::COMPACTOR),
            "10.0.0.2:8081",
            Some("10.0.0.2:9876"),
            T0,
        )
        .await
        .unwrap();
    assert!(a.alive && b.roles.contains(Roles::QUERY) && !b.roles.contains(Roles::INGEST));
    assert_eq!((a.remoting, b.remoting.as_deref()), (None, Some("10.0.0.2:9876")));
    let again = c
        .register_node("conf-node-a", Roles::INGEST, "10.0.0.1:8082", None, T0)
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
    let expired = c.expire_nodes(T0 + 12_000, 10_000, "").await.unwrap();
    assert!(expired.contains(&"conf-node-b".to_string()) && !expired.contains(&"conf-node-a".to_string()));
    assert!(matches!(
        c.heartbeat_node("conf-node-b", b.epoch, T0 + 12_001).await,
        Err(Error::Fenced { .. })
    ));
    let back = c
        .register_node("conf-node-b", Roles::QUERY, "10.0.0.2:8081", None, T0 + 13_000)
        .await
        .unwrap();
    assert!(back.alive && back.epoch > b.epoch);
    // The node deciding is never declared dead, however late its own heartbeat.
    let expired = c.expire_nodes(T0 + 60_000, 10_000, "conf-node-a").await.unwrap();
    assert!(expired.contains(&"conf-node-b".to_string()) && !expired.contains(&"conf-node-a".to_string()));
    c.heartbeat_node("conf-node-a", again.epoch, T0 + 60_001).await.unwrap();
}

/// A draining node keeps its epoch (heartbeats, commits) but is no longer live, so no route
/// names it; once it has left, its epoch is fenced; registering again makes it live again.
pub async fn a_node_drains_then_leaves(c: &dyn Coordinator) {
    let t = "conf-departure";
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    let id = "conf-leaving";
    let node = c
        .register_node(id, Roles::INGEST, "10.0.0.4:8081", None, T0)
        .await
        .unwrap();
    let live = |nodes: Vec<Node>| nodes.iter().any(|n| n.id == id);
    let listed = |nodes: Vec<Node>| nodes.into_iter().find(|n| n.id == id).unwrap();
    assert!(live(c.live_nodes(T0, 10_000).await.unwrap()));
    assert_eq!(listed(c.list_nodes().await.unwrap()).state(), "alive");

    c.drain_node(id, node.epoch).await.unwrap();
    assert!(!live(c.live_nodes(T0 + 1, 10_000).await.unwrap()), "out of the routes");
    assert_eq!(listed(c.list_nodes().await.unwrap()).state(), "draining");
    c.heartbeat_node(id, node.epoch, T0 + 2).await.unwrap();
    let commit = |object: &str| FlushCommit {
        writer: id.into(),
        writer_epoch: node.epoch,
        ..flush(node.epoch, object, vec![batch(queue(t, "a", 0), 2)])
    };
    assert_eq!(
        c.commit_flush(&commit("wal/06/a.wal"), T0).await.unwrap(),
        [Some(0)],
        "what it accepted before draining still commits"
    );
    assert!(
        c.expire_nodes(T0 + 5_000, 10_000, "").await.unwrap().is_empty(),
        "a draining node that heartbeats is not dead"
    );

    c.leave_node(id, node.epoch).await.unwrap();
    assert_eq!(listed(c.list_nodes().await.unwrap()).state(), "left");
    assert!(matches!(
        c.heartbeat_node(id, node.epoch, T0 + 3).await,
        Err(Error::Fenced { .. })
    ));
    assert!(matches!(
        c.commit_flush(&commit("wal/06/b.wal"), T0).await,
        Err(Error::Fenced { .. })
    ));
    assert!(matches!(c.leave_node(id, node.epoch).await, Err(Error::Fenced { .. })));

    let back = c
        .register_node(id, Roles::INGEST, "10.0.0.4:8081", None, T0 + 10)
        .await
        .unwrap();
    assert!(back.epoch > node.epoch && back.departure == Departure::Staying);
    assert!(live(c.live_nodes(T0 + 10, 10_000).await.unwrap()));

    // Left nodes are forgotten after a while; dead ones are not (one may still run).
    c.register_node("conf-dead", Roles::QUERY, "10.0.0.5:8081", None, T0)
        .await
        .unwrap();
    c.expire_nodes(T0 + 100_000, 10_000, id).await.unwrap();
    c.drain_node(id, back.epoch).await.unwrap();
    c.leave_node(id, back.epoch).await.unwrap();
    assert_eq!(c.purge_left_nodes(T0 + 10).await.unwrap(), 0, "left too recently");
    assert_eq!(c.purge_left_nodes(T0 + 200_000).await.unwrap(), 1);
    let ids: Vec<String> = c.list_nodes().await.unwrap().into_iter().map(|n| n.id).collect();
    assert!(!ids.contains(&id.to_string()) && ids.contains(&"conf-dead".to_string()));
}

pub async fn dead_writers_are_fenced(c: &dyn Coordinator) {
    let t = "conf-fence";
    c.create_topic(&topic_spec(t, "a", 1), T0).await.unwrap();
    let node = c
        .register_node("conf-zombie", Roles::INGEST, "10.0.0.3:8081", None, T0)
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
    c.expire_nodes(T0 + 100_000, 10_000, "").await.unwrap();
    let err = c
        .commit_flush(&commit("wal/05/b.wal", node.epoch), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err}");
    assert_eq!(c.queue_end(&queue(t, "a", 0)).await.unwrap(), 2);
    // Registered again, the new epoch commits; the old one stays fenced.
    let new = c
        .register_node("conf-zombie", Roles::INGEST, "10.0.0.3:8081", None, T0 + 100_001)
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
