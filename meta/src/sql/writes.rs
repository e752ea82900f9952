//! Group commit of coordinator writes on SQLite, whose one writer fsyncs its journal at every
//! commit: the hot writes (flush commits, pop claims, acks, invisible-time changes,
//! heartbeats) queue for one writer task, which runs everything that arrived while its
//! previous transaction was committing in ONE transaction — each write under its own
//! savepoint, so a write that fails is undone alone — then answers them all. A busy node
//! pays one fsync for many writes instead of one each; a lone write waits for at most one
//! transaction ahead of it. PostgreSQL runs each write in its own transaction (concurrent
//! writers; the server groups WAL flushes itself).

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::AnyPool;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{Instrument, info_span, warn};

use crate::error::{Error, Result};
use crate::model::CommitEvent;

pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Most writes one transaction carries (bounds its time and its locks).
const MAX_WRITES_PER_COMMIT: usize = 512;

/// What a committed write announces: topics with appended messages (consumers wake) and
/// topics with held records (the timer loop wakes).
#[derive(Debug, Default)]
pub(crate) struct Announce {
    pub appended: HashSet<(String, String)>,
    pub held: HashSet<(String, String)>,
}

impl Announce {
    pub(crate) fn appended(topics: HashSet<(String, String)>) -> Self {
        Self {
            appended: topics,
            held: HashSet::new(),
        }
    }

    /// Publishes to in-process subscribers (SQLite: there are no other nodes).
    pub(crate) fn publish(self, events: &broadcast::Sender<CommitEvent>) {
        publish(events, &self.appended, false);
        publish(events, &self.held, true);
    }
}

/// Tells in-process subscribers of commits on `topics` (`held`: of records held back).
pub(crate) fn publish(events: &broadcast::Sender<CommitEvent>, topics: &HashSet<(String, String)>, held: bool) {
    for (tenant, topic) in topics {
        let _ = events.send(CommitEvent {
            tenant: tenant.clone(),
            topic: Some(topic.clone()),
            held,
        });
    }
}

/// A write's work inside a transaction: its result and what to announce once committed.
pub(crate) type Work<T> = Box<dyn for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Result<(T, Announce)>> + Send>;

/// A queued write with its result type erased.
type Queued = Box<dyn for<'c> FnOnce(&'c mut Tx) -> BoxFuture<'c, Ran> + Send>;

/// A write that ran: whether it succeeded (its savepoint is kept) and how to answer it once
/// the transaction's fate is known (`None`: committed). Returns what to announce.
struct Ran {
    ok: bool,
    answer: Box<dyn FnOnce(Option<Arc<sqlx::Error>>) -> Option<Announce> + Send>,
}

/// The queue SQLite writes go through. Dropping every clone ends the writer task.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<Queued>,
}

impl GroupCommit {
    pub(crate) fn start(pool: AnyPool, events: broadcast::Sender<CommitEvent>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(pool, events, rx).instrument(info_span!("coordinator_group_commit")));
        Self { queue }
    }

    /// Runs `work` in the next group commit; answers once that transaction committed.
    pub(crate) async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let queued: Queued = Box::new(move |tx| {
            Box::pin(async move {
                match work(tx).await {
                    Ok((value, announce)) => Ran {
                        ok: true,
                        answer: Box::new(move |failed| match failed {
                            None => {
                                let _ = reply.send(Ok(value));
                                Some(announce)
                            }
                            Some(e) => {
                                let _ = reply.send(Err(Error::GroupCommit(e)));
                                None
                            }
                        }),
                    },
                    Err(e) => Ran {
                        ok: false,
                        answer: Box::new(move |_| {
                            let _ = reply.send(Err(e));
                            None
                        }),
                    },
                }
            })
        });
        self.queue
            .send(queued)
            .map_err(|_| Error::Inconsistent("the coordinator is closed".into()))?;
        answer
            .await
            .map_err(|_| Error::Inconsistent("the write was dropped: its group commit failed".into()))?
    }
}

async fn writer(pool: AnyPool, events: broadcast::Sender<CommitEvent>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = rx.recv().await {
        let mut writes = vec![first];
        while writes.len() < MAX_WRITES_PER_COMMIT {
            match rx.try_recv() {
                Ok(w) => writes.push(w),
                Err(_) => break,
            }
        }
        // A failure outside the writes themselves (begin, a savepoint, commit) fails the
        // whole group; writes not run yet are dropped, which their callers hear as failed.
        match run_group(&pool, writes).await {
            Ok(ran) => {
                for r in ran {
                    if let Some(a) = (r.answer)(None) {
                        a.publish(&events);
                    }
                }
            }
            Err((e, ran)) => {
                warn!(error = %e, writes = ran.len(), "group commit failed");
                let e = Arc::new(e);
                for r in ran {
                    (r.answer)(Some(Arc::clone(&e)));
                }
            }
        }
    }
}

async fn run_group(pool: &AnyPool, mut writes: Vec<Queued>) -> std::result::Result<Vec<Ran>, (sqlx::Error, Vec<Ran>)> {
    let mut tx = pool.begin().await.map_err(|e| (e, Vec::new()))?;
    if writes.len() == 1
        && let Some(w) = writes.pop()
    {
        // A write alone needs no savepoint (two statements fewer): its transaction is its own.
        let r = w(&mut tx).await;
        let outcome = if r.ok { tx.commit().await } else { tx.rollback().await };
        return match outcome {
            Ok(()) => Ok(vec![r]),
            Err(e) => Err((e, vec![r])),
        };
    }
    let mut ran = Vec::with_capacity(writes.len());
    for w in writes {
        if let Err(e) = sqlx::raw_sql("SAVEPOINT w").execute(&mut *tx).await {
            return Err((e, ran));
        }
        let r = w(&mut tx).await;
        let end = if r.ok { "RELEASE w" } else { "ROLLBACK TO w; RELEASE w" };
        let ended = sqlx::raw_sql(end).execute(&mut *tx).await;
        ran.push(r);
        if let Err(e) = ended {
            return Err((e, ran));
        }
    }
    match tx.commit().await {
        Ok(()) => Ok(ran),
        Err(e) => Err((e, ran)),
    }
}
