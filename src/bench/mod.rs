//! `strata bench`: a load generator over gRPC v2 (producers × consumers against a running
//! broker) that reports latency percentiles, rates, object-store requests, coordinator
//! transactions and the broker's RSS, and — with `--floor` — the same store's raw PUT/GET and
//! the same coordinator's raw commit, measured in the same run, as the floor every figure is
//! compared to. See docs/benchmarks.md.

mod lite;
mod load;
mod report;

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use strata_proto::admin::strata_admin_client::StrataAdminClient;
use strata_proto::admin::{self as api};
use strata_proto::v2;
use tonic::transport::Channel;

use crate::cli::target::{AdminClient, Credentials, Signer};

use crate::server::BoxError;
use load::{Counters, Plan};
use report::{Floor, Phase, Report};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The broker's gRPC endpoint (host:port or a URL).
    #[arg(long, default_value = "127.0.0.1:8081", env = "STRATA_ENDPOINT")]
    pub endpoint: String,
    /// Credentials when the broker runs with auth on (the operator's: the run creates its
    /// topic and group and reads node stats).
    #[command(flatten)]
    pub credentials: Credentials,
    /// Producers, each with its own connection, sending one request at a time (unless --inflight).
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Consumers, each with its own connection (0: produce only).
    #[arg(long, default_value_t = 2)]
    pub consumers: usize,
    /// Message body size in bytes (at least 16: a timestamp and a sequence number).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// How long producers send.
    #[arg(long, default_value = "20s")]
    pub duration: humantime::Duration,
    /// Target send rate over all producers, messages/s (0: as fast as they go). Latency is
    /// then measured from each message's scheduled time (no coordinated omission).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Topic (default: a fresh one per run).
    #[arg(long)]
    pub topic: Option<String>,
    /// Queues of the topic when the bench creates it.
    #[arg(long, default_value_t = 8)]
    pub queues: i32,
    /// Message type of the topic and its messages.
    #[arg(long = "type", value_enum, default_value = "normal")]
    pub kind: BenchType,
    /// Messages per SendMessage request.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// SendMessage requests in flight per producer (1: a synchronous producer, as the official clients).
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Messages per ReceiveMessage request (Apache's proxy allows 32).
    #[arg(long, default_value_t = 32)]
    pub receive_batch: i32,
    /// Receipts per AckMessage request (1: one ack RPC per message, as the official clients;
    /// the acks of one received batch are sent concurrently).
    #[arg(long, default_value_t = 1)]
    pub ack_batch: usize,
    /// Produce a backlog for --duration first, then measure how fast the consumers drain it.
    #[arg(long)]
    pub drain: bool,
    /// Also measure the floor: raw PUT/GET of flush-sized objects on the broker's store and
    /// raw commits on its coordinator.
    #[arg(long)]
    pub floor: bool,
    /// PUTs, GETs and commits the floor times.
    #[arg(long, default_value_t = 100)]
    pub floor_samples: u32,
    /// How long consumers may take, after producers stop, to receive what was sent.
    #[arg(long, default_value = "60s")]
    pub settle: humantime::Duration,
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    /// `--type lite`: lite topics under the parent (created by the run, one message each).
    #[arg(long, default_value_t = 10_000)]
    pub lite_topics: u64,
    /// `--type lite`: lite topics each consumer subscribes to (at most the broker's quota).
    #[arg(long, default_value_t = 1000)]
    pub lite_subscriptions: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum BenchType {
    Normal,
    Fifo,
    /// LiteTopic: see `--lite-topics` (its own phases: create, random sends, subscribed).
    Lite,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// A gRPC endpoint as a URL: `host:port` as every RocketMQ SDK takes it, or a URL.
pub fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

pub async fn run(args: BenchArgs) -> Result<(), BoxError> {
    if args.size < load::HEADER_BYTES {
        return Err(format!("--size must be at least {} bytes", load::HEADER_BYTES).into());
    }
    if args.producers == 0 || args.batch == 0 || args.inflight == 0 || args.ack_batch == 0 {
        return Err("--producers, --batch, --inflight and --ack-batch must be at least 1".into());
    }
    let url = endpoint_url(&args.endpoint);
    let channel = Channel::from_shared(url.clone())?
        .connect()
        .await
        .map_err(|e| format!("cannot reach the broker at {url}: {e}"))?;
    let mut admin = StrataAdminClient::with_interceptor(channel, Signer(args.credentials.clone()));
    if args.kind == BenchType::Lite {
        return lite::run(args, &mut admin).await;
    }
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    let topic = args.topic.clone().unwrap_or_else(|| format!("bench-{run_id}"));
    let group = format!("bench-{run_id}");
    create_topic(&mut admin, &topic, &args).await?;
    let fifo = args.kind == BenchType::Fifo;
    admin
        .create_group(api::CreateGroupRequest {
            group: Some(api::Group {
                namespace: String::new(),
                name: group.clone(),
                fifo,
                max_attempts: 16,
                ..Default::default()
            }),
        })
        .await?;

    let plan = Arc::new(Plan {
        url,
        credentials: args.credentials.clone(),
        topic,
        group,
        size: args.size,
        batch: args.batch,
        inflight: args.inflight,
        receive_batch: args.receive_batch,
        ack_batch: args.ack_batch,
        fifo,
        run_id,
    });
    let duration: Duration = args.duration.into();
    let settle: Duration = args.settle.into();
    let mut phases = Vec::new();
    if args.drain {
        let counters = Arc::new(Counters::new());
        let before = stats(&mut admin).await?;
        let produced = load::produce(&plan, args.producers, args.rate, duration, &counters, "backlog").await?;
        phases.push(Phase::measure(
            "produce backlog",
            &counters,
            produced,
            plan.size,
            &before,
            &stats(&mut admin).await?,
        ));
        if args.consumers > 0 {
            let counters = Arc::new(Counters::with_sent(&counters));
            let before = stats(&mut admin).await?;
            let took = load::consume_until_done(&plan, args.consumers, &counters, settle, "drain").await?;
            phases.push(Phase::measure(
                "drain backlog",
                &counters,
                took,
                plan.size,
                &before,
                &stats(&mut admin).await?,
            ));
        }
    } else {
        let counters = Arc::new(Counters::new());
        let before = stats(&mut admin).await?;
        let took = load::produce_and_consume(
            &plan,
            args.producers,
            args.consumers,
            args.rate,
            duration,
            settle,
            &counters,
        )
        .await?;
        let name = if args.consumers > 0 {
            "produce + consume"
        } else {
            "produce"
        };
        phases.push(Phase::measure(
            name,
            &counters,
            took,
            plan.size,
            &before,
            &stats(&mut admin).await?,
        ));
    }
    let floor = if args.floor {
        let object_bytes = phases.first().map_or(64 << 10, Phase::bytes_per_put).max(1024);
        let got = admin
            .floor(api::FloorRequest {
                object_bytes,
                samples: args.floor_samples,
            })
            .await?
            .into_inner();
        Some(Floor::from_samples(object_bytes, &got))
    } else {
        None
    };
    let report = Report::new(&args, &plan, phases, floor);
    match args.output {
        Output::Text => print!("{}", report.text()),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(())
}

async fn create_topic(admin: &mut AdminClient, topic: &str, args: &BenchArgs) -> Result<(), BoxError> {
    let message_type = match args.kind {
        BenchType::Normal => v2::MessageType::Normal,
        BenchType::Fifo => v2::MessageType::Fifo,
        BenchType::Lite => v2::MessageType::Lite,
    };
    let created = admin
        .create_topic(api::CreateTopicRequest {
            topic: Some(api::Topic {
                namespace: String::new(),
                name: topic.to_string(),
                message_type: message_type as i32,
                queue_count: args.queues,
                ..Default::default()
            }),
        })
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
        Err(s) => Err(format!("cannot create topic {topic}: {}", s.message()).into()),
    }
}

async fn stats(admin: &mut AdminClient) -> Result<api::StatsResponse, BoxError> {
    Ok(admin.stats(api::StatsRequest {}).await?.into_inner())
}
