//! Wires a node's roles together and serves gRPC.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use strata_ingest::Ingest;
use strata_meta::model::Roles;
use strata_meta::quarantine::Unreadable;
use strata_meta::{AutoCreate, Catalog, Clock, Coordinator, Membership, OffsetClock, SqlCoordinator, SyncedClock};
use strata_proto::admin::strata_admin_server::StrataAdminServer;
use strata_proto::v2::admin_server::AdminServer as RocketMqAdminServer;
use strata_proto::v2::messaging_service_server::MessagingServiceServer;
use strata_query::Query;
use strata_storage::{BlockCache, open_store};
use strata_tenancy::{DateWindow, Guard, GuardConfig, Limits, Meter, Quotas, RootCredentials, Vault};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tracing::info;

use crate::admin::Admin;
use crate::config::Settings;
use crate::connections::{Limit, LimitedListener};
use crate::drain::Drain;
use crate::front::{CheckRoute, Forwarder, Front, Routes, Sessions, TelemetryChecks, spawn_transaction_checks};
use crate::gate::Gate;
use crate::http::{Observed, Readiness};
use crate::metering::{Metering, spawn_rollups, spawn_storage_sampler};
use crate::trace::Tracer;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a node with `roles` until SIGINT/SIGTERM. `Roles::ALL` is standalone.
pub async fn run(settings: Settings, roles: Roles) -> Result<(), BoxError> {
    let standalone = roles == Roles::ALL;
    let coordinator_target = settings.coordinator_target();
    if !standalone && !coordinator_target.starts_with("postgres") {
        return Err("cluster roles need a shared coordinator: --coordinator postgres://…".into());
    }
    std::fs::create_dir_all(&settings.data_dir)?;
    let coordinator = Arc::new(SqlCoordinator::open(&coordinator_target).await?);
    let dyn_coordinator: Arc<dyn Coordinator> = coordinator.clone();
    // Every time this node stamps or compares is the coordinator's (DESIGN: nodes' clocks
    // drift; deadlines and heartbeats cross nodes). Tests may run the local clock fast.
    let local = Arc::new(OffsetClock::default());
    #[cfg(feature = "testing")]
    local.advance(settings.testing.clock_skew);
    let synced = Arc::new(SyncedClock::new(local));
    let offset = synced.sync(dyn_coordinator.as_ref()).await?;
    info!(offset_ms = offset, "clock synced to the coordinator's");
    let offset_clock = Arc::new(OffsetClock::over(synced.clone()));
    let clock: Arc<dyn Clock> = offset_clock.clone();
    let store_url = settings.store_url();
    let raw_store = open_store(&store_url, &settings.s3)?;
    let (store, store_requests) = strata_storage::counting::counting(Arc::clone(&raw_store));
    let catalog = Catalog::new(
        Arc::clone(&dyn_coordinator),
        Arc::clone(&clock),
        AutoCreate {
            enabled: settings.auto_create.unwrap_or(standalone),
            queue_count: settings.default_queues,
        },
    );

    let guard = Arc::new(open_guard(
        &settings,
        standalone,
        Arc::clone(&dyn_coordinator),
        Arc::clone(&clock),
    )?);
    let meter = Arc::new(Meter::new(Arc::clone(&clock)));
    let quotas = Arc::new(Quotas::new(
        Arc::clone(&dyn_coordinator),
        Arc::clone(&clock),
        Limits {
            reserved_tps: settings.quota.default_reserved_tps,
            burst_tps: settings.quota.default_burst_tps,
        },
    ));

    let prometheus = crate::http::install_recorder()?;
    let tls = Tls::load(&settings.tls)?;
    let listener = tokio::net::TcpListener::bind(settings.grpc_listen).await?;
    let http_listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (http_listen): {e}", settings.http_listen))?;
    let http_local = http_listener.local_addr()?;
    // Bound with the others, so a node accepting gRPC accepts 4.x clients too.
    let remoting_listener = match settings.remoting.listen_address(standalone)? {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address} (remoting.listen): {e}"))?,
        ),
        None => None,
    };
    let name_server_listener = match (&remoting_listener, settings.remoting.name_server_listen) {
        (Some(_), Some(address)) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address} (remoting.name_server_listen): {e}"))?,
        ),
        _ => None,
    };
    let local = listener.local_addr()?;
    let advertise = advertised(settings.advertise.as_deref(), local, standalone, "--advertise")?;
    let node_id = settings.node_id(&advertise);
    let remoting_advertise = match &remoting_listener {
        Some(l) => Some(advertised(
            settings.remoting.advertise.as_deref(),
            l.local_addr()?,
            standalone,
            "remoting.advertise",
        )?),
        None => None,
    };
    let membership = Membership::join(
        Arc::clone(&dyn_coordinator),
        Arc::clone(&clock),
        &node_id,
        roles,
        &advertise,
        remoting_advertise.as_deref(),
    )
    .await?;
    let metering = Arc::new(Metering::new(
        Arc::clone(&meter),
        Arc::clone(&raw_store),
        node_id.clone(),
        Arc::clone(&store_requests),
        Arc::clone(&clock),
    ));
    let mut tasks = vec![
        membership.spawn_heartbeats(settings.cluster.heartbeat_interval),
        spawn_clock_sync(synced, Arc::clone(&dyn_coordinator), CLOCK_SYNC_INTERVAL),
        metering.spawn(settings.metering.flush_interval),
        spawn_quota_share(
            Arc::clone(&quotas),
            Arc::clone(&dyn_coordinator),
            Arc::clone(&clock),
            settings.cluster.heartbeat_interval,
            settings.cluster.node_ttl,
        ),
    ];

    let mut cache_config = settings.cache.clone();
    if cache_config.disk_dir.is_none() {
        cache_config.disk_dir = Some(settings.data_dir.join("cache"));
    }
    let blocks = BlockCache::open(Arc::clone(&store), &cache_config).await?;
    let ingest = if roles.contains(Roles::INGEST) {
        let ingest = Ingest::new(
            catalog.clone(),
            Arc::clone(&store),
            Some(blocks.clone()),
            settings.ingest.clone(),
            Arc::clone(&membership),
            Some(Arc::clone(&meter)),
        )
        .await?;
        Some(Arc::new(ingest))
    } else {
        None
    };
    // Trace events are stored by this node's ingest pipeline, or one of their own on nodes
    // without the ingest role.
    let trace_ingest = match &ingest {
        Some(ingest) => Some(Arc::clone(ingest)),
        None if settings.trace.enabled => Some(Arc::new(
            Ingest::new(
                catalog.clone(),
                Arc::clone(&store),
                None,
                settings.ingest.clone(),
                Arc::clone(&membership),
                None,
            )
            .await?,
        )),
        None => None,
    };
    let tracer = match trace_ingest.clone() {
        Some(writer) => {
            let (tracer, task) = Tracer::spawn(&settings.trace, writer, catalog.clone(), node_id.clone());
            tasks.extend(task);
            tracer
        }
        None => Tracer::off(Arc::clone(&clock)),
    };
    let query = if roles.contains(Roles::QUERY) {
        Some(Arc::new(
            Query::new(catalog.clone(), blocks.clone(), settings.query.clone()).await?,
        ))
    } else {
        None
    };
    if let (Some(q), true) = (&query, tracer.enabled()) {
        q.on_dead_letter(tracer.dead_letter_hook(q.reader().clone()));
    }
    // One count of failed reads and quarantines per node, whichever role read.
    let unreadable = match &query {
        Some(q) => Arc::clone(q.unreadable()),
        None => Arc::new(Unreadable::new(
            Arc::clone(&dyn_coordinator),
            Arc::clone(&clock),
            settings.query.quarantine_after,
        )),
    };
    if roles.contains(Roles::COMPACTOR) {
        let compaction = strata_compactor::Compaction {
            coordinator: Arc::clone(&dyn_coordinator),
            store: Arc::clone(&store),
            blocks: blocks.clone(),
            clock: Arc::clone(&clock),
            config: settings.compactor.clone(),
            node: node_id.clone(),
            unreadable: Arc::clone(&unreadable),
        };
        let fired = tracer.clone();
        tasks.extend(strata_compactor::spawn(
            compaction,
            settings.cluster.node_ttl,
            settings.ingest.index_window,
            Arc::new(move |timers| fired.timers_fired(timers)),
        ));
        tasks.push(spawn_storage_sampler(
            Arc::clone(&dyn_coordinator),
            Arc::clone(&meter),
            settings.metering.storage_interval,
        ));
        tasks.push(spawn_rollups(
            Arc::clone(&dyn_coordinator),
            Arc::clone(&raw_store),
            Arc::clone(&clock),
            node_id.clone(),
            METERING_ROLLUP_INTERVAL,
            settings.metering.rollup_after,
        ));
    }
    let sessions = Arc::new(Sessions::default());
    let routes = if standalone && settings.advertise.is_none() {
        Routes::Single { advertise: None }
    } else {
        Routes::Cluster {
            coordinator: Arc::clone(&dyn_coordinator),
            clock: Arc::clone(&clock),
            node_ttl: settings.cluster.node_ttl,
        }
    };
    let forwarder = match &routes {
        Routes::Single { .. } => None,
        Routes::Cluster { .. } => Some(Arc::new(Forwarder::new(
            Arc::clone(&dyn_coordinator),
            Arc::clone(&clock),
            settings.cluster.node_ttl,
            node_id.clone(),
            tls.client.clone(),
        ))),
    };
    let front = Front {
        ingest: ingest.clone(),
        query: query.clone(),
        catalog: catalog.clone(),
        sessions: Arc::clone(&sessions),
        routes,
        node_id: node_id.clone(),
        max_body_bytes: settings.ingest.max_body_bytes,
        query_config: settings.query.clone(),
        forwarder,
        gate: Arc::new(Gate {
            guard: Arc::clone(&guard),
            quotas: Arc::clone(&quotas),
            meter,
            tracer,
            failures: Default::default(),
            clock: Arc::clone(&clock),
        }),
    };
    // Where orphan transaction checks go: 5.x producers' Telemetry streams, 4.x connections.
    let mut check_routes: Vec<Arc<dyn CheckRoute>> = vec![Arc::new(TelemetryChecks {
        sessions: Arc::clone(&sessions),
        store_host: node_id.clone(),
    })];
    if let Some(listener) = remoting_listener {
        let local = listener.local_addr()?;
        let advertised = remoting_advertise.clone().unwrap_or_else(|| local.to_string());
        let store_host = advertised
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, local.port()));
        let identity = crate::remoting::BrokerIdentity {
            cluster: "DefaultCluster".into(),
            name: node_id.clone(),
            address: advertised,
            store_host,
        };
        info!(listen = %local, "4.x Remoting listening on {local}");
        let remoting = Arc::new(crate::remoting::Remoting::new(
            front.clone(),
            identity,
            settings.remoting.max_frame_bytes,
            settings.ingest.index_window,
        ));
        check_routes.push(remoting.clone());
        let limit = Limit::new("remoting", settings.remoting.max_connections);
        if let Some(name_server) = name_server_listener {
            info!(listen = %name_server.local_addr()?, "4.x name server listening on its own port too");
            tasks.push(tokio::spawn(Arc::clone(&remoting).serve(name_server, limit.clone())));
        }
        tasks.push(tokio::spawn(remoting.serve(listener, limit)));
    }
    if let Some(ingest) = &ingest {
        tasks.push(spawn_transaction_checks(
            catalog.clone(),
            Arc::clone(ingest),
            blocks.clone(),
            check_routes,
            settings.ingest.transaction_check_interval,
        ));
    }
    let sweeper = front.clone();
    let swept = Arc::clone(&sessions);
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            for (tenant, client) in swept.sweep() {
                sweeper.drop_lite_client(&tenant, &client).await;
            }
        }
    }));

    let draining = Arc::new(AtomicBool::new(false));
    let observed = Arc::new(Observed {
        prometheus,
        readiness: Readiness {
            coordinator: Arc::clone(&dyn_coordinator),
            store: raw_store,
            draining: Arc::clone(&draining),
        },
        store_requests: Arc::clone(&store_requests),
        blocks: blocks.clone(),
        query: query.clone(),
        ingest: ingest.clone(),
    });
    let role_list = roles.names().join("+");
    info!(
        listen = %local,
        advertise = %advertise,
        node = %node_id,
        roles = %role_list,
        store = %store_url,
        coordinator = %if coordinator_target.starts_with("postgres") { "postgres" } else { "sqlite" },
        auto_create = settings.auto_create.unwrap_or(standalone),
        auth = guard.enabled(),
        http = %http_local,
        tls = tls.identity.is_some(),
        "strata {role_list} listening on {local}"
    );
    let admin = Arc::new(Admin {
        catalog,
        clock_control: clock_control(&settings, offset_clock),
        store: Arc::clone(&store),
        store_requests,
        unreadable,
        guard: Arc::clone(&guard),
        quotas,
        metering: Arc::clone(&metering),
        reader: strata_query::reader::Reader::new(Arc::clone(&dyn_coordinator), blocks.clone()),
        index_window: settings.ingest.index_window,
    });
    let history = Arc::new(crate::http::console::history::History::new(
        settings.console,
        Arc::clone(&dyn_coordinator),
        Arc::clone(&clock),
    ));
    let web = Arc::new(crate::http::WebState {
        front: front.clone(),
        admin: Arc::clone(&admin),
        guard: Arc::clone(&guard),
        max_body_bytes: settings.grpc.max_message_bytes,
        allowed_hosts: settings.http_allowed_hosts.clone(),
        history: Arc::clone(&history),
        clock: Arc::clone(&clock),
    });
    tasks.push(tokio::spawn(history.run()));
    let http_listener = LimitedListener::new(http_listener, Limit::new("http", settings.http_max_connections));
    tasks.push(crate::http::spawn(http_listener, observed, web));
    let messaging = MessagingServiceServer::new(front)
        .max_decoding_message_size(settings.grpc.max_message_bytes)
        .max_encoding_message_size(settings.grpc.max_message_bytes);
    let drain = Drain {
        draining,
        membership: Arc::clone(&membership),
        sessions: Arc::clone(&sessions),
        query: query.clone(),
        period: if standalone {
            Duration::ZERO
        } else {
            settings.cluster.drain_period
        },
    };
    let mut server = tonic::transport::Server::builder();
    if let Some(identity) = &tls.identity {
        server = server.tls_config(ServerTlsConfig::new().identity(identity.clone()))?;
    }
    server
        .max_concurrent_streams(settings.grpc.max_streams_per_connection)
        .add_service(messaging)
        .add_service(StrataAdminServer::from_arc(Arc::clone(&admin)))
        .add_service(RocketMqAdminServer::from_arc(admin))
        .serve_with_incoming_shutdown(
            LimitedListener::new(listener, Limit::new("grpc", settings.grpc.max_connections)).incoming(),
            drain.run(shutdown_signal),
        )
        .await?;
    for t in &tasks {
        t.abort();
    }
    if let Some(ingest) = ingest {
        ingest.shutdown().await;
    }
    if let Err(e) = metering.flush().await {
        tracing::warn!(error = %e, "the last metering records were not written");
    }
    if !standalone && let Err(e) = membership.leave().await {
        tracing::warn!(error = %e, "could not deregister; the others declare this node dead after node_ttl");
    }
    blocks.close().await;
    coordinator.close().await;
    info!("stopped");
    Ok(())
}

/// The `host:port` clients are told to reach a listener at: `configured`, where `auto` (or
/// `auto:PORT`) is this machine's own address — the source address of its default route,
/// for platforms that give a task its address only at run time (ECS on Fargate); unset, the
/// listen address, which a cluster node must not leave unspecified (0.0.0.0).
fn advertised(configured: Option<&str>, listen: SocketAddr, standalone: bool, what: &str) -> Result<String, BoxError> {
    match configured {
        Some(a) if a == "auto" || a.starts_with("auto:") => {
            let port = match a.strip_prefix("auto:") {
                Some(p) => p.parse().map_err(|e| format!("{what} {a}: {e}"))?,
                None => listen.port(),
            };
            Ok(SocketAddr::new(own_address()?, port).to_string())
        }
        Some(a) => Ok(a.to_string()),
        None if listen.ip().is_unspecified() && !standalone => {
            Err(format!("a cluster node listening on all interfaces needs {what} host:port (or auto)").into())
        }
        None => Ok(listen.to_string()),
    }
}

/// The address this machine sends from: a UDP socket "connected" to a documentation address
/// (RFC 5737; nothing is sent) is bound to the default route's source address.
fn own_address() -> Result<IpAddr, BoxError> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket
        .connect((Ipv4Addr::new(192, 0, 2, 1), 9))
        .map_err(|e| format!("advertise auto: no default route to take an address from: {e}"))?;
    Ok(socket.local_addr()?.ip())
}

/// The listener's TLS identity, and how nodes reach one another with TLS on.
struct Tls {
    identity: Option<Identity>,
    client: Option<ClientTlsConfig>,
}

impl Tls {
    fn load(settings: &crate::config::TlsSettings) -> Result<Self, BoxError> {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
        };
        match (&settings.cert_file, &settings.key_file) {
            (None, None) => Ok(Self {
                identity: None,
                client: None,
            }),
            (Some(cert_file), Some(key_file)) => {
                let cert = read("certificate", cert_file)?;
                let key = read("key", key_file)?;
                let ca = match &settings.ca_file {
                    Some(ca) => read("CA", ca)?,
                    None => cert.clone(),
                };
                Ok(Self {
                    identity: Some(Identity::from_pem(cert, key)),
                    client: Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca))),
                })
            }
            _ => Err("TLS needs both tls.cert_file and tls.key_file".into()),
        }
    }
}

/// Authentication and the ACL: on by default in cluster roles, off in standalone. Users'
/// secret keys are sealed with the configured at-rest key; standalone generates one into its
/// The clock the admin API may move (`strata advance-clock`): only in builds with the
/// `testing` feature, and when `testing.clock_control` asks for it.
fn clock_control(settings: &Settings, clock: Arc<OffsetClock>) -> Option<Arc<OffsetClock>> {
    #[cfg(feature = "testing")]
    return settings.testing.clock_control.then_some(clock);
    #[cfg(not(feature = "testing"))]
    {
        let _ = (settings, clock);
        None
    }
}

/// Refuses listeners beyond loopback for a node without authentication: every request would
/// be let in as any tenant's operator.
fn only_loopback(settings: &Settings, standalone: bool) -> Result<(), BoxError> {
    let mut listeners = vec![
        ("grpc_listen", settings.grpc_listen),
        ("http_listen", settings.http_listen),
    ];
    if let Some(a) = settings.remoting.listen_address(standalone)? {
        listeners.push(("remoting.listen", a));
    }
    if let Some(a) = settings.remoting.name_server_listen {
        listeners.push(("remoting.name_server_listen", a));
    }
    match listeners.iter().find(|(_, a)| !a.ip().is_loopback()) {
        None => Ok(()),
        Some((name, a)) => Err(format!(
            "authentication is off, so {name} {a} would let anyone who reaches it act as every \
             tenant's operator: listen on loopback (127.0.0.1), turn authentication on (--auth, \
             STRATA_AUTH=on), or say --insecure-listen-anywhere \
             (STRATA_AUTH_INSECURE_LISTEN_ANYWHERE=yes) if the network keeps strangers out"
        )
        .into()),
    }
}

/// data dir, cluster nodes must share a configured one (without it they create no users).
fn open_guard(
    settings: &Settings,
    standalone: bool,
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
) -> Result<Guard, BoxError> {
    let auth = &settings.auth;
    let enabled = auth.enabled.unwrap_or(!standalone);
    let vault = match &auth.at_rest_key {
        Some(key) => Some(Vault::from_hex(key)?),
        None if standalone => {
            let path = settings.data_dir.join("auth").join("at-rest.key");
            Some(Vault::load_or_create(&path, rand::random())?)
        }
        None if enabled => {
            return Err("cluster nodes with auth on need the at-rest key all of them share: \
                        auth.at_rest_key or STRATA_AUTH_AT_REST_KEY (64 hex digits)"
                .into());
        }
        None => None,
    };
    let root = match (&auth.admin_access_key, &auth.admin_secret_key) {
        (Some(access_key), Some(secret_key)) => Some(RootCredentials {
            access_key: access_key.clone(),
            secret_key: secret_key.clone(),
        }),
        (None, None) => None,
        _ => return Err("auth.admin_access_key and auth.admin_secret_key go together".into()),
    };
    if enabled && root.is_none() {
        tracing::warn!(
            "auth is on without operator credentials (auth.admin_access_key / STRATA_AUTH_ADMIN_ACCESS_KEY): \
             only users created earlier can sign in"
        );
    }
    if !enabled && !auth.insecure_listen_anywhere {
        only_loopback(settings, standalone)?;
    }
    let config = GuardConfig {
        enabled,
        window: DateWindow {
            max_skew: auth.max_clock_skew,
            local_time: auth.local_time_dates,
        },
        root,
    };
    Ok(Guard::new(config, coordinator, vault.map(Arc::new), clock)?)
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

/// Keeps each tenant's quota divided between the live nodes that serve clients (ingest or
/// query): every node enforces its share, with no coordinator call per request.
fn spawn_quota_share(
    quotas: Arc<Quotas>,
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    every: Duration,
    node_ttl: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match coordinator
                .live_nodes(clock.now_ms(), node_ttl.as_millis() as i64)
                .await
            {
                Ok(nodes) => {
                    let serving = nodes
                        .iter()
                        .filter(|n| n.roles.contains(Roles::INGEST) || n.roles.contains(Roles::QUERY))
                        .count();
                    quotas.set_share(u32::try_from(serving).unwrap_or(u32::MAX));
                }
                Err(e) => tracing::warn!(error = %e, "live nodes unknown; keeping the quota share"),
            }
        }
    })
}

/// How often a compactor looks for metering hours to roll up.
const METERING_ROLLUP_INTERVAL: Duration = Duration::from_secs(600);

/// How often a node measures its clock against the coordinator's: drift between syncs stays
/// far below a millisecond (NTP-disciplined clocks drift ~10 µs/s; free-running ones ~1 ms/10 s).
const CLOCK_SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// Syncs `clock` to the coordinator's every `every` until aborted.
fn spawn_clock_sync(
    clock: Arc<SyncedClock>,
    coordinator: Arc<dyn Coordinator>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = clock.sync(coordinator.as_ref()).await {
                tracing::warn!(error = %e, "clock sync failed; keeping the last offset");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses() {
        let any: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        assert_eq!(advertised(Some("mq:1"), any, false, "x").unwrap(), "mq:1");
        assert_eq!(advertised(None, local, false, "x").unwrap(), "127.0.0.1:8081");
        assert!(
            advertised(None, any, false, "x").is_err(),
            "a cluster node must say where it is"
        );
        assert_eq!(advertised(None, any, true, "x").unwrap(), "0.0.0.0:8081");
        let auto: SocketAddr = advertised(Some("auto"), any, false, "x").unwrap().parse().unwrap();
        assert!(!auto.ip().is_unspecified() && auto.port() == 8081, "{auto}");
        let port: SocketAddr = advertised(Some("auto:9876"), any, false, "x").unwrap().parse().unwrap();
        assert_eq!((port.ip(), port.port()), (auto.ip(), 9876));
        assert!(advertised(Some("auto:x"), any, false, "x").is_err());
    }
}
