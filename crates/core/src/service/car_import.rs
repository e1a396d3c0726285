//! CAR import on PutObject (`x-amz-meta-import: car`, as Filebase offers): the body is a CAR whose single root is
//! a UnixFS file; the object is that file, stored under the CAR's root CID with the CAR's interior nodes, so the
//! gateway reports exactly the CID the client built. Every block is verified against its CID as it streams in; a
//! bad CAR is a 400 and stores nothing.

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use s3ipfs_cid::{Block, CarUnpacker, ChecksumHasher, ChecksumSet, Checksums, Cid, Unpacked as Piece};

use crate::content::ContentWriter;

use super::ServiceError;

/// Memory one import may use for blocks that arrive before their turn (and a quarter of it for blocks that may
/// repeat; see [`CarUnpacker`]). A depth-first CAR, or one with its interior nodes first, needs little of it.
const IMPORT_BUDGET: usize = 16 * 1024 * 1024;

/// The file a CAR held.
pub(super) struct Unpacked {
    /// The CAR's root.
    pub root: Cid,
    /// The file's size.
    pub size: u64,
    /// Checksums of the file's bytes.
    pub checksums: Checksums,
    /// The DAG's interior nodes, children before parents.
    pub nodes: Vec<Block>,
}

fn invalid(err: s3ipfs_cid::UnpackError) -> ServiceError {
    match err {
        s3ipfs_cid::UnpackError::TooLarge(max) => ServiceError::EntityTooLarge { max },
        err => ServiceError::InvalidArgument(format!("The CAR to import is invalid: {err}")),
    }
}

/// File bytes passed out of the unpacker between two writes.
const PULL: u64 = 1024 * 1024;

/// Streams the CAR in `body` into `writer` as the file it holds, of at most `max_size` bytes. Returns the file,
/// and the checksums in `set` of the bytes received (what a client's checksum describes). `failed` turns a failure
/// of `body` into the request's error.
pub(super) async fn unpack_body<S, E>(
    body: &mut S,
    set: ChecksumSet,
    max_size: u64,
    writer: &mut Box<dyn ContentWriter>,
    failed: impl Fn(E) -> ServiceError,
) -> Result<(Unpacked, Checksums), ServiceError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
{
    let mut unpacker = CarUnpacker::new(IMPORT_BUDGET, max_size);
    let mut received = ChecksumHasher::new(set);
    let mut file = ChecksumHasher::new(set);
    let mut nodes = Vec::new();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(&failed)?;
        received.update(&chunk);
        unpacker.push(&chunk).map_err(invalid)?;
        // A bounded amount at a time, written before the next: a small CAR can describe a huge file.
        while unpacker
            .pull(PULL, &mut |piece| match piece {
                Piece::Bytes(b) => bytes.push(b),
                Piece::Node(node) => nodes.push(node),
            })
            .map_err(invalid)?
        {
            for piece in bytes.drain(..) {
                file.update(&piece);
                writer.write(piece).await?;
            }
        }
    }
    let (root, size) = unpacker.finish().map_err(invalid)?;
    // The unpacker yields parents first; the content store wants children first.
    nodes.reverse();
    Ok((Unpacked { root, size, checksums: file.finish(), nodes }, received.finish()))
}
