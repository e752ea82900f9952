use std::time::Duration;

use serde::Deserialize;

/// Ingest settings. Flushing is group commit: a flush starts as soon as a flush slot is free,
/// carrying everything that arrived meanwhile.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest WAL object per flush (default 8 MiB). Bigger objects mean fewer PUTs under load.
    pub max_bytes: usize,
    /// Wait this long after the first message before flushing (default 0: never wait when idle).
    /// 100 ms caps PUTs at 10/s per node (~26 M PUTs/month ≈ $130/month on S3 Standard) at the
    /// price of up to +100 ms send latency; 0 lets a busy node batch by itself.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Most flushes started per second (default: unlimited). A cost cap like `linger` that
    /// only bites under load.
    pub max_flush_rate: Option<f64>,
    /// Flushes in flight at once (default 2): PUT rate ≤ slots / PUT latency. With 2, the
    /// upload of flush N+1 overlaps the commit of flush N (commits stay in order), so a busy
    /// node's throughput is bounded by max(PUT, commit) instead of their sum; 1 halves the
    /// PUT rate under load at the price of that throughput.
    pub flush_slots: usize,
    /// Largest message body (default 4 MiB, as Apache RocketMQ).
    pub max_body_bytes: usize,
    /// Message bytes accepted but not yet acknowledged, per node (default 256 MiB). When full,
    /// sends wait: a slow store pushes back on producers instead of growing memory.
    pub max_inflight_bytes: usize,
    /// A flush whose commit cannot start within this time of its start (a slow PUT) fails
    /// instead of committing (default 30 s); its commit, retried while its outcome is unknown,
    /// gets as long again. Producers hear within twice this time. Orphan GC claims an object
    /// before deleting it, so a commit later than that fails instead of referencing a deleted
    /// object; the compactor's `orphan_grace` (1 h) only has to be longer than twice this so
    /// that commits under way are not failed needlessly.
    #[serde(with = "humantime_serde")]
    pub commit_deadline: Duration,
    /// Longest delay of a delay message (default 40 days; Apache's proxy caps at 24 h). A
    /// pending delay costs one coordinator row, nothing in memory, so a year is fine.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// When the first orphan check of an unresolved transaction is due, unless the message
    /// names its own (`orphaned_transaction_recovery_duration`). Default 6 s, as Apache.
    #[serde(with = "humantime_serde")]
    pub transaction_check_after: Duration,
    /// Orphan checks after the first come this long apart, doubling each time (at most
    /// 32×; default 10 s). After `compactor.transaction_max_checks` the transaction is rolled
    /// back.
    #[serde(with = "humantime_serde")]
    pub transaction_check_interval: Duration,
    /// Most lite topics one LITE parent topic holds (default 5,000,000); a send that would
    /// create one more is refused with `LITE_TOPIC_QUOTA_EXCEEDED`. Each lite topic costs a
    /// few coordinator rows (its queue, its batches until retention, a cursor per group),
    /// nothing in memory.
    pub max_lite_topics_per_parent: i64,
    /// Most lite topics under all of one tenant's LITE parents together (default
    /// 10,000,000); beyond it a send that would create one is refused with
    /// `LITE_TOPIC_QUOTA_EXCEEDED`. Checked when a lite topic is created (a sum over the
    /// tenant's topics), not per message.
    pub max_lite_topics_per_tenant: i64,
    /// How long the message index names a stored message by id and keys (default 10 min; 0:
    /// no index). Within it `strata message get|find` are index lookups, and a send whose
    /// message id was stored already (a producer's retry after a lost reply) is answered
    /// with the original receipt and stored nothing again. Cost: a coordinator row per
    /// message and per key for this long (10 min at 10,000 messages/s: 6 M rows) and one
    /// index read per flush; past it, lookups scan the topic (bounded).
    #[serde(with = "humantime_serde")]
    pub index_window: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_bytes: 8 << 20,
            linger: Duration::ZERO,
            max_flush_rate: None,
            flush_slots: 2,
            max_body_bytes: 4 << 20,
            max_inflight_bytes: 256 << 20,
            commit_deadline: Duration::from_secs(30),
            max_delay: Duration::from_secs(40 * 24 * 3600),
            transaction_check_after: Duration::from_secs(6),
            transaction_check_interval: Duration::from_secs(10),
            max_lite_topics_per_parent: 5_000_000,
            max_lite_topics_per_tenant: 10_000_000,
            index_window: Duration::from_secs(600),
        }
    }
}
