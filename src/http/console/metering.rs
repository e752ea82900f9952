//! Metering per tenant and hour: a chart of messages in and out, the table, and a CSV download.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::chart::{Series, TimeAxis, line_chart};
use super::layout::{self, Page, link, utc_ms};
use super::{Viewer, url_encode};
use crate::http::Web;
use crate::http::api::admin::{self, MeteringQuery, MeteringRow};

/// The range shown when none is asked for.
const DEFAULT_HOURS: i64 = 24;
const HOUR_MS: i64 = 3_600_000;

#[derive(Default, Deserialize)]
pub struct Range {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    all: Option<String>,
}

impl Range {
    fn query(&self, now_ms: i64) -> MeteringQuery {
        MeteringQuery {
            from_ms: utc_ms(&self.from).unwrap_or(now_ms - DEFAULT_HOURS * HOUR_MS),
            to_ms: utc_ms(&self.to).unwrap_or(now_ms),
            all_tenants: self.all.is_some(),
            format: None,
        }
    }
}

/// Per metric, its hourly values summed over the tenants shown.
fn series(rows: &[MeteringRow], metrics: &[&str]) -> Vec<Series> {
    metrics
        .iter()
        .map(|metric| {
            let mut by_hour: BTreeMap<i64, f64> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.metric == *metric) {
                *by_hour.entry(r.hour_ms).or_default() += r.value;
            }
            Series {
                name: (*metric).to_string(),
                points: by_hour.into_iter().collect(),
            }
        })
        .collect()
}

pub async fn page(State(web): State<Web>, viewer: Viewer, Query(range): Query<Range>) -> Response {
    let q = range.query(web.now_ms());
    let rows = match admin::metering(&web, &viewer.caller, &q).await {
        Ok(r) => r,
        Err(e) => return layout::failed(&viewer, Page::Metering, "Metering", &e),
    };
    let mut csv = format!(
        "/console/metering.csv?from={}&to={}",
        url_encode(&range.from),
        url_encode(&range.to)
    );
    if q.all_tenants {
        csv.push_str("&all=on");
    }
    let body = html! {
        h1 { "Metering" }
        form.inline method="get" action="/console/metering" {
            @if !viewer.caller.namespace.is_empty() { input type="hidden" name="ns" value=(viewer.caller.namespace); }
            label { "From (UTC)" input name="from" type="datetime-local" value=(range.from); }
            label { "To (UTC)" input name="to" type="datetime-local" value=(range.to); }
            label { "Every tenant (operator)" input name="all" type="checkbox" checked[q.all_tenants]; }
            button type="submit" { "Show" }
            a href=(link(&viewer, &csv)) download="metering.csv" data-testid="csv" { "Download CSV" }
        }
        p { "Hours starting from " (layout::time(q.from_ms)) " to " (layout::time(q.to_ms)) " (UTC); the current hour is still counting." }
        div.charts {
            (line_chart("Messages per hour", "messages", &series(&rows, &["messages_in", "messages_out"]), TimeAxis::Hours, Some((q.from_ms, q.to_ms))))
            (line_chart("Bytes per hour", "bytes", &series(&rows, &["bytes_in", "bytes_out"]), TimeAxis::Hours, Some((q.from_ms, q.to_ms))))
        }
        @if rows.is_empty() { p.empty { "No usage recorded in this range." } }
        table data-testid="metering" {
            tr { th { "Namespace" } th { "Hour" } th { "Metric" } th { "Value" } }
            @for r in &rows {
                tr {
                    td { @if r.namespace.is_empty() { "(default)" } @else { (r.namespace) } }
                    td { (layout::time(r.hour_ms)) } td { (r.metric) } td.n { (r.value) }
                }
            }
        }
    };
    layout::page(&viewer, Page::Metering, "Metering", body)
}

pub async fn csv(State(web): State<Web>, viewer: Viewer, Query(range): Query<Range>) -> Response {
    let q = range.query(web.now_ms());
    let rows = admin::metering(&web, &viewer.caller, &q).await;
    match rows.and_then(|rows| admin::metering_csv(&rows)) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"metering.csv\""),
            ],
            body,
        )
            .into_response(),
        Err(e) => layout::failed(&viewer, Page::Metering, "Metering", &e),
    }
}
