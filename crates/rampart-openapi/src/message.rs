//! Messages for validation errors. Client-facing ones say what is wrong with the value, never
//! which keyword or schema path decided it; spec-author ones may say more.

use jsonschema::error::{TypeKind, ValidationErrorKind as K};
use jsonschema::ValidationError;
use serde_json::Value;

/// A message for a client: what is wrong with its value, in terms of the value.
pub(crate) fn describe(e: &ValidationError<'_>) -> String {
    match e.kind() {
        K::Type { kind } => format!("must be {}", type_name(kind)),
        K::Required { property } => match property.as_str() {
            Some(p) => format!("property \"{}\" is required", short(p)),
            None => "a required property is missing".to_owned(),
        },
        K::Maximum { limit } => format!("must be <= {limit}"),
        K::Minimum { limit } => format!("must be >= {limit}"),
        K::ExclusiveMaximum { limit } => format!("must be < {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be > {limit}"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::MaxProperties { limit } => format!("must have at most {limit} properties"),
        K::MinProperties { limit } => format!("must have at least {limit} properties"),
        K::MultipleOf { .. } => "is not an allowed multiple".to_owned(),
        K::Pattern { .. } => "does not match the required pattern".to_owned(),
        K::Format { format } => format!("must be a valid {format}"),
        K::Enum { options } => match options.as_array() {
            Some(list) if list.len() <= 10 && list.iter().all(Value::is_string) => {
                let names: Vec<String> = list.iter().map(Value::to_string).collect();
                format!("must be one of {}", names.join(", "))
            }
            _ => "is not one of the allowed values".to_owned(),
        },
        K::Constant { .. } => "is not the allowed value".to_owned(),
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            let names: Vec<String> = unexpected
                .iter()
                .take(5)
                .map(|u| format!("\"{}\"", short(u)))
                .collect();
            format!("unexpected properties: {}", names.join(", "))
        }
        K::AdditionalItems { .. } | K::UnevaluatedItems { .. } => "has too many items".to_owned(),
        K::UniqueItems => "must not contain duplicate items".to_owned(),
        K::FalseSchema => "is not allowed here".to_owned(),
        K::Not { .. } => "is not allowed".to_owned(),
        K::AnyOf { .. } | K::OneOfNotValid { .. } => {
            "does not match any of the allowed forms".to_owned()
        }
        K::OneOfMultipleValid { .. } => "matches more than one of the allowed forms".to_owned(),
        K::Contains => "does not contain a required item".to_owned(),
        K::PropertyNames { .. } => "has a property name that is not allowed".to_owned(),
        _ => "is not valid".to_owned(),
    }
}

/// A message for the author of a specification (the meta-schema check).
pub(crate) fn describe_meta(e: &ValidationError<'_>) -> String {
    match e.kind() {
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            let names: Vec<String> = unexpected.iter().map(|u| format!("\"{u}\"")).collect();
            format!("unknown field {} here", names.join(", "))
        }
        K::Required { property } => format!("{property} is required here"),
        K::Type { kind } => format!("must be {}", type_name(kind)),
        K::Pattern { pattern } => format!("must match {pattern}"),
        K::Enum { options } => format!("must be one of {options}"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::OneOfNotValid { .. } | K::AnyOf { .. } => {
            "is not a valid OpenAPI object here (it matches none of the allowed forms)".to_owned()
        }
        K::Not { .. } => "is not allowed in this combination".to_owned(),
        K::FalseSchema => "is not allowed here".to_owned(),
        _ => describe(e),
    }
}

fn type_name(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => article(&t.to_string()),
        TypeKind::Multiple(set) => {
            let names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
            format!("one of: {}", names.join(", "))
        }
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" | "object" | "array" => format!("an {t}"),
        "null" => "null".to_owned(),
        other => format!("a {other}"),
    }
}

/// A name from the client, cut short so that a message cannot echo a large input.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
