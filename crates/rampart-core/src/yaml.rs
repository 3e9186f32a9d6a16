//! A YAML document as a tree of nodes that remember where they are in the file.
//!
//! serde's derive stops at the first error and forgets positions; this tree keeps a position
//! for every key and value, so that the config decoder (`rampart_config::de`) can report every
//! problem at once and the compiler can point a caret at any value by its path
//! (`apis[0].upstream`). The OpenAPI loader uses it too, for the lines of its errors.

use std::collections::HashMap;

use crate::SourceSpan;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// The most nodes a config document may expand to, aliases included: a guard against alias
/// bombs.
const MAX_NODES: usize = 200_000;
/// The deepest nesting accepted in a config document.
const MAX_DEPTH: usize = 64;

/// Bounds on what a document may expand to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most nodes, aliases expanded.
    pub max_nodes: usize,
    /// The deepest nesting.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_nodes: MAX_NODES,
            max_depth: MAX_DEPTH,
        }
    }
}

/// A YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where the node is.
    pub span: SourceSpan,
}

/// What a node holds.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar and whether it was written plain (unquoted), which decides if `true`, `12` and
    /// `null` are typed or text.
    Scalar {
        /// The text.
        value: String,
        /// True for a plain (unquoted, non-block) scalar.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order, keys with their own positions.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Returns true for a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// Returns a short description of the node's type for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a sequence",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Returns the value at `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Returns the key node for `key` of a mapping (to point at a key rather than its value).
    pub fn key(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, _)| k),
            _ => None,
        }
    }

    /// Returns the scalar text, if the node is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Finds the node at a path such as `apis[0].upstream`. Returns the deepest node found, so
    /// that a diagnostic for a value that is missing points at its parent.
    pub fn find(&self, path: &str) -> &Node {
        let mut at = self;
        for seg in split_path(path) {
            let next = match seg {
                Segment::Key(k) => at.get(k),
                Segment::Index(i) => match &at.kind {
                    NodeKind::Seq(items) => items.get(i),
                    _ => None,
                },
            };
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        at
    }
}

impl Node {
    /// Converts the tree to JSON. Plain scalars are typed by the YAML 1.2 core schema (`null`,
    /// `true`, `12`, `1.5`); quoted and block scalars stay strings; keys are strings. A key
    /// given twice keeps its last value, as JSON parsers do.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Scalar { value, plain: true } => plain_scalar(value),
            NodeKind::Scalar { value, .. } => Value::String(value.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                let mut map = serde_json::Map::with_capacity(entries.len());
                for (k, v) in entries {
                    let key = match &k.kind {
                        NodeKind::Scalar { value, .. } => value.clone(),
                        _ => k.to_json().to_string(),
                    };
                    map.insert(key, v.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// Finds the node at a JSON pointer (`/paths/~1users/get`). Returns the deepest node
    /// found, so that a problem with a missing member points at its parent.
    pub fn find_pointer(&self, pointer: &str) -> &Node {
        let mut at = self;
        for raw in pointer.split('/').skip(1) {
            let token = raw.replace("~1", "/").replace("~0", "~");
            let next = match &at.kind {
                NodeKind::Map(_) => at.get(&token),
                NodeKind::Seq(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                NodeKind::Scalar { .. } => None,
            };
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        at
    }
}

impl Node {
    /// Like [`Node::find_pointer`], but for a member of a mapping returns its key, which is
    /// where a reader looks for "this member is wrong".
    pub fn find_pointer_key(&self, pointer: &str) -> &Node {
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            return self;
        };
        let token = last.replace("~1", "/").replace("~0", "~");
        let p = self.find_pointer(parent);
        if std::ptr::eq(p.find_pointer(&format!("/{last}")), p) {
            return p;
        }
        match &p.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(token.as_str()))
                .map_or(p, |(k, _)| k),
            _ => self.find_pointer(pointer),
        }
    }
}

/// Types a plain scalar by the YAML 1.2 core schema.
fn plain_scalar(v: &str) -> serde_json::Value {
    use serde_json::Value;
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = v.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = v.trim_start_matches('+').parse::<u64>() {
            return Value::from(u);
        }
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::from(i);
        }
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::from(i);
        }
    }
    if is_core_float(digits) {
        if let Some(n) = v.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(v.to_owned())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the sign already taken off.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exp_ok
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

/// A YAML syntax error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: SourceSpan,
}

/// Parses the first document of `text`. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_with(text, Limits::default())
}

/// Parses the first document of `text` within `limits`.
pub fn parse_with(text: &str, limits: Limits) -> Result<Node, SyntaxError> {
    let mut b = Builder {
        limits,
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        count: 0,
    };
    for ev in Parser::new_from_str(text) {
        let (event, span) = ev.map_err(|e| SyntaxError {
            message: e.info().to_owned(),
            span: SourceSpan {
                line: e.marker().line(),
                col: e.marker().col() + 1,
                len: 1,
            },
        })?;
        if b.event(event, span)? {
            break;
        }
    }
    Ok(b.root.unwrap_or(Node {
        kind: NodeKind::Map(Vec::new()),
        span: SourceSpan {
            line: 1,
            col: 1,
            len: 1,
        },
    }))
}

struct Builder {
    limits: Limits,
    anchors: HashMap<usize, Node>,
    stack: Vec<(Node, usize, Option<Node>)>,
    root: Option<Node>,
    count: usize,
}

fn to_span(span: Span) -> SourceSpan {
    let len = if span.end.line() == span.start.line() {
        span.end.col().saturating_sub(span.start.col()).max(1)
    } else {
        1
    };
    SourceSpan {
        line: span.start.line(),
        col: span.start.col() + 1,
        len,
    }
}

impl Builder {
    /// Feeds one event; returns true at the end of the first document.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<bool, SyntaxError> {
        let sp = to_span(span);
        match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let node = Node {
                    kind: NodeKind::Scalar {
                        value: value.into_owned(),
                        plain,
                    },
                    span: sp,
                };
                self.push(node, anchor)?;
            }
            Event::SequenceStart(anchor, _) => self.open(NodeKind::Seq(Vec::new()), sp, anchor)?,
            Event::MappingStart(anchor, _) => self.open(NodeKind::Map(Vec::new()), sp, anchor)?,
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor, _)) = self.stack.pop() {
                    self.push(node, anchor)?;
                }
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    message: "unknown alias".to_owned(),
                    span: sp,
                })?;
                self.count += count(&node);
                if self.count > self.limits.max_nodes {
                    return Err(SyntaxError {
                        message: "document expands to too many nodes (alias bomb?)".to_owned(),
                        span: sp,
                    });
                }
                self.push(node, 0)?;
            }
            Event::DocumentEnd => return Ok(self.root.is_some()),
            Event::StreamEnd => return Ok(true),
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => {}
        }
        Ok(false)
    }

    fn open(&mut self, kind: NodeKind, span: SourceSpan, anchor: usize) -> Result<(), SyntaxError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(SyntaxError {
                message: "document is nested too deeply".to_owned(),
                span,
            });
        }
        self.stack.push((Node { kind, span }, anchor, None));
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        self.count += 1;
        if self.count > self.limits.max_nodes {
            return Err(SyntaxError {
                message: "document has too many nodes".to_owned(),
                span: node.span,
            });
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some((parent, _, pending_key)) => match &mut parent.kind {
                NodeKind::Seq(items) => items.push(node),
                NodeKind::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                NodeKind::Scalar { .. } => {}
            },
        }
        Ok(())
    }
}

fn count(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

/// Finds where a part of a scalar's value is in the source: `offset` and `len` count characters
/// of the value; `span` is the scalar's own position. Handles plain and quoted scalars on one
/// line (escapes included) and block scalars (`|`, `>`); `None` when the part cannot be placed.
pub fn locate_in_scalar(
    text: &str,
    span: SourceSpan,
    value: &str,
    offset: usize,
    len: usize,
) -> Option<SourceSpan> {
    let lines: Vec<&str> = text.lines().collect();
    let line = lines.get(span.line.checked_sub(1)?)?;
    let src: Vec<char> = line.chars().skip(span.col.checked_sub(1)?).collect();
    let first = *src.first()?;
    if first == '|' || first == '>' {
        // Block scalar: the content lines follow, each indented; separators are one character.
        let chars: Vec<char> = value.chars().collect();
        let mut cursor = 0;
        for (i, l) in lines.iter().enumerate().skip(span.line) {
            let content = l.trim_start();
            if content.is_empty() {
                cursor += 1;
                continue;
            }
            let indent = l.chars().count() - content.chars().count();
            let n = content.chars().count();
            if offset >= cursor && offset < cursor + n.max(1) {
                return Some(SourceSpan {
                    line: i + 1,
                    col: indent + 1 + (offset - cursor),
                    len: len.min(n - (offset - cursor)).max(1),
                });
            }
            cursor += n + 1;
            if cursor > chars.len() {
                break;
            }
        }
        return None;
    }
    if value.contains('\n') {
        return None;
    }
    // Walk the source and the value together, one value character at a time.
    let (mut i, quote) = match first {
        '"' | '\'' => (1, Some(first)),
        _ => (0, None),
    };
    let mut starts = Vec::new();
    for _ in value.chars() {
        starts.push(i);
        let c = *src.get(i)?;
        i += match (quote, c) {
            (Some('"'), '\\') => match src.get(i + 1)? {
                'x' => 4,
                'u' => 6,
                'U' => 10,
                _ => 2,
            },
            (Some('\''), '\'') => 2,
            _ => 1,
        };
    }
    starts.push(i);
    let start = *starts.get(offset)?;
    let end = *starts.get((offset + len).min(value.chars().count()))?;
    Some(SourceSpan {
        line: span.line,
        col: span.col + start,
        len: (end - start).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_kept() {
        let doc = parse("a:\n  b: [1, \"two\"]\n  c: { d: x }\n").unwrap();
        let b1 = doc.find("a.b[1]");
        assert_eq!(b1.as_str(), Some("two"));
        assert_eq!((b1.span.line, b1.span.col, b1.span.len), (2, 10, 5));
        let d = doc.find("a.c.d");
        assert_eq!((d.span.line, d.span.col), (3, 11));
        // A missing value resolves to its deepest existing parent.
        assert_eq!(doc.find("a.c.zzz").span, doc.find("a.c").span);
    }

    #[test]
    fn plain_and_quoted_scalars_differ() {
        let doc = parse("a: null\nb: 'null'\nc:\n").unwrap();
        assert!(doc.find("a").is_null());
        assert!(!doc.find("b").is_null());
        assert!(doc.find("c").is_null());
    }

    #[test]
    fn aliases_expand_and_bombs_are_refused() {
        let doc = parse("x: &a [1, 2]\ny: *a\n").unwrap();
        assert_eq!(doc.find("y[1]").as_str(), Some("2"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let names = ["b", "c", "d", "e", "f", "g"];
        let mut prev = "a";
        for n in names {
            bomb.push_str(&format!("{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = n;
        }
        assert!(parse(&bomb).unwrap_err().message.contains("too many nodes"));
    }

    #[test]
    fn json_follows_the_core_schema() {
        let doc = parse(
            "a: 12\nb: '12'\nc: 1.5\nd: 3.0.1\ne: ~\nf: [true, \"x\", 1e3, -7, .5]\ng: {h: 0x1f}\n",
        )
        .unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"a": 12, "b": "12", "c": 1.5, "d": "3.0.1", "e": null,
                "f": [true, "x", 1000.0, -7, 0.5], "g": {"h": 31}})
        );
        assert_eq!(doc.find_pointer("/f/1").as_str(), Some("x"));
        assert_eq!(doc.find_pointer("/g/zz").span, doc.find_pointer("/g").span);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.span.line >= 1);
    }
}
