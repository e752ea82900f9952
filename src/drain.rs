//! A graceful stop (SIGTERM): leave the routes, keep serving while clients move to the other
//! nodes, then stop taking work. What comes after — answering what is in flight, flushing
//! what ingest accepted, deregistering — is the server's shutdown (server.rs).
//!
//! 1. `/readyz` answers 503 (an orchestrator stops sending new connections) and the node is
//!    marked draining in the coordinator: from the next QueryRoute on, no node's routes name
//!    it. Connected 5.x clients get a Telemetry `reconnect_endpoints_command`.
//! 2. It serves as usual for `cluster.drain_period` (the clients' route refresh), so a client
//!    whose route still names it is answered, not refused.
//! 3. Long polls end (answered with no messages) and the Telemetry streams close; acks of
//!    what was just delivered still have [`ACK_GRACE`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use strata_meta::Membership;
use strata_proto::v2::{self, telemetry_command::Command};
use strata_query::Query;
use tracing::{info, warn};

use crate::front::Sessions;

/// Between the end of the long polls and the server's stop: the acks of messages delivered
/// just before reach this node (a consumer acks right after processing; one later than this
/// gets an error and the message comes back after its invisible time, through another node).
pub const ACK_GRACE: Duration = Duration::from_secs(1);

pub struct Drain {
    /// Read by `/readyz`.
    pub draining: Arc<AtomicBool>,
    pub membership: Arc<Membership>,
    pub sessions: Arc<Sessions>,
    pub query: Option<Arc<Query>>,
    /// Zero on a standalone node (there is nowhere else for clients to go).
    pub period: Duration,
}

impl Drain {
    /// Runs steps 1–3 once `stop` resolves; a second `stop` during the drain cuts it short.
    pub async fn run<F, Fut>(self, stop: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        stop().await;
        self.draining.store(true, Ordering::Relaxed);
        if !self.period.is_zero() {
            if let Err(e) = self.membership.drain().await {
                warn!(error = %e, "could not leave the routes; other nodes drop this one after node_ttl");
            }
            let told = self.sessions.tell_all(&self.reconnect_command());
            info!(
                period = ?self.period,
                clients = told,
                "draining: out of the routes, serving until clients have moved"
            );
            tokio::select! {
                () = tokio::time::sleep(self.period) => {}
                () = stop() => info!("stopping now (signalled again)"),
            }
        }
        info!("shutting down: ending long polls, flushing accepted messages");
        if let Some(q) = &self.query {
            q.shutdown();
            if !self.period.is_zero() {
                tokio::time::sleep(ACK_GRACE).await;
            }
        }
        self.sessions.close();
    }

    /// Tells a client to reconnect (the Node.js client renews its Telemetry stream; the
    /// others ignore it and move at their next route refresh).
    fn reconnect_command(&self) -> v2::TelemetryCommand {
        v2::TelemetryCommand {
            status: Some(crate::front::status::ok()),
            command: Some(Command::ReconnectEndpointsCommand(v2::ReconnectEndpointsCommand {
                nonce: format!("{}-{}-drain", self.membership.id(), self.membership.epoch()),
            })),
        }
    }
}
