//! Uploading a spooled file under its CID: one PutObject up to the part size, a multipart upload with parts in
//! parallel above it; and the CAR of a DAG rebuilt from the spool, for backends that import CARs.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use s3ipfs_cid::car::CarWriter;
use s3ipfs_cid::cid::{DAG_PB, RAW};
use s3ipfs_cid::{Block, Cid, pb};
use s3ipfs_core::ContentError;

use super::RemoteStore;
use super::call::{CallError, RemoteError};

/// The slowest transfer an upload attempt is allowed before it times out, in bytes per second.
const MIN_THROUGHPUT: u64 = 1024 * 1024;
/// Most parts in one multipart upload (S3's limit).
const MAX_PARTS: u64 = 10_000;

/// How long one attempt to send `bytes` may take.
pub(super) fn transfer_timeout(base: Duration, bytes: u64) -> Duration {
    base + Duration::from_secs(bytes / MIN_THROUGHPUT)
}

/// A failed upload call: a 404 means the bucket is missing (a configuration error, not an outage).
fn failed(err: CallError) -> ContentError {
    match err {
        CallError::Failed(err) => err,
        CallError::NotFound => {
            ContentError::Refused { operation: "upload", message: "the bucket does not exist".into() }
        }
        CallError::InvalidRange => {
            ContentError::Refused { operation: "upload", message: "range not satisfiable".into() }
        }
    }
}

async fn file_body(path: PathBuf, offset: u64, len: u64) -> Result<ByteStream, RemoteError> {
    ByteStream::read_from()
        .path(path)
        .offset(offset)
        .length(Length::Exact(len))
        .build()
        .await
        .map_err(|e| RemoteError::Local(e.to_string()))
}

impl RemoteStore {
    /// Uploads `len` bytes of `path` under `key`, as one object; `car` marks the body as a CAR to import.
    pub(super) async fn upload_file(&self, path: &Path, len: u64, key: &str, car: bool) -> Result<(), ContentError> {
        let part_size = self.inner.part_size.max(len.div_ceil(MAX_PARTS));
        if len <= part_size {
            let (client, bucket, key, path) =
                (self.inner.client.clone(), self.inner.bucket.clone(), key.to_owned(), path.to_path_buf());
            let timeout = transfer_timeout(self.inner.call_timeout, len);
            return self
                .inner
                .backend
                .call("PutObject", true, timeout, move || {
                    let (client, bucket, key, path) = (client.clone(), bucket.clone(), key.clone(), path.clone());
                    async move {
                        let body = file_body(path, 0, len).await?;
                        let mut put = client.put_object().bucket(bucket).key(key).body(body).content_length(len as i64);
                        if car {
                            put = put.metadata("import", "car");
                        }
                        put.send().await.map_err(RemoteError::from_sdk)?;
                        Ok(())
                    }
                })
                .await
                .map_err(failed);
        }
        self.upload_multipart(path, len, key, car, part_size).await
    }

    async fn upload_multipart(
        &self,
        path: &Path,
        len: u64,
        key: &str,
        car: bool,
        part_size: u64,
    ) -> Result<(), ContentError> {
        let (client, bucket) = (self.inner.client.clone(), self.inner.bucket.clone());
        let create = {
            let (client, bucket, key) = (client.clone(), bucket.clone(), key.to_owned());
            self.inner.backend.call("CreateMultipartUpload", false, self.inner.call_timeout, move || {
                let mut create = client.create_multipart_upload().bucket(bucket.clone()).key(key.clone());
                if car {
                    create = create.metadata("import", "car");
                }
                async move {
                    let out = create.send().await.map_err(RemoteError::from_sdk)?;
                    out.upload_id.ok_or_else(|| RemoteError::Refused("no upload id in the answer".into()))
                }
            })
        };
        let upload_id = create.await.map_err(failed)?;
        let parts: Vec<(i32, u64, u64)> = (0..len.div_ceil(part_size))
            .map(|i| (i as i32 + 1, i * part_size, part_size.min(len - i * part_size)))
            .collect();
        let sent = futures::stream::iter(parts)
            .map(|(number, offset, size)| self.upload_part(path, key, &upload_id, number, offset, size))
            .buffer_unordered(self.inner.concurrency)
            .try_collect::<Vec<CompletedPart>>()
            .await;
        let mut completed = match sent {
            Ok(completed) => completed,
            Err(err) => {
                self.abort_multipart(key, &upload_id).await;
                return Err(err);
            }
        };
        completed.sort_by_key(|p| p.part_number);
        let finish = {
            let (key, upload_id) = (key.to_owned(), upload_id.clone());
            let done = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
            // The backend assembles (on Filebase: imports and pins) the object before it answers.
            let timeout = transfer_timeout(self.inner.call_timeout * 4, len);
            self.inner.backend.call("CompleteMultipartUpload", false, timeout, move || {
                let complete = client
                    .complete_multipart_upload()
                    .bucket(bucket.clone())
                    .key(key.clone())
                    .upload_id(upload_id.clone())
                    .multipart_upload(done.clone());
                async move { complete.send().await.map(|_| ()).map_err(RemoteError::from_sdk) }
            })
        };
        if let Err(err) = finish.await {
            self.abort_multipart(key, &upload_id).await;
            return Err(failed(err));
        }
        Ok(())
    }

    async fn upload_part(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
        number: i32,
        offset: u64,
        size: u64,
    ) -> Result<CompletedPart, ContentError> {
        let (client, bucket) = (self.inner.client.clone(), self.inner.bucket.clone());
        let (key, upload_id, path) = (key.to_owned(), upload_id.to_owned(), path.to_path_buf());
        let timeout = transfer_timeout(self.inner.call_timeout, size);
        self.inner
            .backend
            .call("UploadPart", true, timeout, move || {
                let (client, bucket, key, upload_id, path) =
                    (client.clone(), bucket.clone(), key.clone(), upload_id.clone(), path.clone());
                async move {
                    let body = file_body(path, offset, size).await?;
                    let out = client
                        .upload_part()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(size as i64)
                        .body(body)
                        .send()
                        .await
                        .map_err(RemoteError::from_sdk)?;
                    Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build())
                }
            })
            .await
            .map_err(failed)
    }

    /// Abandons a multipart upload on the backend (best effort: the backend's own expiry is the backstop).
    async fn abort_multipart(&self, key: &str, upload_id: &str) {
        let abort =
            self.inner.client.abort_multipart_upload().bucket(&self.inner.bucket).key(key).upload_id(upload_id).send();
        if let Err(err) = tokio::time::timeout(self.inner.call_timeout, abort).await {
            tracing::debug!(%err, "aborting a failed multipart upload on the content backend timed out");
        }
    }
}

/// Writes the CAR of the file in `spool` to `out`: the header naming `root`, then the DAG depth-first, parents
/// before children, as an importer reads it: interior nodes from `nodes`, leaves rebuilt from the spool as the nodes
/// link them (file order) and each checked against its CID. A subtree the file repeats is written again where it
/// recurs, so an importer never needs a block it saw earlier. Returns the CAR's length. Blocking: run it off the
/// async workers.
pub(super) fn write_car(spool: &Path, out: &Path, root: Cid, nodes: &[Block]) -> Result<u64, ContentError> {
    let index: HashMap<Cid, &Bytes> = nodes.iter().map(|node| (node.cid, &node.data)).collect();
    let mut car = CarWriter::new(BufWriter::new(std::fs::File::create(out)?), &[root])?;
    let mut file = std::fs::File::open(spool)?;
    let file_len = file.metadata()?.len();
    let mut input = BufReader::with_capacity(1 << 20, &mut file);
    let mut stack = vec![(root, file_len)];
    while let Some((cid, len)) = stack.pop() {
        match index.get(&cid) {
            Some(data) => {
                car.write_block(&cid, data)?;
                let (inline, links) = node_layout(&cid, data)?;
                // Bytes a node holds itself come before its children's; they are in the node already.
                std::io::copy(&mut (&mut input).take(inline), &mut std::io::sink())?;
                stack.extend(links.into_iter().rev());
            }
            None => {
                let mut chunk = vec![0u8; usize::try_from(len).map_err(|_| std::io::Error::other("leaf too large"))?];
                input.read_exact(&mut chunk)?;
                let block = match cid.codec() {
                    RAW => chunk,
                    DAG_PB => pb::encode_leaf(&chunk),
                    _ => return Err(rebuild_failed(&cid)),
                };
                if !cid.verifies(&block) {
                    return Err(rebuild_failed(&cid));
                }
                car.write_block(&cid, &block)?;
            }
        }
    }
    let mut out = car.finish()?;
    out.flush()?;
    Ok(out.get_ref().metadata()?.len())
}

fn rebuild_failed(cid: &Cid) -> ContentError {
    ContentError::Io(std::io::Error::other(format!("leaf {cid} cannot be rebuilt from the spooled bytes")))
}

/// The file bytes an interior node holds itself, and its links with the file bytes under each.
fn node_layout(cid: &Cid, data: &[u8]) -> Result<(u64, Vec<(Cid, u64)>), ContentError> {
    let malformed = |e: pb::PbError| ContentError::Io(std::io::Error::other(format!("node {cid}: {e}")));
    let node = pb::decode_node(data).map_err(malformed)?;
    let unixfs = pb::decode_unixfs(node.data.unwrap_or_default()).map_err(malformed)?;
    let links = node.links.iter().zip(&unixfs.blocksizes).map(|(link, size)| (link.cid, *size)).collect();
    Ok((unixfs.data.len() as u64, links))
}
