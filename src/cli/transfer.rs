//! `strata export` and `strata import`: every topic and group with all their attributes, to a
//! file and back — to copy an instance's metadata to another (docs/migration.md) or keep it
//! in version control. Import is idempotent: it creates what is missing, changes what
//! differs, leaves alone what matches (and what the file does not name).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;
use strata_meta::lane::Fallback;
use strata_meta::model::MessageType;
use strata_meta::retry::RetryPolicy;
use strata_proto::admin as api;

use super::output::{Format, Output, print_json, progress};
use super::target::{AdminClient, Broker, connect};
use super::topics::type_name;
use crate::server::BoxError;

/// What the first field of an export file says it is.
const FORMAT: &str = "strata-export";
const VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// One JSON document: `{"format", "version", "topics": [...], "groups": [...]}`.
    #[default]
    Json,
    /// One row per topic or group (`kind` column), the columns of the other kind empty.
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The file to write (`-`: standard output).
    #[arg(long)]
    output: PathBuf,
    #[arg(long, value_enum, default_value = "json")]
    format: FileFormat,
    /// Only this tenant; default: the default tenant and every tenant (the operator's view).
    #[arg(long, visible_alias = "namespace")]
    tenant: Option<String>,
    #[command(flatten)]
    broker: Broker,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// An export file (JSON, or CSV when it ends in `.csv`).
    file: PathBuf,
    /// Show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    out: Output,
    #[command(flatten)]
    broker: Broker,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct TopicRecord {
    namespace: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    queues: i32,
    retention_ms: i64,
    lite_ttl_ms: i64,
    /// Record its messages' lifecycle in the trace topic.
    #[serde(default = "on")]
    trace: bool,
}

fn on() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct GroupRecord {
    namespace: String,
    name: String,
    fifo: bool,
    broadcast: bool,
    max_attempts: i32,
    /// `earliest` or `latest`.
    start: String,
    retry_policy: String,
    /// `30s`, `wait`, …; empty (files written before lanes) is the default.
    #[serde(default)]
    lane_fallback: String,
}

/// A tenant and its quota (TPS units; 0: unlimited).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct TenantRecord {
    name: String,
    reserved_tps: u32,
    burst_tps: u32,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct ExportFile {
    format: String,
    version: u32,
    /// The tenants exported (not the default tenant, which always exists).
    #[serde(default)]
    tenants: Vec<TenantRecord>,
    topics: Vec<TopicRecord>,
    groups: Vec<GroupRecord>,
}

/// A CSV row: a topic's or a group's columns, by `kind`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CsvRow {
    kind: String,
    namespace: String,
    name: String,
    #[serde(rename = "type")]
    message_type: Option<String>,
    queues: Option<i32>,
    retention_ms: Option<i64>,
    lite_ttl_ms: Option<i64>,
    trace: Option<bool>,
    fifo: Option<bool>,
    broadcast: Option<bool>,
    max_attempts: Option<i32>,
    start: Option<String>,
    retry_policy: Option<String>,
    lane_fallback: Option<String>,
    reserved_tps: Option<u32>,
    burst_tps: Option<u32>,
}

fn topic_record(t: api::Topic) -> TopicRecord {
    TopicRecord {
        namespace: t.namespace,
        name: t.name,
        kind: type_name(t.message_type),
        queues: t.queue_count,
        retention_ms: t.retention_ms,
        lite_ttl_ms: t.lite_ttl_ms,
        trace: !t.trace_off,
    }
}

fn tenant_record(t: api::Tenant) -> TenantRecord {
    TenantRecord {
        name: t.name,
        reserved_tps: t.reserved_tps,
        burst_tps: t.burst_tps,
    }
}

fn group_record(g: api::Group) -> GroupRecord {
    GroupRecord {
        namespace: g.namespace,
        name: g.name,
        fifo: g.fifo,
        broadcast: g.broadcast,
        max_attempts: g.max_attempts,
        start: if g.start == api::StartFrom::StartLatest as i32 {
            "latest"
        } else {
            "earliest"
        }
        .into(),
        retry_policy: g.retry_policy,
        lane_fallback: g.lane_fallback,
    }
}

impl ExportFile {
    fn write(&self, format: FileFormat) -> Result<Vec<u8>, BoxError> {
        match format {
            FileFormat::Json => {
                let mut text = serde_json::to_vec_pretty(self)?;
                text.push(b'\n');
                Ok(text)
            }
            FileFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                for t in &self.tenants {
                    w.serialize(CsvRow {
                        kind: "tenant".into(),
                        name: t.name.clone(),
                        reserved_tps: Some(t.reserved_tps),
                        burst_tps: Some(t.burst_tps),
                        ..Default::default()
                    })?;
                }
                for t in &self.topics {
                    w.serialize(CsvRow {
                        kind: "topic".into(),
                        namespace: t.namespace.clone(),
                        name: t.name.clone(),
                        message_type: Some(t.kind.clone()),
                        queues: Some(t.queues),
                        retention_ms: Some(t.retention_ms),
                        lite_ttl_ms: Some(t.lite_ttl_ms),
                        trace: Some(t.trace),
                        ..Default::default()
                    })?;
                }
                for g in &self.groups {
                    w.serialize(CsvRow {
                        kind: "group".into(),
                        namespace: g.namespace.clone(),
                        name: g.name.clone(),
                        fifo: Some(g.fifo),
                        broadcast: Some(g.broadcast),
                        max_attempts: Some(g.max_attempts),
                        start: Some(g.start.clone()),
                        retry_policy: Some(g.retry_policy.clone()),
                        lane_fallback: Some(g.lane_fallback.clone()),
                        ..Default::default()
                    })?;
                }
                Ok(w.into_inner().map_err(|e| e.to_string())?)
            }
        }
    }

    fn read(path: &Path, bytes: &[u8]) -> Result<Self, BoxError> {
        let shown = path.display();
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if !is_csv {
            let file: ExportFile =
                serde_json::from_slice(bytes).map_err(|e| super::usage(format!("{shown}: not an export file: {e}")))?;
            if file.format != FORMAT || file.version != VERSION {
                return Err(super::usage(format!(
                    "{shown}: format {:?} version {} (this strata reads {FORMAT:?} version {VERSION})",
                    file.format, file.version
                )));
            }
            return Ok(file);
        }
        let mut file = ExportFile {
            format: FORMAT.into(),
            version: VERSION,
            ..Default::default()
        };
        for (line, row) in csv::Reader::from_reader(bytes).deserialize::<CsvRow>().enumerate() {
            let row = row.map_err(|e| super::usage(format!("{shown}: {e}")))?;
            let missing = |what: &str| super::usage(format!("{shown} row {}: {} without {what}", line + 2, row.kind));
            match row.kind.as_str() {
                "tenant" => file.tenants.push(TenantRecord {
                    reserved_tps: row.reserved_tps.unwrap_or(0),
                    burst_tps: row.burst_tps.unwrap_or(0),
                    name: row.name,
                }),
                "topic" => file.topics.push(TopicRecord {
                    kind: row.message_type.clone().ok_or_else(|| missing("type"))?,
                    queues: row.queues.ok_or_else(|| missing("queues"))?,
                    retention_ms: row.retention_ms.ok_or_else(|| missing("retention_ms"))?,
                    lite_ttl_ms: row.lite_ttl_ms.unwrap_or(0),
                    trace: row.trace.unwrap_or(true),
                    namespace: row.namespace,
                    name: row.name,
                }),
                "group" => file.groups.push(GroupRecord {
                    fifo: row.fifo.unwrap_or(false),
                    broadcast: row.broadcast.unwrap_or(false),
                    max_attempts: row.max_attempts.ok_or_else(|| missing("max_attempts"))?,
                    start: row.start.clone().unwrap_or_else(|| "earliest".into()),
                    retry_policy: row.retry_policy.clone().unwrap_or_default(),
                    lane_fallback: row.lane_fallback.clone().unwrap_or_default(),
                    namespace: row.namespace,
                    name: row.name,
                }),
                other => {
                    return Err(super::usage(format!(
                        "{shown} row {}: kind {other:?} is not tenant, topic or group",
                        line + 2
                    )));
                }
            }
        }
        Ok(file)
    }
}

/// Every topic and group of `namespaces`, sorted.
async fn snapshot(admin: &mut AdminClient, namespaces: &BTreeSet<String>) -> Result<ExportFile, BoxError> {
    let mut file = ExportFile {
        format: FORMAT.into(),
        version: VERSION,
        ..Default::default()
    };
    for ns in namespaces {
        let topics = admin
            .list_topics(api::ListTopicsRequest { namespace: ns.clone() })
            .await?
            .into_inner()
            .topics;
        file.topics.extend(topics.into_iter().map(topic_record));
        let groups = admin
            .list_groups(api::ListGroupsRequest { namespace: ns.clone() })
            .await?
            .into_inner()
            .groups;
        file.groups.extend(groups.into_iter().map(group_record));
    }
    file.topics.sort();
    file.groups.sort();
    Ok(file)
}

pub async fn export(args: ExportArgs) -> Result<(), BoxError> {
    let mut admin = connect(&args.broker).await?;
    let tenants = match admin.list_tenants(api::ListTenantsRequest {}).await {
        Ok(list) => list.into_inner().tenants,
        // A tenant's admin exports its own tenant's topics and groups, not the tenant.
        Err(e) if e.code() == tonic::Code::PermissionDenied && args.tenant.is_some() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let namespaces: BTreeSet<String> = match &args.tenant {
        Some(t) => [t.clone()].into(),
        None => std::iter::once(String::new())
            .chain(tenants.iter().map(|t| t.name.clone()))
            .collect(),
    };
    let mut file = snapshot(&mut admin, &namespaces).await?;
    file.tenants = tenants
        .into_iter()
        .filter(|t| namespaces.contains(&t.name))
        .map(tenant_record)
        .collect();
    file.tenants.sort();
    let bytes = file.write(args.format)?;
    if args.output.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().write_all(&bytes)?;
    } else {
        std::fs::write(&args.output, bytes).map_err(|e| format!("{}: {e}", args.output.display()))?;
        eprintln!(
            "exported {} topics and {} groups of {} tenant(s) to {}",
            file.topics.len(),
            file.groups.len(),
            namespaces.len(),
            args.output.display()
        );
    }
    Ok(())
}

/// One step of an import.
#[derive(Debug)]
enum Step {
    CreateTenant(TenantRecord),
    UpdateTenant(TenantRecord, Vec<String>),
    CreateTopic(TopicRecord),
    UpdateTopic(TopicRecord, Vec<String>),
    CreateGroup(GroupRecord),
    UpdateGroup(GroupRecord, Vec<String>),
}

impl Step {
    fn describe(&self) -> serde_json::Value {
        let (action, kind, ns, name, changes) = match self {
            Step::CreateTenant(t) => ("create", "tenant", &t.name, &t.name, vec![]),
            Step::UpdateTenant(t, c) => ("update", "tenant", &t.name, &t.name, c.clone()),
            Step::CreateTopic(t) => ("create", "topic", &t.namespace, &t.name, vec![]),
            Step::UpdateTopic(t, c) => ("update", "topic", &t.namespace, &t.name, c.clone()),
            Step::CreateGroup(g) => ("create", "group", &g.namespace, &g.name, vec![]),
            Step::UpdateGroup(g, c) => ("update", "group", &g.namespace, &g.name, c.clone()),
        };
        json!({"action": action, "kind": kind, "namespace": ns, "name": name, "changes": changes})
    }

    async fn apply(self, admin: &mut AdminClient) -> Result<(), BoxError> {
        let tenant = |t: TenantRecord| {
            Some(api::Tenant {
                name: t.name,
                reserved_tps: t.reserved_tps,
                burst_tps: t.burst_tps,
                created_ms: 0,
            })
        };
        match self {
            Step::CreateTenant(t) => {
                admin
                    .create_tenant(api::CreateTenantRequest { tenant: tenant(t) })
                    .await?;
            }
            Step::UpdateTenant(t, _) => {
                admin
                    .update_tenant(api::UpdateTenantRequest { tenant: tenant(t) })
                    .await?;
            }
            Step::CreateTopic(t) => {
                let topic = api::Topic {
                    message_type: topic_type(&t)? as i32,
                    namespace: t.namespace,
                    name: t.name,
                    queue_count: t.queues,
                    lite_ttl_ms: t.lite_ttl_ms,
                    retention_ms: t.retention_ms,
                    created_ms: 0,
                    trace_off: !t.trace,
                };
                admin
                    .create_topic(api::CreateTopicRequest { topic: Some(topic) })
                    .await?;
            }
            Step::UpdateTopic(t, _) => {
                let request = api::UpdateTopicRequest {
                    message_type: Some(topic_type(&t)? as i32),
                    namespace: t.namespace,
                    name: t.name,
                    queue_count: Some(t.queues),
                    retention_ms: Some(t.retention_ms),
                    lite_ttl_ms: Some(t.lite_ttl_ms),
                    trace: Some(t.trace),
                };
                admin.update_topic(request).await?;
            }
            Step::CreateGroup(g) => {
                let group = api::Group {
                    start: start(&g)? as i32,
                    namespace: g.namespace,
                    name: g.name,
                    fifo: g.fifo,
                    max_attempts: g.max_attempts,
                    broadcast: g.broadcast,
                    retry_policy: g.retry_policy,
                    created_ms: 0,
                    lane_fallback: g.lane_fallback,
                };
                admin
                    .create_group(api::CreateGroupRequest { group: Some(group) })
                    .await?;
            }
            Step::UpdateGroup(g, _) => {
                let request = api::UpdateGroupRequest {
                    start: Some(start(&g)? as i32),
                    namespace: g.namespace,
                    name: g.name,
                    fifo: Some(g.fifo),
                    max_attempts: Some(g.max_attempts),
                    retry_policy: Some(g.retry_policy),
                    lane_fallback: Some(g.lane_fallback),
                };
                admin.update_group(request).await?;
            }
        }
        Ok(())
    }
}

fn topic_type(t: &TopicRecord) -> Result<MessageType, BoxError> {
    MessageType::parse(&t.kind)
        .ok_or_else(|| super::usage(format!("topic {}: {:?} is not a message type", t.name, t.kind)))
}

fn start(g: &GroupRecord) -> Result<api::StartFrom, BoxError> {
    match g.start.as_str() {
        "earliest" => Ok(api::StartFrom::StartEarliest),
        "latest" => Ok(api::StartFrom::StartLatest),
        other => Err(super::usage(format!(
            "group {}: start {other:?} is neither earliest nor latest",
            g.name
        ))),
    }
}

/// `field: old → new` for each field that differs.
fn changes(pairs: &[(&str, String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| format!("{field}: {old} → {new}"))
        .collect()
}

/// The steps that make the instance match `wanted`, and what cannot be changed.
fn plan(wanted: ExportFile, current: &ExportFile) -> Result<(Vec<Step>, Vec<String>, usize), BoxError> {
    let tenants: BTreeMap<&str, &TenantRecord> = current.tenants.iter().map(|t| (t.name.as_str(), t)).collect();
    let topics: BTreeMap<(&str, &str), &TopicRecord> = current
        .topics
        .iter()
        .map(|t| ((t.namespace.as_str(), t.name.as_str()), t))
        .collect();
    let groups: BTreeMap<(&str, &str), &GroupRecord> = current
        .groups
        .iter()
        .map(|g| ((g.namespace.as_str(), g.name.as_str()), g))
        .collect();
    let (mut steps, mut conflicts, mut unchanged) = (Vec::new(), Vec::new(), 0);
    for t in wanted.tenants {
        match tenants.get(t.name.as_str()) {
            None => steps.push(Step::CreateTenant(t)),
            Some(have) => {
                let diff = changes(&[
                    (
                        "reserved_tps",
                        have.reserved_tps.to_string(),
                        t.reserved_tps.to_string(),
                    ),
                    ("burst_tps", have.burst_tps.to_string(), t.burst_tps.to_string()),
                ]);
                if diff.is_empty() {
                    unchanged += 1;
                } else {
                    steps.push(Step::UpdateTenant(t, diff));
                }
            }
        }
    }
    for mut t in wanted.topics {
        t.kind = topic_type(&t)?.as_str().to_string();
        match topics.get(&(t.namespace.as_str(), t.name.as_str())) {
            None => steps.push(Step::CreateTopic(t)),
            Some(have) if t.queues < have.queues => conflicts.push(format!(
                "topic {}/{}: {} queues cannot become {} (queues are only added)",
                t.namespace, t.name, have.queues, t.queues
            )),
            Some(have) => {
                let diff = changes(&[
                    ("type", have.kind.clone(), t.kind.clone()),
                    ("queues", have.queues.to_string(), t.queues.to_string()),
                    (
                        "retention_ms",
                        have.retention_ms.to_string(),
                        t.retention_ms.to_string(),
                    ),
                    ("lite_ttl_ms", have.lite_ttl_ms.to_string(), t.lite_ttl_ms.to_string()),
                    ("trace", have.trace.to_string(), t.trace.to_string()),
                ]);
                if diff.is_empty() {
                    unchanged += 1;
                } else {
                    steps.push(Step::UpdateTopic(t, diff));
                }
            }
        }
    }
    for mut g in wanted.groups {
        g.retry_policy = RetryPolicy::parse(&g.retry_policy)
            .map_err(|e| super::usage(format!("group {}: {e}", g.name)))?
            .to_string();
        // Normalised as the broker writes it (empty: the default).
        g.lane_fallback = Fallback::parse_setting(&g.lane_fallback)
            .map_err(|e| super::usage(format!("group {}: lane fallback {e}", g.name)))?
            .to_string();
        start(&g)?;
        match groups.get(&(g.namespace.as_str(), g.name.as_str())) {
            None => steps.push(Step::CreateGroup(g)),
            Some(have) if have.broadcast != g.broadcast => conflicts.push(format!(
                "group {}/{}: broadcast {} cannot become {} (delete the group and import again)",
                g.namespace, g.name, have.broadcast, g.broadcast
            )),
            Some(have) => {
                let diff = changes(&[
                    ("fifo", have.fifo.to_string(), g.fifo.to_string()),
                    (
                        "max_attempts",
                        have.max_attempts.to_string(),
                        g.max_attempts.to_string(),
                    ),
                    ("start", have.start.clone(), g.start.clone()),
                    ("retry_policy", have.retry_policy.clone(), g.retry_policy.clone()),
                    ("lane_fallback", have.lane_fallback.clone(), g.lane_fallback.clone()),
                ]);
                if diff.is_empty() {
                    unchanged += 1;
                } else {
                    steps.push(Step::UpdateGroup(g, diff));
                }
            }
        }
    }
    Ok((steps, conflicts, unchanged))
}

pub async fn import(args: ImportArgs) -> Result<(), BoxError> {
    let bytes = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let wanted = ExportFile::read(&args.file, &bytes)?;
    let namespaces: BTreeSet<String> = wanted
        .topics
        .iter()
        .map(|t| t.namespace.clone())
        .chain(wanted.groups.iter().map(|g| g.namespace.clone()))
        .collect();
    let mut admin = connect(&args.broker).await?;
    let mut current = snapshot(&mut admin, &namespaces).await?;
    if !wanted.tenants.is_empty() {
        let tenants = admin
            .list_tenants(api::ListTenantsRequest {})
            .await?
            .into_inner()
            .tenants;
        current.tenants = tenants.into_iter().map(tenant_record).collect();
    }
    let (steps, conflicts, unchanged) = plan(wanted, &current)?;
    let described: Vec<serde_json::Value> = steps.iter().map(Step::describe).collect();
    match args.out.output {
        Format::Json => print_json(&json!({
            "dry_run": args.dry_run,
            "steps": described,
            "unchanged": unchanged,
            "conflicts": conflicts,
        })),
        Format::Table => {
            for s in &described {
                let sign = if s["action"] == "create" { "+" } else { "~" };
                let changes: Vec<&str> = s["changes"]
                    .as_array()
                    .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                let ns = s["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or("-");
                println!(
                    "{sign} {} {ns}/{}{}",
                    s["kind"].as_str().unwrap_or_default(),
                    s["name"].as_str().unwrap_or_default(),
                    if changes.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", changes.join(", "))
                    }
                );
            }
            for c in &conflicts {
                println!("! {c}");
            }
            let verb = if args.dry_run { "would change" } else { "changed" };
            println!(
                "{verb} {}, unchanged {unchanged}, conflicts {}",
                steps.len(),
                conflicts.len()
            );
        }
    }
    if !args.dry_run {
        let bar = progress(steps.len() as u64, "importing");
        for step in steps {
            step.apply(&mut admin).await?;
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    if !conflicts.is_empty() {
        return Err(Box::new(tonic::Status::failed_precondition(format!(
            "{} change(s) in the file cannot be made (marked !)",
            conflicts.len()
        ))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ExportFile {
        ExportFile {
            format: FORMAT.into(),
            version: VERSION,
            tenants: vec![TenantRecord {
                name: "acme".into(),
                reserved_tps: 10,
                burst_tps: 0,
            }],
            topics: vec![TopicRecord {
                namespace: "acme".into(),
                name: "orders".into(),
                kind: "FIFO".into(),
                queues: 4,
                retention_ms: 3_600_000,
                lite_ttl_ms: 0,
                trace: false,
            }],
            groups: vec![GroupRecord {
                namespace: String::new(),
                name: "billing".into(),
                fifo: true,
                broadcast: false,
                max_attempts: 5,
                start: "earliest".into(),
                retry_policy: "exponential:1s,5m,2".into(),
                lane_fallback: "wait".into(),
            }],
        }
    }

    #[test]
    fn json_and_csv_round_trip() {
        for (format, name) in [(FileFormat::Json, "x.json"), (FileFormat::Csv, "x.csv")] {
            let bytes = file().write(format).unwrap();
            assert_eq!(ExportFile::read(Path::new(name), &bytes).unwrap(), file(), "{format:?}");
        }
    }

    #[test]
    fn plans_create_what_is_missing_and_change_what_differs() {
        let (steps, conflicts, unchanged) = plan(file(), &ExportFile::default()).unwrap();
        assert_eq!((steps.len(), conflicts.len(), unchanged), (3, 0, 0));
        let (steps, _, unchanged) = plan(file(), &file()).unwrap();
        assert_eq!((steps.len(), unchanged), (0, 3), "idempotent");
        let mut more = file();
        more.topics[0].queues = 8;
        more.groups[0].broadcast = true;
        let (steps, conflicts, _) = plan(more, &file()).unwrap();
        assert!(matches!(&steps[..], [Step::UpdateTopic(_, c)] if c == &["queues: 4 → 8"]));
        assert_eq!(conflicts.len(), 1, "broadcast cannot change: {conflicts:?}");
        let mut fewer = file();
        fewer.topics[0].queues = 2;
        assert_eq!(plan(fewer, &file()).unwrap().1.len(), 1);
    }

    #[test]
    fn bad_files_are_usage_errors() {
        let bad = ExportFile::read(Path::new("x.json"), b"{\"format\": \"other\"}");
        assert!(bad.is_err());
        let csv = b"kind,namespace,name,type,queues,retention_ms,lite_ttl_ms,fifo,broadcast,max_attempts,start,retry_policy\nqueue,,x,,,,,,,,,\n";
        assert!(ExportFile::read(Path::new("x.csv"), csv).is_err());
    }
}
