//! Patterns written for PCRE that the `regex` crate does not read as they are.
//!
//! CRS 4's patterns are RE2-compatible and compile with the `regex` crate directly; older rule
//! sets (Debian's CRS 3.3, hand-written exclusions) hold about twenty that do not. Two kinds:
//!
//! - PCRE spellings of things the `regex` crate has: a `{` that starts no quantifier (a literal
//!   in PCRE), a `[` inside a class, punctuation escaped inside a class (`\<`), possessive
//!   quantifiers (`\s*+`, read as greedy: they may then match more, never less). [`normalize`]
//!   rewrites those.
//! - features only a backtracking engine has (look-around, back-references, atomic groups):
//!   those patterns run on `fancy-regex` under a backtracking limit ([`Backtracking`]); a
//!   value that reaches the limit counts as a match (fail closed).

/// The most backtracking steps one match may take.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Rewrites PCRE-only spellings into what the `regex` crate reads the same way.
pub fn normalize(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' if i + 1 < b.len() => {
                let n = b[i + 1];
                if n.is_ascii_punctuation() {
                    // PCRE: an escaped non-alphanumeric is itself; a hex escape says so to
                    // the `regex` crate everywhere (`\<` is a word boundary there).
                    out.push_str(&format!("\\x{{{n:02x}}}"));
                    i += 2;
                    continue;
                }
                i = crate::operator::copy_escape(p, i, &mut out);
                continue;
            }
            b'[' if in_class => {
                if b.get(i + 1) == Some(&b':') {
                    // A POSIX class `[:alpha:]`: copied whole.
                    if let Some(end) = p[i..].find(":]") {
                        out.push_str(&p[i..i + end + 2]);
                        i += end + 2;
                        continue;
                    }
                }
                out.push_str("\\[");
            }
            b'[' => {
                in_class = true;
                out.push('[');
                if b.get(i + 1) == Some(&b'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is a literal.
                if b.get(i + 1) == Some(&b']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            b']' if in_class => {
                in_class = false;
                out.push(']');
            }
            b'{' if !in_class => {
                if quantifier_at(&b[i..]).is_some() {
                    out.push('{');
                } else {
                    out.push_str("\\{");
                }
            }
            b'}' if !in_class => {
                // The end of a quantifier was copied with it below; a lone one is a literal.
                out.push_str("\\}");
            }
            b'+' if !in_class && i > 0 && possessive_after(b, i) => {
                // Possessive: read as greedy.
            }
            _ => {
                let ch = p[i..].chars().next().unwrap_or('\0');
                out.push(ch);
                i += ch.len_utf8();
                continue;
            }
        }
        i += 1;
        // A whole quantifier `{n,m}` is copied at once, so its `}` is not escaped.
        if c == b'{' && !in_class {
            if let Some(len) = quantifier_at(&b[i - 1..]) {
                out.push_str(&p[i..i - 1 + len]);
                i = i - 1 + len;
            }
        }
    }
    out
}

/// The length of a quantifier `{n}`, `{n,}` or `{n,m}` at the start of `b`.
fn quantifier_at(b: &[u8]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    if !digits(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b',') {
        i += 1;
        digits(&mut i);
    }
    (b.get(i) == Some(&b'}')).then_some(i + 1)
}

/// Whether the `+` at `i` makes the quantifier before it possessive (`*+`, `++`, `?+`, `}+`).
fn possessive_after(b: &[u8], i: usize) -> bool {
    let prev = b[i - 1];
    let escaped = i >= 2 && b[i - 2] == b'\\' && !(i >= 3 && b[i - 3] == b'\\');
    !escaped && matches!(prev, b'*' | b'+' | b'?' | b'}')
}

/// A pattern only a backtracking engine runs.
#[derive(Debug)]
pub struct Backtracking(fancy_regex::Regex);

impl Backtracking {
    /// Compiles a (normalized) pattern with the backtracking limit.
    pub fn new(p: &str) -> Result<Self, String> {
        Self::with_limit(p, BACKTRACK_LIMIT)
    }

    /// Compiles a (normalized) pattern with a backtracking limit.
    pub fn with_limit(p: &str, limit: usize) -> Result<Self, String> {
        fancy_regex::RegexBuilder::new(p)
            .backtrack_limit(limit)
            .build()
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// The captures of the first match (whole match first); a value that reaches the
    /// backtracking limit counts as a match of the whole value. Values that are not UTF-8 are
    /// read with replacement characters.
    pub fn captures(&self, value: &[u8]) -> Option<Vec<Vec<u8>>> {
        let text = String::from_utf8_lossy(value);
        match self.0.captures(text.as_ref()) {
            Ok(Some(c)) => Some(
                c.iter()
                    .take(10)
                    .map(|m| {
                        m.map(|m| m.as_str().as_bytes().to_vec())
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
            Ok(None) => None,
            Err(_) => Some(vec![value.to_vec()]),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rust_ok(p: &str) -> bool {
        regex::bytes::RegexBuilder::new(&normalize(p))
            .unicode(false)
            .build()
            .is_ok()
    }

    #[test]
    fn pcre_spellings_become_rust_ones() {
        assert_eq!(normalize(r"^\(\s*\)\s+{"), r"^\x{28}\s*\x{29}\s+\{");
        assert_eq!(normalize(r"a{2,3}b{x}"), r"a{2,3}b\{x\}");
        assert_eq!(normalize(r"[^\<\>]"), r"[^\x{3c}\x{3e}]");
        assert_eq!(normalize(r"[a[b]"), r"[a\[b]");
        assert_eq!(normalize(r"[]a]"), r"[\]a]");
        assert_eq!(normalize(r"\s*+;\s++x?+"), r"\s*;\s+x?");
        assert_eq!(normalize(r"a\+b"), r"a\x{2b}b");
        assert_eq!(normalize(r"[[:alpha:]]"), r"[[:alpha:]]");
        for p in [
            r"^\(\s*\)\s+{",
            r#"[^"(),\/:;<=>?![\x5c\]{}]+"#,
            r"^[^:\(\)\&\|\!\<\>\~]*\)",
            r"(?:\s*+;\s*+x)*$",
        ] {
            assert!(rust_ok(p), "{p} -> {}", normalize(p));
        }
    }

    #[test]
    fn look_around_runs_backtracking_with_a_limit() {
        let re = Backtracking::new(&normalize(r"(?i)foo(?!bar)")).unwrap();
        assert!(re.captures(b"foobaz").is_some());
        assert!(re.captures(b"FOObar").is_none());
        let re = Backtracking::new(r"(\w+)\s\1").unwrap();
        assert_eq!(re.captures(b"say hello hello").unwrap()[1], b"hello");
        // A search that reaches the limit stops there and counts as a match of the value.
        let re = Backtracking::with_limit(r"(\w+)\s\1", 10).unwrap();
        let value = b"one two three four five six";
        assert_eq!(re.captures(value).unwrap(), [value.to_vec()]);
    }
}
