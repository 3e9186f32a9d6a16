//! Prometheus metrics: one process-wide recorder, rendered by the admin listener.
//!
//! Names follow `rampart_<noun>_<unit>_total`; labels are low-cardinality (listener, API,
//! stage, reason, status), never raw messages.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process) and returns the handle that renders it.
pub(crate) fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ];
            let builder = PrometheusBuilder::new().set_buckets(&buckets).ok()?;
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "Metrics recorder not installed.");
                    None
                }
            }
        })
        .clone()
}

/// Describes the metrics, so that `/metrics` carries help text.
pub(crate) fn describe() {
    metrics::describe_counter!(
        "rampart_requests_total",
        "Requests answered, by listener, API, status and decision."
    );
    metrics::describe_histogram!(
        "rampart_request_duration_seconds",
        "Time from request head to the end of the response."
    );
    metrics::describe_counter!(
        "rampart_stage_blocks_total",
        "Requests blocked (or would-block in monitor mode), by stage and reason."
    );
    metrics::describe_counter!(
        "rampart_upstream_errors_total",
        "Upstream failures, by upstream and kind."
    );
    metrics::describe_gauge!(
        "rampart_connections_active",
        "Open client connections, by listener."
    );
    metrics::describe_counter!(
        "rampart_connections_total",
        "Accepted client connections, by listener."
    );
    metrics::describe_counter!(
        "rampart_connections_refused_total",
        "Connections refused by a cap or a failed handshake, by listener and reason."
    );
    metrics::describe_counter!("rampart_events_total", "Security events queued.");
    metrics::describe_counter!(
        "rampart_events_dropped_total",
        "Security events dropped because the channel was full."
    );
    metrics::describe_counter!(
        "rampart_config_reloads_total",
        "Configuration reloads, by outcome."
    );
}

type RequestKey = (Arc<str>, Arc<str>, u16, bool);

thread_local! {
    /// Metric handles by label set, per thread: the request path does one hash lookup and one
    /// atomic add instead of building label strings and looking the series up each time.
    static REQUEST_HANDLES: RefCell<HashMap<RequestKey, (Counter, Histogram)>> = RefCell::new(HashMap::new());
}

/// Most label sets kept per thread; beyond, the cache starts over (the series stay registered).
const MAX_CACHED: usize = 4096;

/// Counts a finished request and records its duration.
pub(crate) fn record_request(
    listener: &Arc<str>,
    api: &Arc<str>,
    status: u16,
    blocked: bool,
    elapsed: Duration,
) {
    REQUEST_HANDLES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let key = (listener.clone(), api.clone(), status, blocked);
        if !cache.contains_key(&key) {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            let counter = metrics::counter!(
                "rampart_requests_total",
                "listener" => listener.to_string(),
                "api" => api.to_string(),
                "status" => status.to_string(),
                "decision" => if blocked { "block" } else { "forward" }
            );
            let histogram =
                metrics::histogram!("rampart_request_duration_seconds", "api" => api.to_string());
            cache.insert(key.clone(), (counter, histogram));
        }
        if let Some((counter, histogram)) = cache.get(&key) {
            counter.increment(1);
            histogram.record(elapsed.as_secs_f64());
        }
    });
}
