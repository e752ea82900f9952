//! What `strata bench` prints: per phase rates, latency percentiles, requests and
//! transactions per 1,000 messages, RSS; the floor; and each figure beside the floor.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use strata_proto::admin as api;

use super::BenchArgs;
use super::load::{Counters, Plan};

/// Latencies in µs, 1 µs to 1 h, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    fn of_micros(samples: &[u64]) -> Self {
        let mut h = histogram();
        for s in samples {
            let _ = h.record((*s).max(1));
        }
        Self::of(&h)
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms  max {:.2} ms",
            self.p50, self.p99, self.p999, self.max
        )
    }
}

/// One phase of a run: what it moved and what it cost the broker.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub seconds: f64,
    pub sent: u64,
    pub send_errors: u64,
    pub sent_per_s: f64,
    pub sent_mb_per_s: f64,
    pub received: u64,
    /// Received again (at-least-once delivery: counted, allowed).
    pub duplicates: u64,
    /// Sent (in this phase or the backlog it drains) and never received.
    pub missing: u64,
    pub ack_errors: u64,
    /// Receives refused or failed (not "no message").
    pub receive_errors: u64,
    pub received_per_s: f64,
    pub received_mb_per_s: f64,
    pub send_latency_ms: Percentiles,
    /// From the send to the delivery (in a drain: the backlog's age).
    pub end_to_end_ms: Percentiles,
    /// Object store requests by kind during the phase.
    pub store_requests: HashMap<String, u64>,
    pub puts_per_1k_sent: f64,
    pub gets_per_1k_received: f64,
    pub coordinator_transactions: u64,
    pub coordinator_writes: u64,
    /// Transactions per 1,000 messages moved (received, or sent where nothing was received).
    pub transactions_per_1k_messages: f64,
    pub writes_per_1k_messages: f64,
    pub broker_rss_bytes: u64,
    #[serde(skip)]
    size: usize,
}

fn per_1k(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 * 1000.0 / of as f64 }
}

impl Phase {
    pub fn measure(
        name: &'static str,
        c: &Counters,
        took: Duration,
        size: usize,
        before: &api::StatsResponse,
        after: &api::StatsResponse,
    ) -> Self {
        let secs = took.as_secs_f64().max(1e-9);
        let sent = c.sent.load(Ordering::Relaxed);
        let received = c.received.load(Ordering::Relaxed);
        let mb = |n: u64| n as f64 * size as f64 / secs / 1e6;
        let store_requests: HashMap<String, u64> = after
            .store_requests
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.saturating_sub(before.store_requests.get(k).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, v)| *v > 0)
            .collect();
        let tx = after
            .coordinator_transactions
            .saturating_sub(before.coordinator_transactions);
        let writes = after.coordinator_writes.saturating_sub(before.coordinator_writes);
        let moved = if received > 0 { received } else { sent };
        let lock = |h: &std::sync::Mutex<Histogram<u64>>| Percentiles::of(&h.lock().unwrap_or_else(|p| p.into_inner()));
        let expected = c.backlog + if received > 0 || c.backlog > 0 { sent } else { 0 };
        Self {
            name,
            seconds: secs,
            sent,
            send_errors: c.send_errors.load(Ordering::Relaxed),
            sent_per_s: sent as f64 / secs,
            sent_mb_per_s: mb(sent),
            received,
            duplicates: c.duplicates.load(Ordering::Relaxed),
            missing: expected.saturating_sub(received),
            ack_errors: c.ack_errors.load(Ordering::Relaxed),
            receive_errors: c.receive_errors.load(Ordering::Relaxed),
            received_per_s: received as f64 / secs,
            received_mb_per_s: mb(received),
            send_latency_ms: lock(&c.send_latency),
            end_to_end_ms: lock(&c.e2e_latency),
            puts_per_1k_sent: per_1k(store_requests.get("put").copied().unwrap_or(0), sent),
            gets_per_1k_received: per_1k(store_requests.get("get").copied().unwrap_or(0), received),
            store_requests,
            coordinator_transactions: tx,
            coordinator_writes: writes,
            transactions_per_1k_messages: per_1k(tx, moved),
            writes_per_1k_messages: per_1k(writes, moved),
            broker_rss_bytes: after.rss_bytes,
            size,
        }
    }

    /// The average object a flush wrote in this phase (what the floor PUTs).
    pub fn bytes_per_put(&self) -> u64 {
        let puts = self.store_requests.get("put").copied().unwrap_or(0).max(1);
        (self.sent * self.size as u64) / puts
    }
}

/// Raw requests on the broker's own store and coordinator.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub object_bytes: u64,
    pub put_ms: Percentiles,
    pub get_ms: Percentiles,
    pub commit_ms: Percentiles,
}

impl Floor {
    pub fn from_samples(object_bytes: u64, r: &api::FloorResponse) -> Self {
        Self {
            object_bytes,
            put_ms: Percentiles::of_micros(&r.put_micros),
            get_ms: Percentiles::of_micros(&r.get_micros),
            commit_ms: Percentiles::of_micros(&r.commit_micros),
        }
    }
}

/// A phase's figures beside the floor (the targets, computed).
#[derive(Clone, Debug, Serialize)]
pub struct VersusFloor {
    pub phase: &'static str,
    /// send p50 − (PUT p50 + commit p50): the target is ≤ 1 ms for one sync producer.
    pub send_p50_above_floor_ms: f64,
    /// send p50 ÷ (PUT p50 + commit p50).
    pub send_p50_ratio: f64,
    /// 2 × send p99 + GET p99 + 10 ms: what end-to-end p99 should stay under.
    pub e2e_p99_budget_ms: f64,
    pub e2e_p99_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub producers: usize,
    pub consumers: usize,
    pub size: usize,
    pub batch: usize,
    pub inflight: usize,
    pub receive_batch: i32,
    pub ack_batch: usize,
    pub message_type: String,
    pub rate: f64,
    pub duration_s: f64,
    pub topic: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub settings: Settings,
    pub phases: Vec<Phase>,
    pub floor: Option<Floor>,
    pub versus_floor: Vec<VersusFloor>,
}

impl Report {
    pub fn new(args: &BenchArgs, plan: &Plan, phases: Vec<Phase>, floor: Option<Floor>) -> Self {
        let versus_floor = floor
            .iter()
            .flat_map(|f| {
                phases.iter().filter(|p| p.sent > 0).map(move |p| {
                    let floor_ms = f.put_ms.p50 + f.commit_ms.p50;
                    VersusFloor {
                        phase: p.name,
                        send_p50_above_floor_ms: p.send_latency_ms.p50 - floor_ms,
                        send_p50_ratio: p.send_latency_ms.p50 / floor_ms.max(1e-6),
                        e2e_p99_budget_ms: 2.0 * p.send_latency_ms.p99 + f.get_ms.p99 + 10.0,
                        e2e_p99_ms: p.end_to_end_ms.p99,
                    }
                })
            })
            .collect();
        Self {
            settings: Settings {
                producers: args.producers,
                consumers: args.consumers,
                size: args.size,
                batch: args.batch,
                inflight: args.inflight,
                receive_batch: args.receive_batch,
                ack_batch: args.ack_batch,
                message_type: format!("{:?}", args.kind).to_lowercase(),
                rate: args.rate,
                duration_s: Duration::from(args.duration).as_secs_f64(),
                topic: plan.topic.clone(),
            },
            phases,
            floor,
            versus_floor,
        }
    }

    pub fn text(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "strata bench: {} producers × {} consumers, {} B {} messages, batch {}, in flight {}, receive {}, ack {}, topic {}",
            s.producers,
            s.consumers,
            s.size,
            s.message_type,
            s.batch,
            s.inflight,
            s.receive_batch,
            s.ack_batch,
            s.topic
        );
        for p in &self.phases {
            let _ = writeln!(out, "\n[{}] {:.1} s", p.name, p.seconds);
            if p.sent > 0 || p.send_errors > 0 {
                let _ = writeln!(
                    out,
                    "  sent      {:>10} msgs  {:>10.0} msg/s  {:>7.2} MB/s  errors {}",
                    p.sent, p.sent_per_s, p.sent_mb_per_s, p.send_errors
                );
                let _ = writeln!(out, "  send      {}", p.send_latency_ms.line());
            }
            if p.received > 0 {
                let _ = writeln!(
                    out,
                    "  received  {:>10} msgs  {:>10.0} msg/s  {:>7.2} MB/s  duplicates {}  missing {}  errors: ack {} receive {}",
                    p.received,
                    p.received_per_s,
                    p.received_mb_per_s,
                    p.duplicates,
                    p.missing,
                    p.ack_errors,
                    p.receive_errors
                );
                let _ = writeln!(out, "  e2e       {}", p.end_to_end_ms.line());
            }
            let mut requests: Vec<_> = p.store_requests.iter().collect();
            requests.sort();
            let _ = writeln!(
                out,
                "  store     {}  ({:.1} PUT/1k sent, {:.1} GET/1k received)",
                requests
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                p.puts_per_1k_sent,
                p.gets_per_1k_received
            );
            let _ = writeln!(
                out,
                "  coord     {} transactions ({} writes): {:.1} per 1k messages ({:.1} writes)",
                p.coordinator_transactions,
                p.coordinator_writes,
                p.transactions_per_1k_messages,
                p.writes_per_1k_messages
            );
            let _ = writeln!(
                out,
                "  broker    RSS {:.1} MiB",
                p.broker_rss_bytes as f64 / (1 << 20) as f64
            );
        }
        if let Some(f) = &self.floor {
            let _ = writeln!(out, "\n[floor] objects of {} B", f.object_bytes);
            let _ = writeln!(out, "  PUT       {}", f.put_ms.line());
            let _ = writeln!(out, "  GET       {}", f.get_ms.line());
            let _ = writeln!(out, "  commit    {}", f.commit_ms.line());
            for v in &self.versus_floor {
                let _ = writeln!(
                    out,
                    "  [{}] send p50 = {:.2}× floor ({:+.2} ms); e2e p99 {:.2} ms vs budget {:.2} ms",
                    v.phase, v.send_p50_ratio, v.send_p50_above_floor_ms, v.e2e_p99_ms, v.e2e_p99_budget_ms
                );
            }
        }
        out
    }
}
