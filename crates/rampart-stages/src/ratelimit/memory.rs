//! The in-memory store: sharded, bounded, forgetting idle keys.
//!
//! Keys are kept as 64-bit keyed hashes (SipHash with a per-process random key), so a key
//! costs the same whatever its length and an attacker cannot aim collisions. Each shard holds
//! at most `max_keys / SHARDS` keys; when a new key finds its shard full, the shard first drops
//! every idle key (whole quota, no penalty running), then, if it is still full, the least
//! recently seen of a sample. A flood of distinct keys therefore costs a bounded amount of
//! memory and at worst makes the limiter forget the quietest keys, never the busiest.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;

use super::algo::{self, Limit, Outcome, State};

const SHARDS: usize = 64;

#[derive(Debug)]
struct Entry {
    state: State,
    limit: Limit,
    seen_ms: u64,
}

/// A bounded map from (rule, key) to limiter state.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<u64, Entry>>>,
    per_shard: usize,
    hasher: std::hash::RandomState,
}

impl MemoryStore {
    /// A store holding at most about `max_keys` keys.
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (max_keys / SHARDS).max(1),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, rule: &str, key: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        rule.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    }

    /// Checks one request of `cost` units for `key` under the rule `rule` at `now_ms`. The
    /// limit is kept with the key, so that eviction can tell when it is idle.
    pub fn check(&self, rule: &str, key: &str, limit: &Limit, cost: u64, now_ms: u64) -> Outcome {
        let h = self.hash(rule, key);
        let shard = &self.shards[(h as usize) % SHARDS];
        let mut map = match shard.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !map.contains_key(&h) && map.len() >= self.per_shard {
            evict(&mut map, now_ms, self.per_shard);
        }
        let entry = map.entry(h).or_insert(Entry {
            state: State::default(),
            limit: *limit,
            seen_ms: now_ms,
        });
        entry.seen_ms = now_ms;
        entry.limit = *limit;
        algo::check(&mut entry.state, limit, cost, now_ms)
    }

    /// Returns how many keys are held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// Returns true if no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard: idle keys go; if that is not an eighth of the shard, the
/// least recently seen eighth goes too. One pass frees room for many inserts, so the cost per
/// insert stays constant under a flood.
fn evict(map: &mut HashMap<u64, Entry>, now_ms: u64, per_shard: usize) {
    map.retain(|_, e| !e.state.idle(&e.limit, now_ms));
    let target = per_shard - per_shard / 8 - 1;
    if map.len() > target {
        let mut seen: Vec<u64> = map.values().map(|e| e.seen_ms).collect();
        let cut = map.len() - target;
        let (_, nth, _) = seen.select_nth_unstable(cut.saturating_sub(1));
        let threshold = *nth;
        let mut removed = 0;
        map.retain(|_, e| {
            if removed < cut && e.seen_ms <= threshold {
                removed += 1;
                false
            } else {
                true
            }
        });
    }
}

/// The store of a configuration, handed on to the next one at a reload so that counts and
/// penalties survive it.
#[derive(Debug)]
pub struct SharedStore {
    inner: arc_swap::ArcSwap<MemoryStore>,
    max_keys: usize,
}

impl SharedStore {
    /// A fresh store of at most `max_keys` keys.
    pub fn new(max_keys: usize) -> Self {
        Self {
            inner: arc_swap::ArcSwap::from_pointee(MemoryStore::new(max_keys)),
            max_keys,
        }
    }

    /// Returns the store.
    pub fn get(&self) -> arc_swap::Guard<std::sync::Arc<MemoryStore>> {
        self.inner.load()
    }

    /// Takes over the state of the store this one replaces, when it has the same bound.
    pub fn inherit(&self, old: &SharedStore) {
        if self.max_keys == old.max_keys {
            self.inner.store(old.inner.load_full());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::algo::Algorithm;
    use super::*;

    fn limit() -> Limit {
        Limit {
            requests: 2,
            window_ms: 1000,
            burst: 2,
            algorithm: Algorithm::Gcra,
            penalty_ms: 0,
        }
    }

    #[test]
    fn keys_are_separate_per_rule_and_key() {
        let s = MemoryStore::new(1000);
        let l = limit();
        assert!(s.check("r", "a", &l, 1, 0).allowed);
        assert!(s.check("r", "a", &l, 1, 0).allowed);
        assert!(!s.check("r", "a", &l, 1, 0).allowed);
        assert!(s.check("r", "b", &l, 1, 0).allowed);
        assert!(s.check("other", "a", &l, 1, 0).allowed);
    }

    #[test]
    fn a_million_distinct_keys_stay_bounded_and_busy_keys_are_kept() {
        let max = 10_000;
        let s = MemoryStore::new(max);
        let l = limit();
        let mut busy_allowed = 0;
        for i in 0..1_000_000u64 {
            let now = i / 1000; // a thousand new keys per millisecond, for one second
            s.check("r", &format!("flood-{i}"), &l, 1, now);
            if i % 1000 == 0 {
                // A busy client, once a millisecond: it keeps its state (2 per second, and a
                // burst of 2), so the flood cannot buy it a fresh quota by pushing it out.
                if s.check("r", "busy", &l, 1, now).allowed {
                    busy_allowed += 1;
                }
            }
            if i % 10_000 == 0 {
                assert!(s.len() <= max, "{} keys at {i}", s.len());
            }
        }
        assert!(s.len() <= max);
        assert!(busy_allowed <= 4, "busy got {busy_allowed}");
    }

    #[test]
    fn idle_keys_go_first() {
        let s = MemoryStore::new(SHARDS); // one key per shard
        let l = limit();
        s.check("r", "old", &l, 1, 0);
        // Much later, every other key finds "old" idle and takes its place when they share
        // a shard; the store never grows past its bound.
        for i in 0..1000 {
            s.check("r", &format!("k{i}"), &l, 1, 10_000 + i);
        }
        assert!(s.len() <= 2 * SHARDS);
    }
}
