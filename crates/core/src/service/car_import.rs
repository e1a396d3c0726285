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

fn invalid(err: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidArgument(format!("The CAR to import is invalid: {err}"))
}

/// Streams the CAR in `body` into `writer` as the file it holds. Returns the file, and the checksums in `set` of
/// the bytes received (what a client's checksum describes).
pub(super) async fn unpack_body<S, E>(
    body: &mut S,
    set: ChecksumSet,
    writer: &mut Box<dyn ContentWriter>,
) -> Result<(Unpacked, Checksums), ServiceError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let mut unpacker = CarUnpacker::new(IMPORT_BUDGET);
    let mut received = ChecksumHasher::new(set);
    let mut file = ChecksumHasher::new(set);
    let mut nodes = Vec::new();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ServiceError::IncompleteBody(e.to_string()))?;
        received.update(&chunk);
        unpacker
            .push(&chunk, &mut |piece| match piece {
                Piece::Bytes(b) => bytes.push(b),
                Piece::Node(node) => nodes.push(node),
            })
            .map_err(invalid)?;
        for piece in bytes.drain(..) {
            file.update(&piece);
            writer.write(piece).await?;
        }
    }
    let (root, size) = unpacker.finish().map_err(invalid)?;
    // The unpacker yields parents first; the content store wants children first.
    nodes.reverse();
    Ok((Unpacked { root, size, checksums: file.finish(), nodes }, received.finish()))
}
