//! The SQLite event store: one writer (the event thread), any number of readers (the admin
//! API), WAL mode so that reads never wait for writes.
//!
//! Queries are keyset-paginated on the row id (newest first): a page costs the same at the
//! end of a million events as at the start. Every filter column has an index whose implicit
//! last column is the row id, so `WHERE stage = ? ORDER BY id DESC LIMIT n` walks one index
//! backwards and stops after `n` rows.

use std::path::Path;
use std::time::Duration;

use rampart_core::{SecurityEvent, UnixMillis};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, Row};
use serde::Serialize;

/// Columns added after the first schema, with their type: added to older databases at open.
const ADDED_COLUMNS: &[(&str, &str)] = &[("operation", "TEXT"), ("consumer", "TEXT")];

/// The SQLite event store.
#[derive(Debug)]
pub struct EventStore {
    conn: Connection,
    retention: Duration,
    max_events: u64,
    max_bytes: u64,
    /// When the planner's statistics were last refreshed.
    analyzed: Option<std::time::Instant>,
}

/// A stored event with its id (the cursor of pagination).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    /// The row id: increasing in insertion order.
    pub id: i64,
    /// The event.
    #[serde(flatten)]
    pub event: SecurityEvent,
}

/// A filtered, paginated query of events, newest first. Every filter is an exact match;
/// absent filters match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Events at or after this time.
    pub from_ms: Option<UnixMillis>,
    /// Events before this time.
    pub to_ms: Option<UnixMillis>,
    /// The API.
    pub api: Option<String>,
    /// The operation.
    pub operation: Option<String>,
    /// The stage.
    pub stage: Option<String>,
    /// The rule id.
    pub rule: Option<String>,
    /// The client address.
    pub client_ip: Option<String>,
    /// The consumer.
    pub consumer: Option<String>,
    /// The action (`block`, `would_block`, `log`, `mask`).
    pub action: Option<String>,
    /// Only events older than this id (the `next` cursor of the previous page).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// One page of events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<StoredEvent>,
    /// The cursor of the next page, absent on the last one.
    pub next: Option<i64>,
}

/// The largest page.
pub const MAX_PAGE: u32 = 1000;

const COLUMNS: &str = "id, time_ms, request_id, client_ip, listener, api, operation, consumer, \
                       method, path, stage, rule, action, reason, status, detail";

impl EventStore {
    /// Opens (or creates) the database for writing.
    pub fn open(
        path: &Path,
        retention: Duration,
        max_events: u64,
        max_bytes: u64,
    ) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        // Only takes effect on a new database (before the first table): freed pages can then be
        // given back to the file system, so the file shrinks with retention.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
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
            );",
        )?;
        let existing: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('events')")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for (name, ty) in ADDED_COLUMNS {
            if !existing.iter().any(|c| c == name) {
                conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {name} {ty};"))?;
            }
        }
        // One index per filter column; SQLite appends the row id to each, so equality on the
        // column plus `ORDER BY id DESC` is an index walk. The first schema's two-column
        // indexes (column, time) could not serve that order: they are replaced.
        conn.execute_batch(
            "DROP INDEX IF EXISTS events_stage;
             DROP INDEX IF EXISTS events_rule;
             DROP INDEX IF EXISTS events_client;
             CREATE INDEX IF NOT EXISTS events_time ON events(time_ms);
             CREATE INDEX IF NOT EXISTS events_by_stage ON events(stage);
             CREATE INDEX IF NOT EXISTS events_by_rule ON events(rule);
             CREATE INDEX IF NOT EXISTS events_by_client ON events(client_ip);
             CREATE INDEX IF NOT EXISTS events_by_api ON events(api, operation);
             CREATE INDEX IF NOT EXISTS events_by_consumer ON events(consumer);
             CREATE INDEX IF NOT EXISTS events_by_action ON events(action);",
        )?;
        Ok(Self {
            conn,
            retention,
            max_events,
            max_bytes,
            analyzed: None,
        })
    }

    /// Writes a batch in one transaction.
    pub fn insert(&mut self, events: &[SecurityEvent]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO events (time_ms, request_id, client_ip, listener, api, operation, consumer, method, path, stage, rule, action, reason, status, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for e in events {
                st.execute(params![
                    i64::try_from(e.time_ms).unwrap_or(i64::MAX),
                    e.request_id,
                    e.client_ip,
                    e.listener,
                    e.api,
                    e.operation,
                    e.consumer,
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

    /// Deletes events older than the retention period, beyond the maximum count and beyond
    /// the maximum size (oldest first), then gives freed pages back. Returns how many went.
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
        // By size: estimate the bytes per event from the live pages and delete the oldest
        // until the live pages are under 90% of the cap (room for the next minute's writes).
        for _ in 0..8 {
            let used = self.used_bytes()?;
            if used <= self.max_bytes {
                break;
            }
            let count = self.count()?;
            if count == 0 {
                break;
            }
            let per_event = (used / count).max(1);
            let excess = used - self.max_bytes * 9 / 10;
            let drop = excess.div_ceil(per_event).clamp(1, count);
            n += self.conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?1)",
                params![i64::try_from(drop).unwrap_or(i64::MAX)],
            )?;
        }
        if n > 0 {
            // Each step of this pragma frees pages: run it to the end.
            let mut st = self.conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = st.query([])?;
            while rows.next()?.is_some() {}
        }
        if self
            .analyzed
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(3600))
        {
            self.analyze()?;
        }
        Ok(n)
    }

    /// Refreshes the planner's statistics, so that a query with several filters walks the
    /// index of the most selective one. Without them SQLite guesses: a page of
    /// `stage + action + consumer` over a million events took 24 ms instead of 3. A whole
    /// ANALYZE (sampling with `analysis_limit` reads only the start of each index, one key,
    /// and gets the statistics wrong) takes about 0.3 s per million events: it runs at the
    /// first retention pass and then hourly, on the writer thread (the channel holds the
    /// events meanwhile).
    pub fn analyze(&mut self) -> rusqlite::Result<()> {
        self.analyzed = Some(std::time::Instant::now());
        self.conn
            .execute_batch("PRAGMA analysis_limit = 0; ANALYZE;")
    }

    /// Bytes held by live (not free) pages.
    pub fn used_bytes(&self) -> rusqlite::Result<u64> {
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        Ok(u64::try_from((pages - free).max(0) * page_size).unwrap_or(0))
    }

    /// Bytes of the database file's pages (live and free).
    pub fn file_bytes(&self) -> rusqlite::Result<u64> {
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        Ok(u64::try_from(pages * page_size).unwrap_or(0))
    }

    /// Returns the number of stored events.
    pub fn count(&self) -> rusqlite::Result<u64> {
        count(&self.conn)
    }
}

fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(0))
}

/// A read-only connection to the event store, for queries.
#[derive(Debug)]
pub struct EventReader {
    conn: Connection,
}

impl EventReader {
    /// Opens the database read-only. It must exist (the writer creates it at start).
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Self { conn })
    }

    /// Runs a query; at most [`MAX_PAGE`] events per page.
    pub fn query(&self, q: &EventQuery) -> rusqlite::Result<EventPage> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let mut sql = format!("SELECT {COLUMNS} FROM events WHERE 1");
        let mut args: Vec<Value> = Vec::new();
        let mut eq = |col: &str, v: &Option<String>, sql: &mut String| {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ?"));
                args.push(Value::Text(v.clone()));
            }
        };
        eq("api", &q.api, &mut sql);
        eq("operation", &q.operation, &mut sql);
        eq("stage", &q.stage, &mut sql);
        eq("rule", &q.rule, &mut sql);
        eq("client_ip", &q.client_ip, &mut sql);
        eq("consumer", &q.consumer, &mut sql);
        eq("action", &q.action, &mut sql);
        if let Some(t) = q.from_ms {
            sql.push_str(" AND time_ms >= ?");
            args.push(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
        }
        if let Some(t) = q.to_ms {
            sql.push_str(" AND time_ms < ?");
            args.push(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
        }
        if let Some(id) = q.before_id {
            sql.push_str(" AND id < ?");
            args.push(Value::Integer(id));
        }
        // One more row than the page tells whether there is a next page.
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut events: Vec<StoredEvent> = st
            .query_map(params_from_iter(args), row_event)?
            .collect::<Result<_, _>>()?;
        let next = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| e.id)
        } else {
            None
        };
        Ok(EventPage { events, next })
    }

    /// Returns one event.
    pub fn get(&self, id: i64) -> rusqlite::Result<Option<StoredEvent>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE id = ?1"))?;
        let mut rows = st.query_map([id], row_event)?;
        rows.next().transpose()
    }

    /// Returns the number of stored events.
    pub fn count(&self) -> rusqlite::Result<u64> {
        count(&self.conn)
    }
}

fn row_event(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let action: String = r.get(12)?;
    Ok(StoredEvent {
        id: r.get(0)?,
        event: SecurityEvent {
            time_ms: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            request_id: r.get(2)?,
            client_ip: r.get(3)?,
            listener: r.get(4)?,
            api: r.get(5)?,
            operation: r.get(6)?,
            consumer: r.get(7)?,
            method: r.get(8)?,
            path: r.get(9)?,
            stage: r.get(10)?,
            rule: r.get(11)?,
            action: rampart_core::FindingAction::parse(&action)
                .unwrap_or(rampart_core::FindingAction::Log),
            reason: r.get(13)?,
            status: r.get(14)?,
            detail: r.get(15)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use rampart_core::FindingAction;

    use super::*;

    pub(crate) fn event(t: u64) -> SecurityEvent {
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

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rampart-ev-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("e.db")
    }

    #[test]
    fn retention_by_age_and_count() {
        let path = temp("age");
        let mut s = EventStore::open(&path, Duration::from_secs(10), 5, 1 << 30).unwrap();
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
    }

    #[test]
    fn retention_keeps_the_file_within_its_size() {
        let path = temp("size");
        let cap = 256 * 1024;
        let mut s = EventStore::open(&path, Duration::from_secs(86_400), u64::MAX, cap).unwrap();
        let mut last = 0;
        for round in 0..5u64 {
            let batch: Vec<_> = (0..2_000)
                .map(|i| {
                    let mut e = event(1_000_000 + round * 10_000 + i);
                    e.detail = format!("{i:0>200}");
                    e
                })
                .collect();
            s.insert(&batch).unwrap();
            assert!(
                s.file_bytes().unwrap() > cap,
                "each round overflows the cap"
            );
            s.apply_retention(1_100_000).unwrap();
            assert!(
                s.file_bytes().unwrap() <= cap,
                "file {} bytes over the cap {cap}",
                s.file_bytes().unwrap()
            );
            last = s.count().unwrap();
            assert!(last > 0, "retention keeps the newest events");
        }
        // The newest event of the last round is kept.
        let r = EventReader::open(&path).unwrap();
        let page = r
            .query(&EventQuery {
                limit: 1,
                ..EventQuery::default()
            })
            .unwrap();
        assert_eq!(page.events[0].event.time_ms, 1_000_000 + 4 * 10_000 + 1_999);
        assert_eq!(r.count().unwrap(), last);
    }

    #[test]
    fn filters_and_cursor_pagination() {
        let path = temp("query");
        let mut s =
            EventStore::open(&path, Duration::from_secs(86_400), u64::MAX, 1 << 30).unwrap();
        let batch: Vec<_> = (0..100u64)
            .map(|i| {
                let mut e = event(1_000 + i);
                e.stage = if i % 2 == 0 { "waf" } else { "iprules" }.into();
                e.rule = Some(format!("r{}", i % 5));
                e.client_ip = format!("192.0.2.{}", i % 3);
                e.consumer = (i % 4 == 0).then(|| "alice".to_owned());
                e.action = if i % 10 == 0 {
                    FindingAction::WouldBlock
                } else {
                    FindingAction::Block
                };
                e
            })
            .collect();
        s.insert(&batch).unwrap();
        let r = EventReader::open(&path).unwrap();
        // All pages of one filter, joined, are exactly the matching events, newest first.
        let q = EventQuery {
            stage: Some("waf".into()),
            rule: Some("r0".into()),
            limit: 3,
            ..EventQuery::default()
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = r
                .query(&EventQuery {
                    before_id: cursor,
                    ..q.clone()
                })
                .unwrap();
            assert!(page.events.len() <= 3);
            seen.extend(page.events.iter().map(|e| e.event.time_ms));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let want: Vec<u64> = (0..100u64)
            .rev()
            .filter(|i| i % 2 == 0 && i % 5 == 0)
            .map(|i| 1_000 + i)
            .collect();
        assert_eq!(seen, want);
        let page = r
            .query(&EventQuery {
                consumer: Some("alice".into()),
                from_ms: Some(1_010),
                to_ms: Some(1_050),
                action: Some("would_block".into()),
                limit: 100,
                ..EventQuery::default()
            })
            .unwrap();
        let got: Vec<u64> = page.events.iter().map(|e| e.event.time_ms).collect();
        assert_eq!(got, vec![1_040, 1_020]);
        let page = r
            .query(&EventQuery {
                stage: Some("waf".into()),
                client_ip: Some("192.0.2.0".into()),
                limit: 100,
                ..EventQuery::default()
            })
            .unwrap();
        let want: Vec<u64> = (0..100u64)
            .rev()
            .filter(|i| i % 6 == 0)
            .map(|i| 1_000 + i)
            .collect();
        let got: Vec<u64> = page.events.iter().map(|e| e.event.time_ms).collect();
        assert_eq!(got, want);
        assert_eq!(page.next, None);
        let one = r.get(page.events.first().map_or(1, |e| e.id)).unwrap();
        assert!(one.is_some());
        assert_eq!(r.get(1_000_000).unwrap(), None);
    }
}
