//! Consuming: heartbeats and group membership, pulls with long polling and filters,
//! offsets, and queue locks for orderly consumers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::json;
use strata_meta::accounts::Actions;
use strata_meta::model::{QueueRef, Roles, Subscription};
use strata_proto::v2;
use strata_query::{Filter, Position, PullRequest, Query};
use strata_remoting::Command;
use strata_remoting::codes::{request, response};
use strata_remoting::message::encode_stored;
use strata_tenancy::Need;

use super::clients::Joined;
use super::convert::to_stored;
use super::fields::{Fields, Handled, Refusal};
use super::names::Named;
use super::{Remoting, Reply, Req};

/// PULL_MESSAGE `sysFlag` bits.
/// The most message bytes one pull reply carries (always one message, however large): under
/// the 16 MiB frame a 4.x client accepts, where 32 messages of 4 MiB would not fit. Apache's
/// broker sends at most 256 KiB from memory; more per pull means fewer round trips.
const PULL_REPLY_BYTES: usize = 4 << 20;
/// The most queues one LOCK_BATCH_MQ / UNLOCK_BATCH_MQ may name (an orderly consumer locks
/// its assigned queues of every topic it subscribes, rarely more than a few hundred); each
/// held lock costs ~150 B of this node's memory until it expires or its holder leaves.
pub(super) const MAX_LOCK_QUEUES: usize = 1024;
/// The most producer and consumer groups one HEART_BEAT names (a 4.x client process sends one
/// heartbeat for all its producers and consumers: a few, rarely dozens). Each group a client
/// joins is ~200 B of this node's memory while its connection lives.
const MAX_HEARTBEAT_GROUPS: usize = 256;
const PULL_COMMIT_OFFSET: i32 = 1;
const PULL_SUSPEND: i32 = 1 << 1;
const PULL_SUBSCRIPTION: i32 = 1 << 2;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Heartbeat {
    #[serde(rename = "clientID")]
    client_id: String,
    #[serde(default)]
    consumer_data_set: Vec<ConsumerData>,
    #[serde(default)]
    producer_data_set: Vec<ProducerData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProducerData {
    group_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerData {
    group_name: String,
    #[serde(default)]
    subscription_data_set: Vec<SubscriptionData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionData {
    topic: String,
    #[serde(default)]
    sub_string: String,
    #[serde(default)]
    expression_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockBody {
    consumer_group: String,
    client_id: String,
    #[serde(default)]
    mq_set: Vec<QueueData>,
}

#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct QueueData {
    topic: String,
    broker_name: String,
    queue_id: i32,
}

/// A LOCK/UNLOCK_BATCH_MQ request: the group, the body, and its queues as (topic, queue).
struct LockRequest {
    tenant: String,
    group: Named,
    body: LockBody,
    queues: Vec<(String, i32)>,
}

fn json_body<'a, T: Deserialize<'a>>(req: &'a Command) -> Handled<T> {
    serde_json::from_slice(&req.body)
        .map_err(|e| Refusal::new(response::SYSTEM_ERROR, format!("malformed request body: {e}")))
}

/// The filter a 4.x subscription expression names (`TAG` by default, or `SQL92`).
fn filter(expression: &str, kind: Option<&str>) -> Handled<Filter> {
    let r#type = match kind {
        Some(k) if k.eq_ignore_ascii_case("SQL92") => v2::FilterType::Sql,
        _ => v2::FilterType::Tag,
    };
    Filter::parse(Some(&v2::FilterExpression {
        r#type: r#type as i32,
        expression: expression.to_string(),
    }))
    .map_err(|e| Refusal::from_query(&e))
}

impl Remoting {
    pub(super) fn query(&self) -> Handled<&Query> {
        self.front.query.as_deref().ok_or_else(|| {
            Refusal::new(
                response::SERVICE_NOT_AVAILABLE,
                format!("this node runs no {} role", Roles::QUERY.names().join("+")),
            )
        })
    }

    /// The (tenant, group, topic, queue) a consumer request names.
    fn consumer_queue(&self, req: &Req<'_>, rpc: &str) -> Handled<(Subscription, i32)> {
        let f = Fields(&req.ext_fields);
        let group = req.name(f.str("consumerGroup")?);
        let topic = req.name(f.str("topic")?);
        let tenant = self.admit(req, rpc, &[topic.topic(Actions::SUB), group.group(Actions::SUB)])?;
        let queue = f.num("queueId")?;
        Ok((
            Subscription {
                tenant,
                group: group.name,
                topic: topic.name,
            },
            queue,
        ))
    }

    pub(super) async fn heartbeat(&self, req: &Req<'_>) -> Handled<Reply> {
        let hb: Heartbeat = json_body(req)?;
        let groups = hb.producer_data_set.len() + hb.consumer_data_set.len();
        if groups > MAX_HEARTBEAT_GROUPS {
            return Err(Refusal::new(
                response::SYSTEM_ERROR,
                format!("a heartbeat names {groups} groups; at most {MAX_HEARTBEAT_GROUPS}"),
            ));
        }
        let now = Instant::now();
        for producer in &hb.producer_data_set {
            let named = req.name(&producer.group_name);
            // A producer group only has to be the sender's tenant's: transaction checks of
            // that tenant's half messages go to its members.
            let tenant = self.admit(req, "Heartbeat", &[named.group(Actions::default())])?;
            self.clients
                .producer_heartbeat(&tenant, &named.name, &hb.client_id, req.connection, now);
        }
        for consumer in hb.consumer_data_set {
            let named = req.name(&consumer.group_name);
            let topics: Vec<Named> = consumer
                .subscription_data_set
                .iter()
                .map(|s| req.name(&s.topic))
                .collect();
            let needs: Vec<Need<'_>> = std::iter::once(named.group(Actions::SUB))
                .chain(topics.iter().map(|t| t.topic(Actions::default())))
                .collect();
            let tenant = self.admit(req, "Heartbeat", &needs)?;
            let group = named.name.clone();
            self.front
                .catalog
                .group(&tenant, &group)
                .await
                .map_err(|e| Refusal::from_meta(&e))?;
            let subscriptions: BTreeMap<String, (String, String)> = consumer
                .subscription_data_set
                .into_iter()
                .map(|s| {
                    let kind = s.expression_type.unwrap_or_else(|| "TAG".into());
                    (req.name(&s.topic).name, (s.sub_string, kind))
                })
                .collect();
            let joined = Joined {
                tenant: tenant.clone(),
                group: group.clone(),
                group_as_sent: consumer.group_name.clone(),
                client_id: hb.client_id.clone(),
                subscriptions,
            };
            self.notify_group_changed(self.clients.heartbeat(joined, req.connection, now));
        }
        Ok(Reply::ok())
    }

    /// A client leaves its groups. Only the connection a membership was made on can end it
    /// (besides that connection closing): a client id named from elsewhere, in this tenant
    /// or another, changes nothing.
    pub(super) async fn unregister(&self, req: &Req<'_>) -> Handled<Reply> {
        let f = Fields(&req.ext_fields);
        let client = f.str("clientID")?;
        if let Some(g) = f.opt("producerGroup").filter(|g| !g.is_empty()) {
            let named = req.name(g);
            let tenant = self.admit(req, "UnregisterClient", &[named.group(Actions::default())])?;
            self.clients
                .producer_leave(&tenant, &named.name, client, req.connection);
        }
        if let Some(g) = f.opt("consumerGroup").filter(|g| !g.is_empty()) {
            let named = req.name(g);
            let tenant = self.admit(req, "UnregisterClient", &[named.group(Actions::default())])?;
            self.notify_group_changed(self.clients.leave(&tenant, &named.name, client, Some(req.connection)));
        }
        Ok(Reply::ok())
    }

    pub(super) fn consumer_list(&self, req: &Req<'_>) -> Handled<Reply> {
        let named = req.name(Fields(&req.ext_fields).str("consumerGroup")?);
        let tenant = self.admit(req, "GetConsumerList", &[named.group(Actions::SUB)])?;
        let ids = self.clients.members(&tenant, &named.name, Instant::now());
        Ok(Reply::ok().body(json!({ "consumerIdList": ids }).to_string()))
    }

    pub(super) async fn pull(&self, req: &Req<'_>) -> Handled<Reply> {
        let query = self.query()?;
        let f = Fields(&req.ext_fields);
        let raw_topic = f.str("topic")?.to_string();
        let (sub, queue) = self.consumer_queue(req, "PullMessage")?;
        self.front
            .gate
            .admit_receive(&sub.tenant)
            .await
            .map_err(|e| Refusal::from_auth(&e))?;
        let offset: i64 = f.num("queueOffset")?;
        let max: usize = f.num_or("maxMsgNums", 32)?;
        let sys_flag: i32 = f.num_or("sysFlag", 0)?;
        if sys_flag & PULL_COMMIT_OFFSET != 0 {
            let commit: i64 = f.num_or("commitOffset", -1)?;
            if commit >= 0 {
                query
                    .update_offset(&sub, queue, commit)
                    .await
                    .map_err(|e| Refusal::from_query(&e))?;
            }
        }
        let filter = if sys_flag & PULL_SUBSCRIPTION != 0 {
            filter(f.opt("subscription").unwrap_or("*"), f.opt("expressionType"))?
        } else {
            match self.clients.subscription(&sub.tenant, &sub.group, &sub.topic) {
                Some((expression, kind)) => filter(&expression, Some(&kind))?,
                None => Filter::All,
            }
        };
        let long_polling = if sys_flag & PULL_SUSPEND != 0 {
            Duration::from_millis(f.num_or("suspendTimeoutMillis", 0)?)
        } else {
            Duration::ZERO
        };
        let at = QueueRef {
            tenant: sub.tenant.clone(),
            topic: sub.topic.clone(),
            queue,
        };
        let pull = PullRequest {
            queue: at.clone(),
            group: sub.group.clone(),
            offset,
            batch_size: max.max(1),
            filter,
            long_polling,
        };
        let pulled = match query.pull(&pull).await {
            Ok(p) => p,
            Err(strata_query::Error::IllegalOffset(why)) => {
                // Apache's OFFSET_TOO_SMALL / OVERFLOW_BADLY: tell the client where to go.
                let first = self.offset_at(&at, Position::Beginning).await?;
                let end = self.offset_at(&at, Position::End).await?;
                let next = if offset < first { first } else { end };
                return Ok(Reply::ok()
                    .field("nextBeginOffset", next)
                    .field("minOffset", first)
                    .field("maxOffset", end)
                    .field("suggestWhichBrokerId", 0)
                    .with_code(response::PULL_OFFSET_MOVED, why));
            }
            Err(e) => return Err(Refusal::from_query(&e)),
        };
        let reply = |next: i64| {
            Reply::ok()
                .field("nextBeginOffset", next)
                .field("minOffset", pulled.min_offset)
                .field("maxOffset", pulled.max_offset)
                .field("suggestWhichBrokerId", 0)
        };
        if pulled.messages.is_empty() {
            return Ok(if pulled.next_offset > offset {
                reply(pulled.next_offset).with_code(response::PULL_RETRY_IMMEDIATELY, "no message matched the filter")
            } else {
                reply(pulled.next_offset).with_code(response::PULL_NOT_FOUND, "no new message")
            });
        }
        // At most PULL_REPLY_BYTES (always one message): the rest waits for the next pull.
        let mut body = BytesMut::new();
        let mut sent = 0;
        for (o, r) in &pulled.messages {
            if sent > 0 && body.len() + r.body.len() > PULL_REPLY_BYTES {
                break;
            }
            let stored = to_stored(&raw_topic, queue, *o, r, self.broker.store_host);
            encode_stored(&stored, &mut body)?;
            sent += 1;
        }
        let next = pulled.messages.get(sent).map_or(pulled.next_offset, |(o, _)| *o);
        let sizes = pulled.messages[..sent].iter().map(|(_, r)| r.body.len());
        self.front.gate.delivered(&sub.tenant, sizes).await;
        let reply = reply(next);
        Ok(reply.body(body.freeze()))
    }

    pub(super) async fn offset_at(&self, at: &QueueRef, position: Position) -> Handled<i64> {
        self.query()?
            .query_offset(at, position)
            .await
            .map_err(|e| Refusal::from_query(&e))
    }

    pub(super) async fn query_consumer_offset(&self, req: &Req<'_>) -> Handled<Reply> {
        let (sub, queue) = self.consumer_queue(req, "QueryConsumerOffset")?;
        match self.query()?.committed_offset(&sub, queue).await {
            Ok(o) => Ok(Reply::ok().field("offset", o)),
            Err(strata_query::Error::OffsetNotFound { .. }) => {
                // Apache's rule: a group new to a queue that has lost nothing to retention
                // starts at 0, so the first messages of a new topic are not skipped.
                let at = QueueRef {
                    tenant: sub.tenant,
                    topic: sub.topic,
                    queue,
                };
                if self.offset_at(&at, Position::Beginning).await? == 0 {
                    Ok(Reply::ok().field("offset", 0))
                } else {
                    Err(Refusal::new(
                        response::QUERY_NOT_FOUND,
                        "the group has no offset on this queue",
                    ))
                }
            }
            Err(e) => Err(Refusal::from_query(&e)),
        }
    }

    pub(super) async fn update_consumer_offset(&self, req: &Req<'_>) -> Handled<Reply> {
        let f = Fields(&req.ext_fields);
        let (sub, queue) = self.consumer_queue(req, "UpdateConsumerOffset")?;
        let offset: i64 = f.num("commitOffset")?;
        self.query()?
            .update_offset(&sub, queue, offset)
            .await
            .map_err(|e| Refusal::from_query(&e))?;
        Ok(Reply::ok())
    }

    /// GET_MIN_OFFSET, GET_MAX_OFFSET and SEARCH_OFFSET_BY_TIMESTAMP.
    pub(super) async fn queue_offset(&self, req: &Req<'_>) -> Handled<Reply> {
        let f = Fields(&req.ext_fields);
        let at = self.queue_ref(req, "GetOffset")?;
        let position = match req.code {
            request::GET_MIN_OFFSET => Position::Beginning,
            request::GET_MAX_OFFSET => Position::End,
            _ => Position::Timestamp(f.num("timestamp")?),
        };
        Ok(Reply::ok().field("offset", self.offset_at(&at, position).await?))
    }

    pub(super) async fn earliest_store_time(&self, req: &Req<'_>) -> Handled<Reply> {
        let at = self.queue_ref(req, "GetEarliestMsgStoretime")?;
        let first = self.offset_at(&at, Position::Beginning).await?;
        let record = self
            .query()?
            .read_at(&at, first)
            .await
            .map_err(|e| Refusal::from_query(&e))?;
        let record = record.ok_or_else(|| Refusal::new(response::SYSTEM_ERROR, "the queue holds no message"))?;
        Ok(Reply::ok().field("timestamp", record.store_timestamp_ms))
    }

    /// The queue a request names by `topic` and `queueId`.
    fn queue_ref(&self, req: &Req<'_>, rpc: &str) -> Handled<QueueRef> {
        let f = Fields(&req.ext_fields);
        let topic = req.name(f.str("topic")?);
        let tenant = self.admit(req, rpc, &[topic.topic(Actions::SUB)])?;
        Ok(QueueRef {
            tenant,
            topic: topic.name,
            queue: f.num("queueId")?,
        })
    }

    fn lock_request(&self, req: &Req<'_>, rpc: &str) -> Handled<LockRequest> {
        let body: LockBody = json_body(req)?;
        if body.mq_set.len() > MAX_LOCK_QUEUES {
            return Err(Refusal::new(
                response::SYSTEM_ERROR,
                format!(
                    "{} queues in one lock request; at most {MAX_LOCK_QUEUES}",
                    body.mq_set.len()
                ),
            ));
        }
        let group = req.name(&body.consumer_group);
        let topics: Vec<Named> = body.mq_set.iter().map(|q| req.name(&q.topic)).collect();
        let needs: Vec<Need<'_>> = std::iter::once(group.group(Actions::SUB))
            .chain(topics.iter().map(|t| t.topic(Actions::SUB)))
            .collect();
        let tenant = self.admit(req, rpc, &needs)?;
        let queues = topics
            .into_iter()
            .zip(&body.mq_set)
            .map(|(t, q)| (t.name, q.queue_id))
            .collect();
        Ok(LockRequest {
            tenant,
            group,
            body,
            queues,
        })
    }

    pub(super) fn lock(&self, req: &Req<'_>) -> Handled<Reply> {
        let r = self.lock_request(req, "LockBatchMq")?;
        let held = self
            .clients
            .lock(&r.tenant, &r.group.name, &r.body.client_id, &r.queues, Instant::now());
        let locked: Vec<&QueueData> = held.iter().filter_map(|&i| r.body.mq_set.get(i)).collect();
        Ok(Reply::ok().body(json!({ "lockOKMQSet": locked }).to_string()))
    }

    pub(super) fn unlock(&self, req: &Req<'_>) -> Handled<Reply> {
        let r = self.lock_request(req, "UnlockBatchMq")?;
        self.clients
            .unlock(&r.tenant, &r.group.name, &r.body.client_id, &r.queues);
        Ok(Reply::ok())
    }
}
