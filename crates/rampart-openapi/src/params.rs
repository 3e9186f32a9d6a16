//! Parameters as they travel (strings in a path, a query, headers and cookies) turned into the
//! JSON values their schemas describe, by `style` and `explode` (OpenAPI "Style Values").

use serde_json::{Map, Number, Value};

/// What a schema says a value looks like, as far as turning text into JSON needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Shape {
    Any,
    Str,
    Int,
    Num,
    Bool,
    Array(Box<Shape>),
    Object(Vec<(String, Shape)>),
}

/// How a parameter is serialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Simple,
    Label,
    Matrix,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

impl Style {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "simple" => Self::Simple,
            "label" => Self::Label,
            "matrix" => Self::Matrix,
            "form" => Self::Form,
            "spaceDelimited" => Self::SpaceDelimited,
            "pipeDelimited" => Self::PipeDelimited,
            "deepObject" => Self::DeepObject,
            _ => return None,
        })
    }
}

/// Text to a primitive of the shape; text that does not parse stays text, so that the schema
/// reports it ("must be an integer").
pub(crate) fn primitive(raw: &str, shape: &Shape) -> Value {
    match shape {
        Shape::Int => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        Shape::Num => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(Number::from_f64)
            .map(|n| {
                // 3 and 3.0 are the same number; keep integers integral for `multipleOf`.
                raw.parse::<i64>().map_or(Value::Number(n), Value::from)
            })
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Shape::Bool => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        Shape::Any => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => raw
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(raw.to_owned())),
        },
        _ => Value::String(raw.to_owned()),
    }
}

fn item_shape(shape: &Shape) -> &Shape {
    match shape {
        Shape::Array(item) => item,
        _ => &Shape::Any,
    }
}

fn prop_shape<'a>(shape: &'a Shape, name: &str) -> &'a Shape {
    match shape {
        Shape::Object(props) => props
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&Shape::Any, |(_, s)| s),
        _ => &Shape::Any,
    }
}

fn pct(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits `a,b,c` into values, and builds the array or object the shape asks for.
/// `kv_pairs`: the object form `k,v,k2,v2` (false) or `k=v,k2=v2` (true).
fn from_list(items: &[String], shape: &Shape, kv_pairs: bool) -> Value {
    match shape {
        Shape::Array(item) => Value::Array(items.iter().map(|i| primitive(i, item)).collect()),
        Shape::Object(_) => {
            let mut map = Map::new();
            if kv_pairs {
                for i in items {
                    let (k, v) = i.split_once('=').unwrap_or((i, ""));
                    map.insert(k.to_owned(), primitive(v, prop_shape(shape, k)));
                }
            } else {
                for pair in items.chunks(2) {
                    let k = &pair[0];
                    let v = pair.get(1).map_or("", String::as_str);
                    map.insert(k.clone(), primitive(v, prop_shape(shape, k)));
                }
            }
            Value::Object(map)
        }
        _ => primitive(&items.join(","), shape),
    }
}

/// A path parameter from its raw (percent-encoded) segment text.
pub(crate) fn path_value(
    raw: &str,
    name: &str,
    style: Style,
    explode: bool,
    shape: &Shape,
) -> Value {
    match style {
        Style::Label => {
            let body = raw.strip_prefix('.').unwrap_or(raw);
            let sep = if explode { '.' } else { ',' };
            let items: Vec<String> = body.split(sep).map(pct).collect();
            from_list(&items, shape, explode)
        }
        Style::Matrix => {
            // ;id=5   ;id=3,4,5   ;id=3;id=4   ;role=admin;name=alex (object, exploded)
            let body = raw.strip_prefix(';').unwrap_or(raw);
            let pairs: Vec<(String, String)> = body
                .split(';')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (pct(k), pct(v))
                })
                .collect();
            match (shape, explode) {
                (Shape::Object(_), true) => {
                    let items: Vec<String> =
                        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    from_list(&items, shape, true)
                }
                (Shape::Array(_), true) => {
                    let items: Vec<String> = pairs
                        .into_iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, v)| v)
                        .collect();
                    from_list(&items, shape, false)
                }
                _ => {
                    let v = pairs
                        .into_iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v)
                        .unwrap_or_default();
                    let items: Vec<String> = v.split(',').map(str::to_owned).collect();
                    from_list(&items, shape, false)
                }
            }
        }
        _ => {
            let items: Vec<String> = raw.split(',').map(pct).collect();
            from_list(&items, shape, explode)
        }
    }
}

/// A query parameter from the decoded pairs of the query string; `None` when absent.
pub(crate) fn query_value(
    pairs: &[(String, String)],
    name: &str,
    style: Style,
    explode: bool,
    shape: &Shape,
) -> Option<Value> {
    let named = || pairs.iter().filter(move |(k, _)| k == name).map(|(_, v)| v);
    match style {
        Style::DeepObject => {
            let prefix = format!("{name}[");
            let mut map = Map::new();
            for (k, v) in pairs {
                let Some(prop) = k.strip_prefix(&prefix).and_then(|r| r.strip_suffix(']')) else {
                    continue;
                };
                map.insert(prop.to_owned(), primitive(v, prop_shape(shape, prop)));
            }
            (!map.is_empty()).then_some(Value::Object(map))
        }
        Style::SpaceDelimited | Style::PipeDelimited => {
            let sep = if style == Style::SpaceDelimited {
                ' '
            } else {
                '|'
            };
            let values: Vec<&String> = named().collect();
            if values.is_empty() {
                return None;
            }
            let items: Vec<String> = if explode {
                values.into_iter().cloned().collect()
            } else {
                values
                    .iter()
                    .flat_map(|v| v.split(sep).map(str::to_owned))
                    .collect()
            };
            Some(from_list(&items, shape, false))
        }
        _ => match shape {
            Shape::Array(_) => {
                let values: Vec<&String> = named().collect();
                if values.is_empty() {
                    return None;
                }
                let items: Vec<String> = if explode {
                    values.into_iter().cloned().collect()
                } else {
                    values
                        .iter()
                        .flat_map(|v| v.split(',').map(str::to_owned))
                        .collect()
                };
                Some(from_list(&items, shape, false))
            }
            Shape::Object(props) if explode => {
                let mut map = Map::new();
                for (k, v) in pairs {
                    if props.iter().any(|(p, _)| p == k) {
                        map.insert(k.clone(), primitive(v, prop_shape(shape, k)));
                    }
                }
                (!map.is_empty()).then_some(Value::Object(map))
            }
            _ => {
                // A primitive given twice is not a primitive: the last one is not silently
                // taken, the schema sees both and says "must be a …".
                let values: Vec<&String> = named().collect();
                match values.as_slice() {
                    [] => None,
                    [one] => Some(match shape {
                        Shape::Object(_) => {
                            let items: Vec<String> = one.split(',').map(str::to_owned).collect();
                            from_list(&items, shape, false)
                        }
                        _ => primitive(one, shape),
                    }),
                    many => Some(Value::Array(
                        many.iter()
                            .map(|v| primitive(v, item_shape(shape)))
                            .collect(),
                    )),
                }
            }
        },
    }
}

/// A header parameter (style `simple`).
pub(crate) fn header_value(raw: &str, explode: bool, shape: &Shape) -> Value {
    let items: Vec<String> = raw.split(',').map(|s| s.trim().to_owned()).collect();
    match shape {
        Shape::Array(_) | Shape::Object(_) => from_list(&items, shape, explode),
        _ => primitive(raw.trim(), shape),
    }
}

/// A cookie parameter (style `form`): the value of the named cookie.
pub(crate) fn cookie_value(raw: &str, shape: &Shape) -> Value {
    match shape {
        Shape::Array(_) | Shape::Object(_) => {
            let items: Vec<String> = raw.split(',').map(pct).collect();
            from_list(&items, shape, false)
        }
        _ => primitive(&pct(raw), shape),
    }
}

/// Splits a query string (or a urlencoded form) into decoded pairs.
pub(crate) fn pairs(query: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(query)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn arr() -> Shape {
        Shape::Array(Box::new(Shape::Int))
    }

    fn obj() -> Shape {
        Shape::Object(vec![
            ("role".into(), Shape::Str),
            ("age".into(), Shape::Int),
        ])
    }

    #[test]
    fn path_styles() {
        assert_eq!(
            path_value("5", "id", Style::Simple, false, &Shape::Int),
            json!(5)
        );
        assert_eq!(
            path_value("3,4,5", "id", Style::Simple, false, &arr()),
            json!([3, 4, 5])
        );
        assert_eq!(
            path_value("role=admin,age=3", "id", Style::Simple, true, &obj()),
            json!({"role": "admin", "age": 3})
        );
        assert_eq!(
            path_value("role,admin,age,3", "id", Style::Simple, false, &obj()),
            json!({"role": "admin", "age": 3})
        );
        assert_eq!(
            path_value(".3.4", "id", Style::Label, true, &arr()),
            json!([3, 4])
        );
        assert_eq!(
            path_value(".3,4", "id", Style::Label, false, &arr()),
            json!([3, 4])
        );
        assert_eq!(
            path_value(";id=5", "id", Style::Matrix, false, &Shape::Int),
            json!(5)
        );
        assert_eq!(
            path_value(";id=3;id=4", "id", Style::Matrix, true, &arr()),
            json!([3, 4])
        );
        assert_eq!(
            path_value(";id=3,4", "id", Style::Matrix, false, &arr()),
            json!([3, 4])
        );
        assert_eq!(
            path_value(";role=admin;age=3", "id", Style::Matrix, true, &obj()),
            json!({"role": "admin", "age": 3})
        );
        assert_eq!(
            path_value("a%20b", "id", Style::Simple, false, &Shape::Str),
            json!("a b")
        );
        assert_eq!(
            path_value("x", "id", Style::Simple, false, &Shape::Int),
            json!("x")
        );
    }

    #[test]
    fn query_styles() {
        let p = pairs(
            b"id=3&id=4&csv=1,2&sp=1%202&pp=1|2&color[role]=admin&color[age]=3&role=x&n=1.5&b=true",
        );
        assert_eq!(
            query_value(&p, "id", Style::Form, true, &arr()),
            Some(json!([3, 4]))
        );
        assert_eq!(
            query_value(&p, "csv", Style::Form, false, &arr()),
            Some(json!([1, 2]))
        );
        assert_eq!(
            query_value(&p, "sp", Style::SpaceDelimited, false, &arr()),
            Some(json!([1, 2]))
        );
        assert_eq!(
            query_value(&p, "pp", Style::PipeDelimited, false, &arr()),
            Some(json!([1, 2]))
        );
        assert_eq!(
            query_value(&p, "color", Style::DeepObject, true, &obj()),
            Some(json!({"role": "admin", "age": 3}))
        );
        assert_eq!(
            query_value(&p, "anything", Style::Form, true, &obj()),
            Some(json!({"role": "x"}))
        );
        assert_eq!(
            query_value(&p, "n", Style::Form, true, &Shape::Num),
            Some(json!(1.5))
        );
        assert_eq!(
            query_value(&p, "b", Style::Form, true, &Shape::Bool),
            Some(json!(true))
        );
        assert_eq!(
            query_value(&p, "missing", Style::Form, true, &Shape::Str),
            None
        );
        // A scalar sent twice is an array, which the schema then refuses.
        assert_eq!(
            query_value(&p, "id", Style::Form, true, &Shape::Int),
            Some(json!([3, 4]))
        );
    }

    #[test]
    fn headers_and_cookies() {
        assert_eq!(header_value("1, 2", false, &arr()), json!([1, 2]));
        assert_eq!(header_value(" 7 ", false, &Shape::Int), json!(7));
        assert_eq!(cookie_value("a%2Cb", &Shape::Str), json!("a,b"));
        assert_eq!(cookie_value("1,2", &arr()), json!([1, 2]));
    }
}
