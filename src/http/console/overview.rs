//! The overview (counts, throughput and lag over time) and the nodes page.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::Viewer;
use super::chart::{TimeAxis, line_chart};
use super::layout::{self, Page, link};
use crate::http::Web;
use crate::http::api::admin;

pub async fn page(State(web): State<Web>, viewer: Viewer) -> Response {
    let caller = &viewer.caller;
    let (topics, groups) = match (admin::topics(&web, caller).await, admin::groups(&web, caller).await) {
        (Ok(t), Ok(g)) => (t, g),
        (Err(e), _) | (_, Err(e)) => return layout::failed(&viewer, Page::Overview, "Overview", &e),
    };
    // The broker's own topics (retry, dead letters, trace) are not counted.
    let own = |name: &str| name.starts_with('%') || name == crate::trace::TRACE_TOPIC;
    let topic_count = topics.iter().filter(|t| !own(&t.name)).count();
    // Operator-only reads: left out for tenants' users.
    let tenants = admin::tenants(&web, caller).await.ok();
    let nodes = admin::nodes(&web, caller).await.ok();
    web.history.watch(&caller.namespace).await;
    let (throughput, lag) = web.history.namespace_series(&caller.namespace);
    let body = html! {
        h1 { "Overview" }
        div.cards {
            @if let Some(t) = &tenants { div.card { b { (t.len()) } "tenants" } }
            div.card { b data-testid="topic-count" { (topic_count) } "topics" }
            div.card { b data-testid="group-count" { (groups.len()) } "groups" }
            @if let Some(n) = &nodes {
                div.card { b { (n.iter().filter(|n| n.state == "alive").count()) } "nodes alive" }
            }
        }
        div.charts {
            (line_chart("Throughput", "messages/s", &throughput, TimeAxis::Clock, None))
            (line_chart("Lag", "messages", &lag, TimeAxis::Clock, None))
        }
        @if let Some(tenants) = &tenants {
            h2 { "Tenants" }
            table {
                tr { th { "Namespace" } th { "Reserved TPS" } th { "Burst TPS" } th { "Created" } }
                tr { td { a href="/console" { "(default)" } } td {} td {} td {} }
                @for t in tenants {
                    tr {
                        td { a href={ "/console?ns=" (super::url_encode(&t.name)) } { (t.name) } }
                        td.n { (t.reserved_tps) } td.n { (t.burst_tps) } td { (layout::time(t.created_ms)) }
                    }
                }
            }
        }
        p { "Charts are sampled every few seconds while this namespace is viewed; see "
            a href=(link(&viewer, "/console/topics")) { "topics" } " and "
            a href=(link(&viewer, "/console/groups")) { "groups" } " for details." }
    };
    layout::page(&viewer, Page::Overview, "Overview", body)
}

pub async fn nodes(State(web): State<Web>, viewer: Viewer) -> Response {
    let nodes = match admin::nodes(&web, &viewer.caller).await {
        Ok(n) => n,
        Err(e) => return layout::failed(&viewer, Page::Nodes, "Nodes", &e),
    };
    let body = html! {
        h1 { "Nodes" }
        table data-testid="nodes" {
            tr { th { "Node" } th { "Roles" } th { "Address" } th { "State" } th { "Epoch" } th { "Last heartbeat" } }
            @for n in &nodes {
                tr {
                    td { (n.id) } td { (n.roles.join(", ")) } td { (n.advertise) }
                    td { (n.state) } td.n { (n.epoch) } td { (layout::time(n.heartbeat_ms)) }
                }
            }
        }
    };
    layout::page(&viewer, Page::Nodes, "Nodes", body)
}
