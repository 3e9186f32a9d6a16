//! The two algorithms, as pure functions of a state, a limit, a cost and the time: GCRA (the
//! generic cell rate algorithm: a smooth rate with a burst) and the sliding window (the count
//! of the current fixed window plus the previous one's, weighted by how much of it still
//! overlaps the last `window`). No clock is read here: the caller passes `now_ms`, so that
//! tests and `rampart replay` drive time themselves.

/// Which algorithm a rule uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// A smooth rate of `requests` per window, with up to `burst` at once.
    Gcra,
    /// At most `requests` in any window (approximated from two fixed windows).
    SlidingWindow,
}

/// A rule's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Requests (cost units) per window.
    pub requests: u64,
    /// The window, in milliseconds.
    pub window_ms: u64,
    /// GCRA: how many may come at once (at least 1).
    pub burst: u64,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Once over, the key is refused for this long (0: only until the rate allows again).
    pub penalty_ms: u64,
}

impl Limit {
    /// The GCRA emission interval in microseconds: one request's worth of time.
    fn interval_us(&self) -> u64 {
        (self.window_ms.saturating_mul(1000) / self.requests.max(1)).max(1)
    }
}

/// What a check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The request may go on.
    pub allowed: bool,
    /// Cost units left now (for the `RateLimit` header).
    pub remaining: u64,
    /// Milliseconds until the quota is whole again.
    pub reset_ms: u64,
    /// When refused: milliseconds until a request of this cost could pass.
    pub retry_after_ms: u64,
    /// This refusal started a new episode for the key (the first refusal after an allowed
    /// request): the one that gets an event.
    pub first_refusal: bool,
}

/// The state of one key under one rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// GCRA: the theoretical arrival time, µs. Sliding window: the current window's start, ms.
    pub a: u64,
    /// Sliding window: the previous window's count.
    pub b: u64,
    /// Sliding window: the current window's count.
    pub c: u64,
    /// Refused until this time (ms), by a penalty.
    pub blocked_until_ms: u64,
    /// The last check was a refusal.
    pub refusing: bool,
}

impl State {
    /// True when this state says nothing any more: the quota is whole and no penalty runs.
    /// Such a key can be forgotten.
    pub fn idle(&self, limit: &Limit, now_ms: u64) -> bool {
        if now_ms < self.blocked_until_ms {
            return false;
        }
        match limit.algorithm {
            Algorithm::Gcra => self.a <= now_ms.saturating_mul(1000),
            Algorithm::SlidingWindow => now_ms >= self.a.saturating_add(2 * limit.window_ms),
        }
    }
}

/// Checks a request of `cost` units at `now_ms`, updating the state.
pub fn check(state: &mut State, limit: &Limit, cost: u64, now_ms: u64) -> Outcome {
    let was_refusing = state.refusing;
    let mut out = if now_ms < state.blocked_until_ms {
        let wait = state.blocked_until_ms - now_ms;
        Outcome {
            allowed: false,
            remaining: 0,
            reset_ms: wait,
            retry_after_ms: wait,
            first_refusal: false,
        }
    } else {
        match limit.algorithm {
            Algorithm::Gcra => gcra(state, limit, cost, now_ms),
            Algorithm::SlidingWindow => sliding(state, limit, cost, now_ms),
        }
    };
    if !out.allowed && limit.penalty_ms > 0 && now_ms >= state.blocked_until_ms {
        state.blocked_until_ms = now_ms + limit.penalty_ms;
        out.retry_after_ms = out.retry_after_ms.max(limit.penalty_ms);
        out.reset_ms = out.reset_ms.max(limit.penalty_ms);
    }
    out.first_refusal = !out.allowed && !was_refusing;
    state.refusing = !out.allowed;
    out
}

fn gcra(state: &mut State, limit: &Limit, cost: u64, now_ms: u64) -> Outcome {
    let t = limit.interval_us();
    let now = now_ms.saturating_mul(1000);
    let tau = limit.burst.max(1).saturating_mul(t);
    let tat = state.a.max(now);
    let new_tat = tat.saturating_add(cost.saturating_mul(t));
    let ahead = new_tat - now;
    if ahead > tau {
        let behind = tat - now;
        return Outcome {
            allowed: false,
            remaining: tau.saturating_sub(behind) / t,
            reset_ms: behind.div_ceil(1000),
            retry_after_ms: (ahead - tau).div_ceil(1000),
            first_refusal: false,
        };
    }
    state.a = new_tat;
    Outcome {
        allowed: true,
        remaining: (tau - ahead) / t,
        reset_ms: ahead.div_ceil(1000),
        retry_after_ms: 0,
        first_refusal: false,
    }
}

fn sliding(state: &mut State, limit: &Limit, cost: u64, now_ms: u64) -> Outcome {
    let w = limit.window_ms.max(1);
    let start = now_ms - now_ms % w;
    if start != state.a {
        state.b = if start == state.a + w { state.c } else { 0 };
        state.c = 0;
        state.a = start;
    }
    let elapsed = now_ms - start;
    // The previous window's count, weighted by how much of it the sliding window still covers.
    let prev = state.b.saturating_mul(w - elapsed) / w;
    let used = prev.saturating_add(state.c);
    let to_window_end = w - elapsed;
    if used.saturating_add(cost) > limit.requests {
        let retry = sliding_retry(state, limit, cost, elapsed);
        return Outcome {
            allowed: false,
            remaining: limit.requests.saturating_sub(used),
            reset_ms: to_window_end,
            retry_after_ms: retry,
            first_refusal: false,
        };
    }
    state.c += cost;
    Outcome {
        allowed: true,
        remaining: limit.requests - used - cost,
        reset_ms: to_window_end,
        retry_after_ms: 0,
        first_refusal: false,
    }
}

/// The earliest wait after which a request of `cost` fits: later in this window (as the
/// previous window slides out), or in the next one (where this window becomes the previous).
fn sliding_retry(state: &State, limit: &Limit, cost: u64, elapsed: u64) -> u64 {
    let w = limit.window_ms.max(1);
    let r = limit.requests;
    // The smallest e with floor(prev * (w - e) / w) <= room, or None if no e in 0..=w works.
    let earliest = |prev: u64, room: u64| -> u64 {
        if prev == 0 {
            return 0;
        }
        let span = ((room + 1).saturating_mul(w) - 1) / prev;
        w.saturating_sub(span)
    };
    if state.c.saturating_add(cost) <= r {
        let e = earliest(state.b, r - state.c - cost);
        if e < w {
            return e.saturating_sub(elapsed).max(1);
        }
    }
    if cost > r {
        // Never: report a whole window.
        return w;
    }
    let e = if state.c.saturating_add(cost) <= r {
        0
    } else {
        earliest(state.c, r - cost)
    };
    (w - elapsed) + e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcra_limit(requests: u64, window_ms: u64, burst: u64) -> Limit {
        Limit {
            requests,
            window_ms,
            burst,
            algorithm: Algorithm::Gcra,
            penalty_ms: 0,
        }
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        // 10 per second, burst 10: ten at once, then one every 100 ms.
        let l = gcra_limit(10, 1000, 10);
        let mut s = State::default();
        let t0 = 1_000_000;
        for i in 0..10 {
            let o = check(&mut s, &l, 1, t0);
            assert!(o.allowed, "request {i}");
            assert_eq!(o.remaining, 9 - i);
        }
        let o = check(&mut s, &l, 1, t0);
        assert!(!o.allowed);
        assert!(o.first_refusal);
        assert_eq!(o.retry_after_ms, 100);
        assert!(!check(&mut s, &l, 1, t0 + 99).allowed);
        assert!(
            !check(&mut s, &l, 1, t0 + 99).first_refusal,
            "one event per episode"
        );
        assert!(check(&mut s, &l, 1, t0 + 100).allowed);
        assert!(!check(&mut s, &l, 1, t0 + 100).allowed);
        // After a whole window of quiet, the whole burst again.
        let o = check(&mut s, &l, 1, t0 + 1100);
        assert!(o.allowed);
        assert_eq!(o.remaining, 9);
        assert!(s.idle(&l, t0 + 1100 + 1000));
        assert!(!s.idle(&l, t0 + 1100));
    }

    #[test]
    fn gcra_burst_and_cost() {
        // 60 per minute, burst 5: five at once.
        let l = gcra_limit(60, 60_000, 5);
        let mut s = State::default();
        for _ in 0..5 {
            assert!(check(&mut s, &l, 1, 0).allowed);
        }
        assert!(!check(&mut s, &l, 1, 0).allowed);
        // A cost of 3 needs three seconds' worth.
        let mut s = State::default();
        assert!(check(&mut s, &l, 3, 0).allowed);
        let o = check(&mut s, &l, 3, 0);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ms, 1000);
        assert!(check(&mut s, &l, 3, 1000).allowed);
        // More than the burst never passes.
        assert!(!check(&mut State::default(), &l, 6, 0).allowed);
    }

    #[test]
    fn sliding_window_counts_exactly_at_the_edges() {
        let l = Limit {
            requests: 100,
            window_ms: 10_000,
            burst: 100,
            algorithm: Algorithm::SlidingWindow,
            penalty_ms: 0,
        };
        let mut s = State::default();
        let t0 = 50_000; // a window start
        let allowed = (0..1000)
            .filter(|i| check(&mut s, &l, 1, t0 + i * 5).allowed)
            .count();
        assert_eq!(allowed, 100, "100 in the first 5 s of a window");
        // The last millisecond of the window: still full.
        assert!(!check(&mut s, &l, 1, t0 + 9_999).allowed);
        // The next window starts with the previous one weighing fully: nothing passes.
        assert!(!check(&mut s, &l, 1, t0 + 10_000).allowed);
        // Halfway through, half of the previous window has slid out: 50 pass.
        let passed = (0..100)
            .filter(|_| check(&mut s, &l, 1, t0 + 15_000).allowed)
            .count();
        assert_eq!(passed, 50);
        // Two windows later, the count is gone.
        let o = check(&mut s, &l, 1, t0 + 30_000);
        assert!(o.allowed);
        assert_eq!(o.remaining, 99);
        assert_eq!(o.reset_ms, 10_000);
    }

    #[test]
    fn sliding_window_retry_after_is_when_room_appears() {
        let l = Limit {
            requests: 10,
            window_ms: 1000,
            burst: 10,
            algorithm: Algorithm::SlidingWindow,
            penalty_ms: 0,
        };
        let mut s = State::default();
        for _ in 0..10 {
            assert!(check(&mut s, &l, 1, 0).allowed);
        }
        let o = check(&mut s, &l, 1, 500);
        assert!(!o.allowed);
        assert_eq!(
            o.retry_after_ms, 501,
            "into the next window, once a little has slid out"
        );
        assert!(
            !check(&mut s, &l, 1, 1000).allowed,
            "the previous window weighs fully"
        );
        assert!(check(&mut s, &l, 1, 1001).allowed);
        // Now 10 * 999 / 1000 → 9, plus 1: full. Room for one more once the previous window
        // weighs 8, at 1101.
        let o = check(&mut s, &l, 1, 1001);
        assert!(!o.allowed);
        assert_eq!(1001 + o.retry_after_ms, 1101);
        assert!(!check(&mut s, &l, 1, 1100).allowed);
        assert!(check(&mut s, &l, 1, 1101).allowed);
    }

    #[test]
    fn penalties_hold_whatever_the_rate() {
        let l = Limit {
            penalty_ms: 30_000,
            ..gcra_limit(1, 1000, 1)
        };
        let mut s = State::default();
        assert!(check(&mut s, &l, 1, 0).allowed);
        let o = check(&mut s, &l, 1, 10);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_ms, 30_000);
        assert!(
            !check(&mut s, &l, 1, 29_000).allowed,
            "the rate alone would allow it"
        );
        assert!(!s.idle(&l, 29_000));
        assert!(check(&mut s, &l, 1, 30_010).allowed);
    }
}
