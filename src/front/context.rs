//! What a request's headers say: client id, namespace, deadline, credentials.

use std::time::Duration;

use strata_meta::accounts::Actions;
use strata_meta::model::Subscription;
use strata_proto::v2::Resource;
use strata_tenancy::{Need, Principal};
use tonic::Request;
use tonic::metadata::MetadataMap;

use crate::gate::Credentials;

/// A caller this process authenticated already (the HTTP front handing its work to the gRPC
/// handlers), carried in a request's extensions, which no client can set over the wire.
#[derive(Clone, Debug)]
pub struct Verified(pub Principal);

#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub client_id: Option<String>,
    /// `x-mq-namespace`: the tenant the request acts in ("" when the client sent none).
    pub namespace: String,
    /// Time left before the client gives up (`grpc-timeout`).
    pub deadline: Option<Duration>,
    /// The signature (`authorization`) and the signed date (`x-mq-date-time`).
    pub authorization: Option<String>,
    pub date: Option<String>,
    /// `x-mq-language`: the client's SDK (`PYTHON`, `JAVA`, …), for its known quirks.
    pub language: Option<String>,
    /// Set when this process authenticated the caller already.
    pub verified: Option<Principal>,
    /// The client's address (failed sign-ins are counted per address).
    pub peer: Option<std::net::IpAddr>,
}

impl Ctx {
    pub fn of<T>(request: &Request<T>) -> Self {
        Self {
            verified: request.extensions().get::<Verified>().map(|v| v.0.clone()),
            peer: request.remote_addr().map(|a| a.ip()),
            ..Self::new(request.metadata())
        }
    }

    pub fn new(md: &MetadataMap) -> Self {
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        Self {
            client_id: get("x-mq-client-id").filter(|s| !s.is_empty()),
            namespace: get("x-mq-namespace").unwrap_or_default(),
            deadline: get("grpc-timeout").as_deref().and_then(parse_grpc_timeout),
            authorization: get("authorization"),
            date: get("x-mq-date-time"),
            language: get("x-mq-language"),
            verified: None,
            peer: None,
        }
    }

    pub fn credentials(&self) -> Credentials<'_> {
        Credentials::Grpc {
            authorization: self.authorization.as_deref(),
            date: self.date.as_deref(),
        }
    }
}

/// What naming `topic` with any of `actions` needs, in the namespace the request wrote beside it.
pub fn topic_need(topic: &Resource, actions: Actions) -> Need<'_> {
    Need::topic(&topic.name, actions).in_namespace(&topic.resource_namespace)
}

/// What naming `group` with any of `actions` needs, in the namespace the request wrote beside it.
pub fn group_need(group: &Resource, actions: Actions) -> Need<'_> {
    Need::group(&group.name, actions).in_namespace(&group.resource_namespace)
}

/// The subscription of `group` to `topic` in the tenant a request was admitted to.
pub fn subscription(tenant: String, group: &Resource, topic: &Resource) -> Subscription {
    Subscription {
        tenant,
        group: group.name.clone(),
        topic: topic.name.clone(),
    }
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers() {
        let mut md = MetadataMap::new();
        md.insert("x-mq-client-id", "host@1@0@abc".parse().unwrap());
        md.insert("x-mq-namespace", "ns1".parse().unwrap());
        md.insert("grpc-timeout", "23999m".parse().unwrap());
        let ctx = Ctx::new(&md);
        assert_eq!(ctx.client_id.as_deref(), Some("host@1@0@abc"));
        assert_eq!(ctx.deadline, Some(Duration::from_millis(23_999)));
        assert_eq!(ctx.namespace, "ns1");
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(
            parse_grpc_timeout("18446744073709551615H"),
            None,
            "overflows: refused, no panic"
        );
        assert_eq!(
            parse_grpc_timeout("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
    }
}
