//! Conversions between s3s DTOs and domain types.

use std::collections::BTreeMap;
use std::time::SystemTime;

use s3ipfs_core::{BucketName, ObjectHeaders, ObjectKey, ObjectMeta, VersionId};
use s3s::dto::{ETag, Metadata, Timestamp};
use s3s::{S3Result, s3_error};

use crate::error::name_error;

/// A validated bucket name.
pub fn bucket_name(name: &str) -> S3Result<BucketName> {
    BucketName::parse(name).map_err(name_error)
}

/// A validated object key.
pub fn object_key(key: &str) -> S3Result<ObjectKey> {
    ObjectKey::parse(key).map_err(name_error)
}

/// A validated optional version id.
pub fn version_id(id: Option<&str>) -> S3Result<Option<VersionId>> {
    id.map(|id| VersionId::parse(id).map_err(name_error)).transpose()
}

/// An S3 timestamp.
pub fn timestamp(time: SystemTime) -> Timestamp {
    Timestamp::from(time)
}

/// The ETag of stored metadata as an s3s value.
pub fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.trim_matches('"').to_owned())
}

/// `Content-Encoding` without the `aws-chunked` token the SDKs add when they stream.
pub fn content_encoding(value: Option<String>) -> Option<String> {
    let value = value?;
    let kept: Vec<&str> =
        value.split(',').map(str::trim).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked")).collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// User metadata as stored: names lowercased.
pub fn user_meta(metadata: Option<Metadata>) -> BTreeMap<String, String> {
    metadata.unwrap_or_default().into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()
}

/// Metadata returned on GET/HEAD: the user's pairs plus `cid` (what Filebase returns as `x-amz-meta-cid`).
pub fn response_meta(meta: &ObjectMeta) -> Metadata {
    let mut out: Metadata = meta.user_meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(cid) = meta.cid {
        out.insert("cid".to_owned(), cid.to_string());
    }
    out
}

/// The headers stored with an object, from any input that carries them (PutObject, CopyObject,
/// CreateMultipartUpload: same field names).
macro_rules! stored_headers {
    ($input:expr) => {
        $crate::convert::headers(
            $input.content_type,
            $input.content_encoding,
            $input.content_disposition,
            $input.content_language,
            $input.cache_control,
            $input.expires,
        )
    };
}
pub(crate) use stored_headers;

/// Headers stored with an object, from the request's values.
pub fn headers(
    content_type: Option<String>,
    content_encoding_value: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<String>,
) -> ObjectHeaders {
    ObjectHeaders {
        content_type,
        content_encoding: content_encoding(content_encoding_value),
        content_disposition,
        content_language,
        cache_control,
        expires,
    }
}

/// A list's `max-keys`: 1000 by default and at most; negative values are refused.
pub fn max_keys(value: Option<i32>) -> S3Result<usize> {
    match value {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be non-negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

/// A part number from a request, 1 to 10000 (InvalidArgument otherwise).
pub fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=s3ipfs_core::service::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_stripped_from_content_encoding() {
        assert_eq!(content_encoding(Some("aws-chunked".into())), None);
        assert_eq!(content_encoding(Some("aws-chunked, gzip".into())).as_deref(), Some("gzip"));
        assert_eq!(content_encoding(Some("gzip".into())).as_deref(), Some("gzip"));
    }
}
