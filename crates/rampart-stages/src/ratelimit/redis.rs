//! The Redis store: every node counts in the same place, atomically, by a Lua script that runs
//! the very state machine of [`super::algo`] on a hash per key, with Redis's own clock (so
//! nodes whose clocks differ still agree).
//!
//! Keys are `<prefix>rl:{<sha256 of rule and key, hex>}`: the braces are a Redis Cluster hash
//! tag (one key per slot), and the digest keeps API keys and tokens out of Redis. When Redis
//! does not answer within the timeout (down, slow, not yet connected), the stage asks the
//! local limiter instead ([`RedisStore::local`]), logs it once per outage, and keeps
//! reconnecting in the background.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::algo::{Algorithm, Limit, Outcome};
use super::memory::MemoryStore;

/// The script: KEYS[1] the key; ARGV algorithm (`g`/`s`), requests, window ms, burst,
/// penalty ms, cost. Returns allowed, remaining, reset ms, retry ms, first refusal.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local algo = ARGV[1]
local requests = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local penalty = tonumber(ARGV[5])
local cost = tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'a', 'b', 'c', 'u', 'r')
local a = tonumber(h[1]) or 0
local b = tonumber(h[2]) or 0
local c = tonumber(h[3]) or 0
local u = tonumber(h[4]) or 0
local was_refusing = h[5] == '1'
local allowed, remaining, reset, retry
if now < u then
  allowed, remaining, reset, retry = false, 0, u - now, u - now
elseif algo == 'g' then
  local T = math.max(1, math.floor(window * 1000 / requests))
  local nowus = now * 1000
  local tau = math.max(1, burst) * T
  local tat = math.max(a, nowus)
  local new_tat = tat + cost * T
  local ahead = new_tat - nowus
  if ahead > tau then
    local behind = tat - nowus
    allowed = false
    remaining = math.floor(math.max(0, tau - behind) / T)
    reset = math.ceil(behind / 1000)
    retry = math.ceil((ahead - tau) / 1000)
  else
    a = new_tat
    allowed = true
    remaining = math.floor((tau - ahead) / T)
    reset = math.ceil(ahead / 1000)
    retry = 0
  end
else
  local w = math.max(1, window)
  local start = now - (now % w)
  if start ~= a then
    if start == a + w then b = c else b = 0 end
    c = 0
    a = start
  end
  local elapsed = now - start
  local prev = math.floor(b * (w - elapsed) / w)
  local used = prev + c
  reset = w - elapsed
  if used + cost > requests then
    allowed = false
    remaining = math.max(0, requests - used)
    local function earliest(p, room)
      if p == 0 then return 0 end
      return math.max(0, w - math.floor(((room + 1) * w - 1) / p))
    end
    retry = nil
    if c + cost <= requests then
      local e = earliest(b, requests - c - cost)
      if e < w then retry = math.max(1, e - elapsed) end
    end
    if retry == nil then
      if cost > requests then
        retry = w
      elseif c + cost <= requests then
        retry = w - elapsed
      else
        retry = (w - elapsed) + earliest(c, requests - cost)
      end
    end
  else
    c = c + cost
    allowed = true
    remaining = requests - used - cost
    retry = 0
  end
end
if not allowed and penalty > 0 and now >= u then
  u = now + penalty
  retry = math.max(retry, penalty)
  reset = math.max(reset, penalty)
end
local first = (not allowed) and (not was_refusing)
redis.call('HSET', KEYS[1], 'a', a, 'b', b, 'c', c, 'u', u, 'r', allowed and '0' or '1')
local ttl = 2 * window + penalty + 1000
if algo == 'g' then ttl = math.max(0, math.ceil((a - now * 1000) / 1000)) + penalty + window + 1000 end
redis.call('PEXPIRE', KEYS[1], ttl)
return {allowed and 1 or 0, remaining, reset, retry, first and 1 or 0}
"#;

/// Counts in Redis, with a local limiter for when Redis cannot answer.
pub struct RedisStore {
    client: redis::Client,
    conn: arc_swap::ArcSwapOption<redis::aio::ConnectionManager>,
    connecting: AtomicBool,
    script: redis::Script,
    timeout: Duration,
    prefix: String,
    deny_on_error: bool,
    local: MemoryStore,
    degraded: AtomicBool,
    url_shown: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url_shown)
            .field("connected", &self.conn.load().is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the Redis at `url` (`redis://host:port/db`); nothing is connected yet (see
    /// [`RedisStore::start`]).
    pub fn new(
        url: &str,
        timeout: Duration,
        prefix: &str,
        deny_on_error: bool,
        local_max_keys: usize,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL: {e}"))?;
        let url_shown = match url.split_once('@') {
            // redis://user:password@host → redis://…@host
            Some((scheme, host)) => format!(
                "{}…@{host}",
                &scheme[..scheme.find("//").map_or(0, |i| i + 2)]
            ),
            None => url.to_owned(),
        };
        Ok(Self {
            client,
            conn: arc_swap::ArcSwapOption::empty(),
            connecting: AtomicBool::new(false),
            script: redis::Script::new(SCRIPT),
            timeout,
            prefix: prefix.to_owned(),
            deny_on_error,
            local: MemoryStore::new(local_max_keys),
            degraded: AtomicBool::new(false),
            url_shown,
        })
    }

    /// Connects in the background (once; later calls do nothing): retries until Redis
    /// answers, then the connection manager reconnects by itself. Must run inside a tokio
    /// runtime. The task ends when the store is dropped.
    pub fn start(self: &Arc<Self>) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(store) = weak.upgrade() else { return };
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(store.timeout.max(Duration::from_millis(10))))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2));
                let client = store.client.clone();
                drop(store);
                match redis::aio::ConnectionManager::new_with_config(client, config).await {
                    Ok(conn) => {
                        if let Some(store) = weak.upgrade() {
                            tracing::info!(url = %store.url_shown, "Connected to Redis for rate limits.");
                            store.conn.store(Some(Arc::new(conn)));
                        }
                        return;
                    }
                    Err(e) => {
                        if let Some(store) = weak.upgrade() {
                            tracing::warn!(url = %store.url_shown, error = %e, "Cannot connect to Redis; the local limiter decides until it can.");
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    /// Takes over the connection of the store this one replaces (a reload with the same URL).
    pub fn inherit(&self, old: &RedisStore) {
        if self.url_shown == old.url_shown {
            if let Some(c) = old.conn.load_full() {
                self.conn.store(Some(c));
                self.connecting.store(true, Ordering::Release);
            }
        }
    }

    /// Returns true once connected.
    pub fn is_connected(&self) -> bool {
        self.conn.load().is_some()
    }

    fn key(&self, rule: &str, key: &str) -> String {
        let mut input = Vec::with_capacity(rule.len() + key.len() + 1);
        input.extend_from_slice(rule.as_bytes());
        input.push(0);
        input.extend_from_slice(key.as_bytes());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
        let mut hex = String::with_capacity(32);
        for b in &digest.as_ref()[..16] {
            hex.push_str(&format!("{b:02x}"));
        }
        format!("{}rl:{{{hex}}}", self.prefix)
    }

    /// Checks one request in Redis.
    pub async fn check(
        &self,
        rule: &str,
        key: &str,
        limit: &Limit,
        cost: u64,
    ) -> Result<Outcome, String> {
        let Some(conn) = self.conn.load_full() else {
            return Err("not connected".to_owned());
        };
        let mut conn = (*conn).clone();
        let mut inv = self.script.key(self.key(rule, key));
        inv.arg(match limit.algorithm {
            Algorithm::Gcra => "g",
            Algorithm::SlidingWindow => "s",
        })
        .arg(limit.requests)
        .arg(limit.window_ms)
        .arg(limit.burst)
        .arg(limit.penalty_ms)
        .arg(cost);
        let call = inv.invoke_async::<(i64, i64, i64, i64, i64)>(&mut conn);
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(self.timeout, call).await;
        metrics::histogram!("rampart_ratelimit_store_seconds")
            .record(started.elapsed().as_secs_f64());
        let (allowed, remaining, reset, retry, first) = match answer {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                metrics::counter!("rampart_ratelimit_store_errors_total", "kind" => "error")
                    .increment(1);
                return Err(e.to_string());
            }
            Err(_) => {
                metrics::counter!("rampart_ratelimit_store_errors_total", "kind" => "timeout")
                    .increment(1);
                return Err(format!("no answer within {} ms", self.timeout.as_millis()));
            }
        };
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Outcome {
            allowed: allowed == 1,
            remaining: n(remaining),
            reset_ms: n(reset),
            retry_after_ms: n(retry),
            first_refusal: first == 1,
        })
    }

    /// Checks one request with the local limiter (Redis cannot answer).
    pub fn local(&self, rule: &str, key: &str, limit: &Limit, cost: u64, now_ms: u64) -> Outcome {
        metrics::counter!("rampart_ratelimit_store_fallbacks_total").increment(1);
        self.local.check(rule, key, limit, cost, now_ms)
    }

    /// True when requests are refused (503) while Redis cannot answer (`on_error: deny`).
    pub fn deny_on_error(&self) -> bool {
        self.deny_on_error
    }

    /// Records that Redis failed; true for the first failure of an outage.
    pub fn note_degraded(&self) -> bool {
        let first = !self.degraded.swap(true, Ordering::AcqRel);
        if first {
            tracing::warn!(url = %self.url_shown, "Redis does not answer: rate limits fall back to this node's local limiter.");
        }
        first
    }

    /// Records that Redis answered; logs the end of an outage.
    pub fn note_healthy(&self) {
        if self.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!(url = %self.url_shown, "Redis answers again: rate limits are shared again.");
        }
    }

    fn ban_channel(&self) -> String {
        format!("{}bans", self.prefix)
    }

    /// Publishes a ban to every node, and keeps it in Redis for nodes that start later.
    pub async fn publish_ban(&self, key: &str, until_ms: u64) {
        let Some(conn) = self.conn.load_full() else {
            return;
        };
        let mut conn = (*conn).clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let ttl = until_ms.saturating_sub(now).max(1);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(format!("{}ban:{key}", self.prefix))
            .arg(until_ms)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .cmd("PUBLISH")
            .arg(self.ban_channel())
            .arg(format!("ban {until_ms} {key}"))
            .ignore();
        let call = pipe.query_async::<()>(&mut conn);
        if let Ok(Err(e)) | Err(e) = tokio::time::timeout(self.timeout * 4, call)
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timeout")))
        {
            tracing::warn!(error = %e, "Cannot share a ban through Redis.");
        }
    }

    /// Publishes a ban on a connection of its own (`rampart bans add`, which has no running
    /// store), and reports failures.
    pub async fn publish_ban_now(&self, key: &str, until_ms: u64) -> Result<(), String> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        redis::pipe()
            .cmd("SET")
            .arg(format!("{}ban:{key}", self.prefix))
            .arg(until_ms)
            .arg("PX")
            .arg(until_ms.saturating_sub(now).max(1))
            .ignore()
            .cmd("PUBLISH")
            .arg(self.ban_channel())
            .arg(format!("ban {until_ms} {key}"))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// Lifts a ban everywhere.
    pub async fn publish_unban(&self, key: &str) -> Result<(), String> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::pipe()
            .cmd("DEL")
            .arg(format!("{}ban:{key}", self.prefix))
            .ignore()
            .cmd("PUBLISH")
            .arg(self.ban_channel())
            .arg(format!("unban 0 {key}"))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// The bans kept in Redis: (key, until ms).
    pub async fn stored_bans(&self) -> Result<Vec<(String, u64)>, String> {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let pattern = format!("{}ban:*", self.prefix);
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 || keys.len() > 1_000_000 {
                break;
            }
        }
        let mut out = Vec::new();
        let strip = format!("{}ban:", self.prefix);
        for k in keys {
            let until: Option<u64> = redis::cmd("GET")
                .arg(&k)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(u) = until {
                out.push((k.trim_start_matches(&strip).to_owned(), u));
            }
        }
        Ok(out)
    }

    /// Listens for the bans other nodes publish (and loads those already in Redis), calling
    /// `apply(kind, key, until_ms)` for each; reconnects until the store is dropped.
    pub fn listen_for_bans(
        self: &Arc<Self>,
        apply: impl Fn(&str, &str, u64) + Send + Sync + 'static,
    ) {
        use futures_util::StreamExt;
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(store) = weak.upgrade() else { return };
                let client = store.client.clone();
                let channel = store.ban_channel();
                if let Ok(bans) = store.stored_bans().await {
                    for (key, until) in bans {
                        apply("ban", &key, until);
                    }
                }
                drop(store);
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&channel).await.is_ok() {
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                if weak.strong_count() == 0 {
                                    return;
                                }
                                let Ok(text) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                let mut parts = text.splitn(3, ' ');
                                let (Some(kind), Some(until), Some(key)) =
                                    (parts.next(), parts.next(), parts.next())
                                else {
                                    continue;
                                };
                                apply(kind, key, until.parse().unwrap_or(0));
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "Ban listener cannot reach Redis."),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
