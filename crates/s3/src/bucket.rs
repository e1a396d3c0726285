//! Bucket operations.

use s3ipfs_core::Versioning;
use s3s::dto::{
    Bucket, BucketLocationConstraint, BucketVersioningStatus, CreateBucketInput, CreateBucketOutput, DeleteBucketInput,
    DeleteBucketOutput, GetBucketLocationInput, GetBucketLocationOutput, GetBucketVersioningInput,
    GetBucketVersioningOutput, HeadBucketInput, HeadBucketOutput, ListBucketsInput, ListBucketsOutput, MFADelete,
    Owner, PutBucketVersioningInput, PutBucketVersioningOutput,
};
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::S3Api;
use crate::access::caller;
use crate::convert::{bucket_name, timestamp};
use crate::error::service_error;

/// Canned ACLs S3 defines for buckets (accepted; buckets are always private to their owner).
const BUCKET_ACLS: [&str; 4] = ["private", "public-read", "public-read-write", "authenticated-read"];
/// Object ownership settings S3 defines (accepted: objects always belong to the bucket's owner).
const OWNERSHIPS: [&str; 3] = ["BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"];

impl S3Api {
    pub(crate) async fn op_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let user = caller(&req)?;
        let buckets = self.gateway.list_buckets(user).await.map_err(service_error)?;
        let prefix = req.input.prefix.unwrap_or_default();
        let buckets = buckets
            .into_iter()
            .filter(|b| b.name.as_str().starts_with(&prefix))
            .map(|b| Bucket {
                name: Some(b.name.to_string()),
                creation_date: Some(timestamp(b.created_at)),
                bucket_region: Some(self.region.clone()),
                ..Default::default()
            })
            .collect();
        let owner = Owner { id: Some(user.to_string()), display_name: Some(user.to_string()) };
        Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), owner: Some(owner), ..Default::default() }))
    }

    pub(crate) async fn op_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let user = caller(&req)?;
        let name = bucket_name(&req.input.bucket)?;
        if req.input.object_lock_enabled_for_bucket == Some(true) {
            return Err(s3_error!(NotImplemented, "Object Lock is not supported"));
        }
        if req.input.acl.as_ref().is_some_and(|acl| !BUCKET_ACLS.contains(&acl.as_str())) {
            return Err(s3_error!(InvalidArgument, "Invalid canned ACL"));
        }
        if req.input.object_ownership.as_ref().is_some_and(|o| !OWNERSHIPS.contains(&o.as_str())) {
            return Err(s3_error!(InvalidArgument, "Invalid x-amz-object-ownership header"));
        }
        let wanted =
            req.input.create_bucket_configuration.and_then(|c| c.location_constraint).map(|l| l.as_str().to_owned());
        if let Some(region) = wanted.filter(|r| !r.is_empty() && *r != self.region) {
            return Err(s3_error!(
                InvalidLocationConstraint,
                "The specified location-constraint {region} is not valid for this endpoint ({})",
                self.region
            ));
        }
        self.gateway.create_bucket(user, &name).await.map_err(service_error)?;
        Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")), ..Default::default() }))
    }

    pub(crate) async fn op_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let user = caller(&req)?;
        self.gateway.delete_bucket(user, &bucket_name(&req.input.bucket)?).await.map_err(service_error)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(crate) async fn op_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let user = caller(&req)?;
        self.gateway.bucket_for(user, &bucket_name(&req.input.bucket)?).await.map_err(service_error)?;
        Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(self.region.clone()), ..Default::default() }))
    }

    pub(crate) async fn op_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let user = caller(&req)?;
        self.gateway.bucket_for(user, &bucket_name(&req.input.bucket)?).await.map_err(service_error)?;
        // us-east-1 is reported as an empty LocationConstraint, as AWS does.
        let location = (self.region != "us-east-1").then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput { location_constraint: location }))
    }

    pub(crate) async fn op_get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let user = caller(&req)?;
        let bucket = self.gateway.bucket_for(user, &bucket_name(&req.input.bucket)?).await.map_err(service_error)?;
        let status = match bucket.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)),
        };
        Ok(S3Response::new(GetBucketVersioningOutput { status, ..Default::default() }))
    }

    pub(crate) async fn op_put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let user = caller(&req)?;
        let name = bucket_name(&req.input.bucket)?;
        match req.input.versioning_configuration.mfa_delete.as_ref().map(|m| m.as_str()) {
            None | Some(MFADelete::DISABLED) => {}
            // AWS requires the MFA of the account's root user; this gateway has no MFA devices to check one against.
            Some(MFADelete::ENABLED) if req.input.mfa.is_none() => {
                return Err(s3_error!(AccessDenied, "Mfa Authentication must be used for this request"));
            }
            Some(MFADelete::ENABLED) => return Err(s3_error!(NotImplemented, "MFA delete is not supported")),
            Some(_) => {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        }
        let enabled = match req.input.versioning_configuration.status.as_ref().map(|s| s.as_str()) {
            Some(BucketVersioningStatus::ENABLED) => true,
            Some(BucketVersioningStatus::SUSPENDED) => false,
            _ => return Err(s3_error!(MalformedXML, "Status must be Enabled or Suspended")),
        };
        self.gateway.set_versioning(user, &name, enabled).await.map_err(service_error)?;
        Ok(S3Response::new(PutBucketVersioningOutput {}))
    }
}
