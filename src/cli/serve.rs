//! The flags of the server commands (`strata standalone|ingest|query|compactor`), over the
//! settings file.

use std::path::PathBuf;

use crate::config;
use crate::server::BoxError;

#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// TOML settings file (see docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data folder: coordinator database, local object store, disk cache.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long)]
    grpc_listen: Option<std::net::SocketAddr>,
    /// HTTP listen address (/metrics, /healthz, /readyz).
    #[arg(long)]
    http_listen: Option<std::net::SocketAddr>,
    /// 4.x Remoting listen address (name server and broker), or `off`. Default: 127.0.0.1:9876
    /// in standalone, off in cluster roles.
    #[arg(long)]
    remoting_listen: Option<String>,
    /// PEM certificate chain: serve gRPC over TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Object store URL (file:///path, s3://bucket/prefix, memory://). Default: DATA_DIR/store.
    #[arg(long)]
    store: Option<String>,
    /// host:port handed to clients in routes. Default: the address the client connected to.
    #[arg(long)]
    advertise: Option<String>,
    /// Coordinator: postgres://user@host:port/db, or a SQLite file (standalone only).
    /// Default: SQLite in the data dir.
    #[arg(long)]
    coordinator: Option<String>,
    /// Refuse unknown topics and groups instead of creating them (the default of cluster roles).
    #[arg(long, conflicts_with = "auto_create")]
    no_auto_create: bool,
    /// Create unknown topics (NORMAL) and groups on first use (the default of standalone).
    #[arg(long)]
    auto_create: bool,
    /// This node's id (default: derived from the advertised address).
    #[arg(long, env = "STRATA_NODE_ID")]
    node_id: Option<String>,
    /// Check AK/SK signatures and the ACL (the default of cluster roles; docs/tenancy.md).
    #[arg(long, conflicts_with = "no_auth")]
    auth: bool,
    /// Let every request through (the default of standalone). Loopback listeners only,
    /// unless --insecure-listen-anywhere.
    #[arg(long)]
    no_auth: bool,
    /// With authentication off, listen on non-loopback addresses anyway: anyone who reaches
    /// the ports acts as every tenant's operator.
    #[arg(long)]
    insecure_listen_anywhere: bool,
}

impl NodeArgs {
    pub fn settings(self) -> Result<config::Settings, BoxError> {
        let mut settings = config::Settings::load(self.config.as_deref())?;
        if let Some(d) = self.data_dir {
            settings.data_dir = d;
        }
        if let Some(l) = self.grpc_listen {
            settings.grpc_listen = l;
        }
        if let Some(l) = self.http_listen {
            settings.http_listen = l;
        }
        if self.remoting_listen.is_some() {
            settings.remoting.listen = self.remoting_listen;
        }
        if self.tls_cert.is_some() {
            settings.tls.cert_file = self.tls_cert;
            settings.tls.key_file = self.tls_key;
        }
        if self.store.is_some() {
            settings.store = self.store;
        }
        if self.advertise.is_some() {
            settings.advertise = self.advertise;
        }
        if self.coordinator.is_some() {
            settings.coordinator = self.coordinator;
        }
        if self.node_id.is_some() {
            settings.node_id = self.node_id;
        }
        if self.no_auto_create {
            settings.auto_create = Some(false);
        }
        if self.auto_create {
            settings.auto_create = Some(true);
        }
        if self.auth {
            settings.auth.enabled = Some(true);
        }
        if self.no_auth {
            settings.auth.enabled = Some(false);
        }
        if self.insecure_listen_anywhere {
            settings.auth.insecure_listen_anywhere = true;
        }
        Ok(settings)
    }
}
