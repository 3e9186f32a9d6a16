//! The multipart body processor (`multipart/form-data`): fields into `ARGS_POST`, uploaded
//! files into `FILES` (file names), `FILES_NAMES` (field names), `FILES_SIZES`, part headers
//! into `MULTIPART_PART_HEADERS`, and the anomalies ModSecurity flags (and CRS checks)
//! into `MULTIPART_*` variables. It is lenient where browsers are, and says so in flags.

/// What a multipart body held.
#[derive(Debug, Default)]
pub struct Multipart {
    /// Fields without a file name: (name, value).
    pub fields: Vec<(String, Vec<u8>)>,
    /// Files: (field name, file name, size).
    pub files: Vec<(String, String, usize)>,
    /// Each part's header lines, by part name: (name, `Header: value`).
    pub part_headers: Vec<(String, Vec<u8>)>,
    /// The body could not be read as multipart at all.
    pub error: Option<String>,
    /// Anomalies, by ModSecurity's variable name.
    pub flags: Vec<&'static str>,
}

/// The boundary of a `multipart/form-data` content type, and whether it was quoted or had
/// whitespace.
pub fn boundary(content_type: &str) -> Option<(String, Vec<&'static str>)> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.trim_start().starts_with("multipart/form-data") {
        return None;
    }
    let at = lower.find("boundary")?;
    let rest = &content_type[at + "boundary".len()..];
    let rest = rest.trim_start().strip_prefix('=')?;
    let mut flags = Vec::new();
    if rest.starts_with(char::is_whitespace) {
        flags.push("MULTIPART_BOUNDARY_WHITESPACE");
    }
    let rest = rest.trim_start();
    let b = if let Some(q) = rest.strip_prefix('"') {
        flags.push("MULTIPART_BOUNDARY_QUOTED");
        q.split('"').next().unwrap_or("").to_owned()
    } else {
        rest.split(';').next().unwrap_or("").trim_end().to_owned()
    };
    if b.contains(char::is_whitespace) {
        flags.push("MULTIPART_BOUNDARY_WHITESPACE");
    }
    (!b.is_empty()).then_some((b, flags))
}

/// Splits into lines, keeping whether each ended with CRLF.
fn lines(body: &[u8]) -> Vec<(&[u8], bool)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in body.iter().enumerate() {
        if *b == b'\n' {
            let crlf = i > start && body[i - 1] == b'\r';
            let end = if crlf { i - 1 } else { i };
            out.push((&body[start..end], crlf));
            start = i + 1;
        }
    }
    if start < body.len() {
        out.push((&body[start..], true));
    }
    out
}

/// Parses a body with its boundary.
pub fn parse(body: &[u8], boundary: &str) -> Multipart {
    let mut m = Multipart::default();
    let delim = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let ls = lines(body);
    let mut i = 0;
    // Before the first boundary.
    while i < ls.len() && ls[i].0 != delim.as_bytes() {
        if ls[i].0 == close.as_bytes() {
            break;
        }
        if !ls[i].0.iter().all(u8::is_ascii_whitespace) {
            m.flags.push("MULTIPART_DATA_BEFORE");
        }
        i += 1;
    }
    if i == ls.len() {
        m.error = Some("multipart: no boundary in the body".into());
        return m;
    }
    let mut closed = false;
    while i < ls.len() {
        let (line, _) = ls[i];
        if line == close.as_bytes() {
            closed = true;
            i += 1;
            break;
        }
        if line != delim.as_bytes() {
            i += 1;
            continue;
        }
        i += 1;
        // Headers.
        let mut name: Option<String> = None;
        let mut filename: Option<String> = None;
        let mut headers: Vec<Vec<u8>> = Vec::new();
        while i < ls.len() && !ls[i].0.is_empty() {
            let (h, crlf) = ls[i];
            if !crlf {
                push_flag(&mut m.flags, "MULTIPART_LF_LINE");
            }
            if h.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                push_flag(&mut m.flags, "MULTIPART_HEADER_FOLDING");
                if let Some(last) = headers.last_mut() {
                    last.extend_from_slice(h);
                }
                i += 1;
                continue;
            }
            if !h.contains(&b':') {
                push_flag(&mut m.flags, "MULTIPART_INVALID_PART");
            }
            headers.push(h.to_vec());
            i += 1;
        }
        if i >= ls.len() {
            push_flag(&mut m.flags, "MULTIPART_INVALID_PART");
            break;
        }
        i += 1; // the empty line
        for h in &headers {
            let text = String::from_utf8_lossy(h);
            let Some((k, v)) = text.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                let (n, f) = disposition(v, &mut m.flags);
                name = n;
                filename = f;
            }
        }
        // Content: up to the next boundary line.
        let mut content: Vec<u8> = Vec::new();
        let mut first = true;
        while i < ls.len() && ls[i].0 != delim.as_bytes() && ls[i].0 != close.as_bytes() {
            let (l, crlf) = ls[i];
            if !crlf {
                push_flag(&mut m.flags, "MULTIPART_LF_LINE");
            }
            if l.starts_with(b"--") && l.len() > 2 && !first {
                let looks = l[2..].starts_with(&boundary.as_bytes()[..boundary.len().min(4)]);
                if looks {
                    push_flag(&mut m.flags, "MULTIPART_UNMATCHED_BOUNDARY");
                }
            }
            if !first {
                content.extend_from_slice(b"\r\n");
            }
            content.extend_from_slice(l);
            first = false;
            i += 1;
        }
        let Some(name) = name else {
            push_flag(&mut m.flags, "MULTIPART_INVALID_PART");
            continue;
        };
        for h in headers {
            m.part_headers.push((name.clone(), h));
        }
        match filename {
            Some(f) => m.files.push((name, f, content.len())),
            None => m.fields.push((name, content)),
        }
    }
    if !closed {
        push_flag(&mut m.flags, "MULTIPART_INVALID_PART");
    } else if ls[i..]
        .iter()
        .any(|(l, _)| !l.iter().all(u8::is_ascii_whitespace))
    {
        push_flag(&mut m.flags, "MULTIPART_DATA_AFTER");
    }
    m
}

fn push_flag(flags: &mut Vec<&'static str>, f: &'static str) {
    if !flags.contains(&f) {
        flags.push(f);
    }
}

/// `form-data; name="a"; filename="b.txt"`: the name and file name, flagging missing
/// semicolons and odd quoting.
fn disposition(v: &str, flags: &mut Vec<&'static str>) -> (Option<String>, Option<String>) {
    let v = v.trim();
    let Some(rest) = v
        .get(..9)
        .filter(|p| p.eq_ignore_ascii_case("form-data"))
        .map(|_| &v[9..])
    else {
        push_flag(flags, "MULTIPART_INVALID_PART");
        return (None, None);
    };
    let mut name = None;
    let mut filename = None;
    let b = rest.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] != b';' {
            push_flag(flags, "MULTIPART_MISSING_SEMICOLON");
        } else {
            i += 1;
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        let key = rest[k0..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut out = Vec::new();
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    // As ModSecurity: only a quote and a backslash can be escaped; any other
                    // backslash is kept (`name="cv.p\d\f"` is `cv.p\d\f`, CRS 920120).
                    b'\\' if matches!(b.get(i + 1), Some(b'"' | b'\\')) => {
                        out.push(b[i + 1]);
                        i += 2;
                    }
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                push_flag(flags, "MULTIPART_INVALID_QUOTING");
            }
            String::from_utf8_lossy(&out).into_owned()
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b';' {
                if b[i] == b'\'' || b[i] == b'"' {
                    push_flag(flags, "MULTIPART_INVALID_QUOTING");
                }
                i += 1;
            }
            rest[v0..i].trim().to_owned()
        };
        match key.as_str() {
            "name" => name = Some(value),
            "filename" | "filename*" => filename = Some(value),
            _ => {}
        }
    }
    (name, filename)
}
