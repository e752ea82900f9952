//! The broker's settings: defaults, then an optional TOML file, then `STRATA_*` environment
//! variables for the common knobs, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use std::time::Duration;

use strata_compactor::CompactorConfig;
use strata_ingest::IngestConfig;
use strata_query::QueryConfig;
use strata_storage::{CacheConfig, S3Options};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Folder for the embedded coordinator, the local object store and the disk cache.
    pub data_dir: PathBuf,
    /// Where the gRPC server (MessagingService and the admin API) listens.
    pub grpc_listen: SocketAddr,
    /// Where the HTTP listener serves `/metrics`, `/healthz`, `/readyz`, the HTTP/JSON API
    /// and the web console (default 127.0.0.1:8082; port 0 picks a free one).
    pub http_listen: SocketAddr,
    /// Host names the HTTP listener answers to while authentication is off, besides IP
    /// addresses and `localhost` (env `STRATA_HTTP_ALLOWED_HOSTS`, comma-separated). Any
    /// other `Host` is refused then: a web page whose name an attacker re-points at this
    /// machine (DNS rebinding) would otherwise drive an open broker from a visitor's browser.
    pub http_allowed_hosts: Vec<String>,
    /// Connections the HTTP listener holds at once (default 1,024: API callers, console
    /// viewers and scrapers; a long-polling receive holds one for up to 20 s); more are
    /// closed as they arrive.
    pub http_max_connections: usize,
    /// `host:port` clients are told to connect to (QueryRoute). Unset: the address the
    /// client used to reach us, which is right for a single node.
    pub advertise: Option<String>,
    /// Object store URL: `file:///path`, `s3://bucket/prefix`, `memory://`. Unset: the
    /// `store` folder in the data dir.
    pub store: Option<String>,
    pub s3: S3Options,
    /// Coordinator: `postgres://user@host/db`, or a SQLite file path. Unset: SQLite in the
    /// data dir (standalone only; cluster roles need PostgreSQL).
    pub coordinator: Option<String>,
    /// Create unknown topics (NORMAL) and groups on first use. Unset: on in standalone, off
    /// in cluster roles.
    pub auto_create: Option<bool>,
    /// Queues of an auto-created topic.
    pub default_queues: i32,
    /// This node's id (WAL object writer, logs). Unset: derived from the listen address.
    pub node_id: Option<String>,
    /// Memory the node may use, in bytes (default 256 MiB). The block cache's memory tier
    /// (1/4 of it), the bytes accepted but not yet acknowledged (1/4) and the bodies per
    /// Parquet file a compaction gathers (1/16, within 8–128 MiB) are derived from it unless
    /// `cache.memory_bytes`, `ingest.max_inflight_bytes` or `compactor.max_file_bytes` are
    /// set; the rest covers
    /// the runtime, connections, the coordinator's page cache and the index caches. More
    /// budget: more cache hits (each saves a GET of ~1–30 ms) and more producer bytes in
    /// flight before sends wait.
    pub memory_budget: usize,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
    pub cache: CacheConfig,
    pub compactor: CompactorConfig,
    pub cluster: ClusterConfig,
    pub grpc: GrpcConfig,
    pub remoting: RemotingConfig,
    pub auth: AuthSettings,
    pub tls: TlsSettings,
    pub quota: QuotaSettings,
    pub metering: MeteringSettings,
    pub trace: crate::trace::TraceConfig,
    pub console: crate::http::console::history::HistoryConfig,
    #[cfg(feature = "testing")]
    pub testing: TestingConfig,
}

/// TLS on the gRPC listener (rustls). With a certificate and key every client must connect
/// with TLS (the 5.x SDKs: `tls_enable` / `sslEnabled`); without them the port is plaintext.
/// The handshake costs ~1 ms once per connection; the SDKs keep theirs open.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain (env `STRATA_TLS_CERT_FILE`, flag `--tls-cert`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key (env `STRATA_TLS_KEY_FILE`, flag `--tls-key`).
    pub key_file: Option<PathBuf>,
    /// PEM CA that nodes trust when they pass requests to one another (env
    /// `STRATA_TLS_CA_FILE`). Unset: `cert_file` (one certificate shared by every node).
    pub ca_file: Option<PathBuf>,
}

/// The quota of tenants created without one, and of namespaces never created as tenants
/// (docs/tenancy.md). TPS units: one per started 4 KiB of a message sent or received.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaSettings {
    /// Units per second metered as reserved (default 0: all traffic is burst).
    pub default_reserved_tps: u32,
    /// The ceiling, units per second (default 0: none). Each node enforces its share: the
    /// ceiling divided by the live ingest and query nodes.
    pub default_burst_tps: u32,
}

/// Metering records (Parquet under `metering/` in the object store).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeteringSettings {
    /// How often a node writes what it counted (default 60 s): one small PUT per hour
    /// touched per interval; a node that dies loses at most this much of its counts.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// How often the compactor measures stored bytes per tenant for GB-hours (default
    /// 5 min): each measurement scans the batch index once.
    #[serde(with = "humantime_serde")]
    pub storage_interval: Duration,
    /// Hours older than this are rolled up into one file each by the compactor (default 2 h;
    /// checked every 10 min). A node's counts for an hour arrive within one flush interval
    /// of it, so later files are rare (they are counted and rolled up the next time).
    #[serde(with = "humantime_serde")]
    pub rollup_after: Duration,
}

impl Default for MeteringSettings {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(60),
            storage_interval: Duration::from_secs(300),
            rollup_after: Duration::from_secs(2 * 3600),
        }
    }
}

/// AK/SK authentication and the ACL (docs/tenancy.md).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Check every request's signature and the ACL. Unset: on in cluster roles, off in
    /// standalone (`--auth` / `--no-auth` or `STRATA_AUTH` decide).
    pub enabled: Option<bool>,
    /// The operator's access key: every tenant, every action, the account RPCs (env
    /// `STRATA_AUTH_ADMIN_ACCESS_KEY`). Without it only users created while auth was off exist.
    pub admin_access_key: Option<String>,
    /// The operator's secret key (env `STRATA_AUTH_ADMIN_SECRET_KEY`). Never logged.
    pub admin_secret_key: Option<String>,
    /// The key sealing users' secret keys in the coordinator, 64 hex digits (env
    /// `STRATA_AUTH_AT_REST_KEY`). Unset: standalone generates one into
    /// `DATA_DIR/auth/at-rest.key` (mode 0600); cluster nodes must share one, so they need it.
    pub at_rest_key: Option<String>,
    /// Largest difference between a client's clock and ours (default 15 min). The signature
    /// covers only the request's date, to the second: shorter narrows how long a captured
    /// header stays usable; longer tolerates worse client clocks.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// Also accept dates written in local time (default true): the Java and Python clients
    /// write local time with a `Z`, so a zone offset of −12 h … +14 h is allowed on top of
    /// `max_clock_skew` for their date format (the Rust client's RFC 3339 dates carry their
    /// zone and get the strict window). Off: such clients must run in UTC.
    pub local_time_dates: bool,
    /// With authentication off, listen on addresses other than loopback (default false; env
    /// `STRATA_AUTH_INSECURE_LISTEN_ANYWHERE`, flag `--insecure-listen-anywhere`). Off, a node
    /// without authentication refuses to start on 0.0.0.0 or a public address: whoever
    /// reaches the port would be every tenant's operator. On: the operator says the network
    /// itself keeps strangers out.
    pub insecure_listen_anywhere: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            enabled: None,
            admin_access_key: None,
            admin_secret_key: None,
            at_rest_key: None,
            max_clock_skew: Duration::from_secs(15 * 60),
            local_time_dates: true,
            insecure_listen_anywhere: false,
        }
    }
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("enabled", &self.enabled)
            .field("admin_access_key", &self.admin_access_key)
            .field("admin_secret_key", &self.admin_secret_key.as_ref().map(|_| "<hidden>"))
            .field("at_rest_key", &self.at_rest_key.as_ref().map(|_| "<hidden>"))
            .field("max_clock_skew", &self.max_clock_skew)
            .field("local_time_dates", &self.local_time_dates)
            .field("insecure_listen_anywhere", &self.insecure_listen_anywhere)
            .finish()
    }
}

/// Limits of each client connection to the gRPC port.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Largest request or response message (default 16 MiB): a SendMessage batch of bodies
    /// up to `ingest.max_body_bytes` (4 MiB) each must fit. Larger requests are refused with
    /// gRPC `OUT_OF_RANGE` (tonic's code for it); the connection goes on.
    pub max_message_bytes: usize,
    /// Requests (HTTP/2 streams) one connection may have open at once (default 1,024; the
    /// official SDKs share one connection per endpoint among their producers and
    /// consumers, each long poll holding a stream for up to 20 s). Beyond it the client's
    /// next call waits for a stream to close: one connection cannot tie up a node.
    pub max_streams_per_connection: u32,
    /// Connections the gRPC listener holds at once (default 4,096); more are closed as they
    /// arrive. An idle HTTP/2 connection costs ~20–100 KiB of buffers: 4,096 is at most
    /// ~400 MiB, and clients share one connection per endpoint, so this is thousands of
    /// client processes.
    pub max_connections: usize,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 << 20,
            max_streams_per_connection: 1024,
            max_connections: 4096,
        }
    }
}

/// The 4.x Remoting listener (name server and broker on one port).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemotingConfig {
    /// `host:port`, or `off`. Unset: `127.0.0.1:9876` in standalone (the port 4.x clients
    /// know as the name server's), off in cluster roles.
    pub listen: Option<String>,
    /// `host:port` 4.x clients are told to reach the broker at (routes). Unset: the listen
    /// address.
    pub advertise: Option<String>,
    /// A second `host:port` answering the same requests, for deployments that give 4.x
    /// clients the name server on a port of its own (Apache's 9876 beside a broker's 10911).
    /// Unset: `listen` serves both.
    pub name_server_listen: Option<SocketAddr>,
    /// Largest frame (default 16 MiB, as `grpc.max_message_bytes`): a batch send of 4 MiB
    /// bodies must fit. A larger frame closes its connection (the 4.x protocol has no way to
    /// refuse a frame it cannot read); other connections go on.
    pub max_frame_bytes: usize,
    /// Connections the Remoting listener holds at once (default 4,096); more are closed as
    /// they arrive. Each costs a 64 KiB read buffer and its reply queue: 4,096 ≈ 256 MiB at
    /// most; a 4.x client keeps one connection per broker and one to the name server.
    pub max_connections: usize,
}

impl Default for RemotingConfig {
    fn default() -> Self {
        Self {
            listen: None,
            advertise: None,
            name_server_listen: None,
            max_frame_bytes: 16 << 20,
            max_connections: 4096,
        }
    }
}

impl RemotingConfig {
    /// Where to listen, or `None` when off.
    pub fn listen_address(&self, standalone: bool) -> Result<Option<SocketAddr>, String> {
        match self.listen.as_deref() {
            Some("off") => Ok(None),
            Some(a) => a.parse().map(Some).map_err(|e| format!("remoting.listen {a:?}: {e}")),
            None if standalone => Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9876)))),
            None => Ok(None),
        }
    }
}

/// Switches for end-to-end tests only, in builds with the `testing` feature (the tests'
/// build); other builds refuse a `[testing]` section as an unknown field.
#[cfg(feature = "testing")]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingConfig {
    /// Lets the admin API move this node's clock forward (tests of month-long delays).
    pub clock_control: bool,
    /// Runs this machine's clock fast by this much before it is synced to the coordinator's
    /// (tests of skewed clocks).
    #[serde(with = "humantime_serde")]
    pub clock_skew: std::time::Duration,
}

/// Node liveness.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// How often a node tells the coordinator it is alive (default 2 s).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A node not heard from for this long leaves the routes and is declared dead, which
    /// fences its commits (default 10 s). Longer: fewer false alarms on a slow database;
    /// shorter: producers leave a dead ingest node sooner.
    #[serde(with = "humantime_serde")]
    pub node_ttl: Duration,
    /// How long a cluster node keeps serving after SIGTERM while out of every route (default
    /// 35 s: the stock 5.x and 4.x clients refresh routes every 30 s, so by then none sends
    /// it new work). Shorter: faster scale-in, but a consumer whose route still names the
    /// node gets an error from its next receive; producers retry elsewhere either way. The
    /// orchestrator's grace period must exceed it (Kubernetes: terminationGracePeriodSeconds).
    /// Standalone nodes stop at once.
    #[serde(with = "humantime_serde")]
    pub drain_period: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(2),
            node_ttl: Duration::from_secs(10),
            drain_period: Duration::from_secs(35),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            http_allowed_hosts: Vec::new(),
            http_max_connections: 1024,
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8082)),
            advertise: None,
            store: None,
            s3: S3Options::default(),
            coordinator: None,
            auto_create: None,
            default_queues: 8,
            node_id: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
            cache: CacheConfig::default(),
            compactor: CompactorConfig::default(),
            cluster: ClusterConfig::default(),
            grpc: GrpcConfig::default(),
            remoting: RemotingConfig::default(),
            auth: AuthSettings::default(),
            tls: TlsSettings::default(),
            quota: QuotaSettings::default(),
            metering: MeteringSettings::default(),
            trace: crate::trace::TraceConfig::default(),
            console: Default::default(),
            #[cfg(feature = "testing")]
            testing: TestingConfig::default(),
        }
    }
}

/// Default `memory_budget`: 256 MiB.
const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("invalid value of {var}: {reason}")]
    Env { var: &'static str, reason: String },
}

impl Settings {
    /// Defaults, overlaid by the file (if any) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let (mut s, table) = match file {
            None => (Settings::default(), toml::Table::new()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let parse = |source| ConfigError::Parse {
                    path: path.to_path_buf(),
                    source,
                };
                (
                    toml::from_str(&text).map_err(parse)?,
                    toml::from_str(&text).map_err(parse)?,
                )
            }
        };
        s.apply_env(|k| std::env::var(k).ok())?;
        s.apply_memory_budget(&table);
        Ok(s)
    }

    /// Derives the memory settings the file does not set from `memory_budget`.
    fn apply_memory_budget(&mut self, file: &toml::Table) {
        let set = |section: &str, key: &str| {
            file.get(section)
                .and_then(toml::Value::as_table)
                .is_some_and(|t| t.contains_key(key))
        };
        if !set("cache", "memory_bytes") {
            self.cache.memory_bytes = self.memory_budget / 4;
        }
        if !set("ingest", "max_inflight_bytes") {
            self.ingest.max_inflight_bytes = self.memory_budget / 4;
        }
        if !set("compactor", "max_file_bytes") {
            // A compaction holds a file's bodies about three times (WAL blocks read, Arrow
            // columns, Parquet pages): 1/16 of the budget keeps the job under 1/5 of it.
            self.compactor.max_file_bytes = (self.memory_budget as u64 / 16).clamp(8 << 20, 128 << 20);
        }
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("STRATA_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("STRATA_GRPC_LISTEN") {
            self.grpc_listen = v.parse().map_err(|e| ConfigError::Env {
                var: "STRATA_GRPC_LISTEN",
                reason: format!("{v:?}: {e}"),
            })?;
        }
        if let Some(v) = get("STRATA_REMOTING_LISTEN") {
            self.remoting.listen = Some(v);
        }
        if let Some(v) = get("STRATA_HTTP_LISTEN") {
            self.http_listen = v.parse().map_err(|e| ConfigError::Env {
                var: "STRATA_HTTP_LISTEN",
                reason: format!("{v:?}: {e}"),
            })?;
        }
        for (var, slot) in [
            ("STRATA_TLS_CERT_FILE", &mut self.tls.cert_file),
            ("STRATA_TLS_KEY_FILE", &mut self.tls.key_file),
            ("STRATA_TLS_CA_FILE", &mut self.tls.ca_file),
        ] {
            if let Some(v) = get(var) {
                *slot = Some(PathBuf::from(v));
            }
        }
        if let Some(v) = get("STRATA_ADVERTISE") {
            self.advertise = Some(v);
        }
        if let Some(v) = get("STRATA_REMOTING_ADVERTISE") {
            self.remoting.advertise = Some(v);
        }
        if let Some(v) = get("STRATA_INGEST_LINGER") {
            self.ingest.linger = humantime::parse_duration(&v).map_err(|e| ConfigError::Env {
                var: "STRATA_INGEST_LINGER",
                reason: format!("{v:?} is not a duration: {e}"),
            })?;
        }
        if let Some(v) = get("STRATA_INGEST_MAX_FLUSH_RATE") {
            let rate = v
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| ConfigError::Env {
                    var: "STRATA_INGEST_MAX_FLUSH_RATE",
                    reason: format!("{v:?} is not a positive number of flushes per second"),
                })?;
            self.ingest.max_flush_rate = Some(rate);
        }
        if let Some(v) = get("STRATA_DRAIN_PERIOD") {
            self.cluster.drain_period = humantime::parse_duration(&v).map_err(|e| ConfigError::Env {
                var: "STRATA_DRAIN_PERIOD",
                reason: format!("{v:?} is not a duration: {e}"),
            })?;
        }
        if let Some(v) = get("STRATA_STORE") {
            self.store = Some(v);
        }
        if let Some(v) = get("STRATA_AUTO_CREATE") {
            self.auto_create = Some(matches!(v.as_str(), "1" | "true" | "yes" | "on"));
        }
        if let Some(v) = get("STRATA_COORDINATOR") {
            self.coordinator = Some(v);
        }
        if let Some(v) = get("STRATA_AUTH") {
            self.auth.enabled = Some(matches!(v.as_str(), "1" | "true" | "yes" | "on"));
        }
        if let Some(v) = get("STRATA_HTTP_ALLOWED_HOSTS") {
            self.http_allowed_hosts = v
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
        }
        if let Some(v) = get("STRATA_AUTH_INSECURE_LISTEN_ANYWHERE") {
            self.auth.insecure_listen_anywhere = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = get("STRATA_AUTH_ADMIN_ACCESS_KEY") {
            self.auth.admin_access_key = Some(v);
        }
        if let Some(v) = get("STRATA_AUTH_ADMIN_SECRET_KEY") {
            self.auth.admin_secret_key = Some(v);
        }
        if let Some(v) = get("STRATA_AUTH_AT_REST_KEY") {
            self.auth.at_rest_key = Some(v);
        }
        if let Some(v) = get("STRATA_MEMORY_BUDGET") {
            self.memory_budget = v.parse().map_err(|e| ConfigError::Env {
                var: "STRATA_MEMORY_BUDGET",
                reason: format!("{v:?} is not a number of bytes: {e}"),
            })?;
        }
        Ok(())
    }

    /// The object store URL in effect.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(url) => url.clone(),
            None => self.data_dir.join("store").display().to_string(),
        }
    }

    /// The coordinator in effect.
    pub fn coordinator_target(&self) -> String {
        match &self.coordinator {
            Some(c) => c.clone(),
            None => self.data_dir.join("meta").join("strata.db").display().to_string(),
        }
    }

    /// This node's id: configured, else derived from the address it advertises, which is
    /// unique within a cluster.
    pub fn node_id(&self, advertised: &str) -> String {
        self.node_id
            .clone()
            .unwrap_or_else(|| format!("strata-{advertised}").replace([':', '.', '[', ']'], "-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            r#"
            grpc_listen = "0.0.0.0:9000"
            auto_create = false
            [ingest]
            linger = "20ms"
            max_body_bytes = 1024
            [s3]
            endpoint = "http://127.0.0.1:8333"
            "#,
        )
        .unwrap();
        let mut s = Settings::load(Some(&path)).unwrap();
        assert_eq!(s.grpc_listen.port(), 9000);
        assert_eq!(s.auto_create, Some(false));
        assert_eq!(s.ingest.linger, std::time::Duration::from_millis(20));
        assert_eq!(s.ingest.max_body_bytes, 1024);
        assert_eq!(s.ingest.max_bytes, 8 << 20, "unset keys keep their defaults");
        assert_eq!(s.s3.endpoint.as_deref(), Some("http://127.0.0.1:8333"));

        s.apply_env(|k| (k == "STRATA_STORE").then(|| "memory://".to_string()))
            .unwrap();
        assert_eq!(s.store_url(), "memory://");
        assert!(
            s.apply_env(|k| (k == "STRATA_GRPC_LISTEN").then(|| "nope".to_string()))
                .is_err()
        );
        s.apply_env(|k| (k == "STRATA_DRAIN_PERIOD").then(|| "5s".to_string()))
            .unwrap();
        s.apply_env(|k| match k {
            "STRATA_INGEST_LINGER" => Some("50ms".into()),
            "STRATA_INGEST_MAX_FLUSH_RATE" => Some("20".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (s.ingest.linger, s.ingest.max_flush_rate),
            (std::time::Duration::from_millis(50), Some(20.0))
        );
        assert_eq!(s.cluster.drain_period, std::time::Duration::from_secs(5));
        assert!(
            s.apply_env(|k| (k == "STRATA_DRAIN_PERIOD").then(|| "soon".to_string()))
                .is_err()
        );
    }

    #[test]
    fn node_ids_follow_the_advertised_address() {
        let mut s = Settings::default();
        assert_eq!(s.node_id("127.0.0.1:8081"), "strata-127-0-0-1-8081");
        assert_eq!(s.node_id("mq-3.internal:8081"), "strata-mq-3-internal-8081");
        s.node_id = Some("ingest-a".into());
        assert_eq!(s.node_id("mq-3.internal:8081"), "ingest-a");
    }

    #[test]
    fn memory_settings_derive_from_the_budget_unless_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "memory_budget = 1073741824\n[ingest]\nmax_inflight_bytes = 1000\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        assert_eq!(s.cache.memory_bytes, 256 << 20);
        assert_eq!(s.ingest.max_inflight_bytes, 1000);
        assert_eq!(s.compactor.max_file_bytes, 64 << 20);
        let d = Settings::load(None).unwrap();
        assert_eq!(d.cache.memory_bytes + d.ingest.max_inflight_bytes, 128 << 20);
        assert_eq!(d.compactor.max_file_bytes, 16 << 20);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "linger = 5").unwrap();
        assert!(matches!(Settings::load(Some(&path)), Err(ConfigError::Parse { .. })));
    }
}
