//! The message index: ids and keys of appended records, looked up and expired.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every index check, on a coordinator that [`register_writer`] ran on.
pub async fn run(c: &dyn Coordinator) {
    ids_and_keys_name_where_messages_went(c).await;
}

fn indexed(position: u32, id: &str, keys: &[&str], store_ms: i64) -> Indexed {
    Indexed {
        position,
        message_id: id.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        store_ms,
    }
}

pub async fn ids_and_keys_name_where_messages_went(c: &dyn Coordinator) {
    let t = "conf-index";
    let e = epoch(c).await;
    c.create_topic(&topic_spec(t, "a", 2), T0).await.unwrap();
    let mut first = batch(queue(t, "a", 1), 3);
    first.indexed = vec![
        indexed(0, "id-0", &["order-1"], T0),
        indexed(2, "id-2", &["order-1", "order-2"], T0 + 1),
    ];
    c.commit_flush(&flush(e, "wal/conf-index-1", vec![batch(queue(t, "a", 1), 2)]), T0)
        .await
        .unwrap();
    c.commit_flush(&flush(e, "wal/conf-index-2", vec![first]), T0)
        .await
        .unwrap();

    let ids = ["id-0".to_string(), "id-2".to_string(), "id-unknown".to_string()];
    let mut found = c.find_messages(t, &ids).await.unwrap();
    found.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    let at: Vec<(&str, &str, i32, i64, i64)> = found
        .iter()
        .map(|m| (m.message_id.as_str(), m.topic.as_str(), m.queue, m.offset, m.store_ms))
        .collect();
    assert_eq!(at, [("id-0", "a", 1, 2, T0), ("id-2", "a", 1, 4, T0 + 1)]);
    assert!(
        c.find_messages("other-tenant", &ids).await.unwrap().is_empty(),
        "per tenant"
    );

    let keyed = c.messages_by_key(t, "a", "order-1", T0, T0 + 10, 10).await.unwrap();
    assert_eq!(keyed.iter().map(|m| m.offset).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(keyed[1].message_id, "id-2");
    assert_eq!(
        c.messages_by_key(t, "a", "order-1", T0 + 1, T0 + 10, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        c.messages_by_key(t, "a", "order-2", T0, T0 + 10, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A retried id stored again (raced its original) keeps its first entry.
    let mut again = batch(queue(t, "a", 0), 1);
    again.indexed = vec![indexed(0, "id-0", &[], T0 + 5)];
    c.commit_flush(&flush(e, "wal/conf-index-3", vec![again]), T0)
        .await
        .unwrap();
    let kept = c.find_messages(t, &ids[..1]).await.unwrap();
    assert_eq!((kept[0].queue, kept[0].offset), (1, 2));

    assert!(c.expire_index(T0 + 1, 1000).await.unwrap() >= 2);
    let left = c.find_messages(t, &ids).await.unwrap();
    assert_eq!(left.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["id-2"]);
    assert!(c.delete_topic(t, "a").await.unwrap());
    assert!(
        c.find_messages(t, &ids).await.unwrap().is_empty(),
        "a deleted topic's entries go with it"
    );
    assert!(
        c.messages_by_key(t, "a", "order-2", 0, i64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
