//! The recorder and `rampart replay`: live traffic recorded by the gateway and replayed with
//! the same configuration gives the same decisions (fidelity); crafted records exercise the
//! virtual clock, redacted credentials, `--baseline`, `--fail-on`, HAR input, the report
//! formats and determinism.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{HttpClient, TempDir, TestGateway, TestUpstream};

fn rampart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

const KEY: &str = "mobile-key-0123456789abcdef";

fn sha256_hex(s: &str) -> String {
    rampart_traffic::sha256_hex(s.as_bytes())
}

/// Every stage a replay can decide: IP rules, custom rules in each phase (one in monitor
/// mode), a rate limit, API keys, DLP; and the recorder, recording everything.
fn config(up: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
upstreams:
  app: {{ targets: ["{up}"] }}
ip_rules:
  - {{ action: block, list: [203.0.113.0/24] }}
consumers:
  - name: mobile-app
    credentials:
      - {{ type: api_key, key_sha256: "{key}" }}
waf:
  custom:
    - id: no-sqlmap
      when: 'lower(http.request.headers["user-agent"]) contains "sqlmap"'
      action: block
apis:
  - name: keys
    base_path: /keys
    strip_base_path: true
    upstream: app
    authn: {{ methods: [api_key], api_key: {{ header: x-api-key }} }}
  - name: app
    upstream: app
    rate_limits:
      - {{ name: per-ip, when: 'starts_with(http.request.uri.path, "/limited")', key: ip.src, requests: 3, window_secs: 60 }}
    waf:
      custom:
        - id: numeric-id
          when: 'any(http.request.uri.args["id"] matches "[^0-9]")'
          action: block
          status: 400
        - id: no-admin-role
          when: 'http.request.body.json["/role"] == "admin"'
          action: block
        - id: hide-5xx
          when: 'http.response.code >= 500'
          action: block
          status: 502
        - id: watch-debug
          when: 'http.request.uri.args["debug"] == "1"'
          action: block
          enforcement: monitor
    dlp:
      action: log
events: {{ sqlite: "off" }}
recording:
  enabled: true
  sample_rate: 1
  path: traffic/live.jsonl
  hmac_key: file:hmac.key
"#,
        key = sha256_hex(KEY),
    )
}

fn req(
    gw: &TestGateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(gw.url("public", path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn replay_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = rampart()
        .arg("replay")
        .args(args)
        .arg("--report")
        .arg("json")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap(), json, stderr)
}

#[tokio::test]
async fn recorded_traffic_replays_to_the_same_decisions() {
    let up = TestUpstream::start().await;
    let yaml = config(&up.url());
    let gw =
        TestGateway::start_with(&yaml, &[("hmac.key", "a recorder key of 32 bytes......")]).await;
    let c = HttpClient::new();
    let xff = |ip: &'static str| ("x-forwarded-for", ip);
    let card = r#"{"card":"4111 1111 1111 1111"}"#;
    // (method, path, headers, body, the status the client gets)
    let traffic: Vec<(&str, &str, Vec<(&str, &str)>, &str, u16)> = vec![
        ("GET", "/json", vec![xff("192.0.2.10")], "", 200),
        ("GET", "/json?id=42", vec![xff("192.0.2.10")], "", 200),
        ("GET", "/json?id=42x", vec![xff("192.0.2.10")], "", 400),
        (
            "GET",
            "/json",
            vec![xff("192.0.2.11"), ("user-agent", "sqlmap/1.7")],
            "",
            403,
        ),
        ("GET", "/json", vec![xff("203.0.113.9")], "", 403),
        ("GET", "/json?debug=1", vec![xff("192.0.2.12")], "", 200),
        (
            "POST",
            "/echo",
            vec![xff("192.0.2.13"), ("content-type", "application/json")],
            r#"{"role":"admin"}"#,
            403,
        ),
        (
            "POST",
            "/echo",
            vec![xff("192.0.2.13"), ("content-type", "application/json")],
            r#"{"role":"user"}"#,
            200,
        ),
        ("GET", "/status/500", vec![xff("192.0.2.14")], "", 502),
        (
            "POST",
            "/respond?ct=application/json",
            vec![xff("192.0.2.15"), ("content-type", "application/json")],
            card,
            200,
        ),
        (
            "GET",
            "/keys/json",
            vec![xff("192.0.2.16"), ("x-api-key", KEY)],
            "",
            200,
        ),
        (
            "GET",
            "/keys/json",
            vec![xff("192.0.2.16"), ("x-api-key", "wrong-key-0123456789")],
            "",
            401,
        ),
        ("GET", "/keys/json", vec![xff("192.0.2.16")], "", 401),
        (
            "GET",
            "/nowhere",
            vec![xff("192.0.2.17"), ("host", "other.example")],
            "",
            200,
        ),
    ];
    let mut sent = 0;
    let mut statuses = Vec::new();
    for (m, p, h, b, want) in &traffic {
        let r = c.send(req(&gw, m, p, h, b)).await.unwrap();
        assert_eq!(r.status, *want, "{m} {p}: {}", r.text());
        statuses.push(r.status);
        sent += 1;
    }
    // The rate limit: three pass, the next two are refused.
    for i in 0..5 {
        let r = c
            .send(req(&gw, "GET", "/limited", &[xff("192.0.2.20")], ""))
            .await
            .unwrap();
        assert_eq!(r.status == 429, i >= 3, "request {i}: {}", r.status);
        sent += 1;
    }
    let blocked_live = statuses
        .iter()
        .filter(|s| [400, 401, 403, 502].contains(&s.as_u16()))
        .count()
        + 2;

    let file = gw.dir.path().join("traffic/live.jsonl");
    for _ in 0..100 {
        if lines(&file) > sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        lines(&file),
        sent + 1,
        "a header line and one line per request"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(KEY), "the API key is replaced by an HMAC");
    assert!(
        !text.contains("4111 1111 1111 1111"),
        "the card is masked in the recorded body"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let cfg_path = gw.config_path.clone();
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), yaml);
    let (code, report, stderr) = replay_json(&[
        "-c",
        cfg_path.to_str().unwrap(),
        file.to_str().unwrap(),
        "--fail-on",
        "mismatch",
    ]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["requests"], sent);
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["summary"]["blocked"], blocked_live, "{report:#}");
    assert_eq!(report["summary"]["undecided"], 0, "{report:#}");
    assert_eq!(report["summary"]["would_block"], 1);
    // The key was redacted: the recorded principal stood for it, and the report says so.
    let notes = report["fidelity"]["notes"].to_string();
    assert!(notes.contains("recorded principal"), "{notes}");
    // The rate limit counted on the recorded clock, in order.
    let limited = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "per-ip")
        .unwrap();
    assert_eq!(limited["block"], 2);
    let stages: Vec<&str> = report["fidelity"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert!(
        stages.contains(&"authn") && stages.contains(&"dlp"),
        "{stages:?}"
    );
    assert!(!report["fidelity"]["not_replayable"]
        .as_array()
        .unwrap()
        .is_empty());
}

fn record(ts: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let headers: Vec<[&str; 2]> = headers.iter().map(|(k, v)| [*k, *v]).collect();
    serde_json::json!({
        "v": 1, "id": format!("id-{ts}"), "ts": ts,
        "client": { "ip": "127.0.0.1", "port": 40000 },
        "req": { "method": "GET", "authority": "api.example.com", "path": path, "headers": headers },
        "resp": { "status": 200, "headers": [["content-type", "application/json"]], "body": { "size": 2, "text": "{}" }, "source": "upstream" }
    })
    .to_string()
}

#[test]
fn crafted_records_baseline_fail_on_har_and_determinism() {
    let dir = TempDir::new("rampart-replay");
    let new = config("http://127.0.0.1:9");
    dir.write("hmac.key", "a recorder key of 32 bytes......");
    let new_cfg = dir.write("new.yaml", &new);
    // The baseline has no sqlmap rule.
    let old = new
        .replace("no-sqlmap", "old-no-curl")
        .replace("contains \"sqlmap\"", "contains \"curl/\"");
    let old_cfg = dir.write("old.yaml", &old);
    // Out of file order on purpose: the rate limit must count in time order, and the two
    // early requests (in time) pass.
    let lines = [
        record("2026-12-04T10:00:03Z", "/limited", &[("x-forwarded-for", "192.0.2.1")]),
        record("2026-12-04T10:00:01Z", "/limited", &[("x-forwarded-for", "192.0.2.1")]),
        record("2026-12-04T10:00:02Z", "/limited", &[("x-forwarded-for", "192.0.2.1")]),
        record("2026-12-04T10:00:00Z", "/limited", &[("x-forwarded-for", "192.0.2.1")]),
        // A minute later the window is fresh again.
        record("2026-12-04T10:01:30Z", "/limited", &[("x-forwarded-for", "192.0.2.1")]),
        record("2026-12-04T10:00:05Z", "/json", &[("user-agent", "sqlmap/1.7")]),
        // Credentials redacted and no principal recorded: undecided, never allowed.
        serde_json::json!({
            "v": 1, "ts": "2026-12-04T10:00:06Z",
            "req": { "method": "GET", "path": "/keys/json", "headers": [["host", "api.example.com"], ["x-api-key", "hmac-sha256:k:AAAA"]] },
            "redactions": [{ "where": "req.header:x-api-key", "how": "hmac" }]
        })
        .to_string(),
        "{broken".to_owned(),
    ];
    let traffic = dir.write("t.jsonl", &(lines.join("\n") + "\n"));
    let args = |extra: &[&str]| {
        let mut v = vec![
            "-c".to_owned(),
            new_cfg.display().to_string(),
            traffic.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        replay_json(&refs)
    };

    let (code, r, err) = run(args(&[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["requests"], 7);
    assert_eq!(
        r["inputs"]["skipped"][0]["source"],
        format!("{}:8", traffic.display())
    );
    assert_eq!(r["summary"]["blocked"], 2, "{r:#}");
    assert_eq!(r["summary"]["undecided"], 1, "{r:#}");
    assert_eq!(
        r["summary"]["blocked_2xx"], 2,
        "both blocked requests had a 2xx answer"
    );
    let ex: Vec<String> = r["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["request_id"].as_str().unwrap(),
                e["decision"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        ex.contains(&"id-2026-12-04T10:00:03Z block 429 ratelimit per-ip".to_owned()),
        "{ex:?}"
    );
    assert!(
        ex.contains(&"id-2026-12-04T10:00:05Z block 403 waf.custom no-sqlmap".to_owned()),
        "{ex:?}"
    );
    assert!(
        ex.iter()
            .any(|e| e.contains("undecided (the credentials were redacted")),
        "{ex:?}"
    );

    // Determinism: the same inputs give byte-identical reports, in every format.
    for fmt in ["json", "text", "md"] {
        let out = |_: ()| {
            rampart()
                .arg("replay")
                .args(args(&["--report", fmt]))
                .output()
                .unwrap()
                .stdout
        };
        assert_eq!(out(()), out(()), "{fmt}");
    }
    let md = String::from_utf8(
        rampart()
            .arg("replay")
            .args(args(&["--report", "md"]))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(md.starts_with("# Replay of 7 requests"), "{md}");
    assert!(
        md.contains("| waf.custom | `no-sqlmap` | 1 | 1 | 0 |"),
        "{md}"
    );

    // --fail-on.
    assert_eq!(run(args(&["--fail-on", "block"])).0, 1);
    assert_eq!(run(args(&["--fail-on", "blocked>2"])).0, 0);
    assert_eq!(run(args(&["--fail-on", "block_rate>20%"])).0, 1);
    assert_eq!(run(args(&["--fail-on", "block_rate>50%"])).0, 0);
    assert_eq!(run(args(&["--fail-on", "undecided>0"])).0, 1);
    let (code, _, err) = run(args(&["--fail-on", "speed>1"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown measure"), "{err}");
    let (code, _, err) = run(args(&["--fail-on", "change"]));
    assert_eq!(code, 2, "change needs a baseline");
    assert!(err.contains("--baseline"), "{err}");

    // --baseline: the sqlmap request changed, nothing else.
    let (code, r, err) = run(args(&[
        "--baseline",
        old_cfg.to_str().unwrap(),
        "--fail-on",
        "change",
    ]));
    assert_eq!(code, 1, "{err}");
    let changed = r["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{r:#}");
    assert_eq!(changed[0]["before"], "pass");
    assert_eq!(changed[0]["after"], "block 403 waf.custom no-sqlmap");
    let (code, r, _) = run(args(&[
        "--baseline",
        new_cfg.to_str().unwrap(),
        "--fail-on",
        "change",
    ]));
    assert_eq!(code, 0);
    assert_eq!(r["changed"], serde_json::json!([]));

    // --clock fixed: every request at once, so the fifth /limited is refused too.
    let (_, r, _) = run(args(&["--clock", "fixed:2026-12-04T10:00:00Z"]));
    assert_eq!(r["summary"]["blocked"], 3, "{r:#}");

    // --learn: what passed teaches the endpoints (the blocked sqlmap request teaches nothing).
    let (_, r, _) = run(args(&["--learn"]));
    let learned = &r["learned"][0];
    assert_eq!(learned["api"], "app", "{r:#}");
    let eps: Vec<String> = learned["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["template"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(eps, ["GET /limited"], "{r:#}");
    assert_eq!(learned["recommendations"][0]["endpoint"], "GET /limited");
    assert_eq!(
        learned["recommendations"][0]["confidence"], "none",
        "one session"
    );

    // --auth anonymous: the key request is refused, which is a decision.
    let (_, r, _) = run(args(&["--auth", "anonymous"]));
    assert_eq!(
        r["summary"]["undecided"], 1,
        "redacted credentials stay undecided"
    );

    // Inputs that cannot be used: exit 2 with the reason.
    let bad = dir.write("bad.jsonl", "GET / HTTP/1.1\n");
    let out = rampart()
        .args(["replay", "-c"])
        .arg(&new_cfg)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a rampart-traffic"));
    let broken_cfg = dir.write("broken.yaml", "listeners: 3\n");
    let out = rampart()
        .args(["replay", "-c"])
        .arg(&broken_cfg)
        .arg(&traffic)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn har_from_mitmproxy_replays() {
    let dir = TempDir::new("rampart-replay-har");
    dir.write("hmac.key", "a recorder key of 32 bytes......");
    let cfg = dir.write("rampart.yaml", config("http://127.0.0.1:9"));
    let har =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rampart-traffic/tests/data/mitmproxy.har");
    let (code, r, err) = replay_json(&[
        "-c",
        cfg.to_str().unwrap(),
        har.to_str().unwrap(),
        "--client-ip",
        "192.0.2.99",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["requests"], 6, "{r:#}");
    assert_eq!(r["inputs"]["skipped"], serde_json::json!([]));
    // The sqlmap request is refused; everything else passes.
    assert_eq!(r["summary"]["blocked"], 1, "{r:#}");
    assert_eq!(
        r["examples"][0]["decision"],
        "block 403 waf.custom no-sqlmap"
    );
    assert_eq!(r["summary"]["blocked_2xx"], 1);
    let notes = r["fidelity"]["notes"].to_string();
    assert!(notes.contains("192.0.2.99 stood for the client"), "{notes}");
}
