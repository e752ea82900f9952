//! Receipt handles: opaque to clients, versioned and MAC-signed, so a forged or foreign
//! handle is rejected instead of trusted (DESIGN §6).
//!
//! Layout before base64url: version u8 · queue i32 · offset i64 · seq i64 · tenant, group and
//! topic (each u16 length + bytes) · HMAC-SHA256 of all that, first 16 bytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use strata_meta::model::{Receipt, Subscription};

use crate::error::{Error, Result};

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;

#[derive(Clone)]
pub struct ReceiptCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for ReceiptCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptCodec")
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.array()?);
        String::from_utf8(self.take(len as usize)?.to_vec()).ok()
    }
}

impl ReceiptCodec {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    pub fn encode(&self, r: &Receipt) -> String {
        let s = &r.subscription;
        let mut buf = Vec::with_capacity(32 + s.tenant.len() + s.group.len() + s.topic.len());
        buf.push(VERSION);
        buf.extend_from_slice(&r.queue.to_be_bytes());
        buf.extend_from_slice(&r.offset.to_be_bytes());
        buf.extend_from_slice(&r.seq.to_be_bytes());
        put_str(&mut buf, &s.tenant);
        put_str(&mut buf, &s.group);
        put_str(&mut buf, &s.topic);
        let mac = self.mac(&buf);
        buf.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(buf)
    }

    pub fn decode(&self, handle: &str) -> Result<Receipt> {
        let bad = |why: &str| Error::InvalidReceipt(why.to_string());
        let raw = URL_SAFE_NO_PAD
            .decode(handle)
            .map_err(|_| bad("not a receipt handle issued by this cluster"))?;
        if raw.len() < 1 + MAC_LEN {
            return Err(bad("too short"));
        }
        let (body, mac) = raw.split_at(raw.len() - MAC_LEN);
        // Constant-time comparison through the Mac API.
        let mut check = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        check.update(body);
        check
            .verify_truncated_left(mac)
            .map_err(|_| bad("signature does not match (forged, corrupted or from another cluster)"))?;
        if body[0] != VERSION {
            return Err(bad("unknown version"));
        }
        let mut r = Reader(&body[1..]);
        let parsed = (|| {
            let queue = i32::from_be_bytes(r.array()?);
            let offset = i64::from_be_bytes(r.array()?);
            let seq = i64::from_be_bytes(r.array()?);
            let subscription = Subscription {
                tenant: r.string()?,
                group: r.string()?,
                topic: r.string()?,
            };
            Some(Receipt {
                subscription,
                queue,
                offset,
                seq,
            })
        })();
        match parsed {
            Some(receipt) if r.0.is_empty() => Ok(receipt),
            _ => Err(bad("malformed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            subscription: Subscription {
                tenant: "ns".into(),
                group: "g".into(),
                topic: "orders".into(),
            },
            queue: 3,
            offset: 1234,
            seq: 2,
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let codec = ReceiptCodec::new(vec![7; 32]);
        let handle = codec.encode(&receipt());
        assert_eq!(codec.decode(&handle).unwrap(), receipt());

        let mut raw = URL_SAFE_NO_PAD.decode(&handle).unwrap();
        raw[6] ^= 1;
        assert!(codec.decode(&URL_SAFE_NO_PAD.encode(&raw)).is_err(), "tampered offset");
        assert!(
            ReceiptCodec::new(vec![8; 32]).decode(&handle).is_err(),
            "other cluster's key"
        );
        for junk in ["", "!!!", "AAAA", &handle[..handle.len() - 2]] {
            assert!(matches!(codec.decode(junk), Err(Error::InvalidReceipt(_))), "{junk:?}");
        }
    }
}
