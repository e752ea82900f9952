//! SQL of `Consumption`: pop claims, acks, invisible time, FIFO, dead letters, stream offsets.

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
        let mut expired_by_queue: std::collections::HashMap<i32, Vec<InFlight>> = std::collections::HashMap::new();
        for r in sqlx::query(
            "SELECT queue_id, msg_offset, attempt, seq, invisible_until_ms, msg_group FROM
               (SELECT queue_id, msg_offset, attempt, seq, invisible_until_ms, msg_group,
                       ROW_NUMBER() OVER (PARTITION BY queue_id ORDER BY msg_offset) AS nth
                FROM inflight
                WHERE tenant = $1 AND grp = $2 AND topic = $3 AND waiting = 0 AND invisible_until_ms <= $4) e
             WHERE nth <= $5 ORDER BY queue_id, msg_offset",
        )
        .bind(&sub.tenant)
        .bind(&sub.group)
        .bind(&sub.topic)
        .bind(now_ms)
        .bind(i64::from(max_expired))
        .fetch_all(&mut *tx)
        .await?
        {
            let queue = int(&r, "queue_id")? as i32;
            expired_by_queue
                .entry(queue)
                .or_default()
                .push(in_flight_from_row(queue, &r)?);
        }
        let mut states = Vec::with_capacity(queues.len());
        for &queue in queues {
            let Some(&(cursor, end)) = bounds.get(&queue) else {
                continue;
            };
            let expired = expired_by_queue.remove(&queue).unwrap_or_default();
            let (ready, busy) = if fifo {
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
                (ready, busy)
            } else {
                (Vec::new(), Vec::new())
            };
            states.push(QueuePopState {
                queue,
                cursor,
                end,
                expired,
                ready,
                busy,
            });
        }
        tx.commit().await?;
        Ok(states)
    }

    #[instrument(skip_all, fields(group = %claim.subscription.group, topic = %claim.subscription.topic), err)]
    async fn pop_claim(&self, claim: &PopClaim) -> Result<Claimed> {
        let claim = claim.clone();
        self.write(Box::new(move |tx| {
            Box::pin(async move { pop_claim_in(tx, &claim).await })
        }))
        .await
    }

    async fn dead_letter(&self, r: &Receipt, dead_letter_topic: &str) -> Result<std::result::Result<(), AckOutcome>> {
        let (r, dlq) = (r.clone(), dead_letter_topic.to_string());
        self.write(Box::new(move |tx| {
            Box::pin(async move { dead_letter_in(tx, &r, &dlq).await })
        }))
        .await
    }

    async fn dead_letter_expired(&self, now_ms: i64, limit: u32) -> Result<u32> {
        let candidates = sqlx::query(
            "SELECT i.tenant, i.grp, i.topic, i.queue_id, i.msg_offset, i.seq FROM inflight i
             JOIN consumer_groups g ON g.tenant = i.tenant AND g.name = i.grp
             WHERE i.waiting = 0 AND i.invisible_until_ms <= $1 AND i.attempt >= g.max_attempts
             LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut moved = 0;
        // One small transaction per message: an in-flight row, then a dead-letter queue row,
        // the order pop claims lock them in.
        for row in &candidates {
            let receipt = Receipt {
                subscription: Subscription {
                    tenant: row.try_get("tenant")?,
                    group: row.try_get("grp")?,
                    topic: row.try_get("topic")?,
                },
                queue: int(row, "queue_id")? as i32,
                offset: int(row, "msg_offset")?,
                seq: int(row, "seq")?,
            };
            let dlq = dead_letter_topic(&receipt.subscription.group);
            let mut tx = self.writer.begin().await?;
            let sql = format!(
                "DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6 AND waiting = 0 AND invisible_until_ms <= $7"
            );
            let gone = inflight_query(&sql, &receipt)
                .bind(receipt.seq)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone != 1 {
                continue; // acked or redelivered meanwhile
            }
            ensure_dead_letter_topic(&mut tx, &receipt.subscription.tenant, &dlq, now_ms).await?;
            let from = QueueRef {
                tenant: receipt.subscription.tenant.clone(),
                topic: receipt.subscription.topic.clone(),
                queue: receipt.queue,
            };
            append_copy_of(&mut tx, &from, receipt.offset, &dlq, now_ms).await?;
            let topics: HashSet<(String, String)> =
                [(from.tenant.clone(), dlq), (from.tenant.clone(), from.topic.clone())].into();
            self.notify_in(&mut tx, &topics, false).await?;
            tx.commit().await?;
            self.notify_after(&topics, false);
            moved += 1;
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
    let mut claimed = Claimed::default();
    let mut dead_letters = false;
    // Rows are locked in one global order (queue id), so concurrent claims, whose
    // plans rotate over the queues, cannot deadlock.
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
        let queue = QueueRef {
            tenant: sub.tenant.clone(),
            topic: sub.topic.clone(),
            queue: q.queue,
        };
        let fifo = !q.release.is_empty() || q.deliver.iter().chain(&q.park).any(|t| t.group.is_some());
        if fifo {
            // FIFO claims of one queue run one at a time: their group checks hold.
            lock_cursor(tx, sub, q.queue).await?;
        }
        let moved = q.cursor_to == q.cursor_from || move_cursor(tx, sub, q.queue, q.cursor_from, q.cursor_to).await?;
        if moved {
            for t in &q.deliver {
                let busy = match &t.group {
                    Some(g) => group_busy(tx, sub, q.queue, g).await?,
                    None => false,
                };
                if busy {
                    // Another claim made the group busy since the plan: this one waits.
                    insert_inflight(tx, sub, q.queue, t, None).await?;
                } else {
                    insert_inflight(tx, sub, q.queue, t, Some(claim.invisible_until_ms)).await?;
                    claimed.delivered.push(InFlight {
                        queue: q.queue,
                        offset: t.offset,
                        attempt: 1,
                        seq: 1,
                        invisible_until_ms: claim.invisible_until_ms,
                        group: t.group.clone(),
                    });
                }
            }
            for t in &q.park {
                insert_inflight(tx, sub, q.queue, t, None).await?;
            }
        } else {
            claimed.conflicts.push(q.queue);
        }
        for &offset in &q.release {
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
                .bind(claim.invisible_until_ms)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(r) = row {
                claimed.delivered.push(in_flight_from_row(q.queue, &r)?);
            }
        }
        for &(offset, seq) in &q.redeliver {
            let sql = format!(
                "UPDATE inflight SET attempt = attempt + 1, seq = seq + 1, invisible_until_ms = $6
                     WHERE {INFLIGHT_KEY} AND seq = $7 AND waiting = 0 AND invisible_until_ms <= $8
                     RETURNING msg_offset, attempt, seq, invisible_until_ms, msg_group"
            );
            let receipt = Receipt {
                subscription: sub.clone(),
                queue: q.queue,
                offset,
                seq,
            };
            let row = inflight_query(&sql, &receipt)
                .bind(claim.invisible_until_ms)
                .bind(seq)
                .bind(claim.now_ms)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(r) = row {
                claimed.delivered.push(in_flight_from_row(q.queue, &r)?);
            }
        }
        for &(offset, seq) in &q.dead_letter {
            let Some(dlq) = &claim.dead_letter_topic else {
                return Err(Error::invalid("pop claim", "dead letters without a dead-letter topic"));
            };
            let sql = format!(
                "DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6 AND waiting = 0 AND invisible_until_ms <= $7"
            );
            let receipt = Receipt {
                subscription: sub.clone(),
                queue: q.queue,
                offset,
                seq,
            };
            let gone = inflight_query(&sql, &receipt)
                .bind(seq)
                .bind(claim.now_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if gone == 1 {
                append_copy_of(tx, &queue, offset, dlq, claim.now_ms).await?;
                claimed.dead_lettered.push((q.queue, offset));
                dead_letters = true;
            }
        }
    }
    let topics: HashSet<(String, String)> = claim
        .dead_letter_topic
        .iter()
        .filter(|_| dead_letters)
        .map(|t| (sub.tenant.clone(), t.clone()))
        .collect();
    Ok((claimed, Announce::appended(topics)))
}

async fn dead_letter_in(
    tx: &mut Tx,
    r: &Receipt,
    dead_letter_topic: &str,
) -> Result<(std::result::Result<(), AckOutcome>, Announce)> {
    let sql = format!("DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6");
    let gone = inflight_query(&sql, r)
        .bind(r.seq)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if gone != 1 {
        let why = why_not_in_flight(tx, r).await?;
        return Ok((Err(why), Announce::default()));
    }
    let queue = QueueRef {
        tenant: r.subscription.tenant.clone(),
        topic: r.subscription.topic.clone(),
        queue: r.queue,
    };
    append_copy_of(tx, &queue, r.offset, dead_letter_topic, now_wall_ms()).await?;
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
    let sql = format!("DELETE FROM inflight WHERE {INFLIGHT_KEY} AND seq = $6 RETURNING msg_group");
    // Rows are deleted in one global order, so concurrent acks cannot deadlock.
    let mut order: Vec<usize> = (0..receipts.len()).collect();
    order.sort_by(|&a, &b| lock_order(&receipts[a]).cmp(&lock_order(&receipts[b])));
    let mut outcomes = vec![AckOutcome::Unknown; receipts.len()];
    for i in order {
        let r = &receipts[i];
        let deleted = inflight_query(&sql, r).bind(r.seq).fetch_optional(&mut **tx).await?;
        outcomes[i] = match deleted {
            Some(row) => {
                if row.try_get::<Option<String>, _>("msg_group")?.is_some() {
                    freed.insert((r.subscription.tenant.clone(), r.subscription.topic.clone()));
                }
                AckOutcome::Acked
            }
            None => why_not_in_flight(tx, r).await?,
        };
    }
    Ok((outcomes, Announce::appended(freed)))
}

async fn change_invisible_in(
    tx: &mut Tx,
    r: &Receipt,
    invisible_until_ms: i64,
) -> Result<(std::result::Result<InFlight, AckOutcome>, Announce)> {
    let sql = format!(
        "UPDATE inflight SET seq = seq + 1, invisible_until_ms = $6 WHERE {INFLIGHT_KEY} AND seq = $7
             RETURNING msg_offset, attempt, seq, invisible_until_ms, msg_group"
    );
    let row = inflight_query(&sql, r)
        .bind(invisible_until_ms)
        .bind(r.seq)
        .fetch_optional(&mut **tx)
        .await?;
    let result = match row {
        Some(row) => Ok(in_flight_from_row(r.queue, &row)?),
        None => Err(why_not_in_flight(tx, r).await?),
    };
    Ok((result, Announce::default()))
}
