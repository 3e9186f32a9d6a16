//! The `dlp:` section as written, and its compilation.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rampart_core::{CompileCx, Enforcement};
use rampart_dlp::{CustomDetector, CustomRule, Detector, Profile, Scanner, Validator};
use serde::Deserialize;

/// What happens to a match.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An event with the detector, where, and a redacted sample; the data goes through.
    #[default]
    Log,
    /// The data is replaced in place by `*` (same length); an event is recorded.
    Mask,
    /// The response is refused (502) or the request (403); needs the body whole.
    Block,
}

/// What happens to a response that must be seen whole (a detector blocks) and is larger than
/// `max_buffer_bytes`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OversizeAction {
    /// Streamed, with the blocking detectors' matches masked instead (nothing leaks).
    #[default]
    Mask,
    /// Streamed until a blocking detector matches, then cut before the match.
    Cut,
    /// Refused (502) without being sent.
    Reject,
    /// Streamed, with the blocking detectors' matches only logged.
    Log,
}

/// `dlp:` (global, or an API's own, which replaces the global one for that API).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DlpConfig {
    /// Off turns the stage off (for one API under a global section).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `enforce`, or `monitor` (nothing masked or blocked; events say what would have been).
    #[serde(default)]
    pub mode: Enforcement,
    /// The profiles whose detectors are on: `pci`, `pii`, `secrets` (default: all three).
    #[serde(default = "all_profiles")]
    pub profiles: Vec<String>,
    /// Built-in detectors turned off.
    #[serde(default)]
    pub disable: Vec<String>,
    /// The action of every detector not named in `actions`.
    #[serde(default)]
    pub action: Action,
    /// Actions by detector, configured detector or profile name (a detector's own wins).
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
    /// Detectors of your own.
    #[serde(default)]
    pub custom: Vec<CustomDetectorConfig>,
    /// Values never reported (public keys shipped in apps, documented test numbers).
    #[serde(default)]
    pub allow_values: Vec<String>,
    /// The media types scanned: `type/subtype`, `type/*`, `*/*+json`-style suffixes.
    #[serde(default = "default_content_types")]
    pub content_types: Vec<String>,
    /// Whether a body without a `Content-Type` is scanned.
    #[serde(default = "yes")]
    pub scan_untyped: bool,
    /// The most bytes held to see a response whole when a detector blocks.
    #[serde(default = "default_max_buffer")]
    pub max_buffer_bytes: u64,
    /// The most bytes a compressed body may decode to.
    #[serde(default = "default_max_decoded")]
    pub max_decoded_bytes: u64,
    /// A response over `max_buffer_bytes` when a detector blocks.
    #[serde(default)]
    pub oversize: OversizeAction,
    /// Scanning of request bodies (off by default).
    #[serde(default)]
    pub requests: Option<DlpRequestConfig>,
}

/// `dlp.requests`: secrets and personal data sent into an API.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DlpRequestConfig {
    /// On when the section is present.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The profiles scanned in requests (default: `secrets`).
    #[serde(default = "secrets_profile")]
    pub profiles: Vec<String>,
    /// What happens on a match (default: `block`, answered with 403).
    #[serde(default = "block")]
    pub action: Action,
}

/// A detector of your own: `regex` (with optional `keywords`, `validator`, `min_entropy`)
/// or `terms` / `terms_file` (a dictionary of exact terms).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomDetectorConfig {
    /// Its name in events and in `actions`.
    pub name: String,
    /// A regular expression (Rust `regex` syntax); its first capture group, when it has one,
    /// is what is reported and masked.
    #[serde(default)]
    pub regex: Option<String>,
    /// With `regex`: a match counts only with one of these words in it or in the 64 bytes
    /// before it (any case).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// With `regex`: `luhn`, `iban`, `us_ssn` or `none`.
    #[serde(default)]
    pub validator: Option<String>,
    /// With `regex`: the least Shannon entropy of the match, in bits per character.
    #[serde(default)]
    pub min_entropy: Option<f64>,
    /// Exact terms, matched as whole words.
    #[serde(default)]
    pub terms: Vec<String>,
    /// A file of terms, one per line (`#` starts a comment), relative to the config file.
    #[serde(default)]
    pub terms_file: Option<String>,
    /// Whether terms match in any case (ASCII).
    #[serde(default)]
    pub case_insensitive: bool,
}

fn yes() -> bool {
    true
}

fn block() -> Action {
    Action::Block
}

fn all_profiles() -> Vec<String> {
    Profile::ALL.iter().map(|p| p.as_str().to_owned()).collect()
}

fn secrets_profile() -> Vec<String> {
    vec!["secrets".to_owned()]
}

fn default_content_types() -> Vec<String> {
    [
        "application/json",
        "application/*+json",
        "application/xml",
        "application/*+xml",
        "application/x-www-form-urlencoded",
        "application/javascript",
        "application/x-ndjson",
        "text/*",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn default_max_buffer() -> u64 {
    1024 * 1024
}

fn default_max_decoded() -> u64 {
    16 * 1024 * 1024
}

impl Default for DlpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: Enforcement::Enforce,
            profiles: all_profiles(),
            disable: Vec::new(),
            action: Action::Log,
            actions: BTreeMap::new(),
            custom: Vec::new(),
            allow_values: Vec::new(),
            content_types: default_content_types(),
            scan_untyped: true,
            max_buffer_bytes: default_max_buffer(),
            max_decoded_bytes: default_max_decoded(),
            oversize: OversizeAction::Mask,
            requests: None,
        }
    }
}

/// A media-type pattern from `content_types`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MediaPattern {
    Exact(String),
    AnySubtype(String),
    Suffix(String, String),
    Any,
}

impl MediaPattern {
    fn parse(p: &str) -> Option<Self> {
        let p = p.trim().to_ascii_lowercase();
        if p == "*/*" || p == "*" {
            return Some(Self::Any);
        }
        let (t, sub) = p.split_once('/')?;
        if t.is_empty() || sub.is_empty() || t == "*" {
            return None;
        }
        if sub == "*" {
            return Some(Self::AnySubtype(t.to_owned()));
        }
        if let Some(suffix) = sub.strip_prefix("*+") {
            return Some(Self::Suffix(t.to_owned(), suffix.to_owned()));
        }
        (!sub.contains('*')).then(|| Self::Exact(p.clone()))
    }

    #[cfg(test)]
    pub(crate) fn parse_for_tests(p: &str) -> Option<Self> {
        Self::parse(p)
    }

    pub(crate) fn matches(&self, essence: &str) -> bool {
        let (t, sub) = essence.split_once('/').unwrap_or((essence, ""));
        match self {
            Self::Any => true,
            Self::Exact(e) => e == essence,
            Self::AnySubtype(pt) => pt == t,
            Self::Suffix(pt, suffix) => {
                pt == t && sub.rsplit_once('+').is_some_and(|(_, s)| s == suffix)
            }
        }
    }
}

/// The compiled scanner of one direction with its actions.
#[derive(Debug)]
pub(crate) struct Side {
    pub(crate) scanner: Arc<Scanner>,
    /// Actions by detector: built-ins by their index, configured ones after.
    actions: Vec<Action>,
    pub(crate) any_block: bool,
    pub(crate) any_mask: bool,
}

impl Side {
    pub(crate) fn action(&self, d: Detector) -> Action {
        let i = match d {
            Detector::Custom(i) => Detector::BUILTIN.len() + usize::from(i),
            d => Detector::BUILTIN.iter().position(|b| *b == d).unwrap_or(0),
        };
        self.actions.get(i).copied().unwrap_or(Action::Log)
    }
}

/// The compiled `dlp:` section.
#[derive(Debug)]
pub struct Dlp {
    pub(crate) response: Side,
    pub(crate) request: Option<Side>,
    pub(crate) monitor: bool,
    pub(crate) content_types: Vec<MediaPattern>,
    pub(crate) scan_untyped: bool,
    pub(crate) max_buffer_bytes: u64,
    pub(crate) max_decoded_bytes: u64,
    pub(crate) oversize: OversizeAction,
}

impl Dlp {
    /// Compiles a section; `None` (with diagnostics) when it has errors, or when it is off.
    /// Paths (`terms_file`) are relative to `base_dir`.
    pub fn compile(c: &DlpConfig, base_dir: &Path, cx: &mut CompileCx) -> Option<Arc<Self>> {
        let before = cx.diagnostics().len();
        let selected = profiles(&c.profiles, cx, "profiles");
        let mut builtin: Vec<Detector> = Detector::BUILTIN
            .iter()
            .copied()
            .filter(|d| d.profile().is_some_and(|p| selected.contains(&p)))
            .collect();
        cx.at("disable", |cx| {
            for (i, name) in c.disable.iter().enumerate() {
                cx.at(format!("[{i}]"), |cx| match Detector::from_name(name) {
                    Some(d) => builtin.retain(|b| *b != d),
                    None => cx.unknown("detector", name, detector_names()),
                });
            }
        });
        let custom = cx.at("custom", |cx| {
            let mut out = Vec::new();
            for (i, d) in c.custom.iter().enumerate() {
                if let Some(d) = cx.at(format!("[{i}]"), |cx| custom_detector(d, base_dir, cx)) {
                    out.push(d);
                }
            }
            out
        });
        let mut names: Vec<&str> = detector_names();
        names.extend(Profile::ALL.iter().map(|p| p.as_str()));
        names.extend(c.custom.iter().map(|d| d.name.as_str()));
        cx.at("actions", |cx| {
            for name in c.actions.keys() {
                if !names.contains(&name.as_str()) {
                    cx.at(name.clone(), |cx| {
                        cx.unknown("detector or profile", name, &names)
                    });
                }
            }
        });
        let content_types: Vec<MediaPattern> = cx.at("content_types", |cx| {
            c.content_types
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let m = MediaPattern::parse(p);
                    if m.is_none() {
                        cx.at(format!("[{i}]"), |cx| {
                            cx.error_with_help(
                                format!("`{p}` is not a media type pattern"),
                                "write `type/subtype`, `type/*` or `type/*+suffix`",
                            )
                        });
                    }
                    m
                })
                .collect()
        });
        for (key, v) in [
            ("max_buffer_bytes", c.max_buffer_bytes),
            ("max_decoded_bytes", c.max_decoded_bytes),
        ] {
            if v == 0 {
                cx.at(key, |cx| cx.error("must be greater than 0"));
            }
        }
        let allow: Vec<Vec<u8>> = c
            .allow_values
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect();
        let response = match Scanner::with_custom(&builtin, &custom) {
            Ok(s) => Some(side(s.allow_values(allow.clone()), c, &custom, None)),
            Err(e) => {
                cx.at("custom", |cx| cx.error(e));
                None
            }
        };
        let request = match &c.requests {
            Some(r) if r.enabled => cx.at("requests", |cx| {
                let profiles = profiles(&r.profiles, cx, "profiles");
                let builtin: Vec<Detector> = Detector::BUILTIN
                    .iter()
                    .copied()
                    .filter(|d| d.profile().is_some_and(|p| profiles.contains(&p)))
                    .filter(|d| !c.disable.iter().any(|n| n == d.as_str()))
                    .collect();
                Scanner::with_custom(&builtin, &custom)
                    .ok()
                    .map(|s| side(s.allow_values(allow.clone()), c, &custom, Some(r.action)))
            }),
            _ => None,
        };
        if cx.diagnostics().len() != before || !c.enabled {
            return None;
        }
        Some(Arc::new(Self {
            response: response?,
            request,
            monitor: c.mode == Enforcement::Monitor,
            content_types,
            scan_untyped: c.scan_untyped,
            max_buffer_bytes: c.max_buffer_bytes,
            max_decoded_bytes: c.max_decoded_bytes,
            oversize: c.oversize,
        }))
    }

    /// Whether the section is in monitor mode.
    pub fn is_monitor(&self) -> bool {
        self.monitor
    }

    /// Whether a body of this `Content-Type` is scanned.
    pub(crate) fn scans(&self, content_type: Option<&http::HeaderValue>) -> bool {
        let Some(v) = content_type.and_then(|v| v.to_str().ok()) else {
            return self.scan_untyped;
        };
        let essence = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.content_types.iter().any(|p| p.matches(&essence))
    }
}

fn detector_names() -> Vec<&'static str> {
    Detector::BUILTIN.iter().map(|d| d.as_str()).collect()
}

fn profiles(names: &[String], cx: &mut CompileCx, key: &str) -> Vec<Profile> {
    cx.at(key, |cx| {
        names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let p = Profile::from_name(n);
                if p.is_none() {
                    let known: Vec<&str> = Profile::ALL.iter().map(|p| p.as_str()).collect();
                    cx.at(format!("[{i}]"), |cx| cx.unknown("profile", n, &known));
                }
                p
            })
            .collect()
    })
}

/// Each detector's action: its own entry in `actions`, else its profile's, else `action`
/// (or, for requests, the requests' one action).
fn side(scanner: Scanner, c: &DlpConfig, custom: &[CustomDetector], only: Option<Action>) -> Side {
    let mut actions: Vec<Action> = Detector::BUILTIN
        .iter()
        .map(|d| {
            only.unwrap_or_else(|| {
                c.actions
                    .get(d.as_str())
                    .or_else(|| d.profile().and_then(|p| c.actions.get(p.as_str())))
                    .copied()
                    .unwrap_or(c.action)
            })
        })
        .collect();
    actions.extend(
        custom
            .iter()
            .map(|d| only.unwrap_or_else(|| c.actions.get(&d.name).copied().unwrap_or(c.action))),
    );
    let enabled: Vec<Action> = Detector::BUILTIN
        .iter()
        .enumerate()
        .filter(|(_, d)| scanner_has(&scanner, **d))
        .map(|(i, _)| actions[i])
        .chain(actions[Detector::BUILTIN.len()..].iter().copied())
        .collect();
    Side {
        any_block: enabled.contains(&Action::Block),
        any_mask: enabled.contains(&Action::Mask),
        scanner: Arc::new(scanner),
        actions,
    }
}

fn scanner_has(scanner: &Scanner, d: Detector) -> bool {
    scanner.detectors().contains(&d)
}

fn custom_detector(
    d: &CustomDetectorConfig,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<CustomDetector> {
    if d.name.is_empty()
        || Detector::from_name(&d.name).is_some()
        || Profile::from_name(&d.name).is_some()
    {
        cx.at("name", |cx| {
            cx.error("a configured detector needs a name of its own (not a built-in detector's or a profile's)")
        });
        return None;
    }
    let has_terms = !d.terms.is_empty() || d.terms_file.is_some();
    match (&d.regex, has_terms) {
        (Some(pattern), false) => {
            let validator = match &d.validator {
                None => Validator::None,
                Some(v) => match Validator::from_name(v) {
                    Some(v) => v,
                    None => {
                        cx.at("validator", |cx| {
                            cx.unknown("validator", v, ["none", "luhn", "iban", "us_ssn"])
                        });
                        return None;
                    }
                },
            };
            Some(CustomDetector {
                name: d.name.clone(),
                rule: CustomRule::Regex {
                    pattern: pattern.clone(),
                    keywords: d.keywords.clone(),
                    validator,
                    min_entropy: d.min_entropy,
                },
            })
        }
        (None, true) => {
            let mut terms = d.terms.clone();
            if let Some(file) = &d.terms_file {
                match std::fs::read_to_string(base_dir.join(file)) {
                    Ok(text) => terms.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(str::to_owned),
                    ),
                    Err(e) => {
                        cx.at("terms_file", |cx| {
                            cx.error(format!("cannot read {file}: {e}"))
                        });
                        return None;
                    }
                }
            }
            Some(CustomDetector {
                name: d.name.clone(),
                rule: CustomRule::Terms {
                    terms,
                    case_insensitive: d.case_insensitive,
                },
            })
        }
        _ => {
            cx.error_with_help(
                "a configured detector has either `regex` or `terms`/`terms_file`",
                "write `regex: '…'` for a pattern, or `terms: [...]` for a dictionary",
            );
            None
        }
    }
}
