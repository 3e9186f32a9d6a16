//! Brute-force and credential-stuffing defence: failed authentications are counted per client
//! address and per user name (or API key prefix) in a window; past the limit the address or the
//! user is locked out for a while. Memory is bounded: at most `max_tracked` counters, the
//! stalest forgotten first.

use std::collections::HashMap;
use std::sync::Mutex;

use rampart_core::UnixMillis;

use super::config::LockoutConfig;

const SHARDS: usize = 16;

/// The failure counters of one process.
#[derive(Debug)]
pub struct Lockout {
    max_failures: u32,
    window_ms: u64,
    lockout_ms: u64,
    per_shard: usize,
    shards: Vec<Mutex<HashMap<String, Entry>>>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    window_start: UnixMillis,
    failures: u32,
    locked_until: UnixMillis,
    touched: UnixMillis,
}

impl Lockout {
    /// Creates the counters; `None` when lockout is off (`max_failures: 0`).
    pub fn new(cfg: &LockoutConfig) -> Option<Self> {
        (cfg.max_failures > 0).then(|| Self {
            max_failures: cfg.max_failures,
            window_ms: cfg.window_secs.saturating_mul(1000),
            lockout_ms: cfg.lockout_secs.saturating_mul(1000),
            per_shard: (cfg.max_tracked / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Entry>> {
        // FNV-1a: stable and cheap; the keys are not attacker-chosen beyond what they send.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[(h as usize) % SHARDS]
    }

    /// If `key` is locked out at `now`, returns the seconds left.
    pub fn locked(&self, key: &str, now: UnixMillis) -> Option<u64> {
        let shard = self.shard(key).lock().ok()?;
        let e = shard.get(key)?;
        (e.locked_until > now).then(|| (e.locked_until - now).div_ceil(1000))
    }

    /// Counts a failure of `key`; returns true if `key` is now locked out.
    pub fn failure(&self, key: &str, now: UnixMillis) -> bool {
        let Ok(mut shard) = self.shard(key).lock() else {
            return false;
        };
        if !shard.contains_key(key) && shard.len() >= self.per_shard {
            evict(&mut shard, now, self.window_ms);
        }
        let e = shard.entry(key.to_owned()).or_insert(Entry {
            window_start: now,
            failures: 0,
            locked_until: 0,
            touched: now,
        });
        if now.saturating_sub(e.window_start) > self.window_ms {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.touched = now;
        if e.failures >= self.max_failures {
            e.locked_until = now.saturating_add(self.lockout_ms);
            e.failures = 0;
            e.window_start = now;
            return true;
        }
        false
    }

    /// Forgets the failures of `key` after a success (a user who typed a wrong password once).
    pub fn success(&self, key: &str) {
        if let Ok(mut shard) = self.shard(key).lock() {
            if shard.get(key).is_some_and(|e| e.locked_until == 0) {
                shard.remove(key);
            }
        }
    }

    /// The number of counters held, for tests and metrics.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}

/// Makes room in a full shard: drops what has expired, else the least recently touched entry.
fn evict(shard: &mut HashMap<String, Entry>, now: UnixMillis, window_ms: u64) {
    let before = shard.len();
    shard.retain(|_, e| e.locked_until > now || now.saturating_sub(e.touched) <= window_ms);
    if shard.len() < before {
        return;
    }
    if let Some(k) = shard
        .iter()
        .min_by_key(|(_, e)| e.touched)
        .map(|(k, _)| k.clone())
    {
        shard.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_failures: u32, max_tracked: usize) -> LockoutConfig {
        LockoutConfig {
            max_failures,
            window_secs: 60,
            lockout_secs: 300,
            max_tracked,
        }
    }

    #[test]
    fn locks_after_the_limit_within_the_window_and_unlocks_later() {
        let l = Lockout::new(&cfg(3, 1000)).unwrap();
        assert!(!l.failure("ip:192.0.2.1", 0));
        assert!(!l.failure("ip:192.0.2.1", 1_000));
        assert_eq!(l.locked("ip:192.0.2.1", 1_000), None);
        assert!(l.failure("ip:192.0.2.1", 2_000));
        assert_eq!(l.locked("ip:192.0.2.1", 2_000), Some(300));
        assert_eq!(l.locked("ip:192.0.2.1", 301_500), Some(1));
        assert_eq!(l.locked("ip:192.0.2.1", 302_001), None);
        // Failures spread wider than the window never lock.
        for i in 0..10 {
            assert!(!l.failure("user:bob", i * 61_000));
        }
        assert!(l.locked("ip:192.0.2.2", 0).is_none());
    }

    #[test]
    fn a_success_forgets_earlier_failures_but_not_a_lockout() {
        let l = Lockout::new(&cfg(2, 1000)).unwrap();
        assert!(!l.failure("user:alice", 0));
        l.success("user:alice");
        assert!(!l.failure("user:alice", 10));
        assert!(l.failure("user:alice", 20));
        l.success("user:alice");
        assert!(l.locked("user:alice", 30).is_some());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let l = Lockout::new(&cfg(5, 1600)).unwrap();
        for i in 0..100_000u64 {
            l.failure(&format!("ip:10.0.{}.{}", i / 256, i % 256), i);
        }
        assert!(l.tracked() <= 1600, "{}", l.tracked());
        assert!(Lockout::new(&cfg(0, 10)).is_none());
    }
}
