//! SQL92 filter expressions: any text parses to an expression or an error; a parsed
//! expression evaluates against any properties without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_query::sql92::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = parse(text) {
        let props = |name: &str| match name.len() % 4 {
            0 => None,
            1 => Some("42".to_string()),
            2 => Some("-9223372036854775808".to_string()),
            _ => Some(name.to_string()),
        };
        let _ = expr.matches(&props);
    }
});
