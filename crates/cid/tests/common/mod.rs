//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use s3ipfs_cid::{Block, BlockKind, Cid, DagLink, ImportSummary, Importer, MemoryBlocks, Profile};

/// Imports `data` feeding it in pieces of the given sizes (cycled), returning every block and the summary.
pub fn import_split(importer: Importer, data: &[u8], feeds: &[usize]) -> (Vec<Block>, ImportSummary) {
    let mut importer = importer;
    let mut blocks = Vec::new();
    let mut rest = data;
    let mut sizes = feeds.iter().copied().filter(|s| *s > 0).cycle();
    while !rest.is_empty() {
        let take = sizes.next().unwrap_or(rest.len()).min(rest.len());
        importer
            .write_all(&rest[..take], |b| {
                blocks.push(b);
                Ok::<_, ()>(())
            })
            .expect("infallible sink");
        rest = &rest[take..];
    }
    let (last, summary) = importer.finish();
    blocks.extend(last);
    (blocks, summary)
}

/// Collects blocks by CID.
pub fn to_store(blocks: &[Block]) -> MemoryBlocks {
    let mut store = MemoryBlocks::new();
    for block in blocks {
        store.insert(block.cid, block.data.clone());
    }
    store
}

/// Checks what every import must satisfy: blocks verify, leaves tile the file in order, sizes add up.
pub fn assert_well_formed(blocks: &[Block], summary: &ImportSummary, data: &[u8]) {
    let mut next_offset = 0u64;
    for block in blocks {
        assert!(block.cid.verifies(&block.data), "block {} does not verify", block.cid);
        if let BlockKind::Leaf { offset, len } = block.kind {
            assert_eq!(offset, next_offset, "leaves must tile the file in order");
            next_offset += len;
        }
    }
    assert_eq!(next_offset, data.len() as u64);
    assert_eq!(summary.size, data.len() as u64);
    let total: u64 = blocks.iter().map(|b| b.data.len() as u64).sum();
    assert_eq!(summary.dag_size, total, "dag size is the sum of all blocks, duplicates included");
    assert_eq!(blocks.last().map(|b| b.cid), Some(summary.root), "the root comes last");
}

/// kubo's balanced layout as boxo writes it (recursive fill, `importer/balanced/builder.go`), kept independent of
/// the streaming builder so the two can be compared.
pub fn reference_root(profile: Profile, data: &[u8]) -> Cid {
    let mut leaves = data
        .chunks(profile.chunk_size())
        .map(|c| profile.leaf(bytes::Bytes::copy_from_slice(c)).1)
        .collect::<Vec<_>>()
        .into_iter()
        .peekable();
    let first = leaves.next().unwrap_or_else(|| profile.leaf(bytes::Bytes::new()).1);
    fn fill(
        profile: Profile,
        depth: u32,
        children: &mut Vec<DagLink>,
        leaves: &mut std::iter::Peekable<std::vec::IntoIter<DagLink>>,
    ) {
        while children.len() < profile.max_links() && leaves.peek().is_some() {
            let child = if depth == 1 {
                leaves.next().expect("peeked")
            } else {
                let mut grand = Vec::new();
                fill(profile, depth - 1, &mut grand, leaves);
                profile.node(&grand).1
            };
            children.push(child);
        }
    }
    let mut root = first;
    let mut depth = 1;
    while leaves.peek().is_some() {
        let mut children = vec![root];
        fill(profile, depth, &mut children, &mut leaves);
        root = profile.node(&children).1;
        depth += 1;
    }
    root.cid
}

/// Where the shared CID vectors live: `S3IPFS_CID_VECTORS`, or `../shared/cid-vectors` beside the repository.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("S3IPFS_CID_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cid-vectors"))
}

/// The deterministic pattern the vectors use: byte i is i % 251.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
