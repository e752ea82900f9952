//! What a request's headers say: client id, namespace, deadline, credentials.

use std::time::Duration;

use strata_meta::model::Subscription;
use strata_proto::v2::Resource;
use tonic::metadata::MetadataMap;

#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub client_id: Option<String>,
    /// `x-mq-namespace`; a resource's own namespace takes precedence.
    pub namespace: String,
    /// Time left before the client gives up (`grpc-timeout`).
    pub deadline: Option<Duration>,
    /// The signature (`authorization`) and the signed date (`x-mq-date-time`).
    pub authorization: Option<String>,
    pub date: Option<String>,
    /// `x-mq-language`: the client's SDK (`PYTHON`, `JAVA`, …), for its known quirks.
    pub language: Option<String>,
}

impl Ctx {
    pub fn new(md: &MetadataMap) -> Self {
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        Self {
            client_id: get("x-mq-client-id").filter(|s| !s.is_empty()),
            namespace: get("x-mq-namespace").unwrap_or_default(),
            deadline: get("grpc-timeout").as_deref().and_then(parse_grpc_timeout),
            authorization: get("authorization"),
            date: get("x-mq-date-time"),
            language: get("x-mq-language"),
        }
    }

    /// The subscription a consumer request names (tenant from the group).
    pub fn subscription(&self, group: Option<&Resource>, topic: Option<&Resource>) -> Subscription {
        Subscription {
            tenant: self.tenant(group),
            group: group.map(|g| g.name.clone()).unwrap_or_default(),
            topic: topic.map(|t| t.name.clone()).unwrap_or_default(),
        }
    }

    /// The tenant a resource belongs to: its namespace, else the request's.
    pub fn tenant(&self, resource: Option<&Resource>) -> String {
        match resource {
            Some(r) if !r.resource_namespace.is_empty() => r.resource_namespace.clone(),
            _ => self.namespace.clone(),
        }
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
        let own = Resource {
            resource_namespace: "ns2".into(),
            name: "t".into(),
        };
        assert_eq!(ctx.tenant(Some(&own)), "ns2");
        assert_eq!(ctx.tenant(None), "ns1");
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
