//! Finding messages: VIEW_MESSAGE_BY_ID (an offset message id's commit-log offset) and
//! QUERY_MESSAGE (by key or unique key within a time range).

use bytes::BytesMut;
use strata_meta::accounts::Actions;
use strata_meta::model::QueueRef;
use strata_query::search::{Found, Scope, Searched};
use strata_remoting::codes::response;
use strata_remoting::message::encode_stored;
use strata_tenancy::Need;

use super::convert::{from_commit_log_offset, to_stored};
use super::fields::{Fields, Handled, Refusal};
use super::{Remoting, Reply, Req};

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
                self.admit(req, "ViewMessage", &[Need::topic(&topic.name, Actions::SUB)])?;
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
        self.admit(req, "QueryMessage", &[named.topic(Actions::SUB)])?;
        let topic = self.topic(&named.tenant, &named.name).await?;
        let key = f.str("key")?;
        let unique = f.flag("_UNIQUE_KEY_QUERY");
        let max: usize = f.num_or("maxNum", 32)?;
        let scope = Scope {
            tenant: &named.tenant,
            topic: &named.name,
            queues: topic.queue_count,
            from_ms: f.num_or("beginTimestamp", 0)?,
            to_ms: f.num_or("endTimestamp", i64::MAX)?,
        };
        let reader = query.reader();
        let indexed_since = self.front.catalog.clock().now_ms() - self.index_window.as_millis() as i64;
        let searched = if unique {
            // The unique key is the message id: the index, else a scan of the time range.
            self.find_unique(reader, &scope, key).await
        } else {
            reader.find_by_key(&scope, key, max, indexed_since).await
        }
        .map_err(|e| Refusal::from_query(&e))?;
        if searched.found.is_empty() {
            let cut = if searched.cut_short {
                " (the scan stopped at its limit; narrow the time range)"
            } else {
                ""
            };
            return Err(Refusal::new(
                response::QUERY_NOT_FOUND,
                format!("no message of {raw_topic} with key {key:?}{cut}"),
            ));
        }
        let mut body = BytesMut::new();
        for f in searched.found.iter().take(max) {
            let stored = to_stored(raw_topic, f.queue, f.offset, &f.record, self.broker.store_host);
            encode_stored(&stored, &mut body)?;
        }
        Ok(Reply::ok()
            .field("indexLastUpdateTimestamp", 0)
            .field("indexLastUpdatePhyoffset", 0)
            .body(body.freeze()))
    }

    /// A message of the scope by id: the index, else a scan of the scope.
    async fn find_unique(
        &self,
        reader: &strata_query::reader::Reader,
        scope: &Scope<'_>,
        id: &str,
    ) -> strata_query::Result<Searched> {
        let mut indexed = reader.find_by_id(scope.tenant, id, None).await?;
        let in_scope =
            |f: &Found| f.topic == scope.topic && (scope.from_ms..=scope.to_ms).contains(&f.record.store_timestamp_ms);
        indexed.found.retain(in_scope);
        if !indexed.found.is_empty() {
            return Ok(indexed);
        }
        reader.scan(scope, 1, |r| r.message_id == id).await
    }
}
