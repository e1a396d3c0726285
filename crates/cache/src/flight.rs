//! Single flight: concurrent misses for one CID share one fetch from the source.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use s3ipfs_cid::Cid;
use s3ipfs_core::ContentError;

type Flight<T> = Shared<BoxFuture<'static, Result<T, Arc<ContentError>>>>;
type Running<T> = Arc<Mutex<HashMap<Cid, Flight<T>>>>;

/// Fetches in progress, one per CID.
pub(crate) struct Flights<T: Clone> {
    running: Running<T>,
}

fn lock<T>(running: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    pub(crate) fn new() -> Self {
        Flights { running: Arc::default() }
    }

    /// Joins the fetch of `cid` in progress, or starts `fetch`; every caller gets its result. The fetch runs in a
    /// task of its own, so a caller that goes away cancels nothing for the others, and the task forgets the flight
    /// when it ends, whoever is still waiting.
    pub(crate) async fn run<F>(&self, cid: Cid, fetch: impl FnOnce() -> F) -> Result<T, ContentError>
    where
        F: Future<Output = Result<T, ContentError>> + Send + 'static,
    {
        let flight = {
            let mut running = lock(&self.running);
            match running.get(&cid) {
                Some(flight) => flight.clone(),
                None => {
                    let (fetching, forget) = (fetch(), Arc::clone(&self.running));
                    let task = tokio::spawn(async move {
                        let result = fetching.await;
                        // The only flight under `cid`: another starts only once this one is gone.
                        lock(&forget).remove(&cid);
                        result
                    });
                    let flight: Flight<T> = async move {
                        match task.await {
                            Ok(result) => result.map_err(Arc::new),
                            Err(join) => Err(Arc::new(ContentError::Io(std::io::Error::other(join.to_string())))),
                        }
                    }
                    .boxed()
                    .shared();
                    running.insert(cid, flight.clone());
                    flight
                }
            }
        };
        flight.await.map_err(|err| replay(&err))
    }
}
/// A shared fetch's error, for each of its callers.
fn replay(err: &ContentError) -> ContentError {
    match err {
        ContentError::NotFound(cid) => ContentError::NotFound(*cid),
        ContentError::Range { start, end, size } => ContentError::Range { start: *start, end: *end, size: *size },
        ContentError::Unavailable { message, retry_after } => {
            ContentError::Unavailable { message: message.clone(), retry_after: *retry_after }
        }
        ContentError::Refused { operation, message } => ContentError::Refused { operation, message: message.clone() },
        ContentError::CidMismatch { expected, reported } => {
            ContentError::CidMismatch { expected: *expected, reported: reported.clone() }
        }
        ContentError::Io(io) => ContentError::Io(std::io::Error::new(io.kind(), io.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flight_every_caller_left_is_forgotten_when_it_ends() {
        let flights: Flights<u32> = Flights::new();
        let cid = s3ipfs_cid::cid_of(s3ipfs_cid::Profile::KUBO_V1, b"x");
        let gone = tokio::time::timeout(
            std::time::Duration::from_millis(5),
            flights.run(cid, || async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Ok(7)
            }),
        )
        .await;
        assert!(gone.is_err(), "the caller left before the fetch ended");
        assert_eq!(lock(&flights.running).len(), 1);
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(lock(&flights.running).is_empty(), "nothing is held once the fetch ended");
        assert_eq!(flights.run(cid, || async { Ok(8) }).await.expect("a new fetch"), 8);
    }
}
