//! The admin plane: a JSON REST API under `/api/v1` (described by its own OpenAPI document),
//! a dashboard rendered on the server under `/ui/`, `/metrics`, `/healthz` and `/readyz`, on
//! one listener (loopback by default, optionally TLS and mutual TLS).
//!
//! Both the API and the dashboard read the same state: the gateway's live statistics (an
//! in-memory ring fed by every exchange), its SQLite event store (read-only connection, WAL),
//! its DDoS guard's bans and its configuration. Every change made here (a ban, a reload) is
//! itself recorded as an audit event.
//!
//! Access: the API takes the bearer token; the dashboard takes a session cookie obtained by
//! logging in with the same token, and a CSRF token on every form. Failed attempts are limited
//! per client address. Only `/healthz`, `/readyz`, the login page and the static assets
//! (stylesheet, script: no data) answer without either.

// Handlers return a ready `Response` as their error (axum's idiom); its size does not matter
// on the admin plane.
#![allow(clippy::result_large_err)]

mod api;
pub mod auth;
mod charts;
mod redact;
mod ui;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_core::{Clock, FindingAction, SecurityEvent, SystemClock};
use rampart_proxy::{EventReader, Gateway, Shared};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use redact::redact_config;

use crate::auth::{FailureLimiter, Sessions, TokenHash, TokenSource};

/// The Content-Security-Policy of every admin response: no inline script or style, nothing
/// from elsewhere, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// The state every admin handler sees.
#[derive(Debug)]
pub struct AdminState {
    shared: Arc<Shared>,
    /// The hash of the generated token, used when the configuration names none.
    stored_hash: Option<TokenHash>,
    failures: FailureLimiter,
    sessions: Sessions,
    reader: Mutex<Option<(std::path::PathBuf, Arc<Mutex<EventReader>>)>>,
    /// Whether the listener is TLS (session cookies get `Secure`).
    tls: bool,
}

/// The client of an admin request, put on each request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl AdminState {
    fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// True when `given` is the admin token (compared as SHA-256 digests, in constant time).
    fn token_ok(&self, given: &str) -> bool {
        let want = match self
            .shared
            .state
            .load()
            .snapshot
            .admin
            .as_ref()
            .and_then(|a| a.token.clone())
        {
            Some(t) => auth::hash_token(&t),
            None => match self.stored_hash {
                Some(h) => h,
                None => return false,
            },
        };
        !given.is_empty() && auth::constant_time_eq(&auth::hash_token(given), &want)
    }

    /// The read-only event store connection of the running configuration, opened on first
    /// use (and again when a reload names another file).
    fn reader(&self) -> Result<Arc<Mutex<EventReader>>, String> {
        let snap = self.shared.state.load().snapshot.clone();
        let Some(path) = snap.events.sqlite.clone() else {
            return Err("the event store is off (events.sqlite: off)".to_owned());
        };
        let mut slot = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((p, r)) = &*slot {
            if *p == path {
                return Ok(r.clone());
            }
        }
        let r = Arc::new(Mutex::new(
            EventReader::open(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        ));
        *slot = Some((path, r.clone()));
        Ok(r)
    }

    /// Records a change made through the admin plane.
    fn audit(&self, peer: IpAddr, reason: &str, detail: String) {
        self.shared.events.emit(SecurityEvent {
            time_ms: self.now_ms(),
            request_id: String::new(),
            client_ip: peer.to_string(),
            listener: "admin".to_owned(),
            api: None,
            operation: None,
            consumer: Some("admin".to_owned()),
            method: String::new(),
            path: String::new(),
            stage: "admin".to_owned(),
            rule: None,
            action: FindingAction::Log,
            reason: reason.to_owned(),
            status: None,
            detail,
        });
    }
}

/// A running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    token: Option<String>,
    task: JoinHandle<()>,
    state: Arc<AdminState>,
}

impl AdminServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token, when it was generated at this start (to print once).
    pub fn generated_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `http://addr` or `https://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.state.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting (the gateway's shutdown stops it too).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound.
    #[error("admin listener {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        error: std::io::Error,
    },
    /// The generated token could not be read or stored.
    #[error("admin token: {0}")]
    Token(String),
}

/// Starts the admin listener of a gateway's configuration, if it has one. Stops when the
/// gateway shuts down.
pub async fn start(gateway: &Gateway) -> Result<Option<AdminServer>, AdminError> {
    let snap = gateway.snapshot();
    let Some(admin) = snap.admin.clone() else {
        return Ok(None);
    };
    let (stored_hash, generated) = if admin.token.is_some() {
        (None, None)
    } else {
        let (h, src) = auth::load_or_generate(&admin.token_hash_file).map_err(AdminError::Token)?;
        let generated = match src {
            TokenSource::Generated(t) => Some(t),
            TokenSource::Stored | TokenSource::Config => None,
        };
        (Some(h), generated)
    };
    let tcp = TcpListener::bind(admin.bind)
        .await
        .map_err(|error| AdminError::Bind {
            addr: admin.bind,
            error,
        })?;
    let addr = tcp.local_addr().map_err(|error| AdminError::Bind {
        addr: admin.bind,
        error,
    })?;
    let state = Arc::new(AdminState {
        shared: gateway.shared().clone(),
        stored_hash,
        failures: FailureLimiter::default(),
        sessions: Sessions::default(),
        reader: Mutex::new(None),
        tls: admin.tls.is_some(),
    });
    let app = router(state.clone());
    let task = tokio::spawn(serve(
        app,
        tcp,
        admin.tls.clone(),
        gateway.shutdown_signal(),
    ));
    tracing::info!(addr = %addr, tls = admin.tls.is_some(), "Admin listening.");
    Ok(Some(AdminServer {
        addr,
        token: generated,
        task,
        state,
    }))
}

async fn serve(
    app: Router,
    tcp: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer) = tokio::select! {
            a = tcp.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(Peer(peer));
                let mut app = app.clone();
                async move {
                    tower_service::Service::call(&mut app, req.map(axum::body::Body::new)).await
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    // A client without the required certificate fails here, before any HTTP.
                    let Ok(Ok(tls)) = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    else {
                        return;
                    };
                    let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

/// The whole admin router over a state.
pub fn router(state: Arc<AdminState>) -> Router {
    let protected_api = api::routes()
        .route("/metrics", get(api::metrics))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(api::readyz))
        .merge(protected_api)
        .merge(ui::routes(state.clone()))
        .fallback(|| async { api::error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The client address of a request (the accept loop puts it on every request).
fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.ip())
}

fn locked_out(retry_ms: u64) -> Response {
    let mut r = api::error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failures",
        "too many failed attempts from this address; wait and retry",
    );
    if let Ok(v) = HeaderValue::from_str(&retry_ms.div_ceil(1000).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn require_token(State(st): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let ip = peer_ip(&req);
    let now = st.now_ms();
    if let Some(ms) = st.failures.locked(ip, now) {
        return locked_out(ms);
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !st.token_ok(given) {
        st.failures.fail(ip, now);
        let mut r = api::error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rampart-admin\""),
        );
        return r;
    }
    next.run(req).await
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// The current time by the system clock (for callers without a gateway).
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}
