//! Query: the consumer-facing role. Pops messages for consumer groups (long polling woken by
//! commit notifications), acknowledges them, changes their invisible time; reads through
//! the batch index (moka) and the block cache (foyer).

mod acks;
mod config;
pub mod convert;
mod error;
pub mod filter;
mod lanes;
mod query;
pub mod reader;
mod receipt;
pub mod search;
pub mod sql92;
mod stream;
mod wakeups;

pub use config::QueryConfig;
pub use error::{Error, Result};
pub use filter::Filter;
pub use query::{DeadLetterHook, Delivered, LiteStart, Query, ReceiveRequest};
pub use receipt::ReceiptCodec;
pub use stream::{Position, PullRequest, Pulled};
