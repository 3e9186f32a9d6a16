//! The transforms behind the rules language's functions. Each takes bytes and returns bytes
//! (or a number, or a truth value); none can fail: input that cannot be decoded is kept as is,
//! the way ModSecurity's and Coraza's transformations behave, so that an attacker cannot hide a
//! payload behind a decoding error.

/// ASCII letters to lower case.
pub fn lower(b: &[u8]) -> Vec<u8> {
    b.to_ascii_lowercase()
}

/// ASCII letters to upper case.
pub fn upper(b: &[u8]) -> Vec<u8> {
    b.to_ascii_uppercase()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` and `+` (a space). A `%` not followed by two hex digits is kept.
pub fn url_decode(b: &[u8]) -> Vec<u8> {
    percent_decode(b, true)
}

/// Decodes `%XX` only (`+` stays): a path segment (RFC 3986), not a form value.
pub fn url_decode_path(b: &[u8]) -> Vec<u8> {
    percent_decode(b, false)
}

fn percent_decode(b: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Decodes until nothing changes (at most 8 rounds), for double- and triple-encoded payloads.
pub fn url_decode_recursive(b: &[u8]) -> Vec<u8> {
    let mut cur = url_decode(b);
    for _ in 0..7 {
        let next = url_decode(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

/// Decodes `&#NN;`, `&#xHH;` and the common named entities (`&amp;` `&lt;` `&gt;` `&quot;`
/// `&apos;` `&nbsp;` and a few more). The final `;` of a numeric entity is optional, as
/// browsers accept it. Unknown entities are kept.
pub fn html_entity_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'&' {
            if let Some((ch, used)) = entity(&b[i + 1..]) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += 1 + used;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Reads an entity after `&`: returns the character and the bytes used.
fn entity(b: &[u8]) -> Option<(char, usize)> {
    if b.first() == Some(&b'#') {
        let (radix, start) = match b.get(1) {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let mut end = start;
        while end < b.len() && end - start < 8 && (b[end] as char).is_digit(radix) {
            end += 1;
        }
        if end == start {
            return None;
        }
        let n = u32::from_str_radix(std::str::from_utf8(&b[start..end]).ok()?, radix).ok()?;
        let ch = char::from_u32(n).unwrap_or('\u{fffd}');
        let used = if b.get(end) == Some(&b';') {
            end + 1
        } else {
            end
        };
        return Some((ch, used));
    }
    const NAMED: &[(&[u8], char)] = &[
        (b"amp", '&'),
        (b"lt", '<'),
        (b"gt", '>'),
        (b"quot", '"'),
        (b"apos", '\''),
        (b"nbsp", '\u{a0}'),
        (b"tab", '\t'),
        (b"newline", '\n'),
        (b"colon", ':'),
        (b"sol", '/'),
        (b"bsol", '\\'),
        (b"lpar", '('),
        (b"rpar", ')'),
        (b"semi", ';'),
        (b"comma", ','),
        (b"period", '.'),
        (b"excl", '!'),
        (b"equals", '='),
        (b"grave", '`'),
        (b"lsqb", '['),
        (b"rsqb", ']'),
        (b"lcub", '{'),
        (b"rcub", '}'),
        (b"num", '#'),
        (b"percnt", '%'),
        (b"plus", '+'),
    ];
    NAMED.iter().find_map(|(name, ch)| {
        let rest = b.strip_prefix(*name)?;
        (rest.first() == Some(&b';')).then_some((*ch, name.len() + 1))
    })
}

/// Decodes base64, standard (`+/`) or URL-safe (`-_`), with or without padding, skipping
/// whitespace; stops at the first other character and returns what was decoded before it.
pub fn base64_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in b {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Removes spaces, tabs, CR, LF, form feeds and vertical tabs.
pub fn remove_whitespace(b: &[u8]) -> Vec<u8> {
    b.iter()
        .copied()
        .filter(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c))
        .collect()
}

/// Removes `.` and `..` segments (RFC 3986 §5.2.4) and repeated slashes. A `..` never climbs
/// above the root. A trailing slash is kept.
pub fn normalize_path(b: &[u8]) -> Vec<u8> {
    let absolute = b.first() == Some(&b'/');
    let mut segs: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = b.split(|&c| c == b'/').collect();
    let last = parts.len().saturating_sub(1);
    let mut trailing = false;
    for (i, seg) in parts.iter().enumerate() {
        match *seg {
            b"" => {
                if i == last && i > 0 {
                    trailing = true;
                }
            }
            b"." => trailing = i == last,
            b".." => {
                segs.pop();
                trailing = i == last;
            }
            s => {
                segs.push(s);
                trailing = false;
            }
        }
    }
    let mut out = Vec::with_capacity(b.len());
    if absolute {
        out.push(b'/');
    }
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for (i, o) in [
            ("/a/b/../c", "/a/c"),
            ("/a/./b//c/", "/a/b/c/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/b/..", "/a/"),
            ("a/./b", "a/b"),
            ("/", "/"),
            ("", ""),
        ] {
            assert_eq!(normalize_path(i.as_bytes()), o.as_bytes(), "{i}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode(b"aGVsbG8="), b"hello");
        assert_eq!(base64_decode(b"aGVsbG8"), b"hello");
        assert_eq!(base64_decode(b"PDw_Pz4-"), b"<<??>>");
        assert_eq!(base64_decode(b"aGVs!bG8="), b"hel");
    }
}
