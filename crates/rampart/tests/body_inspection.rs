//! Request bodies are buffered only when a stage asks, up to `max_inspect_bytes`, and a body
//! stage's block stops the request before anything reaches the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use rampart_config::{Api, Snapshot};
use rampart_core::{
    Block, Decision, Enforcement, Exchange, OnError, Outcome, Phases, Pipeline, Reason, RuleId,
    Slot, Stage, StageId,
};
use rampart_proxy::Gateway;
use rampart_test_support::{HttpClient, TestUpstream};

/// A body-reading stage: blocks bodies that contain `attack`, and notes what it saw.
#[derive(Debug, Default)]
struct BodyProbe {
    seen: Mutex<Vec<(usize, bool)>>,
}

impl Stage for BodyProbe {
    fn id(&self) -> StageId {
        StageId("probe")
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST_BODY
    }
    fn on_request_body(
        &self,
        _req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        self.seen
            .lock()
            .unwrap()
            .push((body.len(), x.body_truncated));
        if body.windows(6).any(|w| w == b"attack") {
            return Ok(Decision::Block(
                Block::new(Reason::WafRuleMatch).rule(RuleId::new("probe-1")),
            ));
        }
        Ok(Decision::Continue)
    }
}

async fn start(up: &TestUpstream, oversize: &str, probe: Arc<BodyProbe>) -> Gateway {
    let yaml = format!(
        "listeners:\n  - {{ name: public, bind: 127.0.0.1:0 }}\nupstreams:\n  app: {{ targets: [\"{}\"] }}\napis:\n  - {{ name: app, upstream: app, request_body: {{ max_inspect_bytes: 1000, oversize: {oversize} }} }}\nevents: {{ sqlite: \"off\" }}\n",
        up.url()
    );
    let mut snap: Snapshot = rampart_config::load_str(&yaml, "t.yaml", Path::new(".")).unwrap();
    let a = &snap.apis[0];
    let api = Api {
        name: a.name.clone(),
        hosts: a.hosts.clone(),
        base_path: a.base_path.clone(),
        strip_base_path: a.strip_base_path,
        upstream: a.upstream.clone(),
        pipeline: Pipeline::new(vec![Slot {
            stage: probe,
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        }]),
        max_inspect_bytes: a.max_inspect_bytes,
        oversize: a.oversize,
        declared: Vec::new(),
        declared_prefixes: Vec::new(),
    };
    snap.apis = vec![Arc::new(api)];
    Gateway::start(snap, None).await.unwrap()
}

fn post(gw: &Gateway, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(format!("http://{}/echo", gw.addr("public").unwrap()))
        .body(Full::new(body.into()))
        .unwrap()
}

#[tokio::test]
async fn a_body_stage_blocks_before_the_upstream_and_passes_the_rest_intact() {
    let up = TestUpstream::start().await;
    let probe = Arc::new(BodyProbe::default());
    let gw = start(&up, "reject", probe.clone()).await;
    let c = HttpClient::new();
    let r = c.send(post(&gw, "an attack here")).await.unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        up.requests(),
        0,
        "a blocked body must never reach the upstream"
    );
    let r = c.send(post(&gw, "a fine body")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["body_len"], 11);
    // A request without a body runs the body phase on an empty body: sending no body cannot
    // skip a body rule or a policy on the body.
    assert_eq!(
        c.get(&format!("http://{}/json", gw.addr("public").unwrap()))
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    assert_eq!(
        *probe.seen.lock().unwrap(),
        vec![(14, false), (11, false), (0, false)]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn oversize_reject_and_inspect_prefix() {
    let up = TestUpstream::start().await;
    let probe = Arc::new(BodyProbe::default());
    let gw = start(&up, "reject", probe.clone()).await;
    let c = HttpClient::new();
    let r = c.send(post(&gw, vec![b'x'; 5000])).await.unwrap();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["error"], "body_too_large");
    assert_eq!(up.requests(), 0);
    gw.shutdown().await;

    let probe = Arc::new(BodyProbe::default());
    let gw = start(&up, "inspect_prefix", probe.clone()).await;
    let r = c.send(post(&gw, vec![b'x'; 5000])).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["body_len"], 5000, "the whole body is forwarded");
    assert_eq!(
        *probe.seen.lock().unwrap(),
        vec![(1000, true)],
        "the stage saw the first 1000 bytes"
    );
    // An attack in the inspected prefix is still blocked; one beyond it is not seen.
    let mut early = vec![b'x'; 5000];
    early[10..16].copy_from_slice(b"attack");
    assert_eq!(
        c.send(post(&gw, early)).await.unwrap().status,
        StatusCode::FORBIDDEN
    );
    gw.shutdown().await;
}
