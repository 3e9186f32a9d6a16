//! Compiled patterns: regexes behind a literal prefilter, and wildcards.
//!
//! Every pattern is a `regex` crate regex, which runs in time linear in the input whatever the
//! pattern: no rule can be a ReDoS. Before a regex runs, a prefilter looks for a literal that
//! every match must contain (memchr's `memmem`, or aho-corasick for alternatives); when none is
//! there, the regex is not run at all.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::parse::Limits;

/// A regex with its prefilter.
#[derive(Debug)]
pub(crate) struct Matcher {
    re: Regex,
    pre: Option<Prefilter>,
}

#[derive(Debug)]
enum Prefilter {
    /// One literal, case-sensitive.
    One(Box<memmem::Finder<'static>>),
    /// Several alternatives, or a case-insensitive literal.
    Many(AhoCorasick),
}

/// The shortest literal worth a prefilter; below this the regex's own literal search is as good.
const MIN_PREFILTER_LEN: usize = 3;

impl Matcher {
    /// Compiles a `matches` pattern.
    pub(crate) fn regex(pattern: &str, limits: &Limits) -> Result<Self, String> {
        let re = RegexBuilder::new(pattern)
            .size_limit(limits.regex_size_limit)
            .dfa_size_limit(limits.regex_dfa_size_limit)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(n) => {
                    format!("regex is too big once compiled (limit {n} bytes)")
                }
                other => format!("invalid regex: {}", last_line(&other.to_string())),
            })?;
        let pre = regex_syntax::ParserBuilder::new()
            .build()
            .parse(pattern)
            .ok()
            .and_then(|hir| required(&hir))
            .and_then(Prefilter::new);
        Ok(Self { re, pre })
    }

    /// Compiles a wildcard: `*` matches any run of bytes, `\*` and `\\` are literal; the whole
    /// value must match. Case-insensitive (ASCII) unless `strict`.
    pub(crate) fn wildcard(pattern: &[u8], strict: bool, limits: &Limits) -> Result<Self, String> {
        let mut re = String::from(if strict { "(?s-u)^" } else { "(?si-u)^" });
        let mut stars = 0;
        let mut i = 0;
        while i < pattern.len() {
            match pattern[i] {
                b'\\' if matches!(pattern.get(i + 1), Some(b'*' | b'\\')) => {
                    re.push_str(&format!("\\x{:02x}", pattern[i + 1]));
                    i += 2;
                    continue;
                }
                b'*' => {
                    stars += 1;
                    re.push_str(".*");
                }
                c if c.is_ascii_alphanumeric() => re.push(c as char),
                c => re.push_str(&format!("\\x{c:02x}")),
            }
            i += 1;
        }
        re.push('$');
        if stars > limits.max_wildcard_stars {
            return Err(format!(
                "wildcard has {stars} \"*\", more than the limit of {}",
                limits.max_wildcard_stars
            ));
        }
        let re = RegexBuilder::new(&re)
            .unicode(false)
            .size_limit(limits.regex_size_limit)
            .dfa_size_limit(limits.regex_dfa_size_limit)
            .build()
            .map_err(|e| format!("invalid wildcard: {}", last_line(&e.to_string())))?;
        Ok(Self { re, pre: None })
    }

    /// Returns true if the pattern matches `hay`.
    pub(crate) fn is_match(&self, hay: &[u8]) -> bool {
        let pass = match &self.pre {
            None => true,
            Some(Prefilter::One(f)) => f.find(hay).is_some(),
            Some(Prefilter::Many(ac)) => ac.is_match(hay),
        };
        pass && self.re.is_match(hay)
    }

    /// Returns true if a prefilter guards the regex (for tests).
    #[cfg(test)]
    pub(crate) fn has_prefilter(&self) -> bool {
        self.pre.is_some()
    }
}

/// The regex crate's message without the pattern it repeats: its last line, `error: ` removed.
fn last_line(s: &str) -> String {
    let line = s.lines().last().unwrap_or(s).trim();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// A set of literals, at least one of which occurs in every match.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Required {
    lits: Vec<Vec<u8>>,
    /// True when the literals must be matched ignoring ASCII case (they are lower case).
    ci: bool,
}

impl Required {
    fn min_len(&self) -> usize {
        self.lits.iter().map(Vec::len).min().unwrap_or(0)
    }
}

impl Prefilter {
    fn new(req: Required) -> Option<Self> {
        if req.lits.is_empty() || req.min_len() < MIN_PREFILTER_LEN || req.lits.len() > 64 {
            return None;
        }
        if req.lits.len() == 1 && !req.ci {
            return Some(Self::One(Box::new(
                memmem::Finder::new(&req.lits[0]).into_owned(),
            )));
        }
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(req.ci)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&req.lits)
            .ok()
            .map(Self::Many)
    }
}

/// Finds literals every match of `hir` must contain; `None` when there is no such set.
fn required(hir: &Hir) -> Option<Required> {
    match hir.kind() {
        HirKind::Literal(l) => Some(Required {
            lits: vec![l.0.to_vec()],
            ci: false,
        }),
        HirKind::Class(c) => case_pair(c).map(|b| Required {
            lits: vec![vec![b]],
            ci: true,
        }),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        HirKind::Alternation(subs) => {
            let mut lits = Vec::new();
            let mut ci = false;
            for s in subs {
                let r = required(s)?;
                ci |= r.ci;
                lits.extend(r.lits);
            }
            if ci {
                for l in &mut lits {
                    l.make_ascii_lowercase();
                }
            }
            lits.sort();
            lits.dedup();
            Some(Required { lits, ci })
        }
        HirKind::Concat(subs) => {
            // Adjacent single literals join into one longer literal; the best candidate is
            // the one whose shortest alternative is longest.
            let mut best: Option<Required> = None;
            let mut run: Option<Required> = None;
            let consider = |cand: Option<Required>, best: &mut Option<Required>| {
                if let Some(c) = cand {
                    if best.as_ref().is_none_or(|b| c.min_len() > b.min_len()) {
                        *best = Some(c);
                    }
                }
            };
            for s in subs {
                match required(s) {
                    Some(r) if r.lits.len() == 1 && is_exact(s) => {
                        run = Some(match run.take() {
                            None => r,
                            Some(mut acc) => {
                                let ci = acc.ci || r.ci;
                                let mut joined = std::mem::take(&mut acc.lits[0]);
                                joined.extend_from_slice(&r.lits[0]);
                                if ci {
                                    joined.make_ascii_lowercase();
                                }
                                Required {
                                    lits: vec![joined],
                                    ci,
                                }
                            }
                        });
                    }
                    other => {
                        consider(run.take(), &mut best);
                        consider(other, &mut best);
                    }
                }
            }
            consider(run.take(), &mut best);
            best
        }
        _ => None,
    }
}

/// True when `hir` matches exactly its one required literal (so it can be joined to its
/// neighbours in a concatenation).
fn is_exact(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Literal(_) => true,
        HirKind::Class(c) => case_pair(c).is_some(),
        HirKind::Capture(c) => is_exact(&c.sub),
        _ => false,
    }
}

/// Returns the lower-case letter when `class` is exactly an ASCII letter in both cases.
fn case_pair(class: &Class) -> Option<u8> {
    let pair = match class {
        Class::Unicode(u) => {
            let r = u.ranges();
            if r.len() != 2 || r[0].start() != r[0].end() || r[1].start() != r[1].end() {
                return None;
            }
            (
                u8::try_from(u32::from(r[0].start())).ok()?,
                u8::try_from(u32::from(r[1].start())).ok()?,
            )
        }
        Class::Bytes(b) => {
            let r = b.ranges();
            if r.len() != 2 || r[0].start() != r[0].end() || r[1].start() != r[1].end() {
                return None;
            }
            (r[0].start(), r[1].start())
        }
    };
    (pair.0.is_ascii_uppercase() && pair.1 == pair.0.to_ascii_lowercase()).then_some(pair.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: &str) -> Option<Required> {
        required(&regex_syntax::parse(p).expect("parse"))
    }

    #[test]
    fn required_literals() {
        assert_eq!(
            req("^/admin/.*").map(|r| r.lits),
            Some(vec![b"/admin/".to_vec()])
        );
        let r = req("(?i)union\\s+select").expect("some");
        assert!(r.ci);
        // Unicode case folding puts U+017F (long s) in the class of `s`, so "select" is not a
        // plain ASCII literal here; "union" is.
        assert_eq!(r.lits, vec![b"union".to_vec()]);
        assert_eq!(
            req("(passwd|shadow)$").map(|r| r.lits),
            Some(vec![b"passwd".to_vec(), b"shadow".to_vec()])
        );
        assert_eq!(req("a*"), None);
        assert_eq!(req("[0-9]+"), None);
    }

    #[test]
    fn prefilter_never_changes_the_answer() {
        let limits = Limits::default();
        for (p, hay, want) in [
            ("(?i)union\\s+select", "1 UNION  SeLeCt 2", true),
            ("(?i)union\\s+select", "1 union 2", false),
            ("(passwd|shadow)$", "/etc/shadow", true),
            ("(passwd|shadow)$", "/etc/shadow.bak", false),
            ("^/admin/", "/admin/x", true),
        ] {
            let m = Matcher::regex(p, &limits).expect("compile");
            assert!(m.has_prefilter(), "{p}");
            assert_eq!(m.is_match(hay.as_bytes()), want, "{p} on {hay}");
        }
    }

    #[test]
    fn wildcards() {
        let limits = Limits::default();
        let m = Matcher::wildcard(b"*.example.com", false, &limits).expect("compile");
        assert!(m.is_match(b"API.Example.com"));
        assert!(!m.is_match(b"example.com"));
        let m = Matcher::wildcard(b"/a\\*b/*", true, &limits).expect("compile");
        assert!(m.is_match(b"/a*b/c"));
        assert!(!m.is_match(b"/aXb/c"));
        assert!(!m.is_match(b"/A*B/c"));
    }
}
