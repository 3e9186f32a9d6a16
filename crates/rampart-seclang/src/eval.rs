//! Evaluation: a transaction over one request (and its response), phase by phase, as
//! ModSecurity v3 and Coraza run it.
//!
//! The integrator feeds the request head and calls [`Transaction::phase`] for 1, then gives
//! the body and calls it for 2, and so on. Variables are computed from the request once;
//! transformations are cached per (variable, value, chain) for the whole transaction; rules
//! switched off by `ctl` or by the engine mode cost nothing.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Maps keyed by what the transaction itself holds: foldhash, not SipHash (no key comes from
/// outside in a way that could collide on purpose more than the transaction's own size).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;
use std::net::IpAddr;
use std::sync::Arc;

use crate::ast::{
    Action, AllowScope, Collection, Ctl, EngineMode, IdRange, Selector, SetVarOp, Transform,
    Variable,
};
use crate::ruleset::{CompiledRule, Disruptive, Link, Ruleset};

/// The request as the engine sees it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target as sent (`/a/b?x=1`).
    pub uri: String,
    /// `HTTP/1.1`
    pub protocol: String,
    /// The headers, in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The client's address.
    pub remote_addr: Option<IpAddr>,
    /// The request id.
    pub unique_id: String,
}

/// A refusal decided by a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interruption {
    /// The rule.
    pub rule: u32,
    /// The status to answer with.
    pub status: u16,
    /// `deny`, `drop` or `redirect`.
    pub action: Disruptive,
}

/// A rule that matched, for the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    /// The rule id.
    pub id: u32,
    /// Its phase.
    pub phase: u8,
    /// `msg`, expanded.
    pub msg: String,
    /// `logdata`, expanded.
    pub logdata: String,
    /// The variable that matched last (`ARGS:q`).
    pub var: String,
}

type Pairs = Vec<(String, Vec<u8>)>;

/// A collection as rules read it: (key, name, value) per entry.
type View = Vec<(Arc<str>, Arc<str>, Arc<[u8]>)>;

/// A value a rule inspects: its name (`ARGS:q`) and its bytes.
type Value = (Arc<str>, Arc<[u8]>);

/// A cached transformation result.
#[derive(Debug)]
struct CacheEntry {
    value: Arc<[u8]>,
    chain: Arc<[Transform]>,
    result: Arc<[u8]>,
}

/// One transaction.
#[derive(Debug)]
pub struct Transaction {
    rules: Arc<Ruleset>,
    engine: EngineMode,
    request: Request,
    /// Key-value collections (names lowercased for lookups, as ModSecurity compares them).
    collections: Map<Collection, Pairs>,
    /// Each collection as rules read it (`ARGS:q` names, shared values), built once per
    /// transaction and rebuilt when a collection changes: a rule's variable list is then
    /// reference counts, not copies.
    views: std::cell::RefCell<Map<Collection, Arc<View>>>,
    /// Single values.
    scalars: Map<Collection, Vec<u8>>,
    tx: Map<String, Arc<[u8]>>,
    /// `TX:key` names as rules report them, made once per key and transaction.
    tx_names: std::cell::RefCell<Map<Box<str>, Arc<str>>>,
    removed_ids: Vec<IdRange>,
    removed_tags: Set<String>,
    removed_targets: Vec<(TargetRule, Variable, Option<regex::bytes::Regex>)>,
    matched_var: (String, Vec<u8>),
    matched_vars: Pairs,
    /// Transformation results: (variable name, value, chain length) → value.
    cache: Map<u64, CacheEntry>,
    hasher: foldhash::fast::RandomState,
    matched: Vec<Matched>,
    interruption: Option<Interruption>,
    /// In `DetectionOnly`, the refusal the first disruptive rule would have made.
    would_interrupt: Option<Interruption>,
    /// The persistent collections and the transaction's clock (milliseconds).
    persist: Option<(Arc<crate::persist::Store>, u64)>,
    /// The record each persistent collection was opened on (`initcol`).
    opened: Map<Collection, String>,
    /// The prefilter's literals seen per (group, collection), for the current phase.
    found: Map<(usize, Collection), Vec<u64>>,
    allowed: Option<AllowScope>,
    body_processor: Option<String>,
    force_body_variable: bool,
}

#[derive(Debug)]
enum TargetRule {
    Ids(Vec<IdRange>),
    Tag(String),
}

/// Splits `a=1&b=2` into decoded pairs (`+` and `%XX`, as ModSecurity's argument parser).
pub fn parse_urlencoded(s: &[u8]) -> Pairs {
    s.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|b| *b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &p[p.len()..]),
            };
            let dec = |x: &[u8]| crate::transform::apply(Transform::UrlDecode, x).into_owned();
            (String::from_utf8_lossy(&dec(k)).into_owned(), dec(v))
        })
        .collect()
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl Transaction {
    /// Starts a transaction: the request head's variables are computed here.
    pub fn new(rules: Arc<Ruleset>, request: Request) -> Self {
        let mut collections: Map<Collection, Pairs> = Map::default();
        let mut scalars: Map<Collection, Vec<u8>> = Map::default();
        let (path, query) = match request.uri.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (request.uri.clone(), String::new()),
        };
        // An absolute-form target (`http://host/path`, not `/get/https://host/`): the path
        // starts after the authority.
        let absolute = if path.starts_with('/') {
            None
        } else {
            path.find("://")
        };
        let path = match absolute {
            Some(i) => path[i + 3..]
                .find('/')
                .map_or_else(|| "/".to_owned(), |j| path[i + 3 + j..].to_owned()),
            None => path,
        };
        let args_get = parse_urlencoded(query.as_bytes());
        let headers: Pairs = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut cookies = Pairs::new();
        for (k, v) in &request.headers {
            if k.eq_ignore_ascii_case("cookie") {
                for part in v.split(|b| *b == b';') {
                    let part = part.trim_ascii();
                    if part.is_empty() {
                        continue;
                    }
                    let (n, val) = match part.iter().position(|b| *b == b'=') {
                        Some(i) => (&part[..i], &part[i + 1..]),
                        None => (part, &part[part.len()..]),
                    };
                    cookies.push((String::from_utf8_lossy(n).into_owned(), val.to_vec()));
                }
            }
        }
        let filename = crate::transform::apply(Transform::UrlDecode, path.as_bytes()).into_owned();
        let basename = filename
            .rsplit(|b| *b == b'/')
            .next()
            .unwrap_or(&[])
            .to_vec();
        scalars.insert(
            Collection::RequestMethod,
            request.method.clone().into_bytes(),
        );
        scalars.insert(
            Collection::RequestProtocol,
            request.protocol.clone().into_bytes(),
        );
        scalars.insert(Collection::RequestUriRaw, request.uri.clone().into_bytes());
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        scalars.insert(Collection::RequestUri, uri.into_bytes());
        scalars.insert(Collection::RequestFilename, filename);
        scalars.insert(Collection::RequestBasename, basename);
        scalars.insert(Collection::QueryString, query.into_bytes());
        scalars.insert(
            Collection::RequestLine,
            format!("{} {} {}", request.method, request.uri, request.protocol).into_bytes(),
        );
        if let Some(ip) = request.remote_addr {
            scalars.insert(Collection::RemoteAddr, ip.to_string().into_bytes());
        }
        scalars.insert(Collection::UniqueId, request.unique_id.clone().into_bytes());
        scalars.insert(Collection::ReqbodyError, b"0".to_vec());
        collections.insert(Collection::ArgsGet, args_get);
        collections.insert(Collection::ArgsPost, Pairs::new());
        collections.insert(Collection::RequestHeaders, headers);
        collections.insert(Collection::RequestCookies, cookies);
        let mut t = Self {
            engine: rules.engine,
            rules,
            request,
            collections,
            views: std::cell::RefCell::new(Map::default()),
            scalars,
            // Sized for the CRS (its setup and counters hold about a hundred TX variables; a
            // transaction caches a few hundred transformed values): no rehash on the way.
            tx: Map::with_capacity_and_hasher(128, Default::default()),
            tx_names: std::cell::RefCell::new(Map::default()),
            removed_ids: Vec::new(),
            removed_tags: Set::default(),
            removed_targets: Vec::new(),
            matched_var: (String::new(), Vec::new()),
            matched_vars: Pairs::new(),
            cache: Map::with_capacity_and_hasher(512, Default::default()),
            hasher: foldhash::fast::RandomState::default(),
            matched: Vec::new(),
            interruption: None,
            would_interrupt: None,
            persist: None,
            opened: Map::default(),
            found: Map::with_capacity_and_hasher(64, Default::default()),
            allowed: None,
            body_processor: None,
            force_body_variable: false,
        };
        // The body processor is known from the head (CRS checks REQBODY_PROCESSOR in phase
        // 1): by content type, as ModSecurity's recommended configuration chooses it (its
        // rules 200000 and 200001 pick XML and JSON).
        let ct = t
            .request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
            .unwrap_or_default();
        let processor = if ct.starts_with("multipart/form-data") {
            Some("MULTIPART")
        } else if ct.starts_with("application/x-www-form-urlencoded") {
            Some("URLENCODED")
        } else if ct.starts_with("application/json") || ct.contains("+json") {
            Some("JSON")
        } else if ct.starts_with("text/xml")
            || ct.starts_with("application/xml")
            || ct.contains("+xml")
        {
            Some("XML")
        } else {
            None
        };
        if let Some(p) = processor {
            t.scalars
                .insert(Collection::ReqbodyProcessor, p.as_bytes().to_vec());
        }
        t.refresh_args();
        t
    }

    /// Gives the request body (before phase 2): parsed by the processor `ctl` chose, or by
    /// its content type (form, JSON); `REQUEST_BODY` holds it as sent.
    pub fn request_body(&mut self, body: &[u8]) {
        if !self.rules.request_body_access {
            return;
        }
        let ct = self
            .request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let processor = self.body_processor.clone().or_else(|| {
            self.scalars
                .get(&Collection::ReqbodyProcessor)
                .map(|p| String::from_utf8_lossy(p).into_owned())
        });
        // REQUEST_BODY holds the body only for the URLENCODED processor or when forced
        // (ModSecurity's rule); its length always.
        if processor.as_deref() == Some("URLENCODED") || self.force_body_variable {
            self.scalars.insert(Collection::RequestBody, body.to_vec());
        }
        self.scalars.insert(
            Collection::RequestBodyLength,
            body.len().to_string().into_bytes(),
        );
        match processor.as_deref() {
            Some("URLENCODED") => {
                self.set_collection(Collection::ArgsPost, parse_urlencoded(body));
            }
            Some("JSON") => match serde_json_lite(body) {
                Some(pairs) => {
                    self.set_collection(Collection::ArgsPost, pairs);
                }
                None => {
                    self.scalars.insert(Collection::ReqbodyError, b"1".to_vec());
                    self.scalars
                        .insert(Collection::ReqbodyErrorMsg, b"JSON parsing error".to_vec());
                }
            },
            Some("MULTIPART") => self.multipart(&ct, body),
            Some("XML") => match xml_values(body) {
                Some(pairs) => {
                    self.set_collection(Collection::Xml, pairs);
                }
                None => {
                    self.scalars.insert(Collection::ReqbodyError, b"1".to_vec());
                    self.scalars
                        .insert(Collection::ReqbodyErrorMsg, b"XML parsing error".to_vec());
                }
            },
            _ => {}
        }
        if let Some(p) = processor {
            self.scalars
                .insert(Collection::ReqbodyProcessor, p.into_bytes());
        }
        self.refresh_args();
    }

    /// Gives the response head (before phase 3): `RESPONSE_STATUS`, `RESPONSE_PROTOCOL`,
    /// `STATUS_LINE`, `RESPONSE_HEADERS(_NAMES)`, `RESPONSE_CONTENT_TYPE`,
    /// `RESPONSE_CONTENT_LENGTH`.
    pub fn response_head(&mut self, status: u16, protocol: &str, headers: Vec<(String, Vec<u8>)>) {
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let ct = find("content-type").unwrap_or_default();
        let len = find("content-length").unwrap_or_default();
        self.scalars
            .insert(Collection::ResponseStatus, status.to_string().into_bytes());
        self.scalars
            .insert(Collection::ResponseProtocol, protocol.as_bytes().to_vec());
        self.scalars.insert(
            Collection::StatusLine,
            format!("{protocol} {status}").into_bytes(),
        );
        self.scalars.insert(Collection::ResponseContentType, ct);
        self.scalars.insert(Collection::ResponseContentLength, len);
        self.set_collection(Collection::ResponseHeaders, headers);
    }

    /// Gives the response body (before phase 4), when `SecResponseBodyAccess` is on and its
    /// media type is one `SecResponseBodyMimeType` lists.
    pub fn response_body(&mut self, body: &[u8]) {
        if !self.rules.response_body_access {
            return;
        }
        let ct = self
            .scalars
            .get(&Collection::ResponseContentType)
            .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
            .unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or("").trim().to_owned();
        let types = &self.rules.response_mime_types;
        if !types.is_empty() && !types.iter().any(|t| t.eq_ignore_ascii_case(&essence)) {
            return;
        }
        self.scalars.insert(Collection::ResponseBody, body.to_vec());
    }

    fn multipart(&mut self, content_type: &str, body: &[u8]) {
        let Some((boundary, mut flags)) = crate::multipart::boundary(content_type) else {
            self.scalars.insert(Collection::ReqbodyError, b"1".to_vec());
            self.scalars.insert(
                Collection::ReqbodyErrorMsg,
                b"multipart: no boundary in the content type".to_vec(),
            );
            self.scalars
                .insert(Collection::MultipartStrictError, b"1".to_vec());
            return;
        };
        let m = crate::multipart::parse(body, &boundary);
        flags.extend(m.flags.iter().copied());
        if let Some(e) = &m.error {
            self.scalars.insert(Collection::ReqbodyError, b"1".to_vec());
            self.scalars
                .insert(Collection::ReqbodyErrorMsg, e.clone().into_bytes());
        }
        let flag = |c: Collection, on: bool| (c, if on { b"1".to_vec() } else { b"0".to_vec() });
        let has = |n: &str| flags.contains(&n);
        for (c, v) in [
            flag(
                Collection::MultipartBoundaryQuoted,
                has("MULTIPART_BOUNDARY_QUOTED"),
            ),
            flag(
                Collection::MultipartBoundaryWhitespace,
                has("MULTIPART_BOUNDARY_WHITESPACE"),
            ),
            flag(
                Collection::MultipartDataBefore,
                has("MULTIPART_DATA_BEFORE"),
            ),
            flag(Collection::MultipartDataAfter, has("MULTIPART_DATA_AFTER")),
            flag(
                Collection::MultipartHeaderFolding,
                has("MULTIPART_HEADER_FOLDING"),
            ),
            flag(Collection::MultipartLfLine, has("MULTIPART_LF_LINE")),
            flag(
                Collection::MultipartMissingSemicolon,
                has("MULTIPART_MISSING_SEMICOLON"),
            ),
            flag(
                Collection::MultipartInvalidQuoting,
                has("MULTIPART_INVALID_QUOTING"),
            ),
            flag(
                Collection::MultipartInvalidPart,
                has("MULTIPART_INVALID_PART"),
            ),
            flag(
                Collection::MultipartUnmatchedBoundary,
                has("MULTIPART_UNMATCHED_BOUNDARY"),
            ),
            flag(
                Collection::MultipartStrictError,
                !flags.is_empty() || m.error.is_some(),
            ),
        ] {
            self.scalars.insert(c, v);
        }
        let size: usize = m.files.iter().map(|f| f.2).sum();
        self.scalars
            .insert(Collection::FilesCombinedSize, size.to_string().into_bytes());
        self.set_collection(Collection::ArgsPost, m.fields);
        self.set_collection(
            Collection::Files,
            m.files
                .iter()
                .map(|(n, f, _)| (n.clone(), f.clone().into_bytes()))
                .collect(),
        );
        self.set_collection(
            Collection::FilesSizes,
            m.files
                .iter()
                .map(|(n, _, s)| (n.clone(), s.to_string().into_bytes()))
                .collect(),
        );
        self.set_collection(Collection::MultipartPartHeaders, m.part_headers);
    }

    fn set_collection(&mut self, c: Collection, pairs: Pairs) {
        self.collections.insert(c, pairs);
        self.views.get_mut().clear();
        self.found.clear();
    }

    /// Whether a prefiltered rule's first link may match: one of its literals was seen in one
    /// of its collections (see [`crate::prefilter`]).
    fn may_match(&mut self, pf: &crate::prefilter::RulePrefilter) -> bool {
        for c in &pf.collections {
            let key = (pf.group, *c);
            if !self.found.contains_key(&key) {
                let bits = self.literals_seen(pf.group, *c);
                self.found.insert(key, bits);
            }
            if self
                .found
                .get(&key)
                .is_some_and(|b| crate::prefilter::intersects(b, &pf.literals))
            {
                return true;
            }
        }
        false
    }

    /// The literals of a prefilter group seen in a collection's values, transformed by the
    /// group's chain (computed once per phase).
    fn literals_seen(&mut self, g: usize, c: Collection) -> Vec<u64> {
        let rules = self.rules.clone();
        let Some(group) = rules.prefilter_groups.get(g).and_then(Option::as_ref) else {
            // No automaton: every rule of the group may match.
            return vec![u64::MAX; 1 << 10];
        };
        let mut bits = vec![0u64; group.patterns.div_ceil(64)];
        let mut scan = |t: &mut Self, v: &Arc<[u8]>| match t.transformed(v, &group.chain) {
            Some(x) => crate::prefilter::scan(group, &x, &mut bits),
            None => crate::prefilter::scan(group, v, &mut bits),
        };
        match self.view(c) {
            Some(view) => {
                for (_, _, v) in view.iter() {
                    scan(self, v);
                }
            }
            None => {
                if let Some(v) = self.scalars.get(&c) {
                    let v: Arc<[u8]> = Arc::from(v.as_slice());
                    scan(self, &v);
                }
            }
        }
        bits
    }

    /// A collection's view (built on first use since the last change). For a `_NAMES`
    /// collection, the values are the keys of its source.
    fn view(&self, c: Collection) -> Option<Arc<View>> {
        if let Some(v) = self.views.borrow().get(&c) {
            return Some(v.clone());
        }
        let (source, names) = match c {
            Collection::ArgsNames => (Collection::Args, true),
            Collection::ArgsGetNames => (Collection::ArgsGet, true),
            Collection::ArgsPostNames => (Collection::ArgsPost, true),
            Collection::RequestHeadersNames => (Collection::RequestHeaders, true),
            Collection::RequestCookiesNames => (Collection::RequestCookies, true),
            Collection::ResponseHeadersNames => (Collection::ResponseHeaders, true),
            Collection::FilesNames => (Collection::Files, true),
            c => (c, false),
        };
        let pairs = self.collections.get(&source)?;
        let prefix = c.as_str();
        let view: View = pairs
            .iter()
            .map(|(k, v)| {
                let value: Arc<[u8]> = if names {
                    Arc::from(k.as_bytes())
                } else {
                    Arc::from(v.as_slice())
                };
                (
                    Arc::from(k.as_str()),
                    Arc::from(format!("{prefix}:{k}")),
                    value,
                )
            })
            .collect();
        let view = Arc::new(view);
        self.views.borrow_mut().insert(c, view.clone());
        Some(view)
    }

    fn refresh_args(&mut self) {
        let get = self
            .collections
            .get(&Collection::ArgsGet)
            .cloned()
            .unwrap_or_default();
        let post = self
            .collections
            .get(&Collection::ArgsPost)
            .cloned()
            .unwrap_or_default();
        let mut all = get;
        all.extend(post.iter().cloned());
        let size: usize = all.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.scalars
            .insert(Collection::ArgsCombinedSize, size.to_string().into_bytes());
        self.set_collection(Collection::Args, all);
    }

    /// Gives the transaction the persistent collections (`IP`, `GLOBAL`…) and its clock:
    /// without them, `initcol` opens nothing and `setvar` on those collections does nothing.
    pub fn set_persistence(&mut self, store: Arc<crate::persist::Store>, now_ms: u64) {
        self.persist = Some((store, now_ms));
    }

    /// `initcol`: the record `key` of collection `c`, read into the transaction.
    fn open_collection(&mut self, c: Collection, key: String) {
        let Some((store, now)) = &self.persist else {
            return;
        };
        let pairs = store.load(c, &key, *now);
        self.opened.insert(c, key);
        self.set_collection(c, pairs);
    }

    /// `setvar` on a persistent collection: the transaction's copy and the store.
    fn set_persistent(&mut self, c: Collection, var: String, value: Option<Vec<u8>>) {
        let (Some((store, now)), Some(key)) = (&self.persist, self.opened.get(&c)) else {
            return;
        };
        store.set(c, key, &var, value.clone(), *now);
        let mut pairs = self.collections.remove(&c).unwrap_or_default();
        pairs.retain(|(k, _)| *k != var);
        if let Some(v) = value {
            pairs.push((var, v));
        }
        self.set_collection(c, pairs);
    }

    /// The rules that matched so far.
    pub fn matched(&self) -> &[Matched] {
        &self.matched
    }

    /// The refusal, once a rule decided one.
    pub fn interruption(&self) -> Option<&Interruption> {
        self.interruption.as_ref()
    }

    /// In `DetectionOnly`, the refusal the first disruptive rule would have made (ModSecurity
    /// logs it as a warning and goes on).
    pub fn would_interrupt(&self) -> Option<&Interruption> {
        self.would_interrupt.as_ref()
    }

    /// A transaction variable (`tx.inbound_anomaly_score_pl1`).
    pub fn tx(&self, key: &str) -> Option<&[u8]> {
        self.tx.get(&lower(key)).map(|v| &**v)
    }

    /// Runs the rules of a phase (1 to 5); returns the refusal if there is one.
    pub fn phase(&mut self, phase: u8) -> Option<&Interruption> {
        // The logging phase runs after a refusal too, as in ModSecurity.
        if self.engine == EngineMode::Off || (self.interruption.is_some() && phase != 5) {
            return self.interruption.as_ref();
        }
        if matches!(self.allowed, Some(AllowScope::All))
            || (matches!(self.allowed, Some(AllowScope::Request)) && phase <= 2)
        {
            return None;
        }
        if matches!(self.allowed, Some(AllowScope::Phase)) {
            self.allowed = None;
        }
        // Bodies and responses arrive between phases: what the prefilter saw is redone.
        self.found.clear();
        let rules = self.rules.clone();
        let mut i = 0;
        while i < rules.rules.len() {
            let rule = &rules.rules[i];
            i += 1;
            if rule.phase != phase || self.removed(rule) {
                continue;
            }
            // A rule none of whose literals is in its collections cannot match: skipped as
            // if evaluated without a match.
            if let Some(pf) = &rule.prefilter {
                if !self.may_match(pf) {
                    self.matched_vars.clear();
                    continue;
                }
            }
            if !self.evaluate(rule) {
                continue;
            }
            // Flow control.
            let mut skip_to = None;
            for a in &rule.links[0].actions {
                match a {
                    Action::SkipAfter(m) => skip_to = rules.markers.get(m).copied(),
                    Action::Skip(n) => {
                        // The next `n` rules of this phase.
                        let mut left = *n;
                        while left > 0 && i < rules.rules.len() {
                            if rules.rules[i].phase == phase {
                                left -= 1;
                            }
                            i += 1;
                        }
                    }
                    _ => {}
                }
            }
            match rule.disruptive {
                Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect => {
                    let refusal = Interruption {
                        rule: rule.id,
                        status: rule.status.unwrap_or(403),
                        action: rule.disruptive,
                    };
                    if self.engine == EngineMode::On && phase != 5 {
                        self.interruption = Some(refusal);
                        return self.interruption.as_ref();
                    }
                    if self.would_interrupt.is_none() {
                        self.would_interrupt = Some(refusal);
                    }
                }
                Disruptive::Allow => {
                    let scope = rule.links[0].actions.iter().find_map(|a| match a {
                        Action::Allow(s) => Some(*s),
                        _ => None,
                    });
                    self.allowed = scope;
                    return None;
                }
                Disruptive::Pass | Disruptive::Block => {}
            }
            if let Some(to) = skip_to {
                i = i.max(to);
            }
        }
        None
    }

    fn removed(&self, rule: &CompiledRule) -> bool {
        self.removed_ids.iter().any(|r| r.contains(rule.id))
            || rule.tags.iter().any(|t| self.removed_tags.contains(t))
    }

    /// Evaluates a rule's chain; on a match runs its actions and records it.
    fn evaluate(&mut self, rule: &CompiledRule) -> bool {
        self.matched_vars.clear();
        // A link's non-disruptive actions run for each value it matches, as soon as it
        // matches (ModSecurity v3 and Coraza): a chained rule may read what the link before
        // set (CRS 931130 sets `tx.rfi_parameter_*`, then inspects it), and a rule can
        // collect every match (CRS 922150 collects each part's content type).
        for link in &rule.links {
            if !self.evaluate_link(rule, link) {
                return false;
            }
        }
        if rule.log {
            let msg = rule
                .msg
                .as_deref()
                .map(|m| self.expand(m))
                .unwrap_or_default();
            let logdata = rule
                .logdata
                .as_deref()
                .map(|m| self.expand(m))
                .unwrap_or_default();
            self.matched.push(Matched {
                id: rule.id,
                phase: rule.phase,
                msg,
                logdata,
                var: self.matched_var.0.clone(),
            });
        }
        true
    }

    fn evaluate_link(&mut self, rule: &CompiledRule, link: &Link) -> bool {
        // `SecAction` has no variables: its operator runs once, on nothing.
        let values: Vec<Value> = if link.variables.is_empty() {
            vec![(Arc::from(""), Arc::from(&b""[..]))]
        } else {
            self.values(rule, link)
        };
        let multi = link.multi_match;
        let mut hit = false;
        for (name, value) in values {
            // The value tested last is what MATCHED_VAR holds (transformed, as ModSecurity
            // logs it and as chained rules on MATCHED_VARS expect).
            let (result, tested) = if multi {
                // Each stage of the chain is tested, the untransformed value first.
                let expand = |p: &str| self.expand(p);
                let mut cur = value.to_vec();
                let mut result = link.operator.test(&cur, &expand, link.capture);
                for t in link.transforms.iter() {
                    if result.is_some() {
                        break;
                    }
                    cur = crate::transform::apply(*t, &cur).into_owned();
                    result = link.operator.test(&cur, &expand, link.capture);
                }
                (result, cur)
            } else {
                let transformed = self.transformed(&value, &link.transforms);
                let tested: &[u8] = transformed.as_deref().unwrap_or(&value);
                let expand = |p: &str| self.expand(p);
                let result = link.operator.test(tested, &expand, link.capture);
                // The tested value is only kept (for MATCHED_VAR) when it matched.
                let kept = if result.is_some() {
                    tested.to_vec()
                } else {
                    Vec::new()
                };
                (result, kept)
            };
            let value = tested;
            if let Some(caps) = result {
                hit = true;
                if link.capture {
                    for (k, c) in caps.iter().enumerate() {
                        self.tx.insert(k.to_string(), Arc::from(c.as_slice()));
                    }
                }
                self.matched_var = (name.to_string(), value.clone());
                self.matched_vars.push((name.to_string(), value));
                self.run_actions(&link.actions);
            }
        }
        hit
    }

    /// A value through a transformation chain, cached for the transaction by (value, chain):
    /// `None` when the chain is empty (the value itself is tested). Chains are shared by the
    /// rule set, so one is known by its address; a hit costs one hash of the value and one
    /// comparison, no allocation, and a miss copies nothing the caller already shares.
    fn transformed(&mut self, value: &Arc<[u8]>, chain: &Arc<[Transform]>) -> Option<Arc<[u8]>> {
        use std::hash::{BuildHasher, Hash, Hasher};
        if chain.is_empty() {
            return None;
        }
        let mut h = self.hasher.build_hasher();
        value.hash(&mut h);
        (Arc::as_ptr(chain).cast::<Transform>() as usize).hash(&mut h);
        let key = h.finish();
        if let Some(e) = self.cache.get(&key) {
            if Arc::ptr_eq(&e.chain, chain) && (Arc::ptr_eq(&e.value, value) || e.value == *value) {
                return Some(e.result.clone());
            }
        }
        // A transformation that changes nothing borrows: no copy until one does.
        let mut cur: Cow<'_, [u8]> = Cow::Borrowed(value);
        for t in chain.iter() {
            if let Cow::Owned(next) = crate::transform::apply(*t, &cur) {
                cur = Cow::Owned(next);
            }
        }
        let result: Arc<[u8]> = match cur {
            Cow::Borrowed(_) => value.clone(),
            Cow::Owned(v) => Arc::from(v),
        };
        // One entry per key: a (rare) collision is computed again rather than cached.
        self.cache.entry(key).or_insert_with(|| CacheEntry {
            value: value.clone(),
            chain: chain.clone(),
            result: result.clone(),
        });
        Some(result)
    }

    /// The (name, value) pairs a link inspects, exclusions applied.
    fn values(&self, rule: &CompiledRule, link: &Link) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::with_capacity(8);
        let owned = |n: String, v: Vec<u8>| -> Value { (Arc::from(n), Arc::from(v)) };
        // Exclusions: the link's own (`!ARGS:x`, regexes compiled with the rule set) and those
        // `ctl` added for this rule (regexes compiled when the `ctl` ran).
        let matches_key =
            |sel: &Option<Selector>, re: Option<&regex::bytes::Regex>, key: &str| match (sel, re) {
                (Some(Selector::Key(k)), _) => k.eq_ignore_ascii_case(key),
                (Some(Selector::Regex(_)), Some(re)) => re.is_match(key.as_bytes()),
                (Some(Selector::Regex(_)), None) => false,
                (None, _) => true,
            };
        let excluded = |v: &Variable, key: &str| {
            let own = link.variables.iter().enumerate().any(|(i, x)| {
                x.exclude
                    && x.collection == v.collection
                    && matches_key(
                        &x.selector,
                        link.selectors.get(i).and_then(Option::as_ref),
                        key,
                    )
            });
            own || self.removed_targets.iter().any(|(t, x, re)| {
                let applies = match t {
                    TargetRule::Ids(r) => r.iter().any(|r| r.contains(rule.id)),
                    TargetRule::Tag(tag) => rule.tags.iter().any(|y| y == tag),
                };
                applies
                    && x.collection == v.collection
                    && matches_key(&x.selector, re.as_ref(), key)
            })
        };
        for (k, v) in link.variables.iter().enumerate() {
            if v.exclude {
                continue;
            }
            let selector_re = link.selectors.get(k).and_then(Option::as_ref);
            let keep = |key: &str| match (&v.selector, selector_re) {
                (Some(Selector::Key(s)), _) => s.eq_ignore_ascii_case(key),
                (Some(Selector::Regex(_)), Some(re)) => re.is_match(key.as_bytes()),
                _ => true,
            };
            let name = v.collection.as_str();
            let start = out.len();
            match v.collection {
                Collection::Tx => match &v.selector {
                    // One key (the common case, `TX:blocking_paranoia_level`): looked up, not
                    // searched for.
                    // (The rule set lowercases TX keys when it compiles.)
                    Some(Selector::Key(k)) => {
                        if let Some(val) = self.tx.get(k.as_str()) {
                            if !excluded(v, k) {
                                out.push((self.tx_name(k), val.clone()));
                            }
                        }
                    }
                    _ => {
                        for (key, val) in &self.tx {
                            if keep(key) && !excluded(v, key) {
                                out.push((self.tx_name(key), val.clone()));
                            }
                        }
                    }
                },
                Collection::MatchedVars => {
                    for (n, val) in &self.matched_vars {
                        if keep(n) {
                            out.push(owned(n.clone(), val.clone()));
                        }
                    }
                }
                Collection::MatchedVarsNames => {
                    for (n, _) in &self.matched_vars {
                        out.push(owned(n.clone(), n.clone().into_bytes()));
                    }
                }
                Collection::MatchedVar => out.push(owned(
                    self.matched_var.0.clone(),
                    self.matched_var.1.clone(),
                )),
                Collection::MatchedVarName => out.push(owned(
                    "MATCHED_VAR_NAME".into(),
                    self.matched_var.0.clone().into_bytes(),
                )),
                c => {
                    if let Some(view) = self.view(c) {
                        for (key, full, val) in view.iter() {
                            if keep(key) && !excluded(v, key) {
                                out.push((full.clone(), val.clone()));
                            }
                        }
                    } else if !is_collection(c) && !excluded(v, "") {
                        // A single variable always has a value, empty when unset (CRS 901340
                        // tests REQBODY_PROCESSOR before any processor is chosen). A `ctl`
                        // may have removed it from the rule (CRS 941010 removes
                        // REQUEST_FILENAME from the XSS rules when it holds no special byte).
                        let val = self.scalars.get(&c).cloned().unwrap_or_default();
                        out.push(owned(name.to_owned(), val));
                    }
                }
            }
            if v.count {
                let n = out.len() - start;
                out.truncate(start);
                out.push(owned(format!("&{name}"), n.to_string().into_bytes()));
            }
        }
        out
    }

    /// The name `TX:key` (key lowercased), shared.
    fn tx_name(&self, key: &str) -> Arc<str> {
        let mut names = self.tx_names.borrow_mut();
        if let Some(n) = names.get(key) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(format!("TX:{key}"));
        names.insert(Box::from(key), n.clone());
        n
    }

    fn run_actions(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::SetVar(sv) if sv.collection != Collection::Tx => {
                    let var = lower(&self.expand(&sv.key));
                    let current = self
                        .collections
                        .get(&sv.collection)
                        .and_then(|p| p.iter().find(|(k, _)| *k == var))
                        .map(|(_, v)| v.clone());
                    let value = match &sv.op {
                        SetVarOp::Delete => None,
                        SetVarOp::Set(v) => Some(self.expand(v).into_bytes()),
                        SetVarOp::Add(v) | SetVarOp::Sub(v) => {
                            let cur = current.as_deref().map_or(0, crate::operator::atoi);
                            let n = crate::operator::atoi(self.expand(v).as_bytes());
                            let new = if matches!(sv.op, SetVarOp::Add(_)) {
                                cur.saturating_add(n)
                            } else {
                                cur.saturating_sub(n)
                            };
                            Some(new.to_string().into_bytes())
                        }
                    };
                    self.set_persistent(sv.collection, var, value);
                }
                Action::InitCol(c, key) => {
                    let key = self.expand(key);
                    self.open_collection(*c, key);
                }
                Action::ExpireVar(name, secs) => {
                    let name = lower(&self.expand(name));
                    let secs = crate::operator::atoi(self.expand(secs).as_bytes()).max(0);
                    let Some((col, var)) = name.split_once('.') else {
                        continue;
                    };
                    let Some(c) = Collection::from_name(col) else {
                        continue;
                    };
                    if let (Some((store, now)), Some(key)) = (&self.persist, self.opened.get(&c)) {
                        let at = now.saturating_add(u64::try_from(secs).unwrap_or(0) * 1000);
                        store.expire(c, key, var, at);
                    }
                }
                Action::SetVar(sv) => {
                    let key = lower(&self.expand(&sv.key));
                    match &sv.op {
                        SetVarOp::Delete => {
                            self.tx.remove(&key);
                        }
                        SetVarOp::Set(v) => {
                            let v = self.expand(v).into_bytes();
                            self.tx.insert(key, Arc::from(v));
                        }
                        SetVarOp::Add(v) | SetVarOp::Sub(v) => {
                            let cur = self.tx.get(&key).map_or(0, |c| crate::operator::atoi(c));
                            let n = crate::operator::atoi(self.expand(v).as_bytes());
                            let new = if matches!(sv.op, SetVarOp::Add(_)) {
                                cur.saturating_add(n)
                            } else {
                                cur.saturating_sub(n)
                            };
                            self.tx.insert(key, Arc::from(new.to_string().into_bytes()));
                        }
                    }
                }
                Action::Ctl(c) => match c {
                    Ctl::RuleEngine(m) => self.engine = *m,
                    Ctl::RuleRemoveById(r) => self.removed_ids.extend(r.iter().copied()),
                    Ctl::RuleRemoveByTag(t) => {
                        self.removed_tags.insert(t.clone());
                    }
                    Ctl::RuleRemoveTargetById(r, vars) => {
                        for v in vars {
                            let mut v = v.clone();
                            v.exclude = true;
                            let re = key_regex(&v);
                            self.removed_targets
                                .push((TargetRule::Ids(r.clone()), v, re));
                        }
                    }
                    Ctl::RuleRemoveTargetByTag(t, vars) => {
                        for v in vars {
                            let mut v = v.clone();
                            v.exclude = true;
                            let re = key_regex(&v);
                            self.removed_targets
                                .push((TargetRule::Tag(t.clone()), v, re));
                        }
                    }
                    Ctl::RequestBodyProcessor(p) => {
                        self.body_processor = Some(p.clone());
                        self.scalars
                            .insert(Collection::ReqbodyProcessor, p.clone().into_bytes());
                    }
                    Ctl::ForceRequestBodyVariable(on) => self.force_body_variable = *on,
                    Ctl::RequestBodyAccess(_) | Ctl::AuditEngine(_) | Ctl::AuditLogParts(_) => {}
                },
                _ => {}
            }
        }
    }

    /// Expands `%{TX.x}`, `%{MATCHED_VAR}`, `%{REQUEST_HEADERS.host}` and the like.
    pub fn expand(&self, text: &str) -> String {
        if !text.contains("%{") {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("%{") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[i..]);
                return out;
            };
            out.push_str(&self.macro_value(&after[..end]));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn macro_value(&self, name: &str) -> String {
        let (col, key) = match name.split_once('.') {
            Some((c, k)) => (c, Some(k)),
            None => (name, None),
        };
        let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let Some(c) = Collection::from_name(col) else {
            return String::new();
        };
        match (c, key) {
            (Collection::Tx, Some(k)) => {
                self.tx.get(&lower(k)).map(|v| lossy(v)).unwrap_or_default()
            }
            (Collection::MatchedVar, _) => lossy(&self.matched_var.1),
            (Collection::MatchedVarName, _) => self.matched_var.0.clone(),
            (c, Some(k)) => self
                .collections
                .get(&c)
                .and_then(|p| p.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
                .map(|(_, v)| lossy(v))
                .unwrap_or_default(),
            (c, None) => self.scalars.get(&c).map(|v| lossy(v)).unwrap_or_default(),
        }
    }
}

/// A JSON body flattened into arguments the way ModSecurity v2 (Apache, for which the CRS
/// tests are written) names them: `json.a.b`, and every element of an array under the array's
/// own name (`json.roles` for each of `{"roles":["a","b"]}`); `None` when it is not JSON.
fn serde_json_lite(body: &[u8]) -> Option<Pairs> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Pairs) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    walk(&format!("{prefix}.{k}"), v, out);
                }
            }
            serde_json::Value::Array(a) => {
                for v in a {
                    walk(prefix, v, out);
                }
            }
            serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone().into_bytes())),
            serde_json::Value::Null => out.push((prefix.to_owned(), Vec::new())),
            other => out.push((prefix.to_owned(), other.to_string().into_bytes())),
        }
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut out = Pairs::new();
    walk("json", &v, &mut out);
    Some(out)
}

/// An XML body as ModSecurity's `XML:/*` (every element's text) and `XML://@*` (every
/// attribute's value) see it; `None` when it is not well-formed XML.
fn xml_values(body: &[u8]) -> Option<Pairs> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut out = Pairs::new();
    let mut depth: usize = 0;
    let mut seen_root = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                depth += 1;
                seen_root = true;
                for a in e.attributes() {
                    out.push(("//@*".into(), attribute_value(&a.ok()?)));
                }
            }
            Event::Empty(e) => {
                seen_root = true;
                for a in e.attributes() {
                    out.push(("//@*".into(), attribute_value(&a.ok()?)));
                }
            }
            Event::Text(t) => {
                // Character and entity references decoded, as libxml2 gives the text.
                let text = match t.decode() {
                    Ok(d) => quick_xml::escape::unescape(&d)
                        .map(|u| u.into_owned().into_bytes())
                        .unwrap_or_else(|_| t.as_ref().to_vec()),
                    Err(_) => t.as_ref().to_vec(),
                };
                if !text.iter().all(u8::is_ascii_whitespace) {
                    if depth == 0 {
                        return None;
                    }
                    out.push(("/*".into(), text));
                }
            }
            Event::CData(t) => out.push(("/*".into(), t.into_inner().into_owned())),
            Event::End(_) => depth = depth.checked_sub(1)?,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    (seen_root && depth == 0).then_some(out)
}

/// Whether a variable is a collection of key-value pairs (absent means empty) rather than a
/// single value (absent means the empty string).
fn is_collection(c: Collection) -> bool {
    matches!(
        c,
        Collection::Args
            | Collection::ArgsGet
            | Collection::ArgsPost
            | Collection::RequestHeaders
            | Collection::RequestCookies
            | Collection::ResponseHeaders
            | Collection::Files
            | Collection::FilesSizes
            | Collection::FilesTmpNames
            | Collection::MultipartPartHeaders
            | Collection::Xml
            | Collection::Ip
            | Collection::Geo
            | Collection::Global
            | Collection::Session
            | Collection::User
            | Collection::Resource
            | Collection::Env
            | Collection::Rule
    )
}

/// An attribute's value with its references decoded (the raw value when they do not decode).
fn attribute_value(a: &quick_xml::events::attributes::Attribute<'_>) -> Vec<u8> {
    std::str::from_utf8(&a.value)
        .ok()
        .and_then(|v| quick_xml::escape::unescape(v).ok())
        .map_or_else(|| a.value.to_vec(), |u| u.into_owned().into_bytes())
}

/// The compiled key regex of a `ctl`-added exclusion (`ARGS:/^pass/`), compiled once.
fn key_regex(v: &Variable) -> Option<regex::bytes::Regex> {
    match &v.selector {
        Some(Selector::Regex(re)) => regex::bytes::RegexBuilder::new(re)
            .case_insensitive(true)
            .build()
            .ok(),
        _ => None,
    }
}
