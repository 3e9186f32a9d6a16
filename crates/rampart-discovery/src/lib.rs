//! API discovery: what an API is, learned from its traffic.
//!
//! This first part learns path templates (docs/discovery.md): [`classify`] normalises paths
//! and classes segments, [`learn::Learner`] builds the trie, [`sketch`] holds the keyed
//! sketches that bound its memory. No HTTP server and no clock in here: the gateway feeds it
//! observations off the request path.

pub mod classify;
pub mod export;
pub mod learn;
pub mod recommend;
pub mod schema;
pub mod sketch;

pub use learn::{shape, Config, Endpoint, Learner, Observation, Usage};
