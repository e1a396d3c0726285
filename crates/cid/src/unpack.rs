//! Importing a CAR as one file while it streams in (Filebase's `x-amz-meta-import: car`).
//!
//! The CAR must have one root naming a UnixFS file (a dag-pb file node or a raw block). Every block is verified
//! against its CID as it arrives ([`CarUnpacker::push`]); the file's bytes come out in order, a bounded amount per
//! call ([`CarUnpacker::pull`]), as soon as the blocks they need are in hand, with each interior node once. Blocks
//! that arrive before they are needed (a CAR in any order but depth-first) wait in memory, and blocks already used
//! are kept while memory allows, for files that repeat a block: both within one budget, beyond which the CAR is
//! refused. A file may not grow past a size limit: a small CAR whose nodes link one block many times describes a
//! huge file. Nothing here touches a disk.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;

use crate::block::{Block, BlockKind};
use crate::car::{CarError, MAX_HEADER_LEN, MAX_SECTION_LEN, decode_header};
use crate::cid::{Cid, DAG_PB, RAW};
use crate::dag::DagError;
use crate::pb::{self, PbError, UNIXFS_FILE, UNIXFS_RAW};
use crate::varint;

/// What unpacking yields, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpacked {
    /// The next bytes of the file.
    Bytes(Bytes),
    /// An interior node of the file's DAG (parents before children).
    Node(Block),
}

/// Why a CAR cannot be imported as a file.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The CAR itself is malformed, or a block does not match its CID.
    #[error(transparent)]
    Car(#[from] CarError),
    /// The DAG is not a well-formed UnixFS file.
    #[error(transparent)]
    Dag(#[from] DagError),
    /// The header names no root or several.
    #[error("a CAR to import must name exactly one root, this one names {0}")]
    Roots(usize),
    /// The CAR ended without a block the file needs.
    #[error("the CAR lacks block {0} of the file")]
    Missing(Cid),
    /// More blocks wait for their turn than the memory budget allows.
    #[error("the CAR's blocks are too far out of depth-first order to import as it streams")]
    OutOfOrder,
    /// The file the CAR describes is larger than allowed.
    #[error("the file the CAR describes is larger than {0} bytes")]
    TooLarge(u64),
}

/// A push parser that turns a CAR into the bytes of the file it holds.
#[derive(Debug)]
pub struct CarUnpacker {
    input: Vec<u8>,
    /// Bytes of `input` already parsed.
    cursor: usize,
    root: Option<Cid>,
    /// Blocks still to visit, with the file bytes their parent says they hold (depth-first, top is next).
    stack: Vec<(Cid, Option<u64>)>,
    /// Blocks that arrived before their turn.
    waiting: HashMap<Cid, Bytes>,
    waiting_bytes: usize,
    /// Blocks already visited, kept for a file that links them again (oldest evicted first).
    visited: HashMap<Cid, Bytes>,
    visited_order: VecDeque<Cid>,
    visited_bytes: usize,
    /// Interior nodes already passed out (each goes out once, however often the file links it).
    nodes_out: HashSet<Cid>,
    budget: usize,
    max_size: u64,
    size: u64,
}

impl CarUnpacker {
    /// A parser that keeps at most `budget` bytes of blocks waiting for their turn, and a quarter of that of visited
    /// blocks, besides the section being read; the file may hold at most `max_size` bytes.
    pub fn new(budget: usize, max_size: u64) -> Self {
        CarUnpacker {
            input: Vec::new(),
            cursor: 0,
            root: None,
            stack: Vec::new(),
            waiting: HashMap::new(),
            waiting_bytes: 0,
            visited: HashMap::new(),
            visited_order: VecDeque::new(),
            visited_bytes: 0,
            nodes_out: HashSet::new(),
            budget,
            max_size,
            size: 0,
        }
    }

    /// The root the header names, once it has been read.
    pub fn root(&self) -> Option<Cid> {
        self.root
    }

    /// Parses `data`: the header, then blocks, each verified and set aside until its turn. Call [`Self::pull`]
    /// until it passes nothing out before pushing more.
    pub fn push(&mut self, data: &[u8]) -> Result<(), UnpackError> {
        self.input.extend_from_slice(data);
        while let Some((start, len)) = self.frame()? {
            let section = self.input[start..start + len].to_vec();
            self.cursor = start + len;
            if self.root.is_none() {
                let roots = decode_header(&section)?;
                let [root] = roots[..] else { return Err(UnpackError::Roots(roots.len())) };
                self.root = Some(root);
                self.stack.push((root, None));
            } else {
                self.accept(Bytes::from(section))?;
            }
        }
        if self.cursor > 0 && self.cursor * 2 >= self.input.len() {
            self.input.drain(..self.cursor);
            self.cursor = 0;
        }
        Ok(())
    }

    /// Ends the CAR: the root and the file's size, or why the file is incomplete.
    pub fn finish(self) -> Result<(Cid, u64), UnpackError> {
        if self.cursor < self.input.len() {
            return Err(CarError::Truncated.into());
        }
        let root = self.root.ok_or(CarError::Truncated)?;
        match self.stack.last() {
            Some((missing, _)) => Err(UnpackError::Missing(*missing)),
            None => Ok((root, self.size)),
        }
    }

    /// The next complete length-prefixed frame in `input`, as (start, length), or `None` until more arrives.
    fn frame(&self) -> Result<Option<(usize, usize)>, UnpackError> {
        let rest = &self.input[self.cursor..];
        let Some(end) = rest.iter().take(varint::MAX_LEN).position(|b| b & 0x80 == 0) else {
            return if rest.len() >= varint::MAX_LEN {
                Err(CarError::BadSection("length varint longer than ten bytes").into())
            } else {
                Ok(None)
            };
        };
        let (len, used) = varint::decode(&rest[..=end]).map_err(|_| CarError::BadSection("malformed length"))?;
        let most = if self.root.is_none() { MAX_HEADER_LEN } else { MAX_SECTION_LEN };
        if len == 0 || len > most {
            return Err(CarError::BadSection("section length is zero or too large").into());
        }
        let len = len as usize;
        Ok((rest.len() >= used + len).then_some((self.cursor + used, len)))
    }

    /// Verifies one section's block and sets it aside until its turn.
    fn accept(&mut self, section: Bytes) -> Result<(), UnpackError> {
        let (cid, used) = Cid::read_bytes(&section).map_err(CarError::from)?;
        let data = section.slice(used..);
        if !cid.is_verifiable() {
            return Err(CarError::UnsupportedHash(cid).into());
        }
        if !cid.verifies(&data) {
            return Err(CarError::HashMismatch(cid).into());
        }
        if self.waiting.contains_key(&cid) || self.visited.contains_key(&cid) {
            return Ok(());
        }
        self.waiting_bytes += data.len();
        if self.waiting_bytes > self.budget {
            return Err(UnpackError::OutOfOrder);
        }
        self.waiting.insert(cid, data);
        Ok(())
    }

    /// Passes out the file's next pieces, in order, for as long as the blocks they need are in hand and until about
    /// `limit` bytes went out. Returns whether anything went out.
    pub fn pull(&mut self, limit: u64, out: &mut impl FnMut(Unpacked)) -> Result<bool, UnpackError> {
        let (start, mut visited) = (self.size, false);
        while let Some(&(cid, expected)) = self.stack.last() {
            if self.size - start >= limit {
                break;
            }
            let block = match self.waiting.remove(&cid) {
                Some(block) => {
                    self.waiting_bytes -= block.len();
                    block
                }
                None => match self.visited.get(&cid) {
                    Some(block) => block.clone(),
                    None => return Ok(visited),
                },
            };
            self.stack.pop();
            visited = true;
            let held = self.visit(cid, &block, out)?;
            if expected.is_some_and(|e| e != held) {
                return Err(DagError::SizeMismatch(cid).into());
            }
            self.remember(cid, block);
        }
        Ok(visited)
    }

    /// Counts `len` more file bytes, refusing a file over the limit.
    fn grow(&mut self, len: usize) -> Result<(), UnpackError> {
        self.size += len as u64;
        if self.size > self.max_size {
            return Err(UnpackError::TooLarge(self.max_size));
        }
        Ok(())
    }

    /// Passes out what one block holds; returns the file bytes under it.
    fn visit(&mut self, cid: Cid, block: &Bytes, out: &mut impl FnMut(Unpacked)) -> Result<u64, UnpackError> {
        match cid.codec() {
            RAW => {
                self.grow(block.len())?;
                out(Unpacked::Bytes(block.clone()));
                Ok(block.len() as u64)
            }
            DAG_PB => {
                let malformed = |source| DagError::Malformed { cid, source };
                let node = pb::decode_node(block).map_err(malformed)?;
                let data = node.data.ok_or(PbError::Missing("PBNode.Data")).map_err(malformed)?;
                let unixfs = pb::decode_unixfs(data).map_err(malformed)?;
                if unixfs.kind != UNIXFS_FILE && unixfs.kind != UNIXFS_RAW {
                    return Err(DagError::NotAFile { cid, kind: unixfs.kind }.into());
                }
                if node.links.len() != unixfs.blocksizes.len() {
                    return Err(DagError::SizeMismatch(cid).into());
                }
                let total = unixfs.blocksizes.iter().try_fold(unixfs.data.len() as u64, |acc, s| acc.checked_add(*s));
                let total = total.ok_or(DagError::SizeMismatch(cid))?;
                if unixfs.filesize.is_some_and(|declared| declared != total) {
                    return Err(DagError::SizeMismatch(cid).into());
                }
                if !unixfs.data.is_empty() {
                    self.grow(unixfs.data.len())?;
                    out(Unpacked::Bytes(block.slice_ref(unixfs.data)));
                }
                if total > self.max_size {
                    return Err(UnpackError::TooLarge(self.max_size));
                }
                let children = node.links.iter().zip(&unixfs.blocksizes).rev();
                self.stack.extend(children.map(|(link, size)| (link.cid, Some(*size))));
                if !node.links.is_empty() && self.nodes_out.insert(cid) {
                    out(Unpacked::Node(Block { cid, data: block.clone(), kind: BlockKind::Node }));
                }
                Ok(total)
            }
            _ => Err(DagError::Unsupported(cid).into()),
        }
    }

    /// Keeps a visited block within a quarter of the budget, evicting the oldest.
    fn remember(&mut self, cid: Cid, block: Bytes) {
        let room = self.budget / 4;
        if self.visited.contains_key(&cid) || block.len() > room {
            return;
        }
        self.visited_bytes += block.len();
        self.visited.insert(cid, block);
        self.visited_order.push_back(cid);
        while self.visited_bytes > room {
            let Some(old) = self.visited_order.pop_front() else { break };
            if let Some(gone) = self.visited.remove(&old) {
                self.visited_bytes -= gone.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::CarWriter;
    use crate::{Importer, Profile};

    /// A CAR of `data` imported with `profile`, blocks in the importer's order or depth-first.
    fn car_of(profile: Profile, data: &[u8], depth_first: bool) -> (Cid, Vec<u8>) {
        let mut importer = Importer::new(profile);
        let mut blocks = Vec::new();
        importer
            .write_all(data, |b| {
                blocks.push(b);
                Ok::<_, ()>(())
            })
            .expect("import");
        let (last, summary) = importer.finish();
        blocks.extend(last);
        let mut car = CarWriter::new(Vec::new(), &[summary.root]).expect("car");
        if depth_first {
            let mut source = crate::MemoryBlocks::new();
            blocks.iter().for_each(|b| source.insert(b.cid, b.data.clone()));
            crate::dag::walk_dfs(&summary.root, &mut source, |cid, block| {
                car.write_block(cid, block).map_err(DagError::Io)
            })
            .expect("walk");
        } else {
            blocks.iter().for_each(|b| car.write_block(&b.cid, &b.data).expect("write"));
        }
        (summary.root, car.finish().expect("finish"))
    }

    fn unpack(car: &[u8], piece: usize, budget: usize) -> Result<(Cid, Vec<u8>, usize), UnpackError> {
        unpack_at_most(car, piece, budget, u64::MAX)
    }

    fn unpack_at_most(
        car: &[u8],
        piece: usize,
        budget: usize,
        max_size: u64,
    ) -> Result<(Cid, Vec<u8>, usize), UnpackError> {
        let mut unpacker = CarUnpacker::new(budget, max_size);
        let (mut file, mut nodes) = (Vec::new(), 0);
        for chunk in car.chunks(piece) {
            unpacker.push(chunk)?;
            while unpacker.pull(100_000, &mut |u| match u {
                Unpacked::Bytes(b) => file.extend_from_slice(&b),
                Unpacked::Node(_) => nodes += 1,
            })? {}
        }
        let (root, size) = unpacker.finish()?;
        assert_eq!(size, file.len() as u64);
        Ok((root, file, nodes))
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 253) as u8).collect()
    }

    #[test]
    fn a_car_in_any_order_unpacks_to_the_file_under_its_root() {
        let data = pattern(3_000_000);
        for profile in [Profile::KUBO_V0, Profile::KUBO_V1] {
            for depth_first in [true, false] {
                let (root, car) = car_of(profile, &data, depth_first);
                let (got, file, nodes) = unpack(&car, 65_537, 64 << 20).expect("unpacks");
                assert_eq!(got, root);
                assert!(file == data, "{profile:?} depth_first={depth_first}");
                assert!(nodes >= 1);
            }
        }
    }

    #[test]
    fn a_single_raw_block_and_an_empty_file_unpack() {
        let (root, car) = car_of(Profile::KUBO_V1, b"hello", true);
        assert_eq!(unpack(&car, 3, 1 << 20).expect("raw").1, b"hello");
        assert_eq!(unpack(&car, 3, 1 << 20).expect("raw").0, root);
        let (_, car) = car_of(Profile::KUBO_V0, b"", true);
        assert!(unpack(&car, 7, 1 << 20).expect("empty").1.is_empty());
    }

    #[test]
    fn repeated_blocks_are_reused_from_memory() {
        let data = vec![0u8; 4_000_000];
        let (_, car) = car_of(Profile::KUBO_V1, &data, true);
        assert!(unpack(&car, 100_000, 8 << 20).expect("zeros").1 == data);
    }

    #[test]
    fn bad_cars_are_refused() {
        let data = pattern(1_000_000);
        let (_, car) = car_of(Profile::KUBO_V1, &data, true);
        assert!(matches!(unpack(&car[..car.len() - 10], 4096, 64 << 20), Err(UnpackError::Car(CarError::Truncated))));
        let mut corrupt = car.clone();
        let at = corrupt.len() - 5;
        corrupt[at] ^= 1;
        assert!(matches!(unpack(&corrupt, 4096, 64 << 20), Err(UnpackError::Car(CarError::HashMismatch(_)))));
        let (_, car) = car_of(Profile::KUBO_V1, &data, false);
        assert!(matches!(unpack(&car, 4096, 100_000), Err(UnpackError::OutOfOrder)));
        assert!(matches!(unpack(b"\x05hello", 4, 1 << 20), Err(UnpackError::Car(CarError::BadHeader(_)))));
        let two = CarWriter::new(Vec::new(), &[]).expect("car").finish().expect("finish");
        assert!(matches!(unpack(&two, 4, 1 << 20), Err(UnpackError::Roots(0) | UnpackError::Car(_))));
    }

    #[test]
    fn a_small_car_describing_a_huge_file_is_refused_at_the_limit_in_bounded_steps() {
        // Five levels of nodes, each linking the next 1000 times: 250 KB of CAR, 10^15 leaves of file.
        let leaf = Block {
            cid: Cid::for_block(crate::Version::V1, RAW, b"x"),
            data: Bytes::from_static(b"x"),
            kind: BlockKind::Leaf { offset: 0, len: 1 },
        };
        let mut blocks = vec![(leaf.cid, leaf.data.clone())];
        let (mut child, mut size) = (leaf.cid, 1u64);
        for _ in 0..5 {
            let link = crate::DagLink { cid: child, file_size: size, dag_size: size };
            let data = Bytes::from(pb::encode_file_node(&vec![link; 1000]));
            child = Cid::for_block(crate::Version::V1, DAG_PB, &data);
            size *= 1000;
            blocks.push((child, data));
        }
        let mut car = CarWriter::new(Vec::new(), &[child]).expect("car");
        blocks.iter().rev().for_each(|(cid, data)| car.write_block(cid, data).expect("write"));
        let car = car.finish().expect("finish");
        assert!(car.len() < 300_000);
        assert!(matches!(unpack_at_most(&car, 4096, 1 << 20, 1 << 20), Err(UnpackError::TooLarge(_))));
        let mut unpacker = CarUnpacker::new(1 << 20, u64::MAX);
        unpacker.push(&car).expect("parses");
        let (mut out, mut nodes) = (0u64, 0);
        unpacker
            .pull(10_000, &mut |u| match u {
                Unpacked::Bytes(b) => out += b.len() as u64,
                Unpacked::Node(_) => nodes += 1,
            })
            .expect("pulls");
        assert!(out <= 10_001, "one pull passes out about its limit: {out}");
        assert_eq!(nodes, 5, "each node goes out once");
    }

    #[test]
    fn a_car_lacking_a_leaf_names_it() {
        let data = pattern(1_000_000);
        let mut importer = Importer::new(Profile::KUBO_V1);
        let mut blocks = Vec::new();
        importer
            .write_all(&data, |b| {
                blocks.push(b);
                Ok::<_, ()>(())
            })
            .expect("import");
        let (last, summary) = importer.finish();
        blocks.extend(last);
        let mut car = CarWriter::new(Vec::new(), &[summary.root]).expect("car");
        blocks.iter().skip(1).for_each(|b| car.write_block(&b.cid, &b.data).expect("write"));
        let car = car.finish().expect("finish");
        assert!(matches!(unpack(&car, 4096, 64 << 20), Err(UnpackError::Missing(c)) if c == blocks[0].cid));
    }
}
