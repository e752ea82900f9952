//! `strata mirror`: consumes topics of another RocketMQ 5.x endpoint (Apache RocketMQ's proxy,
//! ApsaraMQ, another StrataMQ) over gRPC and sends every message to the StrataMQ `--endpoint`
//! names, keeping its id, keys, tag, properties, message group, delivery time, born time and
//! host (docs/migration.md). A message is acknowledged at the source only once the target
//! stored it: at least once; a message sent twice keeps its id, which the target's message
//! index answers with the first copy (within `ingest.index_window`).

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use strata_proto::v2::{self, messaging_service_client::MessagingServiceClient};
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::output::{Format, Output, print_json};
use super::target::{Credentials, Signer, Target};
use crate::server::BoxError;

type Client = MessagingServiceClient<InterceptedService<Channel, Signer>>;

#[derive(clap::Args, Debug)]
pub struct MirrorArgs {
    /// The source's gRPC endpoint (host:port or a URL).
    #[arg(long)]
    from: String,
    /// Topics to copy, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    topics: Vec<String>,
    /// The consumer group the mirror consumes with at the source (its progress there).
    #[arg(long, default_value = "strata-mirror")]
    group: String,
    /// The source's namespace (instance id), if it has one.
    #[arg(long, default_value = "")]
    from_namespace: String,
    /// The source's credentials as ACCESS_KEY:SECRET_KEY (default: none).
    #[arg(long, env = "STRATA_MIRROR_CREDENTIALS", hide_env_values = true)]
    credentials: Option<String>,
    /// Stop once no message arrived for this long ("10s"); default: run until interrupted.
    #[arg(long)]
    idle_exit: Option<humantime::Duration>,
    /// Messages received per request from the source.
    #[arg(long, default_value_t = 32)]
    batch: i32,
    #[command(flatten)]
    out: Output,
    #[command(flatten)]
    target: Target,
}

/// How long the source keeps a received message invisible: longer than a send to the target
/// takes, or it would be delivered twice.
const INVISIBLE: Duration = Duration::from_secs(120);
const LONG_POLL: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
// A batch is sent to the target and acknowledged at the source within its invisible time.
const _: () = assert!(INVISIBLE.as_secs() > 2 * REQUEST_TIMEOUT.as_secs());

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn resource(namespace: &str, name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// One side of the mirror: a client, its id and namespace, and the address it was given (as
/// SDKs name it in their route queries).
#[derive(Clone)]
struct Side {
    client: Client,
    client_id: String,
    namespace: String,
    endpoints: v2::Endpoints,
}

/// `host:port` (or a URL) as route queries name an access point.
fn endpoints(endpoint: &str) -> Result<v2::Endpoints, BoxError> {
    let bare = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    let (host, port) = bare
        .rsplit_once(':')
        .ok_or_else(|| super::usage(format!("{endpoint:?} is not host:port")))?;
    let port: i32 = port
        .parse()
        .map_err(|_| super::usage(format!("{endpoint:?}: {port:?} is not a port")))?;
    let scheme = if host.parse::<std::net::Ipv4Addr>().is_ok() {
        v2::AddressScheme::IPv4
    } else if host.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>().is_ok() {
        v2::AddressScheme::IPv6
    } else {
        v2::AddressScheme::DomainName
    };
    Ok(v2::Endpoints {
        scheme: scheme as i32,
        addresses: vec![v2::Address {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        }],
    })
}

impl Side {
    async fn connect(endpoint: &str, credentials: Credentials, namespace: &str, role: &str) -> Result<Self, BoxError> {
        let url = crate::bench::endpoint_url(endpoint);
        let channel = Channel::from_shared(url)?
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("cannot reach {endpoint}: {e}")))?;
        let client = MessagingServiceClient::with_interceptor(channel, Signer(credentials))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "strata".into());
        Ok(Self {
            client,
            client_id: format!("{host}@{}@mirror-{role}@{}", std::process::id(), ulid::Ulid::new()),
            namespace: namespace.to_string(),
            endpoints: endpoints(endpoint)?,
        })
    }

    /// A request with the headers an SDK sends.
    fn request<T>(&self, body: T, timeout: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(body);
        r.set_timeout(timeout);
        let md = r.metadata_mut();
        if let Ok(v) = self.client_id.parse() {
            md.insert("x-mq-client-id", v);
        }
        if let Ok(v) = self.namespace.parse() {
            md.insert("x-mq-namespace", v);
        }
        md.insert("x-mq-language", tonic::metadata::MetadataValue::from_static("RUST"));
        md.insert("x-mq-protocol", tonic::metadata::MetadataValue::from_static("v2"));
        r
    }
}

fn refused(what: &str, status: Option<&v2::Status>) -> Option<BoxError> {
    let s = status?;
    (s.code != v2::Code::Ok as i32).then(|| format!("{what}: code {} {}", s.code, s.message).into())
}

pub async fn run(args: MirrorArgs) -> Result<(), BoxError> {
    let credentials = match &args.credentials {
        None => Credentials::default(),
        Some(pair) => {
            let (ak, sk) = pair
                .split_once(':')
                .ok_or_else(|| super::usage("--credentials is ACCESS_KEY:SECRET_KEY"))?;
            Credentials {
                access_key: Some(ak.to_string()),
                secret_key: Some(sk.to_string()),
            }
        }
    };
    let source = Side::connect(&args.from, credentials, &args.from_namespace, "source").await?;
    let target = Side::connect(
        &args.target.broker.endpoint,
        args.target.broker.credentials.clone(),
        &args.target.namespace,
        "target",
    )
    .await?;
    // Apache RocketMQ's proxy wants a consumer's settings before it serves its receives.
    let _settings = announce(&source, &args.group, &args.topics).await?;

    let bar = super::output::spinner("mirrored");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let idle = args.idle_exit.map(Duration::from);
    let mut tasks = Vec::new();
    for topic in &args.topics {
        let (source, target, tx) = (source.clone(), target.clone(), tx.clone());
        let (topic, group, batch) = (topic.clone(), args.group.clone(), args.batch);
        tasks.push(tokio::spawn(async move {
            mirror_topic(source, target, &topic, &group, batch, idle, tx).await
        }));
    }
    drop(tx);
    let mut copied: HashMap<String, u64> = HashMap::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some((topic, n)) => {
                    *copied.entry(topic).or_default() += n;
                    bar.inc(n);
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                break;
            }
        }
    }
    bar.finish_and_clear();
    let mut failure = None;
    for t in tasks {
        if interrupted {
            t.abort();
        } else if let Ok(Err(e)) = t.await {
            failure.get_or_insert(e);
        }
    }
    let total: u64 = copied.values().sum();
    match args.out.output {
        Format::Json => print_json(&json!({"mirrored": total, "topics": copied})),
        Format::Table => {
            let mut per: Vec<_> = copied.iter().collect();
            per.sort();
            let list: Vec<String> = per.iter().map(|(t, n)| format!("{t} {n}")).collect();
            println!("mirrored {total} messages ({})", list.join(", "));
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Opens the source's Telemetry stream with the mirror's consumer settings; the stream stays
/// open while the returned sender lives.
async fn announce(
    source: &Side,
    group: &str,
    topics: &[String],
) -> Result<mpsc::Sender<v2::TelemetryCommand>, BoxError> {
    let settings = v2::Settings {
        client_type: Some(v2::ClientType::SimpleConsumer as i32),
        request_timeout: Some(duration(REQUEST_TIMEOUT)),
        pub_sub: Some(v2::settings::PubSub::Subscription(v2::Subscription {
            group: resource(&source.namespace, group),
            subscriptions: topics
                .iter()
                .map(|t| v2::SubscriptionEntry {
                    topic: resource(&source.namespace, t),
                    expression: Some(v2::FilterExpression {
                        r#type: v2::FilterType::Tag as i32,
                        expression: "*".into(),
                    }),
                })
                .collect(),
            long_polling_timeout: Some(duration(LONG_POLL)),
            ..Default::default()
        })),
        ..Default::default()
    };
    let (tx, rx) = mpsc::channel(4);
    tx.send(v2::TelemetryCommand {
        command: Some(v2::telemetry_command::Command::Settings(settings)),
        status: None,
    })
    .await?;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut client = source.client.clone();
    let mut request = source.request(stream, Duration::from_secs(3600 * 24));
    request.metadata_mut().remove("grpc-timeout");
    let mut replies = client.telemetry(request).await?.into_inner();
    // The first reply says whether the source accepted the settings.
    if let Some(first) = replies.next().await {
        let first = first?;
        if let Some(e) = refused("the source refused the mirror's settings", first.status.as_ref()) {
            return Err(e);
        }
    }
    tokio::spawn(async move { while replies.next().await.is_some() {} });
    Ok(tx)
}

/// The readable queues of a topic at the source.
async fn readable_queues(source: &Side, topic: &str) -> Result<Vec<v2::MessageQueue>, BoxError> {
    let mut client = source.client.clone();
    let route = client
        .query_route(source.request(
            v2::QueryRouteRequest {
                topic: resource(&source.namespace, topic),
                endpoints: Some(source.endpoints.clone()),
            },
            REQUEST_TIMEOUT,
        ))
        .await?
        .into_inner();
    if let Some(e) = refused(&format!("route of {topic}"), route.status.as_ref()) {
        return Err(e);
    }
    let readable = [v2::Permission::Read as i32, v2::Permission::ReadWrite as i32];
    Ok(route
        .message_queues
        .into_iter()
        .filter(|q| readable.contains(&q.permission))
        .collect())
}

async fn mirror_topic(
    source: Side,
    target: Side,
    topic: &str,
    group: &str,
    batch: i32,
    idle: Option<Duration>,
    progress: mpsc::UnboundedSender<(String, u64)>,
) -> Result<(), BoxError> {
    let queues = readable_queues(&source, topic).await?;
    if queues.is_empty() {
        return Err(format!("the source has no readable queue of {topic}").into());
    }
    let mut last_message = tokio::time::Instant::now();
    for turn in 0usize.. {
        if idle.is_some_and(|idle| last_message.elapsed() >= idle) {
            return Ok(());
        }
        let queue = queues[turn % queues.len()].clone();
        let received = receive(&source, group, queue, batch).await?;
        if received.is_empty() {
            continue;
        }
        last_message = tokio::time::Instant::now();
        send(&target, topic, &received).await?;
        ack(&source, group, topic, &received).await?;
        let _ = progress.send((topic.to_string(), received.len() as u64));
    }
    Ok(())
}

async fn receive(
    source: &Side,
    group: &str,
    queue: v2::MessageQueue,
    batch: i32,
) -> Result<Vec<v2::Message>, BoxError> {
    let request = v2::ReceiveMessageRequest {
        group: resource(&source.namespace, group),
        message_queue: Some(queue),
        filter_expression: Some(v2::FilterExpression {
            r#type: v2::FilterType::Tag as i32,
            expression: "*".into(),
        }),
        batch_size: batch,
        invisible_duration: Some(duration(INVISIBLE)),
        auto_renew: false,
        long_polling_timeout: Some(duration(LONG_POLL)),
        attempt_id: None,
    };
    let mut client = source.client.clone();
    let mut stream = client
        .receive_message(source.request(request, LONG_POLL + REQUEST_TIMEOUT))
        .await?
        .into_inner();
    let mut messages = Vec::new();
    while let Some(item) = stream.next().await {
        match item?.content {
            Some(v2::receive_message_response::Content::Message(m)) => messages.push(m),
            Some(v2::receive_message_response::Content::Status(s))
                if s.code != v2::Code::Ok as i32 && s.code != v2::Code::MessageNotFound as i32 =>
            {
                return Err(format!("receiving from the source: code {} {}", s.code, s.message).into());
            }
            _ => {}
        }
    }
    Ok(messages)
}

/// The message as the target is to store it: what the source's copy carries, minus what only
/// the source's delivery means (receipt handle, offsets, attempts).
fn republished(namespace: &str, topic: &str, m: &v2::Message) -> v2::Message {
    let sp = m.system_properties.clone().unwrap_or_default();
    let message_type = match v2::MessageType::try_from(sp.message_type) {
        // Delivered at the source: committed there.
        Ok(v2::MessageType::Transaction) => v2::MessageType::Normal,
        Ok(t) => t,
        Err(_) => v2::MessageType::Normal,
    };
    v2::Message {
        topic: resource(namespace, topic),
        user_properties: m.user_properties.clone(),
        system_properties: Some(v2::SystemProperties {
            tag: sp.tag,
            keys: sp.keys,
            message_id: sp.message_id,
            body_digest: sp.body_digest,
            body_encoding: sp.body_encoding,
            message_type: message_type as i32,
            born_timestamp: sp.born_timestamp,
            born_host: sp.born_host,
            delivery_timestamp: sp.delivery_timestamp,
            message_group: sp.message_group,
            trace_context: sp.trace_context,
            lite_topic: sp.lite_topic,
            priority: sp.priority,
            ..Default::default()
        }),
        body: m.body.clone(),
    }
}

async fn send(target: &Side, topic: &str, messages: &[v2::Message]) -> Result<(), BoxError> {
    let request = v2::SendMessageRequest {
        messages: messages
            .iter()
            .map(|m| republished(&target.namespace, topic, m))
            .collect(),
    };
    let mut client = target.client.clone();
    let reply = client
        .send_message(target.request(request, REQUEST_TIMEOUT))
        .await?
        .into_inner();
    if let Some(e) = refused(&format!("sending to the target's {topic}"), reply.status.as_ref()) {
        return Err(e);
    }
    Ok(())
}

async fn ack(source: &Side, group: &str, topic: &str, messages: &[v2::Message]) -> Result<(), BoxError> {
    let entries = messages
        .iter()
        .map(|m| {
            let sp = m.system_properties.clone().unwrap_or_default();
            v2::AckMessageEntry {
                message_id: sp.message_id,
                receipt_handle: sp.receipt_handle.unwrap_or_default(),
                lite_topic: sp.lite_topic,
            }
        })
        .collect();
    let request = v2::AckMessageRequest {
        group: resource(&source.namespace, group),
        topic: resource(&source.namespace, topic),
        entries,
    };
    let mut client = source.client.clone();
    let reply = client
        .ack_message(source.request(request, REQUEST_TIMEOUT))
        .await?
        .into_inner();
    if let Some(e) = refused("acknowledging at the source", reply.status.as_ref()) {
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_points_become_route_endpoints() {
        let e = endpoints("http://10.0.0.1:8081").unwrap();
        assert_eq!(
            (e.scheme, e.addresses[0].host.as_str(), e.addresses[0].port),
            (v2::AddressScheme::IPv4 as i32, "10.0.0.1", 8081)
        );
        let e = endpoints("rmq.example.com:443").unwrap();
        assert_eq!(e.scheme, v2::AddressScheme::DomainName as i32);
        assert!(endpoints("no-port").is_err());
    }
}
