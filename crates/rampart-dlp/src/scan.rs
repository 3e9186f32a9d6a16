//! The scanner: detectors over bytes, whole or streamed in chunks.
//!
//! One pass per buffer finds candidates cheaply (digit runs eight bytes at a time, `@` and `:`
//! with memchr, the literal prefixes of secrets and the names of secrets through Aho-Corasick
//! automata), then a validator decides. Streaming keeps an overlap of the last
//! [`Scanner::overlap`] bytes, so a match split across chunks is found, and reports each match
//! once, in order, with absolute offsets: scanning a body in any chunking gives exactly the
//! matches of scanning it whole, with memory bounded by the overlap.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

use crate::detect::{
    azure_client_secret, card_or_ssn, email_at, generic_secret, iban_at, ipv4_at, ipv6_around,
    is_word, next_digit, phone_at, private_key_body, run_end,
};

/// What a detector looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// Payment card numbers (Luhn, network prefix and length).
    PaymentCard,
    /// IBANs (country length, mod 97).
    Iban,
    /// US social security numbers written `ddd-dd-dddd` or `ddd dd dddd`.
    UsSsn,
    /// E-mail addresses.
    Email,
    /// Phone numbers: international (`+…`), North American, national with a trunk `0`.
    Phone,
    /// IPv4 and IPv6 addresses (with an optional prefix length or zone).
    IpAddress,
    /// PEM and OpenSSH private key blocks.
    PrivateKey,
    /// JSON Web Tokens.
    Jwt,
    /// AWS access key ids.
    AwsAccessKey,
    /// GitHub tokens.
    GithubToken,
    /// GitLab tokens.
    GitlabToken,
    /// Slack tokens.
    SlackToken,
    /// Slack incoming webhook and workflow URLs.
    SlackWebhook,
    /// Stripe live secret and restricted keys.
    StripeKey,
    /// SendGrid API keys.
    SendgridKey,
    /// Google Cloud API keys.
    GcpApiKey,
    /// Twilio API keys.
    TwilioKey,
    /// Azure AD (Entra ID) client secrets.
    AzureClientSecret,
    /// Azure storage account keys in connection strings (`AccountKey=…`).
    AzureStorageKey,
    /// A random-looking value assigned to a secret's name (`api_key = "…"`).
    GenericSecret,
    /// A detector from configuration, by its index.
    Custom(u16),
}

/// A group of detectors, selectable by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Payment card data (PCI DSS).
    Pci,
    /// Personal data: e-mail, phone, IBAN, SSN, IP addresses.
    Pii,
    /// Credentials: keys, tokens, private keys.
    Secrets,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Pci, Profile::Pii, Profile::Secrets];

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pci => "pci",
            Self::Pii => "pii",
            Self::Secrets => "secrets",
        }
    }

    /// The profile of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The built-in detectors of this profile.
    pub fn detectors(self) -> impl Iterator<Item = Detector> {
        Detector::BUILTIN
            .iter()
            .copied()
            .filter(move |d| d.profile() == Some(self))
    }
}

impl Detector {
    /// Every built-in detector.
    pub const BUILTIN: &'static [Detector] = &[
        Detector::PaymentCard,
        Detector::Iban,
        Detector::UsSsn,
        Detector::Email,
        Detector::Phone,
        Detector::IpAddress,
        Detector::PrivateKey,
        Detector::Jwt,
        Detector::AwsAccessKey,
        Detector::GithubToken,
        Detector::GitlabToken,
        Detector::SlackToken,
        Detector::SlackWebhook,
        Detector::StripeKey,
        Detector::SendgridKey,
        Detector::GcpApiKey,
        Detector::TwilioKey,
        Detector::AzureClientSecret,
        Detector::AzureStorageKey,
        Detector::GenericSecret,
    ];

    /// The name used in configuration and events (`custom` for a configured detector: its
    /// own name is [`Scanner::name`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentCard => "payment_card",
            Self::Iban => "iban",
            Self::UsSsn => "us_ssn",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::IpAddress => "ip_address",
            Self::PrivateKey => "private_key",
            Self::Jwt => "jwt",
            Self::AwsAccessKey => "aws_access_key",
            Self::GithubToken => "github_token",
            Self::GitlabToken => "gitlab_token",
            Self::SlackToken => "slack_token",
            Self::SlackWebhook => "slack_webhook",
            Self::StripeKey => "stripe_key",
            Self::SendgridKey => "sendgrid_key",
            Self::GcpApiKey => "gcp_api_key",
            Self::TwilioKey => "twilio_key",
            Self::AzureClientSecret => "azure_client_secret",
            Self::AzureStorageKey => "azure_storage_key",
            Self::GenericSecret => "generic_secret",
            Self::Custom(_) => "custom",
        }
    }

    /// The built-in detector of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::BUILTIN.iter().copied().find(|d| d.as_str() == name)
    }

    /// The profile a built-in detector belongs to.
    pub fn profile(self) -> Option<Profile> {
        match self {
            Self::PaymentCard => Some(Profile::Pci),
            Self::Iban | Self::UsSsn | Self::Email | Self::Phone | Self::IpAddress => {
                Some(Profile::Pii)
            }
            Self::Custom(_) => None,
            _ => Some(Profile::Secrets),
        }
    }

    fn bit(self) -> u32 {
        match self {
            Self::Custom(_) => 0,
            d => 1 << Self::BUILTIN.iter().position(|b| *b == d).unwrap_or(31),
        }
    }
}

/// A match, by absolute byte offsets in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// Where it starts.
    pub start: u64,
    /// Where it ends (exclusive).
    pub end: u64,
    /// What was found.
    pub detector: Detector,
}

/// The longest match any detector reports (a private key block up to its END line, a JWT, a
/// configured pattern): the overlap kept between chunks is a little more.
pub const MAX_MATCH: usize = 8192;

/// Bytes kept before the first unscanned start: the farthest any detector looks back (an
/// e-mail's local part, a secret's name before its value).
const CONTEXT: usize = 128;

/// A configured detector.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomDetector {
    /// Its name in events.
    pub name: String,
    /// What it matches.
    pub rule: CustomRule,
}

/// What a configured detector matches.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomRule {
    /// A regular expression (Rust `regex` syntax, linear time). When it has a capture group,
    /// the first group is the match (what is masked); with keywords, a match counts only when
    /// one of them (any case) occurs in it or in the 64 bytes before it.
    Regex {
        /// The pattern.
        pattern: String,
        /// Words one of which must be near.
        keywords: Vec<String>,
        /// A check of the matched text.
        validator: Validator,
        /// The least Shannon entropy of the match, in bits per character.
        min_entropy: Option<f64>,
    },
    /// Exact terms (a dictionary), matched as whole words.
    Terms {
        /// The terms.
        terms: Vec<String>,
        /// Whether case is ignored (ASCII).
        case_insensitive: bool,
    },
}

/// Checks a configured detector can apply to its match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Validator {
    /// None.
    #[default]
    None,
    /// The Luhn checksum over the match's digits (separators ignored).
    Luhn,
    /// The IBAN check (country length, mod 97).
    Iban,
    /// The US SSN issuing rules over the match's nine digits.
    UsSsn,
}

impl Validator {
    /// The validator of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "luhn" => Self::Luhn,
            "iban" => Self::Iban,
            "us_ssn" => Self::UsSsn,
            _ => return None,
        })
    }

    fn check(self, text: &[u8]) -> bool {
        let digits = || -> Vec<u8> { text.iter().copied().filter(u8::is_ascii_digit).collect() };
        match self {
            Self::None => true,
            Self::Luhn => crate::validate::luhn_valid(&digits()),
            Self::Iban => crate::validate::iban_valid(text),
            Self::UsSsn => {
                let d = digits();
                d.len() == 9 && crate::validate::us_ssn_valid(&d)
            }
        }
    }
}

#[derive(Debug)]
enum Custom {
    Regex {
        re: Regex,
        groups: bool,
        keywords: Option<AhoCorasick>,
        validator: Validator,
        min_entropy: Option<f64>,
    },
    Terms {
        ac: AhoCorasick,
    },
}

/// How a literal hit becomes a match.
#[derive(Debug)]
enum Anchor {
    /// The regex, anchored at the literal.
    Regex(Regex),
    /// An Azure client secret: the literal `Q~` sits four bytes in.
    Azure,
}

#[derive(Debug)]
struct LiteralKind {
    detector: Detector,
    anchor: Anchor,
}

/// Compiled detectors.
#[derive(Debug)]
pub struct Scanner {
    on: u32,
    /// The literals of four bytes or more, in one automaton (fast: few fingerprint hits).
    literals: Option<AhoCorasick>,
    /// For each of its patterns, the index in `literal_kinds`.
    literal_of: Vec<usize>,
    /// Shorter literals (`SK`, `Q~`, `SG.`, `eyJ`), each with its own SIMD substring search:
    /// in one automaton they would drown the long ones in candidate positions.
    short_literals: Vec<(memchr::memmem::Finder<'static>, usize)>,
    literal_kinds: Vec<LiteralKind>,
    keywords: Option<AhoCorasick>,
    custom: Vec<Custom>,
    names: Vec<String>,
    allowed: HashSet<Vec<u8>>,
}

/// The names of secrets the generic detector starts from (any case).
const SECRET_KEYWORDS: &[&str] = &["key", "token", "secret", "passw", "pwd", "credential"];

/// The built-in literal-anchored detectors: literals, and the pattern that must follow.
const LITERAL_RULES: &[(Detector, &[&str], &str)] = &[
    (
        Detector::PrivateKey,
        &["-----BEGIN "],
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
    ),
    (
        Detector::Jwt,
        &["eyJ"],
        r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}",
    ),
    (
        Detector::AwsAccessKey,
        &["AKIA", "ASIA", "ABIA", "ACCA"],
        r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
    ),
    (
        Detector::GithubToken,
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})",
    ),
    (
        Detector::GitlabToken,
        &["glpat-", "glptt-", "glrt-"],
        r"(?:glpat-[A-Za-z0-9_-]{20}|glptt-[0-9a-f]{40}|glrt-[A-Za-z0-9_-]{20})",
    ),
    (
        Detector::SlackToken,
        &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"],
        r"(?:xoxb-[0-9]{10,13}-[0-9]{10,13}[A-Za-z0-9-]*|xox[pe](?:-[0-9]{10,13}){3}-[A-Za-z0-9-]{28,34}|xox[ars]-(?:\d+-)+[0-9a-zA-Z]+)",
    ),
    (
        Detector::SlackWebhook,
        &["hooks.slack.com/"],
        r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,80}",
    ),
    (
        Detector::StripeKey,
        &["sk_live_", "rk_live_", "sk_prod_", "rk_prod_"],
        r"[sr]k_(?:live|prod)_[A-Za-z0-9]{10,99}",
    ),
    (Detector::SendgridKey, &["SG."], r"SG\.[A-Za-z0-9=_.-]{66}"),
    (Detector::GcpApiKey, &["AIza"], r"AIza[A-Za-z0-9_-]{35}"),
    (Detector::TwilioKey, &["SK"], r"SK[0-9a-fA-F]{32}"),
    (
        Detector::AzureStorageKey,
        &["AccountKey="],
        r"AccountKey=[A-Za-z0-9+/]{86}==",
    ),
];

impl Scanner {
    /// A scanner with these built-in detectors.
    pub fn new(detectors: &[Detector]) -> Self {
        match Self::with_custom(detectors, &[]) {
            Ok(s) => s,
            // The built-in patterns are constants that compile.
            Err(_) => Self::empty(),
        }
    }

    fn empty() -> Self {
        Self {
            on: 0,
            literals: None,
            literal_of: Vec::new(),
            short_literals: Vec::new(),
            literal_kinds: Vec::new(),
            keywords: None,
            custom: Vec::new(),
            names: Vec::new(),
            allowed: HashSet::new(),
        }
    }

    /// Values never reported, whatever finds them (a public key shipped in every copy of an
    /// app, a documented test card).
    pub fn allow_values<I: IntoIterator<Item = Vec<u8>>>(mut self, values: I) -> Self {
        self.allowed.extend(values);
        self
    }

    /// Every built-in detector.
    pub fn all() -> Self {
        Self::new(Detector::BUILTIN)
    }

    /// A scanner with built-in and configured detectors; an error names the detector and
    /// what is wrong with it.
    pub fn with_custom(detectors: &[Detector], custom: &[CustomDetector]) -> Result<Self, String> {
        let on = detectors.iter().fold(0u32, |a, d| a | d.bit());
        let mut pats: Vec<&str> = Vec::new();
        let mut kinds = Vec::new();
        for (d, lits, re) in LITERAL_RULES {
            if on & d.bit() == 0 {
                continue;
            }
            // Anchored at the literal; `regex` is linear-time.
            let re = Regex::new(&format!("^(?:{re})"))
                .map_err(|e| format!("built-in detector {}: {e}", d.as_str()))?;
            for l in *lits {
                pats.push(l);
                kinds.push(LiteralKind {
                    detector: *d,
                    anchor: Anchor::Regex(re.clone()),
                });
            }
        }
        if on & Detector::AzureClientSecret.bit() != 0 {
            pats.push("Q~");
            kinds.push(LiteralKind {
                detector: Detector::AzureClientSecret,
                anchor: Anchor::Azure,
            });
        }
        let mut long = Vec::new();
        let mut literal_of = Vec::new();
        let mut short_literals = Vec::new();
        for (i, p) in pats.iter().enumerate() {
            if p.len() >= 4 {
                long.push(*p);
                literal_of.push(i);
            } else {
                short_literals.push((memchr::memmem::Finder::new(p.as_bytes()).into_owned(), i));
            }
        }
        let literals = if long.is_empty() {
            None
        } else {
            Some(leftmost(&long)?)
        };
        let keywords = if on & Detector::GenericSecret.bit() != 0 {
            // Lower, UPPER and Capitalized forms (`api_key`, `API_KEY`, `apiKey`) rather than
            // a case-insensitive automaton, which has no fast prefilter.
            let mut variants = Vec::new();
            for k in SECRET_KEYWORDS {
                let mut cap = k.to_string();
                cap[..1].make_ascii_uppercase();
                variants.extend([k.to_string(), k.to_ascii_uppercase(), cap]);
            }
            Some(leftmost(&variants)?)
        } else {
            None
        };
        let mut compiled = Vec::new();
        let mut names = Vec::new();
        if custom.len() > usize::from(u16::MAX) {
            return Err("too many custom detectors".into());
        }
        for c in custom {
            compiled.push(compile_custom(c).map_err(|e| format!("detector {}: {e}", c.name))?);
            names.push(c.name.clone());
        }
        Ok(Self {
            on,
            literals,
            literal_of,
            short_literals,
            literal_kinds: kinds,
            keywords,
            custom: compiled,
            names,
            allowed: HashSet::new(),
        })
    }

    /// A detector's name: the built-in name, or a configured detector's own.
    pub fn name(&self, d: Detector) -> &str {
        match d {
            Detector::Custom(i) => self
                .names
                .get(usize::from(i))
                .map_or("custom", String::as_str),
            d => d.as_str(),
        }
    }

    /// The built-in detectors this scanner runs.
    pub fn detectors(&self) -> Vec<Detector> {
        Detector::BUILTIN
            .iter()
            .copied()
            .filter(|d| self.has(*d))
            .collect()
    }

    /// How many configured detectors this scanner has.
    pub fn custom_len(&self) -> usize {
        self.custom.len()
    }

    /// How many bytes a stream keeps between chunks.
    pub fn overlap(&self) -> usize {
        MAX_MATCH + 2
    }

    fn has(&self, d: Detector) -> bool {
        self.on & d.bit() != 0
    }

    /// Scans a whole buffer; `base` is the absolute offset of its first byte. Matches come
    /// sorted by start; overlapping matches keep the first (then the longest).
    pub fn scan(&self, buf: &[u8], base: u64) -> Vec<Match> {
        let mut out = Vec::new();
        let mut resume = vec![base; self.custom.len()];
        self.scan_into(buf, base, base + buf.len() as u64, &mut resume, &mut out);
        dedupe(out)
    }

    /// Finds every candidate in `buf` (whose first byte is at `base`). Configured regexes
    /// resume where their previous search stopped (`resume`, updated here), and stop at the
    /// first match starting at or after `cut`: a regex finds non-overlapping matches from
    /// where it starts, so a streamed scan must start it exactly where a whole scan would be.
    fn scan_into(&self, buf: &[u8], base: u64, cut: u64, resume: &mut [u64], out: &mut Vec<Match>) {
        let push = |out: &mut Vec<Match>, s: usize, e: usize, d: Detector| {
            out.push(Match {
                start: base + s as u64,
                end: base + e as u64,
                detector: d,
            });
        };
        let numeric = self.on
            & (Detector::PaymentCard.bit()
                | Detector::UsSsn.bit()
                | Detector::Iban.bit()
                | Detector::Phone.bit()
                | Detector::IpAddress.bit())
            != 0;
        if numeric {
            self.scan_numbers(buf, base, out);
        }
        if self.has(Detector::Email) {
            for at in memchr::memchr_iter(b'@', buf) {
                if let Some((s, e)) = email_at(buf, at) {
                    push(out, s, e, Detector::Email);
                }
            }
        }
        if self.has(Detector::IpAddress) {
            let mut skip_to = 0;
            for c in memchr::memchr_iter(b':', buf) {
                if c < skip_to {
                    continue;
                }
                // A cheap look around first: inside an address a colon has a hex digit on
                // both sides, or another colon beside it (`::`). JSON's `"key":` has neither.
                let hex = |i: usize| buf.get(i).is_some_and(u8::is_ascii_hexdigit);
                let colon = |i: usize| buf.get(i) == Some(&b':');
                let inside = c > 0 && hex(c - 1) && hex(c + 1);
                if !(inside || colon(c + 1) || (c > 0 && colon(c - 1))) {
                    continue;
                }
                if let Some((s, e)) = ipv6_around(buf, c) {
                    push(out, s, e, Detector::IpAddress);
                    skip_to = e;
                }
            }
        }
        let hits = self
            .literals
            .iter()
            .flat_map(|ac| starts(ac, buf).map(|(pattern, s)| (self.literal_of[pattern], s)))
            .chain(
                self.short_literals
                    .iter()
                    .flat_map(|(f, kind)| f.find_iter(buf).map(move |s| (*kind, s))),
            );
        {
            for (kind, s) in hits {
                let kind = &self.literal_kinds[kind];
                let d = kind.detector;
                match &kind.anchor {
                    Anchor::Azure => {
                        if let Some((s, e)) = azure_client_secret(buf, s) {
                            push(out, s, e, d);
                        }
                    }
                    Anchor::Regex(re) => {
                        if s > 0 && is_word(buf[s - 1]) && d != Detector::PrivateKey {
                            continue;
                        }
                        // Twilio's `SK` is common in text (`SKU-…`): a hex digit must follow.
                        if d == Detector::TwilioKey
                            && !buf.get(s + 2).is_some_and(u8::is_ascii_hexdigit)
                        {
                            continue;
                        }
                        let Some(found) = re.find(&buf[s..]) else {
                            continue;
                        };
                        let mut e = s + found.end();
                        if d == Detector::PrivateKey {
                            match private_key_body(buf, e, MAX_MATCH - 128) {
                                Some(end) => e = end,
                                None => continue,
                            }
                        } else if !plausible_secret(d, &buf[s..e])
                            || buf.get(e).is_some_and(|b| is_word(*b))
                        {
                            continue;
                        }
                        push(out, s, e, d);
                    }
                }
            }
        }
        if let Some(ac) = &self.keywords {
            for (_, k) in starts(ac, buf) {
                if let Some((s, e)) = generic_secret(buf, k) {
                    push(out, s, e, Detector::GenericSecret);
                }
            }
        }
        for (i, c) in self.custom.iter().enumerate() {
            let d = Detector::Custom(i as u16);
            match c {
                Custom::Terms { ac } => {
                    for m in ac.find_overlapping_iter(buf) {
                        let (s, e) = (m.start(), m.end());
                        let bounded = (s == 0 || !is_word(buf[s - 1]) || !is_word(buf[s]))
                            && (e == buf.len() || !is_word(buf[e]) || !is_word(buf[e - 1]));
                        if bounded {
                            push(out, s, e, d);
                        }
                    }
                }
                Custom::Regex {
                    re,
                    groups,
                    keywords,
                    validator,
                    min_entropy,
                } => {
                    let from = resume[i].max(base);
                    let mut pos = (from - base) as usize;
                    let mut last_end = from;
                    // Where the next step resumes: after the last match taken, or at a match
                    // whose reported part starts at or after the cut (taken next time).
                    let mut next = None;
                    while pos <= buf.len() {
                        let Some(m) = re.find_at(buf, pos) else {
                            break;
                        };
                        if base + m.start() as u64 >= cut {
                            break;
                        }
                        let (s, e) = if *groups {
                            match re
                                .captures_at(buf, m.start())
                                .and_then(|c| c.get(1))
                                .filter(|g| g.start() >= m.start())
                            {
                                Some(g) => (g.start(), g.end()),
                                None => (m.start(), m.start()),
                            }
                        } else {
                            (m.start(), m.end())
                        };
                        if base + s as u64 >= cut {
                            next = Some(base + m.start() as u64);
                            break;
                        }
                        last_end = base + m.end() as u64;
                        pos = if m.end() == m.start() {
                            m.end() + 1
                        } else {
                            m.end()
                        };
                        if e == s || e - s > MAX_MATCH || m.end() - m.start() > MAX_MATCH {
                            continue;
                        }
                        let text = &buf[s..e];
                        if !validator.check(text)
                            || min_entropy
                                .is_some_and(|min| crate::validate::shannon_entropy(text) < min)
                        {
                            continue;
                        }
                        if let Some(k) = keywords {
                            let from = m.start().saturating_sub(64);
                            if k.find(&buf[from..m.end()]).is_none() {
                                continue;
                            }
                        }
                        push(out, s, e, d);
                    }
                    resume[i] = next.unwrap_or(last_end.max(cut));
                }
            }
        }
        if !self.allowed.is_empty() {
            out.retain(|m| {
                let (s, e) = ((m.start - base) as usize, (m.end - base) as usize);
                m.start < base || !self.allowed.contains(&buf[s..e.min(buf.len())])
            });
        }
    }

    /// Digit runs: payment cards, US SSNs, phone numbers, IPv4 addresses, and IBANs (two
    /// letters before the check digits). Most runs in an API body are short numbers followed
    /// by a comma or a quote: those are passed over after one look at the next byte.
    fn scan_numbers(&self, buf: &[u8], base: u64, out: &mut Vec<Match>) {
        let cards = self.has(Detector::PaymentCard) || self.has(Detector::UsSsn);
        let phone = self.has(Detector::Phone);
        let ip = self.has(Detector::IpAddress);
        let iban = self.has(Detector::Iban);
        let push = |out: &mut Vec<Match>, s: usize, e: usize, d: Detector| {
            out.push(Match {
                start: base + s as u64,
                end: base + e as u64,
                detector: d,
            });
        };
        let mut i = 0;
        while let Some(s) = next_digit(buf, i) {
            let r = run_end(buf, s + 1);
            let next = buf.get(r).copied();
            let structural = matches!(next, Some(b' ' | b'-' | b'.' | b')'));
            // After a decimal point nothing starts (every numeric detector refuses it).
            let after_point = s > 0 && buf[s - 1] == b'.';
            if !after_point && (r - s >= 9 || structural) {
                if cards {
                    let (card, ssn) = card_or_ssn(buf, s, r);
                    if let Some(e) = card.filter(|_| self.has(Detector::PaymentCard)) {
                        push(out, s, e, Detector::PaymentCard);
                    }
                    if let Some(e) = ssn.filter(|_| self.has(Detector::UsSsn)) {
                        push(out, s, e, Detector::UsSsn);
                    }
                }
                if phone {
                    if let Some((ps, pe)) = phone_at(buf, s) {
                        push(out, ps, pe, Detector::Phone);
                    }
                }
                if ip && next == Some(b'.') && r - s <= 3 {
                    if let Some(e) = ipv4_at(buf, s) {
                        push(out, s, e, Detector::IpAddress);
                    }
                }
            }
            if iban && s >= 2 && buf[s - 1].is_ascii_alphabetic() {
                if let Some(e) = iban_at(buf, s - 2) {
                    push(out, s - 2, e, Detector::Iban);
                }
            }
            i = r;
        }
    }
}

/// An automaton for [`starts`]: leftmost-first, so that its search gets the SIMD prefilter
/// (Teddy), which the overlapping kind does not have.
fn leftmost<P: AsRef<[u8]>>(patterns: &[P]) -> Result<AhoCorasick, String> {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(patterns)
        .map_err(|e| e.to_string())
}

/// Every position where one of the automaton's patterns starts (none of them is a prefix of
/// another), with the pattern: each search resumes one byte after the last start, so that
/// overlapping occurrences are all found, exactly as an overlapping search would.
fn starts<'a>(ac: &'a AhoCorasick, buf: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at > buf.len() {
            return None;
        }
        let m = ac.find(aho_corasick::Input::new(buf).span(at..buf.len()))?;
        at = m.start() + 1;
        Some((m.pattern().as_usize(), m.start()))
    })
}

fn compile_custom(c: &CustomDetector) -> Result<Custom, String> {
    if c.name.is_empty() {
        return Err("a detector needs a name".into());
    }
    match &c.rule {
        CustomRule::Regex {
            pattern,
            keywords,
            validator,
            min_entropy,
        } => {
            let re = regex::bytes::RegexBuilder::new(pattern)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| format!("invalid regex: {e}"))?;
            if re.is_match(b"") {
                return Err("the regex matches the empty string".into());
            }
            let keywords = if keywords.is_empty() {
                None
            } else {
                if keywords.iter().any(String::is_empty) {
                    return Err("an empty keyword".into());
                }
                Some(
                    AhoCorasickBuilder::new()
                        .ascii_case_insensitive(true)
                        .build(keywords)
                        .map_err(|e| e.to_string())?,
                )
            };
            Ok(Custom::Regex {
                groups: re.captures_len() > 1,
                re,
                keywords,
                validator: *validator,
                min_entropy: *min_entropy,
            })
        }
        CustomRule::Terms {
            terms,
            case_insensitive,
        } => {
            if terms.is_empty() {
                return Err("no terms".into());
            }
            if let Some(t) = terms.iter().find(|t| t.is_empty() || t.len() > MAX_MATCH) {
                return Err(format!(
                    "a term is empty or longer than {MAX_MATCH} bytes: {:?}",
                    t.chars().take(40).collect::<String>()
                ));
            }
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(*case_insensitive)
                .match_kind(MatchKind::Standard)
                .build(terms)
                .map_err(|e| e.to_string())?;
            Ok(Custom::Terms { ac })
        }
    }
}

/// Sorts candidates and keeps, of overlapping ones, the first (then the longest).
fn dedupe(mut out: Vec<Match>) -> Vec<Match> {
    out.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.detector.cmp(&b.detector))
    });
    let mut kept: Vec<Match> = Vec::with_capacity(out.len());
    for m in out {
        match kept.last() {
            Some(last) if m.start < last.end => {}
            _ => kept.push(m),
        }
    }
    kept
}

/// A token's random part must look random: not a placeholder (`xxxx`), not the AWS
/// documentation's example key.
fn plausible_secret(d: Detector, text: &[u8]) -> bool {
    let body = match d {
        Detector::AwsAccessKey => {
            if text.ends_with(b"EXAMPLE") {
                return false;
            }
            &text[4..]
        }
        Detector::Jwt | Detector::PrivateKey | Detector::AzureStorageKey => return true,
        _ => {
            let cut = text
                .iter()
                .position(|b| *b == b'_' || *b == b'-' || *b == b'.')
                .map_or(0, |p| p + 1);
            &text[cut.min(text.len())..]
        }
    };
    crate::validate::shannon_entropy(body) >= 3.0
}

/// Replaces a match's bytes with `*`, keeping its length (and so `Content-Length`); separators
/// inside payment cards, IBANs and SSNs are kept so the shape stays readable.
pub fn mask(buf: &mut [u8], start: usize, end: usize, detector: Detector) {
    let keep_seps = matches!(
        detector,
        Detector::PaymentCard | Detector::Iban | Detector::UsSsn
    );
    let end = end.min(buf.len());
    for b in &mut buf[start.min(end)..end] {
        if !(keep_seps && (*b == b' ' || *b == b'-')) {
            *b = b'*';
        }
    }
}

/// Which matches a stream masks.
pub type MaskPredicate = Arc<dyn Fn(Detector) -> bool + Send + Sync>;

/// A scan in progress over a body that arrives in chunks. `S` is how the scanner is held (a
/// reference, or an `Arc` for a stream that must own it).
pub struct Stream<S: Deref<Target = Scanner>> {
    scanner: S,
    /// Which matches are masked when masking (all when absent).
    mask_only: Option<MaskPredicate>,
    /// Bytes not released yet, after up to `CONTEXT` bytes already released.
    buf: Vec<u8>,
    /// The absolute offset of `buf[0]`.
    base: u64,
    /// Bytes before this absolute offset have been released.
    released: u64,
    /// Matches starting before this absolute offset have been reported.
    done: u64,
    /// Reported matches not yet wholly released, to mask as their bytes go (the buffer keeps
    /// the original bytes, so that masking never changes what later scans see).
    pending: Vec<Match>,
    /// Where each configured regex resumes its search (absolute).
    resume: Vec<u64>,
    /// The text of the matches the last call returned (each cut to 256 bytes).
    texts: Vec<Vec<u8>>,
}

impl<S: Deref<Target = Scanner>> std::fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("held", &self.buf.len())
            .field("base", &self.base)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

impl<S: Deref<Target = Scanner>> Stream<S> {
    /// Starts a stream.
    pub fn new(scanner: S) -> Self {
        let customs = scanner.custom.len();
        Self {
            scanner,
            mask_only: None,
            buf: Vec::new(),
            base: 0,
            released: 0,
            done: 0,
            pending: Vec::new(),
            resume: vec![0; customs],
            texts: Vec::new(),
        }
    }

    /// Masks only the matches of detectors for which `which` is true (by default, all).
    pub fn mask_only(mut self, which: MaskPredicate) -> Self {
        self.mask_only = Some(which);
        self
    }

    /// The text of each match the last call returned, in order (at most 256 bytes of each):
    /// for a redacted sample in an event.
    pub fn last_texts(&self) -> &[Vec<u8>] {
        &self.texts
    }

    /// Bytes passed on so far.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Feeds a chunk; returns the matches now known whole and the bytes that can be passed on
    /// (masked when `mask_matches`), which lag the input by at most the overlap.
    pub fn feed(&mut self, chunk: &[u8], mask_matches: bool) -> (Vec<Match>, Vec<u8>) {
        self.buf.extend_from_slice(chunk);
        let keep = self.scanner.overlap();
        let pending = self.buf.len() - (self.released - self.base) as usize;
        if pending <= keep {
            return (Vec::new(), Vec::new());
        }
        let cut = self.buf.len() - keep;
        self.step(cut, mask_matches)
    }

    /// The end of the body: every remaining match and byte.
    pub fn finish(&mut self, mask_matches: bool) -> (Vec<Match>, Vec<u8>) {
        let cut = self.buf.len();
        self.step(cut, mask_matches)
    }

    /// Bytes held now (for the memory bound).
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    fn step(&mut self, cut: usize, mask_matches: bool) -> (Vec<Match>, Vec<u8>) {
        let cut_abs = self.base + cut as u64;
        let done = self.done;
        // Candidates that start where earlier steps already decided are dropped before the
        // overlaps are resolved, so that a match reported earlier (no longer in the buffer)
        // shadows exactly what it shadows in a whole-body scan.
        let mut candidates = Vec::new();
        self.scanner.scan_into(
            &self.buf,
            self.base,
            cut_abs,
            &mut self.resume,
            &mut candidates,
        );
        candidates.retain(|m| m.start >= done);
        let found: Vec<Match> = dedupe(candidates)
            .into_iter()
            .filter(|m| m.start < cut_abs)
            .collect();
        self.texts = found
            .iter()
            .map(|m| {
                let s = (m.start - self.base) as usize;
                let e = ((m.end - self.base) as usize)
                    .min(s + 256)
                    .min(self.buf.len());
                self.buf[s.min(e)..e].to_vec()
            })
            .collect();
        let mut new_done = self.done.max(cut_abs);
        for m in &found {
            new_done = new_done.max(m.end);
        }
        if mask_matches {
            let only = self.mask_only.as_ref();
            self.pending.extend(
                found
                    .iter()
                    .filter(|m| only.is_none_or(|f| f(m.detector)))
                    .copied(),
            );
        }
        self.done = new_done;
        // No match still to come starts before `done`, so what lies before it is final.
        let done_rel = ((self.done - self.base) as usize).min(self.buf.len());
        let from = ((self.released - self.base) as usize).min(done_rel);
        let mut out = self.buf[from..done_rel].to_vec();
        let out_abs = self.base + from as u64;
        let out_end = out_abs + out.len() as u64;
        for m in &self.pending {
            let s = m.start.max(out_abs);
            let e = m.end.min(out_end);
            if s < e {
                mask(
                    &mut out,
                    (s - out_abs) as usize,
                    (e - out_abs) as usize,
                    m.detector,
                );
            }
        }
        self.pending.retain(|m| m.end > out_end);
        self.released = self.base + done_rel as u64;
        // Context stays for the next scan: boundary checks look one or two bytes back, an
        // e-mail's local part up to 64, a secret's name before its value up to about 90.
        // A configured regex resumes its search where it stopped, with the same context.
        let resume_rel = self
            .resume
            .iter()
            .map(|r| r.saturating_sub(self.base) as usize)
            .min()
            .unwrap_or(usize::MAX);
        let drop = done_rel
            .min(resume_rel)
            .saturating_sub(CONTEXT)
            .min(self.buf.len());
        self.buf.drain(..drop);
        self.base += drop as u64;
        (found, out)
    }
}
