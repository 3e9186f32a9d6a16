//! The driver: one loop per phase over an ordered list of stages, and the one place where
//! enforcement modes and `on_error` policies are applied.

use std::sync::Arc;

use bytes::Bytes;

use crate::stage::{BodyFilter, FilterRefusal};
use crate::{
    Block, Decision, Enforcement, Exchange, Finding, FindingAction, OnError, Outcome, Phases,
    Reason, Stage, StageId,
};

/// The filters over one response body, each with its slot (see
/// [`Pipeline::response_body_filters`]).
#[derive(Debug, Default)]
pub struct Filters(Vec<(usize, Box<dyn BodyFilter>)>);

impl Filters {
    /// True when no stage filters the body.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A stage with the policy the driver applies to its outcome.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The stage.
    pub stage: Arc<dyn Stage>,
    /// Whether its blocks are applied or recorded.
    pub enforcement: Enforcement,
    /// What happens when it cannot decide.
    pub on_error: OnError,
}

/// What the driver concluded for a phase.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to the next phase.
    Forward,
    /// Stop, and answer the client with this block (already recorded as a finding).
    Block(Block),
}

/// An ordered, immutable list of stages for one API, built when the config is compiled.
///
/// The order is decided in one function of `rampart-config` (`build_pipeline`); this type only
/// runs it.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    slots: Vec<Slot>,
    phases: Phases,
}

impl Pipeline {
    /// Creates a pipeline that runs `slots` in the given order.
    pub fn new(slots: Vec<Slot>) -> Self {
        let phases = slots
            .iter()
            .fold(Phases::NONE, |acc, s| acc.union(s.stage.phases()));
        Self { slots, phases }
    }

    /// Returns the slots, in order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Returns true if some stage reads the request body, so the proxy must buffer it.
    pub fn needs_request_body(&self) -> bool {
        self.phases.contains(Phases::REQUEST_BODY)
    }

    /// Returns true if some stage reads the response body.
    pub fn needs_response_body(&self) -> bool {
        self.phases.contains(Phases::RESPONSE_BODY)
    }

    /// Runs the request-head hooks. Only stages that declare themselves async are awaited.
    pub async fn request_head(&self, req: &mut http::request::Parts, x: &mut Exchange) -> Verdict {
        for slot in &self.slots {
            if !slot.stage.phases().contains(Phases::REQUEST_HEAD) || x.skips_stage(slot.stage.id())
            {
                continue;
            }
            let outcome = if slot.stage.is_async() {
                slot.stage.on_request_head_async(req, x).await
            } else {
                slot.stage.on_request_head(req, x)
            };
            if let Verdict::Block(b) = apply(slot, outcome, x) {
                return Verdict::Block(b);
            }
        }
        Verdict::Forward
    }

    /// Runs the request-body hooks on the buffered body.
    pub fn request_body(
        &self,
        req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Verdict {
        self.run(Phases::REQUEST_BODY, x, |stage, x| {
            stage.on_request_body(req, body, x)
        })
    }

    /// Returns true if some stage acts on the response head, so the proxy must keep a copy of
    /// the request head for it.
    pub fn needs_response_head(&self) -> bool {
        self.phases.contains(Phases::RESPONSE_HEAD)
    }

    /// Runs the response-head hooks. `req` is the request head as the client sent it.
    pub fn response_head(
        &self,
        req: &http::request::Parts,
        rsp: &mut http::response::Parts,
        x: &mut Exchange,
    ) -> Verdict {
        self.run(Phases::RESPONSE_HEAD, x, |stage, x| {
            stage.on_response_head(req, rsp, x)
        })
    }

    /// Asks each response-body stage for a filter over the body about to stream (see
    /// [`Stage::response_body_filter`]). A block stops here: the response must not be sent.
    pub fn response_body_filters(
        &self,
        rsp: &mut http::response::Parts,
        whole_seen: bool,
        x: &mut Exchange,
    ) -> Result<Filters, Block> {
        let mut filters = Vec::new();
        if !self.needs_response_body() {
            return Ok(Filters(filters));
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let stage = slot.stage.as_ref();
            if !stage.phases().contains(Phases::RESPONSE_BODY) || x.skips_stage(stage.id()) {
                continue;
            }
            let outcome = match stage.response_body_filter(rsp, whole_seen, x) {
                Ok(Some(f)) => {
                    filters.push((i, f));
                    continue;
                }
                Ok(None) => continue,
                Err(FilterRefusal::Error(e)) => Err(e),
                Err(FilterRefusal::Block(b)) => Ok(Decision::Block(b)),
            };
            if let Verdict::Block(b) = apply(slot, outcome, x) {
                return Err(b);
            }
        }
        Ok(Filters(filters))
    }

    /// Runs a chunk through the filters, in order; a block means the stream must be cut.
    pub fn filter_chunk(
        &self,
        filters: &mut Filters,
        chunk: &mut Bytes,
        x: &mut Exchange,
    ) -> Verdict {
        for (i, f) in &mut filters.0 {
            let outcome = f.chunk(chunk, x);
            if let Verdict::Block(b) = apply(&self.slots[*i], outcome, x) {
                return Verdict::Block(b);
            }
        }
        Verdict::Forward
    }

    /// Ends the body: what the earlier filters release at the end is one more chunk for the
    /// later ones, before their own end. Returns what is left to send.
    pub fn filter_finish(&self, filters: &mut Filters, x: &mut Exchange) -> Result<Bytes, Block> {
        let mut out = bytes::BytesMut::new();
        for (i, f) in &mut filters.0 {
            let slot = &self.slots[*i];
            let mut carried = out.split().freeze();
            if !carried.is_empty() {
                if let Verdict::Block(b) = apply(slot, f.chunk(&mut carried, x), x) {
                    return Err(b);
                }
            }
            let mut tail = Bytes::new();
            if let Verdict::Block(b) = apply(slot, f.finish(&mut tail, x), x) {
                return Err(b);
            }
            out.extend_from_slice(&carried);
            out.extend_from_slice(&tail);
        }
        Ok(out.freeze())
    }

    /// Returns the most response-body bytes some stage wants to see whole before the client
    /// gets any, or `None` when the body may stream.
    pub fn response_body_limit(&self, rsp: &http::response::Parts, x: &Exchange) -> Option<u64> {
        if !self.needs_response_body() {
            return None;
        }
        self.slots
            .iter()
            .filter(|s| {
                s.stage.phases().contains(Phases::RESPONSE_BODY) && !x.skips_stage(s.stage.id())
            })
            .filter_map(|s| s.stage.response_body_limit(rsp, x))
            .max()
    }

    /// Runs the whole-body hooks of the stages that asked for the body, on the held body.
    pub fn response_body_whole(
        &self,
        rsp: &mut http::response::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Verdict {
        for slot in &self.slots {
            let stage = slot.stage.as_ref();
            if !stage.phases().contains(Phases::RESPONSE_BODY)
                || x.skips_stage(stage.id())
                || stage.response_body_limit(rsp, x).is_none()
            {
                continue;
            }
            let outcome = stage.on_response_body_whole(rsp, body, x);
            if let Verdict::Block(b) = apply(slot, outcome, x) {
                return Verdict::Block(b);
            }
        }
        Verdict::Forward
    }

    /// Runs the completion hooks of every stage.
    pub fn complete(&self, x: &Exchange) {
        for slot in &self.slots {
            slot.stage.on_complete(x);
        }
    }

    fn run(
        &self,
        phase: Phases,
        x: &mut Exchange,
        mut hook: impl FnMut(&dyn Stage, &mut Exchange) -> Outcome,
    ) -> Verdict {
        for slot in &self.slots {
            if !slot.stage.phases().contains(phase) || x.skips_stage(slot.stage.id()) {
                continue;
            }
            let outcome = hook(slot.stage.as_ref(), x);
            if let Verdict::Block(b) = apply(slot, outcome, x) {
                return Verdict::Block(b);
            }
        }
        Verdict::Forward
    }
}

/// The whole policy of "what happens on a block or an error", in one place.
fn apply(slot: &Slot, outcome: Outcome, x: &mut Exchange) -> Verdict {
    let id = slot.stage.id();
    let block = match outcome {
        Ok(Decision::Continue) => return Verdict::Forward,
        Ok(Decision::Block(block)) => block,
        Err(error) => match slot.on_error {
            OnError::Deny => Block::new(Reason::Unavailable).detail(error.message),
            OnError::Allow => {
                x.record(finding(
                    id,
                    FindingAction::Log,
                    &Block::new(Reason::Unavailable).detail(error.message),
                ));
                return Verdict::Forward;
            }
        },
    };
    match slot.enforcement {
        Enforcement::Enforce => {
            if !block.repeat {
                x.record(finding(id, FindingAction::Block, &block));
            }
            x.stopped_by = Some(id);
            Verdict::Block(block)
        }
        Enforcement::Monitor => {
            if !block.repeat {
                x.record(finding(id, FindingAction::WouldBlock, &block));
            }
            Verdict::Forward
        }
    }
}

fn finding(stage: StageId, action: FindingAction, block: &Block) -> Finding {
    Finding {
        stage,
        rule: block.rule.clone(),
        action,
        reason: block.reason,
        detail: block.detail.clone(),
    }
}

#[cfg(test)]
mod tests;
