//! The admin listener (a first version; the full admin API comes with `rampart-admin`):
//! `/healthz`, `/readyz`, `/metrics`, `GET /api/v1/status` and `POST /api/v1/reload`.
//!
//! Everything but the health probes needs the bearer token when one is configured; it is
//! compared in constant time.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::ProxyBody;
use crate::server::{reload_from_file, ReloadOutcome, Shared};

pub(crate) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            a = tcp.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<ProxyBody> {
    reply(status, "application/json", v.to_string())
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => return Ok(reply(StatusCode::OK, "text/plain", "ok\n")),
        (&Method::GET, "/readyz") => {
            return Ok(if shared.ready.load(Ordering::Relaxed) {
                reply(StatusCode::OK, "text/plain", "ready\n")
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "shutting down\n",
                )
            })
        }
        _ => {}
    }
    let token = shared
        .state
        .load()
        .snapshot
        .admin
        .as_ref()
        .and_then(|a| a.token.clone());
    if let Some(token) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            let mut r = json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({ "error": "unauthenticated" }),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"rampart-admin\""),
            );
            return Ok(r);
        }
    }
    Ok(match (req.method(), path.as_str()) {
        (&Method::GET, "/metrics") => match &shared.metrics {
            Some(h) => reply(StatusCode::OK, "text/plain; version=0.0.4", h.render()),
            None => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "metrics recorder not installed\n",
            ),
        },
        (&Method::GET, "/api/v1/status") => {
            let snap = shared.state.load().snapshot.clone();
            let stats = shared.events.stats();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "config": snap.source.name,
                    "apis": snap.apis.iter().map(|a| a.name.to_string()).collect::<Vec<_>>(),
                    "listeners": snap.listeners.iter().map(|l| serde_json::json!({"name": &*l.name, "bind": l.bind.to_string(), "tls": l.tls.is_some()})).collect::<Vec<_>>(),
                    "events": {
                        "queued": stats.queued.load(Ordering::Relaxed),
                        "dropped": stats.dropped.load(Ordering::Relaxed),
                        "stored": stats.stored.load(Ordering::Relaxed),
                    },
                }),
            )
        }
        (&Method::POST, "/api/v1/reload") => match reload_from_file(&shared).await {
            ReloadOutcome::Applied => {
                json(StatusCode::OK, &serde_json::json!({ "outcome": "applied" }))
            }
            ReloadOutcome::Rejected {
                diagnostics,
                rendered,
            } => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &serde_json::json!({
                    "outcome": "rejected",
                    "diagnostics": diagnostics.iter().map(|d| serde_json::json!({
                        "path": d.path, "message": d.message, "help": d.help,
                        "line": d.span.map(|s| s.line), "column": d.span.map(|s| s.col),
                    })).collect::<Vec<_>>(),
                    "rendered": rendered,
                }),
            ),
        },
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "not_found" }),
        ),
    })
}
