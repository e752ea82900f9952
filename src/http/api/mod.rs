//! The HTTP/JSON API (docs/http-api.md), for callers that cannot hold a gRPC stream
//! (functions, serverless jobs, shell scripts): messaging and the admin reads, described by the
//! OpenAPI 3.1 file at `/openapi.json`.

pub mod admin;
pub mod messages;

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use serde::Deserialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};

use super::Web;

/// The namespace (tenant) a call acts in: the `x-mq-namespace` header, as on gRPC; absent, the
/// signing user's own tenant (the default namespace for the operator).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[expect(dead_code, reason = "documents the header in the OpenAPI file; `Caller` reads it")]
pub struct Namespace {
    #[serde(rename = "x-mq-namespace")]
    #[param(rename = "x-mq-namespace")]
    pub namespace: Option<String>,
}

struct Signature;

impl Modify for Signature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "authorization",
                "STRATA-HMAC-SHA256 Credential=AK, Signature=HEX, where HEX = hex(HMAC-SHA256(secret key, \
                 METHOD \\n PATH?QUERY \\n x-mq-date-time \\n hex(SHA-256(body)))); also send x-mq-date-time \
                 (yyyyMMddTHHmmssZ or RFC 3339, UTC). See docs/http-api.md.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "StrataMQ HTTP API", description = "RocketMQ messaging and administration over HTTP/JSON. \
        Errors carry the RocketMQ status code (apache.rocketmq.v2.Code) and its name."),
    paths(
        messages::send, messages::end_transaction, messages::receive, messages::ack, messages::change_invisible,
        admin::list_topics, admin::post_topic, admin::get_topic, admin::find_messages,
        admin::list_groups, admin::post_group, admin::get_group, admin::post_reset, admin::post_resend,
        admin::get_message, admin::get_trace, admin::get_metering, admin::list_nodes, admin::list_tenants,
    ),
    modifiers(&Signature),
    tags((name = "messages", description = "Send, receive, ack"), (name = "admin", description = "What the console shows and does")),
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    Json(doc)
}

/// The API's routes and `/openapi.json`.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/api/v1/topics", get(admin::list_topics).post(admin::post_topic))
        .route("/api/v1/topics/{topic}", get(admin::get_topic))
        .route(
            "/api/v1/topics/{topic}/messages",
            get(admin::find_messages).post(messages::send),
        )
        .route("/api/v1/topics/{topic}/transactions", post(messages::end_transaction))
        .route("/api/v1/groups", get(admin::list_groups).post(admin::post_group))
        .route("/api/v1/groups/{group}", get(admin::get_group))
        .route("/api/v1/groups/{group}/receive", post(messages::receive))
        .route("/api/v1/groups/{group}/ack", post(messages::ack))
        .route("/api/v1/groups/{group}/invisible", post(messages::change_invisible))
        .route("/api/v1/groups/{group}/reset", post(admin::post_reset))
        .route("/api/v1/groups/{group}/resend", post(admin::post_resend))
        .route("/api/v1/messages/{message_id}", get(admin::get_message))
        .route("/api/v1/messages/{message_id}/trace", get(admin::get_trace))
        .route("/api/v1/metering", get(admin::get_metering))
        .route("/api/v1/nodes", get(admin::list_nodes))
        .route("/api/v1/tenants", get(admin::list_tenants))
        .with_state(web)
}
