//! `authn`: who is the client? API keys, HTTP basic, mutual TLS and bearer tokens (JWT verified
//! against JWKS, opaque tokens by OAuth2 introspection), tried in the order an API lists them.

pub mod jws;
pub mod config;
pub mod password;
pub mod consumers;
pub mod lockout;
