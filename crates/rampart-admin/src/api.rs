//! The JSON API under `/api/v1`. Every route here is listed in `openapi.json` (a test checks
//! both ways).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rampart_proxy::stats::Window;
use rampart_proxy::{EventPage, EventQuery, ReloadOutcome, StoredEvent};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{peer_ip, AdminState};

/// The OpenAPI document of this API.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

/// Most events one export writes.
pub(crate) const MAX_EXPORT: usize = 100_000;

type St = State<Arc<AdminState>>;

pub(crate) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/status", get(status))
        .route("/api/v1/stats/series", get(series))
        .route("/api/v1/stats/traffic", get(traffic))
        .route("/api/v1/stats/top", get(top))
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/export", get(export))
        .route("/api/v1/events/{id}", get(event))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/bans", get(bans).post(add_ban).delete(remove_ban))
        .route("/api/v1/ratelimits", get(ratelimits))
        .route("/api/v1/discovery", get(discovery))
        .route("/api/v1/discovery/findings", get(discovery_findings))
        .route("/api/v1/discovery/openapi", get(discovery_openapi))
        .route("/api/v1/discovery/overlay", get(discovery_overlay))
        .route("/api/v1/discovery/recommendations", get(recommendations))
        .route("/api/v1/config", get(config))
        .route("/api/v1/reload", get(last_reload).post(reload))
}

/// A JSON error: `{"error": code, "message": …}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

pub(crate) async fn metrics(State(st): St) -> Response {
    match &st.shared.metrics {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            h.render(),
        )
            .into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_metrics",
            "metrics recorder not installed",
        ),
    }
}

pub(crate) async fn readyz(State(st): St) -> Response {
    if st.shared.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// The status document (also the dashboard's header figures).
pub(crate) fn status_value(st: &AdminState) -> Value {
    let snap = st.shared.state.load().snapshot.clone();
    let stats = st.shared.events.stats();
    let now = st.now_ms();
    let (requests, blocked, would_block) = st.shared.live.totals_since_start();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": snap.source.name,
        "started_ms": st.shared.live.started_ms(),
        "uptime_secs": now.saturating_sub(st.shared.live.started_ms()) / 1000,
        "ready": st.shared.ready.load(Ordering::Relaxed),
        "apis": snap.apis.iter().map(|a| a.name.to_string()).collect::<Vec<_>>(),
        "listeners": snap.listeners.iter().map(|l| json!({"name": &*l.name, "bind": l.bind.to_string(), "tls": l.tls.is_some()})).collect::<Vec<_>>(),
        "requests": { "total": requests, "blocked": blocked, "would_block": would_block },
        "events": {
            "queued": stats.queued.load(Ordering::Relaxed),
            "dropped": stats.dropped.load(Ordering::Relaxed),
            "stored": stats.stored.load(Ordering::Relaxed),
            "store_errors": stats.errors.load(Ordering::Relaxed),
        },
        "ddos": snap.ddos.as_ref().map(|g| json!({"in_flight": g.in_flight(), "tightened": g.tightened()})),
    })
}

async fn status(State(st): St) -> Response {
    Json(status_value(&st)).into_response()
}

#[derive(Debug, Deserialize)]
struct WindowParams {
    window: Option<String>,
}

fn window(p: Result<Query<WindowParams>, QueryRejection>) -> Result<Window, Response> {
    let Query(p) = p.map_err(|e| error(StatusCode::BAD_REQUEST, "bad_query", &e.body_text()))?;
    match p.window.as_deref() {
        None => Ok(Window::Hour),
        Some(w) => Window::parse(w).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "window must be `hour` or `day`",
            )
        }),
    }
}

async fn series(State(st): St, p: Result<Query<WindowParams>, QueryRejection>) -> Response {
    match window(p) {
        Ok(w) => Json(st.shared.live.series(w, st.now_ms())).into_response(),
        Err(r) => r,
    }
}

async fn traffic(State(st): St) -> Response {
    Json(json!({ "operations": st.shared.live.traffic() })).into_response()
}

#[derive(Debug, Deserialize)]
struct TopParams {
    limit: Option<usize>,
}

async fn top(State(st): St, p: Result<Query<TopParams>, QueryRejection>) -> Response {
    let Ok(Query(p)) = p else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "limit must be a number",
        );
    };
    let (clients, blocked, consumers) = st.shared.live.top(p.limit.unwrap_or(10).min(100));
    Json(json!({ "clients": clients, "blocked_clients": blocked, "consumers": consumers }))
        .into_response()
}

/// The filters of the events list (API and dashboard alike).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct EventParams {
    pub(crate) from_ms: Option<u64>,
    pub(crate) to_ms: Option<u64>,
    pub(crate) api: Option<String>,
    pub(crate) operation: Option<String>,
    pub(crate) stage: Option<String>,
    pub(crate) rule: Option<String>,
    pub(crate) client_ip: Option<String>,
    pub(crate) consumer: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) cursor: Option<i64>,
    pub(crate) limit: Option<u32>,
    /// Export format: `jsonl` or `csv`.
    pub(crate) format: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl EventParams {
    pub(crate) fn query(&self) -> Result<EventQuery, String> {
        let action = nonempty(&self.action);
        if let Some(a) = &action {
            if rampart_core::FindingAction::parse(a).is_none() {
                return Err(format!(
                    "action must be block, would_block, log or mask, not {a:?}"
                ));
            }
        }
        let client_ip = nonempty(&self.client_ip);
        if let Some(ip) = &client_ip {
            ip.parse::<IpAddr>()
                .map_err(|_| format!("client_ip {ip:?} is not an address"))?;
        }
        Ok(EventQuery {
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            api: nonempty(&self.api),
            operation: nonempty(&self.operation),
            stage: nonempty(&self.stage),
            rule: nonempty(&self.rule),
            client_ip,
            consumer: nonempty(&self.consumer),
            action,
            before_id: self.cursor,
            limit: self.limit.unwrap_or(50),
        })
    }
}

/// Runs an event query on the blocking pool.
pub(crate) async fn run_query(st: &AdminState, q: EventQuery) -> Result<EventPage, Response> {
    let reader = st
        .reader()
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, "no_event_store", &e))?;
    tokio::task::spawn_blocking(move || {
        let r = reader.lock().unwrap_or_else(|p| p.into_inner());
        r.query(&q)
    })
    .await
    .map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "query_failed",
            "the query task failed",
        )
    })?
    .map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "query_failed",
            &e.to_string(),
        )
    })
}

pub(crate) async fn get_event(st: &AdminState, id: i64) -> Result<Option<StoredEvent>, Response> {
    let reader = st
        .reader()
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, "no_event_store", &e))?;
    tokio::task::spawn_blocking(move || {
        let r = reader.lock().unwrap_or_else(|p| p.into_inner());
        r.get(id)
    })
    .await
    .map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "query_failed",
            "the query task failed",
        )
    })?
    .map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "query_failed",
            &e.to_string(),
        )
    })
}

fn params(p: Result<Query<EventParams>, QueryRejection>) -> Result<EventQuery, Response> {
    let Query(p) = p.map_err(|e| error(StatusCode::BAD_REQUEST, "bad_query", &e.body_text()))?;
    p.query()
        .map_err(|m| error(StatusCode::BAD_REQUEST, "bad_query", &m))
}

async fn events(State(st): St, p: Result<Query<EventParams>, QueryRejection>) -> Response {
    let q = match params(p) {
        Ok(q) => q,
        Err(r) => return r,
    };
    match run_query(&st, q).await {
        Ok(page) => Json(page).into_response(),
        Err(r) => r,
    }
}

async fn event(State(st): St, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, "bad_id", "an event id is a number");
    };
    match get_event(&st, id).await {
        Ok(Some(e)) => Json(e).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "no such event"),
        Err(r) => r,
    }
}

/// Quotes a CSV field; a field that a spreadsheet would run as a formula gets a leading `'`.
fn csv_field(out: &mut String, v: &str) {
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

const CSV_HEADER: &str = "id,time_ms,request_id,client_ip,listener,api,operation,consumer,method,path,stage,rule,action,reason,status,detail\n";

fn csv_line(out: &mut String, e: &StoredEvent) {
    let ev = &e.event;
    let fields = [
        e.id.to_string(),
        ev.time_ms.to_string(),
        ev.request_id.clone(),
        ev.client_ip.clone(),
        ev.listener.clone(),
        ev.api.clone().unwrap_or_default(),
        ev.operation.clone().unwrap_or_default(),
        ev.consumer.clone().unwrap_or_default(),
        ev.method.clone(),
        ev.path.clone(),
        ev.stage.clone(),
        ev.rule.clone().unwrap_or_default(),
        ev.action.as_str().to_owned(),
        ev.reason.clone(),
        ev.status.map(|s| s.to_string()).unwrap_or_default(),
        ev.detail.clone(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push('\n');
}

/// Exports the events a filter matches, newest first, as JSON lines or CSV (at most
/// [`MAX_EXPORT`]).
pub(crate) async fn export_response(st: &AdminState, p: EventParams) -> Response {
    let csv = match p.format.as_deref() {
        None | Some("jsonl") => false,
        Some("csv") => true,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "format must be jsonl or csv",
            )
        }
    };
    let mut q = match p.query() {
        Ok(q) => q,
        Err(m) => return error(StatusCode::BAD_REQUEST, "bad_query", &m),
    };
    q.limit = rampart_proxy::store::MAX_PAGE;
    let mut out = String::new();
    if csv {
        out.push_str(CSV_HEADER);
    }
    let mut n = 0;
    loop {
        let page = match run_query(st, q.clone()).await {
            Ok(p) => p,
            Err(r) => return r,
        };
        for e in &page.events {
            if csv {
                csv_line(&mut out, e);
            } else if let Ok(line) = serde_json::to_string(e) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        n += page.events.len();
        match page.next {
            Some(c) if n < MAX_EXPORT => q.before_id = Some(c),
            _ => break,
        }
    }
    let (ctype, name) = if csv {
        ("text/csv; charset=utf-8", "rampart-events.csv")
    } else {
        ("application/x-ndjson", "rampart-events.jsonl")
    };
    let mut r = out.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn export(State(st): St, p: Result<Query<EventParams>, QueryRejection>) -> Response {
    match p {
        Ok(Query(p)) => export_response(&st, p).await,
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_query", &e.body_text()),
    }
}

/// The enforcement mode a rule's findings show.
pub(crate) fn mode_of(last_action: &str) -> &'static str {
    match last_action {
        "block" => "enforce",
        "would_block" => "monitor",
        "mask" => "mask",
        _ => "log",
    }
}

async fn rules(State(st): St) -> Response {
    let rows: Vec<Value> = st
        .shared
        .live
        .rules()
        .into_iter()
        .map(|r| {
            let mode = mode_of(&r.last_action);
            let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("mode".to_owned(), Value::from(mode));
            }
            v
        })
        .collect();
    Json(json!({ "rules": rows })).into_response()
}

/// The bans in force.
pub(crate) fn ban_list(st: &AdminState) -> Option<Vec<Value>> {
    let snap = st.shared.state.load().snapshot.clone();
    let guard = snap.ddos.as_ref()?;
    let now = st.now_ms();
    Some(
        guard
            .bans()
            .list(now)
            .into_iter()
            .map(|b| {
                json!({
                    "key": b.key,
                    "until_ms": b.until_ms,
                    "seconds_left": b.until_ms.saturating_sub(now).div_ceil(1000),
                })
            })
            .collect(),
    )
}

async fn bans(State(st): St) -> Response {
    match ban_list(&st) {
        Some(b) => Json(json!({ "bans": b })).into_response(),
        None => no_guard(),
    }
}

fn no_guard() -> Response {
    error(
        StatusCode::CONFLICT,
        "no_ddos_guard",
        "bans belong to the DDoS guard; this configuration has no `ddos` section",
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct BanRequest {
    /// An address or a network.
    pub(crate) target: String,
    /// How long.
    pub(crate) seconds: Option<u64>,
}

/// Most seconds a ban made by hand lasts (30 days).
const MAX_BAN_SECS: u64 = 30 * 86_400;

/// Bans a target on this node at once (and on every node through Redis when the state is
/// shared); records an audit event.
pub(crate) async fn ban(
    st: &AdminState,
    peer: IpAddr,
    target: &str,
    seconds: u64,
) -> Result<(String, u64), Response> {
    let snap = st.shared.state.load().snapshot.clone();
    let Some(guard) = snap.ddos.as_ref() else {
        return Err(no_guard());
    };
    let Some(key) = rampart_stages::ddos::ban_key(target) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_target",
            "the target must be an address (203.0.113.7) or a network (203.0.113.0/24)",
        ));
    };
    if seconds == 0 || seconds > MAX_BAN_SECS {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_seconds",
            "seconds must be between 1 and 2592000 (30 days)",
        ));
    }
    let now = st.now_ms();
    let until = now + seconds * 1000;
    guard.bans().ban(&key, until, now);
    if let Some(rampart_stages::ratelimit::Backend::Redis(redis)) = &snap.limit_store {
        if let Err(e) = redis.publish_ban_now(&key, until).await {
            tracing::warn!(error = %e, key = %key, "The ban holds on this node only: Redis cannot be reached.");
        }
    }
    st.audit(
        peer,
        "admin_ban_added",
        format!("{key} banned for {seconds} s"),
    );
    Ok((key, until))
}

/// Lifts a ban; records an audit event. `Ok(false)` when there was none.
pub(crate) async fn unban(st: &AdminState, peer: IpAddr, target: &str) -> Result<bool, Response> {
    let snap = st.shared.state.load().snapshot.clone();
    let Some(guard) = snap.ddos.as_ref() else {
        return Err(no_guard());
    };
    let Some(key) = rampart_stages::ddos::ban_key(target) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_target",
            "the target must be an address or a network",
        ));
    };
    let had = guard.bans().unban(&key);
    if let Some(rampart_stages::ratelimit::Backend::Redis(redis)) = &snap.limit_store {
        if let Err(e) = redis.publish_unban(&key).await {
            tracing::warn!(error = %e, key = %key, "The ban was lifted on this node only: Redis cannot be reached.");
        }
    }
    if had {
        st.audit(peer, "admin_ban_removed", format!("ban on {key} lifted"));
    }
    Ok(had)
}

async fn add_ban(State(st): St, req: Request) -> Response {
    let peer = peer_ip(&req);
    let body: Result<Json<BanRequest>, JsonRejection> =
        <Json<BanRequest> as axum::extract::FromRequest<()>>::from_request(req, &()).await;
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_body", &e.body_text()),
    };
    match ban(&st, peer, &b.target, b.seconds.unwrap_or(3600)).await {
        Ok((key, until)) => (
            StatusCode::CREATED,
            Json(json!({ "key": key, "until_ms": until })),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct TargetParams {
    target: String,
}

async fn remove_ban(State(st): St, req: Request) -> Response {
    let peer = peer_ip(&req);
    let Ok(Query(t)) = Query::<TargetParams>::try_from_uri(req.uri()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "give the ban to lift as ?target=",
        );
    };
    match unban(&st, peer, &t.target).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "not_banned", "no such ban"),
        Err(r) => r,
    }
}

async fn ratelimits(State(st): St) -> Response {
    Json(json!({
        "window_secs": 3600,
        "limited": st.shared.live.limited(st.now_ms(), 3_600_000),
    }))
    .into_response()
}

async fn discovery(State(st): St) -> Response {
    let Some(d) = st.shared.discovery.load_full() else {
        return Json(json!({ "enabled": false, "apis": [] })).into_response();
    };
    let learned = d.learned();
    let apis: Vec<Value> = learned
        .apis
        .iter()
        .map(|(api, (endpoints, usage))| {
            json!({
                "api": api,
                "endpoints": endpoints.iter().map(|e| json!({
                    "method": e.method, "template": e.template, "hits": e.hits,
                    "status": {"1xx": e.statuses[0], "2xx": e.statuses[1], "3xx": e.statuses[2], "4xx": e.statuses[3], "5xx": e.statuses[4]},
                })).collect::<Vec<_>>(),
                "nodes": usage.nodes,
                "bytes": usage.bytes,
                "refused": usage.refused,
            })
        })
        .collect();
    Json(json!({
        "enabled": true,
        "observed": d.learned.load(std::sync::atomic::Ordering::Relaxed),
        "dropped": d.dropped.load(std::sync::atomic::Ordering::Relaxed),
        "apis": apis,
    }))
    .into_response()
}

async fn discovery_findings(State(st): St) -> Response {
    let Some(d) = st.shared.discovery.load_full() else {
        return Json(json!({ "enabled": false, "findings": [] })).into_response();
    };
    let snap = st.shared.state.load().snapshot.clone();
    let findings = d.spec_diff(&snap, &d.learned(), &st.shared.live.traffic(), st.now_ms());
    Json(json!({ "enabled": true, "findings": findings })).into_response()
}

/// Rate-limit recommendations per API and learned endpoint, each with a rule in `log` mode.
async fn recommendations(State(st): St) -> Response {
    let Some(d) = st.shared.discovery.load_full() else {
        return Json(json!({ "enabled": false, "apis": [] })).into_response();
    };
    let settings = rampart_discovery::recommend::Settings::default();
    // The rule's key: what identified most sessions, as the rate-limit stage names it.
    let sources = d.sessions.load_full();
    let key_of = |main: Option<usize>| -> String {
        use rampart_config::SessionSource as S;
        match main.and_then(|i| sources.get(i)) {
            None => "ip.src".to_owned(),
            Some(S::Consumer) => "identity.consumer".to_owned(),
            Some(S::Claim(c)) => format!("identity.claims[\"{c}\"]"),
            Some(S::Header(h)) => format!("http.request.headers[\"{h}\"]"),
            // The rate-limit stage has no cookie key: the address stands for it.
            Some(S::Cookie(_)) => "ip.src".to_owned(),
        }
    };
    let apis: Vec<Value> = d
        .recommendations(&settings)
        .into_iter()
        .map(|(api, (main, recs))| {
            let key = key_of(main);
            let ip_based = main.is_none();
            let endpoints: Vec<Value> = recs
                .iter()
                .map(|(endpoint, r)| {
                    let (method, template) = endpoint.split_once(' ').unwrap_or(("GET", endpoint));
                    let rule = rampart_discovery::recommend::rule_yaml(
                        &rule_name(endpoint),
                        &rule_condition(method, template),
                        &key,
                        r,
                        &settings,
                    );
                    json!({
                        "endpoint": endpoint,
                        "sessions": r.sessions,
                        "p50": r.p50, "p90": r.p90, "p99": r.p99, "p999": r.p999,
                        "suggested": r.suggested,
                        "confidence": r.confidence.as_str(),
                        "reasons": r.reasons,
                        "limited_share": r.limited_share,
                        "heavy_tail": r.heavy_tail,
                        "rule": rule,
                    })
                })
                .collect();
            json!({
                "api": api,
                "key_basis": if ip_based { "ip" } else { "session" },
                "window_secs": settings.window_secs,
                "endpoints": endpoints,
            })
        })
        .collect();
    Json(json!({ "enabled": true, "apis": apis })).into_response()
}

/// `rec-get-items-int` for `GET /items/{int}`.
fn rule_name(endpoint: &str) -> String {
    let mut s = String::from("rec");
    for part in endpoint.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            s.push('-');
            s.push_str(&part.to_ascii_lowercase());
        }
    }
    s
}

/// A rules-language condition matching a learned endpoint's requests.
fn rule_condition(method: &str, template: &str) -> String {
    let mut re = String::from("^");
    for seg in template.split('/').filter(|s| !s.is_empty()) {
        re.push('/');
        match seg {
            "{int}" => re.push_str("[0-9]+"),
            s if s.starts_with('{') => re.push_str("[^/]+"),
            s => re.push_str(&regex::escape(s).replace('\\', "\\\\")),
        }
    }
    if re == "^" {
        re.push('/');
    }
    re.push('$');
    format!("http.request.method == \"{method}\" and http.request.uri.path matches \"{re}\"")
}

#[derive(Debug, serde::Deserialize)]
struct ApiParam {
    api: String,
}

/// The `?api=` parameter and the running discovery, or the error to answer.
fn discovery_and_api(
    st: &AdminState,
    p: Result<Query<ApiParam>, QueryRejection>,
) -> Result<(Arc<rampart_proxy::discovery::Discovery>, String), Response> {
    let Ok(Query(p)) = p else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "?api=NAME is required",
        ));
    };
    match st.shared.discovery.load_full() {
        Some(d) => Ok((d, p.api)),
        None => Err(error(
            StatusCode::CONFLICT,
            "discovery_off",
            "discovery is off",
        )),
    }
}

/// The learned endpoints of `?api=` as an OpenAPI 3.1 document.
async fn discovery_openapi(State(st): St, p: Result<Query<ApiParam>, QueryRejection>) -> Response {
    let (d, api) = match discovery_and_api(&st, p) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p = ApiParam { api };
    let learned = d.learned();
    let Some((endpoints, _)) = learned.apis.get(&p.api) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "nothing learned for this API",
        );
    };
    Json(rampart_discovery::export::openapi(&p.api, endpoints)).into_response()
}

/// An OpenAPI Overlay adding the shadows and method-shadows of `?api=` to its declared
/// document (paths relative to the document's server path).
async fn discovery_overlay(State(st): St, p: Result<Query<ApiParam>, QueryRejection>) -> Response {
    let (d, api) = match discovery_and_api(&st, p) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p = ApiParam { api };
    let snap = st.shared.state.load().snapshot.clone();
    let Some(api) = snap.apis.iter().find(|a| *a.name == *p.api) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such API");
    };
    if api.declared.is_empty() {
        return error(
            StatusCode::CONFLICT,
            "no_document",
            "this API declares no OpenAPI document",
        );
    }
    let findings = d.spec_diff(&snap, &d.learned(), &st.shared.live.traffic(), st.now_ms());
    let shadows: Vec<rampart_discovery::Endpoint> = findings
        .iter()
        .filter(|f| f.api == p.api && (f.kind == "shadow" || f.kind == "method-shadow"))
        .map(|f| {
            // Relative to the longest server path it is under.
            let rel = api
                .declared_prefixes
                .iter()
                .filter(|pre| !pre.is_empty() && f.template.starts_with(pre.as_str()))
                .max_by_key(|pre| pre.len())
                .map_or(f.template.as_str(), |pre| &f.template[pre.len()..]);
            rampart_discovery::Endpoint {
                method: f.method.clone(),
                template: if rel.is_empty() {
                    "/".to_owned()
                } else {
                    rel.to_owned()
                },
                hits: f.requests,
                statuses: [0; 5],
            }
        })
        .collect();
    Json(rampart_discovery::export::overlay(
        &p.api,
        "its declared OpenAPI document",
        &shadows,
    ))
    .into_response()
}

async fn config(State(st): St) -> Response {
    let snap = st.shared.state.load().snapshot.clone();
    Json(json!({
        "file": snap.source.name,
        "yaml": crate::redact_config(&snap.source.text),
    }))
    .into_response()
}

/// The last reload as JSON.
pub(crate) fn reload_value(time_ms: Option<u64>, outcome: Option<&ReloadOutcome>) -> Value {
    match outcome {
        None => json!({ "outcome": null }),
        Some(ReloadOutcome::Applied) => json!({ "outcome": "applied", "time_ms": time_ms }),
        Some(ReloadOutcome::Rejected {
            diagnostics,
            rendered,
        }) => json!({
            "outcome": "rejected",
            "time_ms": time_ms,
            "diagnostics": diagnostics.iter().map(|d| json!({
                "path": d.path, "message": d.message, "help": d.help,
                "line": d.span.map(|s| s.line), "column": d.span.map(|s| s.col),
            })).collect::<Vec<_>>(),
            "rendered": rendered,
        }),
    }
}

pub(crate) fn last_reload_value(st: &AdminState) -> Value {
    let last = st
        .shared
        .last_reload
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match last {
        Some((t, o)) => reload_value(Some(t), Some(&o)),
        None => reload_value(None, None),
    }
}

async fn last_reload(State(st): St) -> Response {
    Json(last_reload_value(&st)).into_response()
}

/// Reloads from the file; records an audit event.
pub(crate) async fn do_reload(st: &AdminState, peer: IpAddr) -> (bool, Value) {
    let outcome = rampart_proxy::reload_from_file(&st.shared).await;
    let applied = outcome.is_applied();
    st.audit(
        peer,
        "admin_reload",
        if applied {
            "configuration reloaded".to_owned()
        } else {
            "configuration reload rejected; the old one still serves".to_owned()
        },
    );
    (applied, reload_value(Some(st.now_ms()), Some(&outcome)))
}

async fn reload(State(st): St, req: Request) -> Response {
    let peer = peer_ip(&req);
    let (applied, v) = do_reload(&st, peer).await;
    let status = if applied {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, Json(v)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut s = String::new();
        csv_field(&mut s, "plain");
        s.push('|');
        csv_field(&mut s, "a,\"b\"");
        s.push('|');
        csv_field(&mut s, "=HYPERLINK(\"x\")");
        assert_eq!(s, "plain|\"a,\"\"b\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"");
    }

    #[test]
    fn the_openapi_document_lists_every_route_and_nothing_else() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<String> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in item.as_object().unwrap().keys() {
                documented.push(format!("{} {path}", m.to_uppercase()));
            }
        }
        documented.sort();
        // The routes as `routes()` and `router()` register them.
        let src = include_str!("api.rs");
        let mut registered: Vec<String> = Vec::new();
        for line in src.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix(".route(\"") else {
                continue;
            };
            let Some((path, handlers)) = rest.split_once('"') else {
                continue;
            };
            for (m, name) in [("GET", "get("), ("POST", "post("), ("DELETE", "delete(")] {
                if handlers.contains(name) {
                    registered.push(format!("{m} {path}"));
                }
            }
        }
        registered.push("GET /metrics".to_owned());
        registered.push("GET /healthz".to_owned());
        registered.push("GET /readyz".to_owned());
        registered.sort();
        assert_eq!(documented, registered);
    }
}
