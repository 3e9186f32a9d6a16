//! `authn`: who is the client? API keys, HTTP basic, mutual TLS and bearer tokens (JWT verified
//! against JWKS, opaque tokens by OAuth2 introspection), tried in the order an API lists them.

pub mod config;
pub mod consumers;
pub mod fetch;
pub mod introspect;
pub mod jws;
pub mod jwt;
pub mod lockout;
pub mod password;
mod stage;

pub use stage::{AuthnShared, AuthnStage, Forward, KeyLocation, Method, PasswordChecker, STAGE};
