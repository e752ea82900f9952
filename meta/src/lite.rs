//! LiteTopic (RIP-83): lite topics live under a parent topic of type LITE, each one ordered
//! queue created on first send, consumed by the clients that subscribe to it.
//!
//! A lite topic is stored as a one-queue topic of its own whose name joins the parent's and
//! the lite topic's with [`SEPARATOR`] (never part of a topic name): every piece of the pop
//! machinery (cursors, in-flight rows, retries, dead letters, receipts) works on it as on any
//! queue, and it costs coordinator rows only — no topic row, no task, no buffer.

use crate::error::{Error, Result};

/// Joins a parent topic and a lite topic into the name of the lite topic's queue.
pub const SEPARATOR: char = '+';

/// Longest lite topic name (the `max_lite_topic_size` clients are told).
pub const MAX_NAME_LEN: usize = 64;

/// The stored topic name of lite topic `lite` under `parent`.
pub fn queue_topic(parent: &str, lite: &str) -> String {
    format!("{parent}{SEPARATOR}{lite}")
}

/// The first offset of a lite topic created at `now_ms`: its creation time in microseconds.
/// A lite topic deleted by expiry and created again by a later send so never reuses the
/// offsets of its earlier life (which readers may still have cached locations for), unless
/// that life averaged over 1,000 messages per millisecond.
pub fn first_offset(now_ms: i64) -> i64 {
    now_ms.max(0).saturating_mul(1000)
}

/// `(parent, lite topic)` of a stored lite topic name; `None` for any other topic.
pub fn split(topic: &str) -> Option<(&str, &str)> {
    topic.split_once(SEPARATOR)
}

/// The topic a client names for `topic`: the parent of a lite topic, or the topic itself.
pub fn parent_of(topic: &str) -> &str {
    split(topic).map_or(topic, |(parent, _)| parent)
}

/// Lite topic names: 1 to 64 letters, digits, `_` and `-` (UUIDs, session ids).
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            "lite topic",
            format!("{name:?} must have 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(Error::invalid(
            "lite topic",
            format!("{name:?} contains {c:?}; allowed are letters, digits, '_' and '-'"),
        ));
    }
    Ok(())
}

/// One client's lite subscriptions: of a consumer group, under a parent topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subscriber {
    pub tenant: String,
    pub group: String,
    pub parent: String,
    pub client_id: String,
}

impl Subscriber {
    /// The group's subscription to one of its lite topics (that lite topic's own queue).
    pub fn subscription(&self, lite: &str) -> crate::model::Subscription {
        crate::model::Subscription {
            tenant: self.tenant.clone(),
            group: self.group.clone(),
            topic: queue_topic(&self.parent, lite),
        }
    }
}

/// A subscribed lite topic with something for the group to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    pub name: String,
    /// The group's cursor on it and its end.
    pub cursor: i64,
    pub end: i64,
    /// Some in-flight message of it is visible again (to be delivered before anything new).
    pub expired: bool,
}

/// Most lite topics there may be: under one parent, and under all of a tenant's parents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicQuota {
    pub per_parent: i64,
    pub per_tenant: i64,
}

impl TopicQuota {
    /// A limit per parent only.
    pub const fn per_parent(n: i64) -> Self {
        Self {
            per_parent: n,
            per_tenant: i64::MAX,
        }
    }
}

/// Most lite subscriptions there may be under a parent: of one client, and of all the
/// clients of its consumer group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionQuota {
    pub per_client: u32,
    pub per_group: u32,
}

impl SubscriptionQuota {
    /// A limit per client only.
    pub const fn per_client(n: u32) -> Self {
        Self {
            per_client: n,
            per_group: u32::MAX,
        }
    }
}

/// How SyncLiteSubscription changes a client's set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// PARTIAL_ADD: these too.
    Add,
    /// PARTIAL_REMOVE: not these.
    Remove,
    /// COMPLETE_ADD: exactly these — except subscriptions added in the last few seconds,
    /// which may be newer than the client's snapshot.
    Replace,
    /// COMPLETE_REMOVE: none.
    Clear,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_and_split() {
        let t = queue_topic("chat", "session-1");
        assert_eq!(split(&t), Some(("chat", "session-1")));
        assert_eq!(parent_of(&t), "chat");
        assert_eq!(parent_of("chat"), "chat");
        assert!(
            crate::model::validate_topic_name(&t).is_err(),
            "clients cannot name a lite queue"
        );
        for bad in ["", "a b", "a+b", "x/y", &"a".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        validate_name("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap();
    }
}
