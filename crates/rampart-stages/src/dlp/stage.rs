//! The `dlp` stage: the scanner on response bodies (whole when a detector blocks, else as they
//! stream) and, when configured, on request bodies.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::StatusCode;
use rampart_core::{
    Block, BodyFilter, Decision, Exchange, FilterRefusal, Finding, FindingAction, Outcome, Phases,
    Reason, RuleId, Stage, StageId,
};
use rampart_dlp::{redact_sample, Detector, Match, Stream};

use super::codec::{self, Coding, DecodeError, Decoder};
use super::config::{Action, Dlp, OversizeAction, Side};

/// The stage's id in events and metrics.
pub const STAGE: StageId = StageId("dlp");

/// The stage, over one compiled `dlp:` section.
#[derive(Debug)]
pub struct DlpStage(pub Arc<Dlp>);

#[derive(Clone, Copy)]
enum Direction {
    Request,
    Response,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
        }
    }
}

fn rule(side: &Side, d: Detector) -> RuleId {
    RuleId::new(&format!("dlp:{}", side.scanner.name(d)))
}

fn describe(side: &Side, dir: Direction, m: &Match, text: &[u8], verb: &str) -> String {
    format!(
        "{} {verb} in the {} body at byte {}: {}",
        side.scanner.name(m.detector),
        dir.as_str(),
        m.start,
        redact_sample(&String::from_utf8_lossy(text))
    )
}

fn count(side: &Side, dir: Direction, d: Detector, action: &'static str) {
    metrics::counter!(
        "rampart_dlp_matches_total",
        "detector" => side.scanner.name(d).to_owned(),
        "direction" => dir.as_str(),
        "action" => action
    )
    .increment(1);
}

/// Records a log or mask finding, once per detector and body.
fn note(
    side: &Side,
    dir: Direction,
    m: &Match,
    text: &[u8],
    action: FindingAction,
    seen: &mut HashSet<Detector>,
    x: &mut Exchange,
) {
    count(side, dir, m.detector, action.as_str());
    if !seen.insert(m.detector) {
        return;
    }
    let verb = match action {
        FindingAction::Mask => "masked",
        FindingAction::WouldBlock => "found",
        _ => "seen",
    };
    x.record(Finding {
        stage: STAGE,
        rule: Some(rule(side, m.detector)),
        action,
        reason: Reason::DataLeak,
        detail: describe(side, dir, m, text, verb),
    });
}

fn weaken_etag(headers: &mut http::HeaderMap) {
    // The representation changed (decoded, masked): a strong validator would lie.
    if let Some(v) = headers.get(ETAG) {
        if !v.as_bytes().starts_with(b"W/") {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(v.as_bytes());
            match http::HeaderValue::from_bytes(&weak) {
                Ok(w) => {
                    headers.insert(ETAG, w);
                }
                Err(_) => {
                    headers.remove(ETAG);
                }
            }
        }
    }
}

impl DlpStage {
    fn block(side: &Side, dir: Direction, m: &Match, text: &[u8]) -> Block {
        count(side, dir, m.detector, "block");
        let b = Block::new(Reason::DataLeak)
            .rule(rule(side, m.detector))
            .detail(describe(side, dir, m, text, "found"));
        match dir {
            Direction::Request => b.status(StatusCode::FORBIDDEN),
            Direction::Response => b,
        }
    }

    fn scan_request(
        &self,
        side: &Side,
        req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        let dlp = &self.0;
        if body.is_empty() || !dlp.scans(req.headers.get(CONTENT_TYPE)) {
            return Ok(Decision::Continue);
        }
        let coding = match codec::coding(&req.headers) {
            Ok(c) => c,
            Err(name) => {
                return Ok(Decision::Block(
                    Block::new(Reason::MalformedRequest)
                        .status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                        .detail(format!(
                            "request content coding `{name}` cannot be inspected"
                        )),
                ))
            }
        };
        let mut plain = match codec::decode_all(coding, body, dlp.max_decoded_bytes) {
            Ok(p) => p,
            Err(DecodeError::TooLarge) => {
                return Ok(Decision::Block(Block::new(Reason::BodyTooLarge).detail(
                    format!(
                        "request body decodes to more than max_decoded_bytes ({})",
                        dlp.max_decoded_bytes
                    ),
                )))
            }
            Err(DecodeError::Corrupt(e)) => {
                return Ok(Decision::Block(
                    Block::new(Reason::MalformedRequest).detail(format!("request body: {e}")),
                ))
            }
        };
        let matches = side.scanner.scan(&plain, 0);
        let mut seen = HashSet::new();
        let mut masked = false;
        for m in &matches {
            let text = &plain[m.start as usize..m.end as usize];
            match side.action(m.detector) {
                // A compressed request cannot be forwarded masked (its head is sent as it
                // came): it is refused instead.
                Action::Block => {
                    return Ok(Decision::Block(Self::block(
                        side,
                        Direction::Request,
                        m,
                        text,
                    )))
                }
                Action::Mask if coding != Coding::Identity => {
                    return Ok(Decision::Block(Self::block(
                        side,
                        Direction::Request,
                        m,
                        text,
                    )))
                }
                Action::Mask if !dlp.monitor => {
                    let text = text.to_vec();
                    note(
                        side,
                        Direction::Request,
                        m,
                        &text,
                        FindingAction::Mask,
                        &mut seen,
                        x,
                    );
                    rampart_dlp::mask(&mut plain, m.start as usize, m.end as usize, m.detector);
                    masked = true;
                }
                _ => {
                    let text = text.to_vec();
                    note(
                        side,
                        Direction::Request,
                        m,
                        &text,
                        FindingAction::Log,
                        &mut seen,
                        x,
                    );
                }
            }
        }
        if masked {
            *body = Bytes::from(plain);
        }
        Ok(Decision::Continue)
    }
}

impl Stage for DlpStage {
    fn id(&self) -> StageId {
        STAGE
    }

    fn phases(&self) -> Phases {
        let p = Phases::REQUEST_HEAD.union(Phases::RESPONSE_BODY);
        if self.0.request.is_some() {
            p.union(Phases::REQUEST_BODY)
        } else {
            p
        }
    }

    fn on_request_head(&self, req: &mut http::request::Parts, _x: &mut Exchange) -> Outcome {
        // Responses come only in codings the scanner can read.
        codec::restrict_accept_encoding(&mut req.headers);
        Ok(Decision::Continue)
    }

    fn on_request_body(
        &self,
        req: &http::request::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        match &self.0.request {
            Some(side) => self.scan_request(side, req, body, x),
            None => Ok(Decision::Continue),
        }
    }

    fn response_body_limit(&self, rsp: &http::response::Parts, _x: &Exchange) -> Option<u64> {
        let dlp = &self.0;
        (dlp.response.any_block && !dlp.monitor && dlp.scans(rsp.headers.get(CONTENT_TYPE)))
            .then_some(dlp.max_buffer_bytes)
    }

    fn on_response_body_whole(
        &self,
        rsp: &mut http::response::Parts,
        body: &mut Bytes,
        x: &mut Exchange,
    ) -> Outcome {
        let dlp = &self.0;
        let side = &dlp.response;
        let coding = match codec::coding(&rsp.headers) {
            Ok(c) => c,
            Err(name) => {
                return Ok(Decision::Block(Block::new(Reason::DataLeak).detail(
                    format!("response content coding `{name}` cannot be inspected"),
                )))
            }
        };
        let mut plain = match codec::decode_all(coding, body, dlp.max_decoded_bytes) {
            Ok(p) => p,
            Err(e) => {
                let why = match e {
                    DecodeError::TooLarge => format!(
                        "decodes to more than max_decoded_bytes ({})",
                        dlp.max_decoded_bytes
                    ),
                    DecodeError::Corrupt(e) => e,
                };
                if dlp.oversize == OversizeAction::Log {
                    x.record(Finding {
                        stage: STAGE,
                        rule: None,
                        action: FindingAction::Log,
                        reason: Reason::DataLeak,
                        detail: format!("response body not inspected: {why}"),
                    });
                    return Ok(Decision::Continue);
                }
                return Ok(Decision::Block(
                    Block::new(Reason::DataLeak)
                        .detail(format!("response body cannot be inspected: {why}")),
                ));
            }
        };
        let matches = side.scanner.scan(&plain, 0);
        let mut seen = HashSet::new();
        let mut masks = Vec::new();
        for m in &matches {
            let text = &plain[m.start as usize..m.end as usize];
            match side.action(m.detector) {
                Action::Block => {
                    return Ok(Decision::Block(Self::block(
                        side,
                        Direction::Response,
                        m,
                        text,
                    )))
                }
                Action::Mask => masks.push(*m),
                Action::Log => {
                    let text = text.to_vec();
                    note(
                        side,
                        Direction::Response,
                        m,
                        &text,
                        FindingAction::Log,
                        &mut seen,
                        x,
                    );
                }
            }
        }
        if masks.is_empty() {
            return Ok(Decision::Continue);
        }
        for m in &masks {
            let text = plain[m.start as usize..m.end as usize].to_vec();
            note(
                side,
                Direction::Response,
                m,
                &text,
                FindingAction::Mask,
                &mut seen,
                x,
            );
            rampart_dlp::mask(&mut plain, m.start as usize, m.end as usize, m.detector);
        }
        if coding != Coding::Identity {
            rsp.headers.remove(CONTENT_ENCODING);
        }
        weaken_etag(&mut rsp.headers);
        *body = Bytes::from(plain);
        Ok(Decision::Continue)
    }

    fn response_body_filter(
        &self,
        rsp: &mut http::response::Parts,
        whole_seen: bool,
        x: &mut Exchange,
    ) -> Result<Option<Box<dyn BodyFilter>>, FilterRefusal> {
        let dlp = &self.0;
        let side = &dlp.response;
        if whole_seen || !dlp.scans(rsp.headers.get(CONTENT_TYPE)) {
            return Ok(None);
        }
        // A blocking detector asked for the body whole; being here means it did not fit.
        let oversize = side.any_block && !dlp.monitor;
        let block_as = if oversize {
            match dlp.oversize {
                OversizeAction::Reject => {
                    return Err(FilterRefusal::Block(
                        Block::new(Reason::BodyTooLarge)
                            .status(StatusCode::BAD_GATEWAY)
                            .detail(format!(
                        "response body over max_buffer_bytes ({}) cannot be inspected whole",
                        dlp.max_buffer_bytes
                    )),
                    ))
                }
                OversizeAction::Mask => Action::Mask,
                OversizeAction::Cut => Action::Block,
                OversizeAction::Log => Action::Log,
            }
        } else {
            Action::Block
        };
        let coding = match codec::coding(&rsp.headers) {
            Ok(c) => c,
            Err(name) => {
                let detail = format!("response content coding `{name}` cannot be inspected");
                if (side.any_block || side.any_mask) && !dlp.monitor {
                    return Err(FilterRefusal::Block(
                        Block::new(Reason::DataLeak).detail(detail),
                    ));
                }
                x.record(Finding {
                    stage: STAGE,
                    rule: None,
                    action: FindingAction::Log,
                    reason: Reason::DataLeak,
                    detail,
                });
                return Ok(None);
            }
        };
        let effective = {
            let dlp = dlp.clone();
            move |d: Detector| match dlp.response.action(d) {
                Action::Block => block_as,
                a => a,
            }
        };
        let masking =
            !dlp.monitor && (side.any_mask || (side.any_block && block_as == Action::Mask));
        let cutting = !dlp.monitor && side.any_block && block_as == Action::Block;
        // The bytes sent are the scanner's (held back, masked) unless only logging.
        let rewrite = masking || cutting;
        if rewrite && coding != Coding::Identity {
            rsp.headers.remove(CONTENT_ENCODING);
            rsp.headers.remove(CONTENT_LENGTH);
        }
        if masking {
            weaken_etag(&mut rsp.headers);
        }
        let e2 = effective.clone();
        let stream =
            Stream::new(side.scanner.clone()).mask_only(Arc::new(move |d| e2(d) == Action::Mask));
        Ok(Some(Box::new(DlpFilter {
            dlp: dlp.clone(),
            stream,
            decoder: (coding != Coding::Identity)
                .then(|| Decoder::new(coding, dlp.max_decoded_bytes)),
            effective: Box::new(effective),
            masking,
            rewrite,
            seen: HashSet::new(),
            blind: false,
        })))
    }
}

/// One response body as it streams through the scanner.
struct DlpFilter {
    dlp: Arc<Dlp>,
    stream: Stream<Arc<rampart_dlp::Scanner>>,
    decoder: Option<Decoder>,
    effective: Box<dyn Fn(Detector) -> Action + Send>,
    masking: bool,
    /// True when what is sent is the scanner's output (masked, or held back to cut before a
    /// match); false when the body passes as it came and is only read.
    rewrite: bool,
    seen: HashSet<Detector>,
    /// Set when decoding failed in read-only mode: the rest is not inspected.
    blind: bool,
}

impl std::fmt::Debug for DlpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlpFilter")
            .field("stream", &self.stream)
            .field("masking", &self.masking)
            .field("rewrite", &self.rewrite)
            .finish_non_exhaustive()
    }
}

impl DlpFilter {
    /// Handles the matches the stream just reported; the first block, if any, is returned
    /// after every other match is noted.
    fn handle(&mut self, matches: &[Match], x: &mut Exchange) -> Outcome {
        let side = &self.dlp.response;
        let texts = self.stream.last_texts().to_vec();
        let mut blocked = None;
        for (m, text) in matches.iter().zip(texts.iter()) {
            match (self.effective)(m.detector) {
                // Monitor mode: each detector that would block says so once.
                Action::Block if self.dlp.monitor => note(
                    side,
                    Direction::Response,
                    m,
                    text,
                    FindingAction::WouldBlock,
                    &mut self.seen,
                    x,
                ),
                Action::Block => {
                    let repeat = !self.seen.insert(m.detector);
                    if blocked.is_none() {
                        let mut b = DlpStage::block(side, Direction::Response, m, text);
                        b.repeat = repeat;
                        blocked = Some(b);
                    }
                }
                Action::Mask if self.masking => note(
                    side,
                    Direction::Response,
                    m,
                    text,
                    FindingAction::Mask,
                    &mut self.seen,
                    x,
                ),
                _ => note(
                    side,
                    Direction::Response,
                    m,
                    text,
                    FindingAction::Log,
                    &mut self.seen,
                    x,
                ),
            }
        }
        Ok(blocked.map_or(Decision::Continue, Decision::Block))
    }

    fn decode_failed(&mut self, e: DecodeError, x: &mut Exchange) -> Outcome {
        let why = match e {
            DecodeError::TooLarge => format!(
                "decodes to more than max_decoded_bytes ({})",
                self.dlp.max_decoded_bytes
            ),
            DecodeError::Corrupt(e) => e,
        };
        if self.rewrite {
            // What is sent is the decoded body: it cannot go on.
            return Ok(Decision::Block(
                Block::new(Reason::DataLeak)
                    .detail(format!("response body cannot be inspected: {why}")),
            ));
        }
        self.blind = true;
        self.decoder = None;
        x.record(Finding {
            stage: STAGE,
            rule: None,
            action: FindingAction::Log,
            reason: Reason::DataLeak,
            detail: format!("the rest of the response body is not inspected: {why}"),
        });
        Ok(Decision::Continue)
    }

    /// Scans `input` (and ends the stream when `end`): the bytes to send, and the outcome.
    fn step(&mut self, input: &[u8], end: bool, x: &mut Exchange) -> (Vec<u8>, Outcome) {
        let (matches, mut out) = self.stream.feed(input, self.masking);
        let mut outcome = self.handle(&matches, x);
        if end {
            let (matches, rest) = self.stream.finish(self.masking);
            let last = self.handle(&matches, x);
            if matches!(outcome, Ok(Decision::Continue)) {
                outcome = last;
            }
            out.extend_from_slice(&rest);
        }
        (out, outcome)
    }
}

impl BodyFilter for DlpFilter {
    fn chunk(&mut self, chunk: &mut Bytes, x: &mut Exchange) -> Outcome {
        if self.blind {
            return Ok(Decision::Continue);
        }
        let input = match self.decoder.as_mut() {
            Some(d) => match d.feed(chunk) {
                Ok(p) => Bytes::from(p),
                Err(e) => return self.decode_failed(e, x),
            },
            None => chunk.clone(),
        };
        let (out, outcome) = self.step(&input, false, x);
        if self.rewrite && matches!(outcome, Ok(Decision::Continue)) {
            *chunk = Bytes::from(out);
        }
        outcome
    }

    fn finish(&mut self, tail: &mut Bytes, x: &mut Exchange) -> Outcome {
        if self.blind {
            return Ok(Decision::Continue);
        }
        let last = match self.decoder.as_mut() {
            Some(d) => match d.finish() {
                Ok(p) => p,
                Err(e) => return self.decode_failed(e, x),
            },
            None => Vec::new(),
        };
        let (out, outcome) = self.step(&last, true, x);
        if self.rewrite && matches!(outcome, Ok(Decision::Continue)) {
            *tail = Bytes::from(out);
        }
        outcome
    }
}
