//! Every backend call goes through one tower stack, outermost first:
//! - a bulkhead: at most `max_in_flight` calls at once, waiting at most one call timeout for a slot;
//! - retries with jittered exponential backoff, for idempotent calls and transient errors only (the SDK's own
//!   retries are off, so the two never multiply);
//! - a circuit breaker, which sees every attempt: after five in a row failed for transient reasons, attempts are
//!   refused at once (503 with `Retry-After`, not retried) until a probe succeeds after the open period;
//! - a rate limiter (Filebase documents about 100 requests/s), counting every attempt;
//! - a timeout per attempt, sized by the call (uploads get time for their bytes).
//!
//! Calls of different shapes share the stack: a call is a closure returning a boxed reply, downcast by [`Backend::call`].

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use s3ipfs_core::ContentError;
use tower::{Layer as _, ServiceExt as _};
use tower_resilience::bulkhead::BulkheadLayer;
use tower_resilience::circuitbreaker::{CircuitBreakerLayer, CircuitState};
use tower_resilience::core::ResilienceError;
use tower_resilience::ratelimiter::RateLimiterLayer;
use tower_resilience::retry::{ExponentialRandomBackoff, RetryLayer};
use tower_resilience::timelimiter::TimeLimiterLayer;

use super::stats::RemoteStats;

/// How a backend call failed, before resilience.
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum RemoteError {
    /// 404: no such object.
    #[error("not found")]
    NotFound,
    /// 416: the range starts beyond the object.
    #[error("range not satisfiable")]
    InvalidRange,
    /// The backend is unreachable, slow, overloaded or failing (5xx, 429, timeouts, I/O): retry, count for the breaker.
    #[error("{0}")]
    Transient(String),
    /// The backend refused the request (4xx): retrying does not help.
    #[error("{0}")]
    Refused(String),
    /// A local failure (reading the spool).
    #[error("local: {0}")]
    Local(String),
}

impl RemoteError {
    /// Classifies an SDK error by what happened on the wire.
    pub(super) fn from_sdk<E>(err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        use aws_sdk_s3::error::SdkError;
        let status = err.raw_response().map(|r| r.status().as_u16());
        let message = match &err {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                format!("{} {}", inner.code().unwrap_or("error"), inner.message().unwrap_or_default())
            }
            other => format!("{}", aws_sdk_s3::error::DisplayErrorContext(other)),
        };
        match status {
            Some(404) => RemoteError::NotFound,
            Some(416) => RemoteError::InvalidRange,
            // 501: the backend does not do this at all; retrying or opening the breaker would not help.
            Some(501) => RemoteError::Refused(message),
            Some(408 | 429) | Some(500..) | None => RemoteError::Transient(message),
            Some(_) => RemoteError::Refused(message),
        }
    }
}

type Reply = Box<dyn Any + Send>;
type Failure = ResilienceError<RemoteError>;

/// One backend call: what it is, whether it may be repeated, how long one attempt may take, and how to make it.
#[derive(Clone)]
struct Call {
    idempotent: bool,
    timeout: Duration,
    run: Arc<dyn Fn() -> BoxFuture<'static, Result<Reply, RemoteError>> + Send + Sync>,
}

fn transient(err: &Failure) -> bool {
    matches!(err, ResilienceError::Application(RemoteError::Transient(_)) | ResilienceError::Timeout { .. })
}

/// Settings of the stack.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    /// Attempts beyond the first for idempotent calls.
    pub retries: usize,
    /// Calls in flight at once.
    pub max_in_flight: usize,
    /// Attempts per second.
    pub requests_per_second: usize,
    /// How long a caller may wait for a bulkhead slot or a rate-limit permit.
    pub max_wait: Duration,
    /// How long the breaker stays open before it lets a probe through.
    pub open_for: Duration,
}

/// The resilient path to the backend.
#[derive(Clone)]
pub(super) struct Backend {
    stack: tower::util::BoxCloneSyncService<Call, Reply, Failure>,
    open_for: Duration,
    stats: Arc<RemoteStats>,
}

impl Backend {
    /// Builds the stack.
    pub(super) fn new(limits: &Limits, stats: Arc<RemoteStats>) -> Result<Self, String> {
        let inner = tower::service_fn(|call: Call| (call.run)());
        let timed = TimeLimiterLayer::builder()
            .timeout_fn(|call: &Call| call.timeout)
            .name("content-backend")
            .build()
            .layer(inner)
            .map_err(Failure::from);
        let limited = RateLimiterLayer::builder()
            .limit_for_period(limits.requests_per_second)
            .refresh_period(Duration::from_secs(1))
            .timeout_duration(limits.max_wait)
            .name("content-backend")
            .build()
            .map_err(|e| e.to_string())?
            .layer(timed)
            .map_err(Failure::from);
        let opened = Arc::clone(&stats);
        let breaker = CircuitBreakerLayer::builder()
            .failure_classifier(|result: &Result<Reply, Failure>| matches!(result, Err(e) if transient(e)))
            // Five attempts in a row failing for transient reasons open it: an outage is detected within a
            // request or two, whatever succeeded before; a flaky backend is the retries' business.
            .consecutive_failures(5)
            .wait_duration_in_open(limits.open_for)
            .permitted_calls_in_half_open(1)
            .on_state_transition(move |from, to| {
                if to == CircuitState::Open {
                    opened.breaker_opened();
                    tracing::warn!(?from, "content backend circuit breaker opened: backend calls are refused");
                } else {
                    tracing::info!(?from, ?to, "content backend circuit breaker changed state");
                }
            })
            .name("content-backend")
            .build()
            .map_err(|e| e.to_string())?
            .layer(limited)
            .map_err(Failure::from);
        let retries = limits.retries;
        let backoff = ExponentialRandomBackoff::new(Duration::from_millis(50), 0.5)
            .map_err(|e| e.to_string())?
            .max_interval(Duration::from_secs(1));
        let counted = Arc::clone(&stats);
        let retried = RetryLayer::<Call, Reply, Failure>::builder()
            .max_attempts_fn(move |call: &Call| if call.idempotent { 1 + retries } else { 1 })
            .backoff(backoff)
            // An open circuit is not transient: a call it refuses fails at once.
            .retry_on(transient)
            .on_retry(move |attempt, delay| {
                counted.retried();
                tracing::debug!(attempt, ?delay, "retrying a content backend call");
            })
            .name("content-backend")
            .build()
            .layer(breaker);
        let bulkhead = BulkheadLayer::builder()
            .max_concurrent_calls(limits.max_in_flight)
            .max_wait_duration(limits.max_wait)
            .name("content-backend")
            .build()
            .map_err(|e| e.to_string())?
            .layer(retried)
            .map_err(Failure::from);
        Ok(Backend { stack: tower::util::BoxCloneSyncService::new(bulkhead), open_for: limits.open_for, stats })
    }

    /// Runs `make` through the stack; `timeout` bounds each attempt.
    pub(super) async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        idempotent: bool,
        timeout: Duration,
        make: F,
    ) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, RemoteError>> + Send + 'static,
    {
        let run = Arc::new(move || {
            let attempt = make();
            Box::pin(async move { attempt.await.map(|value| Box::new(value) as Reply) })
                as BoxFuture<'static, Result<Reply, RemoteError>>
        });
        let call = Call { idempotent, timeout, run };
        match self.stack.clone().oneshot(call).await {
            Ok(reply) => reply.downcast::<T>().map(|value| *value).map_err(|_| {
                CallError::Failed(ContentError::Io(std::io::Error::other(format!("{operation}: unexpected reply"))))
            }),
            Err(ResilienceError::Application(RemoteError::NotFound)) => Err(CallError::NotFound),
            Err(ResilienceError::Application(RemoteError::InvalidRange)) => Err(CallError::InvalidRange),
            Err(failure) => Err(CallError::Failed(self.content_error(operation, failure))),
        }
    }

    fn content_error(&self, operation: &'static str, failure: Failure) -> ContentError {
        let unavailable = |message: String, retry_after| ContentError::Unavailable { message, retry_after };
        match failure {
            ResilienceError::CircuitOpen { .. } => {
                self.stats.rejected();
                unavailable("the content backend is failing; calls are paused".into(), Some(self.open_for))
            }
            ResilienceError::BulkheadFull { .. } | ResilienceError::RateLimited { .. } => {
                self.stats.rejected();
                unavailable("the content backend is busy; reduce your request rate".into(), None)
            }
            ResilienceError::Timeout { .. } => unavailable(format!("{operation} timed out"), None),
            ResilienceError::Application(RemoteError::Transient(message)) => {
                unavailable(format!("{operation}: {message}"), None)
            }
            ResilienceError::Application(RemoteError::Refused(message)) => ContentError::Refused { operation, message },
            ResilienceError::Application(RemoteError::Local(message)) => {
                ContentError::Io(std::io::Error::other(format!("{operation}: {message}")))
            }
            other => unavailable(format!("{operation}: {other}"), None),
        }
    }
}

/// How a call through [`Backend::call`] failed.
#[derive(Debug)]
pub(super) enum CallError {
    /// No such object.
    NotFound,
    /// The range starts beyond the object.
    InvalidRange,
    /// Anything else, as the content port reports it.
    Failed(ContentError),
}
