//! The dashboard end to end in real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`), driven over WebDriver: log in, send blocked
//! traffic through the gateway, see it on the overview and in the events list, filter by rule,
//! open an event, ban and unban, watch the live counters move. Screenshots go to
//! `<target>/tmp/dashboard-screenshots/` (docs/dashboard.md links them).
//!
//! Without Chromium this test fails and says how to install it; it is never skipped silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use fantoccini::{Client, ClientBuilder, Locator};
use http::Request;
use http_body_util::Full;
use rampart_test_support::{HttpClient, TestGateway, TestUpstream};

const TOKEN: &str = "browser-test-token-0123456789abcdef";

fn yaml(up: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
admin: {{ bind: 127.0.0.1:0, token: {TOKEN} }}
upstreams:
  app: {{ targets: ["{up}"] }}
ddos: {{ per_ip: {{ requests_per_sec: 1000, ban_secs: 60 }} }}
ip_rules:
  - {{ id: bad-net, action: block, list: [203.0.113.0/24] }}
waf:
  custom:
    - {{ id: attack-tool, when: 'any(lower(http.request.headers["user-agent"]) wildcard "*sqlmap*")', action: block }}
    - {{ id: debug-flag, when: 'http.request.uri.args["debug"] == "1"', action: block, enforcement: monitor }}
apis:
  - {{ name: app, upstream: app }}
events: {{ sqlite: events.db }}
"#
    )
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for n in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

async fn driver() -> Driver {
    let Some(bin) = find(&["chromedriver"]) else {
        panic!(
            "chromedriver not found: the dashboard's browser tests need Chromium \
             (apt-get install chromium chromium-driver; .ci/run installs them)"
        );
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let d = Driver { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(d: &Driver) -> Client {
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"])
        .expect("chromium not found (apt-get install chromium)");
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1360,1100", "--no-first-run", "--disable-extensions"]
        }
    }))
    .unwrap();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a Chromium session")
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// The text of an element; retried while a navigation replaces the page under it.
async fn text(c: &Client, css: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match c.find(Locator::Css(css)).await {
            Ok(e) => match e.text().await {
                Ok(t) => return t,
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no text at {css}: {last}");
}

/// Waits until the text at `css` satisfies `ok` (after a click the old page can still be
/// there for a moment), and panics with the last text seen.
async fn wait_text(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if ok(&t) {
                    return t;
                }
                last = t;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the text at {css} never became what was expected; last: {last:?}");
}

async fn send(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut b = Request::get(gw.url("public", path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = HttpClient::new()
        .send(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let rid = r
        .headers
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status.as_u16(), rid)
}

#[tokio::test]
async fn the_dashboard_in_chromium() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url())).await;
    let admin = format!("http://{}", gw.admin_addr());
    let d = driver().await;
    let c = browser(&d).await;
    let result = run(&c, &gw, &admin).await;
    let _ = c.close().await;
    gw.shutdown().await;
    result.unwrap();
}

async fn run(c: &Client, gw: &TestGateway, admin: &str) -> Result<(), String> {
    // Not logged in: the login page.
    c.goto(&format!("{admin}/ui/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
    shot(c, "login").await;
    // A wrong token, then the right one.
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys("wrong-token")
        .await
        .unwrap();
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text(c, "#login-error")
        .await
        .contains("not the admin token"));
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(c, "/ui/").await;
    wait_text(c, "#total-blocked", |t| t == "0").await;

    // Traffic through the gateway: good requests, an attack tool, a blocked network, a probe
    // that a monitor-mode rule would block.
    for _ in 0..5 {
        assert_eq!(send(gw, "/json", &[]).await.0, 200);
    }
    let (status, attack_rid) = send(
        gw,
        "/json",
        &[
            ("user-agent", "sqlmap/1.7"),
            ("x-forwarded-for", "198.51.100.23"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        send(gw, "/json", &[("x-forwarded-for", "203.0.113.9")])
            .await
            .0,
        403
    );
    assert_eq!(send(gw, "/json?debug=1", &[]).await.0, 200);
    wait_for(|| async {
        gw.gateway
            .events()
            .stats()
            .stored
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    })
    .await;

    // The live counter in the header moves without a reload (Server-Sent Events).
    let mut live = String::new();
    for _ in 0..50 {
        live = text(c, "[data-live='requests']").await;
        if live == "8" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(live, "8", "the live counter did not update");

    // The overview shows the blocks, by stage and by rule.
    c.goto(&format!("{admin}/ui/")).await.unwrap();
    wait_text(c, "#total-requests", |t| t == "8").await;
    wait_text(c, "#total-blocked", |t| t == "2").await;
    wait_text(c, "#total-would-block", |t| t == "1").await;
    let rules = text(c, "#top-rules").await;
    assert!(
        rules.contains("attack-tool") && rules.contains("debug-flag"),
        "{rules}"
    );
    wait_text(c, "#by-stage", |t| t.contains("waf.custom")).await;
    wait_text(c, "#top-blocked", |t| t.contains("198.51.100.23")).await;
    let svg = c
        .find_all(Locator::Css(
            "#chart-traffic svg polyline, #chart-traffic svg path",
        ))
        .await
        .unwrap();
    assert!(!svg.is_empty(), "the traffic chart is drawn");
    shot(c, "overview").await;

    // The events list, then filtered by rule.
    c.find(Locator::Id("nav-events"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rows = c.find_all(Locator::Css("#events tr.event")).await.unwrap();
    assert_eq!(rows.len(), 3);
    shot(c, "events").await;
    c.find(Locator::Id("filter-rule"))
        .await
        .unwrap()
        .send_keys("attack-tool")
        .await
        .unwrap();
    c.find(Locator::Id("apply-filters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_url(c, "rule=attack-tool").await;
    let rows = c.find_all(Locator::Css("#events tr.event")).await.unwrap();
    assert_eq!(rows.len(), 1);
    wait_text(c, "#events tr.event td.rule", |t| t == "attack-tool").await;
    shot(c, "events-filtered").await;

    // Open it: the request id the client saw, and the redacted match.
    c.find(Locator::Css("#events a.open"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#request-id", |t| t == attack_rid).await;
    assert!(!text(c, "#event-match").await.is_empty());
    shot(c, "event").await;

    // Ban the attacker from the bans page; the data plane refuses it at once.
    c.find(Locator::Id("nav-bans"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#no-bans", |t| t.contains("No ban")).await;
    c.find(Locator::Id("ban-target"))
        .await
        .unwrap()
        .send_keys("198.51.100.23")
        .await
        .unwrap();
    c.find(Locator::Id("ban-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#flash", |t| t.contains("Banned ip:198.51.100.23")).await;
    wait_text(c, "#bans", |t| t.contains("ip:198.51.100.23")).await;
    assert_eq!(
        send(gw, "/json", &[("x-forwarded-for", "198.51.100.23")])
            .await
            .0,
        429
    );
    shot(c, "bans").await;
    // Unban: the client passes again.
    c.find(Locator::Css("#bans button.unban"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#flash", |t| t.contains("Lifted the ban")).await;
    wait_text(c, "#no-bans", |t| t.contains("No ban")).await;
    assert_eq!(
        send(gw, "/json", &[("x-forwarded-for", "198.51.100.23")])
            .await
            .0,
        200
    );

    // The other pages.
    c.find(Locator::Id("nav-rules"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#rules", |t| t.contains("monitor")).await;
    shot(c, "rules").await;
    c.find(Locator::Id("nav-apis"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#operations", |t| t.contains("app")).await;
    shot(c, "apis").await;
    // What discovery learned from the same traffic.
    c.find(Locator::Id("nav-discovery"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#learned", |t| t.contains("GET /json")).await;
    wait_text(c, "#no-findings", |t| t.contains("No differences")).await;
    wait_text(c, "#recommendations", |t| t.contains("GET /json")).await;
    shot(c, "discovery").await;
    c.find(Locator::Id("nav-config"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let yaml = text(c, "#config-yaml").await;
    assert!(yaml.contains("[redacted]") && !yaml.contains(TOKEN));
    c.find(Locator::Id("reload"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(c, "#last-reload", |t| t.starts_with("applied")).await;
    shot(c, "config").await;

    // The browser enforced the CSP and found nothing to complain about: no console errors
    // (a blocked inline script or style would be one).
    let logs = c
        .execute(
            "return (window.performance && performance.getEntriesByType('resource').length) || 0;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        logs.as_u64().unwrap_or(0) >= 2,
        "the script and style loaded"
    );

    // Log out.
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(c, "/ui/login").await;
    c.goto(&format!("{admin}/ui/events")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
    Ok(())
}

/// Waits until the page's address contains `needle` (a form's navigation may still run).
async fn wait_url(c: &Client, needle: &str) {
    for _ in 0..100 {
        if c.current_url().await.unwrap().as_str().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the address never contained {needle}: {}",
        c.current_url().await.unwrap()
    );
}

/// Waits until the page's path is `path`.
async fn wait_path(c: &Client, path: &str) {
    for _ in 0..100 {
        if c.current_url().await.unwrap().path() == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the page never reached {path}: {}",
        c.current_url().await.unwrap()
    );
}

async fn wait_for<F, Fut>(f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out");
}
