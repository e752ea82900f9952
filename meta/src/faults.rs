//! Fault injection for the coordinator seam (tests of failure paths): a wrapper that fails
//! chosen calls and otherwise delegates.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::accounts::{Grant, Tenant, User};
use crate::error::{Error, Result};
use crate::lite::{Change, Ready, Subscriber, SubscriptionQuota, TopicQuota};
use crate::model::*;
use crate::operations::{DeadLetter, Delivery, GroupChange, QueueProgress, QueueStats, Redelivery, TopicChange};
use crate::prelude::*;

/// Switches for a [`FaultyCoordinator`]; keep the `Arc` to flip them during a test.
#[derive(Debug)]
pub struct CoordinatorFaults {
    failing_commits: AtomicU64,
    lost_replies: AtomicU64,
    down: AtomicBool,
    /// While true, flush commits wait before reaching the coordinator.
    paused: watch::Sender<bool>,
    /// A permit per flush commit that started waiting.
    waiting: Semaphore,
}

impl Default for CoordinatorFaults {
    fn default() -> Self {
        Self {
            failing_commits: AtomicU64::new(0),
            lost_replies: AtomicU64::new(0),
            down: AtomicBool::new(false),
            paused: watch::channel(false).0,
            waiting: Semaphore::new(0),
        }
    }
}

impl CoordinatorFaults {
    /// Fails the next `n` commits (after the object was stored: orphans).
    pub fn fail_commits(&self, n: u64) {
        self.failing_commits.store(n, Ordering::SeqCst);
    }

    /// Lets the next `n` flush commits commit, then answers each with a connection error: the
    /// caller cannot tell whether it committed.
    pub fn lose_commit_replies(&self, n: u64) {
        self.lost_replies.store(n, Ordering::SeqCst);
    }

    /// Holds flush commits back (a slow database, a stalled node) until
    /// [`resume_commits`](Self::resume_commits).
    pub fn pause_commits(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume_commits(&self) {
        self.paused.send_replace(false);
    }

    /// Returns once a flush commit is held back by [`pause_commits`](Self::pause_commits).
    pub async fn commit_held_back(&self) {
        if let Ok(permit) = self.waiting.acquire().await {
            permit.forget();
        }
    }

    /// Makes every call fail (a database outage) until set back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Inconsistent("injected fault: coordinator unavailable".into()));
        }
        Ok(())
    }

    fn check_commit(&self) -> Result<()> {
        self.check()?;
        let took = self
            .failing_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if took {
            return Err(Error::Inconsistent("injected fault: commit failed".into()));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct FaultyCoordinator {
    inner: Arc<dyn Coordinator>,
    faults: Arc<CoordinatorFaults>,
}

impl FaultyCoordinator {
    pub fn wrap(inner: Arc<dyn Coordinator>) -> (Arc<dyn Coordinator>, Arc<CoordinatorFaults>) {
        let faults = Arc::new(CoordinatorFaults::default());
        let wrapped = Arc::new(Self {
            inner,
            faults: Arc::clone(&faults),
        });
        (wrapped, faults)
    }
}

#[async_trait]
impl CatalogStore for FaultyCoordinator {
    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<Topic> {
        self.faults.check()?;
        self.inner.create_topic(spec, now_ms).await
    }
    async fn topic(&self, tenant: &str, name: &str) -> Result<Option<Topic>> {
        self.faults.check()?;
        self.inner.topic(tenant, name).await
    }
    async fn list_topics(&self, tenant: &str) -> Result<Vec<Topic>> {
        self.faults.check()?;
        self.inner.list_topics(tenant).await
    }
    async fn create_group(&self, spec: &GroupSpec, now_ms: i64) -> Result<Group> {
        self.faults.check()?;
        self.inner.create_group(spec, now_ms).await
    }
    async fn group(&self, tenant: &str, name: &str) -> Result<Option<Group>> {
        self.faults.check()?;
        self.inner.group(tenant, name).await
    }
    async fn list_groups(&self, tenant: &str) -> Result<Vec<Group>> {
        self.faults.check()?;
        self.inner.list_groups(tenant).await
    }
    async fn secret(&self, name: &str) -> Result<Vec<u8>> {
        self.faults.check()?;
        self.inner.secret(name).await
    }
}

#[async_trait]
impl Lanes for FaultyCoordinator {
    async fn lane_seen(&self, group: &Subscription, lane: &str, now_ms: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.lane_seen(group, lane, now_ms).await
    }
    async fn lanes(&self, tenant: &str, group: &str) -> Result<Vec<crate::lane::Lane>> {
        self.faults.check()?;
        self.inner.lanes(tenant, group).await
    }
    async fn expire_lanes(&self, idle_before_ms: i64, limit: u32) -> Result<u32> {
        self.faults.check()?;
        self.inner.expire_lanes(idle_before_ms, limit).await
    }
}

#[async_trait]
impl LiteTopics for FaultyCoordinator {
    async fn create_lite_topics(
        &self,
        tenant: &str,
        parent: &str,
        lites: &[String],
        quota: TopicQuota,
        now_ms: i64,
    ) -> Result<()> {
        self.faults.check()?;
        self.inner
            .create_lite_topics(tenant, parent, lites, quota, now_ms)
            .await
    }
    async fn expire_lite_topics(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, String)>> {
        self.faults.check()?;
        self.inner.expire_lite_topics(now_ms, limit).await
    }
    async fn sync_lite_subscriptions(
        &self,
        who: &Subscriber,
        change: Change,
        lites: &[String],
        quota: SubscriptionQuota,
        now_ms: i64,
    ) -> Result<Vec<String>> {
        self.faults.check()?;
        self.inner
            .sync_lite_subscriptions(who, change, lites, quota, now_ms)
            .await
    }
    async fn lite_subscriptions(&self, who: &Subscriber) -> Result<Vec<String>> {
        self.faults.check()?;
        self.inner.lite_subscriptions(who).await
    }
    async fn ready_lite_topics(&self, who: &Subscriber, now_ms: i64, limit: u32) -> Result<(Vec<Ready>, Option<i64>)> {
        self.faults.check()?;
        self.inner.ready_lite_topics(who, now_ms, limit).await
    }
    async fn drop_lite_client(&self, tenant: &str, client_id: &str) -> Result<u64> {
        self.faults.check()?;
        self.inner.drop_lite_client(tenant, client_id).await
    }
}

#[async_trait]
impl Accounts for FaultyCoordinator {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.faults.check()?;
        self.inner.create_tenant(tenant).await
    }
    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.faults.check()?;
        self.inner.update_tenant(tenant).await
    }
    async fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        self.faults.check()?;
        self.inner.tenant(name).await
    }
    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.faults.check()?;
        self.inner.list_tenants().await
    }
    async fn create_user(&self, user: &User) -> Result<()> {
        self.faults.check()?;
        self.inner.create_user(user).await
    }
    async fn user_by_access_key(&self, access_key: &str) -> Result<Option<User>> {
        self.faults.check()?;
        self.inner.user_by_access_key(access_key).await
    }
    async fn list_users(&self, tenant: &str) -> Result<Vec<User>> {
        self.faults.check()?;
        self.inner.list_users(tenant).await
    }
    async fn delete_user(&self, tenant: &str, name: &str) -> Result<bool> {
        self.faults.check()?;
        self.inner.delete_user(tenant, name).await
    }
    async fn grant(&self, grant: &Grant) -> Result<Grant> {
        self.faults.check()?;
        self.inner.grant(grant).await
    }
    async fn revoke(&self, grant: &Grant) -> Result<Option<Grant>> {
        self.faults.check()?;
        self.inner.revoke(grant).await
    }
    async fn grants(&self, tenant: &str, user: Option<&str>) -> Result<Vec<Grant>> {
        self.faults.check()?;
        self.inner.grants(tenant, user).await
    }
}

#[async_trait]
impl Log for FaultyCoordinator {
    async fn commit_flush(&self, flush: &FlushCommit, now_ms: i64) -> Result<Vec<Option<i64>>> {
        let mut paused = self.faults.paused.subscribe();
        if *paused.borrow_and_update() {
            self.faults.waiting.add_permits(1);
            let _ = paused.wait_for(|p| !p).await;
        }
        self.faults.check_commit()?;
        let bases = self.inner.commit_flush(flush, now_ms).await?;
        let lost = self
            .faults
            .lost_replies
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lost {
            let dropped = std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected fault: the connection dropped during COMMIT",
            );
            return Err(Error::Database(sqlx::Error::Io(dropped)));
        }
        Ok(bases)
    }
    async fn batches(&self, queue: &QueueRef, from: i64, limit: u32) -> Result<Vec<Batch>> {
        self.faults.check()?;
        self.inner.batches(queue, from, limit).await
    }
    async fn committed_objects(&self, objects: &[String]) -> Result<HashSet<String>> {
        self.faults.check()?;
        self.inner.committed_objects(objects).await
    }
    async fn queue_end(&self, queue: &QueueRef) -> Result<i64> {
        self.faults.check()?;
        self.inner.queue_end(queue).await
    }
    async fn queue_bounds(&self, queue: &QueueRef) -> Result<(i64, i64)> {
        self.faults.check()?;
        self.inner.queue_bounds(queue).await
    }
    async fn batch_at_time(&self, queue: &QueueRef, ts_ms: i64) -> Result<Option<Batch>> {
        self.faults.check()?;
        self.inner.batch_at_time(queue, ts_ms).await
    }
    fn subscribe(&self) -> broadcast::Receiver<CommitEvent> {
        self.inner.subscribe()
    }
    async fn probe_commit(&self) -> Result<()> {
        self.faults.check()?;
        self.inner.probe_commit().await
    }
    fn transactions(&self) -> crate::TransactionCounts {
        self.inner.transactions()
    }
}

#[async_trait]
impl Consumption for FaultyCoordinator {
    async fn pop_state(
        &self,
        sub: &Subscription,
        queues: &[i32],
        now_ms: i64,
        max: u32,
        fifo: bool,
    ) -> Result<Vec<QueuePopState>> {
        self.faults.check()?;
        self.inner.pop_state(sub, queues, now_ms, max, fifo).await
    }
    async fn pop_claim(&self, claim: &PopClaim) -> Result<Claimed> {
        self.faults.check()?;
        self.inner.pop_claim(claim).await
    }
    async fn dead_letter(&self, r: &Receipt, topic: &str, now_ms: i64) -> Result<std::result::Result<(), AckOutcome>> {
        self.faults.check()?;
        self.inner.dead_letter(r, topic, now_ms).await
    }
    async fn dead_letter_expired(&self, now_ms: i64, limit: u32) -> Result<u32> {
        self.faults.check()?;
        self.inner.dead_letter_expired(now_ms, limit).await
    }
    async fn ack(&self, receipts: &[Receipt]) -> Result<Vec<AckOutcome>> {
        self.faults.check()?;
        self.inner.ack(receipts).await
    }
    async fn change_invisible(&self, r: &Receipt, until: i64) -> Result<std::result::Result<InFlight, AckOutcome>> {
        self.faults.check()?;
        self.inner.change_invisible(r, until).await
    }
    async fn start_progress(&self, sub: &Subscription, latest: bool, now_ms: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.start_progress(sub, latest, now_ms).await
    }
    async fn next_visible_at(&self, sub: &Subscription) -> Result<Option<i64>> {
        self.faults.check()?;
        self.inner.next_visible_at(sub).await
    }
    async fn pop_claims(&self, claims: &[PopClaim]) -> Result<Vec<Claimed>> {
        self.faults.check()?;
        self.inner.pop_claims(claims).await
    }
    async fn reset_cursor(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.reset_cursor(sub, queue, offset).await
    }
    async fn commit_offset(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.commit_offset(sub, queue, offset).await
    }
    async fn committed_offset(&self, sub: &Subscription, queue: i32) -> Result<Option<i64>> {
        self.faults.check()?;
        self.inner.committed_offset(sub, queue).await
    }
}

#[async_trait]
impl HeldRecords for FaultyCoordinator {
    async fn fire_due_timers(&self, now_ms: i64, limit: u32) -> Result<Vec<HeldRecord>> {
        self.faults.check()?;
        self.inner.fire_due_timers(now_ms, limit).await
    }
    async fn next_timer_at(&self) -> Result<Option<i64>> {
        self.faults.check()?;
        self.inner.next_timer_at().await
    }
    async fn recall_timer(&self, tenant: &str, topic: &str, id: &str) -> Result<Option<String>> {
        self.faults.check()?;
        self.inner.recall_timer(tenant, topic, id).await
    }
    async fn end_transaction(&self, tenant: &str, topic: &str, id: &str, commit: bool) -> Result<bool> {
        self.faults.check()?;
        self.inner.end_transaction(tenant, topic, id, commit).await
    }
    async fn claim_transaction_checks(
        &self,
        topics: &[(String, String)],
        now_ms: i64,
        next_check_ms: i64,
        limit: u32,
    ) -> Result<Vec<HeldRecord>> {
        self.faults.check()?;
        self.inner
            .claim_transaction_checks(topics, now_ms, next_check_ms, limit)
            .await
    }
    async fn expire_transactions(&self, now_ms: i64, max_checks: i64, max_age_ms: i64) -> Result<u32> {
        self.faults.check()?;
        self.inner.expire_transactions(now_ms, max_checks, max_age_ms).await
    }
}

#[async_trait]
impl Maintenance for FaultyCoordinator {
    async fn compaction_candidates(&self, before_ms: i64, limit: u32) -> Result<Vec<QueueRef>> {
        self.faults.check()?;
        self.inner.compaction_candidates(before_ms, limit).await
    }
    async fn acquire_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        self.faults.check()?;
        self.inner.acquire_lease(name, holder, now_ms, ttl_ms).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.faults.check()?;
        self.inner.release_lease(name, holder).await
    }
    async fn swap_compacted(&self, swap: &CompactionSwap, now_ms: i64) -> Result<bool> {
        self.faults.check_commit()?;
        self.inner.swap_compacted(swap, now_ms).await
    }
    async fn apply_retention(&self, now_ms: i64, archive_ms: i64, limit: u32) -> Result<u32> {
        self.faults.check()?;
        self.inner.apply_retention(now_ms, archive_ms, limit).await
    }
    async fn unreferenced_objects(&self, now_ms: i64, grace_ms: i64, limit: u32) -> Result<Vec<String>> {
        self.faults.check()?;
        self.inner.unreferenced_objects(now_ms, grace_ms, limit).await
    }
    async fn claim_orphans(&self, objects: &[String], now_ms: i64) -> Result<Vec<String>> {
        self.faults.check()?;
        self.inner.claim_orphans(objects, now_ms).await
    }
    async fn quarantine_batch(&self, batch: &Batch, reason: &str, now_ms: i64) -> Result<bool> {
        self.faults.check()?;
        self.inner.quarantine_batch(batch, reason, now_ms).await
    }
    async fn quarantined(&self) -> Result<Vec<Quarantined>> {
        self.faults.check()?;
        self.inner.quarantined().await
    }
    async fn release_quarantined(
        &self,
        queue: &QueueRef,
        base_offset: i64,
        retry: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        self.faults.check()?;
        self.inner.release_quarantined(queue, base_offset, retry, now_ms).await
    }
    async fn held_to_move(&self, before_ms: i64, limit: u32) -> Result<Vec<HeldRecord>> {
        self.faults.check()?;
        self.inner.held_to_move(before_ms, limit).await
    }
    async fn move_held(&self, moved: &HeldMove, now_ms: i64) -> Result<u32> {
        self.faults.check_commit()?;
        self.inner.move_held(moved, now_ms).await
    }
    async fn forget_object(&self, path: &str) -> Result<()> {
        self.faults.check()?;
        self.inner.forget_object(path).await
    }
    async fn expire_broadcast_progress(&self, before_ms: i64, limit: u32) -> Result<u32> {
        self.faults.check()?;
        self.inner.expire_broadcast_progress(before_ms, limit).await
    }
    async fn stored_bytes(&self) -> Result<Vec<(String, i64)>> {
        self.faults.check()?;
        self.inner.stored_bytes().await
    }
}

#[async_trait]
impl Members for FaultyCoordinator {
    async fn register_node(
        &self,
        id: &str,
        roles: Roles,
        advertise: &str,
        remoting: Option<&str>,
        now_ms: i64,
    ) -> Result<Node> {
        self.faults.check()?;
        self.inner.register_node(id, roles, advertise, remoting, now_ms).await
    }
    async fn heartbeat_node(&self, id: &str, epoch: i64, now_ms: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.heartbeat_node(id, epoch, now_ms).await
    }
    async fn time_ms(&self) -> Result<i64> {
        self.faults.check()?;
        self.inner.time_ms().await
    }
    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.faults.check()?;
        self.inner.list_nodes().await
    }
    async fn drain_node(&self, id: &str, epoch: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.drain_node(id, epoch).await
    }
    async fn leave_node(&self, id: &str, epoch: i64) -> Result<()> {
        self.faults.check()?;
        self.inner.leave_node(id, epoch).await
    }
    async fn purge_left_nodes(&self, before_ms: i64) -> Result<u64> {
        self.faults.check()?;
        self.inner.purge_left_nodes(before_ms).await
    }
    async fn live_nodes(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<Node>> {
        self.faults.check()?;
        self.inner.live_nodes(now_ms, ttl_ms).await
    }
    async fn expire_nodes(&self, now_ms: i64, ttl_ms: i64, deciding: &str) -> Result<Vec<String>> {
        self.faults.check()?;
        self.inner.expire_nodes(now_ms, ttl_ms, deciding).await
    }
}

#[async_trait]
impl Operations for FaultyCoordinator {
    async fn update_topic(&self, tenant: &str, name: &str, change: &TopicChange) -> Result<Topic> {
        self.faults.check()?;
        self.inner.update_topic(tenant, name, change).await
    }
    async fn update_group(&self, tenant: &str, name: &str, change: &GroupChange) -> Result<Group> {
        self.faults.check()?;
        self.inner.update_group(tenant, name, change).await
    }
    async fn delete_topic(&self, tenant: &str, name: &str) -> Result<bool> {
        self.faults.check()?;
        self.inner.delete_topic(tenant, name).await
    }
    async fn delete_group(&self, tenant: &str, name: &str, dead_letters: bool) -> Result<bool> {
        self.faults.check()?;
        self.inner.delete_group(tenant, name, dead_letters).await
    }
    async fn group_progress(&self, tenant: &str, group: &str) -> Result<Vec<QueueProgress>> {
        self.faults.check()?;
        self.inner.group_progress(tenant, group).await
    }
    async fn topic_stats(&self, tenant: &str, topic: &str) -> Result<Vec<QueueStats>> {
        self.faults.check()?;
        self.inner.topic_stats(tenant, topic).await
    }
    async fn dead_letters(&self, tenant: &str, group: &str, from: i64, limit: u32) -> Result<Vec<DeadLetter>> {
        self.faults.check()?;
        self.inner.dead_letters(tenant, group, from, limit).await
    }
    async fn delivery_states(&self, tenant: &str, topic: &str, queue: i32, offset: i64) -> Result<Vec<Delivery>> {
        self.faults.check()?;
        self.inner.delivery_states(tenant, topic, queue, offset).await
    }
    async fn redeliver(&self, tenant: &str, group: &str, messages: &[Redelivery], now_ms: i64) -> Result<u32> {
        self.faults.check()?;
        self.inner.redeliver(tenant, group, messages, now_ms).await
    }
}

#[async_trait]
impl MessageIndex for FaultyCoordinator {
    async fn find_messages(&self, tenant: &str, ids: &[String]) -> Result<Vec<IndexedMessage>> {
        self.faults.check()?;
        self.inner.find_messages(tenant, ids).await
    }
    async fn messages_by_key(
        &self,
        tenant: &str,
        topic: &str,
        key: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<IndexedMessage>> {
        self.faults.check()?;
        self.inner
            .messages_by_key(tenant, topic, key, from_ms, to_ms, limit)
            .await
    }
    async fn expire_index(&self, before_ms: i64, limit: u32) -> Result<u32> {
        self.faults.check()?;
        self.inner.expire_index(before_ms, limit).await
    }
}
