//! The gateway: listeners, connections, reload and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rampart_config::{Listener, Snapshot};
use rampart_core::{Clock, Diagnostic, SystemClock, UnixMillis};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::conn::ConnLimiter;
use crate::events::{EventBus, EventWriter};
use crate::handler::{self, ConnCtx};
use crate::stats::LiveStats;
use crate::upstream::UpstreamPool;
use crate::{telemetry, tlsinfo};

/// The live configuration and the resources compiled from it.
#[derive(Debug)]
pub struct State {
    /// The compiled configuration.
    pub snapshot: Arc<Snapshot>,
    /// Upstream pools by name.
    pub pools: HashMap<String, Arc<UpstreamPool>>,
}

impl State {
    fn new(snapshot: Arc<Snapshot>) -> Self {
        let pools: HashMap<String, Arc<UpstreamPool>> = snapshot
            .upstreams
            .iter()
            .map(|(n, u)| (n.clone(), Arc::new(UpstreamPool::new(u.clone()))))
            .collect();
        for pool in pools.values() {
            // Closes idle connections the upstream closed or that idled too long; ends when a
            // reload replaces the pool.
            let weak = Arc::downgrade(pool);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        let Some(pool) = weak.upgrade() else { return };
                        pool.sweep();
                    }
                });
            }
        }
        Self { snapshot, pools }
    }
}

/// What every connection and request shares.
#[derive(Debug)]
pub struct Shared {
    /// The live state; each request loads it once.
    pub state: ArcSwap<State>,
    /// The event bus.
    pub events: EventBus,
    /// The clock stages see.
    pub clock: Arc<dyn Clock>,
    /// Whether access logging is on.
    pub access_log: bool,
    /// Whether the gateway serves (false while shutting down).
    pub ready: AtomicBool,
    /// The config file, for reloads.
    pub config_path: Option<PathBuf>,
    /// Serialises reloads.
    pub reload_lock: tokio::sync::Mutex<()>,
    /// The outcome of the last reload.
    pub last_reload: Mutex<Option<(UnixMillis, ReloadOutcome)>>,
    /// The metrics handle.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Live statistics for the admin plane.
    pub live: LiveStats,
    /// The traffic recorder, when the configuration enables it (replaced when a reload
    /// changes its settings).
    pub recorder: arc_swap::ArcSwapOption<crate::recorder::Recorder>,
    /// API discovery, when the configuration enables it (kept across reloads, so what was
    /// learned stays).
    pub discovery: arc_swap::ArcSwapOption<crate::discovery::Discovery>,
}

/// Per-connection bookkeeping.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) in_flight: AtomicUsize,
    pub(crate) completed: AtomicUsize,
    pub(crate) cancelled: AtomicUsize,
    pub(crate) max_resets: usize,
    pub(crate) kill: Notify,
    /// Counts reads and writes; the idle watchdog compares it between ticks (no clock read on
    /// the IO path).
    activity: AtomicU64,
}

impl ConnState {
    fn touch(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }
}

/// The result of a reload.
#[derive(Clone, Debug)]
pub enum ReloadOutcome {
    /// The new configuration serves.
    Applied,
    /// The new configuration was refused; the old one still serves.
    Rejected {
        /// Every problem.
        diagnostics: Vec<Diagnostic>,
        /// The problems rendered with carets.
        rendered: String,
    },
}

impl ReloadOutcome {
    /// Returns true for an applied reload.
    pub fn is_applied(&self) -> bool {
        matches!(self, Self::Applied)
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("cannot bind listener {name} on {addr}: {error}")]
    Bind {
        /// The listener.
        name: String,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        error: std::io::Error,
    },
    /// The event sinks could not start.
    #[error("{0}")]
    Events(String),
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
    addrs: Vec<(String, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    conns: Arc<AtomicUsize>,
    writer: Option<EventWriter>,
}

impl Gateway {
    /// Binds every listener and starts serving `snapshot`. `config_path` enables reloads from
    /// the file.
    pub async fn start(
        snapshot: Snapshot,
        config_path: Option<PathBuf>,
    ) -> Result<Self, StartError> {
        let metrics = telemetry::install();
        telemetry::describe();
        let (events, writer) = EventBus::start(&snapshot.events).map_err(StartError::Events)?;
        let access_log = snapshot.events.access_log != rampart_config::Output::Off;
        prepare(&snapshot, None).await;
        let snapshot = Arc::new(snapshot);
        let shared = Arc::new(Shared {
            state: ArcSwap::from_pointee(State::new(snapshot.clone())),
            events,
            clock: Arc::new(SystemClock),
            access_log,
            ready: AtomicBool::new(true),
            config_path,
            reload_lock: tokio::sync::Mutex::new(()),
            last_reload: Mutex::new(None),
            metrics,
            live: LiveStats::new(SystemClock.now_ms()),
            recorder: arc_swap::ArcSwapOption::empty(),
            discovery: arc_swap::ArcSwapOption::empty(),
        });
        start_recorder(&shared, &snapshot);
        start_discovery(&shared, &snapshot);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let conns = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        let mut addrs = Vec::new();
        for l in &snapshot.listeners {
            let tcp = TcpListener::bind(l.bind)
                .await
                .map_err(|error| StartError::Bind {
                    name: l.name.to_string(),
                    addr: l.bind,
                    error,
                })?;
            let local = tcp.local_addr().map_err(|error| StartError::Bind {
                name: l.name.to_string(),
                addr: l.bind,
                error,
            })?;
            addrs.push((l.name.to_string(), local));
            let limiter = Arc::new(ConnLimiter::default());
            tasks.push(tokio::spawn(accept_loop(
                shared.clone(),
                l.name.clone(),
                tcp,
                limiter,
                shutdown_rx.clone(),
                conns.clone(),
            )));
            tracing::info!(listener = %l.name, addr = %local, tls = l.tls.is_some(), "Listening.");
        }
        Ok(Self {
            shared,
            addrs,
            shutdown,
            tasks,
            conns,
            writer: Some(writer),
        })
    }

    /// Returns the bound address of a listener (useful with port 0).
    pub fn addr(&self, listener: &str) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|(n, _)| n == listener)
            .map(|(_, a)| *a)
    }

    /// A receiver that turns true when the gateway shuts down (for the admin listener).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Returns the shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Returns the configuration serving now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.state.load().snapshot.clone()
    }

    /// Returns the event bus.
    pub fn events(&self) -> &EventBus {
        &self.shared.events
    }

    /// Swaps in a new configuration, unless it changes what cannot change while running.
    pub async fn reload(&self, snapshot: Snapshot) -> ReloadOutcome {
        apply_reload(&self.shared, snapshot).await
    }

    /// Reloads from the config file (compiled off the async workers).
    pub async fn reload_file(&self) -> ReloadOutcome {
        reload_from_file(&self.shared).await
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), and writes
    /// the queued events.
    pub async fn shutdown(mut self) {
        self.shared.ready.store(false, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        let grace = self.snapshot().proxy.shutdown_grace;
        let deadline = Instant::now() + grace;
        while self.conns.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in &self.tasks {
            t.abort();
        }
        self.shared.events.flush().await;
        if let Some(d) = self.shared.discovery.load_full() {
            let _ = tokio::task::spawn_blocking(move || d.save()).await;
        }
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.stop()).await;
        }
    }
}

/// How long starting or reloading waits for the keys of JWT providers fetched from URLs.
const KEYS_WAIT: Duration = Duration::from_secs(5);

/// Starts the background work of a snapshot (JWKS refresh), taking over what `previous` had
/// for the same sources, and waits a little for keys that are not there yet: requests then
/// find them, instead of failing while the first fetch runs.
async fn prepare(snapshot: &Snapshot, previous: Option<&Snapshot>) {
    use rampart_stages::ratelimit::Backend;
    match (
        &snapshot.limit_store,
        previous.and_then(|p| p.limit_store.as_ref()),
    ) {
        (Some(Backend::Memory(new)), Some(Backend::Memory(old))) => new.inherit(old),
        (Some(Backend::Redis(new)), Some(Backend::Redis(old))) => new.inherit(old),
        _ => {}
    }
    if let Some(Backend::Redis(store)) = &snapshot.limit_store {
        store.start();
    }
    if let Some(guard) = &snapshot.ddos {
        if let Some(old) = previous.and_then(|p| p.ddos.as_ref()) {
            guard.inherit(old);
        }
        if let Some(Backend::Redis(store)) = &snapshot.limit_store {
            // Bans made by any node reach every node.
            guard.share_through(store.clone());
            let bans = guard.bans();
            store.listen_for_bans(move |kind, key, until| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                match kind {
                    "ban" => {
                        bans.ban(key, until, now);
                    }
                    "unban" => {
                        bans.unban(key);
                    }
                    _ => {}
                }
            });
        }
    }
    for ks in &snapshot.key_sources {
        if let Some(old) =
            previous.and_then(|p| p.key_sources.iter().find(|o| o.url_str() == ks.url_str()))
        {
            ks.inherit(old);
        }
        ks.start();
    }
    for ks in &snapshot.key_sources {
        if !ks.wait_loaded(KEYS_WAIT).await {
            tracing::warn!(
                provider = %ks.provider,
                "The keys of this identity provider are not loaded yet; its tokens get the API's on_error until they are."
            );
        }
    }
}

/// Applies a compiled configuration.
pub async fn apply_reload(shared: &Shared, snapshot: Snapshot) -> ReloadOutcome {
    let current = shared.state.load().snapshot.clone();
    let conflicts = rampart_config::reload_conflicts(&current, &snapshot);
    if conflicts.is_empty() {
        prepare(&snapshot, Some(&current)).await;
    }
    let outcome = if conflicts.is_empty() {
        if snapshot.recording != current.recording {
            start_recorder(shared, &snapshot);
        }
        if snapshot.discovery != current.discovery {
            start_discovery(shared, &snapshot);
        }
        shared.state.store(Arc::new(State::new(Arc::new(snapshot))));
        tracing::info!("Configuration reloaded.");
        ReloadOutcome::Applied
    } else {
        let rendered = rampart_config::render::render(
            &conflicts,
            &snapshot.source.name,
            &snapshot.source.text,
        );
        tracing::error!("Reload rejected; the old configuration keeps serving:\n{rendered}");
        ReloadOutcome::Rejected {
            diagnostics: conflicts,
            rendered,
        }
    };
    record(shared, &outcome);
    outcome
}

/// Starts the recorder `snapshot` asks for (or stops it); the previous one finishes writing
/// what it has queued.
fn start_recorder(shared: &Shared, snapshot: &Snapshot) {
    let next = match &snapshot.recording {
        None => None,
        Some(cfg) => match crate::recorder::Recorder::start(cfg, &snapshot.source.text) {
            Ok(r) => {
                tracing::info!(path = %cfg.writer.path.display(), sample_rate = cfg.sample_rate, "Recording traffic.");
                Some(r)
            }
            Err(e) => {
                tracing::error!(error = %e, "The traffic recorder could not start; nothing is recorded.");
                None
            }
        },
    };
    shared.recorder.store(next);
}

/// Starts discovery when `snapshot` enables it and it is not running, stops it when it does
/// not; a running worker keeps what it learned.
fn start_discovery(shared: &Shared, snapshot: &Snapshot) {
    match &snapshot.discovery {
        None => shared.discovery.store(None),
        Some(s) if shared.discovery.load().is_some() => {
            if let Some(d) = &*shared.discovery.load() {
                d.sessions.store(Arc::new(s.session.clone()));
            }
        }
        Some(s) => match crate::discovery::Discovery::start(s) {
            Ok(d) => shared.discovery.store(Some(d)),
            Err(e) => tracing::error!(error = %e, "API discovery could not start."),
        },
    }
}

fn record(shared: &Shared, outcome: &ReloadOutcome) {
    metrics::counter!("rampart_config_reloads_total", "outcome" => if outcome.is_applied() { "applied" } else { "rejected" }).increment(1);
    *shared
        .last_reload
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((shared.clock.now_ms(), outcome.clone()));
}

/// Reads, compiles and applies the config file.
pub async fn reload_from_file(shared: &Arc<Shared>) -> ReloadOutcome {
    let _guard = shared.reload_lock.lock().await;
    let Some(path) = shared.config_path.clone() else {
        let d = Diagnostic {
            path: String::new(),
            message: "no configuration file to reload from".to_owned(),
            help: None,
            file: None,
            span: None,
            value_span: None,
        };
        return ReloadOutcome::Rejected {
            rendered: d.message.clone(),
            diagnostics: vec![d],
        };
    };
    let loaded = tokio::task::spawn_blocking(move || rampart_config::load_file(&path)).await;
    match loaded {
        Ok(Ok(snapshot)) => apply_reload(shared, snapshot).await,
        Ok(Err(e)) => {
            let rendered = e.render();
            tracing::error!("Reload rejected; the old configuration keeps serving:\n{rendered}");
            let outcome = ReloadOutcome::Rejected {
                diagnostics: e.diagnostics,
                rendered,
            };
            record(shared, &outcome);
            outcome
        }
        Err(e) => {
            let d = Diagnostic {
                path: String::new(),
                message: format!("reload task failed: {e}"),
                help: None,
                file: None,
                span: None,
                value_span: None,
            };
            ReloadOutcome::Rejected {
                rendered: d.message.clone(),
                diagnostics: vec![d],
            }
        }
    }
}

/// Watches for SIGHUP and for changes of the config file (polled every `poll`), and reloads.
pub fn spawn_reload_watchers(shared: Arc<Shared>, poll: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(path) = shared.config_path.clone() else {
            return;
        };
        let read = |p: &PathBuf| std::fs::read(p).ok();
        let mut last = read(&path);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        // A zero interval turns polling off (SIGHUP and the admin API still reload).
        let mut tick = tokio::time::interval(poll.max(Duration::from_millis(1)));
        let polling = !poll.is_zero();
        loop {
            #[cfg(unix)]
            let hup_fut = async {
                match hup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup_fut = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = hup_fut => {
                    tracing::info!("SIGHUP: reloading the configuration.");
                    last = read(&path);
                    reload_from_file(&shared).await;
                }
                _ = tick.tick(), if polling => {
                    // Compare contents, not timestamps: this survives atomic renames and
                    // symlink swaps (Kubernetes ConfigMaps).
                    let now = read(&path);
                    if now.is_some() && now != last {
                        last = now;
                        tracing::info!("Configuration file changed: reloading.");
                        reload_from_file(&shared).await;
                    }
                }
            }
        }
    })
}

async fn accept_loop(
    shared: Arc<Shared>,
    name: Arc<str>,
    tcp: TcpListener,
    limiter: Arc<ConnLimiter>,
    mut shutdown: watch::Receiver<bool>,
    conns: Arc<AtomicUsize>,
) {
    let label = name.to_string();
    loop {
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(listener) = shared.state.load().snapshot.listener(&name).cloned() else {
            continue;
        };
        let ip = rampart_core::iptable::canonical(peer.ip());
        let permit = match limiter.try_acquire(
            ip,
            listener.limits.max_connections,
            listener.limits.max_connections_per_ip,
        ) {
            Ok(p) => p,
            Err(refusal) => {
                metrics::counter!("rampart_connections_refused_total", "listener" => label.clone(), "reason" => refusal.as_str()).increment(1);
                drop(stream);
                continue;
            }
        };
        metrics::counter!("rampart_connections_total", "listener" => label.clone()).increment(1);
        metrics::gauge!("rampart_connections_active", "listener" => label.clone())
            .set(limiter.open() as f64);
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let conns = conns.clone();
        let limiter = limiter.clone();
        let label = label.clone();
        conns.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            serve_conn(shared, listener, stream, peer, shutdown).await;
            drop(permit);
            metrics::gauge!("rampart_connections_active", "listener" => label)
                .set(limiter.open() as f64);
            conns.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn serve_conn(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnState {
        in_flight: AtomicUsize::new(0),
        completed: AtomicUsize::new(0),
        cancelled: AtomicUsize::new(0),
        max_resets: listener.limits.h2_max_pending_reset_streams,
        kill: Notify::new(),
        activity: AtomicU64::new(0),
    });
    match listener.tls.clone() {
        None => {
            let io = ActivityIo {
                inner: TokioIo::new(stream),
                state: state.clone(),
            };
            let h2 = listener.http2;
            serve_http(
                shared,
                listener,
                io,
                peer,
                None,
                state,
                shutdown,
                if h2 { Proto::Auto } else { Proto::H1 },
            )
            .await;
        }
        Some(cfg) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            let tls = match tokio::time::timeout(
                listener.limits.handshake_timeout,
                acceptor.accept(stream),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    metrics::counter!("rampart_connections_refused_total", "listener" => listener.name.to_string(), "reason" => "tls_handshake").increment(1);
                    tracing::debug!(%peer, error = %e, "TLS handshake failed.");
                    return;
                }
                Err(_) => {
                    metrics::counter!("rampart_connections_refused_total", "listener" => listener.name.to_string(), "reason" => "tls_handshake_timeout").increment(1);
                    return;
                }
            };
            let info = tlsinfo::tls_info(tls.get_ref().1);
            let proto = if info.alpn.as_deref() == Some("h2") {
                Proto::H2
            } else {
                Proto::H1
            };
            let io = ActivityIo {
                inner: TokioIo::new(tls),
                state: state.clone(),
            };
            serve_http(
                shared,
                listener,
                io,
                peer,
                Some(Arc::new(info)),
                state,
                shutdown,
                proto,
            )
            .await;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Auto,
    H1,
    H2,
}

#[allow(clippy::too_many_arguments)]
async fn serve_http<I>(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    io: I,
    peer: SocketAddr,
    tls: Option<Arc<rampart_core::TlsInfo>>,
    state: Arc<ConnState>,
    mut shutdown: watch::Receiver<bool>,
    proto: Proto,
) where
    I: Read + Write + Unpin + Send + 'static,
{
    let limits = &listener.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_reset_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = match proto {
        Proto::Auto => builder,
        Proto::H1 => builder.http1_only(),
        Proto::H2 => builder.http2_only(),
    };
    let idle_timeout = limits.idle_timeout;
    let ctx = Arc::new(ConnCtx {
        peer,
        listener: listener.clone(),
        tls,
        state: state.clone(),
    });
    let svc_shared = shared.clone();
    let svc = hyper::service::service_fn(move |req| {
        handler::handle(svc_shared.clone(), ctx.clone(), req)
    });
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let mut draining = *shutdown.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_activity = state.activity.load(Ordering::Relaxed);
    let mut idle_since = Instant::now();
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "Connection ended with an error.");
                    malformed_event(&shared, &listener, peer, &*e);
                }
                return;
            }
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = state.kill.notified() => {
                metrics::counter!("rampart_connections_refused_total", "listener" => listener.name.to_string(), "reason" => "rapid_reset").increment(1);
                tracing::warn!(%peer, "Connection closed: requests cancelled faster than completed (rapid reset).");
                return;
            }
            _ = tick.tick() => {
                let activity = state.activity.load(Ordering::Relaxed);
                if activity != last_activity || state.in_flight.load(Ordering::Acquire) > 0 {
                    last_activity = activity;
                    idle_since = Instant::now();
                } else if !draining && idle_since.elapsed() >= idle_timeout {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A request hyper could not parse (a request target with bytes RFC 9112 forbids, a header
/// line without a colon, a head over `max_header_bytes`) was answered 400 or 431 before any
/// stage saw it: it still becomes a security event, with no request id to tie it to.
fn malformed_event(
    shared: &Shared,
    listener: &Listener,
    peer: SocketAddr,
    e: &(dyn std::error::Error + 'static),
) {
    let Some(h) = e.downcast_ref::<hyper::Error>() else {
        return;
    };
    let status = if h.is_parse_too_large() {
        431
    } else if h.is_parse() {
        400
    } else {
        return;
    };
    shared.events.emit(rampart_core::SecurityEvent {
        time_ms: shared.clock.now_ms(),
        request_id: String::new(),
        client_ip: peer.ip().to_string(),
        listener: listener.name.to_string(),
        api: None,
        operation: None,
        consumer: None,
        method: String::new(),
        path: String::new(),
        stage: "proxy".to_owned(),
        rule: None,
        action: rampart_core::FindingAction::Block,
        reason: rampart_core::Reason::MalformedRequest.code().to_owned(),
        status: Some(status),
        detail: format!("unparsable request: {h}"),
    });
}

/// Wraps a connection's IO to note when bytes last moved (for the idle timeout).
struct ActivityIo<I> {
    inner: I,
    state: Arc<ConnState>,
}

impl<I: Read + Unpin> Read for ActivityIo<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if r.is_ready() {
            self.state.touch();
        }
        r
    }
}

impl<I: Write + Unpin> Write for ActivityIo<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_ready() {
            self.state.touch();
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if r.is_ready() {
            self.state.touch();
        }
        r
    }
}
