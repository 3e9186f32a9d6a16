//! Compiles the file model into a [`Snapshot`], collecting every problem.

mod auth;
mod pipeline;
pub mod tls;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_core::{Cidr, CompileCx, Enforcement, IpTable, OnError, Slot};
use rampart_rules::{List, Lists};
use rampart_stages::iprules::IpRules;
use rampart_stages::waf::CustomRules;

use crate::model::{
    ApiConfig, ConfigFile, EventsConfig, LimitsConfig, ListenerConfig, ProxyConfig, UpstreamConfig,
};
use crate::snapshot::{
    Admin, Api, DeclaredOp, DiscoverySettings, Events, HostPattern, Limits, Listener, Output,
    ProxySettings, Recording, SessionSource, Snapshot, Source, Target, Upstream,
};

pub use pipeline::{build_pipeline, ApiStages};

/// Compiles a file model. `base_dir` is where relative paths (certificates, databases) start.
pub fn compile(
    file: &ConfigFile,
    base_dir: &Path,
    source: Source,
    cx: &mut CompileCx,
) -> Option<Snapshot> {
    let (lists, rule_lists) = cx.at("lists", |cx| compile_lists(&file.lists, cx));
    let listeners = cx.at("listeners", |cx| {
        compile_listeners(&file.listeners, base_dir, cx)
    });
    let admin = file.admin.as_ref().and_then(|a| {
        cx.at("admin", |cx| {
            let bind = cx.at("bind", |cx| parse_addr(&a.bind, cx));
            let token = match &a.token {
                Some(t) => cx
                    .at("token", |cx| resolve_secret(t, base_dir, cx))
                    .map(Some),
                None => Some(None),
            };
            let tls = match &a.tls {
                Some(t) => cx
                    .at("tls", |cx| tls::server_config(t, true, base_dir, cx))
                    .map(Some),
                None => Some(None),
            };
            let client_auth = a
                .tls
                .as_ref()
                .and_then(|t| t.client_auth.as_ref())
                .map(|c| c.mode)
                .unwrap_or_default();
            Some(Admin {
                bind: bind?,
                token: token?,
                token_hash_file: resolve_path(base_dir, &a.token_hash_file),
                tls: tls?,
                client_auth,
            })
        })
    });
    let upstreams = cx.at("upstreams", |cx| {
        let mut out = BTreeMap::new();
        for (name, u) in &file.upstreams {
            if let Some(up) = cx.at(name.clone(), |cx| compile_upstream(name, u, base_dir, cx)) {
                out.insert(name.clone(), Arc::new(up));
            }
        }
        out
    });
    let global_ip = cx
        .at("ip_rules", |cx| {
            IpRules::compile(&file.ip_rules, &lists, cx)
        })
        .map(Arc::new);
    let mtls_listener = listeners
        .iter()
        .any(|l| l.client_auth != crate::model::ClientAuthMode::Off);
    let auth = auth::compile_auth(file, base_dir, mtls_listener, cx);
    let rule_ids = custom_rule_ids(file, cx);
    let global_waf = cx
        .at("waf", |cx| {
            CustomRules::compile(&file.waf, &rule_lists, &rule_ids, cx)
        })
        .filter(|r| !r.is_empty())
        .map(Arc::new);
    let global_limits = cx
        .at("rate_limits", |cx| {
            rampart_stages::ratelimit::RateLimits::compile(&file.rate_limits, &rule_lists, cx)
        })
        .map(Arc::new);
    if file.state.max_keys < 64 {
        cx.at("state", |cx| {
            cx.at("max_keys", |cx| cx.error("must be at least 64"))
        });
    }
    let ddos = cx.at("ddos", |cx| {
        rampart_stages::ddos::DdosGuard::compile(&file.ddos, cx)
    });
    let global_crs = file.waf.crs.as_ref().and_then(|c| {
        cx.at("waf", |cx| {
            cx.at("crs", |cx| {
                rampart_stages::waf::CrsRules::compile(c, base_dir, cx)
            })
        })
    });
    let global_dlp = file.dlp.as_ref().and_then(|d| {
        cx.at("dlp", |cx| {
            rampart_stages::dlp::Dlp::compile(d, base_dir, cx)
        })
    });
    let uses_limits = ddos.is_some()
        || !file.rate_limits.is_empty()
        || file.apis.iter().any(|a| !a.rate_limits.is_empty());
    let limit_store = cx.at("state", |cx| {
        compile_state(&file.state, uses_limits, base_dir, cx)
    });
    let mut names = HashSet::new();
    let apis: Vec<Arc<Api>> = cx.at("apis", |cx| {
        file.apis
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                cx.at(format!("[{i}]"), |cx| {
                    if !names.insert(a.name.clone()) {
                        cx.at("name", |cx| {
                            cx.error(format!("duplicate API name \"{}\"", a.name))
                        });
                    }
                    compile_api(
                        a,
                        &upstreams,
                        &file.upstreams,
                        Shared {
                            lists: &lists,
                            rule_lists: &rule_lists,
                            rule_ids: &rule_ids,
                            global_ip: global_ip.as_ref(),
                            global_waf: global_waf.as_ref(),
                            auth: &auth,
                            base_dir,
                            global_limits: global_limits.as_ref(),
                            ddos: ddos.as_ref(),
                            limit_store: limit_store.as_ref(),
                            global_dlp: global_dlp.as_ref(),
                            global_crs: global_crs.as_ref(),
                        },
                        cx,
                    )
                })
            })
            .map(Arc::new)
            .collect()
    });
    let events = cx.at("events", |cx| compile_events(&file.events, base_dir, cx));
    let discovery = cx.at("discovery", |cx| {
        let d = &file.discovery;
        let mut ok = true;
        if d.channel_capacity == 0 {
            cx.at("channel_capacity", |cx| cx.error("must be greater than 0"));
            ok = false;
        }
        if d.max_nodes_per_api < 100 {
            cx.at("max_nodes_per_api", |cx| cx.error("must be at least 100"));
            ok = false;
        }
        let mut session = Vec::new();
        for (i, s) in d.session.iter().enumerate() {
            let src = match s.split_once(':') {
                None if s == "identity.consumer" => Some(SessionSource::Consumer),
                Some(("claim", n)) if !n.is_empty() => Some(SessionSource::Claim(n.to_owned())),
                Some(("cookie", n)) if !n.is_empty() => Some(SessionSource::Cookie(n.to_owned())),
                Some(("header", n)) => http::HeaderName::from_bytes(n.as_bytes())
                    .ok()
                    .map(SessionSource::Header),
                _ => None,
            };
            match src {
                Some(x) => session.push(x),
                None => {
                    cx.at(format!("session[{i}]"), |cx| {
                        cx.error(format!(
                            "\"{s}\" is not a session source: identity.consumer, claim:NAME, header:NAME or cookie:NAME"
                        ))
                    });
                    ok = false;
                }
            }
        }
        ok.then(|| {
            d.enabled.then_some(DiscoverySettings {
                state: (d.state != "off" && !d.state.is_empty()).then(|| base_dir.join(&d.state)),
                session,
                channel_capacity: d.channel_capacity as usize,
                max_nodes_per_api: d.max_nodes_per_api as usize,
                orphan_after: Duration::from_secs(d.orphan_after_secs),
            })
        })
    });
    let recording = cx.at("recording", |cx| {
        compile_recording(&file.recording, base_dir, cx)
    });
    let proxy = cx
        .at("proxy", |cx| compile_proxy(&file.proxy, cx))
        .map(|mut p| {
            p.identity_headers = auth.identity_headers.clone();
            p
        });
    if file.listeners.is_empty() {
        cx.at("listeners", |cx| {
            cx.error("at least one listener is needed")
        });
    }
    let unrouted = build_pipeline(ApiStages {
        global_ip: global_ip.as_ref(),
        ddos: ddos.clone(),
        waf_custom: global_waf.as_slice(),
        ..ApiStages::default()
    });
    if !cx.is_ok() {
        return None;
    }
    Some(Snapshot {
        listeners,
        admin,
        upstreams,
        apis,
        unrouted,
        lists,
        events: events?,
        recording: recording?,
        discovery: discovery?,
        proxy: proxy?,
        key_sources: auth.key_sources,
        limit_store,
        ddos,
        source,
    })
}

/// The rate-limit store: none when no API limits anything.
fn compile_state(
    state: &crate::model::StateConfig,
    used: bool,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<rampart_stages::ratelimit::Backend> {
    use rampart_stages::ratelimit::{Backend, RedisStore, SharedStore};
    match state.store {
        crate::model::StoreKind::Memory => {
            if state.url.is_some() {
                cx.at("url", |cx| {
                    cx.error_with_help(
                        "a URL is for `store: redis`",
                        "set `store: redis`, or remove the URL",
                    )
                });
            }
            used.then(|| Backend::Memory(Arc::new(SharedStore::new(state.max_keys))))
        }
        crate::model::StoreKind::Redis => {
            let Some(url) = &state.url else {
                cx.at("url", |cx| {
                    cx.error("`store: redis` needs a URL (redis://host:6379/0, or env:NAME)")
                });
                return None;
            };
            let url = cx.at("url", |cx| resolve_secret(url, base_dir, cx))?;
            if state.timeout_ms == 0 {
                cx.at("timeout_ms", |cx| cx.error("must be at least 1"));
                return None;
            }
            let store = RedisStore::new(
                url.trim(),
                std::time::Duration::from_millis(state.timeout_ms),
                &state.key_prefix,
                state.on_error == crate::model::StoreOnError::Deny,
                state.max_keys,
            );
            match store {
                Ok(s) => used.then(|| Backend::Redis(Arc::new(s))),
                Err(e) => {
                    cx.at("url", |cx| cx.error(e));
                    None
                }
            }
        }
    }
}

/// Compiles the named lists: address lists (for `ip_rules` and rules) and string lists (for
/// rules only). A list is an address list when its first entry is an address or a prefix.
fn compile_lists(
    lists: &BTreeMap<String, Vec<String>>,
    cx: &mut CompileCx,
) -> (HashMap<String, Vec<Cidr>>, Lists) {
    let mut out = HashMap::new();
    let mut rule_lists = Lists::new();
    for (name, entries) in lists {
        cx.at(name.clone(), |cx| {
            if entries.is_empty() {
                cx.error("a list needs at least one entry");
                return;
            }
            match List::from_entries(entries) {
                Ok(list) => {
                    if let List::Ip(_) = list {
                        let v = entries
                            .iter()
                            .filter_map(|e| e.parse::<Cidr>().ok())
                            .collect();
                        out.insert(name.clone(), v);
                    }
                    rule_lists.insert(name.clone(), list);
                }
                Err((i, message)) => cx.at(format!("[{i}]"), |cx| cx.error(message)),
            }
        });
    }
    (out, rule_lists)
}

/// Collects every custom rule id (global, then each API's) and reports duplicates: ids name
/// rules in events and in `skip` lists, so they are unique in the whole config.
fn custom_rule_ids(file: &ConfigFile, cx: &mut CompileCx) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut check = |rules: &[rampart_stages::waf::CustomRuleConfig], cx: &mut CompileCx| {
        cx.at("waf", |cx| {
            cx.at("custom", |cx| {
                for (i, r) in rules.iter().enumerate() {
                    if !seen.insert(r.id.clone()) {
                        cx.at(format!("[{i}]"), |cx| {
                            cx.at("id", |cx| {
                                cx.error(format!("duplicate custom rule id \"{}\"", r.id))
                            })
                        });
                    }
                    ids.push(r.id.clone());
                }
            })
        });
    };
    check(&file.waf.custom, cx);
    cx.at("apis", |cx| {
        for (i, a) in file.apis.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| check(&a.waf.custom, cx));
        }
    });
    ids
}

/// What every API's compilation shares.
struct Shared<'a> {
    lists: &'a HashMap<String, Vec<Cidr>>,
    rule_lists: &'a Lists,
    rule_ids: &'a [String],
    global_ip: Option<&'a Arc<IpRules>>,
    global_waf: Option<&'a Arc<CustomRules>>,
    auth: &'a auth::Auth,
    base_dir: &'a Path,
    global_limits: Option<&'a Arc<rampart_stages::ratelimit::RateLimits>>,
    ddos: Option<&'a Arc<rampart_stages::ddos::DdosGuard>>,
    limit_store: Option<&'a rampart_stages::ratelimit::Backend>,
    global_dlp: Option<&'a Arc<rampart_stages::dlp::Dlp>>,
    global_crs: Option<&'a Arc<rampart_stages::waf::CrsRules>>,
}

fn compile_listeners(
    ls: &[ListenerConfig],
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Vec<Arc<Listener>> {
    let mut names = HashSet::new();
    let mut binds = HashSet::new();
    let mut out = Vec::new();
    for (i, l) in ls.iter().enumerate() {
        cx.at(format!("[{i}]"), |cx| {
            if !names.insert(l.name.clone()) {
                cx.at("name", |cx| {
                    cx.error(format!("duplicate listener name \"{}\"", l.name))
                });
            }
            let bind = cx.at("bind", |cx| {
                let a = parse_addr(&l.bind, cx)?;
                if !binds.insert(a) {
                    cx.error(format!("address \"{a}\" is bound by another listener"));
                }
                Some(a)
            });
            let tls = match &l.tls {
                Some(t) => cx
                    .at("tls", |cx| tls::server_config(t, l.http2, base_dir, cx))
                    .map(Some),
                None => Some(None),
            };
            let client_auth = l
                .tls
                .as_ref()
                .and_then(|t| t.client_auth.as_ref())
                .map(|c| c.mode)
                .unwrap_or_default();
            let limits = cx.at("limits", |cx| compile_limits(&l.limits, cx));
            let mut trusted = IpTable::new();
            cx.at("trusted_proxies", |cx| {
                for (j, p) in l.trusted_proxies.iter().enumerate() {
                    cx.at(format!("[{j}]"), |cx| match p.parse::<Cidr>() {
                        Ok(c) => {
                            trusted.insert(c, ());
                        }
                        Err(e) => cx.error(e.to_string()),
                    });
                }
            });
            if let (Some(bind), Some(tls), Some(limits)) = (bind, tls, limits) {
                out.push(Arc::new(Listener {
                    name: Arc::from(l.name.as_str()),
                    bind,
                    tls,
                    client_auth,
                    limits,
                    trusted_proxies: trusted,
                    http2: l.http2,
                }));
            }
        });
    }
    out
}

fn compile_limits(l: &LimitsConfig, cx: &mut CompileCx) -> Option<Limits> {
    let before = cx.diagnostics().len();
    let positive = |cx: &mut CompileCx, key: &str, v: u64| {
        if v == 0 {
            cx.at(key.to_owned(), |cx| cx.error("must be greater than 0"));
        }
    };
    positive(cx, "max_connections", u64::from(l.max_connections));
    positive(
        cx,
        "max_connections_per_ip",
        u64::from(l.max_connections_per_ip),
    );
    positive(cx, "header_read_timeout_ms", l.header_read_timeout_ms);
    positive(cx, "handshake_timeout_ms", l.handshake_timeout_ms);
    positive(cx, "idle_timeout_ms", l.idle_timeout_ms);
    positive(
        cx,
        "h2_max_concurrent_streams",
        u64::from(l.h2_max_concurrent_streams),
    );
    if l.max_header_bytes < 1024 {
        cx.at("max_header_bytes", |cx| cx.error("must be at least 1024"));
    }
    if l.max_headers == 0 {
        cx.at("max_headers", |cx| cx.error("must be greater than 0"));
    }
    (cx.diagnostics().len() == before).then(|| Limits {
        max_connections: l.max_connections as usize,
        // A per-IP cap above the listener cap means no per-IP cap: clamp it.
        max_connections_per_ip: l.max_connections_per_ip.min(l.max_connections) as usize,
        handshake_timeout: Duration::from_millis(l.handshake_timeout_ms),
        header_read_timeout: Duration::from_millis(l.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(l.idle_timeout_ms),
        max_header_bytes: l.max_header_bytes as usize,
        max_headers: l.max_headers as usize,
        max_body_bytes: l.max_body_bytes,
        min_body_rate_bytes_per_sec: l.min_body_rate_bytes_per_sec,
        body_rate_grace: Duration::from_millis(l.body_rate_grace_ms),
        h2_max_concurrent_streams: l.h2_max_concurrent_streams,
        h2_max_pending_reset_streams: l.h2_max_pending_reset_streams as usize,
    })
}

fn compile_upstream(
    name: &str,
    u: &UpstreamConfig,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<Upstream> {
    let before = cx.diagnostics().len();
    let mut targets = Vec::new();
    cx.at("targets", |cx| {
        if u.targets.is_empty() {
            cx.error("at least one target is needed");
        }
        for (i, t) in u.targets.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| match parse_target(t) {
                Ok(t) => targets.push(t),
                Err(e) => cx.error(e),
            });
        }
    });
    if u.connect_timeout_ms == 0 {
        cx.at("connect_timeout_ms", |cx| {
            cx.error("must be greater than 0")
        });
    }
    if u.request_timeout_ms == 0 {
        cx.at("request_timeout_ms", |cx| {
            cx.error("must be greater than 0")
        });
    }
    let needs_tls = targets
        .iter()
        .any(|t: &Target| t.scheme == http::uri::Scheme::HTTPS);
    let tls = if needs_tls || u.tls.is_some() {
        let cfg = u.tls.clone().unwrap_or_default();
        cx.at("tls", |cx| tls::client_config(&cfg, base_dir, cx))
    } else {
        None
    };
    (cx.diagnostics().len() == before).then(|| Upstream {
        name: Arc::from(name),
        targets,
        connect_timeout: Duration::from_millis(u.connect_timeout_ms),
        request_timeout: Duration::from_millis(u.request_timeout_ms),
        tls,
        tls_server_name: u.tls.as_ref().and_then(|t| t.server_name.clone()),
        max_failures: u.health.max_failures.max(1),
        cooldown: Duration::from_millis(u.health.cooldown_ms),
        max_idle_per_target: u.max_idle_per_target as usize,
        pool_idle_timeout: Duration::from_millis(u.pool_idle_timeout_ms),
        retries: u.retries,
    })
}

fn parse_target(t: &str) -> Result<Target, String> {
    let uri: http::Uri = t.parse().map_err(|_| format!("\"{t}\" is not a URL"))?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or_else(|| format!("\"{t}\" needs a scheme (http:// or https://)"))?;
    if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
        return Err(format!("\"{t}\": the scheme must be http or https"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("\"{t}\" needs a host"))?;
    if uri.query().is_some() {
        return Err(format!("\"{t}\": a target cannot have a query"));
    }
    let path_prefix = uri.path().trim_end_matches('/').to_owned();
    Ok(Target {
        scheme,
        authority,
        path_prefix,
    })
}

fn compile_api(
    a: &ApiConfig,
    upstreams: &BTreeMap<String, Arc<Upstream>>,
    declared: &BTreeMap<String, UpstreamConfig>,
    shared: Shared<'_>,
    cx: &mut CompileCx,
) -> Option<Api> {
    let before = cx.diagnostics().len();
    let upstream = cx.at("upstream", |cx| match upstreams.get(&a.upstream) {
        Some(u) => Some(u.clone()),
        None => {
            // An upstream that is declared but failed to compile was already reported.
            if !declared.contains_key(&a.upstream) {
                cx.unknown("upstream", &a.upstream, declared.keys());
            }
            None
        }
    });
    let hosts = cx.at("hosts", |cx| {
        a.hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| cx.at(format!("[{i}]"), |cx| host_pattern(h, cx)))
            .collect::<Vec<_>>()
    });
    let base_path = cx.at("base_path", |cx| {
        if !a.base_path.starts_with('/') || a.base_path.contains(['?', '#', ' ']) {
            cx.error(format!(
                "\"{}\" must be a path starting with /",
                a.base_path
            ));
        }
        let trimmed = a.base_path.trim_end_matches('/');
        if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        }
    });
    let ip = cx
        .at("ip_rules", |cx| {
            IpRules::compile(&a.ip_rules, shared.lists, cx)
        })
        .filter(|r| !r.is_empty())
        .map(Arc::new);
    if a.request_body.max_inspect_bytes == 0 {
        cx.at("request_body", |cx| {
            cx.at("max_inspect_bytes", |cx| cx.error("must be greater than 0"))
        });
    }
    let waf = cx
        .at("waf", |cx| {
            CustomRules::compile(&a.waf, shared.rule_lists, shared.rule_ids, cx)
        })
        .filter(|r| !r.is_empty())
        .map(Arc::new);
    let authn = a.authn.as_ref().and_then(|authn| {
        cx.at("authn", |cx| {
            auth::compile_authn(authn, &a.name, shared.auth, cx)
        })
    });
    let api_limits = cx
        .at("rate_limits", |cx| {
            rampart_stages::ratelimit::RateLimits::compile(&a.rate_limits, shared.rule_lists, cx)
        })
        .map(Arc::new);
    let schema = match (&a.openapi, &a.schema) {
        (Some(file), config) => {
            let config = config.clone().unwrap_or_default();
            let path = shared.base_dir.join(file);
            // The document's paths are the upstream's: when the gateway strips the API's base
            // path, it is the prefix of the document's server paths.
            let base = if a.strip_base_path {
                a.base_path.as_str()
            } else {
                ""
            };
            rampart_stages::schema::Schema::compile(&path, file, &config, base, cx)
        }
        (None, Some(_)) => {
            cx.at("schema", |cx| {
                cx.error_with_help(
                    "schema validation needs the API's OpenAPI document",
                    "add `openapi: path/to/openapi.yaml` to the API",
                )
            });
            None
        }
        (None, None) => None,
    };
    let authz = cx
        .at("authz", |cx| {
            rampart_stages::authz::Policies::compile(
                &a.authz,
                shared.rule_lists,
                a.openapi.is_some(),
                cx,
            )
        })
        .filter(|p| !p.is_empty())
        .map(|p| Slot {
            stage: Arc::new(rampart_stages::authz::AuthzStage::new(Arc::new(p))),
            enforcement: Enforcement::Enforce,
            on_error: OnError::Deny,
        });
    let declared: Vec<DeclaredOp> = schema
        .as_ref()
        .map(|s| {
            s.spec()
                .operations()
                .iter()
                .map(|o| DeclaredOp {
                    id: o.id.clone(),
                    method: o.method.as_str().to_owned(),
                    path: o.path.clone(),
                    deprecated: o.deprecated,
                })
                .collect()
        })
        .unwrap_or_default();
    let declared_prefixes = schema
        .as_ref()
        .map(|s| s.prefixes().to_vec())
        .unwrap_or_default();
    if let Some(schema) = &schema {
        let known: Vec<&str> = schema.spec().operations().iter().map(|o| &*o.id).collect();
        cx.at("authz", |cx| {
            for (i, p) in a.authz.iter().enumerate() {
                if let Some(op) = &p.operation {
                    if !known.contains(&op.as_str()) {
                        cx.at(format!("[{i}]"), |cx| {
                            cx.at("operation", |cx| cx.unknown("operation", op, &known))
                        });
                    }
                }
            }
        });
    }
    // An API's own managed rules replace the global ones.
    let crs = match &a.waf.crs {
        Some(c) => cx.at("waf", |cx| {
            cx.at("crs", |cx| {
                rampart_stages::waf::CrsRules::compile(c, shared.base_dir, cx)
            })
        }),
        None => shared.global_crs.cloned(),
    };
    // An API's own section replaces the global one.
    let dlp = match &a.dlp {
        Some(d) => cx.at("dlp", |cx| {
            rampart_stages::dlp::Dlp::compile(d, shared.base_dir, cx)
        }),
        None => shared.global_dlp.cloned(),
    };
    if cx.diagnostics().len() != before {
        return None;
    }
    let waf_sections: Vec<Arc<CustomRules>> = shared
        .global_waf
        .into_iter()
        .chain(waf.as_ref())
        .cloned()
        .collect();
    Some(Api {
        declared,
        declared_prefixes,
        name: Arc::from(a.name.as_str()),
        hosts,
        base_path,
        strip_base_path: a.strip_base_path,
        upstream: upstream?,
        pipeline: build_pipeline(ApiStages {
            global_ip: shared.global_ip,
            api_ip: ip.as_ref(),
            waf_custom: &waf_sections,
            authn,
            authz,
            ddos: shared.ddos.cloned(),
            ratelimit: shared.limit_store.and_then(|store| {
                let sections: Vec<_> = shared
                    .global_limits
                    .into_iter()
                    .cloned()
                    .chain(api_limits)
                    .collect();
                rampart_stages::ratelimit::RateLimitStage::new(sections, store.clone())
            }),
            schema,
            dlp,
            crs,
        }),
        max_inspect_bytes: a.request_body.max_inspect_bytes,
        oversize: a.request_body.oversize,
    })
}

fn host_pattern(h: &str, cx: &mut CompileCx) -> Option<HostPattern> {
    let h = h.to_ascii_lowercase();
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if let Some(suffix) = h.strip_prefix("*.") {
        if valid(suffix) {
            return Some(HostPattern::Wildcard(format!(".{suffix}")));
        }
    } else if valid(&h) {
        return Some(HostPattern::Exact(h));
    }
    cx.error(format!("\"{h}\" is not a host name or *.wildcard"));
    None
}

fn compile_events(e: &EventsConfig, base_dir: &Path, cx: &mut CompileCx) -> Option<Events> {
    if e.channel_capacity == 0 {
        cx.at("channel_capacity", |cx| cx.error("must be greater than 0"));
        return None;
    }
    Some(Events {
        sqlite: (e.sqlite != "off").then(|| base_dir.join(&e.sqlite)),
        retention: Duration::from_secs(u64::from(e.retention_days) * 86_400),
        max_events: e.max_events,
        max_bytes: e.max_bytes,
        jsonl: output(&e.jsonl, base_dir),
        channel_capacity: e.channel_capacity as usize,
        access_log: output(&e.access_log, base_dir),
    })
}

/// `None` when the section has problems; `Some(None)` when recording is off.
fn compile_recording(
    r: &crate::model::RecordingConfig,
    base_dir: &Path,
    cx: &mut CompileCx,
) -> Option<Option<Recording>> {
    let mut ok = true;
    if !(r.sample_rate > 0.0 && r.sample_rate <= 1.0) {
        cx.at("sample_rate", |cx| {
            cx.error("must be more than 0 and at most 1 (1 records every request)")
        });
        ok = false;
    }
    if r.channel_capacity == 0 {
        cx.at("channel_capacity", |cx| cx.error("must be greater than 0"));
        ok = false;
    }
    if r.max_file_bytes < 4096 {
        cx.at("max_file_bytes", |cx| cx.error("must be at least 4096"));
        ok = false;
    }
    if r.path.is_empty() {
        cx.at("path", |cx| cx.error("a file path is needed"));
        ok = false;
    }
    for (i, h) in r.redact_headers.iter().enumerate() {
        if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            cx.at(format!("redact_headers[{i}]"), |cx| {
                cx.error(format!("\"{h}\" is not a valid header name"))
            });
            ok = false;
        }
    }
    let key = match &r.hmac_key {
        Some(k) => match cx.at("hmac_key", |cx| resolve_secret(k, base_dir, cx)) {
            Some(k) if k.len() < 16 => {
                cx.at("hmac_key", |cx| {
                    cx.error("the HMAC key must be at least 16 bytes")
                });
                return None;
            }
            Some(k) => Some(k),
            None => return None,
        },
        None => None,
    };
    if !ok {
        return None;
    }
    if !r.enabled {
        return Some(None);
    }
    Some(Some(Recording {
        writer: rampart_traffic::WriterConfig {
            path: base_dir.join(&r.path),
            max_bytes: r.max_file_bytes,
            max_files: r.max_files,
        },
        sample_rate: r.sample_rate,
        max_body_bytes: r.max_body_bytes,
        hmac_key: key,
        redact: rampart_traffic::RedactPolicy {
            headers: r
                .redact_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            query_params: r.redact_query_params.clone(),
        },
        channel_capacity: r.channel_capacity as usize,
        insecure_unmasked_bodies: r.insecure_unmasked_bodies,
        insecure_record_secrets: r.insecure_record_secrets,
    }))
}

fn output(s: &str, base_dir: &Path) -> Output {
    match s {
        "off" | "" => Output::Off,
        "stdout" => Output::Stdout,
        path => Output::File(base_dir.join(path)),
    }
}

fn compile_proxy(p: &ProxyConfig, cx: &mut CompileCx) -> Option<ProxySettings> {
    let header = |cx: &mut CompileCx, key: &str, v: &str| {
        cx.at(key.to_owned(), |cx| {
            match http::HeaderName::from_bytes(v.as_bytes()) {
                Ok(h) => Some(h),
                Err(_) => {
                    cx.error(format!("\"{v}\" is not a valid header name"));
                    None
                }
            }
        })
    };
    let rid = header(cx, "request_id_header", &p.request_id_header);
    let cc = header(cx, "client_cert_header", &p.client_cert_header);
    Some(ProxySettings {
        request_id_header: rid?,
        client_cert_header: cc?,
        shutdown_grace: Duration::from_millis(p.shutdown_grace_ms),
        trust_request_id_from_proxies: p.trust_request_id_from_proxies,
        identity_headers: Vec::new(),
    })
}

fn parse_addr(s: &str, cx: &mut CompileCx) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let port_out_of_range = s
        .rsplit_once(':')
        .filter(|(ip, _)| {
            ip.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok()
        })
        .is_some_and(|(_, port)| port.parse::<u64>().is_ok());
    if port_out_of_range {
        cx.error_with_help(
            format!("\"{s}\" is not a socket address"),
            "the port must be between 0 and 65535",
        );
    } else if s.parse::<std::net::IpAddr>().is_ok() {
        cx.error_with_help(
            format!("\"{s}\" is not a socket address"),
            "add a port, as in 0.0.0.0:8080",
        );
    } else {
        cx.error_with_help(
            format!("\"{s}\" is not a socket address"),
            "write an IP and a port, as in 127.0.0.1:8080 or [::]:8443",
        );
    }
    None
}

pub use rampart_core::secret::{resolve_path, resolve_secret};
