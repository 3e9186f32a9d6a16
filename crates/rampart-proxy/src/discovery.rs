//! API discovery in the gateway: each finished request becomes a small observation sent to one
//! worker thread through a bounded channel (never waiting: a full channel drops it and counts
//! it); the worker owns one learner per API (`rampart_discovery`). Requests a declared
//! OpenAPI operation matched are not learned (the declared template is known), nor are blocked
//! ones.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use rampart_discovery::{Config, Endpoint, Learner, Observation as Seen, Usage};

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
}

/// What the learners know, for the admin plane.
#[derive(Clone, Debug, Default)]
pub struct Learned {
    /// Per API: the endpoints and the memory used.
    pub apis: BTreeMap<String, (Vec<Endpoint>, Usage)>,
}

/// The request path's handle.
#[derive(Debug)]
pub struct Discovery {
    tx: SyncSender<Observation>,
    learners: Arc<Mutex<BTreeMap<Arc<str>, Learner>>>,
    /// Observations dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Observations learned.
    pub learned: Arc<AtomicU64>,
}

impl Discovery {
    /// Starts the worker.
    pub fn start(s: &DiscoverySettings) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = sync_channel(s.channel_capacity);
        let learners: Arc<Mutex<BTreeMap<Arc<str>, Learner>>> = Arc::default();
        let learned = Arc::new(AtomicU64::new(0));
        let cfg = Config {
            max_nodes: s.max_nodes_per_api,
            ..Config::default()
        };
        let (l2, n2) = (learners.clone(), learned.clone());
        std::thread::Builder::new()
            .name("rampart-discovery".into())
            .spawn(move || worker(&rx, &l2, &n2, &cfg))?;
        Ok(Arc::new(Self {
            tx,
            learners,
            dropped: AtomicU64::new(0),
            learned,
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
        for (api, l) in ls.iter_mut() {
            l.consolidate();
            out.apis.insert(api.to_string(), (l.endpoints(), l.usage()));
        }
        out
    }
}

fn worker(
    rx: &Receiver<Observation>,
    learners: &Mutex<BTreeMap<Arc<str>, Learner>>,
    learned: &AtomicU64,
    cfg: &Config,
) {
    while let Ok(first) = rx.recv() {
        let mut ls = learners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut one = |o: Observation| {
            let l = ls
                .entry(o.api.clone())
                .or_insert_with(|| Learner::new(cfg.clone()));
            l.observe(&Seen {
                method: o.method.as_str(),
                path: &o.path,
                status: o.status,
                content_type: &o.content_type,
                size: o.size,
            });
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
