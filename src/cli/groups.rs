//! `strata group …`: create, change, delete and list consumer groups; their progress and lag;
//! resetting their offsets; resending their dead letters.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use strata_proto::admin::{self as api, reset_offset_request::Position};

use super::output::{self, Output, Rows, print_json, progress};
use super::target::{AdminClient, Target, admin_client};
use crate::server::BoxError;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StartPosition {
    /// The first retained message.
    Earliest,
    /// Messages sent from the first receive on.
    Latest,
}

impl StartPosition {
    fn proto(position: Option<Self>) -> api::StartFrom {
        match position {
            None => api::StartFrom::StartDefault,
            Some(StartPosition::Earliest) => api::StartFrom::StartEarliest,
            Some(StartPosition::Latest) => api::StartFrom::StartLatest,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum GroupAction {
    Create {
        name: String,
        /// Ordered consumption per message group (on FIFO topics).
        #[arg(long)]
        fifo: bool,
        #[arg(long, default_value_t = strata_meta::model::DEFAULT_MAX_ATTEMPTS)]
        max_attempts: i32,
        /// Every live client receives every message, each with progress of its own.
        #[arg(long)]
        broadcast: bool,
        /// Where a new group's (broadcast: a new client's) progress starts; default earliest,
        /// latest for broadcast groups.
        #[arg(long, value_enum)]
        from: Option<StartPosition>,
        /// How long a failed message waits before its next attempt: `levels` (Apache's delay
        /// levels 1s 5s 10s 30s 1m … 2h, the default), `exponential:INITIAL,MAX,MULTIPLIER`
        /// (e.g. `exponential:1s,5m,2`) or `customized:D1,D2,…` (the last repeating).
        #[arg(long)]
        retry_policy: Option<String>,
        /// When the group's own consumers take the messages of a grayscale lane (consumers
        /// named NAME%LANE, messages with the user property x-lane) no consumer received from
        /// for this long: a duration (`30s`, the default; `500ms`) or `wait` (never).
        #[arg(long)]
        lane_fallback: Option<String>,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Changes a group's order, max attempts, retry policy, start position or lane fallback.
    Update {
        name: String,
        #[arg(long)]
        fifo: Option<bool>,
        #[arg(long)]
        max_attempts: Option<i32>,
        #[arg(long)]
        retry_policy: Option<String>,
        #[arg(long, value_enum)]
        from: Option<StartPosition>,
        /// `30s`, `500ms`, … or `wait` (see `group create --help`).
        #[arg(long)]
        lane_fallback: Option<String>,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Deletes a group with its progress on every topic and its retry topic.
    Delete {
        name: String,
        /// Its dead-letter topic (%DLQ%NAME) too.
        #[arg(long)]
        with_dead_letters: bool,
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
    /// A group's progress per topic and queue: offsets, cursor, in flight, committed, lag.
    #[command(visible_alias = "lag")]
    Progress {
        name: String,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Moves a group's progress: messages from the new position on are delivered again,
    /// those before it skipped.
    Reset {
        name: String,
        /// The topic; default: every topic the group has progress on.
        #[arg(long)]
        topic: Option<String>,
        /// Only this queue (with --topic).
        #[arg(long, requires = "topic")]
        queue: Option<i32>,
        /// The first message stored at or after this time: RFC 3339 or a time ago ("2h").
        #[arg(long, conflicts_with = "to_offset", required_unless_present = "to_offset")]
        to_time: Option<String>,
        /// This offset (clamped to each queue's retained messages).
        #[arg(long)]
        to_offset: Option<i64>,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
    /// Delivers a group's dead-lettered messages to that group again (other groups do not
    /// receive them). The messages stay in the dead-letter topic.
    ResendDlq {
        name: String,
        /// Start at this offset of the dead-letter topic (default: its first message).
        #[arg(long, default_value_t = 0)]
        from_offset: i64,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        target: Target,
    },
}

/// A group as the CLI shows it.
pub fn group_json(g: &api::Group) -> Value {
    json!({
        "namespace": g.namespace,
        "name": g.name,
        "order": if g.fifo { "fifo" } else { "concurrent" },
        "model": if g.broadcast { "broadcast" } else { "clustering" },
        "from": if g.start == api::StartFrom::StartLatest as i32 { "latest" } else { "earliest" },
        "max_attempts": g.max_attempts,
        "retry_policy": g.retry_policy,
        "lane_fallback": g.lane_fallback,
    })
}

fn group_rows(groups: &[api::Group]) -> Rows {
    let columns = [
        "namespace",
        "name",
        "order",
        "model",
        "from",
        "max_attempts",
        "retry_policy",
        "lane_fallback",
    ];
    let mut rows = Rows::new(&columns);
    for g in groups {
        let j = group_json(g);
        rows.push(columns.iter().map(|c| j[*c].clone()).collect());
    }
    rows
}

pub async fn run(action: GroupAction) -> Result<(), BoxError> {
    match action {
        GroupAction::Create {
            name,
            fifo,
            max_attempts,
            broadcast,
            from,
            retry_policy,
            lane_fallback,
            out,
            target,
        } => {
            let group = api::Group {
                namespace: target.namespace.clone(),
                name,
                fifo,
                max_attempts,
                broadcast,
                start: StartPosition::proto(from) as i32,
                retry_policy: retry_policy.unwrap_or_default(),
                created_ms: 0,
                lane_fallback: lane_fallback.unwrap_or_default(),
            };
            let created = admin_client(&target)
                .await?
                .create_group(api::CreateGroupRequest { group: Some(group) })
                .await?
                .into_inner();
            group_rows(created.group.as_slice()).print(out.output);
        }
        GroupAction::Update {
            name,
            fifo,
            max_attempts,
            retry_policy,
            from,
            lane_fallback,
            out,
            target,
        } => {
            let request = api::UpdateGroupRequest {
                namespace: target.namespace.clone(),
                name,
                fifo,
                max_attempts,
                retry_policy,
                start: from.map(|f| StartPosition::proto(Some(f)) as i32),
                lane_fallback,
            };
            let updated = admin_client(&target).await?.update_group(request).await?.into_inner();
            group_rows(updated.group.as_slice()).print(out.output);
        }
        GroupAction::Delete {
            name,
            with_dead_letters,
            yes,
            target,
        } => {
            if !yes {
                return Err(super::usage(format!(
                    "deleting group {name:?} deletes its progress for good: add --yes"
                )));
            }
            let request = api::DeleteGroupRequest {
                namespace: target.namespace.clone(),
                name: name.clone(),
                dead_letters: with_dead_letters,
            };
            admin_client(&target).await?.delete_group(request).await?;
            println!("deleted group {name}");
        }
        GroupAction::List { out, target } => {
            let request = api::ListGroupsRequest {
                namespace: target.namespace.clone(),
            };
            let list = admin_client(&target).await?.list_groups(request).await?.into_inner();
            group_rows(&list.groups).print(out.output);
        }
        GroupAction::Progress { name, out, target } => {
            let progress = group_progress(&mut admin_client(&target).await?, &target.namespace, &name).await?;
            print_progress(&progress, out.output);
        }
        GroupAction::Reset {
            name,
            topic,
            queue,
            to_time,
            to_offset,
            out,
            target,
        } => {
            let position = match (to_time, to_offset) {
                (Some(t), _) => Position::TimestampMs(super::instant(&t)?),
                (None, Some(o)) => Position::Offset(o),
                (None, None) => return Err(super::usage("name --to-time or --to-offset")),
            };
            reset(&target, &name, topic, queue, position, out).await?;
        }
        GroupAction::ResendDlq {
            name,
            from_offset,
            out,
            target,
        } => resend(&target, &name, from_offset, out).await?,
    }
    Ok(())
}

async fn group_progress(
    admin: &mut AdminClient,
    namespace: &str,
    name: &str,
) -> Result<api::GroupProgressResponse, BoxError> {
    let request = api::GroupProgressRequest {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    Ok(admin.group_progress(request).await?.into_inner())
}

fn print_progress(p: &api::GroupProgressResponse, format: output::Format) {
    let columns = [
        "topic",
        "queue",
        "min_offset",
        "max_offset",
        "cursor",
        "in_flight",
        "committed",
        "lag",
    ];
    let mut rows = Rows::new(&columns);
    for q in &p.queues {
        rows.push(vec![
            q.topic.clone().into(),
            q.queue.into(),
            q.min_offset.into(),
            q.max_offset.into(),
            q.cursor.into(),
            q.in_flight.into(),
            q.committed.into(),
            q.lag.into(),
        ]);
    }
    let lag: i64 = p.queues.iter().map(|q| q.lag).sum();
    let mut lanes = Rows::new(&["topic", "lane", "last_seen_ms", "taken_over"]);
    for l in &p.lanes {
        lanes.push(vec![
            l.topic.clone().into(),
            l.name.clone().into(),
            l.last_seen_ms.into(),
            l.taken_over.into(),
        ]);
    }
    match format {
        output::Format::Json => {
            let mut j = p.group.as_ref().map(group_json).unwrap_or_else(|| json!({}));
            j["lag"] = lag.into();
            j["queues"] = rows.json();
            j["lanes"] = lanes.json();
            print_json(&j);
        }
        output::Format::Table => {
            if let Some(g) = &p.group {
                println!("group {}  lag {lag}", g.name);
                println!();
            }
            print!("{}", rows.table());
            if !p.lanes.is_empty() {
                println!();
                print!("{}", lanes.table());
            }
        }
    }
}

async fn reset(
    target: &Target,
    group: &str,
    topic: Option<String>,
    queue: Option<i32>,
    position: Position,
    out: Output,
) -> Result<(), BoxError> {
    let mut admin = admin_client(target).await?;
    let topics = match topic {
        Some(t) => vec![t],
        None => {
            let mut topics: Vec<String> = group_progress(&mut admin, &target.namespace, group)
                .await?
                .queues
                .into_iter()
                .map(|q| q.topic)
                .collect();
            topics.dedup();
            topics
        }
    };
    let bar = progress(topics.len() as u64, "resetting");
    let mut rows = Rows::new(&["topic", "queue", "offset"]);
    for topic in topics {
        let request = api::ResetOffsetRequest {
            namespace: target.namespace.clone(),
            group: group.to_string(),
            topic: topic.clone(),
            position: Some(position),
            queue,
        };
        for q in admin.reset_offset(request).await?.into_inner().queues {
            rows.push(vec![topic.clone().into(), q.queue.into(), q.offset.into()]);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    rows.print(out.output);
    Ok(())
}

async fn resend(target: &Target, group: &str, from_offset: i64, out: Output) -> Result<(), BoxError> {
    let mut admin = admin_client(target).await?;
    let (mut resent, mut skipped, mut at) = (0u64, 0u64, from_offset);
    let mut bar = None;
    loop {
        let request = api::ResendDeadLettersRequest {
            namespace: target.namespace.clone(),
            group: group.to_string(),
            from_offset: at,
            limit: 0,
        };
        let r = admin.resend_dead_letters(request).await?.into_inner();
        let passed = r.resent + r.skipped;
        // The first answer says where the run starts (past retention, perhaps) and ends.
        let start = r.next_offset - i64::from(passed);
        bar.get_or_insert_with(|| progress((r.end_offset - start).max(0) as u64, "resending"))
            .inc(u64::from(passed));
        resent += u64::from(r.resent);
        skipped += u64::from(r.skipped);
        let done = r.next_offset >= r.end_offset || r.next_offset <= at;
        at = r.next_offset;
        if done {
            break;
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match out.output {
        output::Format::Json => {
            print_json(&json!({"group": group, "resent": resent, "skipped": skipped, "next_offset": at}))
        }
        output::Format::Table => println!(
            "resent {resent} dead-lettered messages of {group} to it ({skipped} skipped: past retention, \
             in flight, or ahead of its progress); next offset {at}"
        ),
    }
    Ok(())
}
