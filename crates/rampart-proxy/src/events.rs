//! The event pipeline: a bounded channel from the request path to one writer thread that owns
//! the sinks (SQLite, JSON lines, the access log).
//!
//! Nothing on the request path waits for a write: `try_send` either queues or drops, and every
//! drop is counted (`rampart_events_dropped_total`), never silent.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_config::{Events, Output};
use rampart_core::{SecurityEvent, UnixMillis};
use rusqlite::{params, Connection};

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
                EventStore::open(path, cfg.retention, cfg.max_events)
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

/// The SQLite event store: WAL mode, indexed by time, stage, rule and client.
#[derive(Debug)]
pub struct EventStore {
    conn: Connection,
    retention: Duration,
    max_events: u64,
}

impl EventStore {
    /// Opens (or creates) the database.
    pub fn open(path: &Path, retention: Duration, max_events: u64) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY,
                time_ms INTEGER NOT NULL,
                request_id TEXT NOT NULL,
                client_ip TEXT NOT NULL,
                listener TEXT NOT NULL,
                api TEXT,
                method TEXT NOT NULL,
                path TEXT NOT NULL,
                stage TEXT NOT NULL,
                rule TEXT,
                action TEXT NOT NULL,
                reason TEXT NOT NULL,
                status INTEGER,
                detail TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS events_time ON events(time_ms);
            CREATE INDEX IF NOT EXISTS events_stage ON events(stage, time_ms);
            CREATE INDEX IF NOT EXISTS events_rule ON events(rule, time_ms);
            CREATE INDEX IF NOT EXISTS events_client ON events(client_ip, time_ms);",
        )?;
        Ok(Self {
            conn,
            retention,
            max_events,
        })
    }

    /// Writes a batch in one transaction.
    pub fn insert(&mut self, events: &[SecurityEvent]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO events (time_ms, request_id, client_ip, listener, api, method, path, stage, rule, action, reason, status, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for e in events {
                st.execute(params![
                    i64::try_from(e.time_ms).unwrap_or(i64::MAX),
                    e.request_id,
                    e.client_ip,
                    e.listener,
                    e.api,
                    e.method,
                    e.path,
                    e.stage,
                    e.rule,
                    e.action.as_str(),
                    e.reason,
                    e.status,
                    e.detail,
                ])?;
            }
        }
        tx.commit()
    }

    /// Deletes events older than the retention period and beyond the maximum count.
    pub fn apply_retention(&mut self, now_ms: UnixMillis) -> rusqlite::Result<usize> {
        let cutoff =
            now_ms.saturating_sub(u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX));
        let mut n = self.conn.execute(
            "DELETE FROM events WHERE time_ms < ?1",
            params![i64::try_from(cutoff).unwrap_or(0)],
        )?;
        n += self.conn.execute(
            "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            params![i64::try_from(self.max_events).unwrap_or(i64::MAX)],
        )?;
        Ok(n)
    }

    /// Returns the number of stored events.
    pub fn count(&self) -> rusqlite::Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    }
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

    #[test]
    fn retention_by_age_and_count() {
        let dir = std::env::temp_dir().join(format!("rampart-ev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.db");
        let _ = std::fs::remove_file(&path);
        let mut s = EventStore::open(&path, Duration::from_secs(10), 5).unwrap();
        s.insert(
            &(0..10)
                .map(|i| event(100_000 + i * 1000))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(s.count().unwrap(), 10);
        // 10 s retention at t=115 s keeps events from 105 s on: 5 of them (105..=109 s).
        s.apply_retention(115_000).unwrap();
        assert_eq!(s.count().unwrap(), 5);
        s.insert(&(0..3).map(|i| event(120_000 + i)).collect::<Vec<_>>())
            .unwrap();
        s.apply_retention(115_000).unwrap();
        assert_eq!(s.count().unwrap(), 5, "count cap keeps the newest 5");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_full_channel_drops_and_counts() {
        let cfg = Events {
            sqlite: None,
            retention: Duration::from_secs(1),
            max_events: 10,
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
