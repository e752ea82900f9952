//! The LiteTopic benchmark (`strata bench --type lite`): populate N lite topics under one
//! parent (one message each: every send creates lite topics), send to random ones among all
//! N, then send to the lite topics consumers subscribed to while they receive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use strata_proto::admin as api;
use strata_proto::v2::{self, messaging_service_client::MessagingServiceClient};
use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{AdminClient, BenchArgs, Output, endpoint_url, stats};
use crate::cli::target::Signer;
use crate::server::BoxError;

type Client = MessagingServiceClient<InterceptedService<Channel, Signer>>;

const GROUP: &str = "bench-lite";
/// How long a receive waits for messages.
const LONG_POLL: Duration = Duration::from_secs(2);

/// What one phase measured.
#[derive(Debug, Serialize)]
struct LitePhase {
    name: &'static str,
    seconds: f64,
    sent: u64,
    send_errors: u64,
    received: u64,
    /// Object-store PUTs during the phase per SendMessage request (< 1: requests share WAL
    /// objects) and per message.
    puts_per_request: f64,
    puts_per_message: f64,
    rss_bytes_after: u64,
}

impl LitePhase {
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.seconds.max(1e-9)
    }
}

struct Shared {
    url: String,
    args: BenchArgs,
    parent: String,
    sent: AtomicU64,
    errors: AtomicU64,
    requests: AtomicU64,
    received: AtomicU64,
}

async fn connect(shared: &Shared) -> Result<Client, BoxError> {
    let channel = Channel::from_shared(shared.url.clone())?.connect().await?;
    Ok(MessagingServiceClient::with_interceptor(
        channel,
        Signer(shared.args.credentials.clone()),
    ))
}

fn request<T>(client_id: &str, body: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(body);
    r.set_timeout(Duration::from_secs(30));
    if let Ok(v) = client_id.parse() {
        r.metadata_mut().insert("x-mq-client-id", v);
    }
    r
}

fn resource(name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: String::new(),
        name: name.to_string(),
    })
}

fn lite_name(i: u64) -> String {
    format!("lite-{i:08}")
}

fn message(shared: &Shared, lite: u64) -> v2::Message {
    v2::Message {
        topic: resource(&shared.parent),
        user_properties: Default::default(),
        system_properties: Some(v2::SystemProperties {
            message_type: v2::MessageType::Lite as i32,
            lite_topic: Some(lite_name(lite)),
            ..Default::default()
        }),
        body: vec![b'x'; shared.args.size].into(),
    }
}

/// Sends batches of messages to the lite topics `pick` chooses, from `producers` tasks, until
/// `until` or until `pick` says there is nothing more (None).
async fn send_all(
    shared: &Arc<Shared>,
    until: Instant,
    pick: Arc<dyn Fn() -> Option<u64> + Send + Sync>,
) -> Result<(), BoxError> {
    let tasks: Vec<_> = (0..shared.args.producers)
        .map(|p| {
            let (shared, pick) = (Arc::clone(shared), Arc::clone(&pick));
            tokio::spawn(async move {
                let mut client = connect(&shared).await?;
                let client_id = format!("bench-lite-p{p}");
                while Instant::now() < until {
                    let messages: Vec<_> = (0..shared.args.batch)
                        .map_while(|_| pick())
                        .map(|l| message(&shared, l))
                        .collect();
                    if messages.is_empty() {
                        break;
                    }
                    let n = messages.len() as u64;
                    let ok = client
                        .send_message(request(&client_id, v2::SendMessageRequest { messages }))
                        .await
                        .is_ok_and(|r| r.into_inner().status.is_some_and(|s| s.code == v2::Code::Ok as i32));
                    shared.requests.fetch_add(1, Ordering::Relaxed);
                    if ok {
                        shared.sent.fetch_add(n, Ordering::Relaxed);
                    } else {
                        shared.errors.fetch_add(n, Ordering::Relaxed);
                    }
                }
                Ok::<(), BoxError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// A lite consumer subscribed to lite topics `first..first + count`, receiving and acking
/// until `until`.
async fn consume(shared: Arc<Shared>, id: usize, first: u64, count: u64, until: Instant) -> Result<(), BoxError> {
    let mut client = connect(&shared).await?;
    let client_id = format!("bench-lite-c{id}");
    let names: Vec<String> = (first..first + count).map(lite_name).collect();
    for chunk in names.chunks(500) {
        let status = client
            .sync_lite_subscription(request(
                &client_id,
                v2::SyncLiteSubscriptionRequest {
                    action: v2::LiteSubscriptionAction::PartialAdd as i32,
                    topic: resource(&shared.parent),
                    group: resource(GROUP),
                    lite_topic_set: chunk.to_vec(),
                    version: None,
                    offset_option: None,
                },
            ))
            .await?
            .into_inner()
            .status;
        if let Some(s) = status.filter(|s| s.code != v2::Code::Ok as i32) {
            return Err(format!("SyncLiteSubscription: {} {}", s.code, s.message).into());
        }
    }
    while Instant::now() < until {
        let req = v2::ReceiveMessageRequest {
            group: resource(GROUP),
            message_queue: Some(v2::MessageQueue {
                topic: resource(&shared.parent),
                id: -1,
                ..Default::default()
            }),
            filter_expression: None,
            batch_size: 32,
            invisible_duration: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
            auto_renew: false,
            long_polling_timeout: Some(prost_types::Duration {
                seconds: LONG_POLL.as_secs() as i64,
                nanos: 0,
            }),
            attempt_id: None,
        };
        let mut stream = client.receive_message(request(&client_id, req)).await?.into_inner();
        let mut entries = Vec::new();
        while let Some(Ok(item)) = stream.next().await {
            if let Some(v2::receive_message_response::Content::Message(m)) = item.content {
                let sp = m.system_properties.unwrap_or_default();
                entries.push(v2::AckMessageEntry {
                    message_id: sp.message_id,
                    receipt_handle: sp.receipt_handle.unwrap_or_default(),
                    lite_topic: sp.lite_topic,
                });
            }
        }
        if entries.is_empty() {
            continue;
        }
        shared.received.fetch_add(entries.len() as u64, Ordering::Relaxed);
        client
            .ack_message(request(
                &client_id,
                v2::AckMessageRequest {
                    group: resource(GROUP),
                    topic: resource(&shared.parent),
                    entries,
                },
            ))
            .await?;
    }
    Ok(())
}

pub async fn run(args: BenchArgs, admin: &mut AdminClient) -> Result<(), BoxError> {
    let n = args.lite_topics.max(1);
    let parent = format!("bench-lite-{}", ulid::Ulid::new().to_string().to_lowercase());
    admin
        .create_topic(api::CreateTopicRequest {
            topic: Some(api::Topic {
                name: parent.clone(),
                message_type: v2::MessageType::Lite as i32,
                queue_count: 1,
                ..Default::default()
            }),
        })
        .await?;
    let output = args.output;
    let duration: Duration = args.duration.into();
    let shared = Arc::new(Shared {
        url: endpoint_url(&args.endpoint),
        parent,
        sent: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        received: AtomicU64::new(0),
        args,
    });
    let mut phases = Vec::new();

    // 1. One message to each of the N lite topics: every send creates lite topics.
    let next = Arc::new(AtomicU64::new(0));
    let pick: Arc<dyn Fn() -> Option<u64> + Send + Sync> = Arc::new(move || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        (i < n).then_some(i)
    });
    phases.push(
        measure(&shared, admin, "create N lite topics (one message each)", async {
            send_all(&shared, Instant::now() + Duration::from_secs(24 * 3600), pick).await
        })
        .await?,
    );

    // 2. Random lite topics among all N (they exist now).
    let pick: Arc<dyn Fn() -> Option<u64> + Send + Sync> = Arc::new(move || Some(rand::random_range(0..n)));
    phases.push(
        measure(&shared, admin, "send to random lite topics", async {
            send_all(&shared, Instant::now() + duration, pick).await
        })
        .await?,
    );

    // 3. Consumers subscribed to their lite topics receive what is sent to those.
    let consumers = shared.args.consumers.max(1);
    let per = (shared.args.lite_subscriptions as u64).min(n / consumers as u64).max(1);
    let subscribed = per * consumers as u64;
    let until = Instant::now() + duration;
    let receivers: Vec<_> = (0..consumers)
        .map(|c| tokio::spawn(consume(Arc::clone(&shared), c, c as u64 * per, per, until)))
        .collect();
    let pick: Arc<dyn Fn() -> Option<u64> + Send + Sync> = Arc::new(move || Some(rand::random_range(0..subscribed)));
    phases.push(
        measure(&shared, admin, "send + receive (subscribed lite topics)", async {
            send_all(&shared, until, pick).await?;
            for r in receivers {
                r.await??;
            }
            Ok(())
        })
        .await?,
    );

    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "lite_topics": n, "phases": phases }))?
        ),
        Output::Text => {
            println!("lite topics: {n} under one parent, {subscribed} subscribed by {consumers} consumers");
            for p in &phases {
                println!(
                    "{:<44} {:>9.0} msg/s sent {:>9.0} msg/s received  errors {:>5}  PUTs/request {:.3}  PUTs/msg {:.4}  RSS {} MiB",
                    p.name,
                    p.rate(p.sent),
                    p.rate(p.received),
                    p.send_errors,
                    p.puts_per_request,
                    p.puts_per_message,
                    p.rss_bytes_after >> 20
                );
            }
        }
    }
    Ok(())
}

/// Runs one phase and what the counters and the broker's stats say about it.
async fn measure(
    shared: &Arc<Shared>,
    admin: &mut AdminClient,
    name: &'static str,
    phase: impl std::future::Future<Output = Result<(), BoxError>>,
) -> Result<LitePhase, BoxError> {
    let counts = |s: &Shared| {
        (
            s.sent.swap(0, Ordering::Relaxed),
            s.errors.swap(0, Ordering::Relaxed),
            s.requests.swap(0, Ordering::Relaxed),
            s.received.swap(0, Ordering::Relaxed),
        )
    };
    counts(shared);
    let before = stats(admin).await?;
    let start = Instant::now();
    phase.await?;
    let seconds = start.elapsed().as_secs_f64();
    let after = stats(admin).await?;
    let (sent, send_errors, requests, received) = counts(shared);
    let puts =
        after.store_requests.get("put").copied().unwrap_or(0) - before.store_requests.get("put").copied().unwrap_or(0);
    Ok(LitePhase {
        name,
        seconds,
        sent,
        send_errors,
        received,
        puts_per_request: puts as f64 / requests.max(1) as f64,
        puts_per_message: puts as f64 / sent.max(1) as f64,
        rss_bytes_after: after.rss_bytes,
    })
}
