//! Media types: matching a `Content-Type` against a content map, and reading the bodies the
//! validator understands (JSON, urlencoded forms, multipart forms) into JSON values.

use serde_json::{Map, Value};

use crate::params::{self, Shape};

/// A media range of a content map (`application/json`, `image/*`, `*/*`), lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaRange {
    pub(crate) essence: String,
}

impl MediaRange {
    pub(crate) fn new(s: &str) -> Self {
        Self {
            essence: essence(s),
        }
    }

    /// 3 for an exact match, 2 for `type/*`, 1 for `*/*`, 0 for none.
    pub(crate) fn score(&self, ct: &str) -> u8 {
        if self.essence == ct {
            return 3;
        }
        if self.essence == "*/*" {
            return 1;
        }
        match self.essence.strip_suffix("/*") {
            Some(t) if ct.split('/').next() == Some(t) => 2,
            _ => 0,
        }
    }
}

/// `Application/JSON; charset=utf-8` → `application/json`.
pub(crate) fn essence(s: &str) -> String {
    s.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Returns the `boundary` parameter of a multipart content type.
pub(crate) fn boundary(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// True for `application/json` and `application/*+json`.
pub(crate) fn is_json(essence: &str) -> bool {
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A urlencoded form to an object, fields typed by the schema's properties; a field given
/// twice (or declared as an array) becomes an array.
pub(crate) fn form_object(body: &[u8], shape: &Shape) -> Value {
    fields_object(params::pairs(body), shape)
}

fn fields_object(pairs: Vec<(String, String)>, shape: &Shape) -> Value {
    let props: &[(String, Shape)] = match shape {
        Shape::Object(p) => p,
        _ => &[],
    };
    let mut map = Map::new();
    for (k, v) in pairs {
        let field_shape = props
            .iter()
            .find(|(n, _)| *n == k)
            .map_or(&Shape::Any, |(_, s)| s);
        let is_array = matches!(field_shape, Shape::Array(_));
        let item_shape = match field_shape {
            Shape::Array(item) => item.as_ref(),
            s => s,
        };
        let value = params::primitive(&v, item_shape);
        match map.get_mut(&k) {
            Some(Value::Array(items)) if is_array => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None if is_array => {
                map.insert(k, Value::Array(vec![value]));
            }
            None => {
                map.insert(k, value);
            }
        }
    }
    Value::Object(map)
}

/// Why a multipart body could not be read.
pub(crate) type MultipartError = &'static str;

/// A `multipart/form-data` body (RFC 7578) to an object of its fields: text fields typed by
/// the schema, file parts as their content (text, or lossily decoded bytes).
pub(crate) fn multipart_object(
    body: &[u8],
    boundary: &str,
    shape: &Shape,
) -> Result<Value, MultipartError> {
    let fields = multipart_fields(body, boundary)?;
    Ok(fields_object(fields, shape))
}

/// The parts of a multipart body as (name, content) pairs.
pub(crate) fn multipart_fields(
    body: &[u8],
    boundary: &str,
) -> Result<Vec<(String, String)>, MultipartError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err("bad multipart boundary");
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let finder = memchr::memmem::Finder::new(delim);
    let mut positions = finder.find_iter(body);
    let Some(first) = positions.next() else {
        return Err("multipart body without its boundary");
    };
    let mut out = Vec::new();
    let mut start = first + delim.len();
    loop {
        let rest = &body[start..];
        if rest.starts_with(b"--") {
            return Ok(out);
        }
        let rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("multipart boundary not followed by a line break")?;
        let part_start = start + (body[start..].len() - rest.len());
        let Some(next) = finder.find(&body[part_start..]) else {
            return Err("multipart body not closed by its final boundary");
        };
        let mut part = &body[part_start..part_start + next];
        part = part
            .strip_suffix(b"\r\n")
            .ok_or("multipart part not ended by a line break")?;
        let head_end =
            memchr::memmem::find(part, b"\r\n\r\n").ok_or("multipart part without headers")?;
        let head =
            std::str::from_utf8(&part[..head_end]).map_err(|_| "multipart headers not UTF-8")?;
        let content = &part[head_end + 4..];
        let mut name = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err("malformed multipart header");
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_name(v);
            }
        }
        let name = name.ok_or("multipart part without a name")?;
        out.push((name, String::from_utf8_lossy(content).into_owned()));
        if out.len() > 1000 {
            return Err("too many multipart parts");
        }
        start = part_start + next + delim.len();
    }
}

fn disposition_name(v: &str) -> Option<String> {
    let mut parts = v.split(';');
    let kind = parts.next()?.trim();
    if !kind.eq_ignore_ascii_case("form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("name")
            .then(|| val.trim().trim_matches('"').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ranges_score() {
        assert_eq!(
            MediaRange::new("application/json").score("application/json"),
            3
        );
        assert_eq!(MediaRange::new("image/*").score("image/png"), 2);
        assert_eq!(MediaRange::new("*/*").score("text/plain"), 1);
        assert_eq!(MediaRange::new("text/*").score("image/png"), 0);
        assert_eq!(
            essence("Application/JSON; charset=utf-8"),
            "application/json"
        );
        assert!(is_json("application/problem+json"));
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\""),
            Some("abc".into())
        );
    }

    #[test]
    fn forms_and_multipart() {
        let shape = Shape::Object(vec![
            ("n".into(), Shape::Int),
            ("tags".into(), Shape::Array(Box::new(Shape::Str))),
        ]);
        assert_eq!(
            form_object(b"n=3&tags=a&tags=b&x=y+z", &shape),
            json!({"n": 3, "tags": ["a", "b"], "x": "y z"})
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n42\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_object(body, "XyZ", &shape).unwrap(),
            json!({"n": 42, "file": "hello"})
        );
        assert!(multipart_object(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n42",
            "XyZ",
            &shape
        )
        .is_err());
        assert!(multipart_object(b"nothing", "XyZ", &shape).is_err());
    }
}
