//! Message search (by id, or by topic with a key and a time range) and one message with its
//! trace as a timeline.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Page, link, utc_ms};
use super::{Viewer, url_encode};
use crate::http::Web;
use crate::http::api::admin::{self, FindQuery, MessageView};

#[derive(Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    id: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    key: String,
    /// `datetime-local` values, read as UTC.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn message_link(viewer: &Viewer, m: &MessageView) -> String {
    link(
        viewer,
        &format!(
            "/console/messages/{}?topic={}",
            url_encode(&m.message_id),
            url_encode(&m.topic)
        ),
    )
}

fn results(viewer: &Viewer, messages: &[MessageView]) -> Markup {
    html! {
        table data-testid="results" {
            tr { th { "Message id" } th { "Queue" } th { "Offset" } th { "Stored" } th { "Tag" } th { "Keys" } th { "Body" } }
            @for m in messages {
                tr {
                    td { a href=(message_link(viewer, m)) { code { (m.message_id) } } }
                    td.n { (m.queue) } td.n { (m.offset) } td { (layout::time(m.store_ms)) }
                    td { (m.tag) } td { (m.keys.join(", ")) } td { (m.body_preview.chars().take(80).collect::<String>()) }
                }
            }
        }
    }
}

pub async fn search(State(web): State<Web>, viewer: Viewer, Query(s): Query<Search>) -> Response {
    let id = s.id.trim();
    if !id.is_empty() {
        let topic = Some(s.topic.trim()).filter(|t| !t.is_empty());
        let to = match topic {
            Some(t) => format!("/console/messages/{}?topic={}", url_encode(id), url_encode(t)),
            None => format!("/console/messages/{}", url_encode(id)),
        };
        return Redirect::to(&link(&viewer, &to)).into_response();
    }
    let found = if s.topic.trim().is_empty() {
        None
    } else {
        let q = FindQuery {
            key: Some(s.key.trim().to_string()).filter(|k| !k.is_empty()),
            from_ms: utc_ms(&s.from).unwrap_or(0),
            to_ms: utc_ms(&s.to).unwrap_or(253_402_300_799_000),
            limit: Some(100),
        };
        Some(admin::find(&web, &viewer.caller, s.topic.trim(), &q).await)
    };
    let body = html! {
        h1 { "Messages" }
        form.inline method="get" action="/console/messages" {
            @if !viewer.caller.namespace.is_empty() { input type="hidden" name="ns" value=(viewer.caller.namespace); }
            label { "Message id" input name="id" value=(s.id) size="36"; }
            label { "Topic" input name="topic" value=(s.topic); }
            label { "Key" input name="key" value=(s.key); }
            label { "Stored from (UTC)" input name="from" type="datetime-local" step="1" value=(s.from); }
            label { "to" input name="to" type="datetime-local" step="1" value=(s.to); }
            button type="submit" { "Search" }
        }
        p { "By id: the message and its trace. By topic: its messages in the time range, with the key if one is given (at most 100)." }
        @match &found {
            None => {},
            Some(Err(e)) => p.error data-testid="error" { (e.status) ": " (e.message) },
            Some(Ok(f)) => {
                @if f.cut_short { p.note { "The scan stopped at its limit: narrow the time range." } }
                @if f.messages.is_empty() { p.empty { "No message found." } } @else { (results(&viewer, &f.messages)) }
            },
        }
    };
    layout::page(&viewer, Page::Messages, "Messages", body)
}

#[derive(Deserialize)]
pub struct DetailQuery {
    topic: Option<String>,
}

/// A trace event's fields other than the ones the timeline shows anyway.
fn event_details(e: &serde_json::Value) -> String {
    let Some(map) = e.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "event" | "time_ms" | "message_id" | "topic" | "seq"))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join("  ")
}

pub async fn detail(
    State(web): State<Web>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let topic = q.topic.as_deref().filter(|t| !t.is_empty());
    let m = match admin::message(&web, &viewer.caller, &id, topic).await {
        Ok(m) => m,
        Err(e) => return layout::failed(&viewer, Page::Messages, "Message", &e),
    };
    let trace = admin::trace(&web, &viewer.caller, &id).await;
    let body = html! {
        h1 { "Message " code { (m.message_id) } }
        table data-testid="message" {
            tr { th { "Topic" } td { a href=(link(&viewer, &format!("/console/topics/{}", url_encode(&m.topic)))) { (m.topic) } } }
            tr { th { "Type" } td { (m.message_type) } }
            tr { th { "Queue / offset" } td { (m.queue) " / " (m.offset) } }
            tr { th { "Born" } td { (layout::time(m.born_ms)) " at " (m.born_host) } }
            tr { th { "Stored" } td { (layout::time(m.store_ms)) } }
            @if m.delivery_ms > 0 { tr { th { "Due" } td { (layout::time(m.delivery_ms)) } } }
            tr { th { "Tag" } td { (m.tag) } }
            tr { th { "Keys" } td { (m.keys.join(", ")) } }
            @if !m.message_group.is_empty() { tr { th { "Message group" } td { (m.message_group) } } }
            @for (k, v) in &m.properties { tr { th { "Property " code { (k) } } td { (v) } } }
            tr { th { "Body" } td { (m.body_size) " bytes: " code data-testid="body" { (m.body_preview) } } }
        }
        h2 { "Deliveries" }
        @if m.deliveries.is_empty() { p.empty { "No group has progress on its queue." } }
        table { @for d in &m.deliveries { tr { td { (d.group) } td { (d.state) } } } }
        h2 { "Trace" }
        @match &trace {
            Err(e) => p.error { (e.status) ": " (e.message) },
            Ok(t) => {
                @if t.cut_short { p.note { "The search stopped at its limit: some events may be missing." } }
                @if t.events.is_empty() { p.empty { "No trace events (tracing may be off for the topic)." } }
                ol.timeline data-testid="trace" {
                    @for e in &t.events {
                        li {
                            span.event { (e.get("event").and_then(|v| v.as_str()).unwrap_or("?")) }
                            span.at { (layout::time(e.get("time_ms").and_then(serde_json::Value::as_i64).unwrap_or(0))) }
                            div.detail { (event_details(e)) }
                        }
                    }
                }
            },
        }
    };
    layout::page(&viewer, Page::Messages, "Message", body)
}
