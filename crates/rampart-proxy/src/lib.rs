//! The data plane: listeners, TLS and mutual TLS, the hyper server, connection protections,
//! routing, the upstream client, the one `respond` function, events and metrics.
//!
//! A request's path through this crate: `server` accepts (connection caps, TLS handshake,
//! HTTP/1.1 or HTTP/2 with limits), `handler` runs protocol checks, routing and the pipeline's
//! phases, forwards to an `upstream` pool, streams the response back, and completes the
//! exchange (events, access log, metrics).

mod admin;
pub mod body;
mod conn;
pub mod events;
mod forwarded;
mod handler;
pub mod respond;
mod server;
mod telemetry;
pub mod tlsinfo;
mod upstream;

pub use admin::constant_time_eq;
pub use conn::{ConnLimiter, ConnPermit, Refusal};
pub use events::{EventBus, EventStats, EventStore};
pub use server::{
    apply_reload, reload_from_file, spawn_reload_watchers, Gateway, ReloadOutcome, Shared,
    StartError, State,
};
pub use upstream::UpstreamPool;
