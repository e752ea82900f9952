//! The Telemetry stream: a client reports its settings, we answer with the settings it must
//! use (PROTOCOL-NOTES: producers need `max_body_size`; consumers need batch size, long
//! polling timeout, FIFO flag and a backoff policy).

use std::time::Duration;

use strata_meta::accounts::Actions;
use strata_meta::model::Group;
use strata_meta::retry::{DELAY_LEVELS_SECS, RetryPolicy};
use strata_proto::v2::{self, settings::PubSub, telemetry_command::Command};
use strata_tenancy::{Need, Principal};

use super::context::{Ctx, group_need, topic_need};
use super::session::TelemetrySender;
use super::status::{self, from_auth};
use super::{Front, Refusal};

/// Producer send retries (as the Java client's default).
fn producer_backoff() -> v2::RetryPolicy {
    v2::RetryPolicy {
        max_attempts: 3,
        strategy: Some(v2::retry_policy::Strategy::ExponentialBackoff(v2::ExponentialBackoff {
            initial: Some(duration(Duration::from_millis(10))),
            max: Some(duration(Duration::from_secs(1))),
            multiplier: 2.0,
        })),
    }
}

/// Consumer redelivery backoff: the group's retry policy (by default Apache RocketMQ's delay
/// levels from 1 s on).
fn consumer_backoff(group: &Group) -> v2::RetryPolicy {
    let ms = |ms: i64| duration(Duration::from_millis(ms.max(0) as u64));
    let strategy = match &group.retry_policy {
        RetryPolicy::Levels => v2::retry_policy::Strategy::CustomizedBackoff(v2::CustomizedBackoff {
            next: DELAY_LEVELS_SECS
                .iter()
                .map(|s| duration(Duration::from_secs(*s)))
                .collect(),
        }),
        RetryPolicy::Customized(waits) => v2::retry_policy::Strategy::CustomizedBackoff(v2::CustomizedBackoff {
            next: waits.iter().map(|w| ms(*w)).collect(),
        }),
        RetryPolicy::Exponential {
            initial_ms,
            max_ms,
            multiplier,
        } => v2::retry_policy::Strategy::ExponentialBackoff(v2::ExponentialBackoff {
            initial: Some(ms(*initial_ms)),
            max: Some(ms(*max_ms)),
            multiplier: *multiplier as f32,
        }),
    };
    v2::RetryPolicy {
        max_attempts: group.max_attempts,
        strategy: Some(strategy),
    }
}

pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn to_std(d: &prost_types::Duration) -> Option<Duration> {
    (d.seconds >= 0 && d.nanos >= 0).then(|| Duration::new(d.seconds as u64, d.nanos as u32))
}

impl Front {
    /// A client's Settings on its Telemetry stream: every resource they name is let in through
    /// the gate in the one tenant of the stream (`session`, fixed by the first Settings), the
    /// session (tenant, client id) is recorded, and the settings it must use are the answer.
    pub(super) async fn settings(
        &self,
        ctx: &Ctx,
        principal: &Principal,
        client_id: &str,
        session: &mut Option<String>,
        settings: v2::Settings,
        stream: &TelemetrySender,
    ) -> v2::TelemetryCommand {
        let (publishing, subscription) = match &settings.pub_sub {
            Some(PubSub::Publishing(p)) => (p.topics.as_slice(), None),
            Some(PubSub::Subscription(s)) => (&[][..], Some(s)),
            _ => (&[][..], None),
        };
        let group = subscription.and_then(|s| s.group.as_ref());
        // Producers' topics need only be in the tenant here: those they may not publish to
        // get no transaction checks, below.
        let needs: Vec<Need<'_>> = publishing
            .iter()
            .map(|t| topic_need(t, Actions::default()))
            .chain(group.map(|g| group_need(g, Actions::SUB)))
            .chain(
                subscription
                    .into_iter()
                    .flat_map(|s| &s.subscriptions)
                    .filter_map(|e| e.topic.as_ref())
                    .map(|t| topic_need(t, Actions::SUB)),
            )
            .collect();
        let namespace = session.as_deref().unwrap_or(&ctx.namespace);
        let tenant = match self.gate.admit(principal, "Telemetry", namespace, &needs) {
            Ok(t) => t,
            Err(e) => return v2::TelemetryCommand::refusal(from_auth(&e)),
        };
        let mut refused = None;
        let topics = publishing
            .iter()
            .filter(|t| {
                let allowed = principal.authorize(&tenant, &[Need::topic(&t.name, Actions::PUB)]);
                allowed.map_err(|e| refused = Some(from_auth(&e))).is_ok()
            })
            .map(|t| t.name.clone())
            .collect();
        let client_type = settings.client_type.unwrap_or_default();
        let timeout = settings.request_timeout.as_ref().and_then(to_std);
        let group = group.map(|g| g.name.clone());
        self.sessions
            .settings(&tenant, client_id, client_type, timeout, topics, group, stream.clone());
        let mut reply = self.settings_reply(&tenant, settings).await;
        if refused.is_some() {
            reply.status = refused;
        }
        *session = Some(tenant);
        reply
    }

    /// The answer to a client's Settings, in `tenant`.
    async fn settings_reply(&self, tenant: &str, mut settings: v2::Settings) -> v2::TelemetryCommand {
        let mut reply_status = status::ok();
        match settings.pub_sub.as_mut() {
            Some(PubSub::Publishing(p)) => {
                p.max_body_size = self.max_body_bytes as i32;
                p.validate_message_type = true;
                settings.backoff_policy = Some(settings.backoff_policy.take().unwrap_or_else(producer_backoff));
            }
            Some(PubSub::Subscription(s)) => {
                let group = s.group.clone().unwrap_or_default();
                let max_batch = self.query_config.max_batch as i32;
                let max_poll = self.query_config.max_long_polling;
                match self.catalog.group(tenant, &group.name).await {
                    Ok(g) => {
                        s.fifo = Some(g.fifo);
                        settings.backoff_policy = Some(consumer_backoff(&g));
                    }
                    Err(e) => reply_status = status::from_meta(&e),
                }
                s.receive_batch_size = Some(
                    s.receive_batch_size
                        .filter(|b| (1..=max_batch).contains(b))
                        .unwrap_or(max_batch),
                );
                let poll = s
                    .long_polling_timeout
                    .as_ref()
                    .and_then(to_std)
                    .unwrap_or(max_poll)
                    .min(max_poll);
                s.long_polling_timeout = Some(duration(poll));
                // Lite consumers refuse every subscription without these (PROTOCOL-NOTES).
                s.lite_subscription_quota = Some(self.query_config.lite_subscription_quota as i32);
                s.max_lite_topic_size = Some(strata_meta::lite::MAX_NAME_LEN as i32);
            }
            None => {}
        }
        settings.metric = Some(v2::Metric {
            on: false,
            endpoints: None,
        });
        v2::TelemetryCommand {
            status: Some(reply_status),
            command: Some(Command::Settings(settings)),
        }
    }
}
