//! The detectors' parsers: each looks at one candidate position and decides, from the bytes
//! around it only (never from where a scan began), whether a match starts there and where it
//! ends. That locality is what makes a streamed scan find exactly what a whole scan finds.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::validate::{card_network, iban_valid, shannon_entropy, us_ssn_valid};

pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `i` as a little-endian word (the caller checks `i + 8 <= len`).
#[inline]
fn word(buf: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[i..i + 8]);
    u64::from_le_bytes(w)
}

/// The high bit of each byte of `w` that is an ASCII digit, exactly: `b ^ 0x30 < 10`, tested
/// without borrows between bytes (`(x & 0x7f) + 0x76` sets the high bit when `x >= 10`).
#[inline]
fn digit_mask(w: u64) -> u64 {
    let x = w ^ (ONES * 0x30);
    let ge10 = ((x & !HIGH) + ONES * 0x76) & HIGH;
    !ge10 & !x & HIGH
}

/// The position of the first ASCII digit at or after `i`, eight bytes at a time.
pub(crate) fn next_digit(buf: &[u8], mut i: usize) -> Option<usize> {
    while i + 8 <= buf.len() {
        let m = digit_mask(word(buf, i));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    (i..buf.len()).find(|&j| buf[j].is_ascii_digit())
}

/// The end of the run of digits that starts at `s`, eight bytes at a time.
pub(crate) fn run_end(buf: &[u8], mut j: usize) -> usize {
    while j + 8 <= buf.len() {
        let m = !digit_mask(word(buf, j)) & HIGH;
        if m != 0 {
            return j + (m.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < buf.len() && buf[j].is_ascii_digit() {
        j += 1;
    }
    j
}

/// A run of digit groups from `s`: the digits (at most 20 read), where separators came (after
/// how many digits, and at which byte), which separator (one kind only), and where the run
/// ends. `overflow` is set when the run goes on past 20 digits.
pub(crate) struct Groups {
    pub digits: [u8; 20],
    pub n: usize,
    pub seps: [usize; 8],
    pub sep_at: [usize; 8],
    pub n_seps: usize,
    pub sep: u8,
    pub end: usize,
    pub overflow: bool,
}

/// Reads digit groups separated by a single `sep_set` byte (the same one throughout).
pub(crate) fn groups(buf: &[u8], s: usize, sep_set: &[u8]) -> Groups {
    let mut g = Groups {
        digits: [0; 20],
        n: 0,
        seps: [0; 8],
        sep_at: [0; 8],
        n_seps: 0,
        sep: 0,
        end: s,
        overflow: false,
    };
    let mut j = s;
    let len = buf.len();
    while j < len {
        let b = buf[j];
        if b.is_ascii_digit() {
            if g.n == 20 {
                g.overflow = true;
                break;
            }
            g.digits[g.n] = b;
            g.n += 1;
            j += 1;
        } else if sep_set.contains(&b)
            && (g.sep == 0 || g.sep == b)
            && g.n_seps < 8
            && buf.get(j + 1).is_some_and(u8::is_ascii_digit)
        {
            g.sep = b;
            g.seps[g.n_seps] = g.n;
            g.sep_at[g.n_seps] = j;
            g.n_seps += 1;
            j += 1;
        } else {
            break;
        }
    }
    g.end = j;
    g
}

/// After a number: not more of a word, nor a decimal part (a full stop is fine).
fn clean_end(buf: &[u8], end: usize) -> bool {
    end >= buf.len()
        || !(buf[end].is_ascii_alphanumeric()
            || (matches!(buf[end], b'.' | b',')
                && buf.get(end + 1).is_some_and(u8::is_ascii_digit)))
}

/// Payment cards (12 to 19 digits, in groups separated by single spaces or dashes) and US
/// SSNs (`ddd-dd-dddd`, `ddd dd dddd`, `ddd.dd.dddd`) from a digit run that starts at `s`.
/// A card is the longest prefix ending at a group boundary that is a valid card number, so
/// that cards listed one after another (`4012888888881881 4012 8888 8888 1881`) are each
/// found. Returns (card end, ssn end).
pub(crate) fn card_or_ssn(buf: &[u8], s: usize, r: usize) -> (Option<usize>, Option<usize>) {
    // What the first run of digits (`s..r`) allows: a compact card, the first group of a
    // grouped card (at most six digits), the first group of an SSN (three).
    let first = r - s;
    let next = buf.get(r).copied();
    let grouped = matches!(next, Some(b' ' | b'-')) && first <= 6;
    let maybe_card = (12..=19).contains(&first) || grouped;
    let maybe_ssn = first == 3 && matches!(next, Some(b' ' | b'-' | b'.'));
    if !maybe_card && !maybe_ssn {
        return (None, None);
    }
    // Not inside a number: after a digit or a decimal point (or a decimal comma).
    let inside = s > 0
        && (buf[s - 1].is_ascii_digit()
            || buf[s - 1] == b'.'
            || (s > 1 && buf[s - 1] == b',' && buf[s - 2].is_ascii_digit()));
    if inside {
        return (None, None);
    }
    let g = groups(buf, s, b" -");
    let mut card = None;
    if maybe_card && g.n >= 12 {
        // The whole run (when it ends cleanly), then each shorter prefix at a separator.
        let whole = (!g.overflow && g.n <= 19 && clean_end(buf, g.end)).then_some((g.n, g.end));
        let prefixes = (0..g.n_seps).rev().map(|k| (g.seps[k], g.sep_at[k]));
        for (digits, end) in whole.into_iter().chain(prefixes) {
            if (12..=19).contains(&digits) && card_network(&g.digits[..digits]).is_some() {
                card = Some(end);
                break;
            }
        }
    }
    let ssn_shape = |sep: u8| {
        buf.len() >= s + 11
            && buf[s..s + 3].iter().all(u8::is_ascii_digit)
            && buf[s + 3] == sep
            && buf[s + 4..s + 6].iter().all(u8::is_ascii_digit)
            && buf[s + 6] == sep
            && buf[s + 7..s + 11].iter().all(u8::is_ascii_digit)
            && clean_end(buf, s + 11)
            && !(sep == b'.' && buf.get(s + 11) == Some(&b'.'))
    };
    let ssn = match buf.get(s + 3).filter(|_| maybe_ssn) {
        Some(&sep @ (b'-' | b' ' | b'.')) if ssn_shape(sep) => {
            let d = [
                buf[s],
                buf[s + 1],
                buf[s + 2],
                buf[s + 4],
                buf[s + 5],
                buf[s + 7],
                buf[s + 8],
                buf[s + 9],
                buf[s + 10],
            ];
            us_ssn_valid(&d).then_some(s + 11)
        }
        _ => None,
    };
    (card, ssn)
}

/// An IBAN whose country code starts at `s`: compact, or in groups of four, of exactly its
/// country's length.
pub(crate) fn iban_at(buf: &[u8], s: usize) -> Option<usize> {
    if !buf[s].is_ascii_alphabetic() || !buf[s + 1].is_ascii_alphabetic() {
        return None;
    }
    if s > 0 && buf[s - 1].is_ascii_alphanumeric() {
        return None;
    }
    let len = crate::validate::iban_length(&buf[s..s + 2])?;
    let boundary = |e: usize| e >= buf.len() || !buf[e].is_ascii_alphanumeric();
    // Compact.
    let compact = s + len;
    if compact <= buf.len()
        && buf[s..compact].iter().all(u8::is_ascii_alphanumeric)
        && boundary(compact)
        && iban_valid(&buf[s..compact])
    {
        return Some(compact);
    }
    // In groups of four: one space after every fourth character.
    let grouped = s + len + (len - 1) / 4;
    if grouped <= buf.len() && boundary(grouped) && iban_valid(&buf[s..grouped]) {
        return Some(grouped);
    }
    None
}

/// Phone numbers from a digit run at `s` (with a `+` or `(` just before it, when there is one):
/// international (`+` and 8 to 15 digits in groups), North American (`(415) 555-0132`,
/// `415-555-0132`, `415.555.0132`) and national numbers with a trunk `0` in two or more groups
/// (`020 7946 0958`, `090-1234-5678`). A bare run of digits is never a phone number: in API
/// bodies those are ids, amounts and timestamps. Returns (start, end).
pub(crate) fn phone_at(buf: &[u8], s: usize) -> Option<(usize, usize)> {
    let before = |i: usize| if i == 0 { None } else { Some(buf[i - 1]) };
    let free = |b: Option<u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric() && b != b'+');
    match before(s) {
        Some(b'+') if free(before(s - 1)) => international(buf, s).map(|e| (s - 1, e)),
        Some(b'(') if free(before(s - 1)) => {
            // (415) 555-0132 or (415)555-0132
            let e = nanp_paren(buf, s)?;
            Some((s - 1, e))
        }
        // Not a later group of a longer number (`1 415 555 0132`), nor after a decimal point.
        b if free(b)
            && !matches!(b, Some(b'.' | b'/' | b','))
            && !(matches!(b, Some(b' ' | b'-')) && s > 1 && buf[s - 2].is_ascii_digit()) =>
        {
            if let Some(e) = nanp_plain(buf, s) {
                return Some((s, e));
            }
            trunk_national(buf, s).map(|e| (s, e))
        }
        _ => None,
    }
}

fn international(buf: &[u8], s: usize) -> Option<usize> {
    // Groups of digits separated by one space, dash or dot, one group possibly in parentheses
    // (`+44 (20) 7123 4567`).
    let mut j = s;
    let mut digits = 0usize;
    let mut end = s;
    let mut paren_used = false;
    loop {
        let g0 = j;
        while j < buf.len() && buf[j].is_ascii_digit() {
            j += 1;
        }
        if j == g0 {
            break;
        }
        digits += j - g0;
        end = j;
        if digits > 15 {
            return None;
        }
        // A separator, then a group (or a parenthesised one).
        match buf.get(j) {
            Some(b' ' | b'-' | b'.') => {
                let k = j + 1;
                if buf.get(k).is_some_and(u8::is_ascii_digit) {
                    j = k;
                } else if buf.get(k) == Some(&b'(') && !paren_used {
                    let (close, n) = paren_group(buf, k)?;
                    paren_used = true;
                    digits += n;
                    j = close + 1;
                    end = j;
                    match buf.get(j) {
                        Some(b' ' | b'-') if buf.get(j + 1).is_some_and(u8::is_ascii_digit) => {
                            j += 1
                        }
                        _ => break,
                    }
                } else {
                    break;
                }
            }
            _ => break,
        }
    }
    ((8..=15).contains(&digits) && clean_end(buf, end)).then_some(end)
}

/// `(` at `k`, 1 to 4 digits, `)`: returns the position of `)` and the digit count.
fn paren_group(buf: &[u8], k: usize) -> Option<(usize, usize)> {
    let mut j = k + 1;
    while j < buf.len() && buf[j].is_ascii_digit() && j - k <= 4 {
        j += 1;
    }
    (j > k + 1 && buf.get(j) == Some(&b')')).then_some((j, j - k - 1))
}

fn nanp_digit_ok(d: u8) -> bool {
    (b'2'..=b'9').contains(&d)
}

fn exact_digits(buf: &[u8], s: usize, n: usize) -> bool {
    buf.len() >= s + n
        && buf[s..s + n].iter().all(u8::is_ascii_digit)
        && buf.get(s + n).is_none_or(|b| !b.is_ascii_digit())
}

fn nanp_paren(buf: &[u8], s: usize) -> Option<usize> {
    if !exact_digits(buf, s, 3) || buf.get(s + 3) != Some(&b')') || !nanp_digit_ok(buf[s]) {
        return None;
    }
    let mut j = s + 4;
    if buf.get(j) == Some(&b' ') {
        j += 1;
    }
    nanp_tail(buf, j, b"-. ")
}

/// `NXX-XXXX` from `j`, the separator one of `seps`.
fn nanp_tail(buf: &[u8], j: usize, seps: &[u8]) -> Option<usize> {
    if !exact_digits(buf, j, 3) || !nanp_digit_ok(buf[j]) {
        return None;
    }
    let sep = *buf.get(j + 3)?;
    if !seps.contains(&sep) || !exact_digits(buf, j + 4, 4) {
        return None;
    }
    let e = j + 8;
    clean_end(buf, e).then_some(e)
}

fn nanp_plain(buf: &[u8], s: usize) -> Option<usize> {
    if !exact_digits(buf, s, 3) || !nanp_digit_ok(buf[s]) {
        return None;
    }
    let sep = *buf.get(s + 3)?;
    if !matches!(sep, b'-' | b'.' | b' ') {
        return None;
    }
    nanp_tail(buf, s + 4, &[sep])
}

fn trunk_national(buf: &[u8], s: usize) -> Option<usize> {
    if buf[s] != b'0' {
        return None;
    }
    let g = groups(buf, s, b" -");
    let first = g.seps[..g.n_seps].first().copied()?;
    let ssn_shape = g.n == 9 && g.seps[..g.n_seps] == [3, 5];
    ((9..=11).contains(&g.n)
        && (2..=5).contains(&first)
        && g.n_seps <= 3
        && !ssn_shape
        && clean_end(buf, g.end))
    .then_some(g.end)
}

/// An IPv4 address (optionally with a `/prefix`) from the digit run at `s`: four decimal
/// octets, not part of a longer dotted run (a version `1.2.3.4.5`) nor of a word.
pub(crate) fn ipv4_at(buf: &[u8], s: usize) -> Option<usize> {
    if s > 0 && (buf[s - 1].is_ascii_alphanumeric() || buf[s - 1] == b'.') {
        return None;
    }
    let mut j = s;
    for part in 0..4 {
        let p0 = j;
        while j < buf.len() && buf[j].is_ascii_digit() && j - p0 < 4 {
            j += 1;
        }
        let n = j - p0;
        if n == 0 || n > 3 || (n > 1 && buf[p0] == b'0') {
            return None;
        }
        let v: u32 = buf[p0..j]
            .iter()
            .fold(0, |a, d| a * 10 + u32::from(d - b'0'));
        if v > 255 {
            return None;
        }
        if part < 3 {
            if buf.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    // Not followed by more of a dotted run or a word.
    match buf.get(j) {
        Some(b) if b.is_ascii_alphanumeric() => return None,
        Some(b'.') if buf.get(j + 1).is_some_and(u8::is_ascii_alphanumeric) => return None,
        _ => {}
    }
    debug_assert!(std::str::from_utf8(&buf[s..j])
        .ok()
        .and_then(|t| t.parse::<Ipv4Addr>().ok())
        .is_some());
    Some(prefix_len(buf, j, 32).unwrap_or(j))
}

/// `/n` at `j` with `n <= max` and nothing numeric after: where it ends.
fn prefix_len(buf: &[u8], j: usize, max: u32) -> Option<usize> {
    if buf.get(j) != Some(&b'/') {
        return None;
    }
    let mut k = j + 1;
    while k < buf.len() && buf[k].is_ascii_digit() && k - j <= 3 {
        k += 1;
    }
    if k == j + 1 || buf.get(k).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    let v: u32 = buf[j + 1..k]
        .iter()
        .fold(0, |a, d| a * 10 + u32::from(d - b'0'));
    (v <= max).then_some(k)
}

fn v6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// An IPv6 address around the colon at `c` (with an optional `%zone` and `/prefix`):
/// the maximal run of hex digits, colons and dots, cut back to its longest prefix that
/// parses. Returns (start, end).
pub(crate) fn ipv6_around(buf: &[u8], c: usize) -> Option<(usize, usize)> {
    let mut s = c;
    while s > 0 && v6_char(buf[s - 1]) && c - s < 45 {
        s -= 1;
    }
    // The address starts at a hex digit or a colon, not at a dot.
    while s < c && buf[s] == b'.' {
        s += 1;
    }
    if s > 0 && (buf[s - 1].is_ascii_alphanumeric() || buf[s - 1] == b'_') {
        return None;
    }
    let mut e = c;
    while e < buf.len() && v6_char(buf[e]) && e - s < 45 {
        e += 1;
    }
    let text = &buf[s..e];
    let mut n = text.len();
    while n > c - s + 1 {
        if let Some(t) = std::str::from_utf8(&text[..n])
            .ok()
            .filter(|t| t.parse::<Ipv6Addr>().is_ok())
        {
            return v6_tail(buf, s + t.len()).map(|e| (s, e));
        }
        n -= 1;
    }
    None
}

/// What may follow an IPv6 address: a zone, a prefix length, or a boundary.
fn v6_tail(buf: &[u8], end: usize) -> Option<usize> {
    let mut e = end;
    match buf.get(e) {
        Some(b'%') => {
            let z = e + 1;
            let mut k = z;
            while k < buf.len() && buf[k].is_ascii_alphanumeric() && k - z < 16 {
                k += 1;
            }
            if k > z {
                e = k;
            }
        }
        Some(b'/') => {
            if let Some(k) = prefix_len(buf, e, 128) {
                e = k;
            }
        }
        _ => {}
    }
    match buf.get(e) {
        Some(b) if b.is_ascii_alphanumeric() || *b == b'_' || *b == b':' => None,
        Some(b'.') if buf.get(e + 1).is_some_and(u8::is_ascii_alphanumeric) => None,
        _ => Some(e),
    }
}

/// An e-mail address around the `@` at `at`: a local part of letters, digits and
/// `.!#$%&'*+/=?^_{|}~-`, a domain of labels with a dot and a letter-only top-level label
/// (or a punycode one).
pub(crate) fn email_at(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-!#$&'*/=?^{|}~".contains(&b);
    let mut s = at;
    while s > 0 && local(buf[s - 1]) && at - s < 64 {
        s -= 1;
    }
    while s < at && buf[s] == b'.' {
        s += 1;
    }
    if s == at {
        return None;
    }
    let mut e = at + 1;
    while e < buf.len()
        && (buf[e].is_ascii_alphanumeric() || buf[e] == b'-' || buf[e] == b'.')
        && e - at < 255
    {
        e += 1;
    }
    while e > at + 1 && (buf[e - 1] == b'.' || buf[e - 1] == b'-') {
        e -= 1;
    }
    let domain = &buf[at + 1..e];
    let dot = domain.iter().rposition(|b| *b == b'.')?;
    let tld = &domain[dot + 1..];
    let tld_ok = (tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
        || (tld.len() > 4 && tld.starts_with(b"xn--"));
    if dot == 0 || !tld_ok {
        return None;
    }
    Some((s, e))
}

/// After a private key header ending at `i`: at least 64 base64 characters of body (after
/// optional `Name: value` header lines), and up to the matching `-----END …-----` line when
/// it comes within `reach`. Returns where the match ends.
pub(crate) fn private_key_body(buf: &[u8], mut i: usize, reach: usize) -> Option<usize> {
    let limit = (i + reach).min(buf.len());
    let mut base64 = 0usize;
    let mut last = i;
    while i < limit {
        let b = buf[i];
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            base64 += 1;
            i += 1;
            last = i;
        } else if b == b'\n' || b == b'\r' || b == b' ' || b == b'\t' {
            i += 1;
        } else if b == b':' && base64 < 64 {
            // A header line of an armored block (`Version: …`, `Proc-Type: …`): skip it.
            base64 = 0;
            while i < limit && buf[i] != b'\n' {
                i += 1;
            }
        } else {
            break;
        }
    }
    if base64 < 64 {
        return None;
    }
    if buf[i..].starts_with(b"-----END ") {
        let to = limit.max(i + 9).min(buf.len());
        if let Some(close) = memchr::memmem::find(&buf[i + 9..to], b"-----") {
            return Some(i + 9 + close + 5);
        }
    }
    Some(last)
}

/// The words of an identifier (`clientSecret`, `API_KEY`, `x-api-token`), lowercased.
fn words(ident: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for &b in ident {
        if !b.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if b.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
        cur.push(char::from(b.to_ascii_lowercase()));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The names whose value is a secret: the identifier's last word ends with one of these.
const SECRET_NAMES: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "credential",
    "credentials",
];

/// Words that make a name not a secret's (`public_key`, `csrf_token`) or a value not a secret.
const NOT_SECRET_WORDS: &[&str] = &[
    "public",
    "pub",
    "csrf",
    "xsrf",
    "publishable",
    "next",
    "page",
];

fn ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// A generic secret assigned to a secret's name, from a keyword hit at `k`:
/// `api_key = "…"`, `"clientSecret": "…"`, `password: …`, `X-Api-Token: …`. The value must
/// be 16 to 150 characters of a token alphabet, with a letter and a digit, not a UUID, and
/// look random (Shannon entropy at least 3.5 bits per character, gitleaks' threshold).
/// Returns the value's span: masking hides the value, not the name.
pub(crate) fn generic_secret(buf: &[u8], k: usize) -> Option<(usize, usize)> {
    // The identifier around the keyword.
    let mut s = k;
    while s > 0 && ident_char(buf[s - 1]) && k - s < 40 {
        s -= 1;
    }
    let mut e = k;
    while e < buf.len() && ident_char(buf[e]) && e - s < 64 {
        e += 1;
    }
    let ws = words(&buf[s..e]);
    let last = ws.last()?;
    // A lone `key` names a map entry or an attribute (`<entry key="…">`), not a secret.
    if ws.len() == 1 && last == "key" {
        return None;
    }
    if !SECRET_NAMES.iter().any(|n| last.ends_with(n)) {
        return None;
    }
    if ws
        .iter()
        .any(|w| NOT_SECRET_WORDS.contains(&w.as_str()) || w == "id")
    {
        return None;
    }
    // The assignment: optional closing quote, spaces, `=`, `:`, `:=`, `=>`, spaces, an
    // optional opening quote.
    let mut j = e;
    if matches!(buf.get(j), Some(b'"' | b'\'' | b'`')) {
        j += 1;
    }
    let sp = j;
    while matches!(buf.get(j), Some(b' ' | b'\t')) && j - sp < 8 {
        j += 1;
    }
    match (buf.get(j), buf.get(j + 1)) {
        (Some(b':'), Some(b'=')) | (Some(b'='), Some(b'>')) => j += 2,
        (Some(b':' | b'='), _) => j += 1,
        _ => return None,
    }
    let sp = j;
    while matches!(buf.get(j), Some(b' ' | b'\t')) && j - sp < 8 {
        j += 1;
    }
    let quote = buf
        .get(j)
        .copied()
        .filter(|b| matches!(b, b'"' | b'\'' | b'`'));
    if quote.is_some() {
        j += 1;
    }
    let v0 = j;
    let value_char = |b: u8| b.is_ascii_alphanumeric() || b"_-+/=.~".contains(&b);
    while j < buf.len() && value_char(buf[j]) && j - v0 <= 150 {
        j += 1;
    }
    let value = &buf[v0..j];
    if !(16..=150).contains(&value.len()) {
        return None;
    }
    // The value ends at its quote, a space, a delimiter or the end; not mid-word.
    match buf.get(j) {
        None => {}
        Some(b) if quote == Some(*b) => {}
        Some(b) if quote.is_none() && (b.is_ascii_whitespace() || b",;&)}]<".contains(b)) => {}
        _ => return None,
    }
    if !value.iter().any(u8::is_ascii_digit) || !value.iter().any(u8::is_ascii_alphabetic) {
        return None;
    }
    if is_uuid(value) || shannon_entropy(value) < 3.5 {
        return None;
    }
    Some((v0, j))
}

fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// An Azure AD client secret around the `Q~` at `q` (`abc8Q~` then 31 to 34 characters),
/// delimited as gitleaks' rule delimits it.
pub(crate) fn azure_client_secret(buf: &[u8], q: usize) -> Option<(usize, usize)> {
    if q < 4 {
        return None;
    }
    let s = q - 4;
    let head = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'~' || b == b'.';
    if !buf[s..s + 3].iter().all(|b| head(*b)) || !buf[s + 3].is_ascii_digit() {
        return None;
    }
    let delim_before = |b: u8| b"\\'\"`>=:(,)".contains(&b) || b.is_ascii_whitespace();
    if s > 0 && !delim_before(buf[s - 1]) {
        return None;
    }
    let mut e = q + 2;
    while e < buf.len() && (head(buf[e]) || buf[e] == b'-') && e - q - 2 <= 34 {
        e += 1;
    }
    let n = e - q - 2;
    if !(31..=34).contains(&n) {
        return None;
    }
    let delim_after = |b: u8| b"\\'\"`<),".contains(&b) || b.is_ascii_whitespace();
    if buf.get(e).is_some_and(|b| !delim_after(*b)) {
        return None;
    }
    (shannon_entropy(&buf[q + 2..e]) >= 3.0).then_some((s, e))
}
