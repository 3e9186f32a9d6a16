//! Live statistics for the admin plane, fed by every finished exchange: time series (the last
//! hour at 10 s, the last day at 5 min), traffic per API and operation, hits per rule, and the
//! top clients and consumers.
//!
//! Everything is in memory and bounded: the rings have a fixed number of buckets, the maps a
//! fixed number of keys. Recording takes one short lock and allocates only for a key seen for
//! the first time. Time comes from the gateway's clock, so a replay fills them as well.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rampart_core::{Finding, FindingAction, UnixMillis};
use serde::Serialize;

/// Buckets of the latency histogram: four per power of two of microseconds.
const LATENCY_BUCKETS: usize = 128;
/// Most keys in each map (traffic, rules, clients, consumers).
const MAX_KEYS: usize = 10_000;

/// A time window of the series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last hour, in 10 s buckets.
    Hour,
    /// The last day, in 5 min buckets.
    Day,
}

impl Window {
    /// Parses `hour` / `1h` or `day` / `24h`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" | "1h" => Some(Self::Hour),
            "day" | "24h" | "1d" => Some(Self::Day),
            _ => None,
        }
    }

    fn step_ms(self) -> u64 {
        match self {
            Self::Hour => 10_000,
            Self::Day => 300_000,
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Hour => 360,
            Self::Day => 288,
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    /// The bucket's start; `u64::MAX` when unused.
    start_ms: u64,
    requests: u64,
    blocked: u64,
    would_block: u64,
    upstream_errors: u64,
    by_stage: Vec<(Arc<str>, u64)>,
    by_reason: Vec<(Arc<str>, u64)>,
    latency: Box<[u32; LATENCY_BUCKETS]>,
}

impl Bucket {
    fn empty() -> Self {
        Self {
            start_ms: u64::MAX,
            requests: 0,
            blocked: 0,
            would_block: 0,
            upstream_errors: 0,
            by_stage: Vec::new(),
            by_reason: Vec::new(),
            latency: Box::new([0; LATENCY_BUCKETS]),
        }
    }

    fn reset(&mut self, start_ms: u64) {
        self.start_ms = start_ms;
        self.requests = 0;
        self.blocked = 0;
        self.would_block = 0;
        self.upstream_errors = 0;
        self.by_stage.clear();
        self.by_reason.clear();
        self.latency.fill(0);
    }
}

fn bump(list: &mut Vec<(Arc<str>, u64)>, key: &str) {
    match list.iter_mut().find(|(k, _)| &**k == key) {
        Some((_, n)) => *n += 1,
        None => list.push((Arc::from(key), 1)),
    }
}

#[derive(Debug)]
struct Ring {
    window: Window,
    buckets: Vec<Bucket>,
}

impl Ring {
    fn new(window: Window) -> Self {
        Self {
            window,
            buckets: vec![Bucket::empty(); window.len()],
        }
    }

    fn at(&mut self, now_ms: u64) -> &mut Bucket {
        let step = self.window.step_ms();
        let slot = now_ms / step;
        let start = slot * step;
        let i = (slot % self.buckets.len() as u64) as usize;
        let b = &mut self.buckets[i];
        if b.start_ms != start {
            b.reset(start);
        }
        b
    }
}

/// Where a latency falls: four buckets per power of two of microseconds.
fn latency_bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros() as usize;
    let sub = ((us >> (msb - 2)) & 3) as usize;
    (msb * 4 + sub).min(LATENCY_BUCKETS - 1)
}

/// The upper bound, in microseconds, of a latency bucket.
fn bucket_upper_us(i: usize) -> u64 {
    if i < 4 {
        return i as u64 + 1;
    }
    if i < 8 {
        // Not produced by `latency_bucket` (3 µs is bucket 3, 4 µs bucket 8).
        return 4;
    }
    let msb = i / 4;
    let sub = (i % 4) as u64;
    ((4 + sub + 1) << (msb - 2)).saturating_sub(1)
}

fn percentile_ms(hist: &[u32; LATENCY_BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = hist.iter().map(|&n| u64::from(n)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &n) in hist.iter().enumerate() {
        seen += u64::from(n);
        if seen >= rank {
            return Some(bucket_upper_us(i) as f64 / 1000.0);
        }
    }
    None
}

/// A bounded counter map: when full, every count is halved and the zeros go, so that the
/// heavy keys stay and a flood of new keys cannot grow it.
#[derive(Debug)]
struct TopK<K> {
    counts: HashMap<K, u64>,
}

impl<K: Hash + Eq + Clone> TopK<K> {
    fn new() -> Self {
        Self {
            counts: HashMap::new(),
        }
    }

    fn add(&mut self, key: &K, n: u64) -> &mut u64 {
        if !self.counts.contains_key(key) && self.counts.len() >= MAX_KEYS {
            self.counts.retain(|_, c| {
                *c /= 2;
                *c > 0
            });
        }
        let c = self.counts.entry(key.clone()).or_insert(0);
        *c += n;
        c
    }

    fn top(&self, n: usize) -> Vec<(K, u64)> {
        let mut v: Vec<(K, u64)> = self.counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.truncate(n);
        v
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    requests: u64,
    blocked: u64,
    would_block: u64,
}

#[derive(Debug, Default, Clone)]
struct RuleHits {
    hits: u64,
    blocks: u64,
    would_blocks: u64,
    last_ms: u64,
    last_action: &'static str,
}

#[derive(Debug)]
struct Inner {
    hour: Ring,
    day: Ring,
    traffic: HashMap<(Arc<str>, Option<Arc<str>>), Traffic>,
    rules: HashMap<(Arc<str>, Arc<str>), RuleHits>,
    clients: TopK<IpAddr>,
    blocked_clients: TopK<IpAddr>,
    consumers: TopK<Arc<str>>,
    limited: HashMap<(Arc<str>, String), (u64, u64)>,
    total: Traffic,
}

/// What the statistics need of a finished exchange.
#[derive(Debug)]
pub struct Record<'a> {
    /// When it finished.
    pub now_ms: UnixMillis,
    /// The API, when routed.
    pub api: Option<&'a Arc<str>>,
    /// The operation, when found.
    pub operation: Option<&'a Arc<str>>,
    /// The client.
    pub client_ip: IpAddr,
    /// The consumer, when authenticated.
    pub consumer: Option<&'a str>,
    /// Time from the request head to the end of the response.
    pub latency_us: u64,
    /// The upstream failed (connect, request or timeout).
    pub upstream_error: bool,
    /// The exchange's findings.
    pub findings: &'a [Finding],
}

/// The live statistics of a gateway.
#[derive(Debug)]
pub struct LiveStats {
    inner: Mutex<Inner>,
    started_ms: UnixMillis,
}

/// One point of a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The bucket's start.
    pub time_ms: u64,
    /// Requests finished.
    pub requests: u64,
    /// Requests blocked.
    pub blocked: u64,
    /// Requests a monitor-mode stage would have blocked.
    pub would_block: u64,
    /// Upstream failures.
    pub upstream_errors: u64,
    /// Latency percentiles in milliseconds (upper bounds of histogram buckets, within 19%).
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// A series: evenly spaced points, oldest first, plus blocks by stage and by reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    /// Bucket width.
    pub step_ms: u64,
    /// The points, oldest first; buckets with no traffic are zero.
    pub points: Vec<Point>,
    /// Blocks (and would-blocks) per stage, one count per point.
    pub blocks_by_stage: Vec<Named>,
    /// Blocks (and would-blocks) per reason code, one count per point.
    pub blocks_by_reason: Vec<Named>,
    /// Totals over the window.
    pub totals: Totals,
}

/// A named series of counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Named {
    /// The stage or reason.
    pub name: String,
    /// One count per point.
    pub counts: Vec<u64>,
    /// Their sum.
    pub total: u64,
}

/// Totals over a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// Blocked.
    pub blocked: u64,
    /// Would-block.
    pub would_block: u64,
    /// Upstream failures.
    pub upstream_errors: u64,
    /// Latency percentiles over the window.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// Traffic of an API operation since start.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficRow {
    /// The API (empty for requests no API matched).
    pub api: String,
    /// The operation, when one was found.
    pub operation: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Blocked.
    pub blocked: u64,
    /// Would-block (monitor mode).
    pub would_block: u64,
    /// `blocked / requests`.
    pub block_rate: f64,
}

/// Hits of one rule since start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRow {
    /// The stage.
    pub stage: String,
    /// The rule id.
    pub rule: String,
    /// Findings of this rule.
    pub hits: u64,
    /// Of which blocked.
    pub blocks: u64,
    /// Of which would have blocked (monitor mode).
    pub would_blocks: u64,
    /// The last finding's time.
    pub last_ms: u64,
    /// The last finding's action.
    pub last_action: String,
}

/// A client a rate limit refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitedRow {
    /// The rule.
    pub rule: String,
    /// The client address, with the consumer when there is one.
    pub key: String,
    /// Refusals counted.
    pub refusals: u64,
    /// The last refusal.
    pub last_ms: u64,
}

/// A top entry (client or consumer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopRow {
    /// The client address or consumer name.
    pub key: String,
    /// Requests (or blocks) counted, halved at each overflow of the bounded map.
    pub count: u64,
}

impl LiveStats {
    /// Empty statistics, started now.
    pub fn new(started_ms: UnixMillis) -> Self {
        Self {
            inner: Mutex::new(Inner {
                hour: Ring::new(Window::Hour),
                day: Ring::new(Window::Day),
                traffic: HashMap::new(),
                rules: HashMap::new(),
                clients: TopK::new(),
                blocked_clients: TopK::new(),
                consumers: TopK::new(),
                limited: HashMap::new(),
                total: Traffic::default(),
            }),
            started_ms,
        }
    }

    /// When the statistics started.
    pub fn started_ms(&self) -> UnixMillis {
        self.started_ms
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters, never broken invariants: go on.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a finished exchange.
    pub fn record(&self, r: &Record<'_>) {
        let blocked = r.findings.iter().any(|f| f.action == FindingAction::Block);
        let would_block = !blocked
            && r.findings
                .iter()
                .any(|f| f.action == FindingAction::WouldBlock);
        let lat = latency_bucket(r.latency_us);
        let mut g = self.lock();
        let inner = &mut *g;
        for ring in [&mut inner.hour, &mut inner.day] {
            let b = ring.at(r.now_ms);
            b.requests += 1;
            b.blocked += u64::from(blocked);
            b.would_block += u64::from(would_block);
            b.upstream_errors += u64::from(r.upstream_error);
            b.latency[lat] = b.latency[lat].saturating_add(1);
            for f in r.findings {
                if matches!(f.action, FindingAction::Block | FindingAction::WouldBlock) {
                    bump(&mut b.by_stage, f.stage.as_str());
                    bump(&mut b.by_reason, f.reason.code());
                }
            }
        }
        let key = (
            r.api.cloned().unwrap_or_else(|| Arc::from("")),
            r.operation.cloned(),
        );
        if inner.traffic.len() < MAX_KEYS || inner.traffic.contains_key(&key) {
            let t = inner.traffic.entry(key).or_default();
            t.requests += 1;
            t.blocked += u64::from(blocked);
            t.would_block += u64::from(would_block);
        }
        inner.total.requests += 1;
        inner.total.blocked += u64::from(blocked);
        inner.total.would_block += u64::from(would_block);
        for f in r.findings {
            let Some(rule) = &f.rule else { continue };
            let key = (Arc::from(f.stage.as_str()), Arc::from(rule.as_str()));
            if inner.rules.len() >= MAX_KEYS && !inner.rules.contains_key(&key) {
                continue;
            }
            let h = inner.rules.entry(key).or_default();
            h.hits += 1;
            h.blocks += u64::from(f.action == FindingAction::Block);
            h.would_blocks += u64::from(f.action == FindingAction::WouldBlock);
            h.last_ms = r.now_ms;
            h.last_action = f.action.as_str();
        }
        for f in r.findings {
            if f.reason != rampart_core::Reason::RateLimited {
                continue;
            }
            let rule: Arc<str> = f
                .rule
                .as_ref()
                .map_or_else(|| Arc::from(f.stage.as_str()), |r| Arc::from(r.as_str()));
            let key = match r.consumer {
                Some(c) => format!("{} ({c})", r.client_ip),
                None => r.client_ip.to_string(),
            };
            let k = (rule, key);
            if inner.limited.len() >= MAX_KEYS && !inner.limited.contains_key(&k) {
                let cutoff = r.now_ms.saturating_sub(3_600_000);
                inner.limited.retain(|_, (_, last)| *last >= cutoff);
                if inner.limited.len() >= MAX_KEYS {
                    continue;
                }
            }
            let e = inner.limited.entry(k).or_insert((0, 0));
            e.0 += 1;
            e.1 = r.now_ms;
        }
        inner.clients.add(&r.client_ip, 1);
        if blocked {
            inner.blocked_clients.add(&r.client_ip, 1);
        }
        if let Some(c) = r.consumer {
            let k: Arc<str> = Arc::from(c);
            inner.consumers.add(&k, 1);
        }
    }

    /// The series of a window ending at `now_ms`.
    pub fn series(&self, window: Window, now_ms: UnixMillis) -> Series {
        let step = window.step_ms();
        let n = window.len();
        let last = now_ms / step;
        let first = (last + 1).saturating_sub(n as u64);
        let g = self.lock();
        let ring = match window {
            Window::Hour => &g.hour,
            Window::Day => &g.day,
        };
        let mut points = Vec::with_capacity(n);
        let mut stages: Vec<Named> = Vec::new();
        let mut reasons: Vec<Named> = Vec::new();
        let mut all = [0u32; LATENCY_BUCKETS];
        let mut totals = Totals::default();
        let slots = (last + 1 - first) as usize;
        for (idx, slot) in (first..=last).enumerate() {
            let start = slot * step;
            let b = &ring.buckets[(slot % n as u64) as usize];
            if b.start_ms != start {
                points.push(Point {
                    time_ms: start,
                    requests: 0,
                    blocked: 0,
                    would_block: 0,
                    upstream_errors: 0,
                    p50_ms: None,
                    p90_ms: None,
                    p99_ms: None,
                });
                continue;
            }
            for (i, &c) in b.latency.iter().enumerate() {
                all[i] = all[i].saturating_add(c);
            }
            totals.requests += b.requests;
            totals.blocked += b.blocked;
            totals.would_block += b.would_block;
            totals.upstream_errors += b.upstream_errors;
            for (list, out) in [(&b.by_stage, &mut stages), (&b.by_reason, &mut reasons)] {
                for (name, c) in list {
                    let i = match out.iter().position(|x| x.name == **name) {
                        Some(i) => i,
                        None => {
                            out.push(Named {
                                name: name.to_string(),
                                counts: vec![0; slots],
                                total: 0,
                            });
                            out.len() - 1
                        }
                    };
                    out[i].counts[idx] += c;
                    out[i].total += c;
                }
            }
            points.push(Point {
                time_ms: start,
                requests: b.requests,
                blocked: b.blocked,
                would_block: b.would_block,
                upstream_errors: b.upstream_errors,
                p50_ms: percentile_ms(&b.latency, 0.50),
                p90_ms: percentile_ms(&b.latency, 0.90),
                p99_ms: percentile_ms(&b.latency, 0.99),
            });
        }
        totals.p50_ms = percentile_ms(&all, 0.50);
        totals.p90_ms = percentile_ms(&all, 0.90);
        totals.p99_ms = percentile_ms(&all, 0.99);
        stages.sort_by(|a, b| b.total.cmp(&a.total).then(a.name.cmp(&b.name)));
        reasons.sort_by(|a, b| b.total.cmp(&a.total).then(a.name.cmp(&b.name)));
        Series {
            step_ms: step,
            points,
            blocks_by_stage: stages,
            blocks_by_reason: reasons,
            totals,
        }
    }

    /// Traffic per API and operation since start, busiest first.
    pub fn traffic(&self) -> Vec<TrafficRow> {
        let g = self.lock();
        let mut rows: Vec<TrafficRow> = g
            .traffic
            .iter()
            .map(|((api, op), t)| TrafficRow {
                api: api.to_string(),
                operation: op.as_ref().map(|o| o.to_string()),
                requests: t.requests,
                blocked: t.blocked,
                would_block: t.would_block,
                block_rate: if t.requests == 0 {
                    0.0
                } else {
                    t.blocked as f64 / t.requests as f64
                },
            })
            .collect();
        rows.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.api.cmp(&b.api))
                .then_with(|| a.operation.cmp(&b.operation))
        });
        rows
    }

    /// Hits per rule since start, most hit first.
    pub fn rules(&self) -> Vec<RuleRow> {
        let g = self.lock();
        let mut rows: Vec<RuleRow> = g
            .rules
            .iter()
            .map(|((stage, rule), h)| RuleRow {
                stage: stage.to_string(),
                rule: rule.to_string(),
                hits: h.hits,
                blocks: h.blocks,
                would_blocks: h.would_blocks,
                last_ms: h.last_ms,
                last_action: h.last_action.to_owned(),
            })
            .collect();
        rows.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.rule.cmp(&b.rule)));
        rows
    }

    /// The busiest clients, the most blocked clients and the busiest consumers.
    pub fn top(&self, n: usize) -> (Vec<TopRow>, Vec<TopRow>, Vec<TopRow>) {
        let g = self.lock();
        let ip = |v: Vec<(IpAddr, u64)>| {
            v.into_iter()
                .map(|(k, count)| TopRow {
                    key: k.to_string(),
                    count,
                })
                .collect()
        };
        (
            ip(g.clients.top(n)),
            ip(g.blocked_clients.top(n)),
            g.consumers
                .top(n)
                .into_iter()
                .map(|(k, count)| TopRow {
                    key: k.to_string(),
                    count,
                })
                .collect(),
        )
    }

    /// Clients refused by a rate limit or the DDoS guard in the last `within_ms`, by rule,
    /// the most recent first.
    pub fn limited(&self, now_ms: UnixMillis, within_ms: u64) -> Vec<LimitedRow> {
        let g = self.lock();
        let cutoff = now_ms.saturating_sub(within_ms);
        let mut rows: Vec<LimitedRow> = g
            .limited
            .iter()
            .filter(|(_, (_, last))| *last >= cutoff)
            .map(|((rule, key), (count, last))| LimitedRow {
                rule: rule.to_string(),
                key: key.clone(),
                refusals: *count,
                last_ms: *last,
            })
            .collect();
        rows.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then_with(|| a.key.cmp(&b.key)));
        rows
    }

    /// Requests, blocks and would-blocks since start.
    pub fn totals_since_start(&self) -> (u64, u64, u64) {
        let g = self.lock();
        (g.total.requests, g.total.blocked, g.total.would_block)
    }
}

#[cfg(test)]
mod tests {
    use rampart_core::{Reason, RuleId, StageId};

    use super::*;

    fn finding(stage: &'static str, rule: &str, action: FindingAction) -> Finding {
        Finding {
            stage: StageId(stage),
            rule: Some(RuleId::new(rule)),
            action,
            reason: Reason::Forbidden,
            detail: String::new(),
        }
    }

    #[test]
    fn latency_buckets_are_monotonic_and_bound_their_values() {
        let mut last = 0;
        for us in [0u64, 1, 3, 4, 5, 7, 8, 100, 1_000, 12_345, 1 << 20, 1 << 31] {
            let i = latency_bucket(us);
            assert!(i >= last, "{us}");
            last = i;
            assert!(bucket_upper_us(i) >= us, "{us} over its bucket's bound");
            // Within 25% above (four buckets per power of two).
            assert!(
                bucket_upper_us(i) as f64 <= (us.max(1) as f64) * 1.25 + 1.0,
                "{us}"
            );
        }
    }

    #[test]
    fn series_counts_requests_blocks_and_percentiles_per_bucket() {
        const T: u64 = 1_800_000_000_000;
        let s = LiveStats::new(0);
        let api: Arc<str> = Arc::from("shop");
        let op: Arc<str> = Arc::from("getItem");
        let block = [finding("waf", "942100", FindingAction::Block)];
        let would = [finding("ratelimit", "per-ip", FindingAction::WouldBlock)];
        // 10 requests at t=1,000 s (one bucket), 3 of them blocked, 1 would-block.
        for i in 0..10u64 {
            let findings: &[Finding] = match i {
                0..=2 => &block,
                3 => &would,
                _ => &[],
            };
            s.record(&Record {
                now_ms: T + i,
                api: Some(&api),
                operation: Some(&op),
                client_ip: IpAddr::from([192, 0, 2, (i % 2) as u8]),
                consumer: (i < 4).then_some("alice"),
                latency_us: 1_000 * (i + 1),
                upstream_error: i == 9,
                findings,
            });
        }
        let series = s.series(Window::Hour, T + 5_000);
        assert_eq!(series.step_ms, 10_000);
        assert_eq!(series.points.len(), 360);
        let last = series.points.last().unwrap();
        assert_eq!(last.time_ms, T);
        assert_eq!(
            (
                last.requests,
                last.blocked,
                last.would_block,
                last.upstream_errors
            ),
            (10, 3, 1, 1)
        );
        // The median of 1..=10 ms is 5 ms; the bucket bound is within 25% above it.
        let p50 = last.p50_ms.unwrap();
        assert!((5.0..=6.25).contains(&p50), "{p50}");
        assert!(last.p99_ms.unwrap() >= 10.0);
        assert_eq!(series.totals.requests, 10);
        assert_eq!(series.blocks_by_stage[0].name, "waf");
        assert_eq!(series.blocks_by_stage[0].total, 3);
        assert_eq!(series.blocks_by_stage[1].name, "ratelimit");
        // An hour later the bucket has left the hour window but not the day.
        let later = T + 3_600_000;
        assert_eq!(s.series(Window::Hour, later).totals.requests, 0);
        assert_eq!(s.series(Window::Day, later).totals.requests, 10);
        let traffic = s.traffic();
        assert_eq!(traffic.len(), 1);
        assert_eq!((traffic[0].requests, traffic[0].blocked), (10, 3));
        assert!((traffic[0].block_rate - 0.3).abs() < 1e-9);
        let rules = s.rules();
        assert_eq!(rules[0].rule, "942100");
        assert_eq!((rules[0].hits, rules[0].blocks), (3, 3));
        assert_eq!(rules[1].would_blocks, 1);
        let (clients, blocked, consumers) = s.top(5);
        assert_eq!(clients.len(), 2);
        assert_eq!(blocked[0].key, "192.0.2.0");
        assert_eq!(blocked[0].count, 2);
        assert_eq!(consumers[0].key, "alice");
        assert_eq!(consumers[0].count, 4);
    }

    #[test]
    fn a_flood_of_new_clients_stays_bounded_and_keeps_the_heavy_one() {
        let s = LiveStats::new(0);
        for i in 0..50_000u32 {
            let heavy = i % 4 == 0;
            let ip = if heavy {
                IpAddr::from([198, 51, 100, 1])
            } else {
                IpAddr::from(i.to_be_bytes())
            };
            s.record(&Record {
                now_ms: 1,
                api: None,
                operation: None,
                client_ip: ip,
                consumer: None,
                latency_us: 10,
                upstream_error: false,
                findings: &[],
            });
        }
        assert!(s.lock().clients.counts.len() <= MAX_KEYS);
        assert_eq!(s.top(1).0[0].key, "198.51.100.1");
    }
}
