//! The 4.x clients each consumer group has: who heartbeats, what they subscribe, and the
//! connection to tell them when the group changes (NOTIFY_CONSUMER_IDS_CHANGED).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata_remoting::Command;
use tokio::sync::mpsc;

/// A client not heard from for this long has left its groups (Apache's channel expiry).
pub const CLIENT_EXPIRY: Duration = Duration::from_secs(120);
/// A queue lock not renewed for this long is free (Apache's rebalance lock lifetime).
pub const LOCK_EXPIRY: Duration = Duration::from_secs(60);

/// (tenant, group).
type GroupKey = (String, String);

#[derive(Clone)]
struct Member {
    /// The group's name as this client writes it (with or without its namespace).
    group_as_sent: String,
    seen: Instant,
    /// Subscription expression per topic (`*`, `a || b`, SQL) and its type.
    subscriptions: BTreeMap<String, (String, String)>,
    connection: mpsc::Sender<Command>,
}

#[derive(Default)]
struct State {
    groups: HashMap<GroupKey, BTreeMap<String, Member>>,
    /// Producer groups' live clients: client id → last heartbeat and connection.
    producers: HashMap<GroupKey, BTreeMap<String, (Instant, mpsc::Sender<Command>)>>,
    /// (tenant, topic) → producer groups that sent half messages to it (transaction checks go
    /// to one of their clients).
    transactional: HashMap<(String, String), BTreeSet<String>>,
    /// (tenant, group, topic, queue) → holder and when it took or renewed the lock.
    locks: HashMap<(String, String, String, i32), (String, Instant)>,
}

/// A member to tell that its group changed, and the group's name as it writes it.
pub struct Notify {
    pub connection: mpsc::Sender<Command>,
    pub group_as_sent: String,
}

/// What one heartbeat says about a consumer.
pub struct Joined {
    pub tenant: String,
    pub group: String,
    pub group_as_sent: String,
    pub client_id: String,
    pub subscriptions: BTreeMap<String, (String, String)>,
}

#[derive(Default)]
pub struct Clients {
    state: Mutex<State>,
}

impl Clients {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a heartbeat; returns the group's other members to notify
    /// when the group changed (a new member, or one that expired).
    pub fn heartbeat(&self, joined: Joined, connection: &mpsc::Sender<Command>, now: Instant) -> Vec<Notify> {
        let mut state = self.state();
        let members = state.groups.entry((joined.tenant, joined.group)).or_default();
        let expired = expire(members, now);
        let new = !members.contains_key(&joined.client_id);
        members.insert(
            joined.client_id.clone(),
            Member {
                group_as_sent: joined.group_as_sent,
                seen: now,
                subscriptions: joined.subscriptions,
                connection: connection.clone(),
            },
        );
        if new || expired {
            others(members, &joined.client_id)
        } else {
            Vec::new()
        }
    }

    /// Records a producer's heartbeat.
    pub fn producer_heartbeat(
        &self,
        tenant: &str,
        group: &str,
        client_id: &str,
        connection: &mpsc::Sender<Command>,
        now: Instant,
    ) {
        let mut state = self.state();
        let clients = state.producers.entry((tenant.into(), group.into())).or_default();
        clients.retain(|_, (seen, _)| now.duration_since(*seen) <= CLIENT_EXPIRY);
        clients.insert(client_id.into(), (now, connection.clone()));
    }

    /// Removes a producer that joined on `connection` from its group.
    pub fn producer_leave(&self, tenant: &str, group: &str, client_id: &str, connection: &mpsc::Sender<Command>) {
        let mut state = self.state();
        let key = (tenant.to_string(), group.to_string());
        if let Some(clients) = state.producers.get_mut(&key) {
            if clients.get(client_id).is_some_and(|(_, c)| c.same_channel(connection)) {
                clients.remove(client_id);
            }
            if clients.is_empty() {
                state.producers.remove(&key);
            }
        }
    }

    /// Notes that `group` sent a half message to `topic`.
    pub fn transactional(&self, tenant: &str, topic: &str, group: &str) {
        let mut state = self.state();
        let groups = state.transactional.entry((tenant.into(), topic.into())).or_default();
        if !groups.contains(group) {
            groups.insert(group.into());
        }
    }

    /// Every `(tenant, topic)` some live producer group sent half messages to.
    pub fn transactional_topics(&self, now: Instant) -> Vec<(String, String)> {
        let state = self.state();
        state
            .transactional
            .iter()
            .filter(|((tenant, _), groups)| {
                groups
                    .iter()
                    .any(|g| live_producer(&state, tenant, g, now, 0).is_some())
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// A live client of producer `group` (or, with none named, of any group that sent half
    /// messages to `topic`), chosen by `pick`.
    pub fn producer_of(
        &self,
        tenant: &str,
        topic: &str,
        group: Option<&str>,
        pick: usize,
        now: Instant,
    ) -> Option<mpsc::Sender<Command>> {
        let state = self.state();
        let groups: Vec<String> = match group {
            Some(g) => vec![g.to_string()],
            None => state
                .transactional
                .get(&(tenant.to_string(), topic.to_string()))
                .map(|g| g.iter().cloned().collect())
                .unwrap_or_default(),
        };
        groups.iter().find_map(|g| live_producer(&state, tenant, g, now, pick))
    }

    /// Removes a client from a group, with the queue locks it holds in that group: asked on
    /// `connection` (UNREGISTER_CLIENT: only the connection it joined on may), or None when
    /// its connection closed. Returns the connections of those left.
    pub fn leave(
        &self,
        tenant: &str,
        group: &str,
        client_id: &str,
        connection: Option<&mpsc::Sender<Command>>,
    ) -> Vec<Notify> {
        let mut state = self.state();
        let key = (tenant.to_string(), group.to_string());
        let Some(members) = state.groups.get_mut(&key) else {
            return Vec::new();
        };
        let joined_here = |m: &Member| connection.is_none_or(|c| m.connection.same_channel(c));
        if !members.get(client_id).is_some_and(joined_here) {
            return Vec::new();
        }
        members.remove(client_id);
        let left = others(members, client_id);
        if members.is_empty() {
            state.groups.remove(&key);
        }
        state
            .locks
            .retain(|(t, g, _, _), (holder, _)| !(t == tenant && g == group && holder == client_id));
        left
    }

    /// Forgets a closed connection's producers; returns its consumers' memberships (tenant,
    /// group, client), for the caller to leave and tell the rest of each group.
    pub fn connection_closed(&self, connection: &mpsc::Sender<Command>) -> Vec<(String, String, String)> {
        let mut state = self.state();
        for clients in state.producers.values_mut() {
            clients.retain(|_, (_, c)| !c.same_channel(connection));
        }
        state.producers.retain(|_, clients| !clients.is_empty());
        state
            .groups
            .iter()
            .flat_map(|((tenant, group), members)| {
                members
                    .iter()
                    .filter(|(_, m)| m.connection.same_channel(connection))
                    .map(move |(id, _)| (tenant.clone(), group.clone(), id.clone()))
            })
            .collect()
    }

    /// The group's live members, sorted.
    pub fn members(&self, tenant: &str, group: &str, now: Instant) -> Vec<String> {
        let mut state = self.state();
        let Some(members) = state.groups.get_mut(&(tenant.to_string(), group.to_string())) else {
            return Vec::new();
        };
        expire(members, now);
        members.keys().cloned().collect()
    }

    /// The expression a member of the group last said it subscribes `topic` with.
    pub fn subscription(&self, tenant: &str, group: &str, topic: &str) -> Option<(String, String)> {
        let state = self.state();
        let members = state.groups.get(&(tenant.to_string(), group.to_string()))?;
        members.values().find_map(|m| m.subscriptions.get(topic).cloned())
    }

    /// Every topic the group's members subscribe.
    pub fn topics(&self, tenant: &str, group: &str) -> Vec<String> {
        let state = self.state();
        let mut topics: Vec<String> = state
            .groups
            .get(&(tenant.to_string(), group.to_string()))
            .into_iter()
            .flat_map(|members| members.values().flat_map(|m| m.subscriptions.keys().cloned()))
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Locks each queue for `client` unless another live client holds it; returns the queues
    /// `client` now holds.
    pub fn lock(&self, tenant: &str, group: &str, client: &str, queues: &[(String, i32)], now: Instant) -> Vec<usize> {
        let mut state = self.state();
        // Expired locks go here: the map holds only live ones.
        state.locks.retain(|_, (_, at)| now.duration_since(*at) <= LOCK_EXPIRY);
        let mut held = Vec::new();
        for (i, (topic, queue)) in queues.iter().enumerate() {
            let key = (tenant.to_string(), group.to_string(), topic.clone(), *queue);
            let free = match state.locks.get(&key) {
                Some((holder, at)) => holder == client || now.duration_since(*at) > LOCK_EXPIRY,
                None => true,
            };
            if free {
                state.locks.insert(key, (client.to_string(), now));
                held.push(i);
            }
        }
        held
    }

    pub fn unlock(&self, tenant: &str, group: &str, client: &str, queues: &[(String, i32)]) {
        let mut state = self.state();
        for (topic, queue) in queues {
            let key = (tenant.to_string(), group.to_string(), topic.clone(), *queue);
            if state.locks.get(&key).is_some_and(|(holder, _)| holder == client) {
                state.locks.remove(&key);
            }
        }
    }
}

fn live_producer(state: &State, tenant: &str, group: &str, now: Instant, pick: usize) -> Option<mpsc::Sender<Command>> {
    let clients = state.producers.get(&(tenant.to_string(), group.to_string()))?;
    let live: Vec<&mpsc::Sender<Command>> = clients
        .values()
        .filter(|(seen, c)| now.duration_since(*seen) <= CLIENT_EXPIRY && !c.is_closed())
        .map(|(_, c)| c)
        .collect();
    (!live.is_empty()).then(|| live[pick % live.len()].clone())
}

/// Drops members not heard from within [`CLIENT_EXPIRY`]; whether any were.
fn expire(members: &mut BTreeMap<String, Member>, now: Instant) -> bool {
    let before = members.len();
    members.retain(|_, m| now.duration_since(m.seen) <= CLIENT_EXPIRY);
    members.len() != before
}

fn others(members: &BTreeMap<String, Member>, except: &str) -> Vec<Notify> {
    members
        .iter()
        .filter(|(id, _)| id.as_str() != except)
        .map(|(_, m)| Notify {
            connection: m.connection.clone(),
            group_as_sent: m.group_as_sent.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(client: &str) -> Joined {
        Joined {
            tenant: String::new(),
            group: "g".into(),
            group_as_sent: "g".into(),
            client_id: client.into(),
            subscriptions: [("t".to_string(), ("*".to_string(), "TAG".to_string()))].into(),
        }
    }

    #[test]
    fn members_join_expire_and_are_told() {
        let clients = Clients::default();
        let (a, _ra) = mpsc::channel(1);
        let (b, _rb) = mpsc::channel(1);
        let t0 = Instant::now();
        assert!(clients.heartbeat(joined("a"), &a, t0).is_empty());
        assert_eq!(clients.heartbeat(joined("b"), &b, t0).len(), 1, "a is told b joined");
        assert!(clients.heartbeat(joined("b"), &b, t0).is_empty(), "nothing changed");
        assert_eq!(clients.members("", "g", t0), vec!["a", "b"]);
        assert_eq!(clients.subscription("", "g", "t").map(|s| s.0).as_deref(), Some("*"));
        assert_eq!(clients.topics("", "g"), vec!["t"]);
        let later = t0 + CLIENT_EXPIRY + Duration::from_secs(1);
        assert!(clients.members("", "g", later).is_empty());
        assert_eq!(clients.connection_closed(&a).len(), 0, "expired members were dropped");
        clients.heartbeat(joined("a"), &a, later);
        assert_eq!(clients.connection_closed(&a).len(), 1);
        assert!(clients.leave("", "g", "a", None).is_empty());
    }

    #[test]
    fn only_the_joining_connection_ends_a_membership_and_its_locks_in_that_group() {
        let clients = Clients::default();
        let (a, _ra) = mpsc::channel(1);
        let (intruder, _ri) = mpsc::channel(1);
        let t0 = Instant::now();
        let q = vec![("t".to_string(), 0)];
        clients.heartbeat(joined("a"), &a, t0);
        clients.heartbeat(
            Joined {
                tenant: "other".into(),
                ..joined("a")
            },
            &a,
            t0,
        );
        assert_eq!(clients.lock("", "g", "a", &q, t0), vec![0]);
        assert_eq!(clients.lock("other", "g", "a", &q, t0), vec![0]);
        clients.leave("", "g", "a", Some(&intruder));
        assert_eq!(clients.members("", "g", t0), vec!["a"], "asked on another connection");
        clients.leave("", "g", "a", Some(&a));
        assert!(clients.members("", "g", t0).is_empty());
        assert_eq!(
            clients.lock("", "g", "b", &q, t0),
            vec![0],
            "a's lock in the group went with it"
        );
        assert!(
            clients.lock("other", "g", "b", &q, t0).is_empty(),
            "a's lock in another tenant's group of that name stays"
        );
        clients.producer_heartbeat("", "pg", "p", &a, t0);
        clients.producer_leave("", "pg", "p", &intruder);
        assert!(
            clients.producer_of("", "t", Some("pg"), 0, t0).is_some(),
            "asked on another connection"
        );
        clients.producer_leave("", "pg", "p", &a);
        assert!(clients.producer_of("", "t", Some("pg"), 0, t0).is_none());
    }

    #[test]
    fn transaction_checks_go_to_a_live_producer_of_the_group() {
        let clients = Clients::default();
        let (p, _rp) = mpsc::channel(1);
        let t0 = Instant::now();
        clients.transactional("", "t", "pg");
        assert!(
            clients.transactional_topics(t0).is_empty(),
            "no producer of pg is connected"
        );
        clients.producer_heartbeat("", "pg", "c1", &p, t0);
        assert_eq!(clients.transactional_topics(t0), vec![(String::new(), "t".to_string())]);
        assert!(clients.producer_of("", "t", None, 7, t0).is_some());
        assert!(clients.producer_of("", "t", Some("other"), 0, t0).is_none());
        clients.connection_closed(&p);
        assert!(clients.producer_of("", "t", Some("pg"), 0, t0).is_none());
    }

    #[test]
    fn a_queue_lock_has_one_live_holder() {
        let clients = Clients::default();
        let q = vec![("t".to_string(), 0), ("t".to_string(), 1)];
        let t0 = Instant::now();
        assert_eq!(clients.lock("", "g", "a", &q, t0), vec![0, 1]);
        assert!(clients.lock("", "g", "b", &q[..1], t0).is_empty());
        clients.unlock("", "g", "a", &q[..1]);
        assert_eq!(clients.lock("", "g", "b", &q, t0), vec![0]);
        let later = t0 + LOCK_EXPIRY + Duration::from_secs(1);
        assert_eq!(clients.lock("", "g", "b", &q, later), vec![0, 1], "a's lock expired");
    }
}
