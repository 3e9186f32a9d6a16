//! Diagnostics collected while a configuration is compiled: every problem at once, each with
//! the path of the offending value, so that the config loader can point a caret at it.

use std::fmt;

/// One problem found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The path of the offending value: `apis[0].upstream`, `listeners[1].tls.certificates[0].cert`.
    pub path: String,
    /// What is wrong: lower case, no trailing period, the offending value quoted.
    pub message: String,
    /// A hint, such as the nearest valid name.
    pub help: Option<String>,
    /// The file the value came from, when it is not the main config file.
    pub file: Option<String>,
    /// Where the value is, when known without a path lookup.
    pub span: Option<SourceSpan>,
    /// A part of the value to point at instead of the whole value: a character offset into
    /// the value's text and a length in characters (the span of a rule expression's error
    /// inside its YAML string).
    pub value_span: Option<(usize, usize)>,
}

/// A place in a source file: 1-based line and column (in characters), and a length to underline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceSpan {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub col: usize,
    /// How many characters to underline (at least 1).
    pub len: usize,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// The compile context: the current path and the problems found so far.
///
/// Compilation never stops at the first problem: a compile function pushes a diagnostic and
/// goes on, returning `None` for the part it could not build.
#[derive(Debug, Default)]
pub struct CompileCx {
    path: Vec<String>,
    diagnostics: Vec<Diagnostic>,
}

impl CompileCx {
    /// Creates an empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with `segment` pushed on the path (`.name` for keys, `[3]` for indexes).
    pub fn at<T>(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(segment.into());
        let out = f(self);
        self.path.pop();
        out
    }

    /// Returns the current path as text.
    pub fn path(&self) -> String {
        join_path(&self.path)
    }

    /// Records a problem at the current path.
    pub fn error(&mut self, message: impl Into<String>) {
        let path = self.path();
        self.diagnostics.push(Diagnostic {
            path,
            message: message.into(),
            help: None,
            file: None,
            span: None,
            value_span: None,
        });
    }

    /// Records a problem with a hint at the current path.
    pub fn error_with_help(&mut self, message: impl Into<String>, help: impl Into<String>) {
        let path = self.path();
        self.diagnostics.push(Diagnostic {
            path,
            message: message.into(),
            help: Some(help.into()),
            file: None,
            span: None,
            value_span: None,
        });
    }

    /// Records a problem inside the current value's text: `offset` and `len` count characters
    /// from the start of the value.
    pub fn error_in_value(
        &mut self,
        message: impl Into<String>,
        help: Option<String>,
        offset: usize,
        len: usize,
    ) {
        let path = self.path();
        self.diagnostics.push(Diagnostic {
            path,
            message: message.into(),
            help,
            file: None,
            span: None,
            value_span: Some((offset, len)),
        });
    }

    /// Records a fully built diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Records an unknown name, with the nearest known one as a hint.
    pub fn unknown(
        &mut self,
        what: &str,
        name: &str,
        known: impl IntoIterator<Item = impl AsRef<str>>,
    ) {
        match nearest(name, known) {
            Some(near) => self.error_with_help(
                format!("unknown {what} \"{name}\""),
                format!("did you mean \"{near}\"?"),
            ),
            None => self.error(format!("unknown {what} \"{name}\"")),
        }
    }

    /// Returns true if no problem was found.
    pub fn is_ok(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Returns the problems found.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Consumes the context and returns the problems found.
    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }
}

/// Joins path segments: keys are separated by dots, indexes are bracketed.
pub fn join_path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if !s.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(s);
    }
    out
}

/// Returns the known name closest to `name` (edit distance at most a third of its length).
pub fn nearest(name: &str, known: impl IntoIterator<Item = impl AsRef<str>>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (edit_distance(name, k.as_ref()), k.as_ref().to_owned()))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: edits plus adjacent transpositions (`nmae` → `name` is 1).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_keys_and_indexes() {
        let mut cx = CompileCx::new();
        cx.at("apis", |cx| {
            cx.at("[2]", |cx| cx.at("upstream", |cx| cx.error("bad")))
        });
        assert_eq!(cx.diagnostics()[0].path, "apis[2].upstream");
    }

    #[test]
    fn nearest_name_is_suggested() {
        assert_eq!(
            nearest("paymnets", ["payments", "users"]),
            Some("payments".to_owned())
        );
        assert_eq!(nearest("zzz", ["payments", "users"]), None);
    }
}
