//! Configuration: the YAML model, its compilation into an immutable [`Snapshot`], and
//! diagnostics that show every problem at once with file, line, column and a caret.
//!
//! The flow is `text → yaml::Node (positions) → de::from_node (model, problems) →
//! compile (Snapshot, problems)`. Problems found by the compiler carry a path
//! (`apis[0].upstream`) that is resolved to a position through the node tree, so the compiler
//! never deals with positions itself.

pub mod compile;
pub mod de;
mod load;
pub mod model;
pub mod render;
mod snapshot;
pub mod yaml;

pub use compile::tls::provider as crypto_provider;
pub use compile::{build_pipeline, ApiStages};
pub use load::{decode_str, load_file, load_str, reload_conflicts, ConfigError, Decoded};
pub use snapshot::{
    path_has_prefix, Admin, Api, DeclaredOp, DiscoverySettings, Events, HostPattern, Limits,
    Listener, Output, ProxySettings, Recording, SessionSource, Snapshot, Source, Target, Upstream,
};

/// Entry points for fuzzing (`fuzz/`), also run on the seed corpus by `cargo test`.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    /// Loads arbitrary bytes as a configuration. Invariants: no panic; every position points
    /// inside the text; rendering works.
    pub fn config(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Err(e) = crate::load_str(text, "fuzz.yaml", Path::new("/nonexistent-fuzz-dir")) {
            let lines = text.lines().count().max(1);
            for d in &e.diagnostics {
                if let Some(s) = d.span {
                    assert!(
                        s.line >= 1 && s.line <= lines + 1,
                        "line {} of {lines}",
                        s.line
                    );
                    assert!(s.col >= 1);
                }
            }
            assert!(e.render().contains("error"));
        }
    }
}
