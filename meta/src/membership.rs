//! A node's membership: its registration, heartbeats and current epoch. Ingest commits carry
//! the epoch; a node declared dead is fenced until it registers again with a new epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::coordinator::Coordinator;
use crate::error::{Error, Result};
use crate::model::Roles;

#[derive(Debug)]
pub struct Membership {
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    id: String,
    roles: Roles,
    advertise: String,
    remoting: Option<String>,
    epoch: AtomicI64,
}

impl Membership {
    /// Registers the node (a new epoch).
    pub async fn join(
        coordinator: Arc<dyn Coordinator>,
        clock: Arc<dyn Clock>,
        id: &str,
        roles: Roles,
        advertise: &str,
        remoting: Option<&str>,
    ) -> Result<Arc<Self>> {
        let node = coordinator
            .register_node(id, roles, advertise, remoting, clock.now_ms())
            .await?;
        info!(node = id, epoch = node.epoch, advertise, remoting, "registered");
        Ok(Arc::new(Self {
            coordinator,
            clock,
            id: id.to_string(),
            roles,
            advertise: advertise.to_string(),
            remoting: remoting.map(str::to_string),
            epoch: AtomicI64::new(node.epoch),
        }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// One heartbeat. A fenced node registers again: what it commits from now on carries the
    /// new epoch, and whatever was in flight under the old one fails.
    pub async fn heartbeat(&self) -> Result<()> {
        let epoch = self.epoch();
        match self
            .coordinator
            .heartbeat_node(&self.id, epoch, self.clock.now_ms())
            .await
        {
            Err(Error::Fenced { .. }) => {
                let node = self
                    .coordinator
                    .register_node(
                        &self.id,
                        self.roles,
                        &self.advertise,
                        self.remoting.as_deref(),
                        self.clock.now_ms(),
                    )
                    .await?;
                warn!(node = %self.id, old_epoch = epoch, epoch = node.epoch, "was declared dead; registered again");
                self.epoch.store(node.epoch, Ordering::Release);
                Ok(())
            }
            other => other,
        }
    }

    /// Leaves every route while still serving (the start of a graceful stop).
    pub async fn drain(&self) -> Result<()> {
        self.coordinator.drain_node(&self.id, self.epoch()).await
    }

    /// Deregisters: the node's epoch is fenced from now on.
    pub async fn leave(&self) -> Result<()> {
        self.coordinator.leave_node(&self.id, self.epoch()).await?;
        info!(node = %self.id, "left the cluster");
        Ok(())
    }

    /// Heartbeats every `every` until the task is aborted.
    pub fn spawn_heartbeats(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.heartbeat().await {
                    warn!(node = %me.id, error = %e, "heartbeat failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sql::SqlCoordinator;

    #[tokio::test]
    async fn a_fenced_node_registers_again() {
        let dir = tempfile::tempdir().unwrap();
        let c: Arc<dyn Coordinator> = Arc::new(SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap());
        let clock = ManualClock::new(1_000);
        let m = Membership::join(Arc::clone(&c), Arc::new(clock.clone()), "n1", Roles::ALL, "h:1", None)
            .await
            .unwrap();
        let first = m.epoch();
        m.heartbeat().await.unwrap();
        assert_eq!(m.epoch(), first);
        clock.advance(Duration::from_secs(60));
        assert_eq!(c.expire_nodes(clock.now_ms(), 10_000, "").await.unwrap(), ["n1"]);
        m.heartbeat().await.unwrap();
        assert!(m.epoch() > first);
        assert_eq!(c.live_nodes(clock.now_ms(), 10_000).await.unwrap().len(), 1);
    }
}
