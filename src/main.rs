//! `strata`: the StrataMQ broker and its admin CLI.

mod account_commands;
mod admin;
mod bench;
mod config;
mod front;
mod http;
mod logging;
mod metering;
mod remoting;
mod server;
mod target;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use strata_meta::model::Roles;
use strata_proto::admin::{self as api};
use strata_proto::v2;
use target::{Target, admin_client};

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "StrataMQ: a RocketMQ 5.x compatible broker on object storage"
)]
struct Cli {
    /// Log lines as text or as JSON objects (one per line, for log collectors).
    #[arg(long, global = true, value_enum, default_value = "text", env = "STRATA_LOG_FORMAT")]
    log_format: logging::LogFormat,
    /// Export spans to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every role in one process (embedded coordinator, local folder as object store).
    Standalone(NodeArgs),
    /// Run an ingest node (SendMessage) of a cluster.
    Ingest(NodeArgs),
    /// Run a query node (consumers) of a cluster.
    Query(NodeArgs),
    /// Run a compactor of a cluster (dead-node detection, orphan GC).
    Compactor(NodeArgs),
    /// Manage topics of a running broker.
    Topic {
        #[command(subcommand)]
        action: TopicAction,
    },
    /// Manage consumer groups of a running broker.
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Show the nodes of a cluster.
    Node {
        #[command(subcommand)]
        action: NodeAction,
    },
    /// Batches taken out of their queues because their object is missing or corrupt.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineAction,
    },
    /// Tenants (namespaces) and their quotas.
    Tenant {
        #[command(subcommand)]
        action: account_commands::TenantAction,
    },
    /// Users of a tenant and their access keys.
    User {
        #[command(subcommand)]
        action: account_commands::UserAction,
    },
    /// What users may do: pub / sub / admin on topics and groups.
    Acl {
        #[command(subcommand)]
        action: account_commands::AclAction,
    },
    /// What tenants used, per hour (for billing).
    Metering {
        #[command(subcommand)]
        action: account_commands::MeteringAction,
    },
    /// Load a running broker with producers and consumers and report rates, latency
    /// percentiles and costs against the floor of its store and coordinator.
    Bench(bench::BenchArgs),
    /// Move a test broker's clock forward (needs `testing.clock_control`; tests only).
    AdvanceClock {
        /// How far, e.g. "30days".
        by: humantime::Duration,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
enum NodeAction {
    /// Every registered node: roles, address, epoch, alive or dead.
    List {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineAction {
    /// Every quarantined batch: queue, offsets, object, why.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Appends a quarantined batch's records to its queue again (restore its object first):
    /// every consumer group receives them, at new offsets.
    Retry(QuarantinedBatch),
    /// Drops a quarantined batch: its messages are gone for good.
    Drop(QuarantinedBatch),
}

#[derive(clap::Args, Debug)]
struct QuarantinedBatch {
    /// The batch's topic.
    #[arg(long)]
    topic: String,
    /// Its queue.
    #[arg(long)]
    queue: i32,
    /// Its first offset, as `strata quarantine list` shows it.
    #[arg(long)]
    offset: i64,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Debug)]
struct NodeArgs {
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
    /// This node's id (default: derived from the listen address).
    #[arg(long)]
    node_id: Option<String>,
    /// Check AK/SK signatures and the ACL (the default of cluster roles; docs/tenancy.md).
    #[arg(long, conflicts_with = "no_auth")]
    auth: bool,
    /// Let every request through (the default of standalone).
    #[arg(long)]
    no_auth: bool,
}

impl NodeArgs {
    fn settings(self) -> Result<config::Settings, BoxError> {
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
        Ok(settings)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StartPosition {
    /// The first retained message.
    Earliest,
    /// Messages sent from the first receive on.
    Latest,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TopicType {
    Normal,
    Fifo,
    Delay,
    Transaction,
    /// Higher `priority` delivered first (0 the lowest; priority p uses queue min(p, queues - 1)).
    Priority,
    /// A parent of lite topics: each message names one (`lite_topic`), an ordered queue of its
    /// own created on first send, consumed by the clients that subscribe to it.
    Lite,
}

impl TopicType {
    fn proto(self) -> v2::MessageType {
        match self {
            TopicType::Normal => v2::MessageType::Normal,
            TopicType::Fifo => v2::MessageType::Fifo,
            TopicType::Delay => v2::MessageType::Delay,
            TopicType::Transaction => v2::MessageType::Transaction,
            TopicType::Priority => v2::MessageType::Priority,
            TopicType::Lite => v2::MessageType::Lite,
        }
    }
}

#[derive(Subcommand, Debug)]
enum TopicAction {
    Create {
        name: String,
        #[arg(long = "type", value_enum, default_value = "normal")]
        kind: TopicType,
        #[arg(long, default_value_t = 8)]
        queues: i32,
        /// LITE topics: delete a lite topic with no new message for this long ("30m", "12h"),
        /// unless a subscribed group has not consumed it (then after the topic's retention).
        /// Default: never.
        #[arg(long)]
        lite_ttl: Option<humantime::Duration>,
        #[command(flatten)]
        target: Target,
    },
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Change a topic's message type (producers of the old type are refused from then on).
    Update {
        name: String,
        #[arg(long = "type", value_enum)]
        kind: TopicType,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand, Debug)]
enum GroupAction {
    Create {
        name: String,
        /// Ordered consumption per message group (on FIFO topics).
        #[arg(long)]
        fifo: bool,
        #[arg(long, default_value_t = strata_meta::model::DEFAULT_MAX_ATTEMPTS)]
        max_attempts: i32,
        /// Every live client receives every message, each with progress of its own.
        #[arg(long)]
        broadcast: bool,
        /// Where a new group's (broadcast: a new client's) progress starts; default earliest,
        /// latest for broadcast groups.
        #[arg(long, value_enum)]
        from: Option<StartPosition>,
        #[command(flatten)]
        target: Target,
    },
    List {
        #[command(flatten)]
        target: Target,
    },
}

type BoxError = server::BoxError;

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Standalone(args) => server::run(args.settings()?, Roles::ALL).await,
        Command::Ingest(args) => server::run(args.settings()?, Roles::INGEST).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Query(args) => server::run(args.settings()?, Roles::QUERY).await,
        Command::Compactor(args) => server::run(args.settings()?, Roles::COMPACTOR).await,
        Command::Topic {
            action:
                TopicAction::Create {
                    name,
                    kind,
                    queues,
                    lite_ttl,
                    target,
                },
        } => {
            let topic = api::Topic {
                namespace: target.namespace.clone(),
                name,
                message_type: kind.proto() as i32,
                queue_count: queues,
                lite_ttl_ms: lite_ttl.map_or(0, |d| d.as_millis() as i64),
            };
            let created = admin_client(&target)
                .await?
                .create_topic(api::CreateTopicRequest { topic: Some(topic) })
                .await?;
            if let Some(t) = created.into_inner().topic {
                println!("created {}", admin::topic_line(&t));
            }
            Ok(())
        }
        Command::Topic {
            action: TopicAction::Update { name, kind, target },
        } => {
            let topic = api::Topic {
                namespace: target.namespace.clone(),
                name,
                message_type: kind.proto() as i32,
                ..Default::default()
            };
            let updated = admin_client(&target)
                .await?
                .update_topic(api::UpdateTopicRequest { topic: Some(topic) })
                .await?;
            if let Some(t) = updated.into_inner().topic {
                println!("updated {}", admin::topic_line(&t));
            }
            Ok(())
        }
        Command::Topic {
            action: TopicAction::List { target },
        } => {
            let list = admin_client(&target)
                .await?
                .list_topics(api::ListTopicsRequest {
                    namespace: target.namespace.clone(),
                })
                .await?;
            for t in list.into_inner().topics {
                println!("{}", admin::topic_line(&t));
            }
            Ok(())
        }
        Command::Group {
            action:
                GroupAction::Create {
                    name,
                    fifo,
                    max_attempts,
                    broadcast,
                    from,
                    target,
                },
        } => {
            let start = match from {
                None => api::StartFrom::StartDefault,
                Some(StartPosition::Earliest) => api::StartFrom::StartEarliest,
                Some(StartPosition::Latest) => api::StartFrom::StartLatest,
            };
            let group = api::Group {
                namespace: target.namespace.clone(),
                name,
                fifo,
                max_attempts,
                broadcast,
                start: start as i32,
            };
            let created = admin_client(&target)
                .await?
                .create_group(api::CreateGroupRequest { group: Some(group) })
                .await?;
            if let Some(g) = created.into_inner().group {
                println!("created {}", admin::group_line(&g));
            }
            Ok(())
        }
        Command::AdvanceClock { by, target } => {
            let millis = by.as_millis() as i64;
            let now = admin_client(&target)
                .await?
                .advance_clock(api::AdvanceClockRequest { millis })
                .await?
                .into_inner()
                .now_ms;
            println!("clock moved forward {by}; now {now} ms");
            Ok(())
        }
        Command::Node {
            action: NodeAction::List { target },
        } => {
            let list = admin_client(&target)
                .await?
                .list_nodes(api::ListNodesRequest {})
                .await?;
            for n in list.into_inner().nodes {
                println!("{}", admin::node_line(&n));
            }
            Ok(())
        }
        Command::Quarantine { action } => quarantine(action).await,
        Command::Tenant { action } => account_commands::tenant(action).await,
        Command::User { action } => account_commands::user(action).await,
        Command::Acl { action } => account_commands::acl(action).await,
        Command::Metering { action } => account_commands::metering(action).await,
        Command::Group {
            action: GroupAction::List { target },
        } => {
            let list = admin_client(&target)
                .await?
                .list_groups(api::ListGroupsRequest {
                    namespace: target.namespace.clone(),
                })
                .await?;
            for g in list.into_inner().groups {
                println!("{}", admin::group_line(&g));
            }
            Ok(())
        }
    }
}

async fn quarantine(action: QuarantineAction) -> Result<(), BoxError> {
    let (b, retry) = match action {
        QuarantineAction::List { target } => {
            let list = admin_client(&target)
                .await?
                .list_quarantined(api::ListQuarantinedRequest {})
                .await?;
            for b in list.into_inner().batches {
                println!("{}", admin::quarantined_line(&b));
            }
            return Ok(());
        }
        QuarantineAction::Retry(b) => (b, true),
        QuarantineAction::Drop(b) => (b, false),
    };
    let released = admin_client(&b.target)
        .await?
        .release_quarantined(api::ReleaseQuarantinedRequest {
            namespace: b.target.namespace.clone(),
            topic: b.topic.clone(),
            queue: b.queue,
            base_offset: b.offset,
            retry,
        })
        .await?
        .into_inner();
    if retry {
        println!(
            "retried: {} queue {} holds the batch again from offset {}",
            b.topic, b.queue, released.new_base_offset
        );
    } else {
        println!("dropped: {} queue {} offset {}", b.topic, b.queue, b.offset);
    }
    Ok(())
}

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Two TLS backends are linked (ring for gRPC, aws-lc for the S3 client): name the one
    // rustls uses by default, or it cannot choose and panics at the first handshake.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let logging = match logging::Logging::init(cli.log_format, cli.otlp_endpoint.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    drop(runtime);
    logging.shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A refused admin call: its code's name and the broker's reason, not tonic's
            // description of the code.
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {:?}: {}", s.code(), s.message()),
                None => eprintln!("error: {e}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
