//! Producing and consuming over HTTP: send (single or batch, every message type), end a
//! transaction, receive with long polling, ack, change the invisible duration. Each is the
//! gRPC `MessagingService` call it translates to (docs/http-api.md).

use std::collections::HashMap;
use std::io::Read;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use strata_proto::v2::messaging_service_server::MessagingService;
use strata_proto::v2::{self, Code};
use utoipa::ToSchema;

use crate::http::Web;
use crate::http::caller::Signed;
use crate::http::error::{ApiError, http_status};

/// Most messages one receive returns (as the gRPC front's batch limit).
const MAX_RECEIVE: u32 = 32;

/// A message to send. Its type follows from what it carries, as with the SDKs: a
/// `message_group` makes it FIFO, a `delivery_time_ms` a delay message, a `lite_topic` a lite
/// message, a `priority` a priority message, `transactional` a transaction's half message; the
/// topic's type must match.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutgoingMessage {
    /// The body as UTF-8 text; exactly one of `body` and `body_base64`.
    pub body: Option<String>,
    /// The body as Base64 (standard alphabet), for bytes that are not text.
    pub body_base64: Option<String>,
    pub tag: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    /// FIFO: messages of one group are delivered in order, one at a time.
    pub message_group: Option<String>,
    /// Delay: deliver at this time (Unix milliseconds).
    pub delivery_time_ms: Option<i64>,
    /// Lite: the lite topic (under a LITE topic) to append to.
    pub lite_topic: Option<String>,
    /// Priority: higher is delivered first (a PRIORITY topic).
    pub priority: Option<i32>,
    /// User properties (`x-lane` routes to a grayscale lane).
    #[serde(default)]
    pub properties: HashMap<String, String>,
    /// A transaction's half message: delivered once committed (`/transactions`).
    #[serde(default)]
    pub transactional: bool,
    /// The message id, for a retry that must not store the message twice (within
    /// `ingest.index_window`); generated when absent.
    pub message_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// One message, or a batch (at most `grpc.max_message_bytes` in all).
    pub messages: Vec<OutgoingMessage>,
}

/// How one entry of a batch went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Outcome {
    /// The RocketMQ status code: 20000 when it went through.
    pub code: i32,
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Outcome {
    fn of(s: Option<&v2::Status>) -> Self {
        let code = s.map_or(Code::InternalError as i32, |s| s.code);
        let name = Code::try_from(code).map_or("UNKNOWN", |c| c.as_str_name());
        Self {
            code,
            status: name.to_string(),
            message: s
                .filter(|s| s.code != Code::Ok as i32)
                .map(|s| s.message.clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendResult {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub message_id: String,
    /// Its offset in its queue; absent for held messages (delay, transaction) until released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Cancels a delay message before it is delivered (RecallMessage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall_handle: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendResponse {
    pub results: Vec<SendResult>,
}

/// A batch's answer: 200 when every entry went through, 207 when some did, and the entries'
/// common refusal when none did.
fn batch<T: Serialize>(overall: Option<&v2::Status>, body: T) -> Response {
    let code = overall.map_or(Code::InternalError as i32, |s| s.code);
    if code == Code::Ok as i32 || code == Code::MultipleResults as i32 {
        (http_status(code), Json(body)).into_response()
    } else {
        ApiError::from_status(overall.unwrap_or(&v2::Status::default())).into_response()
    }
}

fn some_text(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn millis(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| {
        t.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(t.nanos / 1_000_000))
    })
}

fn seconds(s: u32) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::from(s),
        nanos: 0,
    }
}

impl OutgoingMessage {
    fn to_v2(&self, topic: v2::Resource) -> Result<v2::Message, ApiError> {
        let body = match (&self.body, &self.body_base64) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| ApiError::bad_request(format!("body_base64 is not Base64: {e}")))?,
            _ => return Err(ApiError::bad_request("give exactly one of body and body_base64")),
        };
        let message_type = if self.transactional {
            v2::MessageType::Transaction as i32
        } else {
            // Inferred by ingest from what the message carries.
            0
        };
        Ok(v2::Message {
            topic: Some(topic),
            user_properties: self.properties.clone(),
            system_properties: Some(v2::SystemProperties {
                tag: some_text(&self.tag),
                keys: self.keys.clone(),
                message_id: self.message_id.clone().unwrap_or_default(),
                message_group: some_text(&self.message_group),
                delivery_timestamp: self.delivery_time_ms.map(timestamp),
                lite_topic: some_text(&self.lite_topic),
                priority: self.priority,
                message_type,
                ..Default::default()
            }),
            body: body.into(),
        })
    }
}

/// Sends messages to a topic.
#[utoipa::path(post, path = "/api/v1/topics/{topic}/messages", tag = "messages",
    params(("topic" = String, Path, description = "The topic"), super::Namespace),
    request_body = SendRequest,
    responses(
        (status = 200, description = "Every message was stored", body = SendResponse),
        (status = 207, description = "Some were stored: see each result", body = SendResponse),
        (status = "4XX", description = "Refused (RocketMQ code in the body)", body = ApiError),
        (status = "5XX", description = "Failed (RocketMQ code in the body)", body = ApiError),
    ),
    security(("signature" = [])))]
pub async fn send(State(web): State<Web>, Path(topic): Path<String>, call: Signed) -> Response {
    let request: SendRequest = match call.json() {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let resource = call.caller.resource(&topic);
    let messages: Result<Vec<v2::Message>, ApiError> =
        request.messages.iter().map(|m| m.to_v2(resource.clone())).collect();
    let messages = match messages {
        Ok(m) if m.is_empty() => return ApiError::bad_request("messages is empty").into_response(),
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let reply = match web
        .front
        .send_message(call.caller.grpc(v2::SendMessageRequest { messages }))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => return ApiError::from_grpc(&s).into_response(),
    };
    let results = reply
        .entries
        .iter()
        .map(|e| {
            let ok = e.status.as_ref().is_some_and(|s| s.code == Code::Ok as i32);
            SendResult {
                outcome: Outcome::of(e.status.as_ref()),
                message_id: e.message_id.clone(),
                offset: (ok && e.transaction_id.is_empty() && e.recall_handle.is_empty()).then_some(e.offset),
                transaction_id: Some(e.transaction_id.clone()).filter(|t| !t.is_empty()),
                recall_handle: Some(e.recall_handle.clone()).filter(|t| !t.is_empty()),
            }
        })
        .collect();
    batch(reply.status.as_ref(), SendResponse { results })
}

#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Commit,
    Rollback,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndTransactionRequest {
    pub message_id: String,
    pub transaction_id: String,
    pub action: Resolution,
}

/// Commits or rolls back a transaction's half message.
#[utoipa::path(post, path = "/api/v1/topics/{topic}/transactions", tag = "messages",
    params(("topic" = String, Path, description = "The topic"), super::Namespace),
    request_body = EndTransactionRequest,
    responses(
        (status = 200, description = "Done", body = Outcome),
        (status = "4XX", description = "Refused", body = ApiError),
        (status = "5XX", description = "Failed", body = ApiError),
    ),
    security(("signature" = [])))]
pub async fn end_transaction(State(web): State<Web>, Path(topic): Path<String>, call: Signed) -> Response {
    let request: EndTransactionRequest = match call.json() {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let resolution = match request.action {
        Resolution::Commit => v2::TransactionResolution::Commit,
        Resolution::Rollback => v2::TransactionResolution::Rollback,
    };
    let grpc = v2::EndTransactionRequest {
        topic: Some(call.caller.resource(&topic)),
        message_id: request.message_id,
        transaction_id: request.transaction_id,
        resolution: resolution as i32,
        source: v2::TransactionSource::SourceClient as i32,
        trace_context: String::new(),
    };
    match web.front.end_transaction(call.caller.grpc(grpc)).await {
        Ok(r) => single(r.into_inner().status.as_ref(), |o| Json(o).into_response()),
        Err(s) => ApiError::from_grpc(&s).into_response(),
    }
}

/// An answer with one status: `ok` when it is OK, the refusal otherwise.
fn single(status: Option<&v2::Status>, ok: impl FnOnce(Outcome) -> Response) -> Response {
    match status {
        Some(s) if s.code == Code::Ok as i32 => ok(Outcome::of(Some(s))),
        Some(s) => ApiError::from_status(s).into_response(),
        None => ApiError::new(Code::InternalError, "no status").into_response(),
    }
}

fn default_max_messages() -> u32 {
    1
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    #[schema(pattern = r"^[A-Za-z0-9%|_-]{1,127}$")]
    pub topic: String,
    /// 1 to 32.
    #[serde(default = "default_max_messages")]
    #[schema(minimum = 1, maximum = 32, default = 1)]
    pub max_messages: u32,
    /// How long to wait for a message when none is ready (long polling), capped by
    /// `query.max_long_polling` (default 20 s); 0 answers at once.
    #[serde(default)]
    #[schema(maximum = 3600)]
    pub wait_seconds: u32,
    /// How long received messages stay invisible to other consumers before they are
    /// delivered again unless acked; the group's default when absent.
    #[schema(minimum = 1, maximum = 43200)]
    pub invisible_seconds: Option<u32>,
    /// A tag expression (`a || b`), or `*` for every message (the default).
    pub tag: Option<String>,
    /// Give every body as `body_base64`, also bodies that are text.
    #[serde(default)]
    pub base64_bodies: bool,
}

/// A received message, with the receipt handle that acks it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub topic: String,
    /// The body as text, when it is UTF-8 (and `base64_bodies` is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// Set when a GZIP-flagged body does not inflate (or inflates past the body limit): why,
    /// and `body_base64` holds the bytes as stored. The message is delivered all the same, so
    /// it can be acked; the others of its batch are unaffected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lite_topic: Option<String>,
    pub properties: HashMap<String, String>,
    pub queue: i32,
    pub offset: i64,
    /// 1 on the first delivery.
    pub delivery_attempt: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub born_time_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_time_ms: Option<i64>,
    pub receipt_handle: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiveResponse {
    /// Empty when nothing arrived within `wait_seconds`.
    pub messages: Vec<ReceivedMessage>,
}

/// The body as sent: GZIP bodies (the Java SDK compresses large ones) are inflated, up to
/// `limit` bytes; one that does not inflate is why not.
fn plain_body(m: &v2::Message, limit: usize) -> Result<Vec<u8>, String> {
    let gzip = m
        .system_properties
        .as_ref()
        .is_some_and(|s| s.body_encoding == v2::Encoding::Gzip as i32);
    if !gzip {
        return Ok(m.body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&m.body[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the GZIP-flagged body does not inflate ({e}); body_base64 is as stored"))?;
    if out.len() > limit {
        return Err(format!(
            "the GZIP-flagged body inflates past {limit} bytes; body_base64 is as stored"
        ));
    }
    Ok(out)
}

fn received(m: v2::Message, base64_bodies: bool, limit: usize) -> ReceivedMessage {
    let (body, problem) = match plain_body(&m, limit) {
        Ok(b) => (b, None),
        Err(why) => (m.body.to_vec(), Some(why)),
    };
    let sp = m.system_properties.unwrap_or_default();
    let (body, body_base64) = match String::from_utf8(body) {
        Ok(text) if !base64_bodies && problem.is_none() => (Some(text), None),
        Ok(text) => (None, Some(base64::engine::general_purpose::STANDARD.encode(text))),
        Err(e) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
        ),
    };
    ReceivedMessage {
        message_id: sp.message_id,
        topic: m.topic.map(|t| t.name).unwrap_or_default(),
        body,
        body_base64,
        body_problem: problem,
        tag: sp.tag,
        keys: sp.keys,
        message_group: sp.message_group,
        lite_topic: sp.lite_topic,
        properties: m.user_properties,
        queue: sp.queue_id,
        offset: sp.queue_offset.unwrap_or_default(),
        delivery_attempt: sp.delivery_attempt.unwrap_or(1),
        born_time_ms: millis(sp.born_timestamp.as_ref()),
        store_time_ms: millis(sp.store_timestamp.as_ref()),
        receipt_handle: sp.receipt_handle.unwrap_or_default(),
    }
}

/// Receives messages for a consumer group, waiting up to `wait_seconds` for one.
#[utoipa::path(post, path = "/api/v1/groups/{group}/receive", tag = "messages",
    params(("group" = String, Path, description = "The consumer group"), super::Namespace),
    request_body = ReceiveRequest,
    responses(
        (status = 200, description = "The messages (none when the wait ended empty)", body = ReceiveResponse),
        (status = "4XX", description = "Refused", body = ApiError),
        (status = "5XX", description = "Failed", body = ApiError),
    ),
    security(("signature" = [])))]
pub async fn receive(State(web): State<Web>, Path(group): Path<String>, call: Signed) -> Response {
    use v2::receive_message_response::Content;
    let request: ReceiveRequest = match call.json() {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if !(1..=MAX_RECEIVE).contains(&request.max_messages) {
        return ApiError::bad_request(format!("max_messages must be 1 to {MAX_RECEIVE}")).into_response();
    }
    let grpc = v2::ReceiveMessageRequest {
        group: Some(call.caller.resource(&group)),
        message_queue: Some(v2::MessageQueue {
            topic: Some(call.caller.resource(&request.topic)),
            ..Default::default()
        }),
        filter_expression: Some(v2::FilterExpression {
            r#type: v2::FilterType::Tag as i32,
            expression: request.tag.clone().unwrap_or_else(|| "*".into()),
        }),
        batch_size: request.max_messages as i32,
        invisible_duration: request.invisible_seconds.map(seconds),
        auto_renew: false,
        long_polling_timeout: Some(seconds(request.wait_seconds)),
        attempt_id: None,
    };
    let mut stream = match web.front.receive_message(call.caller.grpc(grpc)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return ApiError::from_grpc(&s).into_response(),
    };
    let mut messages = Vec::new();
    while let Some(item) = stream.next().await {
        match item.map(|r| r.content) {
            Ok(Some(Content::Status(s))) if s.code != Code::Ok as i32 && s.code != Code::MessageNotFound as i32 => {
                return ApiError::from_status(&s).into_response();
            }
            Ok(Some(Content::Message(m))) => messages.push(received(m, request.base64_bodies, web.max_body_bytes)),
            Ok(_) => {}
            Err(s) => return ApiError::from_grpc(&s).into_response(),
        }
    }
    (StatusCode::OK, Json(ReceiveResponse { messages })).into_response()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckEntry {
    pub message_id: String,
    pub receipt_handle: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[schema(pattern = r"^[A-Za-z0-9%|_-]{1,127}$")]
    pub topic: String,
    pub entries: Vec<AckEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AckResult {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub message_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AckResponse {
    pub results: Vec<AckResult>,
}

/// Acks received messages: they are not delivered again.
#[utoipa::path(post, path = "/api/v1/groups/{group}/ack", tag = "messages",
    params(("group" = String, Path, description = "The consumer group"), super::Namespace),
    request_body = AckRequest,
    responses(
        (status = 200, description = "Every message was acked", body = AckResponse),
        (status = 207, description = "Some were: see each result", body = AckResponse),
        (status = "4XX", description = "Refused", body = ApiError),
        (status = "5XX", description = "Failed", body = ApiError),
    ),
    security(("signature" = [])))]
pub async fn ack(State(web): State<Web>, Path(group): Path<String>, call: Signed) -> Response {
    let request = match call.json::<AckRequest>() {
        Ok(r) if r.entries.is_empty() => return ApiError::bad_request("entries is empty").into_response(),
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let grpc = v2::AckMessageRequest {
        group: Some(call.caller.resource(&group)),
        topic: Some(call.caller.resource(&request.topic)),
        entries: request
            .entries
            .into_iter()
            .map(|e| v2::AckMessageEntry {
                message_id: e.message_id,
                receipt_handle: e.receipt_handle,
                lite_topic: None,
            })
            .collect(),
    };
    let reply = match web.front.ack_message(call.caller.grpc(grpc)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return ApiError::from_grpc(&s).into_response(),
    };
    let results = reply
        .entries
        .iter()
        .map(|e| AckResult {
            outcome: Outcome::of(e.status.as_ref()),
            message_id: e.message_id.clone(),
        })
        .collect();
    batch(reply.status.as_ref(), AckResponse { results })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeInvisibleRequest {
    #[schema(pattern = r"^[A-Za-z0-9%|_-]{1,127}$")]
    pub topic: String,
    pub message_id: String,
    pub receipt_handle: String,
    /// From now, how long the message stays invisible.
    #[schema(minimum = 1, maximum = 43200)]
    pub invisible_seconds: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeInvisibleResponse {
    /// The handle to ack with from now on (the old one no longer acks).
    pub receipt_handle: String,
}

/// Changes how long a received message stays invisible (more time to process, or 0-ish to
/// have it delivered again soon).
#[utoipa::path(post, path = "/api/v1/groups/{group}/invisible", tag = "messages",
    params(("group" = String, Path, description = "The consumer group"), super::Namespace),
    request_body = ChangeInvisibleRequest,
    responses(
        (status = 200, description = "Changed", body = ChangeInvisibleResponse),
        (status = "4XX", description = "Refused", body = ApiError),
        (status = "5XX", description = "Failed", body = ApiError),
    ),
    security(("signature" = [])))]
pub async fn change_invisible(State(web): State<Web>, Path(group): Path<String>, call: Signed) -> Response {
    let request: ChangeInvisibleRequest = match call.json() {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let grpc = v2::ChangeInvisibleDurationRequest {
        group: Some(call.caller.resource(&group)),
        topic: Some(call.caller.resource(&request.topic)),
        receipt_handle: request.receipt_handle,
        invisible_duration: Some(seconds(request.invisible_seconds)),
        message_id: request.message_id,
        lite_topic: None,
        suspend: None,
    };
    match web.front.change_invisible_duration(call.caller.grpc(grpc)).await {
        Ok(r) => {
            let r = r.into_inner();
            single(r.status.as_ref(), |_| {
                Json(ChangeInvisibleResponse {
                    receipt_handle: r.receipt_handle.clone(),
                })
                .into_response()
            })
        }
        Err(s) => ApiError::from_grpc(&s).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_messages_take_one_body() {
        let topic = v2::Resource::default();
        let both = OutgoingMessage {
            body: Some("a".into()),
            body_base64: Some("YQ==".into()),
            ..Default::default()
        };
        assert!(both.to_v2(topic.clone()).is_err());
        assert!(OutgoingMessage::default().to_v2(topic.clone()).is_err());
        let bad = OutgoingMessage {
            body_base64: Some("***".into()),
            ..Default::default()
        };
        assert_eq!(bad.to_v2(topic.clone()).unwrap_err().code, Code::BadRequest as i32);
        let bytes = OutgoingMessage {
            body_base64: Some("AP8=".into()),
            transactional: true,
            delivery_time_ms: Some(-1),
            ..Default::default()
        };
        let m = bytes.to_v2(topic).unwrap();
        assert_eq!(m.body, [0u8, 255][..]);
        let sp = m.system_properties.unwrap();
        assert_eq!(sp.message_type, v2::MessageType::Transaction as i32);
        assert_eq!(
            millis(sp.delivery_timestamp.as_ref()),
            Some(-1),
            "before 1970 round-trips"
        );
    }

    #[test]
    fn bodies_come_back_as_text_or_base64_and_gzip_is_inflated() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b'x'; 1000]).unwrap();
        let compressed = gz.finish().unwrap();
        let message = |body: Vec<u8>, encoding: v2::Encoding| v2::Message {
            body: body.into(),
            system_properties: Some(v2::SystemProperties {
                body_encoding: encoding as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = received(message(compressed.clone(), v2::Encoding::Gzip), false, 1000);
        assert_eq!(text.body.as_deref(), Some("x".repeat(1000).as_str()));
        assert!(text.body_problem.is_none());
        let too_big = received(message(compressed.clone(), v2::Encoding::Gzip), false, 999);
        assert!(too_big.body_problem.is_some_and(|p| p.contains("past 999 bytes")));
        use base64::Engine as _;
        let as_stored = base64::engine::general_purpose::STANDARD.encode(&compressed);
        assert_eq!(
            too_big.body_base64.as_deref(),
            Some(as_stored.as_str()),
            "delivered as stored"
        );
        let poison = received(message(b"not gzip".to_vec(), v2::Encoding::Gzip), false, 1000);
        assert!(poison.body_problem.is_some_and(|p| p.contains("does not inflate")));
        assert_eq!(
            poison.body_base64.as_deref(),
            Some("bm90IGd6aXA="),
            "a poison body is still delivered"
        );
        let binary = received(message(vec![0xff], v2::Encoding::Identity), false, 10);
        assert_eq!((binary.body, binary.body_base64.as_deref()), (None, Some("/w==")));
        let forced = received(message(b"hi".to_vec(), v2::Encoding::Identity), true, 10);
        assert_eq!(forced.body_base64.as_deref(), Some("aGk="));
    }
}
