//! TLS settings compiled into rustls configurations at load time, so that a bad certificate is
//! a config error (with its path), never a failed handshake later.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rampart_core::CompileCx;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};

use super::resolve_path;
use crate::model::{ClientAuthMode, TlsConfig, UpstreamTlsConfig};

/// Returns the process's crypto provider (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub(super) fn server_config(
    t: &TlsConfig,
    http2: bool,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<Arc<rustls::ServerConfig>> {
    let before = cx.diagnostics().len();
    let provider = provider();
    let mut resolver = SniResolver::default();
    cx.at("certificates", |cx| {
        if t.certificates.is_empty() {
            cx.error("at least one certificate is needed");
        }
        for (i, c) in t.certificates.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| {
                let certs = cx.at("cert", |cx| {
                    load_certs(
                        &resolve_path(base_dir, &c.cert).to_string_lossy(),
                        &c.cert,
                        cx,
                    )
                });
                let key = cx.at("key", |cx| {
                    match PrivateKeyDer::from_pem_file(resolve_path(base_dir, &c.key)) {
                        Ok(k) => Some(k),
                        Err(e) => {
                            cx.error(format!("cannot read a private key from \"{}\": {e}", c.key));
                            None
                        }
                    }
                });
                let (Some(certs), Some(key)) = (certs, key) else {
                    return;
                };
                let signing = match provider.key_provider.load_private_key(key) {
                    Ok(s) => s,
                    Err(e) => {
                        cx.at("key", |cx| cx.error(format!("unusable private key: {e}")));
                        return;
                    }
                };
                let names = if c.server_names.is_empty() {
                    dns_names(&certs[0])
                } else {
                    c.server_names.clone()
                };
                let ck = Arc::new(CertifiedKey::new(certs, signing));
                if let Err(e) = ck.keys_match() {
                    cx.at("key", |cx| {
                        cx.error(format!("the key does not match the certificate: {e}"))
                    });
                    return;
                }
                resolver.add(&names, ck);
            });
        }
    });
    let versions: &[&'static rustls::SupportedProtocolVersion] = match t.min_version.as_deref() {
        None | Some("1.2") => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some("1.3") => &[&rustls::version::TLS13],
        Some(other) => {
            cx.at("min_version", |cx| {
                cx.error(format!(
                    "unknown TLS version \"{other}\", expected \"1.2\" or \"1.3\""
                ))
            });
            &[&rustls::version::TLS13]
        }
    };
    let verifier = match &t.client_auth {
        None => None,
        Some(ca) if ca.mode == ClientAuthMode::Off => None,
        Some(ca) => cx.at("client_auth", |cx| {
            let Some(ca_path) = &ca.ca else {
                cx.error("`ca` is needed when mode is required or optional");
                return None;
            };
            let roots = cx.at("ca", |cx| {
                load_roots(
                    &resolve_path(base_dir, ca_path).to_string_lossy(),
                    ca_path,
                    cx,
                )
            })?;
            let mut crls = Vec::new();
            cx.at("crls", |cx| {
                for (i, p) in ca.crls.iter().enumerate() {
                    cx.at(
                        format!("[{i}]"),
                        |cx| match CertificateRevocationListDer::pem_file_iter(resolve_path(
                            base_dir, p,
                        )) {
                            Ok(it) => {
                                for crl in it {
                                    match crl {
                                        Ok(c) => crls.push(c),
                                        Err(e) => cx.error(format!("bad CRL in \"{p}\": {e}")),
                                    }
                                }
                            }
                            Err(e) => cx.error(format!("cannot read \"{p}\": {e}")),
                        },
                    );
                }
            });
            let mut b =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .with_crls(crls);
            if ca.mode == ClientAuthMode::Optional {
                b = b.allow_unauthenticated();
            }
            match b.build() {
                Ok(v) => Some(v),
                Err(e) => {
                    cx.error(format!("cannot build the client verifier: {e}"));
                    None
                }
            }
        }),
    };
    if cx.diagnostics().len() != before {
        return None;
    }
    let builder = match rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
    {
        Ok(b) => b,
        Err(e) => {
            cx.error(format!("TLS setup failed: {e}"));
            return None;
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Some(Arc::new(cfg))
}

fn load_certs(path: &str, shown: &str, cx: &mut CompileCx) -> Option<Vec<CertificateDer<'static>>> {
    let certs: Result<Vec<_>, _> = match CertificateDer::pem_file_iter(path) {
        Ok(it) => it.collect(),
        Err(e) => {
            cx.error(format!("cannot read \"{shown}\": {e}"));
            return None;
        }
    };
    match certs {
        Ok(c) if !c.is_empty() => Some(c),
        Ok(_) => {
            cx.error(format!("no certificate in \"{shown}\""));
            None
        }
        Err(e) => {
            cx.error(format!("bad certificate in \"{shown}\": {e}"));
            None
        }
    }
}

fn load_roots(path: &str, shown: &str, cx: &mut CompileCx) -> Option<RootCertStore> {
    let certs = load_certs(path, shown, cx)?;
    let mut roots = RootCertStore::empty();
    for c in certs {
        if let Err(e) = roots.add(c) {
            cx.error(format!("bad CA certificate in \"{shown}\": {e}"));
            return None;
        }
    }
    Some(roots)
}

/// Returns the DNS names of a certificate's SAN extension (and its CN when it has none).
fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, x)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            x.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    names
}

/// Chooses a certificate by SNI: exact name, then `*.` wildcard, then the first certificate.
#[derive(Debug, Default)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    fn add(&mut self, names: &[String], ck: Arc<CertifiedKey>) {
        for n in names {
            let n = n.to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(suffix) => self
                    .wildcard
                    .entry(suffix.to_owned())
                    .or_insert_with(|| ck.clone()),
                None => self.exact.entry(n).or_insert_with(|| ck.clone()),
            };
        }
        if self.default.is_none() {
            self.default = Some(ck);
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            if let Some(ck) = self.exact.get(&name) {
                return Some(ck.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(ck) = self.wildcard.get(parent) {
                    return Some(ck.clone());
                }
            }
        }
        self.default.clone()
    }
}

pub(super) fn client_config(
    t: &UpstreamTlsConfig,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let builder = match rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b,
        Err(e) => {
            cx.error(format!("TLS setup failed: {e}"));
            return None;
        }
    };
    let mut cfg = if t.insecure_skip_verify {
        tracing::warn!("upstream TLS verification is off (insecure_skip_verify)");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(InsecureSkipVerify(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &t.ca {
            Some(ca) => cx.at("ca", |cx| {
                load_roots(&resolve_path(base_dir, ca).to_string_lossy(), ca, cx)
            })?,
            None => {
                let mut roots = RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    cx.error("no system CA certificates were found; set `ca`");
                    return None;
                }
                roots
            }
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if let Some(name) = &t.server_name {
        if ServerName::try_from(name.clone()).is_err() {
            cx.at("server_name", |cx| {
                cx.error(format!("\"{name}\" is not a valid server name"))
            });
            return None;
        }
    }
    Some(Arc::new(cfg))
}

/// Accepts any upstream certificate. Only reachable through `insecure_skip_verify`.
#[derive(Debug)]
struct InsecureSkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for InsecureSkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
