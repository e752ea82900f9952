//! The console's charts over time: a namespace's messages produced and delivered and its
//! groups' lag, sampled from the coordinator while someone looks at that namespace. The
//! samples are cluster-wide (queue ends and group positions are the coordinator's), kept in
//! this node's memory only: another node's console starts its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_meta::model::StartFrom;
use strata_meta::{Clock, Coordinator};

use super::chart::Series;

/// Topics and groups a sample reads at most per namespace (the charts cover these).
const MAX_SUBJECTS: usize = 200;

/// The console's charts (`console.*`).
#[derive(Clone, Copy, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Time between samples of a watched namespace (default 15 s): each costs one
    /// coordinator read per topic and per group of it (up to 200 each).
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
    /// How far back the charts go (default 1 h), and how long after its last view a
    /// namespace is still sampled: 15 s over 1 h keeps 240 samples of a few hundred bytes
    /// per namespace.
    #[serde(with = "humantime_serde")]
    pub history: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            sample_interval: Duration::from_secs(15),
            history: Duration::from_secs(3600),
        }
    }
}

/// One look at a namespace.
#[derive(Clone, Debug, Default)]
struct Sample {
    at_ms: i64,
    /// Sum over its topics of the queues' end offsets.
    produced: i64,
    /// Sum over its groups and queues of the delivery positions (cursor or committed).
    delivered: i64,
    lag: i64,
    /// Per topic, its queues' end offsets.
    topics: HashMap<String, i64>,
}

#[derive(Default)]
struct Watched {
    /// Last time a page of the namespace was shown.
    viewed_ms: i64,
    samples: VecDeque<Sample>,
}

pub struct History {
    config: HistoryConfig,
    coordinator: Arc<dyn Coordinator>,
    clock: Arc<dyn Clock>,
    watched: Mutex<HashMap<String, Watched>>,
}

impl History {
    pub fn new(config: HistoryConfig, coordinator: Arc<dyn Coordinator>, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            coordinator,
            clock,
            watched: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Watched>) -> R) -> R {
        let mut map = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    fn keep_ms(&self) -> i64 {
        i64::try_from(self.config.history.as_millis()).unwrap_or(i64::MAX)
    }

    /// Notes that `tenant` is being looked at; its first sample is taken now if it has none.
    pub async fn watch(&self, tenant: &str) {
        let now = self.clock.now_ms();
        let fresh = self.with(|m| {
            let w = m.entry(tenant.to_string()).or_default();
            w.viewed_ms = now;
            w.samples.is_empty()
        });
        if fresh {
            self.sample(tenant).await;
        }
    }

    /// Samples every namespace viewed within `keep`, forgets the others; every `interval`.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.sample_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let since = self.clock.now_ms().saturating_sub(self.keep_ms());
            let tenants: Vec<String> = self.with(|m| {
                m.retain(|_, w| w.viewed_ms >= since);
                m.keys().cloned().collect()
            });
            for tenant in tenants {
                self.sample(&tenant).await;
            }
        }
    }

    async fn sample(&self, tenant: &str) {
        match self.read(tenant).await {
            Ok(sample) => {
                let oldest = sample.at_ms.saturating_sub(self.keep_ms());
                self.with(|m| {
                    if let Some(w) = m.get_mut(tenant) {
                        w.samples.push_back(sample);
                        while w.samples.front().is_some_and(|s| s.at_ms < oldest) {
                            w.samples.pop_front();
                        }
                    }
                });
            }
            Err(e) => tracing::debug!(error = %e, tenant, "console sample failed"),
        }
    }

    async fn read(&self, tenant: &str) -> Result<Sample, strata_meta::Error> {
        let c = &self.coordinator;
        let mut sample = Sample {
            at_ms: self.clock.now_ms(),
            ..Default::default()
        };
        let mut queues = HashMap::new();
        for t in c
            .list_topics(tenant)
            .await?
            .iter()
            .filter(|t| !t.name.starts_with('%'))
            .take(MAX_SUBJECTS)
        {
            let stats = c.topic_stats(tenant, &t.name).await?;
            let end: i64 = stats.iter().map(|q| q.max_offset).sum();
            sample.produced += end;
            sample.topics.insert(t.name.clone(), end);
            queues.insert(t.name.clone(), stats);
        }
        for g in c.list_groups(tenant).await?.iter().take(MAX_SUBJECTS) {
            let progress = c.group_progress(tenant, &g.name).await?;
            for q in &progress {
                sample.lag += q.lag();
                sample.delivered += q.cursor.or(q.committed).unwrap_or(q.min_offset);
            }
            // Untouched queues of the topics it consumes: all their messages are ahead of an
            // earliest-starting group (as the group page counts them).
            if g.start == StartFrom::Earliest {
                let mut topics: Vec<&str> = progress.iter().map(|p| p.topic.as_str()).collect();
                topics.dedup();
                for topic in topics {
                    let untouched = queues
                        .get(topic)
                        .into_iter()
                        .flatten()
                        .filter(|q| !progress.iter().any(|p| p.topic == topic && p.queue == q.queue));
                    sample.lag += untouched.map(|q| q.max_offset - q.min_offset).sum::<i64>();
                }
            }
        }
        Ok(sample)
    }

    /// Messages per second produced and delivered, and the lag, over the kept window.
    pub fn namespace_series(&self, tenant: &str) -> (Vec<Series>, Vec<Series>) {
        let samples = self.samples(tenant);
        let rate = |name: &str, f: fn(&Sample) -> i64| Series {
            name: name.into(),
            points: rates(&samples, f),
        };
        let throughput = vec![rate("produced", |s| s.produced), rate("delivered", |s| s.delivered)];
        let lag = vec![Series {
            name: "lag (all groups)".into(),
            points: samples.iter().map(|s| (s.at_ms, s.lag as f64)).collect(),
        }];
        (throughput, lag)
    }

    /// Messages per second produced to one topic over the kept window.
    pub fn topic_series(&self, tenant: &str, topic: &str) -> Vec<Series> {
        let samples: Vec<Sample> = self
            .samples(tenant)
            .into_iter()
            .filter_map(|s| {
                let end = *s.topics.get(topic)?;
                Some(Sample {
                    at_ms: s.at_ms,
                    produced: end,
                    ..Default::default()
                })
            })
            .collect();
        vec![Series {
            name: "produced".into(),
            points: rates(&samples, |s| s.produced),
        }]
    }

    fn samples(&self, tenant: &str) -> Vec<Sample> {
        self.with(|m| {
            m.get(tenant)
                .map(|w| w.samples.iter().cloned().collect())
                .unwrap_or_default()
        })
    }
}

/// Per-second rates between consecutive samples (a counter that went back, as after a
/// reset, counts as 0).
fn rates(samples: &[Sample], f: fn(&Sample) -> i64) -> Vec<(i64, f64)> {
    samples
        .windows(2)
        .filter(|w| w[1].at_ms > w[0].at_ms)
        .map(|w| {
            let per_second = (f(&w[1]) - f(&w[0])).max(0) as f64 * 1000.0 / (w[1].at_ms - w[0].at_ms) as f64;
            (w[1].at_ms, per_second)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_meta::SqlCoordinator;
    use strata_meta::clock::ManualClock;
    use strata_meta::model::{GroupSpec, MessageType, TopicSpec};

    #[test]
    fn rates_are_per_second_between_samples() {
        let s = |at_ms, produced| Sample {
            at_ms,
            produced,
            ..Default::default()
        };
        let samples = [s(0, 0), s(10_000, 100), s(20_000, 50), s(20_000, 70)];
        assert_eq!(rates(&samples, |s| s.produced), vec![(10_000, 10.0), (20_000, 0.0)]);
    }

    #[tokio::test]
    async fn watched_namespaces_are_sampled_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let c: Arc<dyn Coordinator> = Arc::new(SqlCoordinator::open_sqlite(&dir.path().join("m.db")).await.unwrap());
        let topic = TopicSpec {
            tenant: "ns".into(),
            name: "orders".into(),
            message_type: MessageType::Normal,
            queue_count: 2,
            lite_ttl_ms: 0,
        };
        c.create_topic(&topic, 0).await.unwrap();
        let group = GroupSpec {
            tenant: "ns".into(),
            name: "billing".into(),
            fifo: false,
            max_attempts: 16,
            broadcast: false,
            start: StartFrom::Earliest,
        };
        c.create_group(&group, 0).await.unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let config = HistoryConfig {
            sample_interval: Duration::from_secs(15),
            history: Duration::from_secs(60),
        };
        let history = History::new(config, c, clock.clone());
        history.watch("ns").await;
        assert_eq!(history.samples("ns").len(), 1, "the first view takes a sample");
        clock.advance(Duration::from_secs(15));
        history.sample("ns").await;
        let (throughput, lag) = history.namespace_series("ns");
        assert_eq!(throughput[0].points, vec![(1_015_000, 0.0)]);
        assert_eq!(lag[0].points.len(), 2);
        assert_eq!(history.topic_series("ns", "orders")[0].points.len(), 1);
        assert!(history.namespace_series("other").0[0].points.is_empty());
        clock.advance(Duration::from_secs(120));
        history.sample("ns").await;
        assert_eq!(history.samples("ns").len(), 1, "samples older than keep are dropped");
    }
}
