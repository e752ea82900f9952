//! The consumer-facing handlers: ReceiveMessage (pop with long polling), AckMessage,
//! ChangeInvisibleDuration.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_meta::model::{
    AckOutcome, Claimed, CommitEvent, MessageType, PopClaim, QueueClaim, QueuePopState, QueueRef, Receipt, StartFrom,
    Subscription, Taken, Topic, broadcast_progress,
};
use strata_meta::quarantine::Unreadable;
use strata_meta::{Catalog, lane, lite};
use strata_proto::wal::WalRecord;
use strata_storage::BlockCache;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tracing::instrument;

use crate::acks::AckCommitter;
use crate::config::QueryConfig;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::lanes::{self, Route, Select};
use crate::reader::{Read, Reader};
use crate::receipt::ReceiptCodec;
use crate::wakeups::Wakeups;

mod lite_receive;

pub use lite_receive::LiteStart;

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
    /// The receiving client (`x-mq-client-id`): a broadcast group's clients each have
    /// progress of their own.
    pub client_id: Option<String>,
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

/// Told of messages a receive moved to their group's dead-letter topic (out of attempts), by
/// queue and offset (message trace).
pub type DeadLetterHook = Arc<dyn Fn(&Subscription, Vec<(i32, i64)>) + Send + Sync>;

pub struct Query {
    catalog: Catalog,
    /// Set once at start-up, if anyone listens.
    dead_letter_hook: std::sync::OnceLock<DeadLetterHook>,
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
    /// Counts failed reads per batch; quarantines incurable ones.
    unreadable: Arc<Unreadable>,
    /// Receives waiting in a long poll now.
    long_polls: AtomicUsize,
    /// Progress started (and broadcast clients marked seen) within the last
    /// [`PROGRESS_REFRESH`]: the coordinator hears of each at most once per that time.
    started: moka::future::Cache<Subscription, ()>,
    /// Lite consumers' subscribed lite topics, kept briefly (see `lite_receive`).
    lite_subscribed: moka::future::Cache<lite::Subscriber, Arc<Vec<String>>>,
}

/// How long a node trusts its copy of a client's lite subscriptions: changes made through
/// another node wake the client's long poll here within this time (the messages themselves
/// are found at its next look, which reads the coordinator).
const LITE_SUBSCRIPTIONS_TTL: Duration = Duration::from_secs(5);

/// How often a node tells the coordinator a broadcast client is still there (it also starts
/// a new client's cursors then). The compactor expires progress unseen for far longer.
const PROGRESS_REFRESH: Duration = Duration::from_secs(60);

/// Most progress keys a node remembers having started (about 200 bytes each).
const MAX_STARTED: u64 = 100_000;

/// How a consumer group consumes a topic.
#[derive(Clone, Copy, Debug)]
struct Mode {
    fifo: bool,
    max_attempts: i32,
    /// Messages out of attempts go to the group's dead-letter topic; otherwise (a broadcast
    /// client's progress) they are dropped for that client.
    dead_letter: bool,
    /// Each queue is consumed in order as a whole (lite topics): new messages only while
    /// none of the queue is in flight, after any expired ones are delivered again.
    in_order: bool,
}

/// Counts a parked receive while it lives (a cancelled receive is uncounted too).
struct Parked<'a>(&'a AtomicUsize);

impl<'a> Parked<'a> {
    fn on(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one pop got.
struct Popped {
    got: Vec<Delivered>,
    /// Another consumer raced us on some queue (or a batch was quarantined): pop again.
    raced: bool,
    /// A batch that could not be read (not yet quarantined).
    unreadable: Option<Error>,
}

/// A pop planned from the queues' states: what to claim (nothing when there is nothing to
/// take) and the records read for it.
struct Plan {
    sub: Subscription,
    mode: Mode,
    invisible: Duration,
    claim: Option<PopClaim>,
    records: HashMap<(i32, i64), WalRecord>,
    unread: Unread,
}

/// Reads of one pop that failed.
#[derive(Default)]
struct Unread {
    error: Option<Error>,
    quarantined: bool,
}

impl Popped {
    /// This pop and then `more` (of another progress), as one.
    fn and(mut self, more: Popped) -> Popped {
        self.got.extend(more.got);
        Popped {
            got: self.got,
            raced: self.raced || more.raced,
            unreadable: self.unreadable.or(more.unreadable),
        }
    }
}

impl Unread {
    fn popped(self, got: Vec<Delivered>, raced: bool) -> Popped {
        Popped {
            got,
            raced: raced || self.quarantined,
            unreadable: self.error.filter(|_| !self.quarantined),
        }
    }
}

/// Smallest wait before a pop is retried when the coordinator says an in-flight message is
/// already visible but the pop found none (another consumer took it): no busy loop.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(10);

impl Query {
    /// Tells `hook` of every message a receive moves to a dead-letter topic from now on
    /// (the first hook set stays).
    pub fn on_dead_letter(&self, hook: DeadLetterHook) {
        let _ = self.dead_letter_hook.set(hook);
    }

    pub async fn new(catalog: Catalog, blocks: BlockCache, config: QueryConfig) -> Result<Self> {
        let key = catalog.coordinator().secret("receipt-handle-key").await?;
        Ok(Self {
            unreadable: Arc::new(Unreadable::new(
                Arc::clone(catalog.coordinator()),
                Arc::clone(catalog.clock()),
                config.quarantine_after,
            )),
            acks: AckCommitter::start(Arc::clone(catalog.coordinator())),
            wakeups: Wakeups::start(catalog.coordinator().subscribe()),
            reader: Reader::new(Arc::clone(catalog.coordinator()), blocks),
            receipts: ReceiptCodec::new(key),
            config,
            rotation: AtomicUsize::new(0),
            long_polls: AtomicUsize::new(0),
            started: moka::future::Cache::builder()
                .max_capacity(MAX_STARTED)
                .time_to_live(PROGRESS_REFRESH)
                .build(),
            lite_subscribed: moka::future::Cache::builder()
                .max_capacity(MAX_STARTED)
                .time_to_live(LITE_SUBSCRIPTIONS_TTL)
                .build(),
            closed: watch::Sender::new(false),
            dead_letter_hook: std::sync::OnceLock::new(),
            catalog,
        })
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn reader(&self) -> &Reader {
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
            dead_letter: !group.broadcast,
            in_order: false,
        };
        let lane = lane::split(&req.group).1;
        if let Some(lane) = lane
            && (group.broadcast || topic.message_type == MessageType::Lite)
        {
            return Err(Error::Unsupported(format!(
                "lane {lane:?} of group {}: lanes are for clustering consumption of non-lite topics, \
                 not for broadcast groups or lite topics",
                group.name
            )));
        }
        if topic.message_type == MessageType::Lite {
            return self.receive_lite(req, &topic, mode, invisible).await;
        }
        let progress = if group.broadcast {
            let client = req
                .client_id
                .as_deref()
                .ok_or_else(|| Error::ClientIdRequired(req.group.clone()))?;
            broadcast_progress(&req.group, client)
        } else {
            // The group's, or a lane's (keyed by the name its consumers give, `G%L`).
            req.group.clone()
        };
        let sub = Subscription {
            tenant: req.tenant.clone(),
            group: progress,
            topic: req.topic.clone(),
        };
        let base = Subscription {
            group: group.name.clone(),
            ..sub.clone()
        };
        let latest = group.start == StartFrom::Latest;
        // A lane's consumers are heard of (the first time, that starts its progress where
        // the group's is); the group's own consumers skip the lanes' messages and take over
        // those of lanes unheard of for the group's fallback time.
        let (route, takeovers) = match lane {
            Some(lane) => {
                self.catalog.lane_seen(&base, lane).await?;
                (Route::Lane(lane.to_string()), Vec::new())
            }
            None => {
                let known = self.catalog.lanes(&req.tenant, &group.name).await?;
                let now = self.catalog.clock().now_ms();
                let takeovers = lanes::taken_over(&base, &known, group.lane_fallback, now);
                (Route::base(&known, &req.topic), takeovers)
            }
        };
        if latest || group.broadcast {
            for s in std::iter::once(&sub).chain(takeovers.iter().map(|(s, _)| s)) {
                self.start_progress(s, latest).await?;
            }
        }
        let select = Select {
            filter: &req.filter,
            route,
        };
        let batch = req.batch_size.clamp(1, self.config.max_batch);
        let deadline = Instant::now() + req.long_polling.min(self.config.max_long_polling);
        // Registered before the first pop: a commit between a pop and the wait leaves a
        // permit, so it is not missed.
        let wakeup = self.wakeups.waiter(&sub);
        let mut closed = self.closed.subscribe();
        loop {
            let mut popped = self.pop_once(&sub, &topic, mode, &select, batch, invisible).await?;
            for (lane_sub, route) in &takeovers {
                let want = batch.saturating_sub(popped.got.len());
                if want == 0 {
                    break;
                }
                let select = Select {
                    filter: &req.filter,
                    route: route.clone(),
                };
                popped = popped.and(self.pop_once(lane_sub, &topic, mode, &select, want, invisible).await?);
            }
            let Popped { got, raced, unreadable } = popped;
            if got.is_empty()
                && let Some(e) = unreadable
            {
                // Nothing else to hand out: the consumer hears why (and backs off), until
                // the batch is quarantined.
                return Err(e);
            }
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
            for s in std::iter::once(&sub).chain(takeovers.iter().map(|(s, _)| s)) {
                if let Some(at) = self.catalog.coordinator().next_visible_at(s).await? {
                    let until = Duration::from_millis((at - self.catalog.clock().now_ms()).max(0) as u64);
                    wake = wake.min(now + until.max(MIN_RETRY_WAIT));
                }
            }
            let _parked = Parked::on(&self.long_polls);
            tokio::select! {
                () = wakeup.notified() => {}
                () = tokio::time::sleep_until(wake) => {}
                _ = closed.changed() => {}
            }
            if let Some(lane) = lane {
                // A long poll counts as receiving until it ends.
                self.catalog.lane_seen(&base, lane).await?;
            }
        }
    }

    /// Starts `sub`'s progress where the group's start position says (and marks a broadcast
    /// client seen), once per [`PROGRESS_REFRESH`] from this node.
    async fn start_progress(&self, sub: &Subscription, latest: bool) -> Result<()> {
        if !self.started.contains_key(sub) {
            let now = self.catalog.clock().now_ms();
            self.catalog.coordinator().start_progress(sub, latest, now).await?;
            self.started.insert(sub.clone(), ()).await;
        }
        Ok(())
    }

    /// One pop over every queue of the topic: expired in-flight messages first (those out of
    /// attempts go to the dead-letter topic instead), then — for FIFO — the waiting heads of
    /// idle message groups, then new messages. A FIFO message group gets at most one message
    /// in flight; new messages of busy groups wait. A batch that cannot be read stops only
    /// its own queue's reading (and is quarantined after a few incurable failures).
    async fn pop_once(
        &self,
        sub: &Subscription,
        topic: &Topic,
        mode: Mode,
        select: &Select<'_>,
        batch: usize,
        invisible: Duration,
    ) -> Result<Popped> {
        let coordinator = self.catalog.coordinator();
        let now = self.catalog.clock().now_ms();
        let n = topic.queue_count.max(1) as usize;
        let queues: Vec<i32> = if topic.message_type == MessageType::Priority {
            // Highest priority first: priority p lives in queue min(p, n - 1).
            (0..n as i32).rev().collect()
        } else {
            let start = self.rotation.fetch_add(1, Ordering::Relaxed);
            (0..n).map(|i| ((start + i) % n) as i32).collect()
        };
        let states = coordinator
            .pop_state(sub, &queues, now, batch as u32, mode.fifo)
            .await?;
        self.claim(sub, mode, select, batch, invisible, states).await
    }

    /// Plans a pop from the queues' states and claims it (see `pop_once`).
    async fn claim(
        &self,
        sub: &Subscription,
        mode: Mode,
        select: &Select<'_>,
        batch: usize,
        invisible: Duration,
        states: Vec<QueuePopState>,
    ) -> Result<Popped> {
        let mut plan = self.plan(sub, mode, select, batch, invisible, states).await?;
        let claimed = match plan.claim.take() {
            Some(claim) => {
                let mut claimed = self.catalog.coordinator().pop_claim(&claim).await?;
                // Delivered in the order the queues were planned (for a PRIORITY topic, the
                // highest level first), whatever order the coordinator answers in.
                let rank = |queue| claim.queues.iter().position(|c| c.queue == queue);
                claimed.delivered.sort_by_key(|f| rank(f.queue));
                claimed
            }
            None => Claimed::default(),
        };
        Ok(self.deliver(plan, claimed))
    }

    /// What a pop would claim from the queues' states, with the records read for it.
    async fn plan(
        &self,
        sub: &Subscription,
        mode: Mode,
        select: &Select<'_>,
        batch: usize,
        invisible: Duration,
        states: Vec<QueuePopState>,
    ) -> Result<Plan> {
        let now = self.catalog.clock().now_ms();
        let mut want = batch;
        let mut claims = Vec::new();
        let mut records: HashMap<(i32, i64), WalRecord> = HashMap::new();
        let mut dead_letters = false;
        let mut unreadable = Unread::default();
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
                in_order: mode.in_order,
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
                    && let Some(r) = self.read_one(&queue, f.offset, &mut unreadable).await?
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
                if let Some(r) = self.read_one(&queue, w.offset, &mut unreadable).await? {
                    records.insert((st.queue, w.offset), r);
                    claim.release.push(w.offset);
                    busy.insert(w.group.clone());
                    want -= 1;
                }
            }
            let in_order_waits = mode.in_order && !st.expired.is_empty();
            if want > 0 && st.cursor < st.end && !in_order_waits {
                let scan_to = st.end.min(st.cursor + self.config.max_scan);
                let read_to = if select.takes_all() && !mode.fifo {
                    scan_to.min(st.cursor + want as i64)
                } else {
                    scan_to
                };
                let read = self.read(&queue, st.cursor, read_to, &mut unreadable).await?;
                if read.records.is_empty() && read.unreadable.is_none() {
                    // Every offset read is quarantined: pass over them.
                    claim.cursor_to = read_to;
                }
                for (offset, record) in read.records {
                    if !select.matches(&record) {
                        claim.cursor_to = offset + 1;
                        continue;
                    }
                    let group = record.message_group.clone().filter(|_| mode.fifo);
                    let taken = Taken { offset, group };
                    match &taken.group {
                        // Behind a message of its group: it waits its turn, if the queue
                        // has room for one more waiting message; otherwise the cursor stops
                        // here until groups drain (bounded rows, bounded work per receive).
                        Some(g) if busy.contains(g) => {
                            if st.waiting + claim.park.len() as i64 >= self.config.max_waiting {
                                break;
                            }
                            claim.cursor_to = offset + 1;
                            claim.park.push(taken);
                        }
                        _ => {
                            claim.cursor_to = offset + 1;
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
        let mut plan = Plan {
            sub: sub.clone(),
            mode,
            invisible,
            claim: None,
            records,
            unread: unreadable,
        };
        if claims.is_empty() {
            return Ok(plan);
        }
        let dead_letter_topic = if dead_letters && mode.dead_letter {
            Some(
                self.catalog
                    .dead_letter_topic(&sub.tenant, sub.group_name())
                    .await?
                    .name,
            )
        } else {
            None
        };
        plan.claim = Some(PopClaim {
            subscription: sub.clone(),
            now_ms: now,
            invisible_until_ms: now + invisible.as_millis() as i64,
            dead_letter_topic,
            queues: claims,
        });
        Ok(plan)
    }

    /// Hands out what the coordinator granted of a plan, each with its receipt handle.
    fn deliver(&self, plan: Plan, claimed: Claimed) -> Popped {
        let Plan {
            sub,
            mode,
            invisible,
            mut records,
            unread,
            ..
        } = plan;
        if !claimed.dead_lettered.is_empty() {
            if let (true, Some(hook)) = (mode.dead_letter, self.dead_letter_hook.get()) {
                hook(&sub, claimed.dead_lettered.clone());
            }
            tracing::info!(
                tenant = %sub.tenant, group = %sub.group, topic = %sub.topic, messages = claimed.dead_lettered.len(),
                "{} after {} attempts",
                if mode.dead_letter { "moved to the dead-letter topic" } else { "dropped for this broadcast client" },
                mode.max_attempts
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
        unread.popped(delivered, !claimed.conflicts.is_empty())
    }

    /// Reads `from..to` of `queue`; a batch that cannot be read is counted towards its
    /// quarantine and noted in `unread`, and what precedes it returned.
    async fn read(&self, queue: &QueueRef, from: i64, to: i64, unread: &mut Unread) -> Result<Read> {
        let read = self.reader.read(queue, from, to).await?;
        if let Some((batch, e)) = &read.unreadable {
            let quarantined = self.unreadable.failed(batch, &e.to_string(), e.is_incurable()).await?;
            if e.is_incurable() {
                // Quarantined now or by another node: the cached location is stale.
                self.reader.forget(queue).await;
            }
            unread.quarantined |= quarantined;
            unread.error.get_or_insert_with(|| e.clone());
        }
        Ok(read)
    }

    async fn read_one(&self, queue: &QueueRef, offset: i64, unread: &mut Unread) -> Result<Option<WalRecord>> {
        let read = self.read(queue, offset, offset + 1, unread).await?;
        Ok(read.records.into_iter().next().map(|(_, r)| r))
    }

    /// Receives waiting in a long poll on this node now.
    pub fn long_polls(&self) -> usize {
        self.long_polls.load(Ordering::Relaxed)
    }

    /// Failed reads and quarantines of this node (the compactor shares it; admin Stats).
    pub fn unreadable(&self) -> &Arc<Unreadable> {
        &self.unreadable
    }

    /// Moves a delivered message to its group's dead-letter topic, as a push consumer asks
    /// after its last local attempt.
    #[instrument(skip_all, fields(tenant = %sub.tenant, group = %sub.group, topic = %sub.topic), err)]
    pub async fn forward_to_dead_letter(&self, sub: &Subscription, handle: &str) -> Result<()> {
        let receipt = self.receipt_for(sub, handle)?;
        if receipt.subscription.is_broadcast() {
            // Broadcast clients have no dead-letter topic: the message is dropped for this
            // client (acknowledged), as after its last attempt in a receive.
            return self
                .acks
                .ack(vec![receipt])
                .await?
                .into_iter()
                .try_for_each(outcome_result);
        }
        let dlq = self.catalog.dead_letter_topic(&sub.tenant, sub.group_name()).await?;
        match self
            .catalog
            .coordinator()
            .dead_letter(&receipt, &dlq.name, self.catalog.clock().now_ms())
            .await?
        {
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
        let issued = &receipt.subscription;
        // A broadcast client's or a lane's handle names its progress, a lite message's handle
        // its lite topic: they belong to the group (a lane's consumers' or not) and to the
        // parent topic.
        if (
            issued.tenant.as_str(),
            issued.group_name(),
            lite::parent_of(&issued.topic),
        ) != (sub.tenant.as_str(), sub.group_name(), sub.topic.as_str())
        {
            return Err(Error::InvalidReceipt(format!(
                "the handle was issued to group {} for topic {}, not to group {} for topic {}",
                issued.group_name(),
                issued.topic,
                sub.group,
                sub.topic
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
        let outcomes = match self.acks.ack(valid.clone()).await {
            Ok(o) => o,
            Err(e) => return parsed.into_iter().map(|p| p.and(Err(e.clone()))).collect(),
        };
        self.wake_freed_lite_topics(&valid);
        let mut outcomes = outcomes.into_iter();
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

    /// A lite topic is consumed one batch at a time: an ack may let its next messages go, so
    /// the receives waiting on this node look again (acks are not commits that notify).
    fn wake_freed_lite_topics(&self, acked: &[Receipt]) {
        let topics: HashSet<(&str, &str)> = acked
            .iter()
            .filter(|r| lite::split(&r.subscription.topic).is_some())
            .map(|r| (r.subscription.tenant.as_str(), r.subscription.topic.as_str()))
            .collect();
        for (tenant, topic) in topics {
            self.wakeups.wake(&CommitEvent {
                tenant: tenant.to_string(),
                topic: Some(topic.to_string()),
                held: false,
            });
        }
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
