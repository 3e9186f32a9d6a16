//! Persistent collections: `IP`, `GLOBAL`, `SESSION`, `USER` and `RESOURCE`, which outlive a
//! transaction (`initcol:ip=%{remote_addr}`, `setvar:ip.hits=+1`, `expirevar:ip.hits=60`).
//!
//! One [`Store`] per rule set, in memory, shared by every transaction of the process. Time is
//! the caller's (a transaction is given its clock), so replays are deterministic. The store is
//! bounded: a record untouched for `SecCollectionTimeout` (3600 s by default) is gone, and at
//! `max_records` the expired records, then the least recently touched, make room for a new
//! one, so a flood of addresses cannot grow it without limit.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ast::Collection;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// ModSecurity's default `SecCollectionTimeout`, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;

/// The most records a store holds by default.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// The persistent collections of one rule set.
#[derive(Debug)]
pub struct Store {
    records: Mutex<Map<(Collection, String), Record>>,
    max_records: usize,
    timeout_ms: u64,
}

#[derive(Debug, Default)]
struct Record {
    vars: Map<String, Var>,
    touched_ms: u64,
}

#[derive(Debug)]
struct Var {
    value: Vec<u8>,
    expires_ms: Option<u64>,
}

impl Store {
    /// A store whose records expire `timeout_secs` after their last change, holding at most
    /// `max_records`.
    pub fn new(timeout_secs: u64, max_records: usize) -> Self {
        Self {
            records: Mutex::new(Map::default()),
            max_records: max_records.max(1),
            timeout_ms: timeout_secs.saturating_mul(1000),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<(Collection, String), Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live variables of a record (names lowercased), none when it does not exist.
    pub fn load(&self, c: Collection, key: &str, now_ms: u64) -> Vec<(String, Vec<u8>)> {
        let mut map = self.lock();
        let id = (c, key.to_owned());
        let Some(r) = map.get(&id) else {
            return Vec::new();
        };
        if r.touched_ms.saturating_add(self.timeout_ms) <= now_ms {
            map.remove(&id);
            return Vec::new();
        }
        r.vars
            .iter()
            .filter(|(_, v)| v.expires_ms.is_none_or(|e| e > now_ms))
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }

    /// Sets a variable (`None` deletes it), creating the record when needed.
    pub fn set(&self, c: Collection, key: &str, var: &str, value: Option<Vec<u8>>, now_ms: u64) {
        let mut map = self.lock();
        let id = (c, key.to_owned());
        if !map.contains_key(&id) {
            if value.is_none() {
                return;
            }
            self.make_room(&mut map, now_ms);
        }
        let r = map.entry(id).or_default();
        r.touched_ms = now_ms;
        match value {
            Some(v) => {
                let expires_ms = r.vars.get(var).and_then(|old| old.expires_ms);
                r.vars.insert(
                    var.to_owned(),
                    Var {
                        value: v,
                        expires_ms: expires_ms.filter(|e| *e > now_ms),
                    },
                );
            }
            None => {
                r.vars.remove(var);
            }
        }
    }

    /// Makes a variable expire at `at_ms` (`expirevar`).
    pub fn expire(&self, c: Collection, key: &str, var: &str, at_ms: u64) {
        let mut map = self.lock();
        if let Some(v) = map
            .get_mut(&(c, key.to_owned()))
            .and_then(|r| r.vars.get_mut(var))
        {
            v.expires_ms = Some(at_ms);
        }
    }

    /// How many records the store holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// At the limit: expired records go first, then the least recently touched one.
    fn make_room(&self, map: &mut Map<(Collection, String), Record>, now_ms: u64) {
        if map.len() < self.max_records {
            return;
        }
        let timeout = self.timeout_ms;
        map.retain(|_, r| r.touched_ms.saturating_add(timeout) > now_ms);
        if map.len() < self.max_records {
            return;
        }
        if let Some(oldest) = map
            .iter()
            .min_by_key(|(_, r)| r.touched_ms)
            .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT_SECS, DEFAULT_MAX_RECORDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_expire_and_stay_bounded() {
        let s = Store::new(10, 3);
        s.set(Collection::Ip, "a", "hits", Some(b"1".to_vec()), 0);
        s.expire(Collection::Ip, "a", "hits", 5_000);
        assert_eq!(
            s.load(Collection::Ip, "a", 1_000),
            [("hits".into(), b"1".to_vec())]
        );
        // The variable expires, then the record (10 s after its last change).
        assert!(s.load(Collection::Ip, "a", 6_000).is_empty());
        s.set(Collection::Ip, "a", "x", Some(b"y".to_vec()), 6_000);
        assert_eq!(s.load(Collection::Ip, "a", 15_000).len(), 1);
        assert!(s.load(Collection::Ip, "a", 16_000).is_empty());
        // A flood of keys: never more than three records, the newest kept.
        for i in 0..100u64 {
            s.set(
                Collection::Ip,
                &i.to_string(),
                "n",
                Some(b"1".to_vec()),
                20_000 + i,
            );
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.load(Collection::Ip, "99", 20_100).len(), 1);
        assert!(s.load(Collection::Ip, "0", 20_100).is_empty());
    }
}
