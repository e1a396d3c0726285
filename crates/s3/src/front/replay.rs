//! Range headers AWS ignores. AWS answers a GET or HEAD whose `Range` is malformed, or names several ranges, with
//! the whole object; s3s refuses to parse such a header, and the header may be signed, so it cannot be dropped before
//! the signature is checked. The front therefore sends the request once as it came: the access check authenticates
//! it, records the caller and stops it ([`RequestInfo`]); then the front sends it again without the `Range` and
//! without the (already verified) signature, carrying the caller.

use std::sync::OnceLock;

use http::request::Parts;
use s3ipfs_core::UserId;

/// Request facts shared between the front and the access check (a request extension).
#[derive(Debug, Default)]
pub(crate) struct RequestInfo {
    /// The operation s3s resolved.
    pub op: OnceLock<String>,
    /// The authenticated caller.
    pub user: OnceLock<UserId>,
    /// Set by the front: this GET/HEAD carries a `Range` AWS ignores.
    pub range_ignored: bool,
    /// Set by the access check: the caller of a request to replay without its `Range`.
    pub replay_as: OnceLock<UserId>,
}

/// The caller of a replayed request, whose signature the first pass verified (a request extension only the front
/// inserts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replayed(pub UserId);

/// Whether AWS ignores this `Range` value and answers with the whole object: anything but one `bytes=first-[last]`
/// or `bytes=-suffix` range that s3s also reads.
pub(crate) fn range_is_ignored(value: &http::HeaderValue) -> bool {
    let Ok(text) = value.to_str() else { return true };
    if text.is_empty() {
        // s3s reads an empty value as no header.
        return false;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = text.strip_prefix("bytes=").and_then(|spec| spec.split_once('-')).is_some_and(|(first, last)| {
        if first.is_empty() { digits(last) } else { digits(first) && (last.is_empty() || digits(last)) }
    });
    !well_formed || s3s::dto::Range::parse(text).is_err()
}

/// Query parameters of SigV4 and SigV2 presigned URLs.
const PRESIGN_PARAMS: [&str; 10] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// The parts of the second pass: no `Range`, no signature (header or presigned query), the same everything else.
pub(crate) fn replay_parts(parts: &Parts) -> Option<Parts> {
    let mut uri = http::uri::Parts::from(parts.uri.clone());
    if let Some(pq) = &uri.path_and_query {
        let kept: Vec<&str> = pq
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty() && !PRESIGN_PARAMS.contains(&p.split('=').next().unwrap_or_default()))
            .collect();
        let rebuilt = if kept.is_empty() { pq.path().to_owned() } else { format!("{}?{}", pq.path(), kept.join("&")) };
        uri.path_and_query = Some(rebuilt.parse().ok()?);
    }
    let mut request = http::Request::builder()
        .method(parts.method.clone())
        .uri(http::Uri::from_parts(uri).ok()?)
        .version(parts.version)
        .body(())
        .ok()?;
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        if name != http::header::RANGE && name != http::header::AUTHORIZATION {
            headers.append(name, value.clone());
        }
    }
    Some(request.into_parts().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_multiple_ranges_are_ignored_like_aws_does() {
        for value in ["bytes=abc", "items=0-1", "bytes=5-2", "bytes=-", "bytes=0-1,3-4", "0-1", "bytes=0--1"] {
            assert!(range_is_ignored(&http::HeaderValue::from_static(value)), "{value}");
        }
        for value in ["bytes=0-1", "bytes=5-", "bytes=-0", "bytes=-10", ""] {
            assert!(!range_is_ignored(&http::HeaderValue::from_static(value)), "{value}");
        }
    }

    #[test]
    fn the_replay_drops_the_range_and_the_signature_and_keeps_the_rest() {
        let request = http::Request::get(
            "/b/k?versionId=V&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb&X-Amz-Signature=s&partNumber=1",
        )
        .header("range", "bytes=0-1,3-4")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=x")
        .header("if-match", "\"e\"")
        .body(())
        .expect("request");
        let parts = replay_parts(&request.into_parts().0).expect("rebuilt");
        assert_eq!(parts.uri.to_string(), "/b/k?versionId=V&partNumber=1");
        assert!(parts.headers.get("range").is_none() && parts.headers.get("authorization").is_none());
        assert_eq!(parts.headers.get("if-match").map(|v| v.as_bytes()), Some(&b"\"e\""[..]));
    }
}
