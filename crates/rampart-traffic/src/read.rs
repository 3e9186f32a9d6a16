//! Readers: Rampart's JSON lines and HAR 1.2, both turned into [`Record`]s.
//!
//! An entry that cannot be used is not dropped silently: it is listed in
//! [`Traffic::skipped`] with where it was and why (a bad line, a HAR entry with status 0, a
//! timestamp that is not RFC 3339). A file that is not of the format at all is an error.

use std::path::Path;

use serde::Deserialize;

use crate::record::{Body, FileHeader, Record, Redaction, Request, Response, VERSION};

/// The format of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// By the extension (`.har`, `.jsonl`, `.ndjson`), else by the content.
    Auto,
    /// HAR 1.2.
    Har,
    /// Rampart's JSON lines (`rampart-traffic/1`).
    Jsonl,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "har" => Ok(Self::Har),
            "jsonl" => Ok(Self::Jsonl),
            _ => Err(format!("unknown format {s:?} (auto, har, jsonl)")),
        }
    }
}

/// One usable exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Where it came from: `file.jsonl:12` or `file.har#3` (entry index).
    pub source: String,
    /// When the request started, in milliseconds since the epoch.
    pub ts_ms: u64,
    /// The exchange.
    pub record: Record,
    /// It came from HAR: no client address, bodies decoded, secrets maybe sanitized away.
    pub from_har: bool,
}

/// An entry that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Where it was.
    pub source: String,
    /// Why.
    pub why: String,
}

/// What a file held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    /// The usable exchanges, in file order.
    pub entries: Vec<Entry>,
    /// The entries that could not be used.
    pub skipped: Vec<Skipped>,
    /// The JSON-lines header, when the file has one.
    pub header: Option<FileHeader>,
}

/// A file that could not be read at all.
#[derive(Debug)]
pub enum ReadError {
    /// It could not be opened or read.
    Io(String),
    /// It is not of the format.
    Format(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(m) | Self::Format(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a file.
pub fn read_file(path: &Path, format: Format) -> Result<Traffic, ReadError> {
    let data =
        std::fs::read(path).map_err(|e| ReadError::Io(format!("{}: {e}", path.display())))?;
    let name = path.display().to_string();
    let format = match format {
        Format::Auto => match path.extension().and_then(|e| e.to_str()) {
            Some("har") => Format::Har,
            Some("jsonl" | "ndjson") => Format::Jsonl,
            _ => Format::Auto,
        },
        f => f,
    };
    read_bytes(&data, &name, format)
}

/// Reads the bytes of a file named `name` (for messages).
pub fn read_bytes(data: &[u8], name: &str, format: Format) -> Result<Traffic, ReadError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    match format {
        Format::Har => har(data, name),
        Format::Jsonl => jsonl(data, name),
        Format::Auto => {
            // A HAR file is one JSON object with `log`; a JSON-lines file is one per line.
            let first = data
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map(|i| &data[i..]);
            let one_line = first.is_some_and(|d| {
                d.split(|b| *b == b'\n')
                    .next()
                    .is_some_and(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
            });
            if one_line {
                jsonl(data, name)
            } else {
                har(data, name)
            }
        }
    }
}

fn jsonl(data: &[u8], name: &str) -> Result<Traffic, ReadError> {
    let mut out = Traffic::default();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let source = format!("{name}:{}", i + 1);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                if i == 0 {
                    return Err(ReadError::Format(format!(
                        "{source}: not a rampart-traffic JSON-lines file: {e}"
                    )));
                }
                out.skipped.push(Skipped {
                    source,
                    why: format!("not JSON: {e}"),
                });
                continue;
            }
        };
        if let Some(v) = value.get("rampart_traffic") {
            let h: FileHeader = serde_json::from_value(value.clone()).map_err(|e| {
                ReadError::Format(format!("{source}: a header line that does not parse: {e}"))
            })?;
            if h.rampart_traffic != VERSION {
                return Err(ReadError::Format(format!(
                    "{source}: rampart-traffic version {v} (this reads version {VERSION})"
                )));
            }
            if out.header.is_none() {
                out.header = Some(h);
            }
            continue;
        }
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                out.skipped.push(Skipped {
                    source,
                    why: format!("version {v} (this reads version {VERSION})"),
                });
                continue;
            }
            None => {
                if i == 0 {
                    return Err(ReadError::Format(format!(
                        "{source}: not a rampart-traffic line (no \"v\")"
                    )));
                }
                out.skipped.push(Skipped {
                    source,
                    why: "no \"v\": not a rampart-traffic line".into(),
                });
                continue;
            }
        }
        let record: Record = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                out.skipped.push(Skipped {
                    source,
                    why: format!("does not fit rampart-traffic/1: {e}"),
                });
                continue;
            }
        };
        if let Err(why) = check(&record) {
            out.skipped.push(Skipped { source, why });
            continue;
        }
        match crate::parse_ts_ms(&record.ts) {
            Ok(ts_ms) => out.entries.push(Entry {
                source,
                ts_ms,
                record,
                from_har: false,
            }),
            Err(e) => out.skipped.push(Skipped {
                source,
                why: format!("ts: {e}"),
            }),
        }
    }
    Ok(out)
}

/// What the replay needs to be true of a record.
fn check(r: &Record) -> Result<(), String> {
    if r.req.method.is_empty() || !r.req.method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("req.method {:?} is not a method", r.req.method));
    }
    if !r.req.path.starts_with('/') && r.req.path != "*" {
        return Err(format!("req.path {:?} does not start with /", r.req.path));
    }
    for body in [
        r.req.body.as_ref(),
        r.resp.as_ref().and_then(|s| s.body.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        body.bytes()?;
    }
    Ok(())
}

// HAR 1.2, only the fields replay uses; the rest is ignored.

#[derive(Deserialize)]
struct HarFile {
    log: HarLog,
}

#[derive(Deserialize)]
struct HarLog {
    #[serde(default)]
    entries: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarEntry {
    started_date_time: String,
    #[serde(default)]
    time: Option<f64>,
    request: HarRequest,
    response: Option<HarResponse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarRequest {
    method: String,
    url: String,
    #[serde(default)]
    http_version: Option<String>,
    #[serde(default)]
    headers: Vec<HarHeader>,
    #[serde(default)]
    post_data: Option<HarPostData>,
}

#[derive(Deserialize)]
struct HarHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarPostData {
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    params: Vec<HarParam>,
    /// HAR 1.3's proposal: `base64` when `text` is encoded.
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct HarParam {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarResponse {
    status: i64,
    #[serde(default)]
    headers: Vec<HarHeader>,
    #[serde(default)]
    content: Option<HarContent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarContent {
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

fn har(data: &[u8], name: &str) -> Result<Traffic, ReadError> {
    let file: HarFile = serde_json::from_slice(data)
        .map_err(|e| ReadError::Format(format!("{name}: not a HAR file: {e}")))?;
    let mut out = Traffic::default();
    for (i, raw) in file.log.entries.into_iter().enumerate() {
        let source = format!("{name}#{i}");
        let entry: HarEntry = match serde_json::from_value(raw) {
            Ok(e) => e,
            Err(e) => {
                out.skipped.push(Skipped {
                    source,
                    why: format!("not a HAR 1.2 entry: {e}"),
                });
                continue;
            }
        };
        match har_entry(entry) {
            Ok((ts_ms, record)) => {
                if let Err(why) = check(&record) {
                    out.skipped.push(Skipped { source, why });
                    continue;
                }
                out.entries.push(Entry {
                    source,
                    ts_ms,
                    record,
                    from_har: true,
                });
            }
            Err(why) => out.skipped.push(Skipped { source, why }),
        }
    }
    Ok(out)
}

fn har_entry(e: HarEntry) -> Result<(u64, Record), String> {
    let ts_ms =
        crate::parse_ts_ms(&e.started_date_time).map_err(|e| format!("startedDateTime: {e}"))?;
    let url = &e.request.url;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("request.url {url:?} is not absolute"))?;
    let rest = rest.split('#').next().unwrap_or(rest);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let path = if path.is_empty() { "/" } else { path };

    let mut redactions = Vec::new();
    let mut headers = Vec::new();
    let mut h2_authority = None;
    for h in e.request.headers {
        let n = h.name.to_ascii_lowercase();
        // Chromium lists HTTP/2's pseudo-headers among the headers.
        if let Some(pseudo) = n.strip_prefix(':') {
            if pseudo == "authority" {
                h2_authority = Some(h.value);
            }
            continue;
        }
        headers.push((n, h.value));
    }
    let authority = if authority.is_empty() {
        h2_authority
    } else {
        Some(authority.to_owned())
    };
    let body = match e.request.post_data {
        None => None,
        Some(pd) => {
            if let Some(t) = pd.text {
                if pd.encoding.as_deref() == Some("base64") {
                    let b = Body {
                        size: 0,
                        b64: Some(t),
                        ..Body::default()
                    };
                    let bytes = b.bytes()?.unwrap_or_default();
                    Some(Body::of(&bytes, bytes.len() as u64, "identity"))
                } else {
                    Some(Body::of(t.as_bytes(), t.len() as u64, "identity"))
                }
            } else if !pd.params.is_empty() {
                // `params` only: the body is rebuilt (form-urlencoded), and says so.
                if pd.params.iter().any(|p| p.file_name.is_some())
                    || pd
                        .mime_type
                        .as_deref()
                        .is_some_and(|m| m.starts_with("multipart/"))
                {
                    redactions.push(Redaction {
                        where_: "req.body".into(),
                        how: "multipart body given only as params: not rebuilt".into(),
                    });
                    Some(Body::omitted(0, "identity", "policy"))
                } else {
                    let mut s = String::new();
                    for (i, p) in pd.params.iter().enumerate() {
                        if i > 0 {
                            s.push('&');
                        }
                        s.push_str(&p.name);
                        s.push('=');
                        s.push_str(p.value.as_deref().unwrap_or(""));
                    }
                    redactions.push(Redaction {
                        where_: "req.body".into(),
                        how: "rebuilt from params".into(),
                    });
                    Some(Body::of(s.as_bytes(), s.len() as u64, "identity"))
                }
            } else {
                None
            }
        }
    };

    let resp = match e.response {
        None => None,
        Some(r) if r.status == 0 => {
            return Err("response status 0 (cancelled or blocked in the browser)".into())
        }
        Some(r) => {
            let status = u16::try_from(r.status)
                .ok()
                .filter(|s| (100..=999).contains(s))
                .ok_or_else(|| format!("response status {} is not a status", r.status))?;
            // HAR's content.text is decoded: the content-coding headers no longer describe it.
            let mut headers: Vec<(String, String)> = r
                .headers
                .into_iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value))
                .filter(|(n, _)| !n.starts_with(':'))
                .collect();
            let body = match r.content {
                Some(c) => match c.text {
                    Some(t) => {
                        headers.retain(|(n, _)| n != "content-encoding" && n != "content-length");
                        let bytes = if c.encoding.as_deref() == Some("base64") {
                            Body {
                                b64: Some(t),
                                ..Body::default()
                            }
                            .bytes()?
                            .unwrap_or_default()
                        } else {
                            t.into_bytes()
                        };
                        Some(Body::of(&bytes, bytes.len() as u64, "identity"))
                    }
                    None => {
                        let size = c.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                        (size > 0).then(|| Body::omitted(size, "identity", "not_in_har"))
                    }
                },
                None => None,
            };
            Some(Response {
                status,
                headers,
                body,
                source: None,
                upstream_us: None,
            })
        }
    };

    let record = Record {
        v: VERSION,
        id: String::new(),
        ts: crate::format_ts_us(ts_ms * 1000),
        dur_us: e
            .time
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| (t * 1000.0) as u64),
        client: None,
        req: Request {
            method: e.request.method,
            scheme: Some(scheme.to_ascii_lowercase()),
            authority,
            path: path.to_owned(),
            query,
            version: e.request.http_version.map(|v| normalise_version(&v)),
            headers,
            body,
        },
        resp,
        rampart: None,
        redactions,
    };
    Ok((ts_ms, record))
}

fn normalise_version(v: &str) -> String {
    match v.to_ascii_lowercase().as_str() {
        "h2" | "http/2" | "http/2.0" => "HTTP/2".into(),
        "h3" | "http/3" | "http/3.0" => "HTTP/3".into(),
        "http/1.0" => "HTTP/1.0".into(),
        _ => "HTTP/1.1".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAR: &str = r#"{"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":[
      {"startedDateTime":"2026-12-04T10:00:00.000Z","time":12.5,
       "request":{"method":"GET","url":"https://api.example.com/v1/users/7?x=1#frag","httpVersion":"h2",
         "headers":[{"name":":authority","value":"api.example.com"},{"name":"Accept","value":"*/*"}],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":0},
       "response":{"status":200,"statusText":"OK","httpVersion":"h2",
         "headers":[{"name":"Content-Encoding","value":"gzip"},{"name":"Content-Type","value":"application/json"}],
         "content":{"size":11,"mimeType":"application/json","text":"{\"id\":7}"}},"cache":{},"timings":{}},
      {"startedDateTime":"2026-12-04T10:00:01.000Z","time":1,
       "request":{"method":"POST","url":"https://api.example.com/login","httpVersion":"HTTP/1.1","headers":[],
         "postData":{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"u","value":"a"},{"name":"p","value":"b"}]}},
       "response":{"status":302,"headers":[],"content":{"size":0}}},
      {"startedDateTime":"2026-12-04T10:00:02.000Z","request":{"method":"GET","url":"https://x/cancelled","headers":[]},
       "response":{"status":0,"headers":[],"content":{}}},
      {"startedDateTime":"not a date","request":{"method":"GET","url":"https://x/","headers":[]}},
      {"startedDateTime":"2026-12-04T10:00:03.000Z","request":{"method":"PUT","url":"https://x/bin","headers":[],
         "postData":{"mimeType":"application/octet-stream","text":"AAEC/w==","encoding":"base64"}},
       "response":{"status":204,"headers":[],"content":{"size":3,"text":"AAEC","encoding":"base64"}}}
    ]}}"#;

    #[test]
    fn har_entries_become_records_and_bad_ones_are_listed() {
        let t = read_bytes(HAR.as_bytes(), "t.har", Format::Auto).unwrap();
        assert_eq!(t.entries.len(), 3, "{:?}", t.skipped);
        assert_eq!(t.skipped.len(), 2);
        assert!(t.skipped[0].why.contains("status 0"), "{:?}", t.skipped);
        assert_eq!(t.skipped[0].source, "t.har#2");
        assert!(t.skipped[1].why.contains("startedDateTime"));

        let r = &t.entries[0].record;
        assert_eq!(t.entries[0].ts_ms, 1_796_378_400_000);
        assert_eq!(r.req.authority.as_deref(), Some("api.example.com"));
        assert_eq!(r.req.path, "/v1/users/7");
        assert_eq!(r.req.query.as_deref(), Some("x=1"));
        assert_eq!(r.req.version.as_deref(), Some("HTTP/2"));
        assert_eq!(r.req.headers, vec![("accept".into(), "*/*".into())]);
        assert_eq!(r.dur_us, Some(12_500));
        let resp = r.resp.as_ref().unwrap();
        // Decoded text: the content-coding header is gone.
        assert_eq!(
            resp.headers,
            vec![("content-type".into(), "application/json".into())]
        );
        assert_eq!(
            resp.body.as_ref().unwrap().bytes().unwrap().unwrap(),
            br#"{"id":7}"#
        );

        let login = &t.entries[1].record;
        assert_eq!(
            login.req.body.as_ref().unwrap().text.as_deref(),
            Some("u=a&p=b")
        );
        assert_eq!(login.redactions[0].how, "rebuilt from params");

        let bin = &t.entries[2].record;
        assert_eq!(
            bin.req.body.as_ref().unwrap().bytes().unwrap().unwrap(),
            [0, 1, 2, 255]
        );
        assert_eq!(
            bin.resp
                .as_ref()
                .unwrap()
                .body
                .as_ref()
                .unwrap()
                .bytes()
                .unwrap()
                .unwrap(),
            [0, 1, 2]
        );
    }

    #[test]
    fn jsonl_reads_lines_and_lists_the_bad_ones() {
        let data = concat!(
            r#"{"rampart_traffic":1,"node":"n1"}"#,
            "\n",
            r#"{"v":1,"id":"a","ts":"2026-12-04T10:00:00.000001Z","req":{"method":"GET","path":"/x","headers":[["host","h"]]},"future_field":1}"#,
            "\n\n",
            r#"{"v":2,"ts":"2026-12-04T10:00:00Z","req":{"method":"GET","path":"/"}}"#,
            "\n",
            "{not json\n",
            r#"{"v":1,"ts":"2026-12-04T10:00:00Z","req":{"method":"G T","path":"/"}}"#,
            "\n",
            r#"{"v":1,"ts":"2026-12-04T10:00:00Z","req":{"method":"GET","path":"/","body":{"size":3,"b64":"!!"}}}"#,
            "\n",
        );
        let t = read_bytes(data.as_bytes(), "t.jsonl", Format::Auto).unwrap();
        assert_eq!(t.header.as_ref().unwrap().node.as_deref(), Some("n1"));
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.entries[0].record.id, "a");
        assert_eq!(t.entries[0].source, "t.jsonl:2");
        let why: Vec<_> = t
            .skipped
            .iter()
            .map(|s| (s.source.as_str(), s.why.as_str()))
            .collect();
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(why[0].0 == "t.jsonl:4" && why[0].1.contains("version 2"));
        assert!(why[1].1.contains("not JSON"));
        assert!(why[2].1.contains("not a method"));
        assert!(why[3].1.contains("base64"));
    }

    #[test]
    fn another_major_version_or_another_format_is_refused() {
        let e = read_bytes(br#"{"rampart_traffic":2}"#, "t.jsonl", Format::Jsonl).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        let e = read_bytes(b"GET / HTTP/1.1\r\n", "t", Format::Auto).unwrap_err();
        assert!(e.to_string().contains("not a HAR file"), "{e}");
        let e = read_bytes(b"{\"log\":{}", "t.har", Format::Har).unwrap_err();
        assert!(e.to_string().contains("not a HAR file"), "{e}");
    }
}

#[cfg(test)]
mod mitmproxy {
    use super::*;

    /// A HAR written by mitmproxy itself (tests/data/README.md says how).
    #[test]
    fn a_mitmproxy_har_reads() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mitmproxy.har");
        let t = read_file(&path, Format::Auto).unwrap();
        assert_eq!(t.skipped, vec![]);
        assert_eq!(t.entries.len(), 6);
        let r = |i: usize| &t.entries[i].record;
        assert_eq!(r(0).req.path, "/v1/users/7");
        assert_eq!(r(0).req.query.as_deref(), Some("fields=name"));
        // mitmproxy's HAR has the upstream's gzip body decoded: no content-encoding left.
        let gz = r(1).resp.as_ref().unwrap();
        assert!(
            gz.headers.iter().all(|(n, _)| n != "content-encoding"),
            "{:?}",
            gz.headers
        );
        assert_eq!(
            gz.body.as_ref().unwrap().bytes().unwrap().unwrap(),
            br#"{"items": [1, 2, 3]}"#
        );
        assert_eq!(
            r(2).req.body.as_ref().unwrap().text.as_deref(),
            Some("user=alice&remember=1")
        );
        assert_eq!(r(4).resp.as_ref().unwrap().status, 404);
        assert!(t.entries.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    }
}
