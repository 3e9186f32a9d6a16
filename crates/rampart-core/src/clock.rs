//! Time as stages see it: a [`Clock`] that the proxy backs with the system clock and
//! `rampart replay` backs with the recorded timestamps.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

/// A source of the current time. Stages never call the system clock themselves.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Returns the current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> UnixMillis;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMillis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to: for tests and for replaying recorded traffic.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// Creates a clock set to `now_ms`.
    pub fn new(now_ms: UnixMillis) -> Self {
        Self {
            now: AtomicU64::new(now_ms),
        }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: UnixMillis) {
        self.now.store(now_ms, Ordering::Relaxed);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> UnixMillis {
        self.now.load(Ordering::Relaxed)
    }
}
