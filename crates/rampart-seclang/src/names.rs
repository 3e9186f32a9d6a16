//! Name lookups with a "did you mean" for the unknown ones.

/// The hint for an unknown name among `known`.
pub(crate) fn hint<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let known: Vec<&str> = known.into_iter().collect();
    let lowered: Vec<String> = known.iter().map(|k| k.to_ascii_lowercase()).collect();
    let near = rampart_core::diagnostics::nearest(&lower, &lowered)?;
    let i = lowered.iter().position(|k| *k == near)?;
    Some(format!("did you mean `{}`?", known[i]))
}
