//! What the console shows and does, over HTTP: topics, groups (progress, reset, resend), message
//! lookups and traces, metering, nodes and tenants. Each is the `StrataAdmin` call it
//! translates to, with that call's authorization (docs/http-api.md); the console renders the
//! same functions' results.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use strata_proto::admin::strata_admin_server::StrataAdmin;
use strata_proto::admin::{self, reset_offset_request::Position};
use strata_proto::v2;
use utoipa::{IntoParams, ToSchema};

use crate::http::Web;
use crate::http::caller::{Caller, Signed};
use crate::http::error::ApiError;

fn type_name(t: i32) -> String {
    v2::MessageType::try_from(t)
        .map_or("UNSPECIFIED", |t| t.as_str_name())
        .to_string()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicView {
    pub namespace: String,
    pub name: String,
    /// NORMAL, FIFO, DELAY, TRANSACTION, LITE or PRIORITY.
    pub message_type: String,
    pub queue_count: i32,
    pub retention_ms: i64,
    /// LITE topics: an idle lite topic is deleted after this long (0: never).
    pub lite_ttl_ms: i64,
    pub created_ms: i64,
    pub trace_off: bool,
}

impl From<admin::Topic> for TopicView {
    fn from(t: admin::Topic) -> Self {
        Self {
            message_type: type_name(t.message_type),
            namespace: t.namespace,
            name: t.name,
            queue_count: t.queue_count,
            retention_ms: t.retention_ms,
            lite_ttl_ms: t.lite_ttl_ms,
            created_ms: t.created_ms,
            trace_off: t.trace_off,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStatsView {
    pub queue: i32,
    /// First retained offset, and the next offset to be written.
    pub min_offset: i64,
    pub max_offset: i64,
    /// WAL blocks or Parquet row groups the queue references.
    pub batches: i64,
    /// Compressed bytes of those blocks.
    pub bytes: i64,
    pub objects: i64,
    /// Store times of the oldest and newest retained messages (0: none).
    pub oldest_ms: i64,
    pub newest_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDetail {
    pub topic: TopicView,
    pub queues: Vec<QueueStatsView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub namespace: String,
    pub name: String,
    pub fifo: bool,
    pub max_attempts: i32,
    pub broadcast: bool,
    /// Where new progress starts: DEFAULT, EARLIEST or LATEST.
    pub start: String,
    pub retry_policy: String,
    pub created_ms: i64,
    /// When the group's own consumers take a grayscale lane's messages: a duration such as
    /// 30s, or wait.
    pub lane_fallback: String,
}

impl From<admin::Group> for GroupView {
    fn from(g: admin::Group) -> Self {
        let start = admin::StartFrom::try_from(g.start).map_or("DEFAULT", |s| match s {
            admin::StartFrom::StartDefault => "DEFAULT",
            admin::StartFrom::StartEarliest => "EARLIEST",
            admin::StartFrom::StartLatest => "LATEST",
        });
        Self {
            namespace: g.namespace,
            name: g.name,
            fifo: g.fifo,
            max_attempts: g.max_attempts,
            broadcast: g.broadcast,
            start: start.into(),
            retry_policy: g.retry_policy,
            created_ms: g.created_ms,
            lane_fallback: g.lane_fallback,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueProgressView {
    pub topic: String,
    pub queue: i32,
    pub min_offset: i64,
    pub max_offset: i64,
    /// Pop consumption: the next offset never delivered to the group.
    pub cursor: Option<i64>,
    /// Delivered and not acked.
    pub in_flight: i64,
    /// Offset consumption (PullMessage, 4.x): the committed offset.
    pub committed: Option<i64>,
    /// Messages the group has not finished.
    pub lag: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    pub group: GroupView,
    pub queues: Vec<QueueProgressView>,
    /// The sum of the queues' lag.
    pub lag: i64,
    /// Messages in the group's dead-letter topic (`%DLQ%group`).
    pub dead_letters: i64,
    /// Consumers of the group (and of its lanes) connected to the node that answers (client ids).
    pub consumers: Vec<String>,
    /// The group's grayscale lanes per topic (docs/semantics.md).
    pub lanes: Vec<LaneView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LaneView {
    pub topic: String,
    pub name: String,
    /// When a consumer of the lane last received from the topic (ms since the epoch).
    pub last_seen_ms: i64,
    /// Unheard of for the group's lane fallback: the group's own consumers take its messages.
    pub taken_over: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub id: String,
    pub roles: Vec<String>,
    pub advertise: String,
    pub epoch: i64,
    pub heartbeat_ms: i64,
    /// alive, draining, left or dead.
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub name: String,
    /// TPS units (one per started 4 KiB sent or received); 0 is unlimited.
    pub reserved_tps: u32,
    pub burst_tps: u32,
    pub created_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeteringRow {
    pub namespace: String,
    /// Start of the hour (Unix ms, UTC).
    pub hour_ms: i64,
    /// e.g. messages_in, bytes_out, units_burst, api.SendMessage, storage_gb_hours.
    pub metric: String,
    pub value: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// The group (a broadcast client: group/client).
    pub group: String,
    /// pending, in flight (attempt N), waiting (FIFO), acked, dead-lettered, committed, ...
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub message_id: String,
    pub topic: String,
    pub queue: i32,
    pub offset: i64,
    pub store_ms: i64,
    pub born_ms: i64,
    pub born_host: String,
    /// Delay messages: when it was due (0: none).
    pub delivery_ms: i64,
    pub tag: String,
    pub keys: Vec<String>,
    pub message_group: String,
    pub properties: HashMap<String, String>,
    pub message_type: String,
    pub body_size: u32,
    /// The body's first bytes as text (invalid UTF-8 replaced).
    pub body_preview: String,
    /// Where it stands for each group with progress on its queue (lookups by id only).
    pub deliveries: Vec<Delivery>,
}

impl From<admin::MessageView> for MessageView {
    fn from(m: admin::MessageView) -> Self {
        Self {
            message_type: type_name(m.message_type),
            body_preview: String::from_utf8_lossy(&m.body_preview).into_owned(),
            message_id: m.message_id,
            topic: m.topic,
            queue: m.queue,
            offset: m.offset,
            store_ms: m.store_ms,
            born_ms: m.born_ms,
            born_host: m.born_host,
            delivery_ms: m.delivery_ms,
            tag: m.tag,
            keys: m.keys,
            message_group: m.message_group,
            properties: m.properties,
            body_size: m.body_size,
            deliveries: m
                .deliveries
                .into_iter()
                .map(|d| Delivery {
                    group: d.group,
                    state: d.state,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FoundMessages {
    pub messages: Vec<MessageView>,
    /// The scan stopped at its limit: narrow the time range.
    pub cut_short: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Trace {
    /// What happened to the message, oldest first: objects with at least event, message_id,
    /// topic, time_ms and node (docs/operations.md).
    pub events: Vec<serde_json::Value>,
    /// Some events may be missing (the search stopped at its limit).
    pub cut_short: bool,
}

/// One admin call, its refusal as an API error.
async fn answer<T>(reply: Result<tonic::Response<T>, tonic::Status>) -> Result<T, ApiError> {
    reply
        .map(tonic::Response::into_inner)
        .map_err(|s| ApiError::from_grpc(&s))
}

pub async fn topics(web: &Web, caller: &Caller) -> Result<Vec<TopicView>, ApiError> {
    let request = caller.grpc(admin::ListTopicsRequest {
        namespace: caller.namespace.clone(),
    });
    let topics = answer(web.admin.list_topics(request).await).await?.topics;
    Ok(topics.into_iter().map(TopicView::from).collect())
}

pub async fn topic(web: &Web, caller: &Caller, name: &str) -> Result<TopicDetail, ApiError> {
    let request = caller.grpc(admin::DescribeTopicRequest {
        namespace: caller.namespace.clone(),
        name: name.to_string(),
    });
    let r = answer(web.admin.describe_topic(request).await).await?;
    Ok(TopicDetail {
        topic: r.topic.unwrap_or_default().into(),
        queues: r
            .queues
            .into_iter()
            .map(|q| QueueStatsView {
                queue: q.queue,
                min_offset: q.min_offset,
                max_offset: q.max_offset,
                batches: q.batches,
                bytes: q.bytes,
                objects: q.objects,
                oldest_ms: q.oldest_ms,
                newest_ms: q.newest_ms,
            })
            .collect(),
    })
}

pub async fn groups(web: &Web, caller: &Caller) -> Result<Vec<GroupView>, ApiError> {
    let request = caller.grpc(admin::ListGroupsRequest {
        namespace: caller.namespace.clone(),
    });
    let groups = answer(web.admin.list_groups(request).await).await?.groups;
    Ok(groups.into_iter().map(GroupView::from).collect())
}

pub async fn group(web: &Web, caller: &Caller, name: &str) -> Result<GroupDetail, ApiError> {
    let request = caller.grpc(admin::GroupProgressRequest {
        namespace: caller.namespace.clone(),
        name: name.to_string(),
    });
    let r = answer(web.admin.group_progress(request).await).await?;
    let dlq = strata_meta::model::dead_letter_topic(name);
    let dead_letters = match topic(web, caller, &dlq).await {
        Ok(d) => d.queues.iter().map(|q| q.max_offset - q.min_offset).sum(),
        Err(e) if e.code == v2::Code::NotFound as i32 => 0,
        Err(e) => return Err(e),
    };
    let queues: Vec<QueueProgressView> = r
        .queues
        .into_iter()
        .map(|q| QueueProgressView {
            topic: q.topic,
            queue: q.queue,
            min_offset: q.min_offset,
            max_offset: q.max_offset,
            cursor: q.cursor,
            in_flight: q.in_flight,
            committed: q.committed,
            lag: q.lag,
        })
        .collect();
    Ok(GroupDetail {
        group: r.group.unwrap_or_default().into(),
        lag: queues.iter().map(|q| q.lag).sum(),
        queues,
        dead_letters,
        consumers: web.front.sessions.consumers_of(&caller.namespace, name),
        lanes: r
            .lanes
            .into_iter()
            .map(|l| LaneView {
                topic: l.topic,
                name: l.name,
                last_seen_ms: l.last_seen_ms,
                taken_over: l.taken_over,
            })
            .collect(),
    })
}

pub async fn nodes(web: &Web, caller: &Caller) -> Result<Vec<NodeView>, ApiError> {
    let nodes = answer(web.admin.list_nodes(caller.grpc(admin::ListNodesRequest {})).await)
        .await?
        .nodes;
    Ok(nodes
        .into_iter()
        .map(|n| NodeView {
            id: n.id,
            roles: n.roles,
            advertise: n.advertise,
            epoch: n.epoch,
            heartbeat_ms: n.heartbeat_ms,
            state: n.state,
        })
        .collect())
}

pub async fn tenants(web: &Web, caller: &Caller) -> Result<Vec<TenantView>, ApiError> {
    let tenants = answer(web.admin.list_tenants(caller.grpc(admin::ListTenantsRequest {})).await)
        .await?
        .tenants;
    Ok(tenants
        .into_iter()
        .map(|t| TenantView {
            name: t.name,
            reserved_tps: t.reserved_tps,
            burst_tps: t.burst_tps,
            created_ms: t.created_ms,
        })
        .collect())
}

pub async fn metering(web: &Web, caller: &Caller, range: &MeteringQuery) -> Result<Vec<MeteringRow>, ApiError> {
    let request = caller.grpc(admin::MeteringRequest {
        namespace: caller.namespace.clone(),
        all_tenants: range.all_tenants,
        from_ms: range.from_ms,
        to_ms: range.to_ms,
    });
    let records = answer(web.admin.metering(request).await).await?.records;
    Ok(records
        .into_iter()
        .map(|r| MeteringRow {
            namespace: r.namespace,
            hour_ms: r.hour_ms,
            metric: r.metric,
            value: r.value,
        })
        .collect())
}

pub async fn message(web: &Web, caller: &Caller, id: &str, topic: Option<&str>) -> Result<MessageView, ApiError> {
    let request = caller.grpc(admin::GetMessageRequest {
        namespace: caller.namespace.clone(),
        message_id: id.to_string(),
        topic: topic.unwrap_or_default().to_string(),
    });
    let found = answer(web.admin.get_message(request).await).await?.message;
    found
        .map(MessageView::from)
        .ok_or_else(|| ApiError::new(v2::Code::MessageNotFound, format!("no message {id}")))
}

pub async fn find(web: &Web, caller: &Caller, topic: &str, q: &FindQuery) -> Result<FoundMessages, ApiError> {
    let request = caller.grpc(admin::FindMessagesRequest {
        namespace: caller.namespace.clone(),
        topic: topic.to_string(),
        key: q.key.clone().unwrap_or_default(),
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        limit: q.limit.unwrap_or(0),
    });
    let r = answer(web.admin.find_messages(request).await).await?;
    Ok(FoundMessages {
        messages: r.messages.into_iter().map(MessageView::from).collect(),
        cut_short: r.cut_short,
    })
}

pub async fn trace(web: &Web, caller: &Caller, id: &str) -> Result<Trace, ApiError> {
    let request = caller.grpc(admin::TraceMessageRequest {
        namespace: caller.namespace.clone(),
        message_id: id.to_string(),
    });
    let r = answer(web.admin.trace_message(request).await).await?;
    Ok(Trace {
        events: r.events.iter().filter_map(|e| serde_json::from_str(e).ok()).collect(),
        cut_short: r.cut_short,
    })
}

/// The message types a topic can be created with.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TopicType {
    #[default]
    Normal,
    Fifo,
    Delay,
    Transaction,
    Lite,
    Priority,
}

impl TopicType {
    fn v2(self) -> v2::MessageType {
        match self {
            TopicType::Normal => v2::MessageType::Normal,
            TopicType::Fifo => v2::MessageType::Fifo,
            TopicType::Delay => v2::MessageType::Delay,
            TopicType::Transaction => v2::MessageType::Transaction,
            TopicType::Lite => v2::MessageType::Lite,
            TopicType::Priority => v2::MessageType::Priority,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    #[schema(pattern = r"^[A-Za-z0-9%|_-]{1,127}$")]
    pub name: String,
    #[serde(default)]
    pub message_type: TopicType,
    /// Queues (default 8).
    #[schema(minimum = 1, maximum = 1024)]
    pub queue_count: Option<i32>,
    /// How long messages stay readable (default 72 hours).
    #[schema(minimum = 1)]
    pub retention_hours: Option<u32>,
}

pub async fn create_topic(web: &Web, caller: &Caller, t: &CreateTopic) -> Result<TopicView, ApiError> {
    let request = caller.grpc(admin::CreateTopicRequest {
        topic: Some(admin::Topic {
            namespace: caller.namespace.clone(),
            name: t.name.clone(),
            message_type: t.message_type.v2() as i32,
            queue_count: t.queue_count.unwrap_or(8),
            retention_ms: i64::from(t.retention_hours.unwrap_or(0)) * 3_600_000,
            ..Default::default()
        }),
    });
    let topic = answer(web.admin.create_topic(request).await).await?.topic;
    Ok(topic.unwrap_or_default().into())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    #[schema(pattern = r"^[A-Za-z0-9%|_-]{1,255}$")]
    pub name: String,
    /// Messages of one message group are delivered in order, one at a time.
    #[serde(default)]
    pub fifo: bool,
    /// Every consumer receives every message.
    #[serde(default)]
    pub broadcast: bool,
    /// Deliveries before a message is dead-lettered (default 16).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_attempts: Option<i32>,
    /// levels (default), exponential:INITIAL,MAX,MULTIPLIER or customized:D1,D2,...
    pub retry_policy: Option<String>,
    /// When the group's own consumers take the messages of a grayscale lane (consumers named
    /// NAME%LANE, messages with the property x-lane) no consumer received from for this
    /// long: 30s (default), 500ms, ... or wait.
    pub lane_fallback: Option<String>,
}

pub async fn create_group(web: &Web, caller: &Caller, g: &CreateGroup) -> Result<GroupView, ApiError> {
    let request = caller.grpc(admin::CreateGroupRequest {
        group: Some(admin::Group {
            namespace: caller.namespace.clone(),
            name: g.name.clone(),
            fifo: g.fifo,
            broadcast: g.broadcast,
            max_attempts: g.max_attempts.unwrap_or(strata_meta::model::DEFAULT_MAX_ATTEMPTS),
            retry_policy: g.retry_policy.clone().unwrap_or_default(),
            lane_fallback: g.lane_fallback.clone().unwrap_or_default(),
            ..Default::default()
        }),
    });
    let group = answer(web.admin.create_group(request).await).await?.group;
    Ok(group.unwrap_or_default().into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetOffset {
    #[schema(pattern = r"^[A-Za-z0-9%|_-]{1,127}$")]
    pub topic: String,
    /// Deliver again from the first message stored at or after this time (Unix ms); or give
    /// `offset`.
    pub timestamp_ms: Option<i64>,
    /// Deliver again from this offset (clamped to each queue's retained range).
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOffset {
    pub queue: i32,
    pub offset: i64,
}

pub async fn reset(web: &Web, caller: &Caller, group: &str, r: &ResetOffset) -> Result<Vec<QueueOffset>, ApiError> {
    let position = match (r.timestamp_ms, r.offset) {
        (Some(t), None) => Position::TimestampMs(t),
        (None, Some(o)) => Position::Offset(o),
        _ => return Err(ApiError::bad_request("give exactly one of timestamp_ms and offset")),
    };
    let request = caller.grpc(admin::ResetOffsetRequest {
        namespace: caller.namespace.clone(),
        group: group.to_string(),
        topic: r.topic.clone(),
        position: Some(position),
        queue: None,
    });
    let queues = answer(web.admin.reset_offset(request).await).await?.queues;
    Ok(queues
        .into_iter()
        .map(|q| QueueOffset {
            queue: q.queue,
            offset: q.offset,
        })
        .collect())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    /// Where in the dead-letter topic to start (default 0).
    #[serde(default)]
    pub from_offset: i64,
    /// At most this many (1 to 1000, default 1000).
    #[schema(maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Resent {
    pub resent: u32,
    /// Past retention, in flight or ahead of the cursor.
    pub skipped: u32,
    /// Where the next call continues; done when it reaches end_offset.
    pub next_offset: i64,
    pub end_offset: i64,
}

pub async fn resend(web: &Web, caller: &Caller, group: &str, r: &Resend) -> Result<Resent, ApiError> {
    let request = caller.grpc(admin::ResendDeadLettersRequest {
        namespace: caller.namespace.clone(),
        group: group.to_string(),
        from_offset: r.from_offset,
        limit: r.limit.unwrap_or(0),
    });
    let r = answer(web.admin.resend_dead_letters(request).await).await?;
    Ok(Resent {
        resent: r.resent,
        skipped: r.skipped,
        next_offset: r.next_offset,
        end_offset: r.end_offset,
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MeteringQuery {
    /// Hours starting at or after this time (Unix ms).
    #[serde(default)]
    pub from_ms: i64,
    /// Hours starting at or before this time (Unix ms).
    #[serde(default = "far_future")]
    pub to_ms: i64,
    /// Every tenant (the operator only).
    #[serde(default)]
    pub all_tenants: bool,
    /// `csv` for a CSV file; JSON otherwise.
    pub format: Option<String>,
}

/// The default end of a time range: 9999-12-31T23:59:59Z.
fn far_future() -> i64 {
    253_402_300_799_000
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindQuery {
    /// Only messages with this key.
    pub key: Option<String>,
    /// Stored at or after (Unix ms).
    #[serde(default)]
    pub from_ms: i64,
    /// Stored at or before (Unix ms).
    #[serde(default = "far_future")]
    pub to_ms: i64,
    /// At most this many (default 32, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Its topic: a message older than the index window is looked for there.
    pub topic: Option<String>,
}

/// Metering rows as CSV: namespace, hour (RFC 3339), metric, value.
pub fn metering_csv(rows: &[MeteringRow]) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::new(v2::Code::InternalError, format!("CSV: {e}"));
    out.write_record(["namespace", "hour", "metric", "value"])
        .map_err(failed)?;
    for r in rows {
        let hour = chrono_hour(r.hour_ms);
        out.write_record([
            r.namespace.as_str(),
            hour.as_str(),
            r.metric.as_str(),
            &r.value.to_string(),
        ])
        .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::new(v2::Code::InternalError, format!("CSV: {e}")))
}

/// An hour's start as RFC 3339 (UTC).
pub fn chrono_hour(ms: i64) -> String {
    crate::cli::output::rfc3339_text(ms.max(1), humantime::format_rfc3339_seconds).unwrap_or_default()
}

// The handlers: each one function above, as JSON.

type Answer<T> = Result<Json<T>, ApiError>;

#[utoipa::path(get, path = "/api/v1/topics", tag = "admin", params(super::Namespace),
    responses((status = 200, body = Vec<TopicView>), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn list_topics(State(web): State<Web>, call: Signed) -> Answer<Vec<TopicView>> {
    Ok(Json(topics(&web, &call.caller).await?))
}

#[utoipa::path(post, path = "/api/v1/topics", tag = "admin", params(super::Namespace), request_body = CreateTopic,
    responses((status = 201, body = TopicView), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn post_topic(State(web): State<Web>, call: Signed) -> Result<(StatusCode, Json<TopicView>), ApiError> {
    let t = create_topic(&web, &call.caller, &call.json()?).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[utoipa::path(get, path = "/api/v1/topics/{topic}", tag = "admin", params(("topic" = String, Path), super::Namespace),
    responses((status = 200, body = TopicDetail), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn get_topic(State(web): State<Web>, Path(name): Path<String>, call: Signed) -> Answer<TopicDetail> {
    Ok(Json(topic(&web, &call.caller, &name).await?))
}

#[utoipa::path(get, path = "/api/v1/topics/{topic}/messages", tag = "admin",
    params(("topic" = String, Path), FindQuery, super::Namespace),
    responses((status = 200, body = FoundMessages), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn find_messages(State(web): State<Web>, Path(name): Path<String>, call: Signed) -> Answer<FoundMessages> {
    Ok(Json(find(&web, &call.caller, &name, &call.query()?).await?))
}

#[utoipa::path(get, path = "/api/v1/groups", tag = "admin", params(super::Namespace),
    responses((status = 200, body = Vec<GroupView>), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn list_groups(State(web): State<Web>, call: Signed) -> Answer<Vec<GroupView>> {
    Ok(Json(groups(&web, &call.caller).await?))
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "admin", params(super::Namespace), request_body = CreateGroup,
    responses((status = 201, body = GroupView), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn post_group(State(web): State<Web>, call: Signed) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    let g = create_group(&web, &call.caller, &call.json()?).await?;
    Ok((StatusCode::CREATED, Json(g)))
}

#[utoipa::path(get, path = "/api/v1/groups/{group}", tag = "admin", params(("group" = String, Path), super::Namespace),
    responses((status = 200, body = GroupDetail), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn get_group(State(web): State<Web>, Path(name): Path<String>, call: Signed) -> Answer<GroupDetail> {
    Ok(Json(group(&web, &call.caller, &name).await?))
}

#[utoipa::path(post, path = "/api/v1/groups/{group}/reset", tag = "admin",
    params(("group" = String, Path), super::Namespace), request_body = ResetOffset,
    responses((status = 200, body = Vec<QueueOffset>), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn post_reset(State(web): State<Web>, Path(name): Path<String>, call: Signed) -> Answer<Vec<QueueOffset>> {
    Ok(Json(reset(&web, &call.caller, &name, &call.json()?).await?))
}

#[utoipa::path(post, path = "/api/v1/groups/{group}/resend", tag = "admin",
    params(("group" = String, Path), super::Namespace), request_body = Resend,
    responses((status = 200, body = Resent), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn post_resend(State(web): State<Web>, Path(name): Path<String>, call: Signed) -> Answer<Resent> {
    Ok(Json(resend(&web, &call.caller, &name, &call.json()?).await?))
}

#[utoipa::path(get, path = "/api/v1/messages/{message_id}", tag = "admin",
    params(("message_id" = String, Path), MessageQuery, super::Namespace),
    responses((status = 200, body = MessageView), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn get_message(State(web): State<Web>, Path(id): Path<String>, call: Signed) -> Answer<MessageView> {
    let q: MessageQuery = call.query()?;
    Ok(Json(message(&web, &call.caller, &id, q.topic.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/messages/{message_id}/trace", tag = "admin",
    params(("message_id" = String, Path), super::Namespace),
    responses((status = 200, body = Trace), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn get_trace(State(web): State<Web>, Path(id): Path<String>, call: Signed) -> Answer<Trace> {
    Ok(Json(trace(&web, &call.caller, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/metering", tag = "admin", params(MeteringQuery, super::Namespace),
    responses(
        (status = 200, description = "Per tenant, hour and metric (`format=csv`: text/csv)", body = Vec<MeteringRow>),
        (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn get_metering(State(web): State<Web>, call: Signed) -> Result<Response, ApiError> {
    let q: MeteringQuery = call.query()?;
    let rows = metering(&web, &call.caller, &q).await?;
    Ok(match q.format.as_deref() {
        Some("csv") => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            metering_csv(&rows)?,
        )
            .into_response(),
        Some("json") | None => Json(rows).into_response(),
        Some(other) => return Err(ApiError::bad_request(format!("unknown format {other:?}; csv or json"))),
    })
}

#[utoipa::path(get, path = "/api/v1/nodes", tag = "admin",
    responses((status = 200, body = Vec<NodeView>), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn list_nodes(State(web): State<Web>, call: Signed) -> Answer<Vec<NodeView>> {
    Ok(Json(nodes(&web, &call.caller).await?))
}

#[utoipa::path(get, path = "/api/v1/tenants", tag = "admin",
    responses((status = 200, body = Vec<TenantView>), (status = "4XX", body = ApiError)),
    security(("signature" = [])))]
pub async fn list_tenants(State(web): State<Web>, call: Signed) -> Answer<Vec<TenantView>> {
    Ok(Json(tenants(&web, &call.caller).await?))
}
