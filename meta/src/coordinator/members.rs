//! Nodes: registration, heartbeats, epochs (fencing) and expiry.

use crate::error::Result;
use crate::model::{Node, Roles};
use async_trait::async_trait;

/// Nodes: registration, heartbeats, epochs (fencing) and expiry.
#[async_trait]
pub trait Members: Send + Sync {
    /// Registers (or re-registers) a node and returns it with a new epoch. `remoting`: where
    /// 4.x clients reach it, if it serves them.
    async fn register_node(
        &self,
        id: &str,
        roles: Roles,
        advertise: &str,
        remoting: Option<&str>,
        now_ms: i64,
    ) -> Result<Node>;

    /// Records that the node is alive. `Fenced` if `epoch` is not its live epoch.
    async fn heartbeat_node(&self, id: &str, epoch: i64, now_ms: i64) -> Result<()>;

    /// The coordinator's clock (PostgreSQL's `clock_timestamp()`; SQLite, embedded: this
    /// machine's): the one time base every node's [`SyncedClock`](crate::SyncedClock) follows.
    async fn time_ms(&self) -> Result<i64>;

    /// Every registered node, dead ones included.
    async fn list_nodes(&self) -> Result<Vec<Node>>;

    /// Starts the node's graceful departure: it stays alive (heartbeats, commits) but leaves
    /// the live nodes, so no route names it any more. `Fenced` if `epoch` is not its live one.
    async fn drain_node(&self, id: &str, epoch: i64) -> Result<()>;

    /// Deregisters the node once it has drained: no longer alive, its epoch fenced.
    async fn leave_node(&self, id: &str, epoch: i64) -> Result<()>;

    /// Forgets nodes that left gracefully (they exited: nothing of theirs can commit again)
    /// before `before_ms`; returns how many. Dead nodes stay: one may still be running.
    async fn purge_left_nodes(&self, before_ms: i64) -> Result<u64>;

    /// Nodes alive, not draining, and heard from within `ttl_ms`.
    async fn live_nodes(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<Node>>;

    /// Declares dead every node not heard from within `ttl_ms` (their epochs are fenced),
    /// except `deciding`, the node asking: it is evidently alive, however late its own
    /// heartbeat (a standalone node must never fence itself). Returns their ids.
    async fn expire_nodes(&self, now_ms: i64, ttl_ms: i64, deciding: &str) -> Result<Vec<String>>;
}
