//! Compiles consumers, identity providers, the global `auth` settings and each API's `authn`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use rampart_core::diagnostics::nearest;
use rampart_core::secret::{resolve_path, resolve_secret};
use rampart_core::{CompileCx, Slot};
use rampart_stages::authn::config::{
    AuthnConfig, IdentityProviderConfig, IntrospectionConfig, JwtConfig,
};
use rampart_stages::authn::consumers::Directory;
use rampart_stages::authn::fetch::{check_url, Fetcher};
use rampart_stages::authn::introspect::{Introspector, IntrospectorSettings};
use rampart_stages::authn::jws::{Alg, KeySet};
use rampart_stages::authn::jwt::{ClaimMapping, JwtProvider, KeySource};
use rampart_stages::authn::lockout::Lockout;
use rampart_stages::authn::{
    AuthnShared, AuthnStage, Forward, KeyLocation, Method, PasswordChecker,
};

use crate::model::{ConfigFile, UpstreamTlsConfig};

/// How long a JWKS URL may take to answer.
const JWKS_TIMEOUT: Duration = Duration::from_secs(10);

/// What every API's authentication is compiled against.
pub(super) struct Auth {
    shared: Arc<AuthnShared>,
    providers: HashMap<String, Method>,
    /// Every provider's name, compiled or not (a broken one is reported once, where it is).
    declared: Vec<String>,
    /// The key sources of URL-based JWT providers, for the gateway to start.
    pub(super) key_sources: Vec<Arc<KeySource>>,
    /// Header names the gateway removes from every client request.
    pub(super) identity_headers: Vec<HeaderName>,
    mtls_listener: bool,
}

pub(super) fn compile_auth(
    file: &ConfigFile,
    base_dir: &Path,
    mtls_listener: bool,
    cx: &mut CompileCx,
) -> Auth {
    let directory = Directory::compile(&file.consumers, &file.auth, base_dir, cx);
    let forward = cx.at("auth", |cx| {
        cx.at("forward", |cx| {
            let f = &file.auth.forward;
            let h = |cx: &mut CompileCx, key: &str, v: &str| {
                cx.at(key.to_owned(), |cx| header_name(v, cx))
            };
            let consumer = h(cx, "consumer_header", &f.consumer_header);
            let groups = h(cx, "groups_header", &f.groups_header);
            let method = h(cx, "method_header", &f.method_header);
            let claims: Vec<(HeaderName, String)> = cx.at("claims", |cx| {
                f.claims
                    .iter()
                    .filter_map(|(hdr, claim)| {
                        cx.at(hdr.clone(), |cx| header_name(hdr, cx))
                            .map(|n| (n, claim.clone()))
                    })
                    .collect()
            });
            Some(Forward::new(consumer?, groups?, method?, claims))
        })
    });
    let forward = forward.unwrap_or_else(|| {
        Forward::new(
            HeaderName::from_static("x-consumer"),
            HeaderName::from_static("x-consumer-groups"),
            HeaderName::from_static("x-authenticated-by"),
            Vec::new(),
        )
    });
    let identity_headers = forward.names();
    let lockout = Lockout::new(&file.auth.lockout).map(Arc::new);
    let shared = Arc::new(AuthnShared {
        directory: Arc::new(directory),
        lockout,
        forward: Arc::new(forward),
        passwords: Arc::new(PasswordChecker::new(
            file.auth.password_cache_secs.saturating_mul(1000),
        )),
    });
    let mut providers = HashMap::new();
    let mut key_sources = Vec::new();
    cx.at("identity_providers", |cx| {
        for (name, p) in &file.identity_providers {
            cx.at(name.clone(), |cx| {
                if matches!(name.as_str(), "api_key" | "basic" | "mtls") {
                    cx.error(format!(
                        "\"{name}\" is a built-in method; give the provider another name"
                    ));
                    return;
                }
                let m = match p {
                    IdentityProviderConfig::Jwt(j) => {
                        compile_jwt(name, j, base_dir, cx).map(|(p, ks)| {
                            if ks.url_str().is_some() {
                                key_sources.push(ks);
                            }
                            Method::Jwt(Arc::new(p))
                        })
                    }
                    IdentityProviderConfig::Introspection(i) => {
                        compile_introspection(name, i, base_dir, cx)
                    }
                };
                if let Some(m) = m {
                    providers.insert(name.clone(), m);
                }
            });
        }
    });
    Auth {
        shared,
        providers,
        declared: file.identity_providers.keys().cloned().collect(),
        key_sources,
        identity_headers,
        mtls_listener,
    }
}

fn header_name(v: &str, cx: &mut CompileCx) -> Option<HeaderName> {
    match HeaderName::from_bytes(v.as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            cx.error(format!("\"{v}\" is not a valid header name"));
            None
        }
    }
}

fn tls_for(
    ca: Option<&String>,
    url: &http::Uri,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<Option<Arc<rustls::ClientConfig>>> {
    if url.scheme_str() != Some("https") {
        return Some(None);
    }
    let t = UpstreamTlsConfig {
        ca: ca.cloned(),
        server_name: None,
        insecure_skip_verify: false,
    };
    cx.at("tls_ca", |cx| super::tls::client_config(&t, base_dir, cx))
        .map(Some)
}

fn algorithms(list: &[String], cx: &mut CompileCx) -> Option<Vec<Alg>> {
    cx.at("algorithms", |cx| {
        if list.is_empty() {
            cx.error("list the algorithms the issuer signs with, such as [RS256]");
            return None;
        }
        let mut out = Vec::new();
        let before = cx.diagnostics().len();
        for (i, a) in list.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| match Alg::parse(a) {
                Some(alg) => out.push(alg),
                None if a.eq_ignore_ascii_case("none") => {
                    cx.error("\"none\" (unsigned tokens) is never accepted")
                }
                None => cx.unknown("algorithm", a, Alg::ALL.iter().map(|a| a.as_str())),
            });
        }
        (cx.diagnostics().len() == before).then_some(out)
    })
}

fn compile_jwt(
    name: &str,
    j: &JwtConfig,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<(JwtProvider, Arc<KeySource>)> {
    let algs_checked = algorithms(&j.algorithms, cx);
    let algs = algs_checked.clone().unwrap_or_default();
    let source = cx.at("jwks", |cx| -> Option<KeySource> {
        let src = j.jwks.trim();
        if src.starts_with("https://") || src.starts_with("http://") {
            let uri = match check_url(src, j.insecure_allow_http) {
                Ok(u) => u,
                Err(e) => {
                    cx.error(e);
                    return None;
                }
            };
            let tls = tls_for(j.tls_ca.as_ref(), &uri, base_dir, cx)?;
            return Some(KeySource::url(
                name,
                uri,
                Fetcher::new(tls, JWKS_TIMEOUT),
                Duration::from_secs(j.jwks_refresh_secs.max(10)),
                Duration::from_secs(j.unknown_kid_refresh_secs.max(1)),
                algs.clone(),
            ));
        }
        let text = if let Some(path) = src.strip_prefix("file:") {
            match std::fs::read(resolve_path(base_dir, path)) {
                Ok(t) => t,
                Err(e) => {
                    cx.error(format!("cannot read \"{path}\": {e}"));
                    return None;
                }
            }
        } else if src.starts_with('{') {
            src.as_bytes().to_vec()
        } else {
            cx.error_with_help(
                format!("\"{src}\" is not a JWKS source"),
                "write file:jwks.json, an https:// URL, or the JWKS JSON itself",
            );
            return None;
        };
        match KeySet::from_json(&text, &algs) {
            Ok(set) if set.is_empty() => {
                cx.error("the JWKS has no signing key for the configured algorithms");
                None
            }
            Ok(set) => Some(KeySource::fixed(name, set, algs.clone())),
            Err(e) => {
                cx.error(format!("invalid JWKS: {e}"));
                None
            }
        }
    })?;
    let algs = algs_checked?;
    let keys = Arc::new(source);
    Some((
        JwtProvider {
            name: name.to_owned(),
            issuer: j.issuer.clone(),
            audiences: j.audiences.clone(),
            algorithms: algs,
            leeway_ms: j.leeway_secs.saturating_mul(1000),
            required_claims: j.required_claims.clone(),
            allow_no_expiry: j.insecure_allow_no_expiry,
            mapping: ClaimMapping {
                consumer: j.consumer_claim.clone(),
                groups: j.groups_claim.clone(),
                scopes: j.scopes_claim.clone(),
            },
            keys: keys.clone(),
        },
        keys,
    ))
}

fn compile_introspection(
    name: &str,
    i: &IntrospectionConfig,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<Method> {
    let uri = cx.at("url", |cx| match check_url(&i.url, i.insecure_allow_http) {
        Ok(u) => Some(u),
        Err(e) => {
            cx.error(e);
            None
        }
    })?;
    let tls = tls_for(i.tls_ca.as_ref(), &uri, base_dir, cx)?;
    let secret = cx.at("client_secret", |cx| {
        resolve_secret(&i.client_secret, base_dir, cx)
    })?;
    if i.timeout_ms == 0 {
        cx.at("timeout_ms", |cx| cx.error("must be greater than 0"));
        return None;
    }
    let intro = Introspector::new(IntrospectorSettings {
        name: name.to_owned(),
        uri,
        fetcher: Fetcher::new(tls, Duration::from_millis(i.timeout_ms)),
        client_id: i.client_id.clone(),
        client_secret: secret,
        cache_ms: i.cache_secs.saturating_mul(1000),
        negative_ms: i.negative_cache_secs.saturating_mul(1000),
        max_entries: i.max_cache_entries,
        audiences: i.audiences.clone(),
    });
    Some(Method::Introspection(
        Arc::new(intro),
        ClaimMapping {
            consumer: i.consumer_claim.clone(),
            groups: i.groups_claim.clone(),
            scopes: "scope".to_owned(),
        },
    ))
}

/// Compiles an API's `authn` into its pipeline slot.
pub(super) fn compile_authn(
    a: &AuthnConfig,
    api: &str,
    auth: &Auth,
    cx: &mut CompileCx,
) -> Option<Slot> {
    let before = cx.diagnostics().len();
    let dir = &auth.shared.directory;
    let mut methods = Vec::new();
    cx.at("methods", |cx| {
        if a.methods.is_empty() {
            cx.error("list at least one method: api_key, basic, mtls or an identity provider");
        }
        let mut seen = Vec::new();
        for (i, m) in a.methods.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| {
                if seen.contains(m) {
                    return cx.error(format!("\"{m}\" is listed twice"));
                }
                seen.push(m.clone());
                let method = match m.as_str() {
                    "api_key" if !dir.has_api_keys() => {
                        return cx.error("no consumer has an api_key credential");
                    }
                    "api_key" => Method::ApiKey,
                    "basic" if !dir.has_basic_users() => {
                        return cx.error(
                            "no consumer has a basic credential and no htpasswd file is configured",
                        );
                    }
                    "basic" => Method::Basic,
                    "mtls" if !auth.mtls_listener => {
                        return cx.error(
                            "no listener verifies client certificates (tls.client_auth.mode)",
                        );
                    }
                    "mtls" => Method::Mtls,
                    other => match auth.providers.get(other) {
                        Some(p) => p.clone(),
                        // Declared but broken: its own error says why.
                        None if auth.declared.iter().any(|d| d == other) => return,
                        None => {
                            let known = ["api_key", "basic", "mtls"]
                                .into_iter()
                                .map(str::to_owned)
                                .chain(auth.declared.iter().cloned());
                            return match nearest(other, known) {
                                Some(n) => cx.error_with_help(
                                    format!("unknown method or identity provider \"{other}\""),
                                    format!("did you mean \"{n}\"?"),
                                ),
                                None => cx.error_with_help(
                                    format!("unknown method or identity provider \"{other}\""),
                                    "the methods are api_key, basic, mtls and the names under identity_providers",
                                ),
                            };
                        }
                    },
                };
                methods.push(method);
            });
        }
    });
    let realm = a.realm.clone().unwrap_or_else(|| api.to_owned());
    if realm
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        cx.at("realm", |cx| {
            cx.error("a realm cannot hold quotes, backslashes or control characters")
        });
    }
    let loc = &a.api_key;
    let key_header = match &loc.header {
        Some(h) => cx.at("api_key", |cx| cx.at("header", |cx| header_name(h, cx))),
        None => None,
    };
    if loc.header.is_none() && loc.query.is_none() && loc.cookie.is_none() {
        cx.at("api_key", |cx| {
            cx.error("say where the key is: header, query or cookie")
        });
    }
    if cx.diagnostics().len() != before {
        return None;
    }
    let stage = AuthnStage::new(
        methods,
        realm,
        KeyLocation {
            header: key_header,
            query: loc.query.clone(),
            cookie: loc.cookie.clone(),
            strip: loc.strip,
        },
        a.insecure_allow_anonymous,
        auth.shared.clone(),
    );
    Some(Slot {
        stage: Arc::new(stage),
        enforcement: a.enforcement,
        on_error: a.on_error,
    })
}
