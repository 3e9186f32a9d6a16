//! The scanner: detectors over bytes, whole or streamed in chunks.
//!
//! One pass per buffer finds candidates cheaply (digit runs, `@`, and the literal prefixes of
//! secrets through one Aho-Corasick automaton), then a validator decides. Streaming keeps an
//! overlap of the last [`Scanner::overlap`] bytes, so a match split across chunks is found, and
//! reports each match once, in order, with absolute offsets: scanning a body in any chunking
//! gives exactly the matches of scanning it whole, with memory bounded by the overlap.

use aho_corasick::AhoCorasick;
use regex::bytes::Regex;

use crate::validate::{card_network, iban_valid, us_ssn_valid};

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
}

impl Detector {
    /// The name used in configuration and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentCard => "payment_card",
            Self::Iban => "iban",
            Self::UsSsn => "us_ssn",
            Self::Email => "email",
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

/// The longest match any detector reports (a private key block up to its END line, a JWT):
/// the overlap kept between chunks is a little more.
const MAX_MATCH: usize = 8192;

/// Bytes kept before the first unscanned start: the farthest any detector looks back.
const CONTEXT: usize = 80;

/// Compiled detectors.
#[derive(Debug)]
pub struct Scanner {
    enabled: Vec<Detector>,
    literals: AhoCorasick,
    literal_kinds: Vec<(Detector, Regex)>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Scanner {
    /// A scanner with these detectors.
    pub fn new(detectors: &[Detector]) -> Self {
        let mut pats: Vec<&str> = Vec::new();
        let mut kinds = Vec::new();
        let mut add = |d: Detector, lits: &[&'static str], re: &str| {
            if detectors.contains(&d) {
                for l in lits {
                    pats.push(l);
                    // Anchored at the literal; `regex` is linear-time.
                    kinds.push((
                        d,
                        Regex::new(&format!("^(?:{re})")).unwrap_or_else(|_| never()),
                    ));
                }
            }
        };
        add(
            Detector::PrivateKey,
            &["-----BEGIN "],
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
        );
        add(
            Detector::Jwt,
            &["eyJ"],
            r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}",
        );
        add(
            Detector::AwsAccessKey,
            &["AKIA", "ASIA", "ABIA", "ACCA"],
            r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
        );
        add(
            Detector::GithubToken,
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})",
        );
        add(
            Detector::GitlabToken,
            &["glpat-", "glptt-", "glrt-"],
            r"(?:glpat-[A-Za-z0-9_-]{20}|glptt-[0-9a-f]{40}|glrt-[A-Za-z0-9_-]{20})",
        );
        add(
            Detector::SlackToken,
            &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"],
            r"(?:xoxb-[0-9]{10,13}-[0-9]{10,13}[A-Za-z0-9-]*|xox[pe](?:-[0-9]{10,13}){3}-[A-Za-z0-9-]{28,34}|xox[ars]-(?:\d+-)+[0-9a-zA-Z]+)",
        );
        add(
            Detector::SlackWebhook,
            &["hooks.slack.com/"],
            r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,80}",
        );
        add(
            Detector::StripeKey,
            &["sk_live_", "rk_live_", "sk_prod_", "rk_prod_"],
            r"[sr]k_(?:live|prod)_[A-Za-z0-9]{10,99}",
        );
        add(Detector::SendgridKey, &["SG."], r"SG\.[A-Za-z0-9=_.-]{66}");
        add(Detector::GcpApiKey, &["AIza"], r"AIza[A-Za-z0-9_-]{35}");
        add(Detector::TwilioKey, &["SK"], r"SK[0-9a-fA-F]{32}");
        let literals = AhoCorasick::new(&pats).unwrap_or_else(|_| never_ac());
        Self {
            enabled: detectors.to_vec(),
            literals,
            literal_kinds: kinds,
        }
    }

    /// Every detector this crate has.
    pub fn all() -> Self {
        Self::new(&[
            Detector::PaymentCard,
            Detector::Iban,
            Detector::UsSsn,
            Detector::Email,
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
        ])
    }

    /// How many bytes a stream keeps between chunks.
    pub fn overlap(&self) -> usize {
        MAX_MATCH + 2
    }

    fn has(&self, d: Detector) -> bool {
        self.enabled.contains(&d)
    }

    /// Scans a whole buffer; `base` is the absolute offset of its first byte. Matches come
    /// sorted by start; overlapping matches keep the first (then the longest).
    pub fn scan(&self, buf: &[u8], base: u64) -> Vec<Match> {
        let mut out = Vec::new();
        self.scan_into(buf, base, &mut out);
        dedupe(out)
    }

    fn scan_into(&self, buf: &[u8], base: u64, out: &mut Vec<Match>) {
        let digits = self.has(Detector::PaymentCard)
            || self.has(Detector::UsSsn)
            || self.has(Detector::Iban);
        if digits {
            self.scan_digits(buf, base, out);
        }
        if self.has(Detector::Email) {
            for at in memchr::memchr_iter(b'@', buf) {
                if let Some((s, e)) = email_at(buf, at) {
                    out.push(Match {
                        start: base + s as u64,
                        end: base + e as u64,
                        detector: Detector::Email,
                    });
                }
            }
        }
        if !self.literal_kinds.is_empty() {
            for m in self.literals.find_overlapping_iter(buf) {
                let (d, re) = &self.literal_kinds[m.pattern().as_usize()];
                let s = m.start();
                if s > 0 && is_word(buf[s - 1]) && *d != Detector::PrivateKey {
                    continue;
                }
                if let Some(found) = re.find(&buf[s..]) {
                    let mut e = s + found.end();
                    if *d == Detector::PrivateKey {
                        match private_key_body(buf, e) {
                            Some(end) => e = end,
                            None => continue,
                        }
                    } else if !plausible_secret(*d, &buf[s..e]) {
                        continue;
                    }
                    if *d != Detector::PrivateKey && buf.get(e).is_some_and(|b| is_word(*b)) {
                        continue;
                    }
                    out.push(Match {
                        start: base + s as u64,
                        end: base + e as u64,
                        detector: *d,
                    });
                }
            }
        }
    }

    /// Digit groups: payment cards (12 to 19 digits, single spaces or dashes between groups),
    /// US SSNs (`ddd-dd-dddd`), and IBANs (two letters before the check digits).
    fn scan_digits(&self, buf: &[u8], base: u64, out: &mut Vec<Match>) {
        let n = buf.len();
        let mut i = 0;
        while i < n {
            if !buf[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            // A run of digits with single separators.
            let start = i;
            // Not inside a number (digits, a decimal point, or a separator after a digit).
            let inside = start > 0
                && (buf[start - 1].is_ascii_digit()
                    || buf[start - 1] == b'.'
                    || (start > 1
                        && (buf[start - 1] == b' ' || buf[start - 1] == b'-')
                        && buf[start - 2].is_ascii_digit()));
            if inside {
                i += 1;
                continue;
            }
            let mut j = i;
            let mut digits: Vec<u8> = Vec::with_capacity(19);
            let mut seps: Vec<usize> = Vec::new();
            let mut sep_kind = 0u8;
            while j < n {
                let b = buf[j];
                if b.is_ascii_digit() {
                    digits.push(b);
                    j += 1;
                    if digits.len() > 19 {
                        break;
                    }
                } else if (b == b' ' || b == b'-')
                    && j + 1 < n
                    && buf[j + 1].is_ascii_digit()
                    && (sep_kind == 0 || sep_kind == b)
                {
                    sep_kind = b;
                    seps.push(digits.len());
                    j += 1;
                } else {
                    break;
                }
            }
            let end = j;
            // Not followed by more of a word or a decimal part (a full stop is fine).
            let clean_end = end >= n
                || !(buf[end].is_ascii_alphanumeric()
                    || (buf[end] == b'.' && buf.get(end + 1).is_some_and(u8::is_ascii_digit)));
            if clean_end && digits.len() <= 19 {
                if self.has(Detector::PaymentCard) && card_network(&digits).is_some() {
                    out.push(Match {
                        start: base + start as u64,
                        end: base + end as u64,
                        detector: Detector::PaymentCard,
                    });
                }
                if self.has(Detector::UsSsn)
                    && digits.len() == 9
                    && seps == [3, 5]
                    && us_ssn_valid(&digits)
                {
                    out.push(Match {
                        start: base + start as u64,
                        end: base + end as u64,
                        detector: Detector::UsSsn,
                    });
                }
            }
            if self.has(Detector::Iban) && start >= 2 {
                if let Some(e) = iban_at(buf, start - 2) {
                    out.push(Match {
                        start: base + (start - 2) as u64,
                        end: base + e as u64,
                        detector: Detector::Iban,
                    });
                }
            }
            i = end.max(i + 1);
        }
    }
}

/// Sorts candidates and keeps, of overlapping ones, the first (then the longest).
fn dedupe(mut out: Vec<Match>) -> Vec<Match> {
    out.sort();
    let mut kept: Vec<Match> = Vec::with_capacity(out.len());
    for m in out {
        match kept.last() {
            Some(last) if m.start < last.end => {}
            _ => kept.push(m),
        }
    }
    kept
}

/// After a private key header: at least 64 base64 characters of body (after optional
/// `Name: value` header lines), and up to the matching `-----END …-----` line when it comes
/// within reach. Returns where the match ends.
fn private_key_body(buf: &[u8], mut i: usize) -> Option<usize> {
    let limit = (i + MAX_MATCH - 128).min(buf.len());
    let mut base64 = 0usize;
    let mut last = i;
    while i < limit {
        let b = buf[i];
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            base64 += 1;
            i += 1;
            last = i;
        } else if b == b'\n' || b == b'\r' || b == b' ' || b == b'\t' {
            i += 1;
        } else if b == b':' && base64 < 64 {
            // A header line of an armored block (`Version: …`, `Proc-Type: …`): skip it.
            base64 = 0;
            while i < limit && buf[i] != b'\n' {
                i += 1;
            }
        } else {
            break;
        }
    }
    if base64 < 64 {
        return None;
    }
    if buf[i..].starts_with(b"-----END ") {
        if let Some(close) =
            memchr::memmem::find(&buf[i + 9..limit.max(i + 9).min(buf.len())], b"-----")
        {
            return Some(i + 9 + close + 5);
        }
    }
    Some(last)
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
        Detector::Jwt | Detector::PrivateKey => return true,
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

/// An IBAN starting at `s` (the country code): the longest prefix, compact or in groups of
/// four, that validates.
fn iban_at(buf: &[u8], s: usize) -> Option<usize> {
    if !buf[s].is_ascii_alphabetic() || !buf[s + 1].is_ascii_alphabetic() {
        return None;
    }
    if s > 0 && buf[s - 1].is_ascii_alphanumeric() {
        return None;
    }
    let mut e = s;
    let mut best = None;
    let limit = (s + 42).min(buf.len());
    while e < limit && (buf[e].is_ascii_alphanumeric() || buf[e] == b' ') {
        e += 1;
        let at_boundary = e >= buf.len() || !buf[e].is_ascii_alphanumeric();
        if at_boundary && buf[e - 1] != b' ' && iban_valid(&buf[s..e]) {
            best = Some(e);
        }
    }
    best
}

/// An e-mail address around the `@` at `at`: a local part of letters, digits and `.!#$%&'*+/=?^_{|}~-`,
/// a domain of labels with a dot and a letter-only top-level label.
fn email_at(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-!#$&'*/=?^{|}~".contains(&b);
    let mut s = at;
    while s > 0 && local(buf[s - 1]) && at - s < 64 {
        s -= 1;
    }
    while s < at && buf[s] == b'.' {
        s += 1;
    }
    if s == at {
        return None;
    }
    let mut e = at + 1;
    while e < buf.len()
        && (buf[e].is_ascii_alphanumeric() || buf[e] == b'-' || buf[e] == b'.')
        && e - at < 255
    {
        e += 1;
    }
    while e > at + 1 && (buf[e - 1] == b'.' || buf[e - 1] == b'-') {
        e -= 1;
    }
    let domain = &buf[at + 1..e];
    let dot = domain.iter().rposition(|b| *b == b'.')?;
    let tld = &domain[dot + 1..];
    if dot == 0 || tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    Some((s, e))
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

/// A scan in progress over a body that arrives in chunks.
#[derive(Debug)]
pub struct Stream<'s> {
    scanner: &'s Scanner,
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
}

impl<'s> Stream<'s> {
    /// Starts a stream.
    pub fn new(scanner: &'s Scanner) -> Self {
        Self {
            scanner,
            buf: Vec::new(),
            base: 0,
            released: 0,
            done: 0,
            pending: Vec::new(),
        }
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
        self.scanner
            .scan_into(&self.buf, self.base, &mut candidates);
        candidates.retain(|m| m.start >= done);
        let found: Vec<Match> = dedupe(candidates)
            .into_iter()
            .filter(|m| m.start < cut_abs)
            .collect();
        let mut new_done = self.done.max(cut_abs);
        for m in &found {
            new_done = new_done.max(m.end);
        }
        if mask_matches {
            self.pending.extend(found.iter().copied());
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
        // Context stays for the next scan: boundary checks look one or two bytes back, and an
        // e-mail's local part up to 64.
        let drop = done_rel.saturating_sub(CONTEXT);
        self.buf.drain(..drop);
        self.base += drop as u64;
        (found, out)
    }
}

#[cold]
fn never() -> Regex {
    // The patterns above are constants that compile; a regex that matches nothing stands in.
    Regex::new("[^\\x00-\\xff]").unwrap_or_else(|_| unreachable_regex())
}

#[cold]
#[allow(clippy::panic)]
fn unreachable_regex() -> Regex {
    panic!("the empty-class regex compiles")
}

#[cold]
#[allow(clippy::panic)]
fn never_ac() -> AhoCorasick {
    panic!("the detectors' literals build an automaton")
}
