//! Serving the application on a socket, with graceful shutdown.
//!
//! What one connection may hold is bounded: a connection that sends nothing within
//! [`HttpPolicy::first_byte_timeout`] is closed before HTTP is spoken; one that stays silent
//! (no byte read or written) for [`HttpPolicy::idle_timeout`] is asked to close (HTTP/1 after its
//! answer, HTTP/2 with GOAWAY) and dropped if it stays silent as long again; and at most
//! [`HttpPolicy::max_connections`] are open at once: past the cap, new connections wait in the
//! kernel's accept queue, not in the process's file table.
//!
//! [`HttpPolicy::first_byte_timeout`]: crate::HttpPolicy::first_byte_timeout
//! [`HttpPolicy::idle_timeout`]: crate::HttpPolicy::idle_timeout
//! [`HttpPolicy::max_connections`]: crate::HttpPolicy::max_connections

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::{Builder, Connection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;

/// How long open connections get to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The most header bytes a request may send (HTTP/1 read buffer, HTTP/2 header list); more
/// gets 431 (HTTP/1) or a stream reset (HTTP/2).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a client may take to send its request headers (slow-loris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// File descriptors kept free of connections for the store, logs and outgoing calls.
const RESERVED_FILES: u64 = 256;

/// Raises this process's soft limit on open files to its hard limit, so the connection cap, not
/// the default soft limit (often 1,024), is what bounds connections. Returns the soft limit in
/// force afterwards. Call once at start; `waddlebot serve` does.
pub fn raise_file_limit() -> io::Result<u64> {
    #[cfg(unix)]
    {
        let (_, hard) = rlimit::Resource::NOFILE.get()?;
        rlimit::increase_nofile_limit(hard)
    }
    #[cfg(not(unix))]
    {
        Ok(u64::MAX)
    }
}

/// The connection cap in force: the configured one, lowered to what the process's soft file
/// limit leaves after [`RESERVED_FILES`].
fn connection_cap(configured: usize) -> usize {
    #[cfg(unix)]
    let soft = rlimit::Resource::NOFILE
        .get()
        .map_or(u64::MAX, |(soft, _)| soft);
    #[cfg(not(unix))]
    let soft = u64::MAX;
    let room = usize::try_from(soft.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    configured.min(room).max(1)
}

/// A socket that notes when bytes move, for the idle timeout.
struct Watched {
    stream: TcpStream,
    active: Arc<AtomicBool>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.active.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.active.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.active.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown` completes, then lets open
/// connections finish for up to [`SHUTDOWN_GRACE`]. Connections are bounded by the app's
/// [`HttpPolicy`](crate::HttpPolicy) (first-byte and idle timeouts, a cap).
pub async fn serve(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let policy = app.state().http.clone();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let builder = Arc::new(builder);
    let cap = connection_cap(policy.max_connections);
    tracing::debug!(cap, "connection cap");
    let slots = Arc::new(Semaphore::new(cap));
    let closing = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first: past the cap, connections wait in the kernel's queue.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out at once, not held back by Nagle's algorithm.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %err, "cannot set TCP_NODELAY");
        }
        let service = app.for_peer(peer.ip());
        let builder = Arc::clone(&builder);
        let closing = closing.clone();
        let policy = policy.clone();
        connections.spawn(async move {
            let _slot = permit;
            // Nothing is read or allocated for a connection that has not sent a byte.
            let mut first = [0u8; 1];
            match tokio::time::timeout(policy.first_byte_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return,
                Err(_) => {
                    tracing::debug!(%peer, "connection closed: nothing sent within the first-byte timeout");
                    return;
                }
            }
            let active = Arc::new(AtomicBool::new(true));
            let io = TokioIo::new(Watched {
                stream,
                active: Arc::clone(&active),
            });
            let connection = builder.serve_connection(io, service).into_owned();
            if let Err(err) = drive(connection, &active, policy.idle_timeout, &closing).await {
                tracing::debug!(%peer, error = %err, "connection closed with an error");
            }
        });
    }
    drop(listener);
    app.close_streams();
    closing.cancel();
    connections.close();
    tracing::info!("shutting down; waiting for open connections");
    tokio::select! {
        () = connections.wait() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
        }
    }
}

/// Runs one connection: asks it to close when it has been silent for `idle` or the server
/// shuts down, and drops it when it stays silent for another `idle` (or [`SHUTDOWN_GRACE`] on
/// shutdown) without closing.
async fn drive(
    connection: Connection<'static, TokioIo<Watched>, App, TokioExecutor>,
    active: &AtomicBool,
    idle: Duration,
    closing: &CancellationToken,
) -> Result<(), crate::app::BoxError> {
    let mut connection = std::pin::pin!(connection);
    // Silence is measured in ticks of a quarter of the timeout: a flag set on each read or
    // write is cheaper than a clock read per byte moved.
    let tick = (idle / 4).max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    let mut silent_ticks = 0u32;
    // Once asked to close, how much more silence the connection gets before it is dropped (a
    // peer that never answers HTTP/2's GOAWAY ping, or never reads its answer).
    let mut asked_to_close: Option<Duration> = None;
    let mut silent_since_asked = Duration::ZERO;
    loop {
        tokio::select! {
            result = connection.as_mut() => return result,
            () = closing.cancelled(), if asked_to_close.is_none() => {
                asked_to_close = Some(SHUTDOWN_GRACE);
                connection.as_mut().graceful_shutdown();
            }
            _ = ticker.tick() => {
                if active.swap(false, Ordering::Relaxed) {
                    silent_ticks = 0;
                    silent_since_asked = Duration::ZERO;
                    continue;
                }
                silent_ticks += 1;
                if let Some(grace) = asked_to_close {
                    silent_since_asked += tick;
                    if silent_since_asked >= grace {
                        return Ok(());
                    }
                } else if silent_ticks >= 4 {
                    asked_to_close = Some(idle);
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
