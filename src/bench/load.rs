//! The load: producers and consumers over gRPC v2, each on its own connection, recording
//! every send's latency and every delivery's end-to-end latency in HDR histograms.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use strata_proto::v2::{self, messaging_service_client::MessagingServiceClient};
use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::target::{Credentials, Signer};

use super::report::histogram;
use crate::server::BoxError;

/// Bytes every body starts with: the send time (µs since the epoch) and a sequence number.
pub const HEADER_BYTES: usize = 16;
/// Message groups of a FIFO run.
const FIFO_GROUPS: u64 = 64;
/// How long one receive waits for messages.
const LONG_POLL: Duration = Duration::from_secs(2);
/// How long messages stay invisible after a receive (longer than any run's ack takes).
const INVISIBLE: Duration = Duration::from_secs(60);
/// A request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a consumer waits after a failed receive before the next.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// What every producer and consumer of a run shares.
#[derive(Debug)]
pub struct Plan {
    pub url: String,
    /// Signs every request when the broker runs with auth on.
    pub credentials: Credentials,
    pub topic: String,
    pub group: String,
    pub size: usize,
    pub batch: usize,
    pub inflight: usize,
    pub receive_batch: i32,
    pub ack_batch: usize,
    pub fifo: bool,
    pub run_id: String,
}

/// What a phase counted.
#[derive(Debug)]
pub struct Counters {
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    /// Messages sent before this phase that it must receive (a drain).
    pub backlog: u64,
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub ack_errors: AtomicU64,
    pub receive_errors: AtomicU64,
    pub send_latency: Mutex<Histogram<u64>>,
    pub e2e_latency: Mutex<Histogram<u64>>,
    seen: Mutex<HashSet<u64>>,
    next_seq: AtomicU64,
}

impl Counters {
    pub fn new() -> Self {
        Self {
            sent: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            backlog: 0,
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            ack_errors: AtomicU64::new(0),
            receive_errors: AtomicU64::new(0),
            send_latency: Mutex::new(histogram()),
            e2e_latency: Mutex::new(histogram()),
            seen: Mutex::new(HashSet::new()),
            next_seq: AtomicU64::new(0),
        }
    }

    /// Counters of a phase that receives what `produced` sent.
    pub fn with_sent(produced: &Counters) -> Self {
        Self {
            backlog: produced.sent.load(Ordering::Relaxed),
            ..Self::new()
        }
    }

    /// Messages this phase must receive.
    fn expected(&self) -> u64 {
        self.backlog + self.sent.load(Ordering::Relaxed)
    }

    fn record(histogram: &Mutex<Histogram<u64>>, micros: u64, n: u64) {
        let mut h = histogram.lock().unwrap_or_else(|p| p.into_inner());
        let _ = h.record_n(micros.max(1), n);
    }

    /// Notes a delivery; false if this message was received before.
    fn deliver(&self, seq: u64, sent_us: u64) -> bool {
        let fresh = self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(seq);
        if fresh {
            self.received.fetch_add(1, Ordering::Relaxed);
            Self::record(&self.e2e_latency, now_us().saturating_sub(sent_us), 1);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }
}

fn now_us() -> u64 {
    strata_meta::clock::SystemClock.now_us()
}

type Client = MessagingServiceClient<InterceptedService<Channel, Signer>>;

async fn client(plan: &Plan) -> Result<Client, BoxError> {
    let channel = Channel::from_shared(plan.url.clone())?.connect().await?;
    Ok(
        MessagingServiceClient::with_interceptor(channel, Signer(plan.credentials.clone()))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20),
    )
}

/// A request with the headers an SDK sends.
fn request<T>(client_id: &str, body: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(body);
    r.set_timeout(REQUEST_TIMEOUT);
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

fn timestamp(us: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (us / 1_000_000) as i64,
        nanos: ((us % 1_000_000) * 1000) as i32,
    }
}

fn message(plan: &Plan, seq: u64) -> v2::Message {
    let sent = now_us();
    let mut body = Vec::with_capacity(plan.size);
    body.extend_from_slice(&sent.to_le_bytes());
    body.extend_from_slice(&seq.to_le_bytes());
    body.resize(plan.size, b'x');
    v2::Message {
        topic: resource(&plan.topic),
        user_properties: Default::default(),
        system_properties: Some(v2::SystemProperties {
            tag: Some("bench".into()),
            message_id: format!("{}-{seq}", plan.run_id),
            born_timestamp: Some(timestamp(sent)),
            born_host: "strata-bench".into(),
            message_type: if plan.fifo {
                v2::MessageType::Fifo
            } else {
                v2::MessageType::Normal
            } as i32,
            message_group: plan.fifo.then(|| format!("g{}", seq % FIFO_GROUPS)),
            ..Default::default()
        }),
        body: body.into(),
    }
}

/// One producer: sends until `until`, `plan.inflight` requests at a time, paced at `rate`
/// messages/s when it is positive.
async fn producer(
    plan: Arc<Plan>,
    id: usize,
    rate: f64,
    until: Instant,
    counters: Arc<Counters>,
) -> Result<(), BoxError> {
    let client = client(&plan).await?;
    let client_id = format!("bench-{}-p{id}", plan.run_id);
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut requests = 0u64;
    loop {
        let scheduled = if rate > 0.0 {
            start + Duration::from_secs_f64(requests as f64 * plan.batch as f64 / rate)
        } else {
            Instant::now()
        };
        if scheduled >= until {
            break;
        }
        while pending.len() >= plan.inflight {
            pending.next().await;
        }
        if rate > 0.0 {
            tokio::time::sleep_until(scheduled).await;
        }
        requests += 1;
        let messages = (0..plan.batch)
            .map(|_| message(&plan, counters.next_seq.fetch_add(1, Ordering::Relaxed)))
            .collect();
        let mut client = client.clone();
        let req = request(&client_id, v2::SendMessageRequest { messages });
        let counters = Arc::clone(&counters);
        let n = plan.batch as u64;
        pending.push(async move {
            let ok = match client.send_message(req).await {
                Ok(r) => r.into_inner().status.is_some_and(|s| s.code == v2::Code::Ok as i32),
                Err(_) => false,
            };
            if ok {
                counters.sent.fetch_add(n, Ordering::Relaxed);
                Counters::record(&counters.send_latency, scheduled.elapsed().as_micros() as u64, n);
            } else {
                counters.send_errors.fetch_add(n, Ordering::Relaxed);
            }
        });
        // Keep the connection's requests moving while pacing.
        while let std::task::Poll::Ready(Some(())) = futures::poll!(pending.next()) {}
    }
    while pending.next().await.is_some() {}
    Ok(())
}

/// One consumer: receives and acknowledges until `stop` is set.
async fn consumer(plan: Arc<Plan>, id: usize, stop: Arc<AtomicBool>, counters: Arc<Counters>) -> Result<(), BoxError> {
    let mut client = client(&plan).await?;
    let client_id = format!("bench-{}-c{id}", plan.run_id);
    let filter = v2::FilterExpression {
        r#type: v2::FilterType::Tag as i32,
        expression: "*".into(),
    };
    while !stop.load(Ordering::Relaxed) {
        let req = request(
            &client_id,
            v2::ReceiveMessageRequest {
                group: resource(&plan.group),
                message_queue: Some(v2::MessageQueue {
                    topic: resource(&plan.topic),
                    id: -1,
                    ..Default::default()
                }),
                filter_expression: Some(filter.clone()),
                batch_size: plan.receive_batch,
                invisible_duration: Some(prost_types::Duration {
                    seconds: INVISIBLE.as_secs() as i64,
                    nanos: 0,
                }),
                auto_renew: false,
                long_polling_timeout: Some(prost_types::Duration {
                    seconds: LONG_POLL.as_secs() as i64,
                    nanos: 0,
                }),
                attempt_id: None,
            },
        );
        let mut stream = match client.receive_message(req).await {
            Ok(s) => s.into_inner(),
            Err(_) => {
                counters.receive_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        let mut entries = Vec::new();
        let mut failed = false;
        while let Some(Ok(item)) = stream.next().await {
            let m = match item.content {
                Some(v2::receive_message_response::Content::Message(m)) => m,
                Some(v2::receive_message_response::Content::Status(s)) => {
                    failed |= s.code != v2::Code::Ok as i32 && s.code != v2::Code::MessageNotFound as i32;
                    continue;
                }
                _ => continue,
            };
            if m.body.len() >= HEADER_BYTES {
                let sent = u64::from_le_bytes(m.body[0..8].try_into().unwrap_or_default());
                let seq = u64::from_le_bytes(m.body[8..16].try_into().unwrap_or_default());
                counters.deliver(seq, sent);
            }
            let sp = m.system_properties.unwrap_or_default();
            entries.push(v2::AckMessageEntry {
                message_id: sp.message_id,
                receipt_handle: sp.receipt_handle.unwrap_or_default(),
                lite_topic: None,
            });
        }
        let acks = entries.chunks(plan.ack_batch).map(|chunk| {
            let mut client = client.clone();
            let req = request(
                &client_id,
                v2::AckMessageRequest {
                    group: resource(&plan.group),
                    topic: resource(&plan.topic),
                    entries: chunk.to_vec(),
                },
            );
            async move {
                match client.ack_message(req).await {
                    Ok(r)
                        if r.get_ref()
                            .status
                            .as_ref()
                            .is_some_and(|s| s.code == v2::Code::Ok as i32) =>
                    {
                        0
                    }
                    _ => chunk.len() as u64,
                }
            }
        });
        let failed_acks: u64 = futures::future::join_all(acks).await.into_iter().sum();
        counters.ack_errors.fetch_add(failed_acks, Ordering::Relaxed);
        if failed {
            // A refused receive (not "no message"): do not hammer the broker with it.
            counters.receive_errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(ERROR_BACKOFF).await;
        }
    }
    Ok(())
}

/// A progress bar over `total`, updated from the counters until dropped.
struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(label: &'static str, total: Duration, counters: &Arc<Counters>) -> Self {
        let bar = ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>16} [{bar:30}] {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label);
        let (b, c) = (bar.clone(), Arc::clone(counters));
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                b.set_position(started.elapsed().as_millis() as u64);
                b.set_message(format!(
                    "sent {} received {} errors {}",
                    c.sent.load(Ordering::Relaxed),
                    c.received.load(Ordering::Relaxed),
                    c.send_errors.load(Ordering::Relaxed)
                        + c.ack_errors.load(Ordering::Relaxed)
                        + c.receive_errors.load(Ordering::Relaxed)
                ));
            }
        });
        Self { bar, task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

fn spawn_producers(
    plan: &Arc<Plan>,
    n: usize,
    rate: f64,
    until: Instant,
    counters: &Arc<Counters>,
) -> Vec<tokio::task::JoinHandle<Result<(), BoxError>>> {
    (0..n)
        .map(|i| {
            tokio::spawn(producer(
                Arc::clone(plan),
                i,
                rate / n as f64,
                until,
                Arc::clone(counters),
            ))
        })
        .collect()
}

fn spawn_consumers(
    plan: &Arc<Plan>,
    n: usize,
    stop: &Arc<AtomicBool>,
    counters: &Arc<Counters>,
) -> Vec<tokio::task::JoinHandle<Result<(), BoxError>>> {
    (0..n)
        .map(|i| tokio::spawn(consumer(Arc::clone(plan), i, Arc::clone(stop), Arc::clone(counters))))
        .collect()
}

async fn join(tasks: Vec<tokio::task::JoinHandle<Result<(), BoxError>>>) -> Result<(), BoxError> {
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Waits until every expected message was received, or `settle` passed without progress.
async fn settle(counters: &Counters, settle: Duration) {
    let mut last = counters.received.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while counters.received.load(Ordering::Relaxed) < counters.expected() && since.elapsed() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = counters.received.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// Producers only, for `duration`. Returns how long they ran.
pub async fn produce(
    plan: &Arc<Plan>,
    producers: usize,
    rate: f64,
    duration: Duration,
    counters: &Arc<Counters>,
    label: &'static str,
) -> Result<Duration, BoxError> {
    let _progress = Progress::start(label, duration, counters);
    let start = Instant::now();
    join(spawn_producers(plan, producers, rate, start + duration, counters)).await?;
    Ok(start.elapsed())
}

/// Consumers only, until they received the backlog (or made no progress for `settle`).
pub async fn consume_until_done(
    plan: &Arc<Plan>,
    consumers: usize,
    counters: &Arc<Counters>,
    settle_for: Duration,
    label: &'static str,
) -> Result<Duration, BoxError> {
    let _progress = Progress::start(label, settle_for, counters);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks = spawn_consumers(plan, consumers, &stop, counters);
    settle(counters, settle_for).await;
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    join(tasks).await?;
    Ok(took)
}

/// Producers for `duration` with consumers alongside, who then get up to `settle` to
/// receive the rest. Returns how long the producers ran.
pub async fn produce_and_consume(
    plan: &Arc<Plan>,
    producers: usize,
    consumers: usize,
    rate: f64,
    duration: Duration,
    settle_for: Duration,
    counters: &Arc<Counters>,
) -> Result<Duration, BoxError> {
    let _progress = Progress::start("load", duration, counters);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let consuming = spawn_consumers(plan, consumers, &stop, counters);
    join(spawn_producers(plan, producers, rate, start + duration, counters)).await?;
    let took = start.elapsed();
    if consumers > 0 {
        settle(counters, settle_for).await;
    }
    stop.store(true, Ordering::Relaxed);
    join(consuming).await?;
    Ok(took)
}
