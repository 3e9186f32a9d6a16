//! Path normalisation and segment classes (docs/discovery.md, "Segments").
//!
//! A hand-written byte scanner per class, no regex: this runs for every observed segment.

/// What a path segment looks like.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Class {
    /// 1 to 19 ASCII digits.
    Int,
    /// `8-4-4-4-12` hex.
    Uuid,
    /// 26 Crockford base32 characters, the first `0` to `7`.
    Ulid,
    /// 24 hex digits (a MongoDB ObjectId).
    ObjectId,
    /// 16 or more hex digits with a digit and a letter (digests).
    Hex,
    /// A lower-case prefix of 2 to 12 letters, `_` or `-`, then 8 or more alphanumerics with a
    /// digit (`cus_NffrFeUfNV2Hib`).
    Prefixed,
    /// `YYYY-MM-DD`, a valid date.
    Date,
    /// An RFC 3339 date and time.
    DateTime,
    /// An e-mail address.
    Email,
    /// An IPv4 or IPv6 address.
    Ip,
    /// 20 or more of `[A-Za-z0-9_-]`, digits and letters mixed, high entropy.
    Token,
    /// `v2`, `v1.1`, `2.0`: stays literal.
    Version,
    /// Anything else: a word, a slug, a name.
    Word,
}

impl Class {
    /// Strong classes become variables at once; weak ones only on evidence.
    pub fn is_strong(self) -> bool {
        !matches!(self, Self::Version | Self::Word)
    }

    /// The name used in templates and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Uuid => "uuid",
            Self::Ulid => "ulid",
            Self::ObjectId => "objectid",
            Self::Hex => "hex",
            Self::Prefixed => "prefixed",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Email => "email",
            Self::Ip => "ip",
            Self::Token => "token",
            Self::Version => "version",
            Self::Word => "word",
        }
    }
}

/// Words that stay literal whatever their siblings do (a user or the declared spec can say
/// otherwise).
pub const RESERVED: &[&str] = &[
    "api",
    "rest",
    "graphql",
    ".well-known",
    "me",
    "self",
    "current",
    "search",
    "count",
    "batch",
    "bulk",
    "export",
    "import",
    "health",
    "status",
    "login",
    "logout",
];

/// The class of a (decoded) segment.
pub fn classify(s: &str) -> Class {
    let b = s.as_bytes();
    let n = b.len();
    if n == 0 {
        return Class::Word;
    }
    if n <= 19 && b.iter().all(u8::is_ascii_digit) {
        return Class::Int;
    }
    if is_version(b) {
        return Class::Version;
    }
    if n == 36 && is_uuid(b) {
        return Class::Uuid;
    }
    if n == 24 && b.iter().all(u8::is_ascii_hexdigit) {
        return Class::ObjectId;
    }
    if n == 26 && matches!(b[0], b'0'..=b'7') && b.iter().all(|c| is_crockford(*c)) {
        return Class::Ulid;
    }
    if n >= 16
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
    {
        return Class::Hex;
    }
    if n == 10 && is_date(b) {
        return Class::Date;
    }
    if n > 10 && is_date(&b[..10]) && matches!(b[10], b'T' | b't' | b' ') {
        return Class::DateTime;
    }
    if is_email(s) {
        return Class::Email;
    }
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Class::Ip;
    }
    if is_prefixed(b) {
        return Class::Prefixed;
    }
    if is_token(b) {
        return Class::Token;
    }
    Class::Word
}

fn is_version(b: &[u8]) -> bool {
    let rest = match b {
        [b'v' | b'V', rest @ ..] if !rest.is_empty() => rest,
        // `2.0`, `1.1`: two numbers and one dot.
        _ if b.iter().filter(|c| **c == b'.').count() == 1 => b,
        _ => return false,
    };
    rest.split(|c| *c == b'.')
        .all(|p| !p.is_empty() && p.len() <= 4 && p.iter().all(u8::is_ascii_digit))
}

fn is_uuid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

fn is_crockford(c: u8) -> bool {
    c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'L' | b'O' | b'U'))
}

fn is_date(b: &[u8]) -> bool {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = std::str::from_utf8(&b[r]).ok()?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return false,
    };
    (1000..=9999).contains(&y) && (1..=days).contains(&d)
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

fn is_prefixed(b: &[u8]) -> bool {
    let Some(sep) = b.iter().position(|c| *c == b'_' || *c == b'-') else {
        return false;
    };
    let (prefix, rest) = (&b[..sep], &b[sep + 1..]);
    (2..=12).contains(&prefix.len())
        && prefix.iter().all(u8::is_ascii_lowercase)
        && rest.len() >= 8
        && rest.iter().all(u8::is_ascii_alphanumeric)
        && rest.iter().any(u8::is_ascii_digit)
}

fn is_token(b: &[u8]) -> bool {
    if b.len() < 20
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        || !b.iter().any(u8::is_ascii_digit)
        || !b.iter().any(u8::is_ascii_alphabetic)
    {
        return false;
    }
    let mut counts = [0u32; 256];
    for c in b {
        counts[usize::from(*c)] += 1;
    }
    let n = b.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum();
    bits >= 3.5
}

/// A path split into decoded segments, normalised as the router does: unreserved characters
/// percent-decoded (anything else stays encoded), dot segments removed, empty segments
/// dropped, `;matrix` parameters cut. Case is kept.
pub fn segments(path: &str) -> Vec<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let raw = raw.split(';').next().unwrap_or("");
        let seg = decode_unreserved(raw);
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(seg),
        }
    }
    out
}

fn decode_unreserved(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let v = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = v.filter(|v| v.is_ascii_alphanumeric() || b"-._~".contains(v)) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    // Only `%XX` of ASCII characters were replaced: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let cases = [
            ("238", Class::Int),
            ("550e8400-e29b-41d4-a716-446655440000", Class::Uuid),
            ("01J9ZQ3K8M4X7T2B5C6D8E9F0G", Class::Ulid),
            ("64b7f0a1c2d3e4f5a6b7c8d9", Class::ObjectId),
            ("da39a3ee5e6b4b0d3255bfef95601890afd80709", Class::Hex),
            ("cus_NffrFeUfNV2Hib", Class::Prefixed),
            ("2026-08-16", Class::Date),
            ("2026-02-30", Class::Word),
            ("2026-08-16T10:00:00Z", Class::DateTime),
            ("ada@example.com", Class::Email),
            ("203.0.113.7", Class::Ip),
            ("2001:db8::1", Class::Ip),
            ("Zu2uNCmGDnmNCel8gbFQ", Class::Token),
            ("v2", Class::Version),
            ("2.0", Class::Version),
            ("v1.1", Class::Version),
            ("onboardingStatus", Class::Word),
            ("octocat", Class::Word),
            ("pullrequests", Class::Word),
            ("FR", Class::Word),
            ("hello-world-2", Class::Word),
        ];
        for (s, c) in cases {
            assert_eq!(classify(s), c, "{s}");
        }
        assert!(Class::Int.is_strong() && !Class::Word.is_strong() && !Class::Version.is_strong());
    }

    #[test]
    fn normalisation() {
        assert_eq!(segments("/a//b/./c/../d/"), ["a", "b", "d"]);
        assert_eq!(segments("/users/%61da;v=1?x=1"), ["users", "ada"]);
        assert_eq!(
            segments("/a%2Fb/c"),
            ["a%2Fb", "c"],
            "an encoded slash stays encoded"
        );
        assert_eq!(segments("/Users/1"), ["Users", "1"], "case is kept");
        assert_eq!(segments("/caf%C3%A9/é"), ["caf%C3%A9", "é"]);
    }
}
