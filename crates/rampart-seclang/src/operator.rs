//! The operators, compiled once per rule: regexes built, phrase lists in one automaton, address
//! lists in a prefix table. Parameters with macros (`%{tx.allowed_methods}`) are expanded per
//! transaction through the caller's expander.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rampart_core::{Cidr, IpTable};
use regex::bytes::{Regex, RegexBuilder};

use crate::ast::{Operator, OperatorKind};

/// An operator ready to run.
#[derive(Debug)]
pub struct CompiledOperator {
    negated: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Rx(Regex),
    /// A PCRE pattern only a backtracking engine runs (look-around, back-references).
    Backtracking(crate::pcre::Backtracking),
    /// A pattern with macros (`^%{tx.allowed_charsets}$`, CRS 3.3), compiled per expansion.
    RxMacro(String, RegexCache),
    /// The automaton, and the phrases lowercased (for the prefilter).
    Phrases(AhoCorasick, Vec<Vec<u8>>),
    Ips(IpTable<()>),
    /// A string operator whose parameter may hold macros.
    Text(OperatorKind, String),
    /// A numeric comparison whose parameter may hold macros.
    Number(OperatorKind, String),
    ByteRange(Box<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8,
    /// libinjection's SQLi detector (`TX.0` captures the fingerprint, as in ModSecurity).
    Sqli,
    /// libinjection's XSS detector.
    Xss,
    Always,
    Never,
}

/// What a match captured (`capture`: `TX.0` is the whole match, `TX.1`… the groups).
pub type Captures = Vec<Vec<u8>>;

/// Compiles an operator; files (`@pmFromFile`, `@ipMatchFromFile`) are relative to `base_dir`.
pub fn compile(op: &Operator, base_dir: &Path) -> Result<CompiledOperator, String> {
    let p = op.param.as_str();
    let kind = match op.kind {
        OperatorKind::Rx => rx(p)?,
        OperatorKind::Pm => phrases(p.split_whitespace())?,
        OperatorKind::PmFromFile | OperatorKind::Pmf => {
            let mut all = Vec::new();
            for f in p.split_whitespace() {
                let text = std::fs::read_to_string(base_dir.join(f))
                    .map_err(|e| format!("cannot read {f}: {e}"))?;
                all.extend(data_lines(&text).map(str::to_owned));
            }
            phrases(all.iter().map(String::as_str))?
        }
        OperatorKind::IpMatch => Kind::Ips(ips(p.split(',').map(str::trim))?),
        OperatorKind::IpMatchFromFile | OperatorKind::IpMatchF => {
            let text = std::fs::read_to_string(base_dir.join(p.trim()))
                .map_err(|e| format!("cannot read {p}: {e}"))?;
            Kind::Ips(ips(data_lines(&text))?)
        }
        OperatorKind::StrEq
        | OperatorKind::BeginsWith
        | OperatorKind::EndsWith
        | OperatorKind::Contains
        | OperatorKind::ContainsWord
        | OperatorKind::Within
        | OperatorKind::StrMatch => Kind::Text(op.kind, p.to_owned()),
        OperatorKind::Eq
        | OperatorKind::Ge
        | OperatorKind::Gt
        | OperatorKind::Le
        | OperatorKind::Lt => Kind::Number(op.kind, p.trim().to_owned()),
        OperatorKind::ValidateByteRange => Kind::ByteRange(byte_ranges(p)?),
        OperatorKind::ValidateUrlEncoding => Kind::ValidateUrlEncoding,
        OperatorKind::ValidateUtf8Encoding => Kind::ValidateUtf8,
        OperatorKind::UnconditionalMatch => Kind::Always,
        OperatorKind::NoMatch | OperatorKind::GeoLookup | OperatorKind::Rbl => Kind::Never,
        OperatorKind::DetectSqli => Kind::Sqli,
        OperatorKind::DetectXss => Kind::Xss,
    };
    Ok(CompiledOperator {
        negated: op.negated,
        kind,
    })
}

/// Regexes compiled from a macro pattern's expansions (a few per rule set).
#[derive(Debug, Default)]
struct RegexCache(std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Regex>>>);

impl RegexCache {
    fn get(&self, pattern: &str) -> Option<std::sync::Arc<Regex>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = map.get(pattern) {
            return Some(r.clone());
        }
        let r = std::sync::Arc::new(regex(pattern).ok()?);
        if map.len() >= 64 {
            map.clear();
        }
        map.insert(pattern.to_owned(), r.clone());
        Some(r)
    }
}

/// `@rx`: the `regex` crate when it reads the pattern, else (a pattern written for PCRE) the
/// same after [`crate::pcre::normalize`], else a backtracking engine; a pattern with macros is
/// compiled per transaction.
fn rx(p: &str) -> Result<Kind, String> {
    let first = match regex(p) {
        Ok(r) => return Ok(Kind::Rx(r)),
        Err(e) => e,
    };
    if has_macro(p) {
        return Ok(Kind::RxMacro(p.to_owned(), RegexCache::default()));
    }
    let n = crate::pcre::normalize(p);
    if let Ok(r) = regex(&n) {
        return Ok(Kind::Rx(r));
    }
    crate::pcre::Backtracking::new(&n)
        .map(Kind::Backtracking)
        .map_err(|e| format!("{first}; as PCRE: {e}"))
}

/// Whether a pattern holds a macro such as `%{tx.name}` or `%{REQUEST_METHOD}`.
fn has_macro(p: &str) -> bool {
    p.match_indices("%{").any(|(i, _)| {
        let rest = &p[i + 2..];
        rest.find('}').is_some_and(|end| {
            end > 0
                && rest[..end]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':'))
        })
    })
}

/// The lines of a data file: trimmed, without blank lines and `#` comments.
fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A regex with ModSecurity's byte semantics (`.` is any byte, `\w` is ASCII); a pattern that
/// needs Unicode classes falls back to Unicode mode.
fn regex(p: &str) -> Result<Regex, String> {
    // PCRE without UTF mode reads `\x{e2}` as the byte 0xe2; the `regex` crate reads braces as
    // a code point, so byte values are rewritten to the brace-less form.
    let p = &bytes_escapes(p);
    let build = |unicode: bool| {
        RegexBuilder::new(p)
            .unicode(unicode)
            .size_limit(64 << 20)
            .dfa_size_limit(16 << 20)
            .build()
    };
    build(false)
        .or_else(|_| build(true))
        .map_err(|e| format!("invalid regular expression: {e}"))
}

/// `\x{hh}` (one or two hex digits) to `\xhh`, outside of anything else.
pub(crate) fn bytes_escapes(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x' && b.get(i + 2) == Some(&b'{') {
                if let Some(close) = p[i + 3..].find('}') {
                    let hex = &p[i + 3..i + 3 + close];
                    if (1..=2).contains(&hex.len()) && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                        out.push_str(&format!("\\x{hex:0>2}"));
                        i += 3 + close + 1;
                        continue;
                    }
                }
            }
            // Any other escape is copied whole, so `\\x{…}` stays as written.
            i = copy_escape(p, i, &mut out);
            continue;
        }
        let ch = p[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Copies the escape sequence at `i` (a backslash and the character after it) whole; the
/// index after it.
pub(crate) fn copy_escape(p: &str, i: usize, out: &mut String) -> usize {
    let ch = p[i + 1..].chars().next().unwrap_or('\\');
    out.push('\\');
    out.push(ch);
    i + 1 + ch.len_utf8()
}

fn phrases<'a>(list: impl Iterator<Item = &'a str>) -> Result<Kind, String> {
    let list: Vec<&str> = list.filter(|s| !s.is_empty()).collect();
    if list.is_empty() {
        return Err("no phrases".into());
    }
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(&list)
        .map_err(|e| e.to_string())?;
    let mut lower: Vec<Vec<u8>> = list
        .iter()
        .map(|p| p.as_bytes().to_ascii_lowercase())
        .collect();
    lower.sort();
    lower.dedup();
    Ok(Kind::Phrases(ac, lower))
}

fn ips<'a>(list: impl Iterator<Item = &'a str>) -> Result<IpTable<()>, String> {
    let mut t = IpTable::new();
    for s in list.filter(|s| !s.is_empty()) {
        let cidr: Cidr = s
            .parse()
            .map_err(|_| format!("`{s}` is not an address or a network"))?;
        t.insert(cidr, ());
    }
    Ok(t)
}

/// `32-126,9,10,13`: the allowed bytes.
fn byte_ranges(p: &str) -> Result<Box<[bool; 256]>, String> {
    let mut allowed = Box::new([false; 256]);
    for part in p.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let byte = |s: &str| {
            s.trim()
                .parse::<u8>()
                .map_err(|_| format!("`{s}` is not a byte (0 to 255)"))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (byte(a)?, byte(b)?),
            None => (byte(part)?, byte(part)?),
        };
        if a > b {
            return Err(format!("`{part}` is an empty range"));
        }
        for v in a..=b {
            allowed[usize::from(v)] = true;
        }
    }
    Ok(allowed)
}

/// The leading integer of a value, as C's `atoi` reads it (0 when there is none).
pub(crate) fn atoi(s: &[u8]) -> i64 {
    let s = match s.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &s[i..],
        None => return 0,
    };
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl CompiledOperator {
    /// A phrase operator's phrases, lowercased (`@pm`, `@pmFromFile`).
    pub fn phrases(&self) -> Option<&[Vec<u8>]> {
        match &self.kind {
            Kind::Phrases(_, p) => Some(p),
            _ => None,
        }
    }

    /// Whether a backtracking engine runs the pattern (a PCRE-only `@rx`).
    pub fn is_backtracking(&self) -> bool {
        matches!(self.kind, Kind::Backtracking(_))
    }

    /// Runs the operator on a value: `Some` (with what `capture` keeps) when it matches,
    /// negation applied. `expand` expands macros in a parameter.
    pub fn matches(&self, value: &[u8], expand: &dyn Fn(&str) -> String) -> Option<Captures> {
        self.test(value, expand, true)
    }

    /// [`Self::matches`], building the captures only when `capture` (a rule without the
    /// `capture` action gets an empty list on a match: no copy, and a regex that only has to
    /// say whether it matches).
    pub fn test(
        &self,
        value: &[u8],
        expand: &dyn Fn(&str) -> String,
        capture: bool,
    ) -> Option<Captures> {
        let hit = self.raw(value, expand, capture);
        match (hit, self.negated) {
            (Some(c), false) => Some(c),
            (None, true) => Some(if capture {
                vec![value.to_vec()]
            } else {
                Vec::new()
            }),
            _ => None,
        }
    }

    fn raw(
        &self,
        value: &[u8],
        expand: &dyn Fn(&str) -> String,
        capture: bool,
    ) -> Option<Captures> {
        let whole = || {
            Some(if capture {
                vec![value.to_vec()]
            } else {
                Vec::new()
            })
        };
        fn param<'a>(p: &'a str, expand: &dyn Fn(&str) -> String) -> Cow<'a, [u8]> {
            if p.contains("%{") {
                Cow::Owned(expand(p).into_bytes())
            } else {
                Cow::Borrowed(p.as_bytes())
            }
        }
        let param = |p| param(p, expand);
        match &self.kind {
            Kind::Rx(re) if !capture => re.is_match(value).then(Vec::new),
            Kind::Phrases(ac, _) if !capture => ac.is_match(value).then(Vec::new),
            // No group in the pattern: `TX.0` is the whole match, which the regex finds
            // without its capturing engine.
            Kind::Rx(re) if re.captures_len() == 1 => {
                re.find(value).map(|m| vec![m.as_bytes().to_vec()])
            }
            Kind::Rx(re) => re.captures(value).map(|c| {
                c.iter()
                    .take(10)
                    .map(|m| m.map(|m| m.as_bytes().to_vec()).unwrap_or_default())
                    .collect()
            }),
            Kind::Backtracking(re) => re.captures(value),
            Kind::RxMacro(p, cache) => {
                let re = cache.get(&expand(p))?;
                re.captures(value).map(|c| {
                    c.iter()
                        .take(10)
                        .map(|m| m.map(|m| m.as_bytes().to_vec()).unwrap_or_default())
                        .collect()
                })
            }
            Kind::Phrases(ac, _) => ac.find(value).map(|m| vec![value[m.range()].to_vec()]),
            Kind::Ips(t) => {
                let ip: IpAddr = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
                t.contains(ip).then(whole)?
            }
            Kind::Text(kind, p) => {
                let p = param(p);
                let p = p.as_ref();
                let hit = match kind {
                    OperatorKind::StrEq => value == p,
                    OperatorKind::BeginsWith => value.starts_with(p),
                    OperatorKind::EndsWith => value.ends_with(p),
                    OperatorKind::Contains | OperatorKind::StrMatch => {
                        p.is_empty() || value.windows(p.len()).any(|w| w == p)
                    }
                    OperatorKind::Within => {
                        value.is_empty() || p.windows(value.len()).any(|w| w == value)
                    }
                    OperatorKind::ContainsWord => {
                        !p.is_empty()
                            && value.windows(p.len()).enumerate().any(|(i, w)| {
                                w == p
                                    && (i == 0 || !is_word(value[i - 1]))
                                    && value.get(i + p.len()).is_none_or(|b| !is_word(*b))
                            })
                    }
                    _ => false,
                };
                hit.then(whole)?
            }
            Kind::Number(kind, p) => {
                let a = atoi(value);
                let b = atoi(&param(p));
                let hit = match kind {
                    OperatorKind::Eq => a == b,
                    OperatorKind::Ge => a >= b,
                    OperatorKind::Gt => a > b,
                    OperatorKind::Le => a <= b,
                    OperatorKind::Lt => a < b,
                    _ => false,
                };
                hit.then(whole)?
            }
            Kind::Sqli => crate::libinjection::sqli(value).map(|fp| vec![fp.into_bytes()]),
            Kind::Xss => crate::libinjection::xss(value).then(whole)?,
            Kind::ByteRange(allowed) => value
                .iter()
                .any(|b| !allowed[usize::from(*b)])
                .then(whole)?,
            Kind::ValidateUrlEncoding => {
                let bad = value.iter().enumerate().any(|(i, b)| {
                    *b == b'%'
                        && !(value.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                            && value.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                });
                bad.then(whole)?
            }
            Kind::ValidateUtf8 => std::str::from_utf8(value).is_err().then(whole)?,
            Kind::Always => whole(),
            Kind::Never => None,
        }
    }
}
