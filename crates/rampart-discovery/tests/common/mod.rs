//! Traffic generated from OpenAPI documents, with the templates as ground truth.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A pronounceable word (a name or a slug part): letters only, so a weak segment.
pub fn word(rng: &mut Rng) -> String {
    const C: &[u8] = b"bcdfgklmnprstvz";
    const V: &[u8] = b"aeiou";
    let syllables = 2 + rng.below(2);
    let mut s = String::new();
    for _ in 0..syllables {
        s.push(char::from(C[rng.below(C.len() as u64) as usize]));
        s.push(char::from(V[rng.below(V.len() as u64) as usize]));
    }
    s
}

/// A value for a path parameter, by its name (and, where known, its schema type).
pub fn value(name: &str, ty: &str, rng: &mut Rng) -> String {
    let n = name.to_ascii_lowercase();
    if ty == "integer" || n == "id" || n.ends_with("id") {
        return (1 + rng.below(100_000)).to_string();
    }
    if n.contains("version") {
        return "v1".to_owned();
    }
    if n.contains("slug") {
        return format!("{}-{}", word(rng), word(rng));
    }
    word(rng)
}

/// One template of a document.
#[derive(Clone, Debug)]
pub struct Template {
    pub method: String,
    pub path: String,
    /// Each `{name}` with its type.
    pub params: Vec<(String, String)>,
}

/// The templates of an OpenAPI (2.0 or 3.x) JSON document.
pub fn templates(doc: &serde_json::Value) -> Vec<Template> {
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return out;
    };
    for (path, item) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            let Some(op) = item.get(method) else { continue };
            let mut params = Vec::new();
            let all = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(item["parameters"].as_array().into_iter().flatten());
            let mut types = std::collections::BTreeMap::new();
            for p in all {
                if p["in"] == "path" {
                    let ty = p["schema"]["type"]
                        .as_str()
                        .or(p["type"].as_str())
                        .unwrap_or("string");
                    types.insert(p["name"].as_str().unwrap_or("").to_owned(), ty.to_owned());
                }
            }
            for seg in path.split('/') {
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    let ty = types.get(name).cloned().unwrap_or_else(|| "string".into());
                    params.push((name.to_owned(), ty));
                }
            }
            out.push(Template {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                params,
            });
        }
    }
    out
}

/// `requests` requests per template, each variable drawn from `k` values of its own.
pub fn traffic(
    ts: &[Template],
    k: usize,
    requests: usize,
    seed: u64,
) -> Vec<(String, String, usize)> {
    let mut rng = Rng(seed | 1);
    // The values of each parameter name are shared by the templates that use it (as a
    // username is in several paths).
    let mut pools: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for t in ts {
        for (name, ty) in &t.params {
            pools.entry(name.clone()).or_insert_with(|| {
                let mut seen = BTreeSet::new();
                let mut v = Vec::new();
                for _ in 0..10 * k + 10 {
                    if v.len() == k {
                        break;
                    }
                    let x = value(name, ty, &mut rng);
                    if seen.insert(x.clone()) {
                        v.push(x);
                    }
                }
                v
            });
        }
    }
    let mut out = Vec::new();
    for _ in 0..requests {
        for (ti, t) in ts.iter().enumerate() {
            let mut path = String::new();
            for seg in t.path.split('/').skip(1) {
                path.push('/');
                match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        let pool = &pools[name];
                        path.push_str(&pool[rng.below(pool.len() as u64) as usize]);
                    }
                    None => path.push_str(seg),
                }
            }
            if path.is_empty() {
                path.push('/');
            }
            out.push((t.method.clone(), path, ti));
        }
    }
    // Interleaved as real traffic is.
    for i in (1..out.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        out.swap(i, j);
    }
    out
}

/// (method, template with variables as `{}`).
pub fn truth(ts: &[Template]) -> BTreeSet<(String, String)> {
    ts.iter()
        .map(|t| (t.method.clone(), rampart_discovery::shape(&t.path)))
        .collect()
}

/// Precision and recall of `learned` against `truth`.
pub fn score(
    learned: &BTreeSet<(String, String)>,
    truth: &BTreeSet<(String, String)>,
) -> (f64, f64) {
    let hit = learned.intersection(truth).count() as f64;
    let p = if learned.is_empty() {
        0.0
    } else {
        hit / learned.len() as f64
    };
    let r = if truth.is_empty() {
        0.0
    } else {
        hit / truth.len() as f64
    };
    (p, r)
}

/// Baseline 1 (mitmproxy2swagger's default): all-digit segments are variables.
pub fn digits_only(paths: &[(String, String)]) -> BTreeSet<(String, String)> {
    paths
        .iter()
        .map(|(m, p)| {
            let t: Vec<&str> = p
                .split('/')
                .map(|s| {
                    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                        "{}"
                    } else {
                        s
                    }
                })
                .collect();
            (m.clone(), t.join("/"))
        })
        .collect()
}

/// Baseline 2 (Optic's two-value rule): a position is a variable when two paths of the same
/// method and length differ only there.
pub fn two_values(paths: &[(String, String)]) -> BTreeSet<(String, String)> {
    use std::collections::{BTreeMap, HashSet};
    let unique: BTreeSet<(String, Vec<String>)> = paths
        .iter()
        .map(|(m, p)| (m.clone(), p.split('/').map(str::to_owned).collect()))
        .collect();
    let mut var: HashSet<(String, usize, Vec<String>)> = HashSet::new();
    let mut groups: BTreeMap<(String, usize, Vec<String>), BTreeSet<String>> = BTreeMap::new();
    for (m, segs) in &unique {
        for i in 0..segs.len() {
            let mut key = segs.clone();
            let v = std::mem::take(&mut key[i]);
            groups.entry((m.clone(), i, key)).or_default().insert(v);
        }
    }
    for (k, vals) in groups {
        if vals.len() >= 2 {
            var.insert(k);
        }
    }
    unique
        .iter()
        .map(|(m, segs)| {
            let mut t = segs.clone();
            for i in 0..segs.len() {
                let mut key = segs.clone();
                key[i] = String::new();
                if var.contains(&(m.clone(), i, key)) {
                    t[i] = "{}".into();
                }
            }
            (m.clone(), t.join("/"))
        })
        .collect()
}
