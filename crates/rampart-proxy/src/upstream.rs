//! Upstream pools: pooled connections per target, round robin, passive health, optional TLS.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use std::time::Instant;

use http::Uri;
use hyper::client::conn::http1;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rampart_config::Upstream;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::body::ProxyBody;

/// A pool for one upstream: idle connections and the health of each target.
///
/// A request drives its upstream connection itself, in its own task, from the request head to
/// the last byte of the response body, then returns it here. No task per connection and no
/// channel hop between tasks per request: the cost of the proxy hop is the two HTTP/1.1
/// codecs and the syscalls. (Upgrades use `client`, whose connections run in tasks of their
/// own so that they can be handed over to the tunnel.)
#[derive(Debug)]
pub struct UpstreamPool {
    /// The compiled upstream.
    pub spec: Arc<Upstream>,
    /// A client whose connections run in their own tasks: for upgrades (WebSocket).
    pub client: Client<Connector, ProxyBody>,
    connector: Connector,
    bases: Vec<Uri>,
    idle: Vec<Mutex<Vec<PooledConn>>>,
    next: AtomicUsize,
    health: Vec<TargetHealth>,
}

/// An HTTP/1.1 connection to a target, driven by whoever holds it.
pub struct PooledConn {
    send: http1::SendRequest<ProxyBody>,
    driver: Option<Pin<Box<http1::Connection<Stream, ProxyBody>>>>,
    idle_since: Instant,
    /// True when the connection served a request before (a failure on it may be a race with
    /// the upstream closing it, not the target's fault).
    pub reused: bool,
}

impl std::fmt::Debug for PooledConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConn")
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

impl PooledConn {
    /// Moves the connection's IO forward; returns false once the connection is finished.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(d) = self.driver.as_mut() else {
            return false;
        };
        match d.as_mut().poll(cx) {
            Poll::Ready(_) => {
                self.driver = None;
                false
            }
            Poll::Pending => true,
        }
    }

    /// Sends a request and drives the connection until the response head arrives. A request
    /// that never left (the connection was not ready) comes back with the error.
    #[allow(clippy::result_large_err)]
    pub async fn send(
        &mut self,
        req: http::Request<ProxyBody>,
    ) -> Result<
        http::Response<hyper::body::Incoming>,
        hyper::client::conn::TrySendError<http::Request<ProxyBody>>,
    > {
        let mut fut = std::pin::pin!(self.send.try_send_request(req));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            self.drive(cx);
            // The driver may have completed the response while it ran.
            fut.as_mut().poll(cx)
        })
        .await
    }

    /// True if the connection is open and ready for another request. Polls it once without a
    /// waker to notice a close by the upstream.
    fn reusable(&mut self) -> bool {
        if self.send.is_closed() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if !self.drive(&mut cx) {
            return false;
        }
        matches!(self.send.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }
}

#[derive(Debug, Default)]
struct TargetHealth {
    failures: AtomicU32,
    down_until_ms: AtomicU64,
}

impl UpstreamPool {
    /// Builds the pool for an upstream.
    pub fn new(spec: Arc<Upstream>) -> Self {
        let connector = Connector {
            tls: spec.tls.clone(),
            server_name: spec.tls_server_name.clone(),
            connect_timeout: spec.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(spec.pool_idle_timeout)
            .pool_max_idle_per_host(spec.max_idle_per_target)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector.clone());
        let health = spec
            .targets
            .iter()
            .map(|_| TargetHealth::default())
            .collect();
        let bases = spec
            .targets
            .iter()
            .map(|t| {
                Uri::builder()
                    .scheme(t.scheme.clone())
                    .authority(t.authority.clone())
                    .path_and_query("/")
                    .build()
                    .unwrap_or_default()
            })
            .collect();
        let idle = spec
            .targets
            .iter()
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        Self {
            spec,
            client,
            connector,
            bases,
            idle,
            next: AtomicUsize::new(0),
            health,
        }
    }

    /// Takes an idle connection to target `i`, or opens one.
    pub async fn checkout(&self, i: usize) -> io::Result<PooledConn> {
        loop {
            let conn = self.idle[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let Some(mut conn) = conn else { break };
            if conn.idle_since.elapsed() < self.spec.pool_idle_timeout && conn.reusable() {
                conn.reused = true;
                return Ok(conn);
            }
        }
        self.connect(i).await
    }

    /// Opens a new connection to target `i`.
    async fn connect(&self, i: usize) -> io::Result<PooledConn> {
        let mut connector = self.connector.clone();
        let stream = tower_service::Service::call(&mut connector, self.bases[i].clone()).await?;
        let (send, conn) = http1::Builder::new()
            .handshake::<_, ProxyBody>(stream)
            .await
            .map_err(io::Error::other)?;
        Ok(PooledConn {
            send,
            driver: Some(Box::pin(conn)),
            idle_since: Instant::now(),
            reused: false,
        })
    }

    /// Sends a request to target `i` on a pooled connection (or a new one), and returns the
    /// response head with the connection, which the response body must then drive. When a
    /// pooled connection turns out closed before the request left, the request goes once more
    /// on a new connection, whatever its method: it never reached the upstream.
    pub async fn send(
        &self,
        i: usize,
        req: http::Request<ProxyBody>,
        timeout: std::time::Duration,
    ) -> Result<(http::Response<hyper::body::Incoming>, PooledConn), SendError> {
        let mut conn = self.checkout(i).await.map_err(SendError::connect)?;
        match tokio::time::timeout(timeout, conn.send(req)).await {
            Err(_) => Err(SendError::Timeout),
            Ok(Ok(rsp)) => Ok((rsp, conn)),
            Ok(Err(mut e)) => match e.take_message() {
                Some(req) if conn.reused => {
                    let mut fresh = self.connect(i).await.map_err(SendError::connect)?;
                    match tokio::time::timeout(timeout, fresh.send(req)).await {
                        Err(_) => Err(SendError::Timeout),
                        Ok(Ok(rsp)) => Ok((rsp, fresh)),
                        Ok(Err(e)) => Err(SendError::Request {
                            reused: false,
                            message: e.into_error().to_string(),
                        }),
                    }
                }
                _ => Err(SendError::Request {
                    reused: conn.reused,
                    message: e.into_error().to_string(),
                }),
            },
        }
    }

    /// Returns a connection whose exchange is complete.
    pub fn checkin(&self, i: usize, mut conn: PooledConn) {
        if conn.driver.is_none() || conn.send.is_closed() {
            return;
        }
        conn.idle_since = Instant::now();
        let mut idle = self.idle[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.spec.max_idle_per_target {
            idle.push(conn);
        }
    }

    /// Drops idle connections that the upstream closed or that idled too long.
    pub fn sweep(&self) {
        for slot in &self.idle {
            let mut idle = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let timeout = self.spec.pool_idle_timeout;
            idle.retain_mut(|c| c.idle_since.elapsed() < timeout && c.reusable());
        }
    }
    /// Picks a target round robin among the healthy ones, skipping `avoid`. When every target
    /// is down, the one that comes back soonest is tried anyway (better than refusing all).
    pub fn pick(&self, now_ms: u64, avoid: Option<usize>) -> usize {
        let n = self.spec.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % n;
            if Some(i) == avoid && n > 1 {
                continue;
            }
            if self.health[i].down_until_ms.load(Ordering::Relaxed) <= now_ms {
                return i;
            }
        }
        (0..n)
            .filter(|i| Some(*i) != avoid || n == 1)
            .min_by_key(|i| self.health[*i].down_until_ms.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Records the outcome of a request to target `i`.
    pub fn report(&self, i: usize, ok: bool, now_ms: u64) {
        let Some(h) = self.health.get(i) else { return };
        if ok {
            h.failures.store(0, Ordering::Relaxed);
            return;
        }
        let f = h.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if f >= self.spec.max_failures {
            let until = now_ms + u64::try_from(self.spec.cooldown.as_millis()).unwrap_or(u64::MAX);
            h.down_until_ms.store(until, Ordering::Relaxed);
            h.failures.store(0, Ordering::Relaxed);
            tracing::warn!(upstream = %self.spec.name, target = %self.spec.targets[i].authority, "Upstream target marked down.");
        }
    }

    /// Returns true if target `i` is currently skipped.
    pub fn is_down(&self, i: usize, now_ms: u64) -> bool {
        self.health
            .get(i)
            .is_some_and(|h| h.down_until_ms.load(Ordering::Relaxed) > now_ms)
    }
}

/// Why sending to an upstream target failed.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (nothing was sent).
    Connect(String),
    /// The request failed on the connection.
    Request {
        /// The connection had served requests before: the upstream may have closed it as we
        /// sent, which is not the target's fault.
        reused: bool,
        /// What went wrong.
        message: String,
    },
    /// No response head within the request timeout.
    Timeout,
}

impl SendError {
    fn connect(e: io::Error) -> Self {
        Self::Connect(e.to_string())
    }
}

/// Connects to targets: TCP with a timeout, then TLS for `https`.
#[derive(Clone, Debug)]
pub struct Connector {
    tls: Option<Arc<rustls::ClientConfig>>,
    server_name: Option<String>,
    connect_timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let server_name = self.server_name.clone();
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let tcp = tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port)))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            tcp.set_nodelay(true)?;
            if !https {
                return Ok(Stream::Plain(TokioIo::new(tcp)));
            }
            let cfg = tls.ok_or_else(|| io::Error::other("https target without TLS settings"))?;
            let name = ServerName::try_from(server_name.unwrap_or(host))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = tokio::time::timeout(
                timeout,
                tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
            Ok(Stream::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

/// A connection to a target.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TokioIo<TcpStream>),
    /// TLS over TCP.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
