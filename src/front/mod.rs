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
mod traced;

use crate::trace::Kind;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use strata_ingest::Ingest;
use strata_meta::Catalog;
use strata_meta::accounts::Actions;
use strata_meta::model::{QueueRef, Roles};
use strata_proto::v2::messaging_service_client::MessagingServiceClient;
use strata_proto::v2::{self, Code, messaging_service_server::MessagingService, telemetry_command::Command};
use strata_query::{Filter, Position, PullRequest, Query, ReceiveRequest};
use strata_tenancy::quota::units;
use strata_tenancy::{Guard, Meter, Need, Principal, Quotas};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status as GrpcStatus, Streaming};
use tracing::{Instrument, debug, info_span, warn};

pub use checks::{Check, CheckRoute, TelemetryChecks, spawn_transaction_checks};
use context::Ctx;
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
    /// Authentication and the ACL (lets everything through when auth is off).
    pub guard: Arc<Guard>,
    /// Reserved + burst quotas per tenant.
    pub quotas: Arc<Quotas>,
    /// What each tenant used (metering).
    pub meter: Arc<Meter>,
    /// Records what happens to messages (message trace).
    pub tracer: crate::trace::Tracer,
}

/// What consuming as a subscription needs: SUB on its topic and its group.
fn sub_needs(sub: &strata_meta::model::Subscription) -> [Need<'_>; 2] {
    [
        Need::topic(&sub.topic, Actions::SUB),
        Need::group(&sub.group, Actions::SUB),
    ]
}

fn stream_of<T: Send + 'static>(items: Vec<T>) -> BoxStream<T> {
    Box::pin(futures::stream::iter(items.into_iter().map(Ok)))
}

/// The answer to an RPC this node's roles do not serve.
fn role_missing(role: &str) -> v2::Status {
    status(
        Code::Forbidden,
        format!("this node runs no {role} role; use the queues the route marks for it"),
    )
}

impl Front {
    /// Answers a request this node's roles cannot serve: passed on to a live node with
    /// `role` through `call`, else refused with the status `refuse` wraps.
    async fn pass_on<T, R, F, Fut>(
        &self,
        role: Roles,
        request: Request<T>,
        call: F,
        refuse: impl FnOnce(v2::Status) -> R,
    ) -> Reply<R>
    where
        F: FnOnce(MessagingServiceClient<Channel>, Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<R>, GrpcStatus>>,
    {
        let name = role.names().join("+");
        match &self.forwarder {
            None => Ok(Response::new(refuse(role_missing(&name)))),
            Some(f) => match f.forward(role, request, call).await {
                Ok(r) => Ok(r),
                Err(s) => Ok(Response::new(refuse(s))),
            },
        }
    }

    /// Authenticates a request and checks `needs` inside `tenant`; a refusal as the status to
    /// answer with (UNAUTHORIZED or FORBIDDEN). An allowed call is metered as `rpc` for the
    /// tenant; a refused one only as an auth failure (its namespace is not believed, so it
    /// cannot create metering rows or metric series for names nobody owns).
    async fn allow(&self, ctx: &Ctx, rpc: &str, tenant: &str, needs: &[Need<'_>]) -> Result<Principal, v2::Status> {
        let principal = self.principal(ctx).await?;
        principal.authorize(tenant, needs).map_err(|e| self.refused(ctx, &e))?;
        self.meter.call(tenant, rpc);
        Ok(principal)
    }

    /// Authenticates a request that names no resource, metered as `rpc` for the user's own
    /// tenant (the Rust client sends no namespace header).
    async fn authenticate(&self, ctx: &Ctx, rpc: &str) -> Result<Principal, v2::Status> {
        let principal = self.principal(ctx).await?;
        let tenant = match &principal {
            Principal::User(a) => a.user.tenant.as_str(),
            _ => ctx.namespace.as_str(),
        };
        self.meter.call(tenant, rpc);
        Ok(principal)
    }

    async fn principal(&self, ctx: &Ctx) -> Result<Principal, v2::Status> {
        self.guard
            .authenticate(ctx.authorization.as_deref(), ctx.date.as_deref())
            .await
            .map_err(|e| self.refused(ctx, &e))
    }

    fn refused(&self, ctx: &Ctx, e: &strata_tenancy::Error) -> v2::Status {
        metrics::counter!("strata_front_auth_failures_total", "reason" => e.kind()).increment(1);
        debug!(error = %e, client = ?ctx.client_id, "request refused");
        from_auth(e)
    }

    /// Charges a send of `units` to the tenant's quota, or the TOO_MANY_REQUESTS to answer.
    pub(crate) async fn admit_send(&self, tenant: &str, units: u64) -> Result<strata_tenancy::Charge, v2::Status> {
        self.quotas
            .admit(tenant, units)
            .await
            .map_err(|e| self.throttled(tenant, &e))
    }

    /// Lets a receive in unless the tenant is over its ceiling.
    pub(crate) async fn admit_receive(&self, tenant: &str) -> Result<(), v2::Status> {
        self.quotas
            .admit_receive(tenant)
            .await
            .map_err(|e| self.throttled(tenant, &e))
    }

    fn throttled(&self, tenant: &str, e: &strata_tenancy::Error) -> v2::Status {
        if matches!(e, strata_tenancy::Error::TooManyRequests { .. }) {
            self.meter.throttled(tenant);
        }
        debug!(error = %e, tenant, "throttled");
        from_auth(e)
    }

    /// Charges and meters messages delivered to a tenant's consumers.
    pub(crate) async fn delivered(&self, tenant: &str, bodies: impl Iterator<Item = usize>) {
        let (mut n, mut bytes, mut units_out) = (0u64, 0u64, 0u64);
        for len in bodies {
            n += 1;
            bytes += len as u64;
            units_out += units(len);
        }
        if n == 0 {
            return;
        }
        match self.quotas.charge(tenant, units_out).await {
            Ok(charge) => self.meter.received(tenant, n, bytes, charge),
            Err(e) => warn!(error = %e, tenant, "delivered messages not charged"),
        }
    }

    /// How long a receive may wait: Apache's rule, the client's deadline minus half its
    /// request timeout, capped by the configured and the requested long-polling time.
    fn long_polling(&self, ctx: &Ctx, requested: Option<&prost_types::Duration>) -> Duration {
        let max = self.query_config.max_long_polling;
        let half_timeout = self.sessions.request_timeout(ctx.client_id.as_deref()) / 2;
        let by_deadline = ctx.deadline.map_or(max, |d| d.saturating_sub(half_timeout));
        let requested = requested.and_then(to_std).unwrap_or(max);
        by_deadline.min(requested).min(max)
    }
}

#[tonic::async_trait]
impl MessagingService for Front {
    async fn query_route(&self, request: Request<v2::QueryRouteRequest>) -> Reply<v2::QueryRouteResponse> {
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let resource = req.topic.unwrap_or_default();
        let tenant = ctx.tenant(Some(&resource));
        let span = info_span!("query_route", tenant = %tenant, topic = %resource.name);
        let response = async {
            let needs = [Need::topic(&resource.name, Actions::PUB.union(Actions::SUB))];
            if let Err(s) = self.allow(&ctx, "QueryRoute", &tenant, &needs).await {
                return v2::QueryRouteResponse {
                    status: Some(s),
                    message_queues: vec![],
                };
            }
            let topic = match self.catalog.topic(&tenant, &resource.name).await {
                Ok(t) => t,
                Err(e) => {
                    return v2::QueryRouteResponse {
                        status: Some(from_meta(&e)),
                        message_queues: vec![],
                    };
                }
            };
            let client_type = ctx.client_id.as_deref().map_or(0, |id| self.sessions.client_type(id));
            match self
                .routes
                .queues(&resource, &topic, req.endpoints.as_ref(), client_type)
                .await
            {
                Ok(queues) => v2::QueryRouteResponse {
                    status: Some(ok()),
                    message_queues: queues,
                },
                Err(s) => v2::QueryRouteResponse {
                    status: Some(s),
                    message_queues: vec![],
                },
            }
        }
        .instrument(span)
        .await;
        Ok(Response::new(response))
    }

    async fn heartbeat(&self, request: Request<v2::HeartbeatRequest>) -> Reply<v2::HeartbeatResponse> {
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let checked = match req.group.as_ref().filter(|g| !g.name.is_empty()) {
            Some(g) => {
                let needs = [Need::group(&g.name, Actions::SUB)];
                self.allow(&ctx, "Heartbeat", &ctx.tenant(Some(g)), &needs).await
            }
            None => self.authenticate(&ctx, "Heartbeat").await,
        };
        if let Err(s) = checked {
            return Ok(Response::new(v2::HeartbeatResponse { status: Some(s) }));
        }
        if let Some(id) = &ctx.client_id {
            self.sessions.touch(id, Some(req.client_type));
        }
        let status = match &req.group {
            Some(g) if !g.name.is_empty() => match self.catalog.group(&ctx.tenant(Some(g)), &g.name).await {
                Ok(_) => ok(),
                Err(e) => from_meta(&e),
            },
            _ => ok(),
        };
        Ok(Response::new(v2::HeartbeatResponse { status: Some(status) }))
    }

    async fn send_message(&self, request: Request<v2::SendMessageRequest>) -> Reply<v2::SendMessageResponse> {
        let Some(ingest) = &self.ingest else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.send_message(r).await };
            let refuse = |s| v2::SendMessageResponse {
                status: Some(s),
                entries: vec![],
            };
            return self.pass_on(Roles::INGEST, request, call, refuse).await;
        };
        let started = std::time::Instant::now();
        let host = request.remote_addr().map(|a| a.ip().to_string());
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let tenant = ctx.tenant(req.messages.first().and_then(|m| m.topic.as_ref()));
        let needs: Vec<Need<'_>> = req
            .messages
            .iter()
            .map(|m| Need::topic(m.topic.as_ref().map_or("", |t| t.name.as_str()), Actions::PUB))
            .collect();
        let admitted = match self.allow(&ctx, "SendMessage", &tenant, &needs).await {
            Ok(_) => {
                let units_in = req.messages.iter().map(|m| units(m.body.len())).sum();
                self.admit_send(&tenant, units_in).await
            }
            Err(s) => Err(s),
        };
        let charge = match admitted {
            Ok(charge) => charge,
            Err(s) => {
                return Ok(Response::new(v2::SendMessageResponse {
                    status: Some(s),
                    entries: vec![],
                }));
            }
        };
        let results = ingest.send(&tenant, &req.messages).await;
        let stored: Vec<(&v2::Message, &strata_ingest::SendReceipt)> = req
            .messages
            .iter()
            .zip(&results)
            .filter_map(|(m, r)| r.as_ref().ok().map(|r| (m, r)))
            .collect();
        let bytes = stored.iter().map(|(m, _)| m.body.len() as u64).sum();
        self.meter.sent(&tenant, stored.len() as u64, bytes, charge);
        self.trace_sent(&tenant, ctx.client_id.as_deref(), host, started, &stored);
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
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let resource = req.topic.unwrap_or_default();
        let tenant = ctx.tenant(Some(&resource));
        let group = req.group.unwrap_or_default();
        let needs = [
            Need::topic(&resource.name, Actions::SUB),
            Need::group(&group.name, Actions::SUB),
        ];
        if let Err(s) = self.allow(&ctx, "QueryAssignment", &tenant, &needs).await {
            return Ok(Response::new(v2::QueryAssignmentResponse {
                status: Some(s),
                assignments: vec![],
            }));
        }
        let checked = async {
            self.catalog.topic(&tenant, &resource.name).await?;
            self.catalog.group(&ctx.tenant(Some(&group)), &group.name).await
        };
        let response = match checked.await {
            Err(e) => v2::QueryAssignmentResponse {
                status: Some(from_meta(&e)),
                assignments: vec![],
            },
            Ok(_) => match self.routes.assignments(&resource, req.endpoints.as_ref()).await {
                Ok(assignments) => v2::QueryAssignmentResponse {
                    status: Some(ok()),
                    assignments,
                },
                Err(s) => v2::QueryAssignmentResponse {
                    status: Some(s),
                    assignments: vec![],
                },
            },
        };
        Ok(Response::new(response))
    }

    type ReceiveMessageStream = BoxStream<v2::ReceiveMessageResponse>;

    async fn receive_message(&self, request: Request<v2::ReceiveMessageRequest>) -> Reply<Self::ReceiveMessageStream> {
        use v2::receive_message_response::Content;
        let Some(query) = self.query.clone() else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move {
                let answer = c.receive_message(r).await?;
                Ok(answer.map(|s| Box::pin(s) as Self::ReceiveMessageStream))
            };
            let refuse = |s| {
                stream_of(vec![v2::ReceiveMessageResponse {
                    content: Some(Content::Status(s)),
                }])
            };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let only = |s: v2::Status| -> Reply<Self::ReceiveMessageStream> {
            Ok(Response::new(stream_of(vec![v2::ReceiveMessageResponse {
                content: Some(Content::Status(s)),
            }])))
        };
        let group = req.group.clone().unwrap_or_default();
        let topic = req
            .message_queue
            .as_ref()
            .and_then(|q| q.topic.clone())
            .unwrap_or_default();
        let tenant = ctx.tenant(Some(&group));
        let needs = [
            Need::topic(&topic.name, Actions::SUB),
            Need::group(&group.name, Actions::SUB),
        ];
        if let Err(s) = self.allow(&ctx, "ReceiveMessage", &tenant, &needs).await {
            return only(s);
        }
        if let Err(s) = self.admit_receive(&tenant).await {
            return only(s);
        }
        let filter = match Filter::parse(req.filter_expression.as_ref()) {
            Ok(f) => f,
            Err(e) => return only(from_query(&e)),
        };
        let invisible = match req.invisible_duration.as_ref().map(to_std) {
            None => None,
            Some(Some(d)) => Some(d),
            Some(None) => return only(status(Code::IllegalInvisibleTime, "negative invisible duration")),
        };
        let receive = ReceiveRequest {
            tenant: tenant.clone(),
            group: group.name,
            topic: topic.name.clone(),
            filter,
            batch_size: req.batch_size.max(1) as usize,
            invisible,
            long_polling: self.long_polling(&ctx, req.long_polling_timeout.as_ref()),
            client_id: ctx.client_id.clone(),
        };
        let store_host = self.node_id.clone();
        let span = info_span!("receive_message", tenant = %tenant, group = %receive.group, topic = %receive.topic);
        let front = self.clone();
        let responses = async move {
            let content = match query.receive(&receive).await {
                Ok(found) if found.is_empty() => vec![Content::Status(status(Code::MessageNotFound, "no new message"))],
                Ok(found) => {
                    front
                        .delivered(&tenant, found.iter().map(|d| d.record.body.len()))
                        .await;
                    let client = receive.client_id.as_deref();
                    front.trace_delivered(&tenant, &receive.group, client, &topic.name, &found);
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
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let delivered_at = prost_types::Timestamp {
                seconds: now.as_secs() as i64,
                nanos: now.subsec_nanos() as i32,
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
        let Some(query) = &self.query else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.ack_message(r).await };
            let refuse = |s| v2::AckMessageResponse {
                status: Some(s),
                entries: vec![],
            };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let sub = ctx.subscription(req.group.as_ref(), req.topic.as_ref());
        if let Err(s) = self.allow(&ctx, "AckMessage", &sub.tenant, &sub_needs(&sub)).await {
            return Ok(Response::new(v2::AckMessageResponse {
                status: Some(s),
                entries: vec![],
            }));
        }
        let handles: Vec<String> = req.entries.iter().map(|e| e.receipt_handle.clone()).collect();
        let results = query.ack(&sub, &handles).await;
        for (e, r) in req.entries.iter().zip(&results) {
            if r.is_ok() {
                self.trace_consumer(Kind::Acked, &sub, ctx.client_id.as_deref(), &e.message_id, None);
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
        let Some(query) = &self.query else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move {
                c.forward_message_to_dead_letter_queue(r).await
            };
            let refuse = |s| v2::ForwardMessageToDeadLetterQueueResponse { status: Some(s) };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let sub = ctx.subscription(req.group.as_ref(), req.topic.as_ref());
        if let Err(s) = self
            .allow(&ctx, "ForwardMessageToDeadLetterQueue", &sub.tenant, &sub_needs(&sub))
            .await
        {
            return Ok(Response::new(v2::ForwardMessageToDeadLetterQueueResponse {
                status: Some(s),
            }));
        }
        let status = match query.forward_to_dead_letter(&sub, &req.receipt_handle).await {
            Ok(()) => {
                self.trace_consumer(
                    Kind::DeadLettered,
                    &sub,
                    ctx.client_id.as_deref(),
                    &req.message_id,
                    None,
                );
                ok()
            }
            Err(e) => from_query(&e),
        };
        Ok(Response::new(v2::ForwardMessageToDeadLetterQueueResponse {
            status: Some(status),
        }))
    }

    type PullMessageStream = BoxStream<v2::PullMessageResponse>;

    async fn pull_message(&self, request: Request<v2::PullMessageRequest>) -> Reply<Self::PullMessageStream> {
        use v2::pull_message_response::Content;
        let Some(query) = self.query.clone() else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move {
                let answer = c.pull_message(r).await?;
                Ok(answer.map(|s| Box::pin(s) as Self::PullMessageStream))
            };
            let refuse = |s| {
                stream_of(vec![v2::PullMessageResponse {
                    content: Some(Content::Status(s)),
                }])
            };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let only = |s: v2::Status| -> Reply<Self::PullMessageStream> {
            Ok(Response::new(stream_of(vec![v2::PullMessageResponse {
                content: Some(Content::Status(s)),
            }])))
        };
        let filter = match Filter::parse(req.filter_expression.as_ref()) {
            Ok(f) => f,
            Err(e) => return only(from_query(&e)),
        };
        let mq = req.message_queue.unwrap_or_default();
        let topic = mq.topic.unwrap_or_default();
        let tenant = ctx.tenant(Some(&topic));
        let group = req.group.map(|g| g.name).unwrap_or_default();
        let needs = [
            Need::topic(&topic.name, Actions::SUB),
            Need::group(&group, Actions::SUB),
        ];
        if let Err(s) = self.allow(&ctx, "PullMessage", &tenant, &needs).await {
            return only(s);
        }
        if let Err(s) = self.admit_receive(&tenant).await {
            return only(s);
        }
        let pull = PullRequest {
            queue: QueueRef {
                tenant: tenant.clone(),
                topic: topic.name.clone(),
                queue: mq.id,
            },
            group,
            offset: req.offset,
            batch_size: req.batch_size.max(1) as usize,
            filter,
            long_polling: self.long_polling(&ctx, req.long_polling_timeout.as_ref()),
        };
        let store_host = self.node_id.clone();
        let front = self.clone();
        let responses = async move {
            match query.pull(&pull).await {
                Err(e) => vec![Content::Status(from_query(&e))],
                Ok(pulled) => {
                    front
                        .delivered(&tenant, pulled.messages.iter().map(|(_, r)| r.body.len()))
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
        let Some(query) = &self.query else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.update_offset(r).await };
            let refuse = |s| v2::UpdateOffsetResponse { status: Some(s) };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let mq = req.message_queue.unwrap_or_default();
        let sub = ctx.subscription(req.group.as_ref(), mq.topic.as_ref());
        if let Err(s) = self.allow(&ctx, "UpdateOffset", &sub.tenant, &sub_needs(&sub)).await {
            return Ok(Response::new(v2::UpdateOffsetResponse { status: Some(s) }));
        }
        let status = match query.update_offset(&sub, mq.id, req.offset).await {
            Ok(()) => ok(),
            Err(e) => from_query(&e),
        };
        Ok(Response::new(v2::UpdateOffsetResponse { status: Some(status) }))
    }

    async fn get_offset(&self, request: Request<v2::GetOffsetRequest>) -> Reply<v2::GetOffsetResponse> {
        let Some(query) = &self.query else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.get_offset(r).await };
            let refuse = |s| v2::GetOffsetResponse {
                status: Some(s),
                offset: 0,
            };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let mq = req.message_queue.unwrap_or_default();
        let sub = ctx.subscription(req.group.as_ref(), mq.topic.as_ref());
        if let Err(s) = self.allow(&ctx, "GetOffset", &sub.tenant, &sub_needs(&sub)).await {
            return Ok(Response::new(v2::GetOffsetResponse {
                status: Some(s),
                offset: 0,
            }));
        }
        let (status, offset) = match query.committed_offset(&sub, mq.id).await {
            Ok(o) => (ok(), o),
            Err(e) => (from_query(&e), 0),
        };
        Ok(Response::new(v2::GetOffsetResponse {
            status: Some(status),
            offset,
        }))
    }

    async fn query_offset(&self, request: Request<v2::QueryOffsetRequest>) -> Reply<v2::QueryOffsetResponse> {
        let Some(query) = &self.query else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.query_offset(r).await };
            let refuse = |s| v2::QueryOffsetResponse {
                status: Some(s),
                offset: 0,
            };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let mq = req.message_queue.unwrap_or_default();
        let topic = mq.topic.unwrap_or_default();
        let needs = [Need::topic(&topic.name, Actions::SUB)];
        if let Err(s) = self.allow(&ctx, "QueryOffset", &ctx.tenant(Some(&topic)), &needs).await {
            return Ok(Response::new(v2::QueryOffsetResponse {
                status: Some(s),
                offset: 0,
            }));
        }
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
        let (status, offset) = match position {
            None => (status(Code::BadRequest, "a TIMESTAMP query needs a timestamp"), 0),
            Some(position) => {
                let queue = QueueRef {
                    tenant: ctx.tenant(Some(&topic)),
                    topic: topic.name,
                    queue: mq.id,
                };
                match query.query_offset(&queue, position).await {
                    Ok(o) => (ok(), o),
                    Err(e) => (from_query(&e), 0),
                }
            }
        };
        Ok(Response::new(v2::QueryOffsetResponse {
            status: Some(status),
            offset,
        }))
    }

    async fn end_transaction(&self, request: Request<v2::EndTransactionRequest>) -> Reply<v2::EndTransactionResponse> {
        let Some(ingest) = &self.ingest else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.end_transaction(r).await };
            let refuse = |s| v2::EndTransactionResponse { status: Some(s) };
            return self.pass_on(Roles::INGEST, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let commit = match v2::TransactionResolution::try_from(req.resolution) {
            Ok(v2::TransactionResolution::Commit) => true,
            Ok(v2::TransactionResolution::Rollback) => false,
            _ => {
                let s = status(Code::BadRequest, "resolution must be COMMIT or ROLLBACK");
                return Ok(Response::new(v2::EndTransactionResponse { status: Some(s) }));
            }
        };
        let topic = req.topic.unwrap_or_default();
        let tenant = ctx.tenant(Some(&topic));
        if let Err(s) = self
            .allow(
                &ctx,
                "EndTransaction",
                &tenant,
                &[Need::topic(&topic.name, Actions::PUB)],
            )
            .await
        {
            return Ok(Response::new(v2::EndTransactionResponse { status: Some(s) }));
        }
        let status = match ingest
            .end_transaction(&tenant, &topic.name, &req.transaction_id, commit)
            .await
        {
            Ok(()) => {
                let kind = if commit { Kind::Committed } else { Kind::RolledBack };
                self.trace_producer(kind, &tenant, &topic.name, ctx.client_id.as_deref(), &req.message_id);
                ok()
            }
            Err(e) => from_ingest(&e),
        };
        Ok(Response::new(v2::EndTransactionResponse { status: Some(status) }))
    }

    type TelemetryStream = BoxStream<v2::TelemetryCommand>;

    async fn telemetry(&self, request: Request<Streaming<v2::TelemetryCommand>>) -> Reply<Self::TelemetryStream> {
        let ctx = Ctx::new(request.metadata());
        let Some(client_id) = ctx.client_id.clone() else {
            return Ok(Response::new(stream_of(vec![v2::TelemetryCommand {
                status: Some(status(Code::ClientIdRequired, "the x-mq-client-id header is required")),
                command: None,
            }])));
        };
        // A refused stream is still answered (the Node client waits for a first reply).
        let principal = match self.authenticate(&ctx, "Telemetry").await {
            Ok(p) => p,
            Err(s) => {
                return Ok(Response::new(stream_of(vec![v2::TelemetryCommand {
                    status: Some(s),
                    command: None,
                }])));
            }
        };
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let front = self.clone();
        let span = info_span!("telemetry", client = %client_id);
        let closed = self.sessions.closed();
        tokio::spawn(
            async move {
                tokio::pin!(closed);
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
                            let client_type = settings.client_type.unwrap_or_default();
                            let timeout = settings.request_timeout.as_ref().and_then(to_std);
                            // Transaction checks go only to producers allowed to publish.
                            let mut refused = None;
                            let topics = match &settings.pub_sub {
                                Some(v2::settings::PubSub::Publishing(p)) => p
                                    .topics
                                    .iter()
                                    .map(|t| (ctx.tenant(Some(t)), t.name.clone()))
                                    .filter(|(tenant, name)| {
                                        let allowed = principal.authorize(tenant, &[Need::topic(name, Actions::PUB)]);
                                        allowed.map_err(|e| refused = Some(from_auth(&e))).is_ok()
                                    })
                                    .collect(),
                                _ => Vec::new(),
                            };
                            let group = match &settings.pub_sub {
                                Some(v2::settings::PubSub::Subscription(s)) => {
                                    s.group.as_ref().map(|g| (ctx.tenant(Some(g)), g.name.clone()))
                                }
                                _ => None,
                            };
                            front
                                .sessions
                                .settings(&client_id, client_type, timeout, topics, group, tx.clone());
                            let mut reply = front.settings_reply(&ctx.namespace, settings).await;
                            if refused.is_some() {
                                reply.status = refused;
                            }
                            if tx.send(Ok(reply)).await.is_err() {
                                break;
                            }
                        }
                        Some(other) => debug!(command = ?other, "telemetry command from client"),
                        None => warn!("empty telemetry command"),
                    }
                }
                front.sessions.detach(&client_id);
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn notify_client_termination(
        &self,
        request: Request<v2::NotifyClientTerminationRequest>,
    ) -> Reply<v2::NotifyClientTerminationResponse> {
        let ctx = Ctx::new(request.metadata());
        if let Err(s) = self.authenticate(&ctx, "NotifyClientTermination").await {
            return Ok(Response::new(v2::NotifyClientTerminationResponse { status: Some(s) }));
        }
        if let Some(id) = &ctx.client_id {
            self.sessions.remove(id);
            self.drop_lite_client(id).await;
        }
        Ok(Response::new(v2::NotifyClientTerminationResponse {
            status: Some(ok()),
        }))
    }

    async fn change_invisible_duration(
        &self,
        request: Request<v2::ChangeInvisibleDurationRequest>,
    ) -> Reply<v2::ChangeInvisibleDurationResponse> {
        let Some(query) = &self.query else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.change_invisible_duration(r).await };
            let refuse = |s| v2::ChangeInvisibleDurationResponse {
                status: Some(s),
                receipt_handle: String::new(),
            };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let sub = ctx.subscription(req.group.as_ref(), req.topic.as_ref());
        if let Err(s) = self
            .allow(&ctx, "ChangeInvisibleDuration", &sub.tenant, &sub_needs(&sub))
            .await
        {
            return Ok(Response::new(v2::ChangeInvisibleDurationResponse {
                status: Some(s),
                receipt_handle: String::new(),
            }));
        }
        let Some(invisible) = req.invisible_duration.as_ref().and_then(to_std) else {
            return Ok(Response::new(v2::ChangeInvisibleDurationResponse {
                status: Some(status(
                    Code::IllegalInvisibleTime,
                    "invisible duration missing or negative",
                )),
                receipt_handle: String::new(),
            }));
        };
        let response = match query.change_invisible(&sub, &req.receipt_handle, invisible).await {
            Ok(handle) => {
                let ms = Some(invisible.as_millis() as i64);
                self.trace_consumer(
                    Kind::InvisibleChanged,
                    &sub,
                    ctx.client_id.as_deref(),
                    &req.message_id,
                    ms,
                );
                v2::ChangeInvisibleDurationResponse {
                    status: Some(ok()),
                    receipt_handle: handle,
                }
            }
            Err(e) => v2::ChangeInvisibleDurationResponse {
                status: Some(from_query(&e)),
                receipt_handle: String::new(),
            },
        };
        Ok(Response::new(response))
    }

    async fn recall_message(&self, request: Request<v2::RecallMessageRequest>) -> Reply<v2::RecallMessageResponse> {
        let Some(ingest) = &self.ingest else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.recall_message(r).await };
            let refuse = |s| v2::RecallMessageResponse {
                status: Some(s),
                message_id: String::new(),
            };
            return self.pass_on(Roles::INGEST, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let req = request.into_inner();
        let topic = req.topic.unwrap_or_default();
        let tenant = ctx.tenant(Some(&topic));
        if let Err(s) = self
            .allow(
                &ctx,
                "RecallMessage",
                &tenant,
                &[Need::topic(&topic.name, Actions::PUB)],
            )
            .await
        {
            return Ok(Response::new(v2::RecallMessageResponse {
                status: Some(s),
                message_id: String::new(),
            }));
        }
        let (status, message_id) = match ingest.recall(&tenant, &topic.name, &req.recall_handle).await {
            Ok(id) => {
                self.trace_producer(Kind::Recalled, &tenant, &topic.name, ctx.client_id.as_deref(), &id);
                (ok(), id)
            }
            Err(e) => (from_ingest(&e), String::new()),
        };
        Ok(Response::new(v2::RecallMessageResponse {
            status: Some(status),
            message_id,
        }))
    }

    async fn sync_lite_subscription(
        &self,
        request: Request<v2::SyncLiteSubscriptionRequest>,
    ) -> Reply<v2::SyncLiteSubscriptionResponse> {
        let Some(query) = &self.query else {
            let call = |mut c: MessagingServiceClient<Channel>, r| async move { c.sync_lite_subscription(r).await };
            let refuse = |s| v2::SyncLiteSubscriptionResponse { status: Some(s) };
            return self.pass_on(Roles::QUERY, request, call, refuse).await;
        };
        let ctx = Ctx::new(request.metadata());
        let status = self.sync_lite(query, &ctx, request.into_inner()).await;
        Ok(Response::new(v2::SyncLiteSubscriptionResponse { status: Some(status) }))
    }
}
