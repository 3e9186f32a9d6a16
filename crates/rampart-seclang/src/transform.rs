//! The transformations (`t:`), as ModSecurity v3 and Coraza define them: bytes in, bytes out,
//! `Cow::Borrowed` when nothing changed (so that a chain on clean input allocates nothing).

use std::borrow::Cow;

use crate::ast::Transform;

/// Applies one transformation.
pub fn apply(t: Transform, input: &[u8]) -> Cow<'_, [u8]> {
    match t {
        Transform::None => Cow::Borrowed(input),
        Transform::Lowercase => map_if(input, u8::is_ascii_uppercase, u8::to_ascii_lowercase),
        Transform::Uppercase => map_if(input, u8::is_ascii_lowercase, u8::to_ascii_uppercase),
        Transform::UrlDecode => url_decode(input, false),
        Transform::UrlDecodeUni => url_decode(input, true),
        Transform::UrlEncode => Cow::Owned(url_encode(input)),
        Transform::HtmlEntityDecode => html_entity_decode(input),
        Transform::JsDecode => js_decode(input),
        Transform::CssDecode => css_decode(input),
        Transform::CmdLine => Cow::Owned(cmd_line(input)),
        Transform::CompressWhitespace => compress_whitespace(input),
        Transform::RemoveWhitespace => remove_if(input, is_space),
        Transform::RemoveNulls => remove_if(input, |b| b == 0),
        Transform::ReplaceNulls => map_if(input, |b| *b == 0, |_| b' '),
        Transform::RemoveComments => remove_comments(input),
        Transform::RemoveCommentsChar => remove_comments_char(input),
        Transform::ReplaceComments => replace_comments(input),
        Transform::NormalisePath | Transform::NormalizePath => normalise_path(input, false),
        Transform::NormalisePathWin | Transform::NormalizePathWin => normalise_path(input, true),
        Transform::Utf8ToUnicode => utf8_to_unicode(input),
        Transform::Base64Decode => Cow::Owned(base64_decode(input, false)),
        Transform::Base64DecodeExt => Cow::Owned(base64_decode(input, true)),
        Transform::Base64Encode => {
            use base64::Engine as _;
            Cow::Owned(
                base64::engine::general_purpose::STANDARD
                    .encode(input)
                    .into_bytes(),
            )
        }
        Transform::HexDecode => Cow::Owned(hex_decode(input)),
        Transform::HexEncode => Cow::Owned(hex_encode(input)),
        Transform::SqlHexDecode => sql_hex_decode(input),
        Transform::EscapeSeqDecode => escape_seq_decode(input),
        Transform::Length => Cow::Owned(input.len().to_string().into_bytes()),
        Transform::Sha1 => {
            use sha1::Digest as _;
            Cow::Owned(sha1::Sha1::digest(input).to_vec())
        }
        Transform::Md5 => {
            use md5::Digest as _;
            Cow::Owned(md5::Md5::digest(input).to_vec())
        }
        Transform::Trim => trim(input, true, true),
        Transform::TrimLeft => trim(input, true, false),
        Transform::TrimRight => trim(input, false, true),
    }
}

/// ModSecurity's whitespace: space, tab, LF, CR, FF, VT and NBSP (0xa0).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

fn map_if(input: &[u8], test: impl Fn(&u8) -> bool, f: impl Fn(&u8) -> u8) -> Cow<'_, [u8]> {
    if !input.iter().any(&test) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(
        input
            .iter()
            .map(|b| if test(b) { f(b) } else { *b })
            .collect(),
    )
}

fn remove_if(input: &[u8], test: impl Fn(u8) -> bool) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| test(*b)) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.iter().copied().filter(|b| !test(*b)).collect())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: u8, b: u8) -> Option<u8> {
    Some(hex_val(a)? << 4 | hex_val(b)?)
}

/// `\xHH` at `i` (the backslash): the byte and the length of the escape.
fn hex_escape(input: &[u8], i: usize) -> Option<(u8, usize)> {
    match input.get(i + 1) {
        Some(b'x' | b'X') => hex2(*input.get(i + 2)?, *input.get(i + 3)?).map(|v| (v, 4)),
        _ => None,
    }
}

/// `\OOO` at `i` (one to three octal digits): the byte and the length of the escape. With
/// `bounded`, a digit that would take the value past 255 is not read.
fn octal_escape(input: &[u8], i: usize, bounded: bool) -> Option<(u8, usize)> {
    let mut j = i + 1;
    let mut v: u32 = 0;
    while j < input.len() && j < i + 4 && (b'0'..=b'7').contains(&input[j]) {
        let nv = v * 8 + u32::from(input[j] - b'0');
        if bounded && nv > 0xff {
            break;
        }
        v = nv;
        j += 1;
    }
    (j > i + 1).then_some(((v & 0xff) as u8, j - i))
}

/// The single-letter control escapes `\a \b \f \n \r \t \v`.
fn control_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'a' => 0x07,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        _ => return None,
    })
}

/// The byte for four hex digits at `at` (`%uHHHH`, `\uHHHH`): the low byte, with full-width
/// ASCII (`ff01`–`ff5e`) mapped to ASCII as ModSecurity does.
fn unicode_low_byte(input: &[u8], at: usize) -> u8 {
    let mut low = hex2(input[at + 2], input[at + 3]).unwrap_or(0);
    let full_width =
        input[at].eq_ignore_ascii_case(&b'f') && input[at + 1].eq_ignore_ascii_case(&b'f');
    if full_width && low > 0x00 && low < 0x5f {
        low += 0x20;
    }
    low
}

/// `%XX` and `+`; with `uni`, also `%uXXXX` (its low byte, plus 0x20 for full-width ASCII
/// `%uff01`–`%uff5e`). Invalid sequences are kept as they are.
fn url_decode(input: &[u8], uni: bool) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'+' {
            out.push(b' ');
            i += 1;
        } else if c == b'%' {
            if uni
                && i + 5 < input.len()
                && (input[i + 1] == b'u' || input[i + 1] == b'U')
                && input[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
            {
                out.push(unicode_low_byte(input, i + 2));
                i += 6;
            } else if let Some(v) = input.get(i + 1..i + 3).and_then(|h| hex2(h[0], h[1])) {
                out.push(v);
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Cow::Owned(out)
}

fn url_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for &b in input {
        if b.is_ascii_alphanumeric() || b"*-._".contains(&b) {
            out.push(b);
        } else if b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        }
    }
    out
}

/// `&#xHH;`, `&#DDD;` (the low byte of the value), and `&quot; &amp; &lt; &gt; &nbsp;`, the
/// semicolon optional; anything else is kept.
fn html_entity_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'&') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'&' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let rest = &input[i + 1..];
        if rest.first() == Some(&b'#') {
            let (hex, digits_from) = match rest.get(1) {
                Some(b'x' | b'X') => (true, 2),
                _ => (false, 1),
            };
            let mut j = digits_from;
            while j < rest.len()
                && (if hex {
                    rest[j].is_ascii_hexdigit()
                } else {
                    rest[j].is_ascii_digit()
                })
            {
                j += 1;
            }
            if j > digits_from {
                let mut v: u32 = 0;
                for &d in &rest[digits_from..j] {
                    let dv = u32::from(hex_val(d).unwrap_or(0));
                    v = v
                        .saturating_mul(if hex { 16 } else { 10 })
                        .saturating_add(dv);
                }
                out.push((v & 0xff) as u8);
                i += 1 + j;
                if input.get(i) == Some(&b';') {
                    i += 1;
                }
                continue;
            }
        } else {
            let named: &[(&[u8], u8)] = &[
                (b"quot", b'"'),
                (b"amp", b'&'),
                (b"lt", b'<'),
                (b"gt", b'>'),
                (b"nbsp", 0xa0),
            ];
            let lower: Vec<u8> = rest.iter().take(4).map(u8::to_ascii_lowercase).collect();
            if let Some((name, v)) = named.iter().find(|(n, _)| lower.starts_with(n)) {
                out.push(*v);
                i += 1 + name.len();
                if input.get(i) == Some(&b';') {
                    i += 1;
                }
                continue;
            }
        }
        out.push(b'&');
        i += 1;
    }
    Cow::Owned(out)
}

/// The loop the backslash decoders share: bytes copied until a backslash with something after
/// it, where `escape` decodes the escape at that position into `out` and returns its length.
fn backslash_decode(
    input: &[u8],
    escape: impl Fn(&[u8], usize, &mut Vec<u8>) -> usize,
) -> Cow<'_, [u8]> {
    if !input.contains(&b'\\') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        i += escape(input, i, &mut out);
    }
    Cow::Owned(out)
}

/// JavaScript escapes: `\uHHHH` (low byte, full-width ASCII mapped), `\xHH`, `\OOO`, the
/// single-letter escapes, and `\c` to `c`.
fn js_decode(input: &[u8]) -> Cow<'_, [u8]> {
    backslash_decode(input, |input, i, out| {
        let n = input[i + 1];
        if (n == b'u' || n == b'U')
            && i + 5 < input.len()
            && input[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
        {
            out.push(unicode_low_byte(input, i + 2));
            6
        } else if let Some((v, len)) = hex_escape(input, i).or_else(|| octal_escape(input, i, true))
        {
            out.push(v);
            len
        } else {
            out.push(control_escape(n).unwrap_or(n));
            2
        }
    })
}

/// CSS escapes: `\` and one to six hex digits (the low byte; full-width ASCII mapped; one
/// whitespace after them eaten), `\` before a newline removed, `\c` to `c`.
fn css_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'\\') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        if i + 1 >= input.len() {
            // A lone backslash at the end is dropped.
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < input.len() && j < i + 7 && input[j].is_ascii_hexdigit() {
            j += 1;
        }
        let n = j - i - 1;
        if n > 0 {
            let digits = &input[i + 1..j];
            let mut low = if n == 1 {
                hex_val(digits[0]).unwrap_or(0)
            } else {
                hex2(digits[n - 2], digits[n - 1]).unwrap_or(0)
            };
            // Full-width ASCII: `ff01`–`ff5e` as the last four digits.
            if n >= 4 {
                let fw = digits[n - 4].eq_ignore_ascii_case(&b'f')
                    && digits[n - 3].eq_ignore_ascii_case(&b'f');
                if fw && low > 0x00 && low < 0x5f {
                    low += 0x20;
                }
            }
            out.push(low);
            i = j;
            if i < input.len() && is_space(input[i]) && input[i] != 0xa0 {
                i += 1;
            }
        } else if input[i + 1] == b'\n' {
            i += 2;
        } else {
            out.push(input[i + 1]);
            i += 2;
        }
    }
    Cow::Owned(out)
}

/// Windows and Unix command-line normalisation: `\ " ' ^` deleted, spaces before `/` and `(`
/// deleted, `,` `;` and whitespace to one space, lower case.
fn cmd_line(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut space = false;
    for &c in input {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(c);
            }
            _ => {
                out.push(c.to_ascii_lowercase());
                space = false;
            }
        }
    }
    out
}

fn compress_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    let needs = input.windows(2).any(|w| is_space(w[0]) && is_space(w[1]))
        || input.iter().any(|b| is_space(*b) && *b != b' ');
    if !needs {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut in_space = false;
    for &b in input {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
                in_space = true;
            }
        } else {
            out.push(b);
            in_space = false;
        }
    }
    Cow::Owned(out)
}

/// `/* … */` and `<!-- … -->` removed; `--` or `#` removes the rest of the input (ModSecurity's
/// behaviour: SQL and shell comments run to the end of the value).
fn remove_comments(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| matches!(b, b'/' | b'<' | b'-' | b'#')) {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if rest.starts_with(b"/*") {
            match find(&rest[2..], b"*/") {
                Some(k) => i += 2 + k + 2,
                None => break,
            }
        } else if rest.starts_with(b"<!--") {
            match find(&rest[4..], b"-->") {
                Some(k) => i += 4 + k + 3,
                None => break,
            }
        } else if rest.starts_with(b"--") || rest[0] == b'#' {
            break;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    if out.len() == input.len() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(out)
}

/// The comment markers removed: `/*`, `*/`, `<!--`, `-->`, `--`, `#`.
fn remove_comments_char(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if rest.starts_with(b"/*") || rest.starts_with(b"*/") {
            i += 2;
        } else if rest.starts_with(b"<!--") {
            i += 4;
        } else if rest.starts_with(b"-->") {
            i += 3;
        } else if rest.starts_with(b"--") {
            i += 2;
        } else if rest[0] == b'#' {
            i += 1;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    if out.len() == input.len() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(out)
}

/// `/* … */` to one space; an unclosed `/*` to one space and the rest dropped.
fn replace_comments(input: &[u8]) -> Cow<'_, [u8]> {
    if find(input, b"/*").is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(b"/*") {
            out.push(b' ');
            match find(&input[i + 2..], b"*/") {
                Some(k) => i += 2 + k + 2,
                None => break,
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `.` and `..` segments resolved, repeated slashes collapsed; with `win`, backslashes are
/// slashes first. A `..` above the root of an absolute path is dropped; in a relative path it
/// stays. A trailing slash stays.
fn normalise_path(input: &[u8], win: bool) -> Cow<'_, [u8]> {
    let owned;
    let path: &[u8] = if win && input.contains(&b'\\') {
        owned = input
            .iter()
            .map(|b| if *b == b'\\' { b'/' } else { *b })
            .collect::<Vec<u8>>();
        &owned
    } else {
        input
    };
    if path.is_empty() {
        return Cow::Borrowed(input);
    }
    let absolute = path[0] == b'/';
    let segments: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    let last = segments.last().copied().unwrap_or(b"");
    let trailing = last.is_empty() || last == b"." || last == b"..";
    let mut stack: Vec<&[u8]> = Vec::new();
    for seg in segments {
        match seg {
            b"" | b"." => {}
            b".." => match stack.last() {
                Some(s) if *s != b".." => {
                    stack.pop();
                }
                _ => {
                    if !absolute {
                        stack.push(seg);
                    }
                }
            },
            s => stack.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if absolute {
        out.push(b'/');
    }
    for (k, s) in stack.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if trailing && !stack.is_empty() {
        out.push(b'/');
    }
    if out == input {
        return Cow::Borrowed(input);
    }
    Cow::Owned(out)
}

/// Multi-byte UTF-8 characters to `%uHHHH` (lowercase hex); other bytes as they are.
fn utf8_to_unicode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_ascii() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        let len = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        if len > 0 {
            if let Some(c) = input
                .get(i..i + len)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.chars().next())
            {
                out.extend_from_slice(format!("%u{:04x}", u32::from(c)).as_bytes());
                i += len;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// Base64: the standard alphabet, decoded up to the first character outside it (or, with
/// `ext`, skipping such characters); padding optional.
fn base64_decode(input: &[u8], ext: bool) -> Vec<u8> {
    let val = |b: u8| -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in input {
        if b == b'=' {
            break;
        }
        let Some(v) = val(b) else {
            if ext {
                continue;
            }
            break;
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn hex_decode(input: &[u8]) -> Vec<u8> {
    input
        .chunks(2)
        .map_while(|p| if p.len() == 2 { hex2(p[0], p[1]) } else { None })
        .collect()
}

fn hex_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 2);
    for b in input {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    out
}

/// SQL hex literals (`0x414243`) decoded in place.
fn sql_hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if find(input, b"0x").is_none() && find(input, b"0X").is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'0'
            && matches!(input.get(i + 1), Some(b'x' | b'X'))
            && input.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            && input.get(i + 3).is_some_and(u8::is_ascii_hexdigit)
        {
            let mut j = i + 2;
            while j + 1 < input.len() {
                match hex2(input[j], input[j + 1]) {
                    Some(v) => {
                        out.push(v);
                        j += 2;
                    }
                    None => break,
                }
            }
            i = j;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// C escapes: `\a \b \f \n \r \t \v \\ \? \' \"`, `\xHH`, `\OOO`; others kept as written.
fn escape_seq_decode(input: &[u8]) -> Cow<'_, [u8]> {
    backslash_decode(input, |input, i, out| {
        let n = input[i + 1];
        let simple = control_escape(n).or(match n {
            b'\\' | b'?' | b'\'' | b'"' => Some(n),
            _ => None,
        });
        if let Some(v) = simple {
            out.push(v);
            2
        } else if let Some((v, len)) =
            hex_escape(input, i).or_else(|| octal_escape(input, i, false))
        {
            out.push(v);
            len
        } else {
            out.push(b'\\');
            out.push(n);
            2
        }
    })
}

fn trim(input: &[u8], left: bool, right: bool) -> Cow<'_, [u8]> {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut s = 0;
    let mut e = input.len();
    if left {
        while s < e && ws(&input[s]) {
            s += 1;
        }
    }
    if right {
        while e > s && ws(&input[e - 1]) {
            e -= 1;
        }
    }
    Cow::Borrowed(&input[s..e])
}
