//! Message ids in the RocketMQ 5.x layout (version 0x01, 17 bytes, uppercase hex): used when
//! a producer sends none. Clients normally generate their own.

use std::sync::atomic::{AtomicU32, Ordering};

/// 2021-01-01T00:00:00Z in Unix seconds: the epoch of the id's timestamp field.
const EPOCH_2021: i64 = 1_609_459_200;

#[derive(Debug)]
pub struct MessageIdGenerator {
    /// Six bytes naming the node (a hash of its id, standing in for a MAC address).
    node: [u8; 6],
    pid: u16,
    seq: AtomicU32,
}

impl MessageIdGenerator {
    pub fn new(node_id: &str) -> Self {
        let h = node_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let b = h.to_be_bytes();
        Self {
            node: [b[2], b[3], b[4], b[5], b[6], b[7]],
            pid: std::process::id() as u16,
            seq: AtomicU32::new(0),
        }
    }

    pub fn next(&self, now_ms: i64) -> String {
        let secs = (now_ms / 1000 - EPOCH_2021) as u32;
        let mut id = [0u8; 17];
        id[0] = 0x01;
        id[1..7].copy_from_slice(&self.node);
        id[7..9].copy_from_slice(&self.pid.to_be_bytes());
        id[9..13].copy_from_slice(&secs.to_be_bytes());
        id[13..17].copy_from_slice(&self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        hex::encode_upper(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_v1_layout_and_differ() {
        let g = MessageIdGenerator::new("node-1");
        let (a, b) = (g.next(1_700_000_000_000), g.next(1_700_000_000_000));
        assert_eq!(a.len(), 34);
        assert!(a.starts_with("01"));
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    }
}
