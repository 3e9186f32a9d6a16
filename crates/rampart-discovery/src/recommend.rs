//! Rate-limit recommendations from real usage (docs/discovery.md, "Rate-limit
//! recommendations").
//!
//! Per endpoint, each session's peak number of requests in any window (10 minutes by
//! default, from 1-minute buckets) goes into a DDSketch (relative accuracy 1%, mergeable). The
//! suggestion combines a robust log-normal fit of the body of that distribution (median and
//! quartiles: a minority of abusive sessions cannot drag it up) with the empirical tail (never
//! below what real users did), plus headroom; it comes with a confidence grade, the share of
//! sessions it would have limited, and a rule to paste in `log` (monitor) mode.

use std::collections::HashMap;

use sketches_ddsketch::{Config as SketchConfig, DDSketch};

/// Per-session peaks of one endpoint.
#[derive(Clone)]
pub struct Peaks {
    sketch: DDSketch,
}

impl std::fmt::Debug for Peaks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peaks")
            .field("sessions", &self.sessions())
            .finish()
    }
}

impl Default for Peaks {
    fn default() -> Self {
        Self {
            sketch: DDSketch::new(SketchConfig::new(0.01, 4096, 1e-9)),
        }
    }
}

impl Peaks {
    /// Adds one session's peak.
    pub fn add(&mut self, peak: f64) {
        self.sketch.add(peak);
    }

    /// Adds another day's (or node's) peaks.
    pub fn merge(&mut self, o: &Peaks) {
        // Both sketches have the same configuration: merging cannot fail.
        let _ = self.sketch.merge(&o.sketch);
    }

    /// Sessions counted.
    pub fn sessions(&self) -> u64 {
        self.sketch.count() as u64
    }

    /// The `q` quantile (the value at rank `⌊q·(n−1)⌋`, within 1%).
    pub fn quantile(&self, q: f64) -> f64 {
        self.sketch
            .quantile(q.clamp(0.0, 1.0))
            .ok()
            .flatten()
            .unwrap_or(0.0)
    }

    /// The share of sessions whose peak is above `t` (from the sketch's ranks).
    pub fn share_above(&self, t: f64) -> f64 {
        if self.sessions() == 0 || self.quantile(1.0) <= t {
            return 0.0;
        }
        // The smallest q whose quantile is above t.
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..40 {
            let mid = (lo + hi) / 2.0;
            if self.quantile(mid) > t {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        1.0 - hi
    }
}

/// How far a suggestion can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// Too few sessions: no suggestion.
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

impl Confidence {
    fn lower(self) -> Self {
        match self {
            Self::High => Self::Medium,
            Self::Medium | Self::Low => Self::Low,
            Self::None => Self::None,
        }
    }

    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Settings (docs/discovery.md gives the reasons).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// The window the peaks were counted over.
    pub window_secs: u64,
    /// No suggestion below this many sessions.
    pub min_sessions: u64,
    /// Headroom over the tail.
    pub headroom: f64,
    /// The smallest suggestion.
    pub floor: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window_secs: 600,
            min_sessions: 50,
            headroom: 0.25,
            floor: 5,
        }
    }
}

/// A recommendation for one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    /// Sessions counted.
    pub sessions: u64,
    /// Percentiles of the per-session peaks.
    pub p50: f64,
    /// See `p50`.
    pub p90: f64,
    /// See `p50`.
    pub p99: f64,
    /// See `p50`.
    pub p999: f64,
    /// Requests per window, when there is a suggestion.
    pub suggested: Option<u64>,
    /// How far it can be trusted.
    pub confidence: Confidence,
    /// Why (each step of the grade, and what lowered it).
    pub reasons: Vec<String>,
    /// The share of the counted sessions whose peak is above the suggestion.
    pub limited_share: f64,
    /// The tail is much heavier than the body: abuse, or a mixed population.
    pub heavy_tail: bool,
}

/// The recommendation for `peaks`; `ip_based` when sessions are client addresses.
pub fn recommend(peaks: &Peaks, s: &Settings, ip_based: bool) -> Recommendation {
    let n = peaks.sessions();
    let q = |p: f64| peaks.quantile(p);
    let mut r = Recommendation {
        sessions: n,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        suggested: None,
        confidence: Confidence::None,
        reasons: Vec::new(),
        limited_share: 0.0,
        heavy_tail: false,
    };
    if n < s.min_sessions {
        r.reasons
            .push(format!("{n} sessions, {} needed", s.min_sessions));
        return r;
    }
    // The body: a log-normal fitted on the median and the quartiles (25% breakdown point).
    let (q25, q75) = (q(0.25).max(1e-9), q(0.75).max(1e-9));
    let m = r.p50.max(1e-9).ln();
    let sd = (q75.ln() - q25.ln()) / 1.349;
    let t_model = (m + 3.09 * sd).exp();
    // The tail: what the sessions did, never beyond the data.
    let p_star = (1.0 - 1.0 / n as f64).clamp(0.99, 0.999);
    let t_emp = q(p_star);
    let h = 1.0 + s.headroom;
    let floor = s.floor as f64;
    r.heavy_tail = t_emp > 2.0 * t_model;
    let t = if r.heavy_tail {
        (h * t_model).ceil().max(floor)
    } else {
        (h * t_model.max(t_emp))
            .ceil()
            .max(r.p99.floor() + 1.0)
            .max(floor)
    };
    r.suggested = Some(t as u64);
    r.limited_share = peaks.share_above(t);

    // Confidence: sample size and the width of the 95% interval of the 99th percentile.
    let nf = n as f64;
    let half = 1.96 * (nf * 0.99 * 0.01).sqrt();
    let (j, k) = (
        ((nf * 0.99 - half) / nf).max(0.0),
        ((nf * 0.99 + half) / nf).min(1.0),
    );
    let w = if r.p99 > 0.0 {
        (q(k) - q(j)) / r.p99
    } else {
        f64::INFINITY
    };
    let mut grade = if n >= 1_000 && w <= 0.25 {
        Confidence::High
    } else if n >= 200 && w <= 0.5 {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    r.reasons.push(format!(
        "{n} sessions; the 95% interval of p99 is {:.0}% of it wide",
        w * 100.0
    ));
    if ip_based {
        grade = grade.lower();
        r.reasons
            .push("sessions are client addresses (NAT merges users)".into());
    }
    if r.heavy_tail {
        grade = grade.lower();
        r.reasons.push(format!(
            "the tail ({t_emp:.0}) is more than twice the body's model ({t_model:.0}): abuse or a mixed population; review the sessions above the suggestion"
        ));
    }
    if r.p50 > 0.0 && r.p99 / r.p50 > 50.0 {
        grade = grade.lower();
        r.reasons.push(
            "p99 is over 50 times p50: different kinds of clients; consider per-group limits"
                .into(),
        );
    }
    r.reasons
        .push("stability over days not yet measured (needs 3 days of history)".into());
    r.confidence = grade;
    r
}

/// A rule for the rate-limit stage in `log` mode (it records, refuses nothing), to paste under
/// the API's `rate_limits` and try with `rampart replay` before switching it to `block`.
pub fn rule_yaml(
    name: &str,
    when: &str,
    key: &str,
    r: &Recommendation,
    s: &Settings,
) -> Option<String> {
    let t = r.suggested?;
    Some(format!(
        "- name: {name}\n  # {} sessions, p50 {:.0}, p99 {:.0}, confidence {}; {:.2}% of sessions above\n  when: '{}'\n  key: {key}\n  requests: {t}\n  window_secs: {}\n  action: log\n",
        r.sessions,
        r.p50,
        r.p99,
        r.confidence.as_str(),
        r.limited_share * 100.0,
        when.replace('\'', "''"),
        s.window_secs,
    ))
}

/// Per (session, endpoint): the most requests in any window of `window` one-minute buckets.
#[derive(Debug, Default)]
pub struct PeakTracker {
    pairs: HashMap<(u64, String), Pair>,
    /// Pairs beyond the cap, not tracked.
    pub refused: u64,
    cap: usize,
    buckets: u64,
}

#[derive(Debug)]
struct Pair {
    last_min: u64,
    counts: Vec<u32>,
    peak: u32,
}

impl PeakTracker {
    /// A tracker of windows of `window_secs` (whole minutes), at most `cap` pairs.
    pub fn new(window_secs: u64, cap: usize) -> Self {
        Self {
            pairs: HashMap::new(),
            refused: 0,
            cap,
            buckets: (window_secs / 60).max(1),
        }
    }

    /// One request of `session` to `endpoint` at `ts_ms`.
    pub fn add(&mut self, session: u64, endpoint: &str, ts_ms: u64) {
        let minute = ts_ms / 60_000;
        let b = self.buckets;
        let key = (session, endpoint.to_owned());
        let full = self.pairs.len() >= self.cap;
        let p = match self.pairs.get_mut(&key) {
            Some(p) => p,
            None if full => {
                self.refused += 1;
                return;
            }
            None => self.pairs.entry(key).or_insert_with(|| Pair {
                last_min: minute,
                counts: vec![0; b as usize],
                peak: 0,
            }),
        };
        if minute > p.last_min {
            // Minutes that passed without requests are empty.
            let gap = (minute - p.last_min).min(b);
            for i in 1..=gap {
                let m = p.last_min + i;
                p.counts[(m % b) as usize] = 0;
            }
            p.last_min = minute;
        }
        if minute + b <= p.last_min {
            return; // older than the window: out of order beyond it
        }
        p.counts[(minute % b) as usize] += 1;
        let sum: u32 = p.counts.iter().sum();
        p.peak = p.peak.max(sum);
    }

    /// The peaks, per endpoint.
    pub fn peaks(&self) -> HashMap<String, Peaks> {
        let mut out: HashMap<String, Peaks> = HashMap::new();
        for ((_, e), p) in &self.pairs {
            out.entry(e.clone()).or_default().add(f64::from(p.peak));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_the_busiest_window() {
        let mut t = PeakTracker::new(600, 100);
        // 3 requests in minute 0, 4 in minute 5, 2 in minute 12: windows of 10 minutes.
        for (m, n) in [(0u64, 3), (5, 4), (12, 2)] {
            for _ in 0..n {
                t.add(1, "GET /a", m * 60_000 + 1);
            }
        }
        let p = t.peaks();
        assert_eq!(p["GET /a"].quantile(1.0).round(), 7.0);
        let mut small = PeakTracker::new(600, 1);
        small.add(1, "x", 0);
        small.add(2, "x", 0);
        assert_eq!(small.refused, 1);
    }
}
