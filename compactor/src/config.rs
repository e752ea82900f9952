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
    /// A half message neither committed nor rolled back this long after it was sent is rolled
    /// back (default 1 h), whether or not a producer of its topic is connected to be asked —
    /// without one it would never be checked, and each pins its whole WAL object (up to 8 MiB).
    /// Apache's 15 checks a minute apart give up after about 15 min; longer here lets a
    /// producer that restarts within the hour still answer.
    #[serde(with = "humantime_serde")]
    pub transaction_timeout: Duration,
    /// How often queues are looked at for compaction (default 10 s).
    #[serde(with = "humantime_serde")]
    pub compaction_interval: Duration,
    /// WAL batches are compacted once their newest record is this old (default 60 s): the
    /// freshest data stays in the WAL (and the ingest node's cache) where consumers read it
    /// first; older data moves to one Parquet file per queue range. Shorter: fewer objects
    /// sooner, smaller files.
    #[serde(with = "humantime_serde")]
    pub compact_after: Duration,
    /// Most records per Parquet file (default 200,000).
    pub max_file_records: u64,
    /// Most bytes of bodies per Parquet file (default 128 MiB; `strata` derives it from its
    /// `memory_budget`: 16 MiB for 256 MiB). A compaction holds about three times this in
    /// memory; smaller files cost more objects and more GETs per history scan.
    pub max_file_bytes: u64,
    /// How long a compaction job's lease lasts (default 60 s); a compactor that stalls
    /// longer loses its job to another (its swap is refused).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// An object nothing references any more (compacted WAL objects, expired Parquet files)
    /// is deleted after this (default 10 min), which covers reads in progress and readers'
    /// cached locations.
    #[serde(with = "humantime_serde")]
    pub gc_grace: Duration,
    /// How often topic retention is applied (default 60 s).
    #[serde(with = "humantime_serde")]
    pub retention_interval: Duration,
    /// Parquet files are kept this long after their newest record even when consumers no
    /// longer see them (default 0: as long as topic retention). The archive for analytics.
    #[serde(with = "humantime_serde")]
    pub archive_retention: Duration,
    /// A broadcast group's client that no node has seen receiving for this long (default
    /// 24 h) loses its progress: its cursors and in-flight rows (one per queue and a few per
    /// receive) are deleted; if it comes back it starts again as a new client (at the latest
    /// offset, unless its group starts at the earliest). Query nodes note live clients once a
    /// minute, so anything under a few minutes expires clients that are still there. Longer
    /// keeps a restarted client's place for longer (5.x client ids change on restart, so it
    /// rarely helps) at the cost of the rows of clients that are gone.
    #[serde(with = "humantime_serde")]
    pub broadcast_client_ttl: Duration,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            gc_interval: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(3600),
            transaction_max_checks: 15,
            transaction_timeout: Duration::from_secs(3600),
            compaction_interval: Duration::from_secs(10),
            compact_after: Duration::from_secs(60),
            max_file_records: 200_000,
            max_file_bytes: 128 << 20,
            lease_ttl: Duration::from_secs(60),
            gc_grace: Duration::from_secs(600),
            retention_interval: Duration::from_secs(60),
            archive_retention: Duration::ZERO,
            broadcast_client_ttl: Duration::from_secs(24 * 3600),
        }
    }
}
