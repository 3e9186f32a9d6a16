//! Renders diagnostics the way a compiler does: file, line and column, the source line, and a
//! caret under the offending value.

use std::fmt::Write as _;

use rampart_core::Diagnostic;

/// Renders every diagnostic against `text` (the contents of `file`), then a count.
pub fn render(diagnostics: &[Diagnostic], file: &str, text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for d in diagnostics {
        let _ = writeln!(out, "error: {}", d.message);
        let shown_file = d.file.as_deref().unwrap_or(file);
        match d.span {
            Some(span) => {
                let _ = writeln!(out, "  --> {shown_file}:{}:{}", span.line, span.col);
                let gutter = span.line.to_string().len();
                let pad = " ".repeat(gutter);
                let _ = writeln!(out, "{pad} |");
                if let Some(line) = lines.get(span.line.saturating_sub(1)) {
                    let _ = writeln!(out, "{} | {line}", span.line);
                    // Columns count characters; keep tabs so the caret lines up under them.
                    let lead: String = line
                        .chars()
                        .take(span.col.saturating_sub(1))
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    let width = span
                        .len
                        .max(1)
                        .min(line.chars().count().saturating_sub(span.col - 1).max(1));
                    let _ = write!(out, "{pad} | {lead}{}", "^".repeat(width));
                    if let Some(help) = &d.help {
                        let _ = write!(out, " {help}");
                    }
                    out.push('\n');
                } else if let Some(help) = &d.help {
                    let _ = writeln!(out, "{pad} = help: {help}");
                }
                if !d.path.is_empty() {
                    let _ = writeln!(out, "{pad} = at: {}", d.path);
                }
            }
            None => {
                let _ = writeln!(out, "  --> {shown_file}");
                if !d.path.is_empty() {
                    let _ = writeln!(out, "   = at: {}", d.path);
                }
                if let Some(help) = &d.help {
                    let _ = writeln!(out, "   = help: {help}");
                }
            }
        }
        out.push('\n');
    }
    let n = diagnostics.len();
    let _ = writeln!(out, "{n} error{} in {file}", if n == 1 { "" } else { "s" });
    out
}
