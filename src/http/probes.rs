//! The operator's endpoints: Prometheus `/metrics`, liveness `/healthz` and readiness `/readyz`
//! (the coordinator and the object store answer, and the node is not draining).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use strata_ingest::Ingest;
use strata_meta::Coordinator;
use strata_query::Query;
use strata_storage::counting::RequestCounts;
use strata_storage::hooked::Op;
use strata_storage::object_store::ObjectStoreExt;
use strata_storage::{BlockCache, ObjectStore, Path};

use crate::server::BoxError;

/// Latency buckets of every `_seconds` histogram: 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a readiness probe waits for the coordinator and the store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the process's metrics recorder (once per process).
pub fn install_recorder() -> Result<PrometheusHandle, BoxError> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .install_recorder()?)
}

/// What the endpoints look at.
pub struct Observed {
    pub prometheus: PrometheusHandle,
    pub readiness: Readiness,
    pub store_requests: Arc<RequestCounts>,
    pub blocks: BlockCache,
    pub query: Option<Arc<Query>>,
    pub ingest: Option<Arc<Ingest>>,
}

/// Whether the node can take work.
pub struct Readiness {
    pub coordinator: Arc<dyn Coordinator>,
    /// Probed uncounted (readiness probes are not the node's traffic).
    pub store: Arc<dyn ObjectStore>,
    /// Set once the node stops taking new work.
    pub draining: Arc<AtomicBool>,
}

impl Observed {
    /// Sets the gauges and counters read from the node's own counts, then renders.
    fn render(&self) -> String {
        for op in Op::ALL {
            metrics::counter!("strata_node_store_requests_total", "op" => op.as_str())
                .absolute(self.store_requests.get(op));
        }
        let tx = self.readiness.coordinator.transactions();
        metrics::counter!("strata_node_coordinator_transactions_total").absolute(tx.all);
        let cache = self.blocks.counts();
        metrics::counter!("strata_query_cache_lookups_total").absolute(cache.lookups.load(Ordering::Relaxed));
        metrics::counter!("strata_query_cache_misses_total").absolute(cache.misses.load(Ordering::Relaxed));
        metrics::gauge!("strata_query_cache_hit_ratio").set(cache.hit_ratio());
        if let Some(q) = &self.query {
            metrics::gauge!("strata_query_long_polls").set(q.long_polls() as f64);
        }
        if let Some(i) = &self.ingest {
            metrics::gauge!("strata_ingest_inflight_bytes").set(i.inflight_bytes() as f64);
        }
        metrics::gauge!("strata_node_resident_memory_bytes").set(crate::admin::rss_bytes() as f64);
        self.prometheus.render()
    }
}

impl Readiness {
    /// Why the node is not ready, if it is not.
    async fn not_ready(&self) -> Option<String> {
        if self.draining.load(Ordering::Relaxed) {
            return Some("draining".into());
        }
        match tokio::time::timeout(PROBE_TIMEOUT, self.coordinator.time_ms()).await {
            Err(_) => return Some("the coordinator does not answer".into()),
            Ok(Err(e)) => return Some(format!("coordinator: {e}")),
            Ok(Ok(_)) => {}
        }
        let probe = Path::from("readyz-probe");
        match tokio::time::timeout(PROBE_TIMEOUT, self.store.head(&probe)).await {
            Err(_) => Some("the object store does not answer".into()),
            Ok(Ok(_) | Err(strata_storage::object_store::Error::NotFound { .. })) => None,
            Ok(Err(e)) => Some(format!("object store: {e}")),
        }
    }
}

async fn metrics_page(State(o): State<Arc<Observed>>) -> String {
    o.render()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(o): State<Arc<Observed>>) -> (StatusCode, String) {
    match o.readiness.not_ready().await {
        None => (StatusCode::OK, "ready\n".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}

/// The endpoints, unauthenticated (probes and scrapers carry no credentials).
pub fn router(observed: Arc<Observed>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(observed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_meta::SqlCoordinator;
    use strata_storage::object_store::memory::InMemory;

    #[tokio::test]
    async fn ready_until_draining() {
        let dir = tempfile::tempdir().unwrap();
        let coordinator = SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap();
        let readiness = Readiness {
            coordinator: Arc::new(coordinator),
            store: Arc::new(InMemory::new()),
            draining: Arc::new(AtomicBool::new(false)),
        };
        assert_eq!(
            readiness.not_ready().await,
            None,
            "a missing probe object is a store that answers"
        );
        readiness.draining.store(true, Ordering::Relaxed);
        assert_eq!(readiness.not_ready().await.as_deref(), Some("draining"));
    }
}
