//! Requests a node's roles do not serve, passed on to a live node that has the role. Clients
//! that ignore queue permissions (the official Rust 5.x client) send and receive through
//! whichever node a route lists; refusing them failed half their requests in a cluster.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_meta::model::Roles;
use strata_meta::{Clock, Coordinator};
use strata_proto::v2::{self, Code, messaging_service_client::MessagingServiceClient};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response};
use tracing::debug;

use super::context::Ctx;
use super::status::{from_meta, status};

/// Marks a forwarded request: it is never forwarded again (no loops between nodes whose view
/// of who is alive differs).
const FORWARDED: &str = "x-strata-forwarded";

pub struct Forwarder {
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    node_ttl: Duration,
    /// This node: never a target.
    node_id: String,
    /// One lazily connected channel per node address.
    channels: Mutex<HashMap<String, Channel>>,
    /// Set when the nodes' listeners run TLS.
    tls: Option<ClientTlsConfig>,
    next: AtomicUsize,
}

impl Forwarder {
    /// `tls`: how to reach other nodes when the listeners run TLS.
    pub fn new(
        coordinator: Arc<dyn Coordinator>,
        clock: Arc<dyn Clock>,
        node_ttl: Duration,
        node_id: String,
        tls: Option<ClientTlsConfig>,
    ) -> Self {
        Self {
            coordinator,
            clock,
            node_ttl,
            node_id,
            tls,
            channels: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// Sends `request` on to a live node with `role` through `call`: its answer, or the
    /// status to answer with instead.
    pub async fn forward<T, R, F, Fut>(
        &self,
        role: Roles,
        request: Request<T>,
        call: F,
    ) -> Result<Response<R>, v2::Status>
    where
        F: FnOnce(MessagingServiceClient<Channel>, Request<T>) -> Fut,
        Fut: Future<Output = Result<Response<R>, tonic::Status>>,
    {
        let name = role.names().join("+");
        if request.metadata().contains_key(FORWARDED) {
            return Err(missing(&name, "a forwarded request reached a node without it"));
        }
        let nodes = self
            .coordinator
            .live_nodes(self.clock.now_ms(), self.node_ttl.as_millis() as i64)
            .await
            .map_err(|e| from_meta(&e))?;
        let targets: Vec<String> = nodes
            .into_iter()
            .filter(|n| n.roles.contains(role) && n.id != self.node_id)
            .map(|n| n.advertise)
            .collect();
        if targets.is_empty() {
            return Err(missing(&name, "and no live node has it"));
        }
        let target = &targets[self.next.fetch_add(1, Ordering::Relaxed) % targets.len()];
        let client = MessagingServiceClient::new(self.channel(target)?);
        let (metadata, _, message) = request.into_parts();
        let mut onward = Request::new(message);
        *onward.metadata_mut() = passed_on(&metadata);
        if let Some(deadline) = Ctx::new(&metadata).deadline {
            onward.set_timeout(deadline);
        }
        debug!(target, role = %name, "forwarding a request this node's roles do not serve");
        call(client, onward).await.map_err(|e| {
            status(
                Code::InternalServerError,
                format!("forwarding to the {name} node {target} failed: {}", e.message()),
            )
        })
    }

    fn channel(&self, address: &str) -> Result<Channel, v2::Status> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(address) {
            return Ok(c.clone());
        }
        let bad =
            |e: tonic::transport::Error| status(Code::InternalServerError, format!("node address {address}: {e}"));
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(bad)?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(3));
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(bad)?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }
}

/// What a client's request carries that the next node needs: its identity, namespace and
/// credentials (`x-mq-*`, `authorization`), marked as forwarded. The deadline goes separately.
fn passed_on(metadata: &MetadataMap) -> MetadataMap {
    let mut out = MetadataMap::new();
    for entry in metadata.iter() {
        if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry
            && (key.as_str().starts_with("x-mq-") || key.as_str() == "authorization")
        {
            out.append(key.clone(), value.clone());
        }
    }
    out.insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    out
}

fn missing(role: &str, why: &str) -> v2::Status {
    status(Code::Forbidden, format!("this node runs no {role} role, {why}"))
}
