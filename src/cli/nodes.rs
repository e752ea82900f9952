//! `strata node …` and `strata quarantine …`: the nodes of a cluster and the batches taken out
//! of their queues.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::Subcommand;
use strata_proto::admin as api;

use super::output::{Output, Rows};
use super::target::{Target, admin_client};
use crate::server::BoxError;

/// Longer than the node's own readiness checks (2 s each for the coordinator and the store).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Subcommand, Debug)]
pub enum NodeAction {
    /// Every registered node: roles, address, epoch, state (alive, draining, left, dead).
    List {
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Probes the node on this machine: exit 0 when it is live (or with --ready, ready), 5
    /// when not. A container health check that needs no curl in the image.
    Probe {
        /// The node's HTTP listener (`http_listen`); 0.0.0.0 / [::] probe loopback.
        #[arg(long, env = "STRATA_HTTP_LISTEN", default_value = "127.0.0.1:8082")]
        http: SocketAddr,
        /// Readiness (`/readyz`: the coordinator and the store answer, not draining) instead
        /// of liveness (`/healthz`).
        #[arg(long)]
        ready: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuarantineAction {
    /// Every quarantined batch: queue, offsets, object, why.
    List {
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Appends a quarantined batch's records to its queue again (restore its object first):
    /// every consumer group receives them, at new offsets.
    Retry(QuarantinedBatch),
    /// Drops a quarantined batch: its messages are gone for good.
    Drop(QuarantinedBatch),
}

#[derive(clap::Args, Debug)]
pub struct QuarantinedBatch {
    /// The batch's topic.
    #[arg(long)]
    topic: String,
    /// Its queue.
    #[arg(long)]
    queue: i32,
    /// Its first offset, as `strata quarantine list` shows it.
    #[arg(long)]
    offset: i64,
    #[command(flatten)]
    target: Target,
}

pub async fn nodes(action: NodeAction) -> Result<(), BoxError> {
    let (out, target) = match action {
        NodeAction::List { out, target } => (out, target),
        NodeAction::Probe { http, ready } => return probe(http, ready).await,
    };
    let list = admin_client(&target)
        .await?
        .list_nodes(api::ListNodesRequest {})
        .await?
        .into_inner();
    let mut rows = Rows::new(&["id", "roles", "address", "epoch", "state", "heartbeat"]);
    for n in list.nodes {
        rows.push(vec![
            n.id.into(),
            n.roles.join("+").into(),
            n.advertise.into(),
            n.epoch.into(),
            n.state.into(),
            super::output::time(n.heartbeat_ms),
        ]);
    }
    rows.print(out.output);
    Ok(())
}

async fn probe(mut http: SocketAddr, ready: bool) -> Result<(), BoxError> {
    if http.ip().is_unspecified() {
        http.set_ip(match http {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{http}/{}", if ready { "readyz" } else { "healthz" });
    let unavailable = |why: String| -> BoxError { Box::new(tonic::Status::unavailable(format!("{url}: {why}"))) };
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| unavailable(e.to_string()))?;
    let reply = client.get(&url).send().await.map_err(|e| unavailable(e.to_string()))?;
    let status = reply.status();
    let body = reply.text().await.unwrap_or_default();
    if status.is_success() {
        print!("{body}");
        Ok(())
    } else {
        Err(unavailable(format!("{status}: {}", body.trim())))
    }
}

pub async fn quarantine(action: QuarantineAction) -> Result<(), BoxError> {
    let (b, retry) = match action {
        QuarantineAction::List { out, target } => {
            let list = admin_client(&target)
                .await?
                .list_quarantined(api::ListQuarantinedRequest {})
                .await?
                .into_inner();
            let mut rows = Rows::new(&["namespace", "topic", "queue", "offset", "records", "object", "reason"]);
            for b in list.batches {
                rows.push(vec![
                    b.namespace.into(),
                    b.topic.into(),
                    b.queue.into(),
                    b.base_offset.into(),
                    b.records.into(),
                    b.object.into(),
                    b.reason.into(),
                ]);
            }
            rows.print(out.output);
            return Ok(());
        }
        QuarantineAction::Retry(b) => (b, true),
        QuarantineAction::Drop(b) => (b, false),
    };
    let released = admin_client(&b.target)
        .await?
        .release_quarantined(api::ReleaseQuarantinedRequest {
            namespace: b.target.namespace.clone(),
            topic: b.topic.clone(),
            queue: b.queue,
            base_offset: b.offset,
            retry,
        })
        .await?
        .into_inner();
    if retry {
        println!(
            "retried: {} queue {} holds the batch again from offset {}",
            b.topic, b.queue, released.new_base_offset
        );
    } else {
        println!("dropped: {} queue {} offset {}", b.topic, b.queue, b.offset);
    }
    Ok(())
}
