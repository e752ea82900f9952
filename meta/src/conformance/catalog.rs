//! Catalog: topics, consumer groups, secrets.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every catalog check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    topics_and_groups(c).await;
    secrets_are_stable(c).await;
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
        broadcast: false,
        start: StartFrom::Earliest,
    };
    let group = c.create_group(&g, T0).await.unwrap();
    assert!(group.fifo);
    let b = GroupSpec {
        name: "everyone".into(),
        fifo: false,
        broadcast: true,
        start: StartFrom::Latest,
        ..g.clone()
    };
    let created = c.create_group(&b, T0).await.unwrap();
    assert_eq!(c.group(t, "everyone").await.unwrap(), Some(created.clone()));
    assert!(created.broadcast && created.start == StartFrom::Latest);
    assert_eq!(c.group(t, "billing").await.unwrap(), Some(group));
    assert!(matches!(c.create_group(&g, T0).await, Err(Error::AlreadyExists { .. })));
    assert_eq!(c.list_groups(t).await.unwrap().len(), 2);
    assert_eq!(c.group(t, "nope").await.unwrap(), None);
}

pub async fn secrets_are_stable(c: &dyn Coordinator) {
    let a = c.secret("conf-receipt").await.unwrap();
    assert_eq!(a.len(), 32);
    assert_eq!(c.secret("conf-receipt").await.unwrap(), a);
    assert_ne!(c.secret("conf-other").await.unwrap(), a);
}
