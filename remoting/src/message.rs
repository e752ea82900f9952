//! Messages as the 4.x protocol carries them: the properties string, the batch body of a
//! send, and the stored-message layout of a pull reply.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Error, Result};

/// Separates a property's name from its value.
const NAME_VALUE: char = '\u{1}';
/// Ends each property.
const PROPERTY_END: char = '\u{2}';

/// `sysFlag` bit of a zlib-compressed body.
pub const SYSFLAG_COMPRESSED: i32 = 1;
/// `sysFlag` bits of a transaction's half message.
pub const SYSFLAG_TRANSACTION_PREPARED: i32 = 1 << 2;

/// The magic code of the stored-message layout (version 1: IPv4 hosts).
const MAGIC_V1: i32 = 0xdaa3_20a7_u32 as i32;

/// Reserved property names the protocol gives meaning to.
pub mod property {
    pub const TAGS: &str = "TAGS";
    pub const KEYS: &str = "KEYS";
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    pub const DELAY: &str = "DELAY";
    pub const START_DELIVER_TIME: &str = "__STARTDELIVERTIME";
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    pub const TRANSACTION_PREPARED: &str = "TRAN_MSG";
    pub const PRODUCER_GROUP: &str = "PGROUP";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const WAIT: &str = "WAIT";
    pub const TRANSACTION_ID: &str = "__transactionId__";
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Keys separate within `KEYS` by this.
    pub const KEY_SEPARATOR: char = ' ';
}

/// Parses `name\u{1}value\u{2}…`; entries without a separator are skipped, as clients do.
pub fn parse_properties(s: &str) -> BTreeMap<String, String> {
    s.split(PROPERTY_END)
        .filter_map(|entry| entry.split_once(NAME_VALUE))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn format_properties<'a>(props: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in props {
        out.push_str(k);
        out.push(NAME_VALUE);
        out.push_str(v);
        out.push(PROPERTY_END);
    }
    out
}

/// Inflates a zlib body, refusing one that would grow beyond `max` bytes.
pub fn inflate(body: &[u8], max: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(Error::Inflate)?;
    if out.len() > max {
        return Err(Error::Message("inflated body exceeds the body size limit"));
    }
    Ok(out.into())
}

/// One message of a batch send: its flag, body and properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEntry {
    pub flag: i32,
    pub body: Bytes,
    pub properties: BTreeMap<String, String>,
}

/// Splits a batch body: entries of `total size, magic, body CRC, flag, body length, body,
/// properties length (i16), properties`.
pub fn decode_batch(mut buf: Bytes) -> Result<Vec<BatchEntry>> {
    let mut entries = Vec::new();
    while buf.has_remaining() {
        let total = take_i32(&mut buf)?;
        let size = usize::try_from(total)
            .ok()
            .filter(|&n| n >= 4 && n - 4 <= buf.remaining())
            .ok_or(Error::Message("batch entry size out of range"))?;
        let mut entry = buf.split_to(size - 4);
        let _magic = take_i32(&mut entry)?;
        let _crc = take_i32(&mut entry)?;
        let flag = take_i32(&mut entry)?;
        let body_len = take_len(&mut entry, take_i32)?;
        let body = entry.split_to(body_len);
        let props_len = take_len(&mut entry, |b| take_i16(b).map(i32::from))?;
        let props = entry.split_to(props_len);
        let props = std::str::from_utf8(&props).map_err(|_| Error::Message("properties are not UTF-8"))?;
        entries.push(BatchEntry {
            flag,
            body,
            properties: parse_properties(props),
        });
    }
    Ok(entries)
}

fn take_i32(b: &mut Bytes) -> Result<i32> {
    if b.remaining() < 4 {
        return Err(Error::Message("truncated"));
    }
    Ok(b.get_i32())
}

fn take_i16(b: &mut Bytes) -> Result<i16> {
    if b.remaining() < 2 {
        return Err(Error::Message("truncated"));
    }
    Ok(b.get_i16())
}

/// A length field followed by that many bytes still in `b`.
fn take_len(b: &mut Bytes, read: impl FnOnce(&mut Bytes) -> Result<i32>) -> Result<usize> {
    let n = read(b)?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= b.remaining())
        .ok_or(Error::Message("length out of range"))
}

/// A stored message as a pull reply carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    /// What the client sends back to name this message (CONSUMER_SEND_MSG_BACK).
    pub commit_log_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: std::net::SocketAddrV4,
    pub store_timestamp: i64,
    pub store_host: std::net::SocketAddrV4,
    pub reconsume_times: i32,
    pub body: Bytes,
    pub topic: String,
    pub properties: String,
}

/// Appends `m` in the stored-message layout (version 1). Fails if the topic is longer than
/// 127 bytes or the properties longer than 32,767 (the client reads both lengths signed).
pub fn encode_stored(m: &StoredMessage, out: &mut BytesMut) -> Result<()> {
    let topic_len = i8::try_from(m.topic.len()).map_err(|_| Error::Message("topic longer than 127 bytes"))?;
    let props_len =
        i16::try_from(m.properties.len()).map_err(|_| Error::Message("properties longer than 32767 bytes"))?;
    let body_len = i32::try_from(m.body.len()).map_err(|_| Error::Message("body too large"))?;
    let total = 4
        + 4
        + 4
        + 4
        + 4
        + 8
        + 8
        + 4
        + 8
        + 8
        + 8
        + 8
        + 4
        + 8
        + 4
        + m.body.len()
        + 1
        + m.topic.len()
        + 2
        + m.properties.len();
    let total = i32::try_from(total).map_err(|_| Error::Message("message too large"))?;
    out.reserve(total as usize);
    out.put_i32(total);
    out.put_i32(MAGIC_V1);
    out.put_i32(crc32fast::hash(&m.body) as i32);
    out.put_i32(m.queue_id);
    out.put_i32(m.flag);
    out.put_i64(m.queue_offset);
    out.put_i64(m.commit_log_offset);
    out.put_i32(m.sys_flag);
    out.put_i64(m.born_timestamp);
    put_host(out, m.born_host);
    out.put_i64(m.store_timestamp);
    put_host(out, m.store_host);
    out.put_i32(m.reconsume_times);
    out.put_i64(0); // prepared transaction offset
    out.put_i32(body_len);
    out.put_slice(&m.body);
    out.put_i8(topic_len);
    out.put_slice(m.topic.as_bytes());
    out.put_i16(props_len);
    out.put_slice(m.properties.as_bytes());
    Ok(())
}

fn put_host(out: &mut BytesMut, host: std::net::SocketAddrV4) {
    out.put_slice(&host.ip().octets());
    out.put_i32(i32::from(host.port()));
}

/// The 4.x "offset message id": store host (IPv4 + port) and commit-log offset, as 32
/// uppercase hex digits.
pub fn offset_message_id(store_host: std::net::SocketAddrV4, commit_log_offset: i64) -> String {
    let mut b = BytesMut::with_capacity(16);
    put_host(&mut b, store_host);
    b.put_i64(commit_log_offset);
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The commit-log offset an offset message id names.
pub fn parse_offset_message_id(id: &str) -> Option<i64> {
    if id.len() != 32 || !id.is_ascii() {
        return None;
    }
    i64::from_str_radix(&id[16..], 16).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn properties_round_trip_and_skip_junk() {
        let s = format_properties([("TAGS", "a"), ("KEYS", "k1 k2")]);
        assert_eq!(s, "TAGS\u{1}a\u{2}KEYS\u{1}k1 k2\u{2}");
        let p = parse_properties(&format!("{s}junk\u{2}"));
        assert_eq!(p.len(), 2);
        assert_eq!(p["KEYS"], "k1 k2");
        assert!(parse_properties("").is_empty());
    }

    fn entry(flag: i32, body: &[u8], props: &str) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i32((20 + body.len() + 2 + props.len()) as i32);
        b.put_i32(0);
        b.put_i32(0);
        b.put_i32(flag);
        b.put_i32(body.len() as i32);
        b.put_slice(body);
        b.put_i16(props.len() as i16);
        b.put_slice(props.as_bytes());
        b.to_vec()
    }

    #[test]
    fn batches_split_into_entries_and_bad_lengths_are_refused() {
        let mut body = entry(3, b"one", "UNIQ_KEY\u{1}A\u{2}");
        let boundary = body.len();
        body.extend(entry(0, b"two", ""));
        let got = decode_batch(Bytes::from(body.clone())).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].flag, &got[0].body[..]), (3, &b"one"[..]));
        assert_eq!(got[0].properties["UNIQ_KEY"], "A");
        assert!(got[1].properties.is_empty());
        for cut in 1..body.len() {
            if cut == boundary {
                continue; // the boundary between the two entries
            }
            assert!(decode_batch(Bytes::from(body[..cut].to_vec())).is_err(), "cut at {cut}");
        }
        let mut lying = entry(0, b"x", "");
        lying[19] = 200; // body length beyond the entry
        assert!(decode_batch(Bytes::from(lying)).is_err());
    }

    #[test]
    fn stored_layout_is_what_the_client_decodes() {
        let host: std::net::SocketAddrV4 = "10.1.2.3:9876".parse().unwrap();
        let m = StoredMessage {
            queue_id: 2,
            queue_offset: 7,
            commit_log_offset: 99,
            body: Bytes::from_static(b"hi"),
            topic: "t".into(),
            properties: format_properties([("UNIQ_KEY", "X")]),
            born_host: host,
            store_host: host,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 1,
            store_timestamp: 2,
            reconsume_times: 0,
        };
        let mut out = BytesMut::new();
        encode_stored(&m, &mut out).unwrap();
        let mut b = out.freeze();
        assert_eq!(b.get_i32() as usize, b.remaining() + 4);
        assert_eq!(b.get_i32(), MAGIC_V1);
        b.advance(4);
        assert_eq!(b.get_i32(), 2);
        b.advance(4);
        assert_eq!((b.get_i64(), b.get_i64()), (7, 99));
        b.advance(4 + 8);
        assert_eq!(b.get_u32(), u32::from(*host.ip()));
        b.advance(4 + 8 + 8 + 4 + 8);
        assert_eq!(b.get_i32(), 2);
        b.advance(2);
        assert_eq!(b.get_i8(), 1);
        let long = StoredMessage {
            topic: "x".repeat(128),
            ..m
        };
        assert!(encode_stored(&long, &mut BytesMut::new()).is_err());
    }

    #[test]
    fn offset_ids_round_trip() {
        let host: std::net::SocketAddrV4 = "127.0.0.1:9876".parse().unwrap();
        let id = offset_message_id(host, 0x1234);
        assert_eq!(id, "7F00000100002694".to_string() + "0000000000001234");
        assert_eq!(parse_offset_message_id(&id), Some(0x1234));
        assert_eq!(parse_offset_message_id("xyz"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_a_batch_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_batch(Bytes::from(bytes.clone()));
            let _ = inflate(&bytes, 1 << 16);
            let _ = parse_properties(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn batches_round_trip(
            msgs in proptest::collection::vec(
                (proptest::prelude::any::<i32>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), "[a-z]{1,6}", "[a-z0-9 ]{0,12}"),
                1..8,
            )
        ) {
            let mut body = Vec::new();
            for (flag, b, k, v) in &msgs {
                let props = format_properties([(k.as_str(), v.as_str())]);
                let mut e = BytesMut::new();
                e.put_i32((20 + b.len() + 2 + props.len()) as i32);
                e.put_i32(0);
                e.put_i32(0);
                e.put_i32(*flag);
                e.put_i32(b.len() as i32);
                e.put_slice(b);
                e.put_i16(props.len() as i16);
                e.put_slice(props.as_bytes());
                body.extend_from_slice(&e);
            }
            let got = decode_batch(Bytes::from(body)).unwrap();
            proptest::prop_assert_eq!(got.len(), msgs.len());
            for (g, (flag, b, k, v)) in got.iter().zip(&msgs) {
                proptest::prop_assert_eq!((g.flag, &g.body[..], &g.properties[k]), (*flag, &b[..], v));
            }
        }
    }

    #[test]
    fn inflate_caps_the_output() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[7u8; 10_000]).unwrap();
        let packed = z.finish().unwrap();
        assert_eq!(inflate(&packed, 10_000).unwrap().len(), 10_000);
        assert!(inflate(&packed, 9_999).is_err());
        assert!(inflate(b"not zlib", 100).is_err());
    }
}
