//! The admin API's message query: by id, by key, by time range.

use strata_meta::accounts::Actions;
use strata_proto::admin;
use strata_query::search::{Found, Scope};
use strata_tenancy::Need;
use tonic::{Request, Status};

use super::accounts::auth_status;
use super::{Admin, to_status};
use crate::trace::TRACE_TOPIC;

/// Body bytes a view carries.
const PREVIEW_BYTES: usize = 256;
/// Messages one FindMessages returns at most, and by default.
const FIND_MAX: u32 = 1000;
const FIND_DEFAULT: u32 = 32;

fn query_status(e: strata_query::Error) -> Status {
    Status::unavailable(format!("reading messages: {e}"))
}

fn view(f: Found) -> admin::MessageView {
    let r = f.record;
    admin::MessageView {
        message_id: r.message_id,
        topic: f.topic,
        queue: f.queue,
        offset: f.offset,
        store_ms: r.store_timestamp_ms,
        born_ms: r.born_timestamp_ms,
        born_host: r.born_host,
        delivery_ms: r.delivery_timestamp_ms.unwrap_or(0),
        tag: r.tag.unwrap_or_default(),
        keys: r.keys,
        message_group: r.message_group.unwrap_or_default(),
        properties: r.user_properties.into_iter().collect(),
        message_type: r.message_type,
        body_size: r.body.len() as u32,
        body_preview: r.body.slice(..r.body.len().min(PREVIEW_BYTES)),
        deliveries: Vec::new(),
    }
}

/// How far back from the time in its id a message's trace is read.
const TRACE_LOOKBACK_MS: i64 = 5 * 60_000;
/// Events one trace shows at most.
const TRACE_MAX_EVENTS: usize = 1000;

impl Admin {
    pub(super) async fn trace(
        &self,
        request: Request<admin::TraceMessageRequest>,
    ) -> Result<admin::TraceMessageResponse, Status> {
        let r = request.get_ref().clone();
        self.topic_reader(&request, &r.namespace, TRACE_TOPIC).await?;
        let Some(topic) = self
            .catalog
            .coordinator()
            .topic(&r.namespace, TRACE_TOPIC)
            .await
            .map_err(to_status)?
        else {
            return Err(Status::not_found(
                "nothing was traced in this tenant (is [trace] enabled?)",
            ));
        };
        let now = self.catalog.clock().now_ms();
        let indexed_since = now - self.index_window.as_millis() as i64;
        let from = strata_query::search::id_time_ms(&r.message_id).map_or(indexed_since, |t| t - TRACE_LOOKBACK_MS);
        let scope = Scope {
            tenant: &r.namespace,
            topic: TRACE_TOPIC,
            queues: topic.queue_count,
            from_ms: from,
            to_ms: now,
        };
        let searched = self
            .reader
            .find_by_key(&scope, &r.message_id, TRACE_MAX_EVENTS, indexed_since)
            .await
            .map_err(query_status)?;
        let mut events: Vec<((i64, String, u64), String)> = searched
            .found
            .iter()
            .filter_map(|f| serde_json::from_slice::<Vec<crate::trace::Event>>(&f.record.body).ok())
            .flatten()
            .filter(|e| e.message_id == r.message_id)
            .filter_map(|e| {
                let json = serde_json::to_string(&e).ok()?;
                Some(((e.time_ms, e.node, e.seq), json))
            })
            .collect();
        events.sort();
        if events.is_empty() {
            return Err(Status::not_found(format!("no trace of message {}", r.message_id)));
        }
        Ok(admin::TraceMessageResponse {
            events: events.into_iter().map(|(_, json)| json).collect(),
            cut_short: searched.cut_short,
        })
    }

    /// Authenticates, then requires SUB on the topic (reading its messages).
    async fn topic_reader<T>(&self, request: &Request<T>, tenant: &str, topic: &str) -> Result<(), Status> {
        self.principal(request)
            .await?
            .authorize(tenant, &[Need::topic(topic, Actions::SUB)])
            .map_err(auth_status)
    }

    pub(super) async fn message(
        &self,
        request: Request<admin::GetMessageRequest>,
    ) -> Result<admin::MessageView, Status> {
        let r = request.get_ref().clone();
        let topic = match r.topic.as_str() {
            // Authenticated and in the tenant before the index is read: a stranger learns
            // nothing of which ids exist.
            "" => {
                self.principal(&request)
                    .await?
                    .authorize(&r.namespace, &[])
                    .map_err(auth_status)?;
                None
            }
            name => {
                self.topic_reader(&request, &r.namespace, name).await?;
                Some(self.existing_topic(&r.namespace, name).await?)
            }
        };
        let searched = self
            .reader
            .find_by_id(
                &r.namespace,
                &r.message_id,
                topic.as_ref().map(|t| (t.name.as_str(), t.queue_count)),
            )
            .await
            .map_err(query_status)?;
        let Some(found) = searched.found.into_iter().next() else {
            let hint = if topic.is_none() {
                " (older than the index window? name its --topic to search there)"
            } else {
                ""
            };
            return Err(Status::not_found(format!("no retained message {}{hint}", r.message_id)));
        };
        self.topic_reader(&request, &r.namespace, strata_meta::lite::parent_of(&found.topic))
            .await?;
        let deliveries = self
            .catalog
            .coordinator()
            .delivery_states(&r.namespace, &found.topic, found.queue, found.offset)
            .await
            .map_err(to_status)?;
        let mut message = view(found);
        message.deliveries = deliveries
            .into_iter()
            .map(|d| admin::GroupDelivery {
                group: d.group,
                state: d.state.as_str(),
            })
            .collect();
        Ok(message)
    }

    pub(super) async fn messages(
        &self,
        request: Request<admin::FindMessagesRequest>,
    ) -> Result<admin::FindMessagesResponse, Status> {
        let r = request.get_ref().clone();
        self.topic_reader(&request, &r.namespace, &r.topic).await?;
        let topic = self.existing_topic(&r.namespace, &r.topic).await?;
        if r.from_ms > r.to_ms {
            return Err(Status::invalid_argument("the time range ends before it starts"));
        }
        let limit = match r.limit {
            0 => FIND_DEFAULT,
            n => n.min(FIND_MAX),
        } as usize;
        let scope = Scope {
            tenant: &r.namespace,
            topic: &r.topic,
            queues: topic.queue_count,
            from_ms: r.from_ms,
            to_ms: r.to_ms,
        };
        let searched = if r.key.is_empty() {
            self.reader.scan(&scope, limit, |_| true).await
        } else {
            let indexed_since = self.catalog.clock().now_ms() - self.index_window.as_millis() as i64;
            self.reader.find_by_key(&scope, &r.key, limit, indexed_since).await
        }
        .map_err(query_status)?;
        Ok(admin::FindMessagesResponse {
            messages: searched.found.into_iter().map(view).collect(),
            cut_short: searched.cut_short,
        })
    }
}
