//! From file text to logical lines: comments and blank lines dropped, lines ending with a
//! backslash joined with the next, and every byte of a logical line traceable to its line and
//! column in the file.

/// One directive's text, joined from its physical lines.
#[derive(Debug)]
pub(crate) struct Logical {
    pub(crate) text: String,
    /// (offset in `text`, line, column of that offset) for the start of each physical piece.
    map: Vec<(usize, u32, u32)>,
}

impl Logical {
    /// The line and column (from 1, in characters) of a byte offset of `text`.
    pub(crate) fn pos(&self, offset: usize) -> (u32, u32) {
        let i = self
            .map
            .iter()
            .rposition(|(o, _, _)| *o <= offset)
            .unwrap_or(0);
        let (start, line, col) = self.map.get(i).copied().unwrap_or((0, 1, 1));
        let piece = self
            .text
            .get(start..offset.min(self.text.len()))
            .unwrap_or("");
        (line, col + piece.chars().count() as u32)
    }
}

/// The logical lines of a file.
pub(crate) fn logical_lines(src: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    let mut current: Option<Logical> = None;
    for (i, raw) in src.lines().enumerate() {
        let line_no = i as u32 + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed_end = line.trim_end();
        let continues = trimmed_end.ends_with('\\');
        let body = if continues {
            &trimmed_end[..trimmed_end.len() - 1]
        } else {
            line
        };
        match current.as_mut() {
            Some(l) => {
                l.map.push((l.text.len(), line_no, 1));
                l.text.push_str(body);
            }
            None => {
                let t = body.trim_start();
                if t.is_empty() && !continues {
                    continue;
                }
                if t.starts_with('#') {
                    continue;
                }
                let lead = body.len() - t.len();
                current = Some(Logical {
                    text: t.to_owned(),
                    map: vec![(0, line_no, body[..lead].chars().count() as u32 + 1)],
                });
            }
        }
        if !continues {
            if let Some(l) = current.take() {
                if !l.text.trim().is_empty() {
                    out.push(l);
                }
            }
        }
    }
    if let Some(l) = current.take() {
        if !l.text.trim().is_empty() {
            out.push(l);
        }
    }
    out
}

/// An argument of a directive and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub(crate) text: String,
    pub(crate) offset: usize,
    /// Where its text starts (after an opening quote).
    pub(crate) inner: usize,
}

/// Splits a directive into its words: double- or single-quoted (a backslash before the quote
/// escapes it; other backslashes stay, for regular expressions) or bare. An unclosed quote is
/// an error at its offset.
pub(crate) fn split_args(text: &str) -> Result<Vec<Arg>, usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            let mut s = Vec::new();
            i += 1;
            let inner = i;
            loop {
                if i >= b.len() {
                    return Err(start);
                }
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == q {
                    s.push(q);
                    i += 2;
                } else if b[i] == q {
                    i += 1;
                    break;
                } else {
                    s.push(b[i]);
                    i += 1;
                }
            }
            out.push(Arg {
                text: String::from_utf8_lossy(&s).into_owned(),
                offset: start,
                inner,
            });
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(Arg {
                text: text[start..i].to_owned(),
                offset: start,
                inner: start,
            });
        }
    }
    Ok(out)
}
