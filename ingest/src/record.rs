//! Checks a producer's message and turns it into the record stored in the WAL.

use bytes::Bytes;
use md5::{Digest, Md5};
use sha1::Sha1;
use strata_meta::model::MessageType;
use strata_proto::v2;
use strata_proto::wal::WalRecord;

use crate::error::{Error, Result};

/// Total size of user properties (keys and values) Apache RocketMQ accepts by default.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
/// Most user properties per message (Apache's default).
pub const MAX_PROPERTIES: usize = 128;
/// Longest message group (Apache's default).
pub const MAX_MESSAGE_GROUP_LEN: usize = 64;
/// Longest tag, key or message id we store.
const MAX_FIELD_LEN: usize = 1024;
/// Most keys per message. Each key is a row of the message index, written in the flush's one
/// commit: 32 keys × 1,000 messages a flush is 32,000 rows, ~3 MB of coordinator writes,
/// where one key each is 1,000. Apache sets no count; real applications use one to three.
pub const MAX_KEYS: usize = 32;
/// Most bytes of all keys of a message together. 4.x clients read a message's properties
/// (keys, tag and user properties among them) through a 16-bit length: 4 KiB of keys plus
/// [`MAX_PROPERTIES_BYTES`] of user properties keeps every stored message readable by them.
pub const MAX_KEYS_BYTES: usize = 4 * 1024;

/// Property names RocketMQ keeps for itself; a user property may not take them.
const RESERVED_PROPERTIES: &[&str] = &[
    "KEYS",
    "TAGS",
    "WAIT",
    "DELAY",
    "RETRY_TOPIC",
    "REAL_TOPIC",
    "REAL_QID",
    "TRAN_MSG",
    "PGROUP",
    "MIN_OFFSET",
    "MAX_OFFSET",
    "BUYER_ID",
    "ORIGIN_MESSAGE_ID",
    "TRANSFER_FLAG",
    "CORRECTION_FLAG",
    "MQ2_FLAG",
    "RECONSUME_TIME",
    "MSG_REGION",
    "TRACE_ON",
    "UNIQ_KEY",
    "MAX_RECONSUME_TIMES",
    "CONSUME_START_TIME",
    "__STARTDELIVERTIME",
    "TIMER_DELIVER_MS",
    "TIMER_DELAY_SEC",
    "__SHARDINGKEY",
];

/// A validated message: its topic, its type and the record to store.
#[derive(Debug)]
pub struct Checked {
    pub topic: String,
    pub message_type: MessageType,
    pub record: WalRecord,
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_text(s: &str, what: &str) -> std::result::Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("{what} must not be blank"));
    }
    if s.len() > MAX_FIELD_LEN {
        return Err(format!("{what} is longer than {MAX_FIELD_LEN} bytes"));
    }
    if has_control(s) {
        return Err(format!("{what} {s:?} contains control characters"));
    }
    Ok(())
}

/// Seconds past the year 5000: such a `Timestamp.seconds` can only be milliseconds.
/// rocketmq-python-client 5.1.2 documents `Message.delivery_timestamp` in milliseconds and
/// sends the value as seconds; every other client sends seconds.
const MAX_PLAUSIBLE_SECONDS: i64 = 95_617_584_000;

/// A protobuf timestamp in milliseconds: seconds beyond [`MAX_PLAUSIBLE_SECONDS`] are read as
/// milliseconds; values outside i64 milliseconds saturate.
fn millis(ts: &Option<prost_types::Timestamp>) -> Option<i64> {
    ts.as_ref().map(|t| {
        if t.seconds > MAX_PLAUSIBLE_SECONDS {
            return t.seconds;
        }
        t.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(t.nanos / 1_000_000))
    })
}

/// The type a message declares, or the one its properties imply when it declares none.
fn message_type(sp: &v2::SystemProperties) -> Result<MessageType> {
    if sp.message_type != 0 {
        return MessageType::from_i32(sp.message_type).ok_or(Error::UnknownType(sp.message_type));
    }
    Ok(if sp.lite_topic.is_some() {
        MessageType::Lite
    } else if sp.message_group.is_some() {
        MessageType::Fifo
    } else if sp.delivery_timestamp.is_some() {
        MessageType::Delay
    } else if sp.priority.is_some() {
        MessageType::Priority
    } else {
        MessageType::Normal
    })
}

fn check_digest(body: &[u8], digest: &Option<v2::Digest>) -> Result<()> {
    let Some(d) = digest else { return Ok(()) };
    let (kind, actual) = match v2::DigestType::try_from(d.r#type) {
        Ok(v2::DigestType::Md5) => ("MD5", hex::encode(Md5::digest(body))),
        Ok(v2::DigestType::Sha1) => ("SHA1", hex::encode(Sha1::digest(body))),
        Ok(v2::DigestType::Crc32) => ("CRC32", crc32fast::hash(body).to_string()),
        _ => return Ok(()),
    };
    if d.checksum.is_empty() || d.checksum.eq_ignore_ascii_case(&actual) {
        Ok(())
    } else {
        Err(Error::BodyCorrupted { kind })
    }
}

/// What a message weighs for quotas: its body, keys, tag, message group and user properties
/// (a message of a 10-byte body and 15 KiB of properties costs what its bytes cost to store
/// and index, not 10 bytes).
pub fn weight(msg: &v2::Message) -> usize {
    let sp = msg.system_properties.as_ref();
    let text = |s: Option<&String>| s.map_or(0, String::len);
    msg.body.len()
        + msg
            .user_properties
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + sp.map_or(0, |sp| {
            sp.keys.iter().map(String::len).sum::<usize>() + text(sp.tag.as_ref()) + text(sp.message_group.as_ref())
        })
}

/// Validates `msg` and builds its record. `new_id` supplies an id when the producer sent none.
/// `reserved_properties` lets property keys RocketMQ reserves through (a front that sets them
/// itself, as the Remoting front does for retries); otherwise they are refused.
pub fn check(
    msg: &v2::Message,
    max_body: usize,
    now_ms: i64,
    reserved_properties: bool,
    new_id: impl FnOnce() -> String,
) -> Result<Checked> {
    let topic = msg.topic.as_ref().map(|t| t.name.clone()).unwrap_or_default();
    strata_meta::model::validate_topic_name(&topic).map_err(|e| Error::IllegalTopic(e.to_string()))?;
    let default_sp = v2::SystemProperties::default();
    let sp = msg.system_properties.as_ref().unwrap_or(&default_sp);

    if msg.body.is_empty() {
        return Err(Error::BodyEmpty);
    }
    if msg.body.len() > max_body {
        return Err(Error::BodyTooLarge {
            size: msg.body.len(),
            max: max_body,
        });
    }
    check_digest(&msg.body, &sp.body_digest)?;
    if let Some(tag) = &sp.tag {
        check_text(tag, "tag").map_err(Error::IllegalTag)?;
        if tag.contains('|') {
            return Err(Error::IllegalTag(format!("tag {tag:?} contains '|'")));
        }
    }
    if sp.keys.len() > MAX_KEYS {
        return Err(Error::IllegalKey(format!(
            "{} keys, more than the maximum {MAX_KEYS}",
            sp.keys.len()
        )));
    }
    let mut keys_size = 0;
    for key in &sp.keys {
        check_text(key, "key").map_err(Error::IllegalKey)?;
        keys_size += key.len();
    }
    if keys_size > MAX_KEYS_BYTES {
        return Err(Error::IllegalKey(format!(
            "keys are {keys_size} bytes together, more than the maximum {MAX_KEYS_BYTES}"
        )));
    }
    if let Some(group) = &sp.message_group {
        check_text(group, "message group").map_err(Error::IllegalMessageGroup)?;
        if group.len() > MAX_MESSAGE_GROUP_LEN {
            return Err(Error::IllegalMessageGroup(format!(
                "message group is longer than {MAX_MESSAGE_GROUP_LEN} characters"
            )));
        }
    }
    if msg.user_properties.len() > MAX_PROPERTIES {
        return Err(Error::PropertiesTooLarge {
            size: msg.user_properties.len(),
            max: MAX_PROPERTIES,
        });
    }
    let mut props_size = 0;
    for (k, v) in &msg.user_properties {
        check_text(k, "property key").map_err(Error::IllegalPropertyKey)?;
        if !reserved_properties && RESERVED_PROPERTIES.contains(&k.as_str()) {
            return Err(Error::IllegalPropertyKey(format!(
                "property key {k:?} is reserved by RocketMQ"
            )));
        }
        props_size += k.len() + v.len();
    }
    if props_size > MAX_PROPERTIES_BYTES {
        return Err(Error::PropertiesTooLarge {
            size: props_size,
            max: MAX_PROPERTIES_BYTES,
        });
    }
    let message_id = if sp.message_id.is_empty() {
        new_id()
    } else {
        check_text(&sp.message_id, "message id").map_err(Error::IllegalMessageId)?;
        sp.message_id.clone()
    };
    if let Some(lite) = &sp.lite_topic {
        strata_meta::lite::validate_name(lite).map_err(|e| Error::IllegalLiteTopic(e.to_string()))?;
    }
    let message_type = message_type(sp)?;

    let record = WalRecord {
        message_id,
        tag: sp.tag.clone(),
        keys: sp.keys.clone(),
        message_group: sp.message_group.clone(),
        user_properties: msg.user_properties.clone(),
        // A copy of its own: a slice would pin the whole receive buffer it came in for as
        // long as the record lives (in flight, then in the block cache).
        body: Bytes::copy_from_slice(&msg.body),
        born_timestamp_ms: millis(&sp.born_timestamp).unwrap_or(now_ms),
        store_timestamp_ms: now_ms,
        delivery_timestamp_ms: millis(&sp.delivery_timestamp),
        born_host: sp.born_host.clone(),
        message_type: message_type as i32,
        reconsume_count: 0,
        trace_context: sp.trace_context.clone(),
        body_encoding: sp.body_encoding,
        body_md5: hex::encode_upper(Md5::digest(&msg.body)),
        lite_topic: sp.lite_topic.clone(),
        priority: sp.priority,
    };
    Ok(Checked {
        topic,
        message_type,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn timestamps_in_milliseconds_sent_as_seconds_are_read_as_milliseconds() {
        let ts = |seconds, nanos| millis(&Some(prost_types::Timestamp { seconds, nanos }));
        assert_eq!(ts(1_794_394_775, 263_000_000), Some(1_794_394_775_263));
        assert_eq!(
            ts(1_794_394_775_263, 0),
            Some(1_794_394_775_263),
            "year 58,000 is milliseconds"
        );
        assert_eq!(ts(MAX_PLAUSIBLE_SECONDS, 0), Some(MAX_PLAUSIBLE_SECONDS * 1000));
        assert_eq!(ts(i64::MIN, -999_999_999), Some(i64::MIN), "saturates");
        assert_eq!(millis(&None), None);
    }

    fn msg(body: &[u8]) -> v2::Message {
        v2::Message {
            topic: Some(v2::Resource {
                resource_namespace: String::new(),
                name: "orders".into(),
            }),
            user_properties: [("k".to_string(), "v".to_string())].into(),
            system_properties: Some(v2::SystemProperties {
                tag: Some("TagA".into()),
                keys: vec!["key1".into()],
                message_id: "01ABC".into(),
                message_type: v2::MessageType::Normal as i32,
                born_timestamp: Some(prost_types::Timestamp {
                    seconds: 10,
                    nanos: 5_000_000,
                }),
                ..Default::default()
            }),
            body: Bytes::copy_from_slice(body),
        }
    }

    fn run(m: &v2::Message) -> Result<Checked> {
        check(m, 100, 99_000, false, || "generated".into())
    }

    #[test]
    fn accepts_a_normal_message() {
        let c = run(&msg(b"hello")).unwrap();
        assert_eq!(c.topic, "orders");
        assert_eq!(c.message_type, MessageType::Normal);
        assert_eq!(c.record.born_timestamp_ms, 10_005);
        assert_eq!(c.record.store_timestamp_ms, 99_000);
        assert_eq!(c.record.body_md5, "5D41402ABC4B2A76B9719D911017C592");
        assert_eq!(c.record.message_id, "01ABC");
    }

    #[test]
    fn keys_are_bounded_in_count_and_size_and_weigh_in_the_quota() {
        let with_keys = |keys: Vec<String>| {
            let mut m = msg(b"x");
            if let Some(sp) = m.system_properties.as_mut() {
                sp.keys = keys;
            }
            m
        };
        run(&with_keys(vec!["k".into(); MAX_KEYS])).unwrap();
        assert!(matches!(
            run(&with_keys(vec!["k".into(); MAX_KEYS + 1])),
            Err(Error::IllegalKey(_))
        ));
        assert!(matches!(
            run(&with_keys(vec!["k".repeat(1000); 15_000])),
            Err(Error::IllegalKey(_))
        ));
        let big = vec!["k".repeat(1000); 5];
        match run(&with_keys(big)) {
            Err(Error::IllegalKey(why)) => assert!(why.contains("5000 bytes"), "{why}"),
            other => panic!("{other:?}"),
        }
        let m = with_keys(vec!["key1".into(), "key2".into()]);
        assert_eq!(weight(&m), 1 + 8 + "TagA".len() + 2, "body, keys, tag, properties");
    }

    #[test]
    fn rejects_bad_input_with_specific_errors() {
        assert!(matches!(run(&msg(b"")), Err(Error::BodyEmpty)));
        assert!(matches!(
            run(&msg(&[0; 101])),
            Err(Error::BodyTooLarge { size: 101, max: 100 })
        ));

        let mut m = msg(b"x");
        m.topic = None;
        assert!(matches!(run(&m), Err(Error::IllegalTopic(_))));

        let mut m = msg(b"x");
        m.system_properties.as_mut().unwrap().tag = Some("a||b".into());
        assert!(matches!(run(&m), Err(Error::IllegalTag(_))));
        m.system_properties.as_mut().unwrap().tag = Some("  ".into());
        assert!(matches!(run(&m), Err(Error::IllegalTag(_))));

        let mut m = msg(b"x");
        m.system_properties.as_mut().unwrap().keys = vec!["ok".into(), "bad\u{1}".into()];
        assert!(matches!(run(&m), Err(Error::IllegalKey(_))));

        let mut m = msg(b"x");
        m.user_properties.insert("UNIQ_KEY".into(), "x".into());
        assert!(matches!(run(&m), Err(Error::IllegalPropertyKey(_))));

        let mut m = msg(b"x");
        m.user_properties.insert("big".into(), "v".repeat(MAX_PROPERTIES_BYTES));
        assert!(matches!(run(&m), Err(Error::PropertiesTooLarge { .. })));

        let mut m = msg(b"x");
        m.system_properties.as_mut().unwrap().body_digest = Some(v2::Digest {
            r#type: v2::DigestType::Md5 as i32,
            checksum: "00".into(),
        });
        assert!(matches!(run(&m), Err(Error::BodyCorrupted { kind: "MD5" })));

        let mut m = msg(b"x");
        m.system_properties.as_mut().unwrap().message_type = 42;
        assert!(matches!(run(&m), Err(Error::UnknownType(42))));
    }

    #[test]
    fn infers_type_and_generates_missing_ids() {
        let mut m = msg(b"x");
        let sp = m.system_properties.as_mut().unwrap();
        sp.message_type = 0;
        sp.message_id.clear();
        sp.message_group = Some("g".into());
        let c = run(&m).unwrap();
        assert_eq!(c.message_type, MessageType::Fifo);
        assert_eq!(c.record.message_id, "generated");
    }
}
