//! Stream consumption end to end against the real binary: PullMessage replay from the
//! beginning across compacted (Parquet) and fresh (WAL) data, checkpoints, committed
//! offsets, time positions, and the bounded reader on the archive.
#![allow(clippy::unwrap_used)] // a test: a failed step is a failed test

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_proto::v2::{self, messaging_service_client::MessagingServiceClient};
use strata_reader::{Start, StreamReader, read_archive};

struct Broker {
    child: Child,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[compactor]\ncompact_after = \"1s\"\ncompaction_interval = \"1s\"\n",
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("strata.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "standalone",
            "--grpc-listen",
            &format!("127.0.0.1:{port}"),
            "--http-listen",
            "127.0.0.1:0",
            "--remoting-listen",
            "off",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the broker did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Broker {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        dir,
    }
}

/// Sends `n` messages (ids `{prefix}-{i}`) and returns id → body.
async fn send(endpoint: &str, topic: &str, prefix: &str, n: usize) -> HashMap<String, Vec<u8>> {
    let mut client = MessagingServiceClient::connect(endpoint.to_string()).await.unwrap();
    let mut sent = HashMap::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let messages: Vec<v2::Message> = chunk
            .iter()
            .map(|i| {
                let id = format!("{prefix}-{i}");
                let body = format!("{prefix} message {i}").into_bytes();
                sent.insert(id.clone(), body.clone());
                v2::Message {
                    topic: Some(v2::Resource {
                        resource_namespace: String::new(),
                        name: topic.into(),
                    }),
                    system_properties: Some(v2::SystemProperties {
                        message_id: id,
                        message_type: v2::MessageType::Normal as i32,
                        ..Default::default()
                    }),
                    body: body.into(),
                    ..Default::default()
                }
            })
            .collect();
        let r = client
            .send_message(v2::SendMessageRequest { messages })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status.unwrap().code, v2::Code::Ok as i32);
    }
    sent
}

/// Queues of `topic` with at least one Parquet file.
fn compacted_queues(broker: &Broker, topic: &str) -> usize {
    let root = broker.dir.path().join("data/store/data/_default").join(topic);
    let Ok(queues) = std::fs::read_dir(root) else { return 0 };
    queues
        .flatten()
        .filter(|q| std::fs::read_dir(q.path()).is_ok_and(|mut f| f.next().is_some()))
        .count()
}

async fn read_all(reader: &mut StreamReader, n: usize) -> Vec<strata_reader::Record> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < n {
        assert!(Instant::now() < deadline, "read {} of {n}", got.len());
        got.extend(reader.poll(64, Duration::from_millis(500)).await.unwrap());
    }
    got
}

fn id(r: &strata_reader::Record) -> String {
    r.message.system_properties.as_ref().unwrap().message_id.clone()
}

#[tokio::test]
async fn replay_across_parquet_and_wal_checkpoints_and_the_archive() {
    let broker = start().await;
    let topic = "stream-replay";
    let mut sent = send(&broker.endpoint, topic, "old", 300).await;
    let mid = strata_meta::Clock::now_ms(&strata_meta::clock::SystemClock);
    // Wait until the compactor turned the first messages of every queue into Parquet files.
    let deadline = Instant::now() + Duration::from_secs(30);
    while compacted_queues(&broker, topic) < 8 {
        assert!(Instant::now() < deadline, "not every queue was compacted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fresh = send(&broker.endpoint, topic, "new", 100).await;
    sent.extend(fresh.clone());

    // Replay from the beginning: everything, once, per queue in offset order, old data from
    // Parquet and fresh data from the WAL alike.
    let mut reader = StreamReader::connect(&broker.endpoint, "", topic, "replayer", Start::Beginning)
        .await
        .unwrap();
    assert_eq!(reader.splits().len(), 8);
    let got = read_all(&mut reader, 400).await;
    let mut per_queue: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &got {
        assert_eq!(sent[&id(r)], r.message.body.to_vec(), "body of {}", id(r));
        per_queue.entry(r.queue).or_default().push(r.offset);
    }
    assert_eq!(got.len(), 400, "no duplicates");
    for (q, offsets) in &per_queue {
        assert_eq!(
            *offsets,
            (0..offsets.len() as i64).collect::<Vec<_>>(),
            "queue {q}: dense, in order"
        );
    }
    assert!(reader.poll(64, Duration::from_millis(200)).await.unwrap().is_empty());

    // A checkpoint restores exactly; committed offsets resume where the group left off.
    let mut first = StreamReader::connect(&broker.endpoint, "", topic, "resumer", Start::Beginning)
        .await
        .unwrap();
    let part = read_all(&mut first, 150).await;
    let checkpoint = first.checkpoint();
    first.commit().await.unwrap();
    let mut restored = StreamReader::connect(
        &broker.endpoint,
        "",
        topic,
        "other",
        Start::Checkpoint(checkpoint.clone()),
    )
    .await
    .unwrap();
    let rest = read_all(&mut restored, 400 - part.len()).await;
    let mut ids: Vec<String> = part.iter().chain(&rest).map(id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400, "checkpoint + rest = everything, once");
    let committed = StreamReader::connect(&broker.endpoint, "", topic, "resumer", Start::Committed)
        .await
        .unwrap();
    assert_eq!(committed.checkpoint(), checkpoint);
    let end = StreamReader::connect(&broker.endpoint, "", topic, "x", Start::End)
        .await
        .unwrap();
    assert_eq!(end.checkpoint().values().sum::<i64>(), 400);

    // A time position starts after the old messages.
    let mut later = StreamReader::connect(&broker.endpoint, "", topic, "timed", Start::Timestamp(mid + 1))
        .await
        .unwrap();
    let after: Vec<String> = read_all(&mut later, 100).await.iter().map(id).collect();
    assert!(
        after.iter().all(|i| i.starts_with("new-")),
        "only messages stored after the time"
    );

    // Bounded: the archive holds the compacted messages, read without the broker.
    let store = strata_storage::open_store(
        broker.dir.path().join("data/store").to_str().unwrap(),
        &strata_storage::S3Options::default(),
    )
    .unwrap();
    let archived = read_archive(store, "", topic, 0, i64::MAX).await.unwrap();
    assert!(!archived.is_empty());
    for a in &archived {
        assert_eq!(sent[&a.record.message_id], a.record.body.to_vec());
    }
    let old_archived = archived
        .iter()
        .filter(|a| a.record.message_id.starts_with("old-"))
        .count();
    assert_eq!(old_archived, 300, "all old messages were compacted");
}
