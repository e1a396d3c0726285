//! Access keys: s3s verifies signatures with the secret this returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use s3ipfs_core::{AccessKey, MetaStore};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use crate::error::meta_error;

/// How long a key looked up for a signature check waits for that request's access check.
const HANDOVER_TTL: Duration = Duration::from_secs(2);
/// The most keys waiting at once (more are simply looked up again).
const HANDOVER_CAP: usize = 4096;

/// Keys looked up to verify a signature, handed to the same request's access check so one request reads its key
/// once. s3s calls the two hooks one after the other with no request state between them: an entry is taken by the
/// first check that asks for it, and lives at most [`HANDOVER_TTL`], so no key outlives the request it was read for.
#[derive(Debug, Default)]
pub struct KeyHandover {
    waiting: Mutex<HashMap<String, (AccessKey, Instant)>>,
}

impl KeyHandover {
    fn put(&self, key: AccessKey) {
        if let Ok(mut waiting) = self.waiting.lock() {
            if waiting.len() >= HANDOVER_CAP {
                waiting.retain(|_, (_, at)| at.elapsed() < HANDOVER_TTL);
            }
            if waiting.len() < HANDOVER_CAP {
                waiting.insert(key.id.clone(), (key, Instant::now()));
            }
        }
    }

    /// The key `id` if a signature check just read it.
    pub fn take(&self, id: &str) -> Option<AccessKey> {
        let (key, at) = self.waiting.lock().ok()?.remove(id)?;
        (at.elapsed() < HANDOVER_TTL).then_some(key)
    }
}

/// Looks access keys up in the metadata store.
#[derive(Clone)]
pub struct KeyAuth {
    meta: Arc<dyn MetaStore>,
    handover: Arc<KeyHandover>,
}

impl KeyAuth {
    /// Auth backed by `meta`, handing the keys it reads to the access check through `handover`.
    pub fn new(meta: Arc<dyn MetaStore>, handover: Arc<KeyHandover>) -> Self {
        KeyAuth { meta, handover }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.meta.access_key(access_key).await.map_err(meta_error)? {
            Some(key) => {
                let secret = SecretKey::from(key.secret.clone());
                self.handover.put(key);
                Ok(secret)
            }
            None => {
                Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
            }
        }
    }
}
