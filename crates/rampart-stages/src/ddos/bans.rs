//! Active bans: client addresses and prefixes refused until a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

/// One ban.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// `ip:203.0.113.7` or `net:203.0.113.0/24`.
    pub key: String,
    /// Banned until (ms since the epoch).
    pub until_ms: u64,
}

/// The bans of this node (and, with Redis, of every node).
#[derive(Debug, Default)]
pub struct BanTable {
    map: RwLock<HashMap<String, u64>>,
    len: AtomicUsize,
    /// The prefix lengths of the network bans (IPv6 flag, length): a client is checked
    /// against each, so a network ban of any length works.
    net_lengths: RwLock<Vec<(bool, u8)>>,
}

fn net_length(key: &str) -> Option<(bool, u8)> {
    let net = key.strip_prefix("net:")?;
    let (addr, len) = net.split_once('/')?;
    Some((addr.contains(':'), len.parse().ok()?))
}

impl BanTable {
    /// Returns when the key's ban ends, if it is banned at `now_ms`.
    pub fn banned_until(&self, key: &str, now_ms: u64) -> Option<u64> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(key).copied().filter(|u| *u > now_ms)
    }

    /// Returns the ban that covers a client address (its own, or a network's of any banned
    /// prefix length) with its end, if one is in force.
    pub fn banned_ip(&self, ip: std::net::IpAddr, now_ms: u64) -> Option<(String, u64)> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let ip = rampart_core::iptable::canonical(ip);
        let key = format!("ip:{ip}");
        if let Some(u) = self.banned_until(&key, now_ms) {
            return Some((key, u));
        }
        let lens = self
            .net_lengths
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (v6, len) in lens {
            if v6 != ip.is_ipv6() {
                continue;
            }
            let key = format!("net:{}/{len}", rampart_core::iptable::masked(ip, len, len));
            if let Some(u) = self.banned_until(&key, now_ms) {
                return Some((key, u));
            }
        }
        None
    }

    /// Bans a key until `until_ms` (a longer ban already there stays). Returns true if the
    /// key was not banned before.
    pub fn ban(&self, key: &str, until_ms: u64, now_ms: u64) -> bool {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, u| *u > now_ms);
        }
        let fresh = map.get(key).is_none_or(|u| *u <= now_ms);
        let entry = map.entry(key.to_owned()).or_insert(0);
        *entry = (*entry).max(until_ms);
        self.len.store(map.len(), Ordering::Relaxed);
        if let Some(l) = net_length(key) {
            let mut lens = self.net_lengths.write().unwrap_or_else(|p| p.into_inner());
            if !lens.contains(&l) {
                lens.push(l);
            }
        }
        metrics::gauge!("rampart_ddos_bans").set(map.len() as f64);
        fresh
    }

    /// Lifts a ban. Returns true if there was one.
    pub fn unban(&self, key: &str) -> bool {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let had = map.remove(key).is_some();
        self.len.store(map.len(), Ordering::Relaxed);
        if net_length(key).is_some() {
            let mut lens = self.net_lengths.write().unwrap_or_else(|p| p.into_inner());
            lens.retain(|l| map.keys().any(|k| net_length(k) == Some(*l)));
        }
        metrics::gauge!("rampart_ddos_bans").set(map.len() as f64);
        had
    }

    /// The bans in force at `now_ms`, soonest end first.
    pub fn list(&self, now_ms: u64) -> Vec<Ban> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Ban> = map
            .iter()
            .filter(|(_, u)| **u > now_ms)
            .map(|(k, u)| Ban {
                key: k.clone(),
                until_ms: *u,
            })
            .collect();
        out.sort_by_key(|b| b.until_ms);
        out
    }

    /// Takes every ban of another table (a reload).
    pub fn absorb(&self, old: &BanTable, now_ms: u64) {
        for b in old.list(now_ms) {
            self.ban(&b.key, b.until_ms, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_expire_and_lift() {
        let t = BanTable::default();
        assert_eq!(t.banned_until("ip:1.2.3.4", 0), None);
        assert!(t.ban("ip:1.2.3.4", 1000, 0));
        assert!(
            !t.ban("ip:1.2.3.4", 500, 10),
            "a shorter ban keeps the longer one"
        );
        assert_eq!(t.banned_until("ip:1.2.3.4", 999), Some(1000));
        assert_eq!(t.banned_until("ip:1.2.3.4", 1000), None);
        assert!(
            t.ban("ip:1.2.3.4", 3000, 2000),
            "a ban after one ended is new"
        );
        assert_eq!(t.list(2500).len(), 1);
        assert!(t.unban("ip:1.2.3.4"));
        assert!(t.list(2500).is_empty());
    }

    #[test]
    fn a_network_ban_of_any_length_covers_its_addresses() {
        let t = BanTable::default();
        let inside: std::net::IpAddr = "203.0.113.77".parse().unwrap();
        let outside: std::net::IpAddr = "203.0.112.1".parse().unwrap();
        assert!(t.ban("net:203.0.113.0/24", 1000, 0));
        assert!(t.ban("net:2001:db8::/32", 1000, 0));
        assert_eq!(
            t.banned_ip(inside, 10),
            Some(("net:203.0.113.0/24".to_owned(), 1000))
        );
        assert_eq!(t.banned_ip(outside, 10), None);
        assert!(t.banned_ip("2001:db8:1::5".parse().unwrap(), 10).is_some());
        assert!(t.unban("net:203.0.113.0/24"));
        assert_eq!(t.banned_ip(inside, 10), None);
    }
}
