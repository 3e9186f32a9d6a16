//! Upstream pools: pooled connections per target, round robin, passive health, optional TLS.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rampart_config::Upstream;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::body::ProxyBody;

/// A pool for one upstream: a pooled client and the health of each target.
#[derive(Debug)]
pub struct UpstreamPool {
    /// The compiled upstream.
    pub spec: Arc<Upstream>,
    /// The HTTP client (its pool is shared by all targets, keyed by authority).
    pub client: Client<Connector, ProxyBody>,
    next: AtomicUsize,
    health: Vec<TargetHealth>,
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
            .build(connector);
        let health = spec
            .targets
            .iter()
            .map(|_| TargetHealth::default())
            .collect();
        Self {
            spec,
            client,
            next: AtomicUsize::new(0),
            health,
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
