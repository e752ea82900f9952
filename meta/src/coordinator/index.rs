//! The message index of recent messages: id and key → where the message is.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::IndexedMessage;

/// The message index of recent messages, written with each flush commit (the batches'
/// `indexed` records) and forgotten by age: lookups by id and key, and what makes a retried
/// send return its original receipt instead of storing the message again.
#[async_trait]
pub trait MessageIndex: Send + Sync {
    /// Where those of `ids` the index holds are.
    async fn find_messages(&self, tenant: &str, ids: &[String]) -> Result<Vec<IndexedMessage>>;

    /// Messages of `topic` with `key` stored within `from_ms..=to_ms`, oldest first, at most
    /// `limit`.
    async fn messages_by_key(
        &self,
        tenant: &str,
        topic: &str,
        key: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<IndexedMessage>>;

    /// Forgets up to `limit` entries of messages stored before `before_ms`; returns how many.
    async fn expire_index(&self, before_ms: i64, limit: u32) -> Result<u32>;
}
