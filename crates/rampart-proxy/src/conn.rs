//! Connection caps: global and per client IP, per listener.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts open connections on one listener.
#[derive(Debug, Default)]
pub struct ConnLimiter {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The listener is at `max_connections`.
    Total,
    /// The client is at `max_connections_per_ip`.
    PerIp,
}

impl Refusal {
    /// Returns the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Total => "max_connections",
            Self::PerIp => "max_connections_per_ip",
        }
    }
}

impl ConnLimiter {
    /// Takes a slot for a connection from `ip`, or says why not. The slot is freed when the
    /// permit is dropped.
    pub fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<ConnPermit, Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        let mut map = self
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            drop(map);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::PerIp);
        }
        *n += 1;
        Ok(ConnPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Returns the number of open connections.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

/// A held connection slot.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut map = self
            .limiter
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
        drop(map);
        self.limiter.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_enforced_and_released() {
        let l = Arc::new(ConnLimiter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = l.try_acquire(a, 3, 2).unwrap();
        let _p2 = l.try_acquire(a, 3, 2).unwrap();
        assert_eq!(l.try_acquire(a, 3, 2).unwrap_err(), Refusal::PerIp);
        let _p3 = l.try_acquire(b, 3, 2).unwrap();
        assert_eq!(l.try_acquire(b, 3, 2).unwrap_err(), Refusal::Total);
        drop(p1);
        let _p4 = l.try_acquire(a, 3, 2).unwrap();
        assert_eq!(l.open(), 3);
    }
}
