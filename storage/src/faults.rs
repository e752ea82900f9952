//! Fault injection: fail or delay chosen object store requests (tests of the failure paths).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::hooked::{HookedStore, Op, RequestHook};

#[derive(Clone, Debug)]
enum Action {
    Fail,
    Delay(Duration),
}

#[derive(Clone, Debug)]
struct Rule {
    op: Op,
    /// How many more requests the rule applies to; `None`: all of them.
    remaining: Option<u64>,
    action: Action,
}

/// Shared switchboard of faults; keep the `Arc` to change faults while the store is in use.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
}

impl Faults {
    /// Fails the next `times` requests of kind `op`.
    pub fn fail(&self, op: Op, times: u64) {
        self.push(op, Some(times), Action::Fail);
    }

    /// Fails every request of kind `op` until [`Faults::clear`].
    pub fn fail_always(&self, op: Op) {
        self.push(op, None, Action::Fail);
    }

    /// Delays every request of kind `op` by `delay` until [`Faults::clear`].
    pub fn delay(&self, op: Op, delay: Duration) {
        self.push(op, None, Action::Delay(delay));
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn push(&self, op: Op, remaining: Option<u64>, action: Action) {
        self.lock().push(Rule { op, remaining, action });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self, op: Op) -> Option<Action> {
        let mut rules = self.lock();
        let idx = rules.iter().position(|r| r.op == op)?;
        let action = rules[idx].action.clone();
        if let Some(n) = rules[idx].remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                rules.remove(idx);
            }
        }
        Some(action)
    }
}

#[async_trait]
impl RequestHook for Faults {
    async fn before(&self, op: Op, path: &Path) -> object_store::Result<()> {
        match self.take(op) {
            None => Ok(()),
            Some(Action::Delay(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Action::Fail) => Err(object_store::Error::Generic {
                store: "fault-injection",
                source: format!("injected failure of {} {path}", op.as_str()).into(),
            }),
        }
    }
}

/// Wraps `inner` with a fault switchboard (no faults until one is set).
pub fn with_faults(inner: Arc<dyn ObjectStore>) -> (Arc<dyn ObjectStore>, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    (Arc::new(HookedStore::new(inner, Arc::clone(&faults))), faults)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn fails_exactly_the_chosen_requests() {
        let (store, faults) = with_faults(Arc::new(InMemory::new()));
        let p = Path::from("x");
        faults.fail(Op::Put, 2);
        for _ in 0..2 {
            let err = store.put(&p, PutPayload::from_static(b"a")).await.unwrap_err();
            assert!(err.to_string().contains("injected failure of put x"), "{err}");
        }
        store.put(&p, PutPayload::from_static(b"a")).await.unwrap();
        faults.fail_always(Op::Get);
        assert!(store.get(&p).await.is_err());
        faults.clear();
        assert!(store.get(&p).await.is_ok());
    }
}
