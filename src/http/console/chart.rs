//! Line charts as inline SVG, drawn on the server: the console needs no JavaScript. (A plotting
//! crate would need a font stack to lay out its labels; these charts place text by hand and
//! let the browser draw it.)

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for the axes' labels: left, right, top, bottom.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 28.0;
const COLORS: [&str; 6] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

/// One line: its name and its points (time in Unix ms, value).
pub struct Series {
    pub name: String,
    pub points: Vec<(i64, f64)>,
}

/// How the x axis labels times.
#[derive(Clone, Copy)]
pub enum TimeAxis {
    /// `HH:MM:SS` (UTC): minutes to an hour.
    Clock,
    /// `MM-DD HH:00` (UTC): hours to days.
    Hours,
}

fn label(t_ms: i64, axis: TimeAxis) -> String {
    let text =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(t_ms.max(0) as u64))
            .to_string();
    // 2026-12-03T13:45:10Z
    match axis {
        TimeAxis::Clock => text.get(11..19).unwrap_or_default().to_string(),
        TimeAxis::Hours => format!(
            "{} {}:00",
            text.get(5..10).unwrap_or_default(),
            text.get(11..13).unwrap_or_default()
        ),
    }
}

/// A value as a short label: 1.5k, 2.3M.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A "nice" upper bound for the y axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= max)
        .unwrap_or(10.0 * magnitude)
}

/// A titled line chart of `series` over time (over `span` when given, else over the points'
/// times); "no data yet" without points.
pub fn line_chart(title: &str, unit: &str, series: &[Series], axis: TimeAxis, span: Option<(i64, i64)>) -> Markup {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut t0, mut t1, mut max) = (i64::MAX, i64::MIN, 0f64);
    for &(t, v) in points {
        t0 = t0.min(t);
        t1 = t1.max(t);
        if v.is_finite() {
            max = max.max(v);
        }
    }
    let empty = t0 > t1;
    if let Some((from, to)) = span.filter(|(from, to)| from < to) {
        (t0, t1) = (from, to);
    }
    if empty {
        return html! {
            figure.chart { figcaption { (title) } p.empty { "No data yet: samples appear as they are taken." } }
        };
    }
    let width = (t1 - t0).max(1) as f64;
    let ceiling = nice_ceiling(max);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |t: i64| LEFT + (t.clamp(t0, t1) - t0) as f64 / width * plot_w;
    let y = |v: f64| TOP + plot_h - (v.clamp(0.0, ceiling) / ceiling) * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">"#
    );
    for i in 0..=4 {
        let v = ceiling * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#6b7280">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            compact(v),
            y = y(v)
        );
    }
    let ticks = if t1 > t0 { 4 } else { 0 };
    for i in 0..=ticks {
        let t = t0 + ((t1 - t0) as f64 * f64::from(i) / 4.0) as i64;
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="{anchor}" font-size="11" fill="#6b7280">{}</text>"##,
            x(t),
            HEIGHT - 8.0,
            label(t, axis)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        if path.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle r="3" fill="{color}" cx="{}" cy="{}"/>"#,
                x(s.points[0].0),
                y(s.points[0].1)
            );
        }
    }
    svg.push_str("</svg>");
    html! {
        figure.chart {
            figcaption { (title) " " span.unit { "(" (unit) ")" } }
            (PreEscaped(svg))
            div.legend {
                @for (i, s) in series.iter().enumerate() {
                    span { span.swatch style={ "background:" (COLORS[i % COLORS.len()]) } {} (s.name) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(1234.0), 2000.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(2_300_000.0), "2.3M");
        assert_eq!(compact(0.25), "0.25");
    }

    #[test]
    fn a_chart_draws_each_series_and_escapes_names() {
        let series = [
            Series {
                name: "<sent>".into(),
                points: vec![(1_796_300_000_000, 1.0), (1_796_300_060_000, 4.0)],
            },
            Series {
                name: "lag".into(),
                points: vec![(1_796_300_030_000, f64::INFINITY)],
            },
        ];
        let out = line_chart("Throughput", "msg/s", &series, TimeAxis::Clock, None).into_string();
        assert_eq!(out.matches("<polyline").count(), 2);
        assert!(out.contains("&lt;sent&gt;"), "names are escaped");
        assert!(out.contains("12:13:20"), "times are labelled: {out}");
        let empty = line_chart("Lag", "messages", &[], TimeAxis::Hours, Some((0, 1))).into_string();
        assert!(empty.contains("No data yet"));
    }
}
