//! Longest-prefix matching of IPv4 and IPv6 addresses against CIDR prefixes.
//!
//! A binary trie per address family: a lookup walks at most the address length in bits (32 or
//! 128 steps) whatever the number of prefixes, and remembers the value of the longest prefix
//! seen on the way. Used by the `iprules` stage and by named lists.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix, such as `203.0.113.0/24` or `2001:db8::/32`. A bare address is a
/// full-length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Returns the network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Returns the prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Returns true for a zero-length prefix (the whole family).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns true if `ip` falls in this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                let (a, _) = bits(self.addr);
                let (b, _) = bits(ip);
                mask(a, self.len, width(ip)) == mask(b, self.len, width(ip))
            }
            _ => false,
        }
    }
}

/// Why a prefix did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part is not an IP address.
    #[error("\"{0}\" is not an IP address or CIDR prefix")]
    Address(String),
    /// The length is not a number or is too long for the family.
    #[error("prefix length in \"{0}\" must be 0-32 for IPv4 and 0-128 for IPv6")]
    Length(String),
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| CidrError::Address(s.to_owned()))?;
        let max = width(addr);
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| CidrError::Length(s.to_owned()))?,
            None => max,
        };
        let (b, _) = bits(addr);
        Ok(Self {
            addr: from_bits(mask(b, len, max), addr),
            len,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// Returns the address as a left-aligned u128 and its width.
fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(b: u128, len: u8, _width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        b & (u128::MAX << (128 - u32::from(len)))
    }
}

fn from_bits(b: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(
            u32::try_from(b >> 96).unwrap_or(0),
        )),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(b)),
    }
}

#[derive(Clone, Debug)]
struct Node<V> {
    children: [u32; 2],
    value: Option<V>,
}

/// A map from prefixes to values with longest-prefix lookup.
#[derive(Clone, Debug)]
pub struct IpTable<V> {
    v4: Vec<Node<V>>,
    v6: Vec<Node<V>>,
    len: usize,
}

impl<V> Default for IpTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> IpTable<V> {
    /// Creates an empty table.
    pub fn new() -> Self {
        Self {
            v4: vec![Node {
                children: [0, 0],
                value: None,
            }],
            v6: vec![Node {
                children: [0, 0],
                value: None,
            }],
            len: 0,
        }
    }

    /// Returns the number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true if the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts a prefix; an existing value for the same prefix is replaced and returned.
    pub fn insert(&mut self, cidr: Cidr, value: V) -> Option<V> {
        let (b, _) = bits(cidr.addr);
        let nodes = if cidr.addr.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        };
        let mut at = 0usize;
        for i in 0..cidr.len {
            let bit = usize::from((b >> (127 - u32::from(i))) & 1 == 1);
            let next = nodes[at].children[bit];
            at = if next == 0 {
                nodes.push(Node {
                    children: [0, 0],
                    value: None,
                });
                let idx = nodes.len() - 1;
                // Node indexes fit in u32: a table holds far fewer than 4 billion nodes.
                nodes[at].children[bit] = u32::try_from(idx).unwrap_or(u32::MAX);
                idx
            } else {
                next as usize
            };
        }
        let old = nodes[at].value.replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Returns the value of the longest prefix containing `ip`, with that prefix's length.
    pub fn lookup(&self, ip: IpAddr) -> Option<(&V, u8)> {
        let ip = canonical(ip);
        let (b, w) = bits(ip);
        let nodes = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        let mut at = 0usize;
        let mut best = nodes[0].value.as_ref().map(|v| (v, 0u8));
        for i in 0..w {
            let bit = usize::from((b >> (127 - u32::from(i))) & 1 == 1);
            let next = nodes[at].children[bit];
            if next == 0 {
                break;
            }
            at = next as usize;
            if let Some(v) = nodes[at].value.as_ref() {
                best = Some((v, i + 1));
            }
        }
        best
    }

    /// Returns true if some prefix contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.lookup(ip).is_some()
    }
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) to IPv4, so that a dual-stack listener
/// matches IPv4 rules.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Keeps the first `v4` bits of an IPv4 address, or the first `v6` bits of an IPv6 one (after
/// [`canonical`]): the network a client is counted by.
pub fn masked(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(v4.min(32)))
                .unwrap_or(0);
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(a) & keep))
        }
        IpAddr::V6(a) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(v6.min(128)))
                .unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a) & keep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = IpTable::new();
        t.insert(c("10.0.0.0/8"), "block");
        t.insert(c("10.1.2.0/24"), "allow");
        assert_eq!(t.lookup("10.1.2.3".parse().unwrap()), Some((&"allow", 24)));
        assert_eq!(t.lookup("10.9.9.9".parse().unwrap()), Some((&"block", 8)));
        assert_eq!(t.lookup("11.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let mut t = IpTable::new();
        t.insert(c("2001:db8::/32"), 1);
        t.insert(c("192.0.2.0/24"), 2);
        assert_eq!(t.lookup("2001:db8:1::1".parse().unwrap()), Some((&1, 32)));
        assert_eq!(
            t.lookup("::ffff:192.0.2.7".parse().unwrap()),
            Some((&2, 24))
        );
        assert_eq!(t.lookup("2001:db9::1".parse().unwrap()), None);
    }

    #[test]
    fn zero_prefix_matches_the_family() {
        let mut t = IpTable::new();
        t.insert(c("0.0.0.0/0"), ());
        assert!(t.contains("8.8.8.8".parse().unwrap()));
        assert!(!t.contains("::1".parse().unwrap()));
    }

    #[test]
    fn host_bits_are_cleared_and_bad_input_rejected() {
        assert_eq!(c("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(c("2001:db8::1").len(), 128);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope/8".parse::<Cidr>().is_err());
        assert!(c("10.0.0.0/8").contains("10.200.0.1".parse().unwrap()));
        assert!(!c("10.0.0.0/8").contains("::1".parse().unwrap()));
    }

    #[test]
    fn matches_agree_with_a_linear_scan() {
        // A small deterministic pseudo-random cross-check against Cidr::contains.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut prefixes = Vec::new();
        let mut t = IpTable::new();
        for i in 0..300u32 {
            let addr = std::net::Ipv4Addr::from(u32::try_from(next() >> 32).unwrap());
            let len = u8::try_from(next() % 33).unwrap();
            let p = c(&format!("{addr}/{len}"));
            t.insert(p, i);
            prefixes.push((p, i));
        }
        for _ in 0..2000 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(
                u32::try_from(next() >> 32).unwrap(),
            ));
            let want = prefixes
                .iter()
                .filter(|(p, _)| p.contains(ip))
                .map(|(p, _)| p.len())
                .max();
            assert_eq!(t.lookup(ip).map(|(_, l)| l), want, "{ip}");
        }
    }
}
