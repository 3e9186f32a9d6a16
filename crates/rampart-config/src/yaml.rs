//! The YAML tree with positions now lives in `rampart_core::yaml`, shared with the OpenAPI loader.

pub use rampart_core::yaml::*;
