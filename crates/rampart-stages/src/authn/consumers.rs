//! The consumers of the configuration and every way to find one from a credential: API key
//! digests, basic users (from the config and htpasswd files), client certificate subjects and
//! subject alternative names. Built once per configuration; lookups on the request path are
//! hash-map probes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest;
use rampart_core::secret::{resolve_path, resolve_secret};
use rampart_core::CompileCx;

use super::config::{AuthConfig, ConsumerConfig, CredentialConfig};
use super::password::{parse_htpasswd, PasswordHashKind};

/// A consumer, as the stages see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Its name.
    pub name: String,
    /// Its groups.
    pub groups: Vec<String>,
}

/// A basic-auth user.
#[derive(Debug)]
pub struct BasicUser {
    /// The consumer it authenticates as.
    pub consumer: usize,
    /// Its password hash.
    pub hash: PasswordHashKind,
}

/// Every consumer and credential of a configuration.
#[derive(Debug, Default)]
pub struct Directory {
    consumers: Vec<Consumer>,
    by_name: HashMap<String, usize>,
    api_keys: HashMap<[u8; 32], usize>,
    basic: HashMap<String, Arc<BasicUser>>,
    mtls_subject: HashMap<String, usize>,
    mtls_san: HashMap<String, usize>,
}

impl Directory {
    /// Compiles `consumers` and the htpasswd files of `auth`. Problems go to `cx`, under
    /// `consumers[i]…` and `auth.htpasswd[i]`.
    pub fn compile(
        consumers: &[ConsumerConfig],
        auth: &AuthConfig,
        base_dir: &Path,
        cx: &mut CompileCx,
    ) -> Self {
        let mut d = Self::default();
        cx.at("consumers", |cx| {
            for (i, c) in consumers.iter().enumerate() {
                cx.at(format!("[{i}]"), |cx| d.add_consumer(c, base_dir, cx));
            }
        });
        cx.at("auth", |cx| {
            cx.at("htpasswd", |cx| {
                for (i, f) in auth.htpasswd.iter().enumerate() {
                    cx.at(format!("[{i}]"), |cx| d.add_htpasswd(f, base_dir, cx));
                }
            });
        });
        d
    }

    fn add_consumer(&mut self, c: &ConsumerConfig, base_dir: &Path, cx: &mut CompileCx) {
        if c.name.is_empty() {
            cx.at("name", |cx| cx.error("a consumer's name must not be empty"));
            return;
        }
        if self.by_name.contains_key(&c.name) {
            cx.at("name", |cx| {
                cx.error(format!("duplicate consumer \"{}\"", c.name))
            });
            return;
        }
        let idx = self.consumers.len();
        self.consumers.push(Consumer {
            name: c.name.clone(),
            groups: c.groups.clone(),
        });
        self.by_name.insert(c.name.clone(), idx);
        cx.at("credentials", |cx| {
            for (j, cred) in c.credentials.iter().enumerate() {
                cx.at(format!("[{j}]"), |cx| {
                    self.add_credential(idx, &c.name, cred, base_dir, cx);
                });
            }
        });
    }

    fn add_credential(
        &mut self,
        idx: usize,
        name: &str,
        cred: &CredentialConfig,
        base_dir: &Path,
        cx: &mut CompileCx,
    ) {
        match cred {
            CredentialConfig::ApiKey {
                key_sha256,
                key,
                keys_file,
            } => {
                let given = [key_sha256.is_some(), key.is_some(), keys_file.is_some()];
                if given.iter().filter(|g| **g).count() != 1 {
                    cx.error(
                        "an api_key credential needs exactly one of key_sha256, key and keys_file",
                    );
                    return;
                }
                if let Some(h) = key_sha256 {
                    cx.at("key_sha256", |cx| match parse_sha256(h) {
                        Some(d) => self.add_key(d, idx, cx),
                        None => cx.error_with_help(
                            "not a SHA-256 digest (64 hex digits)",
                            "compute it with: printf %s \"$KEY\" | sha256sum",
                        ),
                    });
                }
                if let Some(k) = key {
                    cx.at("key", |cx| {
                        if let Some(secret) = resolve_secret(k, base_dir, cx) {
                            if secret.len() < 16 {
                                cx.error("an API key must be at least 16 characters");
                                return;
                            }
                            self.add_key(sha256(secret.as_bytes()), idx, cx);
                        }
                    });
                }
                if let Some(f) = keys_file {
                    cx.at("keys_file", |cx| {
                        let text = match std::fs::read_to_string(resolve_path(base_dir, f)) {
                            Ok(t) => t,
                            Err(e) => return cx.error(format!("cannot read \"{f}\": {e}")),
                        };
                        for (n, line) in text.lines().enumerate() {
                            let line = line.split('#').next().unwrap_or("").trim();
                            if line.is_empty() {
                                continue;
                            }
                            match parse_sha256(line) {
                                Some(d) => self.add_key(d, idx, cx),
                                None => cx.error(format!(
                                    "{f}:{}: not a SHA-256 digest (64 hex digits)",
                                    n + 1
                                )),
                            }
                        }
                    });
                }
            }
            CredentialConfig::Basic {
                username,
                password_hash,
            } => {
                let user = username.clone().unwrap_or_else(|| name.to_owned());
                match PasswordHashKind::parse(password_hash) {
                    Ok(hash) => match self.basic.entry(user) {
                        std::collections::hash_map::Entry::Occupied(o) => {
                            let user = o.key().clone();
                            cx.at("username", |cx| {
                                cx.error(format!("basic user \"{user}\" is defined twice"))
                            });
                        }
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(Arc::new(BasicUser {
                                consumer: idx,
                                hash,
                            }));
                        }
                    },
                    Err(e) => cx.at("password_hash", |cx| cx.error(e)),
                }
            }
            CredentialConfig::Mtls { subject, san } => match (subject, san) {
                (Some(s), None) => {
                    if self.mtls_subject.insert(s.clone(), idx).is_some() {
                        cx.at("subject", |cx| {
                            cx.error(format!("subject \"{s}\" belongs to two consumers"))
                        });
                    }
                }
                (None, Some(s)) => {
                    if self.mtls_san.insert(s.clone(), idx).is_some() {
                        cx.at("san", |cx| {
                            cx.error(format!("SAN \"{s}\" belongs to two consumers"))
                        });
                    }
                }
                _ => cx.error("an mtls credential needs exactly one of subject and san"),
            },
        }
    }

    fn add_key(&mut self, digest: [u8; 32], idx: usize, cx: &mut CompileCx) {
        if self.api_keys.insert(digest, idx).is_some() {
            cx.error("this API key belongs to another consumer too");
        }
    }

    fn add_htpasswd(&mut self, f: &str, base_dir: &Path, cx: &mut CompileCx) {
        let text = match std::fs::read_to_string(resolve_path(base_dir, f)) {
            Ok(t) => t,
            Err(e) => return cx.error(format!("cannot read \"{f}\": {e}")),
        };
        let (entries, errors) = parse_htpasswd(&text);
        for (line, e) in errors {
            cx.error(format!("{f}:{line}: {e}"));
        }
        for e in entries {
            if self.basic.contains_key(&e.user) {
                cx.error(format!(
                    "{f}:{}: basic user \"{}\" is defined twice",
                    e.line, e.user
                ));
                continue;
            }
            let consumer = match self.by_name.get(&e.user) {
                Some(&i) => i,
                None => {
                    self.consumers.push(Consumer {
                        name: e.user.clone(),
                        groups: Vec::new(),
                    });
                    let i = self.consumers.len() - 1;
                    self.by_name.insert(e.user.clone(), i);
                    i
                }
            };
            self.basic.insert(
                e.user,
                Arc::new(BasicUser {
                    consumer,
                    hash: e.hash,
                }),
            );
        }
    }

    /// Returns a consumer.
    pub fn consumer(&self, idx: usize) -> Option<&Consumer> {
        self.consumers.get(idx)
    }

    /// Returns the consumer with this name.
    pub fn by_name(&self, name: &str) -> Option<&Consumer> {
        self.by_name.get(name).and_then(|&i| self.consumers.get(i))
    }

    /// Finds the consumer of an API key. The key is hashed and the digest looked up; the
    /// lookup never compares key bytes.
    pub fn by_api_key(&self, key: &[u8]) -> Option<&Consumer> {
        let d = sha256(key);
        self.api_keys.get(&d).and_then(|&i| self.consumers.get(i))
    }

    /// Returns the basic user of this name.
    pub fn basic_user(&self, user: &str) -> Option<&Arc<BasicUser>> {
        self.basic.get(user)
    }

    /// Finds the consumer of a verified client certificate: by subject, then by each SAN. A
    /// SAN (`URI:spiffe://…`, `DNS:app.example.com`) matches a configured one written with or
    /// without its type.
    pub fn by_certificate(&self, subject: &str, sans: &[String]) -> Option<&Consumer> {
        self.mtls_subject
            .get(subject)
            .or_else(|| {
                sans.iter().find_map(|s| {
                    self.mtls_san.get(s).or_else(|| {
                        let (kind, value) = s.split_once(':')?;
                        matches!(kind, "DNS" | "URI" | "email" | "IP")
                            .then(|| self.mtls_san.get(value))
                            .flatten()
                    })
                })
            })
            .and_then(|&i| self.consumers.get(i))
    }

    /// True if some consumer has an API key, a basic password or a certificate.
    pub fn has_api_keys(&self) -> bool {
        !self.api_keys.is_empty()
    }

    /// True if some consumer has a basic password.
    pub fn has_basic_users(&self) -> bool {
        !self.basic.is_empty()
    }

    /// True if some consumer has a client certificate.
    pub fn has_certificates(&self) -> bool {
        !self.mtls_subject.is_empty() || !self.mtls_san.is_empty()
    }
}

/// SHA-256 of `b`.
pub fn sha256(b: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_subjects_and_users_find_their_consumer() {
        let consumers = vec![
            ConsumerConfig {
                name: "mobile".to_owned(),
                groups: vec!["partners".to_owned()],
                credentials: vec![
                    CredentialConfig::ApiKey {
                        key_sha256: Some(
                            "a59e7ad6bc5b0d1c5a35b7d8a3f14fd3cf2e0b5e7d4d7b0c0f2c5ee2a7c3f5d1"
                                .to_owned(),
                        ),
                        key: None,
                        keys_file: None,
                    },
                    CredentialConfig::ApiKey {
                        key_sha256: None,
                        key: Some("plain-key-abcdefghijkl".to_owned()),
                        keys_file: None,
                    },
                    CredentialConfig::Mtls {
                        subject: Some("CN=mobile,O=Example".to_owned()),
                        san: None,
                    },
                ],
            },
            ConsumerConfig {
                name: "ops".to_owned(),
                groups: vec![],
                credentials: vec![CredentialConfig::Mtls {
                    subject: None,
                    san: Some("spiffe://example.org/ops".to_owned()),
                }],
            },
        ];
        let mut cx = CompileCx::new();
        let d = Directory::compile(&consumers, &AuthConfig::default(), Path::new("."), &mut cx);
        assert!(cx.is_ok(), "{:?}", cx.diagnostics());
        assert_eq!(
            d.by_api_key(b"plain-key-abcdefghijkl")
                .map(|c| c.name.as_str()),
            Some("mobile")
        );
        assert!(d.by_api_key(b"plain-key-abcdefghijkm").is_none());
        assert_eq!(
            d.by_certificate("CN=other", &["spiffe://example.org/ops".to_owned()])
                .map(|c| c.name.as_str()),
            Some("ops")
        );
        assert_eq!(
            d.by_certificate("CN=mobile,O=Example", &[])
                .map(|c| c.groups.clone()),
            Some(vec!["partners".to_owned()])
        );
        assert!(d.by_certificate("CN=nobody", &[]).is_none());
    }

    #[test]
    fn every_credential_problem_is_reported() {
        let consumers = vec![
            ConsumerConfig {
                name: "a".to_owned(),
                groups: vec![],
                credentials: vec![
                    CredentialConfig::ApiKey {
                        key_sha256: Some("zz".to_owned()),
                        key: None,
                        keys_file: None,
                    },
                    CredentialConfig::ApiKey {
                        key_sha256: None,
                        key: Some("short".to_owned()),
                        keys_file: None,
                    },
                    CredentialConfig::Basic {
                        username: None,
                        password_hash: "$apr1$x$y".to_owned(),
                    },
                    CredentialConfig::Mtls {
                        subject: None,
                        san: None,
                    },
                ],
            },
            ConsumerConfig {
                name: "a".to_owned(),
                groups: vec![],
                credentials: vec![],
            },
        ];
        let mut cx = CompileCx::new();
        let _ = Directory::compile(&consumers, &AuthConfig::default(), Path::new("."), &mut cx);
        let paths: Vec<&str> = cx.diagnostics().iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "consumers[0].credentials[0].key_sha256",
                "consumers[0].credentials[1].key",
                "consumers[0].credentials[2].password_hash",
                "consumers[0].credentials[3]",
                "consumers[1].name"
            ]
        );
    }
}
