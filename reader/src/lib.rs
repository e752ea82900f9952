//! A stream reader for StrataMQ topics, shaped like a Flink source:
//!
//! - **splits** are the topic's queues; each has its own offset;
//! - **checkpoints** are the per-split offsets ([`StreamReader::checkpoint`]); a reader
//!   restored from one continues exactly there, and [`StreamReader::commit`] stores them in
//!   the broker for the group;
//! - **unbounded** mode ([`StreamReader`]) tails the topic through PullMessage, from any
//!   start (beginning, end, a time, the group's committed offsets, a checkpoint);
//! - **bounded** mode ([`read_archive`]) reads a time range straight from the topic's
//!   Parquet files in the bucket, without a broker.

mod archive;
mod stream;

pub use archive::{ArchivedRecord, read_archive};
pub use stream::{Record, Start, StreamReader};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("{rpc} failed: {status}")]
    Rpc { rpc: &'static str, status: tonic::Status },
    #[error("{rpc} answered {code}: {message}")]
    Broker {
        rpc: &'static str,
        code: i32,
        message: String,
    },
    #[error("topic {0} has no queues")]
    NoQueues(String),
    #[error("reading the archive: {0}")]
    Archive(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
