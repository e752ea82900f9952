use std::collections::BTreeMap;
use std::time::Duration;

use strata_proto::v2::{self, Code, messaging_service_client::MessagingServiceClient};
use tonic::transport::Channel;

use crate::{Error, Result};

/// Where a reader starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    /// The first message stored at or after this time (ms since the epoch).
    Timestamp(i64),
    /// The group's committed offsets; the beginning for queues without one.
    Committed,
    /// A checkpoint taken with [`StreamReader::checkpoint`].
    Checkpoint(BTreeMap<i32, i64>),
}

/// A message read from a split.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub queue: i32,
    pub offset: i64,
    pub message: v2::Message,
}

/// An unbounded reader of one topic for one consumer group.
pub struct StreamReader {
    client: MessagingServiceClient<Channel>,
    topic: v2::Resource,
    group: v2::Resource,
    /// Split (queue) → next offset to read.
    splits: BTreeMap<i32, i64>,
    /// The split the next poll starts with (round robin).
    turn: usize,
}

/// Maps a failed call of `rpc` (transport or gRPC status) to our error.
fn rpc_failed(rpc: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Rpc { rpc, status }
}

fn check(rpc: &'static str, status: Option<v2::Status>) -> Result<()> {
    match status {
        Some(s) if s.code == Code::Ok as i32 => Ok(()),
        Some(s) => Err(Error::Broker {
            rpc,
            code: s.code,
            message: s.message,
        }),
        None => Err(Error::Broker {
            rpc,
            code: 0,
            message: "no status".into(),
        }),
    }
}

impl StreamReader {
    /// Connects to a broker (`http://host:port`), discovers the topic's queues and places
    /// every split at `start`.
    pub async fn connect(endpoint: &str, namespace: &str, topic: &str, group: &str, start: Start) -> Result<Self> {
        let client = MessagingServiceClient::connect(endpoint.to_string())
            .await
            .map_err(|source| Error::Connect {
                endpoint: endpoint.into(),
                source,
            })?;
        let resource = |name: &str| v2::Resource {
            resource_namespace: namespace.into(),
            name: name.into(),
        };
        let mut reader = Self {
            client,
            topic: resource(topic),
            group: resource(group),
            splits: BTreeMap::new(),
            turn: 0,
        };
        let host = endpoint.rsplit("//").next().unwrap_or(endpoint);
        let (h, p) = host.rsplit_once(':').unwrap_or((host, "80"));
        let route = reader
            .client
            .query_route(v2::QueryRouteRequest {
                topic: Some(reader.topic.clone()),
                endpoints: Some(v2::Endpoints {
                    scheme: v2::AddressScheme::IPv4 as i32,
                    addresses: vec![v2::Address {
                        host: h.into(),
                        port: p.parse().unwrap_or(80),
                    }],
                }),
            })
            .await
            .map_err(rpc_failed("QueryRoute"))?
            .into_inner();
        check("QueryRoute", route.status)?;
        let queues: std::collections::BTreeSet<i32> = route.message_queues.iter().map(|q| q.id).collect();
        if queues.is_empty() {
            return Err(Error::NoQueues(topic.into()));
        }
        for q in queues {
            let offset = match &start {
                Start::Beginning => reader.query_offset(q, v2::QueryOffsetPolicy::Beginning, None).await?,
                Start::End => reader.query_offset(q, v2::QueryOffsetPolicy::End, None).await?,
                Start::Timestamp(ms) => {
                    let t = prost_types::Timestamp {
                        seconds: ms.div_euclid(1000),
                        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
                    };
                    reader
                        .query_offset(q, v2::QueryOffsetPolicy::Timestamp, Some(t))
                        .await?
                }
                Start::Committed => match reader.committed(q).await? {
                    Some(o) => o,
                    None => reader.query_offset(q, v2::QueryOffsetPolicy::Beginning, None).await?,
                },
                Start::Checkpoint(c) => match c.get(&q) {
                    Some(o) => *o,
                    None => reader.query_offset(q, v2::QueryOffsetPolicy::Beginning, None).await?,
                },
            };
            reader.splits.insert(q, offset);
        }
        Ok(reader)
    }

    fn queue(&self, id: i32) -> v2::MessageQueue {
        v2::MessageQueue {
            topic: Some(self.topic.clone()),
            id,
            ..Default::default()
        }
    }

    async fn query_offset(
        &mut self,
        queue: i32,
        policy: v2::QueryOffsetPolicy,
        timestamp: Option<prost_types::Timestamp>,
    ) -> Result<i64> {
        let r = self
            .client
            .query_offset(v2::QueryOffsetRequest {
                message_queue: Some(self.queue(queue)),
                query_offset_policy: policy as i32,
                timestamp,
            })
            .await
            .map_err(rpc_failed("QueryOffset"))?
            .into_inner();
        check("QueryOffset", r.status)?;
        Ok(r.offset)
    }

    async fn committed(&mut self, queue: i32) -> Result<Option<i64>> {
        let r = self
            .client
            .get_offset(v2::GetOffsetRequest {
                group: Some(self.group.clone()),
                message_queue: Some(self.queue(queue)),
            })
            .await
            .map_err(rpc_failed("GetOffset"))?
            .into_inner();
        match r.status {
            Some(s) if s.code == Code::OffsetNotFound as i32 => Ok(None),
            status => check("GetOffset", status).map(|()| Some(r.offset)),
        }
    }

    /// The splits (queue ids).
    pub fn splits(&self) -> Vec<i32> {
        self.splits.keys().copied().collect()
    }

    /// Every split's next offset: restore a reader from it with [`Start::Checkpoint`].
    pub fn checkpoint(&self) -> BTreeMap<i32, i64> {
        self.splits.clone()
    }

    /// Reads up to `max` messages of one split from its offset; `wait` is the long poll.
    async fn pull(&mut self, queue: i32, max: usize, wait: Duration) -> Result<Vec<Record>> {
        let offset = self.splits[&queue];
        let request = v2::PullMessageRequest {
            group: Some(self.group.clone()),
            message_queue: Some(self.queue(queue)),
            offset,
            batch_size: max as i32,
            filter_expression: None,
            long_polling_timeout: Some(prost_types::Duration {
                seconds: wait.as_secs() as i64,
                nanos: wait.subsec_nanos() as i32,
            }),
        };
        let mut stream = self
            .client
            .pull_message(request)
            .await
            .map_err(rpc_failed("PullMessage"))?
            .into_inner();
        let mut records = Vec::new();
        let mut next = offset;
        while let Some(item) = stream.message().await.map_err(rpc_failed("PullMessage"))? {
            match item.content {
                Some(v2::pull_message_response::Content::Status(s))
                    if s.code != Code::Ok as i32 && s.code != Code::MessageNotFound as i32 =>
                {
                    return Err(Error::Broker {
                        rpc: "PullMessage",
                        code: s.code,
                        message: s.message,
                    });
                }
                Some(v2::pull_message_response::Content::Message(m)) => {
                    let offset = m
                        .system_properties
                        .as_ref()
                        .and_then(|sp| sp.queue_offset)
                        .unwrap_or(next);
                    records.push(Record {
                        queue,
                        offset,
                        message: m,
                    });
                }
                Some(v2::pull_message_response::Content::NextOffset(n)) => next = n,
                _ => {}
            }
        }
        self.splits.insert(queue, next);
        Ok(records)
    }

    /// The next messages: every split is asked in turn; when all are at their end, waits up
    /// to `wait` on one of them for new messages.
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        let splits = self.splits();
        for i in 0..splits.len() {
            let queue = splits[(self.turn + i) % splits.len()];
            let got = self.pull(queue, max, Duration::ZERO).await?;
            if !got.is_empty() {
                self.turn = (self.turn + i + 1) % splits.len();
                return Ok(got);
            }
        }
        let queue = splits[self.turn % splits.len()];
        self.turn = (self.turn + 1) % splits.len();
        self.pull(queue, max, wait).await
    }

    /// Stores every split's offset as the group's committed progress.
    pub async fn commit(&mut self) -> Result<()> {
        for (queue, offset) in self.splits.clone() {
            let r = self
                .client
                .update_offset(v2::UpdateOffsetRequest {
                    group: Some(self.group.clone()),
                    message_queue: Some(self.queue(queue)),
                    offset,
                })
                .await
                .map_err(rpc_failed("UpdateOffset"))?
                .into_inner();
            check("UpdateOffset", r.status)?;
        }
        Ok(())
    }
}
