//! The one mapping from domain errors to S3 errors.

use s3ipfs_core::{ContentError, MetaError, NameError, ServiceError};
use s3s::{S3Error, S3ErrorCode, s3_error};

use crate::front::SERVER_ERROR_LOG;

/// The S3 error for a use-case failure.
pub fn service_error(err: ServiceError) -> S3Error {
    match err {
        ServiceError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist."),
        ServiceError::BucketAlreadyOwnedByYou => s3_error!(BucketAlreadyOwnedByYou),
        ServiceError::BucketAlreadyExists => s3_error!(BucketAlreadyExists),
        ServiceError::BucketNotEmpty => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty."),
        ServiceError::AccessDenied => s3_error!(AccessDenied, "Access Denied"),
        ServiceError::NoSuchKey { .. } => s3_error!(NoSuchKey, "The specified key does not exist."),
        ServiceError::NoSuchVersion => s3_error!(NoSuchVersion, "The specified version does not exist."),
        ServiceError::DeleteMarkerVersion { .. } => {
            s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource.")
        }
        ServiceError::NoSuchUpload => s3_error!(
            NoSuchUpload,
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        ServiceError::InvalidPart { number } => S3Error::with_message(
            S3ErrorCode::InvalidPart,
            format!("Part {number} could not be found, or its entity tag did not match the part's entity tag."),
        ),
        ServiceError::InvalidPartOrder => {
            s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. Parts must be ordered by part number."
            )
        }
        ServiceError::EntityTooLarge { .. } => {
            s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.")
        }
        ServiceError::EntityTooSmall { number } => S3Error::with_message(
            S3ErrorCode::EntityTooSmall,
            format!("Your proposed upload is smaller than the minimum allowed object size (part {number})."),
        ),
        ServiceError::PreconditionFailed => {
            s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
        }
        ServiceError::ConditionalRequestConflict => s3_error!(
            ConditionalRequestConflict,
            "The conditional request cannot succeed due to a conflicting operation against this resource."
        ),
        ServiceError::BadDigest(algorithm) => S3Error::with_message(
            S3ErrorCode::BadDigest,
            format!("The {algorithm} you specified did not match the calculated checksum."),
        ),
        ServiceError::IncompleteBody(why) => S3Error::with_message(S3ErrorCode::IncompleteBody, why),
        ServiceError::InvalidRequest(why) => S3Error::with_message(S3ErrorCode::InvalidRequest, why),
        ServiceError::InvalidArgument(why) => S3Error::with_message(S3ErrorCode::InvalidArgument, why),
        ServiceError::Meta(err) => meta_error(err),
        ServiceError::Content(err) => content_error(err),
    }
}

/// The S3 error for a metadata store failure reaching the protocol layer.
pub fn meta_error(err: MetaError) -> S3Error {
    match err {
        MetaError::Unavailable { message } => S3Error::with_message(S3ErrorCode::ServiceUnavailable, message),
        MetaError::NoSuchBucket => s3_error!(NoSuchBucket),
        MetaError::BucketNotEmpty => s3_error!(BucketNotEmpty),
        MetaError::BucketExists { .. } => s3_error!(BucketAlreadyExists),
        MetaError::NoSuchUpload => s3_error!(NoSuchUpload),
        MetaError::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        MetaError::PreconditionFailed => {
            s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
        }
        // A writer waited for garbage collection to let go of its content and gave up: the client retries.
        MetaError::ContentBusy => s3_error!(SlowDown, "Please reduce your request rate."),
        err @ (MetaError::EmailTaken
        | MetaError::KeyExists
        | MetaError::ContentGone
        | MetaError::Invalid(_)
        | MetaError::Backend { .. }) => {
            if let Some(suppressed) = SERVER_ERROR_LOG.admit() {
                tracing::error!(error = %err, suppressed, "metadata store failure");
            }
            s3_error!(InternalError, "We encountered an internal error. Please try again.")
        }
    }
}

/// The S3 error for a content store failure.
pub fn content_error(err: ContentError) -> S3Error {
    match err {
        ContentError::Unavailable { message, retry_after } => {
            let mut err = S3Error::with_message(S3ErrorCode::ServiceUnavailable, message);
            let secs = retry_after.map_or(1, |after| after.as_secs_f64().ceil().max(1.0) as u64);
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            err.set_headers(headers);
            err
        }
        ContentError::Range { .. } => s3_error!(InvalidRange, "The requested range is not satisfiable"),
        err @ (ContentError::NotFound(_)
        | ContentError::Io(_)
        | ContentError::Refused { .. }
        | ContentError::CidMismatch { .. }) => {
            if let Some(suppressed) = SERVER_ERROR_LOG.admit() {
                tracing::error!(error = %err, suppressed, "content store failure");
            }
            s3_error!(InternalError, "We encountered an internal error. Please try again.")
        }
    }
}

/// The S3 error for a malformed name.
pub fn name_error(err: NameError) -> S3Error {
    match err {
        NameError::Bucket(why) => S3Error::with_message(S3ErrorCode::InvalidBucketName, why.to_owned()),
        NameError::EmptyKey => s3_error!(InvalidArgument, "Object keys must not be empty"),
        NameError::KeyTooLong => s3_error!(KeyTooLongError, "Your key is too long"),
        NameError::VersionId => s3_error!(InvalidArgument, "Invalid version id specified"),
    }
}
