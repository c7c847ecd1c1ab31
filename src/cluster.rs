//! `cluster`: what the nodes behind one balancer share, through Redis when `redis.url` is set.
//!
//! - **Rate limits**: one GCRA bucket per key in Redis, taken by a Lua script against Redis's own
//!   clock, so a client meets the same limit whichever node it reaches.
//! - **Revocations**: a revoked JWT `jti` is written to the store and published; every node hears
//!   it at once, and polls the store every half second as well (all there is without Redis, and
//!   the catch-up after Redis was away).
//! - **Channel events**: the node running a channel publishes each event with its now-playing
//!   document; followers on other nodes receive them through one pattern subscription per node.
//!
//! Redis going away is never an outage: a call that fails or outlasts `redis.timeout_ms` is
//! answered by the node alone (its own limits), with one warning per outage, `veza_redis_up` 0
//! and `veza_redis_fallbacks_total` counting the decisions made alone.

use crate::config;
use crate::metrics::Metrics;
use crate::store::MetadataStore;
use crate::util;
use dashmap::DashMap;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, OnceCell};
use tokio_util::sync::CancellationToken;

/// How often the store's revocations are read.
const POLL: Duration = Duration::from_millis(500);

/// One GCRA step against Redis's clock. KEYS[1]: the bucket; ARGV[1]: milliseconds per token;
/// ARGV[2]: the burst. Returns 0 when a token was taken, else the milliseconds until one is.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - interval * burst
if wait > 0 then return wait end
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now + 1000)
return 0
";

/// The nodes' shared state, or this node's alone.
pub struct Cluster {
    redis: Option<Shared>,
    /// Revoked `jti`s and when their tokens expire (Unix ms).
    revoked: DashMap<String, i64>,
    /// Followers on this node of channels running elsewhere, by channel id.
    relays: DashMap<String, broadcast::Sender<Arc<str>>>,
    metrics: Arc<Metrics>,
}

struct Shared {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    script: redis::Script,
    /// Whether the last call succeeded; a change is logged once.
    up: AtomicBool,
}

impl Cluster {
    /// The cluster of `config`. With a Redis URL that does not parse, the error names the key;
    /// Redis being unreachable is not an error (the node runs alone until it answers).
    pub fn new(config: &config::Redis, metrics: Arc<Metrics>) -> anyhow::Result<Cluster> {
        let redis = if config.url.is_empty() {
            None
        } else {
            let client = redis::Client::open(config.url.as_str())
                .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
            Some(Shared {
                client,
                conn: OnceCell::new(),
                prefix: config.prefix.clone(),
                timeout: Duration::from_millis(config.timeout_ms),
                script: redis::Script::new(GCRA),
                up: AtomicBool::new(false),
            })
        };
        Ok(Cluster {
            redis,
            revoked: DashMap::new(),
            relays: DashMap::new(),
            metrics,
        })
    }

    /// Whether Redis is configured.
    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    fn healthy(&self, ok: bool) {
        let Some(r) = &self.redis else { return };
        self.metrics.redis_up.set(i64::from(ok));
        if r.up.swap(ok, Ordering::AcqRel) != ok {
            if ok {
                tracing::info!("Redis answers: limits, revocations and channel events are shared");
            } else {
                tracing::warn!(
                    "Redis does not answer: each node applies its own rate limits until it does"
                );
            }
        }
    }

    /// Takes a token from the shared bucket `key` (`per_minute`, with `burst` at once): `None`
    /// when Redis is not configured or does not answer in time, and the node must decide alone.
    pub async fn take(
        &self,
        key: &str,
        per_minute: u32,
        burst: u32,
    ) -> Option<Result<(), Duration>> {
        let r = self.redis.as_ref()?;
        // While Redis is known to be away, requests are not slowed by trying it: the listener
        // reconnects in the background and says when it answers again.
        let conn = r.conn.get().filter(|_| r.up.load(Ordering::Acquire));
        let Some(conn) = conn else {
            self.metrics.redis_fallbacks.inc();
            return None;
        };
        let mut conn = conn.clone();
        let interval = (60_000 / u64::from(per_minute.max(1))).max(1);
        let mut call = r.script.key(format!("{}limit:{key}", r.prefix));
        call.arg(interval).arg(burst.max(1));
        match tokio::time::timeout(r.timeout, call.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(wait)) => {
                self.healthy(true);
                Some(if wait > 0 {
                    Err(Duration::from_millis(wait as u64))
                } else {
                    Ok(())
                })
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "a shared rate limit");
                self.healthy(false);
                self.metrics.redis_fallbacks.inc();
                None
            }
            Err(_) => {
                self.healthy(false);
                self.metrics.redis_fallbacks.inc();
                None
            }
        }
    }

    /// Counts a failed sign-in against shared buckets `(key, per_minute, burst)`; a bucket
    /// over its limit refuses its key on every node for the wait, which is returned (the longest).
    /// `None` when the node must count alone.
    pub async fn failed(&self, buckets: &[(&str, u32, u32)]) -> Option<Option<Duration>> {
        let mut longest = None;
        for &(key, per_minute, burst) in buckets {
            if let Err(wait) = self
                .take(&format!("failed:{key}"), per_minute, burst)
                .await?
            {
                let r = self.redis.as_ref()?;
                let mut conn = r.conn.get()?.clone();
                let mut set = redis::cmd("SET");
                set.arg(format!("{}blocked:{key}", r.prefix))
                    .arg(1)
                    .arg("PX")
                    .arg(wait.as_millis().max(1) as u64);
                let done = tokio::time::timeout(r.timeout, set.query_async::<()>(&mut conn)).await;
                if !matches!(done, Ok(Ok(()))) {
                    self.healthy(false);
                    return None;
                }
                longest = longest.max(Some(wait));
            }
        }
        Some(longest)
    }

    /// How long any of `keys` is still refused on every node after failed sign-ins. `None`
    /// when the node must decide alone.
    pub async fn refused(&self, keys: &[&str]) -> Option<Option<Duration>> {
        let r = self.redis.as_ref()?;
        let mut conn = r
            .conn
            .get()
            .filter(|_| r.up.load(Ordering::Acquire))?
            .clone();
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("PTTL").arg(format!("{}blocked:{key}", r.prefix));
        }
        match tokio::time::timeout(r.timeout, pipe.query_async::<Vec<i64>>(&mut conn)).await {
            Ok(Ok(left)) => Some(
                left.into_iter()
                    .filter(|ms| *ms > 0)
                    .max()
                    .map(|ms| Duration::from_millis(ms as u64)),
            ),
            _ => {
                self.healthy(false);
                None
            }
        }
    }

    /// Whether the token `jti` is revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked
            .get(jti)
            .is_some_and(|until| *until > util::now_ms())
    }

    /// Revokes `jti` until `expires_at` (Unix ms) on every node: stored, then published.
    pub async fn revoke(
        &self,
        store: &dyn MetadataStore,
        jti: &str,
        expires_at: i64,
    ) -> crate::store::Result<()> {
        store.revoke_token(jti, expires_at, util::now_ms()).await?;
        self.revoked.insert(jti.to_string(), expires_at);
        self.publish("revoked", &format!("{expires_at} {jti}"))
            .await;
        Ok(())
    }

    async fn publish(&self, channel: &str, message: &str) {
        let Some(r) = &self.redis else { return };
        let Some(conn) = r.conn.get().filter(|_| r.up.load(Ordering::Acquire)) else {
            return;
        };
        let mut conn = conn.clone();
        let name = format!("{}{channel}", r.prefix);
        let sent = tokio::time::timeout(
            r.timeout,
            redis::cmd("PUBLISH")
                .arg(&name)
                .arg(message)
                .query_async::<i64>(&mut conn),
        )
        .await;
        self.healthy(matches!(sent, Ok(Ok(_))));
    }

    /// Publishes one event of a channel running on this node to the followers on the others.
    pub async fn publish_channel(&self, channel: &str, payload: &str) {
        self.publish(&format!("channel:{channel}"), payload).await;
    }

    /// Follows a channel running on another node: the payloads its node publishes. `None`
    /// without Redis.
    pub fn follow_channel(&self, channel: &str) -> Option<broadcast::Receiver<Arc<str>>> {
        self.redis.as_ref()?;
        Some(
            self.relays
                .entry(channel.to_string())
                .or_insert_with(|| broadcast::channel(64).0)
                .subscribe(),
        )
    }

    /// Runs until shutdown: connects to Redis (again and again while it is away), hears
    /// revocations and channel events, and polls the store's revocations.
    pub async fn run(self: Arc<Self>, store: Arc<dyn MetadataStore>, shutdown: CancellationToken) {
        let poll = tokio::spawn(self.clone().poll(store));
        if self.redis.is_some() {
            tokio::select! {
                _ = self.clone().connect() => {}
                _ = shutdown.cancelled() => {}
            }
            tokio::select! {
                _ = self.clone().listen() => {}
                _ = shutdown.cancelled() => {}
            }
        } else {
            shutdown.cancelled().await;
        }
        poll.abort();
    }

    /// Makes the connection manager (which reconnects by itself from then on).
    async fn connect(self: Arc<Self>) {
        let Some(r) = &self.redis else { return };
        loop {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(r.timeout.max(Duration::from_millis(500))))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2));
            match ConnectionManager::new_with_config(r.client.clone(), config).await {
                Ok(conn) => {
                    let _ = r.conn.set(conn);
                    self.healthy(true);
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "connecting to Redis");
                    self.healthy(false);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Subscribes to revocations and channel events, again after every drop.
    async fn listen(self: Arc<Self>) {
        let Some(r) = &self.redis else { return };
        let revoked = format!("{}revoked", r.prefix);
        let channels = format!("{}channel:", r.prefix);
        loop {
            let subscribed = async {
                let mut ps = r.client.get_async_pubsub().await?;
                ps.subscribe(&revoked).await?;
                ps.psubscribe(format!("{channels}*")).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            let mut ps = match tokio::time::timeout(Duration::from_secs(3), subscribed).await {
                Ok(Ok(ps)) => {
                    // The shared connection reconnects on its next command: make that one now.
                    if let Some(conn) = r.conn.get() {
                        let mut conn = conn.clone();
                        let ping = redis::cmd("PING");
                        let pinged = tokio::time::timeout(
                            Duration::from_secs(2),
                            ping.query_async::<String>(&mut conn),
                        )
                        .await;
                        if !matches!(pinged, Ok(Ok(_))) {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    }
                    self.healthy(true);
                    ps
                }
                _ => {
                    self.healthy(false);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut messages = ps.on_message();
            while let Some(msg) = messages.next().await {
                let name = msg.get_channel_name();
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if name == revoked {
                    if let Some((until, jti)) = payload.split_once(' ') {
                        if let Ok(until) = until.parse() {
                            self.revoked.insert(jti.to_string(), until);
                        }
                    }
                } else if let Some(id) = name.strip_prefix(&channels) {
                    if let Some(tx) = self.relays.get(id) {
                        // No follower left: the entry goes.
                        if tx.send(Arc::from(payload)).is_err() {
                            drop(tx);
                            self.relays.remove_if(id, |_, tx| tx.receiver_count() == 0);
                        }
                    }
                }
            }
            drop(messages);
            self.healthy(false);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Reads revocations from the store: all at first, then those since the last read (with a
    /// margin for clocks and transactions), and forgets the expired ones.
    async fn poll(self: Arc<Self>, store: Arc<dyn MetadataStore>) {
        let mut since = 0i64;
        loop {
            let now = util::now_ms();
            match store.revocations_since(since).await {
                Ok(rows) => {
                    for (jti, until, _) in rows {
                        self.revoked.insert(jti, until);
                    }
                    since = now - 5_000;
                }
                Err(e) => tracing::debug!(error = %e, "reading revocations"),
            }
            self.revoked.retain(|_, until| *until > now);
            tokio::time::sleep(POLL).await;
        }
    }
}
