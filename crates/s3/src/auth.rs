//! Access keys: s3s verifies signatures with the secret this returns.

use std::sync::Arc;

use s3ipfs_core::MetaStore;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use crate::error::meta_error;

/// Looks access keys up in the metadata store.
#[derive(Clone)]
pub struct KeyAuth {
    meta: Arc<dyn MetaStore>,
}

impl KeyAuth {
    /// Auth backed by `meta`.
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        KeyAuth { meta }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.meta.access_key(access_key).await.map_err(meta_error)? {
            Some(key) => Ok(SecretKey::from(key.secret)),
            None => {
                Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
            }
        }
    }
}
