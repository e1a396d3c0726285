//! Multipart operations: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts, ListMultipartUploads.

use s3ipfs_cid::{Algorithm, ChecksumType, Checksums};
use s3ipfs_core::UploadChecksum;
use s3ipfs_core::service::{CompleteClaims, CompletedPart as Completed, UploadsParams};
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput, CompleteMultipartUploadOutput,
    CopyPartResult, CopySource, CreateMultipartUploadInput, CreateMultipartUploadOutput, ListMultipartUploadsInput,
    ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput, MultipartUpload, Part, StreamingBlob,
    UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
};
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::S3Api;
use crate::access::caller;
use crate::body;
use crate::checksum::{self, Expected, algorithm_dto, header_name, invalid_header, parse_algorithm};
use crate::convert::{self, bucket_name, object_key, part_number, timestamp};
use crate::error::service_error;
use crate::front::xml_representable;
use crate::list::{self, Encoding};
use crate::options;

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

/// The checksum CreateMultipartUpload asks for (`x-amz-checksum-algorithm`, `x-amz-checksum-type`), under S3's rules.
fn upload_checksum(
    algorithm: Option<&s3s::dto::ChecksumAlgorithm>,
    kind: Option<&s3s::dto::ChecksumType>,
) -> S3Result<Option<UploadChecksum>> {
    let kind = kind.map(checksum::parse_type);
    let Some(algorithm) = algorithm else {
        return match kind {
            Some(_) => Err(s3_error!(
                InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            )),
            None => Ok(None),
        };
    };
    let algorithm = parse_algorithm(algorithm.as_str())?;
    let kind = kind.transpose()?.unwrap_or_else(|| ChecksumType::default_for(algorithm));
    if !kind.allows(algorithm) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!(
                "The {kind} checksum type cannot be used with the {} checksum algorithm.",
                algorithm.s3_name().to_ascii_lowercase()
            ),
        ));
    }
    Ok(Some(UploadChecksum { algorithm, kind }))
}

/// The one checksum a `<Part>` of CompleteMultipartUpload may quote.
fn quoted_part_checksum(part: &s3s::dto::CompletedPart) -> S3Result<Option<(Algorithm, String)>> {
    let fields = checksum::sent(checksum::checksum_fields!(part));
    let unsupported = checksum::unsupported_checksum!(part) || part.checksum_md5.is_some();
    match fields.as_slice() {
        [] if !unsupported => Ok(None),
        [(algorithm, value)] if !unsupported && Checksums::is_well_formed(*algorithm, value) => {
            Ok(Some((*algorithm, (*value).to_owned())))
        }
        _ => Err(s3_error!(InvalidArgument, "Invalid Base64 or multiple checksums present in request")),
    }
}

/// What CompleteMultipartUpload claims about the whole object: checksum type, checksum (a composite one may end in
/// `-N`) and size.
fn complete_claims(input: &CompleteMultipartUploadInput) -> S3Result<CompleteClaims> {
    checksum::refuse_unsupported(checksum::unsupported_checksum!(input) || input.checksum_md5.is_some())?;
    let fields = checksum::sent(checksum::checksum_fields!(input));
    let checksum = match fields.as_slice() {
        [] => None,
        [(algorithm, value)] => {
            let (digest, parts) = value.trim().split_once('-').map_or((value.trim(), None), |(d, n)| (d, Some(n)));
            let parts_ok = parts.is_none_or(|n| n.parse::<u32>().is_ok_and(|n| n > 0));
            if !parts_ok || !Checksums::is_well_formed(*algorithm, digest) {
                return Err(invalid_header(header_name(*algorithm)));
            }
            Some((*algorithm, (*value).to_owned()))
        }
        _ => return Err(checksum::several_checksums()),
    };
    let checksum_type = input.checksum_type.as_ref().map(checksum::parse_type).transpose()?;
    let size = input
        .mpu_object_size
        .map(|s| u64::try_from(s).map_err(|_| invalid_header("x-amz-mp-object-size")))
        .transpose()?;
    Ok(CompleteClaims { checksum_type, checksum, size })
}

/// The `ChecksumAlgorithm` and `ChecksumType` S3 shows for an upload.
fn upload_checksum_dto(
    upload: &s3ipfs_core::MultipartUpload,
) -> (Option<s3s::dto::ChecksumAlgorithm>, Option<s3s::dto::ChecksumType>) {
    match upload.checksum {
        Some(c) => (Some(algorithm_dto(c.algorithm)), Some(s3s::dto::ChecksumType::from_static(c.kind.s3_name()))),
        None => (None, None),
    }
}

impl S3Api {
    pub(crate) async fn op_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        options::object_options!(input).check()?;
        let checksum = upload_checksum(input.checksum_algorithm.as_ref(), input.checksum_type.as_ref())?;
        let headers = convert::stored_headers!(input);
        let user_meta = convert::user_meta(input.metadata)?;
        let upload = self
            .gateway
            .create_multipart(user, &bucket, &key, headers, user_meta, checksum)
            .await
            .map_err(service_error)?;
        let (checksum_algorithm, checksum_type) = upload_checksum_dto(&upload);
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: xml_representable(&input.key),
            upload_id: Some(upload.id),
            checksum_algorithm,
            checksum_type,
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
        let expected = Expected::from_part(&input, &headers, trailing_headers)?;
        let sdk_algorithm = input.checksum_algorithm.as_ref().map(|a| a.as_str());
        let claimed = expected.claimed(sdk_algorithm)?;
        let checksums = expected.algorithms(sdk_algorithm)?;
        let (body, failure) = body::watch(input.body.unwrap_or_else(|| StreamingBlob::from(bytes::Bytes::new())));
        let part = self
            .gateway
            .upload_part(user, &bucket, &key, &input.upload_id, number, (checksums, claimed), body, move |sums| {
                expected.verify(sums)
            })
            .await
            .map_err(|err| failure.take().unwrap_or_else(|| service_error(err)))?;
        Ok(S3Response::new(checksum::with_checksums!(
            UploadPartOutput { e_tag: Some(s3s::dto::ETag::Strong(part.etag().trim_matches('"').to_owned())) },
            checksum::stored(&part.checksums)
        )))
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
            copy_part_result: Some(checksum::with_checksums!(
                CopyPartResult {
                    e_tag: Some(s3s::dto::ETag::Strong(part.etag().trim_matches('"').to_owned())),
                    last_modified: Some(timestamp(part.modified_at)),
                },
                checksum::stored(&part.checksums)
            )),
            copy_source_version_id: source.reported_version_id().map(ToString::to_string),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let user = caller(&req)?;
        let mut input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let claims = complete_claims(&input)?;
        let condition = convert::write_condition(input.if_none_match.as_ref(), input.if_match.as_ref())?;
        let listed = input.multipart_upload.take().and_then(|m| m.parts).unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(MalformedXML, "The XML you provided did not list any part"));
        }
        let mut parts = Vec::with_capacity(listed.len());
        for part in listed {
            let number =
                part_number(part.part_number.ok_or_else(|| s3_error!(MalformedXML, "A part has no PartNumber"))?)?;
            let etag = part
                .e_tag
                .as_ref()
                .map(|e| e.value().to_owned())
                .ok_or_else(|| s3_error!(MalformedXML, "A part has no ETag"))?;
            parts.push(Completed { number, etag, checksum: quoted_part_checksum(&part)? });
        }
        let completed = self
            .gateway
            .complete_multipart(user, &bucket, &key, &input.upload_id, &parts, &claims, condition)
            .await
            .map_err(service_error)?;
        let meta = completed.version.meta().ok_or_else(|| s3_error!(InternalError))?;
        let mut response = S3Response::new(checksum::with_checksums!(
            CompleteMultipartUploadOutput {
                bucket: Some(input.bucket.clone()),
                key: xml_representable(&input.key),
                location: xml_representable(&format!("/{}/{}", input.bucket, input.key)),
                e_tag: Some(convert::etag(meta)),
                version_id: completed.reported_version_id().map(ToString::to_string),
                checksum_type: checksum::type_of(meta),
            },
            checksum::of_object(meta)
        ));
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
        let after = convert::non_negative(input.part_number_marker.unwrap_or(0), "part-number-marker")?;
        let max = convert::list_limit(input.max_parts, "max-parts")?;
        let (upload, parts, truncated) = self
            .gateway
            .list_parts(user, &bucket_name(&input.bucket)?, &object_key(&input.key)?, &input.upload_id, after, max)
            .await
            .map_err(service_error)?;
        let next = parts.last().map(|p| p.number as i32);
        let parts = parts
            .iter()
            .map(|p| {
                checksum::with_checksums!(
                    Part {
                        part_number: Some(p.number as i32),
                        size: i64::try_from(p.size).ok(),
                        e_tag: Some(s3s::dto::ETag::Strong(p.etag().trim_matches('"').to_owned())),
                        last_modified: Some(timestamp(p.modified_at)),
                    },
                    checksum::stored(&p.checksums)
                )
            })
            .collect();
        let (checksum_algorithm, checksum_type) = upload_checksum_dto(&upload);
        Ok(S3Response::new(ListPartsOutput {
            checksum_algorithm,
            checksum_type,
            bucket: Some(input.bucket),
            key: xml_representable(&input.key),
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
        let encoding = Encoding::of(input.encoding_type.as_ref())?;
        let params = UploadsParams {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: list::delimiter(input.delimiter.clone()),
            key_marker: input.key_marker.clone().filter(|k| !k.is_empty()),
            upload_id_marker: input.upload_id_marker.clone().filter(|k| !k.is_empty()),
            max_uploads: convert::list_limit(input.max_uploads, "max-uploads")?,
        };
        let listing =
            self.gateway.list_multiparts(user, &bucket_name(&input.bucket)?, &params).await.map_err(service_error)?;
        let uploads = listing
            .uploads
            .iter()
            .map(|u| {
                let (checksum_algorithm, checksum_type) = upload_checksum_dto(u);
                MultipartUpload {
                    key: Some(encoding.apply(u.key.as_str())),
                    upload_id: Some(u.id.clone()),
                    initiated: Some(timestamp(u.initiated)),
                    checksum_algorithm,
                    checksum_type,
                    ..Default::default()
                }
            })
            .collect();
        let truncated = listing.truncated;
        Ok(encoding.respond(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(encoding.apply(&params.prefix)),
            delimiter: params.delimiter.as_deref().map(|d| encoding.apply(d)),
            key_marker: Some(encoding.apply(params.key_marker.as_deref().unwrap_or_default())),
            upload_id_marker: Some(encoding.apply(params.upload_id_marker.as_deref().unwrap_or_default())),
            max_uploads: Some(params.max_uploads as i32),
            is_truncated: Some(truncated),
            next_key_marker: truncated.then(|| listing.next_key_marker.map(|k| encoding.apply(&k))).flatten(),
            next_upload_id_marker: truncated.then_some(listing.next_upload_id_marker).flatten(),
            common_prefixes: Some(list::prefixes(listing.common_prefixes, &encoding)),
            uploads: Some(uploads),
            encoding_type: encoding.echo(),
            ..Default::default()
        }))
    }
}
