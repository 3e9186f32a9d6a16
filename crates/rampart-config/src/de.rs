//! A serde deserializer over [`Node`]s that keeps going after a problem.
//!
//! Every problem is recorded with its path and position, and decoding continues with a
//! placeholder value where it can (a wrong scalar type, an unknown key, an unknown enum value),
//! so that a user sees all of them at once. Only a missing required field, which serde's derive
//! cannot get past, ends the decoding of the mapping that lacks it.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use rampart_core::diagnostics::nearest;
use rampart_core::Diagnostic;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::yaml::{Node, NodeKind};

/// The error type threaded through serde; its message has already been recorded when
/// `recorded` is set.
#[derive(Debug)]
pub struct DeError {
    msg: String,
    recorded: bool,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            msg: msg.to_string(),
            recorded: false,
        }
    }
}

/// Decodes `node` into `T`, returning the value and every problem.
///
/// The value is returned whenever decoding got through, even with problems: it then holds
/// placeholders where the problems were, so that later checks can still run on the rest (and
/// must ignore what lies under a problem's path). It is `None` only when a missing field
/// stopped decoding.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> (Option<T>, Vec<Diagnostic>) {
    let sink = RefCell::new(Vec::new());
    let out = T::deserialize(De {
        node,
        sink: &sink,
        path: String::new(),
    })
    .ok();
    (out, sink.into_inner())
}

struct De<'a> {
    node: &'a Node,
    sink: &'a RefCell<Vec<Diagnostic>>,
    path: String,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> De<'a> {
    fn record_at(&self, node: &Node, message: String, help: Option<String>) {
        self.sink.borrow_mut().push(Diagnostic {
            path: self.path.clone(),
            message,
            help,
            file: None,
            span: Some(node.span),
            value_span: None,
        });
    }

    fn record(&self, message: String) {
        self.record_at(self.node, message, None);
    }

    /// Records a serde error raised while visiting this node (a missing field, say).
    fn wrap<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|mut e| {
            if !e.recorded {
                self.record(e.msg.clone());
                e.recorded = true;
            }
            e
        })
    }

    fn scalar(&self) -> Option<(&'a str, bool)> {
        match &self.node.kind {
            NodeKind::Scalar { value, plain } => Some((value.as_str(), *plain)),
            _ => None,
        }
    }

    fn mismatch(&self, expected: &str) {
        let found = match self.scalar() {
            Some((v, _)) if !self.node.is_null() => format!("\"{}\"", truncate(v)),
            _ => self.node.describe().to_owned(),
        };
        self.record(format!("expected {expected}, found {found}"));
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

macro_rules! de_int {
    ($($method:ident $ty:ty => $visit:ident,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let parsed = self.scalar().filter(|(_, plain)| *plain).and_then(|(v, _)| v.trim_start_matches('+').replace('_', "").parse::<$ty>().ok());
            let value = match parsed {
                Some(v) => v,
                None => {
                    self.mismatch(concat!("an integer (", stringify!($ty), ")"));
                    <$ty>::default()
                }
            };
            let r = visitor.$visit(value);
            self.wrap(r)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Scalar { value, plain: true } => {
                if self.node.is_null() {
                    visitor.visit_unit()
                } else if let Ok(b) = value.parse::<bool>() {
                    visitor.visit_bool(b)
                } else if let Ok(i) = value.parse::<i64>() {
                    visitor.visit_i64(i)
                } else if let Ok(u) = value.parse::<u64>() {
                    visitor.visit_u64(u)
                } else if let Some(f) = value
                    .parse::<f64>()
                    .ok()
                    .filter(|_| value.contains(['.', 'e', 'E']))
                {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(value)
                }
            }
            NodeKind::Scalar {
                value,
                plain: false,
            } => visitor.visit_str(value),
            NodeKind::Seq(items) => visitor.visit_seq(SeqAcc {
                items,
                i: 0,
                sink: self.sink,
                path: &self.path,
            }),
            NodeKind::Map(entries) => {
                visitor.visit_map(MapAcc::new(entries, None, self.sink, &self.path))
            }
        };
        self.wrap(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match self.scalar() {
            Some(("true", true)) => true,
            Some(("false", true)) => false,
            _ => {
                self.mismatch("true or false");
                false
            }
        };
        let r = visitor.visit_bool(b);
        self.wrap(r)
    }

    de_int! {
        deserialize_i8 i8 => visit_i8,
        deserialize_i16 i16 => visit_i16,
        deserialize_i32 i32 => visit_i32,
        deserialize_i64 i64 => visit_i64,
        deserialize_u8 u8 => visit_u8,
        deserialize_u16 u16 => visit_u16,
        deserialize_u32 u32 => visit_u32,
        deserialize_u64 u64 => visit_u64,
        deserialize_f32 f32 => visit_f32,
        deserialize_f64 f64 => visit_f64,
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let s = match self.scalar() {
            Some((v, _)) if !self.node.is_null() => v,
            _ => {
                self.mismatch("a string");
                ""
            }
        };
        let r = visitor.visit_str(s);
        self.wrap(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let r = visitor.visit_none();
            self.wrap(r)
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = visitor.visit_unit();
        self.wrap(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let empty = Vec::new();
        let items = match &self.node.kind {
            NodeKind::Seq(items) => items,
            _ => {
                self.mismatch("a sequence");
                &empty
            }
        };
        let r = visitor.visit_seq(SeqAcc {
            items,
            i: 0,
            sink: self.sink,
            path: &self.path,
        });
        self.wrap(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.map(Some(fields), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (name, value) = match &self.node.kind {
            NodeKind::Scalar { value, .. } if !self.node.is_null() => (value.as_str(), None),
            NodeKind::Map(entries) if entries.len() == 1 => match entries[0].0.as_str() {
                Some(k) => (k, Some(&entries[0].1)),
                None => ("", None),
            },
            _ => ("", None),
        };
        let name = if variants.contains(&name) {
            name
        } else {
            let expected = variants.join(", ");
            let help = nearest(name, variants.iter()).map(|n| format!("did you mean \"{n}\"?"));
            if name.is_empty() {
                self.record_at(
                    self.node,
                    format!(
                        "expected one of: {expected}; found {}",
                        self.node.describe()
                    ),
                    None,
                );
            } else {
                self.record_at(
                    self.node,
                    format!(
                        "unknown value \"{}\", expected one of: {expected}",
                        truncate(name)
                    ),
                    help,
                );
            }
            // Go on with the first variant so that the rest of the file is still checked.
            variants.first().copied().unwrap_or("")
        };
        let r = visitor.visit_enum(EnumAcc {
            name,
            value,
            sink: self.sink,
            path: &self.path,
        });
        self.wrap(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl<'a> De<'a> {
    fn map<'de, V: Visitor<'de>>(
        self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let empty = Vec::new();
        let entries = match &self.node.kind {
            NodeKind::Map(entries) => entries,
            _ => {
                self.mismatch("a mapping");
                &empty
            }
        };
        let r = visitor.visit_map(MapAcc::new(entries, fields, self.sink, &self.path));
        self.wrap(r)
    }
}

struct SeqAcc<'a> {
    items: &'a [Node],
    i: usize,
    sink: &'a RefCell<Vec<Diagnostic>>,
    path: &'a str,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.i) else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.i);
        self.i += 1;
        seed.deserialize(De {
            node,
            sink: self.sink,
            path,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.i)
    }
}

struct MapAcc<'a> {
    entries: &'a [(Node, Node)],
    i: usize,
    fields: Option<&'static [&'static str]>,
    seen: HashSet<&'a str>,
    sink: &'a RefCell<Vec<Diagnostic>>,
    path: &'a str,
    value: Option<(&'a Node, String)>,
}

impl<'a> MapAcc<'a> {
    fn new(
        entries: &'a [(Node, Node)],
        fields: Option<&'static [&'static str]>,
        sink: &'a RefCell<Vec<Diagnostic>>,
        path: &'a str,
    ) -> Self {
        Self {
            entries,
            i: 0,
            fields,
            seen: HashSet::new(),
            sink,
            path,
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some((key, value)) = self.entries.get(self.i) {
            self.i += 1;
            let name = key.as_str().unwrap_or("");
            let de = De {
                node: key,
                sink: self.sink,
                path: child(self.path, name),
            };
            if !self.seen.insert(name) {
                de.record(format!("duplicate key \"{}\"", truncate(name)));
                continue;
            }
            if let Some(fields) = self.fields {
                if !fields.contains(&name) {
                    let help = match nearest(name, fields.iter()) {
                        Some(n) => format!("did you mean \"{n}\"?"),
                        None => format!("expected one of: {}", fields.join(", ")),
                    };
                    de.record_at(
                        key,
                        format!("unknown key \"{}\"", truncate(name)),
                        Some(help),
                    );
                    continue;
                }
            }
            self.value = Some((value, child(self.path, name)));
            return seed.deserialize(de).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some((node, path)) => seed.deserialize(De {
                node,
                sink: self.sink,
                path,
            }),
            None => Err(de::Error::custom("value requested before key")),
        }
    }
}

struct EnumAcc<'a> {
    name: &'a str,
    value: Option<&'a Node>,
    sink: &'a RefCell<Vec<Diagnostic>>,
    path: &'a str,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAcc<'a> {
    type Error = DeError;
    type Variant = VariantAcc<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let v = seed.deserialize(self.name.into_deserializer())?;
        let path = child(self.path, self.name);
        Ok((
            v,
            VariantAcc {
                value: self.value,
                sink: self.sink,
                path,
            },
        ))
    }
}

struct VariantAcc<'a> {
    value: Option<&'a Node>,
    sink: &'a RefCell<Vec<Diagnostic>>,
    path: String,
}

impl<'de> de::VariantAccess<'de> for VariantAcc<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(node) => seed.deserialize(De {
                node,
                sink: self.sink,
                path: self.path,
            }),
            None => Err(de::Error::custom(
                "expected a mapping with one key for this value",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => de::Deserializer::deserialize_seq(
                De {
                    node,
                    sink: self.sink,
                    path: self.path,
                },
                visitor,
            ),
            None => Err(de::Error::custom("expected a sequence for this value")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => De {
                node,
                sink: self.sink,
                path: self.path,
            }
            .map(Some(fields), visitor),
            None => Err(de::Error::custom("expected a mapping for this value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::yaml::parse;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        port: u16,
        #[serde(default)]
        mode: Mode,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Off,
        Required,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn decodes_a_valid_document() {
        let doc = parse("name: x\nitems:\n  - port: 80\n    mode: required\nflag: true\n").unwrap();
        let (v, d) = from_node::<Outer>(&doc);
        assert!(d.is_empty(), "{d:?}");
        let v = v.unwrap();
        assert_eq!(
            v.items[0],
            Inner {
                port: 80,
                mode: Mode::Required
            }
        );
        assert!(v.flag);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let doc = parse("name: x\nnmae: y\nitems:\n  - port: 99999\n    mode: requird\n  - port: eighty\nflag: yes\n").unwrap();
        let (v, d) = from_node::<Outer>(&doc);
        assert!(v.is_some(), "decoding goes on with placeholders");
        let msgs: Vec<String> = d
            .iter()
            .map(|d| format!("{}:{} {}", d.span.unwrap().line, d.path, d.message))
            .collect();
        assert_eq!(
            msgs,
            [
                "2:nmae unknown key \"nmae\"",
                "4:items[0].port expected an integer (u16), found \"99999\"",
                "5:items[0].mode unknown value \"requird\", expected one of: off, required",
                "6:items[1].port expected an integer (u16), found \"eighty\"",
                "7:flag expected true or false, found \"yes\"",
            ]
        );
        assert_eq!(d[0].help.as_deref(), Some("did you mean \"name\"?"));
        assert_eq!(d[2].help.as_deref(), Some("did you mean \"required\"?"));
    }

    #[test]
    fn missing_fields_are_reported_at_their_mapping() {
        let doc = parse("name: x\nitems:\n  - mode: off\n").unwrap();
        let (_, d) = from_node::<Outer>(&doc);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].path, "items[0]");
        assert_eq!(d[0].message, "missing field `port`");
    }
}
