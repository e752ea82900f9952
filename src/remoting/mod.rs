//! The 4.x Remoting front: name server and broker on one TCP port, serving the same storage,
//! offsets, tenants and quotas as the gRPC front (docs/protocol.md, "Remoting").

mod clients;
mod consume;
mod convert;
mod fields;
mod lookup;
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
use tokio::sync::{Semaphore, mpsc};
use tracing::{Instrument, debug, info_span, warn};

use crate::connections::Limit;
use crate::front::Front;
use crate::gate::Credentials;
use clients::Clients;
use fields::{Fields, Handled, Refusal};
use strata_tenancy::Principal;

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
    /// How long the message index names messages (`ingest.index_window`).
    index_window: std::time::Duration,
}

/// Replies queued per connection before a slow reader holds up its requests.
const CONNECTION_QUEUE: usize = 1024;
/// Requests one connection may have in progress (long-polling pulls included); beyond it the
/// connection is read no further until one finishes, so one client cannot pile up tasks.
/// A 4.x consumer keeps one pull per assigned queue open.
const CONNECTION_REQUESTS: usize = 1024;

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

/// A request, who sent it, and the connection it came on.
struct Req<'a> {
    command: &'a Command,
    principal: Principal,
    peer: SocketAddr,
    connection: &'a mpsc::Sender<Command>,
}

impl std::ops::Deref for Req<'_> {
    type Target = Command;

    fn deref(&self) -> &Command {
        self.command
    }
}

impl Req<'_> {
    /// A resource name as this client sent it: a namespace prefix names the tenant, else the
    /// signed-in user's tenant.
    fn name(&self, raw: &str) -> names::Named {
        let default_tenant = match &self.principal {
            Principal::User(account) => account.user.tenant.as_str(),
            _ => "",
        };
        names::split(raw, default_tenant)
    }
}

/// What a 4.x ACL signature covers: every field's value in key order but the signature's,
/// then the body.
fn signed_content(c: &Command) -> Vec<u8> {
    let mut content: Vec<u8> = c
        .ext_fields
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .flat_map(|(_, v)| v.as_bytes().iter().copied())
        .collect();
    content.extend_from_slice(&c.body);
    content
}

impl Remoting {
    pub fn new(front: Front, broker: BrokerIdentity, max_frame: usize, index_window: std::time::Duration) -> Self {
        Self {
            front,
            broker,
            clients: Clients::default(),
            max_frame,
            next_opaque: std::sync::atomic::AtomicI32::new(1),
            index_window,
        }
    }

    /// Accepts connections, at most `limit` open at once, until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, limit: Limit) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Some(permit) = limit.admit(peer) else { continue };
                    let _ = stream.set_nodelay(true);
                    let this = Arc::clone(&self);
                    let span = info_span!("remoting_connection", peer = %peer);
                    tokio::spawn(
                        async move {
                            this.connection(stream, peer).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
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
        let in_progress = Arc::new(Semaphore::new(CONNECTION_REQUESTS));
        loop {
            match decode_frame(&mut buf, self.max_frame) {
                Ok(Some(command)) => {
                    if command.is_response() {
                        // Replies to what we sent (NOTIFY_CONSUMER_IDS_CHANGED is one-way).
                        continue;
                    }
                    let Ok(permit) = Arc::clone(&in_progress).acquire_owned().await else {
                        break;
                    };
                    let this = Arc::clone(&self);
                    let tx = tx.clone();
                    tokio::spawn(
                        async move {
                            let reply = this.handle(&command, peer, &tx).await;
                            if let Some(reply) = reply {
                                let _ = tx.send(reply).await;
                            }
                            drop(permit);
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
            self.notify_group_changed(self.clients.leave(&tenant, &group, &client, None));
        }
        drop(tx);
        let _ = writing.await;
    }

    /// Answers one request; `None` for a one-way request.
    async fn handle(&self, req: &Command, peer: SocketAddr, connection: &mpsc::Sender<Command>) -> Option<Command> {
        let span = info_span!("remoting", code = req.code, opaque = req.opaque);
        let answered = async {
            metrics::counter!("strata_remoting_requests_total", "code" => req.code.to_string()).increment(1);
            let principal = self.authenticate(req, peer).await?;
            self.dispatch(&Req {
                command: req,
                principal,
                peer,
                connection,
            })
            .await
        }
        .instrument(span)
        .await;
        if req.is_oneway() {
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

    /// Who sent a request: its 4.x ACL signature checked when authentication is on.
    async fn authenticate(&self, req: &Command, peer: SocketAddr) -> Handled<Principal> {
        if !self.front.gate.guard.enabled() {
            return Ok(Principal::Anyone);
        }
        let f = Fields(&req.ext_fields);
        let content = signed_content(req);
        let credentials = Credentials::Remoting {
            access_key: f.opt("AccessKey"),
            signature: f.opt("Signature"),
            content: &content,
        };
        self.front
            .gate
            .authenticate(credentials, Some(peer.ip()))
            .await
            .map_err(|e| Refusal::from_auth(&e))
    }

    async fn dispatch(&self, req: &Req<'_>) -> Handled<Reply> {
        match req.code {
            request::GET_ROUTEINFO_BY_TOPIC => self.route(req).await,
            request::GET_BROKER_CLUSTER_INFO => self.cluster_info().await,
            request::GET_KV_CONFIG => Err(Refusal::new(response::QUERY_NOT_FOUND, "no such configuration item")),
            request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => self.send(req).await,
            request::CONSUMER_SEND_MSG_BACK => self.send_back(req).await,
            request::END_TRANSACTION => self.end_transaction(req).await,
            request::PULL_MESSAGE => self.pull(req).await,
            request::QUERY_CONSUMER_OFFSET => self.query_consumer_offset(req).await,
            request::UPDATE_CONSUMER_OFFSET => self.update_consumer_offset(req).await,
            request::GET_MAX_OFFSET | request::GET_MIN_OFFSET | request::SEARCH_OFFSET_BY_TIMESTAMP => {
                self.queue_offset(req).await
            }
            request::GET_EARLIEST_MSG_STORETIME => self.earliest_store_time(req).await,
            request::VIEW_MESSAGE_BY_ID => self.view_message(req).await,
            request::QUERY_MESSAGE => self.query_message(req).await,
            request::HEART_BEAT => self.heartbeat(req).await,
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
    fn notify_group_changed(&self, members: Vec<clients::Notify>) {
        for m in members {
            let mut notice = Command::request(request::NOTIFY_CONSUMER_IDS_CHANGED, self.next_opaque());
            notice.flag = FLAG_ONEWAY;
            notice.ext_fields.insert("consumerGroup".into(), m.group_as_sent);
            // A full queue means the client is not reading: it rebalances on its own timer.
            let _ = m.connection.try_send(notice);
        }
    }
}
