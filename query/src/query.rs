//! The consumer-facing handlers: ReceiveMessage (pop with long polling), AckMessage,
//! ChangeInvisibleDuration.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_meta::Catalog;
use strata_meta::model::{
    AckOutcome, CommitEvent, MessageType, PopClaim, QueueClaim, QueueRef, Receipt, Subscription, Taken, Topic,
};
use strata_proto::wal::WalRecord;
use strata_storage::BlockCache;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tracing::instrument;

use crate::acks::AckCommitter;
use crate::config::QueryConfig;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::reader::Reader;
use crate::receipt::ReceiptCodec;
use crate::wakeups::Wakeups;

/// A receive as the front received it.
#[derive(Clone, Debug)]
pub struct ReceiveRequest {
    pub tenant: String,
    pub group: String,
    pub topic: String,
    pub filter: Filter,
    pub batch_size: usize,
    /// `None`: the configured default.
    pub invisible: Option<Duration>,
    /// How long to wait for messages when none is ready.
    pub long_polling: Duration,
}

/// A message handed to a consumer.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub queue: i32,
    pub offset: i64,
    /// 1 on first delivery.
    pub attempt: i32,
    pub receipt_handle: String,
    pub invisible: Duration,
    pub record: WalRecord,
}

pub struct Query {
    catalog: Catalog,
    reader: Reader,
    receipts: ReceiptCodec,
    config: QueryConfig,
    rotation: AtomicUsize,
    /// Acks are group-committed: one coordinator transaction at a time per node.
    acks: AckCommitter,
    /// Long polls wait here, per subscription, for commits to their topic.
    wakeups: Arc<Wakeups>,
    /// Set on shutdown: long polls return at once.
    closed: watch::Sender<bool>,
}

/// How a consumer group consumes a topic.
#[derive(Clone, Copy, Debug)]
struct Mode {
    fifo: bool,
    max_attempts: i32,
}

/// Smallest wait before a pop is retried when the coordinator says an in-flight message is
/// already visible but the pop found none (another consumer took it): no busy loop.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(10);

impl Query {
    pub async fn new(catalog: Catalog, blocks: BlockCache, config: QueryConfig) -> Result<Self> {
        let key = catalog.coordinator().secret("receipt-handle-key").await?;
        Ok(Self {
            acks: AckCommitter::start(Arc::clone(catalog.coordinator())),
            wakeups: Wakeups::start(catalog.coordinator().subscribe()),
            reader: Reader::new(Arc::clone(catalog.coordinator()), blocks),
            catalog,
            receipts: ReceiptCodec::new(key),
            config,
            rotation: AtomicUsize::new(0),
            closed: watch::Sender::new(false),
        })
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn reader(&self) -> &Reader {
        &self.reader
    }

    /// Receives up to `batch_size` messages, waiting up to `long_polling` for some to arrive.
    #[instrument(skip_all, fields(tenant = %req.tenant, group = %req.group, topic = %req.topic), err)]
    pub async fn receive(&self, req: &ReceiveRequest) -> Result<Vec<Delivered>> {
        let invisible = req.invisible.unwrap_or(self.config.default_invisible);
        if invisible < self.config.min_invisible || invisible > self.config.max_invisible {
            return Err(Error::IllegalInvisibleTime(format!(
                "{invisible:?} is not within {:?}..={:?}",
                self.config.min_invisible, self.config.max_invisible
            )));
        }
        let topic = self.catalog.topic(&req.tenant, &req.topic).await?;
        let group = self.catalog.group(&req.tenant, &req.group).await?;
        let mode = Mode {
            // Ordered consumption needs both: a FIFO topic and a FIFO consumer group.
            fifo: group.fifo && topic.message_type == MessageType::Fifo,
            max_attempts: group.max_attempts,
        };
        let sub = Subscription {
            tenant: req.tenant.clone(),
            group: req.group.clone(),
            topic: req.topic.clone(),
        };
        let batch = req.batch_size.clamp(1, self.config.max_batch);
        let deadline = Instant::now() + req.long_polling.min(self.config.max_long_polling);
        // Registered before the first pop: a commit between a pop and the wait leaves a
        // permit, so it is not missed.
        let wakeup = self.wakeups.waiter(&sub);
        let mut closed = self.closed.subscribe();
        loop {
            let (got, raced) = self.pop_once(&sub, &topic, mode, &req.filter, batch, invisible).await?;
            if !got.is_empty() {
                if got.len() >= batch {
                    // There may be more: the next waiter of this group looks.
                    wakeup.notify_one();
                }
                return Ok(got);
            }
            if raced {
                continue;
            }
            let now = Instant::now();
            if now >= deadline || *closed.borrow() {
                return Ok(got);
            }
            let mut wake = deadline;
            if let Some(at) = self.catalog.coordinator().next_visible_at(&sub).await? {
                let until = Duration::from_millis((at - self.catalog.clock().now_ms()).max(0) as u64);
                wake = wake.min(now + until.max(MIN_RETRY_WAIT));
            }
            tokio::select! {
                () = wakeup.notified() => {}
                () = tokio::time::sleep_until(wake) => {}
                _ = closed.changed() => {}
            }
        }
    }

    /// One pop over every queue of the topic: expired in-flight messages first (those out of
    /// attempts go to the dead-letter topic instead), then — for FIFO — the waiting heads of
    /// idle message groups, then new messages. A FIFO message group gets at most one message
    /// in flight; new messages of busy groups wait. Returns the deliveries and whether
    /// another consumer raced us on some queue.
    async fn pop_once(
        &self,
        sub: &Subscription,
        topic: &Topic,
        mode: Mode,
        filter: &Filter,
        batch: usize,
        invisible: Duration,
    ) -> Result<(Vec<Delivered>, bool)> {
        let coordinator = self.catalog.coordinator();
        let now = self.catalog.clock().now_ms();
        let n = topic.queue_count.max(1) as usize;
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        let queues: Vec<i32> = (0..n).map(|i| ((start + i) % n) as i32).collect();
        let states = coordinator
            .pop_state(sub, &queues, now, batch as u32, mode.fifo)
            .await?;

        let mut want = batch;
        let mut claims = Vec::new();
        let mut records: HashMap<(i32, i64), WalRecord> = HashMap::new();
        let mut dead_letters = false;
        for st in states {
            let queue = QueueRef {
                tenant: sub.tenant.clone(),
                topic: sub.topic.clone(),
                queue: st.queue,
            };
            let mut claim = QueueClaim {
                queue: st.queue,
                cursor_from: st.cursor,
                cursor_to: st.cursor,
                ..Default::default()
            };
            // Groups with a message in flight after this pop: those already busy, plus heads
            // redelivered or released now.
            let mut busy: HashSet<String> = st.busy.iter().cloned().collect();
            for f in &st.expired {
                if f.attempt >= mode.max_attempts {
                    claim.dead_letter.push((f.offset, f.seq));
                    dead_letters = true;
                } else if want > 0
                    && let Some(r) = self.reader.read_one(&queue, f.offset).await?
                {
                    records.insert((st.queue, f.offset), r);
                    claim.redeliver.push((f.offset, f.seq));
                    want -= 1;
                }
            }
            for w in &st.ready {
                if want == 0 {
                    break;
                }
                if let Some(r) = self.reader.read_one(&queue, w.offset).await? {
                    records.insert((st.queue, w.offset), r);
                    claim.release.push(w.offset);
                    busy.insert(w.group.clone());
                    want -= 1;
                }
            }
            if want > 0 && st.cursor < st.end {
                let scan_to = st.end.min(st.cursor + self.config.max_scan);
                let read_to = match (filter, mode.fifo) {
                    (Filter::All, false) => scan_to.min(st.cursor + want as i64),
                    _ => scan_to,
                };
                for (offset, record) in self.reader.read(&queue, st.cursor, read_to).await? {
                    claim.cursor_to = offset + 1;
                    if !filter.matches(&record) {
                        continue;
                    }
                    let group = record.message_group.clone().filter(|_| mode.fifo);
                    let taken = Taken { offset, group };
                    match &taken.group {
                        // Behind a message of its group: it waits its turn.
                        Some(g) if busy.contains(g) => claim.park.push(taken),
                        _ => {
                            if let Some(g) = &taken.group {
                                busy.insert(g.clone());
                            }
                            records.insert((st.queue, offset), record);
                            claim.deliver.push(taken);
                            want -= 1;
                            if want == 0 {
                                break;
                            }
                        }
                    }
                }
            }
            let empty = claim.cursor_to == claim.cursor_from
                && claim.redeliver.is_empty()
                && claim.release.is_empty()
                && claim.dead_letter.is_empty();
            if !empty {
                claims.push(claim);
            }
        }
        if claims.is_empty() {
            return Ok((Vec::new(), false));
        }
        let dead_letter_topic = if dead_letters {
            Some(self.catalog.dead_letter_topic(&sub.tenant, &sub.group).await?.name)
        } else {
            None
        };
        let invisible_until_ms = now + invisible.as_millis() as i64;
        let claimed = coordinator
            .pop_claim(&PopClaim {
                subscription: sub.clone(),
                now_ms: now,
                invisible_until_ms,
                dead_letter_topic,
                queues: claims,
            })
            .await?;
        if !claimed.dead_lettered.is_empty() {
            tracing::info!(
                tenant = %sub.tenant, group = %sub.group, topic = %sub.topic, messages = claimed.dead_lettered.len(),
                "moved to the dead-letter topic after {} attempts", mode.max_attempts
            );
        }
        let delivered = claimed
            .delivered
            .into_iter()
            .filter_map(|f| {
                let record = records.remove(&(f.queue, f.offset))?;
                let receipt_handle = self.receipts.encode(&Receipt {
                    subscription: sub.clone(),
                    queue: f.queue,
                    offset: f.offset,
                    seq: f.seq,
                });
                Some(Delivered {
                    queue: f.queue,
                    offset: f.offset,
                    attempt: f.attempt,
                    receipt_handle,
                    invisible,
                    record,
                })
            })
            .collect();
        Ok((delivered, !claimed.conflicts.is_empty()))
    }

    /// Moves a delivered message to its group's dead-letter topic, as a push consumer asks
    /// after its last local attempt.
    #[instrument(skip_all, fields(tenant = %sub.tenant, group = %sub.group, topic = %sub.topic), err)]
    pub async fn forward_to_dead_letter(&self, sub: &Subscription, handle: &str) -> Result<()> {
        let receipt = self.receipt_for(sub, handle)?;
        let dlq = self.catalog.dead_letter_topic(&sub.tenant, &sub.group).await?;
        match self.catalog.coordinator().dead_letter(&receipt, &dlq.name).await? {
            Ok(()) => Ok(()),
            Err(outcome) => {
                outcome_result(outcome)?;
                Err(Error::InvalidReceipt("the message was already acknowledged".into()))
            }
        }
    }

    /// Ends every long poll now (they answer with what they have: nothing).
    pub fn shutdown(&self) {
        self.closed.send_replace(true);
    }

    fn receipt_for(&self, sub: &Subscription, handle: &str) -> Result<Receipt> {
        let receipt = self.receipts.decode(handle)?;
        if &receipt.subscription != sub {
            return Err(Error::InvalidReceipt(format!(
                "the handle was issued to group {} for topic {}, not to group {} for topic {}",
                receipt.subscription.group, receipt.subscription.topic, sub.group, sub.topic
            )));
        }
        Ok(receipt)
    }

    /// Acknowledges messages by receipt handle; one result per handle. Acknowledging twice
    /// is fine; a handle from an earlier delivery of a message delivered again is refused.
    #[instrument(skip_all, fields(tenant = %sub.tenant, group = %sub.group, topic = %sub.topic, n = handles.len()))]
    pub async fn ack(&self, sub: &Subscription, handles: &[String]) -> Vec<Result<()>> {
        let parsed: Vec<Result<Receipt>> = handles.iter().map(|h| self.receipt_for(sub, h)).collect();
        let valid: Vec<Receipt> = parsed.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let mut outcomes = match self.acks.ack(valid).await {
            Ok(o) => o.into_iter(),
            Err(e) => return parsed.into_iter().map(|p| p.and(Err(e.clone()))).collect(),
        };
        parsed
            .into_iter()
            .map(|p| {
                p?;
                match outcomes.next() {
                    Some(outcome) => outcome_result(outcome),
                    None => Err(Error::Coordinator("missing ack outcome".into())),
                }
            })
            .collect()
    }

    /// Moves a message's invisible deadline; returns the new receipt handle.
    #[instrument(skip_all, fields(tenant = %sub.tenant, group = %sub.group, topic = %sub.topic), err)]
    pub async fn change_invisible(&self, sub: &Subscription, handle: &str, invisible: Duration) -> Result<String> {
        if invisible > self.config.max_invisible {
            return Err(Error::IllegalInvisibleTime(format!(
                "{invisible:?} is longer than {:?}",
                self.config.max_invisible
            )));
        }
        let receipt = self.receipt_for(sub, handle)?;
        let until = self.catalog.clock().now_ms() + invisible.as_millis() as i64;
        match self.catalog.coordinator().change_invisible(&receipt, until).await? {
            Ok(f) => Ok(self.receipts.encode(&Receipt { seq: f.seq, ..receipt })),
            Err(outcome) => {
                outcome_result(outcome)?;
                Err(Error::InvalidReceipt("the message was already acknowledged".into()))
            }
        }
    }
}

fn outcome_result(outcome: AckOutcome) -> Result<()> {
    match outcome {
        AckOutcome::Acked | AckOutcome::AlreadyAcked => Ok(()),
        AckOutcome::Stale => Err(Error::InvalidReceipt(
            "the receipt handle is stale: the message was delivered again since".into(),
        )),
        AckOutcome::Unknown => Err(Error::InvalidReceipt("no such delivery".into())),
    }
}

/// Resolves when a commit touches the subscription's topic (or events were missed).
pub(crate) async fn commit_on(events: &mut broadcast::Receiver<CommitEvent>, sub: &Subscription) {
    loop {
        match events.recv().await {
            Ok(e) if e.concerns(&sub.tenant, &sub.topic) => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
