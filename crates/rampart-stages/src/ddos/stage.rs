//! The guard (its state survives reloads) and the stage.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use http::HeaderValue;
use rampart_core::{Block, CompileCx, Decision, Exchange, Outcome, Reason, RuleId, Stage, StageId};

use super::bans::BanTable;
use super::config::DdosConfig;
use crate::ratelimit::{Algorithm, Limit, MemoryStore, RedisStore};

/// The stage's id.
pub const STAGE: StageId = StageId("ddos");

/// What lives as long as the process: counts, bans, requests in flight, upstream health.
#[derive(Debug)]
struct GuardState {
    counters: MemoryStore,
    bans: BanTable,
    in_flight: AtomicUsize,
    /// Exponentially weighted average upstream latency, µs.
    latency_us: AtomicU64,
    /// Exponentially weighted share of 5xx answers, parts per million.
    errors_ppm: AtomicU64,
    last_shed_event_ms: AtomicU64,
}

impl GuardState {
    fn new() -> Self {
        Self {
            counters: MemoryStore::new(262_144),
            bans: BanTable::default(),
            in_flight: AtomicUsize::new(0),
            latency_us: AtomicU64::new(0),
            errors_ppm: AtomicU64::new(0),
            last_shed_event_ms: AtomicU64::new(0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RateBan {
    limit: Limit,
    ban_ms: u64,
}

/// The compiled `ddos` section with its state.
#[derive(Debug)]
pub struct DdosGuard {
    per_ip: Option<RateBan>,
    per_prefix: Option<(RateBan, u8, u8)>,
    max_in_flight: Option<usize>,
    exempt: Vec<String>,
    adaptive: Option<(u64, u64, f64)>,
    state: arc_swap::ArcSwap<GuardState>,
    redis: arc_swap::ArcSwapOption<RedisStore>,
}

fn rate(requests_per_sec: u64, burst: Option<u64>, ban_secs: u64) -> RateBan {
    RateBan {
        limit: Limit {
            requests: requests_per_sec.max(1),
            window_ms: 1000,
            burst: burst.unwrap_or(requests_per_sec.saturating_mul(2)).max(1),
            algorithm: Algorithm::Gcra,
            penalty_ms: 0,
        },
        ban_ms: ban_secs.saturating_mul(1000),
    }
}

impl DdosGuard {
    /// Compiles the section; `None` when it asks for nothing. Problems go to `cx`.
    pub fn compile(c: &DdosConfig, cx: &mut CompileCx) -> Option<Arc<Self>> {
        let before = cx.diagnostics().len();
        if let Some(p) = &c.per_ip {
            if p.requests_per_sec == 0 {
                cx.at("per_ip", |cx| {
                    cx.at("requests_per_sec", |cx| cx.error("must be at least 1"))
                });
            }
        }
        if let Some(p) = &c.per_prefix {
            cx.at("per_prefix", |cx| {
                if p.requests_per_sec == 0 {
                    cx.at("requests_per_sec", |cx| cx.error("must be at least 1"));
                }
                if !(1..=32).contains(&p.prefix_v4) {
                    cx.at("prefix_v4", |cx| cx.error("must be 1 to 32"));
                }
                if !(1..=128).contains(&p.prefix_v6) {
                    cx.at("prefix_v6", |cx| cx.error("must be 1 to 128"));
                }
            });
        }
        if c.max_in_flight == Some(0) {
            cx.at("max_in_flight", |cx| cx.error("must be at least 1"));
        }
        if let Some(a) = &c.adaptive {
            cx.at("adaptive", |cx| {
                if !(a.factor > 0.0 && a.factor <= 1.0) {
                    cx.at("factor", |cx| cx.error("must be more than 0 and at most 1"));
                }
                if !(a.error_rate > 0.0 && a.error_rate <= 1.0) {
                    cx.at("error_rate", |cx| {
                        cx.error("must be more than 0 and at most 1")
                    });
                }
            });
        }
        for (i, p) in c.exempt_paths.iter().enumerate() {
            if !p.starts_with('/') {
                cx.at("exempt_paths", |cx| {
                    cx.at(format!("[{i}]"), |cx| cx.error("a path starts with /"))
                });
            }
        }
        if cx.diagnostics().len() != before {
            return None;
        }
        if c.per_ip.is_none() && c.per_prefix.is_none() && c.max_in_flight.is_none() {
            return None;
        }
        Some(Arc::new(Self {
            per_ip: c
                .per_ip
                .as_ref()
                .map(|p| rate(p.requests_per_sec, p.burst, p.ban_secs)),
            per_prefix: c.per_prefix.as_ref().map(|p| {
                (
                    rate(p.requests_per_sec, p.burst, p.ban_secs),
                    p.prefix_v4,
                    p.prefix_v6,
                )
            }),
            max_in_flight: c.max_in_flight,
            exempt: c.exempt_paths.clone(),
            adaptive: c.adaptive.as_ref().map(|a| {
                (
                    a.latency_ms.saturating_mul(1000),
                    (a.error_rate * 1e6) as u64,
                    a.factor,
                )
            }),
            state: arc_swap::ArcSwap::from_pointee(GuardState::new()),
            redis: arc_swap::ArcSwapOption::empty(),
        }))
    }

    /// Takes over the state of the guard this one replaces (a reload): counts, bans, requests
    /// in flight and upstream health.
    pub fn inherit(&self, old: &DdosGuard) {
        self.state.store(old.state.load_full());
    }

    /// Shares bans through Redis: published when made, received from the other nodes.
    pub fn share_through(&self, redis: Arc<RedisStore>) {
        self.redis.store(Some(redis));
    }

    /// The bans table (for the admin API and the pub/sub listener).
    pub fn bans(&self) -> Arc<dyn BansView> {
        Arc::new(StateBans(self.state.load_full()))
    }

    /// Requests in progress.
    pub fn in_flight(&self) -> usize {
        self.state.load().in_flight.load(Ordering::Relaxed)
    }

    /// True while the upstream's latency or errors have tightened the rates.
    pub fn tightened(&self) -> bool {
        let Some((latency_us, errors_ppm, _)) = self.adaptive else {
            return false;
        };
        let s = self.state.load();
        s.latency_us.load(Ordering::Relaxed) > latency_us
            || s.errors_ppm.load(Ordering::Relaxed) > errors_ppm
    }

    fn cost(&self) -> u64 {
        match self.adaptive {
            Some((_, _, factor)) if self.tightened() => (1.0 / factor).ceil() as u64,
            _ => 1,
        }
    }
}

/// Read and change the bans of a guard.
pub trait BansView: Send + Sync + std::fmt::Debug {
    /// Bans a key (`ip:…` or `net:…`) until a time; true if it was not banned.
    fn ban(&self, key: &str, until_ms: u64, now_ms: u64) -> bool;
    /// Lifts a ban.
    fn unban(&self, key: &str) -> bool;
    /// The bans in force.
    fn list(&self, now_ms: u64) -> Vec<super::Ban>;
}

#[derive(Debug)]
struct StateBans(Arc<GuardState>);

impl BansView for StateBans {
    fn ban(&self, key: &str, until_ms: u64, now_ms: u64) -> bool {
        self.0.bans.ban(key, until_ms, now_ms)
    }
    fn unban(&self, key: &str) -> bool {
        self.0.bans.unban(key)
    }
    fn list(&self, now_ms: u64) -> Vec<super::Ban> {
        self.0.bans.list(now_ms)
    }
}

fn prefix_key(ip: IpAddr, v4: u8, v6: u8) -> String {
    let bits = if ip.is_ipv4() { v4 } else { v6 };
    format!("net:{}/{bits}", rampart_core::iptable::masked(ip, v4, v6))
}

/// The `ddos` stage: the guard, placed in every API's pipeline.
#[derive(Debug)]
pub struct DdosStage(pub Arc<DdosGuard>);

fn refuse(rule: &str, until_ms: u64, now_ms: u64, repeat: bool, detail: String) -> Outcome {
    let secs = (until_ms.saturating_sub(now_ms)).div_ceil(1000).max(1);
    Ok(Decision::Block(
        Block::new(Reason::RateLimited)
            .rule(RuleId::new(rule))
            .detail(detail)
            .repeated(repeat)
            .header(http::header::RETRY_AFTER, HeaderValue::from(secs)),
    ))
}

impl Stage for DdosStage {
    fn id(&self) -> StageId {
        STAGE
    }

    fn on_request_head(&self, req: &mut http::request::Parts, x: &mut Exchange) -> Outcome {
        let g = &self.0;
        let s = g.state.load();
        let now = x.now_ms();
        let ip = rampart_core::iptable::canonical(x.client_ip);
        let ip_key = format!("ip:{ip}");
        let net_key = g.per_prefix.map(|(_, v4, v6)| prefix_key(ip, v4, v6));
        // 1. Banned clients cost nothing more (the address's ban, or a network's of any
        // banned length: the guard's own prefix bans and those made by hand).
        if let Some((key, until)) = s.bans.banned_ip(ip, now) {
            return refuse("ddos.ban", until, now, true, format!("{key} is banned"));
        }
        // 2. Load shedding.
        if let Some(max) = g.max_in_flight {
            let n = s.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
            if n > max && !g.exempt.iter().any(|p| p == req.uri.path()) {
                s.in_flight.fetch_sub(1, Ordering::AcqRel);
                metrics::counter!("rampart_ddos_shed_total").increment(1);
                // One event a second at most: an overload must not become an event flood.
                let last = s.last_shed_event_ms.load(Ordering::Relaxed);
                let record = now >= last + 1000
                    && s.last_shed_event_ms
                        .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok();
                return Ok(Decision::Block(
                    Block::new(Reason::Overloaded)
                        .rule(RuleId::new("ddos.shed"))
                        .detail(format!("{n} requests in flight, over {max}"))
                        .repeated(!record)
                        .header(http::header::RETRY_AFTER, HeaderValue::from_static("1")),
                ));
            }
            x.admitted = true;
        }
        // 3. Rates, and bans for those over them.
        let cost = g.cost();
        let checks = g
            .per_ip
            .map(|r| ("ddos.ip", ip_key.clone(), r))
            .into_iter()
            .chain(
                g.per_prefix
                    .zip(net_key)
                    .map(|((r, _, _), k)| ("ddos.prefix", k, r)),
            );
        for (rule, key, r) in checks {
            let o = s.counters.check(rule, &key, &r.limit, cost, now);
            if o.allowed {
                continue;
            }
            let until = now + r.ban_ms.max(1000);
            let fresh = s.bans.ban(&key, until, now);
            if fresh {
                metrics::counter!("rampart_ddos_bans_total", "rule" => rule).increment(1);
                if let Some(redis) = g.redis.load_full() {
                    let key = key.clone();
                    tokio::spawn(async move { redis.publish_ban(&key, until).await });
                }
            }
            let detail = format!(
                "{key} over {} requests/s{}: banned for {} s",
                r.limit.requests,
                if cost > 1 { " (tightened)" } else { "" },
                r.ban_ms / 1000
            );
            return refuse(rule, until, now, !fresh, detail);
        }
        Ok(Decision::Continue)
    }

    fn on_complete(&self, x: &Exchange) {
        let g = &self.0;
        let s = g.state.load();
        if x.admitted {
            s.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        if g.adaptive.is_none() {
            return;
        }
        let Some(status) = x.response_status else {
            return;
        };
        // Averages over about the last 20 answers (weight 1/20), races between requests
        // tolerated: this is a trend, not a count.
        let sample_us = x
            .now_ms()
            .saturating_sub(x.timings.received_ms)
            .saturating_mul(1000);
        let ewma = |a: &AtomicU64, sample: u64| {
            let old = a.load(Ordering::Relaxed);
            a.store(old - old / 20 + sample / 20, Ordering::Relaxed);
        };
        ewma(&s.latency_us, sample_us);
        ewma(&s.errors_ppm, if status >= 500 { 1_000_000 } else { 0 });
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::ddos::config::{AdaptiveConfig, RateConfig};

    fn exchange(ip: &str, now: u64) -> Exchange {
        let addr: SocketAddr = format!("{ip}:1000").parse().unwrap();
        Exchange::new(
            "r".into(),
            rampart_core::Peer {
                addr,
                listener: Arc::from("l"),
                tls: None,
            },
            now,
        )
    }

    fn head(path: &str) -> http::request::Parts {
        http::Request::get(path).body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_fast_client_is_banned_and_others_are_not() {
        let mut cx = CompileCx::new();
        let g = DdosGuard::compile(
            &DdosConfig {
                per_ip: Some(RateConfig {
                    requests_per_sec: 10,
                    burst: Some(10),
                    ban_secs: 60,
                }),
                ..DdosConfig::default()
            },
            &mut cx,
        )
        .unwrap();
        let st = DdosStage(g.clone());
        let mut passed = 0;
        let mut events = 0;
        for i in 0..50 {
            let mut x = exchange("198.51.100.7", 1000 + i);
            match st.on_request_head(&mut head("/"), &mut x) {
                Ok(Decision::Continue) => passed += 1,
                Ok(Decision::Block(b)) => {
                    assert_eq!(b.status, 429);
                    if !b.repeat {
                        events += 1;
                        assert_eq!(b.rule.unwrap().as_str(), "ddos.ip");
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(passed, 10);
        assert_eq!(events, 1, "one event when the ban starts");
        // Banned for a minute, even once the rate would allow it.
        let mut x = exchange("198.51.100.7", 30_000);
        assert!(matches!(
            st.on_request_head(&mut head("/"), &mut x),
            Ok(Decision::Block(_))
        ));
        let mut x = exchange("198.51.100.8", 30_000);
        assert!(matches!(
            st.on_request_head(&mut head("/"), &mut x),
            Ok(Decision::Continue)
        ));
        let mut x = exchange("198.51.100.7", 62_000);
        assert!(matches!(
            st.on_request_head(&mut head("/"), &mut x),
            Ok(Decision::Continue)
        ));
        assert_eq!(g.bans().list(30_000).len(), 1);
    }

    #[test]
    fn in_flight_requests_are_capped_except_exempt_paths() {
        let mut cx = CompileCx::new();
        let g = DdosGuard::compile(
            &DdosConfig {
                max_in_flight: Some(2),
                exempt_paths: vec!["/healthz".into()],
                ..DdosConfig::default()
            },
            &mut cx,
        )
        .unwrap();
        let st = DdosStage(g.clone());
        let mut a = exchange("192.0.2.1", 0);
        let mut b = exchange("192.0.2.2", 0);
        let mut c = exchange("192.0.2.3", 0);
        assert!(matches!(
            st.on_request_head(&mut head("/x"), &mut a),
            Ok(Decision::Continue)
        ));
        assert!(matches!(
            st.on_request_head(&mut head("/x"), &mut b),
            Ok(Decision::Continue)
        ));
        match st.on_request_head(&mut head("/x"), &mut c) {
            Ok(Decision::Block(b)) => assert_eq!(b.status, 503),
            other => panic!("{other:?}"),
        }
        let mut h = exchange("192.0.2.4", 0);
        assert!(matches!(
            st.on_request_head(&mut head("/healthz"), &mut h),
            Ok(Decision::Continue)
        ));
        st.on_complete(&a);
        st.on_complete(&h);
        st.on_complete(&c);
        assert_eq!(g.in_flight(), 1);
        let mut d = exchange("192.0.2.5", 0);
        assert!(matches!(
            st.on_request_head(&mut head("/x"), &mut d),
            Ok(Decision::Continue)
        ));
    }

    #[test]
    fn a_suffering_upstream_tightens_the_rates() {
        let mut cx = CompileCx::new();
        let g = DdosGuard::compile(
            &DdosConfig {
                per_ip: Some(RateConfig {
                    requests_per_sec: 10,
                    burst: Some(10),
                    ban_secs: 1,
                }),
                adaptive: Some(AdaptiveConfig {
                    latency_ms: 100,
                    error_rate: 0.5,
                    factor: 0.5,
                }),
                ..DdosConfig::default()
            },
            &mut cx,
        )
        .unwrap();
        let st = DdosStage(g.clone());
        assert!(!g.tightened());
        // Slow answers (300 ms each) from the upstream.
        for i in 0..60 {
            let mut x = exchange("192.0.2.200", i * 1000);
            x.response_status = Some(200);
            x.timings.now_ms = i * 1000 + 300;
            st.on_complete(&x);
        }
        assert!(g.tightened());
        let passed = (0..50)
            .filter(|i| {
                let mut x = exchange("192.0.2.9", 100_000 + i);
                matches!(
                    st.on_request_head(&mut head("/"), &mut x),
                    Ok(Decision::Continue)
                )
            })
            .count();
        assert_eq!(passed, 5, "half the burst while tightened");
    }
}
