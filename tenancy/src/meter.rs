//! What each tenant used, counted in memory per tenant and hour until the metering task writes
//! it out (`metering`). Counters are named ([`metric`]) and kept as f64: object-store requests
//! split between tenants are fractions; counts stay exact up to 2^53.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use strata_meta::Clock;

use crate::quota::Charge;

pub const HOUR_MS: i64 = 3_600_000;

/// Counter names.
pub mod metric {
    pub const MESSAGES_IN: &str = "messages_in";
    pub const BYTES_IN: &str = "bytes_in";
    pub const MESSAGES_OUT: &str = "messages_out";
    pub const BYTES_OUT: &str = "bytes_out";
    pub const UNITS_RESERVED: &str = "units_reserved";
    pub const UNITS_BURST: &str = "units_burst";
    /// Requests refused with TOO_MANY_REQUESTS.
    pub const THROTTLED: &str = "throttled";
    /// Object-store requests attributed to the tenant (a shared WAL PUT split by bytes).
    pub const STORE_PUTS: &str = "store_puts";
    pub const STORE_GETS: &str = "store_gets";
    pub const STORAGE_GB_HOURS: &str = "storage_gb_hours";
    /// Prefix of API calls by RPC: `api.SendMessage`.
    pub const API_PREFIX: &str = "api.";
}

/// One counter of one tenant in one hour.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub tenant: String,
    /// Start of the hour, ms since the epoch (UTC).
    pub hour_ms: i64,
    pub metric: String,
    pub value: f64,
}

type Counters = BTreeMap<String, f64>;

pub struct Meter {
    clock: Arc<dyn Clock>,
    open: Mutex<HashMap<(String, i64), Counters>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meter")
    }
}

impl Meter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Adds to counters of `tenant` in the current hour.
    pub fn add(&self, tenant: &str, counts: &[(&str, f64)]) {
        let hour = self.clock.now_ms().div_euclid(HOUR_MS) * HOUR_MS;
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let counters = open.entry((tenant.to_string(), hour)).or_default();
        for (name, value) in counts {
            *counters.entry((*name).to_string()).or_default() += value;
        }
    }

    pub fn call(&self, tenant: &str, rpc: &str) {
        metrics::counter!("strata_front_requests_total", "tenant" => tenant.to_string(), "rpc" => rpc.to_string())
            .increment(1);
        self.add(tenant, &[(&format!("{}{rpc}", metric::API_PREFIX), 1.0)]);
    }

    /// A request refused with TOO_MANY_REQUESTS.
    pub fn throttled(&self, tenant: &str) {
        metrics::counter!("strata_front_throttled_total", "tenant" => tenant.to_string()).increment(1);
        self.add(tenant, &[(metric::THROTTLED, 1.0)]);
    }

    /// Messages stored for a tenant, and how their units were charged.
    pub fn sent(&self, tenant: &str, messages: u64, bytes: u64, charge: Charge) {
        metrics::counter!("strata_ingest_messages_total", "tenant" => tenant.to_string()).increment(messages);
        metrics::counter!("strata_ingest_bytes_total", "tenant" => tenant.to_string()).increment(bytes);
        self.traffic(tenant, (metric::MESSAGES_IN, metric::BYTES_IN), messages, bytes, charge);
    }

    /// Messages delivered to a tenant's consumers.
    pub fn received(&self, tenant: &str, messages: u64, bytes: u64, charge: Charge) {
        metrics::counter!("strata_query_messages_total", "tenant" => tenant.to_string()).increment(messages);
        metrics::counter!("strata_query_bytes_total", "tenant" => tenant.to_string()).increment(bytes);
        self.traffic(
            tenant,
            (metric::MESSAGES_OUT, metric::BYTES_OUT),
            messages,
            bytes,
            charge,
        );
    }

    fn traffic(&self, tenant: &str, (m, b): (&str, &str), messages: u64, bytes: u64, charge: Charge) {
        self.add(
            tenant,
            &[
                (m, messages as f64),
                (b, bytes as f64),
                (metric::UNITS_RESERVED, charge.reserved as f64),
                (metric::UNITS_BURST, charge.burst as f64),
            ],
        );
    }

    /// One object PUT shared by tenants, split by their bytes in it.
    pub fn shared_put(&self, bytes_by_tenant: &HashMap<&str, u64>) {
        let total: u64 = bytes_by_tenant.values().sum();
        for (tenant, bytes) in bytes_by_tenant {
            let share = if total == 0 { 0.0 } else { *bytes as f64 / total as f64 };
            self.add(tenant, &[(metric::STORE_PUTS, share)]);
        }
    }

    /// Takes every counter out (the metering task writes them).
    pub fn drain(&self) -> Vec<Row> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows: Vec<Row> = open
            .drain()
            .flat_map(|((tenant, hour_ms), counters)| {
                counters.into_iter().map(move |(metric, value)| Row {
                    tenant: tenant.clone(),
                    hour_ms,
                    metric,
                    value,
                })
            })
            .collect();
        rows.sort_by(|a, b| (&a.tenant, a.hour_ms, &a.metric).cmp(&(&b.tenant, b.hour_ms, &b.metric)));
        rows
    }

    /// Puts rows back (after a failed write), adding to what was counted since.
    pub fn restore(&self, rows: Vec<Row>) {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for r in rows {
            *open
                .entry((r.tenant, r.hour_ms))
                .or_default()
                .entry(r.metric)
                .or_default() += r.value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_meta::ManualClock;

    #[test]
    fn counts_per_tenant_and_hour() {
        let clock = ManualClock::new(10 * HOUR_MS + 5);
        let meter = Meter::new(Arc::new(clock.clone()));
        meter.call("a", "SendMessage");
        meter.sent("a", 2, 9000, Charge { reserved: 1, burst: 3 });
        meter.shared_put(&HashMap::from([("a", 300), ("b", 100)]));
        clock.advance(std::time::Duration::from_millis(HOUR_MS as u64));
        meter.received("a", 1, 10, Charge { reserved: 0, burst: 1 });
        let rows = meter.drain();
        let get = |t: &str, h: i64, m: &str| {
            rows.iter()
                .find(|r| r.tenant == t && r.hour_ms == h * HOUR_MS && r.metric == m)
                .map(|r| r.value)
        };
        assert_eq!(get("a", 10, "api.SendMessage"), Some(1.0));
        assert_eq!(get("a", 10, metric::BYTES_IN), Some(9000.0));
        assert_eq!(get("a", 10, metric::UNITS_BURST), Some(3.0));
        assert_eq!(get("a", 10, metric::STORE_PUTS), Some(0.75));
        assert_eq!(get("b", 10, metric::STORE_PUTS), Some(0.25));
        assert_eq!(get("a", 11, metric::MESSAGES_OUT), Some(1.0));
        assert!(meter.drain().is_empty(), "drained");
        meter.restore(rows.clone());
        meter.restore(rows);
        assert_eq!(
            meter
                .drain()
                .iter()
                .find(|r| r.metric == metric::BYTES_IN)
                .unwrap()
                .value,
            18000.0
        );
    }
}
