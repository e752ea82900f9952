//! Consumer groups: the list with a create form, and one group's lag per queue, connected
//! consumers and dead letters, with its reset and resend actions.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{self, Page, link, utc_ms};
use super::{Viewer, url_encode};
use crate::http::Web;
use crate::http::api::admin::{self, CreateGroup, Resend, ResetOffset};

#[derive(Deserialize)]
pub struct Outcome {
    error: Option<String>,
    done: Option<String>,
}

/// Where an action sends the browser: back to `page` with its outcome.
fn back(viewer: &Viewer, page: &str, outcome: Result<String, String>) -> Response {
    let to = match outcome {
        Ok(done) => format!("{page}?done={}", url_encode(&done)),
        Err(e) => format!("{page}?error={}", url_encode(&e)),
    };
    Redirect::to(&link(viewer, &to)).into_response()
}

pub async fn list(State(web): State<Web>, viewer: Viewer, Query(o): Query<Outcome>) -> Response {
    let groups = match admin::groups(&web, &viewer.caller).await {
        Ok(g) => g,
        Err(e) => return layout::failed(&viewer, Page::Groups, "Groups", &e),
    };
    let body = html! {
        h1 { "Consumer groups" }
        (layout::banner(o.error.as_deref(), o.done.as_deref()))
        form.inline method="post" action=(link(&viewer, "/console/groups")) {
            label { "Name" input name="name" required pattern="[A-Za-z0-9%|_-]+"; }
            label { "Kind" select name="kind" { option value="" { "concurrent" } option { "fifo" } option { "broadcast" } } }
            button type="submit" { "Create group" }
        }
        table data-testid="groups" {
            tr { th { "Group" } th { "Kind" } th { "Max attempts" } th { "Retry policy" } th { "Created" } }
            @for g in &groups {
                tr {
                    td { a href=(link(&viewer, &format!("/console/groups/{}", url_encode(&g.name)))) { (g.name) } }
                    td { @if g.fifo { "FIFO" } @else if g.broadcast { "broadcast" } @else { "concurrent" } }
                    td.n { (g.max_attempts) } td { (g.retry_policy) } td { (layout::time(g.created_ms)) }
                }
            }
        }
    };
    layout::page(&viewer, Page::Groups, "Groups", body)
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    kind: String,
}

pub async fn create(State(web): State<Web>, viewer: Viewer, Form(form): Form<CreateForm>) -> Response {
    let spec = CreateGroup {
        name: form.name.trim().to_string(),
        fifo: form.kind == "fifo",
        broadcast: form.kind == "broadcast",
        ..Default::default()
    };
    let outcome = admin::create_group(&web, &viewer.caller, &spec)
        .await
        .map(|g| format!("Group {} created", g.name))
        .map_err(|e| e.message);
    back(&viewer, "/console/groups", outcome)
}

pub async fn detail(
    State(web): State<Web>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(o): Query<Outcome>,
) -> Response {
    let d = match admin::group(&web, &viewer.caller, &name).await {
        Ok(d) => d,
        Err(e) => return layout::failed(&viewer, Page::Groups, &name, &e),
    };
    let mut topics: Vec<&str> = d.queues.iter().map(|q| q.topic.as_str()).collect();
    topics.dedup();
    let path = |action: &str| link(&viewer, &format!("/console/groups/{}/{action}", url_encode(&name)));
    let body = html! {
        h1 { "Group " (name) }
        (layout::banner(o.error.as_deref(), o.done.as_deref()))
        div.cards {
            div.card { b data-testid="lag" { (d.lag) } "lag" }
            div.card { b data-testid="in-flight" { (d.queues.iter().map(|q| q.in_flight).sum::<i64>()) } "in flight" }
            div.card { b data-testid="dead-letters" { (d.dead_letters) } "dead letters" }
            div.card { b { (d.consumers.len()) } "consumers on this node" }
        }
        h2 { "Lag per queue" }
        table data-testid="progress" {
            tr { th { "Topic" } th { "Queue" } th { "Max offset" } th { "Delivered up to" } th { "In flight" }
                 th { "Committed" } th { "Lag" } }
            @for q in &d.queues {
                tr {
                    td { (q.topic) } td.n { (q.queue) } td.n { (q.max_offset) }
                    td.n { (q.cursor.map_or("-".into(), |c| c.to_string())) } td.n { (q.in_flight) }
                    td.n { (q.committed.map_or("-".into(), |c| c.to_string())) } td.n { (q.lag) }
                }
            }
        }
        @if d.queues.is_empty() { p.empty { "The group has not consumed yet." } }
        h2 { "Consumers" }
        @if d.consumers.is_empty() { p.empty { "None connected to this node." } }
        ul { @for c in &d.consumers { li { code { (c) } } } }
        h2 { "Lanes" }
        p { "Consumers named " code { (name) "%LANE" } " get the messages with the property "
            code { "x-lane: LANE" } "; after " b { (d.group.lane_fallback) } " without a receive the group takes them." }
        @if d.lanes.is_empty() { p.empty { "No lane has been used." } }
        @else {
            table data-testid="lanes" {
                tr { th { "Topic" } th { "Lane" } th { "Last receive" } th { "State" } }
                @for l in &d.lanes {
                    tr {
                        td { (l.topic) } td { (l.name) } td { (layout::time(l.last_seen_ms)) }
                        td { @if l.taken_over { "taken over by the group" } @else { "online" } }
                    }
                }
            }
        }
        h2 { "Reset progress" }
        p { "Messages from the new position on are delivered again; those before it are skipped." }
        form.inline method="post" action=(path("reset")) {
            label { "Topic" input name="topic" list="group-topics" required value=(topics.first().copied().unwrap_or_default()); }
            datalist id="group-topics" { @for t in &topics { option value=(t) {} } }
            label { "To" select name="to" { option { "earliest" } option { "latest" } option { "time" } } }
            label { "Time (UTC, for “time”)" input name="time" type="datetime-local" step="1"; }
            button type="submit" { "Reset" }
        }
        h2 { "Dead letters" }
        form.inline method="post" action=(path("resend")) {
            label { "From offset" input name="from_offset" type="number" min="0" value="0"; }
            button type="submit" disabled[d.dead_letters == 0] { "Resend to this group" }
        }
    };
    layout::page(&viewer, Page::Groups, &name, body)
}

#[derive(Deserialize)]
pub struct ResetForm {
    topic: String,
    to: String,
    #[serde(default)]
    time: String,
}

pub async fn reset(
    State(web): State<Web>,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(f): Form<ResetForm>,
) -> Response {
    let request = |timestamp_ms, offset| ResetOffset {
        topic: f.topic.clone(),
        timestamp_ms,
        offset,
    };
    let request = match f.to.as_str() {
        // Offsets are clamped to each queue's retained range.
        "earliest" => Ok(request(None, Some(0))),
        "latest" => Ok(request(None, Some(i64::MAX))),
        _ => utc_ms(&f.time)
            .map(|t| request(Some(t), None))
            .ok_or_else(|| format!("{:?} is not a time", f.time)),
    };
    let outcome = match request {
        Ok(r) => admin::reset(&web, &viewer.caller, &name, &r)
            .await
            .map(|queues| format!("Reset {} queue(s) of {}", queues.len(), f.topic))
            .map_err(|e| e.message),
        Err(e) => Err(e),
    };
    back(&viewer, &format!("/console/groups/{}", url_encode(&name)), outcome)
}

#[derive(Deserialize)]
pub struct ResendForm {
    from_offset: String,
}

pub async fn resend(
    State(web): State<Web>,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(f): Form<ResendForm>,
) -> Response {
    let outcome = match f.from_offset.trim().parse::<i64>() {
        Ok(from_offset) => {
            let r = Resend {
                from_offset,
                limit: None,
            };
            admin::resend(&web, &viewer.caller, &name, &r)
                .await
                .map(|r| format!("Resent {}, skipped {}", r.resent, r.skipped))
                .map_err(|e| e.message)
        }
        Err(_) => Err(format!("{:?} is not an offset", f.from_offset)),
    };
    back(&viewer, &format!("/console/groups/{}", url_encode(&name)), outcome)
}
