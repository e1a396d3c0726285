//! Blocks and links: what an import produces and what a DAG node points at.

use bytes::Bytes;

use crate::cid::Cid;

/// One block of a DAG, named by the CID of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The CID of `data`.
    pub cid: Cid,
    /// The block's serialized bytes (for a raw leaf, the file bytes themselves).
    pub data: Bytes,
    /// Where the block sits in the file.
    pub kind: BlockKind,
}

/// Whether a block holds file bytes directly or links to other blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A leaf holding `len` file bytes that start at byte `offset` of the file.
    Leaf {
        /// Offset of the leaf's first byte in the file.
        offset: u64,
        /// Number of file bytes in the leaf.
        len: u64,
    },
    /// An interior UnixFS node.
    Node,
}

/// A child reference as a parent node stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DagLink {
    /// The child's CID.
    pub cid: Cid,
    /// File bytes below the child (the parent's `blocksizes` entry).
    pub file_size: u64,
    /// Serialized bytes of the child's whole sub-DAG (the parent's link `Tsize`).
    pub dag_size: u64,
}
