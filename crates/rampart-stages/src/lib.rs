//! The security stages, one module per feature. Each module has the same anatomy:
//! `XxxConfig` (the raw YAML model, serde), `Xxx` (compiled, immutable), `impl Stage for Xxx`,
//! and tests beside them.

pub mod authn;
pub mod authz;
pub mod ddos;
pub mod dlp;
pub mod iprules;
pub mod ratelimit;
pub mod schema;
pub mod waf;
