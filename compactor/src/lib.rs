//! The compactor role: background upkeep of the cluster. Today: declaring dead nodes (which
//! fences their epochs) and deleting orphan WAL objects (PUT but never committed). Compaction
//! to Parquet, retention, timers and revive come in later milestones.

mod config;
mod gc;

use std::sync::Arc;

use object_store::ObjectStore;
use strata_meta::{Clock, Coordinator};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use config::CompactorConfig;
pub use gc::{GcReport, collect_orphans};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("coordinator: {0}")]
    Coordinator(#[from] strata_meta::Error),
}

/// Starts the compactor's loops; abort the handles to stop them.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    store: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    config: CompactorConfig,
    node_ttl: std::time::Duration,
) -> Vec<JoinHandle<()>> {
    let expiry = {
        let (coordinator, clock) = (Arc::clone(&coordinator), Arc::clone(&clock));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(node_ttl / 4);
            loop {
                tick.tick().await;
                match coordinator
                    .expire_nodes(clock.now_ms(), node_ttl.as_millis() as i64)
                    .await
                {
                    Ok(dead) if !dead.is_empty() => warn!(nodes = ?dead, "declared dead; their epochs are fenced"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "node expiry failed"),
                }
            }
        })
    };
    let gc = tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.gc_interval);
        loop {
            tick.tick().await;
            match collect_orphans(
                store.as_ref(),
                coordinator.as_ref(),
                clock.now_ms(),
                config.orphan_grace,
            )
            .await
            {
                Ok(r) if r.deleted > 0 => info!(deleted = r.deleted, kept = r.kept, "deleted orphan WAL objects"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "orphan collection failed"),
            }
        }
    });
    vec![expiry, gc]
}
