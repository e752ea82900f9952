//! Stream consumption (PullMessage and offsets): a reader names a queue and an offset and
//! gets the messages from there, from Parquet files for old data and WAL objects for fresh
//! data alike; groups commit their offsets per queue.

use std::time::Duration;

use strata_meta::lane;
use strata_meta::model::{QueueRef, Subscription};
use strata_proto::wal::WalRecord;
use tokio::time::Instant;
use tracing::instrument;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::query::{Query, commit_on};

/// A pull as the front received it.
#[derive(Clone, Debug)]
pub struct PullRequest {
    pub queue: QueueRef,
    pub group: String,
    pub offset: i64,
    pub batch_size: usize,
    pub filter: Filter,
    pub long_polling: Duration,
}

/// What a pull returns: messages with their offsets, and where to continue.
#[derive(Clone, Debug, Default)]
pub struct Pulled {
    pub messages: Vec<(i64, WalRecord)>,
    pub next_offset: i64,
    /// The queue's retained offsets when it was read: `min_offset..max_offset`.
    pub min_offset: i64,
    pub max_offset: i64,
}

/// Where QueryOffset starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Beginning,
    End,
    /// The first message stored at or after this time (ms).
    Timestamp(i64),
}

impl Query {
    /// Messages of `queue` from `offset`: waits up to `long_polling` at the end of the queue.
    /// An offset outside the retained range is `IllegalOffset` (ask QueryOffset).
    #[instrument(skip_all, fields(topic = %req.queue.topic, queue = req.queue.queue, offset = req.offset), err)]
    pub async fn pull(&self, req: &PullRequest) -> Result<Pulled> {
        no_lane(&req.group)?;
        let catalog = self.catalog();
        catalog.topic(&req.queue.tenant, &req.queue.topic).await?;
        catalog.group(&req.queue.tenant, &req.group).await?;
        let coordinator = catalog.coordinator();
        let batch = req.batch_size.clamp(1, self.config().max_batch);
        let deadline = Instant::now() + req.long_polling.min(self.config().max_long_polling);
        let sub = Subscription {
            tenant: req.queue.tenant.clone(),
            group: req.group.clone(),
            topic: req.queue.topic.clone(),
        };
        let mut events = coordinator.subscribe();
        loop {
            let (first, end) = coordinator.queue_bounds(&req.queue).await?;
            if req.offset < first || req.offset > end {
                return Err(Error::IllegalOffset(format!(
                    "{} is outside the queue's retained offsets {first}..{end}",
                    req.offset
                )));
            }
            if req.offset < end {
                let scan_to = end.min(req.offset + self.config().max_scan);
                // Without a filter, the first `batch` offsets are the answer: read no further.
                let to = match req.filter {
                    Filter::All => scan_to.min(req.offset + batch as i64),
                    _ => scan_to,
                };
                let mut messages = Vec::new();
                let mut next = req.offset;
                for (offset, record) in self.reader().read(&req.queue, req.offset, to).await?.all()? {
                    next = offset + 1;
                    if req.filter.matches(&record) {
                        messages.push((offset, record));
                        if messages.len() == batch {
                            break;
                        }
                    }
                }
                return Ok(Pulled {
                    messages,
                    next_offset: next,
                    min_offset: first,
                    max_offset: end,
                });
            }
            if Instant::now() >= deadline {
                return Ok(Pulled {
                    messages: Vec::new(),
                    next_offset: req.offset,
                    min_offset: first,
                    max_offset: end,
                });
            }
            tokio::select! {
                () = commit_on(&mut events, &sub) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// The offset a position names in `queue`.
    pub async fn query_offset(&self, queue: &QueueRef, position: Position) -> Result<i64> {
        let coordinator = self.catalog().coordinator();
        let (first, end) = coordinator.queue_bounds(queue).await?;
        Ok(match position {
            Position::Beginning => first,
            Position::End => end,
            Position::Timestamp(ts) => self.reader().offset_at_time(queue, ts).await?,
        })
    }

    /// The committed message at `offset` of `queue`, if it is still retained.
    pub async fn read_at(&self, queue: &QueueRef, offset: i64) -> Result<Option<WalRecord>> {
        let records = self.read_range(queue, offset, offset.saturating_add(1)).await?;
        Ok(records.into_iter().find(|(o, _)| *o == offset).map(|(_, r)| r))
    }

    /// The committed messages at offsets `from..to` of `queue` that are still retained.
    pub async fn read_range(&self, queue: &QueueRef, from: i64, to: i64) -> Result<Vec<(i64, WalRecord)>> {
        self.reader().read(queue, from, to).await?.all()
    }

    /// Records a group's progress on a queue.
    pub async fn update_offset(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()> {
        no_lane(&sub.group)?;
        self.catalog().group(&sub.tenant, &sub.group).await?;
        Ok(self.catalog().coordinator().commit_offset(sub, queue, offset).await?)
    }

    /// A group's committed progress on a queue.
    pub async fn committed_offset(&self, sub: &Subscription, queue: i32) -> Result<i64> {
        no_lane(&sub.group)?;
        self.catalog()
            .coordinator()
            .committed_offset(sub, queue)
            .await?
            .ok_or_else(|| Error::OffsetNotFound {
                group: sub.group.clone(),
                topic: sub.topic.clone(),
                queue,
            })
    }
}

/// Stream consumers choose their queues and offsets themselves: lanes (`G%L`) are for pop
/// consumption, where the broker chooses.
fn no_lane(group: &str) -> Result<()> {
    match lane::split(group) {
        (group, Some(lane)) => Err(Error::Unsupported(format!(
            "lane {lane:?} of group {group}: pull consumers and offsets have no lanes (lanes are for \
             SimpleConsumer and PushConsumer)"
        ))),
        (_, None) => Ok(()),
    }
}
