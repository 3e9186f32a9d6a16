//! `Forwarded` and `X-Forwarded-*`: finding the real client address behind trusted proxies,
//! and telling the upstream about it.
//!
//! Only a peer in the listener's `trusted_proxies` is believed. The chain is read from the
//! right; the first address that is not a trusted proxy is the client. From an untrusted peer,
//! client-supplied forwarding headers are replaced, never passed on: an attacker cannot make the
//! upstream (or a stage) believe another address.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue, FORWARDED};
use rampart_core::iptable::canonical;
use rampart_core::IpTable;

static XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
static XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
static XFH: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Returns the client address for a request from `peer`.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &IpTable<()>) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    let forwarded = headers.get_all(FORWARDED);
    if forwarded.iter().next().is_some() {
        for v in forwarded {
            let Ok(v) = v.to_str() else { return peer };
            for element in v.split(',') {
                for pair in element.split(';') {
                    if let Some((k, val)) = pair.trim().split_once('=') {
                        if k.trim().eq_ignore_ascii_case("for") {
                            match parse_node(val) {
                                Some(ip) => chain.push(ip),
                                None => return peer,
                            }
                        }
                    }
                }
            }
        }
    } else {
        for v in headers.get_all(&XFF) {
            let Ok(v) = v.to_str() else { return peer };
            for part in v.split(',') {
                match parse_node(part) {
                    Some(ip) => chain.push(ip),
                    None => return peer,
                }
            }
        }
    }
    let mut client = peer;
    for ip in chain.into_iter().rev() {
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// Parses an address as it appears in XFF or `Forwarded` (`for=`): with or without quotes,
/// brackets and a port.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Some(rest) = s.strip_prefix('[') {
        return rest
            .split_once(']')
            .and_then(|(ip, _)| ip.parse().ok())
            .map(canonical);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // IPv4 with a port.
    s.rsplit_once(':')
        .and_then(|(ip, _)| ip.parse::<std::net::Ipv4Addr>().ok())
        .map(IpAddr::V4)
}

/// Rewrites the forwarding headers for the upstream.
///
/// This runs for every request, so the strings are built by hand (an IPv4 address is written
/// digit by digit): the formatting machinery cost more than the rest of the function.
pub(crate) fn rewrite(
    headers: &mut HeaderMap,
    peer: IpAddr,
    trusted_peer: bool,
    proto: &'static str,
    host: Option<&str>,
) {
    let peer = canonical(peer);
    let mut ip = String::with_capacity(48);
    push_ip(&mut ip, peer);
    let mut element = String::with_capacity(64 + host.map_or(0, str::len));
    element.push_str("for=");
    if peer.is_ipv6() {
        element.push_str("\"[");
        element.push_str(&ip);
        element.push_str("]\"");
    } else {
        element.push_str(&ip);
    }
    element.push_str(";proto=");
    element.push_str(proto);
    if let Some(h) = host {
        element.push_str(";host=\"");
        element.extend(h.chars().filter(|c| *c != '"' && *c != '\\'));
        element.push('"');
    }
    if trusted_peer {
        append(headers, &XFF, &ip);
        append(headers, &FORWARDED, &element);
        if !headers.contains_key(&XFP) {
            headers.insert(XFP.clone(), HeaderValue::from_static(proto));
        }
        if let (false, Some(h)) = (headers.contains_key(&XFH), host) {
            set(headers, &XFH, h);
        }
    } else {
        set(headers, &XFF, &ip);
        set(headers, &FORWARDED, &element);
        headers.insert(XFP.clone(), HeaderValue::from_static(proto));
        match host {
            Some(h) => set(headers, &XFH, h),
            None => {
                headers.remove(&XFH);
            }
        }
    }
}

/// Writes an address as `Display` does, without the formatting machinery for IPv4.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

fn set(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            headers.insert(name.clone(), v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

fn append(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    let existing: Vec<String> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let joined = if existing.is_empty() {
        value.to_owned()
    } else {
        format!("{}, {value}", existing.join(", "))
    };
    set(headers, name, &joined);
}

#[cfg(test)]
mod tests {
    use rampart_core::Cidr;

    use super::*;

    fn trusted() -> IpTable<()> {
        let mut t = IpTable::new();
        t.insert("10.0.0.0/8".parse::<Cidr>().unwrap(), ());
        t
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for s in [
            "0.0.0.0",
            "1.2.3.4",
            "10.100.255.9",
            "255.255.255.255",
            "192.0.2.60",
            "2001:db8::1",
            "::1",
        ] {
            let mut out = String::new();
            push_ip(&mut out, ip(s));
            assert_eq!(out, ip(s).to_string());
        }
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let headers = h(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_ip(ip("198.51.100.9"), &headers, &trusted()),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn trusted_chain_is_read_from_the_right() {
        let headers = h(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.1.1.1")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &trusted()),
            ip("203.0.113.5")
        );
        let headers = h(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.5:4444"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &trusted()),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn forwarded_header_is_preferred_and_parsed() {
        let headers = h(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &trusted()),
            ip("2001:db8:cafe::17")
        );
    }

    #[test]
    fn garbage_falls_back_to_the_peer() {
        let headers = h(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &trusted()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn rewrite_replaces_from_untrusted_and_appends_from_trusted() {
        let mut headers = h(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "gopher"),
        ]);
        rewrite(
            &mut headers,
            ip("198.51.100.9"),
            false,
            "https",
            Some("api.example.com"),
        );
        assert_eq!(headers["x-forwarded-for"], "198.51.100.9");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(
            headers["forwarded"],
            "for=198.51.100.9;proto=https;host=\"api.example.com\""
        );
        let mut headers = h(&[("x-forwarded-for", "203.0.113.5")]);
        rewrite(&mut headers, ip("10.0.0.2"), true, "http", None);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.5, 10.0.0.2");
    }
}
