//! The data plane: listeners, TLS and mutual TLS, the hyper server, connection protections,
//! routing, the upstream client, the one `respond` function, events and metrics.
//!
//! A request's path through this crate: `server` accepts (connection caps, TLS handshake,
//! HTTP/1.1 or HTTP/2 with limits), `handler` runs protocol checks, routing and the pipeline's
//! phases, forwards to an `upstream` pool, streams the response back, and completes the
//! exchange (events, access log, metrics).

pub mod body;
mod conn;
pub mod discovery;
pub mod events;
mod forwarded;
mod handler;
pub mod offline;
pub mod recorder;
pub mod respond;
mod server;
pub mod stats;
pub mod store;
mod telemetry;
pub mod tlsinfo;
mod upstream;

pub use conn::{ConnLimiter, ConnPermit, Refusal};
pub use events::{EventBus, EventStats};
pub use server::{
    apply_reload, reload_from_file, spawn_reload_watchers, Gateway, ReloadOutcome, Shared,
    StartError, State,
};
pub use store::{EventPage, EventQuery, EventReader, EventStore, StoredEvent};
pub use upstream::{PooledConn, SendError, UpstreamPool};

/// Entry points for fuzzing (`fuzz/`), also run on the seed corpus by `cargo test`.
#[doc(hidden)]
pub mod fuzzing {
    use std::net::IpAddr;

    use http::header::{HeaderMap, HeaderName, HeaderValue};
    use rampart_core::{Cidr, IpTable};

    /// Parses arbitrary bytes as forwarding headers from a trusted peer. Invariant: the client
    /// address is the peer or an address the headers name.
    pub fn forwarded(data: &[u8]) {
        let mut headers = HeaderMap::new();
        for (i, line) in data.split(|b| *b == b'\n').enumerate() {
            let name = if i % 2 == 0 {
                "x-forwarded-for"
            } else {
                "forwarded"
            };
            if let Ok(v) = HeaderValue::from_bytes(line) {
                headers.append(HeaderName::from_static(name), v);
            }
        }
        let mut trusted = IpTable::new();
        if let Ok(c) = "10.0.0.0/8".parse::<Cidr>() {
            trusted.insert(c, ());
        }
        let peer: IpAddr = IpAddr::from([10, 0, 0, 1]);
        let ip = crate::forwarded::client_ip(peer, &headers, &trusted);
        let text = String::from_utf8_lossy(data).to_ascii_lowercase();
        let named = match ip {
            IpAddr::V4(v4) => text.contains(&v4.to_string()),
            IpAddr::V6(v6) => text.contains(&v6.to_string()) || v6.to_ipv4_mapped().is_some(),
        };
        assert!(
            ip == peer || named,
            "{ip} is neither the peer nor in the headers"
        );
    }

    /// Extracts an identity from arbitrary DER. Invariant: no panic.
    pub fn client_cert(data: &[u8]) {
        if let Some(c) = crate::tlsinfo::client_cert(data) {
            let _ = crate::tlsinfo::header_value(&c);
        }
    }
}
