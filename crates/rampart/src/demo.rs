//! `rampart demo`: a small users/orders JSON API served in-process on loopback, with the
//! gateway in front of it and every stage that exists switched on.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_proxy::Gateway;
use tokio::net::TcpListener;

/// The demo API's OpenAPI document (served by the demo API at `/openapi.json`, and enforced by
/// the gateway's schema stage).
pub(crate) const OPENAPI: &str = include_str!("demo_openapi.json");

/// Starts the demo API on a free loopback port and returns its address.
pub(crate) async fn start_demo_api() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let next_order = Arc::new(AtomicU64::new(1001));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let next_order = next_order.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| demo_api(req, next_order.clone()));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn user(id: u64) -> serde_json::Value {
    let names = [
        "Ada Lovelace",
        "Alan Turing",
        "Grace Hopper",
        "Edsger Dijkstra",
        "Barbara Liskov",
    ];
    let name = names[usize::try_from(id % 5).unwrap_or(0)];
    serde_json::json!({ "id": id, "name": name, "email": format!("user{id}@example.com"), "plan": if id.is_multiple_of(2) { "pro" } else { "free" } })
}

async fn demo_api(
    req: Request<Incoming>,
    next_order: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    Ok(match (req.method(), segs.as_slice()) {
        (&Method::GET, ["health"]) => json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        (&Method::GET, ["openapi.json"]) => {
            let mut r = Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            r
        }
        (&Method::GET, ["users"]) => {
            let q: Vec<(String, String)> =
                form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
            let arg = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let limit = arg("limit")
                .and_then(|l| l.parse::<u64>().ok())
                .unwrap_or(5)
                .clamp(1, 100);
            let users: Vec<serde_json::Value> = (1..=1000)
                .map(user)
                .filter(|u| arg("plan").is_none_or(|p| u["plan"] == p))
                .take(usize::try_from(limit).unwrap_or(5))
                .collect();
            json(StatusCode::OK, &serde_json::json!({ "users": users }))
        }
        (&Method::GET, ["users", id]) => match id.parse::<u64>() {
            Ok(id) if (1..=1000).contains(&id) => json(StatusCode::OK, &user(id)),
            _ => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "no such user" }),
            ),
        },
        (&Method::GET, ["users", id, "billing"]) => match id.parse::<u64>() {
            // Test card numbers and IBANs (they pass the checksums): the gateway masks them.
            Ok(id) if (1..=1000).contains(&id) => {
                let cards = [
                    "4111 1111 1111 1111",
                    "5555 5555 5555 4444",
                    "3782 822463 10005",
                ];
                let ibans = ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"];
                let i = usize::try_from(id).unwrap_or(0);
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "user_id": id, "card": cards[i % 3], "iban": ibans[i % 2] }),
                )
            }
            _ => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "no such user" }),
            ),
        },
        (&Method::GET, ["orders"]) => json(
            StatusCode::OK,
            &serde_json::json!({ "orders": [
                { "id": 1000, "user_id": 1, "item": "keyboard", "quantity": 1, "total_cents": 4900 },
                { "id": 999, "user_id": 2, "item": "monitor", "quantity": 2, "total_cents": 39800 }
            ] }),
        ),
        (&Method::POST, ["orders"]) => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(mut order) if order.is_object() => {
                    order["id"] = next_order.fetch_add(1, Ordering::Relaxed).into();
                    json(StatusCode::CREATED, &order)
                }
                _ => json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": "expected a JSON object" }),
                ),
            }
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "not found" }),
        ),
    })
}

/// The demo's CRS exclusions, included after the rules.
const CRS_EXCLUSIONS: &str =
    "# The demo's exclusions, read after the CRS (SecLang, as for ModSecurity).\n\
# The demo is called as http://127.0.0.1:PORT: a numeric Host is expected here.\n\
SecRuleRemoveById 920350\n";

/// Where the OWASP CRS usually is: `RAMPART_CRS` (a CRS checkout or its `rules`), then the
/// places distributions install it.
pub(crate) fn find_crs() -> Option<PathBuf> {
    let env = std::env::var_os("RAMPART_CRS").map(PathBuf::from);
    let candidates = env.iter().flat_map(|p| [p.join("rules"), p.clone()]).chain(
        [
            "/usr/share/modsecurity-crs/rules",
            "/usr/share/coreruleset/rules",
            "/usr/share/owasp-modsecurity-crs/rules",
            "/usr/share/mod_modsecurity_crs/rules",
            "/etc/crs4/rules",
            "/opt/coreruleset/rules",
            "/usr/local/coreruleset/rules",
        ]
        .map(PathBuf::from),
    );
    candidates
        .into_iter()
        .find(|p| p.join("REQUEST-949-BLOCKING-EVALUATION.conf").is_file())
}

/// The gateway configuration of the demo; with the CRS when `crs` (its `rules` directory) is
/// given.
pub(crate) fn demo_config(
    port: u16,
    tls_port: u16,
    admin_port: u16,
    api: SocketAddr,
    auth: &crate::demo_auth::DemoAuth,
    crs: Option<&Path>,
) -> String {
    let key_sha256 = &auth.api_key_sha256;
    let issuer = crate::demo_auth::ISSUER;
    let (crs, tester_skips) = match crs {
        Some(dir) => (
            format!(
                "  # The OWASP CRS, found at {dir} (docs/waf.md): blocking at paranoia level 1, with\n  # the demo's exclusions after it (SecLang, as for ModSecurity).\n  crs:\n    rules: [\"{dir}/*.conf\", crs-exclusions.conf]\n    paranoia_level: 1\n",
                dir = dir.display()
            ),
            "[ratelimit, waf.crs]",
        ),
        None => (String::new(), "[ratelimit]"),
    };
    format!(
        r#"# The demo configuration: the gateway in front of the built-in demo API.
listeners:
  - name: public
    bind: 127.0.0.1:{port}
    # The demo trusts loopback as a proxy, so that X-Forwarded-For can show the IP rules.
    trusted_proxies: [127.0.0.1/32, "::1/128"]
    limits:
      max_body_bytes: 1048576
      max_connections_per_ip: 512
  # TLS with optional client certificates: the partner's certificate authenticates it.
  - name: mtls
    bind: 127.0.0.1:{tls_port}
    tls:
      certificates: [{{ cert: server.pem, key: server.key }}]
      client_auth: {{ mode: optional, ca: ca.pem }}

admin:
  bind: 127.0.0.1:{admin_port}
  token: file:admin-token

upstreams:
  demo:
    targets: ["http://{api}"]
    connect_timeout_ms: 1000
    request_timeout_ms: 10000

lists:
  blocked_networks: [203.0.113.0/24, "2001:db8:bad::/48"]
  attack_tools: [sqlmap, nikto, masscan, nuclei]

ip_rules:
  - {{ id: demo-blocked-networks, action: block, lists: [blocked_networks] }}

# WAF custom rules (docs/rules.md). Global rules run for every API, before the API's own.
waf:
{crs}  custom:
    - id: trusted-tester
      description: the API test client CI runs against the demo (schemathesis) is not rate limited and its fuzzed inputs reach the schema checks
      when: 'ip.src in {{192.0.2.250}}'
      action: skip
      skip: {tester_skips}
    - id: attack-tool
      description: a known attack tool's user agent
      when: 'any(lower(http.request.headers["user-agent"]) wildcard "*sqlmap*") or http.request.headers["user-agent"] in $attack_tools'
      action: block

apis:
  - name: demo-api
    base_path: /api
    strip_base_path: true
    upstream: demo
    # The API's OpenAPI 3.1 document: what it does not describe is refused (docs/schema.md).
    openapi: openapi.json
    schema:
      request: enforce
      response: enforce
      unknown_endpoints: enforce
    # Rate limits (docs/ratelimit.md): orders are few per client; everything per client.
    rate_limits:
      - {{ name: orders-per-client, when: 'http.request.method == "POST"', key: ip.src, requests: 20, window_secs: 60, burst: 5 }}
      - {{ name: per-client, key: ip.src, requests: 6000, window_secs: 60 }}
    ip_rules:
      - {{ id: demo-partner-ban, action: block, list: [198.51.100.0/24] }}
    waf:
      custom:
        - id: numeric-user-id
          description: user ids are numbers
          when: 'starts_with(http.request.uri.path, "/api/users/") and not http.request.uri.path matches "^/api/users/[0-9]+(/billing)?$"'
          action: block
          status: 400
        - id: no-markup-in-items
          description: an order's item is a name, not markup
          when: 'http.request.method == "POST" and lower(http.request.body.json["/item"]) contains "<script"'
          action: block
          status: 400
        - id: debug-flag
          description: somebody is probing for a debug mode
          when: 'http.request.uri.args["debug"] == "1"'
          action: block
          enforcement: monitor

  # The partner API: the same demo API, behind authentication and authorization.
  - name: partner-api
    base_path: /partner
    strip_base_path: true
    upstream: demo
    authn: {{ methods: [demo-idp, api_key, mtls] }}
    rate_limits:
      - {{ name: per-consumer, key: identity.consumer, requests: 100, window_secs: 60 }}
    authz:
      # Staff (the partner application) may read everything.
      - {{ name: staff, when: '"staff" in identity.groups' }}
      # A user may read its own record only: asking for another's is refused (BOLA).
      - name: own-user
        methods: [GET]
        path: /partner/users/{{id}}
        require: 'http.request.path_params.id == identity.claims.sub'

# Data loss prevention for every API (docs/dlp.md): card numbers are masked in responses, a
# private key in a response refuses it, other credentials are masked, personal data is logged;
# a request carrying a credential is refused before it reaches the API.
dlp:
  action: log
  actions: {{ pci: mask, secrets: mask, private_key: block }}
  disable: [ip_address]
  requests: {{ profiles: [secrets], action: block }}

# Who may call the partner API (docs/auth.md).
consumers:
  - name: partner-app
    groups: [staff]
    credentials:
      - {{ type: api_key, key_sha256: "{key_sha256}" }}
      - {{ type: mtls, subject: "O=Rampart demo,CN=demo-partner" }}
identity_providers:
  demo-idp:
    type: jwt
    issuer: "{issuer}"
    audiences: [demo-api]
    jwks: file:jwks.json
    algorithms: [ES256]

events:
  sqlite: events.db
  jsonl: events.jsonl
  access_log: access.log

# Every exchange recorded (secrets replaced by HMACs, sensitive data masked) for
# `rampart replay` (docs/replay.md).
recording:
  enabled: true
  sample_rate: 1
  path: traffic.jsonl
"#
    )
}

/// Tests of the demo's rules, written beside its configuration (`rampart rules test`).
pub(crate) const DEMO_RULES_TEST: &str = r#"# The demo's rules, unit-tested: rampart rules test rules.test.yaml
config: rampart.yaml
tests:
  - name: a user by id passes
    request: { uri: /api/users/1, headers: { host: localhost } }
    expect: { action: pass, api: demo-api }
  - name: sqlmap is blocked
    request: { uri: /api/users/1, headers: { host: localhost, user-agent: sqlmap/1.7 } }
    expect: { action: block, rule: attack-tool, status: 403 }
  - name: an injection in the user id is a bad request
    request: { uri: "/api/users/1%20or%201=1", headers: { host: localhost } }
    expect: { action: block, rule: numeric-user-id, status: 400 }
  - name: a negative quantity breaks the OpenAPI document
    request:
      method: POST
      uri: /api/orders
      headers: { host: localhost }
      json: { user_id: 1, item: pen, quantity: -5 }
    expect: { action: block, stage: schema, rule: createOrder, status: 400 }
  - name: markup in an item is refused by a rule on the JSON body
    request:
      method: POST
      uri: /api/orders
      headers: { host: localhost }
      json: { user_id: 1, item: "<script>alert(1)</script>", quantity: 1 }
    expect: { action: block, rule: no-markup-in-items, status: 400 }
  - name: the debug flag is only watched
    request: { uri: "/api/users/1?debug=1", headers: { host: localhost } }
    expect: { action: pass, matched: [debug-flag] }
  - name: a blocked network is refused before any rule
    request: { uri: /api/users/1, headers: { host: localhost, user-agent: sqlmap }, client_ip: 203.0.113.7 }
    expect: { action: block, stage: iprules, rule: demo-blocked-networks }
  - name: the partner API needs a credential
    request: { uri: /partner/users/1, headers: { host: localhost } }
    expect: { action: block, stage: authn, status: 401 }
  - name: a user reads its own record
    request: { uri: /partner/users/1, headers: { host: localhost }, identity: { consumer: "1", claims: { sub: "1" } } }
    expect: { action: pass, api: partner-api }
  - name: a user cannot read another's record
    request: { uri: /partner/users/2, headers: { host: localhost }, identity: { consumer: "1", claims: { sub: "1" } } }
    expect: { action: block, stage: authz, rule: own-user, status: 403 }
  - name: staff read every record
    request: { uri: /partner/users/2, headers: { host: localhost }, identity: { consumer: partner-app, groups: [staff] } }
    expect: { action: pass, matched: [] }
"#;

pub(crate) async fn run(
    port: u16,
    tls_port: u16,
    admin_port: u16,
    exit_after_secs: Option<u64>,
) -> ExitCode {
    let api = match start_demo_api().await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot start the demo API: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("rampart-demo-{}", std::process::id()));
    let token = demo_token();
    let config = dir.join("rampart.yaml");
    let crs = find_crs();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let auth = match crate::demo_auth::make(&dir, now_secs) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot make the demo's credentials: {e}");
            return ExitCode::from(2);
        }
    };
    let written = std::fs::write(dir.join("admin-token"), &token)
        .and_then(|()| {
            std::fs::write(
                &config,
                demo_config(port, tls_port, admin_port, api, &auth, crs.as_deref()),
            )
        })
        .and_then(|()| std::fs::write(dir.join("rules.test.yaml"), DEMO_RULES_TEST))
        .and_then(|()| std::fs::write(dir.join("crs-exclusions.conf"), CRS_EXCLUSIONS))
        .and_then(|()| std::fs::write(dir.join("openapi.json"), OPENAPI));
    if let Err(e) = written {
        eprintln!(
            "error: cannot write the demo configuration in {}: {e}",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let snapshot = match rampart_config::load_file(&config) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(1);
        }
    };
    let gateway = match Gateway::start(snapshot, Some(config.clone())).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}\nhint: choose other ports with --port and --admin-port");
            return ExitCode::from(2);
        }
    };
    let _admin = match crate::start_admin(&gateway).await {
        Ok(a) => a,
        Err(code) => {
            gateway.shutdown().await;
            return code;
        }
    };
    let _watch =
        rampart_proxy::spawn_reload_watchers(gateway.shared().clone(), Duration::from_secs(1));
    let _traffic = tokio::spawn(background_traffic(port));
    let base = format!("http://127.0.0.1:{port}");
    let admin = format!("http://127.0.0.1:{admin_port}");
    let msg = format!(
        r#"
Rampart demo is running.

  gateway     {base}/api/...  (in front of the demo API on http://{api})
  dashboard   {admin}/ui/   (log in with the token below; a little background traffic keeps it busy)
  admin API   {admin}/api/v1/   token: {token}
  config      {config}   (edit it: the gateway reloads on save)
  openapi     {spec}   (the demo API's OpenAPI 3.1 document, enforced)
  events      {events}   (SQLite) and {jsonl} (JSON lines)
  traffic     {traffic}   (every exchange recorded, for rampart replay)
  CRS         {crs_line}

Try:
  curl -i {base}/api/users/1                                          # 200, through the gateway
  curl -i {base}/api/orders -H 'content-type: application/json' -d '{{"user_id":1,"item":"pen","quantity":2}}'
  curl -i {base}/api/users/1 -H 'X-Forwarded-For: 203.0.113.7'        # 403 forbidden: ip_rules (blocked network)
  curl -i {base}/api/users/1 -H 'X-Forwarded-For: 198.51.100.20'      # 403 forbidden: the API's own ip_rules
  curl -i {base}/api/users/1 -A 'sqlmap/1.7'                          # 403 waf_rule_match: custom rule attack-tool
  curl -i "{base}/api/users/1%20or%201=1"                             # 400 waf_rule_match: custom rule numeric-user-id
  curl -i {base}/api/orders -H 'content-type: application/json' -d '{{"user_id":1,"item":"<script>x</script>","quantity":1}}'   # 400: a rule on the JSON body
  curl -i "{base}/api/users/1?debug=1"                                # 200, and a would_block event (a rule in monitor mode)
  curl -i {base}/api/users/1 -A '() {{ :; }}; echo vulnerable'         # 403 waf_rule_match: the OWASP CRS (Shellshock, 932170), when found
  curl -i "{base}/api/users?limit=500"                                # 400 application/problem+json: /query/limit must be <= 100 (OpenAPI)
  curl -i {base}/api/orders -H 'content-type: application/json' -d '{{"user_id":1,"item":"pen","quantity":2,"coupon":"FREE"}}'   # 400: an undeclared property
  curl -i {base}/api/orders -H 'content-type: text/plain' -d 'pen'      # 415: a media type the operation does not take
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{{http_code}} ' {base}/api/orders -H 'content-type: application/json' -d '{{"user_id":1,"item":"pen","quantity":1}}'; done; echo   # 201 until the burst of 5 is spent, then 429 with Retry-After
  curl -s {base}/api/users/1/billing                                  # the card masked (**** **** **** ****), the IBAN logged (DLP)
  curl -i {base}/api/orders -H 'content-type: application/json' -d '{{"user_id":1,"item":"AKIAZ7QRS2LMN4XPQ3TD","quantity":1}}'   # 403 data_leak: a credential sent into the API
  curl -i {base}/api/internal/debug                                   # 404: an endpoint the OpenAPI document does not declare
  curl -i -X DELETE {base}/api/users/1                                # 405: a method the document does not declare
  curl -i --path-as-is {base}/api/../admin                            # 400 malformed_request: dot segments
  curl -i {base}/nothing-here                                         # 404 not_found: no API serves this path
  head -c 2000000 /dev/zero | curl -i {base}/api/orders --data-binary @-   # 413 body_too_large

The partner API (authentication and authorization, docs/auth.md):
  curl -i {base}/partner/users/1 -H 'Authorization: Bearer {jwt}'      # 200: user 1's own record (JWT)
  curl -i {base}/partner/users/2 -H 'Authorization: Bearer {jwt}'      # 403 forbidden: user 1 asks for user 2's (BOLA)
  curl -i {base}/partner/users/2 -H 'x-api-key: {api_key}'             # 200: the partner application (API key, staff)
  curl -i {base}/partner/users/2 -H 'x-api-key: demo-wrong-key-000000'  # 401 unauthenticated, with WWW-Authenticate
  curl -i {base}/partner/users/2                                       # 401 unauthenticated: no credential
  curl -i --cacert {dirs}/ca.pem --cert {dirs}/partner.pem --key {dirs}/partner.key https://localhost:{tls_port}/partner/users/2   # 200: mTLS
  curl -i --cacert {dirs}/ca.pem https://localhost:{tls_port}/partner/users/2                    # 401: TLS without a client certificate

  curl -s {admin}/metrics -H 'Authorization: Bearer {token}' | grep rampart_
  curl -s {admin}/api/v1/status -H 'Authorization: Bearer {token}'
  curl -s "{admin}/api/v1/events?stage=waf&limit=5" -H 'Authorization: Bearer {token}'
  curl -s -X POST {admin}/api/v1/bans -H 'Authorization: Bearer {token}' -d '{{"target":"198.51.100.99","seconds":600}}' -H 'content-type: application/json'
  rampart rules test {rules_test}   # the demo's rules, unit-tested offline
  rampart replay -c {config} {traffic}   # the recorded traffic through the config, offline (edit a copy of the config and add --baseline {config})

Press Ctrl-C to stop.
"#,
        config = config.display(),
        spec = dir.join("openapi.json").display(),
        events = dir.join("events.db").display(),
        jsonl = dir.join("events.jsonl").display(),
        rules_test = dir.join("rules.test.yaml").display(),
        traffic = dir.join("traffic.jsonl").display(),
        crs_line = match &crs {
            Some(d) => format!("the OWASP CRS from {} (paranoia level 1, blocking)", d.display()),
            None => "not found: the demo runs without managed rules. Install it (apt-get install modsecurity-crs) or point RAMPART_CRS at a CRS checkout (https://github.com/coreruleset/coreruleset)".to_owned(),
        },
        jwt = auth.token_user1,
        api_key = auth.api_key,
        dirs = dir.display(),
    );
    crate::print_out(&msg);
    match exit_after_secs {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => crate::wait_for_signal().await,
    }
    gateway.shutdown().await;
    ExitCode::SUCCESS
}

/// A little traffic, good and bad, every few seconds, so that the dashboard has something to
/// show: reads and orders, an attack tool, an injection, a scan of undeclared paths, a burst.
async fn background_traffic(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let requests: [&str; 8] = [
        "GET /api/users/1 HTTP/1.1\r\nHost: demo\r\n",
        "GET /api/users/2 HTTP/1.1\r\nHost: demo\r\n",
        "POST /api/orders HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user_id\":1,\"item\":\"pen\",\"quantity\":2}",
        "GET /api/users/1 HTTP/1.1\r\nHost: demo\r\nUser-Agent: sqlmap/1.7\r\n",
        "GET /api/users/1%20or%201=1 HTTP/1.1\r\nHost: demo\r\n",
        "GET /api/internal/debug HTTP/1.1\r\nHost: demo\r\n",
        "GET /api/users/1?debug=1 HTTP/1.1\r\nHost: demo\r\n",
        "GET /api/users/1 HTTP/1.1\r\nHost: demo\r\nX-Forwarded-For: 203.0.113.7\r\n",
    ];
    let mut i = 0usize;
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for _ in 0..3 {
            let r = requests[i % requests.len()];
            i += 1;
            let mut text = r.to_owned();
            if !text.ends_with('}') {
                text.push_str("\r\n");
            }
            if let Ok(Ok(mut s)) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            )
            .await
            {
                let text = text.replacen("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n", 1);
                let _ = s.write_all(text.as_bytes()).await;
                let mut sink = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut sink)).await;
            }
        }
    }
}

fn demo_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::from("demo-");
    for i in 0..2u64 {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(i);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
