//! Access to the admin plane: the bearer token (kept as its SHA-256 only), the limiter of
//! failed attempts, dashboard sessions and their CSRF tokens.
//!
//! The token is 256 random bits, so one SHA-256 is the right hash for it: a password hash
//! (argon2) defends low-entropy secrets against guessing and would cost tens of milliseconds
//! per request here for nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use aws_lc_rs::digest::{digest, SHA256};

/// Failed attempts allowed per client address within [`FAILURE_WINDOW_MS`].
pub const MAX_FAILURES: u32 = 10;
/// The window of the failure count; a client over the limit waits until it ends.
pub const FAILURE_WINDOW_MS: u64 = 60_000;
/// How long a dashboard session lasts without use.
pub const SESSION_IDLE_MS: u64 = 8 * 3_600_000;
/// Most sessions kept; the oldest go first.
const MAX_SESSIONS: usize = 1_000;
/// Most client addresses tracked by the failure limiter.
const MAX_TRACKED: usize = 10_000;

/// The SHA-256 of a token.
pub type TokenHash = [u8; 32];

/// Hashes a token.
pub fn hash_token(token: &str) -> TokenHash {
    let d = digest(&SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // The system generator cannot fail on a supported platform; if it ever did, an empty
    // token would be refused by every check rather than accepted.
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        return String::new();
    }
    hex(&buf)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<TokenHash> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Where the token comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The configuration names it.
    Config,
    /// Generated at an earlier start; only its hash is known.
    Stored,
    /// Generated now: the token, to print once.
    Generated(String),
}

/// Reads the hash of the generated token, or generates a token and stores its hash (mode 0600).
pub fn load_or_generate(path: &Path) -> Result<(TokenHash, TokenSource), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            return unhex(&text)
                .map(|h| (h, TokenSource::Stored))
                .ok_or_else(|| {
                    format!(
                        "{}: not a SHA-256 in hex; delete it to generate a new admin token",
                        path.display()
                    )
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let token = format!("rpt_{}", random_hex(32));
    if token.len() != 68 {
        return Err("the system random generator failed".to_owned());
    }
    let h = hash_token(&token);
    write_private(path, &format!("{}\n", hex(&h)))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((h, TokenSource::Generated(token)))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?.write_all(text.as_bytes())
}

/// Counts failed attempts per client address; over the limit, the client is refused until
/// its window ends, whatever it sends.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    map: Mutex<HashMap<IpAddr, (u32, u64)>>,
}

impl FailureLimiter {
    /// When the client is locked out, the milliseconds left.
    pub fn locked(&self, ip: IpAddr, now_ms: u64) -> Option<u64> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some(&(n, start)) if n >= MAX_FAILURES && now_ms < start + FAILURE_WINDOW_MS => {
                Some(start + FAILURE_WINDOW_MS - now_ms)
            }
            _ => None,
        }
    }

    /// Counts a failure.
    pub fn fail(&self, ip: IpAddr, now_ms: u64) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, (_, start)| now_ms < *start + FAILURE_WINDOW_MS);
        }
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            return;
        }
        let e = map.entry(ip).or_insert((0, now_ms));
        if now_ms >= e.1 + FAILURE_WINDOW_MS {
            *e = (0, now_ms);
        }
        e.0 += 1;
    }
}

/// A dashboard session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Last use.
    pub seen_ms: u64,
}

/// Dashboard sessions, keyed by the SHA-256 of their cookie (a leaked memory dump does not
/// give usable cookies).
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<TokenHash, Session>>,
}

impl Sessions {
    /// Opens a session; returns its cookie value and CSRF token.
    pub fn open(&self, now_ms: u64) -> (String, String) {
        let id = random_hex(32);
        let csrf = random_hex(32);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| now_ms < s.seen_ms + SESSION_IDLE_MS);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.seen_ms).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            hash_token(&id),
            Session {
                csrf: csrf.clone(),
                seen_ms: now_ms,
            },
        );
        (id, csrf)
    }

    /// Finds a live session by its cookie and marks it used.
    pub fn get(&self, id: &str, now_ms: u64) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = hash_token(id);
        let s = map.get_mut(&key)?;
        if now_ms >= s.seen_ms + SESSION_IDLE_MS {
            map.remove(&key);
            return None;
        }
        s.seen_ms = now_ms;
        Some(s.clone())
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&hash_token(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_is_printed_once_and_only_its_hash_is_kept() {
        let dir = std::env::temp_dir().join(format!("rampart-admin-tok-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sha256");
        let (h1, src) = load_or_generate(&path).unwrap();
        let TokenSource::Generated(token) = src else {
            panic!("first start generates")
        };
        assert!(token.starts_with("rpt_") && token.len() == 68);
        assert_eq!(hash_token(&token), h1);
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(
            !stored.contains(&token[4..]),
            "the token itself is not stored"
        );
        let (h2, src) = load_or_generate(&path).unwrap();
        assert_eq!((h2, src), (h1, TokenSource::Stored));
        std::fs::write(&path, "garbage").unwrap();
        assert!(load_or_generate(&path)
            .unwrap_err()
            .contains("not a SHA-256"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn failures_lock_out_a_client_for_the_rest_of_the_window() {
        let l = FailureLimiter::default();
        let ip = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..MAX_FAILURES - 1 {
            l.fail(ip, 1_000);
        }
        assert_eq!(l.locked(ip, 1_000), None);
        l.fail(ip, 2_000);
        assert_eq!(l.locked(ip, 2_000), Some(FAILURE_WINDOW_MS - 1_000));
        assert_eq!(l.locked(IpAddr::from([192, 0, 2, 2]), 2_000), None);
        assert_eq!(l.locked(ip, 1_000 + FAILURE_WINDOW_MS), None);
    }

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::default();
        let (id, csrf) = s.open(0);
        assert_eq!(s.get(&id, 10).unwrap().csrf, csrf);
        assert!(s.get("nope", 10).is_none());
        assert!(s.get(&id, 10 + SESSION_IDLE_MS).is_none());
        let (id, _) = s.open(0);
        s.close(&id);
        assert!(s.get(&id, 1).is_none());
    }
}
