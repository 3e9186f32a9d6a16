//! The [`Stage`] trait: one security feature, seen through per-phase hooks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::{Decision, Exchange};

/// A boxed future, for the one hook that may await.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a hook returns: a decision, or an error meaning "could not decide".
pub type Outcome = Result<Decision, StageError>;

/// The name of a stage, used in events, metrics and findings (`iprules`, `waf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageId(pub &'static str);

impl StageId {
    /// Returns the name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The phases of an exchange, in order (Coraza's phases 1 to 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// The request line and headers have been read.
    RequestHead,
    /// The request body has been buffered (only when some stage needs it).
    RequestBody,
    /// The upstream's status and headers have arrived.
    ResponseHead,
    /// A chunk of the response body is passing through.
    ResponseBody,
    /// The exchange is over (always runs, even after a block).
    Complete,
}

/// A small set of [`Phase`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Phases(u8);

impl Phases {
    /// No phase.
    pub const NONE: Self = Self(0);
    /// Only the request head.
    pub const REQUEST_HEAD: Self = Self(1);
    /// Only the request body.
    pub const REQUEST_BODY: Self = Self(2);
    /// Only the response head.
    pub const RESPONSE_HEAD: Self = Self(4);
    /// Only the response body.
    pub const RESPONSE_BODY: Self = Self(8);

    /// Returns the union of two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Returns true if every phase of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

/// Why a stage could not decide. It is never a client's fault: a malformed client credential is
/// a [`Decision::Block`], not an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    /// What went wrong, for logs and events.
    pub message: String,
}

impl StageError {
    /// Creates an error.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// One security feature, plugged into the pipeline.
///
/// Hooks are synchronous and see only the [`Exchange`] and plain HTTP data: never a socket, never
/// the wall clock (use [`Exchange::now_ms`]). A stage that needs I/O per request (a shared
/// rate-limit store, token introspection) overrides [`Stage::on_request_head_async`] and
/// returns true from [`Stage::is_async`]; the driver awaits only those.
pub trait Stage: Send + Sync + fmt::Debug {
    /// Returns the stage's name.
    fn id(&self) -> StageId;

    /// Returns the phases this stage acts in. The proxy buffers the request body only when a
    /// stage of the route lists [`Phases::REQUEST_BODY`].
    fn phases(&self) -> Phases {
        Phases::REQUEST_HEAD
    }

    /// Returns true if the request-head hook must be awaited.
    fn is_async(&self) -> bool {
        false
    }

    /// Called once, when the request head has been read. May rewrite the head (strip a
    /// credential, add a header). Default: continue.
    fn on_request_head(&self, _req: &mut http::request::Parts, _x: &mut Exchange) -> Outcome {
        Ok(Decision::Continue)
    }

    /// The awaited form of [`Stage::on_request_head`]; by default it calls the synchronous
    /// hook.
    fn on_request_head_async<'a>(
        &'a self,
        req: &'a mut http::request::Parts,
        x: &'a mut Exchange,
    ) -> BoxFuture<'a, Outcome> {
        let outcome = self.on_request_head(req, x);
        Box::pin(async move { outcome })
    }

    /// Called once with the whole buffered request body (up to `max_inspect_bytes`; see
    /// [`Exchange::body_truncated`]), for every request of a route whose stages read bodies: a
    /// request without a body gets an empty one. Default: continue.
    fn on_request_body(
        &self,
        _req: &http::request::Parts,
        _body: &mut Bytes,
        _x: &mut Exchange,
    ) -> Outcome {
        Ok(Decision::Continue)
    }

    /// Called once, when the upstream's response head has arrived, with the request head as
    /// the client sent it (before the proxy's own rewrites). Default: continue.
    fn on_response_head(
        &self,
        _req: &http::request::Parts,
        _rsp: &mut http::response::Parts,
        _x: &mut Exchange,
    ) -> Outcome {
        Ok(Decision::Continue)
    }

    /// Called once the response head has been judged and the body is about to stream to the
    /// client: returns a filter that sees every chunk of the body in order (and may rewrite
    /// it, or hold bytes back and release them later), or `None`. `whole_seen` is true when
    /// this stage's [`Stage::on_response_body_whole`] already saw the whole body, and false
    /// when the body streams without it (no limit asked, or a body over the limit). May fix
    /// the response head for what the filter will send (a decoded body loses its
    /// `Content-Encoding`). An error or a block is applied like any outcome; in monitor mode
    /// the body streams without the filter. Default: none.
    fn response_body_filter(
        &self,
        _rsp: &mut http::response::Parts,
        _whole_seen: bool,
        _x: &mut Exchange,
    ) -> Result<Option<Box<dyn BodyFilter>>, FilterRefusal> {
        Ok(None)
    }

    /// Called once the response head has been judged: returns the most bytes of the response
    /// body this stage needs to see whole before any of it reaches the client, or `None` to
    /// let it stream. When some stage asks, the proxy holds the body up to the largest limit
    /// asked, then calls [`Stage::on_response_body_whole`]; a body larger than that streams
    /// unseen by it, with a finding. Only stages that list [`Phases::RESPONSE_BODY`] are asked.
    fn response_body_limit(&self, _rsp: &http::response::Parts, _x: &Exchange) -> Option<u64> {
        None
    }

    /// Called with the whole response body when this stage's [`Stage::response_body_limit`]
    /// asked for it and the body fitted. May rewrite it (the proxy fixes `Content-Length`) and
    /// the response head (a decoded body loses its `Content-Encoding`).
    /// A block replaces the response. Default: continue.
    fn on_response_body_whole(
        &self,
        _rsp: &mut http::response::Parts,
        _body: &mut Bytes,
        _x: &mut Exchange,
    ) -> Outcome {
        Ok(Decision::Continue)
    }

    /// Called once when the exchange is over, blocked or not. Cannot change anything.
    fn on_complete(&self, _x: &Exchange) {}
}

/// Why a stage refused to stream a response body: an error it could not decide through, or a
/// block (a body it must see whole and could not).
#[derive(Debug)]
pub enum FilterRefusal {
    /// Applied with the stage's `on_error`.
    Error(StageError),
    /// Applied with the stage's enforcement.
    Block(crate::Block),
}

/// A stage's view of one response body as it streams: every chunk in order, then the end.
///
/// A filter may pass a chunk on unchanged, rewrite it, or hold bytes back and release them
/// with a later chunk or at the end (a scanner that needs to see what follows a match); the
/// proxy sends what each call leaves in `chunk` or `tail`. A block cuts the stream: the head
/// has been sent, so the client gets a truncated body and the connection is closed.
pub trait BodyFilter: Send + fmt::Debug {
    /// One chunk of the body; on return `chunk` holds what may be sent now.
    fn chunk(&mut self, chunk: &mut Bytes, x: &mut Exchange) -> Outcome;

    /// The end of the body; on return `tail` holds what is left to send.
    fn finish(&mut self, tail: &mut Bytes, x: &mut Exchange) -> Outcome;
}
