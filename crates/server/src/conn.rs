//! Serving connections so that a client that stalls or floods cannot starve the others.
//!
//! - Accepting: at most `max_connections` are served; more are answered `503 SlowDown` and closed. As many requests
//!   may be in flight over all connections (HTTP/2 multiplexes them); one more is answered `503 SlowDown`. An
//!   accept error (the open-file limit) backs off for a moment and is logged at most once a second.
//! - Each connection: its TLS handshake and each request's headers must arrive within `header_timeout`; with no
//!   request in flight it is closed after `idle_timeout` (also a client that sends nothing at all); a response the
//!   client stops reading fails after `stall_timeout` (request bodies have the same limit in the S3 front), and a
//!   connection sending a response that moves no byte for twice that (an HTTP/2 client withholding flow-control
//!   credit) is closed.
//! - Shutdown: listening stops, idle connections close, requests in flight finish (for up to [`DRAIN`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3ipfs_s3::S3Front;
use s3ipfs_s3::front::{LogThrottle, StallTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// How long shutdown waits for requests in flight.
pub const DRAIN: Duration = Duration::from_secs(30);
/// How long a connection closed for idleness may take to finish closing.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Accept errors logged per second at most.
static ACCEPT_ERRORS: LogThrottle = LogThrottle::new(1);
/// Concurrent HTTP/2 streams per connection (each may hold a file open).
const H2_STREAMS: u32 = 8;
/// Header fields per HTTP/1 request; the S3 front bounds the section's size (8 KiB) with S3's error.
const H1_HEADERS: usize = 512;

/// Connection limits and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// For a TLS handshake, and for each request's headers.
    pub header_timeout: Duration,
    /// How long a connection stays open with no request in flight.
    pub idle_timeout: Duration,
    /// How long a request body or a response write may make no progress.
    pub stall_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft),
    }
}

/// The connection limit for an open-file limit: two descriptors a connection (its socket and a file it reads or
/// writes) after a reserve for the stores.
pub fn connections_for(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(64) / 2).unwrap_or(usize::MAX).clamp(16, 10_000)
}

/// Accepts and serves connections until `shutdown` resolves, then drains them.
pub async fn serve(
    listener: TcpListener,
    front: S3Front,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Each request in flight may hold a file open: over all connections, no more than the descriptor budget allows.
    let requests = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        let service = Tracked { front: front.clone(), requests: Arc::clone(&requests), activity: None };
                        let (tls, stopping) = (tls.clone(), stopping.clone());
                        tokio::spawn(async move {
                            serve_connection(stream, peer, service, tls, limits, stopping).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tokio::spawn(refuse_busy(stream, tls.is_some()));
                    }
                }
            }
            // The peer gave up before the connection was accepted: nothing to back off from.
            Err(err) if matches!(err.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) => {}
            Err(err) => {
                // Typically the open-file limit: wait for descriptors to free up instead of spinning.
                backoff = (backoff * 2).clamp(Duration::from_millis(1), Duration::from_millis(100));
                if let Some(suppressed) = ACCEPT_ERRORS.admit() {
                    tracing::warn!(error = %err, suppressed, retry_ms = backoff.as_millis() as u64, "accept failed");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let in_flight = limits.max_connections - permits.available_permits();
    tracing::info!(connections = in_flight, "shutting down: draining connections");
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, permits.acquire_many(all)).await.is_err() {
        tracing::warn!("connections still open after the drain period are dropped");
    }
}

/// Answers a connection over the limit with `503 SlowDown` (plain HTTP; a TLS one is closed) and closes it.
async fn refuse_busy(mut stream: TcpStream, tls: bool) {
    if tls {
        return;
    }
    let body = s3ipfs_s3::front::error_xml("SlowDown", "Please reduce your request rate.", &[]);
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nRetry-After: 1\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Reading what the client sent before closing keeps the kernel from answering it with a reset, which
        // would make the client miss the 503.
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left -= n.min(left),
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: Tracked,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnLimits,
    stopping: watch::Receiver<bool>,
) {
    // Small requests and responses must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_io(stream, peer, service, limits, stopping).await,
        Some(acceptor) => match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => serve_io(stream, peer, service, limits, stopping).await,
            Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
    }
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    mut service: Tracked,
    limits: ConnLimits,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    service.activity = Some(Arc::clone(&activity));
    let mut builder = ConnBuilder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_headers(H1_HEADERS);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(H2_STREAMS);
    let io = StallIo { inner: io, timer: StallTimer::new(limits.stall_timeout), activity: Arc::clone(&activity) };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing: Option<Instant> = None;
    loop {
        // Looked at again at least every half stall timeout: a response may start stalling while the watchdog sleeps.
        let recheck = Instant::now() + (limits.stall_timeout / 2).max(Duration::from_millis(100));
        let wake = closing.unwrap_or_else(|| activity.deadline(&limits).min(recheck));
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(err) = done {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            // A shutdown, or the server gone (the sender dropped): finish what is in flight, then close.
            _ = stopping.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + DRAIN);
            }
            () = tokio::time::sleep_until(wake) => {
                match closing {
                    Some(_) => return,
                    None if activity.deadline(&limits) <= Instant::now() => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + CLOSE_GRACE);
                    }
                    None => {}
                }
            }
        }
    }
}

/// Requests in flight on a connection, since when it has had none, and when it last moved a byte.
struct Activity {
    in_flight: AtomicUsize,
    /// Requests whose response is being sent (its body exists).
    responding: AtomicUsize,
    idle_since: Mutex<Instant>,
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written, or response body frame produced.
    progress_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Activity {
            in_flight: AtomicUsize::new(0),
            responding: AtomicUsize::new(0),
            idle_since: Mutex::new(now),
            opened: now,
            progress_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// Records that the connection moved data.
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection is to be closed: with a response being sent, twice `stall_timeout` after it last moved
    /// data; with requests in flight whose responses are not ready (the server is still working: a large
    /// CompleteMultipartUpload), not before a full idle period from now; otherwise `idle_timeout` after its last
    /// request ended.
    fn deadline(&self, limits: &ConnLimits) -> Instant {
        if self.responding.load(Ordering::SeqCst) > 0 {
            let progress = self.opened + Duration::from_millis(self.progress_ms.load(Ordering::Relaxed));
            return progress + limits.stall_timeout * 2;
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Instant::now() + limits.idle_timeout;
        }
        self.idle_since.lock().map_or_else(|_| Instant::now(), |since| *since) + limits.idle_timeout
    }
}

/// A request in flight, until its response body is done or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    /// The response is ready: from now on the connection must move its bytes.
    fn responding(self) -> Responding {
        self.0.touch();
        self.0.responding.fetch_add(1, Ordering::SeqCst);
        Responding(self)
    }
}

/// A request whose response is being sent.
struct Responding(InFlight);

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.0.responding.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && let Ok(mut since) = self.0.idle_since.lock()
        {
            *since = Instant::now();
        }
    }
}

/// The S3 front, counting requests in flight on its connection and over all connections.
#[derive(Clone)]
struct Tracked {
    front: S3Front,
    requests: Arc<Semaphore>,
    /// The connection's; set when the connection starts.
    activity: Option<Arc<Activity>>,
}

/// `503 SlowDown`, for a request over the server's limit.
fn slow_down() -> http::Response<s3s::Body> {
    let xml = s3ipfs_s3::front::error_xml("SlowDown", "Please reduce your request rate.", &[]);
    let mut response = http::Response::new(s3s::Body::from(xml));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    response
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Tracked {
    type Response = http::Response<TrackedBody>;
    type Error = s3s::HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let in_flight = self.activity.as_ref().map(Activity::begin);
        let permit = Arc::clone(&self.requests).try_acquire_owned().ok();
        let front = self.front.clone();
        Box::pin(async move {
            let response = match permit {
                Some(_) => front.call(req).await?,
                None => slow_down(),
            };
            let sending = in_flight.map(InFlight::responding);
            Ok(response.map(|inner| TrackedBody { inner, sending, _permit: permit }))
        })
    }
}

/// A response body that keeps its request counted as in flight (on its connection and over all of them) until it
/// is sent or dropped.
struct TrackedBody {
    inner: s3s::Body,
    sending: Option<Responding>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if poll.is_ready()
            && let Some(sending) = &self.sending
        {
            sending.0.0.touch();
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose writes fail once they have made no progress for `timeout` (a client that stopped reading),
/// and which records every byte moved in its [`Activity`].
struct StallIo<I> {
    inner: I,
    timer: StallTimer,
    activity: Arc<Activity>,
}

impl<I> StallIo<I> {
    /// Passes a ready result through (recording progress when bytes moved: a flush with nothing to send is not
    /// progress); on `Pending`, arms the stall timer and fails once it fires.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>, moved: bool) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.timer.progressed();
            if moved {
                self.activity.touch();
            }
            return poll;
        }
        match self.timer.expired(cx) {
            true => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))),
            false => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallIo<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallIo<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        let moved = matches!(poll, Poll::Ready(Ok(n)) if n > 0);
        self.watch(cx, poll, moved)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        let moved = matches!(poll, Poll::Ready(Ok(n)) if n > 0);
        self.watch(cx, poll, moved)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll, false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_leaves_descriptors_for_each_connection_and_the_stores() {
        assert_eq!(connections_for(1024), 480);
        assert_eq!(connections_for(20_000), 9_968);
        assert_eq!(connections_for(1_048_576), 10_000);
        assert_eq!(connections_for(32), 16);
    }

    #[test]
    fn a_connection_is_timed_out_by_its_idle_period_or_by_a_stalled_response_but_not_while_the_server_works() {
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(10),
            max_connections: 1,
        };
        let activity = Arc::new(Activity::new());
        let idle = activity.deadline(&limits);
        assert!(idle <= activity.opened + Duration::from_secs(30));
        let request = activity.begin();
        std::thread::sleep(Duration::from_millis(20));
        let working = activity.deadline(&limits);
        assert!(working >= Instant::now() + Duration::from_secs(29), "a request being worked on postpones it");
        let response = request.responding();
        let sending = activity.deadline(&limits);
        assert!(sending <= Instant::now() + Duration::from_secs(20), "a response must keep moving");
        drop(response);
        assert!(activity.deadline(&limits) >= Instant::now() + Duration::from_secs(29), "idle again, from now");
    }

    #[tokio::test]
    async fn a_write_the_client_never_reads_fails_after_the_stall_timeout() {
        let (client, server) = tokio::io::duplex(1024);
        let activity = Arc::new(Activity::new());
        let mut io = StallIo { inner: server, timer: StallTimer::new(Duration::from_millis(50)), activity };
        let started = Instant::now();
        let result = io.write_all(&[0u8; 64 * 1024]).await;
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(client);
    }
}
