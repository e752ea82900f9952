//! The console's page shell (navigation, namespace, styles) and the formatting its pages share.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::{Viewer, url_encode};
use crate::http::error::ApiError;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#d1d5db;text-decoration:none}header a.on,header a:hover{color:#fff;text-decoration:underline}
header .brand{font-weight:700;color:#fff;margin-right:.6rem}header .who{margin-left:auto;color:#9ca3af}
header form{display:inline;margin:0}header button{background:none;border:1px solid #4b5563;color:#d1d5db;border-radius:4px;cursor:pointer}
main{padding:1rem 1.2rem;max-width:1200px}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .6rem}
table{border-collapse:collapse;background:#fff;margin-bottom:1rem}th,td{border:1px solid #e5e7eb;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin-bottom:1rem}.card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.5rem}
.charts{display:flex;gap:1rem;flex-wrap:wrap}figure.chart{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin:0;padding:.6rem;width:560px;max-width:100%}
figure.chart svg{width:100%;height:auto}figcaption{font-weight:600}.unit{color:#6b7280;font-weight:400}
.legend span{margin-right:1rem}.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;border-radius:2px;vertical-align:middle}
.error{background:#fef2f2;border:1px solid #fecaca;color:#991b1b;padding:.5rem .8rem;border-radius:4px}
.note{background:#eff6ff;border:1px solid #bfdbfe;padding:.5rem .8rem;border-radius:4px}
.done{background:#f0fdf4;border:1px solid #bbf7d0;padding:.5rem .8rem;border-radius:4px}
form.inline{display:flex;gap:.5rem;align-items:end;flex-wrap:wrap;margin:.5rem 0 1rem}form label{display:flex;flex-direction:column;font-size:.85rem;color:#374151}
input,select,button{font:inherit;padding:.25rem .4rem}form.login{display:flex;flex-direction:column;gap:.6rem;max-width:22rem}
ol.timeline{list-style:none;padding:0;border-left:3px solid #2563eb;margin-left:.5rem}ol.timeline li{margin:0 0 .8rem 1rem;position:relative}
ol.timeline li::before{content:"";position:absolute;left:-1.45rem;top:.35rem;width:.7rem;height:.7rem;border-radius:50%;background:#2563eb}
ol.timeline .event{font-weight:600}ol.timeline .at{color:#6b7280;margin-left:.5rem}ol.timeline .detail{color:#374151;font-size:.85rem}
code{background:#f3f4f6;padding:0 .2rem;border-radius:3px}p.empty{color:#6b7280}
"#;

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Topics,
    Groups,
    Messages,
    Metering,
    Nodes,
}

const NAV: [(Page, &str, &str); 6] = [
    (Page::Overview, "/console", "Overview"),
    (Page::Topics, "/console/topics", "Topics"),
    (Page::Groups, "/console/groups", "Groups"),
    (Page::Messages, "/console/messages", "Messages"),
    (Page::Metering, "/console/metering", "Metering"),
    (Page::Nodes, "/console/nodes", "Nodes"),
];

/// A console link that keeps the viewer's namespace.
pub fn link(viewer: &Viewer, path: &str) -> String {
    let ns = &viewer.caller.namespace;
    if ns.is_empty() {
        return path.to_string();
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}ns={}", url_encode(ns))
}

/// A page of the console, with its navigation.
pub fn page(viewer: &Viewer, active: Page, title: &str, body: Markup) -> Response {
    let ns = &viewer.caller.namespace;
    let shown_ns = if ns.is_empty() { "(default)" } else { ns.as_str() };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · StrataMQ" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "StrataMQ" }
                    @for (p, path, name) in NAV {
                        a href=(link(viewer, path)) class=[(p == active).then_some("on")] { (name) }
                    }
                    span.who {
                        "namespace " b data-testid="namespace" { (shown_ns) } " · " (viewer.caller.principal.name())
                    }
                    @if !viewer.open {
                        form method="post" action="/console/logout" { button type="submit" { "Log out" } }
                    }
                }
                main {
                    @if viewer.open {
                        p.note { "Authentication is off on this broker: anyone who reaches this port can use the console." }
                    }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// A page without navigation (the login form).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · StrataMQ" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    };
    Html(markup.into_string())
}

/// A refusal shown in the page's frame, with the HTTP status its code implies.
pub fn failed(viewer: &Viewer, active: Page, title: &str, e: &ApiError) -> Response {
    let body = html! {
        h1 { (title) }
        p.error data-testid="error" { (e.status) " (" (e.code) "): " (e.message) }
    };
    let mut response = page(viewer, active, title, body);
    *response.status_mut() = e.http_status();
    response
}

/// A refusal or an outcome passed to the page an action redirects to.
pub fn banner(error: Option<&str>, done: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p.error data-testid="error" { (e) } }
        @if let Some(d) = done { p.done data-testid="done" { (d) } }
    }
}

/// A time (Unix ms) as `2026-12-03 13:45:10`; `-` for 0.
pub fn time(ms: i64) -> String {
    crate::cli::output::rfc3339_text(ms, humantime::format_rfc3339_seconds)
        .map_or_else(|| "-".into(), |t| t.replace('T', " ").trim_end_matches('Z').to_string())
}

/// A `datetime-local` form value (`2026-12-03T13:45`, seconds optional) read as UTC, in Unix ms.
pub fn utc_ms(local: &str) -> Option<i64> {
    let full = if local.len() == 16 {
        format!("{local}:00")
    } else {
        local.to_string()
    };
    let t = humantime::parse_rfc3339_weak(&full).ok()?;
    i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// Bytes as `1.2 MiB`.
pub fn bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// A duration in ms as `72 h`, `30 min` or `15 s`.
pub fn duration(ms: i64) -> String {
    match ms {
        ms if ms >= 3_600_000 && ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
        ms if ms >= 60_000 && ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms => format!("{} s", ms / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(time(0), "-");
        assert_eq!(time(1_796_300_000_000), "2026-12-03 12:13:20");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration(259_200_000), "72 h");
        assert_eq!(duration(90_000), "90 s");
        assert_eq!(utc_ms("2026-12-03T11:33"), Some(1_796_297_580_000));
        assert_eq!(utc_ms("2026-12-03T11:33:20"), Some(1_796_297_600_000));
        assert_eq!(utc_ms(""), None);
        assert_eq!(utc_ms("yesterday"), None);
    }
}
