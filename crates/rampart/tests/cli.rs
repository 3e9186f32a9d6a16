//! The command line: `rampart check` output (golden), exit codes, and `rampart demo`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn rampart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares with a golden file; `BLESS=1` rewrites it.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(
        actual,
        expected,
        "output differs from {} (run with BLESS=1 to accept)",
        path.display()
    );
}

#[test]
fn check_reports_all_five_mistakes_with_carets() {
    let out = rampart()
        .current_dir(golden_dir())
        .args(["check", "-c", "five-mistakes.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches("error: ").count(), 5, "{stderr}");
    assert_golden("five-mistakes.stderr", &stderr);
}

#[test]
fn check_exit_codes() {
    let dir = rampart_test_support::TempDir::new("rampart-cli");
    let ok = dir.write(
        "ok.yaml",
        "listeners:\n  - { name: p, bind: 127.0.0.1:0 }\nupstreams:\n  u: { targets: [\"http://127.0.0.1:9\"] }\napis:\n  - { name: a, upstream: u }\n",
    );
    let out = rampart().args(["check", "-c"]).arg(&ok).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
    let out = rampart()
        .args(["check", "-c"])
        .arg(dir.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let bad_yaml = dir.write("bad.yaml", "listeners: [ {name: p\n");
    let out = rampart()
        .args(["check", "-c"])
        .arg(&bad_yaml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid YAML"));
}

#[test]
fn rules_test_runs_the_documented_example() {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/rules");
    let out = rampart()
        .current_dir(&docs)
        .args(["rules", "test", "rules.test.yaml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("\nok      ").count(), 10, "{stdout}");
    assert!(
        stdout.ends_with("result: 10 passed, 0 failed\n"),
        "{stdout}"
    );
}

#[test]
fn rules_test_reports_every_difference() {
    let out = rampart()
        .current_dir(golden_dir())
        .args(["rules", "test", "rules-failing.test.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_golden(
        "rules-failing.stdout",
        &String::from_utf8(out.stdout).unwrap(),
    );
}

#[test]
fn rules_test_reports_every_problem_of_a_test_file() {
    let out = rampart()
        .current_dir(golden_dir())
        .args(["rules", "test", "rules-bad.test.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches("error: ").count(), 5, "{stderr}");
    assert_golden("rules-bad.stderr", &stderr);
    // A test file whose configuration does not compile cannot run either.
    let dir = rampart_test_support::TempDir::new("rules-test-config");
    dir.write("rampart.yaml", "listeners: []\nbogus: 1\n");
    let file = dir.write(
        "t.yaml",
        "tests:\n  - { name: x, request: {}, expect: { action: pass } }\n",
    );
    let out = rampart()
        .args(["rules", "test"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key \"bogus\""));
}

#[test]
fn hash_password_prints_a_hash_the_gateway_accepts() {
    use std::io::Write;
    for args in [
        vec!["hash-password"],
        vec!["hash-password", "--bcrypt", "--cost", "4"],
    ] {
        let mut child = rampart()
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"correct horse\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let kind = rampart_stages::authn::password::PasswordHashKind::parse(&hash).unwrap();
        assert!(kind.verify(b"correct horse"), "{args:?}: {hash}");
        assert!(!kind.verify(b"correct horse "));
    }
    let out = rampart()
        .arg("hash-password")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an empty password is refused");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn demo_serves_and_blocks() {
    let (port, admin, tls) = (free_port(), free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--admin-port",
            &admin.to_string(),
            "--tls-port",
            &tls.to_string(),
            "--exit-after-secs",
            "20",
        ])
        // The CRS v4 of the corpus (the demo looks there first, then where distributions
        // install it).
        .env(
            "RAMPART_CRS",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/crs"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let c = rampart_test_support::HttpClient::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if c.get(&format!("{base}/api/users/1"))
            .await
            .is_ok_and(|r| r.status == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the demo did not come up");
    let r = c.get(&format!("{base}/api/users/1")).await.unwrap();
    assert_eq!(r.json()["name"], "Alan Turing");
    let blocked = c
        .send(
            http::Request::get(format!("{base}/api/users/1"))
                .header("x-forwarded-for", "203.0.113.7")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.json()["error"], "forbidden");
    // The WAF's custom rules: a header rule, a path rule, a JSON body rule.
    let ua = c
        .send(
            http::Request::get(format!("{base}/api/users/1"))
                .header("user-agent", "sqlmap/1.7")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ua.status, 403);
    assert_eq!(ua.json()["error"], "waf_rule_match");
    let injected = c
        .get(&format!("{base}/api/users/1%20or%201=1"))
        .await
        .unwrap();
    assert_eq!(injected.status, 400);
    let order = |quantity: i64| {
        http::Request::post(format!("{base}/api/orders"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(format!(
                r#"{{"user_id":1,"item":"pen","quantity":{quantity}}}"#
            ))))
            .unwrap()
    };
    // A body the OpenAPI document refuses is refused by schema validation, ahead of the WAF's
    // body rules; markup in an item (valid for the document) by a custom rule on the body.
    let negative = c.send(order(-5)).await.unwrap();
    assert_eq!(negative.status, 400);
    assert_eq!(negative.json()["error"], "schema_violation");
    let markup = c
        .send(
            http::Request::post(format!("{base}/api/orders"))
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    br#"{"user_id":1,"item":"<script>x</script>","quantity":1}"#,
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(markup.status, 400);
    assert_eq!(markup.json()["error"], "waf_rule_match");
    assert_eq!(c.send(order(2)).await.unwrap().status, 201);
    // OpenAPI validation: a parameter out of range, an undeclared endpoint and method.
    let r = c.get(&format!("{base}/api/users?limit=500")).await.unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.json()["errors"][0]["location"], "/query/limit");
    let r = c
        .get(&format!("{base}/api/users?limit=2&plan=pro"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["users"].as_array().unwrap().len(), 2);
    assert_eq!(
        c.get(&format!("{base}/api/internal/debug"))
            .await
            .unwrap()
            .status,
        404
    );
    let delete = http::Request::delete(format!("{base}/api/users/1"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(c.send(delete).await.unwrap().status, 405);
    // Rate limits: the order burst is 5 per client (three orders were tried above); limited
    // routes carry the IETF headers.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = c.send(order(1)).await.unwrap();
        assert!(r.headers.contains_key("ratelimit-policy"));
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, [201, 201, 429, 429]);
    // DLP: a card in a response is masked; a credential sent into the API is refused (from
    // another client address, whose order burst is untouched).
    let billing = c.get(&format!("{base}/api/users/1/billing")).await.unwrap();
    assert_eq!(billing.status, 200, "{}", billing.text());
    assert_eq!(
        billing.json()["card"],
        "**** **** **** ****",
        "{}",
        billing.text()
    );
    let leak = c
        .send(
            http::Request::post(format!("{base}/api/orders"))
                .header("content-type", "application/json")
                .header("x-forwarded-for", "192.0.2.77")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    br#"{"user_id":1,"item":"AKIAZ7QRS2LMN4XPQ3TD","quantity":1}"#,
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(leak.status, 403, "{}", leak.text());
    assert_eq!(leak.json()["error"], "data_leak");
    // The partner API: the credentials the demo printed work, and the wrong ones do not.
    let printed = {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut text = String::new();
        while let Some(l) = lines.next_line().await.unwrap() {
            text.push_str(&l);
            text.push('\n');
            if l.contains("Press Ctrl-C") {
                break;
            }
        }
        text
    };
    let grab = |prefix: &str| -> String {
        let at = printed
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} in {printed}"))
            + prefix.len();
        printed[at..].chars().take_while(|c| *c != '\'').collect()
    };
    // The OWASP CRS, found and on: a Shellshock user agent is refused by its anomaly score.
    assert!(
        printed.contains("the OWASP CRS from ") && printed.contains("corpora/crs/rules"),
        "{printed}"
    );
    let shellshock = c
        .send(
            http::Request::get(format!("{base}/api/users/1"))
                .header("user-agent", "() { :; }; echo vulnerable")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(shellshock.status, 403, "{}", shellshock.text());
    assert_eq!(shellshock.json()["error"], "waf_rule_match");
    let bearer = grab("Authorization: Bearer ");
    let key = grab("x-api-key: demo-");
    let partner = |path: &str, header: (&str, String)| {
        http::Request::get(format!("{base}{path}"))
            .header(header.0, header.1)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let jwt = ("authorization", format!("Bearer {bearer}"));
    assert_eq!(
        c.send(partner("/partner/users/1", jwt.clone()))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        c.send(partner("/partner/users/2", jwt))
            .await
            .unwrap()
            .status,
        403
    );
    let api_key = ("x-api-key", format!("demo-{key}"));
    assert_eq!(
        c.send(partner("/partner/users/2", api_key))
            .await
            .unwrap()
            .status,
        200
    );
    let wrong = ("x-api-key", "demo-wrong-key-000000".to_owned());
    assert_eq!(
        c.send(partner("/partner/users/2", wrong))
            .await
            .unwrap()
            .status,
        401
    );
    // mTLS on the demo's TLS listener, with the partner certificate it wrote.
    let dir = std::env::temp_dir().join(format!("rampart-demo-{}", child.id().unwrap()));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let partner_id = rampart_test_support::ClientIdentity {
        cert_pem: read("partner.pem"),
        key_pem: read("partner.key"),
        cert_path: dir.join("partner.pem"),
        key_path: dir.join("partner.key"),
    };
    let tls_get = || {
        // The headers curl sends (without them the CRS scores a missing Host and Accept).
        http::Request::get("https://localhost/partner/users/2")
            .header("host", "localhost")
            .header("user-agent", "curl/8.5.0")
            .header("accept", "*/*")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{tls}").parse().unwrap();
    let with_cert =
        rampart_test_support::tls_client_config(&read("ca.pem"), Some(&partner_id), &["http/1.1"]);
    let (r, _, _) = rampart_test_support::tls_connect(addr, "localhost", with_cert, tls_get())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let without = rampart_test_support::tls_client_config(&read("ca.pem"), None, &["http/1.1"]);
    let (r, _, _) = rampart_test_support::tls_connect(addr, "localhost", without, tls_get())
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    // The demo's own rules test, written beside its configuration, passes.
    let out = rampart()
        .args(["rules", "test"])
        .arg(dir.join("rules.test.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        c.get(&format!("{base}/nothing-here")).await.unwrap().status,
        404
    );
    // Everything so far was recorded; replayed with the same configuration, every decision
    // is the one the gateway made.
    let traffic = dir.join("traffic.jsonl");
    for _ in 0..50 {
        if std::fs::read_to_string(&traffic).is_ok_and(|t| t.lines().count() > 20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = rampart()
        .args(["replay", "--report", "json", "--fail-on", "mismatch", "-c"])
        .arg(dir.join("rampart.yaml"))
        .arg(&traffic)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{report:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report["summary"]["requests"].as_u64().unwrap() > 20,
        "{report:#}"
    );
    assert!(
        report["summary"]["blocked"].as_u64().unwrap() > 5,
        "{report:#}"
    );
    let m = c
        .get(&format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(m.status, 401, "metrics need the token");
    // The dashboard's address and the token are printed, and the token opens the admin API;
    // the demo's background traffic shows up there without anyone sending a request.
    assert!(
        printed.contains(&format!("dashboard   http://127.0.0.1:{admin}/ui/")),
        "{printed}"
    );
    let token: String = {
        let at = printed.find("token: ").unwrap() + "token: ".len();
        printed[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect()
    };
    let status = || {
        c.send(
            http::Request::get(format!("http://127.0.0.1:{admin}/api/v1/status"))
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
    };
    let before = status().await.unwrap();
    assert_eq!(before.status, 200, "{}", before.text());
    let n = before.json()["requests"]["total"].as_u64().unwrap();
    let mut grew = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if status().await.unwrap().json()["requests"]["total"]
            .as_u64()
            .unwrap()
            > n
        {
            grew = true;
            break;
        }
    }
    assert!(grew, "no background traffic reached the gateway");
    let login = c
        .get(&format!("http://127.0.0.1:{admin}/ui/login"))
        .await
        .unwrap();
    assert_eq!(login.status, 200);
    child.kill().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_and_sigterm_drains() {
    let up = rampart_test_support::TestUpstream::start().await;
    let dir = rampart_test_support::TempDir::new("rampart-hup");
    let port = free_port();
    let cfg = |blocked: &str| {
        format!(
            "listeners:\n  - {{ name: p, bind: 127.0.0.1:{port}, trusted_proxies: [127.0.0.1/32] }}\nupstreams:\n  u: {{ targets: [\"{}\"] }}\nip_rules:\n  - {{ action: block, list: [{blocked}] }}\napis:\n  - {{ name: a, upstream: u }}\nevents: {{ sqlite: \"off\" }}\n",
            up.url()
        )
    };
    let path = dir.write("rampart.yaml", cfg("203.0.113.0/24"));
    // File polling off: only the signal can reload.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["--log", "warn", "run", "--watch-interval-ms", "0", "-c"])
        .arg(&path)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let c = rampart_test_support::HttpClient::new();
    let url = format!("http://127.0.0.1:{port}/json");
    let status = |ip: &'static str| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            c.send(
                http::Request::get(url)
                    .header("x-forwarded-for", ip)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap(),
            )
            .await
            .map(|r| r.status.as_u16())
            .unwrap_or(0)
        }
    };
    for _ in 0..100 {
        if status("198.51.100.1").await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status("198.51.100.1").await, 200);
    std::fs::write(&path, cfg("198.51.100.0/24")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status("198.51.100.1").await,
        200,
        "no reload without the signal"
    );
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let mut reloaded = false;
    for _ in 0..100 {
        if status("198.51.100.1").await == 403 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reloaded, "SIGHUP did not reload");
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
