//! Multipart operations: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts, ListMultipartUploads.

use s3ipfs_core::service::CompletedPart as Completed;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput, CompleteMultipartUploadOutput,
    CopyPartResult, CopySource, CreateMultipartUploadInput, CreateMultipartUploadOutput, ListMultipartUploadsInput,
    ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput, MultipartUpload, Part, StreamingBlob,
    UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
};
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::S3Api;
use crate::access::caller;
use crate::body;
use crate::checksum::{self, Expected};
use crate::convert::{self, bucket_name, object_key, timestamp};
use crate::error::service_error;

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=s3ipfs_core::service::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"))
}

/// `bytes=first-last` of an UploadPartCopy, checked against the source size.
fn copy_range(value: Option<&str>, size: u64) -> S3Result<std::ops::Range<u64>> {
    let Some(value) = value else { return Ok(0..size) };
    let invalid =
        || s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last");
    let (first, last) = value.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(invalid)?;
    let (first, last): (u64, u64) = (first.parse().map_err(|_| invalid())?, last.parse().map_err(|_| invalid())?);
    if first > last || last >= size {
        return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
    }
    Ok(first..last + 1)
}

impl S3Api {
    pub(crate) async fn op_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let headers = convert::stored_headers!(input);
        let upload = self
            .gateway
            .create_multipart(user, &bucket, &key, headers, convert::user_meta(input.metadata))
            .await
            .map_err(service_error)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload.id),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let user = caller(&req)?;
        let S3Request { input, headers, trailing_headers, .. } = req;
        let (bucket, key, number) =
            (bucket_name(&input.bucket)?, object_key(&input.key)?, part_number(input.part_number)?);
        let expected = Expected::from_part(&input, &headers, trailing_headers);
        let checksums = expected.algorithms(input.checksum_algorithm.as_ref().map(|a| a.as_str()))?;
        let (body, failure) = body::watch(input.body.unwrap_or_else(|| StreamingBlob::from(bytes::Bytes::new())));
        let part = self
            .gateway
            .upload_part(user, &bucket, &key, &input.upload_id, number, checksums, body, move |sums| {
                expected.verify(sums)
            })
            .await
            .map_err(|err| failure.take().unwrap_or_else(|| service_error(err)))?;
        let [crc32, crc32c, crc64nvme, sha1, sha256] = checksum::stored(&part.checksums);
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(s3s::dto::ETag::Strong(part.etag().trim_matches('"').to_owned())),
            checksum_crc32: crc32,
            checksum_crc32c: crc32c,
            checksum_crc64nvme: crc64nvme,
            checksum_sha1: sha1,
            checksum_sha256: sha256,
            ..Default::default()
        }))
    }

    pub(crate) async fn op_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let CopySource::Bucket { bucket: src_bucket, key: src_key, version_id } = &input.copy_source else {
            return Err(s3_error!(NotImplemented, "Access point copy sources are not supported"));
        };
        let source = self
            .gateway
            .object_version(
                user,
                &bucket_name(src_bucket)?,
                &object_key(src_key)?,
                convert::version_id(version_id.as_deref())?.as_ref(),
            )
            .await
            .map_err(service_error)?;
        let size = source.version.meta().map_or(0, |m| m.size);
        let range = copy_range(input.copy_source_range.as_deref(), size)?;
        let (bucket, key, number) =
            (bucket_name(&input.bucket)?, object_key(&input.key)?, part_number(input.part_number)?);
        let part = self
            .gateway
            .upload_part_copy(user, &bucket, &key, &input.upload_id, number, &source.version, range)
            .await
            .map_err(service_error)?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(s3s::dto::ETag::Strong(part.etag().trim_matches('"').to_owned())),
                last_modified: Some(timestamp(part.modified_at)),
                ..Default::default()
            }),
            copy_source_version_id: source.reported_version_id().map(ToString::to_string),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let listed = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(MalformedXML, "The XML you provided did not list any part"));
        }
        let mut parts = Vec::with_capacity(listed.len());
        for part in listed {
            let number =
                part_number(part.part_number.ok_or_else(|| s3_error!(MalformedXML, "A part has no PartNumber"))?)?;
            let etag = part
                .e_tag
                .map(|e| e.value().to_owned())
                .ok_or_else(|| s3_error!(MalformedXML, "A part has no ETag"))?;
            parts.push(Completed { number, etag });
        }
        let completed = self
            .gateway
            .complete_multipart(user, &bucket, &key, &input.upload_id, &parts)
            .await
            .map_err(service_error)?;
        let meta = completed.version.meta().ok_or_else(|| s3_error!(InternalError))?;
        let mut response = S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            e_tag: Some(convert::etag(meta)),
            version_id: completed.reported_version_id().map(ToString::to_string),
            ..Default::default()
        });
        if let Some(value) = meta.cid.and_then(|cid| http::HeaderValue::from_str(&cid.to_string()).ok()) {
            response.headers.insert("x-amz-meta-cid", value);
        }
        Ok(response)
    }

    pub(crate) async fn op_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        self.gateway
            .abort_multipart(user, &bucket_name(&input.bucket)?, &object_key(&input.key)?, &input.upload_id)
            .await
            .map_err(service_error)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(crate) async fn op_list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let after = u32::try_from(input.part_number_marker.unwrap_or(0)).unwrap_or(0);
        let max = usize::try_from(input.max_parts.unwrap_or(1000)).unwrap_or(1000).min(1000);
        let (_, parts, truncated) = self
            .gateway
            .list_parts(user, &bucket_name(&input.bucket)?, &object_key(&input.key)?, &input.upload_id, after, max)
            .await
            .map_err(service_error)?;
        let next = parts.last().map(|p| p.number as i32);
        let parts = parts
            .iter()
            .map(|p| {
                let [crc32, crc32c, crc64nvme, sha1, sha256] = checksum::stored(&p.checksums);
                Part {
                    part_number: Some(p.number as i32),
                    size: i64::try_from(p.size).ok(),
                    e_tag: Some(s3s::dto::ETag::Strong(p.etag().trim_matches('"').to_owned())),
                    last_modified: Some(timestamp(p.modified_at)),
                    checksum_crc32: crc32,
                    checksum_crc32c: crc32c,
                    checksum_crc64nvme: crc64nvme,
                    checksum_sha1: sha1,
                    checksum_sha256: sha256,
                    ..Default::default()
                }
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: if truncated { next } else { None },
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let max = usize::try_from(input.max_uploads.unwrap_or(1000)).unwrap_or(1000).min(1000);
        let prefix = input.prefix.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().filter(|k| !k.is_empty());
        let after = key_marker.as_deref().map(|k| (k, input.upload_id_marker.as_deref().unwrap_or("\u{10FFFF}")));
        let (uploads, truncated) = self
            .gateway
            .list_multiparts(user, &bucket_name(&input.bucket)?, &prefix, after, max)
            .await
            .map_err(service_error)?;
        let last = uploads.last().map(|u| (u.key.to_string(), u.id.clone()));
        let uploads = uploads
            .into_iter()
            .map(|u| MultipartUpload {
                key: Some(u.key.to_string()),
                upload_id: Some(u.id),
                initiated: Some(timestamp(u.initiated)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(prefix),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: truncated.then(|| last.as_ref().map(|(k, _)| k.clone())).flatten(),
            next_upload_id_marker: truncated.then(|| last.map(|(_, id)| id)).flatten(),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
