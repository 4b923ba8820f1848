//! Accepted connections: at most `max_connections` at once, closed after `idle_timeout`
//! without a byte or a running call, and closing their client session when they end.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

use super::Limits;
use super::guard::CallsInFlight;
use super::session::Sessions;
use tabssl_functions::setting::Setting;

/// A client's TCP connection; dropping it drops the client's session.
pub struct Connection {
    stream: TcpStream,
    peer: Option<SocketAddr>,
    sessions: Arc<Sessions>,
    calls: Arc<CallsInFlight>,
    _slot: OwnedSemaphorePermit,
    idle_timeout: Duration,
    /// When a byte last went either way.
    last_active: Instant,
    /// Wakes a reader waiting on a silent connection to check whether it is idle.
    idle_check: Pin<Box<Sleep>>,
}

impl Connection {
    fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// Whether the connection has been silent for the idle timeout with no call running;
    /// otherwise arms the next check (which wakes the task in `cx`).
    fn idle(&mut self, cx: &mut Context<'_>) -> bool {
        while self.idle_check.as_mut().poll(cx).is_ready() {
            let busy = self.peer.is_some_and(|peer| self.calls.any(peer));
            let next = if busy {
                Instant::now() + self.idle_timeout
            } else {
                self.last_active + self.idle_timeout
            };
            if !busy && next <= Instant::now() {
                return true;
            }
            self.idle_check.as_mut().reset(next);
        }
        false
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(peer) = self.peer {
            self.sessions.close(peer);
        }
    }
}

/// The connections accepted on `listener` (TCP_NODELAY set: answers are small and late).
/// Past `limits.max_connections`, a new connection is closed as soon as it is accepted,
/// so a client learns at once instead of waiting for a connect that never completes.
pub fn incoming(
    listener: tokio::net::TcpListener,
    sessions: Arc<Sessions>,
    calls: Arc<CallsInFlight>,
    limits: &Limits,
) -> impl Stream<Item = std::io::Result<Connection>> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (max_connections, idle_timeout) = (limits.max_connections, limits.idle_timeout);
    let refused = Arc::new(AtomicU64::new(0));
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .filter_map(move |accepted| {
            let connection = accepted.map(|stream| {
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                // Logged for the first refusal and every thousandth after it.
                if refused.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                    log::warn!(
                        target: "tabssl::serve",
                        "refused a connection from {}: {max_connections} connections are open ({}); {} refused so far",
                        stream.peer_addr().map_or_else(|_| "-".to_string(), |p| p.to_string()),
                        Setting::MaxConnections,
                        refused.load(Ordering::Relaxed)
                    );
                }
                return None;
            };
            Some(Connection {
                peer: stream.peer_addr().ok(),
                stream,
                sessions: Arc::clone(&sessions),
                calls: Arc::clone(&calls),
                _slot: slot,
                idle_timeout,
                last_active: Instant::now(),
                idle_check: Box::pin(tokio::time::sleep(idle_timeout)),
            })
        });
            std::future::ready(connection.transpose())
        })
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.idle(cx) => {
                log::info!(
                    target: "tabssl::serve",
                    "closed the connection from {}: nothing sent and no call running for {:?} ({})",
                    this.peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
                    this.idle_timeout,
                    Setting::IdleTimeout
                );
                // The end of the input: the server closes the connection.
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
