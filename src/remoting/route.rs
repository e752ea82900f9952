//! The name server's answers: topic routes and the cluster's brokers, all pointing at this
//! node's advertised Remoting address.

use serde_json::json;
use strata_meta::accounts::Actions;
use strata_meta::model::{DLQ_PREFIX, RETRY_PREFIX, Topic};
use strata_tenancy::Need;

use super::fields::{Fields, Handled, Refusal};
use super::{Remoting, Reply, Req};

/// Queues readable and writable (PermName: READ 4 | WRITE 2).
const PERM_READ_WRITE: i32 = 6;

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
        self.authorize(
            req,
            &named.tenant,
            "GetRouteInfo",
            &[Need::topic(&named.name, Actions::PUB.union(Actions::SUB))],
        )?;
        let topic = self.topic(&named.tenant, &named.name).await?;
        let route = json!({
            "orderTopicConf": "",
            "queueDatas": [{
                "brokerName": self.broker.name,
                "readQueueNums": topic.queue_count,
                "writeQueueNums": topic.queue_count,
                "perm": PERM_READ_WRITE,
                "topicSynFlag": 0,
            }],
            "brokerDatas": [self.broker_data()],
            "filterServerTable": {},
        });
        Ok(Reply::ok().body(route.to_string()))
    }

    pub(super) fn cluster_info(&self) -> Reply {
        let info = json!({
            "brokerAddrTable": { self.broker.name.clone(): self.broker_data() },
            "clusterAddrTable": { self.broker.cluster.clone(): [self.broker.name] },
        });
        Reply::ok().body(info.to_string())
    }

    fn broker_data(&self) -> serde_json::Value {
        json!({
            "cluster": self.broker.cluster,
            "brokerName": self.broker.name,
            "brokerAddrs": { "0": self.broker.address },
        })
    }

    /// Checks that the request's sender may have `needs` in `tenant`, and meters the call.
    pub(super) fn authorize(&self, req: &Req<'_>, tenant: &str, rpc: &str, needs: &[Need<'_>]) -> Handled<()> {
        req.principal
            .authorize(tenant, needs)
            .map_err(|e| Refusal::from_status(&crate::front::status::from_auth(&e)))?;
        self.front.meter.call(tenant, rpc);
        Ok(())
    }
}
