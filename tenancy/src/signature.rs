//! The RocketMQ 5.x request signature: `authorization: MQv2-HMAC-SHA1 Credential=AK,
//! SignedHeaders=x-mq-date-time, Signature=HEX`, where HEX is HMAC-SHA1 keyed with the secret
//! key over the `x-mq-date-time` header value exactly as sent (../shared/PROTOCOL-NOTES.md).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::error::Unauthenticated;

/// The only algorithm the 5.x clients use.
pub const ALGORITHM: &str = "MQv2-HMAC-SHA1";

/// What an `authorization` header claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub access_key: String,
    pub signature: Vec<u8>,
}

/// Parses an `authorization` header. `Ok(None)`: no credentials (the Python client sends
/// `Credential=,` when it has none).
pub fn parse(header: &str) -> Result<Option<Claim>, Unauthenticated> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(Unauthenticated::Malformed("the algorithm is not MQv2-HMAC-SHA1"));
    }
    let (mut access_key, mut signature) = (None, None);
    for part in rest.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            // The AK ends at any '/' (a credential scope some clients append).
            "Credential" => access_key = Some(value.split('/').next().unwrap_or_default().trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    match access_key {
        None | Some("") => Ok(None),
        Some(ak) => {
            let signature = hex::decode(signature.unwrap_or_default())
                .map_err(|_| Unauthenticated::Malformed("the signature is not hex"))?;
            Ok(Some(Claim {
                access_key: ak.to_string(),
                signature,
            }))
        }
    }
}

fn mac(secret: &[u8], date: &str) -> Hmac<Sha1> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(date.as_bytes());
    mac
}

/// Whether `signature` is HMAC-SHA1(secret, date), compared in constant time.
pub fn verify(secret: &[u8], date: &str, signature: &[u8]) -> bool {
    mac(secret, date).verify_slice(signature).is_ok()
}

/// Whether `signature` is the 4.x ACL signature of `content`: Base64(HMAC-SHA1(secret,
/// content)), where `content` is the request's field values in key order (without
/// `Signature`) followed by its body.
pub fn verify_remoting(secret: &[u8], content: &[u8], signature: &str) -> bool {
    use base64::Engine as _;
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(content);
    mac.verify_slice(&signature).is_ok()
}

/// The 4.x ACL signature of `content` (tests sign with it).
pub fn sign_remoting(secret: &[u8], content: &[u8]) -> String {
    use base64::Engine as _;
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(content);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `authorization` header value for a request dated `date` (the CLI and tests sign with it).
pub fn header(access_key: &str, secret: &[u8], date: &str) -> String {
    let signature = hex::encode_upper(mac(secret, date).finalize().into_bytes());
    format!("{ALGORITHM} Credential={access_key}, SignedHeaders=x-mq-date-time, Signature={signature}")
}

/// The `x-mq-date-time` the Java and Node clients send: `yyyyMMdd'T'HHmmss'Z'`.
pub fn date_now(now_ms: i64) -> String {
    DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Which request dates are believed (the signature covers only the date, to the second).
#[derive(Clone, Copy, Debug)]
pub struct DateWindow {
    /// Largest difference between a client's clock and ours.
    pub max_skew: Duration,
    /// Also accept the compact date written in any time zone (the Java and Python clients
    /// write local time with a `Z`): from 12 h behind to 14 h ahead of UTC, plus `max_skew`.
    pub local_time: bool,
}

/// Zone offsets a local time written as UTC may carry: UTC−12 to UTC+14.
const BEHIND_MS: i64 = 12 * 3_600_000;
const AHEAD_MS: i64 = 14 * 3_600_000;

impl DateWindow {
    /// Checks an `x-mq-date-time` value against the time now.
    pub fn check(&self, date: &str, now_ms: i64) -> Result<(), Unauthenticated> {
        let skew = i64::try_from(self.max_skew.as_millis()).unwrap_or(i64::MAX);
        let out_of_window = || Unauthenticated::DateOutOfWindow { date: date.to_string() };
        if let Ok(exact) = DateTime::parse_from_rfc3339(date) {
            let diff = exact.timestamp_millis().saturating_sub(now_ms);
            return if diff.abs() <= skew {
                Ok(())
            } else {
                Err(out_of_window())
            };
        }
        let written = NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
            .map_err(|_| Unauthenticated::Malformed("x-mq-date-time is neither yyyyMMddTHHmmssZ nor RFC 3339"))?
            .and_utc()
            .timestamp_millis();
        let diff = written.saturating_sub(now_ms);
        let (behind, ahead) = if self.local_time { (BEHIND_MS, AHEAD_MS) } else { (0, 0) };
        if diff >= -(behind.saturating_add(skew)) && diff <= ahead.saturating_add(skew) {
            Ok(())
        } else {
            Err(out_of_window())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_700_000_000; // 2025-12-02T18:26:40Z

    #[test]
    fn parses_what_each_client_sends() {
        let java = "MQv2-HMAC-SHA1 Credential=AK1, SignedHeaders=x-mq-date-time, Signature=0A1B";
        assert_eq!(
            parse(java).unwrap(),
            Some(Claim {
                access_key: "AK1".into(),
                signature: vec![0x0a, 0x1b],
            })
        );
        let scoped = "MQv2-HMAC-SHA1 Credential=AK1/20251202/x, SignedHeaders=x-mq-date-time, Signature=0a1b";
        assert_eq!(parse(scoped).unwrap().unwrap().access_key, "AK1");
        let python_without = "MQv2-HMAC-SHA1 Credential=, SignedHeaders=x-mq-date-time, Signature=00ff";
        assert_eq!(
            parse(python_without).unwrap(),
            None,
            "an empty access key is no credentials"
        );
        assert!(parse("Basic abc").is_err());
        assert!(parse("MQv2-HMAC-SHA1 Credential=AK, Signature=zz").is_err());
        assert!(
            parse("MQv2-HMAC-SHA1 Credential=AK")
                .unwrap()
                .unwrap()
                .signature
                .is_empty()
        );
    }

    #[test]
    fn signatures_verify_over_the_literal_date() {
        let date = "20251202T182640Z";
        let h = header("AK1", b"secret", date);
        let claim = parse(&h).unwrap().unwrap();
        assert!(verify(b"secret", date, &claim.signature));
        assert!(!verify(b"other", date, &claim.signature));
        assert!(!verify(b"secret", "20251202T182641Z", &claim.signature));
        let lower = h
            .to_lowercase()
            .replace("mqv2-hmac-sha1", ALGORITHM)
            .replace("credential=ak1", "Credential=AK1");
        let lower = lower.replace("signature=", "Signature=");
        assert!(
            verify(b"secret", date, &parse(&lower).unwrap().unwrap().signature),
            "hex in either case"
        );
    }

    #[test]
    fn dates_within_the_window_pass() {
        let strict = DateWindow {
            max_skew: Duration::from_secs(900),
            local_time: false,
        };
        let local = DateWindow {
            local_time: true,
            ..strict
        };
        assert!(strict.check(&date_now(NOW), NOW).is_ok());
        assert!(strict.check(&date_now(NOW - 800_000), NOW).is_ok());
        assert!(strict.check(&date_now(NOW + 1_000_000), NOW).is_err());
        // Local time (UTC+8, written with a Z): only the zone-tolerant window takes it.
        let shanghai = date_now(NOW + 8 * 3_600_000);
        assert!(strict.check(&shanghai, NOW).is_err());
        assert!(local.check(&shanghai, NOW).is_ok());
        assert!(local.check(&date_now(NOW - 13 * 3_600_000), NOW).is_err());
        assert!(local.check(&date_now(NOW + 15 * 3_600_000), NOW).is_err());
        // The Rust client's RFC 3339 carries its zone: the strict window applies.
        assert!(local.check("2025-12-02T18:26:40.123456789Z", NOW).is_ok());
        assert!(local.check("2025-12-03T02:26:40+08:00", NOW).is_ok());
        assert!(local.check("2025-12-03T02:26:40Z", NOW).is_err());
        assert!(matches!(
            local.check("yesterday", NOW),
            Err(Unauthenticated::Malformed(_))
        ));
    }
}
