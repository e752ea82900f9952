//! Reserved + burst quotas per tenant (ApsaraMQ's model), in TPS units: a message sent or
//! received counts one unit per started 4 KiB of body. Each node enforces its share of a
//! tenant's rates — the rate divided by the live nodes serving clients — with two token
//! buckets holding one second of their rate:
//! - the ceiling (`burst_tps`): a request that finds it empty is refused with
//!   TOO_MANY_REQUESTS and the time until it refills; a request larger than the bucket is let
//!   through when the bucket is full and leaves it in debt;
//! - the reserved rate (`reserved_tps`): the units it covers are metered as reserved, the
//!   rest as burst.
//!
//! Sends are charged before they are stored; receives are let in while the ceiling is not in
//! debt and charged for what they delivered (their size is known only then).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;
use strata_meta::{Clock, Coordinator};

use crate::error::{Error, Result};

/// Bytes per TPS unit.
pub const UNIT_BYTES: usize = 4096;

/// The units a message of `body_len` bytes counts (at least one).
pub fn units(body_len: usize) -> u64 {
    body_len.max(1).div_ceil(UNIT_BYTES) as u64
}

/// How a request's units were counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charge {
    pub reserved: u64,
    pub burst: u64,
}

/// The quota of tenants that have none of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// 0: nothing reserved (all traffic is burst).
    pub reserved_tps: u32,
    /// 0: no ceiling.
    pub burst_tps: u32,
}

/// How long a tenant's quota is trusted before it is read again.
const LIMITS_TTL: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Bucket {
    /// Units per millisecond.
    rate: f64,
    tokens: f64,
    at_ms: i64,
}

impl Bucket {
    fn new(tps: f64, now_ms: i64) -> Self {
        Self {
            rate: tps / 1000.0,
            tokens: tps,
            at_ms: now_ms,
        }
    }

    /// One second of the rate.
    fn capacity(&self) -> f64 {
        self.rate * 1000.0
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity());
        self.at_ms = now_ms.max(self.at_ms);
    }

    /// How long until `units` (at most a full bucket) are there.
    fn wait_for(&self, units: f64) -> Duration {
        let missing = units.min(self.capacity()) - self.tokens;
        if missing <= 0.0 || self.rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_millis((missing / self.rate).ceil() as u64)
    }
}

#[derive(Debug)]
struct TenantBuckets {
    limits: Limits,
    share: u32,
    reserved: Option<Bucket>,
    ceiling: Option<Bucket>,
}

impl TenantBuckets {
    fn new(limits: Limits, share: u32, now_ms: i64) -> Self {
        let per_node = |tps: u32| (tps > 0).then(|| Bucket::new(f64::from(tps) / f64::from(share.max(1)), now_ms));
        Self {
            limits,
            share,
            reserved: per_node(limits.reserved_tps),
            ceiling: per_node(limits.burst_tps),
        }
    }

    fn refill(&mut self, now_ms: i64) {
        for b in [&mut self.reserved, &mut self.ceiling].into_iter().flatten() {
            b.refill(now_ms);
        }
    }

    /// Takes `units`: from the reserved bucket as far as it goes, the rest counts as burst.
    fn take(&mut self, units: u64) -> Charge {
        let u = units as f64;
        if let Some(c) = &mut self.ceiling {
            c.tokens -= u;
        }
        let reserved = match &mut self.reserved {
            Some(r) => {
                let covered = r.tokens.clamp(0.0, u).floor();
                r.tokens -= covered;
                covered as u64
            }
            None => 0,
        };
        Charge {
            reserved,
            burst: units - reserved.min(units),
        }
    }
}

pub struct Quotas {
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    defaults: Limits,
    /// The live nodes a tenant's traffic is spread over (each enforces 1/share of its rates).
    share: AtomicU32,
    limits: Cache<String, Limits>,
    buckets: Mutex<HashMap<String, TenantBuckets>>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("defaults", &self.defaults)
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl Quotas {
    pub fn new(coordinator: Arc<dyn Coordinator>, clock: Arc<dyn Clock>, defaults: Limits) -> Self {
        Self {
            coordinator,
            clock,
            defaults,
            share: AtomicU32::new(1),
            limits: Cache::builder().max_capacity(100_000).time_to_live(LIMITS_TTL).build(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how many live nodes share each tenant's rates (at least one).
    pub fn set_share(&self, nodes: u32) {
        self.share.store(nodes.max(1), Ordering::Relaxed);
    }

    async fn limits(&self, tenant: &str) -> Result<Limits> {
        let load = async {
            let t = self.coordinator.tenant(tenant).await?;
            Ok::<_, strata_meta::Error>(t.map_or(self.defaults, |t| Limits {
                reserved_tps: t.reserved_tps,
                burst_tps: t.burst_tps,
            }))
        };
        self.limits
            .try_get_with(tenant.to_string(), load)
            .await
            .map_err(Error::Quota)
    }

    /// Runs `f` on the tenant's buckets, refilled to now and rebuilt if its limits or the
    /// node share changed.
    fn with_buckets<T>(&self, tenant: &str, limits: Limits, f: impl FnOnce(&mut TenantBuckets) -> T) -> T {
        let now = self.clock.now_ms();
        let share = self.share.load(Ordering::Relaxed);
        let mut all = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = all
            .entry(tenant.to_string())
            .or_insert_with(|| TenantBuckets::new(limits, share, now));
        if b.limits != limits || b.share != share {
            *b = TenantBuckets::new(limits, share, now);
        }
        b.refill(now);
        f(b)
    }

    fn refused(tenant: &str, limits: Limits, wait: Duration) -> Error {
        Error::TooManyRequests {
            tenant: tenant.to_string(),
            ceiling_tps: limits.burst_tps,
            retry_after: wait,
        }
    }

    /// Admits a send of `units`, or refuses it when the tenant is at its ceiling.
    pub async fn admit(&self, tenant: &str, units: u64) -> Result<Charge> {
        let limits = self.limits(tenant).await?;
        self.with_buckets(tenant, limits, |b| {
            if let Some(c) = &b.ceiling {
                let wait = c.wait_for(units as f64);
                if !wait.is_zero() {
                    return Err(Self::refused(tenant, limits, wait));
                }
            }
            Ok(b.take(units))
        })
    }

    /// Lets a receive in unless the tenant's ceiling is in debt.
    pub async fn admit_receive(&self, tenant: &str) -> Result<()> {
        let limits = self.limits(tenant).await?;
        self.with_buckets(tenant, limits, |b| match &b.ceiling {
            Some(c) if c.tokens < 1.0 => Err(Self::refused(tenant, limits, c.wait_for(1.0))),
            _ => Ok(()),
        })
    }

    /// Charges what a receive delivered (it may leave the ceiling in debt).
    pub async fn charge(&self, tenant: &str, units: u64) -> Result<Charge> {
        let limits = self.limits(tenant).await?;
        Ok(self.with_buckets(tenant, limits, |b| b.take(units)))
    }

    /// Forgets the cached quotas and the tenant's buckets (after this node changed its quota).
    pub fn forget(&self, tenant: &str) {
        self.limits.invalidate_all();
        let mut all = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use strata_meta::accounts::Tenant;
    use strata_meta::{ManualClock, SqlCoordinator};

    async fn quotas(tenants: &[(&str, u32, u32)]) -> (Quotas, ManualClock, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let c: Arc<dyn Coordinator> = Arc::new(SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap());
        for (name, reserved, burst) in tenants {
            c.create_tenant(&Tenant {
                name: (*name).into(),
                reserved_tps: *reserved,
                burst_tps: *burst,
                created_ms: 0,
            })
            .await
            .unwrap();
        }
        let clock = ManualClock::new(1_000_000);
        let q = Quotas::new(c, Arc::new(clock.clone()), Limits::default());
        (q, clock, dir)
    }

    #[test]
    fn units_are_started_4_kib() {
        assert_eq!(units(0), 1);
        assert_eq!(units(1), 1);
        assert_eq!(units(4096), 1);
        assert_eq!(units(4097), 2);
        assert_eq!(units(16 << 10), 4);
    }

    #[tokio::test]
    async fn reserved_then_burst_then_refused() {
        let (q, clock, _dir) = quotas(&[("acme", 10, 30)]).await;
        let mut total = Charge::default();
        for _ in 0..30 {
            let c = q.admit("acme", 1).await.unwrap();
            total.reserved += c.reserved;
            total.burst += c.burst;
        }
        assert_eq!(
            total,
            Charge {
                reserved: 10,
                burst: 20
            }
        );
        match q.admit("acme", 1).await {
            Err(Error::TooManyRequests {
                retry_after,
                ceiling_tps,
                ..
            }) => {
                assert_eq!(ceiling_tps, 30);
                assert_eq!(retry_after, Duration::from_millis(34), "one unit at 30/s");
            }
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_millis(100));
        let c = q.admit("acme", 3).await.unwrap();
        assert_eq!(
            c,
            Charge { reserved: 1, burst: 2 },
            "a tenth of a second refills 1 reserved, 3 in all"
        );
    }

    #[tokio::test]
    async fn tenants_do_not_share_buckets_and_defaults_apply() {
        let (q, _clock, _dir) = quotas(&[("noisy", 0, 5), ("calm", 100, 0)]).await;
        for _ in 0..5 {
            assert_eq!(q.admit("noisy", 1).await.unwrap(), Charge { reserved: 0, burst: 1 });
        }
        assert!(q.admit("noisy", 1).await.is_err());
        for _ in 0..100 {
            assert_eq!(q.admit("calm", 1).await.unwrap().reserved, 1);
        }
        assert_eq!(
            q.admit("calm", 1000).await.unwrap(),
            Charge {
                reserved: 0,
                burst: 1000
            },
            "no ceiling"
        );
        assert_eq!(
            q.admit("unknown", 1 << 20).await.unwrap().burst,
            1 << 20,
            "defaults: unlimited, all burst"
        );
    }

    #[tokio::test]
    async fn receives_go_into_debt_and_wait_it_out() {
        let (q, clock, _dir) = quotas(&[("acme", 0, 10)]).await;
        q.admit_receive("acme").await.unwrap();
        assert_eq!(
            q.charge("acme", 25).await.unwrap().burst,
            25,
            "a big delivery is charged in full"
        );
        assert!(q.admit_receive("acme").await.is_err(), "in debt");
        clock.advance(Duration::from_millis(1_500));
        assert!(
            q.admit_receive("acme").await.is_err(),
            "15 units back: debt repaid, none to spare"
        );
        clock.advance(Duration::from_millis(100));
        assert!(q.admit_receive("acme").await.is_ok());
        // A batch larger than the bucket passes only when the bucket is full.
        clock.advance(Duration::from_secs(5));
        assert!(q.admit("acme", 50).await.is_ok());
        assert!(q.admit("acme", 1).await.is_err());
    }

    #[tokio::test]
    async fn nodes_share_the_rates() {
        let (q, _clock, _dir) = quotas(&[("acme", 0, 40)]).await;
        q.set_share(4);
        for _ in 0..10 {
            q.admit("acme", 1).await.unwrap();
        }
        assert!(q.admit("acme", 1).await.is_err(), "a quarter of 40 per node");
    }
}
