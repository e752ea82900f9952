//! Time is passed in, so timers, invisible durations and retention are testable without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        self.since_epoch().as_millis() as i64
    }
}

impl SystemClock {
    /// Microseconds since the Unix epoch (latencies across processes, `strata bench`).
    pub fn now_us(&self) -> u64 {
        self.since_epoch().as_micros() as u64
    }

    // The one reading of the wall clock (clippy's disallowed-methods keeps it that way).
    #[allow(clippy::disallowed_methods)]
    fn since_epoch(&self) -> Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// Another clock plus an offset that can only grow: a running broker's "now" moved forward
/// by an end-to-end test of long delays (`testing.clock_control`), or a node's wall clock
/// made to run fast (`testing.clock_skew`). Off the test path the offset stays zero.
#[derive(Debug)]
pub struct OffsetClock {
    base: Arc<dyn Clock>,
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn over(base: Arc<dyn Clock>) -> Self {
        Self {
            base,
            offset_ms: AtomicI64::new(0),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Default for OffsetClock {
    fn default() -> Self {
        Self::over(Arc::new(SystemClock))
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        self.base.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// Longest round trip a clock sync trusts: the synced clock lags the coordinator's by at most
/// this much.
const MAX_SYNC_ROUND_TRIP_MS: i64 = 1000;
/// Offsets beyond this are logged: the machine's clock needs fixing (NTP), though the node
/// runs correctly on the coordinator's time meanwhile.
const NOTABLE_OFFSET_MS: i64 = 1000;

/// The coordinator's time, kept locally: this machine's clock corrected by the offset the
/// last [`sync`](Self::sync) measured against the coordinator. It never runs ahead of the
/// coordinator's clock and lags it by at most the sync's round trip (milliseconds on a LAN), so a
/// timer or deadline never fires early by the coordinator's time, only up to a round trip late.
/// Every node reads "now" from one, so invisible deadlines, timers and heartbeats stamped by
/// different machines compare on one time base however far their own clocks drift; the
/// coordinator's clock is the only one that matters.
#[derive(Debug)]
pub struct SyncedClock {
    local: Arc<dyn Clock>,
    offset_ms: AtomicI64,
}

impl SyncedClock {
    /// Follows `local` until the first sync.
    pub fn new(local: Arc<dyn Clock>) -> Self {
        Self {
            local,
            offset_ms: AtomicI64::new(0),
        }
    }

    /// Measures the offset to the coordinator's clock; returns it. A sync whose round trip
    /// took longer than 1 s is not trusted: the previous offset stays.
    pub async fn sync(&self, coordinator: &dyn crate::coordinator::Members) -> crate::Result<i64> {
        let before = self.local.now_ms();
        let theirs = coordinator.time_ms().await?;
        let after = self.local.now_ms();
        if after - before > MAX_SYNC_ROUND_TRIP_MS {
            tracing::warn!(
                round_trip_ms = after - before,
                "clock sync too slow to trust; keeping the last offset"
            );
            return Ok(self.offset_ms());
        }
        // The coordinator read its clock at some instant before `after`: taking that reading as
        // its time at `after` (less 1 ms for both clocks' truncation to milliseconds) keeps
        // this clock at or behind the coordinator's. The midpoint would halve the error but
        // make it two-sided, and a delay timer firing a millisecond early is a visible bug.
        let offset = theirs - after - 1;
        let previous = self.offset_ms.swap(offset, Ordering::SeqCst);
        if offset.abs() > NOTABLE_OFFSET_MS && (offset - previous).abs() > NOTABLE_OFFSET_MS / 2 {
            tracing::warn!(
                offset_ms = offset,
                "this machine's clock differs from the coordinator's; using the coordinator's time"
            );
        }
        Ok(offset)
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

impl Clock for SyncedClock {
    fn now_ms(&self) -> i64 {
        self.local.now_ms() + self.offset_ms()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}
