use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::{Peer, RuleId, StageError};

#[derive(Debug)]
struct Fixed {
    name: &'static str,
    outcome: Outcome,
    calls: AtomicUsize,
}

impl Fixed {
    fn new(name: &'static str, outcome: Outcome) -> Arc<Self> {
        Arc::new(Self {
            name,
            outcome,
            calls: AtomicUsize::new(0),
        })
    }
}

impl Stage for Fixed {
    fn id(&self) -> StageId {
        StageId(self.name)
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST_HEAD.union(Phases::RESPONSE_HEAD)
    }
    fn on_request_head(&self, _req: &mut http::request::Parts, _x: &mut Exchange) -> Outcome {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.outcome.clone()
    }
}

fn slot(stage: Arc<Fixed>, enforcement: Enforcement, on_error: OnError) -> Slot {
    Slot {
        stage,
        enforcement,
        on_error,
    }
}

fn exchange() -> Exchange {
    let addr: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    Exchange::new(
        "r1".into(),
        Peer {
            addr,
            listener: Arc::from("l"),
            tls: None,
        },
        1000,
    )
}

fn parts() -> http::request::Parts {
    http::Request::new(()).into_parts().0
}

fn run(p: &Pipeline, x: &mut Exchange) -> Verdict {
    let mut head = parts();
    let fut = p.request_head(&mut head, x);
    // The pipeline awaits nothing for synchronous stages, so one poll completes it.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("synchronous pipeline must not pend"),
    }
}

fn block(rule: &str) -> Outcome {
    Ok(Decision::Block(
        Block::new(Reason::Forbidden).rule(RuleId::new(rule)),
    ))
}

#[test]
fn enforce_block_stops_later_stages() {
    let a = Fixed::new("a", block("r-a"));
    let b = Fixed::new("b", Ok(Decision::Continue));
    let p = Pipeline::new(vec![
        slot(a, Enforcement::Enforce, OnError::Deny),
        slot(b.clone(), Enforcement::Enforce, OnError::Deny),
    ]);
    let mut x = exchange();
    let v = run(&p, &mut x);
    assert!(matches!(v, Verdict::Block(ref bl) if bl.reason == Reason::Forbidden));
    assert_eq!(
        b.calls.load(Ordering::Relaxed),
        0,
        "stage after a block must not run"
    );
    assert_eq!(x.findings.len(), 1);
    assert_eq!(x.findings[0].action, FindingAction::Block);
    assert_eq!(x.findings[0].rule, Some(RuleId::new("r-a")));
}

#[test]
fn monitor_block_becomes_a_finding_and_continues() {
    let a = Fixed::new("a", block("r-a"));
    let b = Fixed::new("b", Ok(Decision::Continue));
    let p = Pipeline::new(vec![
        slot(a, Enforcement::Monitor, OnError::Deny),
        slot(b.clone(), Enforcement::Enforce, OnError::Deny),
    ]);
    let mut x = exchange();
    assert_eq!(run(&p, &mut x), Verdict::Forward);
    assert_eq!(b.calls.load(Ordering::Relaxed), 1);
    assert_eq!(x.findings[0].action, FindingAction::WouldBlock);
    assert_eq!(x.findings[0].stage, StageId("a"));
}

#[test]
fn error_with_deny_fails_closed_with_503() {
    let a = Fixed::new("a", Err(StageError::new("keys not loaded")));
    let p = Pipeline::new(vec![slot(a, Enforcement::Enforce, OnError::Deny)]);
    let mut x = exchange();
    match run(&p, &mut x) {
        Verdict::Block(b) => {
            assert_eq!(b.reason, Reason::Unavailable);
            assert_eq!(b.status, http::StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(b.detail, "keys not loaded");
        }
        Verdict::Forward => panic!("on_error deny must block"),
    }
}

#[test]
fn error_with_allow_fails_open_and_records() {
    let a = Fixed::new("a", Err(StageError::new("redis away")));
    let p = Pipeline::new(vec![slot(a, Enforcement::Enforce, OnError::Allow)]);
    let mut x = exchange();
    assert_eq!(run(&p, &mut x), Verdict::Forward);
    assert_eq!(x.findings[0].action, FindingAction::Log);
    assert_eq!(x.findings[0].reason, Reason::Unavailable);
}

#[test]
fn error_with_deny_in_monitor_mode_is_only_recorded() {
    let a = Fixed::new("a", Err(StageError::new("down")));
    let p = Pipeline::new(vec![slot(a, Enforcement::Monitor, OnError::Deny)]);
    let mut x = exchange();
    assert_eq!(run(&p, &mut x), Verdict::Forward);
    assert_eq!(x.findings[0].action, FindingAction::WouldBlock);
}

#[test]
fn body_phase_is_needed_only_when_a_stage_asks() {
    let a = Fixed::new("a", Ok(Decision::Continue));
    let p = Pipeline::new(vec![slot(a, Enforcement::Enforce, OnError::Deny)]);
    assert!(!p.needs_request_body());
    assert!(!p.needs_response_body());
}

#[test]
fn phases_set_semantics() {
    let s = Phases::REQUEST_HEAD.union(Phases::RESPONSE_BODY);
    assert!(s.contains(Phases::REQUEST_HEAD));
    assert!(s.contains(Phases::RESPONSE_BODY));
    assert!(!s.contains(Phases::REQUEST_BODY));
    assert!(!s.contains(Phases::NONE));
}
