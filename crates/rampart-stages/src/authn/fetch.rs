//! A small HTTPS client for identity providers: a JWKS fetched in the background, a token
//! introspected. One connection per exchange (answers are cached, so exchanges are rare), a
//! deadline for the whole exchange, a cap on the answer's size.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

/// The largest answer read, in bytes.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// What an identity provider answered.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, whole.
    pub body: Bytes,
}

/// A client for one endpoint's scheme and trust.
#[derive(Clone, Debug)]
pub struct Fetcher {
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

/// Checks an identity provider's URL: `https`, or `http` on a loopback host (a local sidecar)
/// or when `insecure_allow_http` says so. Returns the parsed URL or what is wrong.
pub fn check_url(url: &str, insecure_allow_http: bool) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|_| format!("\"{url}\" is not a URL"))?;
    let host = uri.host().ok_or_else(|| format!("\"{url}\" has no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") => {
            let h = host.trim_matches(['[', ']']);
            let loopback = h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback || insecure_allow_http {
                Ok(uri)
            } else {
                Err(format!(
                    "\"{url}\" is plain HTTP: use https (or insecure_allow_http: true)"
                ))
            }
        }
        _ => Err(format!("\"{url}\" must be an https:// URL")),
    }
}

impl Fetcher {
    /// Creates a client; `tls` is needed for `https` URLs.
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, timeout: Duration) -> Self {
        Self { tls, timeout }
    }

    /// Sends one request and reads the whole answer, within the deadline.
    pub async fn send(&self, req: Request<Bytes>) -> Result<Answer, String> {
        match tokio::time::timeout(self.timeout, self.exchange(req)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }

    async fn exchange(&self, req: Request<Bytes>) -> Result<Answer, String> {
        let uri = req.uri().clone();
        let host = uri
            .host()
            .ok_or("no host")?
            .trim_matches(['[', ']'])
            .to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (mut parts, body) = req.into_parts();
        // Origin form on the wire, Host from the URL.
        parts.uri = uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .parse()
            .map_err(|_| "bad path")?;
        if let Some(a) = uri.authority() {
            if let Ok(v) = http::HeaderValue::from_str(a.as_str()) {
                parts.headers.insert(http::header::HOST, v);
            }
        }
        let req = Request::from_parts(parts, Full::new(body));
        if https {
            let tls = self.tls.clone().ok_or("no TLS settings for an https URL")?;
            let name = ServerName::try_from(host.clone()).map_err(|_| "bad server name")?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            roundtrip(TokioIo::new(stream), req).await
        } else {
            roundtrip(TokioIo::new(tcp), req).await
        }
    }
}

async fn roundtrip<T>(io: T, req: Request<Full<Bytes>>) -> Result<Answer, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let rsp = send
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"));
    let out = match rsp {
        Ok(rsp) => {
            let (parts, body) = rsp.into_parts();
            match Limited::new(body, MAX_ANSWER_BYTES).collect().await {
                Ok(b) => Ok(Answer {
                    status: parts.status,
                    headers: parts.headers,
                    body: b.to_bytes(),
                }),
                Err(e) => Err(format!("reading the answer: {e}")),
            }
        }
        Err(e) => Err(e),
    };
    driver.abort();
    out
}

/// The `max-age` of a `Cache-Control` header, in seconds (`no-store`/`no-cache` count as 0).
pub fn max_age(headers: &HeaderMap) -> Option<u64> {
    let mut age = None;
    for v in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(v) = v.to_str() else { continue };
        for d in v.split(',') {
            let d = d.trim().to_ascii_lowercase();
            if d == "no-store" || d == "no-cache" {
                return Some(0);
            }
            if let Some(n) = d.strip_prefix("max-age=") {
                age = n.trim_matches('"').parse().ok().or(age);
            }
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_unless_loopback() {
        assert!(check_url("https://id.example.com/jwks", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(check_url("http://[::1]:8080/jwks", false).is_ok());
        assert!(check_url("http://localhost/jwks", false).is_ok());
        assert!(check_url("http://id.example.com/jwks", false).is_err());
        assert!(check_url("http://id.example.com/jwks", true).is_ok());
        assert!(check_url("ftp://id.example.com/jwks", true).is_err());
        assert!(check_url("jwks.json", false).is_err());
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert("cache-control", "public, max-age=600".parse().unwrap());
        assert_eq!(max_age(&h), Some(600));
        h.insert("cache-control", "no-store".parse().unwrap());
        assert_eq!(max_age(&h), Some(0));
    }
}
