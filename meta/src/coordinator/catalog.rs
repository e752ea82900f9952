//! Topics, consumer groups and cluster-wide secrets.

use crate::error::Result;
use crate::model::{Group, GroupSpec, Topic, TopicSpec};
use async_trait::async_trait;

/// Topics, consumer groups and cluster-wide secrets.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Creates a topic and its queues; `AlreadyExists` if the name is taken.
    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<Topic>;

    async fn topic(&self, tenant: &str, name: &str) -> Result<Option<Topic>>;

    async fn list_topics(&self, tenant: &str) -> Result<Vec<Topic>>;

    /// Creates a consumer group; `AlreadyExists` if the name is taken.
    async fn create_group(&self, spec: &GroupSpec, now_ms: i64) -> Result<Group>;

    async fn group(&self, tenant: &str, name: &str) -> Result<Option<Group>>;

    async fn list_groups(&self, tenant: &str) -> Result<Vec<Group>>;

    /// A random secret shared by every node, created on first use (e.g. the receipt MAC key).
    async fn secret(&self, name: &str) -> Result<Vec<u8>>;
}
