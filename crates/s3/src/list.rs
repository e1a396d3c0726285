//! Listing operations: ListObjects (v1), ListObjectsV2 and ListObjectVersions.

use s3ipfs_core::service::{ListParams, VersionsParams};
use s3ipfs_core::{ObjectVersion, UserId};
use s3s::dto::{
    CommonPrefix, DeleteMarkerEntry, EncodingType, ListObjectVersionsInput, ListObjectVersionsOutput, ListObjectsInput,
    ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, Object, ObjectStorageClass, ObjectVersionStorageClass,
    Owner,
};
use s3s::{S3Request, S3Response, S3Result, s3_error};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::S3Api;
use crate::access::caller;
use crate::checksum;
use crate::convert::{self, bucket_name, max_keys, timestamp, version_id};
use crate::error::service_error;
use crate::front::{CHAR_REFS_FLAG, xml_escape};

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

/// ListObjectsV2 continuation tokens carry the last key listed, with a version byte and a check value, so a token
/// this gateway did not issue is refused as AWS refuses it.
mod token {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use s3s::{S3Result, s3_error};

    const VERSION: u8 = 1;

    /// FNV-1a: detects garbage, not forgery (a token only names a position in the caller's own bucket).
    fn check_value(bytes: &[u8]) -> [u8; 4] {
        let hash = bytes.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
        hash.to_be_bytes()
    }

    /// The token that resumes a listing after `key`.
    pub(crate) fn encode(key: &str) -> String {
        let mut raw = vec![VERSION];
        raw.extend_from_slice(key.as_bytes());
        raw.extend_from_slice(&check_value(key.as_bytes()));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The key a token resumes after; InvalidArgument for anything this gateway did not issue (or an empty token).
    pub(crate) fn decode(token: &str) -> S3Result<String> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok();
        let key = raw.as_deref().and_then(|raw| {
            let (&version, rest) = raw.split_first()?;
            let (key, check) = rest.split_at_checked(rest.len().checked_sub(4)?)?;
            (version == VERSION && check == check_value(key)).then(|| String::from_utf8(key.to_vec()).ok())?
        });
        key.ok_or_else(invalid)
    }

    /// AWS's answer to a continuation token it did not issue.
    pub(crate) fn invalid() -> s3s::S3Error {
        s3_error!(InvalidArgument, "The continuation token provided is incorrect")
    }
}

/// How names go out: URL-encoded when the client asked for it; otherwise as they are, but for characters XML cannot
/// carry, which become character references as at AWS (see `front::xml_refs`).
pub(crate) struct Encoding {
    url: bool,
    referenced: AtomicBool,
}

impl Encoding {
    pub(crate) fn of(requested: Option<&EncodingType>) -> S3Result<Self> {
        match requested.map(EncodingType::as_str) {
            None => Ok(Encoding { url: false, referenced: AtomicBool::new(false) }),
            Some(EncodingType::URL) => Ok(Encoding { url: true, referenced: AtomicBool::new(false) }),
            Some(_) => Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
        }
    }

    pub(crate) fn apply(&self, text: &str) -> String {
        if self.url {
            return url_encode(text);
        }
        match xml_escape(text) {
            Cow::Borrowed(text) => text.to_owned(),
            Cow::Owned(escaped) => {
                self.referenced.store(true, Ordering::Relaxed);
                escaped
            }
        }
    }

    pub(crate) fn echo(&self) -> Option<EncodingType> {
        self.url.then(|| EncodingType::from_static(EncodingType::URL))
    }

    /// The response for `output`, flagged for the front when a name needed character references.
    pub(crate) fn respond<T>(&self, output: T) -> S3Response<T> {
        let mut response = S3Response::new(output);
        if self.referenced.load(Ordering::Relaxed) {
            response.headers.insert(CHAR_REFS_FLAG, http::HeaderValue::from_static("1"));
        }
        response
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
        // s3s routes `list-type=2` to ListObjectsV2; any other list type reaches here.
        if convert::query_has(&req.uri, "list-type") {
            return Err(s3_error!(InvalidArgument, "Invalid List Type specified in Request"));
        }
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
        Ok(encoding.respond(ListObjectsOutput {
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
        // An empty `continuation-token=` reaches here as no token: the raw query tells them apart.
        let empty_token = convert::query_has(&req.uri, "continuation-token");
        let after = match &input.continuation_token {
            Some(token) => Some(token::decode(token)?),
            None if empty_token => return Err(token::invalid()),
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
        let next = listing.truncated.then(|| listing.next_after.map(|n| token::encode(&n))).flatten();
        Ok(encoding.respond(ListObjectsV2Output {
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
        Ok(encoding.respond(ListObjectVersionsOutput {
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
