//! Request bodies that stop arriving: after `timeout` without a byte, the body fails with [`BodyStalled`], which the
//! operations answer with S3's `RequestTimeout`. The wait only counts while the server is waiting for the client.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A limit on how long something may wait without progress: each wait that follows progress starts a new period
/// of `timeout`. Its timer is allocated on the first wait and re-armed after that, not allocated per wait.
pub struct StallTimer {
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl StallTimer {
    /// A timer allowing `timeout` per wait.
    pub fn new(timeout: Duration) -> Self {
        StallTimer { timeout, sleep: None, armed: false }
    }

    /// The timeout it allows.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Progress was made: the next wait starts a new period.
    pub fn progressed(&mut self) {
        self.armed = false;
    }

    /// Waiting: whether `timeout` has passed since the wait began (if not, `cx` is woken when it does).
    pub fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.timeout;
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        self.sleep.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}

/// The error a stalled body fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {0:?}")]
pub struct BodyStalled(pub Duration);

/// What the front learns about a body while the request runs.
#[derive(Debug, Default)]
pub(crate) struct BodyProgress {
    /// Bytes received so far.
    pub received: AtomicU64,
    /// Whether the body stalled.
    pub stalled: AtomicBool,
}

/// A request body with a stall timeout, counting what it receives.
pub(crate) struct StallBody<B> {
    inner: B,
    timer: StallTimer,
    progress: Arc<BodyProgress>,
}

impl<B> StallBody<B> {
    /// Wraps `inner`; `progress` is shared with the front.
    pub(crate) fn new(inner: B, timeout: Duration, progress: Arc<BodyProgress>) -> Self {
        StallBody { inner, timer: StallTimer::new(timeout), progress }
    }
}

impl<B> Body for StallBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer.progressed();
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                    let len = data.map_or(0, |d| d.len() as u64);
                    this.progress.received.fetch_add(len, Ordering::Relaxed);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.timer.expired(cx) => {
                this.progress.stalled.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(BodyStalled(this.timer.timeout())))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use http_body_util::StreamBody;

    #[tokio::test]
    async fn a_body_that_stops_sending_fails_after_the_timeout() {
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let progress = Arc::new(BodyProgress::default());
        let mut body = StallBody::new(StreamBody::new(rx), Duration::from_millis(50), Arc::clone(&progress));
        let mut tx = tx;
        futures::SinkExt::send(&mut tx, Ok(Frame::data(Bytes::from_static(b"abc")))).await.expect("send");
        let first = body.frame().await.expect("frame").expect("data");
        assert_eq!(first.into_data().expect("data"), Bytes::from_static(b"abc"));
        let stalled = body.frame().await.expect("an error frame").expect_err("stalled");
        assert!(stalled.is::<BodyStalled>());
        assert!(progress.stalled.load(Ordering::Relaxed));
        assert_eq!(progress.received.load(Ordering::Relaxed), 3);
        drop(tx);
    }

    /// Polls the timer once, as a body or connection that is waiting does.
    async fn waited(timer: &mut StallTimer) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(timer.expired(cx))).await
    }

    #[tokio::test]
    async fn progress_gives_the_next_wait_a_full_period() {
        let mut timer = StallTimer::new(Duration::from_millis(400));
        let pause = || tokio::time::sleep(Duration::from_millis(250));
        assert!(!waited(&mut timer).await);
        pause().await;
        assert!(!waited(&mut timer).await, "still within the first period");
        timer.progressed();
        pause().await;
        assert!(!waited(&mut timer).await, "past the first period's end, but a new period began with this wait");
        pause().await;
        assert!(!waited(&mut timer).await, "250 ms into the new period");
        pause().await;
        assert!(waited(&mut timer).await, "500 ms without progress");
    }
}
