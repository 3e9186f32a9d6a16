//! Loading a configuration file: read, parse, decode, compile, with every problem at once.

use std::fmt;
use std::path::{Path, PathBuf};

use rampart_core::{CompileCx, Diagnostic};

use crate::model::ConfigFile;
use crate::snapshot::{Snapshot, Source};
use crate::{compile, de, render, yaml};

/// A configuration that did not compile: every problem, positioned.
#[derive(Debug)]
pub struct ConfigError {
    /// The file's name as shown.
    pub file: String,
    /// Its text (empty when it could not be read).
    pub text: String,
    /// The problems, each with a position when one is known.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// Renders the problems with carets.
    pub fn render(&self) -> String {
        render::render(&self.diagnostics, &self.file, &self.text)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and compiles a configuration file.
pub fn load_file(path: &Path) -> Result<Snapshot, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        text: String::new(),
        diagnostics: vec![Diagnostic {
            path: String::new(),
            message: format!("cannot read the configuration: {e}"),
            help: None,
            file: None,
            span: None,
            value_span: None,
        }],
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    load_str(&text, &file, &base_dir)
}

/// Compiles configuration text. `name` is shown in messages; relative paths start at
/// `base_dir`.
pub fn load_str(text: &str, name: &str, base_dir: &Path) -> Result<Snapshot, ConfigError> {
    let fail = |diagnostics| ConfigError {
        file: name.to_owned(),
        text: text.to_owned(),
        diagnostics,
    };
    let root = yaml::parse(text).map_err(|e| {
        fail(vec![Diagnostic {
            path: String::new(),
            message: format!("invalid YAML: {}", e.message),
            help: None,
            file: None,
            span: Some(e.span),
            value_span: None,
        }])
    })?;
    let (model, mut diagnostics) = de::from_node::<ConfigFile>(&root);
    let mut cx = CompileCx::new();
    let snapshot = model.as_ref().and_then(|m| {
        compile::compile(
            m,
            base_dir,
            Source {
                name: name.to_owned(),
                text: text.to_owned(),
            },
            &mut cx,
        )
    });
    // A value that did not decode holds a placeholder: what the compiler says under its path
    // is a consequence, not news.
    let decode_paths: Vec<String> = diagnostics.iter().map(|d| d.path.clone()).collect();
    diagnostics.extend(
        cx.into_diagnostics()
            .into_iter()
            .filter(|d| !decode_paths.iter().any(|p| is_under(&d.path, p))),
    );
    if diagnostics.is_empty() {
        if let Some(s) = snapshot {
            return Ok(s);
        }
    }
    locate(&root, text, &mut diagnostics);
    Err(fail(diagnostics))
}

/// Gives each diagnostic without a position the position of the value its path names (inside
/// a string, the part the diagnostic points at), and sorts them by position.
fn locate(root: &yaml::Node, text: &str, diagnostics: &mut [Diagnostic]) {
    for d in diagnostics.iter_mut() {
        if d.span.is_none() {
            let node = root.find(&d.path);
            d.span = Some(node.span);
            if let (Some((offset, len)), yaml::NodeKind::Scalar { value, .. }) =
                (d.value_span, &node.kind)
            {
                if let Some(inner) = yaml::locate_in_scalar(text, node.span, value, offset, len) {
                    d.span = Some(inner);
                }
            }
        }
    }
    diagnostics.sort_by_key(|d| d.span.map(|s| (s.line, s.col)));
}

/// A YAML document other than the configuration (a rules test file, say) decoded with the
/// configuration's rules: unknown keys rejected, every problem reported at once, positioned.
///
/// A value that did not decode holds a placeholder, so the caller can go on checking the rest
/// and report everything together with [`Decoded::check`].
#[derive(Debug)]
pub struct Decoded<T> {
    /// The decoded value (with placeholders where values did not decode).
    pub value: T,
    problems: Vec<Diagnostic>,
    root: yaml::Node,
    name: String,
    text: String,
}

impl<T> Decoded<T> {
    /// Adds the problems the caller found (under paths of this document) to those of decoding;
    /// returns the document when there are none, else every problem, positioned. A problem
    /// under a value that did not decode is left out: it is a consequence, not news.
    pub fn check(self, more: Vec<Diagnostic>) -> Result<Self, ConfigError> {
        let mut problems = self.problems;
        let decode_paths: Vec<String> = problems.iter().map(|d| d.path.clone()).collect();
        problems.extend(
            more.into_iter()
                .filter(|d| !decode_paths.iter().any(|p| is_under(&d.path, p))),
        );
        if problems.is_empty() {
            return Ok(Self { problems, ..self });
        }
        locate(&self.root, &self.text, &mut problems);
        Err(ConfigError {
            file: self.name,
            text: self.text,
            diagnostics: problems,
        })
    }
}

/// Decodes YAML text into `T`. `name` is shown in messages. Fails on invalid YAML or a
/// document whose top level does not decode; other problems wait for [`Decoded::check`].
pub fn decode_str<T: serde::de::DeserializeOwned>(
    text: &str,
    name: &str,
) -> Result<Decoded<T>, ConfigError> {
    let fail = |diagnostics| ConfigError {
        file: name.to_owned(),
        text: text.to_owned(),
        diagnostics,
    };
    let root = yaml::parse(text).map_err(|e| {
        fail(vec![Diagnostic {
            path: String::new(),
            message: format!("invalid YAML: {}", e.message),
            help: None,
            file: None,
            span: Some(e.span),
            value_span: None,
        }])
    })?;
    let (value, mut problems) = de::from_node::<T>(&root);
    match value {
        Some(value) => Ok(Decoded {
            value,
            problems,
            root,
            name: name.to_owned(),
            text: text.to_owned(),
        }),
        None => {
            if problems.is_empty() {
                problems.push(Diagnostic {
                    path: String::new(),
                    message: "the document could not be decoded".to_owned(),
                    help: None,
                    file: None,
                    span: None,
                    value_span: None,
                });
            }
            locate(&root, text, &mut problems);
            Err(fail(problems))
        }
    }
}

/// Returns true if `path` is `prefix` or lies below it.
fn is_under(path: &str, prefix: &str) -> bool {
    !prefix.is_empty()
        && path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// Checks that `new` can replace `old` without a restart: listener and admin addresses cannot
/// change while running. Returns the problems, empty when the reload may go ahead.
pub fn reload_conflicts(old: &Snapshot, new: &Snapshot) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let binds = |s: &Snapshot| {
        s.listeners
            .iter()
            .map(|l| (l.name.to_string(), l.bind))
            .collect::<Vec<_>>()
    };
    if binds(old) != binds(new) {
        out.push(Diagnostic {
            path: "listeners".to_owned(),
            message: "listener names and addresses cannot change on reload; restart to apply"
                .to_owned(),
            help: None,
            file: None,
            span: None,
            value_span: None,
        });
    }
    if old.admin.as_ref().map(|a| a.bind) != new.admin.as_ref().map(|a| a.bind) {
        out.push(Diagnostic {
            path: "admin.bind".to_owned(),
            message: "the admin address cannot change on reload; restart to apply".to_owned(),
            help: None,
            file: None,
            span: None,
            value_span: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_and_compile_problems_are_reported_together() {
        let text = "listeners:\n  - name: p\n    bind: nope\n    limits: { max_conections: 1 }\nupstreams:\n  u: { targets: [\"http://127.0.0.1:1\"], connect_timeout_ms: fast }\napis:\n  - { name: a, upstream: x }\n";
        let root = crate::yaml::parse(text).unwrap();
        let (model, d) = crate::de::from_node::<ConfigFile>(&root);
        assert!(model.is_some(), "{d:?}");
        let e = load_str(text, "t.yaml", Path::new(".")).unwrap_err();
        let msgs: Vec<&str> = e.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
    }
}
