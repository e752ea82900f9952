//! The producer-facing handler: SendMessage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use object_store::ObjectStore;
use strata_meta::model::{MessageType, QueueRef};
use strata_meta::{Catalog, Membership};
use strata_proto::v2;
use strata_storage::BlockCache;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;
use tracing::instrument;

use crate::config::IngestConfig;
use crate::error::{Error, Result};
use crate::flush::{Item, Pipeline, Shared, Submission};
use crate::message_id::MessageIdGenerator;
use crate::record;

/// What a producer gets back for a stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    pub message_id: String,
    pub queue: i32,
    pub offset: i64,
}

/// Message types whose semantics this build implements.
fn supported(t: MessageType) -> bool {
    matches!(t, MessageType::Normal)
}

pub struct Ingest {
    catalog: Catalog,
    config: IngestConfig,
    pipeline: Pipeline,
    /// The in-flight byte budget, in units of `BUDGET_UNIT` (so large budgets fit in u32).
    budget: Arc<Semaphore>,
    budget_units: usize,
    round_robin: AtomicU64,
    ids: MessageIdGenerator,
    closed: AtomicBool,
}

const BUDGET_UNIT: usize = 1024;

impl Ingest {
    pub fn new(
        catalog: Catalog,
        store: Arc<dyn ObjectStore>,
        cache: Option<BlockCache>,
        config: IngestConfig,
        membership: Arc<Membership>,
    ) -> Self {
        let ids = MessageIdGenerator::new(membership.id());
        let shared = Arc::new(Shared {
            config: config.clone(),
            store,
            coordinator: Arc::clone(catalog.coordinator()),
            cache,
            clock: Arc::clone(catalog.clock()),
            membership,
        });
        let units = (config.max_inflight_bytes / BUDGET_UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            catalog,
            pipeline: Pipeline::start(shared),
            budget: Arc::new(Semaphore::new(units)),
            budget_units: units,
            round_robin: AtomicU64::new(0),
            ids,
            closed: AtomicBool::new(false),
            config,
        }
    }

    /// The largest body a producer may send (advertised to clients in their settings).
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Stores messages: one result per message, in order. Messages that pass validation are
    /// flushed together and acknowledged only once their object is stored and committed.
    #[instrument(skip_all, fields(tenant, messages = messages.len()))]
    pub async fn send(&self, tenant: &str, messages: &[v2::Message]) -> Vec<Result<SendReceipt>> {
        let now = self.catalog.clock().now_ms();
        let mut results: Vec<Option<Result<SendReceipt>>> = Vec::with_capacity(messages.len());
        let mut items = Vec::new();
        let mut slots = Vec::new();
        for msg in messages {
            match self.prepare(tenant, msg, now).await {
                Ok((item, id)) => {
                    slots.push((results.len(), id, item.queue.queue));
                    items.push(item);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        if !items.is_empty() {
            let outcome = self.submit(items).await;
            for (k, (idx, message_id, queue)) in slots.into_iter().enumerate() {
                results[idx] = Some(match &outcome {
                    Ok(offsets) => match offsets.get(k) {
                        Some(&offset) => Ok(SendReceipt {
                            message_id,
                            queue,
                            offset,
                        }),
                        None => Err(Error::Commit("missing offset".into())),
                    },
                    Err(e) => Err(e.clone()),
                });
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Commit("message not processed".into()))))
            .collect()
    }

    async fn prepare(&self, tenant: &str, msg: &v2::Message, now: i64) -> Result<(Item, String)> {
        let checked = record::check(msg, self.config.max_body_bytes, now, || self.ids.next(now))?;
        let topic = self.catalog.topic(tenant, &checked.topic).await?;
        if checked.message_type != topic.message_type {
            return Err(Error::TypeMismatch {
                tenant: tenant.to_string(),
                topic: topic.name,
                topic_type: topic.message_type,
                message_type: checked.message_type,
            });
        }
        if !supported(topic.message_type) {
            return Err(Error::UnsupportedType(topic.message_type));
        }
        let n = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let queue = (n % topic.queue_count.max(1) as u64) as i32;
        let id = checked.record.message_id.clone();
        let item = Item {
            queue: QueueRef {
                tenant: tenant.to_string(),
                topic: topic.name,
                queue,
            },
            record: checked.record,
        };
        Ok((item, id))
    }

    async fn submit(&self, items: Vec<Item>) -> Result<Vec<i64>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let bytes: usize = items.iter().map(|i| i.record.body.len() + 256).sum();
        let units = (bytes / BUDGET_UNIT + 1).min(self.budget_units) as u32;
        let budget = Arc::clone(&self.budget)
            .acquire_many_owned(units)
            .await
            .map_err(|_| Error::ShuttingDown)?;
        let (reply, answer) = oneshot::channel();
        let submission = Submission {
            items,
            bytes,
            arrived: Instant::now(),
            reply,
            budget,
        };
        self.pipeline.tx.send(submission).map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Message bytes accepted and not yet answered (what the budget holds back).
    pub fn inflight_bytes(&self) -> usize {
        (self.budget_units - self.budget.available_permits()) * BUDGET_UNIT
    }

    /// Refuses new sends, flushes what was accepted, and waits for the last commit.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        self.pipeline.shutdown().await;
    }
}

#[cfg(test)]
mod tests;
