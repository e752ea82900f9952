//! WAL objects: any bytes decode to records or an error, never a panic or a hang; and a valid
//! object built from the input decodes to exactly its records, unless one of its bytes was
//! flipped, which must be an error (every byte is under a checksum).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_storage::Path;
use strata_storage::wal::{WalRecord, WalWriter, decode_object};

fuzz_target!(|data: &[u8]| {
    let path = Path::from("fuzz/object.wal");
    let _ = decode_object(&path, &Bytes::copy_from_slice(data));

    let Some((control, rest)) = data.split_first_chunk::<3>() else { return };
    let records: Vec<WalRecord> = rest
        .chunks(24)
        .enumerate()
        .map(|(i, chunk)| WalRecord {
            message_id: format!("m{i}"),
            body: Bytes::copy_from_slice(chunk),
            message_group: (chunk.len() % 2 == 0).then(|| "g".to_string()),
            ..Default::default()
        })
        .collect();
    let mut writer = WalWriter::new();
    writer.add_block("", "topic", (control[0] % 4) as i32, &records);
    let mut object = writer.finish("fuzz", 0).to_vec();
    let at = usize::from(u16::from_le_bytes([control[0], control[1]])) % object.len();
    object[at] ^= control[2];
    match decode_object(&path, &Bytes::from(object)) {
        Ok((_, blocks)) => {
            assert_eq!(control[2], 0, "byte {at} flipped by {:#04x} went unnoticed", control[2]);
            assert_eq!(blocks.concat(), records);
        }
        Err(e) => assert_ne!(control[2], 0, "a valid object failed to decode: {e}"),
    }
});
