//! The learned trie: path templates from observed traffic (docs/discovery.md, "Templates").
//!
//! Strong segments (numbers, UUIDs, dates, prefixed ids, …) become typed variables at once.
//! Weak ones (words, slugs) are staged in a count-min sketch and become literal nodes only when
//! seen twice; a consolidation pass collapses a node's weak children into one `{var}` on
//! evidence (many distinct values, similar requests, a long tail of rare values), keeping as
//! literals the ones that behave differently (`/users/me` beside `/users/{var}`). Only
//! successful responses create nodes; memory is bounded by the node budget, the literal cap per
//! node and the fixed-size sketch.

use std::collections::BTreeMap;

use crate::classify::{classify, segments, Class, RESERVED};
use crate::sketch::{CountMin, Hll, Key};

/// Thresholds (docs/discovery.md lists them with their reasons).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Sightings before a weak segment becomes a literal node.
    pub promote_after: u16,
    /// Literal children a node keeps; beyond, new weak values stay staged.
    pub max_literals: usize,
    /// More distinct weak children than this always collapse.
    pub hard_cap: u64,
    /// Distinct weak children needed to collapse (below the root).
    pub min_distinct: u64,
    /// Share of observations with the modal signature needed to collapse (below the root).
    pub similarity: f64,
    /// At the root, both are stricter: `/users` and `/orders` must not merge.
    pub min_distinct_root: u64,
    /// See `min_distinct_root`.
    pub similarity_root: f64,
    /// Share of observations that went to values seen fewer than `promote_after` times…
    pub tail_ratio: f64,
    /// …or this many distinct values, for a collapse.
    pub many_distinct: u64,
    /// A literal whose signature differs from the modal one and that has this share of its
    /// parent's observations survives a collapse.
    pub survivor_share: f64,
    /// Nodes at most; beyond, nothing new is created (and the refusals are counted).
    pub max_nodes: usize,
    /// Observations between consolidation passes.
    pub consolidate_every: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            promote_after: 2,
            max_literals: 64,
            hard_cap: 256,
            min_distinct: 10,
            similarity: 0.8,
            min_distinct_root: 50,
            similarity_root: 0.9,
            tail_ratio: 0.3,
            many_distinct: 50,
            survivor_share: 0.05,
            max_nodes: 50_000,
            consolidate_every: 10_000,
        }
    }
}

/// One finished request, as discovery sees it.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The method.
    pub method: &'a str,
    /// The path (raw; normalised here).
    pub path: &'a str,
    /// The response status.
    pub status: u16,
    /// The response's media type (`application/json`), or empty.
    pub content_type: &'a str,
    /// The response body's size.
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
enum Label {
    Root,
    Literal(String),
    Typed(Class),
    Var,
}

/// A histogram of at most 8 signatures (the rest counted together).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Sigs {
    top: Vec<(u64, u64)>,
    other: u64,
}

impl Sigs {
    fn add(&mut self, sig: u64, n: u64) {
        if let Some(e) = self.top.iter_mut().find(|e| e.0 == sig) {
            e.1 += n;
        } else if self.top.len() < 8 {
            self.top.push((sig, n));
        } else {
            self.other += n;
        }
    }

    fn merge(&mut self, o: &Sigs) {
        for (s, n) in &o.top {
            self.add(*s, *n);
        }
        self.other += o.other;
    }

    fn total(&self) -> u64 {
        self.top.iter().map(|e| e.1).sum::<u64>() + self.other
    }

    /// Total variation distance between two histograms (0: the same mix, 1: nothing in
    /// common); what does not fit in the top 8 counts as one more signature.
    fn distance(&self, o: &Sigs) -> f64 {
        let (a, b) = (self.total().max(1) as f64, o.total().max(1) as f64);
        let mut d = (self.other as f64 / a - o.other as f64 / b).abs();
        for (s, n) in &self.top {
            let m = o.top.iter().find(|e| e.0 == *s).map_or(0, |e| e.1);
            d += (*n as f64 / a - m as f64 / b).abs();
        }
        for (s, m) in &o.top {
            if !self.top.iter().any(|e| e.0 == *s) {
                d += *m as f64 / b;
            }
        }
        d / 2.0
    }
}

/// What a node knows of its weak children, promoted or not.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Weak {
    distinct: Hll,
    observations: u64,
    unpromoted: u64,
    sigs: Sigs,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Node {
    label: Label,
    literals: BTreeMap<String, usize>,
    typed: BTreeMap<Class, usize>,
    var: Option<usize>,
    weak: Weak,
    /// Signatures of the observations that went through this node.
    own: Sigs,
    hits: u64,
    methods: BTreeMap<String, u64>,
    /// Per method, responses by status class (1xx to 5xx), failures included.
    #[serde(default)]
    statuses: BTreeMap<String, [u64; 5]>,
}

impl Node {
    fn new(label: Label) -> Self {
        Self {
            label,
            literals: BTreeMap::new(),
            typed: BTreeMap::new(),
            var: None,
            weak: Weak::default(),
            own: Sigs::default(),
            hits: 0,
            methods: BTreeMap::new(),
            statuses: BTreeMap::new(),
        }
    }
}

/// A learned endpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// The method.
    pub method: String,
    /// The template: literals, `{int}`-style typed variables and `{var}` for collapsed words.
    pub template: String,
    /// Successful requests seen.
    pub hits: u64,
    /// Responses by status class, 1xx to 5xx (failures of a learned endpoint count here).
    pub statuses: [u64; 5],
}

/// What the learner holds, for budgets and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Live nodes.
    pub nodes: usize,
    /// Nodes that could not be created because of `max_nodes`.
    pub refused: u64,
    /// Approximate bytes held (nodes and the sketch).
    pub bytes: usize,
}

/// Path templates learned from traffic, for one API.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Learner {
    /// Not saved: the configuration in force applies.
    #[serde(skip)]
    cfg: Config,
    key: Key,
    nodes: Vec<Node>,
    live: usize,
    /// Not saved: staged values start over after a restart.
    #[serde(skip)]
    staging: CountMin,
    since: u64,
    refused: u64,
}

impl Learner {
    /// A learner with a random hashing key.
    pub fn new(cfg: Config) -> Self {
        Self::with_key(cfg, Key::random())
    }

    /// A learner with a given key (reproducible runs: tests and the evaluation).
    pub fn with_key(cfg: Config, key: Key) -> Self {
        Self {
            cfg,
            key,
            nodes: vec![Node::new(Label::Root)],
            live: 1,
            staging: CountMin::default(),
            since: 0,
            refused: 0,
        }
    }

    /// Learns from one finished request. Only a 2xx creates nodes; anything else counts on
    /// nodes that exist.
    pub fn observe(&mut self, o: &Observation<'_>) {
        let segs = segments(o.path);
        let create = (200..300).contains(&o.status);
        if create {
            self.since += 1;
            if self.since >= self.cfg.consolidate_every {
                self.consolidate();
            }
        }
        let mut node = 0usize;
        // The staging key of a segment is its path so far as the trie labels it (literal,
        // class or `{var}`), so that every level of a new path is counted at each sighting
        // and a path that is seen twice exists whole after the second time.
        let mut chain = 0u64;
        for (i, seg) in segs.iter().enumerate() {
            let sig = self.signature(o, &segs, i);
            let class = classify(seg);
            let weak = !class.is_strong() && !is_reserved(seg, class);
            let label: &[u8] = if class.is_strong() {
                class.as_str().as_bytes()
            } else if weak
                && self.nodes[node].var.is_some()
                && !self.nodes[node].literals.contains_key(seg.as_str())
            {
                b"{var}"
            } else {
                seg.as_bytes()
            };
            let here = chain;
            chain = self.key.hash(&[&chain.to_le_bytes(), label]);
            if let Some(&c) = self.nodes[node].literals.get(seg.as_str()) {
                if weak && create {
                    self.weak_seen(node, seg, sig);
                }
                node = c;
            } else if class.is_strong() {
                match self.nodes[node].typed.get(&class).copied() {
                    Some(c) => node = c,
                    None if create => match self.alloc(Label::Typed(class)) {
                        Some(c) => {
                            self.nodes[node].typed.insert(class, c);
                            node = c;
                        }
                        None => return,
                    },
                    None => return,
                }
            } else if !weak {
                // Reserved words and versions: literals at once, never variables.
                if !create {
                    return;
                }
                match self.add_literal(node, seg) {
                    Some(c) => node = c,
                    None => return,
                }
            } else {
                if !create {
                    match self.nodes[node].var {
                        Some(v) => {
                            node = v;
                            continue;
                        }
                        None => return,
                    }
                }
                self.weak_seen(node, seg, sig);
                if let Some(v) = self.nodes[node].var {
                    node = v;
                } else {
                    let h = self.key.hash(&[&here.to_le_bytes(), seg.as_bytes()]);
                    let seen = self.staging.add(h);
                    let room = self.nodes[node].literals.len() < self.cfg.max_literals;
                    if seen >= self.cfg.promote_after && room {
                        match self.add_literal(node, seg) {
                            Some(c) => node = c,
                            None => return,
                        }
                    } else {
                        self.nodes[node].weak.unpromoted += 1;
                        self.stage_rest(chain, &segs[i + 1..]);
                        return;
                    }
                }
            }
            self.nodes[node].own.add(sig, 1);
        }
        let n = &mut self.nodes[node];
        n.hits += 1;
        if create {
            *n.methods.entry(o.method.to_owned()).or_default() += 1;
        }
        let class = usize::from((o.status / 100).clamp(1, 5) - 1);
        n.statuses.entry(o.method.to_owned()).or_default()[class] += 1;
    }

    /// Counts the weak segments below a staged one, without creating anything.
    fn stage_rest(&mut self, mut chain: u64, rest: &[String]) {
        for seg in rest {
            let class = classify(seg);
            if !class.is_strong() && !is_reserved(seg, class) {
                self.staging
                    .add(self.key.hash(&[&chain.to_le_bytes(), seg.as_bytes()]));
            }
            let label: &[u8] = if class.is_strong() {
                class.as_str().as_bytes()
            } else {
                seg.as_bytes()
            };
            chain = self.key.hash(&[&chain.to_le_bytes(), label]);
        }
    }

    fn weak_seen(&mut self, node: usize, seg: &str, sig: u64) {
        let h = self.key.hash(&[seg.as_bytes()]);
        let w = &mut self.nodes[node].weak;
        w.distinct.add(h);
        w.observations += 1;
        w.sigs.add(sig, 1);
    }

    /// What a child segment's request looks like: method, status class, media type, size
    /// bucket, and what comes after it (the class of the next segment, or the end).
    fn signature(&self, o: &Observation<'_>, segs: &[String], i: usize) -> u64 {
        let next = match segs.get(i + 1) {
            None => "$".to_owned(),
            Some(s) => {
                let c = classify(s);
                if c.is_strong() {
                    c.as_str().to_owned()
                } else if is_reserved(s, c) {
                    s.clone()
                } else {
                    "w".to_owned()
                }
            }
        };
        let bucket = 64 - o.size.leading_zeros();
        self.key.hash(&[
            o.method.as_bytes(),
            &[(o.status / 100) as u8],
            o.content_type.as_bytes(),
            &bucket.to_le_bytes(),
            next.as_bytes(),
        ])
    }

    /// A new literal child `seg` of `node`, within the budget.
    fn add_literal(&mut self, node: usize, seg: &str) -> Option<usize> {
        let c = self.alloc(Label::Literal(seg.to_owned()))?;
        self.nodes[node].literals.insert(seg.to_owned(), c);
        Some(c)
    }

    fn alloc(&mut self, label: Label) -> Option<usize> {
        if self.live >= self.cfg.max_nodes {
            self.refused += 1;
            return None;
        }
        self.live += 1;
        self.nodes.push(Node::new(label));
        Some(self.nodes.len() - 1)
    }

    /// Collapses weak children where the evidence says so; runs by itself every
    /// `consolidate_every` observations.
    pub fn consolidate(&mut self) {
        self.since = 0;
        self.consolidate_node(0, 0);
        self.staging.decay();
    }

    fn consolidate_node(&mut self, id: usize, depth: usize) {
        if self.nodes[id].var.is_none() {
            if let Some(var) = self.collapse_at(id, depth) {
                self.nodes[id].var = Some(var);
            }
        }
        let children: Vec<usize> = {
            let n = &self.nodes[id];
            n.literals
                .values()
                .chain(n.typed.values())
                .chain(n.var.iter())
                .copied()
                .collect()
        };
        for c in children {
            self.consolidate_node(c, depth + 1);
        }
    }

    /// Collapses `id`'s weak literal children into a new `{var}` when the evidence says
    /// so; returns the new node.
    ///
    /// Similarity: a child is like its siblings when the mix of requests through it (the
    /// signature histogram) is within `SAME_MIX` of the mix through all of them; a child with
    /// too few requests to tell, and the values never promoted out of staging, count as
    /// alike. S is the share of observations through children that are alike.
    fn collapse_at(&mut self, id: usize, depth: usize) -> Option<usize> {
        const SAME_MIX: f64 = 0.25;
        const TELL: u64 = 5;
        let n = &self.nodes[id];
        let w = &n.weak;
        if w.observations == 0 {
            return None;
        }
        let d = w.distinct.estimate();
        let mut unlike = 0u64;
        let mut survivors = Vec::new();
        for (name, &c) in &n.literals {
            let class = classify(name);
            if class.is_strong() || is_reserved(name, class) {
                continue;
            }
            let child = &self.nodes[c].own;
            let seen = child.total();
            if seen >= TELL && child.distance(&w.sigs) > SAME_MIX {
                unlike += seen;
                if seen as f64 / w.observations as f64 >= self.cfg.survivor_share {
                    survivors.push(name.clone());
                }
            }
        }
        let s = 1.0 - unlike as f64 / w.observations as f64;
        let tail = w.unpromoted as f64 / w.observations as f64;
        let (min_d, min_s) = if depth == 0 {
            (self.cfg.min_distinct_root, self.cfg.similarity_root)
        } else {
            (self.cfg.min_distinct, self.cfg.similarity)
        };
        let collapse = d > self.cfg.hard_cap
            || (d >= min_d
                && s >= min_s
                && (tail >= self.cfg.tail_ratio || d >= self.cfg.many_distinct));
        if !collapse {
            return None;
        }
        let merged: Vec<(String, usize)> = self.nodes[id]
            .literals
            .iter()
            .filter(|(name, _)| {
                let class = classify(name);
                // `/users/me` beside `/users/{var}`: a literal unlike its siblings stays.
                !(class.is_strong() || is_reserved(name, class) || survivors.contains(*name))
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        // A collapse that merges nodes frees at least as many as it takes; one that merges
        // none (all values still staged) needs room in the budget.
        if merged.is_empty() && self.live >= self.cfg.max_nodes {
            self.refused += 1;
            return None;
        }
        let var = self.alloc_var()?;
        for (name, child) in merged {
            self.nodes[id].literals.remove(&name);
            self.merge(var, child);
        }
        Some(var)
    }

    fn alloc_var(&mut self) -> Option<usize> {
        // Over the budget for a moment at most: the caller merges at least one node into it.
        self.live += 1;
        self.nodes.push(Node::new(Label::Var));
        Some(self.nodes.len() - 1)
    }

    /// Moves `from`'s subtree into `into` (counts add, children merge by label).
    fn merge(&mut self, into: usize, from: usize) {
        let f = std::mem::replace(&mut self.nodes[from], Node::new(Label::Var));
        self.live -= 1;
        {
            let t = &mut self.nodes[into];
            t.hits += f.hits;
            for (m, s) in &f.statuses {
                let e = t.statuses.entry(m.clone()).or_default();
                for (a, b) in e.iter_mut().zip(s) {
                    *a += b;
                }
            }
            for (m, n) in &f.methods {
                *t.methods.entry(m.clone()).or_default() += n;
            }
            t.own.merge(&f.own);
            t.weak.distinct.merge(&f.weak.distinct);
            t.weak.observations += f.weak.observations;
            t.weak.unpromoted += f.weak.unpromoted;
            t.weak.sigs.merge(&f.weak.sigs);
        }
        for (name, c) in f.literals {
            match self.nodes[into].literals.get(&name).copied() {
                Some(existing) => self.merge(existing, c),
                None => {
                    self.nodes[into].literals.insert(name, c);
                }
            }
        }
        for (class, c) in f.typed {
            match self.nodes[into].typed.get(&class).copied() {
                Some(existing) => self.merge(existing, c),
                None => {
                    self.nodes[into].typed.insert(class, c);
                }
            }
        }
        if let Some(c) = f.var {
            match self.nodes[into].var {
                Some(existing) => self.merge(existing, c),
                None => self.nodes[into].var = Some(c),
            }
        }
    }

    /// The learner as JSON (what it learned, not the staging sketch).
    pub fn save(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A learner saved by [`Learner::save`], under the configuration `cfg`.
    pub fn restore(cfg: Config, saved: &str) -> Result<Self, String> {
        let mut l: Learner = serde_json::from_str(saved).map_err(|e| e.to_string())?;
        if l.nodes.is_empty() || l.live > l.nodes.len() {
            return Err("not a saved learner".into());
        }
        l.cfg = cfg;
        Ok(l)
    }

    /// The learned template a request falls under, when its endpoint exists (nothing is
    /// created or counted).
    pub fn template_of(&self, method: &str, path: &str) -> Option<String> {
        let mut node = 0usize;
        let mut labels = Vec::new();
        for seg in segments(path) {
            let n = &self.nodes[node];
            let class = classify(&seg);
            let next = n
                .literals
                .get(seg.as_str())
                .or_else(|| n.typed.get(&class))
                .or(n.var.as_ref())?;
            labels.push(match &self.nodes[*next].label {
                Label::Literal(s) => s.clone(),
                Label::Typed(c) => format!("{{{}}}", c.as_str()),
                Label::Var | Label::Root => "{var}".to_owned(),
            });
            node = *next;
        }
        self.nodes[node]
            .methods
            .contains_key(method)
            .then(|| format!("/{}", labels.join("/")))
    }

    /// The endpoints learned so far, sorted by template and method.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let mut out = Vec::new();
        self.walk(0, &mut Vec::new(), &mut out);
        out.sort();
        out
    }

    fn walk(&self, id: usize, path: &mut Vec<String>, out: &mut Vec<Endpoint>) {
        let n = &self.nodes[id];
        let template = if path.is_empty() {
            "/".to_owned()
        } else {
            format!("/{}", path.join("/"))
        };
        for (m, hits) in &n.methods {
            out.push(Endpoint {
                method: m.clone(),
                template: template.clone(),
                hits: *hits,
                statuses: n.statuses.get(m).copied().unwrap_or_default(),
            });
        }
        let children = n
            .literals
            .values()
            .chain(n.typed.values())
            .chain(n.var.iter());
        for &c in children {
            let label = match &self.nodes[c].label {
                Label::Literal(s) => s.clone(),
                Label::Typed(class) => format!("{{{}}}", class.as_str()),
                Label::Var | Label::Root => "{var}".to_owned(),
            };
            path.push(label);
            self.walk(c, path, out);
            path.pop();
        }
    }

    /// Memory use.
    pub fn usage(&self) -> Usage {
        // The slab keeps merged-away nodes as empty shells; count what is live.
        let node_bytes: usize = self
            .nodes
            .iter()
            .map(|n| {
                std::mem::size_of::<Node>()
                    + 256
                    + n.literals.keys().map(|k| k.len() + 48).sum::<usize>()
                    + n.typed.len() * 48
                    + n.methods.keys().map(|k| k.len() + 48).sum::<usize>()
                    + n.own.top.capacity() * 16
                    + n.weak.sigs.top.capacity() * 16
            })
            .sum();
        Usage {
            nodes: self.live,
            refused: self.refused,
            bytes: node_bytes + self.staging.bytes(),
        }
    }
}

fn is_reserved(seg: &str, class: Class) -> bool {
    class == Class::Version || RESERVED.contains(&seg)
}

/// A template with every variable written `{}` (templates are compared modulo names).
pub fn shape(template: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "{}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(method: &'a str, path: &'a str) -> Observation<'a> {
        Observation {
            method,
            path,
            status: 200,
            content_type: "application/json",
            size: 300,
        }
    }

    #[test]
    fn typed_segments_are_variables_at_once() {
        let mut l = Learner::with_key(Config::default(), Key(1, 2));
        for p in ["/pets/1", "/pets/2", "/pets/3"] {
            l.observe(&obs("GET", p));
        }
        l.observe(&obs("GET", "/pets"));
        l.observe(&obs("GET", "/pets"));
        let t: Vec<_> = l.endpoints().into_iter().map(|e| e.template).collect();
        assert_eq!(t, ["/pets", "/pets/{int}"]);
    }

    #[test]
    fn a_saved_learner_restores_what_it_learned() {
        let mut l = Learner::with_key(Config::default(), Key(1, 2));
        for p in [
            "/pets/1",
            "/pets/2",
            "/pets",
            "/pets",
            "/shops/abc",
            "/shops/abc",
        ] {
            l.observe(&obs("GET", p));
        }
        let saved = l.save();
        let r = Learner::restore(Config::default(), &saved).unwrap();
        assert_eq!(r.endpoints(), l.endpoints());
        assert_eq!(r.usage().nodes, l.usage().nodes);
        assert!(Learner::restore(Config::default(), "{}").is_err());
        assert!(Learner::restore(Config::default(), "nonsense").is_err());
    }

    #[test]
    fn endpoints_count_their_status_classes() {
        let mut l = Learner::with_key(Config::default(), Key(1, 2));
        for (p, s) in [
            ("/pets/1", 200),
            ("/pets/2", 200),
            ("/pets/3", 201),
            ("/pets/4", 404),
            ("/pets/5", 503),
        ] {
            l.observe(&Observation {
                status: s,
                ..obs("GET", p)
            });
        }
        let e = l.endpoints();
        assert_eq!(e.len(), 1);
        // The first request only staged `pets`: two of the three successes count.
        assert_eq!(e[0].statuses, [0, 2, 0, 1, 1]);
        assert_eq!(e[0].hits, 2);
    }

    #[test]
    fn failures_create_nothing() {
        let mut l = Learner::with_key(Config::default(), Key(1, 2));
        for i in 0..1000 {
            let p = format!("/random-{i}/x");
            l.observe(&Observation {
                status: 404,
                ..obs("GET", &p)
            });
        }
        assert!(l.endpoints().is_empty());
        assert_eq!(l.usage().nodes, 1);
    }
}
