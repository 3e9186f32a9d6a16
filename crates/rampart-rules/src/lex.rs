//! The lexer: expression text to tokens with byte spans.

use crate::error::{RuleError, Span};

/// A token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A name: a field (`http.request.uri.path`), a function, or a keyword.
    Ident(String),
    /// A quoted string, escapes resolved.
    Str(Vec<u8>),
    /// An unquoted literal that starts like a number: an integer, an IP address or a CIDR
    /// prefix (`42`, `10.0.0.0/8`, `2001:db8::/32`).
    Word(String),
    /// `$name`: a named list of the config.
    List(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Tilde,
    AndAnd,
    OrOr,
    XorXor,
    Bang,
    Eof,
}

impl Tok {
    /// Describes the token for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Ident(s) => format!("\"{s}\""),
            Self::Str(_) => "a string".to_owned(),
            Self::Word(s) => format!("\"{s}\""),
            Self::List(s) => format!("\"${s}\""),
            Self::Eof => "the end of the expression".to_owned(),
            other => format!("\"{}\"", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Self::LParen => "(",
            Self::RParen => ")",
            Self::LBrace => "{",
            Self::RBrace => "}",
            Self::LBracket => "[",
            Self::RBracket => "]",
            Self::Comma => ",",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Tilde => "~",
            Self::AndAnd => "&&",
            Self::OrOr => "||",
            Self::XorXor => "^^",
            Self::Bang => "!",
            _ => "",
        }
    }
}

/// Splits `src` into tokens, each with its span. The last token is [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<(Tok, Span)>, RuleError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let two = bytes.get(i..i + 2);
        let sym = match two {
            Some(b"==") => Some((Tok::Eq, 2)),
            Some(b"!=") => Some((Tok::Ne, 2)),
            Some(b"<=") => Some((Tok::Le, 2)),
            Some(b">=") => Some((Tok::Ge, 2)),
            Some(b"&&") => Some((Tok::AndAnd, 2)),
            Some(b"||") => Some((Tok::OrOr, 2)),
            Some(b"^^") => Some((Tok::XorXor, 2)),
            _ => match c {
                b'(' => Some((Tok::LParen, 1)),
                b')' => Some((Tok::RParen, 1)),
                b'{' => Some((Tok::LBrace, 1)),
                b'}' => Some((Tok::RBrace, 1)),
                b'[' => Some((Tok::LBracket, 1)),
                b']' => Some((Tok::RBracket, 1)),
                b',' => Some((Tok::Comma, 1)),
                b'<' => Some((Tok::Lt, 1)),
                b'>' => Some((Tok::Gt, 1)),
                b'~' => Some((Tok::Tilde, 1)),
                b'!' => Some((Tok::Bang, 1)),
                _ => None,
            },
        };
        if let Some((tok, n)) = sym {
            out.push((tok, Span::new(start, start + n)));
            i += n;
            continue;
        }
        match c {
            b'"' => {
                let (s, end) = string(src, i)?;
                out.push((Tok::Str(s), Span::new(start, end)));
                i = end;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#')) => {
                let (s, end) = raw_string(src, i)?;
                out.push((Tok::Str(s), Span::new(start, end)));
                i = end;
            }
            b'$' => {
                let end = scan(bytes, i + 1, is_ident_byte);
                if end == i + 1 {
                    return Err(RuleError::new(
                        Span::new(start, start + 1),
                        "expected a list name after \"$\"",
                    ));
                }
                out.push((Tok::List(src[i + 1..end].to_owned()), Span::new(start, end)));
                i = end;
            }
            b'0'..=b'9' | b':' => {
                let end = scan(bytes, i, is_word_byte);
                out.push((Tok::Word(src[i..end].to_owned()), Span::new(start, end)));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = scan(bytes, i, is_ident_byte);
                // An IPv6 address that starts with a letter: `fe80::1`, `2001:db8::/32` is
                // caught above.
                if bytes.get(end) == Some(&b':')
                    && src[i..end].bytes().all(|b| b.is_ascii_hexdigit())
                {
                    end = scan(bytes, i, is_word_byte);
                    out.push((Tok::Word(src[i..end].to_owned()), Span::new(start, end)));
                } else {
                    out.push((Tok::Ident(src[i..end].to_owned()), Span::new(start, end)));
                }
                i = end;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                let err = RuleError::new(
                    Span::new(start, start + ch.len_utf8()),
                    format!("unexpected character \"{ch}\""),
                );
                return Err(match ch {
                    '=' => err.help("did you mean \"==\"?"),
                    '&' => err.help("did you mean \"&&\" (and)?"),
                    '|' => err.help("did you mean \"||\" (or)?"),
                    _ => err,
                });
            }
        }
    }
    out.push((Tok::Eof, Span::new(bytes.len(), bytes.len())));
    Ok(out)
}

fn scan(bytes: &[u8], from: usize, ok: fn(u8) -> bool) -> usize {
    let mut i = from;
    while i < bytes.len() && ok(bytes[i]) {
        i += 1;
    }
    i
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'/' | b'x' | b'X' | b'_' | b'-')
}

/// Reads a double-quoted string starting at `start`. Escapes: `\"`, `\\`, `\n`, `\r`, `\t`,
/// `\0` and `\xHH` (any byte).
fn string(src: &str, start: usize) -> Result<(Vec<u8>, usize), RuleError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = start + 1;
    loop {
        match bytes.get(i) {
            None => {
                return Err(
                    RuleError::new(Span::new(start, bytes.len()), "unterminated string")
                        .help("close it with \""),
                )
            }
            Some(b'"') => return Ok((out, i + 1)),
            Some(b'\\') => {
                let e = bytes.get(i + 1).copied();
                let (b, n) = match e {
                    Some(b'"') => (b'"', 2),
                    Some(b'\\') => (b'\\', 2),
                    Some(b'n') => (b'\n', 2),
                    Some(b'r') => (b'\r', 2),
                    Some(b't') => (b'\t', 2),
                    Some(b'0') => (0, 2),
                    Some(b'x') => {
                        let hex = src.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok());
                        match hex {
                            Some(b) => (b, 4),
                            None => {
                                return Err(RuleError::new(
                                    Span::new(i, (i + 4).min(bytes.len())),
                                    "invalid escape: \\x needs two hex digits",
                                ))
                            }
                        }
                    }
                    _ => {
                        return Err(RuleError::new(
                            Span::new(i, (i + 2).min(bytes.len())),
                            "invalid escape in string",
                        )
                        .help("the escapes are \\\" \\\\ \\n \\r \\t \\0 \\xHH; for a regex, a raw string r\"…\" needs none"))
                    }
                };
                out.push(b);
                i += n;
            }
            Some(&b) => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// Reads a raw string, `r"…"` or `r#"…"#` (any number of `#`), with no escapes.
fn raw_string(src: &str, start: usize) -> Result<(Vec<u8>, usize), RuleError> {
    let bytes = src.as_bytes();
    let mut i = start + 1;
    let mut hashes = 0;
    while bytes.get(i) == Some(&b'#') {
        hashes += 1;
        i += 1;
    }
    if bytes.get(i) != Some(&b'"') {
        return Err(RuleError::new(
            Span::new(start, i),
            "expected \" to open a raw string",
        ));
    }
    let body = i + 1;
    let close: String = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    match src[body..].find(&close) {
        Some(n) => Ok((bytes[body..body + n].to_vec(), body + n + close.len())),
        None => Err(
            RuleError::new(Span::new(start, bytes.len()), "unterminated raw string")
                .help(format!("close it with {close}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).expect("lex").into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks(r#"ip.src in {10.0.0.0/8 ::1 fe80::1} && http.host != "a\"b\x41""#),
            vec![
                Tok::Ident("ip.src".into()),
                Tok::Ident("in".into()),
                Tok::LBrace,
                Tok::Word("10.0.0.0/8".into()),
                Tok::Word("::1".into()),
                Tok::Word("fe80::1".into()),
                Tok::RBrace,
                Tok::AndAnd,
                Tok::Ident("http.host".into()),
                Tok::Ne,
                Tok::Str(b"a\"bA".to_vec()),
                Tok::Eof,
            ]
        );
        assert_eq!(
            toks(r##"x matches r#"a"b"# $office"##),
            vec![
                Tok::Ident("x".into()),
                Tok::Ident("matches".into()),
                Tok::Str(b"a\"b".to_vec()),
                Tok::List("office".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = lex("a == \"abc").expect_err("unterminated");
        assert_eq!((e.span.start, e.span.end), (5, 9));
        let e = lex("a == #").expect_err("bad char");
        assert_eq!((e.span.start, e.span.end), (5, 6));
    }
}
