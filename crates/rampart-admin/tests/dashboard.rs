//! The dashboard's security over plain HTTP: no page without a session, login with the token
//! and a login CSRF token, session cookie attributes, CSRF on every form, the CSP header, and
//! no secret rendered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use rampart_test_support::{Collected, HttpClient, TestGateway, TestUpstream};

const TOKEN: &str = "dashboard-test-token-0123456789";

fn yaml(up: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0, trusted_proxies: [127.0.0.1/32] }}
admin: {{ bind: 127.0.0.1:0, token: {TOKEN} }}
upstreams:
  app: {{ targets: ["{up}"] }}
ddos: {{ per_ip: {{ requests_per_sec: 1000, ban_secs: 60 }} }}
waf:
  custom:
    - {{ id: attack-tool, when: 'any(lower(http.request.headers["user-agent"]) wildcard "*sqlmap*")', action: block }}
apis:
  - {{ name: app, upstream: app }}
events: {{ sqlite: events.db }}
"#
    )
}

struct Browser {
    base: String,
    c: HttpClient,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(gw: &TestGateway) -> Self {
        Self {
            base: format!("http://{}", gw.admin_addr()),
            c: HttpClient::new(),
            cookies: Vec::new(),
        }
    }

    async fn req(&mut self, method: Method, path: &str, form: &str) -> Collected {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            b = b.header("cookie", c.join("; "));
        }
        if !form.is_empty() {
            b = b.header("content-type", "application/x-www-form-urlencoded");
        }
        let r = self
            .c
            .send(b.body(Full::new(Bytes::from(form.to_owned()))).unwrap())
            .await
            .unwrap();
        for v in r.headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
        r
    }

    async fn get(&mut self, path: &str) -> Collected {
        self.req(Method::GET, path, "").await
    }

    async fn post(&mut self, path: &str, form: &str) -> Collected {
        self.req(Method::POST, path, form).await
    }
}

/// The value of a hidden `csrf` input in a page.
fn csrf_of(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[i..].split('"').next().unwrap().to_owned()
}

const PAGES: [&str; 8] = [
    "/ui/",
    "/ui/?window=day",
    "/ui/events",
    "/ui/apis",
    "/ui/rules",
    "/ui/bans",
    "/ui/config",
    "/ui/events/export?format=csv",
];

async fn login(b: &mut Browser) {
    let page = b.get("/ui/login").await;
    let csrf = csrf_of(&page.text());
    let r = b
        .post("/ui/login", &format!("csrf={csrf}&token={TOKEN}"))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.headers["location"], "/ui/");
}

#[tokio::test]
async fn no_page_without_a_session_and_login_needs_the_token_and_its_csrf() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url())).await;
    let mut b = Browser::new(&gw);
    // Without a session: pages redirect to the login, posts are refused, live updates too.
    for p in PAGES.iter().chain(&["/ui/live", "/ui/events/1"]) {
        let r = b.get(p).await;
        assert_eq!(r.status, 303, "{p}");
        assert_eq!(r.headers["location"], "/ui/login", "{p}");
        assert!(r.headers.contains_key("content-security-policy"), "{p}");
    }
    for p in ["/ui/bans", "/ui/bans/remove", "/ui/reload", "/ui/logout"] {
        let r = b.post(p, "target=192.0.2.1&csrf=x").await;
        assert_eq!(r.status, 401, "{p}");
    }
    // A session cookie that was never issued is no session.
    b.cookies
        .push(("rampart_session".to_owned(), "0".repeat(64)));
    assert_eq!(b.get("/ui/").await.status, 303);
    b.cookies.clear();

    // The login page: the strict CSP, a login CSRF cookie.
    let page = b.get("/ui/login").await;
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert_eq!(csp, rampart_admin::CSP);
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let csrf = csrf_of(&page.text());
    // A forged login (no CSRF, or another one) is refused before the token is looked at.
    let r = b.post("/ui/login", &format!("token={TOKEN}")).await;
    assert_eq!(r.status, 403);
    let mut other = Browser::new(&gw);
    let r = other
        .post("/ui/login", &format!("csrf={csrf}&token={TOKEN}"))
        .await;
    assert_eq!(r.status, 403, "the CSRF value without its cookie");
    // A wrong token: 401, and the page says so.
    let page = b.get("/ui/login").await;
    let csrf = csrf_of(&page.text());
    let r = b
        .post("/ui/login", &format!("csrf={csrf}&token=wrong"))
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("not the admin token"));
    // The right one: a session cookie, HttpOnly and SameSite=Strict (not Secure: plain HTTP).
    let page = b.get("/ui/login").await;
    let csrf = csrf_of(&page.text());
    let r = b
        .post("/ui/login", &format!("csrf={csrf}&token={TOKEN}"))
        .await;
    assert_eq!(r.status, 303);
    let set: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("rampart_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert!(session.contains("Path=/"));
    assert!(!session.contains("Secure"));
    // Every page answers now, with the CSP; none shows the token.
    for p in PAGES {
        let r = b.get(p).await;
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        assert!(r.headers.contains_key("content-security-policy"), "{p}");
        assert!(!r.text().contains(TOKEN), "{p} shows the token");
    }
    // Ten failed logins lock the address out, the right token included.
    let mut locked = Browser::new(&gw);
    for _ in 0..10 {
        let page = locked.get("/ui/login").await;
        let csrf = csrf_of(&page.text());
        locked
            .post("/ui/login", &format!("csrf={csrf}&token=nope"))
            .await;
    }
    let page = locked.get("/ui/login").await;
    let csrf = csrf_of(&page.text());
    let r = locked
        .post("/ui/login", &format!("csrf={csrf}&token={TOKEN}"))
        .await;
    assert_eq!(r.status, 429);
    gw.shutdown().await;
}

#[tokio::test]
async fn every_form_needs_the_sessions_csrf_token() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url())).await;
    let mut b = Browser::new(&gw);
    login(&mut b).await;
    let page = b.get("/ui/bans").await;
    let csrf = csrf_of(&page.text());
    // Forged: no token, a wrong one.
    for form in [
        "target=198.51.100.7&seconds=60".to_owned(),
        format!("target=198.51.100.7&seconds=60&csrf={}", "0".repeat(64)),
    ] {
        let r = b.post("/ui/bans", &form).await;
        assert_eq!(r.status, 403, "{form}");
        assert!(r.text().contains("CSRF"));
    }
    let bans = b.get("/ui/bans").await.text();
    assert!(bans.contains("No ban in force"), "a forged post banned");
    for p in ["/ui/bans/remove", "/ui/reload", "/ui/logout"] {
        assert_eq!(b.post(p, "target=198.51.100.7").await.status, 403, "{p}");
    }
    // With the token: banned, and the data plane refuses the client at once.
    let r = b
        .post(
            "/ui/bans",
            &format!("target=198.51.100.7&seconds=60&csrf={csrf}"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Banned ip:198.51.100.7"));
    let blocked = HttpClient::new()
        .send(
            Request::get(gw.url("public", "/json"))
                .header("x-forwarded-for", "198.51.100.7")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(blocked.status, 429);
    // Unban.
    let r = b
        .post(
            "/ui/bans/remove",
            &format!("target=ip:198.51.100.7&csrf={csrf}"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Lifted the ban"));
    // Reload through the form.
    let r = b.post("/ui/reload", &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Reloaded"));
    // Log out: the session is gone.
    let r = b.post("/ui/logout", &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 303);
    assert_eq!(b.get("/ui/").await.status, 303);
    gw.shutdown().await;
}

#[tokio::test]
async fn static_assets_are_public_and_carry_no_data() {
    let up = TestUpstream::start().await;
    let gw = TestGateway::start(&yaml(&up.url())).await;
    let mut b = Browser::new(&gw);
    let css = b.get("/ui/static/style.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let js = b.get("/ui/static/app.js").await;
    assert_eq!(js.status, 200);
    assert!(js.text().contains("EventSource"));
    assert_eq!(b.get("/").await.headers["location"], "/ui/");
    gw.shutdown().await;
}
