//! What a use case can fail with; the S3 layer maps each kind to exactly one S3 error.

use s3ipfs_cid::Algorithm;

use crate::content::ContentError;
use crate::meta::MetaError;
use crate::names::VersionId;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The bucket does not exist.
    #[error("the specified bucket does not exist")]
    NoSuchBucket,
    /// The caller already owns a bucket of that name.
    #[error("your previous request to create the named bucket succeeded and you already own it")]
    BucketAlreadyOwnedByYou,
    /// Another user owns a bucket of that name.
    #[error("the requested bucket name is not available")]
    BucketAlreadyExists,
    /// The bucket still holds objects or versions.
    #[error("the bucket you tried to delete is not empty")]
    BucketNotEmpty,
    /// The caller may not touch this bucket.
    #[error("access denied")]
    AccessDenied,
    /// No such key (or its latest version is a delete marker: `delete_marker` says which).
    #[error("the specified key does not exist")]
    NoSuchKey {
        /// The delete marker that hides the key, when there is one.
        delete_marker: Option<VersionId>,
    },
    /// No such version of the key.
    #[error("the specified version does not exist")]
    NoSuchVersion,
    /// The version asked for is a delete marker (GET/HEAD by id): S3 answers 405.
    #[error("the specified method is not allowed against this resource")]
    DeleteMarkerVersion {
        /// The marker's id.
        version_id: VersionId,
    },
    /// The multipart upload does not exist (completed, aborted or expired).
    #[error("the specified multipart upload does not exist")]
    NoSuchUpload,
    /// A part named in Complete was not uploaded, or its ETag differs.
    #[error("part {number} could not be found or its ETag does not match")]
    InvalidPart {
        /// The part number.
        number: u32,
    },
    /// Complete listed parts out of ascending order.
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    /// The object is larger than allowed (a CAR describing a file over S3's size limits).
    #[error("the object is larger than the maximum allowed size of {max} bytes")]
    EntityTooLarge {
        /// The largest size allowed.
        max: u64,
    },
    /// A part other than the last is below 5 MiB.
    #[error("part {number} is smaller than the minimum allowed size of 5 MiB")]
    EntityTooSmall {
        /// The part number.
        number: u32,
    },
    /// A condition (If-Match, If-None-Match, …) does not hold.
    #[error("at least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    /// The object a conditional write named was deleted while the write ran (S3: 409 ConditionalRequestConflict).
    #[error("the conditional request cannot succeed due to a conflicting operation against this resource")]
    ConditionalRequestConflict,
    /// A checksum the client sent does not match the body.
    #[error("the {0} you specified did not match the calculated checksum")]
    BadDigest(Algorithm),
    /// The request body ended early or could not be read.
    #[error("the request body could not be read: {0}")]
    IncompleteBody(String),
    /// The request is invalid as a whole (S3's `InvalidRequest`), e.g. checksums that contradict the upload's.
    #[error("{0}")]
    InvalidRequest(String),
    /// A request argument is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
}
