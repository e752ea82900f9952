//! The compactor role: background upkeep of the cluster. Today: firing due delay timers,
//! rolling back transactions whose orphan checks went unanswered, moving messages out of
//! attempts to dead-letter topics when nobody receives them, declaring dead nodes (which
//! fences their epochs), compacting WAL batches into per-queue Parquet files, moving held
//! records out of the flush objects they would pin, applying topic retention, expiring idle
//! lite topics, forgetting
//! broadcast clients gone too long, deleting
//! objects nothing references any more, and orphan objects (PUT but never committed).

mod compact;
mod config;
mod gc;
mod held;

use std::sync::Arc;
use std::time::Duration;

use strata_meta::model::{CommitEvent, HeldRecord};
use strata_meta::{Clock, Coordinator};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use compact::{Compacted, Compaction, lease_name};
pub use config::CompactorConfig;
pub use gc::{GcReport, collect_orphans};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object store: {0}")]
    Store(String),
    #[error("reading stored data: {0}")]
    Storage(#[from] strata_storage::Error),
    #[error("coordinator: {0}")]
    Coordinator(#[from] strata_meta::Error),
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Store(e.to_string())
    }
}

/// Starts the compactor's loops; abort the handles to stop them.
/// Told of the timers that fired (message trace).
pub type TimersFired = Arc<dyn Fn(&[HeldRecord]) + Send + Sync>;

/// How long a node that left gracefully stays in `strata node list` (autoscaled pods each
/// leave a row; a day of them is a useful history, a month would be clutter).
const LEFT_NODES_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How often the compactor forgets them.
const LEFT_NODES_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

pub fn spawn(
    compaction: Compaction,
    node_ttl: Duration,
    index_window: Duration,
    on_fired: TimersFired,
) -> Vec<JoinHandle<()>> {
    let coordinator = Arc::clone(&compaction.coordinator);
    let store = Arc::clone(&compaction.store);
    let clock = Arc::clone(&compaction.clock);
    let config = compaction.config.clone();
    let expiry = {
        let (coordinator, clock, node) = (Arc::clone(&coordinator), Arc::clone(&clock), compaction.node.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(node_ttl / 4);
            // After the coordinator was unreachable, every node's last heartbeat looks old
            // (they could not reach it either): wait one TTL before declaring anyone dead.
            let mut calm_since = tokio::time::Instant::now();
            let mut purged_at: Option<tokio::time::Instant> = None;
            loop {
                tick.tick().await;
                if purged_at.is_none_or(|at| at.elapsed() >= LEFT_NODES_PURGE_INTERVAL) {
                    purged_at = Some(tokio::time::Instant::now());
                    let before = clock.now_ms() - LEFT_NODES_KEPT.as_millis() as i64;
                    match coordinator.purge_left_nodes(before).await {
                        Ok(0) => {}
                        Ok(n) => info!(nodes = n, "forgot nodes that left a day ago"),
                        Err(e) => warn!(error = %e, "purging left nodes failed"),
                    }
                }
                if calm_since.elapsed() < node_ttl {
                    if let Err(e) = coordinator.list_nodes().await {
                        warn!(error = %e, "coordinator unreachable");
                        calm_since = tokio::time::Instant::now();
                    }
                    continue;
                }
                match coordinator
                    .expire_nodes(clock.now_ms(), node_ttl.as_millis() as i64, &node)
                    .await
                {
                    Ok(dead) if !dead.is_empty() => warn!(nodes = ?dead, "declared dead; their epochs are fenced"),
                    Ok(_) => {}
                    Err(e) => {
                        warn!(error = %e, "node expiry failed");
                        calm_since = tokio::time::Instant::now();
                    }
                }
            }
        })
    };
    let gc = {
        let (coordinator, clock, config) = (Arc::clone(&coordinator), Arc::clone(&clock), config.clone());
        tokio::spawn(async move {
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
                    Ok(r) if r.deleted > 0 => info!(deleted = r.deleted, kept = r.kept, "deleted orphan objects"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "orphan collection failed"),
                }
            }
        })
    };
    let timers = tokio::spawn(fire_timers(Arc::clone(&coordinator), Arc::clone(&clock), on_fired));
    let transactions = {
        let (coordinator, clock) = (Arc::clone(&coordinator), Arc::clone(&clock));
        let max_checks = config.transaction_max_checks;
        let max_age = config.transaction_timeout.as_millis() as i64;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = clock.now_ms();
                match coordinator.expire_transactions(now, max_checks, max_age).await {
                    Ok(0) => {}
                    Ok(n) => warn!(
                        rolled_back = n,
                        "rolled back transactions unresolved after their checks or timeout"
                    ),
                    Err(e) => warn!(error = %e, "transaction expiry failed"),
                }
                match coordinator.dead_letter_expired(now, DEAD_LETTER_BATCH).await {
                    Ok(0) => {}
                    Ok(n) => info!(messages = n, "moved to dead-letter topics after their last attempt"),
                    Err(e) => warn!(error = %e, "dead-lettering failed"),
                }
            }
        })
    };
    let compactions = {
        let compaction = compaction.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(compaction.config.compaction_interval);
            loop {
                tick.tick().await;
                if let Err(e) = compaction.round().await {
                    warn!(error = %e, "compaction round failed");
                }
                if let Err(e) = compaction.move_held().await {
                    warn!(error = %e, "moving held records failed");
                }
                if let Err(e) = compaction.collect_unreferenced().await {
                    warn!(error = %e, "deleting unreferenced objects failed");
                }
            }
        })
    };
    let retention = tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.retention_interval);
        let archive = config.archive_retention.as_millis() as i64;
        loop {
            tick.tick().await;
            match coordinator.apply_retention(clock.now_ms(), archive, 1000).await {
                Ok(0) => {}
                Ok(n) => info!(batches = n, "removed batches past their topic's retention"),
                Err(e) => warn!(error = %e, "retention failed"),
            }
            match coordinator.expire_lite_topics(clock.now_ms(), 10_000).await {
                Ok(gone) if gone.is_empty() => {}
                Ok(gone) => info!(
                    lite_topics = gone.len(),
                    "deleted lite topics idle for their parent's TTL"
                ),
                Err(e) => warn!(error = %e, "lite topic expiry failed"),
            }
            let unseen_since = clock.now_ms() - config.broadcast_client_ttl.as_millis() as i64;
            match coordinator.expire_broadcast_progress(unseen_since, 1000).await {
                Ok(0) => {}
                Ok(n) => info!(clients = n, "forgot the progress of broadcast clients gone too long"),
                Err(e) => warn!(error = %e, "broadcast progress expiry failed"),
            }
            let idle_since = clock.now_ms() - strata_meta::lane::IDLE_EXPIRY.as_millis() as i64;
            match coordinator.expire_lanes(idle_since, 1000).await {
                Ok(0) => {}
                Ok(n) => info!(lanes = n, "forgot grayscale lanes idle for a week"),
                Err(e) => warn!(error = %e, "lane expiry failed"),
            }
            let indexed_since = clock.now_ms() - index_window.as_millis() as i64;
            for _ in 0..INDEX_EXPIRY_ROUNDS {
                match coordinator.expire_index(indexed_since, INDEX_EXPIRY_BATCH).await {
                    Ok(n) if n >= INDEX_EXPIRY_BATCH => {}
                    Ok(_) => break,
                    Err(e) => {
                        warn!(error = %e, "message index expiry failed");
                        break;
                    }
                }
            }
        }
    });
    vec![expiry, gc, timers, transactions, compactions, retention]
}

/// Message index entries forgotten per statement, and statements per retention round: up to
/// 10 M entries a round (a minute by default), ~160,000 messages/s.
const INDEX_EXPIRY_BATCH: u32 = 100_000;
const INDEX_EXPIRY_ROUNDS: usize = 100;

/// Messages moved to dead-letter topics per round (rounds are a second apart).
const DEAD_LETTER_BATCH: u32 = 1000;

/// Resolves when a commit may have added a timer (or notifications were missed); commits of
/// appended messages, the bulk, do not wake the timer loop.
async fn held_commit(events: &mut tokio::sync::broadcast::Receiver<CommitEvent>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(e) if e.may_hold() => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Timers fire at most this late: the loop never sleeps longer.
const TIMER_TICK: Duration = Duration::from_secs(1);
/// Timers fired per coordinator transaction.
const TIMER_BATCH: u32 = 1000;

/// Fires due timers: sleeps until the earliest one is due (at most `TIMER_TICK`, or until a
/// commit may have added an earlier one), then appends every due one to its queue.
async fn fire_timers(coordinator: Arc<dyn Coordinator>, clock: Arc<dyn Clock>, on_fired: TimersFired) {
    let mut events = coordinator.subscribe();
    loop {
        let wait = match coordinator.fire_due_timers(clock.now_ms(), TIMER_BATCH).await {
            Ok(fired) if fired.len() as u32 >= TIMER_BATCH => {
                on_fired(&fired);
                continue;
            }
            Ok(fired) => {
                if !fired.is_empty() {
                    info!(fired = fired.len(), "delay timers fired");
                    on_fired(&fired);
                }
                match coordinator.next_timer_at().await {
                    Ok(Some(at)) => Duration::from_millis((at - clock.now_ms()).max(0) as u64).min(TIMER_TICK),
                    _ => TIMER_TICK,
                }
            }
            // Due timers stay due: retry after a tick rather than at once.
            Err(e) => {
                warn!(error = %e, "firing timers failed");
                TIMER_TICK
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = held_commit(&mut events) => {}
        }
    }
}
