//! Between 4.x messages (properties, stored layout) and our records.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use bytes::Bytes;
use strata_proto::v2;
use strata_proto::wal::WalRecord;
use strata_query::convert::timestamp;
use strata_remoting::message::{StoredMessage, format_properties, property as p};

/// The 4.x delay levels 1–18 (Apache RocketMQ's default `messageDelayLevel`).
pub const DELAY_LEVELS: [Duration; 18] = {
    const fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }
    [
        s(1),
        s(5),
        s(10),
        s(30),
        s(60),
        s(120),
        s(180),
        s(240),
        s(300),
        s(360),
        s(420),
        s(480),
        s(540),
        s(600),
        s(1200),
        s(1800),
        s(3600),
        s(7200),
    ]
};

/// The delay of level `level`; levels past 18 wait as long as 18.
pub fn delay_of_level(level: i32) -> Option<Duration> {
    let i = usize::try_from(level).ok()?.checked_sub(1)?;
    Some(DELAY_LEVELS[i.min(DELAY_LEVELS.len() - 1)])
}

/// Properties the protocol reserves that become fields of our record rather than properties.
const AS_FIELDS: &[&str] = &[
    p::TAGS,
    p::KEYS,
    p::UNIQ_KEY,
    p::DELAY,
    p::START_DELIVER_TIME,
    p::SHARDING_KEY,
    p::TRANSACTION_PREPARED,
    p::WAIT,
    p::CHECK_IMMUNITY_TIME_IN_SECONDS,
];

/// What a 4.x send says about one message besides its properties.
pub struct Sent<'a> {
    pub topic: &'a v2::Resource,
    pub body: Bytes,
    pub properties: BTreeMap<String, String>,
    pub born_timestamp_ms: i64,
    pub born_host: String,
    /// The queue the producer chose: a FIFO topic's message group when no sharding key says
    /// otherwise (4.x orders per queue).
    pub queue: i32,
    pub fifo_topic: bool,
    pub now_ms: i64,
}

/// A 4.x message as the message our ingest stores.
pub fn to_message(sent: Sent<'_>) -> v2::Message {
    let mut props = sent.properties;
    let delivery_ms = match props.get(p::START_DELIVER_TIME).and_then(|v| v.parse::<i64>().ok()) {
        Some(at) => Some(at),
        None => props
            .get(p::DELAY)
            .and_then(|v| v.parse::<i32>().ok())
            .and_then(delay_of_level)
            .map(|d| sent.now_ms.saturating_add(d.as_millis() as i64)),
    };
    let transaction = props.get(p::TRANSACTION_PREPARED).is_some_and(|v| v == "true");
    let recovery = props
        .get(p::CHECK_IMMUNITY_TIME_IN_SECONDS)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|s| *s > 0)
        .map(|seconds| prost_types::Duration { seconds, nanos: 0 });
    let message_group = props
        .get(p::SHARDING_KEY)
        .filter(|k| !k.is_empty())
        .cloned()
        .or_else(|| sent.fifo_topic.then(|| format!("queue-{}", sent.queue)));
    let keys = props
        .get(p::KEYS)
        .map(|k| {
            k.split(p::KEY_SEPARATOR)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let system = v2::SystemProperties {
        tag: props.get(p::TAGS).filter(|t| !t.is_empty()).cloned(),
        keys,
        message_id: props.get(p::UNIQ_KEY).cloned().unwrap_or_default(),
        message_type: if transaction {
            v2::MessageType::Transaction as i32
        } else {
            0
        },
        born_timestamp: Some(timestamp(sent.born_timestamp_ms)),
        born_host: sent.born_host,
        delivery_timestamp: delivery_ms.map(timestamp),
        message_group,
        orphaned_transaction_recovery_duration: recovery,
        ..Default::default()
    };
    props.retain(|k, _| !AS_FIELDS.contains(&k.as_str()));
    v2::Message {
        topic: Some(sent.topic.clone()),
        user_properties: props.into_iter().collect(),
        system_properties: Some(system),
        body: sent.body,
    }
}

/// Bits of a commit-log offset: `[16-bit topic hash][10-bit queue][37-bit queue offset]`. 4.x
/// clients name a message by it (CONSUMER_SEND_MSG_BACK, offset message ids); the topic hash
/// tells a message of one topic from the same position in another.
const QUEUE_BITS: u32 = 10;
const OFFSET_BITS: u32 = 37;

pub fn commit_log_offset(topic: &str, queue: i32, offset: i64) -> i64 {
    let hash = i64::from(crc32fast::hash(topic.as_bytes()) & 0x7fff);
    let queue = i64::from(queue) & ((1 << QUEUE_BITS) - 1);
    (hash << (QUEUE_BITS + OFFSET_BITS)) | (queue << OFFSET_BITS) | (offset & ((1 << OFFSET_BITS) - 1))
}

/// The queue and offset a commit-log offset of `topic` names, if it is one of `topic`'s.
pub fn from_commit_log_offset(topic: &str, clo: i64) -> Option<(i32, i64)> {
    let same_topic = commit_log_offset(topic, 0, 0) >> (QUEUE_BITS + OFFSET_BITS) == clo >> (QUEUE_BITS + OFFSET_BITS);
    same_topic.then_some((
        ((clo >> OFFSET_BITS) & ((1 << QUEUE_BITS) - 1)) as i32,
        clo & ((1 << OFFSET_BITS) - 1),
    ))
}

/// A stored record in the layout a pull reply carries; `topic` as the client names it.
pub fn to_stored(topic: &str, queue: i32, offset: i64, r: &WalRecord, store_host: SocketAddrV4) -> StoredMessage {
    let mut props: Vec<(&str, &str)> = vec![(p::UNIQ_KEY, r.message_id.as_str())];
    if let Some(tag) = &r.tag {
        props.push((p::TAGS, tag));
    }
    let keys = r.keys.join(" ");
    if !keys.is_empty() {
        props.push((p::KEYS, &keys));
    }
    if let Some(group) = &r.message_group {
        props.push((p::SHARDING_KEY, group));
    }
    props.extend(r.user_properties.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let reconsume_times = r
        .user_properties
        .get(p::RECONSUME_TIME)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    StoredMessage {
        queue_id: queue,
        flag: 0,
        queue_offset: offset,
        commit_log_offset: commit_log_offset(topic, queue, offset),
        sys_flag: 0,
        born_timestamp: r.born_timestamp_ms,
        born_host: r
            .born_host
            .parse()
            .unwrap_or(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)),
        store_timestamp: r.store_timestamp_ms,
        store_host,
        reconsume_times,
        body: r.body.clone(),
        topic: topic.to_string(),
        properties: format_properties(props),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commit_log_offsets_name_queue_offset_and_topic() {
        let clo = commit_log_offset("orders", 5, 123_456);
        assert!(clo > 0);
        assert_eq!(from_commit_log_offset("orders", clo), Some((5, 123_456)));
        assert_eq!(from_commit_log_offset("%RETRY%g", clo), None);
    }

    #[test]
    fn levels_and_start_time_become_delivery_times() {
        assert_eq!(delay_of_level(1), Some(Duration::from_secs(1)));
        assert_eq!(delay_of_level(18), Some(Duration::from_secs(7200)));
        assert_eq!(delay_of_level(40), Some(Duration::from_secs(7200)));
        assert_eq!(delay_of_level(0), None);
        assert_eq!(delay_of_level(-3), None);
        let topic = v2::Resource::default();
        let sent = |props: &[(&str, &str)], fifo| Sent {
            topic: &topic,
            body: Bytes::from_static(b"x"),
            properties: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            born_timestamp_ms: 5,
            born_host: String::new(),
            queue: 3,
            fifo_topic: fifo,
            now_ms: 10_000,
        };
        let m = to_message(sent(
            &[("DELAY", "2"), ("TAGS", "a"), ("KEYS", "k1 k2"), ("mine", "v")],
            false,
        ));
        let sp = m.system_properties.unwrap();
        assert_eq!(sp.delivery_timestamp.unwrap().seconds, 15);
        assert_eq!(sp.keys, vec!["k1", "k2"]);
        assert_eq!(m.user_properties.len(), 1, "only the user's own property stays");
        let at = to_message(sent(&[("__STARTDELIVERTIME", "99000")], false));
        assert_eq!(at.system_properties.unwrap().delivery_timestamp.unwrap().seconds, 99);
        let fifo = to_message(sent(&[], true)).system_properties.unwrap();
        assert_eq!(fifo.message_group.as_deref(), Some("queue-3"));
        let keyed = to_message(sent(&[("__SHARDINGKEY", "order-1")], true))
            .system_properties
            .unwrap();
        assert_eq!(keyed.message_group.as_deref(), Some("order-1"));
    }
}
