//! The dashboard: pages rendered on the server (askama templates, checked at compile time),
//! SVG charts, a session cookie from a login with the admin token, a CSRF token on every form,
//! and live counters over Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use rampart_proxy::stats::Window;
use rampart_proxy::StoredEvent;
use serde::Deserialize;

use crate::api::{self, EventParams};
use crate::auth::{self, Session};
use crate::{peer_ip, AdminState};

const SESSION_COOKIE: &str = "rampart_session";
const LOGIN_COOKIE: &str = "rampart_login";

type St = State<Arc<AdminState>>;

pub(crate) fn routes(state: Arc<AdminState>) -> Router<Arc<AdminState>> {
    let private = Router::new()
        .route("/ui/", get(overview))
        .route("/ui/events", get(events))
        .route("/ui/events/export", get(export))
        .route("/ui/events/{id}", get(event))
        .route("/ui/apis", get(apis))
        .route("/ui/discovery", get(discovery))
        .route("/ui/rules", get(rules))
        .route("/ui/bans", get(bans).post(add_ban))
        .route("/ui/bans/remove", post(remove_ban))
        .route("/ui/config", get(config))
        .route("/ui/reload", post(reload))
        .route("/ui/logout", post(logout))
        .route("/ui/live", get(live))
        .layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/static/style.css", get(style))
        .route("/ui/static/app.js", get(script))
        .merge(private)
}

fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ctype)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../static/style.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../static/app.js"),
    )
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(st: &AdminState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if st.tls {
        c.push_str("; Secure");
    }
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Renders a template; a template error is a 500 with no detail shown.
fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "A dashboard template failed.");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

async fn require_session(State(st): St, mut req: Request, next: Next) -> Response {
    let now = st.now_ms();
    let session = cookie(req.headers(), SESSION_COOKIE).and_then(|id| st.sessions.get(&id, now));
    match session {
        Some(s) => {
            req.extensions_mut().insert(s);
            next.run(req).await
        }
        None if req.method() == Method::GET => Redirect::to("/ui/login").into_response(),
        None => (StatusCode::UNAUTHORIZED, "log in first").into_response(),
    }
}

/// A form posted with this session's CSRF token.
fn csrf_ok(session: &Session, given: &str) -> bool {
    !given.is_empty() && auth::constant_time_eq(session.csrf.as_bytes(), given.as_bytes())
}

fn forged() -> Response {
    (
        StatusCode::FORBIDDEN,
        "refused: the form's CSRF token is missing or wrong",
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    error: String,
}

async fn login_page(State(st): St) -> Response {
    login_form(&st, String::new(), StatusCode::OK)
}

fn login_form(st: &AdminState, error: String, status: StatusCode) -> Response {
    // Login CSRF: a random value in a cookie and in the form; the POST must carry both.
    let csrf = auth::random_hex(16);
    let mut r = render(&LoginPage {
        csrf: csrf.clone(),
        error,
    });
    *r.status_mut() = status;
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, LOGIN_COOKIE, &csrf, Some(600)),
    );
    r
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(State(st): St, req: Request) -> Response {
    let ip = peer_ip(&req);
    let now = st.now_ms();
    if let Some(ms) = st.failures.locked(ip, now) {
        return crate::locked_out(ms);
    }
    let expected = cookie(req.headers(), LOGIN_COOKIE).unwrap_or_default();
    let Ok(Form(f)) = Form::<LoginForm>::from_request_parts_and_body(req).await else {
        return forged();
    };
    if expected.is_empty() || !auth::constant_time_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return forged();
    }
    if !st.token_ok(f.token.trim()) {
        st.failures.fail(ip, now);
        return login_form(
            &st,
            "That is not the admin token.".to_owned(),
            StatusCode::UNAUTHORIZED,
        );
    }
    let (id, _csrf) = st.sessions.open(now);
    let mut r = Redirect::to("/ui/").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&st, SESSION_COOKIE, &id, None),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&st, LOGIN_COOKIE, "", Some(0)),
    );
    r
}

/// A form that carries only the CSRF token (and maybe a target).
#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    seconds: String,
}

trait FormExt: Sized {
    async fn from_request_parts_and_body(req: Request) -> Result<Self, ()>;
}

impl<T: serde::de::DeserializeOwned + Send> FormExt for Form<T> {
    async fn from_request_parts_and_body(req: Request) -> Result<Self, ()> {
        <Form<T> as axum::extract::FromRequest<()>>::from_request(req, &())
            .await
            .map_err(|_| ())
    }
}

/// The session and the posted form, or the refusal of a forged post.
async fn posted(req: Request) -> Result<(Session, CsrfForm, std::net::IpAddr), Response> {
    let ip = peer_ip(&req);
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return Err((StatusCode::UNAUTHORIZED, "log in first").into_response());
    };
    let Ok(Form(f)) = Form::<CsrfForm>::from_request_parts_and_body(req).await else {
        return Err(forged());
    };
    if !csrf_ok(&session, &f.csrf) {
        return Err(forged());
    }
    Ok((session, f, ip))
}

async fn logout(State(st): St, req: Request) -> Response {
    let id = cookie(req.headers(), SESSION_COOKIE);
    if let Err(r) = posted(req).await {
        return r;
    }
    if let Some(id) = id {
        st.sessions.close(&id);
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&st, SESSION_COOKIE, "", Some(0)),
    );
    r
}

/// What every page's header shows.
struct Head {
    csrf: String,
    requests: u64,
    blocked: u64,
    dropped: u64,
    flash: String,
}

fn head(st: &AdminState, session: &Session, flash: Option<String>) -> Head {
    let (requests, blocked, _) = st.shared.live.totals_since_start();
    Head {
        csrf: session.csrf.clone(),
        requests,
        blocked,
        dropped: st
            .shared
            .events
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        flash: flash.unwrap_or_default(),
    }
}

fn session_of(req: &Request) -> Session {
    req.extensions()
        .get::<Session>()
        .cloned()
        .unwrap_or(Session {
            csrf: String::new(),
            seen_ms: 0,
        })
}

/// `2026-12-04 18:54:57` (UTC) from milliseconds since the epoch.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn ms_text(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

struct RuleView {
    stage: String,
    rule: String,
    hits: u64,
    blocks: u64,
    would_blocks: u64,
    mode: &'static str,
    last: String,
}

fn rule_views(st: &AdminState) -> Vec<RuleView> {
    st.shared
        .live
        .rules()
        .into_iter()
        .map(|r| RuleView {
            mode: api::mode_of(&r.last_action),
            last: utc(r.last_ms),
            stage: r.stage,
            rule: r.rule,
            hits: r.hits,
            blocks: r.blocks,
            would_blocks: r.would_blocks,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    head: Head,
    window_name: &'static str,
    other_window: &'static str,
    totals: rampart_proxy::stats::Totals,
    p50: String,
    p90: String,
    p99: String,
    dropped: u64,
    traffic_svg: String,
    latency_svg: String,
    by_stage: Vec<(String, u64)>,
    by_reason: Vec<(String, u64)>,
    top_rules: Vec<RuleView>,
    clients: Vec<rampart_proxy::stats::TopRow>,
    blocked_clients: Vec<rampart_proxy::stats::TopRow>,
    consumers: Vec<rampart_proxy::stats::TopRow>,
}

#[derive(Debug, Deserialize)]
struct OverviewParams {
    window: Option<String>,
}

async fn overview(State(st): St, req: Request) -> Response {
    let session = session_of(&req);
    let window = Query::<OverviewParams>::try_from_uri(req.uri())
        .ok()
        .and_then(|Query(p)| p.window)
        .and_then(|w| Window::parse(&w))
        .unwrap_or(Window::Hour);
    let series = st.shared.live.series(window, st.now_ms());
    let (clients, blocked_clients, consumers) = st.shared.live.top(10);
    let mut top_rules = rule_views(&st);
    top_rules.truncate(10);
    let h = head(&st, &session, None);
    let page = OverviewPage {
        dropped: h.dropped,
        head: h,
        window_name: if window == Window::Hour {
            "hour"
        } else {
            "day"
        },
        other_window: if window == Window::Hour {
            "day"
        } else {
            "hour"
        },
        p50: ms_text(series.totals.p50_ms),
        p90: ms_text(series.totals.p90_ms),
        p99: ms_text(series.totals.p99_ms),
        traffic_svg: crate::charts::traffic_svg(&series),
        latency_svg: crate::charts::latency_svg(&series),
        by_stage: series
            .blocks_by_stage
            .iter()
            .map(|n| (n.name.clone(), n.total))
            .collect(),
        by_reason: series
            .blocks_by_reason
            .iter()
            .map(|n| (n.name.clone(), n.total))
            .collect(),
        totals: series.totals,
        top_rules,
        clients,
        blocked_clients,
        consumers,
    };
    render(&page)
}

struct EventView {
    id: i64,
    time: String,
    request_id: String,
    client_ip: String,
    listener: String,
    api: String,
    operation: String,
    consumer: String,
    method: String,
    path: String,
    stage: String,
    rule: String,
    action: &'static str,
    reason: String,
    status: String,
    detail: String,
}

fn view(e: StoredEvent) -> EventView {
    let ev = e.event;
    EventView {
        id: e.id,
        time: utc(ev.time_ms),
        request_id: ev.request_id,
        client_ip: ev.client_ip,
        listener: ev.listener,
        api: ev.api.unwrap_or_default(),
        operation: ev.operation.unwrap_or_default(),
        consumer: ev.consumer.unwrap_or_default(),
        method: ev.method,
        path: ev.path,
        stage: ev.stage,
        rule: ev.rule.unwrap_or_default(),
        action: ev.action.as_str(),
        reason: ev.reason,
        status: ev.status.map(|s| s.to_string()).unwrap_or_default(),
        detail: ev.detail,
    }
}

/// The events page's filters as text fields.
#[derive(Default)]
struct FilterView {
    api: String,
    operation: String,
    stage: String,
    rule: String,
    client_ip: String,
    consumer: String,
    action: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    head: Head,
    f: FilterView,
    since: String,
    since_options: Vec<(String, &'static str)>,
    actions: Vec<String>,
    filter_query: String,
    rows: Vec<EventView>,
    next: Option<i64>,
    error: Option<String>,
}

/// The events page's parameters: the API's filters plus `since` (minutes).
#[derive(Debug, Default, Deserialize)]
struct UiEventParams {
    #[serde(flatten)]
    p: EventParams,
    since: Option<String>,
}

fn with_since(mut u: UiEventParams, now_ms: u64) -> (EventParams, String) {
    let since = u.since.clone().unwrap_or_default();
    if u.p.from_ms.is_none() {
        if let Ok(min) = since.parse::<u64>() {
            u.p.from_ms = Some(now_ms.saturating_sub(min * 60_000));
        }
    }
    (u.p, since)
}

fn filter_query(p: &EventParams, since: &str) -> String {
    let mut s = String::new();
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            if !s.is_empty() {
                s.push('&');
            }
            s.push_str(k);
            s.push('=');
            s.push_str(&percent_encode(v));
        }
    };
    add("api", &p.api);
    add("operation", &p.operation);
    add("stage", &p.stage);
    add("rule", &p.rule);
    add("client_ip", &p.client_ip);
    add("consumer", &p.consumer);
    add("action", &p.action);
    add("since", &Some(since.to_owned()));
    s
}

fn percent_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn events(State(st): St, req: Request) -> Response {
    let session = session_of(&req);
    let u = match Query::<UiEventParams>::try_from_uri(req.uri()) {
        Ok(Query(u)) => u,
        Err(e) => return (StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let (p, since) = with_since(u, st.now_ms());
    let fv = FilterView {
        api: p.api.clone().unwrap_or_default(),
        operation: p.operation.clone().unwrap_or_default(),
        stage: p.stage.clone().unwrap_or_default(),
        rule: p.rule.clone().unwrap_or_default(),
        client_ip: p.client_ip.clone().unwrap_or_default(),
        consumer: p.consumer.clone().unwrap_or_default(),
        action: p.action.clone().unwrap_or_default(),
    };
    let fq = filter_query(&p, &since);
    let (rows, next, error) = match p.query() {
        Ok(q) => match api::run_query(&st, q).await {
            Ok(page) => (page.events.into_iter().map(view).collect(), page.next, None),
            Err(_) => (
                Vec::new(),
                None,
                Some("the event store cannot be read".to_owned()),
            ),
        },
        Err(m) => (Vec::new(), None, Some(m)),
    };
    render(&EventsPage {
        head: head(&st, &session, None),
        f: fv,
        since,
        since_options: vec![
            (String::new(), "all time"),
            ("15".to_owned(), "15 minutes"),
            ("60".to_owned(), "1 hour"),
            ("1440".to_owned(), "1 day"),
            ("10080".to_owned(), "7 days"),
        ],
        actions: ["", "block", "would_block", "log", "mask"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        filter_query: fq,
        rows,
        next,
        error,
    })
}

async fn export(State(st): St, req: Request) -> Response {
    let u = match Query::<UiEventParams>::try_from_uri(req.uri()) {
        Ok(Query(u)) => u,
        Err(e) => return (StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let (p, _) = with_since(u, st.now_ms());
    api::export_response(&st, p).await
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPageT {
    head: Head,
    e: EventView,
}

async fn event(State(st): St, Path(id): Path<String>, req: Request) -> Response {
    let session = session_of(&req);
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::BAD_REQUEST, "an event id is a number").into_response();
    };
    match api::get_event(&st, id).await {
        Ok(Some(e)) => render(&EventPageT {
            head: head(&st, &session, None),
            e: view(e),
        }),
        Ok(None) => (StatusCode::NOT_FOUND, "no such event").into_response(),
        Err(r) => r,
    }
}

struct TrafficView {
    api: String,
    operation: String,
    requests: u64,
    blocked: u64,
    would_block: u64,
    rate: String,
}

#[derive(Template)]
#[template(path = "apis.html")]
struct ApisPage {
    head: Head,
    apis: Vec<String>,
    rows: Vec<TrafficView>,
}

/// A learned endpoint, as the discovery page shows it.
struct LearnedView {
    api: String,
    method: String,
    template: String,
    hits: u64,
}

#[derive(Template)]
#[template(path = "discovery.html")]
struct DiscoveryPage {
    head: Head,
    enabled: bool,
    rows: Vec<LearnedView>,
    /// Per API: nodes and approximate bytes.
    usage: Vec<(String, usize, usize)>,
    /// Differences with the declared documents.
    findings: Vec<rampart_proxy::discovery::SpecFinding>,
    /// Rate-limit recommendations: API, endpoint, sessions, p99, suggestion, confidence.
    recs: Vec<(String, String, u64, String, String, String)>,
}

async fn discovery(State(st): St, req: Request) -> Response {
    let session = session_of(&req);
    let d = st.shared.discovery.load_full();
    let learned = d.as_ref().map(|d| d.learned()).unwrap_or_default();
    let snap = st.shared.state.load().snapshot.clone();
    let findings = d
        .as_ref()
        .map(|d| d.spec_diff(&snap, &learned, &st.shared.live.traffic(), st.now_ms()))
        .unwrap_or_default();
    let mut recs = Vec::new();
    if let Some(d) = &d {
        let settings = rampart_discovery::recommend::Settings::default();
        for (api, (_, rs)) in d.recommendations(&settings) {
            for (endpoint, r) in rs {
                recs.push((
                    api.clone(),
                    endpoint,
                    r.sessions,
                    format!("{:.0}", r.p99),
                    r.suggested.map_or_else(
                        || "-".to_owned(),
                        |t| format!("{t} per {} s", settings.window_secs),
                    ),
                    r.confidence.as_str().to_owned(),
                ));
            }
        }
    }
    let mut rows = Vec::new();
    let mut usage = Vec::new();
    for (api, (endpoints, u)) in &learned.apis {
        usage.push((api.clone(), u.nodes, u.bytes));
        for e in endpoints {
            rows.push(LearnedView {
                api: api.clone(),
                method: e.method.clone(),
                template: e.template.clone(),
                hits: e.hits,
            });
        }
    }
    render(&DiscoveryPage {
        head: head(&st, &session, None),
        enabled: d.is_some(),
        rows,
        usage,
        findings,
        recs,
    })
}

async fn apis(State(st): St, req: Request) -> Response {
    let session = session_of(&req);
    let snap = st.shared.state.load().snapshot.clone();
    render(&ApisPage {
        head: head(&st, &session, None),
        apis: snap.apis.iter().map(|a| a.name.to_string()).collect(),
        rows: st
            .shared
            .live
            .traffic()
            .into_iter()
            .map(|t| TrafficView {
                api: if t.api.is_empty() {
                    "(no API)".to_owned()
                } else {
                    t.api
                },
                operation: t.operation.unwrap_or_default(),
                requests: t.requests,
                blocked: t.blocked,
                would_block: t.would_block,
                rate: format!("{:.1}%", t.block_rate * 100.0),
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    head: Head,
    rows: Vec<RuleView>,
}

async fn rules(State(st): St, req: Request) -> Response {
    let session = session_of(&req);
    render(&RulesPage {
        head: head(&st, &session, None),
        rows: rule_views(&st),
    })
}

struct BanView {
    key: String,
    until: String,
    left: u64,
}

struct LimitedView {
    rule: String,
    key: String,
    refusals: u64,
    last: String,
}

#[derive(Template)]
#[template(path = "bans.html")]
struct BansPage {
    head: Head,
    has_guard: bool,
    bans: Vec<BanView>,
    limited: Vec<LimitedView>,
}

fn bans_page(st: &AdminState, session: &Session, flash: Option<String>) -> Response {
    let list = api::ban_list(st);
    render(&BansPage {
        head: head(st, session, flash),
        has_guard: list.is_some(),
        bans: list
            .unwrap_or_default()
            .into_iter()
            .map(|b| BanView {
                key: b["key"].as_str().unwrap_or_default().to_owned(),
                until: utc(b["until_ms"].as_u64().unwrap_or(0)),
                left: b["seconds_left"].as_u64().unwrap_or(0),
            })
            .collect(),
        limited: st
            .shared
            .live
            .limited(st.now_ms(), 3_600_000)
            .into_iter()
            .map(|l| LimitedView {
                last: utc(l.last_ms),
                rule: l.rule,
                key: l.key,
                refusals: l.refusals,
            })
            .collect(),
    })
}

async fn bans(State(st): St, req: Request) -> Response {
    let session = session_of(&req);
    bans_page(&st, &session, None)
}

fn message_of(r: Response) -> String {
    format!("refused ({})", r.status())
}

async fn add_ban(State(st): St, req: Request) -> Response {
    let (session, f, ip) = match posted(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let seconds = f.seconds.trim().parse::<u64>().unwrap_or(3600);
    let flash = match api::ban(&st, ip, &f.target, seconds).await {
        Ok((key, _)) => format!("Banned {key} for {seconds} s."),
        Err(r) => format!("Not banned: {}", message_of(r)),
    };
    bans_page(&st, &session, Some(flash))
}

async fn remove_ban(State(st): St, req: Request) -> Response {
    let (session, f, ip) = match posted(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let flash = match api::unban(&st, ip, &f.target).await {
        Ok(true) => format!("Lifted the ban on {}.", f.target),
        Ok(false) => format!("{} was not banned.", f.target),
        Err(r) => format!("Not lifted: {}", message_of(r)),
    };
    bans_page(&st, &session, Some(flash))
}

#[derive(Template)]
#[template(path = "config.html")]
struct ConfigPage {
    head: Head,
    file: String,
    yaml: String,
    reload_summary: String,
    reload_rendered: String,
}

fn config_page(st: &AdminState, session: &Session, flash: Option<String>) -> Response {
    let snap = st.shared.state.load().snapshot.clone();
    let last = api::last_reload_value(st);
    let summary = match last["outcome"].as_str() {
        None => "No reload since the gateway started.".to_owned(),
        Some(o) => format!("{o} at {} UTC", utc(last["time_ms"].as_u64().unwrap_or(0))),
    };
    render(&ConfigPage {
        head: head(st, session, flash),
        file: snap.source.name.clone(),
        yaml: crate::redact_config(&snap.source.text),
        reload_summary: summary,
        reload_rendered: last["rendered"].as_str().unwrap_or_default().to_owned(),
    })
}

async fn config(State(st): St, req: Request) -> Response {
    let session = session_of(&req);
    config_page(&st, &session, None)
}

async fn reload(State(st): St, req: Request) -> Response {
    let (session, _, ip) = match posted(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (applied, _) = api::do_reload(&st, ip).await;
    let flash = if applied {
        "Reloaded: the new configuration serves.".to_owned()
    } else {
        "Reload rejected: the old configuration still serves (diagnostics below).".to_owned()
    };
    config_page(&st, &session, Some(flash))
}

/// Live counters every two seconds.
async fn live(State(st): St) -> Response {
    let stream = futures_util::stream::unfold((st, true), |(st, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let (requests, blocked, would_block) = st.shared.live.totals_since_start();
        let stats = st.shared.events.stats();
        let data = serde_json::json!({
            "requests": requests,
            "blocked": blocked,
            "would_block": would_block,
            "dropped": stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
            "stored": stats.stored.load(std::sync::atomic::Ordering::Relaxed),
        });
        let ev = Event::default().event("stats").data(data.to_string());
        Some((Ok::<Event, Infallible>(ev), (st, false)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_796_410_497_000), "2026-12-04 18:54:57");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }
}
