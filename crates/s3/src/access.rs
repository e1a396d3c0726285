//! Tenancy at the door: anonymous requests are denied, and every signed request carries its user to the operation.
//! The check also tells the front which operation and caller a request was (for its log line), stops a request it
//! must replay without its `Range`, and refuses an XML body declared larger than S3 accepts before it is read.

use std::sync::Arc;

use s3ipfs_core::{MetaStore, UserId};
use s3s::access::{S3Access, S3AccessContext};
use s3s::{S3Request, S3Result, s3_error};

use crate::error::meta_error;
use crate::front::{Replayed, RequestInfo, XML_MAX_BODY, reads_xml_body, xml_too_big};

/// The user whose key signed the request, stored in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub UserId);

/// Resolves the signing key to its user; the use cases then check bucket ownership.
#[derive(Clone)]
pub struct TenantAccess {
    meta: Arc<dyn MetaStore>,
    handover: Arc<crate::auth::KeyHandover>,
}

impl TenantAccess {
    /// Access control backed by `meta`, taking the keys the signature check read from `handover`.
    pub fn new(meta: Arc<dyn MetaStore>, handover: Arc<crate::auth::KeyHandover>) -> Self {
        TenantAccess { meta, handover }
    }
}

/// S3 sub-resources: a query parameter of one of these names addresses something other than the bucket or object
/// itself. s3s routes the ones it has no operation for (`DELETE ?acl`, `PUT ?torrent`, `DELETE /bucket?versioning`)
/// to the plain operation, which would then delete or overwrite the object or bucket.
const SUB_RESOURCES: [&str; 35] = [
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metadataConfiguration",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "partNumber",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "uploads",
    "versioning",
    "versions",
    "website",
];

/// The operations s3s falls back to for a method on a bucket or object, and the sub-resources each consumes.
const PLAIN_OPS: [(&str, &[&str]); 8] = [
    ("PutObject", &[]),
    ("DeleteObject", &[]),
    ("GetObject", &["partNumber"]),
    ("HeadObject", &["partNumber"]),
    ("CreateBucket", &[]),
    ("DeleteBucket", &[]),
    ("HeadBucket", &[]),
    ("ListObjects", &[]),
];

/// AWS's answer to a method a sub-resource does not support (the request would otherwise reach a plain operation).
fn misrouted(op: &str, uri: &http::Uri) -> S3Result<()> {
    let Some((_, consumed)) = PLAIN_OPS.iter().find(|(name, _)| *name == op) else { return Ok(()) };
    let names = uri.query().unwrap_or_default().split('&').map(|pair| pair.split('=').next().unwrap_or_default());
    let foreign = names.filter(|name| SUB_RESOURCES.contains(name) && !consumed.contains(name)).count();
    if foreign > 0 {
        return Err(s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource."));
    }
    Ok(())
}

/// The declared `Content-Length`, if any.
fn content_length(cx: &S3AccessContext<'_>) -> Option<u64> {
    cx.headers().get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

#[async_trait::async_trait]
impl S3Access for TenantAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        let info = cx.extensions_mut().get::<Arc<RequestInfo>>().cloned();
        if let Some(info) = &info {
            let _ = info.op.set(op.clone());
        }
        misrouted(&op, cx.uri())?;
        let user = match cx.credentials() {
            Some(credentials) => {
                let key = match self.handover.take(&credentials.access_key) {
                    Some(key) => Some(key),
                    None => self.meta.access_key(&credentials.access_key).await.map_err(meta_error)?,
                };
                key.ok_or_else(|| s3_error!(InvalidAccessKeyId))?.user
            }
            // A request the front replays after verifying its signature.
            None => match cx.extensions_mut().get::<Replayed>() {
                Some(Replayed(user)) => *user,
                None => return Err(s3_error!(AccessDenied, "Anonymous access is not allowed: sign the request.")),
            },
        };
        if let Some(info) = &info {
            let _ = info.user.set(user);
            if info.range_ignored && matches!(op.as_str(), "GetObject" | "HeadObject") {
                let _ = info.replay_as.set(user);
                // Never reaches the client: the front answers the replay instead.
                return Err(s3_error!(InternalError, "replayed without its Range header"));
            }
        }
        if reads_xml_body(&op) && content_length(cx).is_some_and(|len| len > XML_MAX_BODY as u64) {
            return Err(xml_too_big());
        }
        cx.extensions_mut().insert(Caller(user));
        Ok(())
    }
}

/// The user behind a request that passed [`TenantAccess`].
pub fn caller<T>(req: &S3Request<T>) -> S3Result<UserId> {
    req.extensions.get::<Caller>().map(|c| c.0).ok_or_else(|| s3_error!(AccessDenied, "Signature is required."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(op: &str, uri: &str) -> bool {
        misrouted(op, &uri.parse().expect("uri")).is_err()
    }

    #[test]
    fn a_sub_resource_reaching_a_plain_operation_is_method_not_allowed() {
        assert!(refused("DeleteObject", "/b/k?acl"));
        assert!(refused("PutObject", "/b/k?torrent"));
        assert!(refused("PutObject", "/b/k?restore="));
        assert!(refused("DeleteBucket", "/b?versioning"));
        assert!(refused("DeleteBucket", "/b?versions"));
        assert!(refused("GetObject", "/b/k?tagging&versionId=x"));
        assert!(!refused("GetObject", "/b/k?partNumber=2&versionId=x"));
        assert!(!refused("DeleteObject", "/b/k?versionId=x"));
        assert!(!refused("DeleteObject", "/b/k?foo"), "unknown parameters are ignored, as AWS ignores them");
        assert!(!refused("GetObjectAcl", "/b/k?acl"), "the operation the sub-resource names");
    }
}
