//! Sends: SEND_MESSAGE (V2, batches) and CONSUMER_SEND_MSG_BACK (retries, then the DLQ).

use std::collections::BTreeMap;

use strata_ingest::{Ingest, SendOptions, SendReceipt};
use strata_meta::accounts::Actions;
use strata_meta::model::{MessageType, QueueRef, Roles, dead_letter_topic, retry_topic};
use strata_proto::v2;
use strata_remoting::codes::{request, response};
use strata_remoting::message::{
    SYSFLAG_COMPRESSED, decode_batch, inflate, offset_message_id, parse_properties, property as p,
};
use strata_tenancy::Need;

use strata_query::convert::timestamp;

use super::convert::{Sent, commit_log_offset, delay_of_level, from_commit_log_offset, to_message};
use super::fields::{Fields, Handled, Refusal};
use super::{Remoting, Reply, Req};
use crate::gate::Producer;

/// SEND_MESSAGE_V2 names its fields a, b, c…: the long names, in that order.
const V2_FIELDS: [(&str, &str); 13] = [
    ("a", "producerGroup"),
    ("b", "topic"),
    ("c", "defaultTopic"),
    ("d", "defaultTopicQueueNums"),
    ("e", "queueId"),
    ("f", "sysFlag"),
    ("g", "bornTimestamp"),
    ("h", "flag"),
    ("i", "properties"),
    ("j", "reconsumeTimes"),
    ("k", "unitMode"),
    ("l", "maxReconsumeTimes"),
    ("m", "batch"),
];

/// A client's retries before its message goes to the DLQ when it does not say (Apache's).
const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;

fn send_fields(req: &Req<'_>) -> BTreeMap<String, String> {
    if req.code != request::SEND_MESSAGE_V2 {
        return req.ext_fields.clone();
    }
    let mut fields = req.ext_fields.clone();
    for (short, long) in V2_FIELDS {
        if let Some(v) = fields.remove(short) {
            fields.insert(long.to_string(), v);
        }
    }
    fields
}

impl Remoting {
    pub(super) fn ingest(&self) -> Handled<&Ingest> {
        self.front.ingest.as_deref().ok_or_else(|| {
            Refusal::new(
                response::SERVICE_NOT_AVAILABLE,
                format!("this node runs no {} role", Roles::INGEST.names().join("+")),
            )
        })
    }

    pub(super) async fn send(&self, req: &Req<'_>) -> Handled<Reply> {
        let ingest = self.ingest()?;
        let fields = send_fields(req);
        let f = Fields(&fields);
        let named = req.name(f.str("topic")?);
        self.admit(req, "SendMessage", &[named.topic(Actions::PUB)])?;
        let topic = self.topic(&named.tenant, &named.name).await?;
        let queue: i32 = f.num_or("queueId", -1)?;
        let sys_flag: i32 = f.num_or("sysFlag", 0)?;
        let now = self.front.catalog.clock().now_ms();
        let born: i64 = f.num_or("bornTimestamp", now)?;
        let batch = f.flag("batch") || req.code == request::SEND_BATCH_MESSAGE;
        let body = if sys_flag & SYSFLAG_COMPRESSED != 0 {
            let limit = if batch { self.max_frame } else { ingest.max_body_bytes() };
            inflate(&req.body, limit).map_err(|e| Refusal::new(response::MESSAGE_ILLEGAL, e.to_string()))?
        } else {
            req.body.clone()
        };
        let entries = if batch {
            decode_batch(body)
                .map_err(|e| Refusal::new(response::MESSAGE_ILLEGAL, format!("batch body: {e}")))?
                .into_iter()
                .map(|e| (e.body, e.properties))
                .collect()
        } else {
            vec![(body, parse_properties(f.opt("properties").unwrap_or_default()))]
        };
        let resource = v2::Resource {
            resource_namespace: named.tenant.clone(),
            name: named.name.clone(),
        };
        let messages: Vec<v2::Message> = entries
            .into_iter()
            .map(|(body, properties)| {
                to_message(Sent {
                    topic: &resource,
                    body,
                    properties,
                    born_timestamp_ms: born,
                    born_host: req.peer.to_string(),
                    queue,
                    fifo_topic: topic.message_type == MessageType::Fifo,
                    now_ms: now,
                })
            })
            .collect();
        if messages.is_empty() {
            return Err(Refusal::new(response::MESSAGE_ILLEGAL, "the batch holds no message"));
        }
        let options = SendOptions {
            queue: (queue >= 0).then_some(queue),
            reserved_properties: true,
        };
        let receipts = self
            .store(ingest, &named.tenant, &messages, &options, Some(req.peer))
            .await?;
        if receipts.iter().any(|r| r.transaction_id.is_some()) {
            let group = req.name(f.opt("producerGroup").unwrap_or_default()).name;
            self.clients.transactional(&named.tenant, &named.name, &group);
        }
        let ids: Vec<String> = receipts
            .iter()
            .map(|r| {
                let clo = commit_log_offset(&named.name, r.queue, r.offset.unwrap_or_default());
                offset_message_id(self.broker.store_host, clo)
            })
            .collect();
        let first = &receipts[0];
        let mut reply = Reply::ok()
            .field("msgId", ids.join(","))
            .field("queueId", first.queue)
            .field("queueOffset", first.offset.unwrap_or_default())
            .field("MSG_REGION", "DefaultRegion")
            .field("TRACE_ON", "true");
        if let Some(id) = &first.transaction_id {
            reply = reply.field("transactionId", id);
        }
        Ok(reply)
    }

    /// Admits, stores and meters messages, and traces those a producer at `producer` sent
    /// (None: a consumer's send-back); the first refusal if any message was refused.
    async fn store(
        &self,
        ingest: &Ingest,
        tenant: &str,
        messages: &[v2::Message],
        options: &SendOptions,
        producer: Option<std::net::SocketAddr>,
    ) -> Handled<Vec<SendReceipt>> {
        let weights = messages.iter().map(strata_ingest::record::weight);
        let gate = &self.front.gate;
        let charge = gate
            .admit_send(tenant, weights)
            .await
            .map_err(|e| Refusal::from_auth(&e))?;
        let started = std::time::Instant::now();
        let results = ingest.send_with(tenant, messages, options).await;
        let producer = producer.map(|peer| Producer {
            client: None,
            host: Some(peer.ip().to_string()),
            started,
        });
        gate.sent(tenant, messages, &results, charge, producer);
        results
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Refusal::from_ingest(&e))
    }

    /// A message the consumer failed: to the group's retry topic after the back-off of its
    /// delay level, or to its DLQ once out of attempts (or when the level is negative).
    pub(super) async fn send_back(&self, req: &Req<'_>) -> Handled<Reply> {
        let ingest = self.ingest()?;
        let query = self.query()?;
        let f = Fields(&req.ext_fields);
        let group_as_sent = req.name(f.str("group")?);
        let origin = f.opt("originTopic").filter(|t| !t.is_empty()).map(|t| req.name(t));
        let mut needs = vec![group_as_sent.group(Actions::SUB)];
        needs.extend(origin.as_ref().map(|t| t.topic(Actions::SUB)));
        let tenant = self.admit(req, "ConsumerSendMsgBack", &needs)?;
        let group = group_as_sent.name.clone();
        // Clients before 2.0 send no origin topic: the group's subscriptions then say where
        // the message may be (its retry topic among them).
        let mut candidates = match &origin {
            Some(t) => vec![t.name.clone()],
            None => self.clients.topics(&tenant, &group),
        };
        candidates.push(retry_topic(&group));
        let needs: Vec<Need<'_>> = candidates.iter().map(|t| Need::topic(t, Actions::SUB)).collect();
        req.principal
            .authorize(&tenant, &needs)
            .map_err(|e| Refusal::from_auth(&e))?;
        let clo: i64 = f.num("offset")?;
        let origin_id = f.opt("originMsgId").unwrap_or_default();
        let mut found = None;
        for topic in candidates {
            let Some((queue, offset)) = from_commit_log_offset(&topic, clo) else {
                continue;
            };
            let at = QueueRef {
                tenant: tenant.clone(),
                topic: topic.clone(),
                queue,
            };
            match query.read_at(&at, offset).await {
                Ok(Some(r)) if origin_id.is_empty() || r.message_id == origin_id => {
                    found = Some((topic, r));
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(Refusal::from_query(&e)),
            }
        }
        let (topic, record) = found.ok_or_else(|| {
            Refusal::new(
                response::SYSTEM_ERROR,
                format!("no message of group {group} at commit-log offset {clo}"),
            )
        })?;
        let prop = |k: &str| record.user_properties.get(k).cloned();
        // Client-set numbers: any i32 (i32::MAX included) works out without overflowing.
        let attempts: i32 = prop(p::RECONSUME_TIME)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0)
            .max(0)
            .saturating_add(1);
        let max: i32 = f.num_or("maxReconsumeTimes", DEFAULT_MAX_RECONSUME_TIMES)?;
        let level: i32 = f.num_or("delayLevel", 0)?;
        let now = self.front.catalog.clock().now_ms();
        let (target, delivery) = if level < 0 || attempts > max {
            (dead_letter_topic(&group), None)
        } else {
            let level = if level == 0 { attempts.saturating_add(2) } else { level };
            let delay = delay_of_level(level).unwrap_or_default();
            (retry_topic(&group), Some(now.saturating_add(delay.as_millis() as i64)))
        };
        // Created on first use (the catalog makes the broker's own topics).
        self.topic(&tenant, &target).await?;
        let mut props = record.user_properties.clone();
        props
            .entry(p::RETRY_TOPIC.into())
            .or_insert_with(|| group_as_sent.client_name(&topic));
        props
            .entry(p::ORIGIN_MESSAGE_ID.into())
            .or_insert_with(|| record.message_id.clone());
        props.insert(p::RECONSUME_TIME.into(), attempts.to_string());
        props.insert(p::MAX_RECONSUME_TIMES.into(), max.to_string());
        let message = v2::Message {
            topic: Some(v2::Resource {
                resource_namespace: tenant.clone(),
                name: target,
            }),
            user_properties: props,
            system_properties: Some(v2::SystemProperties {
                tag: record.tag.clone(),
                keys: record.keys.clone(),
                message_id: record.message_id.clone(),
                born_timestamp: Some(timestamp(record.born_timestamp_ms)),
                born_host: record.born_host.clone(),
                delivery_timestamp: delivery.map(timestamp),
                ..Default::default()
            }),
            body: record.body.clone(),
        };
        let options = SendOptions {
            queue: None,
            reserved_properties: true,
        };
        self.store(ingest, &tenant, &[message], &options, None).await?;
        Ok(Reply::ok())
    }
}
