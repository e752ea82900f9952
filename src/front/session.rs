//! Client sessions: who is connected, with which settings, and the Telemetry stream to reach
//! them (server-to-client commands use it in later milestones).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata_proto::v2::TelemetryCommand;
use tokio::sync::mpsc;

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
    last_seen: Instant,
}

#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Session>) -> R) -> R {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    fn entry<'a>(map: &'a mut HashMap<String, Session>, client_id: &str) -> &'a mut Session {
        let s = map.entry(client_id.to_string()).or_insert_with(|| Session {
            client_type: 0,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            telemetry: None,
            last_seen: Instant::now(),
        });
        s.last_seen = Instant::now();
        s
    }

    /// Records a heartbeat (or any sign of life).
    pub fn touch(&self, client_id: &str, client_type: Option<i32>) {
        self.with(|m| {
            let s = Self::entry(m, client_id);
            if let Some(t) = client_type.filter(|t| *t != 0) {
                s.client_type = t;
            }
        });
    }

    /// Records the settings a client reported on its Telemetry stream.
    pub fn settings(
        &self,
        client_id: &str,
        client_type: i32,
        request_timeout: Option<Duration>,
        stream: TelemetrySender,
    ) {
        self.with(|m| {
            let s = Self::entry(m, client_id);
            s.client_type = client_type;
            if let Some(t) = request_timeout.filter(|t| !t.is_zero()) {
                s.request_timeout = t;
            }
            s.telemetry = Some(stream);
        });
    }

    pub fn request_timeout(&self, client_id: Option<&str>) -> Duration {
        client_id
            .and_then(|id| self.with(|m| m.get(id).map(|s| s.request_timeout)))
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }

    /// The Telemetry stream ended.
    pub fn detach(&self, client_id: &str) {
        self.with(|m| {
            if let Some(s) = m.get_mut(client_id) {
                s.telemetry = None;
            }
        });
    }

    pub fn remove(&self, client_id: &str) {
        self.with(|m| m.remove(client_id));
    }

    /// Drops sessions not seen for a while; returns how many remain.
    pub fn sweep(&self) -> usize {
        self.with(|m| {
            m.retain(|_, s| s.last_seen.elapsed() < SESSION_IDLE);
            m.len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_clients() {
        let s = Sessions::default();
        s.touch("c1", Some(1));
        assert_eq!(s.request_timeout(Some("c1")), DEFAULT_REQUEST_TIMEOUT);
        let (tx, _rx) = mpsc::channel(1);
        s.settings("c1", 3, Some(Duration::from_secs(9)), tx);
        assert_eq!(s.request_timeout(Some("c1")), Duration::from_secs(9));
        assert_eq!(s.request_timeout(None), DEFAULT_REQUEST_TIMEOUT);
        s.detach("c1");
        assert_eq!(s.sweep(), 1);
        s.remove("c1");
        assert_eq!(s.sweep(), 0);
    }
}
