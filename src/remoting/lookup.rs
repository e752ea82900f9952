//! Finding messages: VIEW_MESSAGE_BY_ID (an offset message id's commit-log offset) and
//! QUERY_MESSAGE (by key or unique key within a time range).

use bytes::BytesMut;
use strata_meta::accounts::Actions;
use strata_meta::model::QueueRef;
use strata_query::Position;
use strata_remoting::codes::response;
use strata_remoting::message::encode_stored;
use strata_tenancy::Need;

use super::convert::{from_commit_log_offset, to_stored};
use super::fields::{Fields, Handled, Refusal};
use super::{Remoting, Reply, Req};

/// Records one QUERY_MESSAGE reads at most, over all queues: without an index (issue 13 brings
/// one) a query scans, and this bounds what one request costs (~100 MiB of 1 KiB messages).
const MAX_QUERY_SCAN: i64 = 100_000;
/// Records read per step of a scan.
const SCAN_STEP: i64 = 1_000;

impl Remoting {
    /// The message an offset message id names, among the signed-in tenant's topics.
    pub(super) async fn view_message(&self, req: &Req<'_>) -> Handled<Reply> {
        let query = self.query()?;
        let clo: i64 = Fields(&req.ext_fields).num("offset")?;
        let tenant = req.name("").tenant;
        let topics = self
            .front
            .catalog
            .coordinator()
            .list_topics(&tenant)
            .await
            .map_err(|e| Refusal::from_meta(&e))?;
        for topic in topics {
            let Some((queue, offset)) = from_commit_log_offset(&topic.name, clo) else {
                continue;
            };
            let at = QueueRef {
                tenant: tenant.clone(),
                topic: topic.name.clone(),
                queue,
            };
            if let Some(record) = query.read_at(&at, offset).await.map_err(|e| Refusal::from_query(&e))? {
                self.authorize(req, &tenant, "ViewMessage", &[Need::topic(&topic.name, Actions::SUB)])?;
                let mut body = BytesMut::new();
                let stored = to_stored(&topic.name, queue, offset, &record, self.broker.store_host);
                encode_stored(&stored, &mut body)?;
                return Ok(Reply::ok().body(body.freeze()));
            }
        }
        Err(Refusal::new(
            response::SYSTEM_ERROR,
            format!("no retained message at commit-log offset {clo}"),
        ))
    }

    /// Messages of a topic with a key (or, with `_UNIQUE_KEY_QUERY`, that unique key) stored
    /// between two times.
    pub(super) async fn query_message(&self, req: &Req<'_>) -> Handled<Reply> {
        let query = self.query()?;
        let f = Fields(&req.ext_fields);
        let raw_topic = f.str("topic")?;
        let named = req.name(raw_topic);
        self.authorize(
            req,
            &named.tenant,
            "QueryMessage",
            &[Need::topic(&named.name, Actions::SUB)],
        )?;
        let topic = self.topic(&named.tenant, &named.name).await?;
        let key = f.str("key")?;
        let unique = f.flag("_UNIQUE_KEY_QUERY");
        let max: usize = f.num_or("maxNum", 32)?;
        let begin: i64 = f.num_or("beginTimestamp", 0)?;
        let end: i64 = f.num_or("endTimestamp", i64::MAX)?;
        let mut body = BytesMut::new();
        let (mut found, mut budget) = (0, MAX_QUERY_SCAN);
        'queues: for queue in 0..topic.queue_count {
            let at = QueueRef {
                tenant: named.tenant.clone(),
                topic: named.name.clone(),
                queue,
            };
            let mut from = self.offset_at(&at, Position::Timestamp(begin)).await?;
            let last = self.offset_at(&at, Position::End).await?;
            while from < last && budget > 0 {
                let to = last.min(from + SCAN_STEP.min(budget));
                let records = query
                    .read_range(&at, from, to)
                    .await
                    .map_err(|e| Refusal::from_query(&e))?;
                budget -= to - from;
                from = to;
                for (offset, r) in records {
                    if r.store_timestamp_ms > end {
                        continue 'queues;
                    }
                    let hit = if unique {
                        r.message_id == key
                    } else {
                        r.keys.iter().any(|k| k == key)
                    };
                    if hit {
                        let stored = to_stored(raw_topic, queue, offset, &r, self.broker.store_host);
                        encode_stored(&stored, &mut body)?;
                        found += 1;
                        if found == max {
                            break 'queues;
                        }
                    }
                }
            }
        }
        if found == 0 {
            let scope = if budget <= 0 {
                " (the scan stopped at its limit; narrow the time range)"
            } else {
                ""
            };
            return Err(Refusal::new(
                response::QUERY_NOT_FOUND,
                format!("no message of {raw_topic} with key {key:?}{scope}"),
            ));
        }
        Ok(Reply::ok()
            .field("indexLastUpdateTimestamp", 0)
            .field("indexLastUpdatePhyoffset", 0)
            .body(body.freeze()))
    }
}
