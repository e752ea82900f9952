//! QueryRoute and QueryAssignment answers.
//!
//! A single node serving every role tells clients the address they used. In a cluster every
//! live node is a broker of the route: ingest nodes' queues are writable, query nodes'
//! queues readable, so producers send to ingest nodes and consumers receive from query nodes
//! with the stock clients' queue selection.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use strata_meta::model::{Node, Roles, Topic};
use strata_meta::{Clock, Coordinator};
use strata_proto::v2::{self, Code};

use super::status::{from_meta, status};

/// The broker name of a single node. Clients use only broker id 0.
pub const SINGLE_BROKER: &str = "strata";

#[derive(Clone)]
pub enum Routes {
    /// One node with every role; `advertise` or else the endpoints the client used.
    Single { advertise: Option<String> },
    /// The live nodes of the registry.
    Cluster {
        coordinator: Arc<dyn Coordinator>,
        clock: Arc<dyn Clock>,
        node_ttl: Duration,
    },
}

/// Endpoints for an advertised `host:port`.
pub fn endpoints(advertise: &str) -> Option<v2::Endpoints> {
    let (host, port) = advertise.rsplit_once(':')?;
    let port: i32 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let scheme = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => v2::AddressScheme::IPv4,
        Ok(IpAddr::V6(_)) => v2::AddressScheme::IPv6,
        Err(_) => v2::AddressScheme::DomainName,
    };
    Some(v2::Endpoints {
        scheme: scheme as i32,
        addresses: vec![v2::Address {
            host: host.to_string(),
            port,
        }],
    })
}

/// A broker as routes show it.
struct Broker {
    name: String,
    endpoints: v2::Endpoints,
    permission: v2::Permission,
}

impl Broker {
    fn proto(&self) -> v2::Broker {
        v2::Broker {
            name: self.name.clone(),
            id: 0,
            endpoints: Some(self.endpoints.clone()),
        }
    }
}

fn permission(roles: Roles) -> Option<v2::Permission> {
    match (roles.contains(Roles::INGEST), roles.contains(Roles::QUERY)) {
        (true, true) => Some(v2::Permission::ReadWrite),
        (true, false) => Some(v2::Permission::Write),
        (false, true) => Some(v2::Permission::Read),
        (false, false) => None,
    }
}

/// The permission a client of this type needs: producers write, consumers read.
fn wanted(client_type: i32) -> Option<v2::Permission> {
    match v2::ClientType::try_from(client_type).ok()? {
        v2::ClientType::Producer => Some(v2::Permission::Write),
        v2::ClientType::Unspecified => None,
        _ => Some(v2::Permission::Read),
    }
}

fn no_access_point() -> v2::Status {
    status(Code::IllegalAccessPoint, "the request names no endpoints")
}

impl Routes {
    /// The live nodes of a cluster; `None` for a single node.
    pub async fn live_nodes(&self) -> Result<Option<Vec<Node>>, v2::Status> {
        match self {
            Routes::Single { .. } => Ok(None),
            Routes::Cluster {
                coordinator,
                clock,
                node_ttl,
            } => coordinator
                .live_nodes(clock.now_ms(), node_ttl.as_millis() as i64)
                .await
                .map(Some)
                .map_err(|e| from_meta(&e)),
        }
    }

    async fn brokers(&self, requested: Option<&v2::Endpoints>) -> Result<Vec<Broker>, v2::Status> {
        match self {
            Routes::Single { advertise } => {
                let endpoints = match advertise {
                    Some(a) => endpoints(a),
                    None => requested.filter(|e| !e.addresses.is_empty()).cloned(),
                };
                let endpoints = endpoints.ok_or_else(no_access_point)?;
                Ok(vec![Broker {
                    name: SINGLE_BROKER.into(),
                    endpoints,
                    permission: v2::Permission::ReadWrite,
                }])
            }
            Routes::Cluster { .. } => {
                let nodes = self.live_nodes().await?.unwrap_or_default();
                let brokers: Vec<Broker> = nodes
                    .into_iter()
                    .filter_map(|n| {
                        Some(Broker {
                            permission: permission(n.roles)?,
                            endpoints: endpoints(&n.advertise)?,
                            name: n.id,
                        })
                    })
                    .collect();
                if brokers.is_empty() {
                    return Err(status(Code::InternalServerError, "no live ingest or query node"));
                }
                Ok(brokers)
            }
        }
    }

    /// Every queue of the topic on every broker, brokers interleaved (b1q0, b2q0, b1q1, …):
    /// clients pick queues round-robin, so a retry after a failed send goes to another node.
    /// A client known to be a producer sees only writable brokers, a consumer only readable
    /// ones (some clients ignore the permission, e.g. the Rust 5.x client); one not known yet
    /// sees all.
    pub async fn queues(
        &self,
        resource: &v2::Resource,
        topic: &Topic,
        requested: Option<&v2::Endpoints>,
        client_type: i32,
    ) -> Result<Vec<v2::MessageQueue>, v2::Status> {
        let mut brokers = self.brokers(requested).await?;
        if let Some(want) = wanted(client_type) {
            let fit = |b: &Broker| b.permission == want || b.permission == v2::Permission::ReadWrite;
            if brokers.iter().any(fit) {
                brokers.retain(fit);
            }
        }
        Ok((0..topic.queue_count)
            .flat_map(|id| {
                brokers.iter().map(move |b| v2::MessageQueue {
                    topic: Some(resource.clone()),
                    id,
                    permission: b.permission as i32,
                    broker: Some(b.proto()),
                    accept_message_types: vec![topic.message_type as i32],
                })
            })
            .collect())
    }

    /// Pop consumers get one assignment per readable broker, queue id -1: a receive pops
    /// from every queue of the topic (as Apache's proxy does).
    pub async fn assignments(
        &self,
        resource: &v2::Resource,
        requested: Option<&v2::Endpoints>,
    ) -> Result<Vec<v2::Assignment>, v2::Status> {
        let brokers = self.brokers(requested).await?;
        Ok(brokers
            .iter()
            .filter(|b| b.permission != v2::Permission::Write)
            .map(|b| v2::Assignment {
                message_queue: Some(v2::MessageQueue {
                    topic: Some(resource.clone()),
                    id: -1,
                    permission: b.permission as i32,
                    broker: Some(b.proto()),
                    accept_message_types: vec![],
                }),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_advertised_addresses() {
        let e = endpoints("10.0.0.5:8081").unwrap();
        assert_eq!(e.scheme, v2::AddressScheme::IPv4 as i32);
        assert_eq!(e.addresses[0].port, 8081);
        assert_eq!(
            endpoints("broker.example.com:80").unwrap().scheme,
            v2::AddressScheme::DomainName as i32
        );
        assert_eq!(endpoints("[::1]:81").unwrap().addresses[0].host, "::1");
        assert!(endpoints("nope").is_none());
    }

    #[test]
    fn producers_see_writers_and_consumers_readers() {
        assert_eq!(wanted(v2::ClientType::Producer as i32), Some(v2::Permission::Write));
        assert_eq!(
            wanted(v2::ClientType::SimpleConsumer as i32),
            Some(v2::Permission::Read)
        );
        assert_eq!(wanted(v2::ClientType::PushConsumer as i32), Some(v2::Permission::Read));
        assert_eq!(wanted(0), None);
        assert_eq!(wanted(99), None);
    }

    #[test]
    fn roles_become_permissions() {
        assert_eq!(permission(Roles::ALL), Some(v2::Permission::ReadWrite));
        assert_eq!(permission(Roles::INGEST), Some(v2::Permission::Write));
        assert_eq!(permission(Roles::QUERY), Some(v2::Permission::Read));
        assert_eq!(permission(Roles::COMPACTOR), None);
    }
}
