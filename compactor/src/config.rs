use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactorConfig {
    /// How often orphan WAL objects are looked for (default 5 min). Each run lists the
    /// `wal/` prefix once (one LIST per 1,000 objects).
    #[serde(with = "humantime_serde")]
    pub gc_interval: Duration,
    /// An uncommitted WAL object is deleted only when older than this (default 1 h). Must
    /// exceed ingest's `commit_deadline` plus any clock skew between nodes, so that an
    /// object whose commit may still happen is never deleted.
    #[serde(with = "humantime_serde")]
    pub orphan_grace: Duration,
    /// Unanswered orphan checks after which a half message is rolled back (Apache's 15).
    pub transaction_max_checks: i64,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            gc_interval: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(3600),
            transaction_max_checks: 15,
        }
    }
}
