//! Skipping rules that cannot match, without running them.
//!
//! Most CRS rules test a regex or a phrase list against every value of a few request
//! collections (`ARGS`, `REQUEST_HEADERS`, …) under a transformation chain. Every match of
//! such a regex starts with one of a few literals (`regex-syntax` finds them: `union`,
//! `<script`, `../`), and a phrase list is its phrases. When the rule set compiles, the rules
//! are grouped by their first link's transformation chain, and each group gets one
//! Aho-Corasick automaton (ASCII case-insensitive) over all its rules' literals. In a
//! transaction, each (group, collection) pair is scanned once: every value, transformed by the
//! group's chain (the transformation cache is shared with the rules), through the automaton;
//! the literals seen are a bit set. A rule none of whose literals was seen in any of its
//! collections cannot match: it is skipped, and as a rule that did not match does nothing,
//! skipping it changes nothing but the time.
//!
//! Only what is sound is prefiltered: the first link's operator is a non-negated `@rx` whose
//! every match starts with a known non-empty literal, or `@pm`/`@pmFromFile`; no `multiMatch`
//! (values are then tested at every stage of the chain); every variable is a request or
//! response collection that does not change during a phase (not `TX`, `MATCHED_VARS`,
//! persistent collections, counts). Selectors, exclusions and `ctl` removals only take values
//! away, so the union over a whole collection is a superset of what the rule reads.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use crate::ast::{Collection, Transform};

/// The rules of one transformation chain, prefiltered together.
#[derive(Debug)]
pub struct Group {
    /// The chain the values are transformed by (shared with the rules').
    pub chain: std::sync::Arc<[Transform]>,
    /// All the group's literals, lowercased.
    pub ac: AhoCorasick,
    /// How many literals (bits in a set).
    pub patterns: usize,
}

/// What a rule needs for its first link to possibly match.
#[derive(Debug, Clone)]
pub struct RulePrefilter {
    /// Its group.
    pub group: usize,
    /// Its literals, as a bit set over the group's literals.
    pub literals: Vec<u64>,
    /// The collections its first link reads.
    pub collections: Vec<Collection>,
}

/// What one rule offers to the prefilter, before grouping.
#[derive(Debug)]
pub struct Candidate {
    /// The first link's transformation chain.
    pub chain: std::sync::Arc<[Transform]>,
    /// Literals one of which every match contains (any case).
    pub literals: Vec<Vec<u8>>,
    /// The collections the first link reads.
    pub collections: Vec<Collection>,
}

/// Whether a collection's values stay the same for a whole phase.
pub fn stable(c: Collection) -> bool {
    use Collection as C;
    matches!(
        c,
        C::Args
            | C::ArgsGet
            | C::ArgsPost
            | C::ArgsNames
            | C::ArgsGetNames
            | C::ArgsPostNames
            | C::RequestHeaders
            | C::RequestHeadersNames
            | C::RequestCookies
            | C::RequestCookiesNames
            | C::RequestFilename
            | C::RequestBasename
            | C::RequestUri
            | C::RequestUriRaw
            | C::RequestLine
            | C::RequestMethod
            | C::RequestProtocol
            | C::QueryString
            | C::RequestBody
            | C::Files
            | C::FilesNames
            | C::Xml
            | C::ResponseHeaders
            | C::ResponseHeadersNames
            | C::ResponseBody
    )
}

/// The literals every match of a pattern (as the engine compiles it, bytes semantics) starts
/// with, lowercased; `None` when they are not known or one of them is empty.
pub fn rx_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    // Every match starts with one of the prefixes, or else ends with one of the suffixes:
    // either set, when finite and without an empty literal, is what a match must contain.
    let extract = |kind: ExtractKind| {
        let mut ex = Extractor::new();
        ex.kind(kind)
            .limit_class(16)
            .limit_repeat(8)
            .limit_literal_len(64)
            .limit_total(512);
        let seq = ex.extract(&hir);
        let lits = seq.literals()?.to_vec();
        (!lits.is_empty() && lits.iter().all(|l| !l.as_bytes().is_empty())).then_some(lits)
    };
    let lits = extract(ExtractKind::Prefix).or_else(|| extract(ExtractKind::Suffix))?;
    let mut out: Vec<Vec<u8>> = lits
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

/// Groups the rules' candidates by chain: the groups, and each rule's prefilter.
pub fn build(
    candidates: Vec<Option<Candidate>>,
) -> (Vec<Option<Group>>, Vec<Option<RulePrefilter>>) {
    let mut chains: Vec<std::sync::Arc<[Transform]>> = Vec::new();
    let mut literals: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut per_rule: Vec<Option<(usize, Vec<usize>, Vec<Collection>)>> = Vec::new();
    for c in candidates {
        let Some(c) = c else {
            per_rule.push(None);
            continue;
        };
        let g = match chains.iter().position(|x| *x == c.chain) {
            Some(g) => g,
            None => {
                chains.push(c.chain.clone());
                literals.push(Vec::new());
                chains.len() - 1
            }
        };
        let ids = c
            .literals
            .into_iter()
            .map(|l| match literals[g].iter().position(|x| *x == l) {
                Some(i) => i,
                None => {
                    literals[g].push(l);
                    literals[g].len() - 1
                }
            })
            .collect();
        per_rule.push(Some((g, ids, c.collections)));
    }
    // A group whose automaton does not build (too large) is not prefiltered.
    let groups: Vec<Option<Group>> = chains
        .into_iter()
        .zip(literals)
        .map(|(chain, lits)| {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&lits)
                .or_else(|_| {
                    AhoCorasickBuilder::new()
                        .ascii_case_insensitive(true)
                        .match_kind(MatchKind::Standard)
                        .build(&lits)
                })
                .ok()?;
            Some(Group {
                chain,
                ac,
                patterns: lits.len(),
            })
        })
        .collect();
    let rules = per_rule
        .into_iter()
        .map(|r| {
            let (g, ids, collections) = r?;
            let group = groups[g].as_ref()?;
            let mut bits = vec![0u64; group.patterns.div_ceil(64)];
            for i in ids {
                bits[i / 64] |= 1 << (i % 64);
            }
            Some(RulePrefilter {
                group: g,
                literals: bits,
                collections,
            })
        })
        .collect();
    (groups, rules)
}

/// The literals of a group seen in a value, added to `bits`.
pub fn scan(group: &Group, value: &[u8], bits: &mut [u64]) {
    for m in group.ac.find_overlapping_iter(value) {
        let i = m.pattern().as_usize();
        bits[i / 64] |= 1 << (i % 64);
    }
}

/// Whether two bit sets share a bit.
pub fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn literals_every_match_starts_with() {
        let l = rx_literals(r"(?i)(?:union|select)\s+all").unwrap();
        assert_eq!(l, [b"select".to_vec(), b"union".to_vec()]);
        assert_eq!(rx_literals(r"\.\./").unwrap(), [b"../".to_vec()]);
        // A small class: each of its bytes.
        let digits: Vec<Vec<u8>> = (b'0'..=b'9').map(|d| vec![d]).collect();
        assert_eq!(rx_literals(r"\d+").unwrap(), digits);
        // A match that may be empty, or anything at all: nothing to require.
        assert!(rx_literals(r"a*").is_none());
        assert!(rx_literals(r".").is_none());
        assert!(rx_literals(r"^").is_none());
    }
}
