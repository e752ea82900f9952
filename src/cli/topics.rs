//! `strata topic …`: create, change, delete, list and describe topics.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use strata_proto::admin as api;
use strata_proto::v2;

use super::output::{self, Output, Rows, print_json};
use super::target::{Target, admin_client};
use crate::server::BoxError;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TopicType {
    Normal,
    Fifo,
    Delay,
    Transaction,
    /// Higher `priority` delivered first (0 the lowest; priority p uses queue min(p, queues - 1)).
    Priority,
    /// A parent of lite topics: each message names one (`lite_topic`), an ordered queue of its
    /// own created on first send, consumed by the clients that subscribe to it.
    Lite,
}

impl TopicType {
    fn proto(self) -> i32 {
        (match self {
            TopicType::Normal => v2::MessageType::Normal,
            TopicType::Fifo => v2::MessageType::Fifo,
            TopicType::Delay => v2::MessageType::Delay,
            TopicType::Transaction => v2::MessageType::Transaction,
            TopicType::Priority => v2::MessageType::Priority,
            TopicType::Lite => v2::MessageType::Lite,
        }) as i32
    }
}

/// A message type's name (`NORMAL`, `FIFO`, …) from its number.
pub fn type_name(n: i32) -> String {
    v2::MessageType::try_from(n).map_or_else(|_| n.to_string(), |m| m.as_str_name().to_string())
}

fn millis(d: Option<humantime::Duration>) -> Option<i64> {
    d.map(|d| d.as_millis() as i64)
}

#[derive(Subcommand, Debug)]
pub enum TopicAction {
    Create {
        name: String,
        #[arg(long = "type", value_enum, default_value = "normal")]
        kind: TopicType,
        #[arg(long, default_value_t = 8)]
        queues: i32,
        /// How long messages stay readable ("72h", "7days"; 1 minute to 3650 days). Default 72h.
        #[arg(long)]
        retention: Option<humantime::Duration>,
        /// LITE topics: delete a lite topic with no new message for this long ("30m", "12h"),
        /// unless a subscribed group has not consumed it (then after the topic's retention).
        /// Default: never.
        #[arg(long)]
        lite_ttl: Option<humantime::Duration>,
        /// Do not record its messages' lifecycle in the trace topic (`strata message trace`).
        #[arg(long)]
        no_trace: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Changes a topic: message type (producers of the old type are refused from then on),
    /// queue count (only more), retention, lite TTL ("0s": never), message trace.
    Update {
        name: String,
        #[arg(long = "type", value_enum)]
        kind: Option<TopicType>,
        #[arg(long)]
        queues: Option<i32>,
        #[arg(long)]
        retention: Option<humantime::Duration>,
        #[arg(long)]
        lite_ttl: Option<humantime::Duration>,
        /// Record its messages' lifecycle in the trace topic (true or false).
        #[arg(long)]
        trace: Option<bool>,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Deletes a topic with its messages, timers, half messages and every group's progress on
    /// it (a LITE topic with its lite topics). Its objects are garbage-collected.
    Delete {
        name: String,
        /// Confirms the deletion (required: it cannot be undone).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        target: Target,
    },
    List {
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// A topic's attributes and what each queue holds: offsets, batches, bytes, objects,
    /// oldest and newest message.
    Describe {
        name: String,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
}

/// A topic as the CLI shows it.
pub fn topic_json(t: &api::Topic) -> Value {
    json!({
        "namespace": t.namespace,
        "name": t.name,
        "type": type_name(t.message_type),
        "queues": t.queue_count,
        "retention": output::duration(t.retention_ms),
        "lite_ttl": if t.lite_ttl_ms == 0 { Value::Null } else { output::duration(t.lite_ttl_ms).into() },
        "trace": !t.trace_off,
    })
}

fn topic_rows(topics: &[api::Topic]) -> Rows {
    let columns = ["namespace", "name", "type", "queues", "retention", "lite_ttl", "trace"];
    let mut rows = Rows::new(&columns);
    for t in topics {
        let j = topic_json(t);
        rows.push(columns.iter().map(|c| j[*c].clone()).collect());
    }
    rows
}

pub async fn run(action: TopicAction) -> Result<(), BoxError> {
    match action {
        TopicAction::Create {
            name,
            kind,
            queues,
            retention,
            lite_ttl,
            no_trace,
            out,
            target,
        } => {
            let topic = api::Topic {
                namespace: target.namespace.clone(),
                name,
                message_type: kind.proto(),
                queue_count: queues,
                lite_ttl_ms: millis(lite_ttl).unwrap_or(0),
                retention_ms: millis(retention).unwrap_or(0),
                created_ms: 0,
                trace_off: no_trace,
            };
            let created = admin_client(&target)
                .await?
                .create_topic(api::CreateTopicRequest { topic: Some(topic) })
                .await?
                .into_inner();
            topic_rows(created.topic.as_slice()).print(out.output);
        }
        TopicAction::Update {
            name,
            kind,
            queues,
            retention,
            lite_ttl,
            trace,
            out,
            target,
        } => {
            let request = api::UpdateTopicRequest {
                namespace: target.namespace.clone(),
                name,
                message_type: kind.map(TopicType::proto),
                queue_count: queues,
                retention_ms: millis(retention),
                lite_ttl_ms: millis(lite_ttl),
                trace,
            };
            let updated = admin_client(&target).await?.update_topic(request).await?.into_inner();
            topic_rows(updated.topic.as_slice()).print(out.output);
        }
        TopicAction::Delete { name, yes, target } => {
            if !yes {
                return Err(super::usage(format!(
                    "deleting topic {name:?} deletes its messages for good: add --yes"
                )));
            }
            let request = api::DeleteTopicRequest {
                namespace: target.namespace.clone(),
                name: name.clone(),
            };
            admin_client(&target).await?.delete_topic(request).await?;
            println!("deleted topic {name}");
        }
        TopicAction::List { out, target } => {
            let request = api::ListTopicsRequest {
                namespace: target.namespace.clone(),
            };
            let list = admin_client(&target).await?.list_topics(request).await?.into_inner();
            topic_rows(&list.topics).print(out.output);
        }
        TopicAction::Describe { name, out, target } => {
            let request = api::DescribeTopicRequest {
                namespace: target.namespace.clone(),
                name,
            };
            let described = admin_client(&target).await?.describe_topic(request).await?.into_inner();
            describe(&described, out.output);
        }
    }
    Ok(())
}

fn describe(d: &api::DescribeTopicResponse, format: output::Format) {
    let topic = d.topic.clone().unwrap_or_default();
    let columns = [
        "queue",
        "min_offset",
        "max_offset",
        "messages",
        "batches",
        "bytes",
        "objects",
        "oldest",
        "newest",
    ];
    let mut rows = Rows::new(&columns);
    for q in &d.queues {
        rows.push(vec![
            q.queue.into(),
            q.min_offset.into(),
            q.max_offset.into(),
            (q.max_offset - q.min_offset).into(),
            q.batches.into(),
            q.bytes.into(),
            q.objects.into(),
            output::time(q.oldest_ms),
            output::time(q.newest_ms),
        ]);
    }
    match format {
        output::Format::Json => {
            let mut j = topic_json(&topic);
            j["created"] = output::time(topic.created_ms);
            j["queue_stats"] = rows.json();
            print_json(&j);
        }
        output::Format::Table => {
            let total: i64 = d.queues.iter().map(|q| q.max_offset - q.min_offset).sum();
            let bytes: i64 = d.queues.iter().map(|q| q.bytes).sum();
            let oldest = d
                .queues
                .iter()
                .map(|q| q.oldest_ms)
                .filter(|&t| t > 0)
                .min()
                .unwrap_or(0);
            println!("topic      {}", topic.name);
            println!(
                "namespace  {}",
                if topic.namespace.is_empty() {
                    "-"
                } else {
                    &topic.namespace
                }
            );
            println!("type       {}", type_name(topic.message_type));
            println!("queues     {}", topic.queue_count);
            println!("retention  {}", output::duration(topic.retention_ms));
            if topic.lite_ttl_ms != 0 {
                println!("lite ttl   {}", output::duration(topic.lite_ttl_ms));
            }
            println!("created    {}", output::time(topic.created_ms).as_str().unwrap_or("-"));
            println!("messages   {total} retained, {}", output::bytes(bytes));
            println!("oldest     {}", output::time(oldest).as_str().unwrap_or("-"));
            println!();
            print!("{}", rows.table());
        }
    }
}
