//! Orphan transaction checks: half messages left unresolved are checked with their
//! producers. Any node holding a producer's connection claims the due checks of the topics its
//! producers publish (the coordinator gives each check to one node) and sends the check the
//! producer's protocol has — `RecoverOrphanedTransactionCommand` on a 5.x Telemetry stream,
//! CHECK_TRANSACTION_STATE on a 4.x connection; the producer answers with EndTransaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_ingest::Ingest;
use strata_meta::Catalog;
use strata_meta::model::HeldRecord;
use strata_proto::v2::{self, telemetry_command::Command};
use strata_proto::wal::WalRecord;
use strata_storage::BlockCache;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::Sessions;
use super::status::ok;

/// Checks claimed per round.
const CHECKS_PER_ROUND: u32 = 100;

/// One check to send: the half message, its record and the id its producer resolves it by.
pub struct Check<'a> {
    pub half: &'a HeldRecord,
    pub record: &'a WalRecord,
    pub transaction_id: String,
    /// Spreads checks over a topic's producers.
    pub pick: usize,
}

/// The producers one front holds connections to.
pub trait CheckRoute: Send + Sync {
    /// Every `(tenant, topic)` a connected producer can resolve half messages of.
    fn published_topics(&self) -> Vec<(String, String)>;

    /// Sends `check` to one of its producers; `Ok(false)` when none is connected here.
    fn send_check(&self, check: &Check<'_>) -> Result<bool, String>;
}

/// Every second, sends the due orphan checks of this node's producers; later checks of the
/// same transaction back off from `interval` (doubling, at most 32×).
pub fn spawn_transaction_checks(
    catalog: Catalog,
    ingest: Arc<Ingest>,
    blocks: BlockCache,
    routes: Vec<Arc<dyn CheckRoute>>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let pick = AtomicUsize::new(0);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let mut topics: Vec<(String, String)> = routes.iter().flat_map(|r| r.published_topics()).collect();
            topics.sort();
            topics.dedup();
            if topics.is_empty() {
                continue;
            }
            let claimed = catalog
                .coordinator()
                .claim_transaction_checks(
                    &topics,
                    catalog.clock().now_ms(),
                    interval.as_millis() as i64,
                    CHECKS_PER_ROUND,
                )
                .await;
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "claiming transaction checks failed");
                    continue;
                }
            };
            for half in claimed {
                let n = pick.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = send_check(&ingest, &blocks, &routes, &half, n).await {
                    warn!(transaction = %half.id, error = %e, "orphan check not sent; it will be retried");
                }
            }
        }
    })
}

async fn send_check(
    ingest: &Ingest,
    blocks: &BlockCache,
    routes: &[Arc<dyn CheckRoute>],
    half: &HeldRecord,
    pick: usize,
) -> Result<(), String> {
    let q = &half.queue;
    let record = strata_query::reader::record_at(blocks, &half.location, half.record_index)
        .await
        .map_err(|e| e.to_string())?;
    let check = Check {
        half,
        record: &record,
        transaction_id: ingest.transaction_id(&q.tenant, &q.topic, &half.id),
        pick,
    };
    for route in routes {
        if route.send_check(&check)? {
            debug!(topic = %q.topic, message = %half.message_id, checks = half.checks, "orphan transaction check sent");
            return Ok(());
        }
    }
    Err("its producers disconnected".into())
}

/// 5.x producers: the check goes down a producer's Telemetry stream.
pub struct TelemetryChecks {
    pub sessions: Arc<Sessions>,
    /// Reported as the message's store host.
    pub store_host: String,
}

impl CheckRoute for TelemetryChecks {
    fn published_topics(&self) -> Vec<(String, String)> {
        self.sessions.published_topics()
    }

    fn send_check(&self, check: &Check<'_>) -> Result<bool, String> {
        let q = &check.half.queue;
        let Some(producer) = self.sessions.producer_of(&q.tenant, &q.topic, check.pick) else {
            return Ok(false);
        };
        let message =
            strata_query::convert::record_message(&q.tenant, &q.topic, check.record, q.queue, &self.store_host);
        let command = v2::TelemetryCommand {
            status: Some(ok()),
            command: Some(Command::RecoverOrphanedTransactionCommand(
                v2::RecoverOrphanedTransactionCommand {
                    message: Some(message),
                    transaction_id: check.transaction_id.clone(),
                },
            )),
        };
        producer.try_send(Ok(command)).map_err(|e| e.to_string())?;
        Ok(true)
    }
}
