//! Errors with the span of the offending text, and their rendering with a caret.

use std::fmt;

/// A byte range in an expression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// Creates a span.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// Returns the smallest span that covers both.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Returns the span's position in `src` as a 0-based character offset and a length in
    /// characters (at least 1), for carets.
    pub fn chars_in(self, src: &str) -> (usize, usize) {
        let start = self.start.min(src.len());
        let end = self.end.clamp(start, src.len());
        let col = src.get(..start).map_or(start, |s| s.chars().count());
        let len = src.get(start..end).map_or(1, |s| s.chars().count()).max(1);
        (col, len)
    }
}

/// A problem in an expression: what, where, and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// Where in the expression.
    pub span: Span,
    /// What is wrong: lower case, no trailing period, names quoted.
    pub message: String,
    /// A hint, such as the nearest known name.
    pub help: Option<String>,
}

impl RuleError {
    /// Creates an error.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Records the error in a config's diagnostics, at `cx`'s current path (the YAML string
    /// that holds the expression `src`), pointing at the span inside the string.
    pub fn report(&self, cx: &mut rampart_core::CompileCx, src: &str) {
        let (offset, len) = self.span.chars_in(src);
        cx.error_in_value(self.message.clone(), self.help.clone(), offset, len);
    }

    /// Renders the error against the expression it came from: the message, the expression's
    /// line, a caret under the span, and the hint.
    pub fn render(&self, src: &str) -> String {
        // Find the line of the span, for multi-line expressions.
        let start = self.span.start.min(src.len());
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = &src[line_start..line_end];
        let line_no = src[..line_start].matches('\n').count() + 1;
        let local = Span::new(
            self.span.start - line_start,
            self.span.end.min(line_end).max(self.span.start) - line_start,
        );
        let (col, len) = local.chars_in(line);
        let mut out = format!("error: {}\n", self.message);
        out.push_str(&format!(" --> {}:{}\n", line_no, col + 1));
        out.push_str(&format!("  | {line}\n"));
        out.push_str(&format!("  | {}{}", " ".repeat(col), "^".repeat(len)));
        if let Some(help) = &self.help {
            out.push(' ');
            out.push_str(help);
        }
        out.push('\n');
        out
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleError {}
