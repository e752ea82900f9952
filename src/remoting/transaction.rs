//! 4.x transactions: END_TRANSACTION from producers, CHECK_TRANSACTION_STATE to them. Half
//! messages are the same held records 5.x transactions use.

use std::time::Instant;

use bytes::BytesMut;
use strata_meta::accounts::Actions;
use strata_remoting::Command;
use strata_remoting::FLAG_ONEWAY;
use strata_remoting::codes::{request, response};
use strata_remoting::message::{encode_stored, property as p};
use strata_tenancy::Need;

use super::convert::to_stored;
use super::fields::{Fields, Handled, Refusal};
use super::names;
use super::{Remoting, Reply, Req};
use crate::front::{Check, CheckRoute};
use crate::trace::Kind;

/// `commitOrRollback` values (MessageSysFlag's transaction types).
const TRANSACTION_NOT_TYPE: i32 = 0;
const TRANSACTION_COMMIT: i32 = 2 << 2;
const TRANSACTION_ROLLBACK: i32 = 3 << 2;

impl Remoting {
    pub(super) async fn end_transaction(&self, req: &Req<'_>) -> Handled<Reply> {
        let ingest = self.ingest()?;
        let f = Fields(&req.ext_fields);
        let group = req.name(f.str("producerGroup")?);
        // The group only names the tenant (the topic's PUB is checked below).
        self.admit(req, "EndTransaction", &[group.group(Actions::default())])?;
        let id = f.str("transactionId")?;
        let commit = match f.num::<i32>("commitOrRollback")? {
            TRANSACTION_COMMIT => true,
            TRANSACTION_ROLLBACK => false,
            // The producer does not know yet: the half message waits for the next check.
            TRANSACTION_NOT_TYPE => return Ok(Reply::ok()),
            other => {
                return Err(Refusal::new(
                    response::MESSAGE_ILLEGAL,
                    format!("commitOrRollback {other} is neither commit (8), rollback (12) nor unknown (0)"),
                ));
            }
        };
        let (tenant, topic) = ingest
            .transaction_topic(id)
            .filter(|(tenant, _)| *tenant == group.tenant)
            .ok_or_else(|| {
                Refusal::new(
                    response::TRANSACTION_FAILED,
                    format!(
                        "{id:?} is not a transaction id of namespace {:?} from this cluster",
                        group.tenant
                    ),
                )
            })?;
        req.principal
            .authorize(&tenant, &[Need::topic(&topic, Actions::PUB)])
            .map_err(|e| Refusal::from_auth(&e))?;
        ingest
            .end_transaction(&tenant, &topic, id, commit)
            .await
            .map_err(|e| Refusal::from_ingest(&e))?;
        let kind = if commit { Kind::Committed } else { Kind::RolledBack };
        let message_id = f.opt("msgId").unwrap_or_default();
        self.front.gate.trace_producer(kind, &tenant, &topic, None, message_id);
        Ok(Reply::ok())
    }
}

impl CheckRoute for Remoting {
    fn published_topics(&self) -> Vec<(String, String)> {
        self.clients.transactional_topics(Instant::now())
    }

    fn send_check(&self, check: &Check<'_>) -> Result<bool, String> {
        let q = &check.half.queue;
        let group = check
            .record
            .user_properties
            .get(p::PRODUCER_GROUP)
            .map(|g| names::split(g, &q.tenant).name);
        let Some(producer) =
            self.clients
                .producer_of(&q.tenant, &q.topic, group.as_deref(), check.pick, Instant::now())
        else {
            return Ok(false);
        };
        let topic = names::join(&q.tenant, &q.topic);
        let mut stored = to_stored(&topic, q.queue, 0, check.record, self.broker.store_host);
        stored
            .properties
            .push_str(&strata_remoting::message::format_properties([(
                p::TRANSACTION_PREPARED,
                "true",
            )]));
        let mut body = BytesMut::new();
        encode_stored(&stored, &mut body).map_err(|e| e.to_string())?;
        let opaque = self.next_opaque();
        let mut command = Command::request(request::CHECK_TRANSACTION_STATE, opaque);
        command.flag = FLAG_ONEWAY;
        for (k, v) in [
            ("msgId", check.record.message_id.clone()),
            ("transactionId", check.transaction_id.clone()),
            ("offsetMsgId", String::new()),
            ("tranStateTableOffset", "0".into()),
            ("commitLogOffset", stored.commit_log_offset.to_string()),
        ] {
            command.ext_fields.insert(k.into(), v);
        }
        command.body = body.freeze();
        producer.try_send(command).map_err(|e| e.to_string())?;
        Ok(true)
    }
}
