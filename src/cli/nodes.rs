//! `strata node …` and `strata quarantine …`: the nodes of a cluster and the batches taken out
//! of their queues.

use clap::Subcommand;
use strata_proto::admin as api;

use super::output::{Output, Rows};
use super::target::{Target, admin_client};
use crate::server::BoxError;

#[derive(Subcommand, Debug)]
pub enum NodeAction {
    /// Every registered node: roles, address, epoch, alive or dead.
    List {
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
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
    let NodeAction::List { out, target } = action;
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
