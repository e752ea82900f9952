//! Client sessions: who is connected, with which settings, and the Telemetry stream to reach
//! them. A session is a tenant's client: the same client id in two tenants is two sessions,
//! so no request of one tenant can read, take over or end another tenant's session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata_proto::v2::{ClientType, TelemetryCommand};
use tokio::sync::{mpsc, watch};

/// Sessions unseen this long are dropped (clients heartbeat every ~10–30 s).
const SESSION_IDLE: Duration = Duration::from_secs(180);
/// The request timeout clients use unless their settings say otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

pub type TelemetrySender = mpsc::Sender<Result<TelemetryCommand, tonic::Status>>;

#[derive(Debug)]
pub struct Session {
    pub client_type: i32,
    pub request_timeout: Duration,
    pub telemetry: Option<TelemetrySender>,
    /// Producers: the topics of their tenant they publish to (transaction checks go to them).
    pub topics: Vec<String>,
    /// Consumers: the group of their tenant they consume as.
    pub group: Option<String>,
    last_seen: Instant,
}

/// A session's key: (tenant, client id).
type Key = (String, String);

fn key(tenant: &str, client_id: &str) -> Key {
    (tenant.to_string(), client_id.to_string())
}

#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<Key, Session>>,
    /// True once the node stops: every Telemetry stream ends.
    closing: watch::Sender<bool>,
}

impl Sessions {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, Session>) -> R) -> R {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    fn entry<'a>(map: &'a mut HashMap<Key, Session>, tenant: &str, client_id: &str) -> &'a mut Session {
        let s = map.entry(key(tenant, client_id)).or_insert_with(|| Session {
            client_type: 0,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            telemetry: None,
            topics: Vec::new(),
            group: None,
            last_seen: Instant::now(),
        });
        s.last_seen = Instant::now();
        s
    }

    /// The client's type as its heartbeats or Telemetry settings said (0: not yet known).
    pub fn client_type(&self, tenant: &str, client_id: &str) -> i32 {
        self.with(|m| m.get(&key(tenant, client_id)).map_or(0, |s| s.client_type))
    }

    /// Records a heartbeat (or any sign of life).
    pub fn touch(&self, tenant: &str, client_id: &str, client_type: Option<i32>) {
        self.with(|m| {
            let s = Self::entry(m, tenant, client_id);
            if let Some(t) = client_type.filter(|t| *t != 0) {
                s.client_type = t;
            }
        });
    }

    /// Records the settings a client reported on its Telemetry stream.
    #[allow(clippy::too_many_arguments)]
    pub fn settings(
        &self,
        tenant: &str,
        client_id: &str,
        client_type: i32,
        request_timeout: Option<Duration>,
        topics: Vec<String>,
        group: Option<String>,
        stream: TelemetrySender,
    ) {
        self.with(|m| {
            let s = Self::entry(m, tenant, client_id);
            s.client_type = client_type;
            if let Some(t) = request_timeout.filter(|t| !t.is_zero()) {
                s.request_timeout = t;
            }
            s.topics = topics;
            s.group = group;
            s.telemetry = Some(stream);
        });
    }

    /// Every `(tenant, topic)` a connected producer publishes to.
    pub fn published_topics(&self) -> Vec<(String, String)> {
        let mut topics: Vec<_> = self.with(|m| {
            m.iter()
                .filter(|(_, s)| s.telemetry.is_some())
                .flat_map(|((tenant, _), s)| s.topics.iter().map(|t| (tenant.clone(), t.clone())))
                .collect()
        });
        topics.sort();
        topics.dedup();
        topics
    }

    /// The Telemetry stream of a connected producer of `(tenant, topic)`, chosen by `pick`
    /// among them.
    pub fn producer_of(&self, tenant: &str, topic: &str, pick: usize) -> Option<TelemetrySender> {
        self.with(|m| {
            let streams: Vec<&TelemetrySender> = m
                .iter()
                .filter(|((t, _), s)| t == tenant && s.topics.iter().any(|tp| tp == topic))
                .filter_map(|(_, s)| s.telemetry.as_ref())
                .collect();
            (!streams.is_empty()).then(|| streams[pick % streams.len()].clone())
        })
    }

    /// The client ids of `group`'s consumers with a Telemetry stream to this node, sorted.
    pub fn consumers_of(&self, tenant: &str, group: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.with(|m| {
            m.iter()
                .filter(|((t, _), s)| t == tenant && s.telemetry.is_some())
                .filter(|(_, s)| {
                    s.group
                        .as_ref()
                        .is_some_and(|g| strata_meta::lane::group_of(g) == group)
                })
                .map(|((_, id), _)| id.clone())
                .collect()
        });
        ids.sort();
        ids
    }

    /// The Telemetry stream of a connected client.
    pub fn telemetry_of(&self, tenant: &str, client_id: &str) -> Option<TelemetrySender> {
        self.with(|m| m.get(&key(tenant, client_id)).and_then(|s| s.telemetry.clone()))
    }

    pub fn request_timeout(&self, tenant: &str, client_id: Option<&str>) -> Duration {
        client_id
            .and_then(|id| self.with(|m| m.get(&key(tenant, id)).map(|s| s.request_timeout)))
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }

    /// The Telemetry stream ended.
    pub fn detach(&self, tenant: &str, client_id: &str) {
        self.with(|m| {
            if let Some(s) = m.get_mut(&key(tenant, client_id)) {
                s.telemetry = None;
            }
        });
    }

    pub fn remove(&self, tenant: &str, client_id: &str) {
        self.with(|m| m.remove(&key(tenant, client_id)));
    }

    /// Sends `command` down every open Telemetry stream (without waiting on a full one);
    /// returns how many took it.
    pub fn tell_all(&self, command: &TelemetryCommand) -> usize {
        let streams: Vec<TelemetrySender> = self.with(|m| m.values().filter_map(|s| s.telemetry.clone()).collect());
        streams
            .iter()
            .filter(|tx| tx.try_send(Ok(command.clone())).is_ok())
            .count()
    }

    /// Ends every Telemetry stream, now and from now on (the node is stopping: a graceful
    /// server stop waits for open streams).
    pub fn close(&self) {
        self.closing.send_replace(true);
        self.with(|m| m.values_mut().for_each(|s| s.telemetry = None));
    }

    /// Resolves once [`close`](Self::close) was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    /// Drops sessions not seen for a while; returns the (tenant, client id)s of those that
    /// were lite consumers (their subscriptions go too).
    pub fn sweep(&self) -> Vec<(String, String)> {
        let lite = [
            ClientType::LitePushConsumer as i32,
            ClientType::LiteSimpleConsumer as i32,
        ];
        self.with(|m| {
            let mut gone = Vec::new();
            m.retain(|id, s| {
                let keep = s.last_seen.elapsed() < SESSION_IDLE;
                if !keep && lite.contains(&s.client_type) {
                    gone.push(id.clone());
                }
                keep
            });
            gone
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_clients() {
        let s = Sessions::default();
        s.touch("", "c1", Some(1));
        assert_eq!(s.request_timeout("", Some("c1")), DEFAULT_REQUEST_TIMEOUT);
        let (tx, _rx) = mpsc::channel(1);
        s.settings("", "c1", 1, Some(Duration::from_secs(9)), vec!["t".into()], None, tx);
        assert_eq!(s.request_timeout("", Some("c1")), Duration::from_secs(9));
        assert_eq!(s.published_topics(), [("".to_string(), "t".to_string())]);
        assert!(s.producer_of("", "t", 7).is_some());
        assert!(s.producer_of("", "other", 0).is_none());
        assert!(
            s.producer_of("b", "t", 0).is_none(),
            "another tenant's topic of that name"
        );
        assert_eq!(s.request_timeout("", None), DEFAULT_REQUEST_TIMEOUT);
        s.detach("", "c1");
        assert!(s.sweep().is_empty());
        assert_eq!(s.client_type("", "c1"), 1, "a detached session stays until idle");
        s.remove("", "c1");
        assert_eq!(s.client_type("", "c1"), 0);
    }

    #[test]
    fn one_client_id_in_two_tenants_is_two_sessions() {
        let s = Sessions::default();
        let (tx, _rx) = mpsc::channel(1);
        s.settings(
            "a",
            "c1",
            1,
            Some(Duration::from_secs(9)),
            vec!["t".into()],
            None,
            tx.clone(),
        );
        s.settings("b", "c1", 2, None, vec![], Some("g".into()), tx);
        assert_eq!(
            s.client_type("a", "c1"),
            1,
            "b's settings did not take a's session over"
        );
        assert_eq!(s.request_timeout("b", Some("c1")), DEFAULT_REQUEST_TIMEOUT);
        assert!(s.producer_of("b", "t", 0).is_none());
        assert_eq!(s.consumers_of("b", "g"), ["c1"]);
        assert!(s.consumers_of("a", "g").is_empty());
        s.remove("b", "c1");
        assert_eq!(s.client_type("a", "c1"), 1, "ending b's session leaves a's");
        assert!(s.telemetry_of("a", "c1").is_some());
    }

    #[tokio::test]
    async fn tells_every_stream_then_closes_them() {
        let s = Sessions::default();
        let (tx1, mut rx1) = mpsc::channel(1);
        let (tx2, mut rx2) = mpsc::channel(1);
        s.settings("", "c1", 1, None, vec![], Some("g".into()), tx1);
        s.settings("", "c2", 2, None, vec![], None, tx2);
        assert_eq!(s.consumers_of("", "g"), ["c1"]);
        assert!(s.consumers_of("other", "g").is_empty());
        let closed = s.closed();
        assert_eq!(s.tell_all(&TelemetryCommand::default()), 2);
        assert!(rx1.recv().await.is_some() && rx2.recv().await.is_some());
        s.close();
        closed.await;
        assert_eq!(s.tell_all(&TelemetryCommand::default()), 0, "no stream is kept");
        assert!(rx1.recv().await.is_none(), "the node's copy of the sender is dropped");
        s.closed().await;
    }
}
