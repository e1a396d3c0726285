//! Multipart uploads: parts are stored as they arrive (in the staging store when content is remote); Complete streams them into one object whose CID
//! is assembled from the parts' leaves when every part but the last is chunk-aligned, and re-chunked otherwise.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use md5::Digest as _;
use s3ipfs_cid::{Algorithm, Assembler, Block, BlockKind, ChecksumSet, Checksums, Cid, Importer};

use crate::content::ContentWriter;
use crate::meta::MetaError;
use crate::model::{
    MultipartUpload, ObjectHeaders, ObjectMeta, ObjectVersion, PutCondition, UploadChecksum, UploadPart, VersionState,
};
use crate::names::{BucketName, ObjectKey, UserId};

use super::multipart_checksum::{CompleteClaims, CompletedPart, check_part, object_checksum, part_checksums};
use super::objects::new_version;
use super::{Gateway, Located, ServiceError, car_import, import_body, import_into, keep_node};

/// A joined object before it is kept: its writer, root CID, size and interior nodes.
struct Joined {
    writer: Box<dyn ContentWriter>,
    root: Cid,
    size: u64,
    nodes: Vec<Block>,
}

/// Smallest part S3 accepts, except the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest object a multipart upload may store (S3's limit).
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

fn upload_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect()
}

fn check_part_number(number: u32) -> Result<(), ServiceError> {
    if (1..=MAX_PART_NUMBER).contains(&number) {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument("Part number must be an integer between 1 and 10000, inclusive".into()))
    }
}

fn no_such_upload(err: impl Into<ServiceError>) -> ServiceError {
    match err.into() {
        ServiceError::Meta(MetaError::NoSuchUpload) => ServiceError::NoSuchUpload,
        other => other,
    }
}

/// The ETag of a multipart object: MD5 of the parts' MD5s, then `-N`.
fn multipart_etag(parts: &[&UploadPart]) -> String {
    let mut md5 = md5::Md5::new();
    for part in parts {
        md5.update(part.checksums.md5.unwrap_or_default());
    }
    let digest: [u8; 16] = md5.finalize().into();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}-{}\"", parts.len())
}

impl Gateway {
    /// The upload `id` of `bucket`/`key`, owned by `user`.
    async fn upload_for(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        id: &str,
    ) -> Result<MultipartUpload, ServiceError> {
        self.bucket_for(user, bucket).await?;
        match self.meta.multipart(id).await? {
            Some(upload) if &upload.bucket == bucket && &upload.key == key => Ok(upload),
            _ => Err(ServiceError::NoSuchUpload),
        }
    }

    /// Starts a multipart upload of `key`.
    pub async fn create_multipart(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        headers: ObjectHeaders,
        user_meta: BTreeMap<String, String>,
        checksum: Option<UploadChecksum>,
    ) -> Result<MultipartUpload, ServiceError> {
        self.bucket_for(user, bucket).await?;
        let upload = MultipartUpload {
            id: upload_id(),
            bucket: bucket.clone(),
            key: key.clone(),
            initiated: SystemTime::now(),
            headers,
            user_meta,
            checksum,
        };
        self.meta.create_multipart(&upload).await?;
        Ok(upload)
    }

    /// Stores part `number` from `body`. `checksums` are those the client's headers ask for and `claimed` the
    /// algorithm of the checksum it sends (see S3's rules in `multipart_checksum`); `verify` sees the computed
    /// checksums once the body has ended.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part<S, E>(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        number: u32,
        (checksums, claimed): (ChecksumSet, Option<Algorithm>),
        body: S,
        verify: impl FnOnce(&Checksums) -> Result<(), ServiceError> + Send,
    ) -> Result<UploadPart, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        check_part_number(number)?;
        let upload = self.upload_for(user, bucket, key, upload_id).await?;
        let checksums = part_checksums(upload.checksum, checksums, claimed)?;
        self.store_part(upload_id, number, checksums, body, verify).await
    }

    /// Stores part `number` from `range` of an existing object version (UploadPartCopy), with the upload's checksum.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        number: u32,
        source: &ObjectVersion,
        range: std::ops::Range<u64>,
    ) -> Result<UploadPart, ServiceError> {
        check_part_number(number)?;
        let upload = self.upload_for(user, bucket, key, upload_id).await?;
        let checksums = part_checksums(upload.checksum, ChecksumSet::NONE, upload.checksum.map(|u| u.algorithm))?;
        let stream = self.read_object(source, range).await?;
        self.store_part(upload_id, number, checksums, stream, |_| Ok(())).await
    }

    /// Streams one part into content and records it, replacing an earlier part of the same number.
    async fn store_part<S, E>(
        &self,
        upload_id: &str,
        number: u32,
        checksums: ChecksumSet,
        mut body: S,
        verify: impl FnOnce(&Checksums) -> Result<(), ServiceError> + Send,
    ) -> Result<UploadPart, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let writer = self.parts().writer().await?;
        let importer = Importer::new(self.profile).with_checksums(checksums).keep_leaves();
        let (summary, nodes, writer) = import_body(&mut body, importer, writer, verify).await?;
        let claim = self.keep(writer, summary.root, summary.size, nodes).await?;
        let part = UploadPart {
            number,
            size: summary.size,
            cid: summary.root,
            checksums: summary.checksums,
            leaves: summary.leaves.unwrap_or_default(),
            modified_at: SystemTime::now(),
        };
        if let Err(err) = self.meta.put_part(upload_id, &part, claim.id()).await {
            // Aborted or expired while the part arrived: the part's content is released.
            claim.release().await;
            return Err(no_such_upload(err));
        }
        claim.taken();
        Ok(part)
    }

    /// Parts numbered above `after`, at most `max`; and whether more follow.
    pub async fn list_parts(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(MultipartUpload, Vec<UploadPart>, bool), ServiceError> {
        let upload = self.upload_for(user, bucket, key, upload_id).await?;
        let mut parts = self.meta.parts(upload_id, after, max + 1).await.map_err(no_such_upload)?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok((upload, parts, truncated))
    }

    /// Abandons an upload and releases its parts (garbage collection deletes their content once unreferenced).
    pub async fn abort_multipart(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(), ServiceError> {
        self.upload_for(user, bucket, key, upload_id).await?;
        self.meta.remove_multipart(upload_id).await.map_err(no_such_upload)?;
        Ok(())
    }

    /// Aborts uploads initiated before `before` (the expiry job); returns how many.
    pub async fn expire_multiparts(&self, before: SystemTime) -> Result<usize, ServiceError> {
        let stale = self.meta.stale_multiparts(before).await?;
        let mut expired = 0;
        for upload in stale {
            if self.meta.remove_multipart(&upload.id).await.is_ok() {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Joins the named parts into a new version of the key; the upload is removed in the same commit, so of racing
    /// Complete and Abort requests exactly one takes effect.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_multipart(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        requested: &[CompletedPart],
        claims: &CompleteClaims,
        condition: Option<PutCondition>,
    ) -> Result<Located, ServiceError> {
        let upload = self.upload_for(user, bucket, key, upload_id).await?;
        let stored: BTreeMap<u32, UploadPart> = self
            .meta
            .parts(upload_id, 0, MAX_PART_NUMBER as usize)
            .await
            .map_err(no_such_upload)?
            .into_iter()
            .map(|p| (p.number, p))
            .collect();
        if requested.is_empty() {
            return Err(ServiceError::InvalidArgument("You must specify at least one part".into()));
        }
        if requested.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(ServiceError::InvalidPartOrder);
        }
        let mut parts = Vec::with_capacity(requested.len());
        for want in requested {
            match stored.get(&want.number) {
                Some(part) if part.etag().trim_matches('"') == want.etag.trim_matches('"') => {
                    check_part(&upload, want, part)?;
                    parts.push(part);
                }
                _ => return Err(ServiceError::InvalidPart { number: want.number }),
            }
        }
        if let Some(small) = parts[..parts.len() - 1].iter().find(|p| p.size < MIN_PART_SIZE) {
            return Err(ServiceError::EntityTooSmall { number: small.number });
        }
        let (checksums, composite_checksum) = object_checksum(&upload, &parts, claims)?;
        let bucket_row = self.bucket_for(user, bucket).await?;
        self.check_condition(&bucket_row, key, condition.as_ref()).await?;
        let pending = self.begin(bucket, key).await?;
        let import_car = upload.user_meta.get("import").is_some_and(|v| v.eq_ignore_ascii_case("car"));
        let committed = async {
            let (Joined { writer, root, size, nodes }, checksums, composite_checksum) = if import_car {
                // The parts are a CAR: the object is the file it holds, described by its own checksums.
                let (joined, file_checksums) = self.unpack_parts(&parts).await?;
                (joined, file_checksums, false)
            } else {
                (self.join_parts(&parts).await?, checksums, composite_checksum)
            };
            let claim = self.keep(writer, root, size, nodes).await?;
            let meta = ObjectMeta {
                cid: Some(root),
                size,
                etag: multipart_etag(&parts),
                checksums,
                composite_checksum,
                // An imported CAR's parts are the CAR's, not the file's: the object is one part.
                part_sizes: if import_car { Vec::new() } else { parts.iter().map(|p| p.size).collect() },
                headers: upload.headers.clone(),
                user_meta: upload.user_meta.clone(),
            };
            let mut new = new_version(bucket_row.versioning, VersionState::Committed(Box::new(meta)));
            new.condition = condition;
            new.completes = Some(upload_id.to_owned());
            // NoSuchUpload: aborted, expired or completed by another request meanwhile.
            self.commit_claimed(pending.id(), new, claim).await.map_err(no_such_upload)
        }
        .await;
        match committed {
            Ok(version) => {
                pending.committed();
                Ok(Located { version, versioning: bucket_row.versioning })
            }
            Err(err) => {
                pending.abort().await;
                Err(err)
            }
        }
    }

    /// Streams the parts, which together are a CAR, into one content writer as the file the CAR holds.
    async fn unpack_parts(&self, parts: &[&UploadPart]) -> Result<(Joined, s3ipfs_cid::Checksums), ServiceError> {
        let mut writer: Box<dyn ContentWriter> = self.content.writer().await?;
        let store = std::sync::Arc::clone(self.parts());
        let sources: Vec<(Cid, u64)> = parts.iter().map(|p| (p.cid, p.size)).collect();
        let mut body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, crate::ContentError>> + Send>> = Box::pin(
            futures::stream::iter(sources)
                .then(move |(cid, size)| {
                    let store = std::sync::Arc::clone(&store);
                    async move { store.read(&cid, 0..size).await }
                })
                .try_flatten(),
        );
        let set = ChecksumSet::MD5.with(Algorithm::Crc64Nvme);
        // A failure reading a staged part is the gateway's (500), not the request's.
        let (file, _) =
            car_import::unpack_body(&mut body, set, MAX_OBJECT_SIZE, &mut writer, ServiceError::from).await?;
        let joined = Joined { writer, root: file.root, size: file.size, nodes: file.nodes };
        Ok((joined, file.checksums))
    }

    /// Streams the parts into one content writer, with the root CID and interior nodes of the whole.
    async fn join_parts(&self, parts: &[&UploadPart]) -> Result<Joined, ServiceError> {
        let chunk = self.profile.chunk_size() as u64;
        let aligned = parts[..parts.len() - 1].iter().all(|p| p.size % chunk == 0 && !p.leaves.is_empty())
            && parts.last().is_some_and(|p| !p.leaves.is_empty());
        let mut writer: Box<dyn ContentWriter> = self.content.writer().await?;
        let mut nodes = Vec::new();
        let mut assembler = aligned.then(|| Assembler::new(self.profile));
        let mut importer = (!aligned).then(|| Importer::new(self.profile).with_checksums(ChecksumSet::NONE));
        let mut size = 0u64;
        for part in parts {
            if let Some(assembler) = &mut assembler {
                let built = assembler
                    .add_piece(part.size, &part.leaves)
                    .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
                nodes.extend(built);
            }
            let mut stream = self.parts().read(&part.cid, 0..part.size).await?;
            while let Some(bytes) = stream.next().await {
                let bytes = bytes?;
                if let Some(importer) = &mut importer {
                    import_into(importer, &bytes, &mut nodes);
                }
                writer.write(bytes).await?;
            }
            size += part.size;
        }
        let root = match (assembler, importer) {
            (Some(assembler), _) => {
                let (last, root) = assembler.finish();
                nodes.extend(last.into_iter().filter(|b| b.kind == BlockKind::Node));
                root.cid
            }
            (None, Some(importer)) => {
                let (last, summary) = importer.finish();
                last.into_iter().for_each(|b| keep_node(&mut nodes, b));
                summary.root
            }
            (None, None) => return Err(ServiceError::InvalidArgument("no parts".into())),
        };
        Ok(Joined { writer, root, size, nodes })
    }
}
