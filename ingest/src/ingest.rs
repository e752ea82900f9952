//! The producer-facing handlers: SendMessage, EndTransaction, RecallMessage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use object_store::ObjectStore;
use strata_meta::model::{Hold, HoldKind, MessageType, QueueRef};
use strata_meta::token::Sealer;
use strata_meta::{Catalog, Membership, lite};
use strata_proto::v2;
use strata_storage::BlockCache;
use strata_tenancy::Meter;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;
use tracing::instrument;

use crate::config::IngestConfig;
use crate::error::{Error, Result};
use crate::flush::{Item, Pipeline, Placed, Shared, Submission};
use crate::message_id::MessageIdGenerator;
use crate::record;

/// How a front wants its messages placed and checked (gRPC: the defaults).
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    /// The queue the producer chose (4.x clients select queues themselves). A queue the topic
    /// does not have is ignored: the broker places the message as for gRPC.
    pub queue: Option<i32>,
    /// Lets the property keys RocketMQ reserves through: the front set them itself.
    pub reserved_properties: bool,
}

/// What a producer gets back for a stored message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendReceipt {
    pub message_id: String,
    pub queue: i32,
    /// The offset in the queue; `None` for held messages (delay, transaction), which get
    /// their offset when they are released.
    pub offset: Option<i64>,
    /// Transaction messages: what EndTransaction names.
    pub transaction_id: Option<String>,
    /// Delay messages: what RecallMessage names.
    pub recall_handle: Option<String>,
    /// The WAL object it was stored in (`None` when held, or stored before: a retried send).
    pub object: Option<Arc<str>>,
}

/// Token purposes (meta::token): a transaction id is not a recall handle.
const TRANSACTION_TOKEN: u8 = 2;
const RECALL_TOKEN: u8 = 3;

pub struct Ingest {
    catalog: Catalog,
    config: IngestConfig,
    pipeline: Pipeline,
    /// The in-flight byte budget, in units of `BUDGET_UNIT` (so large budgets fit in u32).
    budget: Arc<Semaphore>,
    budget_units: usize,
    round_robin: AtomicU64,
    ids: MessageIdGenerator,
    transactions: Sealer,
    recalls: Sealer,
    closed: AtomicBool,
    /// Lite topics (tenant, stored name) known to exist: created once, then sent to without
    /// asking the coordinator. Bounded; a forgotten one costs one idempotent create.
    lite_topics: moka::future::Cache<(String, String), ()>,
}

/// Lite topics an ingest node remembers as created (about 200 bytes each: ~10 MiB). A send to
/// one it forgot costs an idempotent create (one coordinator write per request and parent).
const KNOWN_LITE_TOPICS: u64 = 50_000;

const BUDGET_UNIT: usize = 1024;

/// The queue of a FIFO message: all messages of a message group go to one queue.
fn queue_of_group(group: &str, queues: i32) -> i32 {
    let h = group.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % queues.max(1) as u64) as i32
}

impl Ingest {
    pub async fn new(
        catalog: Catalog,
        store: Arc<dyn ObjectStore>,
        cache: Option<BlockCache>,
        config: IngestConfig,
        membership: Arc<Membership>,
        meter: Option<Arc<Meter>>,
    ) -> Result<Self> {
        let key = catalog.coordinator().secret("tokens").await?;
        let ids = MessageIdGenerator::new(membership.id());
        let shared = Arc::new(Shared {
            config: config.clone(),
            store,
            coordinator: Arc::clone(catalog.coordinator()),
            cache,
            clock: Arc::clone(catalog.clock()),
            membership,
            meter,
        });
        let units = (config.max_inflight_bytes / BUDGET_UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Ok(Self {
            catalog,
            pipeline: Pipeline::start(shared),
            budget: Arc::new(Semaphore::new(units)),
            budget_units: units,
            round_robin: AtomicU64::new(0),
            ids,
            transactions: Sealer::new(key.clone(), TRANSACTION_TOKEN),
            recalls: Sealer::new(key, RECALL_TOKEN),
            closed: AtomicBool::new(false),
            lite_topics: moka::future::Cache::new(KNOWN_LITE_TOPICS),
            config,
        })
    }

    /// The largest body a producer may send (advertised to clients in their settings).
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Stores messages: one result per message, in order. Messages that pass validation are
    /// flushed together and acknowledged only once their object is stored and committed.
    pub async fn send(&self, tenant: &str, messages: &[v2::Message]) -> Vec<Result<SendReceipt>> {
        self.send_with(tenant, messages, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with what a front other than gRPC decides for its messages.
    #[instrument(skip_all, fields(tenant, messages = messages.len()))]
    pub async fn send_with(
        &self,
        tenant: &str,
        messages: &[v2::Message],
        options: &SendOptions,
    ) -> Vec<Result<SendReceipt>> {
        let now = self.catalog.clock().now_ms();
        let mut results: Vec<Option<Result<SendReceipt>>> = Vec::with_capacity(messages.len());
        let mut items = Vec::new();
        let mut slots = Vec::new();
        for msg in messages {
            match self.prepare(tenant, msg, now, options).await {
                Ok(item) => {
                    slots.push((results.len(), item.record.message_id.clone(), item.queue.clone()));
                    items.push(item);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        if let Err(e) = self.create_lite_topics(tenant, &items).await {
            // Nothing of this request is stored.
            for (idx, _, _) in slots.drain(..) {
                results[idx] = Some(Err(e.clone()));
            }
            items.clear();
        }
        if !items.is_empty() {
            let outcome = self.submit(items).await;
            for (k, (idx, message_id, queue)) in slots.into_iter().enumerate() {
                results[idx] = Some(match &outcome {
                    Ok(placed) => match placed.get(k) {
                        Some(p) => Ok(self.receipt(message_id, &queue, p)),
                        None => Err(Error::Commit("missing placement".into())),
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

    /// Creates the lite topics `items` send to that this node has not seen yet: one
    /// coordinator write per request and parent, none for lite topics seen before.
    async fn create_lite_topics(&self, tenant: &str, items: &[Item]) -> Result<()> {
        let mut unseen: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for item in items {
            if let Some((parent, lite)) = lite::split(&item.queue.topic)
                && !self
                    .lite_topics
                    .contains_key(&(tenant.to_string(), item.queue.topic.clone()))
            {
                unseen.entry(parent).or_default().push(lite.to_string());
            }
        }
        for (parent, lites) in unseen {
            self.catalog
                .coordinator()
                .create_lite_topics(
                    tenant,
                    parent,
                    &lites,
                    lite::TopicQuota {
                        per_parent: self.config.max_lite_topics_per_parent,
                        per_tenant: self.config.max_lite_topics_per_tenant,
                    },
                    self.catalog.clock().now_ms(),
                )
                .await?;
            for l in &lites {
                self.lite_topics
                    .insert((tenant.to_string(), lite::queue_topic(parent, l)), ())
                    .await;
            }
        }
        Ok(())
    }

    fn receipt(&self, message_id: String, queue: &QueueRef, placed: &Placed) -> SendReceipt {
        let mut receipt = SendReceipt {
            message_id,
            queue: queue.queue,
            ..Default::default()
        };
        match placed {
            Placed::Offset(o, object) => {
                receipt.offset = Some(*o);
                receipt.object = object.clone();
            }
            Placed::Held { id, kind } => match kind {
                HoldKind::Transaction => {
                    receipt.transaction_id = Some(self.transaction_id(&queue.tenant, &queue.topic, id))
                }
                HoldKind::Timer => {
                    let fields: [&[u8]; 3] = [queue.tenant.as_bytes(), queue.topic.as_bytes(), id.as_bytes()];
                    receipt.recall_handle = Some(self.recalls.seal(&fields));
                }
            },
        }
        receipt
    }

    async fn prepare(&self, tenant: &str, msg: &v2::Message, now: i64, options: &SendOptions) -> Result<Item> {
        let checked = record::check(
            msg,
            self.config.max_body_bytes,
            now,
            options.reserved_properties,
            || self.ids.next(now),
        )?;
        let topic = self.catalog.topic(tenant, &checked.topic).await?;
        if checked.message_type != topic.message_type {
            return Err(Error::TypeMismatch {
                tenant: tenant.to_string(),
                topic: topic.name,
                topic_type: topic.message_type,
                message_type: checked.message_type,
            });
        }
        let record = checked.record;
        let chosen = options.queue.filter(|q| (0..topic.queue_count).contains(q));
        let round_robin = || {
            chosen.unwrap_or_else(|| {
                (self.round_robin.fetch_add(1, Ordering::Relaxed) % topic.queue_count.max(1) as u64) as i32
            })
        };
        let (queue, hold) = match topic.message_type {
            MessageType::Normal => (round_robin(), None),
            MessageType::Fifo => {
                let group = record
                    .message_group
                    .as_deref()
                    .ok_or_else(|| Error::IllegalMessageGroup("a FIFO message needs a message group".into()))?;
                (chosen.unwrap_or_else(|| queue_of_group(group, topic.queue_count)), None)
            }
            MessageType::Delay => {
                let at = record
                    .delivery_timestamp_ms
                    .ok_or_else(|| Error::IllegalDeliveryTime("a delay message needs a delivery timestamp".into()))?;
                let max = self.config.max_delay.as_millis() as i64;
                if at.saturating_sub(now) > max {
                    return Err(Error::IllegalDeliveryTime(format!(
                        "delivery in {} s is beyond the maximum delay of {} s",
                        at.saturating_sub(now) / 1000,
                        max / 1000
                    )));
                }
                // Already due: delivered at once.
                let hold = (at > now).then(|| Hold {
                    kind: HoldKind::Timer,
                    message_id: record.message_id.clone(),
                    due_ms: at,
                });
                (round_robin(), hold)
            }
            MessageType::Transaction => {
                let after = msg
                    .system_properties
                    .as_ref()
                    .and_then(|sp| sp.orphaned_transaction_recovery_duration.as_ref())
                    .filter(|d| d.seconds > 0 || d.nanos > 0)
                    .map(|d| {
                        d.seconds
                            .saturating_mul(1000)
                            .saturating_add(i64::from(d.nanos) / 1_000_000)
                    })
                    .unwrap_or(self.config.transaction_check_after.as_millis() as i64)
                    // A first check later than the longest delay is a client's mistake.
                    .min(self.config.max_delay.as_millis() as i64);
                let hold = Hold {
                    kind: HoldKind::Transaction,
                    message_id: record.message_id.clone(),
                    due_ms: now.saturating_add(after),
                };
                (round_robin(), Some(hold))
            }
            MessageType::Priority => {
                // Apache RocketMQ 5.4: priority p goes to queue min(p, queues - 1) and consumers
                // pop the highest queue first.
                let p = record
                    .priority
                    .ok_or_else(|| Error::IllegalPriority("a PRIORITY message needs a priority".into()))?;
                if p < 0 {
                    return Err(Error::IllegalPriority(format!("{p} is negative; 0 is the lowest")));
                }
                (p.min(topic.queue_count.max(1) - 1), None)
            }
            MessageType::Lite => (0, None),
        };
        let stored_topic = match (topic.message_type, &record.lite_topic) {
            // Each lite topic is an ordered queue of its own (meta::lite).
            (MessageType::Lite, Some(lite)) => lite::queue_topic(&topic.name, lite),
            (MessageType::Lite, None) => {
                return Err(Error::IllegalLiteTopic("a LITE message needs a lite topic".into()));
            }
            _ => topic.name,
        };
        Ok(Item {
            queue: QueueRef {
                tenant: tenant.to_string(),
                topic: stored_topic,
                queue,
            },
            record,
            hold,
        })
    }

    async fn submit(&self, items: Vec<Item>) -> Result<Vec<Placed>> {
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

    /// The transaction id of a half message (for orphan checks sent to producers).
    pub fn transaction_id(&self, tenant: &str, topic: &str, held_id: &str) -> String {
        self.transactions
            .seal(&[tenant.as_bytes(), topic.as_bytes(), held_id.as_bytes()])
    }

    /// The held record a token names, checked against the request's tenant and topic.
    fn open(sealer: &Sealer, token: &str, tenant: &str, topic: &str) -> Option<String> {
        let [t, tp, id] = Self::fields(sealer, token)?;
        (t == tenant && tp == topic).then_some(id)
    }

    /// A sealed token's (tenant, topic, id), if this cluster sealed it.
    fn fields(sealer: &Sealer, token: &str) -> Option<[String; 3]> {
        <[String; 3]>::try_from(sealer.open_strings(token).ok()?).ok()
    }

    /// The tenant and topic a transaction id of this cluster names (4.x clients end
    /// transactions by id alone).
    pub fn transaction_topic(&self, transaction_id: &str) -> Option<(String, String)> {
        let [tenant, topic, _] = Self::fields(&self.transactions, transaction_id)?;
        Some((tenant, topic))
    }

    /// Commits or rolls back a transaction's half message.
    #[instrument(skip_all, fields(tenant, topic, commit), err)]
    pub async fn end_transaction(&self, tenant: &str, topic: &str, transaction_id: &str, commit: bool) -> Result<()> {
        let id = Self::open(&self.transactions, transaction_id, tenant, topic).ok_or_else(|| {
            Error::InvalidTransactionId(format!(
                "not a transaction id of topic {tenant}/{topic} from this cluster"
            ))
        })?;
        if self
            .catalog
            .coordinator()
            .end_transaction(tenant, topic, &id, commit)
            .await?
        {
            Ok(())
        } else {
            Err(Error::InvalidTransactionId(
                "the transaction is already resolved (committed, rolled back or expired)".into(),
            ))
        }
    }

    /// Cancels a delay message that has not been delivered; returns its message id.
    #[instrument(skip_all, fields(tenant, topic), err)]
    pub async fn recall(&self, tenant: &str, topic: &str, recall_handle: &str) -> Result<String> {
        let id = Self::open(&self.recalls, recall_handle, tenant, topic).ok_or_else(|| {
            Error::InvalidRecallHandle(format!(
                "not a recall handle of topic {tenant}/{topic} from this cluster"
            ))
        })?;
        self.catalog
            .coordinator()
            .recall_timer(tenant, topic, &id)
            .await?
            .ok_or(Error::NothingToRecall)
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
