//! Topics: the list with a create form, and one topic's queues, storage and produce rate.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::chart::{TimeAxis, line_chart};
use super::layout::{self, Page, link};
use super::{Viewer, url_encode};
use crate::http::Web;
use crate::http::api::admin::{self, CreateTopic, TopicType};

#[derive(Deserialize)]
pub struct Outcome {
    error: Option<String>,
    done: Option<String>,
}

pub async fn list(State(web): State<Web>, viewer: Viewer, Query(o): Query<Outcome>) -> Response {
    let topics = match admin::topics(&web, &viewer.caller).await {
        Ok(t) => t,
        Err(e) => return layout::failed(&viewer, Page::Topics, "Topics", &e),
    };
    let body = html! {
        h1 { "Topics" }
        (layout::banner(o.error.as_deref(), o.done.as_deref()))
        form.inline method="post" action=(link(&viewer, "/console/topics")) {
            label { "Name" input name="name" required pattern="[A-Za-z0-9%|_-]+"; }
            label { "Type" select name="message_type" {
                @for t in ["NORMAL", "FIFO", "DELAY", "TRANSACTION", "LITE", "PRIORITY"] { option { (t) } }
            } }
            label { "Queues" input name="queue_count" type="number" min="1" max="1024" value="8"; }
            button type="submit" { "Create topic" }
        }
        table data-testid="topics" {
            tr { th { "Topic" } th { "Type" } th { "Queues" } th { "Retention" } th { "Created" } }
            @for t in &topics {
                tr {
                    td { a href=(link(&viewer, &format!("/console/topics/{}", url_encode(&t.name)))) { (t.name) } }
                    td { (t.message_type) } td.n { (t.queue_count) } td { (layout::duration(t.retention_ms)) }
                    td { (layout::time(t.created_ms)) }
                }
            }
        }
    };
    layout::page(&viewer, Page::Topics, "Topics", body)
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    message_type: String,
    queue_count: String,
}

pub async fn create(State(web): State<Web>, viewer: Viewer, Form(form): Form<CreateForm>) -> Response {
    let message_type: Result<TopicType, _> =
        serde_json::from_value(serde_json::Value::String(form.message_type.clone()));
    let outcome = match (message_type, form.queue_count.trim().parse::<i32>()) {
        (Ok(message_type), Ok(queues)) => {
            let spec = CreateTopic {
                name: form.name.trim().to_string(),
                message_type,
                queue_count: Some(queues),
                retention_hours: None,
            };
            admin::create_topic(&web, &viewer.caller, &spec)
                .await
                .map(|t| format!("Topic {} created", t.name))
                .map_err(|e| e.message)
        }
        (Err(_), _) => Err(format!("unknown message type {:?}", form.message_type)),
        (_, Err(_)) => Err(format!("queue count {:?} is not a number", form.queue_count)),
    };
    let to = match outcome {
        Ok(done) => format!("/console/topics?done={}", url_encode(&done)),
        Err(e) => format!("/console/topics?error={}", url_encode(&e)),
    };
    Redirect::to(&link(&viewer, &to)).into_response()
}

pub async fn detail(State(web): State<Web>, viewer: Viewer, Path(name): Path<String>) -> Response {
    let d = match admin::topic(&web, &viewer.caller, &name).await {
        Ok(d) => d,
        Err(e) => return layout::failed(&viewer, Page::Topics, &name, &e),
    };
    web.history.watch(&viewer.caller.namespace).await;
    let rate = web.history.topic_series(&viewer.caller.namespace, &name);
    let t = &d.topic;
    let total = |f: fn(&admin::QueueStatsView) -> i64| d.queues.iter().map(f).sum::<i64>();
    let body = html! {
        h1 { "Topic " (t.name) }
        div.cards {
            div.card { b { (t.message_type) } "type" }
            div.card { b data-testid="topic-messages" { (total(|q| q.max_offset - q.min_offset)) } "messages retained" }
            div.card { b { (layout::bytes(total(|q| q.bytes))) } "stored" }
            div.card { b { (total(|q| q.objects)) } "objects" }
            div.card { b { (layout::duration(t.retention_ms)) } "retention" }
        }
        (line_chart("Produce rate", "messages/s", &rate, TimeAxis::Clock, None))
        h2 { "Queues" }
        table data-testid="queues" {
            tr { th { "Queue" } th { "Min offset" } th { "Max offset" } th { "Batches" } th { "Bytes" }
                 th { "Objects" } th { "Oldest" } th { "Newest" } }
            @for q in &d.queues {
                tr {
                    td.n { (q.queue) } td.n { (q.min_offset) } td.n { (q.max_offset) } td.n { (q.batches) }
                    td.n { (layout::bytes(q.bytes)) } td.n { (q.objects) }
                    td { (layout::time(q.oldest_ms)) } td { (layout::time(q.newest_ms)) }
                }
            }
        }
        p { a href=(link(&viewer, &format!("/console/messages?topic={}", url_encode(&t.name)))) { "Search its messages" } }
    };
    layout::page(&viewer, Page::Topics, &name, body)
}
