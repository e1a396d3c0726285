//! The Redis connection every cache layer shares: a pool of `fred` clients (standalone, sentinel or cluster, as the
//! URL says), one subscriber for invalidations, and the guard that keeps Redis from ever failing a request.
//!
//! Every command runs with `fail_fast` (no waiting for a reconnection), one attempt and a tight timeout, behind a
//! circuit breaker (tower-resilience): after a few failures in a row the breaker opens and commands are refused at
//! once, so an outage costs each request nothing but a counted bypass. The clients reconnect by themselves with
//! backoff; the breaker lets a probe through after its open period.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{
    Builder, ClientLike as _, Config, EventInterface as _, Expiration, KeysInterface as _, Options, Pool,
    PubsubInterface as _, ReconnectPolicy, SetOptions,
};
use fred::types::Value;
use futures::future::BoxFuture;
use tower::{Layer as _, ServiceExt as _};
use tower_resilience::circuitbreaker::{CircuitBreakerError, CircuitBreakerLayer, CircuitState};

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://`, `rediss://` (TLS), `redis-sentinel://` or `redis-cluster://` URL.
    pub url: String,
    /// Prepended to every key and channel, so that deployments (and tests) can share one Redis.
    pub prefix: String,
    /// How long one command may take before it is abandoned and the request goes to the source.
    pub timeout: Duration,
    /// How long the breaker stays open before a probe.
    pub open_for: Duration,
    /// Connections in the pool.
    pub pool_size: usize,
}

/// Why Redis could not be set up (a malformed URL; an unreachable server is not an error).
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisSetupError(String);

/// A Redis command did not answer: the caller goes to the source and counts a bypass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bypass;

/// What the invalidation channel delivers to its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Another replica (or this one) changed what `topic` names.
    Changed(String),
    /// Messages may have been lost (the subscriber reconnected or fell behind): drop everything cached.
    Reset,
}

/// One command, ready to run (a named type: the service stack needs one without lifetimes in it).
struct Call(BoxFuture<'static, Result<Value, fred::error::Error>>);
type Guarded = tower::util::BoxCloneSyncService<Call, Value, CircuitBreakerError<fred::error::Error>>;

/// The shared Redis handle; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    builder: Builder,
    prefix: String,
    options: Options,
    /// For writes that must land if they can: no breaker, waits for a reconnection, a longer timeout.
    sure: Options,
    guard: Guarded,
    /// Whether the last write that matters failed: then the next ones do not wait for Redis either.
    failing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("prefix", &self.inner.prefix).finish_non_exhaustive()
    }
}

impl Redis {
    /// Builds the pool and starts connecting in the background: a Redis that is down at start is reconnected to
    /// later, and until then every command is a bypass.
    pub fn connect(settings: &RedisSettings) -> Result<Self, RedisSetupError> {
        let mut config = Config::from_url(&settings.url).map_err(|e| RedisSetupError(e.to_string()))?;
        // Keep retrying the first connection too, instead of failing the start.
        config.fail_fast = false;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = settings.timeout.max(Duration::from_secs(1));
                c.internal_command_timeout = settings.timeout.max(Duration::from_secs(1));
                c.max_command_attempts = 1;
                c.tcp.nodelay = Some(true);
            })
            .with_performance_config(|p| p.default_command_timeout = settings.timeout)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        let pool = builder.build_pool(settings.pool_size.max(1)).map_err(|e| RedisSetupError(e.to_string()))?;
        drop(pool.connect_pool());
        let options =
            Options { fail_fast: true, max_attempts: Some(1), timeout: Some(settings.timeout), ..Options::default() };
        let patient = (settings.timeout * 5).max(Duration::from_millis(500));
        let sure = Options { fail_fast: false, max_attempts: Some(3), timeout: Some(patient), ..Options::default() };
        let guard = guard(settings.open_for).map_err(RedisSetupError)?;
        let prefix = settings.prefix.clone();
        let failing = std::sync::atomic::AtomicBool::new(false);
        Ok(Redis { inner: Arc::new(Inner { pool, builder, prefix, options, sure, guard, failing }) })
    }

    /// Waits up to `limit` for the first connection (a start that goes on without one only bypasses the cache).
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        matches!(tokio::time::timeout(limit, self.inner.pool.wait_for_connect()).await, Ok(Ok(())))
    }

    /// Runs a write whose loss would let another replica serve stale data, past the breaker. While such writes
    /// succeed, it waits out a slow answer or a reconnection up to a longer timeout; once one has failed (an outage),
    /// the next ones fail fast like every other command until one succeeds.
    async fn surely(
        &self,
        make: impl FnOnce(
            fred::clients::WithOptions<fred::clients::Client>,
        ) -> BoxFuture<'static, Result<Value, fred::error::Error>>,
    ) -> Result<Value, Bypass> {
        let failing = self.inner.failing.load(std::sync::atomic::Ordering::Relaxed);
        let options = if failing { &self.inner.options } else { &self.inner.sure };
        let result = make(self.inner.pool.next().with_options(options)).await;
        self.inner.failing.store(result.is_err(), std::sync::atomic::Ordering::Relaxed);
        result.map_err(|err| {
            tracing::debug!(error = %err, "a redis write that matters failed");
            Bypass
        })
    }

    /// [`set`](Self::set), [surely](Self::surely).
    pub async fn set_surely(&self, key: String, value: Bytes, ttl: Duration) -> Result<(), Bypass> {
        let expire = Some(Expiration::PX(millis(ttl)));
        self.surely(|c| Box::pin(async move { c.set::<Value, _, _>(key, value, expire, None, false).await })).await?;
        Ok(())
    }

    /// [`del`](Self::del), [surely](Self::surely).
    pub async fn del_surely(&self, key: String) -> Result<(), Bypass> {
        self.surely(|c| Box::pin(async move { c.del::<Value, _>(key).await })).await?;
        Ok(())
    }

    /// Publishes `message` on the invalidation channel, [surely](Self::surely).
    pub async fn publish_surely(&self, message: String) -> Result<(), Bypass> {
        let channel = self.key("invalidate");
        self.surely(|c| Box::pin(async move { c.publish::<Value, _, _>(channel, message).await })).await?;
        Ok(())
    }

    /// `prefix` + `key`: every key and channel is namespaced.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    async fn run(
        &self,
        make: impl FnOnce(
            fred::clients::WithOptions<fred::clients::Client>,
        ) -> BoxFuture<'static, Result<Value, fred::error::Error>>,
    ) -> Result<Value, Bypass> {
        let client = self.inner.pool.next().with_options(&self.inner.options);
        match self.inner.guard.clone().oneshot(Call(make(client))).await {
            Ok(value) => Ok(value),
            Err(CircuitBreakerError::OpenCircuit) => Err(Bypass),
            Err(err) => {
                tracing::debug!(error = %err, "redis command failed; going to the source");
                Err(Bypass)
            }
        }
    }

    /// The value of `key` (already prefixed), `None` if absent.
    pub async fn get(&self, key: String) -> Result<Option<Bytes>, Bypass> {
        let value = self.run(|c| Box::pin(async move { c.get::<Value, _>(key).await })).await?;
        Ok(value.into_bytes())
    }

    /// Sets `key` to `value` for `ttl`.
    pub async fn set(&self, key: String, value: Bytes, ttl: Duration) -> Result<(), Bypass> {
        let expire = Some(Expiration::PX(millis(ttl)));
        self.run(|c| Box::pin(async move { c.set::<Value, _, _>(key, value, expire, None, false).await })).await?;
        Ok(())
    }

    /// Sets `key` to `value` for `ttl` unless it exists; returns what `key` holds afterwards (one round trip,
    /// `SET … NX GET`, Redis 7 or later).
    pub async fn get_or_set(&self, key: String, value: Bytes, ttl: Duration) -> Result<Bytes, Bypass> {
        let expire = Some(Expiration::PX(millis(ttl)));
        let ours = value.clone();
        let old = self
            .run(|c| {
                Box::pin(async move { c.set::<Value, _, _>(key, value, expire, Some(SetOptions::NX), true).await })
            })
            .await?;
        Ok(old.into_bytes().unwrap_or(ours))
    }

    /// Deletes `key`.
    pub async fn del(&self, key: String) -> Result<(), Bypass> {
        self.run(|c| Box::pin(async move { c.del::<Value, _>(key).await })).await?;
        Ok(())
    }

    /// Subscribes to the invalidation channel on a connection of its own, and calls `listen` with every message,
    /// and with [`Notice::Reset`] whenever messages may have been lost. Runs until the process ends.
    pub fn subscribe(&self, listen: Arc<dyn Fn(Notice) + Send + Sync>) -> Result<(), RedisSetupError> {
        let subscriber = self.inner.builder.build_subscriber_client().map_err(|e| RedisSetupError(e.to_string()))?;
        let channel = self.key("invalidate");
        let mut messages = subscriber.message_rx();
        let mut reconnects = subscriber.reconnect_rx();
        drop(subscriber.connect());
        let _resubscribe = subscriber.manage_subscriptions();
        let on_message = Arc::clone(&listen);
        tokio::spawn(async move {
            loop {
                match messages.recv().await {
                    Ok(message) => match message.value.as_string() {
                        Some(topic) => on_message(Notice::Changed(topic)),
                        None => on_message(Notice::Reset),
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => on_message(Notice::Reset),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        tokio::spawn(async move {
            // The first connection, then every reconnection: whatever was published in between is lost.
            let mut first = true;
            loop {
                if first {
                    // Until the first subscription succeeds (later ones are renewed on every reconnection).
                    if subscriber.wait_for_connect().await.is_ok()
                        && subscriber.subscribe(channel.clone()).await.is_ok()
                    {
                        first = false;
                        // Whatever was published before this moment was missed.
                        listen(Notice::Reset);
                    } else {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    continue;
                }
                match reconnects.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        tracing::info!("redis reconnected: dropping cached metadata");
                        listen(Notice::Reset);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(())
    }
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The breaker around every command: three failures in a row open it for `open_for`.
fn guard(open_for: Duration) -> Result<Guarded, String> {
    let inner = tower::service_fn(|call: Call| call.0);
    let breaker = CircuitBreakerLayer::builder()
        .failure_classifier(|result: &Result<Value, fred::error::Error>| result.is_err())
        .consecutive_failures(3)
        .wait_duration_in_open(open_for)
        .permitted_calls_in_half_open(1)
        .on_state_transition(|from, to| {
            if to == CircuitState::Open {
                tracing::warn!(?from, "redis circuit breaker opened: caches are bypassed");
            } else {
                tracing::info!(?from, ?to, "redis circuit breaker changed state");
            }
        })
        .name("redis")
        .build()
        .map_err(|e| e.to_string())?
        .layer(inner);
    Ok(tower::util::BoxCloneSyncService::new(breaker))
}
