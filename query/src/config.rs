use std::time::Duration;

use serde::Deserialize;

/// Consumer-side settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Most messages per ReceiveMessage (Apache's proxy allows 32).
    pub max_batch: usize,
    /// Most offsets a pop examines per queue when a filter rejects messages: bounds the work
    /// of one pop; the cursor still moves past what was examined.
    pub max_scan: i64,
    /// Shortest invisible duration a receive may ask for (Apache: 10 s; we allow 1 s).
    #[serde(with = "humantime_serde")]
    pub min_invisible: Duration,
    /// Longest invisible duration (12 h, as Apache).
    #[serde(with = "humantime_serde")]
    pub max_invisible: Duration,
    /// Used when a receive names none (push consumers with auto-renew).
    #[serde(with = "humantime_serde")]
    pub default_invisible: Duration,
    /// Longest long poll (20 s, as Apache's proxy).
    #[serde(with = "humantime_serde")]
    pub max_long_polling: Duration,
    /// Failed reads of a batch whose object is missing or corrupt after which it is
    /// quarantined (default 3): consumers pass over it until an operator retries or drops
    /// it. Until then each receive that finds nothing else fails with the read error, so a
    /// smaller number unblocks consumers sooner; a store that is merely unavailable never
    /// quarantines anything.
    pub quarantine_after: u32,
    /// FIFO: most messages per queue and consumer group waiting behind a busy message group
    /// (default 1024). Each is a coordinator row that every receive of the queue examines;
    /// when a group's head is stuck (failing until it is dead-lettered) and the queue reaches
    /// this, the queue's cursor stops until groups drain — the queue's other groups then wait
    /// too, instead of rows and receive cost growing without bound.
    pub max_waiting: i64,
    /// Most lite topics one client may subscribe to under a parent (default 1,000; told to
    /// clients as `lite_subscription_quota`). Each subscription is a coordinator row, and a
    /// receive looks at the client's subscribed lite topics in one statement whose cost grows
    /// with them; beyond it SyncLiteSubscription fails with LITE_SUBSCRIPTION_QUOTA_EXCEEDED.
    pub lite_subscription_quota: u32,
    /// Most lite subscriptions of all the clients of one consumer group under a parent
    /// together (default 1,000,000, so a group's workers can cover a million live sessions).
    /// Checked at each SyncLiteSubscription that adds (an index range over the group's
    /// subscriptions: ~1 ms per 10,000 on PostgreSQL); beyond it the call fails with
    /// LITE_SUBSCRIPTION_QUOTA_EXCEEDED.
    pub lite_group_subscription_quota: u32,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_batch: 32,
            max_scan: 1024,
            min_invisible: Duration::from_secs(1),
            max_invisible: Duration::from_secs(12 * 3600),
            default_invisible: Duration::from_secs(30),
            max_long_polling: Duration::from_secs(20),
            quarantine_after: 3,
            max_waiting: 1024,
            lite_subscription_quota: 1000,
            lite_group_subscription_quota: 1_000_000,
        }
    }
}
