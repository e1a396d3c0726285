//! Request bodies: why a body stream failed decides the S3 error (a bad chunk signature is not an incomplete body).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use s3s::dto::StreamingBlob;
use s3s::stream::aws_chunked_stream::AwsChunkedStreamError;
use s3s::stream::upload_stream::UploadStreamError;
use s3s::{BodySizeLimitExceeded, S3Error, S3ErrorCode, s3_error};

/// The S3 error of the first failure seen on a watched body.
#[derive(Debug, Clone, Default)]
pub struct BodyFailure(Arc<Mutex<Option<S3Error>>>);

impl BodyFailure {
    /// The recorded error, if the body failed.
    pub fn take(&self) -> Option<S3Error> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The S3 error AWS returns for a body stream failure.
fn classify(err: &(dyn std::error::Error + 'static)) -> S3Error {
    if let Some(chunked) = err.downcast_ref::<AwsChunkedStreamError>() {
        return match chunked {
            AwsChunkedStreamError::SignatureMismatch => {
                s3_error!(SignatureDoesNotMatch, "The chunk signature does not match the signature you provided.")
            }
            AwsChunkedStreamError::Underlying(inner) => classify(inner.as_ref()),
            other => S3Error::with_message(S3ErrorCode::IncompleteBody, other.to_string()),
        };
    }
    if let Some(upload) = err.downcast_ref::<UploadStreamError>() {
        return match upload {
            UploadStreamError::Sha256Mismatch => {
                // AWS's code for this case; s3s has no built-in variant for it.
                let code = S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into());
                let mut err = S3Error::with_message(
                    code,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                );
                err.set_status_code(http::StatusCode::BAD_REQUEST);
                err
            }
            UploadStreamError::Underlying(inner) => classify(inner.as_ref()),
            other => S3Error::with_message(S3ErrorCode::IncompleteBody, other.to_string()),
        };
    }
    if err.downcast_ref::<crate::front::BodyStalled>().is_some() {
        return S3Error::with_message(S3ErrorCode::RequestTimeout, crate::front::REQUEST_TIMEOUT);
    }
    if err.downcast_ref::<BodySizeLimitExceeded>().is_some() {
        return s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.");
    }
    S3Error::with_message(S3ErrorCode::IncompleteBody, err.to_string())
}

/// Wraps a request body so that its first failure is classified and kept for the response.
pub fn watch(body: StreamingBlob) -> (impl Stream<Item = Result<Bytes, String>> + Send + Unpin, BodyFailure) {
    let failure = BodyFailure::default();
    let slot = failure.clone();
    let stream = body.map(move |item| {
        item.map_err(|err| {
            let s3_err = classify(err.as_ref());
            let message = s3_err.message().unwrap_or("request body failed").to_owned();
            if let Ok(mut first) = slot.0.lock() {
                first.get_or_insert(s3_err);
            }
            message
        })
    });
    (stream, failure)
}
