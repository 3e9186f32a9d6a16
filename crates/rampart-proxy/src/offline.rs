//! The pipeline without a network: one request (and, when known, its response) through the
//! same protocol checks, routing and stages as a live request, on a clock the caller sets.
//!
//! `rampart rules test` runs sample requests through it, and recorded traffic will go through
//! it for `rampart replay`. Nothing here opens a socket or reads the wall clock: the peer
//! address, the TLS identity, the time and the upstream's response are all inputs.
//!
//! What differs from a live request, on purpose: the body is given whole (there is no slow
//! client to time out), and the upstream is not called: the response, when given, is the one
//! the stages see. What authentication would establish may be given as `principal`, and stands
//! for it while no authentication stage is configured. Completion hooks (events, metrics,
//! access log) do not run: what happened is returned instead.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rampart_config::model::Oversize;
use rampart_config::Snapshot;
use rampart_core::iptable::canonical;
use rampart_core::{
    Block, Exchange, Finding, FindingAction, Peer, Phase, Principal, Reason, RouteInfo, StageId,
    TlsInfo, UnixMillis, Verdict,
};

use crate::{forwarded, handler};

/// One exchange to run offline.
#[derive(Debug)]
pub struct OfflineRequest {
    /// The listener the request came on (by name); the first one when `None`.
    pub listener: Option<String>,
    /// The socket peer: the client, or a proxy in front of it.
    pub peer: SocketAddr,
    /// The TLS session, with the verified client certificate when mutual TLS gave one.
    pub tls: Option<Arc<TlsInfo>>,
    /// The request head.
    pub request: http::request::Parts,
    /// The whole request body, when there is one.
    pub body: Option<Bytes>,
    /// Who authentication found the client to be.
    pub principal: Option<Principal>,
    /// The upstream's answer, when known: head and whole body.
    pub response: Option<(http::response::Parts, Option<Bytes>)>,
    /// The time the request arrived.
    pub now_ms: UnixMillis,
}

/// What became of an offline exchange.
#[derive(Debug)]
pub struct OfflineOutcome {
    /// The API the request was routed to.
    pub api: Option<Arc<str>>,
    /// The declared operation, once schema routing named it.
    pub operation: Option<Arc<str>>,
    /// Where it stopped, if it did: the phase, the stage and the block.
    pub blocked: Option<Stopped>,
    /// The last phase that ran.
    pub reached: Phase,
    /// Everything the stages noticed, in order (the block included).
    pub findings: Vec<Finding>,
    /// The request id, as the exchange had it.
    pub request_id: String,
}

/// A block: which phase, which stage, what the client would have been answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The phase in which the request was stopped.
    pub phase: Phase,
    /// The stage that stopped it (`proxy` and `router` for the gateway's own checks).
    pub stage: StageId,
    /// The block.
    pub block: Block,
}

/// Runs one exchange through `snap`'s pipeline.
pub async fn run(snap: &Snapshot, mut req: OfflineRequest) -> OfflineOutcome {
    let listener = req
        .listener
        .as_deref()
        .and_then(|n| snap.listener(n))
        .or_else(|| snap.listeners.first())
        .cloned();
    let listener_name: Arc<str> = listener
        .as_ref()
        .map_or_else(|| Arc::from("offline"), |l| l.name.clone());
    let peer_ip = canonical(req.peer.ip());
    let trusted_peer = listener
        .as_ref()
        .is_some_and(|l| l.trusted_proxies.contains(peer_ip));
    let request_id = handler::request_id(
        &req.request.headers,
        &snap.proxy.request_id_header,
        trusted_peer && snap.proxy.trust_request_id_from_proxies,
    );
    let peer = Peer {
        addr: req.peer,
        listener: listener_name,
        tls: req.tls.clone(),
    };
    let mut x = Exchange::new(request_id, peer, req.now_ms);
    if let Some(l) = &listener {
        x.client_ip = forwarded::client_ip(peer_ip, &req.request.headers, &l.trusted_proxies);
    }
    x.principal = req.principal.take();
    let mut out = Progress {
        api: None,
        reached: Phase::RequestHead,
        pipeline: None,
    };

    if let Some(l) = &listener {
        if let Some(block) = handler::protocol_check(&req.request, l) {
            return out.stop(x, StageId("proxy"), block);
        }
    }
    let host = handler::host_of(&req.request);
    let Some(api) = snap.route(host.as_deref(), req.request.uri.path()).cloned() else {
        let verdict = snap.unrouted.request_head(&mut req.request, &mut x).await;
        snap.unrouted.complete(&x);
        if let Verdict::Block(b) = verdict {
            return out.stopped_by_stage(x, b);
        }
        let detail = format!("no API for host {:?}", host.as_deref().unwrap_or(""));
        return out.stop(
            x,
            StageId("router"),
            Block::new(Reason::NotFound).detail(detail),
        );
    };
    out.api = Some(api.name.clone());
    x.route = Some(RouteInfo {
        api: api.name.clone(),
        operation: None,
    });
    let pipeline = &api.pipeline;
    out.pipeline = Some(pipeline.clone());
    for h in &snap.proxy.identity_headers {
        req.request.headers.remove(h);
    }
    // A given principal stands for what authentication would find: the stage is not run.
    if x.principal.is_some() {
        x.skip.stages.push(rampart_stages::authn::STAGE);
    }

    if let Verdict::Block(b) = pipeline.request_head(&mut req.request, &mut x).await {
        return out.stopped_by_stage(x, b);
    }

    // As live: the body stages run for every request when some stage reads bodies, on an
    // empty body when there is none.
    let mut body = req.body.take().unwrap_or_default();
    if pipeline.needs_request_body() {
        out.reached = Phase::RequestBody;
        let max = usize::try_from(api.max_inspect_bytes).unwrap_or(usize::MAX);
        if body.len() > max {
            if api.oversize == Oversize::Reject {
                let b = Block::new(Reason::BodyTooLarge)
                    .detail(format!("body over max_inspect_bytes ({max})"));
                return out.stop(x, StageId("proxy"), b);
            }
            body = body.slice(..max);
            x.body_truncated = true;
            x.record(Finding {
                stage: StageId("proxy"),
                rule: None,
                action: FindingAction::Log,
                reason: Reason::BodyTooLarge,
                detail: format!("only the first {max} bytes of the body were inspected"),
            });
        }
        if let Verdict::Block(b) = pipeline.request_body(&req.request, &mut body, &mut x) {
            return out.stopped_by_stage(x, b);
        }
    }

    let Some((mut rparts, rbody)) = req.response.take() else {
        return out.finish(x);
    };
    x.response_status = Some(rparts.status.as_u16());
    out.reached = Phase::ResponseHead;
    if let Verdict::Block(b) = pipeline.response_head(&req.request, &mut rparts, &mut x) {
        return out.stopped_by_stage(x, b);
    }
    if let Some(mut body) = rbody {
        // As live: a stage that asked for the whole body gets it when it fits, then the
        // stages' filters see it as one chunk.
        if pipeline.needs_response_body() && req.request.method != http::Method::HEAD {
            out.reached = Phase::ResponseBody;
            let mut whole_seen = false;
            if let Some(max) = pipeline.response_body_limit(&rparts, &x) {
                if body.len() as u64 <= max {
                    if let Verdict::Block(b) =
                        pipeline.response_body_whole(&mut rparts, &mut body, &mut x)
                    {
                        return out.stopped_by_stage(x, b);
                    }
                    whole_seen = true;
                }
            }
            let mut filters = match pipeline.response_body_filters(&mut rparts, whole_seen, &mut x)
            {
                Ok(f) => f,
                Err(b) => return out.stopped_by_stage(x, b),
            };
            if !filters.is_empty() {
                if let Verdict::Block(b) = pipeline.filter_chunk(&mut filters, &mut body, &mut x) {
                    return out.stopped_by_stage(x, b);
                }
                if let Err(b) = pipeline.filter_finish(&mut filters, &mut x) {
                    return out.stopped_by_stage(x, b);
                }
            }
        }
    }
    out.finish(x)
}

struct Progress {
    api: Option<Arc<str>>,
    reached: Phase,
    /// The API's pipeline, whose completion hooks run when the exchange ends.
    pipeline: Option<rampart_core::Pipeline>,
}

impl Progress {
    /// A block by the gateway itself (protocol checks, routing, body limits): recorded as the
    /// live handler records it.
    fn stop(self, mut x: Exchange, stage: StageId, block: Block) -> OfflineOutcome {
        x.record(Finding {
            stage,
            rule: block.rule.clone(),
            action: FindingAction::Block,
            reason: block.reason,
            detail: block.detail.clone(),
        });
        self.stopped(x, stage, block)
    }

    /// A block by a stage: the driver has already recorded it as the last blocking finding.
    fn stopped_by_stage(self, x: Exchange, block: Block) -> OfflineOutcome {
        let stage = x.stopped_by.unwrap_or_else(|| {
            x.findings
                .iter()
                .rev()
                .find(|f| f.action == FindingAction::Block)
                .map_or(StageId("pipeline"), |f| f.stage)
        });
        self.stopped(x, stage, block)
    }

    fn stopped(self, x: Exchange, stage: StageId, block: Block) -> OfflineOutcome {
        if let Some(p) = &self.pipeline {
            p.complete(&x);
        }
        OfflineOutcome {
            api: self.api,
            operation: x.route.as_ref().and_then(|r| r.operation.clone()),
            blocked: Some(Stopped {
                phase: self.reached,
                stage,
                block,
            }),
            reached: self.reached,
            findings: x.findings,
            request_id: x.request_id,
        }
    }

    fn finish(self, x: Exchange) -> OfflineOutcome {
        if let Some(p) = &self.pipeline {
            p.complete(&x);
        }
        OfflineOutcome {
            api: self.api,
            operation: x.route.as_ref().and_then(|r| r.operation.clone()),
            blocked: None,
            reached: self.reached,
            findings: x.findings,
            request_id: x.request_id,
        }
    }
}
