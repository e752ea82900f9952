//! The flush pipeline (group commit, DESIGN §1).
//!
//! A batcher task takes submissions as they arrive. As soon as a flush slot is free it packs
//! everything waiting (up to `max_bytes`) into ONE WAL object, starts its PUT and hands the
//! flush to the committer. The committer awaits uploads in order, commits each flush through
//! the coordinator in ONE transaction, then answers the producers. A slot is freed only when
//! its flush is committed or failed, so at most `flush_slots` flushes are in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_meta::model::{
    AppendBatch, BlockLocation, FlushCommit, Hold, HoldKind, Indexed, QueueRef, RETRY_PREFIX, held_id,
};
use strata_meta::{Clock, Coordinator, Membership};
use strata_proto::wal::WalRecord;
use strata_storage::wal::{BlockSpan, WalWriter};
use strata_storage::{BlockCache, Path, paths};
use strata_tenancy::Meter;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, instrument, warn};

use crate::config::IngestConfig;
use crate::error::{Error, Result};

/// One record bound for one queue.
#[derive(Debug)]
pub struct Item {
    pub queue: QueueRef,
    pub record: WalRecord,
    /// Held back from the queue: a delay timer or a half message.
    pub hold: Option<Hold>,
}

/// Where a committed record went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placed {
    /// Appended at this offset of its queue, stored in this object (`None`: stored before,
    /// a retried send).
    Offset(i64, Option<Arc<str>>),
    /// Held (timer or half message) under this id.
    Held { id: String, kind: HoldKind },
}

/// Records that are flushed together (one producer request) and answered together.
pub struct Submission {
    pub items: Vec<Item>,
    pub bytes: usize,
    pub arrived: Instant,
    /// Where each item went, in order, once committed.
    pub reply: oneshot::Sender<Result<Vec<Placed>>>,
    /// Holds this submission's share of the node's in-flight byte budget until answered.
    pub budget: OwnedSemaphorePermit,
}

/// What records share a block: their queue, and whether (and how) they are held.
type BlockKey = (QueueRef, Option<HoldKind>);

/// Where an item of a flush goes.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// Position in a block of the flush.
    Block(usize, i64),
    /// Stored before (a retried send): its offset.
    Stored(i64),
}

/// Messages of a flush the index says are stored already, by (tenant, topic, message id):
/// their offsets.
type Known = HashMap<(String, String, String), i64>;

/// A flush whose upload has started.
struct Pending {
    started: Instant,
    upload: JoinHandle<Result<()>>,
    commit: FlushCommit,
    /// Per block: its span and records (for the cache).
    blocks: Vec<(BlockSpan, Vec<WalRecord>)>,
    /// Per submission, per item: where it went.
    placement: Vec<Vec<Slot>>,
    replies: Vec<oneshot::Sender<Result<Vec<Placed>>>>,
    _slot: OwnedSemaphorePermit,
    _budgets: Vec<OwnedSemaphorePermit>,
}

pub struct Shared {
    pub config: IngestConfig,
    pub store: Arc<dyn ObjectStore>,
    pub coordinator: Arc<dyn Coordinator>,
    pub cache: Option<BlockCache>,
    pub clock: Arc<dyn Clock>,
    /// This node's registration: its id and epoch go into every commit (fencing).
    pub membership: Arc<Membership>,
    /// Where each stored WAL object's PUT is attributed to the tenants in it, by bytes.
    pub meter: Option<Arc<Meter>>,
}

/// Handle to the running pipeline.
pub struct Pipeline {
    pub tx: mpsc::UnboundedSender<Submission>,
    shutdown: Arc<Notify>,
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Pipeline {
    pub fn start(shared: Arc<Shared>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (commit_tx, commit_rx) = mpsc::unbounded_channel();
        let shutdown = Arc::new(Notify::new());
        let batcher = tokio::spawn(batcher(Arc::clone(&shared), rx, commit_tx, Arc::clone(&shutdown)));
        let committer = tokio::spawn(committer(shared, commit_rx));
        Self {
            tx,
            shutdown,
            tasks: tokio::sync::Mutex::new(vec![batcher, committer]),
        }
    }

    /// Stops taking submissions, flushes everything already submitted, and waits for the
    /// last commit.
    pub async fn shutdown(&self) {
        self.shutdown.notify_one();
        for task in self.tasks.lock().await.drain(..) {
            let _ = task.await;
        }
    }
}

async fn batcher(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Submission>,
    commit_tx: mpsc::UnboundedSender<Pending>,
    shutdown: Arc<Notify>,
) {
    let config = &shared.config;
    let slots = Arc::new(Semaphore::new(config.flush_slots.max(1)));
    let min_gap = config
        .max_flush_rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let mut carry: Option<Submission> = None;
    let mut last_start: Option<Instant> = None;
    let mut closing = false;
    loop {
        let first = match carry.take() {
            Some(s) => s,
            None => tokio::select! {
                s = rx.recv() => match s {
                    Some(s) => s,
                    None => break,
                },
                () = shutdown.notified(), if !closing => {
                    // No new submissions; the ones queued are still flushed.
                    rx.close();
                    closing = true;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        if !config.linger.is_zero() {
            tokio::time::sleep_until(first.arrived + config.linger).await;
        }
        if let (Some(gap), Some(last)) = (min_gap, last_start) {
            tokio::time::sleep_until(last + gap).await;
        }
        last_start = Some(Instant::now());

        let mut batch = vec![first];
        let mut bytes = batch[0].bytes;
        while bytes < config.max_bytes {
            match rx.try_recv() {
                Ok(s) if bytes + s.bytes > config.max_bytes => {
                    carry = Some(s);
                    break;
                }
                Ok(s) => {
                    bytes += s.bytes;
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        let known = known_messages(&shared, &batch).await;
        // Encoding (zstd) a large flush is CPU work for a blocking thread, overlapping the
        // flush ahead; a small one costs less than the hand-off to that thread.
        let pending = if bytes >= BLOCKING_ENCODE_BYTES {
            let for_flush = Arc::clone(&shared);
            match tokio::task::spawn_blocking(move || start_flush(&for_flush, batch, &known, slot)).await {
                Ok(p) => p,
                Err(_) => break,
            }
        } else {
            start_flush(&shared, batch, &known, slot)
        };
        if commit_tx.send(pending).is_err() {
            break;
        }
    }
}

/// Whether a retried send of this item is answered with the first copy: messages appended
/// now, except to retry topics, where a 4.x consumer's send-back of a message keeps its id
/// each time it fails again.
fn deduplicated(item: &Item) -> bool {
    item.hold.is_none() && !item.queue.topic.starts_with(RETRY_PREFIX)
}

/// The messages of a flush whose id the index holds for the same topic: retried sends, to
/// be answered with their original offset (one index read per tenant of the flush). An
/// index that cannot be read stores them again (at least once) rather than failing sends.
async fn known_messages(shared: &Shared, batch: &[Submission]) -> Known {
    let mut known = Known::new();
    if shared.config.index_window.is_zero() {
        return known;
    }
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for item in batch.iter().flat_map(|s| &s.items).filter(|i| deduplicated(i)) {
        ids.entry(item.queue.tenant.as_str())
            .or_default()
            .push(item.record.message_id.clone());
    }
    for (tenant, ids) in ids {
        match shared.coordinator.find_messages(tenant, &ids).await {
            Ok(found) => known.extend(
                found
                    .into_iter()
                    .map(|m| ((tenant.to_string(), m.topic, m.message_id), m.offset)),
            ),
            Err(e) => warn!(tenant, error = %e, "message index unreadable: retried sends may be stored twice"),
        }
    }
    known
}

/// Flushes of at least this many bytes are encoded on a blocking thread (zstd compresses
/// ~300 MB/s: 256 KiB is ~1 ms of CPU; a thread hand-off costs ~20–50 µs).
const BLOCKING_ENCODE_BYTES: usize = 256 << 10;

/// Packs submissions into one WAL object (one block per queue) and starts its PUT. Large
/// flushes run it on a blocking thread, inside the runtime's context.
fn start_flush(shared: &Shared, batch: Vec<Submission>, known: &Known, slot: OwnedSemaphorePermit) -> Pending {
    let now = shared.clock.now_ms();
    let indexing = !shared.config.index_window.is_zero();
    let mut placement: Vec<Vec<Slot>> = batch.iter().map(|s| vec![Slot::Stored(0); s.items.len()]).collect();
    // One block per queue and hold kind: a block is either appended or held as a whole. A
    // message stored before, or twice in this flush, is stored once.
    let mut by_queue: BTreeMap<BlockKey, Vec<(usize, usize)>> = BTreeMap::new();
    let mut first_of: HashMap<(&str, &str, &str), (usize, usize)> = HashMap::new();
    let (mut repeats, mut retried) = (Vec::new(), 0);
    for (s, sub) in batch.iter().enumerate() {
        for (i, item) in sub.items.iter().enumerate() {
            if indexing && deduplicated(item) {
                let q = &item.queue;
                let id = (q.tenant.as_str(), q.topic.as_str(), item.record.message_id.as_str());
                let key = || (id.0.to_string(), id.1.to_string(), id.2.to_string());
                if let Some(&offset) = (!known.is_empty()).then(|| known.get(&key())).flatten() {
                    placement[s][i] = Slot::Stored(offset);
                    retried += 1;
                    continue;
                }
                if let Some(&first) = first_of.get(&id) {
                    repeats.push(((s, i), first));
                    continue;
                }
                first_of.insert(id, (s, i));
            }
            let key = (item.queue.clone(), item.hold.as_ref().map(|h| h.kind));
            by_queue.entry(key).or_default().push((s, i));
        }
    }
    let duplicates = repeats.len() + retried;
    if duplicates > 0 {
        metrics::counter!("strata_ingest_duplicates_total").increment(duplicates as u64);
        debug!(duplicates, "retried sends answered with their original offsets");
    }
    let mut writer = WalWriter::new();
    let mut block_records = Vec::with_capacity(by_queue.len());
    let mut queues = Vec::with_capacity(by_queue.len());
    let mut holds = Vec::with_capacity(by_queue.len());
    for (b, ((queue, _), members)) in by_queue.into_iter().enumerate() {
        holds.push(
            members
                .iter()
                .filter_map(|&(s, i)| batch[s].items[i].hold.clone())
                .collect::<Vec<_>>(),
        );
        let records: Vec<WalRecord> = members
            .iter()
            .enumerate()
            .map(|(pos, &(s, i))| {
                placement[s][i] = Slot::Block(b, pos as i64);
                batch[s].items[i].record.clone()
            })
            .collect();
        let span = writer.add_block(&queue.tenant, &queue.topic, queue.queue, &records);
        block_records.push((span, records));
        queues.push(queue);
    }
    for ((s, i), (fs, fi)) in repeats {
        placement[s][i] = placement[fs][fi];
    }
    let id = ulid::Ulid::new();
    let path = paths::wal_object(id);
    let object = writer.finish(shared.membership.id(), now);
    let commit = FlushCommit {
        object: path.to_string(),
        object_size: object.len() as u64,
        writer: shared.membership.id().to_string(),
        writer_epoch: shared.membership.epoch(),
        batches: queues
            .into_iter()
            .zip(&block_records)
            .zip(holds)
            .map(|((queue, (span, records)), held)| AppendBatch {
                queue,
                count: records.len() as u32,
                location: BlockLocation::wal(path.as_ref(), span),
                min_timestamp_ms: records.iter().map(|r| r.store_timestamp_ms).min().unwrap_or(now),
                max_timestamp_ms: records.iter().map(|r| r.store_timestamp_ms).max().unwrap_or(now),
                indexed: if indexing && held.is_empty() {
                    records
                        .iter()
                        .enumerate()
                        .map(|(pos, r)| Indexed {
                            position: pos as u32,
                            message_id: r.message_id.clone(),
                            keys: r.keys.clone(),
                            store_ms: r.store_timestamp_ms,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                held,
            })
            .collect(),
    };
    let store = Arc::clone(&shared.store);
    let size = object.len();
    let span = tracing::info_span!("wal_put", object = %path, bytes = size);
    let upload = tokio::spawn(
        async move {
            store
                .put(&path, PutPayload::from(object))
                .await
                .map(|_| ())
                .map_err(|e| Error::Store(e.to_string()))
        }
        .instrument(span),
    );
    let (replies, budgets) = batch.into_iter().map(|s| (s.reply, s.budget)).unzip();
    Pending {
        started: Instant::now(),
        upload,
        commit,
        blocks: block_records,
        placement,
        replies,
        _slot: slot,
        _budgets: budgets,
    }
}

async fn committer(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(p) = rx.recv().await {
        finish_flush(&shared, p).await;
    }
}

/// Commits a stored flush. A commit whose outcome is unknown (the connection failed while it
/// was under way, perhaps after COMMIT) is retried with the same flush, which the coordinator
/// answers idempotently, until it succeeds, is refused, or `commit_deadline` has passed
/// again. A commit that never reached the database (no connection within the pool's 5 s)
/// fails at once, as any refusal does. Past the deadline the producers hear a failure even if
/// a commit still lands: they retry, and a duplicate (at least once) is the price of never
/// acknowledging an unknown outcome.
async fn commit(shared: &Shared, flush: &FlushCommit) -> Result<Vec<Option<i64>>> {
    let deadline = Instant::now() + shared.config.commit_deadline;
    let mut backoff = Duration::from_millis(10);
    loop {
        let attempt = shared.coordinator.commit_flush(flush, shared.clock.now_ms());
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(bases)) => return Ok(bases),
            Ok(Err(e)) if e.is_outcome_unknown() && Instant::now() + backoff < deadline => {
                warn!(object = %flush.object, error = %e, "commit outcome unknown; committing the same flush again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Ok(Err(e)) => return Err(Error::Commit(e.to_string())),
            Err(_) => {
                return Err(Error::Commit(format!(
                    "no commit answer within the commit deadline ({:?})",
                    shared.config.commit_deadline
                )));
            }
        }
    }
}

#[instrument(skip_all, fields(object = %p.commit.object, bytes = p.commit.object_size, queues = p.blocks.len()))]
async fn finish_flush(shared: &Shared, p: Pending) {
    let uploaded = p.upload.await;
    metrics::histogram!("strata_ingest_flush_seconds").record(p.started.elapsed());
    let uploaded = match uploaded {
        Ok(Ok(())) if p.started.elapsed() > shared.config.commit_deadline => Err(Error::Store(format!(
            "the flush took longer than the commit deadline ({:?}) to upload",
            shared.config.commit_deadline
        ))),
        Ok(r) => r,
        Err(join) => Err(Error::Store(format!("upload task failed: {join}"))),
    };
    if let (Ok(()), Some(meter)) = (&uploaded, &shared.meter) {
        let mut bytes: HashMap<&str, u64> = HashMap::new();
        for b in &p.commit.batches {
            *bytes.entry(b.queue.tenant.as_str()).or_default() += b.location.length;
        }
        meter.shared_put(&bytes);
    }
    let commit_started = Instant::now();
    let committed = match uploaded {
        Ok(()) => commit(shared, &p.commit)
            .await
            .inspect(|_| {
                metrics::histogram!("strata_ingest_commit_seconds").record(commit_started.elapsed());
            })
            .map_err(|e| {
                // The object is stored but unreferenced: an orphan that GC removes.
                warn!(object = %p.commit.object, error = %e, "commit failed after PUT");
                e
            }),
        Err(e) => {
            warn!(object = %p.commit.object, error = %e, "WAL PUT failed");
            Err(e)
        }
    };
    let committed = committed.and_then(|bases| {
        if bases.len() == p.blocks.len() {
            Ok(bases)
        } else {
            Err(Error::Commit(format!(
                "{} offsets for {} batches",
                bases.len(),
                p.blocks.len()
            )))
        }
    });
    match committed {
        Ok(bases) => {
            debug!(object = %p.commit.object, "flush committed");
            let path = Path::from(p.commit.object.as_str());
            let spans: Vec<BlockSpan> = p.blocks.iter().map(|(span, _)| *span).collect();
            if let Some(cache) = &shared.cache {
                for (span, records) in p.blocks {
                    cache.insert(&path, &span, records);
                }
            }
            let object: Arc<str> = Arc::from(p.commit.object.as_str());
            for (reply, places) in p.replies.into_iter().zip(p.placement) {
                let placed = places
                    .iter()
                    .map(|&slot| {
                        let (b, pos) = match slot {
                            Slot::Stored(offset) => return Ok(Placed::Offset(offset, None)),
                            Slot::Block(b, pos) => (b, pos),
                        };
                        match (bases[b], p.commit.batches[b].held.first()) {
                            (Some(base), _) => Ok(Placed::Offset(base + pos, Some(Arc::clone(&object)))),
                            (None, Some(h)) => Ok(Placed::Held {
                                id: held_id(&p.commit.object, spans[b].offset, pos as u32),
                                kind: h.kind,
                            }),
                            // The coordinator refused this batch alone: its topic was deleted.
                            (None, None) => Err(Error::TopicNotFound {
                                tenant: p.commit.batches[b].queue.tenant.clone(),
                                topic: p.commit.batches[b].queue.topic.clone(),
                            }),
                        }
                    })
                    .collect();
                let _ = reply.send(placed);
            }
        }
        Err(e) => {
            for reply in p.replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
