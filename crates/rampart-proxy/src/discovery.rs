//! API discovery in the gateway: each finished request becomes a small observation sent to one
//! worker thread through a bounded channel (never waiting: a full channel drops it and counts
//! it); the worker owns one learner per API (`rampart_discovery`). Requests a declared
//! OpenAPI operation matched are not learned (the declared template is known), nor are blocked
//! ones.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use rampart_config::Snapshot;
use rampart_discovery::recommend::{
    recommend, PeakTracker, Recommendation, Settings as RecSettings,
};
use rampart_discovery::{Config, Endpoint, Learner, Observation as Seen, Usage};
use serde::Serialize;

use crate::stats::TrafficRow;

/// Discovery settings, compiled.
pub use rampart_config::DiscoverySettings;

/// One finished request.
#[derive(Debug)]
pub struct Observation {
    /// The API.
    pub api: Arc<str>,
    /// The method.
    pub method: http::Method,
    /// The raw path.
    pub path: String,
    /// The response status.
    pub status: u16,
    /// The response's media type, without parameters.
    pub content_type: String,
    /// Response bytes sent.
    pub size: u64,
    /// When the request came (milliseconds since the epoch).
    pub ts_ms: u64,
    /// The session: a keyed hash of the consumer, else of the client address, and whether it
    /// is a consumer; `None` for a request that had findings (only good sessions make the rate
    /// baseline).
    pub session: Option<(u64, Option<u8>)>,
}

/// What the learners know, for the admin plane.
#[derive(Clone, Debug, Default)]
pub struct Learned {
    /// Per API: the endpoints and the memory used.
    pub apis: BTreeMap<String, (Vec<Endpoint>, Usage)>,
}

/// Per API: the learner of templates and the per-session peaks of its endpoints.
#[derive(Debug)]
struct PerApi {
    learner: Learner,
    peaks: PeakTracker,
    /// Requests from sessions keyed by consumer, and by client address.
    /// Requests per session source (by index in `discovery.session`), and by address.
    by_source: [u64; 8],
    ip_sessions: u64,
}

/// The request path's handle.
#[derive(Debug)]
pub struct Discovery {
    tx: SyncSender<Observation>,
    learners: Arc<Mutex<BTreeMap<Arc<str>, PerApi>>>,
    /// The key of session hashes.
    key: rampart_discovery::sketch::Key,
    /// What identifies a session (replaced at a reload).
    pub sessions: arc_swap::ArcSwap<Vec<rampart_config::SessionSource>>,
    /// Where what was learned is kept across restarts.
    store: Option<Arc<Mutex<rusqlite::Connection>>>,
    /// Observations dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Observations learned.
    pub learned: Arc<AtomicU64>,
    /// When discovery started watching (milliseconds since the epoch).
    pub started_ms: u64,
    orphan_after_ms: u64,
}

impl Discovery {
    /// Starts the worker.
    pub fn start(s: &DiscoverySettings) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = sync_channel(s.channel_capacity);
        let cfg = Config {
            max_nodes: s.max_nodes_per_api,
            ..Config::default()
        };
        let (store, saved) = match &s.state {
            None => (None, BTreeMap::new()),
            Some(path) => {
                let (c, saved) = open_store(path, &cfg).map_err(std::io::Error::other)?;
                (Some(Arc::new(Mutex::new(c))), saved)
            }
        };
        let learners: Arc<Mutex<BTreeMap<Arc<str>, PerApi>>> = Arc::new(Mutex::new(saved));
        let learned = Arc::new(AtomicU64::new(0));
        let (l2, n2, s2) = (learners.clone(), learned.clone(), store.clone());
        std::thread::Builder::new()
            .name("rampart-discovery".into())
            .spawn(move || worker(&rx, &l2, &n2, &cfg, s2.as_deref()))?;
        Ok(Arc::new(Self {
            tx,
            learners,
            key: rampart_discovery::sketch::Key::random(),
            sessions: arc_swap::ArcSwap::from_pointee(s.session.clone()),
            store,
            dropped: AtomicU64::new(0),
            learned,
            started_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            orphan_after_ms: u64::try_from(s.orphan_after.as_millis()).unwrap_or(u64::MAX),
        }))
    }

    /// Hands an observation to the worker; never waits.
    pub fn observe(&self, o: Observation) {
        if self.tx.try_send(o).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("rampart_discovery_observations_dropped_total").increment(1);
        }
    }

    /// The learned endpoints, per API (consolidated first).
    pub fn learned(&self) -> Learned {
        let mut ls = self
            .learners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Learned::default();
        for (api, p) in ls.iter_mut() {
            p.learner.consolidate();
            out.apis
                .insert(api.to_string(), (p.learner.endpoints(), p.learner.usage()));
        }
        out
    }

    /// Writes what was learned to the state file (the worker does every minute; shutdown
    /// calls this).
    pub fn save(&self) {
        if let Some(store) = &self.store {
            save(&self.learners, store);
        }
    }

    /// The keyed hash of a session key (a consumer's name, a client address).
    pub fn session_hash(&self, s: &str) -> u64 {
        self.key.hash(&[s.as_bytes()])
    }

    /// The values of the header and cookie sources in a request head, in source order (`None`
    /// for the other sources); empty when no source reads the request.
    pub fn session_hints(&self, headers: &http::HeaderMap) -> Vec<Option<String>> {
        use rampart_config::SessionSource as S;
        let sources = self.sessions.load();
        if !sources
            .iter()
            .any(|s| matches!(s, S::Header(_) | S::Cookie(_)))
        {
            return Vec::new();
        }
        sources
            .iter()
            .map(|s| match s {
                S::Header(h) => headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
                S::Cookie(name) => headers
                    .get_all(http::header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .filter_map(|c| c.trim().split_once('='))
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.to_owned()),
                S::Consumer | S::Claim(_) => None,
            })
            .collect()
    }

    /// The session of a finished exchange: the first source present, else the client
    /// address; the flag says whether it is a real session (not an address).
    pub fn session_of(
        &self,
        x: &rampart_core::Exchange,
        hints: &[Option<String>],
    ) -> (u64, Option<u8>) {
        use rampart_config::SessionSource as S;
        let sources = self.sessions.load();
        for (i, s) in sources.iter().enumerate() {
            let v = match s {
                S::Consumer => x.principal.as_ref().and_then(|p| p.consumer.clone()),
                S::Claim(c) => x
                    .principal
                    .as_ref()
                    .and_then(|p| p.claims.get(c))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
                S::Header(_) | S::Cookie(_) => hints.get(i).cloned().flatten(),
            };
            if let Some(v) = v {
                let i = u8::try_from(i).unwrap_or(u8::MAX);
                return (self.key.hash(&[&[i], v.as_bytes()]), Some(i));
            }
        }
        (self.session_hash(&x.client_ip.to_string()), None)
    }

    /// Rate-limit recommendations per API and endpoint (`METHOD template`), from the peaks of
    /// good sessions since discovery started, and whether sessions were mostly client
    /// addresses.
    pub fn recommendations(
        &self,
        settings: &RecSettings,
    ) -> BTreeMap<String, (Option<usize>, BTreeMap<String, Recommendation>)> {
        let ls = self
            .learners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = BTreeMap::new();
        for (api, p) in ls.iter() {
            let ip_based = p.ip_sessions > p.by_source.iter().sum::<u64>();
            // The source most sessions came from (`None`: client addresses).
            let main = (!ip_based)
                .then(|| (0..8).max_by_key(|i| (p.by_source[*i], std::cmp::Reverse(*i))))
                .flatten();
            let recs = p
                .peaks
                .peaks()
                .into_iter()
                .map(|(e, peaks)| (e, recommend(&peaks, settings, ip_based)))
                .collect();
            out.insert(api.to_string(), (main, recs));
        }
        out
    }
}

/// A difference between what an API declares and the traffic it gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecFinding {
    /// `shadow` (called, not declared), `method-shadow` (the path is declared, not the
    /// method), `orphan` (declared, no traffic since discovery started watching, for at least
    /// `orphan_after`), `zombie` (declared deprecated, still called).
    pub kind: &'static str,
    /// The API.
    pub api: String,
    /// The method.
    pub method: String,
    /// The learned template (shadows) or the declared one.
    pub template: String,
    /// The declared operation, for orphans and zombies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Requests seen.
    pub requests: u64,
}

impl Discovery {
    /// The differences between each API's declared operations and its traffic.
    pub fn spec_diff(
        &self,
        snap: &Snapshot,
        learned: &Learned,
        traffic: &[TrafficRow],
        now_ms: u64,
    ) -> Vec<SpecFinding> {
        let watched = now_ms.saturating_sub(self.started_ms) >= self.orphan_after_ms;
        let mut out = Vec::new();
        for api in &snap.apis {
            if api.declared.is_empty() {
                continue;
            }
            let prefixes: Vec<Vec<&str>> = api
                .declared_prefixes
                .iter()
                .map(|p| p.split('/').filter(|s| !s.is_empty()).collect())
                .collect();
            if let Some((endpoints, _)) = learned.apis.get(&*api.name) {
                for e in endpoints {
                    let segs: Vec<&str> = e.template.split('/').filter(|s| !s.is_empty()).collect();
                    // Under each prefix the document's templates live under.
                    let same_path: Vec<_> = api
                        .declared
                        .iter()
                        .filter(|d| {
                            prefixes.iter().any(|p| {
                                segs.strip_prefix(p.as_slice())
                                    .is_some_and(|rel| template_matches(&d.path, rel))
                            })
                        })
                        .collect();
                    let kind = if same_path.is_empty() {
                        "shadow"
                    } else if same_path.iter().any(|d| d.method == e.method) {
                        continue; // declared since it was learned
                    } else {
                        "method-shadow"
                    };
                    out.push(SpecFinding {
                        kind,
                        api: api.name.to_string(),
                        method: e.method.clone(),
                        template: e.template.clone(),
                        operation: None,
                        requests: e.hits,
                    });
                }
            }
            for d in &api.declared {
                let requests: u64 = traffic
                    .iter()
                    .filter(|t| t.api == *api.name && t.operation.as_deref() == Some(&*d.id))
                    .map(|t| t.requests)
                    .sum();
                let kind = if d.deprecated && requests > 0 {
                    "zombie"
                } else if requests == 0 && watched {
                    "orphan"
                } else {
                    continue;
                };
                out.push(SpecFinding {
                    kind,
                    api: api.name.to_string(),
                    method: d.method.clone(),
                    template: d.path.clone(),
                    operation: Some(d.id.to_string()),
                    requests,
                });
            }
        }
        out
    }
}

/// Whether a declared template (`/pets/{petId}`) covers a learned one's segments
/// (`pets`, `{int}`): the same length, a declared variable covers anything, literals equal.
fn template_matches(declared: &str, learned: &[&str]) -> bool {
    let d: Vec<&str> = declared.split('/').filter(|s| !s.is_empty()).collect();
    d.len() == learned.len()
        && d.iter()
            .zip(learned)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
}

/// Opens (creating) the state file and restores what it holds.
fn open_store(
    path: &std::path::Path,
    cfg: &Config,
) -> Result<(rusqlite::Connection, BTreeMap<Arc<str>, PerApi>), String> {
    let c = rusqlite::Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS learned (api TEXT PRIMARY KEY, state TEXT NOT NULL, saved_ms INTEGER NOT NULL);",
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    {
        let mut st = c
            .prepare("SELECT api, state FROM learned")
            .map_err(|e| e.to_string())?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| e.to_string())?;
        for row in rows.flatten() {
            match Learner::restore(cfg.clone(), &row.1) {
                Ok(learner) => {
                    out.insert(Arc::from(row.0.as_str()), PerApi::new(learner));
                }
                Err(e) => {
                    tracing::warn!(api = %row.0, error = %e, "Discovery: a saved state could not be read; that API starts over.");
                }
            }
        }
    }
    Ok((c, out))
}

fn save(learners: &Mutex<BTreeMap<Arc<str>, PerApi>>, store: &Mutex<rusqlite::Connection>) {
    let states: Vec<(String, String)> = learners
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(api, p)| (api.to_string(), p.learner.save()))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut c = store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let result = c.transaction().and_then(|tx| {
        for (api, state) in &states {
            tx.execute(
                "INSERT INTO learned (api, state, saved_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(api) DO UPDATE SET state = excluded.state, saved_ms = excluded.saved_ms",
                rusqlite::params![api, state, now],
            )?;
        }
        tx.commit()
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "Discovery: what was learned could not be saved.");
    }
}

impl PerApi {
    fn new(learner: Learner) -> Self {
        Self {
            learner,
            peaks: PeakTracker::new(600, 250_000),
            by_source: [0; 8],
            ip_sessions: 0,
        }
    }
}

fn worker(
    rx: &Receiver<Observation>,
    learners: &Mutex<BTreeMap<Arc<str>, PerApi>>,
    learned: &AtomicU64,
    cfg: &Config,
    store: Option<&Mutex<rusqlite::Connection>>,
) {
    let mut last_save = std::time::Instant::now();
    while let Ok(first) = rx.recv() {
        if let Some(store) = store {
            if last_save.elapsed() >= std::time::Duration::from_secs(60) {
                last_save = std::time::Instant::now();
                save(learners, store);
            }
        }
        let mut ls = learners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut one = |o: Observation| {
            let p = ls
                .entry(o.api.clone())
                .or_insert_with(|| PerApi::new(Learner::new(cfg.clone())));
            p.learner.observe(&Seen {
                method: o.method.as_str(),
                path: &o.path,
                status: o.status,
                content_type: &o.content_type,
                size: o.size,
            });
            // Every request of a good session counts towards the rate baseline, once its
            // endpoint exists.
            if let Some((session, source)) = o.session {
                if let Some(t) = p.learner.template_of(o.method.as_str(), &o.path) {
                    p.peaks.add(session, &format!("{} {t}", o.method), o.ts_ms);
                    match source.map(usize::from).filter(|i| *i < 8) {
                        Some(i) => p.by_source[i] += 1,
                        None => p.ip_sessions += 1,
                    }
                }
            }
            learned.fetch_add(1, Ordering::Relaxed);
        };
        one(first);
        // What queued meanwhile, under the same lock.
        for _ in 0..4096 {
            match rx.try_recv() {
                Ok(o) => one(o),
                Err(_) => break,
            }
        }
    }
}
