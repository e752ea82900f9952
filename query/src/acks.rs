//! Group commit of acknowledgements (DESIGN §5): ack RPCs hand their receipts to one task
//! per node, which commits everything that arrived while its previous transaction was in
//! flight as ONE coordinator transaction. An ack waits for at most one transaction ahead of
//! its own, and a node runs one ack transaction at a time however many consumers ack.

use std::sync::Arc;

use strata_meta::Coordinator;
use strata_meta::model::{AckOutcome, Receipt};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, info_span};

use crate::error::{Error, Result};

/// Most receipts one transaction carries: bounds its locks and its time (~1 ms of SQL per
/// 100 receipts on SQLite); what is left waits for the next one.
const MAX_RECEIPTS_PER_COMMIT: usize = 4096;

struct Pending {
    receipts: Vec<Receipt>,
    reply: oneshot::Sender<Result<Vec<AckOutcome>>>,
}

/// The handle ack RPCs submit through. Dropping it ends the committer task.
#[derive(Clone)]
pub(crate) struct AckCommitter {
    tx: mpsc::UnboundedSender<Pending>,
}

impl AckCommitter {
    pub(crate) fn start(coordinator: Arc<dyn Coordinator>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(committer(coordinator, rx).instrument(info_span!("ack_group_commit")));
        Self { tx }
    }

    /// Acknowledges `receipts` in the next group commit; one outcome per receipt, in order.
    pub(crate) async fn ack(&self, receipts: Vec<Receipt>) -> Result<Vec<AckOutcome>> {
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { receipts, reply })
            .map_err(|_| Error::Coordinator("the node is shutting down".into()))?;
        answer
            .await
            .map_err(|_| Error::Coordinator("the node is shutting down".into()))?
    }
}

async fn committer(coordinator: Arc<dyn Coordinator>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut group = vec![first];
        let mut receipts = group[0].receipts.len();
        while receipts < MAX_RECEIPTS_PER_COMMIT {
            match rx.try_recv() {
                Ok(p) if receipts + p.receipts.len() > MAX_RECEIPTS_PER_COMMIT => {
                    carried = Some(p);
                    break;
                }
                Ok(p) => {
                    receipts += p.receipts.len();
                    group.push(p);
                }
                Err(_) => break,
            }
        }
        let all: Vec<Receipt> = group.iter().flat_map(|p| p.receipts.iter().cloned()).collect();
        let result = coordinator.ack(&all).await.map_err(Error::from);
        let mut outcomes = match result {
            Ok(o) if o.len() == all.len() => o.into_iter(),
            Ok(o) => {
                let e = Error::Coordinator(format!("{} ack outcomes for {} receipts", o.len(), all.len()));
                group.into_iter().for_each(|p| drop(p.reply.send(Err(e.clone()))));
                continue;
            }
            Err(e) => {
                group.into_iter().for_each(|p| drop(p.reply.send(Err(e.clone()))));
                continue;
            }
        };
        for p in group {
            let mine = outcomes.by_ref().take(p.receipts.len()).collect();
            let _ = p.reply.send(Ok(mine));
        }
    }
}
