//! Ingest: the producer-facing role. Validates messages, batches them from every queue into
//! one WAL object per flush, PUTs it, commits it through the coordinator, then acknowledges.

mod config;
mod error;
mod flush;
mod ingest;
mod message_id;
pub mod record;

pub use config::IngestConfig;
pub use error::{Error, Result};
pub use ingest::{Ingest, SendOptions, SendReceipt};
pub use message_id::MessageIdGenerator;
