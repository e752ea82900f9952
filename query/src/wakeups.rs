//! Long-poll wake-ups for pop consumers: one `Notify` per (topic, consumer group), fed by
//! the coordinator's commit notifications. A commit wakes ONE waiting receive per group of
//! its topic (not every long poll of the node); a receive that filled its batch passes the
//! wake-up on to the next waiter of its group, so a large commit is spread over as many
//! consumers as it needs and a small one wakes one. Waiters that are not waiting when a
//! commit lands find a stored permit and look at once, so no commit is missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use strata_meta::lite;
use strata_meta::model::{CommitEvent, Subscription};
use tokio::sync::{Notify, broadcast};

/// (tenant, topic) → consumer group → its waiters' `Notify`.
type Registry = HashMap<(String, String), HashMap<String, Weak<Notify>>>;

/// A lite consumer's entry in the registry (`:` never occurs in group names).
fn lite_key(who: &lite::Subscriber) -> String {
    format!("lite:{}/{}", who.group, who.client_id)
}

/// Entries examined before dead ones are dropped again.
const PRUNE_FLOOR: usize = 1024;

#[derive(Default)]
pub(crate) struct Wakeups {
    registry: Mutex<(Registry, usize)>,
}

impl Wakeups {
    /// Starts forwarding the coordinator's commit notifications; ends when `self` is dropped.
    pub(crate) fn start(mut events: broadcast::Receiver<CommitEvent>) -> Arc<Self> {
        let me = Arc::new(Self::default());
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            loop {
                let event = events.recv().await;
                let Some(me) = weak.upgrade() else { return };
                match event {
                    Ok(e) => me.wake(&e),
                    // Missed notifications: every waiter looks.
                    Err(broadcast::error::RecvError::Lagged(_)) => me.wake(&CommitEvent::missed()),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        me
    }

    /// The `Notify` the receives of a subscription wait on.
    pub(crate) fn waiter(&self, sub: &Subscription) -> Arc<Notify> {
        let mut guard = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let (registry, prune_at) = &mut *guard;
        let groups = registry.entry((sub.tenant.clone(), sub.topic.clone())).or_default();
        if let Some(n) = groups.get(&sub.group).and_then(Weak::upgrade) {
            return n;
        }
        let n = Arc::new(Notify::new());
        groups.insert(sub.group.clone(), Arc::downgrade(&n));
        Self::prune(registry, prune_at);
        n
    }

    /// The `Notify` a lite consumer's receives wait on: one per client, woken by commits to
    /// any lite topic it subscribes to (`lites`) and by [`wake_lite_client`](Self::wake_lite_client).
    /// Registered under each of those lite topics' queues and under the parent topic.
    pub(crate) fn lite_waiter(&self, who: &lite::Subscriber, lites: &[String]) -> Arc<Notify> {
        let mut guard = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let (registry, prune_at) = &mut *guard;
        let key = lite_key(who);
        let parent = (who.tenant.clone(), who.parent.clone());
        let n = registry
            .get(&parent)
            .and_then(|g| g.get(&key))
            .and_then(Weak::upgrade)
            .unwrap_or_else(|| Arc::new(Notify::new()));
        let topics = lites
            .iter()
            .map(|l| (who.tenant.clone(), lite::queue_topic(&who.parent, l)))
            .chain(std::iter::once(parent));
        for topic in topics {
            registry
                .entry(topic)
                .or_default()
                .insert(key.clone(), Arc::downgrade(&n));
        }
        Self::prune(registry, prune_at);
        n
    }

    /// Wakes a lite consumer's long poll on this node (its subscriptions changed).
    pub(crate) fn wake_lite_client(&self, who: &lite::Subscriber) {
        let guard = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = guard
            .0
            .get(&(who.tenant.clone(), who.parent.clone()))
            .and_then(|g| g.get(&lite_key(who)))
            .and_then(Weak::upgrade)
        {
            n.notify_one();
        }
    }

    fn prune(registry: &mut Registry, prune_at: &mut usize) {
        let entries: usize = registry.values().map(HashMap::len).sum();
        if entries >= (*prune_at).max(PRUNE_FLOOR) {
            registry
                .values_mut()
                .for_each(|g| g.retain(|_, w| w.strong_count() > 0));
            registry.retain(|_, g| !g.is_empty());
            *prune_at = 2 * registry.values().map(HashMap::len).sum::<usize>();
        }
    }

    pub(crate) fn wake(&self, event: &CommitEvent) {
        let guard = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let wake = |n: Arc<Notify>, everyone: bool| {
            if everyone {
                n.notify_waiters();
            }
            n.notify_one();
        };
        match &event.topic {
            Some(_) if event.held => {}
            Some(topic) => {
                if let Some(groups) = guard.0.get(&(event.tenant.clone(), topic.clone())) {
                    groups.values().filter_map(Weak::upgrade).for_each(|n| wake(n, false));
                }
            }
            None => guard
                .0
                .values()
                .flat_map(HashMap::values)
                .filter_map(Weak::upgrade)
                .for_each(|n| wake(n, true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sub(group: &str, topic: &str) -> Subscription {
        Subscription {
            tenant: String::new(),
            group: group.into(),
            topic: topic.into(),
        }
    }

    fn event(topic: &str) -> CommitEvent {
        CommitEvent {
            tenant: String::new(),
            topic: Some(topic.into()),
            held: false,
        }
    }

    /// Whether `n` has a wake-up for one waiter (without waiting for one).
    async fn woken(n: &Notify) -> bool {
        tokio::time::timeout(Duration::ZERO, n.notified()).await.is_ok()
    }

    #[tokio::test]
    async fn a_commit_wakes_one_waiter_per_group_of_its_topic_only() {
        let w = Wakeups::default();
        let (a, b, other) = (
            w.waiter(&sub("a", "t")),
            w.waiter(&sub("b", "t")),
            w.waiter(&sub("a", "u")),
        );
        assert!(
            Arc::ptr_eq(&a, &w.waiter(&sub("a", "t"))),
            "one Notify per subscription"
        );
        w.wake(&event("t"));
        assert!(woken(&a).await && woken(&b).await);
        assert!(!woken(&a).await, "one wake-up per commit, not one per waiter");
        assert!(!woken(&other).await, "another topic is not woken");
        w.wake(&CommitEvent {
            held: true,
            ..event("t")
        });
        assert!(!woken(&a).await, "held records are nothing to read yet");
        w.wake(&CommitEvent::missed());
        assert!(woken(&other).await, "missed notifications wake everyone");
    }

    #[tokio::test]
    async fn dead_entries_are_pruned() {
        let w = Wakeups::default();
        for i in 0..3 * PRUNE_FLOOR {
            drop(w.waiter(&sub(&format!("g{i}"), "t")));
        }
        let entries: usize = w.registry.lock().unwrap().0.values().map(HashMap::len).sum();
        assert!(entries < PRUNE_FLOOR + 2, "{entries} entries kept");
    }
}
