//! Failed authentications per client address: past [`MAX_FAILURES`] within a window of
//! [`WINDOW_MS`], an address's next attempts are refused without being checked until the
//! window ends. Guessing a generated secret (~238 bits) is hopeless anyway; this keeps a
//! weak chosen one, and the CPU of signature checks, out of a loop's reach. Another address,
//! and an address's successful requests before the limit, are unaffected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed attempts one address may make per window: far above what a misconfigured client
/// retrying makes (the Python SDK retries a send three times), far below a guessing loop.
pub const MAX_FAILURES: u32 = 100;
/// The window, in ms.
pub const WINDOW_MS: i64 = 60_000;
/// Addresses remembered at once (~40 B each); when full, those whose window ended go first.
const TRACKED: usize = 100_000;

#[derive(Default)]
pub struct Failures {
    /// Per address: when its window started and how many attempts failed in it.
    by_address: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl Failures {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<IpAddr, (i64, u32)>) -> R) -> R {
        f(&mut self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Whether `address` has used up its failed attempts of the window at `now_ms`.
    pub fn blocked(&self, address: IpAddr, now_ms: i64) -> bool {
        self.with(|m| {
            m.get(&address)
                .is_some_and(|(start, n)| now_ms - start < WINDOW_MS && *n >= MAX_FAILURES)
        })
    }

    /// An attempt from `address` failed at `now_ms`.
    pub fn failed(&self, address: IpAddr, now_ms: i64) {
        self.with(|m| {
            if m.len() >= TRACKED && !m.contains_key(&address) {
                m.retain(|_, (start, _)| now_ms - *start < WINDOW_MS);
                if m.len() >= TRACKED {
                    m.clear();
                }
            }
            let entry = m.entry(address).or_insert((now_ms, 0));
            if now_ms - entry.0 >= WINDOW_MS {
                *entry = (now_ms, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_back_for_the_rest_of_its_window() {
        let f = Failures::default();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for i in 0..MAX_FAILURES {
            assert!(!f.blocked(a, 1_000 + i64::from(i)));
            f.failed(a, 1_000 + i64::from(i));
        }
        assert!(f.blocked(a, 2_000));
        assert!(!f.blocked(b, 2_000), "another address");
        assert!(f.blocked(a, 1_000 + WINDOW_MS - 1));
        assert!(!f.blocked(a, 1_000 + WINDOW_MS), "the window ended");
        f.failed(a, 1_000 + WINDOW_MS);
        assert!(!f.blocked(a, 1_000 + WINDOW_MS + 1), "a new window counts afresh");
    }
}
