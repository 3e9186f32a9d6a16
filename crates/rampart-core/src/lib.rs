//! The contract every part of Rampart is written against.
//!
//! A request passes through an ordered list of [`Stage`]s, driven one phase at a time by a
//! [`Pipeline`]. Each stage hook returns a [`Decision`] (a value, never an error for a client
//! fault), or a [`StageError`] when the stage could not decide (keys not loaded, a store away).
//! The driver, in one place, applies the stage's [`Enforcement`] (`enforce` or `monitor`) and
//! its [`OnError`] policy (`deny` or `allow`), and records [`Finding`]s on the [`Exchange`].
//!
//! Nothing here knows about sockets or the wall clock: the proxy fills an [`Exchange`] from a
//! connection, and `rampart replay` fills one from a recorded request with a virtual clock, and
//! both run the very same pipeline.

mod clock;
mod decision;
pub mod diagnostics;
mod event;
mod exchange;
pub mod iptable;
mod pipeline;
pub mod secret;
mod stage;
pub mod yaml;

pub use clock::{Clock, ManualClock, SystemClock, UnixMillis};
pub use decision::{Block, Decision, Enforcement, OnError, Reason, RuleId};
pub use diagnostics::{CompileCx, Diagnostic, SourceSpan};
pub use event::{EventAction, SecurityEvent};
pub use exchange::{
    ClientCert, Exchange, Finding, FindingAction, Peer, Principal, RouteInfo, Skips, Timings,
    TlsInfo,
};
pub use iptable::{Cidr, IpTable};
pub use pipeline::{Filters, Pipeline, Slot, Verdict};
pub use stage::{
    BodyFilter, BoxFuture, FilterRefusal, Outcome, Phase, Phases, Stage, StageError, StageId,
};
