use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// What the upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body_len: usize,
    /// The request target was in absolute form (`GET http://host/path`), not origin form.
    pub absolute_form: bool,
}

/// A loopback upstream with a few routes:
/// - `/reflect`: returns the request body (streamed back; nothing is held in memory);
/// - `/echo`: returns JSON describing the request;
/// - `/json`: a fixed JSON document;
/// - `/slow?ms=N`: answers after N ms;
/// - `/status/N`: answers with status N;
/// - `/respond?status=N&ct=TYPE&h=NAME:VALUE`: answers with that status, content type (`none`
///   for no `Content-Type`) and header, and the request body as its body;
/// - `/big?bytes=N`: streams N bytes;
/// - `/ws`: a WebSocket echo server.
///
/// `set_failing(true)` makes every route answer 500.
#[derive(Debug)]
pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    count: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl TestUpstream {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> Self {
        Self::start_inner(addr, None, None).await
    }

    /// Starts an HTTPS upstream with the given certificate and key (PEM files).
    pub async fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Self {
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self::start_inner("127.0.0.1:0", Some(Arc::new(cfg)), None).await
    }

    pub fn https_url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.addr.port())
    }

    /// Starts an upstream that closes keep-alive connections idle for `idle_ms`.
    pub async fn start_closing_idle(idle_ms: u64) -> Self {
        Self::start_inner("127.0.0.1:0", None, Some(Duration::from_millis(idle_ms))).await
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    async fn start_inner(
        addr: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        idle: Option<Duration>,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, c, f, n) = (
            seen.clone(),
            count.clone(),
            failing.clone(),
            connections.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                n.fetch_add(1, Ordering::SeqCst);
                let (s, c, f) = (s.clone(), c.clone(), f.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        route(req, s.clone(), c.clone(), f.clone())
                    });
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    if let Some(idle) = idle {
                        // hyper's header-read timeout also runs while a keep-alive connection
                        // waits for its next request: an idle timeout.
                        builder
                            .http1()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(idle);
                    }
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await;
                        }
                        Some(cfg) => {
                            let Ok(tls) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await
                            else {
                                return;
                            };
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                                .await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            seen,
            count,
            connections,
            failing,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }

    pub fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(status: StatusCode, ct: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, ct.parse().unwrap());
    r
}

fn query(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

async fn route(
    mut req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    count: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
) -> Result<Response<Body>, Infallible> {
    count.fetch_add(1, Ordering::SeqCst);
    let mut record = Seen {
        method: req.method().to_string(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: req.headers().clone(),
        body_len: 0,
        absolute_form: req.uri().scheme().is_some(),
    };
    if failing.load(Ordering::SeqCst) {
        seen.lock().unwrap().push(record);
        return Ok(full(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "failing",
        ));
    }
    let path = req.uri().path().to_owned();
    if path == "/ws" {
        seen.lock().unwrap().push(record);
        let key = req.headers().get("sec-websocket-key").cloned();
        let Some(key) = key else {
            return Ok(full(StatusCode::BAD_REQUEST, "text/plain", "no key"));
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = on.await else { return };
            let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await;
            let (mut tx, mut rx) = ws.split();
            while let Some(Ok(msg)) = rx.next().await {
                if msg.is_text() || msg.is_binary() {
                    if tx.send(msg).await.is_err() {
                        break;
                    }
                } else if msg.is_close() {
                    break;
                }
            }
        });
        let mut r = Response::new(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert(header::CONNECTION, "upgrade".parse().unwrap());
        r.headers_mut()
            .insert(header::UPGRADE, "websocket".parse().unwrap());
        r.headers_mut()
            .insert("sec-websocket-accept", accept.parse().unwrap());
        return Ok(r);
    }
    if path == "/reflect" {
        // Stream the body straight back: memory stays bounded whatever its size.
        seen.lock().unwrap().push(record);
        let body = req.into_body();
        let stream = futures_util::stream::unfold(body, |mut b| async move {
            match b.frame().await {
                Some(Ok(f)) => Some((
                    Ok::<_, std::io::Error>(Frame::data(f.into_data().unwrap_or_default())),
                    b,
                )),
                _ => None,
            }
        });
        let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/octet-stream".parse().unwrap(),
        );
        return Ok(r);
    }
    let body = req
        .body_mut()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    record.body_len = body.len();
    let headers: BTreeMap<String, String> = record
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    seen.lock().unwrap().push(record.clone());
    Ok(match path.as_str() {
        "/echo" => full(
            StatusCode::OK,
            "application/json",
            serde_json::json!({
                "method": record.method,
                "path": record.path_and_query,
                "headers": headers,
                "body_len": record.body_len,
            })
            .to_string(),
        ),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(query(&req, "ms").unwrap_or(1000))).await;
            full(StatusCode::OK, "text/plain", "slow")
        }
        "/big" => {
            let n = query(&req, "bytes").unwrap_or(1 << 20);
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_util::stream::unfold(n, move |left| {
                let chunk = chunk.clone();
                async move {
                    if left == 0 {
                        return None;
                    }
                    let take = left.min(chunk.len() as u64);
                    Some((
                        Ok::<_, std::io::Error>(Frame::data(chunk.slice(..take as usize))),
                        left - take,
                    ))
                }
            });
            Response::new(StreamBody::new(stream).boxed_unsync())
        }
        "/respond" => {
            let q = req.uri().query().unwrap_or("").to_owned();
            let param = |k: &str| {
                q.split('&').find_map(|kv| {
                    let v = kv.strip_prefix(k)?.strip_prefix('=')?;
                    Some(
                        percent_encoding::percent_decode_str(v)
                            .decode_utf8_lossy()
                            .into_owned(),
                    )
                })
            };
            let status = param("status")
                .and_then(|s| s.parse().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::OK);
            let ct = param("ct").unwrap_or_else(|| "application/json".to_owned());
            // `ce=gzip|deflate|br`: the body compressed; `chunk=N`: sent in N-byte chunks
            // (chunked, no Content-Length).
            let ce = param("ce");
            let body: Bytes = match ce.as_deref() {
                Some(c) => Bytes::from(crate::compress(c, &body)),
                None => body,
            };
            let chunked = param("chunk").and_then(|n| n.parse::<usize>().ok());
            let mut r = match chunked {
                Some(n) => {
                    let pieces: Vec<Bytes> = (0..body.len())
                        .step_by(n.max(1))
                        .map(|i| body.slice(i..(i + n.max(1)).min(body.len())))
                        .collect();
                    let stream = futures_util::stream::iter(
                        pieces
                            .into_iter()
                            .map(|p| Ok::<_, std::io::Error>(Frame::data(p))),
                    );
                    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
                    *r.status_mut() = status;
                    r
                }
                None => full(status, "text/plain", body),
            };
            if let Some(c) = &ce {
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, c.parse().unwrap());
            }
            if ct == "none" {
                r.headers_mut().remove(header::CONTENT_TYPE);
            } else {
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, ct.parse().unwrap());
            }
            if let Some((k, v)) = param("h").as_deref().and_then(|h| h.split_once(':')) {
                r.headers_mut().insert(
                    header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            r
        }
        p if p.starts_with("/status/") => {
            let code = p.trim_start_matches("/status/").parse().unwrap_or(500);
            full(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "text/plain",
                "status",
            )
        }
        _ => full(
            StatusCode::OK,
            "application/json",
            serde_json::json!({ "id": 123, "name": "Ada", "path": path }).to_string(),
        ),
    })
}
