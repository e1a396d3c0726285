//! Tenancy at the door: anonymous requests are denied, and every signed request carries its user to the operation.

use std::sync::Arc;

use s3ipfs_core::{MetaStore, UserId};
use s3s::access::{S3Access, S3AccessContext};
use s3s::{S3Request, S3Result, s3_error};

use crate::error::meta_error;

/// The user whose key signed the request, stored in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub UserId);

/// Resolves the signing key to its user; the use cases then check bucket ownership.
#[derive(Clone)]
pub struct TenantAccess {
    meta: Arc<dyn MetaStore>,
}

impl TenantAccess {
    /// Access control backed by `meta`.
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        TenantAccess { meta }
    }
}

#[async_trait::async_trait]
impl S3Access for TenantAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Anonymous access is not allowed: sign the request."));
        };
        let key = self.meta.access_key(&credentials.access_key).await.map_err(meta_error)?;
        let key = key.ok_or_else(|| s3_error!(InvalidAccessKeyId))?;
        cx.extensions_mut().insert(Caller(key.user));
        Ok(())
    }
}

/// The user behind a request that passed [`TenantAccess`].
pub fn caller<T>(req: &S3Request<T>) -> S3Result<UserId> {
    req.extensions.get::<Caller>().map(|c| c.0).ok_or_else(|| s3_error!(AccessDenied, "Signature is required."))
}
