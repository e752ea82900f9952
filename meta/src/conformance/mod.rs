//! The coordinator conformance suite, one module per part of the [`Coordinator`]: every
//! backend runs each part against a fresh database (each function uses its own tenant, so
//! they may share one). Call [`register_writer`] first.
#![allow(clippy::unwrap_used)] // a test suite: a failed step is a failed test

pub mod accounts;
pub mod catalog;
pub mod consume;
pub mod held;
pub mod index;
pub mod lanes;
pub mod lite;
pub mod log;
pub mod maintain;
pub mod members;
pub mod operations;

pub use log::{concurrent_committers, write_then_reopen_part1, write_then_reopen_part2};

use crate::error::Error;
use crate::model::*;
use crate::prelude::*;

pub const T0: i64 = 1_700_000_000_000;

/// The node every flush of this suite claims to come from.
pub(crate) const WRITER: &str = "conf-writer";

/// Registers [`WRITER`] (heard from far in the future, so no expiry catches it). Call first.
pub async fn register_writer(c: &dyn Coordinator) {
    let node = c
        .register_node(WRITER, Roles::INGEST, "127.0.0.1:1", None, T0)
        .await
        .unwrap();
    c.heartbeat_node(WRITER, node.epoch, i64::MAX / 2).await.unwrap();
}

/// The live epoch of [`WRITER`] on this coordinator.
pub(crate) async fn epoch(c: &dyn Coordinator) -> i64 {
    let nodes = c.live_nodes(i64::MAX / 2, 1).await.unwrap();
    nodes
        .into_iter()
        .find(|n| n.id == WRITER)
        .expect("register_writer ran first")
        .epoch
}

pub(crate) fn topic_spec(tenant: &str, name: &str, queues: i32) -> TopicSpec {
    TopicSpec {
        tenant: tenant.into(),
        name: name.into(),
        message_type: MessageType::Normal,
        queue_count: queues,
        lite_ttl_ms: 0,
    }
}

pub(crate) fn queue(tenant: &str, topic: &str, q: i32) -> QueueRef {
    QueueRef {
        tenant: tenant.into(),
        topic: topic.into(),
        queue: q,
    }
}

pub(crate) fn batch(q: QueueRef, count: u32) -> AppendBatch {
    AppendBatch {
        queue: q,
        count,
        location: BlockLocation {
            object: String::new(),
            offset: 8,
            length: 100,
            uncompressed_length: 200,
            crc32c: 0xdead_beef,
            compression: 1,
            block_records: count,
            format: BlockFormat::Wal,
        },
        min_timestamp_ms: T0,
        max_timestamp_ms: T0 + 5,
        held: vec![],
        indexed: vec![],
    }
}

pub(crate) fn new(offsets: std::ops::Range<i64>) -> Vec<Taken> {
    offsets.map(|offset| Taken { offset, group: None }).collect()
}

/// A flush of `batches` by [`WRITER`] at `epoch`, all located in `object`.
pub(crate) fn flush(epoch: i64, object: &str, mut batches: Vec<AppendBatch>) -> FlushCommit {
    for b in &mut batches {
        b.location.object = object.into();
    }
    FlushCommit {
        object: object.into(),
        object_size: 1234,
        writer: WRITER.into(),
        writer_epoch: epoch,
        batches,
    }
}

pub(crate) fn group_spec(t: &str, name: &str) -> GroupSpec {
    GroupSpec {
        tenant: t.into(),
        name: name.into(),
        fifo: false,
        max_attempts: 3,
        broadcast: false,
        start: StartFrom::Earliest,
    }
}

pub fn sub(tenant: &str, group: &str, topic: &str) -> Subscription {
    Subscription {
        tenant: tenant.into(),
        group: group.into(),
        topic: topic.into(),
    }
}

pub async fn fill(c: &dyn Coordinator, t: &str, topic: &str, n: u32) -> QueueRef {
    let e = epoch(c).await;
    let q = queue(t, topic, 0);
    c.create_topic(&topic_spec(t, topic, 1), T0).await.unwrap();
    c.commit_flush(
        &flush(e, &format!("wal/03/{t}-{topic}.wal"), vec![batch(q.clone(), n)]),
        T0,
    )
    .await
    .unwrap();
    q
}

pub fn claim_new(s: &Subscription, state: &QueuePopState, take: i64, now: i64, until: i64) -> PopClaim {
    let to = (state.cursor + take).min(state.end);
    PopClaim {
        subscription: s.clone(),
        now_ms: now,
        invisible_until_ms: until,
        dead_letter_topic: None,
        queues: vec![QueueClaim {
            queue: state.queue,
            cursor_from: state.cursor,
            cursor_to: to,
            deliver: new(state.cursor..to),
            ..Default::default()
        }],
    }
}

pub(crate) fn receipt(s: &Subscription, f: &InFlight) -> Receipt {
    Receipt {
        subscription: s.clone(),
        queue: f.queue,
        offset: f.offset,
        seq: f.seq,
    }
}

/// A flush whose one block is held: each record a timer or a half message.
pub(crate) fn held_flush(e: i64, object: &str, q: QueueRef, holds: Vec<Hold>) -> FlushCommit {
    let mut b = batch(q, holds.len() as u32);
    b.held = holds;
    flush(e, object, vec![b])
}

pub(crate) fn hold(kind: HoldKind, id: &str, due_ms: i64) -> Hold {
    Hold {
        kind,
        message_id: id.into(),
        due_ms,
    }
}

pub(crate) async fn records_of(c: &dyn Coordinator, q: &QueueRef) -> Vec<(String, u64, u32)> {
    c.batches(q, 0, 1000)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| (0..b.count).map(move |i| (b.location.object.clone(), b.location.offset, b.first_record + i)))
        .collect()
}
