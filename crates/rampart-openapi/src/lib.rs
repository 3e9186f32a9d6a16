//! OpenAPI 3.0 and 3.1 as a positive security model: what an API's schema does not describe is
//! refused (or logged).
//!
//! The flow: [`load`] reads a document (YAML or JSON) and every local file its `$ref`s name,
//! checks the root against the official OpenAPI meta-schema, translates 3.0 schema objects
//! (`nullable`, boolean `exclusiveMinimum`, `$ref` siblings) and OpenAPI keywords the JSON
//! Schema validator does not know (`discriminator`, `readOnly`, `writeOnly`) to JSON Schema
//! 2020-12, and compiles every schema once. [`Spec::route`] finds the operation of a request
//! (literal segments beat templates); [`Spec::validate_request_head`],
//! [`Spec::validate_request_body`], [`Spec::validate_response_head`] and
//! [`Spec::validate_response_body`] return the [`Violation`]s, each with the failing location
//! (`/query/limit`) and a message that names no schema internals.
//!
//! No HTTP server here: the `schema` stage of `rampart-stages` adapts this to the pipeline.

#[doc(hidden)]
pub mod fuzzing;
mod load;
mod media;
mod message;
mod model;
mod params;
mod router;
mod translate;

pub use load::{load, load_str, SpecError};
pub use model::{
    Mode, OpOverrides, Operation, RequestParts, ResponseParts, Route, Spec, Version, Violation,
    ViolationKind,
};
pub use router::PathTemplate;
