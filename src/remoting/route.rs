//! The name server's answers: topic routes and the cluster's brokers, all pointing at this
//! node's advertised Remoting address.

use serde_json::json;
use strata_meta::accounts::Actions;
use strata_meta::model::{DLQ_PREFIX, RETRY_PREFIX, Roles, Topic};
use strata_remoting::codes::response;
use strata_tenancy::Need;

use super::fields::{Fields, Handled, Refusal};
use super::{Remoting, Reply, Req};

/// Queue permissions (PermName).
const PERM_READ: i32 = 4;
const PERM_WRITE: i32 = 2;

/// A broker of a route: a node, where 4.x clients reach it, and what they may do there.
struct RouteBroker {
    name: String,
    address: String,
    perm: i32,
}

impl Remoting {
    /// The topic a 4.x client names, the broker's own retry and dead-letter topics included
    /// (created on first use).
    pub(super) async fn topic(&self, tenant: &str, name: &str) -> Handled<Topic> {
        let catalog = &self.front.catalog;
        let found = if let Some(group) = name.strip_prefix(RETRY_PREFIX) {
            catalog.retry_topic(tenant, group).await
        } else if let Some(group) = name.strip_prefix(DLQ_PREFIX) {
            catalog.dead_letter_topic(tenant, group).await
        } else {
            catalog.topic(tenant, name).await
        };
        found.map_err(|e| Refusal::from_meta(&e))
    }

    pub(super) async fn route(&self, req: &Req<'_>) -> Handled<Reply> {
        let named = req.name(Fields(&req.ext_fields).str("topic")?);
        self.admit(req, "GetRouteInfo", &[named.topic(Actions::PUB.union(Actions::SUB))])?;
        let topic = self.topic(&named.tenant, &named.name).await?;
        let brokers = self.brokers(&format!("{}/{}", named.tenant, named.name)).await?;
        let queues: Vec<_> = brokers
            .iter()
            .map(|b| {
                json!({
                    "brokerName": b.name,
                    "readQueueNums": topic.queue_count,
                    "writeQueueNums": topic.queue_count,
                    "perm": b.perm,
                    "topicSynFlag": 0,
                })
            })
            .collect();
        let route = json!({
            "orderTopicConf": "",
            "queueDatas": queues,
            "brokerDatas": brokers.iter().map(|b| self.broker_data(b)).collect::<Vec<_>>(),
            "filterServerTable": {},
        });
        Ok(Reply::ok().body(route.to_string()))
    }

    pub(super) async fn cluster_info(&self) -> Handled<Reply> {
        let brokers = self.brokers("").await?;
        let table: serde_json::Map<String, serde_json::Value> =
            brokers.iter().map(|b| (b.name.clone(), self.broker_data(b))).collect();
        let info = json!({
            "brokerAddrTable": table,
            "clusterAddrTable": { self.broker.cluster.clone(): brokers.iter().map(|b| &b.name).collect::<Vec<_>>() },
        });
        Ok(Reply::ok().body(info.to_string()))
    }

    fn broker_data(&self, b: &RouteBroker) -> serde_json::Value {
        json!({
            "cluster": self.broker.cluster,
            "brokerName": b.name,
            "brokerAddrs": { "0": b.address },
        })
    }

    /// The brokers of a topic's route (`key`: tenant/topic). Standalone: this node, read and
    /// write. Cluster: every live node serving 4.x clients, ingest nodes writable, and one
    /// query node readable, chosen by the topic's hash: a queue readable at two brokers would
    /// be two queues to 4.x consumers, pulled twice under one set of offsets.
    async fn brokers(&self, key: &str) -> Handled<Vec<RouteBroker>> {
        let Some(mut nodes) = self
            .front
            .routes
            .live_nodes()
            .await
            .map_err(|s| Refusal::from_status(&s))?
        else {
            return Ok(vec![RouteBroker {
                name: self.broker.name.clone(),
                address: self.broker.address.clone(),
                perm: PERM_READ | PERM_WRITE,
            }]);
        };
        nodes.retain(|n| n.remoting.is_some());
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let readers: Vec<&str> = nodes
            .iter()
            .filter(|n| n.roles.contains(Roles::QUERY))
            .map(|n| n.id.as_str())
            .collect();
        let reader = (!readers.is_empty())
            .then(|| readers[crc32fast::hash(key.as_bytes()) as usize % readers.len()].to_string());
        let brokers: Vec<RouteBroker> = nodes
            .into_iter()
            .filter_map(|n| {
                let mut perm = 0;
                if n.roles.contains(Roles::INGEST) {
                    perm |= PERM_WRITE;
                }
                if key.is_empty() && n.roles.contains(Roles::QUERY) || reader.as_deref() == Some(&n.id) {
                    perm |= PERM_READ;
                }
                (perm != 0).then_some(RouteBroker {
                    address: n.remoting?,
                    name: n.id,
                    perm,
                })
            })
            .collect();
        if brokers.is_empty() {
            return Err(Refusal::new(
                response::SERVICE_NOT_AVAILABLE,
                "no live ingest or query node serves 4.x clients (remoting.listen)",
            ));
        }
        Ok(brokers)
    }

    /// Lets a request in through the gate: the one tenant every name in `needs` is in, once
    /// the sender may have each of them there (the call is metered there).
    pub(super) fn admit(&self, req: &Req<'_>, rpc: &str, needs: &[Need<'_>]) -> Handled<String> {
        self.front
            .gate
            .admit(&req.principal, rpc, "", needs)
            .map_err(|e| Refusal::from_auth(&e))
    }
}
