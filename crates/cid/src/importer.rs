//! The streaming importer: bytes in, blocks out as they complete, root CID and checksums at the end.
//!
//! Memory is one partial chunk plus one partial group of links per tree level, whatever the input size. `push`
//! consumes at most up to the next chunk boundary, so a caller can write the blocks of each step (at most one leaf
//! and one node per level) before feeding more — the shape an async content store needs.

use bytes::Bytes;

use crate::block::{Block, BlockKind, DagLink};
use crate::checksum::{ChecksumHasher, ChecksumSet, Checksums};
use crate::cid::Cid;
use crate::profile::Profile;
use crate::tree::TreeBuilder;

/// Turns a byte stream into the UnixFS DAG `ipfs add` would build, computing S3 checksums on the way.
#[derive(Debug)]
pub struct Importer {
    profile: Profile,
    partial: Vec<u8>,
    tree: TreeBuilder,
    hasher: ChecksumHasher,
    size: u64,
    /// File bytes already handed out in leaves: the offset of the next leaf.
    leaf_bytes: u64,
    leaves: Option<Vec<DagLink>>,
}

/// What one [`Importer::push`] did.
#[derive(Debug)]
pub struct Pushed {
    /// How many bytes of the input were consumed; feed the rest again.
    pub consumed: usize,
    /// Blocks completed by this step, children before parents.
    pub blocks: Vec<Block>,
}

/// The result of a finished import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// The root CID: what `ipfs add` prints for the same bytes and profile.
    pub root: Cid,
    /// File bytes imported.
    pub size: u64,
    /// Serialized bytes of every block in the DAG (the root's cumulative `Tsize`).
    pub dag_size: u64,
    /// The checksums that were requested.
    pub checksums: Checksums,
    /// The leaves in file order, when [`Importer::keep_leaves`] asked for them.
    pub leaves: Option<Vec<DagLink>>,
}

impl ImportSummary {
    /// The root as a link (CID and sizes), as a parent or an assembler would hold it.
    pub fn root_link(&self) -> DagLink {
        DagLink { cid: self.root, file_size: self.size, dag_size: self.dag_size }
    }
}

impl Importer {
    /// An importer for `profile` that computes MD5 (the S3 ETag).
    pub fn new(profile: Profile) -> Self {
        Importer {
            profile,
            partial: Vec::new(),
            tree: TreeBuilder::new(profile),
            hasher: ChecksumHasher::new(ChecksumSet::MD5),
            size: 0,
            leaf_bytes: 0,
            leaves: None,
        }
    }

    /// Computes exactly the checksums in `set` (`ChecksumSet::NONE` for the CID alone).
    pub fn with_checksums(mut self, set: ChecksumSet) -> Self {
        self.hasher = ChecksumHasher::new(set);
        self
    }

    /// Records every leaf link, so the DAG can later be re-assembled with others (multipart uploads).
    pub fn keep_leaves(mut self) -> Self {
        self.leaves = Some(Vec::new());
        self
    }

    /// The profile in use.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// File bytes consumed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Consumes bytes from `data` up to the next chunk boundary and returns the blocks that completed.
    pub fn push(&mut self, data: &[u8]) -> Pushed {
        let chunk_size = self.profile.chunk_size();
        let mut blocks = Vec::new();
        let consumed = if self.partial.is_empty() && data.len() >= chunk_size {
            // A whole chunk in the caller's buffer: hash it in place, copy it once into the block.
            let chunk = &data[..chunk_size];
            self.hasher.update(chunk);
            self.emit_leaf(Bytes::copy_from_slice(chunk), &mut blocks);
            chunk_size
        } else {
            let take = (chunk_size - self.partial.len()).min(data.len());
            let piece = &data[..take];
            self.hasher.update(piece);
            self.partial.extend_from_slice(piece);
            if self.partial.len() == chunk_size {
                let chunk = std::mem::take(&mut self.partial);
                self.emit_leaf(Bytes::from(chunk), &mut blocks);
            }
            take
        };
        self.size += consumed as u64;
        Pushed { consumed, blocks }
    }

    /// Feeds all of `data`, handing each completed block to `sink` in order.
    pub fn write_all<E>(&mut self, mut data: &[u8], mut sink: impl FnMut(Block) -> Result<(), E>) -> Result<(), E> {
        while !data.is_empty() {
            let pushed = self.push(data);
            data = &data[pushed.consumed..];
            pushed.blocks.into_iter().try_for_each(&mut sink)?;
        }
        Ok(())
    }

    /// Ends the stream: returns the last blocks (the final leaf and the nodes up to the root) and the summary.
    pub fn finish(mut self) -> (Vec<Block>, ImportSummary) {
        let mut blocks = Vec::new();
        if !self.partial.is_empty() {
            let chunk = std::mem::take(&mut self.partial);
            self.emit_leaf(Bytes::from(chunk), &mut blocks);
        }
        let empty = self.tree.is_empty();
        let root = self.tree.finish(&mut blocks);
        if empty && let Some(leaves) = &mut self.leaves {
            leaves.push(root);
        }
        let summary = ImportSummary {
            root: root.cid,
            size: self.size,
            dag_size: root.dag_size,
            checksums: self.hasher.finish(),
            leaves: self.leaves,
        };
        (blocks, summary)
    }

    fn emit_leaf(&mut self, chunk: Bytes, out: &mut Vec<Block>) {
        let offset = self.leaf_bytes;
        let len = chunk.len() as u64;
        self.leaf_bytes += len;
        let (data, link) = self.profile.leaf(chunk);
        out.push(Block { cid: link.cid, data, kind: BlockKind::Leaf { offset, len } });
        if let Some(leaves) = &mut self.leaves {
            leaves.push(link);
        }
        self.tree.push_leaf(link, out);
    }
}

/// Imports everything `reader` yields, handing each block to `sink`; a convenience for files and tests.
pub fn import_reader<R: std::io::Read>(
    importer: Importer,
    mut reader: R,
    mut sink: impl FnMut(Block) -> std::io::Result<()>,
) -> std::io::Result<ImportSummary> {
    let mut importer = importer;
    let mut buf = vec![0u8; importer.profile().chunk_size().max(64 * 1024)];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        importer.write_all(&buf[..n], &mut sink)?;
    }
    let (blocks, summary) = importer.finish();
    blocks.into_iter().try_for_each(sink)?;
    Ok(summary)
}

/// The root CID of `data` under `profile` (no checksums).
pub fn cid_of(profile: Profile, data: &[u8]) -> Cid {
    let mut importer = Importer::new(profile).with_checksums(ChecksumSet::NONE);
    let _ = importer.write_all(data, |_| Ok::<(), std::convert::Infallible>(()));
    importer.finish().1.root
}
