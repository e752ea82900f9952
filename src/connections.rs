//! How many connections a listener holds at once. Each listener (gRPC, Remoting, HTTP) has its
//! own limit: a connection over it is accepted and closed at once (the client sees a reset
//! and retries elsewhere or later), counted in `strata_connections_refused_total{listener}`;
//! the connections already open go on. Without it, one client opening sockets in a loop
//! would take the node's memory and file descriptors from every tenant.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

/// A listener's budget of open connections.
#[derive(Clone)]
pub struct Limit {
    listener: &'static str,
    permits: Arc<Semaphore>,
}

impl Limit {
    pub fn new(listener: &'static str, max: usize) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(max)),
        }
    }

    /// A permit for a connection just accepted from `peer`, held as long as it is open; None
    /// when the listener holds its maximum (close the connection).
    pub fn admit(&self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok();
        if permit.is_none() {
            metrics::counter!("strata_connections_refused_total", "listener" => self.listener).increment(1);
            debug!(listener = self.listener, %peer, "connection refused: the listener holds its maximum");
        }
        permit
    }
}

/// An accepted TCP connection holding its listener's permit until it closes.
pub struct Limited {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Limited {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Limited {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// A TCP listener that holds at most its limit of connections (no Nagle on any of them: a
/// receive answers with several frames, and Nagle against the client's delayed ACK stalled
/// each such answer ~40 ms).
pub struct LimitedListener {
    listener: TcpListener,
    limit: Limit,
}

impl LimitedListener {
    pub fn new(listener: TcpListener, limit: Limit) -> Self {
        Self { listener, limit }
    }

    /// The next connection within the limit (those over it are closed as they come).
    pub async fn next(&mut self) -> (Limited, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    let Some(permit) = self.limit.admit(peer) else { continue };
                    let _ = stream.set_nodelay(true);
                    return (
                        Limited {
                            stream,
                            _permit: permit,
                        },
                        peer,
                    );
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    warn!(listener = self.limit.listener, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The connections as the gRPC server takes them.
    pub fn incoming(self) -> impl Stream<Item = io::Result<Limited>> {
        futures::stream::unfold(self, |mut l| async move {
            let (conn, _) = l.next().await;
            Some((Ok(conn), l))
        })
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = Limited;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Limited, SocketAddr) {
        self.next().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// The client address of an HTTP connection (axum's connection info for this listener).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, LimitedListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, LimitedListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn connections_over_the_limit_are_closed_and_the_others_go_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut limited = LimitedListener::new(listener, Limit::new("test", 1));
        let _first = TcpStream::connect(address).await.unwrap();
        let (held, _) = limited.next().await;
        let mut second = TcpStream::connect(address).await.unwrap();
        let mut third = TcpStream::connect(address).await.unwrap();
        // The second and third are accepted and closed while the first is held: the accept
        // loop runs on, waiting for a fourth.
        let accepting = tokio::spawn(async move { limited.next().await.1 });
        let mut buf = [0u8; 1];
        assert_eq!(second.read(&mut buf).await.unwrap_or(0), 0, "closed at once");
        assert_eq!(third.read(&mut buf).await.unwrap_or(0), 0);
        drop(held);
        let fourth = TcpStream::connect(address).await.unwrap();
        assert_eq!(accepting.await.unwrap(), fourth.local_addr().unwrap(), "room again");
    }
}
