//! One request, end to end: protocol checks, routing, the pipeline's phases, the upstream, the
//! response, and completion (events, access log, metrics).

use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use rampart_config::{Api, Listener};
use rampart_core::iptable::canonical;
use rampart_core::{
    Block, Exchange, Filters, Finding, FindingAction, Peer, Reason, RouteInfo, SecurityEvent,
    StageId, TlsInfo, Verdict,
};

use crate::body::{BodyFlags, BoxError, InboundBody, ProxyBody};
use crate::server::{ConnState, Shared};
use crate::upstream::{PooledConn, SendError, UpstreamPool};
use crate::{forwarded, respond, telemetry, tlsinfo};

/// What a request handler knows about its connection.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    pub(crate) peer: SocketAddr,
    pub(crate) listener: Arc<Listener>,
    pub(crate) tls: Option<Arc<TlsInfo>>,
    pub(crate) state: Arc<ConnState>,
}

/// The hyper service entry point.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let mut guard = StreamGuard {
        state: ctx.state.clone(),
        done: false,
    };
    ctx.state.in_flight.fetch_add(1, Ordering::AcqRel);
    let rsp = handle_inner(shared, &ctx, req).await;
    guard.done = true;
    Ok(rsp)
}

/// Counts requests that were cancelled before they were answered (an HTTP/2 stream reset, a
/// client gone). A connection whose cancellations outrun its completions by more than the limit
/// is closed: the rapid-reset attack (CVE-2023-44487) makes the server start work it never
/// finishes.
struct StreamGuard {
    state: Arc<ConnState>,
    done: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.done {
            self.state.completed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let cancelled = self.state.cancelled.fetch_add(1, Ordering::Relaxed) + 1;
        let completed = self.state.completed.load(Ordering::Relaxed);
        if cancelled > completed + self.state.max_resets {
            self.state.kill.notify_one();
        }
    }
}

async fn handle_inner(
    shared: Arc<Shared>,
    ctx: &ConnCtx,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let state = shared.state.load_full();
    let snap = state.snapshot.clone();
    // Per-request settings come from the snapshot this request loaded, so that a reload applies
    // to kept-alive connections too; the connection's own copy is only a fallback.
    let listener = snap
        .listener(&ctx.listener.name)
        .cloned()
        .unwrap_or_else(|| ctx.listener.clone());
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let peer_ip = canonical(ctx.peer.ip());
    let trusted_peer = listener.trusted_proxies.contains(peer_ip);
    let request_id = request_id(
        &parts.headers,
        &snap.proxy.request_id_header,
        trusted_peer && snap.proxy.trust_request_id_from_proxies,
    );
    let peer = Peer {
        addr: ctx.peer,
        listener: ctx.listener.name.clone(),
        tls: ctx.tls.clone(),
    };
    let mut x = Exchange::new(request_id, peer, shared.clock.now_ms());
    x.client_ip = forwarded::client_ip(peer_ip, &parts.headers, &listener.trusted_proxies);
    let mut fin = Finish {
        shared: shared.clone(),
        x,
        api: None,
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        listener: ctx.listener.name.clone(),
        started,
        status: 0,
        bytes_out: 0,
        upstream_error: false,
        finished: false,
        rec: None,
        content_type: None,
        session_hints: Vec::new(),
    };
    if let Some(d) = &*shared.discovery.load() {
        fin.session_hints = d.session_hints(&parts.headers);
    }
    if let Some(r) = &*shared.recorder.load() {
        if r.sample() {
            let capture = r.capture(&parts, ctx.tls.is_some());
            fin.rec = Some((r.clone(), capture));
        }
    }
    let rid_header = snap.proxy.request_id_header.clone();

    // Protocol hygiene first: every later decision depends on an unambiguous request.
    if let Some(block) = protocol_check(&parts, &listener) {
        return fin.block(StageId("proxy"), block, &rid_header);
    }
    let host = host_of(&parts);

    let Some(api) = snap.route(host.as_deref(), parts.uri.path()).cloned() else {
        let verdict = snap.unrouted.request_head(&mut parts, &mut fin.x).await;
        // A request no API serves ends here: its completion hooks run now (the DDoS guard
        // releases its place among the requests in flight).
        snap.unrouted.complete(&fin.x);
        if let Verdict::Block(b) = verdict {
            return fin.respond(&b, &rid_header);
        }
        let detail = format!("no API for host {:?}", host.as_deref().unwrap_or(""));
        return fin.block(
            StageId("router"),
            Block::new(Reason::NotFound).detail(detail),
            &rid_header,
        );
    };
    fin.x.route = Some(RouteInfo {
        api: api.name.clone(),
        operation: None,
    });
    fin.api = Some(api.clone());

    // No client may claim an identity: the headers authentication sets upstream go first.
    for h in &snap.proxy.identity_headers {
        parts.headers.remove(h);
    }
    if let Verdict::Block(b) = api.pipeline.request_head(&mut parts, &mut fin.x).await {
        return fin.respond(&b, &rid_header);
    }

    let limits = &listener.limits;
    let flags = Arc::new(BodyFlags::default());
    let inbound = InboundBody::new(
        body,
        limits.max_body_bytes,
        limits.min_body_rate_bytes_per_sec,
        limits.body_rate_grace,
        flags.clone(),
    );
    let body_expected = has_body(&parts);
    let forward_body: ProxyBody = if api.pipeline.needs_request_body() && body_expected {
        match buffer(inbound, api.max_inspect_bytes).await {
            Ok((mut bytes, None)) => {
                if let Some((_, c)) = fin.rec.as_mut() {
                    c.request_body(&bytes, bytes.len() as u64);
                }
                fin.x.timings.now_ms = shared.clock.now_ms();
                if let Verdict::Block(b) = api.pipeline.request_body(&parts, &mut bytes, &mut fin.x)
                {
                    return fin.respond(&b, &rid_header);
                }
                fix_length(&mut parts.headers, bytes.len());
                Full::new(bytes)
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }
            Ok((collected, Some(rest))) => {
                if api.oversize == rampart_config::model::Oversize::Reject {
                    let b = Block::new(Reason::BodyTooLarge).detail(format!(
                        "body over max_inspect_bytes ({})",
                        api.max_inspect_bytes
                    ));
                    return fin.block(StageId("proxy"), b, &rid_header);
                }
                let cut = usize::try_from(api.max_inspect_bytes)
                    .unwrap_or(usize::MAX)
                    .min(collected.len());
                let mut prefix = collected.slice(..cut);
                if let Some((_, c)) = fin.rec.as_mut() {
                    // More follows: the record says the body is longer than what it holds.
                    let size = content_length(&parts.headers).unwrap_or(collected.len() as u64 + 1);
                    c.request_body(&collected, size);
                }
                fin.x.body_truncated = true;
                fin.x.record(Finding {
                    stage: StageId("proxy"),
                    rule: None,
                    action: FindingAction::Log,
                    reason: Reason::BodyTooLarge,
                    detail: format!("only the first {cut} bytes of the body were inspected"),
                });
                fin.x.timings.now_ms = shared.clock.now_ms();
                if let Verdict::Block(b) =
                    api.pipeline.request_body(&parts, &mut prefix, &mut fin.x)
                {
                    return fin.respond(&b, &rid_header);
                }
                let head = Full::new(prefix).map_err(|never| match never {});
                let middle = Full::new(collected.slice(cut..)).map_err(|never| match never {});
                Chain::new(
                    head.boxed_unsync(),
                    Chain::new(middle.boxed_unsync(), rest.boxed_unsync()).boxed_unsync(),
                )
                .boxed_unsync()
            }
            Err(_) => return fin.body_failure(&flags, &rid_header),
        }
    } else if !body_expected {
        if api.pipeline.needs_request_body() {
            // Stages that read bodies decide on an empty one too: sending no body (or
            // `Content-Length: 0`) must not skip a body rule or a policy on the body.
            let mut empty = Bytes::new();
            fin.x.timings.now_ms = shared.clock.now_ms();
            if let Verdict::Block(b) = api.pipeline.request_body(&parts, &mut empty, &mut fin.x) {
                return fin.respond(&b, &rid_header);
            }
        }
        Empty::new().map_err(|never| match never {}).boxed_unsync()
    } else if content_length(&parts.headers).is_some_and(|n| n <= SMALL_BODY_BYTES) {
        // A small body of known length is read whole before the upstream request goes out (as
        // nginx does): it then leaves in one write with the head, instead of streaming through
        // the upstream connection's task chunk by chunk.
        match buffer(inbound, SMALL_BODY_BYTES).await {
            Ok((bytes, None)) => {
                if let Some((_, c)) = fin.rec.as_mut() {
                    c.request_body(&bytes, bytes.len() as u64);
                }
                Full::new(bytes)
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }
            // More bytes than announced: hyper refuses those before we see them; be safe anyway.
            Ok((_, Some(_))) | Err(_) => return fin.body_failure(&flags, &rid_header),
        }
    } else {
        if let Some((_, c)) = fin.rec.as_mut() {
            c.request_body_streamed();
        }
        inbound.boxed_unsync()
    };

    // The upstream request.
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let upgrade = is_upgrade(&parts.headers);
    let Some(pool) = state.pools.get(&*api.upstream.name).cloned() else {
        return fin.respond_plain(
            &Block::new(Reason::UpstreamError).detail("upstream pool missing"),
            &rid_header,
        );
    };
    // Response-head stages see the request as the client sent it; keep a copy only for them.
    let request_head = api
        .pipeline
        .needs_response_head()
        .then(|| copy_head(&parts));
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers, upgrade);
    headers.remove(&snap.proxy.client_cert_header);
    if let Some(cert) = fin.x.client_cert() {
        if let Ok(v) = HeaderValue::from_str(&tlsinfo::header_value(cert)) {
            headers.insert(snap.proxy.client_cert_header.clone(), v);
        }
    }
    let proto = if ctx.tls.is_some() { "https" } else { "http" };
    forwarded::rewrite(&mut headers, peer_ip, trusted_peer, proto, host.as_deref());
    if let Ok(v) = HeaderValue::from_str(&fin.x.request_id) {
        headers.insert(rid_header.clone(), v);
    }
    if !headers.contains_key(header::HOST) {
        if let Some(a) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                headers.insert(header::HOST, v);
            }
        }
    }
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let attempts = if idempotent && !body_expected {
        1 + pool.spec.retries
    } else {
        1
    };
    let mut forward_body = Some(forward_body);
    let mut avoid = None;
    let mut upstream_rsp = None;
    let mut held_conn = None;
    let mut chosen = 0;
    for attempt in 0..attempts {
        let now = shared.clock.now_ms();
        let i = pool.pick(now, avoid);
        let target = &pool.spec.targets[i];
        let pq = || upstream_path(&api, &target.path_prefix, &parts.uri);
        // Origin-form (`/path?query`) on connections we drive, as RFC 9112 §3.2.1 asks of a
        // request to an origin server; the upgrade client takes the absolute form and sends the
        // origin form itself.
        let unchanged =
            target.path_prefix.is_empty() && !(api.strip_base_path && api.base_path != "/");
        let uri = match (upgrade, parts.uri.path_and_query()) {
            (false, Some(original)) if unchanged => {
                // The usual case: the client's path and query as they came (a cheap clone of
                // the parsed form, nothing to build or parse again).
                Ok(Uri::from(original.clone()))
            }
            (false, _) => Uri::builder().path_and_query(pq()).build(),
            (true, _) => Uri::builder()
                .scheme(target.scheme.clone())
                .authority(target.authority.clone())
                .path_and_query(pq())
                .build(),
        };
        let Ok(uri) = uri else {
            return fin.block(
                StageId("proxy"),
                Block::new(Reason::MalformedRequest).detail("cannot build the upstream URI"),
                &rid_header,
            );
        };
        let body = forward_body
            .take()
            .unwrap_or_else(|| Empty::new().map_err(|never| match never {}).boxed_unsync());
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        // Only a retry needs the headers again: the last attempt takes them.
        *req.headers_mut() = if attempt + 1 < attempts {
            headers.clone()
        } else {
            std::mem::take(&mut headers)
        };
        // Upgrades go through the client whose connections can be handed to the tunnel; every
        // other request drives a pooled connection itself.
        let result = if upgrade {
            match tokio::time::timeout(pool.spec.request_timeout, pool.client.request(req)).await {
                Ok(Ok(rsp)) => Ok(rsp),
                Ok(Err(e)) if e.is_connect() => Err(SendError::Connect(e.to_string())),
                Ok(Err(e)) => Err(SendError::Request {
                    reused: false,
                    message: e.to_string(),
                }),
                Err(_) => Err(SendError::Timeout),
            }
        } else {
            pool.send(i, req, pool.spec.request_timeout)
                .await
                .map(|(rsp, conn)| {
                    held_conn = Some(conn);
                    rsp
                })
        };
        match result {
            Ok(rsp) => {
                pool.report(i, true, now);
                upstream_rsp = Some(rsp);
                chosen = i;
                break;
            }
            Err(SendError::Timeout) => {
                pool.report(i, false, shared.clock.now_ms());
                metrics::counter!("rampart_upstream_errors_total", "upstream" => pool.spec.name.to_string(), "kind" => "timeout").increment(1);
                return fin.respond_plain(&Block::new(Reason::UpstreamTimeout), &rid_header);
            }
            Err(e) => {
                if flags.too_large() || flags.too_slow() {
                    return fin.body_failure(&flags, &rid_header);
                }
                let (connect, reused, message) = match e {
                    SendError::Connect(m) => (true, false, m),
                    SendError::Request { reused, message } => (false, reused, message),
                    SendError::Timeout => (false, false, String::new()),
                };
                // A reused connection that fails may have been closed by the upstream as we
                // sent: not the target's fault.
                if !reused {
                    pool.report(i, false, shared.clock.now_ms());
                }
                metrics::counter!("rampart_upstream_errors_total", "upstream" => pool.spec.name.to_string(), "kind" => if connect { "connect" } else { "request" }).increment(1);
                tracing::warn!(upstream = %pool.spec.name, target = %target.authority, error = %message, request_id = %fin.x.request_id, "Upstream request failed.");
                if (connect || reused) && attempt + 1 < attempts {
                    avoid = connect.then_some(i);
                    continue;
                }
                return fin.respond_plain(&Block::new(Reason::UpstreamError), &rid_header);
            }
        }
    }
    let Some(mut rsp) = upstream_rsp else {
        return fin.respond_plain(&Block::new(Reason::UpstreamError), &rid_header);
    };

    // The response.
    let upstream_upgrade = if rsp.status() == StatusCode::SWITCHING_PROTOCOLS {
        Some(hyper::upgrade::on(&mut rsp))
    } else {
        None
    };
    let (mut rparts, rbody) = rsp.into_parts();
    if let Some((_, c)) = fin.rec.as_mut() {
        c.response_head(&rparts);
    }
    fin.x.response_status = Some(rparts.status.as_u16());
    fin.x.timings.now_ms = shared.clock.now_ms();
    let verdict = match &request_head {
        Some(req) => api.pipeline.response_head(req, &mut rparts, &mut fin.x),
        None => Verdict::Forward,
    };
    if let Verdict::Block(b) = verdict {
        return fin.respond(&b, &rid_header);
    }
    let switching = rparts.status == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(&mut rparts.headers, switching && upgrade);
    if let Ok(v) = HeaderValue::from_str(&fin.x.request_id) {
        rparts.headers.insert(rid_header.clone(), v);
    }
    for (name, value) in fin.x.response_headers.drain(..) {
        rparts.headers.append(name, value);
    }
    if let (true, Some(client), Some(upstream)) = (switching, client_upgrade, upstream_upgrade) {
        tokio::spawn(tunnel(client, upstream));
    }
    fin.status = rparts.status.as_u16();
    fin.content_type = rparts.headers.get(header::CONTENT_TYPE).cloned();
    let inspect = api.pipeline.needs_response_body();
    let mut upstream = held_conn.map(|c| (pool.clone(), chosen, c));
    // A stage that must see the whole body before the client gets any of it (response schema
    // validation in enforce mode, DLP blocking) makes the proxy hold it, up to its limit.
    // (A response to HEAD has no body to hold, whatever its headers say.)
    let limit = if switching || !inspect || parts.method == Method::HEAD {
        None
    } else {
        api.pipeline.response_body_limit(&rparts, &fin.x)
    };
    let mut whole_seen = false;
    let inner = match limit {
        None => Inner::Upstream(rbody),
        Some(max) => {
            let mut rbody = rbody;
            let conn = upstream.as_mut().map(|(_, _, c)| c);
            match tokio::time::timeout(pool.spec.request_timeout, hold(&mut rbody, conn, max)).await
            {
                Ok(Ok(Held::Whole(mut bytes))) => {
                    if let Some((p, i, mut c)) = upstream.take() {
                        std::future::poll_fn(|cx| {
                            c.drive(cx);
                            Poll::Ready(())
                        })
                        .await;
                        p.checkin(i, c);
                    }
                    if let Some((_, c)) = fin.rec.as_mut() {
                        c.response_whole(&bytes);
                    }
                    fin.x.timings.now_ms = shared.clock.now_ms();
                    if let Verdict::Block(b) =
                        api.pipeline
                            .response_body_whole(&mut rparts, &mut bytes, &mut fin.x)
                    {
                        return fin.respond(&b, &rid_header);
                    }
                    rparts.headers.remove(header::TRANSFER_ENCODING);
                    fix_length(&mut rparts.headers, bytes.len());
                    whole_seen = true;
                    Inner::Held(Some(bytes), None)
                }
                Ok(Ok(Held::Prefix(bytes))) => {
                    fin.x.record(Finding {
                        stage: StageId("proxy"),
                        rule: None,
                        action: FindingAction::Log,
                        reason: Reason::BodyTooLarge,
                        detail: format!(
                            "response body over {max} bytes: streamed without whole-body inspection"
                        ),
                    });
                    Inner::Held(Some(bytes), Some(rbody))
                }
                Ok(Err(e)) => {
                    tracing::warn!(upstream = %pool.spec.name, error = %e, request_id = %fin.x.request_id, "Upstream response body failed.");
                    return fin.respond_plain(&Block::new(Reason::UpstreamError), &rid_header);
                }
                Err(_) => {
                    return fin.respond_plain(&Block::new(Reason::UpstreamTimeout), &rid_header);
                }
            }
        }
    };
    // Stages that read the body as it streams (DLP masking) set their filters now; one may
    // still refuse the response (a body it had to see whole and could not).
    let filters = if switching || !inspect || parts.method == Method::HEAD {
        Filters::default()
    } else {
        match api
            .pipeline
            .response_body_filters(&mut rparts, whole_seen, &mut fin.x)
        {
            Ok(f) => f,
            Err(b) => return fin.respond(&b, &rid_header),
        }
    };
    let tracked = TrackedBody::new(inner, fin, filters, upstream);
    Response::from_parts(rparts, tracked.boxed_unsync())
}

/// What [`hold`] read of a response body.
enum Held {
    /// All of it.
    Whole(Bytes),
    /// The first bytes, past the limit: the rest is still upstream.
    Prefix(Bytes),
}

/// Reads a response body whole, up to `max` bytes, driving its upstream connection.
async fn hold(
    body: &mut Incoming,
    mut conn: Option<&mut PooledConn>,
    max: u64,
) -> Result<Held, BoxError> {
    let mut buf = BytesMut::new();
    loop {
        let frame = std::future::poll_fn(|cx| {
            if let Some(c) = conn.as_deref_mut() {
                c.drive(cx);
            }
            Pin::new(&mut *body).poll_frame(cx)
        })
        .await;
        match frame {
            None => return Ok(Held::Whole(buf.freeze())),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if buf.len() as u64 > max {
                        return Ok(Held::Prefix(buf.freeze()));
                    }
                }
            }
        }
        if body.is_end_stream() {
            return Ok(Held::Whole(buf.freeze()));
        }
    }
}

/// The response body's source: the upstream's body as it comes, or a body (or a prefix of
/// one) that was held for inspection, followed by what remains upstream.
enum Inner {
    Upstream(Incoming),
    Held(Option<Bytes>, Option<Incoming>),
}

impl Inner {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let rest = match self {
            Self::Upstream(b) => b,
            Self::Held(first, rest) => {
                if let Some(b) = first.take() {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                match rest {
                    Some(r) => r,
                    None => return Poll::Ready(None),
                }
            }
        };
        Pin::new(rest)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(b) => b.is_end_stream(),
            Self::Held(first, rest) => {
                first.is_none() && rest.as_ref().is_none_or(Body::is_end_stream)
            }
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Self::Upstream(b) => b.size_hint(),
            Self::Held(Some(b), None) => http_body::SizeHint::with_exact(b.len() as u64),
            Self::Held(None, None) => http_body::SizeHint::with_exact(0),
            Self::Held(..) => http_body::SizeHint::default(),
        }
    }
}

async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (c, u) = tokio::join!(client, upstream);
    match (c, u) {
        (Ok(c), Ok(u)) => {
            let mut c = hyper_util::rt::TokioIo::new(c);
            let mut u = hyper_util::rt::TokioIo::new(u);
            let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
        }
        (c, u) => tracing::debug!(client = c.is_ok(), upstream = u.is_ok(), "Upgrade failed."),
    }
}

/// Reads the body into memory up to `max` bytes. Returns the bytes and, when the body is
/// longer, the rest of it still unread.
async fn buffer<B>(mut body: B, max: u64) -> Result<(Bytes, Option<B>), BoxError>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() as u64 > max {
                return Ok((buf.freeze(), Some(body)));
            }
        }
    }
    Ok((buf.freeze(), None))
}

/// Request bodies up to this size, with a `Content-Length`, are read whole before forwarding.
const SMALL_BODY_BYTES: u64 = 64 * 1024;

/// Copies a request head (method, URI, version, headers; not the extensions).
fn copy_head(parts: &http::request::Parts) -> http::request::Parts {
    let mut copy = Request::new(()).into_parts().0;
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.version = parts.version;
    copy.headers = parts.headers.clone();
    copy
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn fix_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

/// Checks for requests that are ambiguous or that the gateway will not carry.
pub(crate) fn protocol_check(parts: &http::request::Parts, listener: &Listener) -> Option<Block> {
    let malformed = |d: &str| Some(Block::new(Reason::MalformedRequest).detail(d));
    let h = &parts.headers;
    if parts.method == Method::CONNECT {
        return Some(
            Block::new(Reason::MalformedRequest)
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .detail("CONNECT is not proxied"),
        );
    }
    if h.get_all(header::HOST).iter().count() > 1 {
        return malformed("duplicate Host header");
    }
    let lengths: Vec<&HeaderValue> = h.get_all(header::CONTENT_LENGTH).iter().collect();
    if lengths.len() > 1 && lengths.windows(2).any(|w| w[0] != w[1]) {
        return malformed("conflicting Content-Length headers");
    }
    if !lengths.is_empty() && h.contains_key(header::TRANSFER_ENCODING) {
        return malformed("both Content-Length and Transfer-Encoding");
    }
    if parts.version == Version::HTTP_11
        && !h.contains_key(header::HOST)
        && parts.uri.authority().is_none()
    {
        return malformed("HTTP/1.1 request without Host");
    }
    if parts.version == Version::HTTP_2 {
        if let (Some(a), Some(host)) = (parts.uri.authority(), h.get(header::HOST)) {
            if host.as_bytes() != a.as_str().as_bytes() {
                return malformed(":authority and Host differ");
            }
        }
    }
    let path = parts.uri.path();
    if !path.starts_with('/') {
        return malformed("request target is not a path");
    }
    if has_dot_segment(path) {
        return malformed("path with dot segments");
    }
    if let Some(len) = lengths
        .first()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > listener.limits.max_body_bytes {
            return Some(
                Block::new(Reason::BodyTooLarge)
                    .detail(format!("Content-Length {len} over max_body_bytes")),
            );
        }
    }
    None
}

/// True for `.` and `..` segments, also percent-encoded: they would let a path escape the
/// prefix it was routed by once the upstream normalises it.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|seg| {
        let lower = seg.to_ascii_lowercase();
        let decoded = lower.replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

pub(crate) fn host_of(parts: &http::request::Parts) -> Option<String> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
}

fn has_body(parts: &http::request::Parts) -> bool {
    let h = &parts.headers;
    if h.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    match h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) => n > 0,
        // HTTP/2 bodies need no length header.
        None => {
            parts.version == Version::HTTP_2 && !matches!(parts.method, Method::GET | Method::HEAD)
        }
    }
}

fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// True for the hop-by-hop headers of RFC 9110 §7.6.1 (and the legacy ones).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), and the headers `Connection` names. An upgrade
/// keeps `Connection: upgrade` and `Upgrade`.
///
/// Most requests carry none of them: one pass over the names finds that out, instead of a
/// hashed removal per candidate.
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let mut remove: Vec<HeaderName> = h.keys().filter(|n| is_hop_by_hop(n)).cloned().collect();
    if remove.is_empty() {
        return;
    }
    // Headers named by `Connection` go too; its usual tokens name nothing to remove.
    for v in h.get_all(header::CONNECTION) {
        let Ok(v) = v.to_str() else { continue };
        for token in v.split(',').map(str::trim) {
            let usual = ["", "close", "keep-alive", "upgrade"]
                .iter()
                .any(|u| token.eq_ignore_ascii_case(u));
            if !usual {
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    remove.push(name);
                }
            }
        }
    }
    for name in remove {
        if keep_upgrade && (name == header::CONNECTION || name == header::UPGRADE) {
            continue;
        }
        h.remove(name);
    }
    if keep_upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn upstream_path(api: &Api, prefix: &str, uri: &Uri) -> String {
    let mut path = uri.path();
    if api.strip_base_path && api.base_path != "/" {
        path = path.strip_prefix(api.base_path.as_str()).unwrap_or(path);
    }
    let mut out = String::with_capacity(prefix.len() + path.len() + 16);
    out.push_str(prefix);
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(path);
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Takes a request id from a trusted proxy when allowed and sane; otherwise makes one.
pub(crate) fn request_id(h: &HeaderMap, name: &HeaderName, trust: bool) -> String {
    if trust {
        if let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) {
            if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()) {
                return v.to_owned();
            }
        }
    }
    new_request_id()
}

fn new_request_id() -> String {
    static SEED: OnceLock<std::hash::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = SEED.get_or_init(std::hash::RandomState::new).build_hasher();
    h.write_u64(n);
    // 16 hex digits of keyed hash (unpredictable) and 8 of the counter (unique), written
    // without the formatting machinery: this runs for every request.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(24);
    let hash = h.finish();
    for i in (0..16).rev() {
        out.push(char::from(HEX[((hash >> (i * 4)) & 0xf) as usize]));
    }
    for i in (0..8).rev() {
        out.push(char::from(HEX[((n >> (i * 4)) & 0xf) as usize]));
    }
    out
}

/// What remains to do when the exchange is over: events, access log, metrics, completion hooks.
/// Runs once, when the response body ends or is dropped.
struct Finish {
    shared: Arc<Shared>,
    x: Exchange,
    api: Option<Arc<Api>>,
    method: String,
    path: String,
    listener: Arc<str>,
    started: Instant,
    status: u16,
    bytes_out: u64,
    /// The upstream failed (for the live statistics).
    upstream_error: bool,
    finished: bool,
    /// The recorder and this exchange's capture, when it is sampled.
    rec: Option<(
        Arc<crate::recorder::Recorder>,
        Box<crate::recorder::Capture>,
    )>,
    /// The upstream response's media type (for discovery).
    content_type: Option<HeaderValue>,
    /// Discovery's header and cookie session sources, read from the request head.
    session_hints: Vec<Option<String>>,
}

impl Finish {
    /// Records a block decided outside the pipeline (protocol, routing) and answers it.
    fn block(
        mut self,
        stage: StageId,
        block: Block,
        rid_header: &HeaderName,
    ) -> Response<ProxyBody> {
        self.x.record(Finding {
            stage,
            rule: block.rule.clone(),
            action: FindingAction::Block,
            reason: block.reason,
            detail: block.detail.clone(),
        });
        self.respond(&block, rid_header)
    }

    /// Answers a block already recorded as a finding.
    fn respond(mut self, block: &Block, rid_header: &HeaderName) -> Response<ProxyBody> {
        self.status = block.status.as_u16();
        if let Some((_, c)) = self.rec.as_mut() {
            let stage = self.x.stopped_by.or_else(|| {
                self.x
                    .findings
                    .iter()
                    .rev()
                    .find(|f| f.action == FindingAction::Block)
                    .map(|f| f.stage)
            });
            c.blocked(stage, block);
        }
        let mut rsp = respond::block_response(block, &self.x.request_id, rid_header);
        for (name, value) in self.x.response_headers.drain(..) {
            rsp.headers_mut().append(name, value);
        }
        self.finish();
        rsp
    }

    /// Answers a failure that is not a security decision (upstream down): no event.
    fn respond_plain(mut self, block: &Block, rid_header: &HeaderName) -> Response<ProxyBody> {
        self.upstream_error = true;
        self.respond(block, rid_header)
    }

    fn body_failure(mut self, flags: &BodyFlags, rid_header: &HeaderName) -> Response<ProxyBody> {
        if let Some((_, c)) = self.rec.as_mut() {
            c.request_body_failed();
        }
        let block = if flags.too_large() {
            Block::new(Reason::BodyTooLarge).detail("body over max_body_bytes")
        } else if flags.too_slow() {
            Block::new(Reason::RequestTimeout)
                .detail("body slower than min_body_rate_bytes_per_sec")
        } else {
            Block::new(Reason::MalformedRequest).detail("request body could not be read")
        };
        self.block(StageId("proxy"), block, rid_header)
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.x.timings.now_ms = self.shared.clock.now_ms();
        if let Some(api) = &self.api {
            api.pipeline.complete(&self.x);
        }
        let status = if self.status == 0 {
            None
        } else {
            Some(self.status)
        };
        let mut blocked_by = None;
        for f in &self.x.findings {
            if f.action == FindingAction::Block {
                blocked_by = Some(f.stage.as_str());
            }
            if f.action != FindingAction::Log {
                metrics::counter!("rampart_stage_blocks_total", "stage" => f.stage.as_str(), "reason" => f.reason.code(), "action" => f.action.as_str()).increment(1);
            }
            self.shared.events.emit(SecurityEvent::from_finding(
                &self.x,
                &self.method,
                &self.path,
                f,
                status,
            ));
        }
        let api: Arc<str> = self
            .x
            .route
            .as_ref()
            .map_or_else(|| Arc::from(""), |r| r.api.clone());
        let elapsed = self.started.elapsed();
        self.shared.live.record(&crate::stats::Record {
            now_ms: self.x.timings.now_ms,
            api: self.x.route.as_ref().map(|r| &r.api),
            operation: self.x.route.as_ref().and_then(|r| r.operation.as_ref()),
            client_ip: self.x.client_ip,
            consumer: self
                .x
                .principal
                .as_ref()
                .and_then(|p| p.consumer.as_deref()),
            latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            upstream_error: self.upstream_error,
            findings: &self.x.findings,
        });
        telemetry::record_request(
            &self.listener,
            &api,
            self.status,
            blocked_by.is_some(),
            elapsed,
        );
        if self.shared.access_log {
            let line = serde_json::json!({
                "time_ms": self.x.timings.received_ms,
                "request_id": self.x.request_id,
                "client_ip": self.x.client_ip.to_string(),
                "listener": &*self.listener,
                "api": &*api,
                "method": self.method,
                "path": self.path,
                "status": self.status,
                "bytes_out": self.bytes_out,
                "duration_ms": elapsed.as_secs_f64() * 1000.0,
                "blocked_by": blocked_by,
            });
            self.shared.events.access(line.to_string());
        }
        // Discovery learns from what the upstream answered, unblocked, outside the declared
        // operations.
        if blocked_by.is_none() && !self.upstream_error {
            if let (Some(d), Some(route)) = (&*self.shared.discovery.load(), &self.x.route) {
                if route.operation.is_none() && self.status != 0 {
                    let content_type = self
                        .content_type
                        .as_ref()
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.split(';').next())
                        .unwrap_or("")
                        .trim()
                        .to_owned();
                    // Only sessions without findings make the rate baseline.
                    let session = self
                        .x
                        .findings
                        .is_empty()
                        .then(|| d.session_of(&self.x, &self.session_hints));
                    d.observe(crate::discovery::Observation {
                        api: route.api.clone(),
                        method: http::Method::from_bytes(self.method.as_bytes())
                            .unwrap_or(http::Method::GET),
                        path: std::mem::take(&mut self.path),
                        status: self.status,
                        content_type,
                        size: self.bytes_out,
                        ts_ms: self.x.timings.received_ms,
                        session,
                    });
                }
            }
        }
        if let Some((recorder, capture)) = self.rec.take() {
            let dur_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            recorder.submit(capture.finish(&self.x, self.status, dur_us));
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The response body as it streams to the client: counts bytes, runs the stages' body
/// filters when some stage set them, and completes the exchange at the end.
///
/// After each frame it looks one frame ahead, so that the end of a chunked body is known with
/// its last data: hyper then writes the data and the terminating chunk in one write instead of
/// two (measured: one syscall and one client wake-up less per chunked response).
struct TrackedBody {
    inner: Inner,
    fin: Option<Finish>,
    filters: Filters,
    ahead: Option<Result<Frame<Bytes>, BoxError>>,
    ended: bool,
    /// What the filters released at the end, sent after the last frame.
    tail: Option<Bytes>,
    /// The upstream connection this body comes from, driven by this body's polls and returned
    /// to its pool at the end.
    upstream: Option<(Arc<UpstreamPool>, usize, PooledConn)>,
}

impl TrackedBody {
    fn new(
        inner: Inner,
        fin: Finish,
        filters: Filters,
        upstream: Option<(Arc<UpstreamPool>, usize, PooledConn)>,
    ) -> Self {
        Self {
            inner,
            fin: Some(fin),
            filters,
            ahead: None,
            ended: false,
            tail: None,
            upstream,
        }
    }

    /// Polls the upstream body, driving its connection first.
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some((_, _, conn)) = self.upstream.as_mut() {
            conn.drive(cx);
        }
        self.inner.poll_frame(cx)
    }

    /// The body is complete: the connection goes back to its pool.
    fn release(&mut self, cx: &mut Context<'_>) {
        if let Some((pool, i, mut conn)) = self.upstream.take() {
            conn.drive(cx);
            pool.checkin(i, conn);
        }
    }

    /// Runs the filters on a data chunk; false means the stream must be cut.
    fn inspect_chunk(&mut self, data: &mut Bytes) -> bool {
        let Some(fin) = self.fin.as_mut() else {
            return true;
        };
        if let Some((_, c)) = fin.rec.as_mut() {
            c.response_chunk(data);
        }
        if self.filters.is_empty() {
            fin.bytes_out += data.len() as u64;
            return true;
        }
        let Some(api) = fin.api.clone() else {
            return true;
        };
        if let Verdict::Block(_) = api
            .pipeline
            .filter_chunk(&mut self.filters, data, &mut fin.x)
        {
            // The head is gone: the only safe thing left is to cut the stream, so the client
            // never gets the rest. The finding is already recorded.
            self.fin = None;
            return false;
        }
        fin.bytes_out += data.len() as u64;
        true
    }

    /// The end of the body: the filters' last bytes (kept in `tail`), then completion. False
    /// means the stream must be cut.
    fn end(&mut self) -> bool {
        let Some(mut fin) = self.fin.take() else {
            return true;
        };
        if self.filters.is_empty() {
            return true;
        }
        let Some(api) = fin.api.clone() else {
            return true;
        };
        match api.pipeline.filter_finish(&mut self.filters, &mut fin.x) {
            Ok(tail) => {
                fin.bytes_out += tail.len() as u64;
                if !tail.is_empty() {
                    self.tail = Some(tail);
                }
                true
            }
            Err(_) => false,
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(t) = this.tail.take() {
                return Poll::Ready(Some(Ok(Frame::data(t))));
            }
            let next = match this.ahead.take() {
                Some(frame) => Poll::Ready(Some(frame)),
                None if this.ended => Poll::Ready(None),
                None => this.poll_inner(cx),
            };
            match next {
                Poll::Ready(Some(Ok(frame))) => {
                    let mut empty = false;
                    let frame = match frame.into_data() {
                        Ok(mut data) => {
                            if !this.inspect_chunk(&mut data) {
                                return Poll::Ready(Some(Err("response blocked".into())));
                            }
                            empty = data.is_empty();
                            Frame::data(data)
                        }
                        Err(frame) => frame,
                    };
                    if !this.ended && this.ahead.is_none() {
                        if this.inner.is_end_stream() {
                            this.ended = true;
                        } else {
                            match this.poll_inner(cx) {
                                Poll::Ready(Some(r)) => this.ahead = Some(r),
                                Poll::Ready(None) => this.ended = true,
                                Poll::Pending => {}
                            }
                        }
                        if this.ended {
                            this.release(cx);
                            if !this.end() {
                                return Poll::Ready(Some(Err("response blocked".into())));
                            }
                        }
                    }
                    if empty {
                        // A filter held the whole chunk back: nothing to send for it (an
                        // empty chunk would end a chunked body early).
                        if this.ahead.is_none() && !this.ended && this.tail.is_none() {
                            // The look-ahead poll above was pending; its waker is set.
                            return Poll::Pending;
                        }
                        continue;
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(Some(Err(e))) => {
                    // The upstream broke off: the exchange still completes (events, metrics),
                    // and the connection is not reused.
                    this.upstream = None;
                    this.fin = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    this.release(cx);
                    if this.fin.is_some() && !this.end() {
                        return Poll::Ready(Some(Err("response blocked".into())));
                    }
                    if let Some(t) = this.tail.take() {
                        return Poll::Ready(Some(Ok(Frame::data(t))));
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_none()
            && self.tail.is_none()
            && (self.ended || (self.filters.is_empty() && self.inner.is_end_stream()))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.filters.is_empty() {
            self.inner.size_hint()
        } else {
            // Filters may hold bytes back or change the length (a decoded body).
            http_body::SizeHint::default()
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        // A body hyper stopped polling because it knew the end (a Content-Length reached, a
        // HEAD or 304 response): the connection is at a message boundary and can be reused.
        if self.ended || self.inner.is_end_stream() {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            self.release(&mut cx);
        }
    }
}

/// Two bodies, one after the other.
struct Chain {
    first: Option<ProxyBody>,
    second: ProxyBody,
}

impl Chain {
    fn new(first: ProxyBody, second: ProxyBody) -> Self {
        Self {
            first: Some(first),
            second,
        }
    }
}

impl Body for Chain {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.as_mut() {
            match Pin::new(first).poll_frame(cx) {
                Poll::Ready(None) => self.first = None,
                other => return other,
            }
        }
        Pin::new(&mut self.second).poll_frame(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_even_encoded() {
        assert!(has_dot_segment("/v1/../admin"));
        assert!(has_dot_segment("/v1/%2E%2e/admin"));
        assert!(has_dot_segment("/v1/./x"));
        assert!(!has_dot_segment("/v1/..foo/x"));
        assert!(!has_dot_segment("/v1/a.b"));
    }

    #[test]
    fn hop_by_hop_headers_go_and_named_ones_too() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn request_ids_are_unique_and_trusted_ones_kept() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        let name = HeaderName::from_static("x-request-id");
        let mut h = HeaderMap::new();
        h.insert(name.clone(), HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h, &name, true), "abc-123");
        assert_ne!(request_id(&h, &name, false), "abc-123");
    }
}
