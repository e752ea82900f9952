//! Frames on a connection: cutting them out of the bytes received, and writing them.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::command::{Command, SerializeType};
use crate::error::{Error, Result};
use crate::header;

/// Most header bytes the 3-byte length can say.
const MAX_HEADER: usize = (1 << 24) - 1;

/// Takes the next whole frame out of `buf`, or `None` until more bytes arrive. A frame whose
/// total length exceeds `max` is refused as soon as its length is read.
pub fn decode_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Command>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if total > max {
        return Err(Error::TooLarge { len: total, max });
    }
    if total < 4 {
        return Err(Error::Truncated { len: total, needed: 4 });
    }
    if buf.len() < 4 + total {
        buf.reserve(4 + total - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let mut frame = buf.split_to(total);
    let mark = frame.get_u32();
    let serialize = match (mark >> 24) as u8 {
        0 => SerializeType::Json,
        1 => SerializeType::RocketMq,
        other => return Err(Error::SerializeType(other)),
    };
    let header_len = (mark & 0x00ff_ffff) as usize;
    if header_len > frame.len() {
        return Err(Error::Truncated {
            len: total,
            needed: 4 + header_len,
        });
    }
    let header = frame.split_to(header_len);
    let mut command = header::decode(serialize, &header)?;
    command.body = frame.freeze();
    Ok(Some(command))
}

/// The frame of `c`, its header serialized as `c.serialize` says.
pub fn encode_frame(c: &Command) -> Result<Bytes> {
    let header = header::encode(c);
    if header.len() > MAX_HEADER {
        return Err(Error::TooLarge {
            len: header.len(),
            max: MAX_HEADER,
        });
    }
    let total = 4 + header.len() + c.body.len();
    let total32 = u32::try_from(total).map_err(|_| Error::TooLarge {
        len: total,
        max: u32::MAX as usize,
    })?;
    let mut out = BytesMut::with_capacity(4 + total);
    out.put_u32(total32);
    out.put_u32(((c.serialize as u32) << 24) | header.len() as u32);
    out.put_slice(&header);
    out.put_slice(&c.body);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn command(serialize: SerializeType) -> Command {
        Command {
            code: 105,
            language: "CPP".into(),
            version: 317,
            opaque: 42,
            flag: 0,
            remark: Some("héllo".into()),
            ext_fields: BTreeMap::from([("topic".into(), "orders".into()), ("queueId".into(), "3".into())]),
            body: Bytes::from_static(b"body\0bytes"),
            serialize,
        }
    }

    #[test]
    fn both_serializations_round_trip_and_frames_split_anywhere() {
        for serialize in [SerializeType::Json, SerializeType::RocketMq] {
            let c = command(serialize);
            let wire = encode_frame(&c).unwrap();
            // Two frames arriving a byte at a time come out whole, in order.
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for b in wire.iter().chain(wire.iter()) {
                buf.put_u8(*b);
                if let Some(c) = decode_frame(&mut buf, 1 << 20).unwrap() {
                    got.push(c);
                }
            }
            assert_eq!(got, [c.clone(), c]);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn json_requests_with_numeric_fields_read_as_strings_and_replies_write_strings() {
        let header = br#"{"code":11,"language":"CPP","version":317,"opaque":7,"flag":0,"remark":null,
            "extFields":{"queueId":3,"sysFlag":6,"topic":"t","AccessKey":""}}"#;
        let mut buf = BytesMut::new();
        buf.put_u32((4 + header.len()) as u32);
        buf.put_u32(header.len() as u32);
        buf.put_slice(header);
        let c = decode_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!((c.code, c.opaque, c.remark.as_deref()), (11, 7, None));
        assert_eq!(c.ext_fields["queueId"], "3");
        assert_eq!(c.ext_fields["sysFlag"], "6");
        let mut reply = Command::response_to(&c, 0, None);
        reply.ext_fields.insert("nextBeginOffset".into(), "12".into());
        let wire = encode_frame(&reply).unwrap();
        assert_eq!(wire[4], 0, "JSON replies carry serialize type 0 in the top byte");
        let text = std::str::from_utf8(&wire[8..]).unwrap();
        assert!(text.contains(r#""nextBeginOffset":"12""#), "{text}");
        assert!(text.contains(r#""flag":1"#) && text.contains(r#""opaque":7"#), "{text}");
    }

    #[test]
    fn malformed_frames_are_errors() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("too large", 2_000_000u32.to_be_bytes().to_vec()),
            ("total below 4", [0, 0, 0, 2, 0, 0].to_vec()),
            (
                "header past the end",
                [&8u32.to_be_bytes()[..], &100u32.to_be_bytes(), b"{}{}"].concat(),
            ),
            (
                "unknown serialize type",
                [&6u32.to_be_bytes()[..], &[9, 0, 0, 2], b"{}"].concat(),
            ),
            ("bad JSON", [&6u32.to_be_bytes()[..], &[0, 0, 0, 2], b"{x"].concat()),
            (
                "JSON not an object",
                [&6u32.to_be_bytes()[..], &[0, 0, 0, 2], b"[]"].concat(),
            ),
            (
                "binary cut short",
                [&7u32.to_be_bytes()[..], &[1, 0, 0, 3], &[0, 1, 2]].concat(),
            ),
        ];
        for (what, bytes) in cases {
            let mut buf = BytesMut::from(&bytes[..]);
            assert!(decode_frame(&mut buf, 1 << 20).is_err(), "{what}");
        }
    }

    proptest! {
        /// Any bytes: a frame, an error or a wait for more — never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decode_frame(&mut buf, 1 << 16) {}
        }

        /// A binary header with any fields round-trips.
        #[test]
        fn binary_headers_round_trip(
            code in any::<i16>(), opaque in any::<i32>(), flag in any::<i32>(),
            fields in proptest::collection::btree_map("[a-zA-Z]{1,8}", ".{0,16}", 0..6),
        ) {
            let c = Command {
                code: i32::from(code), opaque, flag, ext_fields: fields,
                ..command(SerializeType::RocketMq)
            };
            let mut buf = BytesMut::from(&encode_frame(&c).unwrap()[..]);
            prop_assert_eq!(decode_frame(&mut buf, 1 << 20).unwrap(), Some(c));
        }
    }
}
