//! SyncLiteSubscription: lite consumers add and remove the lite topics they receive.

use strata_meta::lite::{Change, Subscriber};
use strata_meta::model::MessageType;
use strata_proto::v2::offset_option::{OffsetType, Policy};
use strata_proto::v2::telemetry_command::Command;
use strata_proto::v2::{self, Code, LiteSubscriptionAction};
use strata_query::{LiteStart, Position, Query};

use super::Front;
use super::context::Ctx;
use super::status::{from_meta, from_query, ok, status};

/// The lite topic names a request means. rocketmq-python-client 5.1.2 sends PARTIAL_ADD with
/// its one name split into characters (`["s", "e", "s", …]`): from a Python client, a
/// PARTIAL_ADD of one-character entries is that one name, joined again.
pub(super) fn requested_names(ctx: &Ctx, action: LiteSubscriptionAction, set: &[String]) -> Vec<String> {
    let split_by_python = ctx.language.as_deref() == Some("PYTHON")
        && action == LiteSubscriptionAction::PartialAdd
        && set.len() > 1
        && set.iter().all(|s| s.chars().count() == 1);
    if split_by_python {
        vec![set.concat()]
    } else {
        set.to_vec()
    }
}

/// Where an `offset_option` moves the group's progress on the lite topics it names: LAST
/// keeps it (None).
fn lite_start(option: OffsetType) -> Result<Option<LiteStart>, v2::Status> {
    Ok(Some(match option {
        OffsetType::Policy(p) => match Policy::try_from(p) {
            Ok(Policy::Last) => return Ok(None),
            Ok(Policy::Min) => LiteStart::At(Position::Beginning),
            Ok(Policy::Max) => LiteStart::At(Position::End),
            Err(_) => return Err(status(Code::BadRequest, format!("unknown offset policy {p}"))),
        },
        OffsetType::Offset(o) => LiteStart::Offset(o),
        OffsetType::TailN(n) => LiteStart::Tail(n),
        OffsetType::Timestamp(ms) => LiteStart::At(Position::Timestamp(ms)),
    }))
}

fn change_of(action: LiteSubscriptionAction) -> Change {
    match action {
        LiteSubscriptionAction::PartialAdd => Change::Add,
        LiteSubscriptionAction::PartialRemove => Change::Remove,
        LiteSubscriptionAction::CompleteAdd => Change::Replace,
        LiteSubscriptionAction::CompleteRemove => Change::Clear,
    }
}

impl Front {
    /// A tenant's client's session ended (it said so, or went silent): its lite
    /// subscriptions go.
    pub async fn drop_lite_client(&self, tenant: &str, client_id: &str) {
        if let Some(query) = &self.query {
            match query.drop_lite_client(tenant, client_id).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    client = client_id,
                    subscriptions = n,
                    "lite subscriptions of an ended session dropped"
                ),
                Err(e) => tracing::warn!(client = client_id, error = %e, "dropping lite subscriptions failed"),
            }
        }
    }

    pub(super) async fn sync_lite(&self, query: &Query, ctx: &Ctx, req: v2::SyncLiteSubscriptionRequest) -> v2::Status {
        let (group, topic) = (
            req.group.clone().unwrap_or_default(),
            req.topic.clone().unwrap_or_default(),
        );
        let sub = match self.subscriber(ctx, "SyncLiteSubscription", &group, &topic).await {
            Ok(sub) => sub,
            Err(s) => return s,
        };
        let Some(client_id) = ctx.client_id.clone() else {
            return status(Code::ClientIdRequired, "SyncLiteSubscription needs x-mq-client-id");
        };
        let Ok(action) = LiteSubscriptionAction::try_from(req.action) else {
            return status(
                Code::BadRequest,
                format!("unknown lite subscription action {}", req.action),
            );
        };
        let start = match req.offset_option.as_ref().and_then(|o| o.offset_type) {
            None => None,
            Some(option) => match lite_start(option) {
                Ok(start) => start,
                Err(s) => return s,
            },
        };
        match self.catalog.topic(&sub.tenant, &sub.topic).await {
            Ok(t) if t.message_type == MessageType::Lite => {}
            Ok(t) => {
                return status(
                    Code::BadRequest,
                    format!(
                        "topic {} is {}, not LITE: it has no lite topics",
                        t.name, t.message_type
                    ),
                );
            }
            Err(e) => return from_meta(&e),
        }
        if let Err(e) = self.catalog.group(&sub.tenant, &sub.group).await {
            return from_meta(&e);
        }
        let who = Subscriber {
            tenant: sub.tenant,
            group: sub.group,
            parent: sub.topic,
            client_id,
        };
        let names = requested_names(ctx, action, &req.lite_topic_set);
        match query
            .sync_lite_subscriptions(&who, change_of(action), &names, start)
            .await
        {
            Ok(dropped) => {
                self.tell_unsubscribed(&who.tenant, &who.client_id, dropped);
                ok()
            }
            Err(e) => from_query(&e),
        }
    }

    /// Tells a client, over its Telemetry stream, to drop lite topics whose subscriptions the
    /// server dropped (expired lite topics it still names in its complete set).
    fn tell_unsubscribed(&self, tenant: &str, client_id: &str, dropped: Vec<String>) {
        let Some(stream) = self
            .sessions
            .telemetry_of(tenant, client_id)
            .filter(|_| !dropped.is_empty())
        else {
            return;
        };
        for lite_topic in dropped {
            tracing::info!(
                client = client_id,
                lite_topic,
                "telling the client its lite subscription was dropped"
            );
            let command = v2::TelemetryCommand {
                status: Some(ok()),
                command: Some(Command::NotifyUnsubscribeLiteCommand(
                    v2::NotifyUnsubscribeLiteCommand { lite_topic },
                )),
            };
            // A full stream: the client hears of it at its next complete set.
            let _ = stream.try_send(Ok(command));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(language: &str) -> Ctx {
        Ctx {
            language: Some(language.into()),
            ..Default::default()
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_python_partial_add_split_into_characters_is_joined_again() {
        let split = strings(&["s", "e", "s", "s", "-", "1"]);
        assert_eq!(
            requested_names(&ctx("PYTHON"), LiteSubscriptionAction::PartialAdd, &split),
            ["sess-1"]
        );
        assert_eq!(
            requested_names(&ctx("PYTHON"), LiteSubscriptionAction::PartialRemove, &split),
            split,
            "only PARTIAL_ADD is split"
        );
        assert_eq!(
            requested_names(&ctx("NODE"), LiteSubscriptionAction::PartialAdd, &split),
            split
        );
        let whole = strings(&["sess-1", "sess-2"]);
        assert_eq!(
            requested_names(&ctx("PYTHON"), LiteSubscriptionAction::PartialAdd, &whole),
            whole
        );
    }
}
