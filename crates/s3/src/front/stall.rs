//! Request bodies that stop arriving: after `timeout` without a byte, the body fails with [`BodyStalled`], which the
//! operations answer with S3's `RequestTimeout`. The wait only counts while the server is waiting for the client.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

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
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    progress: Arc<BodyProgress>,
}

impl<B> StallBody<B> {
    /// Wraps `inner`; `progress` is shared with the front.
    pub(crate) fn new(inner: B, timeout: Duration, progress: Arc<BodyProgress>) -> Self {
        StallBody { inner, timeout, timer: None, progress }
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
                this.timer = None;
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                    let len = data.map_or(0, |d| d.len() as u64);
                    this.progress.received.fetch_add(len, Ordering::Relaxed);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.progress.stalled.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(timeout)))));
                }
                Poll::Pending
            }
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
}
