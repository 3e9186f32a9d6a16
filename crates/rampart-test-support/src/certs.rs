use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::TempDir;

/// A test certificate authority that issues server and client certificates into a temp dir.
#[derive(Debug)]
pub struct TestPki {
    pub dir: TempDir,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    n: std::cell::Cell<u32>,
}

/// A client certificate and key, as PEM and as files.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl TestPki {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new("rampart-pki");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Rampart Tests");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        let ca_pem = cert.pem();
        let ca_path = dir.write("ca.pem", &ca_pem);
        Self {
            dir,
            ca_pem,
            ca_path,
            issuer: Issuer::new(params, key),
            n: std::cell::Cell::new(0),
        }
    }

    fn next(&self, what: &str) -> String {
        let n = self.n.get() + 1;
        self.n.set(n);
        format!("{what}-{n}")
    }

    /// Issues a server certificate for `names`; returns (cert path, key path).
    pub fn server(&self, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let base = self.next("server");
        let c = self.dir.write(&format!("{base}.pem"), cert.pem());
        let k = self.dir.write(&format!("{base}.key"), key.serialize_pem());
        (c, k)
    }

    /// Issues a client certificate with CN `cn`, organisation `Example` and the given URI SANs.
    pub fn client(&self, cn: &str, uris: &[&str]) -> ClientIdentity {
        self.client_with_serial(cn, uris, None)
    }

    /// Writes a CRL revoking the given serial numbers; returns its path.
    pub fn crl(&self, revoked: &[u64]) -> PathBuf {
        let params = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        let name = self.next("crl");
        self.dir.write(&format!("{name}.pem"), crl.pem().unwrap())
    }

    /// Like [`TestPki::client`], with a chosen serial number.
    pub fn client_with_serial(
        &self,
        cn: &str,
        uris: &[&str],
        serial: Option<u64>,
    ) -> ClientIdentity {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Example");
        params.subject_alt_names = uris
            .iter()
            .map(|u| SanType::URI((*u).try_into().unwrap()))
            .collect();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = serial.map(rcgen::SerialNumber::from);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let base = self.next("client");
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        let cert_path = self.dir.write(&format!("{base}.pem"), &cert_pem);
        let key_path = self.dir.write(&format!("{base}.key"), &key_pem);
        ClientIdentity {
            cert_pem,
            key_pem,
            cert_path,
            key_path,
        }
    }
}
