//! TLS termination through the real gateway: HTTP/2 by ALPN, SNI, mutual TLS, TLS garbage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use rampart_test_support::{tls_client_config, tls_connect, TestGateway, TestPki, TestUpstream};
use tokio::io::AsyncWriteExt;

fn tls_yaml(up: &str, pki: &TestPki, client_auth: &str) -> String {
    let (a_cert, a_key) = pki.server(&["a.example.test", "localhost"]);
    let (b_cert, b_key) = pki.server(&["b.example.test", "*.wild.example.test"]);
    format!(
        r#"
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{}", key: "{}" }}
        - {{ cert: "{}", key: "{}" }}
{client_auth}
upstreams:
  app: {{ targets: ["{up}"] }}
apis:
  - {{ name: app, upstream: app }}
"#,
        a_cert.display(),
        a_key.display(),
        b_cert.display(),
        b_key.display(),
    )
}

fn get(path: &str, host: &str) -> Request<Full<Bytes>> {
    Request::get(format!("https://{host}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn san_dns(der: &[u8]) -> Vec<String> {
    use x509_names::names;
    names(der)
}

mod x509_names {
    pub(crate) fn names(der: &[u8]) -> Vec<String> {
        // The gateway's own certificate parser gives the SANs as "DNS:name".
        rampart_proxy::tlsinfo::client_cert(der)
            .map(|c| c.sans)
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn http2_over_tls_and_sni_picks_the_certificate() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Test CA");
    let gw = TestGateway::start(&tls_yaml(&up.url(), &pki, "")).await;
    let addr = gw.addr("tls");
    let cfg = tls_client_config(&pki.ca_pem, None, &["h2", "http/1.1"]);
    let (rsp, alpn, certs) = tls_connect(
        addr,
        "a.example.test",
        cfg.clone(),
        get("/echo", "a.example.test"),
    )
    .await
    .unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    assert_eq!(alpn, "h2");
    assert!(san_dns(certs[0].as_ref()).contains(&"DNS:a.example.test".to_owned()));
    assert_eq!(up.last().unwrap().headers["x-forwarded-proto"], "https");

    let (_, _, certs) = tls_connect(
        addr,
        "b.example.test",
        cfg.clone(),
        get("/echo", "b.example.test"),
    )
    .await
    .unwrap();
    assert!(san_dns(certs[0].as_ref()).contains(&"DNS:b.example.test".to_owned()));
    let (_, _, certs) = tls_connect(
        addr,
        "x.wild.example.test",
        cfg.clone(),
        get("/echo", "x.wild.example.test"),
    )
    .await
    .unwrap();
    assert!(san_dns(certs[0].as_ref()).contains(&"DNS:*.wild.example.test".to_owned()));

    // HTTP/1.1 only clients get HTTP/1.1.
    let h1 = tls_client_config(&pki.ca_pem, None, &["http/1.1"]);
    let (rsp, alpn, _) = tls_connect(addr, "a.example.test", h1, get("/json", "a.example.test"))
        .await
        .unwrap();
    assert_eq!((rsp.status, alpn.as_str()), (StatusCode::OK, "http/1.1"));
    gw.shutdown().await;
}

#[tokio::test]
async fn mtls_required_optional_and_wrong_ca() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Test CA");
    let other = TestPki::new("Other CA");
    let required = format!(
        "      client_auth: {{ mode: required, ca: \"{}\" }}",
        pki.ca_path.display()
    );
    let gw = TestGateway::start(&tls_yaml(&up.url(), &pki, &required)).await;
    let addr = gw.addr("tls");
    let good = pki.client("client-1", &["spiffe://example.test/client-1"]);
    let foreign = other.client("intruder", &[]);

    // No certificate: the handshake fails.
    let none = tls_client_config(&pki.ca_pem, None, &["http/1.1"]);
    assert!(
        tls_connect(addr, "localhost", none.clone(), get("/echo", "localhost"))
            .await
            .is_err()
    );
    // A certificate from another CA: refused too.
    let bad = tls_client_config(&pki.ca_pem, Some(&foreign), &["http/1.1"]);
    assert!(
        tls_connect(addr, "localhost", bad, get("/echo", "localhost"))
            .await
            .is_err()
    );
    // A good certificate: served, and the identity goes upstream in the header.
    let ok = tls_client_config(&pki.ca_pem, Some(&good), &["h2"]);
    let (rsp, _, _) = tls_connect(addr, "localhost", ok.clone(), get("/echo", "localhost"))
        .await
        .unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    let xcc = up.last().unwrap().headers["x-client-cert"]
        .to_str()
        .unwrap()
        .to_owned();
    // RFC 4514 order (last RDN first), as `openssl x509 -subject -nameopt RFC2253` prints it.
    assert!(xcc.contains("Subject=\"O=Example,CN=client-1\""), "{xcc}");
    assert!(xcc.contains("URI=spiffe://example.test/client-1"), "{xcc}");
    assert!(xcc.starts_with("Hash="), "{xcc}");
    // A client cannot forge the header even with a valid certificate.
    let forged = Request::get("https://localhost/echo")
        .header("x-client-cert", "Subject=\"CN=admin\"")
        .body(Full::new(Bytes::new()))
        .unwrap();
    tls_connect(addr, "localhost", ok, forged).await.unwrap();
    let xcc = up
        .last()
        .unwrap()
        .headers
        .get_all("x-client-cert")
        .iter()
        .count();
    assert_eq!(xcc, 1);
    assert!(!up.last().unwrap().headers["x-client-cert"]
        .to_str()
        .unwrap()
        .contains("admin"));

    // Optional: no certificate is fine, and no identity header is sent.
    let optional = format!(
        "      client_auth: {{ mode: optional, ca: \"{}\" }}",
        pki.ca_path.display()
    );
    assert!(gw
        .reload(&tls_yaml(&up.url(), &pki, &optional))
        .await
        .is_applied());
    let (rsp, _, _) = tls_connect(addr, "localhost", none, get("/echo", "localhost"))
        .await
        .unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    assert!(!up.last().unwrap().headers.contains_key("x-client-cert"));
    gw.shutdown().await;
}

#[tokio::test]
async fn tls_garbage_is_closed_and_the_listener_keeps_serving() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Test CA");
    let gw = TestGateway::start(&tls_yaml(&up.url(), &pki, "")).await;
    let addr = gw.addr("tls");
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3][..],
        &[0u8; 64][..],
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(junk).await.unwrap();
        assert!(common::closed_within(&mut s, Duration::from_secs(5)).await);
    }
    let cfg = tls_client_config(&pki.ca_pem, None, &["h2"]);
    let (rsp, _, _) = tls_connect(addr, "localhost", cfg, get("/json", "localhost"))
        .await
        .unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    gw.shutdown().await;
}

#[tokio::test]
async fn certificates_reload_with_the_config() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Test CA");
    let gw = TestGateway::start(&tls_yaml(&up.url(), &pki, "")).await;
    let addr = gw.addr("tls");
    let cfg = tls_client_config(&pki.ca_pem, None, &["http/1.1"]);
    let (_, _, before) = tls_connect(addr, "localhost", cfg.clone(), get("/json", "localhost"))
        .await
        .unwrap();
    // A new configuration with new certificate files: new connections get the new certificate.
    assert!(gw.reload(&tls_yaml(&up.url(), &pki, "")).await.is_applied());
    let (rsp, _, after) = tls_connect(addr, "localhost", cfg, get("/json", "localhost"))
        .await
        .unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    assert_ne!(before[0], after[0], "the certificate did not change");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stalled_handshake_is_closed() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Test CA");
    let yaml = tls_yaml(&up.url(), &pki, "").replace(
        "    tls:\n",
        "    limits: { handshake_timeout_ms: 300 }\n    tls:\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr("tls"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(common::closed_within(&mut s, Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(250));
    gw.shutdown().await;
}

#[tokio::test]
async fn tls_to_the_upstream_is_verified() {
    let pki = TestPki::new("Upstream CA");
    let (cert, key) = pki.server(&["upstream.test"]);
    let up = TestUpstream::start_tls(&cert, &key).await;
    let yaml = |tls: &str| {
        format!(
            "listeners:\n  - {{ name: public, bind: 127.0.0.1:0 }}\nupstreams:\n  app: {{ targets: [\"https://127.0.0.1:{}\"], connect_timeout_ms: 1000, tls: {tls} }}\napis:\n  - {{ name: app, upstream: app }}\n",
            up.addr.port()
        )
    };
    let c = rampart_test_support::HttpClient::new();
    // Trusted CA and the right name: served over TLS.
    let gw = TestGateway::start(&yaml(&format!(
        "{{ ca: \"{}\", server_name: upstream.test }}",
        pki.ca_path.display()
    )))
    .await;
    let r = c.get(&gw.url("public", "/json")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    // The wrong name: the upstream's certificate is refused, 502.
    assert!(gw
        .reload(&yaml(&format!(
            "{{ ca: \"{}\", server_name: other.test }}",
            pki.ca_path.display()
        )))
        .await
        .is_applied());
    assert_eq!(
        c.get(&gw.url("public", "/json")).await.unwrap().status,
        StatusCode::BAD_GATEWAY
    );
    // insecure_skip_verify accepts it (for tests only).
    assert!(gw
        .reload(&yaml("{ insecure_skip_verify: true }"))
        .await
        .is_applied());
    assert_eq!(
        c.get(&gw.url("public", "/json")).await.unwrap().status,
        StatusCode::OK
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn revoked_client_certificates_are_refused() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Test CA");
    let good = pki.client_with_serial("client-ok", &[], Some(1001));
    let revoked = pki.client_with_serial("client-revoked", &[], Some(1002));
    let crl = pki.crl(&[1002]);
    let client_auth = format!(
        "      client_auth: {{ mode: required, ca: \"{}\", crls: [\"{}\"] }}",
        pki.ca_path.display(),
        crl.display()
    );
    let gw = TestGateway::start(&tls_yaml(&up.url(), &pki, &client_auth)).await;
    let addr = gw.addr("tls");
    let ok = tls_client_config(&pki.ca_pem, Some(&good), &["http/1.1"]);
    let (rsp, _, _) = tls_connect(addr, "localhost", ok, get("/echo", "localhost"))
        .await
        .unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    let bad = tls_client_config(&pki.ca_pem, Some(&revoked), &["http/1.1"]);
    assert!(
        tls_connect(addr, "localhost", bad, get("/echo", "localhost"))
            .await
            .is_err(),
        "a revoked certificate was accepted"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn tls_1_2_is_served_unless_the_minimum_is_1_3() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Test CA");
    let gw = TestGateway::start(&tls_yaml(&up.url(), &pki, "")).await;
    let addr = gw.addr("tls");
    let tls12 = {
        let mut roots = rustls::RootCertStore::empty();
        for c in <rustls::pki_types::CertificateDer<'_> as rustls::pki_types::pem::PemObject>::pem_slice_iter(pki.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        std::sync::Arc::new(cfg)
    };
    let (rsp, _, _) = tls_connect(addr, "localhost", tls12.clone(), get("/json", "localhost"))
        .await
        .unwrap();
    assert_eq!(rsp.status, StatusCode::OK);
    let only13 = tls_yaml(&up.url(), &pki, "")
        .replace("    tls:\n", "    tls:\n      min_version: \"1.3\"\n");
    assert!(gw.reload(&only13).await.is_applied());
    assert!(
        tls_connect(addr, "localhost", tls12, get("/json", "localhost"))
            .await
            .is_err(),
        "TLS 1.2 accepted with min_version 1.3"
    );
    gw.shutdown().await;
}
