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

/// For the fuzz target: arbitrary bytes as paths (one per line) through the classifier and the
/// learner, and as a JSON body through schema learning; none may panic or grow past budget.
#[doc(hidden)]
pub mod fuzzing {
    /// Runs the data through everything.
    pub fn observe(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let mut l = crate::Learner::with_key(
            crate::Config {
                max_nodes: 200,
                consolidate_every: 16,
                ..crate::Config::default()
            },
            crate::sketch::Key(1, 2),
        );
        for (i, line) in text.lines().enumerate() {
            for seg in crate::classify::segments(line) {
                let _ = crate::classify::classify(&seg);
            }
            let status = if i % 5 == 4 { 404 } else { 200 };
            for _ in 0..2 {
                l.observe(&crate::Observation {
                    method: if i % 2 == 0 { "GET" } else { "POST" },
                    path: line,
                    status,
                    content_type: "application/json",
                    size: i as u64,
                });
            }
            let _ = l.template_of("GET", line);
        }
        l.consolidate();
        let e = l.endpoints();
        let _ = crate::export::openapi("fuzz", &e);
        assert!(l.usage().nodes <= 200, "{:?}", l.usage());
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let mut s = crate::schema::Stats::default();
            s.observe(&v);
            let _ = s.schema();
        }
    }
}
