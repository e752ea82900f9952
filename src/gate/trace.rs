//! What the gate tells the message trace (crate::trace) for every front alike: one helper per
//! kind of request that changes a message's state, called after the role did its work.

use std::time::Instant;

use strata_ingest::SendReceipt;
use strata_meta::model::Subscription;
use strata_proto::v2;
use strata_query::Delivered;
use strata_tenancy::Charge;

use super::Gate;
use crate::trace::Kind;

/// Who sent messages, for their trace.
pub struct Producer<'a> {
    pub client: Option<&'a str>,
    pub host: Option<String>,
    /// When the send reached the role (the trace's latency).
    pub started: Instant,
}

impl Gate {
    /// After a send: meters the messages stored under the send's `charge` and, for a
    /// producer's own send (not a consumer's send-back), traces `sent` (who, from where, how
    /// long it took) and `stored` (where) per message.
    pub fn sent(
        &self,
        tenant: &str,
        messages: &[v2::Message],
        results: &[strata_ingest::Result<SendReceipt>],
        charge: Charge,
        producer: Option<Producer<'_>>,
    ) {
        let stored: Vec<(&v2::Message, &SendReceipt)> = messages
            .iter()
            .zip(results)
            .filter_map(|(m, r)| Some((m, r.as_ref().ok()?)))
            .collect();
        let bytes = stored.iter().map(|(m, _)| m.body.len() as u64).sum();
        self.meter.sent(tenant, stored.len() as u64, bytes, charge);
        let Some(producer) = producer.filter(|_| self.tracer.enabled()) else {
            return;
        };
        let latency = producer.started.elapsed().as_millis() as i64;
        for (m, receipt) in stored {
            let topic = m.topic.as_ref().map_or("", |t| t.name.as_str());
            let mut e = self.tracer.event(Kind::Sent, &receipt.message_id, topic);
            e.client = producer.client.map(str::to_string);
            e.host = producer.host.clone();
            e.latency_ms = Some(latency);
            self.tracer.record(tenant, e);
            let mut e = self.tracer.event(Kind::Stored, &receipt.message_id, topic);
            e.queue = Some(receipt.queue);
            e.offset = receipt.offset;
            e.object = receipt.object.as_deref().map(str::to_string);
            self.tracer.record(tenant, e);
        }
    }

    /// A receive: `delivered` (first attempt) or `retried` per message.
    pub fn trace_delivered(&self, tenant: &str, group: &str, client: Option<&str>, topic: &str, found: &[Delivered]) {
        if !self.tracer.enabled() {
            return;
        }
        for d in found {
            let kind = if d.attempt > 1 { Kind::Retried } else { Kind::Delivered };
            let mut e = self.tracer.event(kind, &d.record.message_id, topic);
            e.group = Some(group.to_string());
            e.client = client.map(str::to_string);
            e.attempt = Some(d.attempt);
            e.queue = Some(d.queue);
            e.offset = Some(d.offset);
            e.invisible_ms = Some(d.invisible.as_millis() as i64);
            self.tracer.record(tenant, e);
        }
    }

    /// A state change a consumer asked for on one message: acked, invisible time changed,
    /// dead-lettered.
    pub fn trace_consumer(
        &self,
        kind: Kind,
        sub: &Subscription,
        client: Option<&str>,
        message_id: &str,
        invisible_ms: Option<i64>,
    ) {
        let mut e = self.tracer.event(kind, message_id, &sub.topic);
        e.group = Some(sub.group_name().to_string());
        e.client = client.map(str::to_string);
        e.invisible_ms = invisible_ms;
        self.tracer.record(&sub.tenant, e);
    }

    /// A producer's own action on one message: committed, rolled back, recalled.
    pub fn trace_producer(&self, kind: Kind, tenant: &str, topic: &str, client: Option<&str>, message_id: &str) {
        let mut e = self.tracer.event(kind, message_id, topic);
        e.client = client.map(str::to_string);
        self.tracer.record(tenant, e);
    }
}
