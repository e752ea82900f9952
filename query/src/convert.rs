//! Builds the protocol message a consumer receives from a stored record.

use std::time::Duration;

use strata_proto::v2;

use strata_proto::wal::WalRecord;

use crate::query::Delivered;

/// A time in milliseconds as a protobuf timestamp.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The v2 message for a delivery. `store_host` names the node that serves it.
pub fn to_message(tenant: &str, topic: &str, d: &Delivered, store_host: &str) -> v2::Message {
    let mut m = record_message(tenant, topic, &d.record, d.queue, store_host);
    if let Some(sp) = m.system_properties.as_mut() {
        sp.receipt_handle = Some(d.receipt_handle.clone());
        sp.queue_offset = Some(d.offset);
        sp.invisible_duration = Some(duration(d.invisible));
        sp.delivery_attempt = Some(d.attempt);
    }
    m
}

/// The v2 message for a stored record (no delivery details).
pub fn record_message(tenant: &str, topic: &str, r: &WalRecord, queue: i32, store_host: &str) -> v2::Message {
    v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: tenant.to_string(),
            name: topic.to_string(),
        }),
        user_properties: r.user_properties.clone(),
        system_properties: Some(v2::SystemProperties {
            tag: r.tag.clone(),
            keys: r.keys.clone(),
            message_id: r.message_id.clone(),
            body_digest: Some(v2::Digest {
                r#type: v2::DigestType::Md5 as i32,
                checksum: r.body_md5.clone(),
            }),
            body_encoding: if r.body_encoding == 0 {
                v2::Encoding::Identity as i32
            } else {
                r.body_encoding
            },
            message_type: r.message_type,
            born_timestamp: Some(timestamp(r.born_timestamp_ms)),
            born_host: r.born_host.clone(),
            store_timestamp: Some(timestamp(r.store_timestamp_ms)),
            store_host: store_host.to_string(),
            delivery_timestamp: r.delivery_timestamp_ms.map(timestamp),
            receipt_handle: None,
            queue_id: queue,
            queue_offset: None,
            invisible_duration: None,
            delivery_attempt: None,
            message_group: r.message_group.clone(),
            trace_context: r.trace_context.clone(),
            orphaned_transaction_recovery_duration: None,
            dead_letter_queue: None,
            lite_topic: r.lite_topic.clone(),
            priority: r.priority,
        }),
        body: r.body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_what_clients_need() {
        let d = Delivered {
            queue: 2,
            offset: 9,
            attempt: 3,
            receipt_handle: "h".into(),
            invisible: Duration::from_millis(1500),
            record: WalRecord {
                message_id: "01AB".into(),
                body_md5: "ABCD".into(),
                born_timestamp_ms: -1,
                ..Default::default()
            },
        };
        let m = to_message("ns", "t", &d, "node");
        let sp = m.system_properties.unwrap();
        assert_eq!(sp.receipt_handle.as_deref(), Some("h"));
        assert_eq!(
            (sp.queue_id, sp.queue_offset, sp.delivery_attempt),
            (2, Some(9), Some(3))
        );
        assert_eq!(sp.body_digest.unwrap().checksum, "ABCD");
        assert_eq!(
            sp.born_timestamp,
            Some(prost_types::Timestamp {
                seconds: -1,
                nanos: 999_000_000
            })
        );
        assert_eq!(
            sp.invisible_duration,
            Some(prost_types::Duration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
        assert_eq!(sp.body_encoding, v2::Encoding::Identity as i32);
    }
}
