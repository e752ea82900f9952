//! QueryRoute and QueryAssignment answers.

use std::net::IpAddr;

use strata_meta::model::Topic;
use strata_proto::v2;

/// The broker name every queue reports. Clients use only broker id 0.
pub const BROKER_NAME: &str = "strata";

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

fn broker(endpoints: &v2::Endpoints) -> v2::Broker {
    v2::Broker {
        name: BROKER_NAME.into(),
        id: 0,
        endpoints: Some(endpoints.clone()),
    }
}

/// Every queue of the topic, readable and writable, on the given endpoints.
pub fn queues(resource: &v2::Resource, topic: &Topic, endpoints: &v2::Endpoints) -> Vec<v2::MessageQueue> {
    (0..topic.queue_count)
        .map(|id| v2::MessageQueue {
            topic: Some(resource.clone()),
            id,
            permission: v2::Permission::ReadWrite as i32,
            broker: Some(broker(endpoints)),
            accept_message_types: vec![topic.message_type as i32],
        })
        .collect()
}

/// Pop consumers get one assignment per broker, queue id -1: a receive pops from every
/// queue of the topic (as Apache's proxy does).
pub fn assignment(resource: &v2::Resource, endpoints: &v2::Endpoints) -> v2::Assignment {
    v2::Assignment {
        message_queue: Some(v2::MessageQueue {
            topic: Some(resource.clone()),
            id: -1,
            permission: v2::Permission::ReadWrite as i32,
            broker: Some(broker(endpoints)),
            accept_message_types: vec![],
        }),
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
}
