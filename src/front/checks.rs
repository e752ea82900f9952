//! Orphan transaction checks: half messages left unresolved are checked with their
//! producers. Any node holding a producer's Telemetry stream claims the due checks of the
//! topics its producers publish (the coordinator gives each check to one node) and sends
//! `RecoverOrphanedTransactionCommand`; the producer answers with EndTransaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_ingest::Ingest;
use strata_meta::Catalog;
use strata_meta::model::HeldRecord;
use strata_proto::v2::{self, telemetry_command::Command};
use strata_storage::BlockCache;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::Sessions;
use super::status::ok;

/// Checks claimed per round.
const CHECKS_PER_ROUND: u32 = 100;

/// Every second, sends the due orphan checks of this node's producers; later checks of the
/// same transaction back off from `interval` (doubling, at most 32×).
pub fn spawn_transaction_checks(
    catalog: Catalog,
    ingest: Arc<Ingest>,
    blocks: BlockCache,
    sessions: Arc<Sessions>,
    interval: Duration,
    store_host: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let pick = AtomicUsize::new(0);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let topics = sessions.published_topics();
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
                if let Err(e) = send_check(&ingest, &blocks, &sessions, &half, n, &store_host).await {
                    warn!(transaction = %half.id, error = %e, "orphan check not sent; it will be retried");
                }
            }
        }
    })
}

async fn send_check(
    ingest: &Ingest,
    blocks: &BlockCache,
    sessions: &Sessions,
    half: &HeldRecord,
    pick: usize,
    store_host: &str,
) -> Result<(), String> {
    let q = &half.queue;
    let producer = sessions
        .producer_of(&q.tenant, &q.topic, pick)
        .ok_or("its producers disconnected")?;
    let record = strata_query::reader::record_at(blocks, &half.location, half.record_index)
        .await
        .map_err(|e| e.to_string())?;
    let transaction_id = ingest.transaction_id(&q.tenant, &q.topic, &half.id);
    let message = strata_query::convert::record_message(&q.tenant, &q.topic, &record, q.queue, store_host);
    let command = v2::TelemetryCommand {
        status: Some(ok()),
        command: Some(Command::RecoverOrphanedTransactionCommand(
            v2::RecoverOrphanedTransactionCommand {
                message: Some(message),
                transaction_id,
            },
        )),
    };
    producer.try_send(Ok(command)).map_err(|e| e.to_string())?;
    debug!(topic = %q.topic, message = %half.message_id, checks = half.checks, "orphan transaction check sent");
    Ok(())
}
