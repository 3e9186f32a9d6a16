//! The admin API through the real gateway on loopback: every endpoint, auth failures and the
//! failure limiter, filters and pagination, bans taking effect on the data plane at once,
//! reloads with their diagnostics, audit events, the generated token and mutual TLS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use rampart_test_support::{
    tls_client_config, tls_connect, Collected, HttpClient, TempDir, TestGateway, TestPki,
    TestUpstream,
};
use serde_json::Value;

const TOKEN: &str = "s3cret-admin-token-for-tests";

fn yaml(up: &str, extra: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
admin: {{ bind: 127.0.0.1:0, token: {TOKEN} }}
upstreams:
  app: {{ targets: ["{up}"] }}
ip_rules:
  - {{ id: bad-net, action: block, list: [203.0.113.0/24] }}
waf:
  custom:
    - {{ id: attack-tool, when: 'any(lower(http.request.headers["user-agent"]) wildcard "*sqlmap*")', action: block }}
    - {{ id: debug-flag, when: 'http.request.uri.args["debug"] == "1"', action: block, enforcement: monitor }}
apis:
  - name: app
    upstream: app
    rate_limits:
      - {{ name: tight, when: 'http.request.uri.path == "/limited"', key: ip.src, requests: 1, window_secs: 60 }}
events: {{ sqlite: events.db }}
{extra}
"#
    )
}

struct Admin {
    base: String,
    c: HttpClient,
}

impl Admin {
    fn new(gw: &TestGateway) -> Self {
        Self {
            base: format!("http://{}", gw.admin_addr()),
            c: HttpClient::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> Collected {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if !body.is_empty() {
            b = b.header("content-type", "application/json");
        }
        self.c
            .send(b.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> Collected {
        self.call(Method::GET, path, Some(TOKEN), "").await
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }
}

async fn send(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut b = Request::get(gw.url("public", path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    HttpClient::new()
        .send(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap()
        .status
        .as_u16()
}

/// Waits until the live statistics have counted `n` requests and the events are written.
async fn settle(gw: &TestGateway, a: &Admin, n: u64) {
    for _ in 0..100 {
        let s = a.json("/api/v1/status").await;
        if s["requests"]["total"].as_u64().unwrap() >= n {
            gw.gateway.events().flush().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the statistics never counted {n} requests");
}

/// Every route of the OpenAPI document, with a method.
fn documented() -> Vec<(Method, String)> {
    let doc: Value =
        serde_json::from_str(include_str!("../src/openapi.json")).expect("the document parses");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            let path = path.replace("{id}", "1");
            out.push((m.to_uppercase().parse().unwrap(), path));
        }
    }
    out
}

#[tokio::test]
async fn no_endpoint_answers_without_the_token_and_failures_are_limited() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url(), "")).await;
    let a = Admin::new(&gw);
    // Every documented endpoint refuses no token and a wrong one, except the probes. Nine
    // wrong attempts stay under the limit; the probes never count.
    let mut failures = 0;
    for (m, path) in documented() {
        let open = path == "/healthz" || path == "/readyz";
        let r = a.call(m.clone(), &path, None, "").await;
        if open {
            assert_eq!(r.status, 200, "{m} {path}");
            continue;
        }
        assert_eq!(r.status, 401, "{m} {path} without a token: {}", r.text());
        assert_eq!(
            r.headers["www-authenticate"],
            "Bearer realm=\"rampart-admin\""
        );
        assert!(r.headers.contains_key("content-security-policy"));
        assert_eq!(r.json()["error"], "unauthenticated");
        failures += 1;
        if failures == 9 {
            break;
        }
    }
    // The tenth failure locks the address out: even the right token gets 429 for the rest of
    // the minute.
    let r = a
        .call(Method::GET, "/api/v1/status", Some("wrong"), "")
        .await;
    assert_eq!(r.status, 401);
    let r = a.get("/api/v1/status").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            <= 60
    );
    // The data plane is not affected.
    assert_eq!(send(&gw, "/json", &[]).await, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn every_endpoint_without_the_token_is_401() {
    // The limiter would turn later answers into 429: one gateway per ten endpoints.
    let up = TestUpstream::start().await;
    let routes: Vec<(Method, String)> = documented()
        .into_iter()
        .filter(|(_, p)| p != "/healthz" && p != "/readyz")
        .collect();
    for chunk in routes.chunks(9) {
        let gw = TestGateway::start(&yaml(&up.url(), "")).await;
        let a = Admin::new(&gw);
        for (m, path) in chunk {
            let r = a.call(m.clone(), path, Some("not-the-token"), "").await;
            assert_eq!(r.status, 401, "{m} {path} with a wrong token");
        }
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn statistics_events_rules_and_exports() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url(), "")).await;
    let a = Admin::new(&gw);
    // Traffic: 3 good, an attack tool (blocked), a blocked network, a debug probe (monitor:
    // would block), and two requests to a path limited to one a minute (the second refused).
    for _ in 0..3 {
        assert_eq!(send(&gw, "/json", &[]).await, 200);
    }
    assert_eq!(
        send(&gw, "/json", &[("user-agent", "sqlmap/1.7")]).await,
        403
    );
    assert_eq!(
        send(&gw, "/json", &[("x-forwarded-for", "203.0.113.9")]).await,
        403
    );
    assert_eq!(send(&gw, "/json?debug=1", &[]).await, 200);
    assert_eq!(send(&gw, "/limited", &[]).await, 200);
    assert_eq!(send(&gw, "/limited", &[]).await, 429);
    settle(&gw, &a, 8).await;

    // Status.
    let s = a.json("/api/v1/status").await;
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["apis"], serde_json::json!(["app"]));
    assert_eq!(s["requests"]["total"], 8);
    assert_eq!(s["requests"]["blocked"], 3);
    assert_eq!(s["requests"]["would_block"], 1);
    assert_eq!(s["events"]["dropped"], 0);
    assert!(s["events"]["stored"].as_u64().unwrap() >= 4);

    // Time series: the hour at 10 s, the day at 5 min, the same totals.
    for (w, step, len) in [("hour", 10_000, 360), ("day", 300_000, 288)] {
        let series = a.json(&format!("/api/v1/stats/series?window={w}")).await;
        assert_eq!(series["step_ms"], step);
        assert_eq!(series["points"].as_array().unwrap().len(), len);
        assert_eq!(series["totals"]["requests"], 8, "{w}");
        assert_eq!(series["totals"]["blocked"], 3);
        assert_eq!(series["totals"]["would_block"], 1);
        assert!(series["totals"]["p50_ms"].as_f64().unwrap() > 0.0);
        let stages: Vec<(&str, u64)> = series["blocks_by_stage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["name"].as_str().unwrap(), n["total"].as_u64().unwrap()))
            .collect();
        assert!(stages.contains(&("waf.custom", 2)), "{stages:?}");
        assert!(stages.contains(&("iprules", 1)), "{stages:?}");
        assert!(stages.contains(&("ratelimit", 1)), "{stages:?}");
        let reasons = series["blocks_by_reason"].to_string();
        assert!(reasons.contains("rate_limited") && reasons.contains("forbidden"));
    }
    let r = a.get("/api/v1/stats/series?window=week").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad_query");

    // Traffic per API and operation.
    let t = a.json("/api/v1/stats/traffic").await;
    let ops = t["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["api"], "app");
    assert_eq!(ops[0]["requests"], 8);
    assert_eq!(ops[0]["blocked"], 3);

    // Top clients.
    let top = a.json("/api/v1/stats/top?limit=5").await;
    assert_eq!(top["clients"][0]["key"], "127.0.0.1");
    assert_eq!(top["clients"][0]["count"], 7);
    let blocked: Vec<&str> = top["blocked_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert!(blocked.contains(&"203.0.113.9"));

    // Rule hits and their mode.
    let rules = a.json("/api/v1/rules").await;
    let rule = |id: &str| -> Value {
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no rule {id} in {rules}"))
    };
    assert_eq!(rule("attack-tool")["blocks"], 1);
    assert_eq!(rule("attack-tool")["mode"], "enforce");
    assert_eq!(rule("debug-flag")["would_blocks"], 1);
    assert_eq!(rule("debug-flag")["mode"], "monitor");
    assert_eq!(rule("bad-net")["stage"], "iprules");
    assert_eq!(rule("tight")["stage"], "ratelimit");

    // Rate-limited clients.
    let rl = a.json("/api/v1/ratelimits").await;
    let limited = rl["limited"].as_array().unwrap();
    assert_eq!(limited.len(), 1, "{rl}");
    assert_eq!(limited[0]["rule"], "tight");
    assert_eq!(limited[0]["key"], "127.0.0.1");

    // Events: everything, then filters.
    let all = a.json("/api/v1/events?limit=100").await;
    let all = all["events"].as_array().unwrap().clone();
    assert_eq!(all.len(), 4, "{all:?}");
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let count = |v: Value| v["events"].as_array().unwrap().len();
    assert_eq!(count(a.json("/api/v1/events?stage=waf.custom").await), 2);
    assert_eq!(count(a.json("/api/v1/events?rule=attack-tool").await), 1);
    assert_eq!(count(a.json("/api/v1/events?action=would_block").await), 1);
    assert_eq!(
        count(a.json("/api/v1/events?client_ip=203.0.113.9").await),
        1
    );
    assert_eq!(count(a.json("/api/v1/events?api=app").await), 4);
    assert_eq!(count(a.json("/api/v1/events?consumer=nobody").await), 0);
    let first = all[0]["time_ms"].as_u64().unwrap();
    assert_eq!(
        count(
            a.json(&format!("/api/v1/events?from_ms={}", first + 1))
                .await
        ),
        0
    );
    assert_eq!(
        count(a.json(&format!("/api/v1/events?to_ms={}", first + 1)).await),
        4
    );
    // Pagination: pages of one, joined, are the whole list.
    let mut walked = Vec::new();
    let mut path = "/api/v1/events?limit=1".to_owned();
    loop {
        let page = a.json(&path).await;
        walked.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next"].as_i64() {
            Some(n) => path = format!("/api/v1/events?limit=1&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(walked, ids);
    for bad in [
        "/api/v1/events?action=explode",
        "/api/v1/events?client_ip=not-an-ip",
        "/api/v1/events?limit=x",
    ] {
        let r = a.get(bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["error"], "bad_query");
    }
    // One event.
    let one = a.json(&format!("/api/v1/events/{}", ids[0])).await;
    assert_eq!(one, all[0]);
    assert_eq!(a.get("/api/v1/events/99999999").await.status, 404);
    assert_eq!(a.get("/api/v1/events/abc").await.status, 400);

    // Exports.
    let jsonl = a.get("/api/v1/events/export?format=jsonl").await;
    assert_eq!(jsonl.status, 200);
    assert_eq!(jsonl.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = jsonl
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, all);
    let csv = a
        .get("/api/v1/events/export?format=csv&stage=waf.custom")
        .await;
    assert_eq!(csv.status, 200);
    let text = csv.text();
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("id,time_ms,request_id,client_ip"));
    assert_eq!(rows.len(), 3, "{text}");
    assert!(text.contains("attack-tool") && text.contains("debug-flag"));
    assert_eq!(a.get("/api/v1/events/export?format=xml").await.status, 400);

    // The rest: config (redacted), OpenAPI, metrics.
    let cfg = a.json("/api/v1/config").await;
    let y = cfg["yaml"].as_str().unwrap();
    assert!(
        y.contains("bind: 127.0.0.1:0") && y.contains("[redacted]"),
        "{y}"
    );
    assert!(!y.contains(TOKEN), "the token is shown: {y}");
    let doc = a.json("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let m = a.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.text().contains("rampart_requests_total"));
    assert_eq!(a.get("/api/v1/nothing").await.status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_ban_through_the_api_takes_effect_at_once_and_is_audited() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(
        &up.url(),
        "ddos: { per_ip: { requests_per_sec: 1000, ban_secs: 60 } }",
    ))
    .await;
    let a = Admin::new(&gw);
    let client = [("x-forwarded-for", "198.51.100.7")];
    assert_eq!(send(&gw, "/json", &client).await, 200);
    assert_eq!(a.json("/api/v1/bans").await["bans"], serde_json::json!([]));

    let r = a
        .call(
            Method::POST,
            "/api/v1/bans",
            Some(TOKEN),
            r#"{"target":"198.51.100.7","seconds":120}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["key"], "ip:198.51.100.7");
    // The very next request is refused.
    assert_eq!(send(&gw, "/json", &client).await, 429);
    assert_eq!(
        send(&gw, "/json", &[("x-forwarded-for", "198.51.100.8")]).await,
        200
    );
    // A network of any length.
    let r = a
        .call(
            Method::POST,
            "/api/v1/bans",
            Some(TOKEN),
            r#"{"target":"192.0.2.0/26"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        send(&gw, "/json", &[("x-forwarded-for", "192.0.2.9")]).await,
        429
    );
    assert_eq!(
        send(&gw, "/json", &[("x-forwarded-for", "192.0.2.99")]).await,
        200
    );
    let bans = a.json("/api/v1/bans").await;
    let keys: Vec<&str> = bans["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["ip:198.51.100.7", "net:192.0.2.0/26"]);
    assert!(bans["bans"][0]["seconds_left"].as_u64().unwrap() <= 120);

    // Lifting it lets the client in again at once.
    let r = a
        .call(
            Method::DELETE,
            "/api/v1/bans?target=198.51.100.7",
            Some(TOKEN),
            "",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(send(&gw, "/json", &client).await, 200);
    let r = a
        .call(
            Method::DELETE,
            "/api/v1/bans?target=198.51.100.7",
            Some(TOKEN),
            "",
        )
        .await;
    assert_eq!(r.status, 404);

    // Bad input.
    for body in [
        r#"{"target":"not-an-address"}"#,
        r#"{"target":"198.51.100.7","seconds":0}"#,
        r#"{"target":"198.51.100.7","seconds":999999999}"#,
        r#"{"nope":1}"#,
        "not json",
    ] {
        let r = a
            .call(Method::POST, "/api/v1/bans", Some(TOKEN), body)
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    let r = a
        .call(Method::DELETE, "/api/v1/bans", Some(TOKEN), "")
        .await;
    assert_eq!(r.status, 400);

    // Each change is an audit event, with the admin client's address.
    gw.gateway.events().flush().await;
    let audit = a.json("/api/v1/events?stage=admin").await;
    let reasons: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec!["admin_ban_removed", "admin_ban_added", "admin_ban_added"]
    );
    assert_eq!(audit["events"][0]["client_ip"], "127.0.0.1");
    assert_eq!(audit["events"][0]["consumer"], "admin");
    gw.shutdown().await;
}

#[tokio::test]
async fn bans_without_a_ddos_guard_say_so() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url(), "")).await;
    let a = Admin::new(&gw);
    let r = a.get("/api/v1/bans").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["error"], "no_ddos_guard");
    let r = a
        .call(
            Method::POST,
            "/api/v1/bans",
            Some(TOKEN),
            r#"{"target":"198.51.100.7"}"#,
        )
        .await;
    assert_eq!(r.status, 409);
    gw.shutdown().await;
}

#[tokio::test]
async fn reload_reports_every_diagnostic_and_keeps_the_old_config() {
    let up = TestUpstream::start().await;
    let good = yaml(&up.url(), "");
    let gw = TestGateway::start(&good).await;
    let a = Admin::new(&gw);
    assert_eq!(
        a.json("/api/v1/reload").await,
        serde_json::json!({ "outcome": null })
    );
    // Two mistakes at once.
    let bad = good
        .replace("requests: 1,", "requests: lots,")
        .replace("action: block }", "action: explode }");
    std::fs::write(&gw.config_path, &bad).unwrap();
    let r = a
        .call(Method::POST, "/api/v1/reload", Some(TOKEN), "")
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let v = r.json();
    assert_eq!(v["outcome"], "rejected");
    let diags = v["diagnostics"].as_array().unwrap();
    assert!(diags.len() >= 2, "{v}");
    assert!(diags.iter().all(|d| d["line"].as_u64().is_some()));
    assert!(v["rendered"].as_str().unwrap().contains('^'));
    // The old configuration still serves.
    assert_eq!(send(&gw, "/json", &[("user-agent", "sqlmap")]).await, 403);
    let last = a.json("/api/v1/reload").await;
    assert_eq!(last["outcome"], "rejected");
    assert!(last["time_ms"].as_u64().is_some());
    // Fixed: applied.
    std::fs::write(
        &gw.config_path,
        good.replace("id: attack-tool", "id: attack-tool-2"),
    )
    .unwrap();
    let r = a
        .call(Method::POST, "/api/v1/reload", Some(TOKEN), "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(a.json("/api/v1/reload").await["outcome"], "applied");
    assert_eq!(send(&gw, "/json", &[("user-agent", "sqlmap")]).await, 403);
    gw.gateway.events().flush().await;
    let audit = a.json("/api/v1/events?stage=admin&rule=").await;
    let details: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{audit}");
    assert!(details[0].contains("reloaded") && details[1].contains("rejected"));
    let rules = a.json("/api/v1/rules").await.to_string();
    assert!(rules.contains("attack-tool-2"), "{rules}");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_generated_token_is_printed_once_and_survives_restarts() {
    let up = TestUpstream::start().await;
    let dir = TempDir::new("rampart-admin-gen");
    let config = dir.write(
        "rampart.yaml",
        format!(
            r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
admin: {{ bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{}"] }}
apis:
  - {{ name: app, upstream: app }}
events: {{ sqlite: off }}
"#,
            up.url()
        ),
    );
    let mut token = None;
    for start in 0..2 {
        let snap = rampart_config::load_file(&config).unwrap();
        let gw = rampart_proxy::Gateway::start(snap, Some(config.clone()))
            .await
            .unwrap();
        let admin = rampart_admin::start(&gw).await.unwrap().unwrap();
        if start == 0 {
            token = admin.generated_token().map(str::to_owned);
            assert!(token.is_some(), "the first start generates a token");
        } else {
            assert_eq!(admin.generated_token(), None, "printed once only");
        }
        let t = token.clone().unwrap();
        let stored =
            std::fs::read_to_string(dir.path().join("rampart-admin-token.sha256")).unwrap();
        assert!(!stored.contains(&t[4..]), "only the hash is stored");
        let c = HttpClient::new();
        let url = format!("{}/api/v1/status", admin.url());
        let ok = c
            .send(
                Request::get(&url)
                    .header("authorization", format!("Bearer {t}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(c.get(&url).await.unwrap().status, 401);
        // The event store is off: the events endpoint says so.
        let r = c
            .send(
                Request::get(format!("{}/api/v1/events", admin.url()))
                    .header("authorization", format!("Bearer {t}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 503);
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn the_admin_listener_can_require_client_certificates() {
    let up = TestUpstream::start().await;
    let pki = TestPki::new("Admin CA");
    let (cert, key) = pki.server(&["localhost"]);
    let operator = pki.client("operator", &[]);
    let extra = format!(
        "admin: {{ bind: 127.0.0.1:0, token: {TOKEN}, tls: {{ certificates: [{{ cert: {}, key: {} }}], client_auth: {{ mode: required, ca: {} }} }} }}",
        cert.display(),
        key.display(),
        pki.ca_path.display()
    );
    let y = yaml(&up.url(), "").replace(
        &format!("admin: {{ bind: 127.0.0.1:0, token: {TOKEN} }}"),
        &extra,
    );
    let gw = TestGateway::start(&y).await;
    let addr = gw.admin_addr();
    assert!(gw.admin.as_ref().unwrap().url().starts_with("https://"));
    let req = || {
        Request::get("/api/v1/status")
            .header("host", "localhost")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    // With the certificate: served.
    let cfg = tls_client_config(&pki.ca_pem, Some(&operator), &["http/1.1"]);
    let (r, _, _) = tls_connect(addr, "localhost", cfg, req()).await.unwrap();
    assert_eq!(r.status, 200);
    // Without: the handshake fails, nothing is answered.
    let cfg = tls_client_config(&pki.ca_pem, None, &["http/1.1"]);
    assert!(tls_connect(addr, "localhost", cfg, req()).await.is_err());
    // Plain HTTP: refused too.
    assert!(HttpClient::new()
        .get(&format!("http://{addr}/api/v1/status"))
        .await
        .is_err());
    gw.shutdown().await;
}

/// API discovery: traffic through the gateway becomes templates on `/api/v1/discovery`;
/// blocked requests and failures teach nothing; `discovery.enabled: false` says so.
#[tokio::test]
async fn discovery_learns_templates_from_traffic() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url(), "")).await;
    let a = Admin::new(&gw);
    let mut n = 0;
    for i in 1..=30 {
        assert_eq!(send(&gw, &format!("/items/{i}"), &[]).await, 200);
        n += 1;
    }
    for _ in 0..3 {
        assert_eq!(send(&gw, "/items/search", &[]).await, 200);
        assert_eq!(send(&gw, "/status/500", &[]).await, 500);
        assert_eq!(
            send(&gw, "/attack/1", &[("user-agent", "sqlmap")]).await,
            403
        );
        n += 3;
    }
    settle(&gw, &a, n).await;
    let mut templates = Vec::new();
    for _ in 0..100 {
        let d = a.json("/api/v1/discovery").await;
        assert_eq!(d["enabled"], true);
        if d["observed"].as_u64().unwrap() >= 36 {
            let app = d["apis"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["api"] == "app")
                .unwrap()
                .clone();
            templates = app["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {}",
                        e["method"].as_str().unwrap(),
                        e["template"].as_str().unwrap(),
                        e["hits"]
                    )
                })
                .collect();
            assert!(app["nodes"].as_u64().unwrap() >= 3);
            let items = app["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["template"] == "/items/{int}")
                .unwrap();
            assert_eq!(items["status"]["2xx"], 29);
            assert_eq!(items["status"]["5xx"], 0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        templates,
        // The first request's `items` was only staged (a word becomes a node at its second
        // sighting): 29 of the 30 count.
        ["GET /items/search 3", "GET /items/{int} 29"],
        "the 500s and the blocked requests created nothing"
    );
    assert_eq!(
        a.call(Method::GET, "/api/v1/discovery", None, "")
            .await
            .status,
        401
    );
    gw.shutdown().await;

    let gw = TestGateway::start(&yaml(&up.url(), "discovery: { enabled: false }")).await;
    let d = Admin::new(&gw).json("/api/v1/discovery").await;
    assert_eq!(d["enabled"], false);
    gw.shutdown().await;
}

const PETS: &str = r#"{
  "openapi": "3.1.0",
  "info": {"title": "pets", "version": "1"},
  "servers": [{"url": "/v1"}],
  "paths": {
    "/pets": {"get": {"operationId": "listPets", "responses": {"200": {"description": "ok"}}}},
    "/pets/{petId}": {
      "parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}],
      "get": {"operationId": "getPet", "responses": {"200": {"description": "ok"}}},
      "delete": {"operationId": "deletePet", "deprecated": true, "responses": {"200": {"description": "ok"}}}
    },
    "/pets/{petId}/photos": {
      "parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}],
      "post": {"operationId": "addPhoto", "responses": {"201": {"description": "ok"}}}
    }
  }
}"#;

/// Spec diff: an undeclared path is a shadow, an undeclared method on a declared path a
/// method-shadow, a deprecated operation still called a zombie, a declared one never called
/// an orphan (here after 0 s of watching; 30 days by default).
#[tokio::test]
async fn discovery_compares_traffic_with_the_declared_document() {
    let up = TestUpstream::start().await;
    let cfg = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
admin: {{ bind: 127.0.0.1:0, token: {TOKEN} }}
upstreams:
  app: {{ targets: ["{up}"] }}
apis:
  - name: pets
    base_path: /v1
    upstream: app
    openapi: pets.json
    schema: {{ request: monitor, response: "off", unknown_endpoints: monitor }}
discovery: {{ orphan_after_secs: 0 }}
events: {{ sqlite: "off" }}
"#,
        up = up.url()
    );
    let gw = TestGateway::start_with(&cfg, &[("pets.json", PETS)]).await;
    let a = Admin::new(&gw);
    let c = HttpClient::new();
    let call = |m: &str, p: &str| {
        Request::builder()
            .method(m)
            .uri(gw.url("public", p))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let mut n = 0;
    for (m, p) in [
        ("GET", "/v1/pets"),
        ("GET", "/v1/pets/1"),
        ("DELETE", "/v1/pets/5"),
        ("DELETE", "/v1/pets/6"),
        ("PUT", "/v1/pets/7"),
        ("PUT", "/v1/pets/8"),
        ("PUT", "/v1/pets/9"),
        ("GET", "/v1/admin/export"),
        ("GET", "/v1/admin/export"),
        ("GET", "/v1/admin/export"),
    ] {
        assert_eq!(c.send(call(m, p)).await.unwrap().status, 200, "{m} {p}");
        n += 1;
    }
    settle(&gw, &a, n).await;
    let want = [
        // The first sighting of a new word is only staged: 2 of 3 count.
        "shadow GET /v1/admin/export - 2",
        "method-shadow PUT /v1/pets/{int} - 2",
        "zombie DELETE /pets/{petId} deletePet 2",
        "orphan POST /pets/{petId}/photos addPhoto 0",
    ];
    // The worker learns off the request path: wait until it has caught up.
    let mut found = Vec::new();
    for _ in 0..200 {
        let f = a.json("/api/v1/discovery/findings").await;
        found = f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{} {} {} {} {}",
                    x["kind"].as_str().unwrap(),
                    x["method"].as_str().unwrap(),
                    x["template"].as_str().unwrap(),
                    x["operation"].as_str().unwrap_or("-"),
                    x["requests"]
                )
            })
            .collect();
        if found == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(found, want);
    // The learned API as OpenAPI 3.1, and the shadows as an Overlay on the declared document
    // (paths relative to its server path).
    let doc = a.json("/api/v1/discovery/openapi?api=pets").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/v1/admin/export", "/v1/pets/{petId}"], "{doc:#}");
    assert_eq!(
        doc["paths"]["/v1/pets/{petId}"]["put"]["parameters"][0]["schema"]["type"],
        "integer"
    );
    let overlay = a.json("/api/v1/discovery/overlay?api=pets").await;
    assert_eq!(overlay["overlay"], "1.0.0");
    let added: Vec<String> = overlay["actions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|x| {
            let u = x["update"].as_object().unwrap();
            u.iter()
                .flat_map(|(p, item)| {
                    item.as_object()
                        .unwrap()
                        .keys()
                        .map(move |m| format!("{m} {p}"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        added,
        ["get /admin/export", "put /pets/{petId}"],
        "{overlay:#}"
    );
    assert_eq!(
        a.get("/api/v1/discovery/openapi?api=nope").await.status,
        404
    );
    assert_eq!(a.get("/api/v1/discovery/openapi").await.status, 400);
    gw.shutdown().await;
}

/// Rate-limit recommendations from real sessions: 60 clients (by address) each calling a
/// learned endpoint a few times give a suggestion with its rule, which compiles; a client with
/// findings does not count.
#[tokio::test]
async fn discovery_recommends_limits_from_sessions() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url(), "")).await;
    let a = Admin::new(&gw);
    let mut n = 0;
    for client in 0..60 {
        let ip = format!("192.0.2.{}", 10 + client);
        for k in 0..(2 + client % 4) {
            let p = format!("/orders/{}", 100 * client + k);
            assert_eq!(send(&gw, &p, &[("x-forwarded-for", &ip)]).await, 200);
            n += 1;
        }
    }
    // A monitor-mode finding: this client is not a good session.
    assert_eq!(
        send(
            &gw,
            "/orders/1?debug=1",
            &[("x-forwarded-for", "198.51.100.1")]
        )
        .await,
        200
    );
    n += 1;
    settle(&gw, &a, n).await;
    let mut rec = Value::Null;
    for _ in 0..200 {
        let r = a.json("/api/v1/discovery/recommendations").await;
        let app = r["apis"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["api"] == "app")
            .cloned();
        if let Some(e) = app.and_then(|x| {
            x["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["endpoint"] == "GET /orders/{int}")
                .cloned()
        }) {
            if e["sessions"].as_u64().unwrap() >= 60 {
                assert_eq!(r["apis"][0]["key_basis"], "ip");
                rec = e;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rec["sessions"], 60, "{rec:#}");
    let t = rec["suggested"].as_u64().unwrap();
    assert!(
        t >= 5 && t >= rec["p99"].as_f64().unwrap() as u64,
        "{rec:#}"
    );
    assert_eq!(rec["confidence"], "low", "{rec:#}");
    let rule = rec["rule"].as_str().unwrap();
    assert!(
        rule.contains("name: rec-get-orders-int") && rule.contains("action: log"),
        "{rule}"
    );
    // Pasted under the API, it compiles.
    let indented: String = rule.lines().map(|l| format!("      {l}\n")).collect();
    let cfg = format!(
        "listeners:\n  - {{ name: p, bind: 127.0.0.1:0 }}\nupstreams:\n  u: {{ targets: [\"http://127.0.0.1:9\"] }}\napis:\n  - name: app\n    upstream: u\n    rate_limits:\n{indented}"
    );
    if let Err(e) = rampart_config::load_str(&cfg, "rec.yaml", std::path::Path::new(".")) {
        panic!("{}\n{cfg}", e.render());
    }
    gw.shutdown().await;

    // Sessions from a header: 60 sessions behind one address, and the rule keys on the header.
    let gw = TestGateway::start(&yaml(
        &up.url(),
        "discovery: { session: [identity.consumer, \"header:x-session\"] }",
    ))
    .await;
    let a = Admin::new(&gw);
    let mut n = 0;
    for s in 0..60 {
        let sid = format!("s-{s}");
        for k in 0..3 {
            let p = format!("/carts/{}", 10 * s + k);
            assert_eq!(send(&gw, &p, &[("x-session", &sid)]).await, 200);
            n += 1;
        }
    }
    settle(&gw, &a, n).await;
    let mut rec = Value::Null;
    for _ in 0..200 {
        let r = a.json("/api/v1/discovery/recommendations").await;
        if let Some(e) = r["apis"][0]["endpoints"].as_array().and_then(|v| {
            v.iter()
                .find(|e| e["endpoint"] == "GET /carts/{int}")
                .cloned()
        }) {
            if e["sessions"].as_u64().unwrap() >= 60 {
                assert_eq!(r["apis"][0]["key_basis"], "session");
                rec = e;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rec["sessions"], 60, "{rec:#}");
    assert!(
        rec["rule"]
            .as_str()
            .unwrap()
            .contains("key: http.request.headers[\"x-session\"]"),
        "{rec:#}"
    );
    gw.shutdown().await;
    let bad = rampart_config::load_str(
        "listeners:\n  - { name: p, bind: 127.0.0.1:0 }\ndiscovery: { session: [bogus, \"header:\"] }\n",
        "bad.yaml",
        std::path::Path::new("."),
    )
    .unwrap_err()
    .render();
    assert_eq!(bad.matches("is not a session source").count(), 2, "{bad}");
}

/// What discovery learned is kept in its SQLite file across a restart.
#[tokio::test]
async fn discovery_state_survives_a_restart() {
    let up = TestUpstream::start().await;
    let dir = rampart_test_support::TempDir::new("rampart-discovery-state");
    let state = dir.path().join("discovery.db");
    let extra = format!("discovery: {{ state: \"{}\" }}", state.display());
    let gw = TestGateway::start(&yaml(&up.url(), &extra)).await;
    let a = Admin::new(&gw);
    for i in 1..=5 {
        assert_eq!(send(&gw, &format!("/invoices/{i}"), &[]).await, 200);
    }
    settle(&gw, &a, 5).await;
    let templates = |d: &Value| -> Vec<String> {
        d["apis"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|x| x["endpoints"].as_array().unwrap().clone())
            .map(|e| e["template"].as_str().unwrap().to_owned())
            .collect()
    };
    for _ in 0..200 {
        if templates(&a.json("/api/v1/discovery").await) == ["/invoices/{int}"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.shutdown().await;
    assert!(state.exists());

    let gw = TestGateway::start(&yaml(&up.url(), &extra)).await;
    let d = Admin::new(&gw).json("/api/v1/discovery").await;
    assert_eq!(templates(&d), ["/invoices/{int}"], "{d:#}");
    gw.shutdown().await;
}
