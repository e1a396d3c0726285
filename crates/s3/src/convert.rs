//! Conversions between s3s DTOs and domain types.

use std::collections::BTreeMap;
use std::time::SystemTime;

use s3ipfs_core::{BucketName, ObjectHeaders, ObjectKey, ObjectMeta, PutCondition, VersionId};
use s3s::dto::{ETag, ETagCondition, Metadata, Timestamp};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

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

/// S3's limit on user metadata: the UTF-8 bytes of every name (without `x-amz-meta-`) and value together.
pub const MAX_USER_META: usize = 2048;

/// User metadata as stored, names lowercased; `MetadataTooLarge` over [`MAX_USER_META`] bytes, as S3 answers.
pub fn user_meta(metadata: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
    let metadata = metadata.unwrap_or_default();
    let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_META {
        return Err(s3_error!(MetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size"));
    }
    Ok(metadata.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect())
}

/// The condition of a conditional write (PutObject, CompleteMultipartUpload) under AWS's rules: `If-None-Match`
/// only with `*`, `If-Match` only with an ETag, not both; anything else is 501 NotImplemented, as AWS answers.
pub fn write_condition(
    if_none_match: Option<&ETagCondition>,
    if_match: Option<&ETagCondition>,
) -> S3Result<Option<PutCondition>> {
    let not_implemented = |message: &str| S3Error::with_message(S3ErrorCode::NotImplemented, message.to_owned());
    match (if_none_match, if_match) {
        (Some(_), Some(_)) => Err(not_implemented("Multiple conditional request headers present in the request")),
        (Some(cond), None) if cond.is_any() => Ok(Some(PutCondition::IfNoneMatchAny)),
        (Some(_), None) => {
            Err(not_implemented("We don't accept the provided value of If-None-Match header for this API"))
        }
        (None, Some(cond)) => match cond.as_etag() {
            Some(etag) => Ok(Some(PutCondition::IfMatch(etag.value().to_owned()))),
            None => Err(not_implemented("We don't accept the provided value of If-Match header for this API")),
        },
        (None, None) => Ok(None),
    }
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

/// A list-size argument (`max-keys`, `max-uploads`, `max-parts`): 1000 by default and at most; a negative value is
/// InvalidArgument, in AWS's words (`argument` as AWS names it there).
pub fn list_limit(value: Option<i32>, argument: &str) -> S3Result<usize> {
    Ok(usize::try_from(non_negative(value.unwrap_or(1000), argument)?).unwrap_or(1000).min(1000))
}

/// A list's `max-keys` (see [`list_limit`]).
pub fn max_keys(value: Option<i32>) -> S3Result<usize> {
    list_limit(value, "maxKeys")
}

/// An integer argument that must be at least 0 (InvalidArgument otherwise, in AWS's words).
pub fn non_negative(value: i32, argument: &str) -> S3Result<u32> {
    u32::try_from(value).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Argument {argument} must be an integer between 0 and 2147483647"),
        )
    })
}

/// Whether the request's query names `param` (s3s reads an empty value as no value at all).
pub fn query_has(uri: &http::Uri, param: &str) -> bool {
    uri.query().unwrap_or_default().split('&').any(|pair| pair.split('=').next() == Some(param))
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
