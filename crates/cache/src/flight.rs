//! Single flight: concurrent misses for one CID share one fetch from the source.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use s3ipfs_cid::Cid;
use s3ipfs_core::ContentError;

type Flight<T> = Shared<BoxFuture<'static, Result<T, Arc<ContentError>>>>;

/// Fetches in progress, one per CID.
pub(crate) struct Flights<T: Clone> {
    running: Mutex<HashMap<Cid, Flight<T>>>,
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    pub(crate) fn new() -> Self {
        Flights { running: Mutex::new(HashMap::new()) }
    }

    /// Joins the fetch of `cid` in progress, or starts `fetch`; every caller gets its result. The fetch runs in a
    /// task of its own, so a caller that goes away cancels nothing for the others.
    pub(crate) async fn run<F>(&self, cid: Cid, fetch: impl FnOnce() -> F) -> Result<T, ContentError>
    where
        F: Future<Output = Result<T, ContentError>> + Send + 'static,
    {
        let flight = {
            let mut running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match running.get(&cid) {
                Some(flight) => flight.clone(),
                None => {
                    let task = tokio::spawn(fetch());
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
        let result = flight.clone().await;
        let mut running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if running.get(&cid).is_some_and(|current| current.ptr_eq(&flight)) {
            running.remove(&cid);
        }
        result.map_err(|err| replay(&err))
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
