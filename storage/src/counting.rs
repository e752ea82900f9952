//! Counts object store requests by kind (tests, metering, `strata bench`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::hooked::{HookedStore, Op, RequestHook};

/// Request counters; share the `Arc` to read them while the store is in use.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: [AtomicU64; Op::ALL.len()],
}

impl RequestCounts {
    pub fn get(&self, op: Op) -> u64 {
        self.counts[Self::index(op)].load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> HashMap<Op, u64> {
        Op::ALL.iter().map(|op| (*op, self.get(*op))).collect()
    }

    fn index(op: Op) -> usize {
        Op::ALL.iter().position(|o| *o == op).unwrap_or_default()
    }
}

#[async_trait]
impl RequestHook for RequestCounts {
    async fn before(&self, op: Op, _path: &Path) -> object_store::Result<()> {
        self.counts[Self::index(op)].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Wraps `inner` so that every request is counted in the returned counters.
pub fn counting(inner: Arc<dyn ObjectStore>) -> (Arc<dyn ObjectStore>, Arc<RequestCounts>) {
    let counts = Arc::new(RequestCounts::default());
    (Arc::new(HookedStore::new(inner, Arc::clone(&counts))), counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn counts_each_request_kind() {
        let (store, counts) = counting(Arc::new(InMemory::new()));
        let p = Path::from("x");
        store.put(&p, PutPayload::from_static(b"abc")).await.unwrap();
        store.get_range(&p, 0..1).await.unwrap();
        store.head(&p).await.unwrap();
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1);
        store.delete(&p).await.unwrap();
        assert_eq!(counts.get(Op::Put), 1);
        assert_eq!(counts.get(Op::Get), 1);
        assert_eq!(counts.get(Op::Head), 1);
        assert_eq!(counts.get(Op::List), 1);
        assert_eq!(counts.get(Op::Delete), 1);
    }
}
