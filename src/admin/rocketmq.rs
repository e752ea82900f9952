//! `apache.rocketmq.v2.Admin` (admin.proto of the 5.x protocol) where it fits what the
//! broker has: ChangeLogLevel (the only call the SDKs' stubs know), DescribeTopicStatus,
//! DescribeGroupAccumulation, ResetGroupOffset — each the same work, authorization included,
//! as the StrataAdmin call it maps to. The rest answer `NOT_IMPLEMENTED` naming the `strata`
//! command that does the job.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use strata_proto::admin;
use strata_proto::v2::{self, admin_server::Admin as RocketMqAdmin};
use tonic::{Request, Response, Status};

use super::Admin;

/// `request`'s credentials on another request (the StrataAdmin call it maps to).
fn alike<T, U>(request: &Request<T>, body: U) -> Request<U> {
    let mut mapped = Request::new(body);
    *mapped.metadata_mut() = request.metadata().clone();
    mapped
}

fn ok() -> Option<v2::Status> {
    Some(v2::Status {
        code: v2::Code::Ok as i32,
        message: "OK".into(),
    })
}

/// A refusal as this API reports it: in the reply's status, the call itself succeeding.
fn refused(s: Status) -> Option<v2::Status> {
    let code = match s.code() {
        tonic::Code::NotFound => v2::Code::TopicNotFound,
        tonic::Code::PermissionDenied => v2::Code::Forbidden,
        tonic::Code::Unauthenticated => v2::Code::Unauthorized,
        tonic::Code::InvalidArgument => v2::Code::BadRequest,
        _ => v2::Code::InternalServerError,
    };
    Some(v2::Status {
        code: code as i32,
        message: s.message().to_string(),
    })
}

fn not_served(instead: &str) -> Option<v2::Status> {
    Some(v2::Status {
        code: v2::Code::NotImplemented as i32,
        message: format!("not served by StrataMQ; {instead}"),
    })
}

fn resource(r: Option<v2::Resource>) -> (String, String) {
    let r = r.unwrap_or_default();
    (r.resource_namespace, r.name)
}

/// Answers a call this broker does not serve, pointing at what does the job. (Written as
/// `async_trait` expands a method: the attribute does not reach into macro calls.)
macro_rules! not_served {
    ($name:ident, $req:ty, $resp:ty, $instead:literal) => {
        fn $name<'a, 'async_trait>(
            &'a self,
            _request: Request<$req>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<$resp>, Status>> + Send + 'async_trait>>
        where
            'a: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                let mut reply = <$resp>::default();
                reply.status = not_served($instead);
                Ok(Response::new(reply))
            })
        }
    };
}

#[tonic::async_trait]
impl RocketMqAdmin for Admin {
    async fn change_log_level(
        &self,
        request: Request<v2::ChangeLogLevelRequest>,
    ) -> Result<Response<v2::ChangeLogLevelResponse>, Status> {
        self.root(&request).await?;
        let level = v2::change_log_level_request::Level::try_from(request.get_ref().level)
            .map_err(|_| Status::invalid_argument("unknown log level"))?;
        let name = level.as_str_name().to_lowercase();
        crate::logging::set_level(&name).map_err(Status::internal)?;
        tracing::warn!(level = %name, "log level changed by an operator");
        Ok(Response::new(v2::ChangeLogLevelResponse {
            remark: format!("log level is {name}"),
        }))
    }

    async fn describe_topic_status(
        &self,
        request: Request<v2::DescribeTopicStatusRequest>,
    ) -> Result<Response<v2::DescribeTopicStatusResponse>, Status> {
        let (namespace, name) = resource(request.get_ref().topic.clone());
        let described = self
            .describe(alike(&request, admin::DescribeTopicRequest { namespace, name }))
            .await;
        let reply = match described {
            Err(s) => v2::DescribeTopicStatusResponse {
                status: refused(s),
                ..Default::default()
            },
            Ok(d) => {
                let t = d.topic.unwrap_or_default();
                let messages: i64 = d.queues.iter().map(|q| q.max_offset - q.min_offset).sum();
                let tags = HashMap::from([
                    ("queues".to_string(), t.queue_count.to_string()),
                    ("retention_ms".to_string(), t.retention_ms.to_string()),
                    ("messages".to_string(), messages.to_string()),
                    ("trace".to_string(), (!t.trace_off).to_string()),
                ]);
                v2::DescribeTopicStatusResponse {
                    status: ok(),
                    topic_message_type: t.message_type,
                    description: None,
                    create_timestamp: Some(prost_types::Timestamp {
                        seconds: t.created_ms.div_euclid(1000),
                        nanos: (t.created_ms.rem_euclid(1000) * 1_000_000) as i32,
                    }),
                    tags,
                }
            }
        };
        Ok(Response::new(reply))
    }

    async fn describe_group_accumulation(
        &self,
        request: Request<v2::DescribeGroupAccumulationRequest>,
    ) -> Result<Response<v2::DescribeGroupAccumulationResponse>, Status> {
        let (namespace, name) = resource(request.get_ref().group.clone());
        let only: Vec<String> = request.get_ref().topics.iter().map(|t| t.name.clone()).collect();
        let progress = self
            .progress(alike(&request, admin::GroupProgressRequest { namespace, name }))
            .await;
        let reply = match progress {
            Err(s) => v2::DescribeGroupAccumulationResponse {
                status: refused(s),
                ..Default::default()
            },
            Ok(p) => {
                type Accumulation = v2::describe_group_accumulation_response::GroupAccumulation;
                let add = |a: &mut Accumulation, q: &admin::QueueProgress| {
                    a.inflight_messages += q.in_flight;
                    a.ready_messages += (q.lag - q.in_flight).max(0);
                    a.accumulation += q.lag;
                };
                let mut total = Accumulation::default();
                let mut per_topic: HashMap<String, Accumulation> = HashMap::new();
                for q in p.queues.iter().filter(|q| only.is_empty() || only.contains(&q.topic)) {
                    add(&mut total, q);
                    add(per_topic.entry(q.topic.clone()).or_default(), q);
                }
                v2::DescribeGroupAccumulationResponse {
                    status: ok(),
                    accumulation: Some(total),
                    topic_accumulation: per_topic,
                    lite_topic_accumulation: HashMap::new(),
                }
            }
        };
        Ok(Response::new(reply))
    }

    async fn reset_group_offset(
        &self,
        request: Request<v2::ResetGroupOffsetRequest>,
    ) -> Result<Response<v2::ResetGroupOffsetResponse>, Status> {
        let r = request.get_ref().clone();
        let (namespace, group) = resource(r.group);
        let (_, topic) = resource(r.topic);
        let at = r.reset_timestamp.unwrap_or_default();
        let timestamp_ms = at.seconds.saturating_mul(1000) + i64::from(at.nanos) / 1_000_000;
        let reset = admin::ResetOffsetRequest {
            namespace,
            group,
            topic,
            position: Some(admin::reset_offset_request::Position::TimestampMs(timestamp_ms)),
            queue: None,
        };
        let status = match self.reset_offsets(alike(&request, reset)).await {
            Ok(_) => ok(),
            Err(s) => refused(s),
        };
        Ok(Response::new(v2::ResetGroupOffsetResponse { status }))
    }

    not_served!(
        list_subscription,
        v2::ListSubscriptionRequest,
        v2::ListSubscriptionResponse,
        "`strata group progress` lists what a group consumes"
    );
    not_served!(
        describe_subscription,
        v2::DescribeSubscriptionRequest,
        v2::DescribeSubscriptionResponse,
        "`strata group progress` lists what a group consumes"
    );
    not_served!(
        delete_subscription,
        v2::DeleteSubscriptionRequest,
        v2::DeleteSubscriptionResponse,
        "`strata group delete` removes a group's progress"
    );
    not_served!(
        list_consumer_connection,
        v2::ListConsumerConnectionRequest,
        v2::ListConsumerConnectionResponse,
        "consumers are not listed yet"
    );
    not_served!(
        query_message,
        v2::ListMessageRequest,
        v2::ListMessageResponse,
        "use `strata message get|find` (StrataAdmin GetMessage, FindMessages)"
    );
    not_served!(
        print_thread_stack_trace,
        v2::PrintThreadStackTraceRequest,
        v2::PrintThreadStackTraceResponse,
        "the broker does not ask clients for their stacks"
    );
    not_served!(
        verify_message,
        v2::VerifyMessageRequest,
        v2::VerifyMessageResponse,
        "the broker does not push messages to clients"
    );
    not_served!(
        admin_send_message,
        v2::AdminSendMessageRequest,
        v2::AdminSendMessageResponse,
        "send with any client (SendMessage)"
    );
    not_served!(
        get_consumer_running_info,
        v2::GetConsumerRunningInfoRequest,
        v2::GetConsumerRunningInfoResponse,
        "the broker does not ask clients for their state"
    );
    not_served!(
        get_topic_route,
        v2::GetTopicRouteRequest,
        v2::GetTopicRouteResponse,
        "QueryRoute (MessagingService) answers routes"
    );
    not_served!(
        query_time_span,
        v2::QueryTimeSpanRequest,
        v2::QueryTimeSpanResponse,
        "`strata topic describe` shows each queue's oldest and newest message"
    );
    not_served!(
        get_proxy_runtime_stats,
        v2::GetProxyRuntimeStatsRequest,
        v2::GetProxyRuntimeStatsResponse,
        "the node's counters are on /metrics"
    );
}
