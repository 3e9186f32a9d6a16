//! `ratelimit`: too many requests, by accident or in an attack, must not slow the API for
//! everyone else.
//!
//! ```yaml
//! rate_limits:                       # global, and per API (apis[].rate_limits)
//!   - name: per-consumer
//!     key: identity.consumer
//!     requests: 100
//!     window_secs: 60
//!   - name: login
//!     when: 'http.request.uri.path == "/v1/login"'
//!     key: [ip.src/24]
//!     requests: 5
//!     window_secs: 60
//!     algorithm: sliding_window
//!     penalty_secs: 600
//! ```
//!
//! Each rule counts the requests its `when` matches, per key, with GCRA (a smooth rate with a
//! burst, the default) or a sliding window, and refuses with 429, `Retry-After` and the IETF
//! `RateLimit-Policy` / `RateLimit` headers once a key is over. Every response of a limited
//! route carries the headers of the tightest rule. The state lives in a bounded in-memory store
//! ([`MemoryStore`]) or in Redis, shared by every node.

mod algo;
mod config;
mod memory;
mod redis;
mod stage;

pub use algo::{check, Algorithm, Limit, Outcome, State};
pub use config::{AlgorithmConfig, KeyPart, LimitAction, RateLimitConfig};
pub use memory::{MemoryStore, SharedStore};
pub use redis::RedisStore;
pub use stage::{Backend, RateLimitStage, RateLimits, STAGE};
