//! SQL of `Consumption`: pop claims, acks, invisible time, FIFO, dead letters, stream offsets.

use super::checkpoint::{COLUMNS, Checkpoint, why_not_in_flight};
use super::*;

#[async_trait]
impl Consumption for SqlCoordinator {
    async fn pop_state(
        &self,
        sub: &Subscription,
        queues: &[i32],
        now_ms: i64,
        max_expired: u32,
        fifo: bool,
    ) -> Result<Vec<QueuePopState>> {
        let mut tx = self.reader.begin().await?;
        // Two statements for every queue of the topic: cursors and ends, then up to
        // `max_expired` expired in-flight messages per queue.
        let mut bounds = std::collections::HashMap::new();
        for r in sqlx::query(
            "SELECT q.queue_id, q.next_offset AS end_offset, COALESCE(c.next_offset, q.min_offset) AS cursor
             FROM queues q LEFT JOIN cursors c
               ON c.tenant = q.tenant AND c.topic = q.topic AND c.queue_id = q.queue_id AND c.grp = $1
             WHERE q.tenant = $2 AND q.topic = $3",
        )
        .bind(&sub.group)
        .bind(&sub.tenant)
        .bind(&sub.topic)
        .fetch_all(&mut *tx)
        .await?
        {
            bounds.insert(
                int(&r, "queue_id")? as i32,
                (int(&r, "cursor")?, int(&r, "end_offset")?),
            );
        }
        // Expired checkpoints, lowest first, then their offsets: up to `max_expired` per queue.
        let mut expired_by_queue: std::collections::HashMap<i32, Vec<InFlight>> = std::collections::HashMap::new();
        let sql = format!(
            "SELECT {COLUMNS} FROM
               (SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY queue_id ORDER BY msg_offset) AS nth
                FROM inflight
                WHERE tenant = $1 AND grp = $2 AND topic = $3 AND waiting = 0 AND invisible_until_ms <= $4) e
             WHERE nth <= $5 ORDER BY queue_id, msg_offset"
        );
        for r in sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&sub.tenant)
            .bind(&sub.group)
            .bind(&sub.topic)
            .bind(now_ms)
            .bind(i64::from(max_expired))
            .fetch_all(&mut *tx)
            .await?
        {
            let cp = Checkpoint::from_row(&r)?;
            expired_by_queue.entry(cp.queue).or_default().extend(cp.in_flight());
        }
        for expired in expired_by_queue.values_mut() {
            expired.sort_by_key(|f| f.offset);
            expired.truncate(max_expired as usize);
        }
        let mut states = Vec::with_capacity(queues.len());
        for &queue in queues {
            let Some(&(cursor, end)) = bounds.get(&queue) else {
                continue;
            };
            let expired = expired_by_queue.remove(&queue).unwrap_or_default();
            let (ready, busy, waiting) = if fifo {
                let ready = sqlx::query(
                    "SELECT w.msg_offset, w.msg_group FROM inflight w
                     WHERE w.tenant = $1 AND w.grp = $2 AND w.topic = $3 AND w.queue_id = $4 AND w.waiting = 1
                       AND NOT EXISTS (SELECT 1 FROM inflight a WHERE a.tenant = $1 AND a.grp = $2 AND a.topic = $3
                             AND a.queue_id = $4 AND a.msg_group = w.msg_group AND a.waiting = 0)
                       AND w.msg_offset = (SELECT MIN(m.msg_offset) FROM inflight m WHERE m.tenant = $1 AND m.grp = $2
                             AND m.topic = $3 AND m.queue_id = $4 AND m.msg_group = w.msg_group AND m.waiting = 1)
                     ORDER BY w.msg_offset LIMIT $5",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(queue)
                .bind(i64::from(max_expired))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok(Waiting {
                        offset: int(r, "msg_offset")?,
                        group: r.try_get("msg_group")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                let busy = sqlx::query(
                    "SELECT DISTINCT msg_group FROM inflight
                     WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_group IS NOT NULL",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(queue)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok(r.try_get::<String, _>("msg_group")?))
                .collect::<Result<Vec<_>>>()?;
                let waiting = sqlx::query(
                    "SELECT COUNT(*) AS n FROM inflight
                     WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND waiting = 1",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(queue)
                .fetch_one(&mut *tx)
                .await?;
                (ready, busy, int(&waiting, "n")?)
            } else {
                (Vec::new(), Vec::new(), 0)
            };
            states.push(QueuePopState {
                queue,
                cursor,
                end,
                expired,
                ready,
                busy,
                waiting,
            });
        }
        tx.commit().await?;
        Ok(states)
    }

    #[instrument(skip_all, fields(group = %sub.group, topic = %sub.topic), err)]
    async fn start_progress(&self, sub: &Subscription, latest: bool, now_ms: i64) -> Result<()> {
        let sub = sub.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                if latest {
                    sqlx::query(
                        "INSERT INTO cursors (tenant, grp, topic, queue_id, next_offset)
                         SELECT tenant, $2, topic, queue_id, next_offset FROM queues WHERE tenant = $1 AND topic = $3
                         ON CONFLICT (tenant, grp, topic, queue_id) DO NOTHING",
                    )
                    .bind(&sub.tenant)
                    .bind(&sub.group)
                    .bind(&sub.topic)
                    .execute(&mut **tx)
                    .await?;
                }
                if sub.is_broadcast() {
                    sqlx::query(
                        "INSERT INTO broadcast_progress (tenant, progress, last_seen_ms) VALUES ($1, $2, $3)
                         ON CONFLICT (tenant, progress) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
                    )
                    .bind(&sub.tenant)
                    .bind(&sub.group)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(((), Announce::default()))
            })
        }))
        .await
    }

    #[instrument(skip_all, fields(group = %claim.subscription.group, topic = %claim.subscription.topic), err)]
    async fn pop_claim(&self, claim: &PopClaim) -> Result<Claimed> {
        let claim = claim.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move { pop_claim_in(tx, &claim).await })
        }))
        .await
    }

    #[instrument(skip_all, fields(claims = claims.len()), err)]
    async fn pop_claims(&self, claims: &[PopClaim]) -> Result<Vec<Claimed>> {
        if claims
            .iter()
            .any(|c| c.queues.iter().any(|q| !q.dead_letter.is_empty()))
        {
            return Err(Error::invalid(
                "pop claims",
                "dead letters are claimed one claim at a time",
            ));
        }
        let claims = claims.to_vec();
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                // Rows are locked in one global order, as commit_flush does: by queue.
                let mut order: Vec<usize> = (0..claims.len()).collect();
                order.sort_by(|&a, &b| {
                    let (a, b) = (&claims[a].subscription, &claims[b].subscription);
                    (&a.tenant, &a.topic).cmp(&(&b.tenant, &b.topic))
                });
                let mut results = vec![Claimed::default(); claims.len()];
                let mut announce = Announce::default();
                for i in order {
                    let (claimed, a) = pop_claim_in(tx, &claims[i]).await?;
                    results[i] = claimed;
                    announce.appended.extend(a.appended);
                }
                Ok((results, announce))
            })
        }))
        .await
    }

    async fn dead_letter(
        &self,
        r: &Receipt,
        dead_letter_topic: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<(), AckOutcome>> {
        let (r, dlq) = (r.clone(), dead_letter_topic.to_string());
        self.write(Box::new(move |tx| {
            Box::pin(async move { dead_letter_in(tx, &r, &dlq, now_ms).await })
        }))
        .await
    }

    async fn dead_letter_expired(&self, now_ms: i64, limit: u32) -> Result<u32> {
        let mut tx = self.reader.begin().await?;
        let candidates = Checkpoint::select(
            &mut tx,
            // The group's max attempts, or for a lane's progress (`group%lane`) its group's.
            "waiting = 0 AND invisible_until_ms <= $1 AND attempt >= COALESCE(
               (SELECT g.max_attempts FROM consumer_groups g WHERE g.tenant = inflight.tenant AND g.name = inflight.grp),
               (SELECT g.max_attempts FROM lanes l JOIN consumer_groups g ON g.tenant = l.tenant AND g.name = l.grp
                WHERE l.tenant = inflight.tenant AND l.topic = inflight.topic AND l.grp || '%' || l.lane = inflight.grp))
             ORDER BY msg_offset LIMIT $2",
            |q| q.bind(now_ms).bind(i64::from(limit)),
        )
        .await?;
        tx.commit().await?;
        let mut moved = 0;
        // One small transaction per checkpoint: its row, then the dead-letter queue's row,
        // the order pop claims lock them in.
        for mut cp in candidates {
            if moved >= limit {
                break;
            }
            let offsets = std::mem::take(&mut cp.offsets);
            let dlq = dead_letter_topic(cp.sub.group_name());
            let mut tx = self.writer.begin().await?;
            if !cp.store(&mut tx).await? {
                continue; // acked, redelivered or changed meanwhile
            }
            ensure_dead_letter_topic(&mut tx, &cp.sub.tenant, &dlq, now_ms).await?;
            let from = QueueRef {
                tenant: cp.sub.tenant.clone(),
                topic: cp.sub.topic.clone(),
                queue: cp.queue,
            };
            for &offset in &offsets {
                append_dead_letter(&mut tx, &from, offset, &dlq, now_ms).await?;
            }
            let topics: HashSet<(String, String)> =
                [(from.tenant.clone(), dlq), (from.tenant.clone(), from.topic.clone())].into();
            self.notify_in(&mut tx, &topics, false).await?;
            tx.commit().await?;
            self.notify_after(&topics, false);
            moved += offsets.len() as u32;
        }
        Ok(moved)
    }

    #[instrument(skip_all, fields(receipts = receipts.len()), err)]
    async fn ack(&self, receipts: &[Receipt]) -> Result<Vec<AckOutcome>> {
        let receipts = receipts.to_vec();
        self.write(Box::new(move |tx| Box::pin(async move { ack_in(tx, &receipts).await })))
            .await
    }

    async fn change_invisible(
        &self,
        r: &Receipt,
        invisible_until_ms: i64,
    ) -> Result<std::result::Result<InFlight, AckOutcome>> {
        let r = r.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move { change_invisible_in(tx, &r, invisible_until_ms).await })
        }))
        .await
    }

    async fn next_visible_at(&self, sub: &Subscription) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(invisible_until_ms) AS next FROM inflight
             WHERE tenant = $1 AND grp = $2 AND topic = $3 AND waiting = 0",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .fetch_one(&self.reader)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("next")?)
    }

    async fn reset_cursor(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()> {
        let sub = sub.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move {
                let moved = sqlx::query(
                    "INSERT INTO cursors (tenant, grp, topic, queue_id, next_offset)
                     SELECT tenant, $2, topic, queue_id,
                            CASE WHEN $5 < min_offset THEN min_offset WHEN $5 > next_offset THEN next_offset ELSE $5 END
                     FROM queues
                     WHERE tenant = $1 AND topic = $3 AND queue_id = $4
                     ON CONFLICT (tenant, grp, topic, queue_id) DO UPDATE SET next_offset = excluded.next_offset",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(queue)
                .bind(offset)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if moved == 0 {
                    return Err(queue_not_found(&QueueRef {
                        tenant: sub.tenant.clone(),
                        topic: sub.topic.clone(),
                        queue,
                    }));
                }
                Ok(((), Announce::default()))
            })
        }))
        .await
    }

    async fn commit_offset(&self, sub: &Subscription, queue: i32, offset: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO stream_offsets (tenant, grp, topic, queue_id, committed) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant, grp, topic, queue_id) DO UPDATE SET committed = excluded.committed",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .bind(queue)
        .bind(offset)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn committed_offset(&self, sub: &Subscription, queue: i32) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT committed FROM stream_offsets WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .bind(queue)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| int(&r, "committed")).transpose()
    }
}

async fn pop_claim_in(tx: &mut Tx, claim: &PopClaim) -> Result<(Claimed, Announce)> {
    let sub = &claim.subscription;
    let until = claim.invisible_until_ms;
    let mut claimed = Claimed::default();
    // Rows are locked in one global order, so concurrent claims (whose plans rotate over
    // the queues) and dead-letter moves cannot deadlock: the topic's rows by queue id, then
    // offset; the dead-letter queue's row last.
    let mut queues: Vec<&QueueClaim> = claim.queues.iter().collect();
    queues.sort_by_key(|q| q.queue);
    for q in queues {
        let in_range = |o: &i64| (q.cursor_from..q.cursor_to).contains(o);
        if q.cursor_to < q.cursor_from || !q.deliver.iter().chain(&q.park).all(|t| in_range(&t.offset)) {
            return Err(Error::invalid(
                "pop claim",
                format!("offsets outside {}..{}", q.cursor_from, q.cursor_to),
            ));
        }
        let fifo = !q.release.is_empty() || q.deliver.iter().chain(&q.park).any(|t| t.group.is_some());
        let in_order = q.in_order && !q.deliver.is_empty();
        if fifo || in_order {
            // FIFO claims of one queue run one at a time: their group checks hold.
            lock_cursor(tx, sub, q.queue).await?;
        }
        let moved = !(in_order && queue_busy(tx, sub, q.queue).await?)
            && (q.cursor_to == q.cursor_from || move_cursor(tx, sub, q.queue, q.cursor_from, q.cursor_to).await?);
        if moved {
            // The new deliveries of a concurrent group are one checkpoint; a FIFO delivery
            // is one of its own, holding its message group.
            let mut run = Vec::new();
            for t in &q.deliver {
                let Some(g) = &t.group else {
                    run.push(t.offset);
                    continue;
                };
                if group_busy(tx, sub, q.queue, g).await? {
                    // Another claim made the group busy since the plan: this one waits.
                    Checkpoint::parked(sub, q.queue, t.offset, t.group.clone())
                        .store(tx)
                        .await?;
                } else {
                    let mut cp = Checkpoint::delivered(sub, q.queue, vec![t.offset], until, t.group.clone());
                    cp.store(tx).await?;
                    claimed.delivered.extend(cp.in_flight());
                }
            }
            if !run.is_empty() {
                run.sort_unstable();
                let mut cp = Checkpoint::delivered(sub, q.queue, run, until, None);
                cp.store(tx).await?;
                claimed.delivered.extend(cp.in_flight());
            }
            for t in &q.park {
                Checkpoint::parked(sub, q.queue, t.offset, t.group.clone())
                    .store(tx)
                    .await?;
            }
        } else {
            claimed.conflicts.push(q.queue);
        }
        for &offset in &q.release {
            // Waiting messages are one per row.
            let row = sqlx::query(
                    "UPDATE inflight SET waiting = 0, attempt = 1, seq = 1, invisible_until_ms = $6
                     WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_offset = $5 AND waiting = 1
                       AND NOT EXISTS (SELECT 1 FROM inflight a WHERE a.tenant = $1 AND a.grp = $2 AND a.topic = $3
                             AND a.queue_id = $4 AND a.msg_group = inflight.msg_group AND a.waiting = 0)
                       AND msg_offset = (SELECT MIN(m.msg_offset) FROM inflight m WHERE m.tenant = $1 AND m.grp = $2
                             AND m.topic = $3 AND m.queue_id = $4 AND m.msg_group = inflight.msg_group AND m.waiting = 1)
                     RETURNING msg_offset, attempt, seq, invisible_until_ms, msg_group",
                )
                .bind(&sub.tenant)
                .bind(&sub.group)
                .bind(&sub.topic)
                .bind(q.queue)
                .bind(offset)
                .bind(until)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(r) = row {
                claimed.delivered.push(in_flight_from_row(q.queue, &r)?);
            }
        }
        // Still-expired deliveries: those of one checkpoint move together (all of it: the
        // row is updated in place), with the next attempt and seq. A row changed meanwhile
        // is skipped.
        for (mut cp, offsets) in expired_holding(tx, sub, q.queue, &q.redeliver, claim.now_ms).await? {
            let mut next = cp.split(&offsets, until, 1);
            if cp.store(tx).await? && next.store(tx).await? {
                claimed.delivered.extend(next.in_flight());
            }
        }
        let dead = expired_holding(tx, sub, q.queue, &q.dead_letter, claim.now_ms).await?;
        if !dead.is_empty() && claim.dead_letter_topic.is_none() && !sub.is_broadcast() {
            return Err(Error::invalid("pop claim", "dead letters without a dead-letter topic"));
        }
        for (mut cp, offsets) in dead {
            offsets.iter().for_each(|&o| {
                cp.remove(o);
            });
            if cp.store(tx).await? {
                claimed.dead_lettered.extend(offsets.into_iter().map(|o| (q.queue, o)));
            }
        }
    }
    let mut topics = HashSet::new();
    if let Some(dlq) = claim
        .dead_letter_topic
        .as_ref()
        .filter(|_| !claimed.dead_lettered.is_empty())
    {
        for &(queue, offset) in &claimed.dead_lettered {
            let from = QueueRef {
                tenant: sub.tenant.clone(),
                topic: sub.topic.clone(),
                queue,
            };
            append_dead_letter(tx, &from, offset, dlq, claim.now_ms).await?;
        }
        topics.insert((sub.tenant.clone(), dlq.clone()));
    }
    Ok((claimed, Announce::appended(topics)))
}

/// Whether the group has a message of the queue in flight.
async fn queue_busy(tx: &mut Tx, sub: &Subscription, queue: i32) -> Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS busy FROM inflight WHERE tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND waiting = 0
         LIMIT 1",
    )
    .bind(&sub.tenant)
    .bind(&sub.group)
    .bind(&sub.topic)
    .bind(queue)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

/// The checkpoints of a queue holding the given deliveries `(offset, seq)` and expired at
/// `now_ms`, each with the offsets it holds, in lock order.
async fn expired_holding(
    tx: &mut Tx,
    sub: &Subscription,
    queue: i32,
    deliveries: &[(i64, i64)],
    now_ms: i64,
) -> Result<Vec<(Checkpoint, Vec<i64>)>> {
    let receipts: Vec<Receipt> = deliveries
        .iter()
        .map(|&(offset, seq)| Receipt {
            subscription: sub.clone(),
            queue,
            offset,
            seq,
        })
        .collect();
    let (held, _) = Checkpoint::holding_each(tx, &receipts).await?;
    Ok(held
        .into_iter()
        .filter(|(cp, _)| cp.expired(now_ms))
        .map(|(cp, held)| {
            let mut offsets: Vec<i64> = held.iter().map(|&i| receipts[i].offset).collect();
            offsets.sort_unstable();
            offsets.dedup();
            (cp, offsets)
        })
        .collect())
}

async fn dead_letter_in(
    tx: &mut Tx,
    r: &Receipt,
    dead_letter_topic: &str,
    now_ms: i64,
) -> Result<(std::result::Result<(), AckOutcome>, Announce)> {
    let removed = Checkpoint::change_holding(tx, r, |cp| {
        cp.remove(r.offset);
        None
    })
    .await?;
    if removed.is_none() {
        let why = why_not_in_flight(tx, r).await?;
        return Ok((Err(why), Announce::default()));
    }
    let queue = QueueRef {
        tenant: r.subscription.tenant.clone(),
        topic: r.subscription.topic.clone(),
        queue: r.queue,
    };
    append_dead_letter(tx, &queue, r.offset, dead_letter_topic, now_ms).await?;
    // The dead-letter topic has news; a FIFO message group behind this message is free.
    let topics: HashSet<(String, String)> = [
        (r.subscription.tenant.clone(), dead_letter_topic.to_string()),
        (r.subscription.tenant.clone(), r.subscription.topic.clone()),
    ]
    .into();
    Ok((Ok(()), Announce::appended(topics)))
}

async fn ack_in(tx: &mut Tx, receipts: &[Receipt]) -> Result<(Vec<AckOutcome>, Announce)> {
    // Acking a FIFO message frees its message group: receivers waiting for it wake up.
    let mut freed = HashSet::new();
    let mut outcomes = vec![AckOutcome::Unknown; receipts.len()];
    let (held, unheld) = Checkpoint::holding_each(tx, receipts).await?;
    for i in unheld {
        outcomes[i] = why_not_in_flight(tx, &receipts[i]).await?;
    }
    for (mut cp, acks) in held {
        let mut removed = Vec::with_capacity(acks.len());
        for i in acks {
            // The same receipt twice in one batch: the second finds it acknowledged.
            match cp.remove(receipts[i].offset) {
                true => removed.push(i),
                false => outcomes[i] = AckOutcome::AlreadyAcked,
            }
        }
        let group = cp.group.is_some();
        if cp.store(tx).await? {
            removed.iter().for_each(|&i| outcomes[i] = AckOutcome::Acked);
        } else {
            // Changed meanwhile by another node: one receipt at a time, read again.
            for &i in &removed {
                let r = &receipts[i];
                let acked = Checkpoint::change_holding(tx, r, |cp| {
                    cp.remove(r.offset);
                    None
                })
                .await?;
                outcomes[i] = match acked {
                    Some(_) => AckOutcome::Acked,
                    None => why_not_in_flight(tx, r).await?,
                };
            }
        }
        if group && removed.iter().any(|&i| outcomes[i] == AckOutcome::Acked) {
            freed.insert((cp.sub.tenant.clone(), cp.sub.topic.clone()));
        }
    }
    Ok((outcomes, Announce::appended(freed)))
}

async fn change_invisible_in(
    tx: &mut Tx,
    r: &Receipt,
    invisible_until_ms: i64,
) -> Result<(std::result::Result<InFlight, AckOutcome>, Announce)> {
    // The delivery moves to a checkpoint of its own with the next seq: the other receipts
    // of its checkpoint stay valid.
    let changed = Checkpoint::change_holding(tx, r, |cp| Some(cp.split(&[r.offset], invisible_until_ms, 0))).await?;
    let moved = changed
        .and_then(|(_, split)| split)
        .and_then(|cp| cp.in_flight().next());
    let result = match moved {
        Some(f) => Ok(f),
        None => Err(why_not_in_flight(tx, r).await?),
    };
    Ok((result, Announce::default()))
}
