//! The command line: the server commands and the admin commands that talk to a running broker
//! (`--endpoint host:port` or a URL), with tables or JSON (`--output json`) and exit codes
//! scripts can trust (see [`ExitCode`]).

pub mod accounts;
mod groups;
mod messages;
mod mirror;
mod nodes;
pub mod output;
mod serve;
pub mod target;
mod topics;
mod transfer;

use clap::{Parser, Subcommand};
use strata_meta::model::Roles;
use strata_proto::admin as api;
use target::{Target, admin_client};

use crate::server::BoxError;

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "StrataMQ: a RocketMQ 5.x compatible broker on object storage"
)]
pub struct Cli {
    /// Log lines as text or as JSON objects (one per line, for log collectors).
    #[arg(long, global = true, value_enum, default_value = "text", env = "STRATA_LOG_FORMAT")]
    pub log_format: crate::logging::LogFormat,
    /// Export spans to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every role in one process (embedded coordinator, local folder as object store).
    Standalone(serve::NodeArgs),
    /// Run an ingest node (SendMessage) of a cluster.
    Ingest(serve::NodeArgs),
    /// Run a query node (consumers) of a cluster.
    Query(serve::NodeArgs),
    /// Run a compactor of a cluster (dead-node detection, orphan GC).
    Compactor(serve::NodeArgs),
    /// Topics of a running broker.
    Topic {
        #[command(subcommand)]
        action: topics::TopicAction,
    },
    /// Consumer groups of a running broker: progress, lag, offsets, dead letters.
    Group {
        #[command(subcommand)]
        action: groups::GroupAction,
    },
    /// Messages: by id, by key, by time range.
    Message {
        #[command(subcommand)]
        action: messages::MessageAction,
    },
    /// The nodes of a cluster.
    Node {
        #[command(subcommand)]
        action: nodes::NodeAction,
    },
    /// Batches taken out of their queues because their object is missing or corrupt.
    Quarantine {
        #[command(subcommand)]
        action: nodes::QuarantineAction,
    },
    /// Tenants (namespaces) and their quotas.
    Tenant {
        #[command(subcommand)]
        action: accounts::TenantAction,
    },
    /// Users of a tenant and their access keys.
    User {
        #[command(subcommand)]
        action: accounts::UserAction,
    },
    /// What users may do: pub / sub / admin on topics and groups.
    Acl {
        #[command(subcommand)]
        action: accounts::AclAction,
    },
    /// What tenants used, per hour (for billing).
    Metering {
        #[command(subcommand)]
        action: accounts::MeteringAction,
    },
    /// Writes every topic and group of a tenant (or of all tenants) with all their attributes
    /// to a file, for `strata import`.
    Export(transfer::ExportArgs),
    /// Creates or changes topics and groups to match an export file; `--dry-run` shows what
    /// would change. Running it again changes nothing.
    Import(transfer::ImportArgs),
    /// Copies topics from another RocketMQ 5.x endpoint (Apache RocketMQ, ApsaraMQ, another
    /// StrataMQ) into the broker `--endpoint` names, keeping ids, keys, tags, properties,
    /// message groups and delivery times (docs/migration.md).
    Mirror(mirror::MirrorArgs),
    /// Load a running broker with producers and consumers and report rates, latency
    /// percentiles and costs against the floor of its store and coordinator.
    Bench(crate::bench::BenchArgs),
    /// Move a test broker's clock forward (needs `testing.clock_control`; tests only).
    AdvanceClock {
        /// How far, e.g. "30days".
        by: humantime::Duration,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(command: Command) -> Result<(), BoxError> {
    match command {
        Command::Standalone(args) => crate::server::run(args.settings()?, Roles::ALL).await,
        Command::Ingest(args) => crate::server::run(args.settings()?, Roles::INGEST).await,
        Command::Query(args) => crate::server::run(args.settings()?, Roles::QUERY).await,
        Command::Compactor(args) => crate::server::run(args.settings()?, Roles::COMPACTOR).await,
        Command::Bench(args) => crate::bench::run(args).await,
        Command::Topic { action } => topics::run(action).await,
        Command::Group { action } => groups::run(action).await,
        Command::Message { action } => messages::run(action).await,
        Command::Node { action } => nodes::nodes(action).await,
        Command::Quarantine { action } => nodes::quarantine(action).await,
        Command::Tenant { action } => accounts::tenant(action).await,
        Command::User { action } => accounts::user(action).await,
        Command::Acl { action } => accounts::acl(action).await,
        Command::Metering { action } => accounts::metering(action).await,
        Command::Export(args) => transfer::export(args).await,
        Command::Import(args) => transfer::import(args).await,
        Command::Mirror(args) => mirror::run(args).await,
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
    }
}

/// What a failed command's exit status means (0: it did what it said; docs/operations.md
/// lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Anything else: the broker failed, a file could not be read, …
    Failed = 1,
    /// The command line is wrong (also clap's own code).
    Usage = 2,
    /// What the command names does not exist.
    NotFound = 3,
    /// Authentication failed, or the credentials may not do this.
    Denied = 4,
    /// The broker could not be reached or is unavailable: worth retrying.
    Unavailable = 5,
    /// It exists already.
    Exists = 6,
    /// The broker refused a value (a bad name, a number out of range).
    Invalid = 7,
}

/// A mistake on the command line, reported with [`ExitCode::Usage`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

pub fn usage(reason: impl Into<String>) -> BoxError {
    Box::new(UsageError(reason.into()))
}

impl ExitCode {
    /// The exit code of a failed command, from the broker's gRPC status when there is one.
    pub fn of(e: &BoxError) -> Self {
        if e.downcast_ref::<UsageError>().is_some() {
            return ExitCode::Usage;
        }
        let Some(status) = e.downcast_ref::<tonic::Status>() else {
            return if e.downcast_ref::<tonic::transport::Error>().is_some() {
                ExitCode::Unavailable
            } else {
                ExitCode::Failed
            };
        };
        match status.code() {
            tonic::Code::NotFound => ExitCode::NotFound,
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => ExitCode::Denied,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ExitCode::Unavailable,
            tonic::Code::AlreadyExists => ExitCode::Exists,
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange | tonic::Code::FailedPrecondition => {
                ExitCode::Invalid
            }
            _ => ExitCode::Failed,
        }
    }
}

/// An instant given as RFC 3339 or as a duration before now; ms since the epoch.
pub fn instant(s: &str) -> Result<i64, BoxError> {
    let now_ms = strata_meta::Clock::now_ms(&strata_meta::clock::SystemClock);
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms.max(0) as u64);
    let at = match humantime::parse_rfc3339_weak(s) {
        Ok(t) => t,
        Err(_) => now
            .checked_sub(
                humantime::parse_duration(s)
                    .map_err(|e| usage(format!("{s:?}: neither RFC 3339 nor a duration: {e}")))?,
            )
            .ok_or_else(|| usage(format!("{s:?} reaches before 1970")))?,
    };
    Ok(at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_follow_the_status() {
        let of = |s: tonic::Status| ExitCode::of(&(Box::new(s) as BoxError));
        assert_eq!(of(tonic::Status::not_found("x")), ExitCode::NotFound);
        assert_eq!(of(tonic::Status::unauthenticated("x")), ExitCode::Denied);
        assert_eq!(of(tonic::Status::unavailable("x")), ExitCode::Unavailable);
        assert_eq!(of(tonic::Status::already_exists("x")), ExitCode::Exists);
        assert_eq!(of(tonic::Status::invalid_argument("x")), ExitCode::Invalid);
        assert_eq!(of(tonic::Status::internal("x")), ExitCode::Failed);
        assert_eq!(ExitCode::of(&usage("add --yes")), ExitCode::Usage);
        assert_eq!(ExitCode::of(&BoxError::from("io")), ExitCode::Failed);
    }

    #[test]
    fn instants_are_times_or_times_ago() {
        assert_eq!(instant("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        let ago = instant("1h").unwrap();
        let now = instant("0s").unwrap();
        assert!((now - ago - 3_600_000).abs() < 1000);
        assert_eq!(ExitCode::of(&instant("soon").unwrap_err()), ExitCode::Usage);
    }
}
