//! Receives from a LITE parent topic: messages of the lite topics the client subscribed to,
//! each lite topic in order. Event driven: the coordinator names the subscribed lite topics
//! with something to take (one statement per look); a long poll waits on the commits of those
//! lite topics only (and on the client's own subscription changes), never on a scan.

use std::sync::Arc;
use std::time::Duration;

use strata_meta::lite::{self, Change, Subscriber};
use strata_meta::model::{Subscription, Topic};
use tokio::time::Instant;

use super::{Mode, Parked, Popped, Query};
use crate::error::{Error, Result};
use crate::query::{Delivered, ReceiveRequest};

impl Query {
    pub(super) async fn receive_lite(
        &self,
        req: &ReceiveRequest,
        parent: &Topic,
        mode: Mode,
        invisible: Duration,
    ) -> Result<Vec<Delivered>> {
        let who = Subscriber {
            tenant: req.tenant.clone(),
            group: req.group.clone(),
            parent: parent.name.clone(),
            client_id: req
                .client_id
                .clone()
                .ok_or_else(|| Error::ClientIdRequired(req.group.clone()))?,
        };
        let mode = Mode { in_order: true, ..mode };
        let batch = req.batch_size.clamp(1, self.config.max_batch);
        let deadline = Instant::now() + req.long_polling.min(self.config.max_long_polling);
        let mut closed = self.closed.subscribe();
        loop {
            // Registered before looking: a commit between the look and the wait leaves a
            // permit, so it is not missed.
            let subscribed = self.lite_subscriptions(&who).await?;
            let wakeup = self.wakeups.lite_waiter(&who, &subscribed);
            let now = self.catalog.clock().now_ms();
            let (ready, next_visible) = self
                .catalog
                .coordinator()
                .ready_lite_topics(&who, now, batch as u32)
                .await?;
            let mut got = Vec::new();
            let mut raced = false;
            let mut unreadable = None;
            for name in ready {
                let want = batch - got.len();
                if want == 0 {
                    break;
                }
                let sub = Subscription {
                    tenant: who.tenant.clone(),
                    group: who.group.clone(),
                    topic: lite::queue_topic(&parent.name, &name),
                };
                let queue = Topic {
                    name: sub.topic.clone(),
                    queue_count: 1,
                    ..parent.clone()
                };
                let popped: Popped = self.pop_once(&sub, &queue, mode, &req.filter, want, invisible).await?;
                got.extend(popped.got);
                raced |= popped.raced;
                unreadable = unreadable.or(popped.unreadable);
            }
            if !got.is_empty() {
                return Ok(got);
            }
            if let Some(e) = unreadable {
                return Err(e);
            }
            if raced {
                continue;
            }
            let now = Instant::now();
            if now >= deadline || *closed.borrow() {
                return Ok(got);
            }
            let mut wake = deadline;
            if let Some(at) = next_visible {
                let until = Duration::from_millis((at - self.catalog.clock().now_ms()).max(0) as u64);
                wake = wake.min(now + until.max(super::MIN_RETRY_WAIT));
            }
            let _parked = Parked::on(&self.long_polls);
            tokio::select! {
                () = wakeup.notified() => {}
                () = tokio::time::sleep_until(wake) => {}
                _ = closed.changed() => {}
            }
        }
    }

    /// The lite topics a client subscribes to (cached for a few seconds; this node's own
    /// changes are seen at once).
    async fn lite_subscriptions(&self, who: &Subscriber) -> Result<Arc<Vec<String>>> {
        if let Some(names) = self.lite_subscribed.get(who).await {
            return Ok(names);
        }
        let names = Arc::new(self.catalog.coordinator().lite_subscriptions(who).await?);
        self.lite_subscribed.insert(who.clone(), Arc::clone(&names)).await;
        Ok(names)
    }

    /// SyncLiteSubscription: changes the client's lite subscriptions (idempotent) and wakes
    /// its long poll, which looks again with the new set.
    pub async fn sync_lite_subscriptions(&self, who: &Subscriber, change: Change, names: &[String]) -> Result<()> {
        for name in names {
            lite::validate_name(name).map_err(|e| Error::IllegalLiteTopic(e.to_string()))?;
        }
        let now = self.catalog.clock().now_ms();
        self.catalog
            .coordinator()
            .sync_lite_subscriptions(who, change, names, self.config.lite_subscription_quota, now)
            .await?;
        self.lite_subscribed.invalidate(who).await;
        self.wakeups.wake_lite_client(who);
        Ok(())
    }

    /// A client's session ended: its lite subscriptions go.
    pub async fn drop_lite_client(&self, client_id: &str) -> Result<u64> {
        Ok(self.catalog.coordinator().drop_lite_client(client_id).await?)
    }
}
