//! Building one DAG from the leaves of separately imported pieces (the parts of a multipart upload).
//!
//! When every piece but the last holds a whole number of chunks, the leaves of the concatenation are exactly the
//! pieces' leaves in order, so the balanced tree over them is the DAG `ipfs add` gives the whole object.

use crate::block::{Block, DagLink};
use crate::profile::Profile;
use crate::tree::TreeBuilder;

/// Why pieces cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    /// A piece other than the last is not a multiple of the chunk size: re-chunk the bytes instead.
    #[error(
        "piece {index} has {size} bytes, not a multiple of the {chunk_size}-byte chunk; only the last piece may be"
    )]
    Unaligned {
        /// Zero-based index of the offending piece.
        index: usize,
        /// Its size.
        size: u64,
        /// The profile's chunk size.
        chunk_size: usize,
    },
    /// The leaves do not describe a piece of the declared size imported with this profile.
    #[error("piece {index}: {reason}")]
    BadLeaves {
        /// Zero-based index of the offending piece.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Accepts the ordered leaves of each piece and builds the interior nodes over all of them.
#[derive(Debug)]
pub struct Assembler {
    profile: Profile,
    tree: TreeBuilder,
    pieces: usize,
    size: u64,
    /// Size of the last piece added when it was not chunk-aligned: nothing may follow it.
    unaligned_tail: Option<u64>,
}

impl Assembler {
    /// An assembler for DAGs of `profile`.
    pub fn new(profile: Profile) -> Self {
        Assembler { profile, tree: TreeBuilder::new(profile), pieces: 0, size: 0, unaligned_tail: None }
    }

    /// Adds the next piece: its size and its leaves in file order (as [`crate::Importer::keep_leaves`] records
    /// them). Returns the interior nodes this completes.
    pub fn add_piece(&mut self, size: u64, leaves: &[DagLink]) -> Result<Vec<Block>, AssembleError> {
        let index = self.pieces;
        let chunk = self.profile.chunk_size() as u64;
        if let Some(previous) = self.unaligned_tail {
            return Err(AssembleError::Unaligned { index: index - 1, size: previous, chunk_size: chunk as usize });
        }
        self.check_leaves(index, size, leaves)?;
        let mut blocks = Vec::new();
        for leaf in leaves.iter().filter(|l| l.file_size > 0) {
            self.tree.push_leaf(*leaf, &mut blocks);
        }
        self.pieces += 1;
        self.size += size;
        if !size.is_multiple_of(chunk) {
            self.unaligned_tail = Some(size);
        }
        Ok(blocks)
    }

    fn check_leaves(&self, index: usize, size: u64, leaves: &[DagLink]) -> Result<(), AssembleError> {
        let bad = |reason| Err(AssembleError::BadLeaves { index, reason });
        let chunk = self.profile.chunk_size() as u64;
        if leaves.iter().any(|l| !self.profile.is_leaf_cid(&l.cid)) {
            return bad("a leaf CID does not have the profile's version and codec");
        }
        if leaves.iter().map(|l| l.file_size).sum::<u64>() != size {
            return bad("leaf sizes do not add up to the piece size");
        }
        if size == 0 {
            return if leaves.len() <= 1 { Ok(()) } else { bad("an empty piece has more than one leaf") };
        }
        let (last, full) = leaves.split_last().map_or((0, &[][..]), |(last, full)| (last.file_size, full));
        if full.iter().any(|l| l.file_size != chunk) || last == 0 || last > chunk {
            return bad("every leaf but the last must hold exactly one chunk");
        }
        Ok(())
    }

    /// File bytes added so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Closes the DAG: returns the remaining interior nodes (or, with no bytes at all, the empty leaf) and the root.
    pub fn finish(self) -> (Vec<Block>, DagLink) {
        let mut blocks = Vec::new();
        let root = self.tree.finish(&mut blocks);
        (blocks, root)
    }
}
