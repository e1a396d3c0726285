//! `s3ipfs-s3`: the S3 API. `impl s3s::S3` converts each request, calls a [`Gateway`] use case and converts the
//! result back; [`auth`] and [`access`] plug access keys and tenancy into s3s; [`error`] is the one place where
//! domain errors become S3 error codes.

pub mod access;
pub mod auth;
mod body;
mod bucket;
mod convert;
pub mod error;
pub mod front;
mod list;
mod multipart;
mod object;
mod options;

use std::sync::Arc;

use s3ipfs_core::Gateway;
use s3s::service::{S3Service, S3ServiceBuilder};

pub use front::{FrontOptions, S3Front};

/// Settings of the S3 front.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// The region reported by GetBucketLocation and expected in signatures (`us-east-1` by default).
    pub region: String,
    /// Base domains for virtual-hosted-style requests (`bucket.domain`); path style always works.
    pub domains: Vec<String>,
    /// Accept SigV2 presigned URLs (boto3 and aws-cli v1 presign with SigV2 by default).
    pub allow_sigv2: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions { region: "us-east-1".into(), domains: Vec::new(), allow_sigv2: false }
    }
}

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A virtual-host domain is not a valid domain name.
    #[error("invalid virtual-host domain: {0}")]
    Domain(String),
}

/// The S3 operations over one gateway.
#[derive(Debug, Clone)]
pub struct S3Api {
    gateway: Gateway,
    region: String,
}

/// Builds the s3s service: S3 operations, access-key auth, tenancy checks and host parsing.
pub fn build_service(gateway: Gateway, options: &ApiOptions) -> Result<S3Service, BuildError> {
    let api = S3Api { gateway: gateway.clone(), region: options.region.clone() };
    let mut builder = S3ServiceBuilder::new(api);
    let handover = Arc::new(auth::KeyHandover::default());
    builder.set_auth(auth::KeyAuth::new(Arc::clone(gateway.meta()), Arc::clone(&handover)));
    builder.set_access(access::TenantAccess::new(Arc::clone(gateway.meta()), handover));
    if !options.domains.is_empty() {
        let domains: Vec<&str> = options.domains.iter().map(String::as_str).collect();
        let host = s3s::host::MultiDomain::new(domains).map_err(|e| BuildError::Domain(e.to_string()))?;
        builder.set_host(host);
    }
    let mut config = s3s::config::S3Config::default();
    config.enable_sig_v2 = options.allow_sigv2;
    config.xml_max_body_size = front::XML_MAX_BODY;
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(config))));
    Ok(builder.build())
}

mod checksum;

/// Each S3 operation delegates to its family's module; operations not listed keep s3s's `NotImplemented`.
#[async_trait::async_trait]
impl s3s::S3 for S3Api {
    async fn list_buckets(
        &self,
        req: s3s::S3Request<s3s::dto::ListBucketsInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListBucketsOutput>> {
        self.op_list_buckets(req).await
    }

    async fn create_bucket(
        &self,
        req: s3s::S3Request<s3s::dto::CreateBucketInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::CreateBucketOutput>> {
        self.op_create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: s3s::S3Request<s3s::dto::DeleteBucketInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::DeleteBucketOutput>> {
        self.op_delete_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: s3s::S3Request<s3s::dto::HeadBucketInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::HeadBucketOutput>> {
        self.op_head_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: s3s::S3Request<s3s::dto::GetBucketLocationInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::GetBucketLocationOutput>> {
        self.op_get_bucket_location(req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: s3s::S3Request<s3s::dto::GetBucketVersioningInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::GetBucketVersioningOutput>> {
        self.op_get_bucket_versioning(req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: s3s::S3Request<s3s::dto::PutBucketVersioningInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::PutBucketVersioningOutput>> {
        self.op_put_bucket_versioning(req).await
    }

    async fn put_object(
        &self,
        req: s3s::S3Request<s3s::dto::PutObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::PutObjectOutput>> {
        self.op_put_object(req).await
    }

    async fn get_object(
        &self,
        req: s3s::S3Request<s3s::dto::GetObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::GetObjectOutput>> {
        self.op_get_object(req).await
    }

    async fn head_object(
        &self,
        req: s3s::S3Request<s3s::dto::HeadObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::HeadObjectOutput>> {
        self.op_head_object(req).await
    }

    async fn delete_object(
        &self,
        req: s3s::S3Request<s3s::dto::DeleteObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::DeleteObjectOutput>> {
        self.op_delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: s3s::S3Request<s3s::dto::DeleteObjectsInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::DeleteObjectsOutput>> {
        self.op_delete_objects(req).await
    }

    async fn copy_object(
        &self,
        req: s3s::S3Request<s3s::dto::CopyObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::CopyObjectOutput>> {
        self.op_copy_object(req).await
    }

    async fn list_objects(
        &self,
        req: s3s::S3Request<s3s::dto::ListObjectsInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListObjectsOutput>> {
        self.op_list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: s3s::S3Request<s3s::dto::ListObjectsV2Input>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListObjectsV2Output>> {
        self.op_list_objects_v2(req).await
    }

    async fn list_object_versions(
        &self,
        req: s3s::S3Request<s3s::dto::ListObjectVersionsInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListObjectVersionsOutput>> {
        self.op_list_object_versions(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: s3s::S3Request<s3s::dto::CreateMultipartUploadInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::CreateMultipartUploadOutput>> {
        self.op_create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: s3s::S3Request<s3s::dto::UploadPartInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::UploadPartOutput>> {
        self.op_upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: s3s::S3Request<s3s::dto::UploadPartCopyInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::UploadPartCopyOutput>> {
        self.op_upload_part_copy(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: s3s::S3Request<s3s::dto::CompleteMultipartUploadInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::CompleteMultipartUploadOutput>> {
        self.op_complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: s3s::S3Request<s3s::dto::AbortMultipartUploadInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::AbortMultipartUploadOutput>> {
        self.op_abort_multipart_upload(req).await
    }

    async fn list_parts(
        &self,
        req: s3s::S3Request<s3s::dto::ListPartsInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListPartsOutput>> {
        self.op_list_parts(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: s3s::S3Request<s3s::dto::ListMultipartUploadsInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListMultipartUploadsOutput>> {
        self.op_list_multipart_uploads(req).await
    }
}
