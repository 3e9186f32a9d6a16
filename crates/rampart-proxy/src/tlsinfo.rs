//! What a TLS handshake established, for the [`Exchange`](rampart_core::Exchange).

use rampart_core::{ClientCert, TlsInfo};
use rustls::ServerConnection;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

/// Reads the negotiated parameters and the verified client certificate from a connection.
pub fn tls_info(conn: &ServerConnection) -> TlsInfo {
    TlsInfo {
        sni: conn.server_name().map(str::to_owned),
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        // rustls only completes a handshake with certificates its verifier accepted.
        client_cert: conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|der| client_cert(der.as_ref())),
    }
}

/// Extracts the identity of a DER certificate.
pub fn client_cert(der: &[u8]) -> Option<ClientCert> {
    let (_, x) = X509Certificate::from_der(der).ok()?;
    let mut sans = Vec::new();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                GeneralName::RFC822Name(e) => sans.push(format!("email:{e}")),
                GeneralName::IPAddress(ip) => {
                    let ip = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        16 => <[u8; 16]>::try_from(*ip)
                            .ok()
                            .map(|b| std::net::IpAddr::from(b).to_string()),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        sans.push(format!("IP:{ip}"));
                    }
                }
                _ => {}
            }
        }
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    Some(ClientCert {
        subject: rfc4514(x.subject()),
        issuer: rfc4514(x.issuer()),
        sans,
        serial: x.raw_serial_as_string().replace(':', ""),
        fingerprint_sha256: hex(digest.as_ref()),
    })
}

/// Formats a name as RFC 4514 does: most specific RDN first, `,` between RDNs, special
/// characters escaped.
fn rfc4514(name: &X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                        .map(str::to_owned)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let value = attr
                        .as_str()
                        .map(escape)
                        .unwrap_or_else(|_| format!("#{}", hex(attr.as_slice())));
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Formats a client certificate for the upstream header, in the style of Envoy's
/// `x-forwarded-client-cert`: `Hash=…;Subject="…";URI=…;DNS=…`.
pub fn header_value(c: &ClientCert) -> String {
    let mut parts = vec![
        format!("Hash={}", c.fingerprint_sha256),
        format!("Subject=\"{}\"", c.subject.replace('"', "\\\"")),
    ];
    for san in &c.sans {
        if let Some((kind, v)) = san.split_once(':') {
            let key = match kind {
                "URI" => "URI",
                "DNS" => "DNS",
                "email" => "Email",
                _ => "IP",
            };
            parts.push(format!("{key}={}", v.replace([';', ',', '"'], "")));
        }
    }
    parts.join(";")
}
