//! JSON Schema learning (docs/discovery.md, "Schema learning").
//!
//! A statistics tree per body kind, which is a commutative monoid: [`Stats::merge`] is
//! associative and commutative, and learning `a` then `b` equals merging what was learned from
//! each (tested). [`Stats::schema`] turns it into JSON Schema 2020-12 that is **sound**: every
//! observed value validates against it (types, `required`, `format`, `enum` and maps are only
//! emitted when every observation agrees; bounds are reported, not enforced).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::classify::{classify, Class};

/// Thresholds.
const REQUIRED_MIN: u64 = 20;
const FORMAT_MIN: u64 = 10;
const ENUM_MIN: u64 = 50;
const ENUM_MAX: usize = 10;
const ENUM_VALUE_LEN: usize = 32;
const VALUES_CAP: usize = 64;
const MAP_KEYS: usize = 50;
const MAX_DEPTH: usize = 16;
const MAX_ITEMS: usize = 32;

/// String formats, checked in this order.
const FORMATS: [&str; 5] = ["uuid", "date", "email", "ipv4", "ipv6"];

/// What was seen at one place of the documents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Occurrences.
    pub n: u64,
    nulls: u64,
    bools: u64,
    ints: u64,
    floats: u64,
    strings: u64,
    objects: u64,
    arrays: u64,
    // Strings.
    len: Option<(u64, u64)>,
    formats: [u64; 5],
    /// Short string values with their counts, until more than `VALUES_CAP` distinct.
    values: BTreeMap<String, u64>,
    values_overflow: bool,
    /// Strings too long or too sensitive to be enum candidates.
    unlisted: u64,
    // Numbers.
    range: Option<(f64, f64)>,
    // Objects: per key, what was under it (its `n` is the key's presence).
    props: BTreeMap<String, Stats>,
    // Arrays.
    items: Option<Box<Stats>>,
    items_len: Option<(u64, u64)>,
    /// Deeper than `MAX_DEPTH`: not described.
    deep: bool,
}

fn widen<T: PartialOrd + Copy>(r: &mut Option<(T, T)>, lo: T, hi: T) {
    *r = Some(match *r {
        None => (lo, hi),
        Some((a, b)) => (if lo < a { lo } else { a }, if hi > b { hi } else { b }),
    });
}

impl Stats {
    /// Learns one document.
    pub fn observe(&mut self, v: &Value) {
        self.observe_at(v, 0);
    }

    fn observe_at(&mut self, v: &Value, depth: usize) {
        self.n += 1;
        if depth >= MAX_DEPTH {
            self.deep = true;
            return;
        }
        match v {
            Value::Null => self.nulls += 1,
            Value::Bool(_) => self.bools += 1,
            Value::Number(x) => {
                if x.is_i64() || x.is_u64() {
                    self.ints += 1;
                } else {
                    self.floats += 1;
                }
                let f = x.as_f64().unwrap_or(0.0);
                widen(&mut self.range, f, f);
            }
            Value::String(s) => {
                self.strings += 1;
                let l = s.chars().count() as u64;
                widen(&mut self.len, l, l);
                for (i, f) in FORMATS.iter().enumerate() {
                    if has_format(s, f) {
                        self.formats[i] += 1;
                    }
                }
                if s.len() <= ENUM_VALUE_LEN && !looks_sensitive(s) {
                    if !self.values_overflow {
                        *self.values.entry(s.clone()).or_default() += 1;
                        if self.values.len() > VALUES_CAP {
                            self.values.clear();
                            self.values_overflow = true;
                        }
                    }
                } else {
                    self.unlisted += 1;
                }
            }
            Value::Array(a) => {
                self.arrays += 1;
                widen(&mut self.items_len, a.len() as u64, a.len() as u64);
                let items = self.items.get_or_insert_with(Box::default);
                for x in a.iter().take(MAX_ITEMS) {
                    items.observe_at(x, depth + 1);
                }
            }
            Value::Object(m) => {
                self.objects += 1;
                for (k, x) in m {
                    self.props
                        .entry(k.clone())
                        .or_default()
                        .observe_at(x, depth + 1);
                }
            }
        }
    }

    /// Adds what `o` saw.
    pub fn merge(&mut self, o: &Stats) {
        self.n += o.n;
        self.nulls += o.nulls;
        self.bools += o.bools;
        self.ints += o.ints;
        self.floats += o.floats;
        self.strings += o.strings;
        self.objects += o.objects;
        self.arrays += o.arrays;
        if let Some((a, b)) = o.len {
            widen(&mut self.len, a, b);
        }
        for (x, y) in self.formats.iter_mut().zip(o.formats) {
            *x += y;
        }
        if o.values_overflow {
            self.values_overflow = true;
        }
        if !self.values_overflow {
            for (k, c) in &o.values {
                *self.values.entry(k.clone()).or_default() += c;
            }
            if self.values.len() > VALUES_CAP {
                self.values_overflow = true;
            }
        }
        if self.values_overflow {
            self.values.clear();
        }
        self.unlisted += o.unlisted;
        if let Some((a, b)) = o.range {
            widen(&mut self.range, a, b);
        }
        for (k, s) in &o.props {
            self.props.entry(k.clone()).or_default().merge(s);
        }
        if let Some(i) = &o.items {
            self.items.get_or_insert_with(Box::default).merge(i);
        }
        if let Some((a, b)) = o.items_len {
            widen(&mut self.items_len, a, b);
        }
        self.deep |= o.deep;
    }

    /// The JSON Schema (2020-12) of what was seen: every observed value validates against it.
    pub fn schema(&self) -> Value {
        if self.deep || self.n == 0 {
            return json!({});
        }
        let mut types: Vec<&str> = Vec::new();
        let mut s = Map::new();
        if self.nulls > 0 {
            types.push("null");
        }
        if self.bools > 0 {
            types.push("boolean");
        }
        if self.floats > 0 {
            types.push("number");
        } else if self.ints > 0 {
            types.push("integer");
        }
        if let Some((lo, hi)) = self.range {
            s.insert("x-rampart-observed-range".into(), json!([lo, hi]));
        }
        if self.strings > 0 {
            types.push("string");
            if let Some((lo, hi)) = self.len {
                s.insert("x-rampart-observed-length".into(), json!([lo, hi]));
            }
            if self.strings >= FORMAT_MIN {
                if let Some(i) = (0..FORMATS.len()).find(|i| self.formats[*i] == self.strings) {
                    s.insert("format".into(), json!(FORMATS[i]));
                }
            }
            let distinct = self.values.len();
            let only_strings =
                self.nulls + self.bools + self.ints + self.floats + self.objects + self.arrays == 0;
            if only_strings
                && self.strings >= ENUM_MIN
                && !self.values_overflow
                && self.unlisted == 0
                && distinct <= ENUM_MAX
                && (distinct as f64) < (self.strings as f64).sqrt()
                && !self.values.keys().all(|v| v.parse::<f64>().is_ok())
            {
                s.insert("enum".into(), json!(self.values.keys().collect::<Vec<_>>()));
            }
        }
        if self.arrays > 0 {
            types.push("array");
            if let Some(i) = &self.items {
                if i.n > 0 {
                    s.insert("items".into(), i.schema());
                }
            }
            if let Some((lo, hi)) = self.items_len {
                s.insert("x-rampart-observed-items".into(), json!([lo, hi]));
            }
        }
        if self.objects > 0 {
            types.push("object");
            let is_map = self.props.len() > MAP_KEYS
                || (self.props.len() >= 2
                    && self
                        .props
                        .keys()
                        .all(|k| matches!(classify(k), Class::Int | Class::Uuid)));
            if is_map {
                let mut all = Stats::default();
                for p in self.props.values() {
                    all.merge(p);
                }
                s.insert("additionalProperties".into(), all.schema());
                s.insert("x-rampart-map".into(), json!(true));
            } else {
                let mut props = Map::new();
                let mut required = Vec::new();
                for (k, p) in &self.props {
                    let mut ps = p.schema();
                    if let Value::Object(m) = &mut ps {
                        m.insert(
                            "x-rampart-presence".into(),
                            json!((p.n as f64 / self.objects as f64 * 1000.0).round() / 1000.0),
                        );
                    }
                    props.insert(k.clone(), ps);
                    if p.n == self.objects && self.objects >= REQUIRED_MIN {
                        required.push(k.clone());
                    }
                }
                if !props.is_empty() {
                    s.insert("properties".into(), Value::Object(props));
                }
                if !required.is_empty() {
                    s.insert("required".into(), json!(required));
                }
            }
        }
        match types.len() {
            0 => {}
            1 => {
                s.insert("type".into(), json!(types[0]));
            }
            _ => {
                s.insert("type".into(), json!(types));
            }
        }
        s.insert("x-rampart-samples".into(), json!(self.n));
        Value::Object(s)
    }
}

fn has_format(s: &str, f: &str) -> bool {
    match f {
        "uuid" => classify(s) == Class::Uuid,
        "date" => classify(s) == Class::Date,
        "email" => classify(s) == Class::Email,
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => false,
    }
}

/// Values that must not become enum members (personal data in a schema).
fn looks_sensitive(s: &str) -> bool {
    matches!(
        classify(s),
        Class::Email | Class::Ip | Class::Token | Class::Prefixed
    ) || s.bytes().filter(u8::is_ascii_digit).count() >= 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_object() {
        let mut s = Stats::default();
        for i in 0..60 {
            let status = ["open", "closed"][i % 2];
            let note = if i % 3 == 0 { Value::Null } else { json!("x") };
            s.observe(&json!({"id": i, "status": status, "note": note}));
        }
        let sch = s.schema();
        assert_eq!(sch["type"], "object");
        assert_eq!(sch["required"], json!(["id", "note", "status"]));
        assert_eq!(sch["properties"]["id"]["type"], "integer");
        assert_eq!(
            sch["properties"]["status"]["enum"],
            json!(["closed", "open"])
        );
        assert_eq!(sch["properties"]["note"]["type"], json!(["null", "string"]));
    }
}
