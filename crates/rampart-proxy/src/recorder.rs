//! The traffic recorder: sampled exchanges written as `rampart-traffic/1` JSON lines for
//! `rampart replay`.
//!
//! On the request path only what is already at hand is copied, for sampled requests only: the
//! request head as received, the request body when a stage buffered it (or it was small
//! enough to be read whole), the upstream's response head and up to `max_body_bytes` of its
//! body as it streams. The record goes to one writer thread through a bounded channel (a full
//! channel drops the record and counts it). The writer replaces secrets by keyed HMACs,
//! decodes compressed bodies and masks what the DLP scanner finds in them, then writes and
//! rotates the files (mode 0600).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use bytes::Bytes;
use rampart_config::Recording;
use rampart_core::{Exchange, FindingAction};
use rampart_traffic::record::{
    Body, Client, ClientCert, Decision, FileHeader, Outcome, RecordedPrincipal, Redaction,
    RedactionInfo, Request, Response, Tls,
};
use rampart_traffic::{Record, RedactPolicy, Redactor, RotatingWriter};

/// Counters of the recorder.
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Records written.
    pub written: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Records the writer failed to write.
    pub errors: AtomicU64,
}

/// The recorder's handle on the request path.
#[derive(Debug)]
pub struct Recorder {
    tx: SyncSender<Record>,
    /// Requests are sampled when a hash of a counter falls under this.
    threshold: u64,
    counter: AtomicU64,
    max_body: usize,
    /// What happened to the records.
    pub stats: Arc<RecorderStats>,
}

impl Recorder {
    /// Starts the writer thread. `source_text` is the configuration's text (its digest goes
    /// into each file's header).
    pub fn start(cfg: &Recording, source_text: &str) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = sync_channel(cfg.channel_capacity);
        let stats = Arc::new(RecorderStats::default());
        let (key_id, key) = match &cfg.hmac_key {
            Some(k) => (
                // The id names the key without revealing it.
                rampart_traffic::sha256_hex(k.as_bytes())
                    .get(..8)
                    .unwrap_or_default()
                    .to_owned(),
                k.as_bytes().to_vec(),
            ),
            None => {
                let mut k = [0u8; 32];
                aws_lc_rs::rand::fill(&mut k)
                    .map_err(|_| std::io::Error::other("no randomness"))?;
                ("ephemeral".to_owned(), k.to_vec())
            }
        };
        let header = FileHeader {
            rampart_traffic: rampart_traffic::VERSION,
            created: Some(rampart_traffic::format_ts_us(now_us())),
            node: std::env::var("HOSTNAME").ok(),
            config_digest: Some(format!(
                "sha256:{}",
                rampart_traffic::sha256_hex(source_text.as_bytes())
            )),
            redaction: (!cfg.insecure_record_secrets).then(|| RedactionInfo {
                hmac_key_id: key_id.clone(),
            }),
            warning: cfg
                .insecure_record_secrets
                .then(|| "insecure_record_secrets: secrets are recorded as they were".to_owned()),
        };
        let worker = Worker {
            pseudo_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key),
            writer: RotatingWriter::new(cfg.writer.clone(), header),
            redactor: (!cfg.insecure_record_secrets).then(|| Redactor::new(&key_id, &key)),
            policy: cfg.redact.clone(),
            scanner: (!cfg.insecure_unmasked_bodies).then(rampart_dlp::Scanner::all),
            max_body: usize::try_from(cfg.max_body_bytes).unwrap_or(usize::MAX),
            stats: stats.clone(),
        };
        std::thread::Builder::new()
            .name("rampart-recorder".into())
            .spawn(move || worker.run(rx))?;
        Ok(Arc::new(Self {
            tx,
            threshold: (cfg.sample_rate * u64::MAX as f64) as u64,
            counter: AtomicU64::new(0),
            max_body: usize::try_from(cfg.max_body_bytes).unwrap_or(usize::MAX),
            stats,
        }))
    }

    /// Whether this request is recorded.
    pub fn sample(&self) -> bool {
        if self.threshold == u64::MAX {
            return true;
        }
        // splitmix64 of a counter: evenly spread, no lock, no clock.
        let mut z = self
            .counter
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        z < self.threshold
    }

    /// A capture of this request's head.
    pub fn capture(&self, parts: &http::request::Parts, https: bool) -> Box<Capture> {
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let version = match parts.version {
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        Box::new(Capture {
            ts_us: now_us(),
            req: Request {
                method: parts.method.as_str().to_owned(),
                scheme: Some(if https { "https" } else { "http" }.to_owned()),
                authority: parts.uri.authority().map(|a| a.as_str().to_owned()),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                version: Some(version.to_owned()),
                headers,
                body: None,
            },
            resp: None,
            resp_buf: Vec::new(),
            resp_size: 0,
            resp_whole: false,
            max_body: self.max_body,
            blocked: None,
        })
    }

    /// Hands a finished record to the writer; never waits.
    pub fn submit(&self, record: Record) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("rampart_recorder_dropped_total").increment(1);
            }
        }
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What is kept of one exchange while it runs.
#[derive(Debug)]
pub struct Capture {
    ts_us: u64,
    req: Request,
    resp: Option<Response>,
    resp_buf: Vec<u8>,
    resp_size: u64,
    /// The whole body was taken at once (held for a stage): the chunks that follow are it.
    resp_whole: bool,
    max_body: usize,
    /// The block the gateway answered with: stage, rule, status.
    blocked: Option<(String, Option<String>, u16)>,
}

impl Capture {
    /// The request body, read whole (`size` is its full length when only a prefix was read).
    pub fn request_body(&mut self, data: &Bytes, size: u64) {
        let keep = data.len().min(self.max_body);
        let enc = header(&self.req.headers, "content-encoding").unwrap_or("identity");
        let mut b = Body::of(&data[..keep], size.max(data.len() as u64), enc);
        b.enc = enc.to_owned();
        self.req.body = Some(b);
    }

    /// The request had a body that went upstream as it streamed.
    pub fn request_body_streamed(&mut self) {
        let size = header(&self.req.headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let enc = header(&self.req.headers, "content-encoding").unwrap_or("identity");
        self.req.body = Some(Body::omitted(size, enc, "not_buffered"));
    }

    /// The request body could not be read (too slow, too large, cut off).
    pub fn request_body_failed(&mut self) {
        let size = header(&self.req.headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let enc = header(&self.req.headers, "content-encoding").unwrap_or("identity");
        self.req.body = Some(Body::omitted(size, enc, "read_failed"));
    }

    /// The upstream's response head, as it came.
    pub fn response_head(&mut self, parts: &http::response::Parts) {
        self.resp = Some(Response {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: None,
            source: Some("upstream".to_owned()),
            upstream_us: None,
        });
    }

    /// The gateway answered `block` (a stage's, or its own checks' when `stage` is `None`).
    pub fn blocked(&mut self, stage: Option<rampart_core::StageId>, block: &rampart_core::Block) {
        self.blocked = Some((
            stage.map_or_else(|| "proxy".to_owned(), |s| s.as_str().to_owned()),
            block.rule.as_ref().map(|r| r.to_string()),
            block.status.as_u16(),
        ));
    }

    /// The upstream's whole response body, held for a stage before any of it streams.
    pub fn response_whole(&mut self, data: &[u8]) {
        self.response_chunk(data);
        self.resp_whole = true;
    }

    /// A chunk of the upstream's response body.
    pub fn response_chunk(&mut self, data: &[u8]) {
        if self.resp_whole {
            return;
        }
        self.resp_size += data.len() as u64;
        let room = self.max_body.saturating_sub(self.resp_buf.len());
        self.resp_buf
            .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
    }

    /// The finished record.
    pub fn finish(mut self, x: &Exchange, status: u16, dur_us: u64) -> Record {
        match &mut self.resp {
            // The upstream's answer is what a replay needs, even when the gateway then
            // refused it (the decision says so).
            Some(r) => {
                let enc = header(&r.headers, "content-encoding")
                    .unwrap_or("identity")
                    .to_owned();
                if self.resp_size > 0 || !self.resp_buf.is_empty() {
                    r.body = Some(Body::of(&self.resp_buf, self.resp_size, &enc));
                }
            }
            // The gateway answered itself before any upstream answer.
            None => {
                self.resp = Some(Response {
                    status,
                    source: Some("gateway".to_owned()),
                    ..Response::default()
                });
            }
        }
        let tls = x.peer.tls.as_ref().map(|t| Tls {
            version: Some(t.version.clone()),
            sni: t.sni.clone(),
            alpn: t.alpn.clone(),
            cipher: None,
            client_cert: t.client_cert.as_ref().map(|c| ClientCert {
                subject: c.subject.clone(),
                san: c.sans.clone(),
                sha256: Some(c.fingerprint_sha256.clone()).filter(|s| !s.is_empty()),
            }),
        });
        let blocked =
            self.blocked.is_some() || x.findings.iter().any(|f| f.action == FindingAction::Block);
        let mut decisions: Vec<Decision> = x
            .findings
            .iter()
            .map(|f| Decision {
                stage: f.stage.as_str().to_owned(),
                outcome: f.action.as_str().to_owned(),
                rule: f.rule.as_ref().map(|r| r.to_string()),
                status: (f.action == FindingAction::Block).then_some(status),
            })
            .collect();
        // A repeated block (a rate limit's later refusals) records no finding: the decision
        // is still written, last, so that the record says who stopped the request.
        if let Some((stage, rule, code)) = &self.blocked {
            let last = decisions.iter().rev().find(|d| d.outcome == "block");
            if last.is_none_or(|d| &d.stage != stage || &d.rule != rule) {
                decisions.push(Decision {
                    stage: stage.clone(),
                    outcome: "block".to_owned(),
                    rule: rule.clone(),
                    status: Some(*code),
                });
            }
        }
        Record {
            v: rampart_traffic::VERSION,
            id: x.request_id.clone(),
            ts: rampart_traffic::format_ts_us(self.ts_us),
            dur_us: Some(dur_us),
            client: Some(Client {
                ip: Some(x.peer.addr.ip().to_string()),
                port: Some(x.peer.addr.port()),
                tls,
            }),
            req: self.req,
            resp: self.resp,
            rampart: Some(Outcome {
                api: x.route.as_ref().map(|r| r.api.to_string()),
                operation: x
                    .route
                    .as_ref()
                    .and_then(|r| r.operation.as_ref())
                    .map(|o| o.to_string()),
                template: None,
                session: None,
                principal: x.principal.as_ref().map(|p| RecordedPrincipal {
                    consumer: p.consumer.clone(),
                    method: p.method.clone(),
                    groups: p.groups.clone(),
                    scopes: p.scopes.clone(),
                    claims: p.claims.clone(),
                }),
                decisions,
                final_: if blocked { "block" } else { "pass" }.to_owned(),
                config_digest: None,
            }),
            redactions: Vec::new(),
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

struct Worker {
    /// Derives each pseudonym's randomness from the value it replaces.
    pseudo_key: aws_lc_rs::hmac::Key,
    writer: RotatingWriter,
    redactor: Option<Redactor>,
    policy: RedactPolicy,
    scanner: Option<rampart_dlp::Scanner>,
    max_body: usize,
    stats: Arc<RecorderStats>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Record>) {
        while let Ok(first) = rx.recv() {
            self.one(first);
            // Drain what is queued before flushing once.
            while let Ok(r) = rx.try_recv() {
                self.one(r);
            }
            if self.writer.flush().is_err() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = self.writer.flush();
    }

    fn one(&mut self, mut r: Record) {
        if let Some(red) = &self.redactor {
            red.redact(&mut r, &self.policy);
        }
        if let Some(scanner) = &self.scanner {
            let max = self.max_body;
            if let Some(b) = r.req.body.as_mut() {
                if let Some(how) = mask_body(b, scanner, &self.pseudo_key, max) {
                    r.redactions.push(Redaction {
                        where_: "req.body".into(),
                        how,
                    });
                }
            }
            if let Some(b) = r.resp.as_mut().and_then(|s| s.body.as_mut()) {
                if let Some(how) = mask_body(b, scanner, &self.pseudo_key, max) {
                    r.redactions.push(Redaction {
                        where_: "resp.body".into(),
                        how,
                    });
                }
            }
        }
        // Claims are data too: replaced as in bodies (equal values, equal pseudonyms).
        if let (Some(scanner), Some(p)) = (
            &self.scanner,
            r.rampart.as_mut().and_then(|m| m.principal.as_mut()),
        ) {
            if !p.claims.is_empty() {
                let text = serde_json::to_vec(&p.claims).unwrap_or_default();
                let mut b = Body::of(&text, text.len() as u64, "identity");
                if mask_body(&mut b, scanner, &self.pseudo_key, usize::MAX).is_some() {
                    match b.text.as_deref().map(serde_json::from_str) {
                        Some(Ok(claims)) => p.claims = claims,
                        _ => p.claims.clear(),
                    }
                }
            }
        }
        match self.writer.write(&r) {
            Ok(()) => {
                self.stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "The traffic recorder could not write.");
            }
        }
    }
}

/// Decodes a compressed body and replaces what the scanner finds: by a pseudonym of the same
/// kind and length where the scanner finds the pseudonym again as that kind (e-mails, IP
/// addresses, cards, IBANs, SSNs, phones: a replay's schema formats and DLP still see them),
/// else by a mask. Says what it did, if anything.
fn mask_body(
    b: &mut Body,
    scanner: &rampart_dlp::Scanner,
    key: &aws_lc_rs::hmac::Key,
    max: usize,
) -> Option<String> {
    let Ok(Some(bytes)) = b.bytes() else {
        return None;
    };
    let mut how = Vec::new();
    let (mut data, truncated) = match b.enc.as_str() {
        "identity" | "" => (bytes, b.truncated),
        enc => match decode(enc, &bytes, max) {
            Some((d, cut)) if b.is_whole() => {
                how.push("decoded");
                (d, cut)
            }
            // A cut or unknown compressed body cannot be scanned: it is not kept.
            _ => {
                *b = Body::omitted(b.size, &b.enc, "policy");
                return Some("dropped (compressed body that could not be scanned)".into());
            }
        },
    };
    let mut matches = scanner.scan(&data, 0);
    matches.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    let (mut pseudonyms, mut masks) = (false, false);
    let mut done = 0usize;
    for m in &matches {
        let (s, e) = (
            usize::try_from(m.start).unwrap_or(usize::MAX),
            usize::try_from(m.end).unwrap_or(usize::MAX),
        );
        // Overlapping matches: the first (longest) one decides for the bytes.
        if s < done || s >= e || e > data.len() {
            continue;
        }
        done = e;
        match pseudonym_for(&data[s..e], m.detector, scanner, key) {
            Some(p) => {
                data[s..e].copy_from_slice(&p);
                pseudonyms = true;
            }
            None => {
                rampart_dlp::mask(&mut data, s, e, m.detector);
                masks = true;
            }
        }
    }
    if pseudonyms {
        how.push("pseudonym");
    }
    if masks {
        how.push("mask");
    }
    if how.is_empty() {
        return None;
    }
    let size = if how.contains(&"decoded") {
        data.len() as u64
    } else {
        b.size
    };
    let mut nb = Body::of(&data, size, "identity");
    nb.truncated = truncated;
    if truncated {
        nb.sha256 = None;
    }
    *b = nb;
    Some(how.join("+"))
}

/// A pseudonym for `orig` that the scanner finds again as `detector`, from randomness keyed
/// on the value (equal values, equal pseudonyms); `None` when the kind has none or no try
/// passes.
fn pseudonym_for(
    orig: &[u8],
    detector: rampart_dlp::Detector,
    scanner: &rampart_dlp::Scanner,
    key: &aws_lc_rs::hmac::Key,
) -> Option<Vec<u8>> {
    let mut block = aws_lc_rs::hmac::sign(key, orig).as_ref().to_vec();
    let mut at = 0usize;
    let mut next = || {
        if at == block.len() {
            block = aws_lc_rs::hmac::sign(key, &block).as_ref().to_vec();
            at = 0;
        }
        at += 1;
        block[at - 1]
    };
    for _ in 0..8 {
        let p = rampart_dlp::pseudo::pseudonym(orig, detector, &mut next)?;
        let mut doc = b"{\"v\": \"".to_vec();
        doc.extend_from_slice(&p);
        doc.extend_from_slice(b"\"}");
        let again = scanner
            .scan(&doc, 0)
            .iter()
            .any(|m| m.detector == detector && m.start == 7 && m.end == 7 + p.len() as u64);
        if again && p != orig {
            return Some(p);
        }
    }
    None
}

/// Decodes a compressed body with the DLP stage's decoder; `None` for an unknown coding,
/// bad data, or more than `max` bytes decoded (then it cannot be scanned whole).
fn decode(enc: &str, data: &[u8], max: usize) -> Option<(Vec<u8>, bool)> {
    use rampart_stages::dlp::Coding;
    let coding = match enc {
        "gzip" | "x-gzip" => Coding::Gzip,
        "deflate" => Coding::Deflate,
        "br" => Coding::Brotli,
        _ => return None,
    };
    let out = rampart_stages::dlp::decode_all(coding, data, max as u64).ok()?;
    Some((out, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_decoded_and_masked() {
        use std::io::Write as _;
        let scanner = rampart_dlp::Scanner::all();
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"test key");
        let text = br#"{"card":"4111 1111 1111 1111","name":"x"}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        let mut b = Body::of(&gz, gz.len() as u64, "gzip");
        let how = mask_body(&mut b, &scanner, &key, 1 << 20).unwrap();
        assert_eq!(how, "decoded+pseudonym");
        assert_eq!(b.enc, "identity");
        let t = b.text.unwrap();
        assert!(!t.contains("4111 1111 1111 1111"), "{t}");
        assert_eq!(t.len(), text.len(), "a pseudonym keeps the length");
        // Still a card, so a replay's DLP finds it; the same card gets the same pseudonym.
        assert!(scanner
            .scan(t.as_bytes(), 0)
            .iter()
            .any(|m| m.detector == rampart_dlp::Detector::PaymentCard));
        let mut again = Body::of(text, text.len() as u64, "identity");
        mask_body(&mut again, &scanner, &key, 1 << 20);
        assert_eq!(again.text.as_deref(), Some(t.as_str()));
        // A secret has no pseudonym: it is masked.
        let secret = br#"{"k":"AKIAZ7QRS2LMN4XPQ3TD"}"#;
        let mut s = Body::of(secret, secret.len() as u64, "identity");
        assert_eq!(
            mask_body(&mut s, &scanner, &key, 1 << 20).as_deref(),
            Some("mask")
        );
        assert!(s.text.unwrap().contains("********************"));

        let mut clean = Body::of(b"{}", 2, "identity");
        assert_eq!(mask_body(&mut clean, &scanner, &key, 1 << 20), None);

        let mut cut = Body::of(&gz[..10], gz.len() as u64, "gzip");
        assert!(mask_body(&mut cut, &scanner, &key, 1 << 20)
            .unwrap()
            .starts_with("dropped"));
        assert_eq!(cut.omitted.as_deref(), Some("policy"));
    }

    #[test]
    fn sampling_follows_the_rate() {
        let cfg = Recording {
            writer: rampart_traffic::WriterConfig {
                path: std::env::temp_dir()
                    .join(format!("rampart-rec-sample-{}", std::process::id())),
                max_bytes: 1 << 20,
                max_files: 1,
            },
            sample_rate: 0.25,
            max_body_bytes: 1024,
            hmac_key: None,
            redact: RedactPolicy::default(),
            channel_capacity: 10,
            insecure_unmasked_bodies: false,
            insecure_record_secrets: false,
        };
        let r = Recorder::start(&cfg, "").unwrap();
        let n = (0..100_000).filter(|_| r.sample()).count();
        assert!((23_000..27_000).contains(&n), "{n}");
    }
}
