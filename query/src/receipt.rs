//! Receipt handles: tokens (meta::token) carrying tenant, group, topic, queue, offset and the
//! delivery's seq. A handle from an earlier delivery is recognised as stale by its seq.

use strata_meta::model::{Receipt, Subscription};
use strata_meta::token::Sealer;

use crate::error::{Error, Result};

/// Token purpose byte of receipt handles.
const PURPOSE: u8 = 1;

#[derive(Clone, Debug)]
pub struct ReceiptCodec {
    sealer: Sealer,
}

impl ReceiptCodec {
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            sealer: Sealer::new(key, PURPOSE),
        }
    }

    pub fn encode(&self, r: &Receipt) -> String {
        let s = &r.subscription;
        self.sealer.seal(&[
            s.tenant.as_bytes(),
            s.group.as_bytes(),
            s.topic.as_bytes(),
            &r.queue.to_be_bytes(),
            &r.offset.to_be_bytes(),
            &r.seq.to_be_bytes(),
        ])
    }

    pub fn decode(&self, handle: &str) -> Result<Receipt> {
        let fields = self
            .sealer
            .open(handle)
            .map_err(|e| Error::InvalidReceipt(e.to_string()))?;
        let bad = || Error::InvalidReceipt("malformed".into());
        let [tenant, group, topic, queue, offset, seq] = <[Vec<u8>; 6]>::try_from(fields).map_err(|_| bad())?;
        let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| bad());
        Ok(Receipt {
            subscription: Subscription {
                tenant: text(tenant)?,
                group: text(group)?,
                topic: text(topic)?,
            },
            queue: i32::from_be_bytes(queue.try_into().map_err(|_| bad())?),
            offset: i64::from_be_bytes(offset.try_into().map_err(|_| bad())?),
            seq: i64::from_be_bytes(seq.try_into().map_err(|_| bad())?),
        })
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
        assert!(
            ReceiptCodec::new(vec![8; 32]).decode(&handle).is_err(),
            "other cluster's key"
        );
        for junk in ["", "!!!", "AAAA", &handle[..handle.len() - 2]] {
            assert!(matches!(codec.decode(junk), Err(Error::InvalidReceipt(_))), "{junk:?}");
        }
    }
}
