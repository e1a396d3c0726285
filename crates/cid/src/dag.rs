//! Reading a UnixFS file DAG back: block sources, a depth-first walk, and the file's bytes.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use bytes::Bytes;

use crate::cid::{Cid, DAG_PB, RAW};
use crate::pb::{self, PbError, UNIXFS_FILE, UNIXFS_RAW};

/// Somewhere blocks can be read from by CID.
pub trait BlockSource {
    /// The block named `cid`; an error of kind `NotFound` when it is absent.
    fn block(&mut self, cid: &Cid) -> io::Result<Bytes>;
}

/// Blocks held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryBlocks {
    blocks: HashMap<Cid, Bytes>,
}

impl MemoryBlocks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block.
    pub fn insert(&mut self, cid: Cid, data: Bytes) {
        self.blocks.insert(cid, data);
    }

    /// Number of distinct blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

impl BlockSource for MemoryBlocks {
    fn block(&mut self, cid: &Cid) -> io::Result<Bytes> {
        self.blocks
            .get(cid)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("block {cid} not found")))
    }
}

/// Why a DAG could not be walked or read as a file.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    /// Reading a block or writing output failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// A block does not hash to its CID.
    #[error("block {0} does not match its CID")]
    HashMismatch(Cid),
    /// A block's codec or hash is not one a UnixFS file uses.
    #[error("block {0} has a codec or hash this reader does not support")]
    Unsupported(Cid),
    /// A dag-pb block is malformed.
    #[error("block {cid} is not valid dag-pb/UnixFS: {source}")]
    Malformed {
        /// The block.
        cid: Cid,
        /// What is wrong.
        source: PbError,
    },
    /// A node is not part of a file (a directory, a symlink, …).
    #[error("block {cid} is UnixFS type {kind}, not a file")]
    NotAFile {
        /// The block.
        cid: Cid,
        /// Its UnixFS type.
        kind: u64,
    },
    /// Sizes recorded in a node disagree with its children.
    #[error("block {0} has sizes that disagree with its content")]
    SizeMismatch(Cid),
}

/// The CIDs a block links to, in order; raw blocks link to nothing.
pub fn links_of(cid: &Cid, block: &[u8]) -> Result<Vec<Cid>, DagError> {
    match cid.codec() {
        RAW => Ok(Vec::new()),
        DAG_PB => {
            let node = pb::decode_node(block).map_err(|source| DagError::Malformed { cid: *cid, source })?;
            Ok(node.links.into_iter().map(|l| l.cid).collect())
        }
        _ => Err(DagError::Unsupported(*cid)),
    }
}

fn verified_block(source: &mut impl BlockSource, cid: &Cid) -> Result<Bytes, DagError> {
    if !cid.is_verifiable() {
        return Err(DagError::Unsupported(*cid));
    }
    let block = source.block(cid)?;
    if !cid.verifies(&block) {
        return Err(DagError::HashMismatch(*cid));
    }
    Ok(block)
}

/// Visits every distinct block under `root` once, depth-first, parents before children, children in link order
/// (the `dfs` order of CAR files). Each block is verified against its CID before it is visited.
pub fn walk_dfs(
    root: &Cid,
    source: &mut impl BlockSource,
    mut visit: impl FnMut(&Cid, &Bytes) -> Result<(), DagError>,
) -> Result<(), DagError> {
    let mut seen: HashSet<Cid> = HashSet::new();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let block = verified_block(source, &cid)?;
        visit(&cid, &block)?;
        stack.extend(links_of(&cid, &block)?.into_iter().rev());
    }
    Ok(())
}

/// Writes the bytes of the UnixFS file under `root` to `out`, checking every block and every recorded size.
/// Returns the number of bytes written.
pub fn read_file(root: &Cid, source: &mut impl BlockSource, out: &mut impl Write) -> Result<u64, DagError> {
    let mut written = 0u64;
    // Each entry: a block to read and the file bytes its parent says it holds.
    let mut stack: Vec<(Cid, Option<u64>)> = vec![(*root, None)];
    while let Some((cid, expected)) = stack.pop() {
        let block = verified_block(source, &cid)?;
        // (file bytes under this block, file bytes stored in the block itself)
        let (size, inline) = match cid.codec() {
            RAW => {
                out.write_all(&block)?;
                (block.len() as u64, block.len() as u64)
            }
            DAG_PB => {
                let malformed = |source| DagError::Malformed { cid, source };
                let node = pb::decode_node(&block).map_err(malformed)?;
                let data = node.data.ok_or(PbError::Missing("PBNode.Data")).map_err(malformed)?;
                let unixfs = pb::decode_unixfs(data).map_err(malformed)?;
                if unixfs.kind != UNIXFS_FILE && unixfs.kind != UNIXFS_RAW {
                    return Err(DagError::NotAFile { cid, kind: unixfs.kind });
                }
                if node.links.len() != unixfs.blocksizes.len() {
                    return Err(DagError::SizeMismatch(cid));
                }
                let total = unixfs.blocksizes.iter().try_fold(unixfs.data.len() as u64, |acc, s| acc.checked_add(*s));
                let total = total.ok_or(DagError::SizeMismatch(cid))?;
                if unixfs.filesize.is_some_and(|declared| declared != total) {
                    return Err(DagError::SizeMismatch(cid));
                }
                out.write_all(unixfs.data)?;
                let children = node.links.iter().zip(&unixfs.blocksizes).rev();
                stack.extend(children.map(|(link, size)| (link.cid, Some(*size))));
                (total, unixfs.data.len() as u64)
            }
            _ => return Err(DagError::Unsupported(cid)),
        };
        if expected.is_some_and(|e| e != size) {
            return Err(DagError::SizeMismatch(cid));
        }
        written += inline;
    }
    Ok(written)
}
