//! The gRPC front: one `MessagingService` routing each RPC to the role that owns it
//! (ingest or query) and owning client sessions (DESIGN §1).

mod checks;
mod context;
mod forward;
mod lite;
mod route;
mod session;
pub mod status;
mod telemetry;

use crate::trace::Kind;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use strata_ingest::Ingest;
use strata_meta::Catalog;
use strata_meta::accounts::Actions;
use strata_meta::model::{QueueRef, Roles, Subscription};
use strata_proto::v2::messaging_service_client::MessagingServiceClient;
use strata_proto::v2::{self, Code, messaging_service_server::MessagingService, telemetry_command::Command};
use strata_query::{Filter, Position, PullRequest, Query, ReceiveRequest};
use strata_tenancy::Need;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status as GrpcStatus, Streaming};
use tracing::{Instrument, debug, info_span, warn};

use crate::gate::{Gate, Producer};
pub use checks::{Check, CheckRoute, TelemetryChecks, spawn_transaction_checks};
pub use context::Verified;
use context::{Ctx, group_need, subscription, topic_need};
pub use forward::Forwarder;
pub use route::Routes;
pub use session::Sessions;
use status::{combined, from_auth, from_ingest, from_meta, from_query, ok, status};
use telemetry::to_std;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, GrpcStatus>> + Send + 'static>>;
type Reply<T> = Result<Response<T>, GrpcStatus>;

#[derive(Clone)]
pub struct Front {
    /// Present on nodes with the ingest role.
    pub ingest: Option<Arc<Ingest>>,
    /// Present on nodes with the query role.
    pub query: Option<Arc<Query>>,
    pub catalog: Catalog,
    pub sessions: Arc<Sessions>,
    pub routes: Routes,
    /// Reported as a message's store host.
    pub node_id: String,
    /// Told to producers in their settings.
    pub max_body_bytes: usize,
    /// Consumer limits told to consumers in their settings.
    pub query_config: strata_query::QueryConfig,
    /// Cluster nodes: passes on requests for a role this node lacks.
    pub forwarder: Option<Arc<Forwarder>>,
    /// Authentication, the ACL, quotas, metering and trace, shared by every front.
    pub gate: Arc<Gate>,
}

/// What consuming as `group` from `topic` needs: SUB on both.
fn sub_needs<'a>(group: &'a v2::Resource, topic: &'a v2::Resource) -> [Need<'a>; 2] {
    [topic_need(topic, Actions::SUB), group_need(group, Actions::SUB)]
}

fn stream_of<T: Send + 'static>(items: Vec<T>) -> BoxStream<T> {
    Box::pin(futures::stream::iter(items.into_iter().map(Ok)))
}

/// An answer that carries only a refusal: what an RPC answers when it is not let in, or
/// cannot be passed on to a node with the role it needs.
trait Refusal {
    fn refusal(status: v2::Status) -> Self;
}

macro_rules! refusal_by_status_field {
    ($($response:ident),* $(,)?) => {$(
        impl Refusal for v2::$response {
            #[allow(clippy::needless_update)] // some answers have no field but the status
            fn refusal(status: v2::Status) -> Self {
                Self { status: Some(status), ..Default::default() }
            }
        }
    )*};
}

refusal_by_status_field!(
    SendMessageResponse,
    AckMessageResponse,
    ForwardMessageToDeadLetterQueueResponse,
    UpdateOffsetResponse,
    GetOffsetResponse,
    QueryOffsetResponse,
    EndTransactionResponse,
    ChangeInvisibleDurationResponse,
    RecallMessageResponse,
    SyncLiteSubscriptionResponse,
    QueryRouteResponse,
    QueryAssignmentResponse,
    HeartbeatResponse,
    NotifyClientTerminationResponse,
    TelemetryCommand,
);

impl Refusal for BoxStream<v2::ReceiveMessageResponse> {
    fn refusal(status: v2::Status) -> Self {
        use v2::receive_message_response::Content;
        stream_of(vec![v2::ReceiveMessageResponse {
            content: Some(Content::Status(status)),
        }])
    }
}

impl Refusal for BoxStream<v2::PullMessageResponse> {
    fn refusal(status: v2::Status) -> Self {
        use v2::pull_message_response::Content;
        stream_of(vec![v2::PullMessageResponse {
            content: Some(Content::Status(status)),
        }])
    }
}

impl Refusal for BoxStream<v2::TelemetryCommand> {
    fn refusal(status: v2::Status) -> Self {
        stream_of(vec![v2::TelemetryCommand::refusal(status)])
    }
}

/// `status` as the whole answer of an RPC.
fn refuse<R: Refusal>(status: v2::Status) -> Reply<R> {
    Ok(Response::new(R::refusal(status)))
}

/// An RPC's answer: its response, or its refusal carried in the response's status.
fn answer<R: Refusal>(result: Result<R, v2::Status>) -> Reply<R> {
    Ok(Response::new(result.unwrap_or_else(R::refusal)))
}

/// A streamed answer from another node, as this node's stream type.
fn boxed<T, S>(answer: Response<S>) -> Response<BoxStream<T>>
where
    S: Stream<Item = Result<T, GrpcStatus>> + Send + 'static,
{
    answer.map(|s| Box::pin(s) as BoxStream<T>)
}

impl Front {
    /// Answers a request this node's roles cannot serve: passed on to a live node with
    /// `role` through `call`, else refused. Its caller is authenticated here first, so the
    /// next node only sees requests with good credentials, and failed sign-ins count against
    /// the client's address, not this node's.
    async fn pass_on<T, R, F, Fut>(&self, role: Roles, request: Request<T>, call: F) -> Reply<R>
    where
        R: Refusal,
        F: FnOnce(MessagingServiceClient<Channel>, Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<R>, GrpcStatus>>,
    {
        if let Err(s) = self.caller(&Ctx::of(&request)).await {
            return refuse(s);
        }
        let Some(f) = &self.forwarder else {
            let name = role.names().join("+");
            return refuse(status(
                Code::Forbidden,
                format!("this node runs no {name} role; use the queues the route marks for it"),
            ));
        };
        match f.forward(role, request, call).await {
            Ok(r) => Ok(r),
            Err(s) => refuse(s),
        }
    }

    /// Lets a request in through the gate: the one tenant it acts in, or the status to
    /// answer with (UNAUTHORIZED or FORBIDDEN).
    async fn let_in(&self, ctx: &Ctx, rpc: &str, needs: &[Need<'_>]) -> Result<String, v2::Status> {
        let principal = self.caller(ctx).await?;
        self.gate
            .admit(&principal, rpc, &ctx.namespace, needs)
            .map_err(|e| from_auth(&e))
    }

    /// Lets in a consumer's request naming `group` and `topic` (SUB on both): the
    /// subscription it acts on.
    async fn subscriber(
        &self,
        ctx: &Ctx,
        rpc: &str,
        group: &v2::Resource,
        topic: &v2::Resource,
    ) -> Result<Subscription, v2::Status> {
        let tenant = self.let_in(ctx, rpc, &sub_needs(group, topic)).await?;
        Ok(subscription(tenant, group, topic))
    }

    /// Lets in a receive or a pull (`rpc`) of `group` from `topic`: its tenant, once that is
    /// under its ceiling, and the filter it asked for.
    async fn let_in_reader(
        &self,
        ctx: &Ctx,
        rpc: &str,
        group: &v2::Resource,
        topic: &v2::Resource,
        filter: Option<&v2::FilterExpression>,
    ) -> Result<(String, Filter), v2::Status> {
        let tenant = self.let_in(ctx, rpc, &sub_needs(group, topic)).await?;
        self.gate.admit_receive(&tenant).await.map_err(|e| from_auth(&e))?;
        let filter = Filter::parse(filter).map_err(|e| from_query(&e))?;
        Ok((tenant, filter))
    }

    /// Who sent a request: authenticated here, or by this process already (HTTP).
    async fn caller(&self, ctx: &Ctx) -> Result<strata_tenancy::Principal, v2::Status> {
        match &ctx.verified {
            Some(p) => Ok(p.clone()),
            None => self.gate.authenticate(ctx.credentials(), ctx.peer).await.map_err(|e| {
                debug!(error = %e, client = ?ctx.client_id, "request refused");
                from_auth(&e)
            }),
        }
    }

    /// How long a receive may wait: Apache's rule, the client's deadline minus half its
    /// request timeout, capped by the configured and the requested long-polling time.
    fn long_polling(&self, ctx: &Ctx, tenant: &str, requested: Option<&prost_types::Duration>) -> Duration {
        let max = self.query_config.max_long_polling;
        let half_timeout = self.sessions.request_timeout(tenant, ctx.client_id.as_deref()) / 2;
        let by_deadline = ctx.deadline.map_or(max, |d| d.saturating_sub(half_timeout));
        let requested = requested.and_then(to_std).unwrap_or(max);
        by_deadline.min(requested).min(max)
    }
}

/// The role an RPC needs on this node, or (returning from the RPC) the request passed on to
/// a live node that has it through `call`.
macro_rules! role_or_pass_on {
    ($self:ident . $role:ident, $name:ident, $request:ident, $call:expr) => {
        match &$self.$role {
            Some(role) => Arc::clone(role),
            None => return $self.pass_on(Roles::$name, $request, $call).await,
        }
    };
}

#[tonic::async_trait]
impl MessagingService for Front {
    async fn query_route(&self, request: Request<v2::QueryRouteRequest>) -> Reply<v2::QueryRouteResponse> {
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let resource = req.topic.unwrap_or_default();
        let span = info_span!("query_route", topic = %resource.name);
        answer(
            async {
                let needs = [topic_need(&resource, Actions::PUB.union(Actions::SUB))];
                let tenant = self.let_in(&ctx, "QueryRoute", &needs).await?;
                let topic = self
                    .catalog
                    .topic(&tenant, &resource.name)
                    .await
                    .map_err(|e| from_meta(&e))?;
                let client_type = ctx
                    .client_id
                    .as_deref()
                    .map_or(0, |id| self.sessions.client_type(&tenant, id));
                let queues = self
                    .routes
                    .queues(&resource, &topic, req.endpoints.as_ref(), client_type)
                    .await?;
                Ok(v2::QueryRouteResponse {
                    status: Some(ok()),
                    message_queues: queues,
                })
            }
            .instrument(span)
            .await,
        )
    }

    async fn heartbeat(&self, request: Request<v2::HeartbeatRequest>) -> Reply<v2::HeartbeatResponse> {
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        answer(
            async {
                let group = req.group.as_ref().filter(|g| !g.name.is_empty());
                let needs: Vec<Need<'_>> = group.map(|g| group_need(g, Actions::SUB)).into_iter().collect();
                let tenant = self.let_in(&ctx, "Heartbeat", &needs).await?;
                if let Some(id) = &ctx.client_id {
                    self.sessions.touch(&tenant, id, Some(req.client_type));
                }
                if let Some(g) = group {
                    self.catalog.group(&tenant, &g.name).await.map_err(|e| from_meta(&e))?;
                }
                Ok(v2::HeartbeatResponse { status: Some(ok()) })
            }
            .await,
        )
    }

    async fn send_message(&self, request: Request<v2::SendMessageRequest>) -> Reply<v2::SendMessageResponse> {
        let ingest = role_or_pass_on!(self.ingest, INGEST, request, |mut c, r| async move {
            c.send_message(r).await
        });
        let started = std::time::Instant::now();
        let host = request.remote_addr().map(|a| a.ip().to_string());
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let needs: Vec<Need<'_>> = req
            .messages
            .iter()
            .map(|m| match &m.topic {
                Some(t) => topic_need(t, Actions::PUB),
                None => Need::topic("", Actions::PUB),
            })
            .collect();
        let admitted = async {
            let tenant = self.let_in(&ctx, "SendMessage", &needs).await?;
            let weights = req.messages.iter().map(strata_ingest::record::weight);
            let charge = self
                .gate
                .admit_send(&tenant, weights)
                .await
                .map_err(|e| from_auth(&e))?;
            Ok((tenant, charge))
        };
        let (tenant, charge) = match admitted.await {
            Ok(admitted) => admitted,
            Err(s) => return refuse(s),
        };
        let results = ingest.send(&tenant, &req.messages).await;
        let producer = Producer {
            client: ctx.client_id.as_deref(),
            host,
            started,
        };
        self.gate.sent(&tenant, &req.messages, &results, charge, Some(producer));
        let entries: Vec<v2::SendResultEntry> = results
            .iter()
            .zip(&req.messages)
            .map(|(r, m)| match r {
                Ok(receipt) => v2::SendResultEntry {
                    status: Some(ok()),
                    message_id: receipt.message_id.clone(),
                    transaction_id: receipt.transaction_id.clone().unwrap_or_default(),
                    // Held messages (delay, transaction) get their offset when released.
                    offset: receipt.offset.unwrap_or_default(),
                    recall_handle: receipt.recall_handle.clone().unwrap_or_default(),
                },
                Err(e) => {
                    debug!(error = %e, "send refused");
                    v2::SendResultEntry {
                        status: Some(from_ingest(e)),
                        message_id: m
                            .system_properties
                            .as_ref()
                            .map(|s| s.message_id.clone())
                            .unwrap_or_default(),
                        ..Default::default()
                    }
                }
            })
            .collect();
        let statuses: Vec<&v2::Status> = entries.iter().filter_map(|e| e.status.as_ref()).collect();
        let status = if entries.is_empty() {
            status(Code::BadRequest, "the request holds no message")
        } else {
            combined(&statuses)
        };
        Ok(Response::new(v2::SendMessageResponse {
            status: Some(status),
            entries,
        }))
    }

    async fn query_assignment(
        &self,
        request: Request<v2::QueryAssignmentRequest>,
    ) -> Reply<v2::QueryAssignmentResponse> {
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let (topic, group) = (req.topic.unwrap_or_default(), req.group.unwrap_or_default());
        answer(
            async {
                let tenant = self.let_in(&ctx, "QueryAssignment", &sub_needs(&group, &topic)).await?;
                self.catalog
                    .topic(&tenant, &topic.name)
                    .await
                    .map_err(|e| from_meta(&e))?;
                self.catalog
                    .group(&tenant, &group.name)
                    .await
                    .map_err(|e| from_meta(&e))?;
                let assignments = self.routes.assignments(&topic, req.endpoints.as_ref()).await?;
                Ok(v2::QueryAssignmentResponse {
                    status: Some(ok()),
                    assignments,
                })
            }
            .await,
        )
    }

    type ReceiveMessageStream = BoxStream<v2::ReceiveMessageResponse>;

    async fn receive_message(&self, request: Request<v2::ReceiveMessageRequest>) -> Reply<Self::ReceiveMessageStream> {
        use v2::receive_message_response::Content;
        let query = role_or_pass_on!(self.query, QUERY, request, |mut c, r| async move {
            Ok(boxed(c.receive_message(r).await?))
        });
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let group = req.group.clone().unwrap_or_default();
        let topic = req
            .message_queue
            .as_ref()
            .and_then(|q| q.topic.clone())
            .unwrap_or_default();
        let checked = self.let_in_reader(&ctx, "ReceiveMessage", &group, &topic, req.filter_expression.as_ref());
        let (tenant, filter) = match checked.await {
            Ok(checked) => checked,
            Err(s) => return refuse(s),
        };
        let invisible = match req.invisible_duration.as_ref().map(to_std) {
            None => None,
            Some(Some(d)) => Some(d),
            Some(None) => return refuse(status(Code::IllegalInvisibleTime, "negative invisible duration")),
        };
        let receive = ReceiveRequest {
            tenant: tenant.clone(),
            group: group.name,
            topic: topic.name.clone(),
            filter,
            batch_size: req.batch_size.max(1) as usize,
            invisible,
            long_polling: self.long_polling(&ctx, &tenant, req.long_polling_timeout.as_ref()),
            client_id: ctx.client_id.clone(),
        };
        let store_host = self.node_id.clone();
        let span = info_span!("receive_message", tenant = %tenant, group = %receive.group, topic = %receive.topic);
        let gate = Arc::clone(&self.gate);
        let responses = async move {
            let content = match query.receive(&receive).await {
                Ok(found) if found.is_empty() => vec![Content::Status(status(Code::MessageNotFound, "no new message"))],
                Ok(found) => {
                    gate.delivered(&tenant, found.iter().map(|d| d.record.body.len())).await;
                    let client = receive.client_id.as_deref();
                    gate.trace_delivered(&tenant, &receive.group, client, &topic.name, &found);
                    std::iter::once(Content::Status(ok()))
                        .chain(found.iter().map(|d| {
                            Content::Message(strata_query::convert::to_message(&tenant, &topic.name, d, &store_host))
                        }))
                        .collect()
                }
                Err(e) => {
                    return vec![v2::ReceiveMessageResponse {
                        content: Some(Content::Status(from_query(&e))),
                    }];
                }
            };
            // The machine's own clock, not the node's test-movable one: clients measure their
            // invisible time from it.
            let now_ms = strata_meta::Clock::now_ms(&strata_meta::clock::SystemClock);
            let delivered_at = prost_types::Timestamp {
                seconds: now_ms.div_euclid(1000),
                nanos: (now_ms.rem_euclid(1000) * 1_000_000) as i32,
            };
            content
                .into_iter()
                .chain(std::iter::once(Content::DeliveryTimestamp(delivered_at)))
                .map(|c| v2::ReceiveMessageResponse { content: Some(c) })
                .collect()
        }
        .instrument(span);
        let stream =
            futures::stream::once(responses).flat_map(|items| futures::stream::iter(items.into_iter().map(Ok)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn ack_message(&self, request: Request<v2::AckMessageRequest>) -> Reply<v2::AckMessageResponse> {
        let query = role_or_pass_on!(
            self.query,
            QUERY,
            request,
            |mut c, r| async move { c.ack_message(r).await }
        );
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let (group, topic) = (req.group.unwrap_or_default(), req.topic.unwrap_or_default());
        let sub = match self.subscriber(&ctx, "AckMessage", &group, &topic).await {
            Ok(sub) => sub,
            Err(s) => return refuse(s),
        };
        let handles: Vec<String> = req.entries.iter().map(|e| e.receipt_handle.clone()).collect();
        let results = query.ack(&sub, &handles).await;
        for (e, r) in req.entries.iter().zip(&results) {
            if r.is_ok() {
                self.gate
                    .trace_consumer(Kind::Acked, &sub, ctx.client_id.as_deref(), &e.message_id, None);
            }
        }
        let entries: Vec<v2::AckMessageResultEntry> = req
            .entries
            .into_iter()
            .zip(results)
            .map(|(e, r)| v2::AckMessageResultEntry {
                message_id: e.message_id,
                receipt_handle: e.receipt_handle,
                status: Some(match r {
                    Ok(()) => ok(),
                    Err(err) => from_query(&err),
                }),
            })
            .collect();
        let statuses: Vec<&v2::Status> = entries.iter().filter_map(|e| e.status.as_ref()).collect();
        Ok(Response::new(v2::AckMessageResponse {
            status: Some(combined(&statuses)),
            entries,
        }))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        request: Request<v2::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Reply<v2::ForwardMessageToDeadLetterQueueResponse> {
        let query = role_or_pass_on!(self.query, QUERY, request, |mut c, r| async move {
            c.forward_message_to_dead_letter_queue(r).await
        });
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let (group, topic) = (req.group.unwrap_or_default(), req.topic.unwrap_or_default());
        answer(
            async {
                let rpc = "ForwardMessageToDeadLetterQueue";
                let sub = self.subscriber(&ctx, rpc, &group, &topic).await?;
                query
                    .forward_to_dead_letter(&sub, &req.receipt_handle)
                    .await
                    .map_err(|e| from_query(&e))?;
                let client = ctx.client_id.as_deref();
                self.gate
                    .trace_consumer(Kind::DeadLettered, &sub, client, &req.message_id, None);
                Ok(v2::ForwardMessageToDeadLetterQueueResponse { status: Some(ok()) })
            }
            .await,
        )
    }

    type PullMessageStream = BoxStream<v2::PullMessageResponse>;

    async fn pull_message(&self, request: Request<v2::PullMessageRequest>) -> Reply<Self::PullMessageStream> {
        use v2::pull_message_response::Content;
        let query = role_or_pass_on!(self.query, QUERY, request, |mut c, r| async move {
            Ok(boxed(c.pull_message(r).await?))
        });
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let mq = req.message_queue.unwrap_or_default();
        let topic = mq.topic.unwrap_or_default();
        let group = req.group.unwrap_or_default();
        let checked = self.let_in_reader(&ctx, "PullMessage", &group, &topic, req.filter_expression.as_ref());
        let (tenant, filter) = match checked.await {
            Ok(checked) => checked,
            Err(s) => return refuse(s),
        };
        let pull = PullRequest {
            queue: QueueRef {
                tenant: tenant.clone(),
                topic: topic.name.clone(),
                queue: mq.id,
            },
            group: group.name,
            offset: req.offset,
            batch_size: req.batch_size.max(1) as usize,
            filter,
            long_polling: self.long_polling(&ctx, &tenant, req.long_polling_timeout.as_ref()),
        };
        let store_host = self.node_id.clone();
        let gate = Arc::clone(&self.gate);
        let responses = async move {
            match query.pull(&pull).await {
                Err(e) => vec![Content::Status(from_query(&e))],
                Ok(pulled) => {
                    gate.delivered(&tenant, pulled.messages.iter().map(|(_, r)| r.body.len()))
                        .await;
                    std::iter::once(Content::Status(if pulled.messages.is_empty() {
                        status(Code::MessageNotFound, "no new message")
                    } else {
                        ok()
                    }))
                    .chain(pulled.messages.iter().map(|(offset, r)| {
                        let mut m = strata_query::convert::record_message(&tenant, &topic.name, r, mq.id, &store_host);
                        if let Some(sp) = m.system_properties.as_mut() {
                            sp.queue_offset = Some(*offset);
                        }
                        Content::Message(m)
                    }))
                    .chain(std::iter::once(Content::NextOffset(pulled.next_offset)))
                    .collect()
                }
            }
        };
        let stream = futures::stream::once(responses).flat_map(|items| {
            futures::stream::iter(
                items
                    .into_iter()
                    .map(|c| Ok(v2::PullMessageResponse { content: Some(c) })),
            )
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn update_offset(&self, request: Request<v2::UpdateOffsetRequest>) -> Reply<v2::UpdateOffsetResponse> {
        let query = role_or_pass_on!(self.query, QUERY, request, |mut c, r| async move {
            c.update_offset(r).await
        });
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let mq = req.message_queue.unwrap_or_default();
        let (group, topic) = (req.group.unwrap_or_default(), mq.topic.unwrap_or_default());
        answer(
            async {
                let sub = self.subscriber(&ctx, "UpdateOffset", &group, &topic).await?;
                query
                    .update_offset(&sub, mq.id, req.offset)
                    .await
                    .map_err(|e| from_query(&e))?;
                Ok(v2::UpdateOffsetResponse { status: Some(ok()) })
            }
            .await,
        )
    }

    async fn get_offset(&self, request: Request<v2::GetOffsetRequest>) -> Reply<v2::GetOffsetResponse> {
        let query = role_or_pass_on!(
            self.query,
            QUERY,
            request,
            |mut c, r| async move { c.get_offset(r).await }
        );
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let mq = req.message_queue.unwrap_or_default();
        let (group, topic) = (req.group.unwrap_or_default(), mq.topic.unwrap_or_default());
        answer(
            async {
                let sub = self.subscriber(&ctx, "GetOffset", &group, &topic).await?;
                let offset = query.committed_offset(&sub, mq.id).await.map_err(|e| from_query(&e))?;
                Ok(v2::GetOffsetResponse {
                    status: Some(ok()),
                    offset,
                })
            }
            .await,
        )
    }

    async fn query_offset(&self, request: Request<v2::QueryOffsetRequest>) -> Reply<v2::QueryOffsetResponse> {
        let query = role_or_pass_on!(
            self.query,
            QUERY,
            request,
            |mut c, r| async move { c.query_offset(r).await }
        );
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let mq = req.message_queue.unwrap_or_default();
        let topic = mq.topic.unwrap_or_default();
        answer(
            async {
                let tenant = self
                    .let_in(&ctx, "QueryOffset", &[topic_need(&topic, Actions::SUB)])
                    .await?;
                let position = match v2::QueryOffsetPolicy::try_from(req.query_offset_policy) {
                    Ok(v2::QueryOffsetPolicy::Beginning) => Some(Position::Beginning),
                    Ok(v2::QueryOffsetPolicy::End) => Some(Position::End),
                    Ok(v2::QueryOffsetPolicy::Timestamp) => req.timestamp.map(|t| {
                        Position::Timestamp(
                            t.seconds
                                .saturating_mul(1000)
                                .saturating_add(i64::from(t.nanos) / 1_000_000),
                        )
                    }),
                    Err(_) => None,
                };
                let position =
                    position.ok_or_else(|| status(Code::BadRequest, "a TIMESTAMP query needs a timestamp"))?;
                let queue = QueueRef {
                    tenant,
                    topic: topic.name,
                    queue: mq.id,
                };
                let offset = query.query_offset(&queue, position).await.map_err(|e| from_query(&e))?;
                Ok(v2::QueryOffsetResponse {
                    status: Some(ok()),
                    offset,
                })
            }
            .await,
        )
    }

    async fn end_transaction(&self, request: Request<v2::EndTransactionRequest>) -> Reply<v2::EndTransactionResponse> {
        let ingest = role_or_pass_on!(self.ingest, INGEST, request, |mut c, r| async move {
            c.end_transaction(r).await
        });
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let topic = req.topic.unwrap_or_default();
        answer(
            async {
                let tenant = self
                    .let_in(&ctx, "EndTransaction", &[topic_need(&topic, Actions::PUB)])
                    .await?;
                let commit = match v2::TransactionResolution::try_from(req.resolution) {
                    Ok(v2::TransactionResolution::Commit) => true,
                    Ok(v2::TransactionResolution::Rollback) => false,
                    _ => return Err(status(Code::BadRequest, "resolution must be COMMIT or ROLLBACK")),
                };
                ingest
                    .end_transaction(&tenant, &topic.name, &req.transaction_id, commit)
                    .await
                    .map_err(|e| from_ingest(&e))?;
                let kind = if commit { Kind::Committed } else { Kind::RolledBack };
                let client = ctx.client_id.as_deref();
                self.gate
                    .trace_producer(kind, &tenant, &topic.name, client, &req.message_id);
                Ok(v2::EndTransactionResponse { status: Some(ok()) })
            }
            .await,
        )
    }

    type TelemetryStream = BoxStream<v2::TelemetryCommand>;

    async fn telemetry(&self, request: Request<Streaming<v2::TelemetryCommand>>) -> Reply<Self::TelemetryStream> {
        let ctx = Ctx::of(&request);
        let Some(client_id) = ctx.client_id.clone() else {
            return refuse(status(Code::ClientIdRequired, "the x-mq-client-id header is required"));
        };
        // A refused stream is still answered (the Node client waits for a first reply).
        let principal = match self.caller(&ctx).await {
            Ok(p) => p,
            Err(s) => return refuse(s),
        };
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let front = self.clone();
        let span = info_span!("telemetry", client = %client_id);
        let closed = self.sessions.closed();
        tokio::spawn(
            async move {
                tokio::pin!(closed);
                // The session's tenant, fixed by its first Settings.
                let mut session: Option<String> = None;
                loop {
                    let next = tokio::select! {
                        next = inbound.next() => next,
                        () = &mut closed => break,
                    };
                    let Some(next) = next else { break };
                    let cmd = match next {
                        Ok(cmd) => cmd,
                        Err(e) => {
                            debug!(error = %e, "telemetry stream ended with an error");
                            break;
                        }
                    };
                    match cmd.command {
                        Some(Command::Settings(settings)) => {
                            let reply = front
                                .settings(&ctx, &principal, &client_id, &mut session, settings, &tx)
                                .await;
                            if tx.send(Ok(reply)).await.is_err() {
                                break;
                            }
                        }
                        Some(other) => debug!(command = ?other, "telemetry command from client"),
                        None => warn!("empty telemetry command"),
                    }
                }
                if let Some(tenant) = &session {
                    front.sessions.detach(tenant, &client_id);
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn notify_client_termination(
        &self,
        request: Request<v2::NotifyClientTerminationRequest>,
    ) -> Reply<v2::NotifyClientTerminationResponse> {
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        answer(
            async {
                let group = req.group.as_ref().filter(|g| !g.name.is_empty());
                // The group only names the tenant: a client ends its own session.
                let needs: Vec<Need<'_>> = group.map(|g| group_need(g, Actions::default())).into_iter().collect();
                let tenant = self.let_in(&ctx, "NotifyClientTermination", &needs).await?;
                if let Some(id) = &ctx.client_id {
                    self.sessions.remove(&tenant, id);
                    self.drop_lite_client(&tenant, id).await;
                }
                Ok(v2::NotifyClientTerminationResponse { status: Some(ok()) })
            }
            .await,
        )
    }

    async fn change_invisible_duration(
        &self,
        request: Request<v2::ChangeInvisibleDurationRequest>,
    ) -> Reply<v2::ChangeInvisibleDurationResponse> {
        let query = role_or_pass_on!(self.query, QUERY, request, |mut c, r| async move {
            c.change_invisible_duration(r).await
        });
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let (group, topic) = (req.group.unwrap_or_default(), req.topic.unwrap_or_default());
        answer(
            async {
                let rpc = "ChangeInvisibleDuration";
                let sub = self.subscriber(&ctx, rpc, &group, &topic).await?;
                let invisible = req
                    .invisible_duration
                    .as_ref()
                    .and_then(to_std)
                    .ok_or_else(|| status(Code::IllegalInvisibleTime, "invisible duration missing or negative"))?;
                let handle = query
                    .change_invisible(&sub, &req.receipt_handle, invisible)
                    .await
                    .map_err(|e| from_query(&e))?;
                let ms = Some(invisible.as_millis() as i64);
                let client = ctx.client_id.as_deref();
                self.gate
                    .trace_consumer(Kind::InvisibleChanged, &sub, client, &req.message_id, ms);
                Ok(v2::ChangeInvisibleDurationResponse {
                    status: Some(ok()),
                    receipt_handle: handle,
                })
            }
            .await,
        )
    }

    async fn recall_message(&self, request: Request<v2::RecallMessageRequest>) -> Reply<v2::RecallMessageResponse> {
        let ingest = role_or_pass_on!(self.ingest, INGEST, request, |mut c, r| async move {
            c.recall_message(r).await
        });
        let ctx = Ctx::of(&request);
        let req = request.into_inner();
        let topic = req.topic.unwrap_or_default();
        answer(
            async {
                let tenant = self
                    .let_in(&ctx, "RecallMessage", &[topic_need(&topic, Actions::PUB)])
                    .await?;
                let message_id = ingest
                    .recall(&tenant, &topic.name, &req.recall_handle)
                    .await
                    .map_err(|e| from_ingest(&e))?;
                let client = ctx.client_id.as_deref();
                self.gate
                    .trace_producer(Kind::Recalled, &tenant, &topic.name, client, &message_id);
                Ok(v2::RecallMessageResponse {
                    status: Some(ok()),
                    message_id,
                })
            }
            .await,
        )
    }

    async fn sync_lite_subscription(
        &self,
        request: Request<v2::SyncLiteSubscriptionRequest>,
    ) -> Reply<v2::SyncLiteSubscriptionResponse> {
        let query = role_or_pass_on!(self.query, QUERY, request, |mut c, r| async move {
            c.sync_lite_subscription(r).await
        });
        let ctx = Ctx::of(&request);
        let status = self.sync_lite(&query, &ctx, request.into_inner()).await;
        Ok(Response::new(v2::SyncLiteSubscriptionResponse { status: Some(status) }))
    }
}
