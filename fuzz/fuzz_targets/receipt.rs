//! Receipt handles: any string, and any fields sealed with the right key (what a client that
//! stole a key could forge), decode to a receipt or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_meta::token::Sealer;
use strata_query::ReceiptCodec;

const KEY: &[u8] = b"fuzzing-key-fuzzing-key-fuzzing!";

fuzz_target!(|data: &[u8]| {
    let codec = ReceiptCodec::new(KEY.to_vec());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = codec.decode(text);
    }
    // Well-sealed tokens whose fields are arbitrary: split the input at 0xff bytes.
    let fields: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let token = Sealer::new(KEY.to_vec(), 1).seal(&fields);
    let _ = codec.decode(&token);
});
