//! CompleteMultipartUpload can take minutes: the parts are joined, and with a remote content backend the object is
//! uploaded before the version commits. As S3 does, a Complete still running after [`FIRST_WAIT`] is answered
//! `200 OK` at once, with a space every [`TICK`] so the client's read timeout does not fire, and its result at the
//! end of the body: the `CompleteMultipartUploadResult`, or an `Error` document, which clients (botocore, the AWS
//! SDKs) read as a failure of the Complete. Headers only the result knows (`x-amz-version-id`) are then not sent.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body_util::BodyExt as _;
use s3s::{Body, HttpError};
use tokio::task::JoinHandle;

/// How long a Complete may run before the answer starts.
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// Time between two keep-alive spaces (short enough for clients that watch for stalled downloads, as the AWS SDKs
/// do after 5 s).
const TICK: Duration = Duration::from_secs(2);

/// Whether a request is a CompleteMultipartUpload (`POST /bucket/key?uploadId=…`).
pub(super) fn is_complete(method: &Method, uri: &http::Uri) -> bool {
    method == Method::POST
        && uri.query().is_some_and(|q| q.split('&').any(|pair| pair.split('=').next() == Some("uploadId")))
}

/// The answer to the Complete running in `task`: its own response when it ends within [`FIRST_WAIT`], a
/// keep-alive `200` otherwise.
pub(super) async fn answer(
    mut task: JoinHandle<Result<http::Response<Body>, HttpError>>,
) -> Result<http::Response<Body>, HttpError> {
    if let Ok(done) = tokio::time::timeout(FIRST_WAIT, &mut task).await {
        return match done {
            Ok(response) => response,
            Err(_) => Ok(failure_response()),
        };
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        if tx.send(Bytes::from_static(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")).await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
        loop {
            tokio::select! {
                done = &mut task => {
                    let _ = tx.send(result_document(done).await).await;
                    return;
                }
                _ = tick.tick() => {
                    // The client went away: the Complete still finishes (as at S3), nobody reads its result.
                    if tx.send(Bytes::from_static(b" ")).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes)), rx))
    });
    let mut response = http::Response::new(Body::http_body_unsync(http_body_util::StreamBody::new(frames)));
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    Ok(response)
}

/// The result document of a finished Complete, without its XML declaration (the keep-alive body has one).
async fn result_document(done: Result<Result<http::Response<Body>, HttpError>, tokio::task::JoinError>) -> Bytes {
    let body = match done {
        Ok(Ok(response)) => response.into_body().collect().await.map(|c| c.to_bytes()).ok(),
        _ => None,
    };
    let body = body.unwrap_or_else(|| Bytes::from(super::error_xml("InternalError", INTERNAL, &[])));
    match body.iter().position(|&b| b == b'>').filter(|_| body.starts_with(b"<?xml")) {
        Some(end) => body.slice(end + 1..),
        None => body,
    }
}

const INTERNAL: &str = "We encountered an internal error. Please try again.";

fn failure_response() -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(super::error_xml("InternalError", INTERNAL, &[])));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}
