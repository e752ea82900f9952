//! Lite topics under LITE parents and the clients' subscriptions to them.

use async_trait::async_trait;

use crate::error::Result;
use crate::lite::{Change, Ready, Subscriber, SubscriptionQuota, TopicQuota};

/// Lite topics under LITE parents and the clients' subscriptions to them.
#[async_trait]
pub trait LiteTopics: Send + Sync {
    /// Creates the queues of those of `lites` under `parent` that do not exist yet (one queue
    /// each, from offset 0, created at `now_ms`), counting them on the parent.
    /// `LiteTopicQuota` (and nothing created) if that would make more than the quota allows
    /// under the parent or the tenant. Idempotent.
    async fn create_lite_topics(
        &self,
        tenant: &str,
        parent: &str,
        lites: &[String],
        quota: TopicQuota,
        now_ms: i64,
    ) -> Result<()>;

    /// Deletes up to `limit` lite topics of LITE parents with a TTL that had no new message
    /// for that TTL — with their messages' index rows, cursors, in-flight messages and
    /// subscriptions (remembered as dropped for an hour) — but not one a subscribed group has not consumed yet, unless its last
    /// message is older than the parent's retention too. Returns the deleted ones as
    /// `(tenant, stored name)`. A send to a deleted lite topic creates it again.
    async fn expire_lite_topics(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, String)>>;

    /// Changes a client's lite subscriptions; `LiteSubscriptionQuota` (and nothing changed)
    /// if the client or its group (under the parent) would hold more than the quota allows.
    /// Idempotent. Returns the names a
    /// complete set (`Replace`) named whose subscription expiry dropped while their lite topic
    /// is gone: they are not subscribed again (the client is to be told); an `Add` of such a
    /// name subscribes it again.
    async fn sync_lite_subscriptions(
        &self,
        who: &Subscriber,
        change: Change,
        lites: &[String],
        quota: SubscriptionQuota,
        now_ms: i64,
    ) -> Result<Vec<String>>;

    /// The lite topics a client subscribes to, by name.
    async fn lite_subscriptions(&self, who: &Subscriber) -> Result<Vec<String>>;

    /// Of a client's subscribed lite topics, up to `limit` (in random order, so none starves)
    /// its group can take a message of now — a new one while none of that lite topic is in flight, or an expired one — and
    /// the earliest time an in-flight message of them becomes visible again.
    async fn ready_lite_topics(&self, who: &Subscriber, now_ms: i64, limit: u32) -> Result<(Vec<Ready>, Option<i64>)>;

    /// Drops every lite subscription of a tenant's client (its session ended). Returns how
    /// many. Another tenant's client of the same id keeps its own.
    async fn drop_lite_client(&self, tenant: &str, client_id: &str) -> Result<u64>;
}
