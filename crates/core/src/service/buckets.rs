//! Bucket use cases: create, list, look up with ownership, delete, versioning.

use std::time::SystemTime;

use crate::meta::MetaError;
use crate::model::{Bucket, Versioning};
use crate::names::{BucketName, UserId};

use super::{Gateway, ServiceError};

impl Gateway {
    /// Creates `name` for `owner`.
    pub async fn create_bucket(&self, owner: UserId, name: &BucketName) -> Result<Bucket, ServiceError> {
        let bucket =
            Bucket { name: name.clone(), owner, created_at: SystemTime::now(), versioning: Versioning::Unversioned };
        match self.meta.create_bucket(&bucket).await {
            Ok(()) => Ok(bucket),
            Err(MetaError::BucketExists { owner: existing }) if existing == owner => {
                Err(ServiceError::BucketAlreadyOwnedByYou)
            }
            Err(MetaError::BucketExists { .. }) => Err(ServiceError::BucketAlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    /// The buckets `owner` owns, by name.
    pub async fn list_buckets(&self, owner: UserId) -> Result<Vec<Bucket>, ServiceError> {
        Ok(self.meta.buckets_of(owner).await?)
    }

    /// The bucket `name` if `user` owns it: `NoSuchBucket` if absent, `AccessDenied` if someone else's.
    pub async fn bucket_for(&self, user: UserId, name: &BucketName) -> Result<Bucket, ServiceError> {
        match self.meta.bucket(name).await? {
            None => Err(ServiceError::NoSuchBucket),
            Some(bucket) if bucket.owner != user => Err(ServiceError::AccessDenied),
            Some(bucket) => Ok(bucket),
        }
    }

    /// Deletes an empty bucket `user` owns.
    pub async fn delete_bucket(&self, user: UserId, name: &BucketName) -> Result<(), ServiceError> {
        self.bucket_for(user, name).await?;
        match self.meta.delete_bucket(name).await {
            Ok(()) => Ok(()),
            Err(MetaError::BucketNotEmpty) => Err(ServiceError::BucketNotEmpty),
            Err(MetaError::NoSuchBucket) => Err(ServiceError::NoSuchBucket),
            Err(e) => Err(e.into()),
        }
    }

    /// Enables (`true`) or suspends (`false`) versioning. A bucket never returns to unversioned, as in S3.
    pub async fn set_versioning(
        &self,
        user: UserId,
        name: &BucketName,
        enabled: bool,
    ) -> Result<Versioning, ServiceError> {
        self.bucket_for(user, name).await?;
        let next = if enabled { Versioning::Enabled } else { Versioning::Suspended };
        self.meta.set_versioning(name, next).await?;
        Ok(next)
    }
}
