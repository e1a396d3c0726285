//! Listing operations: ListObjects (v1), ListObjectsV2 and ListObjectVersions.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use s3ipfs_core::service::{ListParams, VersionsParams};
use s3ipfs_core::{ObjectVersion, UserId};
use s3s::dto::{
    CommonPrefix, DeleteMarkerEntry, EncodingType, ListObjectVersionsInput, ListObjectVersionsOutput, ListObjectsInput,
    ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, Object, ObjectStorageClass, ObjectVersionStorageClass,
    Owner,
};
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::S3Api;
use crate::access::caller;
use crate::checksum;
use crate::convert::{self, bucket_name, max_keys, timestamp, version_id};
use crate::error::service_error;

/// Percent-encodes a key for `encoding-type=url`. Clients decode with `unquote_plus`, so `+` must be escaped.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How names go out: as they are, or URL-encoded when the client asked for it.
pub(crate) struct Encoding(bool);

impl Encoding {
    pub(crate) fn of(requested: Option<&EncodingType>) -> S3Result<Self> {
        match requested.map(EncodingType::as_str) {
            None => Ok(Encoding(false)),
            Some(EncodingType::URL) => Ok(Encoding(true)),
            Some(_) => Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
        }
    }

    pub(crate) fn apply(&self, text: &str) -> String {
        if self.0 { url_encode(text) } else { text.to_owned() }
    }

    pub(crate) fn echo(&self) -> Option<EncodingType> {
        self.0.then(|| EncodingType::from_static(EncodingType::URL))
    }
}

fn owner_of(user: UserId) -> Owner {
    Owner { id: Some(user.to_string()), display_name: Some(user.to_string()) }
}

fn object_entry(version: &ObjectVersion, encoding: &Encoding, owner: Option<Owner>) -> Object {
    let meta = version.meta();
    Object {
        key: Some(encoding.apply(version.key.as_str())),
        last_modified: Some(timestamp(version.modified_at)),
        e_tag: meta.map(convert::etag),
        size: meta.and_then(|m| i64::try_from(m.size).ok()),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        checksum_algorithm: meta.map(checksum::algorithms_of).filter(|list| !list.is_empty()),
        checksum_type: meta.and_then(checksum::type_of),
        owner,
        ..Default::default()
    }
}

pub(crate) fn prefixes(list: Vec<String>, encoding: &Encoding) -> Vec<CommonPrefix> {
    list.iter().map(|p| CommonPrefix { prefix: Some(encoding.apply(p)) }).collect()
}

/// An empty delimiter means none (restic and rclone send `delimiter=`).
pub(crate) fn delimiter(value: Option<String>) -> Option<String> {
    value.filter(|d| !d.is_empty())
}

impl S3Api {
    pub(crate) async fn op_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let encoding = Encoding::of(input.encoding_type.as_ref())?;
        let params = ListParams {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: delimiter(input.delimiter.clone()),
            after: input.marker.clone().filter(|m| !m.is_empty()),
            max_keys: max_keys(input.max_keys)?,
        };
        let listing =
            self.gateway.list_objects(user, &bucket_name(&input.bucket)?, &params).await.map_err(service_error)?;
        let contents = listing.objects.iter().map(|v| object_entry(v, &encoding, Some(owner_of(user)))).collect();
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encoding.apply(&params.prefix)),
            marker: Some(encoding.apply(input.marker.as_deref().unwrap_or_default())),
            delimiter: params.delimiter.as_deref().map(|d| encoding.apply(d)),
            max_keys: input.max_keys.or(Some(1000)),
            is_truncated: Some(listing.truncated),
            next_marker: listing.truncated.then(|| listing.next_after.map(|n| encoding.apply(&n))).flatten(),
            contents: Some(contents),
            common_prefixes: Some(prefixes(listing.common_prefixes, &encoding)),
            encoding_type: encoding.echo(),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let user = caller(&req)?;
        let input = req.input;
        let encoding = Encoding::of(input.encoding_type.as_ref())?;
        let after = match &input.continuation_token {
            Some(token) => {
                let raw = URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))?;
                Some(raw)
            }
            None => input.start_after.clone().filter(|s| !s.is_empty()),
        };
        let params = ListParams {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: delimiter(input.delimiter.clone()),
            after,
            max_keys: max_keys(input.max_keys)?,
        };
        let listing =
            self.gateway.list_objects(user, &bucket_name(&input.bucket)?, &params).await.map_err(service_error)?;
        let owner = input.fetch_owner.unwrap_or(false).then(|| owner_of(user));
        let contents: Vec<Object> = listing.objects.iter().map(|v| object_entry(v, &encoding, owner.clone())).collect();
        let key_count = contents.len() + listing.common_prefixes.len();
        let next = listing.truncated.then(|| listing.next_after.map(|n| URL_SAFE_NO_PAD.encode(n))).flatten();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encoding.apply(&params.prefix)),
            delimiter: params.delimiter.as_deref().map(|d| encoding.apply(d)),
            max_keys: input.max_keys.or(Some(1000)),
            key_count: i32::try_from(key_count).ok(),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: input.start_after.map(|s| encoding.apply(&s)),
            is_truncated: Some(listing.truncated),
            contents: Some(contents),
            common_prefixes: Some(prefixes(listing.common_prefixes, &encoding)),
            encoding_type: encoding.echo(),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let encoding = Encoding::of(input.encoding_type.as_ref())?;
        let key_marker = input.key_marker.clone().filter(|k| !k.is_empty());
        let version_id_marker = match (&key_marker, input.version_id_marker.as_deref().filter(|v| !v.is_empty())) {
            (None, Some(_)) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "A version-id marker cannot be specified without a key marker."
                ));
            }
            (_, marker) => version_id(marker)?,
        };
        let params = VersionsParams {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: delimiter(input.delimiter.clone()),
            key_marker,
            version_id_marker,
            max_keys: max_keys(input.max_keys)?,
        };
        let listing =
            self.gateway.list_versions(user, &bucket_name(&input.bucket)?, &params).await.map_err(service_error)?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for (version, is_latest) in &listing.versions {
            let key = Some(encoding.apply(version.key.as_str()));
            let version_id = Some(version.version_id.to_string());
            let last_modified = Some(timestamp(version.modified_at));
            match version.meta() {
                None => markers.push(DeleteMarkerEntry {
                    key,
                    version_id,
                    is_latest: Some(*is_latest),
                    last_modified,
                    owner: Some(owner_of(user)),
                }),
                Some(meta) => versions.push(s3s::dto::ObjectVersion {
                    key,
                    version_id,
                    is_latest: Some(*is_latest),
                    last_modified,
                    e_tag: Some(convert::etag(meta)),
                    size: i64::try_from(meta.size).ok(),
                    storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
                    checksum_algorithm: Some(checksum::algorithms_of(meta)).filter(|list| !list.is_empty()),
                    checksum_type: checksum::type_of(meta),
                    owner: Some(owner_of(user)),
                    ..Default::default()
                }),
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(encoding.apply(&params.prefix)),
            delimiter: params.delimiter.as_deref().map(|d| encoding.apply(d)),
            key_marker: Some(encoding.apply(params.key_marker.as_deref().unwrap_or_default())),
            version_id_marker: Some(params.version_id_marker.map(|v| v.to_string()).unwrap_or_default()),
            max_keys: input.max_keys.or(Some(1000)),
            is_truncated: Some(listing.truncated),
            next_key_marker: listing.truncated.then(|| listing.next_key_marker.map(|k| encoding.apply(&k))).flatten(),
            next_version_id_marker: listing
                .truncated
                .then(|| listing.next_version_id_marker.map(|v| v.to_string()))
                .flatten(),
            versions: Some(versions),
            delete_markers: Some(markers),
            common_prefixes: Some(prefixes(listing.common_prefixes, &encoding)),
            encoding_type: encoding.echo(),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::url_encode;

    #[test]
    fn url_encoding_escapes_what_unquote_plus_would_change() {
        assert_eq!(url_encode("b+c d%/é"), "b%2Bc%20d%25/%C3%A9");
        assert_eq!(url_encode("plain/key-1_x.~"), "plain/key-1_x.~");
    }
}
