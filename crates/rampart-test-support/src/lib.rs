//! Test support: loopback upstreams, clients, generated certificates and a [`TestGateway`]
//! that runs the real proxy on `127.0.0.1:0` from a YAML string.
//!
//! Everything binds loopback ports chosen by the kernel; nothing is fixed, nothing leaves the
//! machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod certs;
mod client;
mod gateway;
mod idp;
mod redis;
mod tempdir;
mod upstream;

pub use certs::{ClientIdentity, TestPki};
pub use client::{collect, h1_client, tls_client_config, tls_connect, Collected, HttpClient};
pub use gateway::TestGateway;
pub use idp::{hs256, jwks, TestIdp, TokenSigner, IDP_CLIENT};
pub use redis::TestRedis;
pub use tempdir::TempDir;
pub use upstream::{Seen, TestUpstream};

/// Compresses `data` with a content coding (`gzip`, `deflate`, `br`), as an upstream would.
pub fn compress(coding: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        other => panic!("no such coding in tests: {other}"),
    }
}
