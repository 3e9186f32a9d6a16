//! Secrets and paths in a configuration: `env:NAME` (an environment variable), `file:path` (a
//! file's contents, relative to the configuration's directory) or the value itself. Read when the
//! configuration compiles, never on the request path.

use std::path::{Path, PathBuf};

use crate::CompileCx;

/// Resolves a secret reference: `env:NAME`, `file:path` (relative to `base_dir`, trailing
/// newline removed), or a literal. A problem goes to `cx`.
pub fn resolve_secret(value: &str, base_dir: &Path, cx: &mut CompileCx) -> Option<String> {
    if let Some(var) = value.strip_prefix("env:") {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                cx.error(format!("environment variable \"{var}\" is not set"));
                None
            }
        }
    } else if let Some(path) = value.strip_prefix("file:") {
        match std::fs::read_to_string(resolve_path(base_dir, path)) {
            Ok(v) => Some(v.trim_end_matches(['\n', '\r']).to_owned()),
            Err(e) => {
                cx.error(format!("cannot read \"{path}\": {e}"));
                None
            }
        }
    } else {
        Some(value.to_owned())
    }
}

/// Resolves a path from the configuration against its directory.
pub fn resolve_path(base_dir: &Path, p: &str) -> PathBuf {
    base_dir.join(p)
}
