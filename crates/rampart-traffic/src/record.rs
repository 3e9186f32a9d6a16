//! The `rampart-traffic/1` JSON-lines record: one exchange per line, as the gateway saw it.
//!
//! Readers ignore fields they do not know (a newer minor writer stays readable) and refuse a
//! line of another major version. The JSON Schema of a line is `docs/traffic.schema.json`.

use serde::{Deserialize, Serialize};

/// The major version this crate reads and writes.
pub const VERSION: u32 = 1;

/// The optional first line of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The format's major version (`1`).
    pub rampart_traffic: u32,
    /// When the file was started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The gateway that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `sha256:` of the configuration file in force when the file was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// How secrets were replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionInfo>,
    /// Set when secrets were recorded as they were (lab use only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// How a file's secrets were replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionInfo {
    /// The id of the HMAC key (never the key).
    pub hmac_key_id: String,
}

/// One recorded exchange.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The format's major version (`1`), on every line: files get concatenated.
    pub v: u32,
    /// The request id (the one in security events).
    #[serde(default)]
    pub id: String,
    /// When the request started: RFC 3339, UTC, microseconds.
    pub ts: String,
    /// The whole exchange's duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dur_us: Option<u64>,
    /// The client as the gateway saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
    /// The request.
    pub req: Request,
    /// The response, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<Response>,
    /// What the gateway made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rampart: Option<Outcome>,
    /// What was taken out before the line was written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redactions: Vec<Redaction>,
}

/// The client: the socket peer and its TLS session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The socket peer's address (a proxy in front of the client, when there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The TLS session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// A TLS session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// `TLSv1.3`, `TLSv1.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The server name the client asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The negotiated protocol (`h2`, `http/1.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// The cipher suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// The verified client certificate (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<ClientCert>,
}

/// A verified client certificate's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCert {
    /// The subject, as a distinguished name.
    #[serde(default)]
    pub subject: String,
    /// The subject alternative names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub san: Vec<String>,
    /// SHA-256 of the DER certificate, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A request as received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The method.
    pub method: String,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The authority (`Host`, or HTTP/2's `:authority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// The path, raw, as received (percent-encoding kept).
    pub path: String,
    /// The query string, raw, without the `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `HTTP/1.1`, `HTTP/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The headers in order, names in lower case, duplicates kept.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// A response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers in order, names in lower case, duplicates kept.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// `upstream` (the API answered) or `gateway` (Rampart answered itself: a block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How long the upstream took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_us: Option<u64>,
}

/// A body: its bytes (as text or base64) or why they are not here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The whole body's length.
    #[serde(default)]
    pub size: u64,
    /// The content-coding of the stored bytes (`identity`, `gzip`, `deflate`, `br`).
    #[serde(default = "identity", skip_serializing_if = "is_identity")]
    pub enc: String,
    /// The bytes, when they are valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The bytes in base64, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b64: Option<String>,
    /// SHA-256 of the whole body, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Only the first bytes are here.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// Why the bytes are not here: `policy`, `size`, `binary`, `sampled_out`, `not_buffered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<String>,
}

fn identity() -> String {
    "identity".to_owned()
}

fn is_identity(s: &str) -> bool {
    s == "identity"
}

fn is_false(b: &bool) -> bool {
    !b
}

/// What the gateway decided, as recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The API the request was routed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// The declared operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The learned path template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The session (a keyed hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Who authentication found the client to be (names only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<RecordedPrincipal>,
    /// Every finding, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
    /// `pass` or `block`.
    #[serde(rename = "final", default)]
    pub final_: String,
    /// `sha256:` of the configuration in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
}

/// A principal as recorded: names, never credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedPrincipal {
    /// The consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// How it authenticated (`api_key`, `jwt`, `mtls`, …).
    #[serde(default)]
    pub method: String,
    /// Its groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Its scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The claims of its token (authorization policies read them), with sensitive values
    /// replaced as in bodies.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// One finding of one stage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The stage (`waf.crs`, `ratelimit`, …).
    pub stage: String,
    /// `block`, `would_block`, `log`, `mask`, `skip`.
    pub outcome: String,
    /// The rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The status of a block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Something taken out of a record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// Where: `req.header:authorization`, `req.query:api_key`, `resp.header:set-cookie`,
    /// `req.body`, `resp.body`.
    #[serde(rename = "where")]
    pub where_: String,
    /// How: `hmac`, `drop`, `mask`.
    pub how: String,
}

impl Body {
    /// A body of `data`, the first bytes of a body of `size` bytes, stored as it was sent
    /// (`enc` is its content-coding).
    pub fn of(data: &[u8], size: u64, enc: &str) -> Self {
        let whole = data.len() as u64 >= size;
        let (text, b64) = match std::str::from_utf8(data) {
            Ok(t) => (Some(t.to_owned()), None),
            Err(_) => {
                use base64::Engine as _;
                (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(data)),
                )
            }
        };
        Self {
            size,
            enc: if enc.is_empty() {
                identity()
            } else {
                enc.to_owned()
            },
            text,
            b64,
            sha256: whole.then(|| crate::sha256_hex(data)),
            truncated: !whole,
            omitted: None,
        }
    }

    /// A body whose bytes are not recorded, with the reason.
    pub fn omitted(size: u64, enc: &str, why: &str) -> Self {
        Self {
            size,
            enc: if enc.is_empty() {
                identity()
            } else {
                enc.to_owned()
            },
            omitted: Some(why.to_owned()),
            ..Self::default()
        }
    }

    /// The stored bytes: `None` when they were not recorded.
    pub fn bytes(&self) -> Result<Option<Vec<u8>>, String> {
        if let Some(t) = &self.text {
            return Ok(Some(t.as_bytes().to_vec()));
        }
        if let Some(b) = &self.b64 {
            use base64::Engine as _;
            return base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map(Some)
                .map_err(|e| format!("body: bad base64: {e}"));
        }
        if self.size == 0 && self.omitted.is_none() {
            return Ok(Some(Vec::new()));
        }
        Ok(None)
    }

    /// Whether the whole body is here.
    pub fn is_whole(&self) -> bool {
        !self.truncated && self.omitted.is_none()
    }
}
