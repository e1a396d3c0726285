//! Object operations: PUT, GET, HEAD, DELETE, DeleteObjects and CopyObject.

use std::time::SystemTime;

use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue};
use s3ipfs_core::service::{Located, PutObject};
use s3ipfs_core::{ObjectMeta, ObjectVersion, ServiceError, UserId};
use s3s::dto::{
    ChecksumMode, CopyObjectInput, CopyObjectOutput, CopyObjectResult, CopySource, DeleteObjectInput,
    DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput, DeletedObject, ETagCondition, GetObjectInput,
    GetObjectOutput, HeadObjectInput, HeadObjectOutput, MetadataDirective, PutObjectInput, PutObjectOutput,
    StreamingBlob, Timestamp,
};
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};

use crate::S3Api;
use crate::access::caller;
use crate::body;
use crate::checksum::{self, Expected};
use crate::convert::{self, bucket_name, object_key, timestamp, version_id};
use crate::error::service_error;
use crate::front::xml_well_formed;
use crate::list::Encoding;
use crate::options;

/// A lookup failure, with the headers S3 adds for delete markers (`x-amz-delete-marker`, `x-amz-version-id`).
fn lookup_error(err: ServiceError) -> S3Error {
    let marker = match &err {
        ServiceError::NoSuchKey { delete_marker: Some(id) } | ServiceError::DeleteMarkerVersion { version_id: id } => {
            Some(id.to_string())
        }
        _ => None,
    };
    let mut s3_err = service_error(err);
    if let Some(id) = marker {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert("x-amz-version-id", value);
        }
        s3_err.set_headers(headers);
    }
    s3_err
}

/// AWS's conditional deletes (`If-Match`, `x-amz-if-match-size`, …, and their DeleteObjects elements), which this
/// gateway does not implement: refused rather than ignored, so a client's compare-and-delete never deletes blindly.
fn conditional_delete() -> S3Error {
    s3_error!(NotImplemented, "A header you provided implies functionality that is not implemented")
}

/// Evaluates GET/HEAD preconditions in the order S3 documents.
fn check_conditions(
    meta: &ObjectMeta,
    modified: SystemTime,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let etag = convert::etag(meta);
    let matches = |cond: &ETagCondition| cond.is_any() || cond.as_etag().is_some_and(|e| e.value() == etag.value());
    // HTTP dates have whole seconds: compare at that precision.
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let since = |t: &Timestamp| secs(SystemTime::from(time::OffsetDateTime::from(t.clone())));
    match (if_match, if_unmodified_since) {
        (Some(cond), _) if !matches(cond) => return Err(s3_error!(PreconditionFailed)),
        (None, Some(t)) if secs(modified) > since(t) => return Err(s3_error!(PreconditionFailed)),
        _ => {}
    }
    match (if_none_match, if_modified_since) {
        (Some(cond), _) if matches(cond) => Err(S3Error::new(s3s::S3ErrorCode::NotModified)),
        (None, Some(t)) if secs(modified) <= since(t) => Err(S3Error::new(s3s::S3ErrorCode::NotModified)),
        _ => Ok(()),
    }
}

/// The preconditions of a GET or HEAD: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since.
type Conditions<'a> =
    (Option<&'a ETagCondition>, Option<&'a ETagCondition>, Option<&'a Timestamp>, Option<&'a Timestamp>);

/// What a GET or HEAD addresses, read from either input.
struct Addressed<'a> {
    bucket: &'a str,
    key: &'a str,
    version_id: Option<&'a str>,
    conditions: Conditions<'a>,
    range: Option<&'a s3s::dto::Range>,
    checksum_mode: Option<&'a ChecksumMode>,
    part_number: Option<i32>,
}

/// The [`Addressed`] view of a GetObjectInput or HeadObjectInput (same field names).
macro_rules! addressed {
    ($i:expr) => {
        Addressed {
            bucket: &$i.bucket,
            key: &$i.key,
            version_id: $i.version_id.as_deref(),
            conditions: (
                $i.if_match.as_ref(),
                $i.if_none_match.as_ref(),
                $i.if_modified_since.as_ref(),
                $i.if_unmodified_since.as_ref(),
            ),
            range: $i.range.as_ref(),
            checksum_mode: $i.checksum_mode.as_ref(),
            part_number: $i.part_number,
        }
    };
}

/// What GET and HEAD both answer about a version.
struct Presented {
    bytes: std::ops::Range<u64>,
    content_range: Option<String>,
    e_tag: s3s::dto::ETag,
    last_modified: Timestamp,
    metadata: s3s::dto::Metadata,
    headers: s3ipfs_core::ObjectHeaders,
    version_id: Option<String>,
    checksums: [Option<String>; 5],
    checksum_type: Option<s3s::dto::ChecksumType>,
    parts_count: Option<i32>,
}

/// The bytes `?partNumber=` addresses (`None`: the whole of an empty object), or S3's error for a bad number.
fn part_range(meta: &s3ipfs_core::ObjectMeta, number: i32) -> S3Result<Option<std::ops::Range<u64>>> {
    let Some(range) = meta.part_range(convert::part_number(number)?) else {
        let mut err = S3Error::with_message(
            s3s::S3ErrorCode::Custom("InvalidPartNumber".into()),
            "The requested partnumber is not satisfiable",
        );
        err.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
        return Err(err);
    };
    Ok((!range.is_empty()).then_some(range))
}

/// Fills a GetObjectOutput or HeadObjectOutput (same field names) from a [`Presented`], plus extra fields.
macro_rules! present_as {
    ($output:ident, $p:expr $(, $field:ident: $value:expr)* $(,)?) => {{
        let p: Presented = $p;
        checksum::with_checksums!($output {
            content_length: i64::try_from(p.bytes.end - p.bytes.start).ok(),
            content_range: p.content_range,
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(p.e_tag),
            last_modified: Some(p.last_modified),
            metadata: Some(p.metadata),
            content_type: p.headers.content_type,
            content_encoding: p.headers.content_encoding,
            content_disposition: p.headers.content_disposition,
            content_language: p.headers.content_language,
            cache_control: p.headers.cache_control,
            expires: p.headers.expires,
            version_id: p.version_id,
            checksum_type: p.checksum_type,
            parts_count: p.parts_count,
            $($field: $value,)*
        }, p.checksums)
    }};
}

impl S3Api {
    pub(crate) async fn op_put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let user = caller(&req)?;
        // s3s routes a PUT with `uploadId` but no `partNumber` here: storing it would overwrite the upload's key.
        if convert::query_has(&req.uri, "uploadId") {
            return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
        }
        let S3Request { input, headers, trailing_headers, .. } = req;
        options::object_options!(input).check()?;
        if input.write_offset_bytes.is_some() {
            // An append (S3 Express): storing the body as the whole object would lose what was there.
            return Err(s3_error!(NotImplemented, "Appending to an object is not supported"));
        }
        let bucket = bucket_name(&input.bucket)?;
        let key = object_key(&input.key)?;
        let expected = Expected::from_put(&input, &headers, trailing_headers)?;
        let sdk_algorithm = input.checksum_algorithm.as_ref().map(|a| a.as_str());
        expected.claimed(sdk_algorithm)?;
        let checksums = expected.algorithms(sdk_algorithm)?;
        let condition = convert::write_condition(input.if_none_match.as_ref(), input.if_match.as_ref())?;
        let user_meta = convert::user_meta(input.metadata)?;
        let request = PutObject {
            headers: convert::stored_headers!(input),
            import_car: user_meta.get("import").is_some_and(|v| v.eq_ignore_ascii_case("car")),
            user_meta,
            checksums,
            condition,
        };
        let (body, body_failure) = body::watch(input.body.unwrap_or_else(|| StreamingBlob::from(bytes::Bytes::new())));
        let stored = self
            .gateway
            .put_object(user, &bucket, &key, request, body, move |sums| expected.verify(sums))
            .await
            .map_err(|err| body_failure.take().unwrap_or_else(|| service_error(err)))?;
        let meta = stored.version.meta().ok_or_else(|| s3_error!(InternalError))?;
        let output = checksum::with_checksums!(
            PutObjectOutput {
                e_tag: Some(convert::etag(meta)),
                version_id: stored.reported_version_id().map(ToString::to_string),
                checksum_type: checksum::type_of(meta),
            },
            checksum::of_object(meta)
        );
        let mut response = S3Response::new(output);
        if let Some(value) = meta.cid.and_then(|cid| HeaderValue::from_str(&cid.to_string()).ok()) {
            response.headers.insert("x-amz-meta-cid", value);
        }
        Ok(response)
    }

    async fn lookup(&self, user: UserId, bucket: &str, key: &str, id: Option<&str>) -> S3Result<Located> {
        let (bucket, key, id) = (bucket_name(bucket)?, object_key(key)?, version_id(id)?);
        self.gateway.object_version(user, &bucket, &key, id.as_ref()).await.map_err(lookup_error)
    }

    /// Looks up the version a GET or HEAD addresses, checks its preconditions and prepares what both answer.
    async fn present(&self, user: UserId, request: Addressed<'_>) -> S3Result<(ObjectVersion, Presented)> {
        let located = self.lookup(user, request.bucket, request.key, request.version_id).await?;
        let version = &located.version;
        let meta = version.meta().ok_or_else(|| s3_error!(NoSuchKey))?;
        let c = request.conditions;
        check_conditions(meta, version.modified_at, c.0, c.1, c.2, c.3)?;
        let range = match (request.range, request.part_number) {
            (Some(_), Some(_)) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "Cannot specify both Range header and partNumber query parameter"
                ));
            }
            // A suffix of an empty object is empty: AWS answers with the (empty) object, not a range.
            (Some(range), None) => Some(
                range
                    .check(meta.size)
                    .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?,
            )
            .filter(|r| !r.is_empty()),
            (None, Some(number)) => part_range(meta, number)?,
            (None, None) => None,
        };
        // Whole-object checksums only describe responses that carry the whole object (a part of a multipart object
        // has its own checksum, which is not kept).
        let whole = range.as_ref().is_none_or(|r| *r == (0..meta.size))
            && (request.part_number.is_none() || meta.part_sizes.is_empty());
        let checksums = whole && request.checksum_mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED);
        let presented = Presented {
            bytes: range.clone().unwrap_or(0..meta.size),
            content_range: range.map(|r| format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), meta.size)),
            e_tag: convert::etag(meta),
            last_modified: timestamp(version.modified_at),
            metadata: convert::response_meta(meta),
            headers: meta.headers.clone(),
            version_id: located.reported_version_id().map(ToString::to_string),
            checksums: if checksums { checksum::of_object(meta) } else { Default::default() },
            checksum_type: checksums.then(|| checksum::type_of(meta)).flatten(),
            parts_count: request.part_number.and_then(|_| i32::try_from(meta.part_sizes.len()).ok()).filter(|n| *n > 0),
        };
        Ok((located.version, presented))
    }

    pub(crate) async fn op_get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let user = caller(&req)?;
        let i = &req.input;
        let addressed = addressed!(i);
        let (version, presented) = self.present(user, addressed).await?;
        let stream = self.gateway.read_object(&version, presented.bytes.clone()).await.map_err(service_error)?;
        let body = StreamingBlob::wrap(stream.map(|chunk| chunk.map_err(std::io::Error::other)));
        Ok(S3Response::new(present_as!(GetObjectOutput, presented, body: Some(body))))
    }

    pub(crate) async fn op_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let user = caller(&req)?;
        let i = &req.input;
        let addressed = addressed!(i);
        let (_, mut presented) = self.present(user, addressed).await?;
        // s3s applies the `response-*` overrides to GET only; HEAD answers them too.
        let headers = &mut presented.headers;
        let overrides = [
            (&mut headers.content_type, &i.response_content_type),
            (&mut headers.content_disposition, &i.response_content_disposition),
            (&mut headers.content_encoding, &i.response_content_encoding),
            (&mut headers.content_language, &i.response_content_language),
            (&mut headers.cache_control, &i.response_cache_control),
        ];
        for (header, value) in overrides {
            if value.is_some() {
                header.clone_from(value);
            }
        }
        if let Some(expires) = &i.response_expires {
            let mut date = Vec::new();
            if expires.format(s3s::dto::TimestampFormat::HttpDate, &mut date).is_ok() {
                headers.expires = String::from_utf8(date).ok();
            }
        }
        Ok(S3Response::new(present_as!(HeadObjectOutput, presented)))
    }

    pub(crate) async fn op_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        if input.if_match.is_some() || input.if_match_size.is_some() || input.if_match_last_modified_time.is_some() {
            return Err(conditional_delete());
        }
        let (bucket, key, id) =
            (bucket_name(&input.bucket)?, object_key(&input.key)?, version_id(input.version_id.as_deref())?);
        let outcome = self.gateway.delete_object(user, &bucket, &key, id.as_ref()).await.map_err(service_error)?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: outcome.delete_marker.then_some(true),
            version_id: outcome.version_id.map(|v| v.to_string()),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        self.gateway.bucket_for(user, &bucket).await.map_err(service_error)?;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "The request may name at most 1000 objects"));
        }
        // Such a key can only have arrived as a raw character, which makes the body not well-formed XML: AWS refuses
        // it, and an answer naming the key could not be parsed by the client either.
        if input.delete.objects.iter().any(|o| !xml_well_formed(&o.key)) {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        // Keys and version ids are echoed as sent; those XML cannot carry go out as character references.
        let names = Encoding::of(None)?;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            let attempt = async {
                if object.e_tag.is_some() || object.size.is_some() || object.last_modified_time.is_some() {
                    return Err(conditional_delete());
                }
                let key = object_key(&object.key)?;
                let id = version_id(object.version_id.as_deref())?;
                self.gateway.delete_object(user, &bucket, &key, id.as_ref()).await.map_err(service_error)
            };
            match attempt.await {
                Ok(outcome) if !quiet => deleted.push(DeletedObject {
                    key: Some(names.apply(&object.key)),
                    version_id: object.version_id.as_deref().map(|v| names.apply(v)),
                    delete_marker: outcome.delete_marker.then_some(true),
                    delete_marker_version_id: outcome
                        .delete_marker
                        .then(|| outcome.version_id.map(|v| v.to_string()))
                        .flatten(),
                }),
                Ok(_) => {}
                Err(err) => errors.push(s3s::dto::Error {
                    code: Some(err.code().as_str().to_owned()),
                    message: err.message().map(str::to_owned),
                    key: Some(names.apply(&object.key)),
                    version_id: object.version_id.as_deref().map(|v| names.apply(v)),
                }),
            }
        }
        Ok(names.respond(DeleteObjectsOutput { deleted: Some(deleted), errors: Some(errors), ..Default::default() }))
    }

    pub(crate) async fn op_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let user = caller(&req)?;
        let input = req.input;
        options::object_options!(input).check()?;
        let condition = convert::write_condition(input.if_none_match.as_ref(), input.if_match.as_ref())?;
        let replace = match input.metadata_directive.as_ref().map(|d| d.as_str()) {
            None | Some(MetadataDirective::COPY) => false,
            Some(MetadataDirective::REPLACE) => true,
            Some(_) => return Err(s3_error!(InvalidArgument, "Unknown metadata directive.")),
        };
        let CopySource::Bucket { bucket: src_bucket, key: src_key, version_id: src_version } = &input.copy_source
        else {
            return Err(s3_error!(NotImplemented, "Access point copy sources are not supported"));
        };
        let source = self.lookup(user, src_bucket, src_key, src_version.as_deref()).await?;
        let source_meta = source.version.meta().ok_or_else(|| s3_error!(NoSuchKey))?;
        check_conditions(
            source_meta,
            source.version.modified_at,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
        )
        .map_err(|e| if *e.code() == s3s::S3ErrorCode::NotModified { s3_error!(PreconditionFailed) } else { e })?;
        let dst_bucket = bucket_name(&input.bucket)?;
        let dst_key = object_key(&input.key)?;
        let same_object = **src_bucket == *input.bucket && **src_key == *input.key;
        if same_object && !replace && src_version.is_none() {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the \
                 object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let replacement = match replace {
            true => Some((convert::stored_headers!(input), convert::user_meta(input.metadata)?)),
            false => None,
        };
        let copy = self
            .gateway
            .copy_object(user, &source.version, &dst_bucket, &dst_key, replacement, condition)
            .await
            .map_err(service_error)?;
        let meta = copy.version.meta().ok_or_else(|| s3_error!(InternalError))?;
        let result = CopyObjectResult {
            e_tag: Some(convert::etag(meta)),
            last_modified: Some(timestamp(copy.version.modified_at)),
            ..Default::default()
        };
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            version_id: copy.reported_version_id().map(ToString::to_string),
            copy_source_version_id: source.reported_version_id().map(ToString::to_string),
            ..Default::default()
        }))
    }
}
