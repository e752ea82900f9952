//! Remoting frames: any bytes on a connection decode to frames, an error or a wait for more,
//! never a panic; a decoded frame encodes and decodes to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use strata_remoting::{decode_frame, encode_frame};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(command)) = decode_frame(&mut buf, 1 << 20) {
        if let Ok(wire) = encode_frame(&command) {
            let mut again = BytesMut::from(&wire[..]);
            let decoded = decode_frame(&mut again, usize::MAX).ok().flatten();
            assert_eq!(decoded.as_ref(), Some(&command), "a decoded frame round-trips");
        }
    }
});
