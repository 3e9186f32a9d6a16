//! Reading documents: the root, every local file its `$ref`s name, the meta-schema check, and
//! errors that say file, JSON pointer, line and column.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rampart_core::yaml::{self, Node};
use rampart_core::SourceSpan;
use serde_json::Value;

use crate::model::{self, Spec, Version};

/// The most files one specification may span.
const MAX_FILES: usize = 256;
/// The most nodes one file may expand to (large public specs have a few hundred thousand).
const MAX_NODES: usize = 5_000_000;
/// The deepest nesting.
const MAX_DEPTH: usize = 256;
/// The most problems reported for one document.
const MAX_ERRORS: usize = 50;

/// A problem with a specification, where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file.
    pub file: PathBuf,
    /// The JSON pointer of the offending value (`/paths/~1users/get`), empty for the root.
    pub pointer: String,
    /// Line, column and length in the file.
    pub span: SourceSpan,
    /// What is wrong.
    pub message: String,
    /// The source line, for the caret.
    pub source_line: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            String::new()
        } else {
            format!(" (at {})", self.pointer)
        };
        writeln!(
            f,
            "{}:{}:{}: {}{at}",
            self.file.display(),
            self.span.line,
            self.span.col,
            self.message
        )?;
        if !self.source_line.is_empty() {
            let num = self.span.line.to_string();
            writeln!(f, "{num} | {}", self.source_line)?;
            let pad = " ".repeat(num.len() + 3 + self.span.col.saturating_sub(1));
            write!(f, "{pad}{}", "^".repeat(self.span.len.clamp(1, 80)))?;
        }
        Ok(())
    }
}

/// One file of a specification.
#[derive(Debug)]
pub(crate) struct Document {
    /// The file (absolute when read from disk).
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) tree: Node,
    pub(crate) value: Value,
}

impl Document {
    pub(crate) fn error(&self, pointer: &str, message: impl Into<String>) -> SpecError {
        let value = self.tree.find_pointer(pointer);
        // A scalar is shown itself; a mapping or a sequence by the key that names it.
        let node = match value.kind {
            rampart_core::yaml::NodeKind::Scalar { .. } => value,
            _ => self.tree.find_pointer_key(pointer),
        };
        SpecError {
            file: self.path.clone(),
            pointer: pointer.to_owned(),
            span: node.span,
            message: message.into(),
            source_line: self
                .text
                .lines()
                .nth(node.span.line.saturating_sub(1))
                .unwrap_or("")
                .to_owned(),
        }
    }
}

/// All the files of a specification; the first is the root.
#[derive(Debug)]
pub(crate) struct Documents {
    pub(crate) docs: Vec<Document>,
}

impl Documents {
    /// Follows `$ref`s from `(doc, value)` to the value they name.
    pub(crate) fn deref<'a>(
        &'a self,
        mut doc: usize,
        mut pointer: String,
        mut value: &'a Value,
    ) -> Result<(usize, String, &'a Value), SpecError> {
        for _ in 0..32 {
            let Some(r) = value.get("$ref").and_then(Value::as_str) else {
                return Ok((doc, pointer, value));
            };
            if r.split('#').next().is_some_and(|f| f.contains("://")) {
                return Err(self.docs[doc].error(
                    &pointer,
                    format!("remote $ref \"{r}\" is not fetched: copy the file next to the specification and name it by a relative path"),
                ));
            }
            let (d, p) = self.target(doc, r).ok_or_else(|| {
                self.docs[doc].error(&pointer, format!("$ref \"{r}\" names nothing"))
            })?;
            let Some(v) = self.docs[d].value.pointer(&p) else {
                return Err(self.docs[doc].error(&pointer, format!("$ref \"{r}\" names nothing")));
            };
            doc = d;
            pointer = p;
            value = v;
        }
        Err(self.docs[doc].error(&pointer, "$ref chain too long (a cycle?)"))
    }

    /// Resolves a reference written in document `from` to a document index and a pointer.
    pub(crate) fn target(&self, from: usize, r: &str) -> Option<(usize, String)> {
        let (file, frag) = r.split_once('#').unwrap_or((r, ""));
        let frag = percent_encoding::percent_decode_str(frag)
            .decode_utf8()
            .ok()?
            .into_owned();
        let doc = if file.is_empty() {
            from
        } else {
            let want = resolve_path(&self.docs[from].path, file);
            self.docs.iter().position(|d| d.path == want)?
        };
        Some((doc, frag))
    }
}

fn resolve_path(from: &Path, file: &str) -> PathBuf {
    let base = from.parent().unwrap_or_else(|| Path::new(""));
    normalize(&base.join(file))
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Loads a specification from a file, with every local file its `$ref`s name.
pub fn load(path: &Path) -> Result<Spec, Vec<SpecError>> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let abs = normalize(&abs);
    let text = std::fs::read_to_string(&abs).map_err(|e| vec![io_error(&abs, &e)])?;
    load_documents(abs, text, true)
}

/// Loads a specification from text; `path` names it in errors and is the base of relative
/// `$ref`s (which are read from disk).
pub fn load_str(path: &Path, text: &str) -> Result<Spec, Vec<SpecError>> {
    load_documents(normalize(path), text.to_owned(), true)
}

fn io_error(path: &Path, e: &std::io::Error) -> SpecError {
    SpecError {
        file: path.to_path_buf(),
        pointer: String::new(),
        span: SourceSpan {
            line: 1,
            col: 1,
            len: 1,
        },
        message: format!("cannot read the file: {e}"),
        source_line: String::new(),
    }
}

fn parse_document(path: PathBuf, text: String) -> Result<Document, SpecError> {
    let limits = yaml::Limits {
        max_nodes: MAX_NODES,
        max_depth: MAX_DEPTH,
    };
    match yaml::parse_with(&text, limits) {
        Ok(tree) => {
            let value = tree.to_json();
            Ok(Document {
                path,
                text,
                tree,
                value,
            })
        }
        Err(e) => Err(SpecError {
            source_line: text
                .lines()
                .nth(e.span.line.saturating_sub(1))
                .unwrap_or("")
                .to_owned(),
            file: path,
            pointer: String::new(),
            span: e.span,
            message: format!("not valid YAML or JSON: {}", e.message),
        }),
    }
}

pub(crate) fn load_documents(
    path: PathBuf,
    text: String,
    check_meta: bool,
) -> Result<Spec, Vec<SpecError>> {
    let root = parse_document(path, text).map_err(|e| vec![e])?;
    let version = match detect_version(&root) {
        Ok(v) => v,
        Err(e) => return Err(vec![e]),
    };
    if check_meta {
        let errors = meta_check(&root, version);
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    let mut docs = Documents { docs: vec![root] };
    let mut errors = Vec::new();
    let mut i = 0;
    while i < docs.docs.len() {
        let mut refs = Vec::new();
        collect_refs(&docs.docs[i].value, String::new(), &mut refs);
        for (pointer, r) in refs {
            let file = r.split_once('#').map_or(r.as_str(), |(f, _)| f);
            if file.is_empty() {
                continue;
            }
            if file.contains("://") {
                // Never fetched; an error only if something the gateway validates uses it
                // (see `Documents::target`).
                continue;
            }
            let want = resolve_path(&docs.docs[i].path, file);
            if docs.docs.iter().any(|d| d.path == want) {
                continue;
            }
            if docs.docs.len() >= MAX_FILES {
                errors.push(
                    docs.docs[i].error(&pointer, format!("more than {MAX_FILES} files referenced")),
                );
                break;
            }
            match std::fs::read_to_string(&want) {
                Ok(text) => match parse_document(want, text) {
                    Ok(d) => docs.docs.push(d),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(docs.docs[i].error(
                    &pointer,
                    format!("$ref \"{r}\": cannot read {}: {e}", want.display()),
                )),
            }
        }
        i += 1;
    }
    // Files that could not be read are reported with everything the model finds wrong.
    match model::build(docs, version) {
        Ok(spec) if errors.is_empty() => Ok(spec),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

fn collect_refs(v: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref" {
                    if let Value::String(s) = child {
                        out.push((pointer.clone(), s.clone()));
                    }
                } else if !matches!(
                    k.as_str(),
                    "example" | "examples" | "default" | "enum" | "const"
                ) {
                    collect_refs(child, format!("{pointer}/{}", escape(k)), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Escapes a JSON pointer token.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn detect_version(root: &Document) -> Result<Version, SpecError> {
    if let Some(v) = root.value.get("openapi") {
        let Some(s) = v.as_str() else {
            return Err(root.error("/openapi", "\"openapi\" must be a string such as \"3.1.0\""));
        };
        if s.starts_with("3.0.") {
            return Ok(Version::V30);
        }
        if s.starts_with("3.1.") {
            return Ok(Version::V31);
        }
        return Err(root.error(
            "/openapi",
            format!("OpenAPI {s} is not supported (3.0.x and 3.1.x are)"),
        ));
    }
    if root.value.get("swagger").is_some() {
        return Err(root.error(
            "/swagger",
            "Swagger 2.0 is not supported: convert the document to OpenAPI 3 (for example with swagger2openapi)",
        ));
    }
    Err(root.error(
        "",
        "not an OpenAPI document: the \"openapi\" field is missing",
    ))
}

static META_30: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| {
    meta_validator(
        include_str!("../meta/oas-3.0.yaml"),
        jsonschema::Draft::Draft4,
    )
});
static META_31: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| {
    meta_validator(
        include_str!("../meta/oas-3.1.yaml"),
        jsonschema::Draft::Draft202012,
    )
});

fn meta_validator(text: &str, draft: jsonschema::Draft) -> Option<jsonschema::Validator> {
    let schema = yaml::parse_with(text, yaml::Limits::default())
        .ok()?
        .to_json();
    jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(false)
        .build(&schema)
        .ok()
}

/// Checks the root document against the OpenAPI meta-schema of its version.
fn meta_check(root: &Document, version: Version) -> Vec<SpecError> {
    let validator = match version {
        Version::V30 => &*META_30,
        Version::V31 => &*META_31,
    };
    let Some(validator) = validator else {
        return vec![root.error(
            "",
            "internal error: the OpenAPI meta-schema did not compile",
        )];
    };
    let mut out: Vec<SpecError> = Vec::new();
    for e in validator.iter_errors(&root.value) {
        let pointer = e.instance_path().as_str().to_owned();
        let message = crate::message::describe_meta(&e);
        if out
            .iter()
            .any(|o| o.pointer == pointer && o.message == message)
        {
            continue;
        }
        out.push(root.error(&pointer, message));
        if out.len() >= MAX_ERRORS {
            break;
        }
    }
    // The most specific problems first: a deep pointer says more than "not valid under oneOf"
    // at a parent.
    out.sort_by(|a, b| {
        (a.span.line, a.span.col)
            .cmp(&(b.span.line, b.span.col))
            .then(b.pointer.len().cmp(&a.pointer.len()))
    });
    out
}
