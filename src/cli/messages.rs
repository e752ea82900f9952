//! `strata message …`: finding messages by id, key or time range.

use clap::Subcommand;
use serde_json::{Value, json};
use strata_proto::admin as api;

use super::output::{self, Format, Output, Rows, print_json};
use super::target::{Target, admin_client};
use super::topics::type_name;
use crate::server::BoxError;

#[derive(Subcommand, Debug)]
pub enum MessageAction {
    /// A message by id: properties, body preview, queue and offset, store time, and where it
    /// stands for each consumer group.
    Get {
        id: String,
        /// Its topic: needed to find a message older than the index window (`ingest.index_window`).
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// What happened to a message, in order: sent, stored, delivered, retried, acked,
    /// invisible time changed, dead-lettered, committed, rolled back, timer fired, recalled.
    Trace {
        id: String,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Messages of a topic with a key, or every message, stored within a time range.
    Find {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        key: Option<String>,
        /// Start: RFC 3339 or a time ago ("2h"). Default: 1h.
        #[arg(long, default_value = "1h")]
        from: String,
        /// End: RFC 3339 or a time ago. Default: now.
        #[arg(long, default_value = "0s")]
        to: String,
        /// At most this many (1..=1000).
        #[arg(long, default_value_t = 32)]
        limit: u32,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
}

/// Trace events as a timeline: time, time since the first event, what happened, and where.
fn timeline(events: &[Value]) -> Rows {
    let first = events.first().and_then(|e| e["time_ms"].as_i64()).unwrap_or(0);
    let mut rows = Rows::new(&["time", "after", "event", "details"]);
    for e in events {
        let at = e["time_ms"].as_i64().unwrap_or(0);
        let details: Vec<String> = [
            "group",
            "client",
            "host",
            "attempt",
            "queue",
            "offset",
            "object",
            "latency_ms",
            "invisible_ms",
            "node",
        ]
        .iter()
        .filter_map(|k| match &e[*k] {
            Value::Null => None,
            Value::String(s) => Some(format!("{k}={s}")),
            v => Some(format!("{k}={v}")),
        })
        .collect();
        rows.push(vec![
            output::time_ms(at),
            format!("+{}", output::duration(at - first)).into(),
            e["event"].clone(),
            details.join(" ").into(),
        ]);
    }
    rows
}

/// The body preview as text when it is UTF-8, else as hex.
fn preview(m: &api::MessageView) -> String {
    let shown = match std::str::from_utf8(&m.body_preview) {
        Ok(text) => text.to_string(),
        Err(_) => format!("0x{}", hex::encode(&m.body_preview)),
    };
    if (m.body_size as usize) > m.body_preview.len() {
        format!("{shown}… ({} bytes)", m.body_size)
    } else {
        shown
    }
}

pub fn message_json(m: &api::MessageView) -> Value {
    let properties: serde_json::Map<String, Value> = m
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    json!({
        "message_id": m.message_id,
        "topic": m.topic,
        "queue": m.queue,
        "offset": m.offset,
        "type": type_name(m.message_type),
        "store_time": output::time(m.store_ms),
        "born_time": output::time(m.born_ms),
        "born_host": m.born_host,
        "delivery_time": output::time(m.delivery_ms),
        "tag": m.tag,
        "keys": m.keys,
        "message_group": m.message_group,
        "properties": properties,
        "body_size": m.body_size,
        "body": preview(m),
        "deliveries": m.deliveries.iter().map(|d| json!({"group": d.group, "state": d.state})).collect::<Vec<_>>(),
    })
}

pub async fn run(action: MessageAction) -> Result<(), BoxError> {
    match action {
        MessageAction::Get { id, topic, out, target } => {
            let request = api::GetMessageRequest {
                namespace: target.namespace.clone(),
                message_id: id,
                topic: topic.unwrap_or_default(),
            };
            let got = admin_client(&target).await?.get_message(request).await?.into_inner();
            let m = got.message.unwrap_or_default();
            match out.output {
                Format::Json => print_json(&message_json(&m)),
                Format::Table => {
                    let j = message_json(&m);
                    for key in [
                        "message_id",
                        "topic",
                        "queue",
                        "offset",
                        "type",
                        "store_time",
                        "born_time",
                        "born_host",
                        "delivery_time",
                        "tag",
                        "keys",
                        "message_group",
                        "body_size",
                        "body",
                    ] {
                        let value = match &j[key] {
                            Value::String(s) if s.is_empty() => "-".to_string(),
                            Value::String(s) => s.clone(),
                            Value::Null => "-".to_string(),
                            Value::Array(a) if a.is_empty() => "-".to_string(),
                            Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                            other => other.to_string(),
                        };
                        println!("{:<14} {value}", key.replace('_', " "));
                    }
                    let mut properties: Vec<_> = m.properties.iter().collect();
                    properties.sort();
                    for (k, v) in properties {
                        println!("{:<14} {k}={v}", "property");
                    }
                    println!();
                    let mut rows = Rows::new(&["group", "state"]);
                    for d in &m.deliveries {
                        rows.push(vec![d.group.clone().into(), d.state.clone().into()]);
                    }
                    print!("{}", rows.table());
                }
            }
        }
        MessageAction::Trace { id, out, target } => {
            let request = api::TraceMessageRequest {
                namespace: target.namespace.clone(),
                message_id: id,
            };
            let traced = admin_client(&target).await?.trace_message(request).await?.into_inner();
            let events: Vec<Value> = traced
                .events
                .iter()
                .filter_map(|e| serde_json::from_str(e).ok())
                .collect();
            match out.output {
                Format::Json => print_json(&Value::Array(events)),
                Format::Table => print!("{}", timeline(&events).table()),
            }
            if traced.cut_short {
                eprintln!("the search stopped at its limit: some events may be missing");
            }
        }
        MessageAction::Find {
            topic,
            key,
            from,
            to,
            limit,
            out,
            target,
        } => {
            let request = api::FindMessagesRequest {
                namespace: target.namespace.clone(),
                topic,
                key: key.unwrap_or_default(),
                from_ms: super::instant(&from)?,
                to_ms: super::instant(&to)?,
                limit,
            };
            let found = admin_client(&target).await?.find_messages(request).await?.into_inner();
            match out.output {
                Format::Json => print_json(&json!({
                    "messages": found.messages.iter().map(message_json).collect::<Vec<_>>(),
                    "cut_short": found.cut_short,
                })),
                Format::Table => {
                    let mut rows = Rows::new(&["message_id", "queue", "offset", "store_time", "tag", "keys", "body"]);
                    for m in &found.messages {
                        rows.push(vec![
                            m.message_id.clone().into(),
                            m.queue.into(),
                            m.offset.into(),
                            output::time(m.store_ms),
                            m.tag.clone().into(),
                            m.keys.join(",").into(),
                            preview(m).chars().take(40).collect::<String>().into(),
                        ]);
                    }
                    print!("{}", rows.table());
                    if found.cut_short {
                        eprintln!(
                            "the search stopped at its limit of messages read: narrow --from/--to to see the rest"
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
