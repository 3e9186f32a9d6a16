//! Path templates and the router: a request path to an operation. Literal segments beat
//! segments with a parameter inside, which beat whole-segment parameters, position by
//! position from the left (OpenAPI: "when matching URLs, concrete (non-templated) paths would
//! be matched before their templated counterparts").

use std::collections::HashMap;

/// One segment of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `users`
    Literal(String),
    /// `{id}`
    Param(String),
    /// `{name}.{ext}`, `v{version}`: literal parts and parameters inside one segment.
    Mixed(Vec<Part>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Param(String),
}

/// A path template of a specification (`/users/{id}/orders`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
}

impl PathTemplate {
    /// Parses a template.
    pub fn parse(t: &str) -> Result<Self, String> {
        let Some(rest) = t.strip_prefix('/') else {
            return Err(format!("path \"{t}\" must start with /"));
        };
        let mut segments = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for seg in rest.split('/') {
            let parts =
                split_parts(seg).ok_or_else(|| format!("unbalanced braces in \"{seg}\""))?;
            for p in &parts {
                if let Part::Param(n) = p {
                    if names.contains(n) {
                        return Err(format!("parameter \"{n}\" appears twice in \"{t}\""));
                    }
                    names.push(n.clone());
                }
            }
            segments.push(match parts.as_slice() {
                [] => Segment::Literal(String::new()),
                [Part::Lit(l)] => Segment::Literal(l.clone()),
                [Part::Param(n)] => Segment::Param(n.clone()),
                _ => {
                    if parts
                        .windows(2)
                        .any(|w| matches!(w, [Part::Param(_), Part::Param(_)]))
                    {
                        return Err(format!(
                            "two parameters side by side in \"{seg}\" cannot be told apart"
                        ));
                    }
                    Segment::Mixed(parts)
                }
            });
        }
        Ok(Self {
            text: t.to_owned(),
            segments,
        })
    }

    /// Returns the template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Returns the names of the parameters, in order.
    pub fn param_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Param(n) => out.push(n.as_str()),
                Segment::Mixed(parts) => {
                    for p in parts {
                        if let Part::Param(n) = p {
                            out.push(n.as_str());
                        }
                    }
                }
                Segment::Literal(_) => {}
            }
        }
        out
    }

    /// Matches raw path segments (still percent-encoded); returns the raw parameter values and
    /// the template's specificity (higher wins).
    fn matches(&self, segs: &[&str]) -> Option<(Vec<(String, String)>, Vec<u8>)> {
        if segs.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        let mut score = Vec::with_capacity(segs.len());
        for (t, s) in self.segments.iter().zip(segs) {
            match t {
                Segment::Literal(l) => {
                    if l != s && *l != decode(s) {
                        return None;
                    }
                    score.push(2);
                }
                Segment::Param(n) => {
                    if s.is_empty() {
                        return None;
                    }
                    params.push((n.clone(), (*s).to_owned()));
                    score.push(0);
                }
                Segment::Mixed(parts) => {
                    match_mixed(parts, s, &mut params)?;
                    score.push(1);
                }
            }
        }
        Some((params, score))
    }
}

fn split_parts(seg: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = seg;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}')?;
                let name = &rest[1..end];
                if name.is_empty() || name.contains('{') {
                    return None;
                }
                parts.push(Part::Param(name.to_owned()));
                rest = &rest[end + 1..];
            }
            Some(i) => {
                if rest[..i].contains('}') {
                    return None;
                }
                parts.push(Part::Lit(rest[..i].to_owned()));
                rest = &rest[i..];
            }
            None => {
                if rest.contains('}') {
                    return None;
                }
                parts.push(Part::Lit(rest.to_owned()));
                rest = "";
            }
        }
    }
    Some(parts)
}

/// Matches `{name}.{ext}` against `report.pdf`: each parameter takes the shortest non-empty
/// text up to the next literal part (the last one takes the rest).
fn match_mixed(parts: &[Part], mut s: &str, params: &mut Vec<(String, String)>) -> Option<()> {
    let mut i = 0;
    while i < parts.len() {
        match &parts[i] {
            Part::Lit(l) => s = s.strip_prefix(l.as_str())?,
            Part::Param(n) => {
                let value = match parts.get(i + 1) {
                    Some(Part::Lit(next)) => {
                        let at = s.get(1..)?.find(next.as_str())? + 1;
                        let v = &s[..at];
                        s = &s[at..];
                        v
                    }
                    _ => std::mem::take(&mut s),
                };
                if value.is_empty() {
                    return None;
                }
                params.push((n.clone(), value.to_owned()));
            }
        }
        i += 1;
    }
    s.is_empty().then_some(())
}

fn decode(s: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// The routes of a specification: templates by segment count, each with its operations.
#[derive(Debug, Default)]
pub(crate) struct Router {
    by_len: HashMap<usize, Vec<(PathTemplate, Vec<(http::Method, usize)>)>>,
}

/// What the router found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// An operation, with the raw path parameters.
    Op(usize, Vec<(String, String)>),
    /// The path is known, not with this method.
    Method,
    /// No template matches.
    Path,
}

impl Router {
    pub(crate) fn add(&mut self, t: PathTemplate, method: http::Method, op: usize) {
        let list = self.by_len.entry(t.segments.len()).or_default();
        match list.iter_mut().find(|(x, _)| x.text == t.text) {
            Some((_, ops)) => ops.push((method, op)),
            None => list.push((t, vec![(method, op)])),
        }
    }

    /// Finds the operation for a path relative to the server base (starting with `/`).
    pub(crate) fn find(&self, method: &http::Method, path: &str) -> Found {
        let Some(rest) = path.strip_prefix('/') else {
            return Found::Path;
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let Some(list) = self.by_len.get(&segs.len()) else {
            return Found::Path;
        };
        let mut best: Option<(Vec<u8>, bool, Found)> = None;
        for (t, ops) in list {
            let Some((params, score)) = t.matches(&segs) else {
                continue;
            };
            let op = ops
                .iter()
                .find(|(m, _)| m == method)
                .or_else(|| {
                    // HEAD is served by GET when the document does not declare it.
                    (method == http::Method::HEAD)
                        .then(|| ops.iter().find(|(m, _)| m == http::Method::GET))
                        .flatten()
                })
                .map(|(_, i)| *i);
            // A template with the method beats one without; then the more literal one.
            let has = op.is_some();
            let better = match &best {
                None => true,
                Some((s, h, _)) => (has, &score) > (*h, s),
            };
            if better {
                let found = match op {
                    Some(i) => Found::Op(i, params),
                    None => Found::Method,
                };
                best = Some((score, has, found));
            }
        }
        best.map_or(Found::Path, |(_, _, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn router(paths: &[&str]) -> Router {
        let mut r = Router::default();
        for (i, p) in paths.iter().enumerate() {
            r.add(PathTemplate::parse(p).unwrap(), Method::GET, i);
        }
        r
    }

    #[test]
    fn literals_beat_templates() {
        let r = router(&[
            "/users/{id}",
            "/users/me",
            "/users/{id}/orders/{oid}",
            "/files/{name}.{ext}",
        ]);
        assert_eq!(r.find(&Method::GET, "/users/me"), Found::Op(1, vec![]));
        assert_eq!(
            r.find(&Method::GET, "/users/42"),
            Found::Op(0, vec![("id".into(), "42".into())])
        );
        assert_eq!(
            r.find(&Method::GET, "/users/7/orders/9"),
            Found::Op(
                2,
                vec![("id".into(), "7".into()), ("oid".into(), "9".into())]
            )
        );
        assert_eq!(
            r.find(&Method::GET, "/files/report.v2.pdf"),
            Found::Op(
                3,
                vec![
                    ("name".into(), "report".into()),
                    ("ext".into(), "v2.pdf".into())
                ]
            )
        );
        assert_eq!(r.find(&Method::GET, "/users"), Found::Path);
        assert_eq!(r.find(&Method::GET, "/users/"), Found::Path);
        assert_eq!(r.find(&Method::POST, "/users/1"), Found::Method);
        assert_eq!(
            r.find(&Method::HEAD, "/users/1"),
            Found::Op(0, vec![("id".into(), "1".into())])
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(PathTemplate::parse("users").is_err());
        assert!(PathTemplate::parse("/a/{id}/{id}").is_err());
        assert!(PathTemplate::parse("/a/{x}{y}").is_err());
        assert!(PathTemplate::parse("/a/{x").is_err());
    }
}
