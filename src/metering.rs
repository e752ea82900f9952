//! The node's metering tasks: writes what its meter counted to the object store every
//! `metering.flush_interval` (and at shutdown), and, on compactors, adds each tenant's stored
//! GB-hours every `metering.storage_interval` and rolls each past hour's files into one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strata_meta::{Clock, Coordinator};
use strata_storage::ObjectStore;
use strata_storage::counting::RequestCounts;
use strata_storage::hooked::Op;
use strata_tenancy::Meter;
use strata_tenancy::meter::{HOUR_MS, Row, metric};
use strata_tenancy::metering::{self, MeteringError};
use tokio::task::JoinHandle;
use tracing::{Instrument, info_span, warn};

pub struct Metering {
    pub meter: Arc<Meter>,
    /// The store the records go to (not counted: metering's own requests are not billed).
    pub store: Arc<dyn ObjectStore>,
    pub node: String,
    /// The node's object-store requests, for the GETs split between tenants.
    pub store_requests: Arc<RequestCounts>,
    pub clock: Arc<dyn Clock>,
    gets_seen: AtomicU64,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Metering {
    pub fn new(
        meter: Arc<Meter>,
        store: Arc<dyn ObjectStore>,
        node: String,
        store_requests: Arc<RequestCounts>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let gets_seen = AtomicU64::new(store_requests.get(Op::Get));
        Self {
            meter,
            store,
            node,
            store_requests,
            clock,
            gets_seen,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Writes everything counted so far. The node's GETs since the last flush are split
    /// between tenants by the bytes their consumers received meanwhile (a read's tenant is not
    /// known where the block cache misses). On failure the counts go back into the meter.
    pub async fn flush(&self) -> Result<(), MeteringError> {
        let _one = self.one_at_a_time.lock().await;
        let mut rows = self.meter.drain();
        let gets = self.store_requests.get(Op::Get);
        let new_gets = gets.saturating_sub(self.gets_seen.swap(gets, Ordering::Relaxed));
        let mut read: HashMap<&str, u64> = HashMap::new();
        for r in rows.iter().filter(|r| r.metric == metric::BYTES_OUT) {
            *read.entry(r.tenant.as_str()).or_default() += r.value as u64;
        }
        let hour_ms = self.clock.now_ms().div_euclid(HOUR_MS) * HOUR_MS;
        let gets: Vec<Row> = metering::split_by_bytes(new_gets as f64, &read)
            .into_iter()
            .map(|(tenant, value)| Row {
                tenant: tenant.to_string(),
                hour_ms,
                metric: metric::STORE_GETS.to_string(),
                value,
            })
            .collect();
        rows.extend(gets);
        if rows.is_empty() {
            return Ok(());
        }
        match metering::write(self.store.as_ref(), &self.node, &rows, ulid::Ulid::new()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.meter.restore(rows);
                Err(e)
            }
        }
    }

    pub fn spawn(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = me.flush().instrument(info_span!("metering_flush")).await {
                    warn!(error = %e, "metering records not written; kept for the next try");
                }
            }
        })
    }
}

/// Every `every`, merges the metering files of each hour older than `after` into one (one
/// compactor at a time, under a lease).
pub fn spawn_rollups(
    coordinator: Arc<dyn Coordinator>,
    store: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    node: String,
    every: Duration,
    after: Duration,
) -> JoinHandle<()> {
    const LEASE: &str = "metering-rollup";
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = clock.now_ms();
            let ttl = every.as_millis() as i64;
            match coordinator.acquire_lease(LEASE, &node, now, ttl).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    warn!(error = %e, "metering rollup lease not taken");
                    continue;
                }
            }
            let before = now - after.as_millis() as i64;
            match metering::roll_up(store.as_ref(), before, ulid::Ulid::new())
                .instrument(info_span!("metering_rollup"))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "metering files rolled up"),
                Err(e) => warn!(error = %e, "metering rollup failed; retried next time"),
            }
            if let Err(e) = coordinator.release_lease(LEASE, &node).await {
                warn!(error = %e, "metering rollup lease not released");
            }
        }
    })
}

/// Every `every`, adds each tenant's stored bytes × `every` as GB-hours.
pub fn spawn_storage_sampler(coordinator: Arc<dyn Coordinator>, meter: Arc<Meter>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let hours = every.as_secs_f64() / 3600.0;
        loop {
            tick.tick().await;
            match coordinator.stored_bytes().await {
                Ok(stored) => {
                    for (tenant, bytes) in stored {
                        meter.add(&tenant, &[(metric::STORAGE_GB_HOURS, bytes as f64 / 1e9 * hours)]);
                    }
                }
                Err(e) => warn!(error = %e, "stored bytes not measured"),
            }
        }
    })
}
