//! Receives from a LITE parent topic: messages of the lite topics the client subscribed to,
//! each lite topic in order. Event driven: the coordinator names the subscribed lite topics
//! with something to take (one statement per look); a long poll waits on the commits of those
//! lite topics only (and on the client's own subscription changes), never on a scan.

use std::sync::Arc;
use std::time::Duration;

use strata_meta::lite::{self, Change, Ready, Subscriber};
use strata_meta::model::{Claimed, PopClaim, QueuePopState, QueueRef, Topic};
use tokio::time::Instant;

use super::{Mode, Parked, Plan, Popped, Query};
use crate::error::{Error, Result};
use crate::lanes::Select;
use crate::query::{Delivered, ReceiveRequest};
use crate::stream::Position;

/// Where a group's progress on a lite topic moves when a client subscribes with an
/// `offset_option`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteStart {
    /// MIN (the first retained message), MAX (the end) or the first message at a time.
    At(Position),
    Offset(i64),
    /// The last n messages.
    Tail(i64),
}

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
            let allotted = allot(batch, &ready);
            let popped = self
                .pop_lite_topics(&who, parent, mode, req, allotted, invisible)
                .await?;
            let mut got = Vec::new();
            let mut raced = false;
            let mut unreadable = None;
            for p in popped {
                got.extend(p.got);
                raced |= p.raced;
                unreadable = unreadable.or(p.unreadable);
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

    /// Pops the ready lite topics, each what it was allotted of the batch. Fresh ones (new messages
    /// only) are planned from the look's cursors concurrently and claimed in one coordinator
    /// write; those with expired deliveries take a full pop each, side by side.
    async fn pop_lite_topics(
        &self,
        who: &Subscriber,
        parent: &Topic,
        mode: Mode,
        req: &ReceiveRequest,
        allotted: Vec<(&Ready, usize)>,
        invisible: Duration,
    ) -> Result<Vec<Popped>> {
        let sub = |lite: &Ready| who.subscription(&lite.name);
        let expired = allotted.iter().filter(|(lite, _)| lite.expired).map(|&(lite, want)| {
            let sub = sub(lite);
            let queue = Topic {
                name: sub.topic.clone(),
                queue_count: 1,
                ..parent.clone()
            };
            async move {
                let select = Select::every_lane(&req.filter);
                self.pop_once(&sub, &queue, mode, &select, want, invisible).await
            }
        });
        let fresh = allotted.iter().filter(|(lite, _)| !lite.expired).map(|&(lite, want)| {
            let sub = sub(lite);
            let state = QueuePopState {
                queue: 0,
                cursor: lite.cursor,
                end: lite.end,
                expired: Vec::new(),
                ready: Vec::new(),
                busy: Vec::new(),
                waiting: 0,
            };
            async move {
                let select = Select::every_lane(&req.filter);
                self.plan(&sub, mode, &select, want, invisible, vec![state]).await
            }
        });
        let (expired, plans) = futures::future::join(
            futures::future::try_join_all(expired),
            futures::future::try_join_all(fresh),
        )
        .await;
        let mut popped = expired?;
        let (mut to_claim, empty): (Vec<Plan>, Vec<Plan>) = plans?.into_iter().partition(|p| p.claim.is_some());
        // Nothing to take (or only unreadable batches): nothing granted.
        popped.extend(empty.into_iter().map(|p| self.deliver(p, Claimed::default())));
        let claims: Vec<PopClaim> = to_claim.iter_mut().filter_map(|p| p.claim.take()).collect();
        if !claims.is_empty() {
            let claimed = self.catalog.coordinator().pop_claims(&claims).await?;
            popped.extend(to_claim.into_iter().zip(claimed).map(|(p, c)| self.deliver(p, c)));
        }
        Ok(popped)
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

    /// SyncLiteSubscription: changes the client's lite subscriptions (idempotent), moves
    /// the group's progress on the named lite topics to `start` if given (those that exist),
    /// and wakes the client's long poll, which looks again with the new set. Returns the
    /// names of a complete set whose subscriptions expiry dropped (not subscribed again).
    pub async fn sync_lite_subscriptions(
        &self,
        who: &Subscriber,
        change: Change,
        names: &[String],
        start: Option<LiteStart>,
    ) -> Result<Vec<String>> {
        for name in names {
            lite::validate_name(name).map_err(|e| Error::IllegalLiteTopic(e.to_string()))?;
        }
        let coordinator = self.catalog.coordinator();
        let now = self.catalog.clock().now_ms();
        let dropped = coordinator
            .sync_lite_subscriptions(who, change, names, self.subscription_quota(), now)
            .await?;
        if let Some(start) = start.filter(|_| matches!(change, Change::Add | Change::Replace)) {
            for name in names {
                let queue = QueueRef {
                    tenant: who.tenant.clone(),
                    topic: lite::queue_topic(&who.parent, name),
                    queue: 0,
                };
                if !self.lite_exists(&queue).await? {
                    // Not created yet: its first message is where any start points.
                    continue;
                }
                let offset = match start {
                    LiteStart::At(position) => self.query_offset(&queue, position).await?,
                    LiteStart::Offset(o) => o,
                    LiteStart::Tail(n) => self.query_offset(&queue, Position::End).await?.saturating_sub(n.max(0)),
                };
                coordinator.reset_cursor(&who.subscription(name), 0, offset).await?;
            }
        }
        self.lite_subscribed.invalidate(who).await;
        self.wakeups.wake_lite_client(who);
        Ok(dropped)
    }

    fn subscription_quota(&self) -> lite::SubscriptionQuota {
        lite::SubscriptionQuota {
            per_client: self.config.lite_subscription_quota,
            per_group: self.config.lite_group_subscription_quota,
        }
    }

    async fn lite_exists(&self, queue: &QueueRef) -> Result<bool> {
        match self.catalog.coordinator().queue_end(queue).await {
            Ok(_) => Ok(true),
            Err(strata_meta::Error::QueueNotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A tenant's client's session ended: its lite subscriptions go.
    pub async fn drop_lite_client(&self, tenant: &str, client_id: &str) -> Result<u64> {
        Ok(self.catalog.coordinator().drop_lite_client(tenant, client_id).await?)
    }
}

/// The batch allotted to the ready lite topics in their (random) order: each takes up to its
/// backlog (at least one: an expired delivery, or a run being filtered) until the batch is
/// used. A receive thus takes long runs from few lite topics when they have backlogs — one
/// claim per lite topic, so fewer claims per message — and one message each from many when
/// consumers keep up.
fn allot(batch: usize, ready: &[Ready]) -> Vec<(&Ready, usize)> {
    let mut left = batch;
    let mut allotted = Vec::new();
    for lite in ready {
        if left == 0 {
            break;
        }
        let backlog = usize::try_from(lite.end - lite.cursor).unwrap_or(0).max(1);
        let want = backlog.min(left);
        allotted.push((lite, want));
        left -= want;
    }
    allotted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(name: &str, backlog: i64) -> Ready {
        Ready {
            name: name.into(),
            cursor: 100,
            end: 100 + backlog,
            expired: false,
        }
    }

    #[test]
    fn the_batch_goes_to_backlogs_in_order_until_used() {
        let r = [ready("a", 20), ready("b", 0), ready("c", 30), ready("d", 5)];
        let got: Vec<(&str, usize)> = allot(32, &r).iter().map(|(l, n)| (l.name.as_str(), *n)).collect();
        assert_eq!(got, [("a", 20), ("b", 1), ("c", 11)]);
        let one_each: Vec<usize> = allot(3, &[ready("a", 1), ready("b", 1)])
            .iter()
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(one_each, [1, 1]);
    }
}
