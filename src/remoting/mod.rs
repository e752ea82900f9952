//! The 4.x Remoting front: name server and broker on one TCP port, serving the same storage,
//! offsets, tenants and quotas as the gRPC front (docs/protocol.md, "Remoting").

mod clients;
mod consume;
mod convert;
mod fields;
mod names;
mod produce;
mod route;
mod transaction;

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use bytes::BytesMut;
use strata_remoting::codes::{request, response};
use strata_remoting::{Command, FLAG_ONEWAY, decode_frame, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info_span, warn};

use crate::front::Front;
use clients::Clients;
use fields::{Handled, Refusal};

/// How this node presents itself to 4.x clients.
#[derive(Clone, Debug)]
pub struct BrokerIdentity {
    pub cluster: String,
    pub name: String,
    /// Where clients reach the broker (the advertised Remoting address).
    pub address: String,
    /// The address stored messages carry (offset message ids).
    pub store_host: SocketAddrV4,
}

pub struct Remoting {
    front: Front,
    broker: BrokerIdentity,
    clients: Clients,
    /// Largest frame accepted; a larger one closes its connection.
    max_frame: usize,
    /// Opaque of the requests this server sends.
    next_opaque: std::sync::atomic::AtomicI32,
}

/// Replies queued per connection before a slow reader holds up its requests.
const CONNECTION_QUEUE: usize = 1024;

/// What a handler answers: a reply with fields and a body, or a refusal.
#[derive(Default)]
struct Reply {
    fields: Vec<(&'static str, String)>,
    body: bytes::Bytes,
    code: i32,
    remark: Option<String>,
}

impl Reply {
    fn ok() -> Self {
        Self::default()
    }

    fn field(mut self, name: &'static str, value: impl ToString) -> Self {
        self.fields.push((name, value.to_string()));
        self
    }

    fn body(mut self, body: impl Into<bytes::Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// A reply whose code is not SUCCESS but which carries fields (pull replies).
    fn with_code(mut self, code: i32, remark: impl Into<String>) -> Self {
        self.code = code;
        self.remark = Some(remark.into());
        self
    }
}

/// A request and the connection it came on.
struct Incoming<'a> {
    command: &'a Command,
    peer: SocketAddr,
    connection: &'a mpsc::Sender<Command>,
}

impl Remoting {
    pub fn new(front: Front, broker: BrokerIdentity, max_frame: usize) -> Self {
        Self {
            front,
            broker,
            clients: Clients::default(),
            max_frame,
            next_opaque: std::sync::atomic::AtomicI32::new(1),
        }
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let this = Arc::clone(&self);
                    let span = info_span!("remoting_connection", peer = %peer);
                    tokio::spawn(this.connection(stream, peer).instrument(span));
                }
                Err(e) => warn!(error = %e, "remoting accept failed"),
            }
        }
    }

    /// Reads requests and answers each on its own task (a long-polling pull must not hold up
    /// the requests behind it); a malformed frame closes this connection only.
    async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let (mut reader, mut writer) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Command>(CONNECTION_QUEUE);
        let writing = tokio::spawn(async move {
            while let Some(command) = rx.recv().await {
                let frame = match encode_frame(&command) {
                    Ok(f) => f,
                    Err(e) => {
                        warn!(error = %e, code = command.code, "reply not encodable; dropped");
                        continue;
                    }
                };
                if writer.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            match decode_frame(&mut buf, self.max_frame) {
                Ok(Some(command)) => {
                    if command.is_response() {
                        // Replies to what we sent (NOTIFY_CONSUMER_IDS_CHANGED is one-way).
                        continue;
                    }
                    let this = Arc::clone(&self);
                    let tx = tx.clone();
                    tokio::spawn(
                        async move {
                            let reply = this
                                .handle(Incoming {
                                    command: &command,
                                    peer,
                                    connection: &tx,
                                })
                                .await;
                            if let Some(reply) = reply {
                                let _ = tx.send(reply).await;
                            }
                        }
                        .in_current_span(),
                    );
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(error = %e, "malformed frame; closing the connection");
                    metrics::counter!("strata_remoting_malformed_frames_total").increment(1);
                    break;
                }
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        for (tenant, group, client) in self.clients.connection_closed(&tx) {
            let others = self.clients.leave(&tenant, &group, &client);
            self.notify_group_changed(&tenant, &group, others).await;
        }
        drop(tx);
        let _ = writing.await;
    }

    /// Answers one request; `None` for a one-way request.
    async fn handle(&self, incoming: Incoming<'_>) -> Option<Command> {
        let req = incoming.command;
        let span = info_span!("remoting", code = req.code, opaque = req.opaque);
        let answered = async {
            metrics::counter!("strata_remoting_requests_total", "code" => req.code.to_string()).increment(1);
            self.dispatch(&incoming).await
        }
        .instrument(span)
        .await;
        if req.flag & FLAG_ONEWAY != 0 {
            return None;
        }
        let mut response = match answered {
            Ok(reply) => {
                let mut c = Command::response_to(req, reply.code, reply.remark);
                c.ext_fields = reply.fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                c.body = reply.body;
                c
            }
            Err(refusal) => {
                debug!(code = req.code, answer = refusal.code, remark = %refusal.remark, "request refused");
                Command::response_to(req, refusal.code, Some(refusal.remark))
            }
        };
        // The C++ client reads the header length without masking the serialize type: answer
        // in JSON whatever the request used.
        response.serialize = strata_remoting::SerializeType::Json;
        Some(response)
    }

    async fn dispatch(&self, incoming: &Incoming<'_>) -> Handled<Reply> {
        let req = incoming.command;
        if self.front.guard.enabled() {
            return Err(Refusal::new(
                response::NO_PERMISSION,
                "authentication is on and this node does not yet check 4.x ACL signatures; use a gRPC client",
            ));
        }
        match req.code {
            request::GET_ROUTEINFO_BY_TOPIC => self.route(req).await,
            request::GET_BROKER_CLUSTER_INFO => Ok(self.cluster_info()),
            request::GET_KV_CONFIG => Err(Refusal::new(response::QUERY_NOT_FOUND, "no such configuration item")),
            request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
                self.send(req, incoming.peer).await
            }
            request::CONSUMER_SEND_MSG_BACK => self.send_back(req).await,
            request::END_TRANSACTION => self.end_transaction(req).await,
            request::PULL_MESSAGE => self.pull(req).await,
            request::QUERY_CONSUMER_OFFSET => self.query_consumer_offset(req).await,
            request::UPDATE_CONSUMER_OFFSET => self.update_consumer_offset(req).await,
            request::GET_MAX_OFFSET | request::GET_MIN_OFFSET | request::SEARCH_OFFSET_BY_TIMESTAMP => {
                self.queue_offset(req).await
            }
            request::GET_EARLIEST_MSG_STORETIME => self.earliest_store_time(req).await,
            request::HEART_BEAT => self.heartbeat(req, incoming.connection).await,
            request::UNREGISTER_CLIENT => self.unregister(req).await,
            request::GET_CONSUMER_LIST_BY_GROUP => self.consumer_list(req),
            request::LOCK_BATCH_MQ => self.lock(req),
            request::UNLOCK_BATCH_MQ => self.unlock(req),
            code => Err(Refusal::new(
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!("request code {code} is not supported (docs/protocol.md lists what is)"),
            )),
        }
    }

    /// The opaque of a request this server sends.
    fn next_opaque(&self) -> i32 {
        self.next_opaque.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells a group's other members to rebalance.
    async fn notify_group_changed(&self, tenant: &str, group: &str, members: Vec<mpsc::Sender<Command>>) {
        if members.is_empty() {
            return;
        }
        let opaque = self.next_opaque();
        let mut notice = Command::request(request::NOTIFY_CONSUMER_IDS_CHANGED, opaque);
        notice.flag = FLAG_ONEWAY;
        notice
            .ext_fields
            .insert("consumerGroup".into(), names::join(tenant, group));
        for m in members {
            let _ = m.try_send(notice.clone());
        }
    }
}
