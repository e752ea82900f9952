//! Finding messages by id, key or time: the message index names recent messages (within
//! `ingest.index_window`); older ones are found by a bounded scan of a topic's queues over a
//! time range (a 5.x message id carries the second it was made, which bounds that range).

use strata_meta::model::{IndexedMessage, QueueRef};
use strata_proto::wal::WalRecord;

use crate::error::Result;
use crate::reader::Reader;

/// Records one search reads at most over all queues (~100 MiB of 1 KiB messages): what one
/// request may cost.
pub const MAX_SCAN: i64 = 100_000;
/// Records read per step of a scan.
const SCAN_STEP: i64 = 1_000;
/// How far from the time in its id a message is looked for: clocks differ, and a producer
/// may send a message a while after making its id.
const ID_TIME_SLACK_MS: i64 = 5 * 60_000;
/// 2021-01-01T00:00:00Z: the epoch of a 5.x message id's seconds.
const ID_EPOCH_MS: i64 = 1_609_459_200_000;

/// A message found, where it is.
#[derive(Clone, Debug)]
pub struct Found {
    pub topic: String,
    pub queue: i32,
    pub offset: i64,
    pub record: WalRecord,
}

/// Where to scan: a topic's queues, messages stored within `from_ms..=to_ms`.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    pub tenant: &'a str,
    pub topic: &'a str,
    pub queues: i32,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What a search found, and whether it read everything in its scope.
#[derive(Debug, Default)]
pub struct Searched {
    pub found: Vec<Found>,
    /// The scan stopped at [`MAX_SCAN`] records: narrow the time range to see the rest.
    pub cut_short: bool,
}

/// When a 5.x message id (version 0x01, 17 bytes as hex) was made, in ms since the epoch.
pub fn id_time_ms(id: &str) -> Option<i64> {
    if id.len() != 34 || !id.starts_with("01") {
        return None;
    }
    let secs = u32::from_str_radix(id.get(18..26)?, 16).ok()?;
    Some(ID_EPOCH_MS + i64::from(secs) * 1000)
}

impl Reader {
    /// The messages the index names, read from their queues (those still retained).
    pub async fn read_indexed(&self, tenant: &str, hits: &[IndexedMessage]) -> Result<Vec<Found>> {
        let mut found = Vec::with_capacity(hits.len());
        for hit in hits {
            let queue = QueueRef {
                tenant: tenant.to_string(),
                topic: hit.topic.clone(),
                queue: hit.queue,
            };
            let records = self.read(&queue, hit.offset, hit.offset + 1).await?.all()?;
            if let Some((offset, record)) = records.into_iter().find(|(o, _)| *o == hit.offset) {
                found.push(Found {
                    topic: hit.topic.clone(),
                    queue: hit.queue,
                    offset,
                    record,
                });
            }
        }
        Ok(found)
    }

    /// Messages of the scope that `keep` accepts, oldest first per queue, at most `limit`.
    pub async fn scan(&self, scope: &Scope<'_>, limit: usize, keep: impl Fn(&WalRecord) -> bool) -> Result<Searched> {
        let mut out = Searched::default();
        let mut budget = MAX_SCAN;
        'queues: for queue in 0..scope.queues {
            let at = QueueRef {
                tenant: scope.tenant.to_string(),
                topic: scope.topic.to_string(),
                queue,
            };
            let mut from = self.offset_at_time(&at, scope.from_ms).await?;
            let (_, end) = self.coordinator().queue_bounds(&at).await?;
            while from < end {
                if budget <= 0 {
                    out.cut_short = true;
                    break 'queues;
                }
                let to = end.min(from + SCAN_STEP.min(budget));
                let records = self.read(&at, from, to).await?.all()?;
                budget -= to - from;
                from = to;
                for (offset, record) in records {
                    if record.store_timestamp_ms > scope.to_ms {
                        continue 'queues;
                    }
                    if keep(&record) {
                        out.found.push(Found {
                            topic: scope.topic.to_string(),
                            queue,
                            offset,
                            record,
                        });
                        if out.found.len() >= limit {
                            break 'queues;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// A message by id: through the index, else (given its topic) by scanning around the time
    /// in its id.
    pub async fn find_by_id(&self, tenant: &str, id: &str, topic: Option<(&str, i32)>) -> Result<Searched> {
        let hits = self.coordinator().find_messages(tenant, &[id.to_string()]).await?;
        let found = self.read_indexed(tenant, &hits).await?;
        if !found.is_empty() {
            return Ok(Searched {
                found,
                cut_short: false,
            });
        }
        let (Some((topic, queues)), Some(made)) = (topic, id_time_ms(id)) else {
            return Ok(Searched::default());
        };
        let scope = Scope {
            tenant,
            topic,
            queues,
            from_ms: made - ID_TIME_SLACK_MS,
            to_ms: made + ID_TIME_SLACK_MS,
        };
        self.scan(&scope, 1, |r| r.message_id == id).await
    }

    /// Messages of a topic with `key` stored within the scope's time range, at most `limit`:
    /// from the index for what is newer than `indexed_since`, by scanning before it.
    pub async fn find_by_key(
        &self,
        scope: &Scope<'_>,
        key: &str,
        limit: usize,
        indexed_since: i64,
    ) -> Result<Searched> {
        let mut out = Searched::default();
        if scope.from_ms < indexed_since {
            let older = Scope {
                to_ms: scope.to_ms.min(indexed_since - 1),
                ..scope.clone()
            };
            out = self.scan(&older, limit, |r| r.keys.iter().any(|k| k == key)).await?;
        }
        let left = limit.saturating_sub(out.found.len());
        if left > 0 && scope.to_ms >= indexed_since {
            let hits = self
                .coordinator()
                .messages_by_key(
                    scope.tenant,
                    scope.topic,
                    key,
                    scope.from_ms.max(indexed_since),
                    scope.to_ms,
                    left as u32,
                )
                .await?;
            out.found.extend(self.read_indexed(scope.tenant, &hits).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_tell_when_they_were_made() {
        // Seconds 0x0A0B0C0D after 2021-01-01.
        let id = "01AABBCCDDEEFF12340A0B0C0D00000001";
        assert_eq!(id_time_ms(id), Some(ID_EPOCH_MS + 0x0A0B_0C0D * 1000));
        assert_eq!(id_time_ms("0A0000000000000000000000000000000000"), None, "not 5.x");
        assert_eq!(id_time_ms("01XYZ"), None);
    }
}
