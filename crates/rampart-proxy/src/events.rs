//! The event pipeline: a bounded channel from the request path to one writer thread that owns
//! the sinks (SQLite, JSON lines, the access log).
//!
//! Nothing on the request path waits for a write: `try_send` either queues or drops, and every
//! drop is counted (`rampart_events_dropped_total`), never silent.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_config::{Events, Output};
use rampart_core::{SecurityEvent, UnixMillis};

use crate::store::EventStore;

enum Msg {
    Event(Box<SecurityEvent>),
    Access(String),
    Flush(mpsc::Sender<()>),
    Stop,
}

/// The sending side, cheap to clone.
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: SyncSender<Msg>,
    stats: Arc<EventStats>,
}

/// Counters of the event pipeline.
#[derive(Debug, Default)]
pub struct EventStats {
    /// Events accepted into the channel.
    pub queued: AtomicU64,
    /// Events dropped because the channel was full.
    pub dropped: AtomicU64,
    /// Access-log lines dropped because the channel was full.
    pub access_dropped: AtomicU64,
    /// Events written to SQLite.
    pub stored: AtomicU64,
    /// Write errors.
    pub errors: AtomicU64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// The writer thread; joining it waits for everything queued to be written.
#[derive(Debug)]
pub struct EventWriter {
    handle: Option<std::thread::JoinHandle<()>>,
    tx: SyncSender<Msg>,
}

impl EventBus {
    /// Starts the writer thread with the configured sinks.
    pub fn start(cfg: &Events) -> Result<(Self, EventWriter), String> {
        let store = match &cfg.sqlite {
            Some(path) => Some(
                EventStore::open(path, cfg.retention, cfg.max_events, cfg.max_bytes)
                    .map_err(|e| format!("events database {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let jsonl = open_output(&cfg.jsonl).map_err(|e| format!("events jsonl: {e}"))?;
        let access = open_output(&cfg.access_log).map_err(|e| format!("access log: {e}"))?;
        let (tx, rx) = mpsc::sync_channel(cfg.channel_capacity);
        let stats = Arc::new(EventStats::default());
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("rampart-events".to_owned())
            .spawn(move || writer_loop(rx, store, jsonl, access, &thread_stats))
            .map_err(|e| format!("cannot start the event writer: {e}"))?;
        Ok((
            Self {
                tx: tx.clone(),
                stats,
            },
            EventWriter {
                handle: Some(handle),
                tx,
            },
        ))
    }

    /// Queues an event; drops (and counts) it when the channel is full.
    pub fn emit(&self, event: SecurityEvent) {
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("rampart_events_total").increment(1);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("rampart_events_dropped_total").increment(1);
            }
        }
    }

    /// Queues an access-log line.
    pub fn access(&self, line: String) {
        if self.tx.try_send(Msg::Access(line)).is_err() {
            self.stats.access_dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("rampart_access_log_dropped_total").increment(1);
        }
    }

    /// Waits until everything queued so far is written (for tests and shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ =
                tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30))).await;
        }
    }

    /// Returns the counters.
    pub fn stats(&self) -> &EventStats {
        &self.stats
    }
}

impl EventWriter {
    /// Writes what is queued and stops the thread.
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn open_output(o: &Output) -> std::io::Result<Option<Box<dyn Write + Send>>> {
    Ok(match o {
        Output::Off => None,
        Output::Stdout => Some(Box::new(std::io::stdout())),
        Output::File(p) => Some(Box::new(BufWriter::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        ))),
    })
}

fn writer_loop(
    rx: Receiver<Msg>,
    mut store: Option<EventStore>,
    mut jsonl: Option<Box<dyn Write + Send>>,
    mut access: Option<Box<dyn Write + Send>>,
    stats: &EventStats,
) {
    let mut batch: Vec<SecurityEvent> = Vec::new();
    let mut flushes = Vec::new();
    let mut last_retention = Instant::now();
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut stop = false;
        // Drain what is already queued, so that a burst is written in one transaction.
        for msg in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(4096))
        {
            match msg {
                Msg::Event(e) => batch.push(*e),
                Msg::Access(line) => {
                    if let Some(w) = access.as_mut() {
                        let _ = writeln!(w, "{line}");
                    }
                }
                Msg::Flush(done) => flushes.push(done),
                Msg::Stop => stop = true,
            }
        }
        if !batch.is_empty() {
            if let Some(w) = jsonl.as_mut() {
                for e in &batch {
                    if let Ok(line) = serde_json::to_string(e) {
                        let _ = writeln!(w, "{line}");
                    }
                }
            }
            if let Some(s) = store.as_mut() {
                match s.insert(&batch) {
                    Ok(()) => {
                        stats
                            .stored
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("rampart_event_store_errors_total").increment(1);
                        tracing::error!(error = %e, "Cannot store events.");
                    }
                }
            }
            batch.clear();
        }
        for w in [jsonl.as_mut(), access.as_mut()].into_iter().flatten() {
            let _ = w.flush();
        }
        if last_retention.elapsed() > Duration::from_secs(60) {
            if let Some(s) = store.as_mut() {
                if let Err(e) = s.apply_retention(now_ms()) {
                    tracing::error!(error = %e, "Event retention failed.");
                }
            }
            last_retention = Instant::now();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if stop {
            break;
        }
    }
}

fn now_ms() -> UnixMillis {
    use rampart_core::Clock;
    rampart_core::SystemClock.now_ms()
}

#[cfg(test)]
mod tests {
    use rampart_core::FindingAction;

    use super::*;

    fn event(t: u64) -> SecurityEvent {
        SecurityEvent {
            time_ms: t,
            request_id: format!("r{t}"),
            client_ip: "192.0.2.1".into(),
            listener: "l".into(),
            api: Some("a".into()),
            operation: Some("op".into()),
            consumer: None,
            method: "GET".into(),
            path: "/".into(),
            stage: "iprules".into(),
            rule: Some("ip-rule-1".into()),
            action: FindingAction::Block,
            reason: "forbidden".into(),
            status: Some(403),
            detail: "x".into(),
        }
    }

    #[tokio::test]
    async fn a_full_channel_drops_and_counts() {
        let cfg = Events {
            sqlite: None,
            retention: Duration::from_secs(1),
            max_events: 10,
            max_bytes: 1 << 20,
            jsonl: Output::Off,
            channel_capacity: 1,
            access_log: Output::Off,
        };
        let (bus, writer) = EventBus::start(&cfg).unwrap();
        for i in 0..10_000 {
            bus.emit(event(i));
        }
        let s = bus.stats();
        assert_eq!(
            s.queued.load(Ordering::Relaxed) + s.dropped.load(Ordering::Relaxed),
            10_000
        );
        assert!(s.dropped.load(Ordering::Relaxed) > 0);
        bus.flush().await;
        writer.stop();
    }
}
