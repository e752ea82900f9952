//! Pop checkpoints: what a group has in flight on a queue, one `inflight` row per claim
//! rather than per message (DESIGN §5).
//!
//! A row holds the pending offsets of one delivery — delivered, neither acknowledged nor
//! moved — that share an attempt, a `seq`, an invisible deadline and (FIFO) a message group:
//! `msg_offset` is the lowest, `last_offset` the highest, `rest` the others as runs relative
//! to the lowest (`"1-31"`, `"2,5-7"`; NULL when the row holds one offset). A receive of 32
//! messages writes one row; acks shrink it and delete it when nothing is left; redelivering
//! or changing the invisible time of part of a row splits that part off with `seq + 1`.
//! An offset is pending in at most one row, and its `seq` grows with every move, so
//! `(offset, seq)` — what a receipt carries — names exactly one row.
//!
//! FIFO deliveries and waiting (parked) messages keep one offset per row: each carries its
//! own message group, which is what the group checks query.
//!
//! Rows change by compare-and-set on what was read (lowest offset, `rest`, `seq`): on
//! PostgreSQL two nodes may change one row at once, and the loser reads it again.

use super::*;

/// Columns every checkpoint read selects.
pub(super) const COLUMNS: &str =
    "tenant, grp, topic, queue_id, msg_offset, rest, attempt, seq, invisible_until_ms, msg_group, waiting";

/// Most times a change is retried after another transaction changed the row meanwhile.
const MAX_RETRIES: usize = 16;

/// One checkpoint row, as read or about to be written.
#[derive(Clone, Debug)]
pub(super) struct Checkpoint {
    pub sub: Subscription,
    pub queue: i32,
    /// Pending offsets, ascending; empty once everything was acknowledged or moved.
    pub offsets: Vec<i64>,
    pub attempt: i64,
    pub seq: i64,
    pub invisible_until_ms: i64,
    pub group: Option<String>,
    pub waiting: bool,
    /// The row as stored (lowest offset, `rest`, `seq`); `None` until inserted.
    stored: Option<(i64, Option<String>, i64)>,
}

impl Checkpoint {
    /// Offsets delivered now for the first time, in flight until `invisible_until_ms`.
    pub fn delivered(sub: &Subscription, queue: i32, offsets: Vec<i64>, until: i64, group: Option<String>) -> Self {
        Self {
            sub: sub.clone(),
            queue,
            offsets,
            attempt: 1,
            seq: 1,
            invisible_until_ms: until,
            group,
            waiting: false,
            stored: None,
        }
    }

    /// A FIFO message passed by the cursor while its message group was busy.
    pub fn parked(sub: &Subscription, queue: i32, offset: i64, group: Option<String>) -> Self {
        Self {
            attempt: 0,
            seq: 0,
            invisible_until_ms: 0,
            waiting: true,
            ..Self::delivered(sub, queue, vec![offset], 0, group)
        }
    }

    /// Splits `offsets` (pending here, ascending) off into a new checkpoint with the next
    /// `seq`, in flight until `until`; `attempt` is this one's plus `extra_attempt`. Store
    /// this one, then the new one.
    pub fn split(&mut self, offsets: &[i64], until: i64, extra_attempt: i64) -> Self {
        self.offsets.retain(|o| offsets.binary_search(o).is_err());
        let mut next = Self {
            offsets: offsets.to_vec(),
            attempt: self.attempt + extra_attempt,
            seq: self.seq + 1,
            invisible_until_ms: until,
            stored: None,
            ..self.clone()
        };
        if self.offsets.is_empty() {
            // All of it moves: the new checkpoint replaces the row in place.
            next.stored = self.stored.take();
        }
        next
    }

    /// Removes a pending offset; false if it was not pending here.
    pub fn remove(&mut self, offset: i64) -> bool {
        match self.offsets.binary_search(&offset) {
            Ok(i) => {
                self.offsets.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether the receipt names a delivery pending in this checkpoint.
    pub fn holds(&self, r: &Receipt) -> bool {
        self.seq == r.seq && self.queue == r.queue && self.sub == r.subscription && self.pending(r.offset)
    }

    pub fn pending(&self, offset: i64) -> bool {
        self.offsets.binary_search(&offset).is_ok()
    }

    /// Whether it is in flight (not waiting) and visible again at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        !self.waiting && self.invisible_until_ms <= now_ms
    }

    /// The in-flight state of each pending offset.
    pub fn in_flight(&self) -> impl Iterator<Item = InFlight> + '_ {
        self.offsets.iter().map(|&offset| InFlight {
            queue: self.queue,
            offset,
            attempt: self.attempt as i32,
            seq: self.seq,
            invisible_until_ms: self.invisible_until_ms,
            group: self.group.clone(),
        })
    }

    /// The order rows are changed in within a transaction, across subscriptions: one
    /// global order, so concurrent transactions on PostgreSQL cannot deadlock.
    pub fn lock_order(&self) -> (&str, &str, &str, i32, i64) {
        let first = self.stored.as_ref().map_or(i64::MIN, |s| s.0);
        (&self.sub.tenant, &self.sub.group, &self.sub.topic, self.queue, first)
    }

    pub fn from_row(row: &AnyRow) -> Result<Self> {
        let first = int(row, "msg_offset")?;
        let rest: Option<String> = row.try_get("rest")?;
        let seq = int(row, "seq")?;
        Ok(Self {
            sub: Subscription {
                tenant: row.try_get("tenant")?,
                group: row.try_get("grp")?,
                topic: row.try_get("topic")?,
            },
            queue: int(row, "queue_id")? as i32,
            offsets: decode_offsets(first, rest.as_deref())?,
            attempt: int(row, "attempt")?,
            seq,
            invisible_until_ms: int(row, "invisible_until_ms")?,
            group: row.try_get("msg_group")?,
            waiting: int(row, "waiting")? != 0,
            stored: Some((first, rest, seq)),
        })
    }

    /// Reads the checkpoints matching `condition` (on `$1..`, bound by `bind`; it may end in
    /// a LIMIT).
    pub async fn select(
        tx: &mut Tx,
        condition: &str,
        bind: impl FnOnce(AnyQuery<'_>) -> AnyQuery<'_>,
    ) -> Result<Vec<Self>> {
        let sql = format!("SELECT {COLUMNS} FROM inflight WHERE {condition}");
        bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(Self::from_row)
            .collect()
    }

    /// The checkpoint holding `offset` of the receipt's queue, under the receipt's `seq`
    /// (or under any, with `any_seq`).
    pub async fn holding(tx: &mut Tx, r: &Receipt, any_seq: bool) -> Result<Option<Self>> {
        let seq = if any_seq { "" } else { " AND seq = $6" };
        let condition = format!(
            "tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_offset <= $5 AND last_offset >= $5{seq}"
        );
        let found = Self::select(tx, &condition, |q| {
            q.bind(&r.subscription.tenant)
                .bind(&r.subscription.group)
                .bind(&r.subscription.topic)
                .bind(r.queue)
                .bind(r.offset)
                .bind(r.seq)
        })
        .await?;
        Ok(found.into_iter().find(|c| c.pending(r.offset)))
    }

    /// The checkpoints holding the receipts' deliveries, each read once, with the indexes of
    /// the receipts it holds, in lock order (rows written in one global order cannot
    /// deadlock); and the indexes of receipts no checkpoint holds.
    pub async fn holding_each(tx: &mut Tx, receipts: &[Receipt]) -> Result<(Vec<(Self, Vec<usize>)>, Vec<usize>)> {
        let (mut held, mut unheld): (Vec<(Self, Vec<usize>)>, Vec<usize>) = (Vec::new(), Vec::new());
        for (i, r) in receipts.iter().enumerate() {
            if let Some((_, those)) = held.iter_mut().find(|(cp, _)| cp.holds(r)) {
                those.push(i);
                continue;
            }
            match Self::holding(tx, r, false).await? {
                Some(cp) => held.push((cp, vec![i])),
                None => unheld.push(i),
            }
        }
        held.sort_by(|a, b| a.0.lock_order().cmp(&b.0.lock_order()));
        Ok((held, unheld))
    }

    /// Writes the checkpoint: inserts a new one, or replaces (deletes, once nothing is
    /// pending) the row it was read from if that row did not change meanwhile. False if it
    /// did: read it again.
    pub async fn store(&mut self, tx: &mut Tx) -> Result<bool> {
        let rest = encode_rest(&self.offsets);
        let (first, last) = match (self.offsets.first(), self.offsets.last()) {
            (Some(&first), Some(&last)) => (first, last),
            _ => (0, 0),
        };
        let Some((was_first, was_rest, was_seq)) = &self.stored else {
            if self.offsets.is_empty() {
                return Ok(true);
            }
            sqlx::query(
                "INSERT INTO inflight (tenant, grp, topic, queue_id, msg_offset, last_offset, rest, attempt, seq,
                   invisible_until_ms, msg_group, waiting)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&self.sub.tenant)
            .bind(&self.sub.group)
            .bind(&self.sub.topic)
            .bind(self.queue)
            .bind(first)
            .bind(last)
            .bind(rest.as_deref())
            .bind(self.attempt)
            .bind(self.seq)
            .bind(self.invisible_until_ms)
            .bind(self.group.as_deref())
            .bind(i64::from(self.waiting))
            .execute(&mut **tx)
            .await?;
            self.stored = Some((first, rest, self.seq));
            return Ok(true);
        };
        const KEY: &str = "tenant = $1 AND grp = $2 AND topic = $3 AND queue_id = $4 AND msg_offset = $5
             AND COALESCE(rest, '') = $6 AND seq = $7";
        let keyed = |sql: String| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(self.sub.tenant.clone())
                .bind(self.sub.group.clone())
                .bind(self.sub.topic.clone())
                .bind(self.queue)
                .bind(*was_first)
                .bind(was_rest.clone().unwrap_or_default())
                .bind(*was_seq)
        };
        let changed = if self.offsets.is_empty() {
            keyed(format!("DELETE FROM inflight WHERE {KEY}"))
                .execute(&mut **tx)
                .await?
        } else {
            keyed(format!(
                "UPDATE inflight SET msg_offset = $8, last_offset = $9, rest = $10, attempt = $11, seq = $12,
                   invisible_until_ms = $13, waiting = $14 WHERE {KEY}"
            ))
            .bind(first)
            .bind(last)
            .bind(rest.clone())
            .bind(self.attempt)
            .bind(self.seq)
            .bind(self.invisible_until_ms)
            .bind(i64::from(self.waiting))
            .execute(&mut **tx)
            .await?
        }
        .rows_affected();
        if changed != 1 {
            return Ok(false);
        }
        self.stored = Some((first, rest, self.seq));
        Ok(true)
    }

    /// Applies `change` to the checkpoint holding the receipt's delivery and stores it with
    /// what `change` split off, reading again while another transaction changes the row
    /// meanwhile. `None` if no checkpoint holds the delivery (see [`why_not_in_flight`]).
    pub async fn change_holding(
        tx: &mut Tx,
        r: &Receipt,
        change: impl Fn(&mut Self) -> Option<Self>,
    ) -> Result<Option<(Self, Option<Self>)>> {
        for _ in 0..MAX_RETRIES {
            let Some(mut cp) = Self::holding(tx, r, false).await? else {
                return Ok(None);
            };
            let mut split = change(&mut cp);
            let stored = cp.store(tx).await?
                && match split.as_mut() {
                    Some(split) => split.store(tx).await?,
                    None => true,
                };
            if stored {
                return Ok(Some((cp, split)));
            }
        }
        Err(Error::Inconsistent(format!(
            "the checkpoint of {}/{}/{} queue {} offset {} kept changing under this transaction",
            r.subscription.tenant, r.subscription.group, r.subscription.topic, r.queue, r.offset
        )))
    }
}

pub(super) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Why a receipt matches no pending delivery.
pub(super) async fn why_not_in_flight(tx: &mut Tx, r: &Receipt) -> Result<AckOutcome> {
    if Checkpoint::holding(tx, r, true).await?.is_some() {
        return Ok(AckOutcome::Stale);
    }
    let delivered = matches!(cursor(tx, &r.subscription, r.queue).await?, Some((c, _)) if r.offset < c);
    Ok(if delivered {
        AckOutcome::AlreadyAcked
    } else {
        AckOutcome::Unknown
    })
}

/// `offsets[1..]` as comma-separated runs relative to `offsets[0]`; `None` for one offset.
fn encode_rest(offsets: &[i64]) -> Option<String> {
    use std::fmt::Write;
    let (&first, rest) = offsets.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < rest.len() {
        let start = i;
        while i + 1 < rest.len() && rest[i + 1] == rest[i] + 1 {
            i += 1;
        }
        let sep = if out.is_empty() { "" } else { "," };
        let _ = if i == start {
            write!(out, "{sep}{}", rest[start] - first)
        } else {
            write!(out, "{sep}{}-{}", rest[start] - first, rest[i] - first)
        };
        i += 1;
    }
    Some(out)
}

/// Most offsets one checkpoint row may expand to (a corrupt `rest` must not exhaust memory).
const MAX_OFFSETS: i64 = 1 << 20;

fn decode_offsets(first: i64, rest: Option<&str>) -> Result<Vec<i64>> {
    let corrupt = || Error::Inconsistent(format!("checkpoint at offset {first}: bad offsets {rest:?}"));
    let mut offsets = vec![first];
    for run in rest.into_iter().flat_map(|r| r.split(',')) {
        let (a, b) = run.split_once('-').unwrap_or((run, run));
        let (a, b): (i64, i64) = (a.parse().map_err(|_| corrupt())?, b.parse().map_err(|_| corrupt())?);
        let last = offsets.last().copied().unwrap_or(first) - first;
        if a <= last || b < a || b - a >= MAX_OFFSETS - offsets.len() as i64 {
            return Err(corrupt());
        }
        offsets.extend((a..=b).map(|d| first + d));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_as_runs() {
        for offsets in [vec![7], vec![0, 1, 2, 3], vec![10, 12, 15, 16, 17, 30], vec![5, 6, 9]] {
            let rest = encode_rest(&offsets);
            assert_eq!(decode_offsets(offsets[0], rest.as_deref()).ok(), Some(offsets.clone()));
        }
        assert_eq!(encode_rest(&[100, 101, 102, 103]).as_deref(), Some("1-3"));
        assert_eq!(encode_rest(&[10, 12, 15, 16, 17, 30]).as_deref(), Some("2,5-7,20"));
        assert_eq!(encode_rest(&[3]), None);
    }

    #[test]
    fn corrupt_offsets_are_an_error_not_a_panic() {
        for bad in ["", "x", "3-1", "0", "2,2", "5,3", "1-", "-1", "1-99999999999"] {
            assert!(decode_offsets(10, Some(bad)).is_err(), "{bad:?}");
        }
    }
}
