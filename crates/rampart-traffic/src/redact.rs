//! Secrets replaced by keyed HMACs before a record leaves the process.
//!
//! A replaced value is `hmac-sha256:<key id>:<first 16 bytes of HMAC-SHA256(key, value), base64url>`:
//! equal tokens give equal replacements (sessions and per-key rate limits survive redaction),
//! the secret itself is gone, and without the key nobody can test a guess against it. For
//! `Authorization` the scheme word is kept (`Bearer hmac-sha256:…`), so a reader still knows
//! what kind of credential it was.

use aws_lc_rs::hmac;
use base64::Engine as _;

use crate::record::{Record, Redaction};

/// The prefix of every replaced value.
pub const PREFIX: &str = "hmac-sha256:";

/// What to replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactPolicy {
    /// Header names (lower case), in requests and responses.
    pub headers: Vec<String>,
    /// Query parameter names.
    pub query_params: Vec<String>,
}

impl Default for RedactPolicy {
    fn default() -> Self {
        Self {
            headers: [
                "authorization",
                "proxy-authorization",
                "cookie",
                "set-cookie",
                "x-api-key",
            ]
            .map(str::to_owned)
            .to_vec(),
            query_params: ["api_key", "apikey", "access_token", "token"]
                .map(str::to_owned)
                .to_vec(),
        }
    }
}

/// Replaces secrets with keyed HMACs.
pub struct Redactor {
    key_id: String,
    key: hmac::Key,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor with the key `key`, named `key_id` in what it writes.
    pub fn new(key_id: &str, key: &[u8]) -> Self {
        Self {
            key_id: key_id.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The replacement of `value`.
    pub fn token(&self, value: &str) -> String {
        let tag = hmac::sign(&self.key, value.as_bytes());
        let short = tag.as_ref().get(..16).unwrap_or(tag.as_ref());
        format!(
            "{PREFIX}{}:{}",
            self.key_id,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(short)
        )
    }

    /// Replaces the secrets `policy` names in `record`, and lists what it replaced.
    pub fn redact(&self, record: &mut Record, policy: &RedactPolicy) {
        let mut done = Vec::new();
        for (n, v) in &mut record.req.headers {
            if policy.headers.iter().any(|h| h == n) {
                *v = self.header_value(n, v);
                done.push(format!("req.header:{n}"));
            }
        }
        if let Some(resp) = &mut record.resp {
            for (n, v) in &mut resp.headers {
                if policy.headers.iter().any(|h| h == n) {
                    *v = self.header_value(n, v);
                    done.push(format!("resp.header:{n}"));
                }
            }
        }
        if let Some(q) = &mut record.req.query {
            let mut out = String::with_capacity(q.len());
            for (i, pair) in q.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, value))
                        if policy.query_params.iter().any(|p| decoded_eq(name, p)) =>
                    {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(&self.token(value));
                        done.push(format!("req.query:{name}"));
                    }
                    _ => out.push_str(pair),
                }
            }
            *q = out;
        }
        done.dedup();
        for w in done {
            if !record.redactions.iter().any(|r| r.where_ == w) {
                record.redactions.push(Redaction {
                    where_: w,
                    how: "hmac".into(),
                });
            }
        }
    }

    fn header_value(&self, name: &str, value: &str) -> String {
        match name {
            "authorization" | "proxy-authorization" => match value.split_once(' ') {
                Some((scheme, cred)) if !scheme.is_empty() => {
                    format!("{scheme} {}", self.token(cred.trim()))
                }
                _ => self.token(value),
            },
            // Each cookie keeps its name, so the session cookie stays recognisable.
            "cookie" => value
                .split(';')
                .map(|c| match c.trim().split_once('=') {
                    Some((n, v)) => format!("{n}={}", self.token(v)),
                    None => self.token(c.trim()),
                })
                .collect::<Vec<_>>()
                .join("; "),
            "set-cookie" => match value.split_once('=') {
                Some((n, rest)) => {
                    let (v, attrs) = rest.split_once(';').unwrap_or((rest, ""));
                    if attrs.is_empty() {
                        format!("{n}={}", self.token(v))
                    } else {
                        format!("{n}={};{attrs}", self.token(v))
                    }
                }
                None => self.token(value),
            },
            _ => self.token(value),
        }
    }
}

/// Whether a value was replaced by a redactor.
pub fn is_redacted(value: &str) -> bool {
    value.contains(PREFIX)
}

fn decoded_eq(raw: &str, name: &str) -> bool {
    raw.eq_ignore_ascii_case(name)
        || percent_decoded(raw).is_some_and(|d| d.eq_ignore_ascii_case(name))
}

fn percent_decoded(s: &str) -> Option<String> {
    s.contains('%').then(|| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Request, Response};

    #[test]
    fn secrets_become_keyed_hmacs_and_equal_tokens_stay_equal() {
        let r = Redactor::new("k1", b"a key of enough length for tests");
        let mut rec = Record {
            v: 1,
            ts: "2026-12-04T10:00:00Z".into(),
            req: Request {
                method: "GET".into(),
                path: "/x".into(),
                query: Some("a=1&api_key=s3cret&API%5Fkey=s3cret".into()),
                headers: vec![
                    ("authorization".into(), "Bearer eyJsecret".into()),
                    ("cookie".into(), "sid=abc; theme=dark".into()),
                    ("accept".into(), "*/*".into()),
                ],
                ..Request::default()
            },
            resp: Some(Response {
                status: 200,
                headers: vec![("set-cookie".into(), "sid=abc; HttpOnly".into())],
                ..Response::default()
            }),
            ..Record::default()
        };
        r.redact(&mut rec, &RedactPolicy::default());
        let line = serde_json::to_string(&rec).unwrap();
        assert!(
            !line.contains("s3cret") && !line.contains("eyJsecret") && !line.contains("abc"),
            "{line}"
        );
        let auth = &rec.req.headers[0].1;
        assert!(auth.starts_with("Bearer hmac-sha256:k1:"), "{auth}");
        assert_eq!(rec.req.headers[2].1, "*/*");
        // The same secret gives the same replacement wherever it is.
        let sid = r.token("abc");
        assert_eq!(
            rec.req.headers[1].1,
            format!("sid={sid}; theme={}", r.token("dark"))
        );
        assert_eq!(
            rec.resp.as_ref().unwrap().headers[0].1,
            format!("sid={sid}; HttpOnly")
        );
        let q = rec.req.query.as_deref().unwrap();
        assert_eq!(
            q,
            format!("a=1&api_key={0}&API%5Fkey={0}", r.token("s3cret"))
        );
        // Another key gives another replacement.
        assert_ne!(Redactor::new("k2", b"another key").token("abc"), sid);
        let wheres: Vec<_> = rec.redactions.iter().map(|x| x.where_.as_str()).collect();
        assert!(wheres.contains(&"req.header:authorization"), "{wheres:?}");
        assert!(wheres.contains(&"resp.header:set-cookie"), "{wheres:?}");
        assert!(is_redacted(auth));
    }
}
