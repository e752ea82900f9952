//! Server-side message trace (docs/operations.md, "Message trace"): the nodes record what
//! happens to each message — sent, stored, delivered (and retried), acked, invisible time
//! changed, dead-lettered, transaction committed or rolled back, timer fired, recalled — as
//! messages of the tenant's trace topic, keyed by message id: stored, indexed, compacted and
//! archived like any topic. Apache RocketMQ's proxy records nothing for gRPC clients; here
//! no client has to.
//!
//! Recording never waits: an event goes into a bounded queue (dropped, and counted, when it
//! is full) and a writer task sends what gathered once per `flush_interval`, one send per
//! tenant, so tracing costs one extra flush per node and interval, nothing per message on
//! the coordinator.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_ingest::Ingest;
use strata_meta::model::{HeldRecord, MessageType, QueueRef, Subscription, TopicSpec};
use strata_meta::{Catalog, Clock, Error as MetaError};
use strata_proto::v2;
use strata_query::DeadLetterHook;
use strata_query::reader::Reader;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

/// The trace topic of each tenant (Apache RocketMQ's default trace topic name).
pub const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";
/// Queues of a trace topic created by the broker.
const TRACE_QUEUES: i32 = 4;

/// Trace settings (`[trace]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConfig {
    /// Record message lifecycles (default true). Each topic has its own switch too
    /// (`strata topic update T --trace off`).
    pub enabled: bool,
    /// How often a node writes the events it gathered (default 1 s): one flush (a PUT and a
    /// commit) per node and interval while there are events; events show up in a trace up to
    /// this late.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Events a node holds before it drops new ones (default 100,000, ~30 MiB): a stalled
    /// store costs traces, never sends or receives.
    pub max_pending: usize,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            flush_interval: Duration::from_secs(1),
            max_pending: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Sent,
    Stored,
    Delivered,
    /// Delivered again (attempt 2 and later).
    Retried,
    Acked,
    InvisibleChanged,
    DeadLettered,
    Committed,
    RolledBack,
    TimerFired,
    Recalled,
}

/// One thing that happened to a message. Stored as JSON, the body of a trace message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: Kind,
    pub message_id: String,
    pub topic: String,
    pub time_ms: i64,
    /// The node that recorded it.
    pub node: String,
    /// Orders the events one node recorded within a millisecond.
    #[serde(default)]
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// The WAL object it was stored in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The producer's or consumer's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Where the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How long the broker took to answer the send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    /// The invisible time asked for (delivered, invisible time changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invisible_ms: Option<i64>,
}

/// Records events; cheap to clone into every front.
#[derive(Clone)]
pub struct Tracer {
    tx: Option<mpsc::Sender<(String, Event)>>,
    node: String,
    clock: Arc<dyn Clock>,
    seq: Arc<AtomicU64>,
}

impl Tracer {
    /// A tracer that records nothing.
    pub fn off(clock: Arc<dyn Clock>) -> Self {
        Self {
            tx: None,
            node: String::new(),
            clock,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// An event of `kind` for a message, now, on this node.
    pub fn event(&self, kind: Kind, message_id: &str, topic: &str) -> Event {
        Event {
            event: kind,
            message_id: message_id.to_string(),
            topic: topic.to_string(),
            time_ms: self.clock.now_ms(),
            node: self.node.clone(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            queue: None,
            offset: None,
            object: None,
            client: None,
            host: None,
            latency_ms: None,
            group: None,
            attempt: None,
            invisible_ms: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an event of `tenant`'s message; drops it if the queue is full.
    pub fn record(&self, tenant: &str, event: Event) {
        let Some(tx) = &self.tx else { return };
        if event.topic == TRACE_TOPIC || event.message_id.is_empty() {
            return;
        }
        if tx.try_send((tenant.to_string(), event)).is_err() {
            metrics::counter!("strata_trace_dropped_total").increment(1);
        }
    }

    /// The timers that fired.
    pub fn timers_fired(&self, fired: &[HeldRecord]) {
        for h in fired {
            let mut e = self.event(Kind::TimerFired, &h.message_id, &h.queue.topic);
            e.queue = Some(h.queue.queue);
            self.record(&h.queue.tenant, e);
        }
    }

    /// Records the messages receives move to dead-letter topics, reading their ids with
    /// `reader` off the receive's path (dead-lettering is rare).
    pub fn dead_letter_hook(&self, reader: Reader) -> DeadLetterHook {
        let tracer = self.clone();
        Arc::new(move |sub: &Subscription, moved: Vec<(i32, i64)>| {
            let (tracer, reader, sub) = (tracer.clone(), reader.clone(), sub.clone());
            tokio::spawn(async move {
                for (queue, offset) in moved {
                    let at = QueueRef {
                        tenant: sub.tenant.clone(),
                        topic: sub.topic.clone(),
                        queue,
                    };
                    let Ok(read) = reader.read(&at, offset, offset + 1).await else {
                        continue;
                    };
                    for (_, record) in read.records {
                        let mut e = tracer.event(Kind::DeadLettered, &record.message_id, &sub.topic);
                        e.group = Some(sub.group_name().to_string());
                        e.queue = Some(queue);
                        e.offset = Some(offset);
                        tracer.record(&sub.tenant, e);
                    }
                }
            });
        })
    }

    /// Starts the writer task; `ingest` stores the trace messages.
    pub fn spawn(
        config: &TraceConfig,
        ingest: Arc<Ingest>,
        catalog: Catalog,
        node: String,
    ) -> (Self, Option<JoinHandle<()>>) {
        let clock = Arc::clone(catalog.clock());
        if !config.enabled {
            return (Self::off(clock), None);
        }
        let (tx, rx) = mpsc::channel(config.max_pending.max(1));
        let writer = Writer {
            ingest,
            catalog,
            created: HashSet::new(),
        };
        let task = tokio::spawn(writer.run(rx, config.flush_interval));
        let tracer = Self {
            tx: Some(tx),
            node,
            clock,
            seq: Arc::new(AtomicU64::new(0)),
        };
        (tracer, Some(task))
    }
}

/// Writes gathered events to the trace topics.
struct Writer {
    ingest: Arc<Ingest>,
    catalog: Catalog,
    /// Tenants whose trace topic exists.
    created: HashSet<String>,
}

/// Events per trace message (as Apache RocketMQ's trace encoder packs them): one record and
/// one index entry per key instead of one message per event.
const EVENTS_PER_MESSAGE: usize = 64;
/// Trace messages written per send at most.
const SEND_BATCH: usize = 64;

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<(String, Event)>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut by_tenant: BTreeMap<String, Vec<Event>> = BTreeMap::new();
            while let Ok((tenant, event)) = rx.try_recv() {
                by_tenant.entry(tenant).or_default().push(event);
            }
            if rx.is_closed() && by_tenant.is_empty() {
                return;
            }
            for (tenant, events) in by_tenant {
                if let Err(e) = self.write(&tenant, events).await {
                    warn!(tenant, error = %e, "trace events lost");
                }
            }
        }
    }

    /// Sends a tenant's events (those of topics with trace on) to its trace topic.
    async fn write(&mut self, tenant: &str, events: Vec<Event>) -> Result<(), String> {
        let mut traced: HashMap<String, bool> = HashMap::new();
        let mut kept = Vec::with_capacity(events.len());
        for e in events {
            let parent = strata_meta::lite::parent_of(&e.topic).to_string();
            let on = match traced.get(&parent) {
                Some(on) => *on,
                None => {
                    // A deleted topic's events go with it (and are no reason to create it again).
                    let topic = self.catalog.coordinator().topic(tenant, &parent).await;
                    let on = matches!(topic, Ok(Some(t)) if t.trace);
                    traced.insert(parent, on);
                    on
                }
            };
            if on {
                kept.push(e);
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        self.ensure_topic(tenant).await?;
        let messages: Vec<v2::Message> = kept.chunks(EVENTS_PER_MESSAGE).map(|c| message(tenant, c)).collect();
        for chunk in messages.chunks(SEND_BATCH) {
            let messages = chunk.to_vec();
            let results = self.ingest.send(tenant, &messages).await;
            if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                return Err(e.to_string());
            }
        }
        Ok(())
    }

    async fn ensure_topic(&mut self, tenant: &str) -> Result<(), String> {
        if self.created.contains(tenant) {
            return Ok(());
        }
        let spec = TopicSpec {
            tenant: tenant.to_string(),
            name: TRACE_TOPIC.to_string(),
            message_type: MessageType::Normal,
            queue_count: TRACE_QUEUES,
            lite_ttl_ms: 0,
        };
        let now = self.catalog.clock().now_ms();
        match self.catalog.coordinator().create_topic(&spec, now).await {
            Ok(_) | Err(MetaError::AlreadyExists { .. }) => {
                self.created.insert(tenant.to_string());
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Events as a message of the trace topic: keyed by the traced messages' ids, its body the
/// events as a JSON array.
fn message(tenant: &str, events: &[Event]) -> v2::Message {
    let mut keys: Vec<String> = events.iter().map(|e| e.message_id.clone()).collect();
    keys.sort();
    keys.dedup();
    v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: tenant.to_string(),
            name: TRACE_TOPIC.to_string(),
        }),
        user_properties: Default::default(),
        system_properties: Some(v2::SystemProperties {
            message_type: v2::MessageType::Normal as i32,
            tag: Some("trace".to_string()),
            keys,
            ..Default::default()
        }),
        body: serde_json::to_vec(events).unwrap_or_default().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_with_only_what_they_know() {
        let tracer = Tracer::off(Arc::new(strata_meta::ManualClock::new(1_000)));
        let mut e = tracer.event(Kind::Delivered, "01AB", "orders");
        e.group = Some("billing".into());
        e.attempt = Some(2);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "delivered", "message_id": "01AB", "topic": "orders", "time_ms": 1000,
                               "node": "", "seq": 0, "group": "billing", "attempt": 2})
        );
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
        assert!(!tracer.enabled());
    }
}
