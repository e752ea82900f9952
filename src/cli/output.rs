//! How commands print what they got: aligned tables for people, JSON for scripts, progress
//! bars (on a terminal only) for anything long.

use std::time::{Duration, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header line.
    #[default]
    Table,
    /// One JSON document (an array of objects for lists).
    Json,
}

/// `--output table|json`, for every command that prints results.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Output {
    /// How to print: aligned columns, or JSON for scripts.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Format,
}

/// Rows of named columns: a table, or a JSON array of objects keyed by column.
#[derive(Debug)]
pub struct Rows {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Column keys as JSON names them (`snake_case`); tables show them upper-cased.
    pub fn new(columns: &[&'static str]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// One row, a cell per column.
    pub fn push(&mut self, cells: Vec<Value>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    pub fn json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    Value::Object(
                        self.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.to_string(), v.clone()))
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    /// Aligned columns under a header; numbers right-aligned, missing values as `-`.
    pub fn table(&self) -> String {
        let header: Vec<String> = self
            .columns
            .iter()
            .map(|c| c.to_uppercase().replace('_', " "))
            .collect();
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(cell).collect()).collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| !self.rows.is_empty() && self.rows.iter().all(|r| r[i].is_number() || r[i].is_null()))
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                std::iter::once(&header[i])
                    .chain(cells.iter().map(|r| &r[i]))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in std::iter::once(&header).chain(&cells) {
            let mut text = String::new();
            for (i, c) in line.iter().enumerate() {
                let pad = widths[i] - c.chars().count();
                if i > 0 {
                    text.push_str("  ");
                }
                if numeric[i] {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(c);
                } else {
                    text.push_str(c);
                    if i + 1 < line.len() {
                        text.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self, format: Format) {
        match format {
            Format::Json => print_json(&self.json()),
            Format::Table => print!("{}", self.table()),
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
}

/// A time in ms since the epoch as RFC 3339 (UTC, seconds); `None` for 0.
pub fn time(ms: i64) -> Value {
    rfc3339(ms, humantime::format_rfc3339_seconds)
}

/// A time in ms since the epoch as RFC 3339 (UTC, milliseconds); `None` for 0.
pub fn time_ms(ms: i64) -> Value {
    rfc3339(ms, humantime::format_rfc3339_millis)
}

fn rfc3339(ms: i64, format: fn(std::time::SystemTime) -> humantime::Rfc3339Timestamp) -> Value {
    rfc3339_text(ms, format).map_or(Value::Null, Value::String)
}

/// The last instant RFC 3339 can write (9999-12-31T23:59:59.999Z), in Unix ms.
const LAST_RFC3339_MS: i64 = 253_402_300_799_999;

/// A time in ms since the epoch as RFC 3339; None for 0 or before. A time past the year
/// 9999 (a client may send any born time) is written as its number of ms, not a panic.
pub fn rfc3339_text(ms: i64, format: fn(std::time::SystemTime) -> humantime::Rfc3339Timestamp) -> Option<String> {
    match ms {
        ..=0 => None,
        1..=LAST_RFC3339_MS => Some(format(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()),
        _ => Some(format!("{ms} ms after 1970 (past the year 9999)")),
    }
}

/// A duration in ms as `72h`, `1m 30s`.
pub fn duration(ms: i64) -> String {
    humantime::format_duration(Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// Bytes as `1.5 MiB`.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A progress bar on stderr of `total` steps (hidden when stderr is not a terminal, so
/// scripts and JSON output see nothing of it).
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A running count on stderr for work of unknown size (hidden when stderr is not a terminal).
pub fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_json_keys_them() {
        let mut rows = Rows::new(&["name", "queues", "note"]);
        rows.push(vec![json!("orders"), json!(8), json!("")]);
        rows.push(vec![json!("a"), json!(1024), json!("fifo")]);
        assert_eq!(
            rows.table(),
            "NAME    QUEUES  NOTE\norders       8  -\na         1024  fifo\n"
        );
        assert_eq!(
            rows.json(),
            json!([{"name": "orders", "queues": 8, "note": ""}, {"name": "a", "queues": 1024, "note": "fifo"}])
        );
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(time(0), Value::Null);
        assert_eq!(time(1_700_000_000_000), json!("2023-11-14T22:13:20Z"));
        assert_eq!(time_ms(LAST_RFC3339_MS), json!("9999-12-31T23:59:59.999Z"));
        for past_9999 in [LAST_RFC3339_MS + 1, i64::MAX] {
            assert!(
                time(past_9999)
                    .as_str()
                    .is_some_and(|t| t.contains("past the year 9999")),
                "no panic"
            );
        }
        assert_eq!(duration(72 * 3_600_000), "3days");
    }
}
