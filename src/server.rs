//! Wires the roles together and serves gRPC.

use std::sync::Arc;
use std::time::Duration;

use strata_ingest::Ingest;
use strata_meta::{AutoCreate, Catalog, Coordinator, SqliteCoordinator, SystemClock};
use strata_proto::admin::strata_admin_server::StrataAdminServer;
use strata_proto::v2::messaging_service_server::MessagingServiceServer;
use strata_query::Query;
use strata_storage::{BlockCache, open_store};
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::admin::Admin;
use crate::config::Settings;
use crate::front::{Front, Sessions};

/// Largest gRPC message accepted: a 4 MiB body plus headroom for batches (the client's
/// own limit is the body size; batch sends carry several bodies).
const MAX_GRPC_MESSAGE: usize = 64 << 20;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs every role in this process until SIGINT/SIGTERM: embedded SQLite coordinator, the
/// configured object store (a local folder by default).
pub async fn standalone(settings: Settings) -> Result<(), BoxError> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let coordinator = Arc::new(SqliteCoordinator::open(&settings.data_dir.join("meta").join("strata.db")).await?);
    let store_url = settings.store_url();
    let store = open_store(&store_url, &settings.s3)?;
    let mut cache_config = settings.cache.clone();
    if cache_config.disk_dir.is_none() {
        cache_config.disk_dir = Some(settings.data_dir.join("cache"));
    }
    let blocks = BlockCache::open(Arc::clone(&store), &cache_config).await?;
    let catalog = Catalog::new(
        Arc::clone(&coordinator) as Arc<dyn Coordinator>,
        Arc::new(SystemClock),
        AutoCreate {
            enabled: settings.auto_create,
            queue_count: settings.default_queues,
        },
    );
    let node_id = settings.node_id();
    let ingest = Arc::new(Ingest::new(
        catalog.clone(),
        Arc::clone(&store),
        Some(blocks.clone()),
        settings.ingest.clone(),
        &node_id,
    ));
    let query = Arc::new(Query::new(catalog.clone(), blocks, settings.query.clone()).await?);
    let sessions = Arc::new(Sessions::default());
    let front = Front {
        ingest: Arc::clone(&ingest),
        query: Arc::clone(&query),
        catalog: catalog.clone(),
        sessions: Arc::clone(&sessions),
        advertise: settings.advertise.clone(),
        node_id: node_id.clone(),
    };
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            sessions.sweep();
        }
    });

    let listener = tokio::net::TcpListener::bind(settings.grpc_listen).await?;
    let local = listener.local_addr()?;
    info!(
        listen = %local,
        store = %store_url,
        data_dir = %settings.data_dir.display(),
        auto_create = settings.auto_create,
        "strata standalone listening on {local}"
    );
    let messaging = MessagingServiceServer::new(front)
        .max_decoding_message_size(MAX_GRPC_MESSAGE)
        .max_encoding_message_size(MAX_GRPC_MESSAGE);
    let stopping = Arc::clone(&query);
    tonic::transport::Server::builder()
        .add_service(messaging)
        .add_service(StrataAdminServer::new(Admin { catalog }))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown_signal().await;
            info!("shutting down: ending long polls, flushing accepted messages");
            stopping.shutdown();
        })
        .await?;
    sweeper.abort();
    ingest.shutdown().await;
    coordinator.close().await;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
