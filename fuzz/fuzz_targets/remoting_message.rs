//! 4.x message bodies: any bytes as a batch body, a zlib body or a properties string decode to
//! entries or an error, never a panic; a stored message built from them encodes or is refused.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use strata_remoting::message::{StoredMessage, decode_batch, encode_stored, inflate, parse_properties};

fuzz_target!(|data: &[u8]| {
    let _ = inflate(data, 1 << 20);
    let props = parse_properties(&String::from_utf8_lossy(data));
    if let Ok(entries) = decode_batch(Bytes::copy_from_slice(data)) {
        for e in entries {
            let host = "127.0.0.1:9876".parse().expect("an address");
            let m = StoredMessage {
                queue_id: e.flag,
                flag: e.flag,
                queue_offset: 0,
                commit_log_offset: 0,
                sys_flag: 0,
                born_timestamp: 0,
                born_host: host,
                store_timestamp: 0,
                store_host: host,
                reconsume_times: 0,
                body: e.body,
                topic: props.keys().next().cloned().unwrap_or_default(),
                properties: props.values().next().cloned().unwrap_or_default(),
            };
            let _ = encode_stored(&m, &mut BytesMut::new());
        }
    }
});
